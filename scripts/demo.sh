#!/usr/bin/env bash
# The main job end to end on local defaults: servers, provision, seed, one
# login per department and partner, and the stock report as the reporting
# department. Usage: scripts/demo.sh [SCALE]
#
# Without DATABASE_URL it starts the local test servers (scripts/testenv.sh)
# and works in a database of its own, stockops_demo, recreated on each run.
# With DATABASE_URL it provisions and seeds that database (seed refuses one
# that already has data) and never drops anything.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-1}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "build"
cargo build --quiet --bin stockops
STOCKOPS=$PWD/target/debug/stockops

DEMO_DIR=${STOCKOPS_DEMO_DIR:-/tmp/stockops-demo}
mkdir -p "$DEMO_DIR"
chmod 700 "$DEMO_DIR"

if [ -z "${DATABASE_URL:-}" ]; then
    step "local servers (scripts/testenv.sh up)"
    ENV_FILE=$(scripts/testenv.sh up)
    set -a; . "$ENV_FILE"; set +a
    ADMIN_URL=${STOCKOPS_TEST_ADMIN_URL/\/postgres\?//stockops_demo?}
    SOCKET=${STOCKOPS_TEST_ADMIN_URL#*host=}
    psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h "$SOCKET" -p "$STOCKOPS_TEST_PG_PORT" -U postgres "$@"; }
    psql_admin -d postgres -c "DROP DATABASE IF EXISTS stockops_demo WITH (FORCE)" -c "CREATE DATABASE stockops_demo"
    for u in demo_stock demo_sales demo_purchasing demo_reporting demo_audit demo_reseller demo_supplier; do
        psql_admin -d postgres -c "DROP ROLE IF EXISTS $u"
    done
    export DATABASE_URL=$ADMIN_URL
    LOGIN_HOST=$STOCKOPS_TEST_PG_HOST
    LOGIN_PORT=$STOCKOPS_TEST_PG_PORT
    LOGIN_DB=stockops_demo
else
    LOGIN_HOST=$(psql -X -At "$DATABASE_URL" -c "SELECT coalesce(inet_server_addr()::text, 'localhost')" | sed 's|/.*||')
    LOGIN_PORT=$(psql -X -At "$DATABASE_URL" -c "SELECT current_setting('port')")
    LOGIN_DB=$(psql -X -At "$DATABASE_URL" -c "SELECT current_database()")
fi

step "stockops provision"
"$STOCKOPS" provision
"$STOCKOPS" provision --check

step "stockops seed --scale $SCALE"
"$STOCKOPS" seed --scale "$SCALE"

step "stockops users add (one login per department and partner)"
PGPASS=$DEMO_DIR/pgpass
: >"$PGPASS"
chmod 600 "$PGPASS"
add_user() {
    local name=$1 group=$2; shift 2
    local out password
    if out=$("$STOCKOPS" users add "$name" --role "$group" "$@" --json 2>/dev/null); then
        password=$(sed -n 's/.*"password":"\([^"]*\)".*/\1/p' <<<"$out")
    else
        out=$("$STOCKOPS" users rotate-password "$name")
        password=$(sed -n 's/^password (shown once, store it now): //p' <<<"$out")
    fi
    echo "$LOGIN_HOST:$LOGIN_PORT:$LOGIN_DB:$name:$password" >>"$PGPASS"
    echo "  $name ($group${*:+ $*})"
}
add_user demo_stock dept_stock
add_user demo_sales dept_sales
add_user demo_purchasing dept_purchasing
add_user demo_reporting dept_reporting
add_user demo_audit dept_audit
add_user demo_reseller reseller --reseller RES-0001
add_user demo_supplier supplier --supplier SUP-001
echo "  passwords are in $PGPASS (mode 600), for PGPASSFILE"
"$STOCKOPS" users list

as_login() {
    local user=$1; shift
    PGPASSFILE=$PGPASS DATABASE_URL="postgres://$user@$LOGIN_HOST:$LOGIN_PORT/$LOGIN_DB" "$@"
}

step "stockops report stock --status low (as demo_reporting)"
as_login demo_reporting "$STOCKOPS" report stock --status low --limit 15

step "least privilege, seen from the logins"
as_login demo_sales psql -X -At "postgres://demo_sales@$LOGIN_HOST:$LOGIN_PORT/$LOGIN_DB" \
    -c "SELECT count(*) FROM inventory.products" 2>&1 | head -1 | sed 's/^/  demo_sales reads a table: /' || true
as_login demo_reseller psql -X -At "postgres://demo_reseller@$LOGIN_HOST:$LOGIN_PORT/$LOGIN_DB" \
    -c "SELECT 'demo_reseller sees ' || count(*) || ' orders, all of RES-0001: ' || bool_and(r.code = 'RES-0001')
          FROM inventory.sales_orders o JOIN inventory.resellers r USING (reseller_id)" | sed 's/^/  /'
echo "  the whole database holds $(psql -X -At "$DATABASE_URL" -c "SELECT count(*) FROM inventory.sales_orders") orders"

step "done"
echo "database: $LOGIN_DB on $LOGIN_HOST:$LOGIN_PORT; try: PGPASSFILE=$PGPASS DATABASE_URL=postgres://demo_reporting@$LOGIN_HOST:$LOGIN_PORT/$LOGIN_DB $STOCKOPS report stock --format csv"
