# Least-privilege Vault/OpenBao policy of smartpraxx-provision (KV v2 mount "secret",
# vault_prefix "smartpraxx"). For another mount or prefix replace "secret/" and "smartpraxx/".
# Apply: bao policy write smartpraxx deploy/vault/smartpraxx-policy.hcl
# tests/integration/test_vault_store.py applies exactly this file to a real OpenBao server.

# Secrets: create (generate-once with check-and-set cas=0), read, overwrite (put).
path "secret/data/smartpraxx/*" {
  capabilities = ["create", "read", "update"]
}

# Walk a practice's secrets (list) and delete them with all versions on decommission.
path "secret/metadata/smartpraxx/*" {
  capabilities = ["list", "delete"]
}

# Keep the token alive: learn its TTL and renew it before it expires.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/renew-self" {
  capabilities = ["update"]
}
