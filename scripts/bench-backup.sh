#!/usr/bin/env bash
# Backup benchmark: stockops backup against its baselines, measured in the
# same run, at one or more database sizes (seed scales).
#
#   scripts/bench-backup.sh [SCALE ...]        default: 6 10 (about 1.0 and 1.75 GB)
#
# For each size it seeds a scratch database on the test cluster, then times:
#   floor      pg_dump -Fc -Z0 > /dev/null
#   pg_dump -Fc                       (its default compression; the size to beat)
#   shell      pg_dump -Fc -Z0 | zstd -3 -T0 | age -R recipients > file
#   stockops   stockops backup to file:// and to the local S3 server (Garage)
#   pgbackrest full backup (zst, 2 processes), when pgbackrest is installed
# and prints wall time / floor, stored size / pg_dump -Fc's, and peak RSS of
# the process doing the work (GNU time). Goals: wall <= 1.05 x floor and size
# <= pg_dump -Fc together; peak RSS <= 64 MiB at any size.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALES=("${@:-6 10}")
read -r -a SCALES <<<"${SCALES[*]}"

ENV_FILE=$(scripts/testenv.sh up)
set -a; . "$ENV_FILE"; set +a
# The dev profile builds dependencies (zstd, age, the AWS SDK) at opt-level 2:
# the stream stages run at full speed without a second, release build.
cargo build --quiet --bin stockops
STOCKOPS=$PWD/target/debug/stockops
WORK=${STOCKOPS_BENCH_DIR:-/tmp/stockops-bench}
rm -rf "$WORK"; mkdir -p "$WORK"
age-keygen -o "$WORK/identity.txt" 2>/dev/null
age-keygen -y "$WORK/identity.txt" >"$WORK/recipients.txt"
SOCKET=${STOCKOPS_TEST_ADMIN_URL#*host=}
PGBIN=/usr/lib/postgresql/15/bin
export PGHOST=$SOCKET PGPORT=$STOCKOPS_TEST_PG_PORT PGUSER=postgres
export AWS_ENDPOINT_URL=$STOCKOPS_TEST_S3_ENDPOINT AWS_REGION=$STOCKOPS_TEST_S3_REGION
export AWS_ACCESS_KEY_ID=$STOCKOPS_TEST_S3_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$STOCKOPS_TEST_S3_SECRET_ACCESS_KEY
export STOCKOPS_AGE_RECIPIENTS=$WORK/recipients.txt STOCKOPS_LOG=warn

# run NAME COMMAND...: prints "seconds peak_rss_kib" of COMMAND (a shell line)
measure() {
    /usr/bin/time -f "%e %M" -o "$WORK/time" bash -c "$1" >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; return 1; }
    cat "$WORK/time"
}

printf '%-8s %-34s %10s %8s %12s %8s %10s\n' scale what seconds "x floor" "stored MB" "x -Fc" "peak RSS"
for scale in "${SCALES[@]}"; do
    db=stockops_bench_s${scale/./_}
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
    export DATABASE_URL="postgres://postgres@localhost:$PGPORT/$db?host=$SOCKET"
    "$STOCKOPS" provision >/dev/null
    "$STOCKOPS" seed --scale "$scale" --as-of 2026-11-01 >/dev/null
    size=$(psql -X -At -d "$db" -c "SELECT pg_size_pretty(pg_database_size(current_database()))")
    export PGDATABASE=$db

    read -r floor_s floor_rss < <(measure "$PGBIN/pg_dump -Fc -Z0 > /dev/null")
    read -r fc_s fc_rss < <(measure "$PGBIN/pg_dump -Fc > $WORK/fc.dump")
    fc_bytes=$(stat -c %s "$WORK/fc.dump"); rm -f "$WORK/fc.dump"
    read -r sh_s sh_rss < <(measure "$PGBIN/pg_dump -Fc -Z0 | zstd -3 -T0 -q | age -R $WORK/recipients.txt > $WORK/shell.age")
    sh_bytes=$(stat -c %s "$WORK/shell.age"); rm -f "$WORK/shell.age"
    read -r file_s file_rss < <(measure "STOCKOPS_REPO=file://$WORK/repo $STOCKOPS backup")
    file_bytes=$(du -sb "$WORK/repo" | cut -f1); rm -rf "$WORK/repo"
    read -r mt_s mt_rss < <(measure "STOCKOPS_REPO=file://$WORK/repo $STOCKOPS backup --zstd-workers 2")
    mt_bytes=$(du -sb "$WORK/repo" | cut -f1); rm -rf "$WORK/repo"
    read -r l6_s l6_rss < <(measure "STOCKOPS_REPO=file://$WORK/repo $STOCKOPS backup --zstd-level 6 --zstd-workers 2")
    l6_bytes=$(du -sb "$WORK/repo" | cut -f1); rm -rf "$WORK/repo"
    read -r s3_s s3_rss < <(measure "STOCKOPS_REPO=s3://$STOCKOPS_TEST_S3_BUCKET/bench-$scale STOCKOPS_S3_PATH_STYLE=true $STOCKOPS backup --json > $WORK/s3.json")
    s3_bytes=$(sed -n 's/.*"bytes_stored": \([0-9]*\).*/\1/p' "$WORK/s3.json")

    row() { # what seconds bytes rss
        printf '%-8s %-34s %10.1f %8.2f %12.1f %8.2f %7d MiB\n' "$scale" "$1" "$2" "$(echo "$2 / $floor_s" | bc -l)" \
            "$(echo "$3 / 1000000" | bc -l)" "$(echo "$3 / $fc_bytes" | bc -l)" "$(( $4 / 1024 ))"
    }
    echo "# scale $scale: database $size"
    printf '%-8s %-34s %10.1f %8.2f %12s %8s %7d MiB\n' "$scale" "pg_dump -Fc -Z0 > /dev/null (floor)" "$floor_s" 1 - - $((floor_rss / 1024))
    row "pg_dump -Fc" "$fc_s" "$fc_bytes" "$fc_rss"
    row "pg_dump -Z0 | zstd -3 -T0 | age" "$sh_s" "$sh_bytes" "$sh_rss"
    row "stockops backup (file://)" "$file_s" "$file_bytes" "$file_rss"
    row "  --zstd-workers 2" "$mt_s" "$mt_bytes" "$mt_rss"
    row "  --zstd-level 6 --zstd-workers 2" "$l6_s" "$l6_bytes" "$l6_rss"
    row "stockops backup (Garage S3)" "$s3_s" "$s3_bytes" "$s3_rss"
    if command -v pgbackrest >/dev/null; then
        echo "# pgbackrest is installed but its stanza setup is not automated here yet"
    else
        echo "# pgbackrest: not installed (apt-get install pgbackrest), not measured"
    fi
    unset PGDATABASE
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
done
