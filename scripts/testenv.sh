#!/usr/bin/env bash
# The real servers stockops is tested and demonstrated against, as local
# processes: a scratch PostgreSQL 15 cluster (pgaudit preloaded), Garage (an
# S3-compatible object store) and moto's S3 server (for S3 Object Lock, which
# Garage does not implement), all on loopback.
#
#   scripts/testenv.sh up      install what is missing, start both, write the env file
#   scripts/testenv.sh down    stop both (data stays in $STOCKOPS_TESTENV_DIR)
#   scripts/testenv.sh env     print the env file path
#
# On Debian 12 as root it installs PostgreSQL 15, pgaudit, curl, age and zstd
# with apt-get, and Garage with `cargo install --locked garage@2.5.0` (about
# ten minutes on two cores, once). initdb and pg_ctl refuse to run as root, so
# the cluster runs as the postgres OS user.
set -euo pipefail

DIR=${STOCKOPS_TESTENV_DIR:-/tmp/stockops-testenv}
PG_PORT=${STOCKOPS_TEST_PG_PORT:-54329}
S3_PORT=${STOCKOPS_TEST_S3_PORT:-39000}
RPC_PORT=$((S3_PORT + 1))
MOTO_PORT=${STOCKOPS_TEST_MOTO_PORT:-39010}
ADMIN_PORT=$((S3_PORT + 3))
GARAGE_VERSION=2.5.0
PG_BIN=/usr/lib/postgresql/15/bin
ENV_FILE=$DIR/env

log() { printf 'testenv: %s\n' "$*" >&2; }
die() { printf 'testenv: error: %s\n' "$*" >&2; exit 1; }

as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

