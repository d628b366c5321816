# The two commands of the README:
#   make demo   start local PostgreSQL and S3 (unless DATABASE_URL is set), provision,
#               seed, add a login per department and partner, print a stock report
#   make test   start the same servers and run every test against them
#   make prod-sim   a PostgreSQL cluster with deploy/'s hardened configuration and
#               self-signed TLS, then provision, users, seed, api calls over TLS,
#               backup, drill and doctor (scripts/prod-sim.sh)
#   make fuzz   every fuzz target for FUZZ_SECONDS each (20, what CI runs;
#               docs/fuzzing.md for longer runs and crashes)
SHELL := /bin/bash
SCALE ?= 1
FUZZ_SECONDS ?= 20

.PHONY: demo test lint testenv testenv-down nextest prod-sim fuzz

demo:
	scripts/demo.sh $(SCALE)

test: nextest testenv
	set -a && . "$$(scripts/testenv.sh env)" && set +a && cargo nextest run --no-fail-fast

prod-sim:
	scripts/prod-sim.sh

fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

testenv:
	scripts/testenv.sh up >/dev/null

testenv-down:
	scripts/testenv.sh down

nextest:
	@cargo nextest --version >/dev/null 2>&1 || cargo install --locked cargo-nextest
