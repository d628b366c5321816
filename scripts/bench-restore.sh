#!/usr/bin/env bash
# Restore benchmark: stockops restore and drill against the bare standard
# pipeline, measured in the same run on one seeded database.
#
#   scripts/bench-restore.sh [SCALE]        default 6 (about 1.0 GB)
#
# Times, each into a fresh empty database:
#   baseline   age -d -i KEY data.dump.zst.age | zstd -d | pg_restore -d DB   (from a local file)
#   stockops restore                (streamed, one transaction, then the fingerprint proof)
#   stockops restore --jobs 2       (spooled to a private file, parallel pg_restore)
#   stockops drill                  (scratch cluster, restore, drift, proof, audit, smoke calls)
# Goals: restore <= 1.05 x baseline; drill <= 2.0 x the bare restore.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-6}
ENV_FILE=$(scripts/testenv.sh up)
set -a; . "$ENV_FILE"; set +a
cargo build --quiet --bin stockops
STOCKOPS=$PWD/target/debug/stockops
WORK=${STOCKOPS_BENCH_DIR:-/tmp/stockops-bench-restore}
rm -rf "$WORK"; mkdir -p "$WORK"
age-keygen -o "$WORK/identity.txt" 2>/dev/null
age-keygen -y "$WORK/identity.txt" >"$WORK/recipients.txt"
SOCKET=${STOCKOPS_TEST_ADMIN_URL#*host=}
PGBIN=/usr/lib/postgresql/15/bin
export PGHOST=$SOCKET PGPORT=$STOCKOPS_TEST_PG_PORT PGUSER=postgres
export STOCKOPS_AGE_RECIPIENTS=$WORK/recipients.txt STOCKOPS_AGE_IDENTITY=$WORK/identity.txt
export STOCKOPS_REPO=file://$WORK/repo STOCKOPS_LOG=warn
url() { echo "postgres://postgres@localhost:$PGPORT/$1?host=$SOCKET"; }
fresh() { psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"; }
seconds() { /usr/bin/time -f "%e" -o "$WORK/t" bash -c "$1" >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; return 1; }; cat "$WORK/t"; }

fresh bench_src
DATABASE_URL=$(url bench_src) "$STOCKOPS" provision >/dev/null
DATABASE_URL=$(url bench_src) "$STOCKOPS" seed --scale "$SCALE" --as-of 2026-11-01 >/dev/null
size=$(psql -X -At -d bench_src -c "SELECT pg_size_pretty(pg_database_size(current_database()))")
id=$(DATABASE_URL=$(url bench_src) "$STOCKOPS" backup)
data=$WORK/repo/backups/$id/data.dump.zst.age

fresh bench_a; base=$(seconds "age -d -i $WORK/identity.txt $data | zstd -d -q | $PGBIN/pg_restore -d bench_a")
fresh bench_b; streamed=$(seconds "$STOCKOPS restore $id --target-url '$(url bench_b)'")
fresh bench_c; jobs=$(seconds "$STOCKOPS restore $id --jobs 2 --target-url '$(url bench_c)'")
drill=$(seconds "$STOCKOPS drill $id")

echo "# database $size, backup $id"
printf '%-52s %9s %9s\n' what seconds "x base"
printf '%-52s %9.1f %9.2f\n' "age -d | zstd -d | pg_restore (baseline)" "$base" 1
printf '%-52s %9.1f %9.2f\n' "stockops restore (streamed, proven)" "$streamed" "$(echo "$streamed / $base" | bc -l)"
printf '%-52s %9.1f %9.2f\n' "stockops restore --jobs 2 (spooled, proven)" "$jobs" "$(echo "$jobs / $base" | bc -l)"
printf '%-52s %9.1f %9.2f\n' "stockops drill (x the streamed restore: $(printf %.2f "$(echo "$drill / $streamed" | bc -l)"))" "$drill" "$(echo "$drill / $base" | bc -l)"
for db in bench_src bench_a bench_b bench_c; do psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"; done