APT_UPDATED=
apt_install() {
    [ "$(id -u)" = 0 ] || die "missing $*; install them (as root: apt-get install -y $*)"
    if [ -z "$APT_UPDATED" ]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

install_packages() {
    local missing=()
    [ -x "$PG_BIN/postgres" ] || missing+=(postgresql-15)
    [ -f /usr/share/postgresql/15/extension/pgaudit.control ] || missing+=(postgresql-15-pgaudit)
    command -v curl >/dev/null || missing+=(curl)
    command -v age >/dev/null || missing+=(age)
    command -v zstd >/dev/null || missing+=(zstd)
    # The tests' own tools: certificates for the production simulation,
    # systemd-analyze for the units, perl for a throttled pg_dump, tar for
    # physical backups.
    command -v openssl >/dev/null || missing+=(openssl)
    command -v systemd-analyze >/dev/null || missing+=(systemd)
    command -v perl >/dev/null || missing+=(perl)
    command -v tar >/dev/null || missing+=(tar)
    if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

garage_bin() {
    if command -v garage >/dev/null; then command -v garage; return; fi
    if [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/garage" ]; then echo "${CARGO_HOME:-$HOME/.cargo}/bin/garage"; return; fi
    echo ""
}

install_garage() {
    local bin
    bin=$(garage_bin)
    if [ -n "$bin" ] && "$bin" --version 2>/dev/null | grep -qE "[v:]$GARAGE_VERSION( |$)"; then
        return
    fi
    log "building garage $GARAGE_VERSION with cargo install (about ten minutes on two cores, once)"
    cargo install --locked "garage@$GARAGE_VERSION" >&2
}

pg_start() {
    local data=$DIR/pg/data run=$DIR/pg/run
    mkdir -p "$DIR"
    chmod 755 "$DIR"
    if [ ! -f "$data/PG_VERSION" ]; then
        log "initdb $data"
        mkdir -p "$DIR/pg"
        [ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR/pg"
        as_pg mkdir -p "$run"
        as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
            --encoding=UTF8 --locale=C.UTF-8 >/dev/null
        as_pg tee -a "$data/postgresql.conf" >/dev/null <<EOF
# stockops test environment
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$run'
shared_preload_libraries = 'pgaudit'
password_encryption = 'scram-sha-256'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
EOF
    fi
    if as_pg "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        log "postgresql already running on 127.0.0.1:$PG_PORT"
    else
        log "starting postgresql on 127.0.0.1:$PG_PORT"
        as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$DIR/pg/log" -w -t 60 start >/dev/null \
            || { tail -20 "$DIR/pg/log" >&2; die "postgresql did not start"; }
    fi
    as_pg psql -h "$run" -p "$PG_PORT" -U postgres -d postgres -Atqc "SHOW shared_preload_libraries" \
        | grep -q pgaudit || die "pgaudit is not preloaded"
}

garage_start() {
    local g=$DIR/garage bin
    bin=$(garage_bin)
    mkdir -p "$g/meta" "$g/data"
    if [ ! -f "$g/garage.toml" ]; then
        cat >"$g/garage.toml" <<EOF
metadata_dir = "$g/meta"
data_dir = "$g/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$S3_PORT"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$ADMIN_PORT"
EOF
        echo "GK$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$g/key_id"
        head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$g/secret"
        chmod 600 "$g/secret" "$g/garage.toml"
    fi
    if [ -f "$g/pid" ] && kill -0 "$(cat "$g/pid")" 2>/dev/null; then
        log "garage already running on 127.0.0.1:$S3_PORT"
    else
        log "starting garage on 127.0.0.1:$S3_PORT"
        GARAGE_DEFAULT_ACCESS_KEY=$(cat "$g/key_id") \
        GARAGE_DEFAULT_SECRET_KEY=$(cat "$g/secret") \
        GARAGE_DEFAULT_BUCKET=stockops-test \
        RUST_LOG=warn \
            nohup "$bin" -c "$g/garage.toml" server --single-node --default-bucket >"$g/log" 2>&1 &
        echo $! >"$g/pid"
    fi
    # Healthy when a signed PUT and GET round-trip (bounded wait).
    local i
    for i in $(seq 1 100); do
        if s3_roundtrip 2>/dev/null; then log "garage healthy after ${i} probe(s)"; return; fi
        kill -0 "$(cat "$g/pid")" 2>/dev/null || { tail -20 "$g/log" >&2; die "garage exited"; }
        sleep 0.1
    done
    tail -20 "$g/log" >&2
    die "garage did not answer a signed PUT/GET within 10 s"
}

s3_roundtrip() {
    local g=$DIR/garage url="http://127.0.0.1:$S3_PORT/stockops-test/testenv-probe"
    local user
    user="$(cat "$g/key_id"):$(cat "$g/secret")"
    local sign=(--aws-sigv4 "aws:amz:garage:s3" --user "$user" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
    curl -sf "${sign[@]}" -X PUT --data-binary "probe" "$url" >/dev/null
    [ "$(curl -sf "${sign[@]}" "$url")" = probe ]
}

# moto's S3 server, for S3 Object Lock (Garage ignores lock headers): in its
# IAM mode, so requests are authenticated and signatures checked.
moto_start() {
    local m=$DIR/moto
    mkdir -p "$m"
    if [ ! -x "$m/venv/bin/moto_server" ]; then
        # Debian's own Python needs python3-venv for `python3 -m venv`.
        python3 -m venv --help >/dev/null 2>&1 || apt_install python3 python3-venv
        log "installing moto[server] from PyPI into $m/venv"
        python3 -m venv "$m/venv" >&2
        "$m/venv/bin/pip" install -q 'moto[server]' >&2
    fi
    if [ -f "$m/pid" ] && kill -0 "$(cat "$m/pid")" 2>/dev/null && [ -s "$m/credentials" ]; then
        log "moto already running on 127.0.0.1:$MOTO_PORT"
        return
    fi
    [ -f "$m/pid" ] && kill "$(cat "$m/pid")" 2>/dev/null || true
    log "starting moto on 127.0.0.1:$MOTO_PORT"
    INITIAL_NO_AUTH_ACTION_COUNT=4 nohup "$m/venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$m/log" 2>&1 &
    echo $! >"$m/pid"
    local i
    for i in $(seq 1 100); do
        # A bare TCP connect: an HTTP probe would use up one of the unauthenticated actions.
        (exec 3<>"/dev/tcp/127.0.0.1/$MOTO_PORT") 2>/dev/null && break
        kill -0 "$(cat "$m/pid")" 2>/dev/null || { tail -20 "$m/log" >&2; die "moto exited"; }
        sleep 0.1
    done
    "$m/venv/bin/python" "$(dirname "$0")/moto-setup.py" "http://127.0.0.1:$MOTO_PORT" stockops-lock >"$m/credentials" \
        || { tail -20 "$m/log" >&2; die "moto setup failed"; }
    chmod 600 "$m/credentials"
}

write_env() {
    local g=$DIR/garage
    cat >"$ENV_FILE" <<EOF
# written by scripts/testenv.sh; source it
export STOCKOPS_TEST_ADMIN_URL='postgres://postgres@localhost:$PG_PORT/postgres?host=$DIR/pg/run'
export STOCKOPS_TEST_PG_HOST=127.0.0.1
export STOCKOPS_TEST_PG_PORT=$PG_PORT
export STOCKOPS_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export STOCKOPS_TEST_S3_BUCKET=stockops-test
export STOCKOPS_TEST_S3_REGION=garage
export STOCKOPS_TEST_S3_ACCESS_KEY_ID=$(cat "$g/key_id")
export STOCKOPS_TEST_S3_SECRET_ACCESS_KEY=$(cat "$g/secret")
export STOCKOPS_TEST_MOTO_ENDPOINT=http://127.0.0.1:$MOTO_PORT
export STOCKOPS_TEST_MOTO_BUCKET=stockops-lock
export STOCKOPS_TEST_MOTO_ACCESS_KEY_ID=$(cut -d' ' -f1 "$DIR/moto/credentials")
export STOCKOPS_TEST_MOTO_SECRET_ACCESS_KEY=$(cut -d' ' -f2 "$DIR/moto/credentials")
EOF
    chmod 600 "$ENV_FILE"
    log "environment written to $ENV_FILE"
}

case "${1:-up}" in
up)
    install_packages
    install_garage
    pg_start
    garage_start
    moto_start
    write_env
    echo "$ENV_FILE"
    ;;
down)
    if [ -f "$DIR/garage/pid" ]; then kill "$(cat "$DIR/garage/pid")" 2>/dev/null || true; rm -f "$DIR/garage/pid"; fi
    if [ -f "$DIR/moto/pid" ]; then kill "$(cat "$DIR/moto/pid")" 2>/dev/null || true; rm -f "$DIR/moto/pid"; fi
    if [ -f "$DIR/pg/data/PG_VERSION" ]; then as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -m fast stop >/dev/null 2>&1 || true; fi
    log "stopped"
    ;;
env)
    echo "$ENV_FILE"
    ;;
pg)
    # PostgreSQL only, for work that needs no object store.
    install_packages
    pg_start
    ;;
*)
    die "usage: $0 up|down|env"
    ;;
esac
