#!/usr/bin/env bash
# A production simulation on this machine: a PostgreSQL 15 cluster of its own
# started with the hardened deploy/postgresql.conf and deploy/pg_hba.conf, a
# self-signed CA and server certificate made on the fly, pgaudit preloaded,
# the local S3 server of scripts/testenv.sh as the backup repository; then the
# full cycle as the real users run it:
#
#   the DBA (postgres OS user, peer over the Unix socket): provision, users, seed
#   the departments and partners (their own logins, SCRAM, TLS verify-full): api calls, reports
#   the backup job (stockops_backup, SCRAM over the socket): backup, verify, prune
#   the restore host (holds the age identity): a timed recovery drill
#   the DBA again: stockops doctor, which must report no high finding
#
# and proves that what the configuration forbids is refused: plain-text TCP,
# TLS below 1.3, a department login over the Unix socket.
#
#   scripts/prod-sim.sh [DIR]     default DIR /tmp/stockops-prodsim (wiped first)
#
# Environment: STOCKOPS_BIN (else cargo build, target/debug/stockops),
# SCALE (seed scale, default 0.1), STOCKOPS_PRODSIM_PORT (default 54340),
# STOCKOPS_PRODSIM_PREFIX (S3 prefix in the test bucket, default prodsim),
# KEEP=1 (leave the cluster running at the end). The S3 server comes from
# the STOCKOPS_TEST_S3_* variables when set, else from `scripts/testenv.sh up`.
# Run as root (the cluster then runs as the postgres OS user, since initdb
# refuses root) or as the postgres OS user.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DIR=${1:-${STOCKOPS_PRODSIM_DIR:-/tmp/stockops-prodsim}}
PORT=${STOCKOPS_PRODSIM_PORT:-54340}
SCALE=${SCALE:-0.1}
PREFIX=${STOCKOPS_PRODSIM_PREFIX:-prodsim}
KEEP=${KEEP:-0}
PG_BIN=/usr/lib/postgresql/15/bin
DB=inventory
RUN=$DIR/run
TLS=$DIR/tls
PGPASS=$DIR/secrets/pgpass
MARKER=.stockops-prodsim
START=$SECONDS

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '  %s\n' "$*"; }
die() { printf 'prod-sim: error: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" = 0 ]; then
    as_pg() { runuser -u postgres -- "$@"; }
    PG_OWNER=postgres:postgres
elif [ "$(id -un)" = postgres ]; then
    as_pg() { "$@"; }
    PG_OWNER=
else
    die "run as root or as the postgres OS user (the DBA's steps use peer authentication as postgres)"
fi

# ---------------------------------------------------------------------------
step "stockops binary and the local S3 server"
if [ -n "${STOCKOPS_BIN:-}" ]; then
    STOCKOPS=$STOCKOPS_BIN
else
    cargo build --quiet --bin stockops
    STOCKOPS=$ROOT/target/debug/stockops
fi
[ -x "$STOCKOPS" ] || die "no stockops binary at $STOCKOPS"
if [ -z "${STOCKOPS_TEST_S3_ENDPOINT:-}" ]; then
    ENV_FILE=$(scripts/testenv.sh up)
    set -a; . "$ENV_FILE"; set +a
fi
for v in STOCKOPS_TEST_S3_ENDPOINT STOCKOPS_TEST_S3_BUCKET STOCKOPS_TEST_S3_REGION \
         STOCKOPS_TEST_S3_ACCESS_KEY_ID STOCKOPS_TEST_S3_SECRET_ACCESS_KEY; do
    [ -n "${!v:-}" ] || die "$v is not set: source the env file of scripts/testenv.sh up"
done
[ -f /usr/share/postgresql/15/extension/pgaudit.control ] \
    || die "pgaudit is not installed: run scripts/testenv.sh up (it installs postgresql-15-pgaudit)"
say "stockops: $STOCKOPS"
say "S3: $STOCKOPS_TEST_S3_ENDPOINT, repository s3://$STOCKOPS_TEST_S3_BUCKET/$PREFIX"

# ---------------------------------------------------------------------------
step "a fresh directory: $DIR"
stop_cluster() {
    if [ -f "$DIR/data/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    fi
}
if [ -e "$DIR" ]; then
    [ -f "$DIR/$MARKER" ] || die "$DIR exists and was not made by this script; remove it or pick another"
    stop_cluster
    rm -rf "$DIR"
fi
mkdir -p "$DIR"
touch "$DIR/$MARKER"
chmod 755 "$DIR"
mkdir -p "$DIR/secrets" "$DIR/metrics" "$DIR/data" "$TLS" "$RUN" "$DIR/conf" "$DIR/log"
chmod 700 "$DIR/secrets" "$DIR/data"
if [ -n "$PG_OWNER" ]; then chown "$PG_OWNER" "$DIR/data" "$TLS" "$RUN" "$DIR/conf" "$DIR/log"; fi
# The DBA's steps run as postgres: the binary must be executable by it.
if ! as_pg test -x "$STOCKOPS"; then
    install -m 0755 "$STOCKOPS" "$DIR/stockops"
    STOCKOPS=$DIR/stockops
fi

cleanup() {
    local status=$?
    if [ "$KEEP" = 1 ]; then
        printf '\nprod-sim: KEEP=1: the cluster is still running on localhost:%s (socket %s); stop it with\n' "$PORT" "$RUN"
        printf '  runuser -u postgres -- %s/pg_ctl -D %s/data stop\n' "$PG_BIN" "$DIR"
    else
        stop_cluster
    fi
    if [ "$status" != 0 ]; then
        printf '\nprod-sim: FAILED after %ss; server log: %s/log/postgresql.log\n' "$((SECONDS - START))" "$DIR" >&2
        tail -n 15 "$DIR/log/postgresql.log" 2>/dev/null | sed 's/^/  | /' >&2 || true
    fi
}
trap cleanup EXIT

# ---------------------------------------------------------------------------
step "TLS: a throw-away CA and a server certificate for localhost (openssl)"
openssl req -x509 -new -nodes -days 2 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -subj "/CN=stockops prod-sim CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$DIR/secrets/ca.key" -out "$TLS/ca.crt" 2>/dev/null
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -subj "/CN=localhost" \
    -keyout "$TLS/server.key" -out "$DIR/secrets/server.csr" 2>/dev/null
openssl x509 -req -days 2 -in "$DIR/secrets/server.csr" -CA "$TLS/ca.crt" -CAkey "$DIR/secrets/ca.key" \
    -CAcreateserial -CAserial "$DIR/secrets/ca.srl" -out "$TLS/server.crt" 2>/dev/null \
    -extfile <(printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1")
chmod 0600 "$TLS/server.key"
chmod 0644 "$TLS/server.crt" "$TLS/ca.crt"
if [ -n "$PG_OWNER" ]; then chown "$PG_OWNER" "$TLS/server.key" "$TLS/server.crt"; fi
openssl verify -CAfile "$TLS/ca.crt" "$TLS/server.crt" | sed 's/^/  /'
say "server key $(stat -c '%a %U' "$TLS/server.key"), CA key kept in $DIR/secrets (never on the server)"

# ---------------------------------------------------------------------------
step "PostgreSQL 15 with deploy/postgresql.conf and deploy/pg_hba.conf (port $PORT)"
as_pg "$PG_BIN/initdb" -D "$DIR/data" -U postgres --auth-local=peer --auth-host=reject \
    --data-checksums --encoding=UTF8 --locale=C.UTF-8 >/dev/null
install -m 0640 ${PG_OWNER:+-o postgres -g postgres} deploy/postgresql.conf "$DIR/conf/stockops.conf"
install -m 0640 ${PG_OWNER:+-o postgres -g postgres} deploy/pg_hba.conf "$DIR/conf/pg_hba.conf"
as_pg tee -a "$DIR/data/postgresql.conf" >/dev/null <<EOF

# --- stockops prod-sim ---
# The hardened settings, unchanged (deploy/postgresql.conf):
include '$DIR/conf/stockops.conf'
# This host's values, after the include: port, socket, certificate paths, pg_hba.
port = $PORT
unix_socket_directories = '$RUN'
ssl_cert_file = '$TLS/server.crt'
ssl_key_file = '$TLS/server.key'
hba_file = '$DIR/conf/pg_hba.conf'
EOF
as_pg "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log/postgresql.log" -w -t 60 start >/dev/null \
    || die "postgresql did not start"
psql_pg() { as_pg psql -X -q -At -v ON_ERROR_STOP=1 -h "$RUN" -p "$PORT" -U postgres "$@"; }
say "settings as the server sees them:"
psql_pg -d postgres -c "SELECT name || ' = ' || setting FROM pg_settings
    WHERE name IN ('ssl', 'ssl_min_protocol_version', 'password_encryption', 'shared_preload_libraries',
                   'pgaudit.log', 'log_connections', 'log_statement', 'listen_addresses',
                   'idle_in_transaction_session_timeout') ORDER BY name" | sed 's/^/    /'
bad=$(psql_pg -d postgres -c "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL")
[ "$bad" = 0 ] || die "pg_hba.conf has $bad line(s) in error (SELECT * FROM pg_hba_file_rules)"
say "pg_hba.conf: $(psql_pg -d postgres -c "SELECT count(*) FROM pg_hba_file_rules") rules, none in error; methods: $(psql_pg -d postgres -c "SELECT string_agg(DISTINCT auth_method, ', ') FROM pg_hba_file_rules")"

# Departments reach the server only with TLS: a stockops built without TLS
# support cannot serve them, so say so now rather than halfway through.
probe=$(env -u PGPASSFILE DATABASE_URL="postgres://postgres@localhost:$PORT/postgres?sslmode=verify-full&sslrootcert=$TLS/ca.crt" \
    STOCKOPS_LOG=error "$STOCKOPS" provision --check 2>&1 || true)
if grep -q "without TLS support" <<<"$probe"; then
    die "$STOCKOPS cannot connect with TLS (sqlx was built without a TLS feature), and this server admits TCP clients over TLS only: build stockops with sqlx's TLS support (e.g. feature tls-rustls-ring-webpki)"
fi
grep -q 'pg_hba.conf rejects connection' <<<"$probe" || die "the postgres superuser over TCP was not refused as expected: $probe"
say "refused: the postgres superuser over TCP, even with TLS (it connects by peer over the socket only)"

# ---------------------------------------------------------------------------
step "the DBA: stockops provision (as postgres, peer over the Unix socket)"
psql_pg -d postgres -c "CREATE DATABASE $DB"
ADMIN_URL="postgres://postgres@localhost:$PORT/$DB?host=$RUN"
dba() { as_pg env DATABASE_URL="$ADMIN_URL" STOCKOPS_LOG=warn "$STOCKOPS" "$@"; }
dba provision | tail -n 3 | sed 's/^/  /'
dba provision --check | sed 's/^/  /'

# ---------------------------------------------------------------------------
step "the DBA: stockops users add (passwords on stdin, kept in a 0600 PGPASSFILE)"
install -m 0600 /dev/null "$PGPASS"
add_login() {
    local name=$1 group=$2 password; shift 2
    password=$(openssl rand -base64 30 | tr -d '/+=\n')
    printf '%s\n' "$password" | dba users add "$name" --role "$group" --password-stdin "$@" >/dev/null
    printf 'localhost:%s:%s:%s:%s\n' "$PORT" "$DB" "$name" "$password" >>"$PGPASS"
    say "$name ($group${*:+ $*})"
}
for dept in stock sales purchasing reporting audit; do add_login "sim_$dept" "dept_$dept"; done
add_login sim_etl etl
# The backup role is declared (roles/roles.toml); it only needs a password. It
# connects over the socket, so its PGPASSFILE line names the socket directory.
BACKUP_PW=$(openssl rand -base64 30 | tr -d '/+=\n')
printf '%s\n' "$BACKUP_PW" | dba users rotate-password stockops_backup --password-stdin >/dev/null
printf '%s:%s:%s:stockops_backup:%s\n' "$RUN" "$PORT" "$DB" "$BACKUP_PW" >>"$PGPASS"
printf 'localhost:%s:%s:stockops_backup:%s\n' "$PORT" "$DB" "$BACKUP_PW" >>"$PGPASS"
unset BACKUP_PW
say "stockops_backup (password rotated)"
# No role setting for the backup login: its snapshot transaction lifts the
# server's idle-in-transaction timeout for itself.
say "PGPASSFILE $PGPASS, mode $(stat -c %a "$PGPASS")"

# ---------------------------------------------------------------------------
step "the DBA: stockops seed --scale $SCALE"
dba seed --scale "$SCALE" | sed 's/^/  /'
add_login sim_reseller reseller --reseller RES-0001
add_login sim_supplier supplier --supplier SUP-001
dba provision --check | sed 's/^/  /'

# ---------------------------------------------------------------------------
step "the departments and partners, over TLS (sslmode=verify-full, own CA) with SCRAM"
tls_url() { echo "postgres://$1@localhost:$PORT/$DB?sslmode=verify-full&sslrootcert=$TLS/ca.crt"; }
as_login() {
    local user=$1; shift
    env -u PGHOST -u PGUSER -u PGSSLMODE PGPASSFILE="$PGPASS" DATABASE_URL="$(tls_url "$user")" STOCKOPS_LOG=warn "$@"
}
login_psql() {
    local user=$1; shift
    env PGPASSFILE="$PGPASS" psql -X -At -v ON_ERROR_STOP=1 "$(tls_url "$user")" "$@"
}
# Each answer is taken first, then printed, so a failed call stops the script.
session=$(login_psql sim_reporting -c "SELECT format('%s (member of %s), %s, %s', current_user,
    (SELECT string_agg(b.rolname, ',') FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid
      WHERE m.member = current_user::regrole), s.version, s.cipher)
    FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid() AND s.ssl")
[ -n "$session" ] || die "sim_reporting's session is not encrypted"
say "session: $session"
SKU=$(psql_pg -d "$DB" -c "SELECT p.sku FROM inventory.stock_levels l JOIN inventory.products p USING (product_id)
      JOIN inventory.warehouses w USING (warehouse_id) WHERE w.code = 'WH-PAR' AND l.on_hand - l.reserved >= 10
      ORDER BY p.sku LIMIT 1")
[ -n "$SKU" ] || die "the seed left no SKU with stock at WH-PAR"
out=$(as_login sim_stock "$STOCKOPS" call receive_stock --arg sku="$SKU" --arg warehouse=WH-PAR --arg quantity=12)
say "sim_stock receives 12 x $SKU: movement $out"
out=$(as_login sim_sales "$STOCKOPS" call record_sale --arg reseller=RES-0002 --arg sku="$SKU" --arg warehouse=WH-PAR --arg quantity=2)
say "sim_sales sells 2 to RES-0002: order $out"
PO=$(as_login sim_purchasing "$STOCKOPS" call create_purchase_order --arg supplier=SUP-001 --arg warehouse=WH-PAR \
    --arg lines="[{\"sku\": \"$SKU\", \"quantity\": 30}]")
out=$(as_login sim_purchasing "$STOCKOPS" call send_purchase_order --arg po_number="$PO")
say "sim_purchasing drafts $PO and sends it: expected $out"
out=$(as_login sim_reseller "$STOCKOPS" call submit_order --arg warehouse=WH-PAR \
    --arg lines="[{\"sku\": \"$SKU\", \"quantity\": 1}]" --arg reference=PRODSIM)
say "sim_reseller submits an order: $out"
out=$(as_login sim_supplier "$STOCKOPS" call my_purchase_orders --format csv | wc -l)
say "sim_supplier: api.my_purchase_orders returns $((out - 1)) row(s), its own only (forced row-level security)"
out=$(login_psql sim_sales -c "SELECT api.record_sale(p_reseller => 'RES-0003', p_sku => '$SKU', p_warehouse => 'WH-PAR', p_quantity => 1)")
say "sim_sales through libpq, as a department's own tool would: order $out"
say "sim_reporting: stockops report stock --status low --limit 5"
out=$(as_login sim_reporting "$STOCKOPS" report stock --status low --limit 5)
sed 's/^/    /' <<<"$out"
out=$(as_login sim_audit "$STOCKOPS" audit verify)
say "sim_audit: $(tail -n 1 <<<"$out")"
as_login sim_etl "$STOCKOPS" export stock --csv "$DIR/stock.csv"
say "sim_etl: stockops export stock, $(($(wc -l <"$DIR/stock.csv") - 1)) products in $DIR/stock.csv"

# ---------------------------------------------------------------------------
step "what the configuration refuses"
refused() {
    local what=$1 expect=$2 out; shift 2
    if out=$("$@" 2>&1); then die "$what was accepted: $out"; fi
    grep -q -- "$expect" <<<"$out" || die "$what failed, but not as expected ($expect): $out"
    say "refused: $what ($(grep -o -m1 -- "$expect.*" <<<"$out" | cut -c1-90))"
}
refused "sim_sales over TCP without TLS (sslmode=disable)" "no encryption" \
    env PGPASSFILE="$PGPASS" psql -X -At "postgres://sim_sales@localhost:$PORT/$DB?sslmode=disable" -c "SELECT 1"
refused "stockops as sim_sales over TCP without TLS" "no encryption" \
    env PGPASSFILE="$PGPASS" DATABASE_URL="postgres://sim_sales@localhost:$PORT/$DB?sslmode=disable" \
    "$STOCKOPS" call stock_status --arg sku="$SKU"
refused "sim_sales with TLS 1.2 at most" "protocol version" \
    env PGPASSFILE="$PGPASS" PGSSLMAXPROTOCOLVERSION=TLSv1.2 psql -X -At "$(tls_url sim_sales)" -c "SELECT 1"
refused "sim_sales over the Unix socket" "pg_hba.conf rejects connection" \
    env PGPASSFILE="$PGPASS" psql -X -At -h "$RUN" -p "$PORT" -U sim_sales -d "$DB" -c "SELECT 1"
refused "sim_sales with a wrong password" "password authentication failed" \
    env PGPASSWORD=not-the-password psql -X -At "$(tls_url sim_sales)" -c "SELECT 1"
refused "sim_sales reading a table" "permission denied" login_psql sim_sales -c "SELECT count(*) FROM inventory.products"

# ---------------------------------------------------------------------------
step "the backup job: stockops backup (as stockops_backup, SCRAM over the socket)"
# The files the systemd units hand the jobs as credentials (deploy/README.md, step 6):
# the S3 endpoint in an AWS profile file, the keys in a 0600 credentials file.
KEYS=$DIR/secrets/keys
mkdir -p "$KEYS"
age-keygen -o "$KEYS/identity.txt" 2>/dev/null
age-keygen -y "$KEYS/identity.txt" >"$KEYS/recipients.txt"
printf '[default]\nregion = %s\nendpoint_url = %s\n' "$STOCKOPS_TEST_S3_REGION" "$STOCKOPS_TEST_S3_ENDPOINT" \
    >"$DIR/secrets/aws-config"
install -m 0600 /dev/null "$DIR/secrets/aws-credentials"
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
    "$STOCKOPS_TEST_S3_ACCESS_KEY_ID" "$STOCKOPS_TEST_S3_SECRET_ACCESS_KEY" >"$DIR/secrets/aws-credentials"
REPO="s3://$STOCKOPS_TEST_S3_BUCKET/$PREFIX"
# A job as its systemd unit runs it: settings and credential files, JSON logs.
job() {
    env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_ENDPOINT_URL -u AWS_REGION -u AWS_PROFILE \
        AWS_CONFIG_FILE="$DIR/secrets/aws-config" AWS_SHARED_CREDENTIALS_FILE="$DIR/secrets/aws-credentials" \
        STOCKOPS_REPO="$REPO" STOCKOPS_S3_PATH_STYLE=true STOCKOPS_LOG=info "$STOCKOPS" --log-format json "$@"
}
backup_job() {
    PGPASSFILE="$PGPASS" DATABASE_URL="postgres://stockops_backup@localhost:$PORT/$DB?host=$RUN" \
        STOCKOPS_AGE_RECIPIENTS="$KEYS/recipients.txt" job "$@"
}
backup_job backup --json --metrics-file "$DIR/metrics/stockops_backup.prom" >"$DIR/backup.json" 2>"$DIR/log/backup.jsonl" \
    || { cat "$DIR/log/backup.jsonl" >&2; die "backup failed"; }
BACKUP_ID=$(sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' "$DIR/backup.json" | head -n1)
say "backup $BACKUP_ID into $REPO: $(wc -l <"$DIR/log/backup.jsonl") JSON log lines in $DIR/log/backup.jsonl"
backup_job backups verify latest --metrics-file "$DIR/metrics/stockops_verify.prom" 2>>"$DIR/log/jobs.jsonl" | sed 's/^/  /'
backup_job backups prune --keep-last 3 --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --grace-hours 1 \
    --metrics-file "$DIR/metrics/stockops_prune.prom" 2>>"$DIR/log/jobs.jsonl" | sed 's/^/  /'
for f in "$DIR"/metrics/*.prom; do
    say "metrics: $(grep -c '^stockops_' "$f") series in $f"
done

# ---------------------------------------------------------------------------
step "the restore host: stockops drill latest (holds the age identity)"
STOCKOPS_AGE_IDENTITY="$KEYS/identity.txt" job drill latest --max-rto 600 --max-rpo 3600 \
    --metrics-file "$DIR/metrics/stockops_drill.prom" 2>>"$DIR/log/jobs.jsonl" | sed 's/^/  /'

# ---------------------------------------------------------------------------
step "the server log: pgaudit, connections, and no password"
SERVER_LOG=$DIR/log/postgresql.log
audited=$(grep -c 'AUDIT: SESSION,[0-9]*,[0-9]*,\(DDL\|ROLE\),' "$SERVER_LOG" || true)
[ "$audited" -gt 0 ] || die "pgaudit logged no DDL or ROLE statement"
say "pgaudit: $audited DDL/ROLE audit records (provision, users), e.g."
grep -m1 'AUDIT: SESSION,[0-9]*,[0-9]*,ROLE,CREATE ROLE' "$SERVER_LOG" | cut -c1-160 | sed 's/^/    /'
tls_logins=$(grep -c 'connection authorized: .*SSL enabled (protocol=TLSv1.3' "$SERVER_LOG" || true)
say "connections: $tls_logins TLS 1.3 logins logged with user, database and client address"
while IFS=: read -r _ _ _ user password; do
    if grep -qF -- "$password" "$SERVER_LOG"; then die "the password of $user is in the server log"; fi
done <"$PGPASS"
say "no login's password appears in the server log (stockops sends SCRAM verifiers)"

# ---------------------------------------------------------------------------
step "the DBA: stockops doctor (as postgres, over the socket, repository configured)"
set +e
as_pg env DATABASE_URL="$ADMIN_URL" STOCKOPS_LOG=warn STOCKOPS_REPO="$REPO" STOCKOPS_S3_PATH_STYLE=true \
    AWS_ENDPOINT_URL="$STOCKOPS_TEST_S3_ENDPOINT" AWS_REGION="$STOCKOPS_TEST_S3_REGION" \
    AWS_ACCESS_KEY_ID="$STOCKOPS_TEST_S3_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$STOCKOPS_TEST_S3_SECRET_ACCESS_KEY" \
    "$STOCKOPS" doctor --max-backup-age-hours 26 --max-drill-age-days 8 --allow-superuser postgres \
    >"$DIR/doctor.txt" 2>"$DIR/log/doctor.err"
doctor=$?
set -e
sed 's/^/  /' "$DIR/doctor.txt"
sed 's/^/  /' "$DIR/log/doctor.err" >&2
[ "$doctor" = 0 ] || die "stockops doctor exited $doctor: the hardened server has a high finding (see above)"
say "doctor: no high finding"

step "done in $((SECONDS - START))s"
