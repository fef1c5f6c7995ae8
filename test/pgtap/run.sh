#!/usr/bin/env bash
# PostgreSQL 15's own TAP suites for pg_basebackup, pg_receivewal, pg_waldump and
# pg_verifybackup, run with repl standing in for the first three: links named after each tool
# point at repl's bin/run.js (repl then runs as that tool's drop-in: its error format and exit
# status). PostgreSQL's test sources are fetched at run time through apt's source-package
# client, with a private sources list so the machine's apt set-up stays as it is; nothing of
# them is kept in this repository.
#
# Usage (as root, after `npm run build`):  test/pgtap/run.sh [repl|control] [SUITE ...]
#   repl (default): repl in place of the tools; control: PostgreSQL's own tools.
#   SUITE: e.g. pg_basebackup/t/010_pg_basebackup.pl; default: every suite below.
# Exit status: 0 when every suite passes at least its floor below, 1 otherwise.
# Logs: $PGTAP_DIR/logs/<mode>/ (prove -v output and the suites' own regress logs).
set -u

MODE=${1:-repl}; shift || true
case $MODE in repl|control) ;; *) echo "usage: $0 [repl|control] [SUITE ...]" >&2; exit 2 ;; esac
HERE=$(cd "$(dirname "$0")/../.." && pwd)
TAP=${PGTAP_DIR:-/tmp/repl-pgtap}
PGVER=15.18
PGBIN=/usr/lib/postgresql/15/bin
TESTUSER=repltap

