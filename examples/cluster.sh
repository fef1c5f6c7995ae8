#!/usr/bin/env bash
# A primary and two streaming standbys (one synchronous) on this machine, set up with repl only,
# then torn down. Copy it and change the directories, ports and password for your own cluster.
#
#   ./examples/cluster.sh                 # embedded PostgreSQL 18
#   PG_VERSION=15 ./examples/cluster.sh   # another embedded major (13..18, fetched on first use)
#   KEEP=1 ./examples/cluster.sh          # leave the cluster running (stop it with repl stop)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repl() { node "$here/../bin/run.js" "$@"; }
sql() { node "$here/sql.mjs" "$@"; }

PG_VERSION=${PG_VERSION:-18}
PORT=${PORT:-55432}                          # primary; standbys use the next two ports
WORK=${WORK:-$(mktemp -d /tmp/repl-demo.XXXXXX)}
chmod 755 "$WORK"                            # as root, the servers run as "postgres" and must get in
PRIMARY=$WORK/primary STANDBY1=$WORK/standby1 STANDBY2=$WORK/standby2

# The replication role's password: init-primary stores it (as SCRAM); the other commands log in with it.
export REPL_REPLICATION_PASSWORD=${REPL_REPLICATION_PASSWORD:-demo-$RANDOM$RANDOM}
export PGPASSWORD=$REPL_REPLICATION_PASSWORD
primary=(-h 127.0.0.1 -p "$PORT" -U replicator)

# Superuser SQL goes over the local socket with peer authentication, as repl itself does.
if [ "$(id -u)" = 0 ]; then superuser=postgres; else superuser=$(id -un); fi
on() { echo "host=/tmp port=$1 user=$superuser dbname=postgres"; }

teardown() {
  for dir in "$STANDBY2" "$STANDBY1" "$PRIMARY"; do
    [ -d "$dir" ] && repl stop -D "$dir" --mode fast >/dev/null || true
  done
  rm -rf "$WORK"
}
[ -n "${KEEP:-}" ] || trap teardown EXIT

step() { printf '\n== %s\n' "$*"; }

step "Primary: initdb, replication settings, role, synchronous standby standby1"
repl init-primary -D "$PRIMARY" --port "$PORT" --pg-version "$PG_VERSION" \
  --synchronous-standby-names standby1

step "A slot per standby, so the primary keeps the WAL they still need"
repl create-slot standby1 "${primary[@]}" --if-not-exists
repl create-slot standby2 "${primary[@]}" --if-not-exists

step "Base backups that know how to stream (-R writes primary_conninfo and the slot)"
repl basebackup -D "$STANDBY1" -R --slot standby1 --checkpoint fast "${primary[@]}"
repl basebackup -D "$STANDBY2" -R --slot standby2 --checkpoint fast "${primary[@]}"

step "Standbys: standby1 is the synchronous one (its application_name is listed on the primary)"
repl start-standby -D "$STANDBY1" --port $((PORT + 1)) --application-name standby1 --pg-version "$PG_VERSION"
repl start-standby -D "$STANDBY2" --port $((PORT + 2)) --application-name standby2 --pg-version "$PG_VERSION"

step "Replication status on the primary"
repl status "${primary[@]}" -d postgres

step "Write on the primary (the commit waits for standby1), read on both standbys"
sql "$(on "$PORT")" "CREATE TABLE demo (id int, note text); INSERT INTO demo VALUES (1, 'written on the primary')"
for port in $((PORT + 1)) $((PORT + 2)); do
  for _ in $(seq 50); do
    row=$(sql "$(on "$port")" "SELECT note FROM demo WHERE id = 1" 2>/dev/null || true)
    [ -n "$row" ] && break
    sleep 0.1
  done
  echo "standby on port $port reads: ${row:-nothing (not replicated?)}"
  [ -n "$row" ]
done

step "Done; tearing down"
