#!/bin/bash
# Health check for smartpraxx/redis:dev: healthy when the server answers PING, with PONG or
# (password set, no credentials given) NOAUTH. No secret is needed here. LOADING = not yet.
out="$(redis-cli -h 127.0.0.1 -p 6379 ping 2>&1)" || true
case "$out" in
  PONG|*NOAUTH*) exit 0 ;;
  *) echo "$out" >&2; exit 1 ;;
esac
