#!/bin/sh
# The test fleet host's engine: dockerd on tcp://0.0.0.0:2376 with mutual TLS (the files the
# orchestrator mounts at /etc/docker/tls), the storage driver from FLEET_STORAGE_DRIVER
# (default overlay2: /var/lib/docker is a volume, not the outer overlay). A port an inner
# container publishes on 0.0.0.0 is DNATed by the inner engine for traffic from this
# container's own interface (the machine's 127.0.0.1 block arrives there).
set -eu
tls=/etc/docker/tls
for f in ca.pem server-cert.pem server-key.pem; do
    if [ ! -s "$tls/$f" ]; then
        echo "fleet-host: $tls/$f missing; the orchestrator mounts the TLS files" >&2
        exit 64
    fi
done
rm -f /var/run/docker.pid
exec dockerd \
    --host=tcp://0.0.0.0:2376 \
    --tlsverify --tlscacert="$tls/ca.pem" \
    --tlscert="$tls/server-cert.pem" --tlskey="$tls/server-key.pem" \
    --storage-driver="${FLEET_STORAGE_DRIVER:-overlay2}" \
    --default-address-pool base=172.31.0.0/16,size=24 \
    "$@"
