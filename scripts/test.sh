#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test of the workspace (unit, property,
# integration against a real bitcoind in regtest and real RocksDB, doc tests).
#
# Usage: scripts/test.sh            (from anywhere inside the clone; installs what it needs)
# Env:   STINT_CACHE      cache folder (default ~/.cache/stint): Cargo target dir, bitcoind install
#        STINT_BITCOIND   path to a bitcoind to use instead of discovery
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

export STINT_CACHE="${STINT_CACHE:-$HOME/.cache/stint}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$STINT_CACHE/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# No incremental compilation: a one-shot run gains nothing from it, and a clippy (check) run
# between two builds over the same incremental cache left a test binary that failed to link
# ("undefined hidden symbol").
export CARGO_INCREMENTAL=0

step() { printf '\n==> %s\n' "$*" >&2; }

step "system packages (clang for RocksDB's bindings, libzmq5 for bitcoind)"
"$repo/scripts/system-deps.sh"

step "making sure bitcoind is present"
bindir="$("$repo/scripts/bitcoind.sh")"
export STINT_BITCOIND="${STINT_BITCOIND:-$bindir/bitcoind}"
export PATH="$bindir:$PATH"
"$STINT_BITCOIND" -version | head -n 1 >&2

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo build (every test target)"
# Builds RocksDB's C++ once (librocksdb-sys' build script) for everything below.
cargo test --workspace --locked --no-run

step "cargo clippy (all targets, warnings are errors)"
# Clippy type-checks and never links, but its build-script run of librocksdb-sys is a unit of its
# own (check mode) and would compile RocksDB's C++ a second time: point it at the archive the
# build step just made instead (the newest one in the target dir).
rocksdb_lib="$(ls -t "$CARGO_TARGET_DIR"/debug/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -n 1)"
if [[ -n "$rocksdb_lib" ]]; then
    ROCKSDB_LIB_DIR="$(dirname "$rocksdb_lib")" ROCKSDB_STATIC=1 \
        cargo clippy --workspace --all-targets --locked --profile test -- -D warnings
else
    cargo clippy --workspace --all-targets --locked --profile test -- -D warnings
fi

step "cargo test (workspace)"
cargo test --workspace --locked

step "stint-bench --quick (smoke run of every benchmark, no thresholds)"
# Built by the test step above (the bench package's integration test needs the binary).
"$CARGO_TARGET_DIR/debug/stint-bench" --quick --no-write
