#!/usr/bin/env bash
# WAL push throughput and base backup wall time, stockops against the field in
# the same run, on the same segments and the same cluster:
#
#   WAL push, one process per segment as archive_command runs it, all as the
#   postgres OS user: `stockops wal push` (file repository, also with two zstd
#   workers, and with --ahead 1: each call also pushes the next ready segment
#   in parallel, as pg_wal/archive_status lists them; and the S3 server
#   of scripts/testenv.sh when its env file exists), pgBackRest's
#   `archive-push` (zstd level 3, aes-256-cbc, posix repository: pgBackRest
#   speaks only HTTPS to S3, the test S3 server only HTTP), and the floor
#   `zstd -3 | age -R` into a file.
#
#   Base backup: `stockops backup --physical` (file repository) against
#   `pg_basebackup -Ft -X fetch -c fast -D - | zstd -3 -T0 | age -R` and
#   pgBackRest's full backup (zstd level 3, aes-256-cbc, process-max 1 and 2).
#
# Needs PostgreSQL 15 server binaries, age, zstd and pgbackrest (as root:
# apt-get install -y pgbackrest). Usage:
#
#   scripts/bench-wal.sh                       # 32 segments of 16 MiB
#   SEGMENTS=64 STOCKOPS_BIN=target/release/stockops scripts/bench-wal.sh
set -euo pipefail

SEGMENTS=${SEGMENTS:-32}
DIR=${STOCKOPS_BENCH_DIR:-/tmp/stockops-bench-wal}
BIN=$(realpath "${STOCKOPS_BIN:-target/debug/stockops}")
PG_BIN=/usr/lib/postgresql/15/bin
PORT=${BENCH_PG_PORT:-54391}
TESTENV=${STOCKOPS_TESTENV_DIR:-/tmp/stockops-testenv}/env

