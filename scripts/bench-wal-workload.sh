#!/usr/bin/env bash
# Does the WAL archiver keep up with the seeded workload? A scratch cluster of
# its own archives with `stockops wal push --ahead 2` into a file repository
# while the heaviest WAL producers run:
#
#   seed       `stockops provision` then `stockops seed --scale SCALE` (COPY of a
#              simulated year in one transaction: the biggest burst of WAL)
#   workload   pgbench, CLIENTS clients for WORKLOAD_SECONDS s, the calls the
#              departments make: api.record_sale (weight 10), api.receive_stock
#              (3), api.adjust_stock (2, up or down) and api.transfer_stock (2),
#              on real SKUs, warehouses and resellers of the seeded data
#
# each followed by a drain (until no segment waits in archive_status, at most
# DRAIN_TIMEOUT s). Every second: WAL written (pg_current_wal_lsn), the size
# of pg_wal, the archiver backlog (archive_status/*.ready), pg_stat_archiver
# and the load average. Then, in the same run, the push capacity: up to
# SEGMENTS real segments of the run, fetched back from the archive, pushed
# one process each as archive_command runs them (as the postgres OS user,
# plain and with --ahead 2 as configured), against the peak rate the cluster
# wrote WAL at.
#
# The cluster keeps the defaults that matter here: max_wal_size 1GB, fsync on,
# full_page_writes on, one archiver. Run as root (initdb, the server and the
# pushes run as the postgres OS user). Usage:
#
#   scripts/bench-wal-workload.sh
#   WORKLOAD_SECONDS=120 CLIENTS=8 SEGMENTS=32 scripts/bench-wal-workload.sh
#
# Environment: STOCKOPS_BIN (default target/debug/stockops), SCALE (1),
# WORKLOAD_SECONDS (90), CLIENTS (8), PGBENCH_JOBS (2), SEGMENTS (32),
# DRAIN_TIMEOUT (600), BENCH_PG_PORT (54393), KEEP=1 keeps the scratch
# directory (the cluster is stopped), SAMPLES_OUT=FILE copies the per-second
# samples there.
set -euo pipefail
cd "$(dirname "$0")/.."

SCALE=${SCALE:-1}
WORKLOAD_SECONDS=${WORKLOAD_SECONDS:-90}
CLIENTS=${CLIENTS:-8}
PGBENCH_JOBS=${PGBENCH_JOBS:-2}
SEGMENTS=${SEGMENTS:-32}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-600}
PORT=${BENCH_PG_PORT:-54393}
KEEP=${KEEP:-0}
BIN=$(realpath "${STOCKOPS_BIN:-target/debug/stockops}")
PG_BIN=/usr/lib/postgresql/15/bin
MAX_SAMPLES=7200 # the sampler's bound: two hours of seconds

