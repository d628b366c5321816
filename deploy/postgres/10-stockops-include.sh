#!/bin/sh
# Run once by the official entrypoint, on an empty data directory: include the
# hardened settings at the end of the cluster's postgresql.conf, so they win.
set -eu
printf "\n# stockops: hardened settings (deploy/postgresql.conf)\ninclude '/etc/postgresql/stockops.conf'\n" \
    >>"$PGDATA/postgresql.conf"
