#!/bin/sh
# Nextcloud STAND-IN (test double) of the official image's /cron.sh: runs no background jobs.
echo "*** NEXTCLOUD STAND-IN cron (test double): no background jobs are run ***"
trap 'exit 0' TERM INT
while :; do
    sleep 3600 &
    wait $!
done