die() { printf 'bench-wal: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'bench-wal: %s\n' "$*" >&2; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l; }
sql() { as_pg "$PG_BIN/psql" -h "$DIR" -p "$PORT" -U postgres -d postgres -Atqc "$1"; }

for tool in age age-keygen zstd pgbackrest bc; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
[ -x "$BIN" ] || die "no stockops binary at $BIN (cargo build, or set STOCKOPS_BIN)"

cleanup() { as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg" -m immediate -w stop >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup
rm -rf "$DIR"
mkdir -p "$DIR"/{segs,floor,pgbr,lock,log}
age-keygen -o "$DIR/identity.txt" 2>/dev/null
age-keygen -y "$DIR/identity.txt" >"$DIR/recipients.txt"
chown -R postgres:postgres "$DIR" 2>/dev/null || true

# 1. A cluster, and SEGMENTS full segments of ordinary table writes.
log "initdb and start a scratch cluster on port $PORT"
as_pg "$PG_BIN/initdb" -D "$DIR/pg" -U postgres --auth=trust >/dev/null
as_pg tee -a "$DIR/pg/postgresql.conf" >/dev/null <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DIR'
archive_mode = on
archive_command = 'true'
wal_keep_size = '8GB'
max_wal_size = '8GB'
EOF
as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg" -l "$DIR/pg.log" -w start >/dev/null
sql "CREATE TABLE churn (id bigint, a text, b text, n numeric)"
first=$(sql "SELECT pg_walfile_name(pg_current_wal_lsn())")
start_lsn=$(sql "SELECT pg_current_wal_lsn()")
log "writing $SEGMENTS segments of WAL"
while [ "$(sql "SELECT ((pg_current_wal_lsn() - '$start_lsn'::pg_lsn) / 16777216)::int")" -le "$SEGMENTS" ]; do
    sql "INSERT INTO churn SELECT g, md5(g::text), md5(random()::text), random() * 1000 FROM generate_series(1, 100000) g" >/dev/null
done
sql "SELECT pg_switch_wal()" >/dev/null
for f in $(ls "$DIR/pg/pg_wal" | grep -E '^[0-9A-F]{24}$' | sort | awk -v s="$first" '$0 > s' | head -n "$SEGMENTS"); do
    cp "$DIR/pg/pg_wal/$f" "$DIR/segs/$f"
done
# As in pg_wal: archive_status/NAME.ready beside the segments (for --ahead).
mkdir -p "$DIR/segs/archive_status"
for f in "$DIR"/segs/0*; do : >"$DIR/segs/archive_status/$(basename "$f").ready"; done
chown -R postgres:postgres "$DIR/segs"
n=$(ls "$DIR/segs" | grep -c '^0')
mib=$((n * 16))
log "$n segments ($mib MiB) staged"

push_all() { # label, command prefix (the segment path is appended)
    local label=$1; shift
    local t0 s
    t0=$(now)
    for f in "$DIR"/segs/0*; do as_pg "$@" "$f" >/dev/null; done
    s=$(since "$t0")
    printf '%s\t%s\n' "$label" "$s" >>"$DIR/results"
}

# 2. WAL push.
: >"$DIR/results"
export STOCKOPS_AGE_RECIPIENTS=$DIR/recipients.txt
log "stockops wal push (file repository)"
STOCKOPS_REPO=file://$DIR/repo-stockops push_all "stockops wal push (file)" "$BIN" wal push
STOCKOPS_REPO=file://$DIR/repo-stockops-mt push_all "stockops wal push -w2 (file)" "$BIN" wal push --zstd-workers 2
STOCKOPS_REPO=file://$DIR/repo-stockops-ahead push_all "stockops wal push --ahead 1 (file)" "$BIN" wal push --ahead 1
if [ -f "$TESTENV" ]; then
    # shellcheck disable=SC1090
    . "$TESTENV"
    log "stockops wal push (S3: $STOCKOPS_TEST_S3_ENDPOINT)"
    AWS_ENDPOINT_URL=$STOCKOPS_TEST_S3_ENDPOINT AWS_REGION=$STOCKOPS_TEST_S3_REGION \
    AWS_ACCESS_KEY_ID=$STOCKOPS_TEST_S3_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$STOCKOPS_TEST_S3_SECRET_ACCESS_KEY \
    STOCKOPS_S3_PATH_STYLE=true STOCKOPS_REPO=s3://$STOCKOPS_TEST_S3_BUCKET/bench-wal-$$ \
        push_all "stockops wal push (S3)" "$BIN" wal push
fi
log "zstd -3 | age -R (the floor)"
cat >"$DIR/floor.sh" <<EOF
#!/bin/sh
set -e
zstd -3 -q -c "\$1" | age -R $DIR/recipients.txt >$DIR/floor/\$(basename "\$1").zst.age
EOF
chmod 755 "$DIR/floor.sh"
push_all "zstd -3 | age -R" "$DIR/floor.sh"

log "pgbackrest archive-push"
cat >"$DIR/pgbackrest.conf" <<EOF
[global]
repo1-path=$DIR/pgbr
repo1-retention-full=99
repo1-cipher-type=aes-256-cbc
repo1-cipher-pass=bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
compress-type=zst
compress-level=3
lock-path=$DIR/lock
log-path=$DIR/log
log-level-console=warn
log-level-file=off
spool-path=$DIR/lock

[bench]
pg1-path=$DIR/pg
pg1-port=$PORT
pg1-socket-path=$DIR
EOF
chown postgres:postgres "$DIR/pgbackrest.conf"
chmod 600 "$DIR/pgbackrest.conf"
PGBR=(pgbackrest --config="$DIR/pgbackrest.conf" --stanza=bench)
as_pg "${PGBR[@]}" stanza-create >/dev/null
push_all "pgbackrest archive-push" "${PGBR[@]}" archive-push

# 3. Base backup.
log "base backups"
t0=$(now)
DATABASE_URL="postgres://postgres@localhost:$PORT/postgres?host=$DIR" STOCKOPS_REPO=file://$DIR/repo-stockops \
    "$BIN" backup --physical --json >"$DIR/physical.json"
printf '%s\t%s\n' "stockops backup --physical" "$(since "$t0")" >>"$DIR/base"
t0=$(now)
as_pg sh -c "set -e; $PG_BIN/pg_basebackup -h $DIR -p $PORT -U postgres -D - -Ft -X fetch -c fast | zstd -3 -T0 -q | age -R $DIR/recipients.txt >$DIR/floor/base.tar.zst.age"
printf '%s\t%s\n' "pg_basebackup | zstd | age" "$(since "$t0")" >>"$DIR/base"
for p in 1 2; do
    t0=$(now)
    as_pg "${PGBR[@]}" --type=full --process-max=$p --start-fast --no-archive-check backup >/dev/null
    printf '%s\t%s\n' "pgbackrest backup (process-max $p)" "$(since "$t0")" >>"$DIR/base"
done

# 4. The table.
floor=$(awk -F'\t' '$1 == "zstd -3 | age -R" {print $2}' "$DIR/results")
pgbr=$(awk -F'\t' '$1 == "pgbackrest archive-push" {print $2}' "$DIR/results")
echo
echo "WAL push: $n segments of 16 MiB, one process each, as the postgres OS user ($(nproc) CPUs)"
printf '%-36s %9s %11s %11s %12s\n' "tool" "seconds" "segments/s" "vs floor" "vs pgbackrest"
while IFS=$'\t' read -r label s; do
    printf '%-36s %9.2f %11.1f %10.2fx %12.2fx\n' "$label" "$s" "$(echo "$n / $s" | bc -l)" \
        "$(echo "$floor / $s" | bc -l)" "$(echo "$pgbr / $s" | bc -l)"
done <"$DIR/results"
size=$(sql "SELECT pg_size_pretty(sum(pg_database_size(oid))) FROM pg_database")
base=$(awk -F'\t' '$1 == "pg_basebackup | zstd | age" {print $2}' "$DIR/base")
echo
echo "Base backup of the cluster ($size)"
printf '%-34s %9s %16s\n' "tool" "seconds" "vs pg_basebackup"
while IFS=$'\t' read -r label s; do
    printf '%-34s %9.2f %15.2fx\n' "$label" "$s" "$(echo "$s / $base" | bc -l)"
done <"$DIR/base"
