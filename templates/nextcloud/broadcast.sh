#!/bin/sh
# smartpraxx broadcast: runs ON a practice's Nextcloud (docker exec -u www-data, in
# /var/www/html). POSIX sh + awk + php occ only, as in the official nextcloud image.
#
# The target is evaluated HERE, against this Nextcloud's own users and groups: nobody
# outside learns who matched. Output: exactly one line,
#   delivered <count> <announcement-id or ->     |   retracted
# where <count> is how many users see the message (never who).
#
#   broadcast.sh deliver <id> <target> <author> [<delete-time>]
#     env BROADCAST_SUBJECT, BROADCAST_MESSAGE. <target>: clauses separated by ';' (AND),
#     groups within a clause by ',' (OR), e.g. "kv-rlp;fach-urologie,bereich-abrechnung".
#     Idempotent: the local group news-<id> is synced to the users matching now, the
#     announcement (to that group only, with notifications) is created once and its id kept
#     in the app config (smartpraxx broadcast-<id>).
#   broadcast.sh retract <id>
set -eu
umask 077

occ() { php occ --no-interaction "$@"; }
cd "${NEXTCLOUD_ROOT:-/var/www/html}"

mode=${1:-}
id=${2:-}
case "$id" in
    b[0-9a-f]*) ;;
    *) echo "broadcast.sh: bad broadcast id" >&2; exit 2 ;;
esac
group="news-$id"
key="broadcast-$id"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

announcement() { occ config:app:get smartpraxx "$key" 2>/dev/null || true; }

case "$mode" in
deliver)
    target=${3:?target}
    author=${4:?author}
    until=${5:-}
    : "${BROADCAST_SUBJECT:?}" "${BROADCAST_MESSAGE:?}"
    # group:list's plain output: "  - <gid>:" then "    - <uid>" per member
    occ group:list --limit=1000000 >"$work/groups"
    : >"$work/members.raw"
    awk -v target="$target" -v self="$group" -v members="$work/members.raw" '
        BEGIN {
            n = split(target, clause, ";")
            for (i = 1; i <= n; i++) {
                m = split(clause[i], alt, ",")
                for (j = 1; j <= m; j++) want[alt[j]] = want[alt[j]] " " i
            }
        }
        /^  - / && /:$/ { g = substr($0, 5, length($0) - 5); next }
        /^    - / {
            u = substr($0, 7)
            if (g == self) { print u > members; next }
            if (g in want) {
                k = split(want[g], cs, " ")
                for (x = 1; x <= k; x++) hit[u SUBSEP cs[x]] = 1
                seen[u] = 1
            }
        }
        END {
            for (u in seen) {
                ok = 1
                for (i = 1; i <= n; i++) if (!((u SUBSEP i) in hit)) { ok = 0; break }
                if (ok) print u
            }
        }' <"$work/groups" | sort -u >"$work/match"
    sort -u "$work/members.raw" >"$work/members"
    if ! grep -qxF "  - $group:" "$work/groups"; then
        occ group:add --display-name="smartpraxx-Mitteilung $id" "$group" >/dev/null
    fi
    comm -23 "$work/match" "$work/members" >"$work/add"
    comm -13 "$work/match" "$work/members" >"$work/remove"
    old_ifs=$IFS
    IFS='
'
    set -f
    # shellcheck disable=SC2046
    if [ -s "$work/add" ]; then occ group:adduser "$group" $(cat "$work/add"); fi
    # shellcheck disable=SC2046
    if [ -s "$work/remove" ]; then occ group:removeuser "$group" $(cat "$work/remove"); fi
    set +f
    IFS=$old_ifs
    count=$(wc -l <"$work/match" | tr -d ' ')
    aid=$(announcement)
    if [ -z "$aid" ] && [ "$count" -gt 0 ]; then
        # the group exists (listed or just added, set -e): announcementcenter falls back to
        # "everyone" only when none of the given groups exists
        if [ -n "$until" ]; then
            occ announcementcenter:announce --notifications --group="$group" \
                --delete-time="$until" -- "$author" "$BROADCAST_SUBJECT" "$BROADCAST_MESSAGE" \
                >"$work/announce"
        else
            occ announcementcenter:announce --notifications --group="$group" \
                -- "$author" "$BROADCAST_SUBJECT" "$BROADCAST_MESSAGE" >"$work/announce"
        fi
        aid=$(sed -n 's/^Created announcement #\([0-9][0-9]*\):.*/\1/p' "$work/announce")
        [ -n "$aid" ] || { echo "broadcast.sh: no announcement id" >&2; exit 1; }
        occ config:app:set smartpraxx "$key" --value="$aid" >/dev/null
    fi
    echo "delivered $count ${aid:--}"
    ;;
retract)
    aid=$(announcement)
    if [ -n "$aid" ]; then
        occ announcementcenter:delete "$aid" >/dev/null 2>&1 || true
        occ config:app:delete smartpraxx "$key" >/dev/null
    fi
    occ group:list --limit=1000000 >"$work/groups"
    if grep -qxF "  - $group:" "$work/groups"; then
        occ group:delete "$group" >/dev/null
    fi
    echo "retracted"
    ;;
*)
    echo "usage: broadcast.sh deliver|retract <id> ..." >&2
    exit 2
    ;;
esac