die() { printf 'bench-wal-workload: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'bench-wal-workload: %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root (the cluster runs as the postgres OS user)"
id postgres >/dev/null 2>&1 || die "no postgres OS user"
for tool in "$PG_BIN/initdb" "$PG_BIN/pg_ctl" "$PG_BIN/psql" "$PG_BIN/pgbench"; do
    [ -x "$tool" ] || die "$tool is missing (PostgreSQL 15 server binaries)"
done
for tool in age-keygen awk du find; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
[ -x "$BIN" ] || die "no stockops binary at $BIN (cargo build, or set STOCKOPS_BIN)"
for n in "$SCALE" "$WORKLOAD_SECONDS" "$CLIENTS" "$PGBENCH_JOBS" "$SEGMENTS" "$DRAIN_TIMEOUT" "$PORT"; do
    [[ $n =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "not a number: $n"
done

# Only the settings this script writes: none from the caller's environment
# reaches the server, its archive_command or the stockops calls.
unset STOCKOPS_CONFIG STOCKOPS_REPO STOCKOPS_AGE_RECIPIENTS STOCKOPS_AGE_IDENTITY \
    STOCKOPS_S3_PATH_STYLE STOCKOPS_S3_TIMEOUT_SECS DATABASE_URL \
    PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS

DIR=$(mktemp -d /tmp/stockops-bench-wal-workload.XXXXXX)
PGDATA=$DIR/pg
SAMPLER_PID=
PGBENCH_PID=

cleanup() {
    local rc=$?
    set +e
    if [ -n "$PGBENCH_PID" ]; then kill "$PGBENCH_PID" 2>/dev/null; wait "$PGBENCH_PID" 2>/dev/null; fi
    if [ -n "$SAMPLER_PID" ]; then
        : >"$DIR/stop"
        kill "$SAMPLER_PID" 2>/dev/null
        wait "$SAMPLER_PID" 2>/dev/null
    fi
    if [ -f "$PGDATA/postmaster.pid" ]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [ "$KEEP" = 1 ]; then
        log "kept $DIR"
    else
        rm -rf "$DIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sql() { "$PG_BIN/psql" -X -h "$DIR" -p "$PORT" -U postgres -d "${DB:-postgres}" -Atq -F $'\t' -c "$1"; }
# Microseconds since the epoch, from bash's own clock (no fork).
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e6 }'; }

mkdir -p "$DIR"/{keys,repo,segs/archive_status,fetched}
age-keygen -o "$DIR/keys/identity.txt" 2>/dev/null
age-keygen -y "$DIR/keys/identity.txt" >"$DIR/recipients.txt"
chmod 700 "$DIR/keys"
cat >"$DIR/stockops.toml" <<EOF
repo = "file://$DIR/repo"
recipients_file = "$DIR/recipients.txt"
EOF
for c in plain ahead; do
    cat >"$DIR/capacity-$c.toml" <<EOF
repo = "file://$DIR/repo-capacity-$c"
recipients_file = "$DIR/recipients.txt"
EOF
    mkdir -p "$DIR/repo-capacity-$c"
done
chown -R postgres:postgres "$DIR"
chown -R root:root "$DIR/keys"

# 1. The cluster.
log "initdb and start a scratch cluster in $DIR (port $PORT, socket only)"
runuser -u postgres -- "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust >/dev/null
cat >>"$PGDATA/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DIR'
wal_level = replica
archive_mode = on
archive_command = '$BIN --config $DIR/stockops.toml wal push --ahead 2 %p'
max_wal_size = '1GB'
log_checkpoints = on
EOF
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$DIR/pg.log" -w start >/dev/null
MAX_WAL=$(sql "SELECT pg_size_bytes(current_setting('max_wal_size'))")
SEG=$(sql "SELECT pg_size_bytes(current_setting('wal_segment_size'))")
sql "CREATE DATABASE inventory" >/dev/null
export DATABASE_URL="postgres://postgres@localhost:$PORT/inventory?host=$DIR"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# 2. The sampler: one line a second until told to stop (or MAX_SAMPLES).
# time_us, phase, wal_bytes, archived_count, failed_count, ready, pg_wal bytes, load1
echo idle >"$DIR/phase"
sampler() {
    local i=0 start row ready walb load phase next wait
    start=$(now_us)
    while [ ! -e "$DIR/stop" ] && [ "$i" -lt "$MAX_SAMPLES" ]; do
        row=$(sql "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, archived_count, failed_count FROM pg_stat_archiver" 2>/dev/null) || row=
        ready=$(find "$PGDATA/pg_wal/archive_status" -name '*.ready' 2>/dev/null | wc -l)
        walb=$(du -sb "$PGDATA/pg_wal" 2>/dev/null | cut -f1) || walb=
        read -r load _ </proc/loadavg
        read -r phase <"$DIR/phase"
        if [ -n "$row" ] && [ -n "$walb" ]; then
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(now_us)" "$phase" "$row" "$ready" "$walb" "$load" >>"$DIR/samples"
        fi
        i=$((i + 1))
        next=$((start + i * 1000000))
        wait=$((next - $(now_us)))
        if [ "$wait" -gt 0 ]; then sleep "$(printf '%d.%06d' $((wait / 1000000)) $((wait % 1000000)))"; fi
    done
}
sampler &
SAMPLER_PID=$!

# Phase boundaries: name, start_us, end_us, wal bytes, archived, failed and
# requested checkpoints at each end.
begin_phase() {
    echo "$1" >"$DIR/phase"
    P_T0=$(now_us)
    P_S0=$(sql "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, archived_count, failed_count, (SELECT checkpoints_req FROM pg_stat_bgwriter) FROM pg_stat_archiver")
}
end_phase() {
    local t1 s1
    t1=$(now_us)
    s1=$(sql "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, archived_count, failed_count, (SELECT checkpoints_req FROM pg_stat_bgwriter) FROM pg_stat_archiver")
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$P_T0" "$t1" "$P_S0" "$s1" >>"$DIR/phases"
    echo idle >"$DIR/phase"
}
ready_count() { find "$PGDATA/pg_wal/archive_status" -name '*.ready' 2>/dev/null | wc -l; }
# Until no segment waits twice in a row, at most DRAIN_TIMEOUT seconds.
drain() {
    local zero=0 t0=$SECONDS
    begin_phase "$1"
    while [ $((SECONDS - t0)) -lt "$DRAIN_TIMEOUT" ]; do
        if [ "$(ready_count)" -eq 0 ]; then zero=$((zero + 1)); else zero=0; fi
        [ "$zero" -ge 2 ] && break
        sleep 1
    done
    end_phase "$1"
    [ "$zero" -ge 2 ] || log "WARNING: $(ready_count) segments still wait after $DRAIN_TIMEOUT s"
}

sleep 2 # a baseline sample or two
# 3. Provision and seed.
log "provision and seed --scale $SCALE"
"$BIN" provision >/dev/null 2>"$DIR/provision.log" || { tail -n 20 "$DIR/provision.log" >&2; die "provision failed"; }
SEED_FIRST=$(sql "SELECT pg_walfile_name(pg_current_wal_lsn())")
begin_phase seed
"$BIN" seed --scale "$SCALE" >"$DIR/seed.out" 2>"$DIR/seed.log" || { tail -n 20 "$DIR/seed.log" >&2; die "seed failed"; }
end_phase seed
drain "seed drain"

# 4. The departments' calls, through pgbench.
DB=inventory
NPROD=$(sql "SELECT count(*) FROM inventory.products WHERE active")
NWH=$(sql "SELECT count(*) FROM inventory.warehouses WHERE active")
NRES=$(sql "SELECT count(*) FROM inventory.resellers WHERE active")
SELLABLE=$(sql "SELECT count(*) FROM inventory.stock_levels WHERE on_hand - reserved >= 50")
LEVELS=$(sql "SELECT count(*) FROM inventory.stock_levels")
LAST_MOVEMENT=$(sql "SELECT coalesce(max(movement_id), 0) FROM inventory.stock_movements")
unset DB
log "seeded: $NPROD active products, $NWH warehouses, $NRES resellers, $SELLABLE of $LEVELS stock levels with 50 or more available"
if [ "$NPROD" -eq 0 ] || [ "$NWH" -lt 2 ] || [ "$NRES" -eq 0 ]; then
    die "the seeded data lacks products, warehouses or resellers"
fi

# A random active product (and reseller, warehouse) by position. Sales,
# decreases and transfers only touch a level with 50 or more available, so
# they never fail for want of stock (a call takes at most 5).
PRODUCT='(SELECT product_id, sku FROM inventory.products WHERE active ORDER BY product_id OFFSET :p LIMIT 1)'
cat >"$DIR/sale.sql" <<EOF
\set p random(0, :nprod - 1)
\set r random(0, :nres - 1)
\set q random(1, 3)
SELECT api.record_sale(x.reseller, x.sku, x.warehouse, :q)
  FROM (SELECT r.code AS reseller, p.sku, w.code AS warehouse
          FROM $PRODUCT p
          JOIN inventory.stock_levels l ON l.product_id = p.product_id AND l.on_hand - l.reserved >= 50
          JOIN inventory.warehouses w ON w.warehouse_id = l.warehouse_id AND w.active
         CROSS JOIN (SELECT code FROM inventory.resellers WHERE active ORDER BY reseller_id OFFSET :r LIMIT 1) r
         ORDER BY random() LIMIT 1) x;
EOF
cat >"$DIR/receive.sql" <<EOF
\set p random(0, :nprod - 1)
\set w random(0, :nwh - 1)
\set q random(10, 200)
SELECT api.receive_stock(x.sku, x.warehouse, :q)
  FROM (SELECT p.sku, w.code AS warehouse
          FROM $PRODUCT p
         CROSS JOIN (SELECT code FROM inventory.warehouses WHERE active ORDER BY warehouse_id OFFSET :w LIMIT 1) w) x;
EOF
cat >"$DIR/adjust.sql" <<EOF
\set p random(0, :nprod - 1)
\set d (2 * random(0, 1) - 1) * random(1, 5)
SELECT api.adjust_stock(x.sku, x.warehouse, :d, 'cycle count')
  FROM (SELECT p.sku, w.code AS warehouse
          FROM $PRODUCT p
          JOIN inventory.stock_levels l ON l.product_id = p.product_id AND l.on_hand - l.reserved >= 50
          JOIN inventory.warehouses w ON w.warehouse_id = l.warehouse_id AND w.active
         ORDER BY random() LIMIT 1) x;
EOF
cat >"$DIR/transfer.sql" <<EOF
\set p random(0, :nprod - 1)
\set q random(1, 5)
SELECT api.transfer_stock(x.sku, x.from_wh, x.to_wh, :q)
  FROM (SELECT p.sku, w.code AS from_wh, t.code AS to_wh
          FROM $PRODUCT p
          JOIN inventory.stock_levels l ON l.product_id = p.product_id AND l.on_hand - l.reserved >= 50
          JOIN inventory.warehouses w ON w.warehouse_id = l.warehouse_id AND w.active
          JOIN inventory.warehouses t ON t.active AND t.warehouse_id <> w.warehouse_id
         ORDER BY random() LIMIT 1) x;
EOF

log "pgbench: $CLIENTS clients, $PGBENCH_JOBS threads, $WORKLOAD_SECONDS s"
begin_phase workload
set +e
"$PG_BIN/pgbench" -n -h "$DIR" -p "$PORT" -U postgres -c "$CLIENTS" -j "$PGBENCH_JOBS" -T "$WORKLOAD_SECONDS" \
    --max-tries 5 -D nprod="$NPROD" -D nwh="$NWH" -D nres="$NRES" \
    -f "$DIR/sale.sql@10" -f "$DIR/receive.sql@3" -f "$DIR/adjust.sql@2" -f "$DIR/transfer.sql@2" \
    inventory >"$DIR/pgbench.out" 2>"$DIR/pgbench.err" &
PGBENCH_PID=$!
wait "$PGBENCH_PID"
PGBENCH_RC=$?
PGBENCH_PID=
set -e
end_phase workload
MOVEMENTS=$(DB=inventory sql "SELECT string_agg(kind || ' ' || n, ', ' ORDER BY kind) FROM (SELECT kind, count(*) AS n FROM inventory.stock_movements WHERE movement_id > $LAST_MOVEMENT GROUP BY kind) k")
drain "workload drain"
echo stop >"$DIR/stop"
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# 5. Push capacity: up to SEGMENTS segments archived in this run, the seed's
# first, fetched back from the archive (which also checks them), pushed one
# process each as the postgres OS user into fresh repositories.
log "push capacity: fetching up to $SEGMENTS segments from the archive"
mapfile -t NAMES < <(find "$DIR/repo/wal" -type f -name '0*.zst.age' -printf '%f\n' | cut -c1-24 | sort -u |
    awk -v s="$SEED_FIRST" '$0 > s' | head -n "$SEGMENTS")
[ "${#NAMES[@]}" -gt 0 ] || die "the archive holds no segment written since the seed began"
for n in "${NAMES[@]}"; do
    "$BIN" --config "$DIR/stockops.toml" --identity-file "$DIR/keys/identity.txt" wal fetch "$n" "$DIR/fetched/$n" >/dev/null
done
push_all() { # label, config, extra flags...
    local label=$1 cfg=$2 t0 t1 n
    shift 2
    rm -rf "$DIR/segs"
    mkdir -p "$DIR/segs/archive_status"
    for n in "${NAMES[@]}"; do
        cp "$DIR/fetched/$n" "$DIR/segs/$n"
        : >"$DIR/segs/archive_status/$n.ready"
    done
    chown -R postgres:postgres "$DIR/segs"
    t0=$(now_us)
    for n in "${NAMES[@]}"; do
        runuser -u postgres -- "$BIN" --config "$cfg" wal push "$@" "$DIR/segs/$n" >/dev/null
        # What PostgreSQL does once a push succeeded.
        mv "$DIR/segs/archive_status/$n.ready" "$DIR/segs/archive_status/$n.done"
    done
    t1=$(now_us)
    printf '%s\t%s\t%s\n' "$label" "$(secs "$t0" "$t1")" "${#NAMES[@]}" >>"$DIR/capacity"
}
LOAD_CAP_START=$(cut -d' ' -f1 /proc/loadavg)
push_all "wal push" "$DIR/capacity-plain.toml"
push_all "wal push --ahead 2 (as archive_command)" "$DIR/capacity-ahead.toml" --ahead 2
LOAD_CAP_END=$(cut -d' ' -f1 /proc/loadavg)

# 6. The report.
ARCH_FAIL_LOG=$(grep -c 'archive command failed' "$DIR/pg.log" || true)
TPS=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$DIR/pgbench.out")
TX=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$DIR/pgbench.out")
FAILED_TX=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$DIR/pgbench.out")
if [ -n "${SAMPLES_OUT:-}" ]; then cp "$DIR/samples" "$SAMPLES_OUT"; fi

echo
echo "WAL archiving under the seeded workload: stockops wal push --ahead 2 into file://, $(nproc) CPUs,"
echo "max_wal_size $((MAX_WAL / 1048576)) MB, segments of $((SEG / 1048576)) MB, seed --scale $SCALE,"
echo "pgbench $CLIENTS clients x ${WORKLOAD_SECONDS} s (record_sale 10 : receive_stock 3 : adjust_stock 2 : transfer_stock 2)"
echo "load average at start $LOAD_START, at the end of the workload drain $LOAD_END"
echo
awk -F'\t' -v seg="$SEG" -v maxwal="$MAX_WAL" '
    FNR == NR {  # phases: name t0 t1 lsn0 arch0 fail0 ckpt0 lsn1 arch1 fail1 ckpt1
        np++; name[np] = $1; t0[np] = $2; t1[np] = $3
        lsn0[np] = $4; a0[np] = $5; f0[np] = $6; c0[np] = $7
        lsn1[np] = $8; a1[np] = $9; f1[np] = $10; c1[np] = $11
        next
    }
    { ns++; st[ns] = $1; sp[ns] = $2; sl[ns] = $3; sr[ns] = $6; sw[ns] = $7; sload[ns] = $8 }
    END {
        printf "%-15s %6s %8s %7s %8s %8s %8s %9s %8s %17s %6s %5s %6s\n", "phase", "s", "WAL MB", "MB/s",
            "peak1s", "peak10s", "archived", "archiv/s", "max", "max pg_wal MB", "failed", "ckpt", "load1"
        printf "%-15s %6s %8s %7s %8s %8s %8s %9s %8s %17s %6s %5s %6s\n", "", "", "", "mean",
            "MB/s", "MB/s", "segments", "", ".ready", "(of max_wal_size)", "", "req", "max"
        for (p = 1; p <= np; p++) {
            d = (t1[p] - t0[p]) / 1e6
            mb = (lsn1[p] - lsn0[p]) / 1048576
            pk1 = 0; pk10 = 0; mr = 0; mw = 0; ml = 0
            for (i = 1; i <= ns; i++) {
                if (st[i] < t0[p] || st[i] > t1[p] + 1e6) continue
                if (sr[i] > mr) mr = sr[i]
                if (sw[i] > mw) mw = sw[i]
                if (sload[i] > ml) ml = sload[i]
                if (i > 1 && st[i] <= t1[p] + 1e6) {
                    r = (sl[i] - sl[i - 1]) / 1048576 / ((st[i] - st[i - 1]) / 1e6)
                    if (r > pk1) pk1 = r
                    for (j = i - 1; j >= 1 && st[i] - st[j] < 10e6; j--) ;
                    if (j >= 1 && st[j] >= t0[p] - 1e6) {
                        r = (sl[i] - sl[j]) / 1048576 / ((st[i] - st[j]) / 1e6)
                        if (r > pk10) pk10 = r
                    }
                }
                if (pk1 > gpk1) { gpk1 = pk1; gpk1p = name[p] }
                if (pk10 > gpk10) { gpk10 = pk10; gpk10p = name[p] }
            }
            if (pk10 == 0) pk10s = "-"; else pk10s = sprintf("%.1f", pk10)
            printf "%-15s %6.1f %8.1f %7.2f %8.1f %8s %8d %9.2f %8d %10.0f (%3.0f%%) %6d %5d %6.2f\n", name[p], d, mb,
                mb / d, pk1, pk10s, a1[p] - a0[p], (a1[p] - a0[p]) / d, mr, mw / 1048576, 100 * mw / maxwal,
                f1[p] - f0[p], c1[p] - c0[p], ml
            if (name[p] !~ /drain/ && mb / d > gmean) { gmean = mb / d; gmeanp = name[p] }
        }
        printf "%.6f\t%s\t%.6f\t%s\t%.6f\t%s\n", gpk1, gpk1p, gpk10, gpk10p, gmean, gmeanp > "/dev/stderr"
    }' "$DIR/phases" "$DIR/samples" 2>"$DIR/peaks"
IFS=$'\t' read -r PEAK1 PEAK1_PHASE PEAK10 PEAK10_PHASE MEAN MEAN_PHASE <"$DIR/peaks"
echo
echo "pgbench: ${TX:-?} transactions, ${TPS:-?}/s, ${FAILED_TX:-0} failed, exit $PGBENCH_RC;" \
    "stock movements written: ${MOVEMENTS:-none}"
echo "(a sale, decrease or transfer finding no level with 50 available writes nothing;" \
    "$SELLABLE of $LEVELS levels had 50 at the start)"
echo "archive command failures in the server log: $ARCH_FAIL_LOG"
echo
echo "Push capacity: ${#NAMES[@]} segments archived in this run (the seed's first), one process each, as the postgres OS user" \
    "(load1 $LOAD_CAP_START before, $LOAD_CAP_END after)"
printf '%-42s %8s %11s %13s %13s %13s\n' "command" "seconds" "segments/s" "/ peak 1s" "/ peak 10s" "/ mean"
while IFS=$'\t' read -r label s n; do
    awk -v l="$label" -v s="$s" -v n="$n" -v seg="$SEG" -v p1="$PEAK1" -v p10="$PEAK10" -v m="$MEAN" 'BEGIN {
        cap = n / s; mb = seg / 1048576
        printf "%-42s %8.2f %11.2f %12.2fx %12.2fx %12.2fx\n", l, s, cap, cap / (p1 / mb), cap / (p10 / mb), cap / (m / mb)
    }'
done <"$DIR/capacity"
awk -v p1="$PEAK1" -v p10="$PEAK10" -v m="$MEAN" -v seg="$SEG" -v a="$PEAK1_PHASE" -v b="$PEAK10_PHASE" -v c="$MEAN_PHASE" 'BEGIN {
    mb = seg / 1048576
    printf "peak WAL generation: %.1f MB/s over 1 s (%.2f segments/s, %s), %.1f MB/s over 10 s (%.2f segments/s, %s);\n", p1, p1 / mb, a, p10, p10 / mb, b
    printf "highest phase mean: %.1f MB/s (%.2f segments/s, %s)\n", m, m / mb, c
}'
