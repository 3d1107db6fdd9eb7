#!/usr/bin/env bash
# Run a Stint devnet: makes sure bitcoind is present (scripts/bitcoind.sh), builds the `stint`
# binary, and runs `stint devnet --dir devnet` plus any flags given here
# (`scripts/devnet.sh --help` lists them; e.g. `scripts/devnet.sh --block-interval 5`).
#
# Env: STINT_CACHE     cache folder (default ~/.cache/stint): Cargo target dir, bitcoind install
#      STINT_BITCOIND  path to a bitcoind to use instead of discovery
#      DEVNET_DIR      the devnet folder (default: devnet, under the clone)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

export STINT_CACHE="${STINT_CACHE:-$HOME/.cache/stint}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$STINT_CACHE/target}"

"$repo/scripts/system-deps.sh"
bindir="$("$repo/scripts/bitcoind.sh")"
export STINT_BITCOIND="${STINT_BITCOIND:-$bindir/bitcoind}"
export PATH="$bindir:$PATH"

# Exactly the build `scripts/test.sh` makes (same profile, same features: the test targets pull in
# dev-dependencies, and a build without them would compile RocksDB a second time), so after a
# test run this is instant, and a test run after this reuses it.
echo "devnet.sh: building stint (the first build takes a while: RocksDB is C++)" >&2
cargo test --workspace --locked --no-run >&2

exec "$CARGO_TARGET_DIR/debug/stint" devnet --dir "${DEVNET_DIR:-devnet}" "$@"
