#!/bin/sh
# Copy the secrets the server needs to a directory only postgres can read,
# with the modes PostgreSQL insists on (the key 0600), then start as usual.
set -eu
private=/var/lib/postgresql/private
install -d -m 0700 -o postgres -g postgres "$private"
install -m 0600 -o postgres -g postgres /run/secrets/pg_server_key "$private/server.key"
install -m 0644 -o postgres -g postgres /run/secrets/pg_server_crt "$private/server.crt"
install -m 0600 -o postgres -g postgres /run/secrets/postgres_password "$private/postgres_password"
export POSTGRES_PASSWORD_FILE="$private/postgres_password"
exec docker-entrypoint.sh "$@"
