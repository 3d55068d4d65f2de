#!/bin/bash
# Health check for smartpraxx/mariadb:dev. Accepts the official image's
# `healthcheck.sh --connect --innodb_initialized` call so slot specs work with both images.
# Healthy = the real server (not the init-time server, which has networking off) answers on
# TCP 127.0.0.1:3306. It logs in as the privilege-less user 'healthcheck' whose random
# password the entrypoint wrote to /var/lib/mysql/.my-healthcheck.cnf (as the official image
# does); `mariadb-admin ping` exits 0 whenever the server answers, even if the login is refused.
set -u
for arg in "$@"; do
  case "$arg" in
    --connect|--innodb_initialized|--su-mysql) ;;
    *) echo "healthcheck.sh: option $arg is not supported by this image" >&2; exit 2 ;;
  esac
done
defaults=(--no-defaults --user=healthcheck)
if [ -r /var/lib/mysql/.my-healthcheck.cnf ]; then
  defaults=(--defaults-file=/var/lib/mysql/.my-healthcheck.cnf)
fi
exec mariadb-admin "${defaults[@]}" --protocol=tcp --host=127.0.0.1 --port=3306 \
  --connect-timeout=2 ping >/dev/null 2>&1
