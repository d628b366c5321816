#!/usr/bin/env bash
# Fuzz the parsers of what crosses a trust boundary (fuzz/, docs/fuzzing.md):
# build every target once, then run each for a bounded time from its
# committed seeds (fuzz/seeds/TARGET) and what earlier runs found
# (fuzz/corpus/TARGET, not committed).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 20 (what CI runs); every target of
# `cargo fuzz list` unless some are named. Exits 1 when a target crashed,
# after running the others, and prints where each crashing input is and the
# commands that reproduce and minimise it.
#
# Stable rustc: cargo fuzz passes nightly flags (-Zsanitizer=address), which
# a stable compiler accepts under RUSTC_BOOTSTRAP=1. cargo-fuzz itself is
# installed with `cargo install --locked` when missing.
# STOCKOPS_FUZZ_SANITIZER=none builds without AddressSanitizer (faster, for
# machines where it does not link); FUZZ_ARGS adds libFuzzer flags.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
SECONDS_PER_TARGET=${1:-20}
shift || true
SANITIZER=${STOCKOPS_FUZZ_SANITIZER:-address}
FUZZ_DIR=fuzz
export RUSTC_BOOTSTRAP=1

log() { printf 'fuzz: %s\n' "$*" >&2; }
die() { printf 'fuzz: error: %s\n' "$*" >&2; exit 2; }

[[ $SECONDS_PER_TARGET =~ ^[1-9][0-9]*$ ]] || die "SECONDS_PER_TARGET must be a whole number of seconds, got '$SECONDS_PER_TARGET'"

install_cargo_fuzz() {
    if cargo fuzz --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\$"; then
        return
    fi
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION with cargo install (under a minute, once)"
    cargo install --locked "cargo-fuzz@$CARGO_FUZZ_VERSION" >&2
}

cargo_fuzz() {
    local sub=$1
    shift
    cargo fuzz "$sub" --fuzz-dir "$FUZZ_DIR" --sanitizer "$SANITIZER" "$@"
}

# Where the newest crash, leak, timeout or out-of-memory input of TARGET is.
newest_artifact() {
    ls -t "$FUZZ_DIR/artifacts/$1"/{crash,leak,timeout,oom,slow-unit}-* 2>/dev/null | head -n 1 || true
}

run_target() {
    local target=$1 corpus=$FUZZ_DIR/corpus/$1 seeds=$FUZZ_DIR/seeds/$1 dirs=()
    mkdir -p "$corpus"
    dirs=("$corpus")
    [ -d "$seeds" ] && dirs+=("$seeds")
    log "$target: ${SECONDS_PER_TARGET}s from $(find "${dirs[@]}" -type f | wc -l) inputs"
    # -timeout: one input taking 10 s is a hang; -rss_limit_mb: 2 GiB is a
    # memory blow-up. libFuzzer writes new inputs to the first directory only.
    # shellcheck disable=SC2086
    cargo_fuzz run "$target" "${dirs[@]}" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 ${FUZZ_ARGS:-} 2>"$FUZZ_DIR/artifacts/$target.log"
}

install_cargo_fuzz
mapfile -t targets < <(if [ $# -gt 0 ]; then printf '%s\n' "$@"; else cargo fuzz list --fuzz-dir "$FUZZ_DIR"; fi)
[ ${#targets[@]} -gt 0 ] || die "no fuzz targets in $FUZZ_DIR/Cargo.toml"

started=$SECONDS
log "building ${#targets[@]} targets (sanitizer: $SANITIZER)"
cargo_fuzz build >&2
log "built in $((SECONDS - started))s"

failed=()
for target in "${targets[@]}"; do
    mkdir -p "$FUZZ_DIR/artifacts/$target"
    if run_target "$target"; then
        grep -E '^stat::number_of_executed_units|^Done [0-9]+ runs' "$FUZZ_DIR/artifacts/$target.log" \
            | sed "s/^/fuzz: $target: /" >&2 || true
        continue
    fi
    failed+=("$target")
    artifact=$(newest_artifact "$target")
    tail -n 40 "$FUZZ_DIR/artifacts/$target.log" >&2
    log "$target FAILED; the full log is $FUZZ_DIR/artifacts/$target.log"
    if [ -n "$artifact" ]; then
        log "$target: the input is $artifact"
        log "  reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir $FUZZ_DIR -s $SANITIZER $target $artifact"
        log "  minimise:  RUSTC_BOOTSTRAP=1 cargo fuzz tmin --fuzz-dir $FUZZ_DIR -s $SANITIZER $target $artifact"
    fi
done

log "done in $((SECONDS - started))s: ${#targets[@]} targets, ${SECONDS_PER_TARGET}s each"
if [ ${#failed[@]} -gt 0 ]; then
    log "crashed: ${failed[*]}"
    exit 1
fi