# Floors: assertions each suite must pass with repl in place (the real tools pass them all).
# What repl still fails is listed in README.md, "Differences from PostgreSQL's tools".
declare -A FLOOR=(
  [pg_basebackup/t/010_pg_basebackup.pl]=184
  [pg_basebackup/t/020_pg_receivewal.pl]=42
  [pg_waldump/t/001_basic.pl]=8
  [pg_verifybackup/t/001_basic.pl]=16
  [pg_verifybackup/t/002_algorithm.pl]=19
  [pg_verifybackup/t/003_corruption.pl]=44
  [pg_verifybackup/t/004_options.pl]=25
  [pg_verifybackup/t/005_bad_manifest.pl]=58
  [pg_verifybackup/t/006_encoding.pl]=5
  [pg_verifybackup/t/007_wal.pl]=9
  [pg_verifybackup/t/008_untar.pl]=15
  [pg_verifybackup/t/009_extract.pl]=10
  [pg_verifybackup/t/010_client_untar.pl]=18
)
SUITES=("$@")
[ ${#SUITES[@]} -eq 0 ] && SUITES=($(printf '%s\n' "${!FLOOR[@]}" | sort))

[ "$(id -u)" -eq 0 ] || { echo "$0: run as root (the suites run as the unprivileged user $TESTUSER)" >&2; exit 2; }
[ -x $PGBIN/pg_config ] || [ -x /usr/bin/pg_config ] || { echo "$0: needs Debian's postgresql-15 (apt-get install postgresql-15)" >&2; exit 2; }
[ -f "$HERE/dist/main.js" ] || { echo "$0: build first (npm run build)" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive
perl -MIPC::Run -e 1 2>/dev/null || apt-get install -y -qq libipc-run-perl >/dev/null
command -v lz4 >/dev/null || apt-get install -y -qq lz4 >/dev/null
command -v zstd >/dev/null || apt-get install -y -qq zstd >/dev/null
id $TESTUSER >/dev/null 2>&1 || useradd -m $TESTUSER

# The 15.18 release's test sources (Debian's orig tarball is the upstream tarball).
PG=$TAP/pg
if [ ! -f "$PG/src/bin/pg_basebackup/t/010_pg_basebackup.pl" ]; then
  mkdir -p "$TAP/apt/lists/partial" "$TAP/src" "$PG"
  printf '%s\n' 'deb-src http://deb.debian.org/debian bookworm main' \
    'deb-src http://deb.debian.org/debian-security bookworm-security main' > "$TAP/apt/sources.list"
  O=(-o "Dir::Etc::SourceList=$TAP/apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent -o "Dir::State::Lists=$TAP/apt/lists")
  apt-get "${O[@]}" -qq update || exit 1
  (cd "$TAP/src" && apt-get "${O[@]}" -qq source --download-only "postgresql-15=$PGVER-0+deb12u1" >/dev/null 2>&1) || exit 1
  tar -xjf "$TAP/src/postgresql-15_$PGVER.orig.tar.bz2" -C "$PG" --strip-components=1 \
    postgresql-$PGVER/src/bin/pg_basebackup postgresql-$PGVER/src/bin/pg_waldump \
    postgresql-$PGVER/src/bin/pg_verifybackup postgresql-$PGVER/src/test/perl || exit 1
fi

# repl where the test user can run it: a checkout under a home it cannot enter is copied.
REPL=$HERE
if ! runuser -u $TESTUSER -- test -r "$REPL/bin/run.js"; then
  REPL=$TAP/repl
  rm -rf "$REPL"; mkdir -p "$REPL"
  cp -a "$HERE/bin" "$HERE/dist" "$HERE/node_modules" "$HERE/package.json" "$HERE/oclif.manifest.json" "$REPL/"
fi
chmod -R a+rX "$REPL" "$PG"
LINKS=$TAP/links
rm -rf "$LINKS"; mkdir -p "$LINKS"
for tool in pg_basebackup pg_receivewal pg_waldump; do ln -s "$REPL/bin/run.js" "$LINKS/$tool"; done
chmod 755 "$TAP" "$LINKS"

PG_REGRESS=$(readlink -f "$(dirname "$($PGBIN/pg_config --pgxs)")/../test/regress/pg_regress")
case $MODE in
  repl) path="$LINKS:$PGBIN:/usr/local/bin:/usr/bin:/bin" ;;
  control) path="$PGBIN:/usr/local/bin:/usr/bin:/bin" ;;
esac
NODE_DIR=$(dirname "$(command -v node)")
path="$path:$NODE_DIR"
LOGS=$TAP/logs/$MODE
mkdir -p "$LOGS"; chmod 755 "$TAP/logs" "$LOGS"
failed=0; total_ok=0; total_notok=0
printf '%-42s %5s %7s %5s %5s\n' suite ok not_ok plan floor
for suite in "${SUITES[@]}"; do
  dir=${suite%%/t/*}; file=t/${suite#*/t/}; base=$(basename "$file" .pl)
  run=$TAP/run/$MODE/$dir
  rm -rf "$run"; mkdir -p "$run/tmp_check"; chown -R $TESTUSER: "$TAP/run"
  log=$LOGS/${dir}__$base.prove.log
  ( cd "$PG/src/bin/$dir" &&
    runuser -u $TESTUSER -- env -i HOME=/home/$TESTUSER USER=$TESTUSER LOGNAME=$TESTUSER LANG=C.UTF-8 \
      PATH="$path" TESTDIR="$run" top_builddir="$run" PG_REGRESS="$PG_REGRESS" PERL5LIB="$PG/src/test/perl" \
      TAR=tar GZIP_PROGRAM=gzip LZ4=lz4 ZSTD=zstd \
      timeout 1500 prove -v -I "$PG/src/test/perl" -I . "$file" ) >"$log" 2>&1
  cp -f "$run/tmp_check/log/regress_log_$base" "$LOGS/${dir}__regress_log_$base" 2>/dev/null
  ok=$(grep -cE '^ok [0-9]+' "$log"); notok=$(grep -cE '^not ok [0-9]+' "$log")
  plan=$(grep -oE '^1\.\.[0-9]+' "$log" | tail -1 | cut -c4-)
  total_ok=$((total_ok + ok)); total_notok=$((total_notok + notok))
  floor=${FLOOR[$suite]:-0}
  verdict=ok
  if [ "$ok" -lt "$floor" ] || [ -z "$plan" ]; then verdict=FAILED; failed=1; fi
  printf '%-42s %5s %7s %5s %5s  %s\n' "$suite" "$ok" "$notok" "${plan:-?}" "$floor" "$verdict"
  [ $verdict = ok ] || grep -E '^not ok' "$log" | sed 's/^/    /'
done
[ $failed -eq 0 ] && echo "every suite at or above its floor ($MODE)" || echo "below the floor; logs in $LOGS"
echo "pgtap: $total_ok passed, $total_notok failed"
exit $failed
