#!/usr/bin/env bash
# The main job end to end on local defaults: servers, provision, seed, one
# login per department and partner, the departments calling the audited
# api, reports, the audit log verified, and an encrypted backup taken to the
# local S3 server, listed, verified and restored in a timed recovery drill. Usage: scripts/demo.sh [SCALE]
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
    for u in demo_stock demo_sales demo_purchasing demo_reporting demo_audit demo_etl demo_reseller demo_supplier; do
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
add_user demo_etl etl
add_user demo_reseller reseller --reseller RES-0001
add_user demo_supplier supplier --supplier SUP-001
echo "  passwords are in $PGPASS (mode 600), for PGPASSFILE"
"$STOCKOPS" users list

as_login() {
    local user=$1; shift
    PGPASSFILE=$PGPASS DATABASE_URL="postgres://$user@$LOGIN_HOST:$LOGIN_PORT/$LOGIN_DB" "$@"
}

SKU=$(psql -X -At "$DATABASE_URL" -c "SELECT p.sku FROM inventory.stock_levels l JOIN inventory.products p USING (product_id)
      JOIN inventory.warehouses w USING (warehouse_id) WHERE w.code = 'WH-PAR' AND l.on_hand - l.reserved >= 10 ORDER BY p.sku LIMIT 1")

step "the departments at work, through the audited api (stockops call)"
echo "  demo_stock receives 24 x $SKU at WH-PAR: movement $(as_login demo_stock "$STOCKOPS" call receive_stock --arg sku="$SKU" --arg warehouse=WH-PAR --arg quantity=24)"
echo "  demo_stock writes off 1 broken unit: movement $(as_login demo_stock "$STOCKOPS" call adjust_stock --arg sku="$SKU" --arg warehouse=WH-PAR --arg delta=-1 --arg reason='dropped on delivery')"
echo "  demo_sales sells 3 to RES-0002: sales order $(as_login demo_sales "$STOCKOPS" call record_sale --arg reseller=RES-0002 --arg sku="$SKU" --arg warehouse=WH-PAR --arg quantity=3)"
PO=$(as_login demo_purchasing "$STOCKOPS" call create_purchase_order --arg supplier=SUP-001 --arg warehouse=WH-PAR \
      --arg lines="[{\"sku\": \"$SKU\", \"quantity\": 40}]")
echo "  demo_purchasing drafts $PO and sends it: expected $(as_login demo_purchasing "$STOCKOPS" call send_purchase_order --arg po_number="$PO")"
echo "  demo_reseller submits an order: $(as_login demo_reseller "$STOCKOPS" call submit_order --arg warehouse=WH-PAR \
      --arg lines="[{\"sku\": \"$SKU\", \"quantity\": 2}]" --arg reference=WEEK-47)"
echo "  demo_sales tries more than there is:"
as_login demo_sales "$STOCKOPS" call record_sale --arg reseller=RES-0002 --arg sku="$SKU" --arg warehouse=WH-PAR \
    --arg quantity=100000 2>&1 | sed 's/^/    /' || true
echo "  demo_stock tries to record a sale:"
as_login demo_stock "$STOCKOPS" call record_sale --arg reseller=RES-0002 --arg sku="$SKU" --arg warehouse=WH-PAR \
    --arg quantity=1 2>&1 | sed 's/^/    /' || true

step "stockops import orders: a reseller's messy weekly file (as demo_etl)"
# Latin-1, semicolons, CRLF, French headers, decimal commas, stray blanks, two
# date formats; a repeated line and one line of each common defect.
SKU2=$(psql -X -At "$DATABASE_URL" -c "SELECT p.sku FROM inventory.stock_levels l JOIN inventory.products p USING (product_id)
      JOIN inventory.warehouses w USING (warehouse_id) WHERE w.code = 'WH-PAR' AND l.on_hand - l.reserved >= 5
       AND p.sku <> '$SKU' ORDER BY p.sku LIMIT 1")
ORDERS=$DEMO_DIR/commandes_semaine_47.csv
{
    printf 'R\xe9f commande;Date commande;Revendeur;R\xe9f produit;Quantit\xe9;Prix unitaire\r\n'
    printf 'CMD-4701; 17/11/2025 ;RES-0002;%s;2;149,90\r\n' "$SKU"
    printf 'CMD-4701;17/11/2025;res-0002;%s;1;1 099,00\r\n' "$SKU2"
    printf 'CMD-4701;17/11/2025;RES-0002;%s;2;149,90\r\n' "$SKU"
    printf 'CMD-4702;2025-11-18;RES-0003;%s;0;149,90\r\n' "$SKU"
    printf 'CMD-4702;2025-11-18;RES-0003;%s;;149,90\r\n' "$SKU2"
    printf 'CMD-4703;31/11/2025;RES-0003;%s;1;149,90\r\n' "$SKU"
    printf 'CMD-4703;2025-11-19;RES-9999;%s;1;149,90\r\n' "$SKU"
    printf 'CMD-4703;2025-11-19;RES-0003;ZZZ-999999;1;149,90\r\n'
    printf 'CMD-4704;2025-11-19;RES-0003;%s;1;-5\r\n' "$SKU2"
} >"$ORDERS"
as_login demo_etl "$STOCKOPS" import orders --csv "$ORDERS" --warehouse WH-PAR
echo "  the rejects, each with its reason ($ORDERS.rejects.csv):"
sed 's/^/    /' "$ORDERS.rejects.csv"
echo "  the same file again:"
as_login demo_etl "$STOCKOPS" import orders --csv "$ORDERS" --warehouse WH-PAR | sed 's/^/    /'

step "stockops export stock (etat_stock_par_produit.csv, as demo_etl)"
as_login demo_etl "$STOCKOPS" export stock --csv "$DEMO_DIR/etat_stock_par_produit.csv"
head -4 "$DEMO_DIR/etat_stock_par_produit.csv" | sed 's/^/  /'

step "stockops report stock --status low (as demo_reporting)"
as_login demo_reporting "$STOCKOPS" report stock --status low --limit 10

step "stockops report reorder / margins (as demo_reporting)"
as_login demo_reporting "$STOCKOPS" report reorder --limit 8
as_login demo_reporting "$STOCKOPS" report margins --by category

step "stockops audit (as demo_audit)"
as_login demo_audit "$STOCKOPS" audit tail -n 6
as_login demo_audit "$STOCKOPS" audit verify

step "least privilege, seen from the logins"
as_login demo_sales psql -X -At "postgres://demo_sales@$LOGIN_HOST:$LOGIN_PORT/$LOGIN_DB" \
    -c "SELECT count(*) FROM inventory.products" 2>&1 | head -1 | sed 's/^/  demo_sales reads a table: /' || true
as_login demo_reseller psql -X -At "postgres://demo_reseller@$LOGIN_HOST:$LOGIN_PORT/$LOGIN_DB" \
    -c "SELECT 'demo_reseller sees ' || count(*) || ' orders, all of RES-0001: ' || bool_and(r.code = 'RES-0001')
          FROM inventory.sales_orders o JOIN inventory.resellers r USING (reseller_id)" | sed 's/^/  /'
echo "  the whole database holds $(psql -X -At "$DATABASE_URL" -c "SELECT count(*) FROM inventory.sales_orders") orders"

step "stockops backup (as stockops_backup, the least-privileged backup role)"
KEYS=$DEMO_DIR/keys
mkdir -p "$KEYS"
[ -f "$KEYS/identity.txt" ] || age-keygen -o "$KEYS/identity.txt" 2>/dev/null
age-keygen -y "$KEYS/identity.txt" >"$KEYS/recipients.txt"
echo "  backups are encrypted to $(cat "$KEYS/recipients.txt") (identity kept in $KEYS/identity.txt)"
out=$("$STOCKOPS" users rotate-password stockops_backup)
echo "$LOGIN_HOST:$LOGIN_PORT:$LOGIN_DB:stockops_backup:$(sed -n 's/^password (shown once, store it now): //p' <<<"$out")" >>"$PGPASS"
if [ -z "${STOCKOPS_REPO:-}" ]; then
    if [ -n "${STOCKOPS_TEST_S3_ENDPOINT:-}" ]; then
        export STOCKOPS_REPO=s3://$STOCKOPS_TEST_S3_BUCKET/demo STOCKOPS_S3_PATH_STYLE=true
        export AWS_ENDPOINT_URL=$STOCKOPS_TEST_S3_ENDPOINT AWS_REGION=$STOCKOPS_TEST_S3_REGION
        export AWS_ACCESS_KEY_ID=$STOCKOPS_TEST_S3_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$STOCKOPS_TEST_S3_SECRET_ACCESS_KEY
    else
        export STOCKOPS_REPO=file://$DEMO_DIR/repo
    fi
fi
export STOCKOPS_AGE_RECIPIENTS=$KEYS/recipients.txt
as_login stockops_backup "$STOCKOPS" backup
"$STOCKOPS" backups list
STOCKOPS_AGE_IDENTITY=$KEYS/identity.txt "$STOCKOPS" backups verify latest
"$STOCKOPS" backups prune --keep-last 3 --grace-hours 1 | sed 's/^/  /'

step "stockops drill (restore the backup into a scratch cluster, prove it, time it)"
STOCKOPS_AGE_IDENTITY=$KEYS/identity.txt "$STOCKOPS" drill --max-rto 600
"$STOCKOPS" drills list

step "done"
echo "database: $LOGIN_DB on $LOGIN_HOST:$LOGIN_PORT; try: PGPASSFILE=$PGPASS DATABASE_URL=postgres://demo_reporting@$LOGIN_HOST:$LOGIN_PORT/$LOGIN_DB $STOCKOPS report stock --format csv"
