#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test of the workspace (unit, property,
# integration against a real bitcoind in regtest and real RocksDB, doc tests).
#
# Usage: scripts/test.sh            (from anywhere inside the clone; installs what it needs)
# Env:   STINT_CACHE      cache folder (default ~/.cache/stint): Cargo target dir, bitcoind and promtool installs
#        STINT_BITCOIND   path to a bitcoind to use instead of discovery
#        STINT_PROMTOOL   path to a promtool to use instead of discovery
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

step "making sure promtool is present (the tests check the nodes' /metrics with it)"
STINT_PROMTOOL="$("$repo/scripts/promtool.sh")"
export STINT_PROMTOOL

step "OpenRPC validator (@open-rpc/schema-utils-js, from the npm registry)"
command -v npm >/dev/null || { echo "test.sh: npm is needed for the OpenRPC validator" >&2; exit 1; }
openrpc_tools="$STINT_CACHE/openrpc-validator"
if [[ ! -d "$openrpc_tools/node_modules/@open-rpc/schema-utils-js" ]]; then
    mkdir -p "$openrpc_tools"
    npm install --prefix "$openrpc_tools" --no-audit --no-fund --silent \
        @open-rpc/schema-utils-js@2.2.1 >&2
fi
# The regtest tests write both nodes' rpc.discover documents here; validated after the tests.
export STINT_OPENRPC_OUT="$(mktemp -d)"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo build (every test target)"
# Builds RocksDB's C++ once (librocksdb-sys' build script) for everything below.
cargo test --workspace --locked --no-run

step "cargo clippy (all targets, warnings are errors)"
# Same (dev) profile as the dependencies of the build step above (`cargo test` builds
# dependencies with the dev profile, only the test executables with the test profile), so
# librocksdb-sys' build-script run is shared and RocksDB's C++ is not compiled a second time.
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests (workspace)"
# --no-fail-fast: a failure report names every failing test, not only the first.
if cargo nextest --version >/dev/null 2>&1; then
    # cargo-nextest (on this machine kind) runs the tests of every binary side by side: most of
    # the regtest tests wait on bitcoind, so 4 at a time on 2 cores cut the test step from
    # about 300 s to 90 s. Doc tests are not nextest's: cargo runs them after.
    # A test that fails is run once more (`--retries 1`): one that then passes is still
    # reported, as FLAKY, in the log, and one that fails twice fails the run.
    cargo nextest run --workspace --locked --no-fail-fast \
        --test-threads "${STINT_TEST_THREADS:-4}" --retries 1 --failure-output final
    cargo test --workspace --locked --doc
else
    cargo test --workspace --locked --no-fail-fast
fi

step "OpenRPC documents of both nodes (written by the tests) pass the validator"
NODE_PATH="$openrpc_tools/node_modules" node "$repo/scripts/validate-openrpc.js" \
    "$STINT_OPENRPC_OUT/sequencer.json" "$STINT_OPENRPC_OUT/verifier.json"

step "stint-bench --quick (smoke run of every benchmark, no thresholds)"
# Built by the build step above (the bench package's integration test needs the binary).
"$CARGO_TARGET_DIR/debug/stint-bench" --quick --no-write
