#!/bin/bash
# Entrypoint of smartpraxx/redis:dev: the official `redis` image's interface on Debian's Redis.
#  - arguments starting with '-' or a first argument ending in .conf go to redis-server,
#    e.g. `--requirepass SECRET` exactly like the official image (note: that puts the secret
#    on the command line);
#  - REDIS_PASSWORD or REDIS_PASSWORD_FILE (this image only): the password is written to a
#    0600 config file that redis-server reads; it never appears on a command line.
# redis-server runs as the unprivileged user redis.
set -eo pipefail

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi

if [ "$1" = redis-server ]; then
  shift
  conf=/etc/redis/container.conf
  if [ $# -gt 0 ] && [ "${1%.conf}" != "$1" ]; then
    conf="$1"
    shift
  fi
  if [ -n "${REDIS_PASSWORD:-}" ] && [ -n "${REDIS_PASSWORD_FILE:-}" ]; then
    echo "both REDIS_PASSWORD and REDIS_PASSWORD_FILE are set (but are exclusive)" >&2
    exit 1
  fi
  if [ -n "${REDIS_PASSWORD_FILE:-}" ]; then
    REDIS_PASSWORD="$(< "$REDIS_PASSWORD_FILE")"
  fi
  umask 077
  mkdir -p /run/redis
  chown redis:redis /run/redis
  {
    printf 'include %s\n' "$conf"
    if [ -n "${REDIS_PASSWORD:-}" ]; then
      pw="${REDIS_PASSWORD//\\/\\\\}"
      pw="${pw//\"/\\\"}"
      printf 'requirepass "%s"\n' "$pw"
    fi
  } > /run/redis/redis.conf
  chown redis:redis /run/redis/redis.conf
  unset REDIS_PASSWORD REDIS_PASSWORD_FILE pw
  umask 022
  find /data \! -user redis -exec chown redis:redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups redis-server /run/redis/redis.conf "$@"
fi

exec "$@"
