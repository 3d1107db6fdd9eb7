#!/usr/bin/env bash
# Make sure the system packages the build needs are installed (Debian/Ubuntu): librocksdb-sys runs
# bindgen (clang, libclang-dev), and the bitcoind that scripts/bitcoind.sh installs links libzmq5.
# Uses sudo when not root. Prints nothing when everything is there.
set -euo pipefail

packages=(clang libclang-dev libzmq5)
command -v dpkg-query >/dev/null || {
    echo "system-deps.sh: not a Debian/Ubuntu system; install ${packages[*]} (or their equivalents) yourself" >&2
    exit 0
}
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
((${#missing[@]})) || exit 0

echo "system-deps.sh: installing ${missing[*]}" >&2
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "system-deps.sh: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    SUDO=(sudo)
fi
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
