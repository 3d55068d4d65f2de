#!/bin/sh
# Nextcloud STAND-IN (test double) of the official image's /entrypoint.sh. See README.md.
PYTHONPATH=/usr/src/nextcloud-standin exec python3 -m nc_standin.entrypoint "$@"
