#!/usr/bin/env bash
# Moves a Redis written by a pipe2-authd from before the hash-tag key layout (store_keys.h)
# to the current one, in place. pipe2-authd refuses to serve against the old layout (its
# revocations would be invisible), so run this once, with every replica stopped or before
# starting the new version:
#
#   scripts/migrate-redis-keys.sh [redis-cli options: -h HOST -p PORT -a PASSWORD -n DB ...]
#
# What moves (RENAMENX: never over a key of the new layout):
#   p2a:revoked, p2a:revseq, p2a:revlog   -> p2a:{t}:revoked, ...
#   p2a:pat:<jti>, p2a:user:<id>:pats     -> p2a:{t}:pat:<jti>, p2a:{t}:user:<id>:pats
#   p2a:fam:<fid>[:at], p2a:rt:<digest>   -> p2a:{t}:fam:..., p2a:{t}:rt:...
#   p2a:account:<username>                -> p2a:account:{<username>}
# Sign-in and registration counters (p2a:rl:*) are deleted: they expire within the hour and
# their new keys start from zero. Clients, sessions, codes and assertion ids keep their names.
# The revocation sequence moves with the set and the log, so replicas that kept running
# would see no gap; restart them anyway with the new version. Idempotent: a second run finds
# nothing to do.
set -euo pipefail

cli=(redis-cli "$@")
moved=0
deleted=0
while IFS= read -r key; do
  [ -z "$key" ] && continue
  case "$key" in
    *"{"*) continue ;; # already the new layout
    p2a:revseq) continue ;; # last, below
    p2a:revoked | p2a:revlog | p2a:pat:* | p2a:user:* | p2a:fam:* | p2a:rt:*)
      new="p2a:{t}:${key#p2a:}" ;;
    p2a:account:*) new="p2a:account:{${key#p2a:account:}}" ;;
    p2a:rl:*)
      "${cli[@]}" DEL "$key" >/dev/null
      deleted=$((deleted + 1))
      continue ;;
    *) continue ;;
  esac
  if [ "$("${cli[@]}" RENAMENX "$key" "$new")" = "1" ]; then
    moved=$((moved + 1))
  else
    echo "warning: $new exists already; $key left as it is" >&2
  fi
done < <("${cli[@]}" --scan --pattern 'p2a:*')
# the sequence number last: pipe2-authd takes p2a:revseq for the sign of the old layout, so
# a run cut short leaves it in place and the service refusing until a run completes
if [ "$("${cli[@]}" EXISTS p2a:revseq)" = "1" ]; then
  if [ "$("${cli[@]}" RENAMENX p2a:revseq 'p2a:{t}:revseq')" != "1" ]; then
    echo "error: p2a:{t}:revseq exists already beside p2a:revseq; resolve by hand" >&2
    exit 1
  fi
  moved=$((moved + 1))
fi
echo "migrate-redis-keys: $moved keys moved, $deleted counters deleted"
