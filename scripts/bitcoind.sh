#!/usr/bin/env bash
# Make sure a working `bitcoind` and `bitcoin-cli` exist and print the folder that holds them
# (one line on stdout; everything else goes to stderr).
#
# Discovery order:
#   1. $STINT_BITCOIND (path to a bitcoind; bitcoin-cli next to it, else the one on PATH)
#   2. a `bitcoind` on PATH (Bitcoin Core >= 25)
#   3. a cached install in ${STINT_CACHE:-$HOME/.cache/stint}/bitcoin/bin
#   4. install: Debian/apt only. Debian stable (bookworm) ships no bitcoind, so the script downloads
#      `bitcoin-knots` (a Bitcoin Core derivative, same RPC and regtest) from trixie-backports plus
#      trixie's glibc/libstdc++/libevent/sqlite with a *private* apt configuration (the system's
#      apt sources, lists, caches and package state are left untouched), unpacks them with
#      `dpkg -x` into the cache, and writes `bitcoind`/`bitcoin-cli` wrappers that run the
#      binaries through the unpacked (newer) dynamic loader. Archives are verified by apt against
#      /usr/share/keyrings/debian-archive-keyring.gpg, which carries the trixie signing keys.
#
# A second run finds the cache and returns immediately. Note: the wrapped bitcoind's process name is
# the loader's (ld-linux-...), so stop it via RPC `stop`, never via `pidof bitcoind`.
set -euo pipefail

log() { printf 'bitcoind.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

CACHE_DIR="${STINT_CACHE:-$HOME/.cache/stint}/bitcoin"
MIN_MAJOR=25

# Major version of a bitcoind binary ("Bitcoin Core version v27.1.0" -> 27), empty if unknown.
major_version() {
    "$1" -version 2>/dev/null | head -n1 | sed -n 's/.* v\{0,1\}\([0-9][0-9]*\)\.[0-9].*/\1/p'
}

# Succeeds when "$1" is a runnable bitcoind of a supported version.
usable_bitcoind() {
    local bin=$1 major
    [[ -x "$bin" ]] || return 1
    major=$(major_version "$bin") || return 1
    if [[ -z "$major" ]]; then
        log "cannot read the version of $bin"
        return 1
    fi
    if ((major < MIN_MAJOR)); then
        log "$bin is version $major, need >= $MIN_MAJOR"
        return 1
    fi
}

# Prints a folder holding both bitcoind ($1) and a bitcoin-cli (next to it, else from PATH).
emit_dir_for() {
    local bitcoind dir cli
    bitcoind=$(readlink -f "$1")
    dir=$(dirname "$bitcoind")
    if [[ -x "$dir/bitcoin-cli" ]]; then
        printf '%s\n' "$dir"
        return 0
    fi
    cli=$(command -v bitcoin-cli || true)
    [[ -n "$cli" ]] || die "no bitcoin-cli next to $bitcoind nor on PATH"
    # The two live in different folders: publish symlinks to both in one folder.
    local links="$CACHE_DIR/links"
    mkdir -p "$links"
    ln -sfn "$bitcoind" "$links/bitcoind"
    ln -sfn "$(readlink -f "$cli")" "$links/bitcoin-cli"
    printf '%s\n' "$links"
}

# 1. explicit override
if [[ -n "${STINT_BITCOIND:-}" ]]; then
    usable_bitcoind "$STINT_BITCOIND" || die "STINT_BITCOIND=$STINT_BITCOIND is not a usable bitcoind (>= v$MIN_MAJOR)"
    log "using STINT_BITCOIND=$STINT_BITCOIND"
    emit_dir_for "$STINT_BITCOIND"
    exit 0
fi

# 2. PATH
if path_bitcoind=$(command -v bitcoind) && usable_bitcoind "$path_bitcoind"; then
    log "using $path_bitcoind from PATH"
    emit_dir_for "$path_bitcoind"
    exit 0
fi

# 3. cache
BIN_DIR="$CACHE_DIR/bin"
cached_ok() {
    [[ -x "$BIN_DIR/bitcoind" && -x "$BIN_DIR/bitcoin-cli" ]] &&
        usable_bitcoind "$BIN_DIR/bitcoind" && "$BIN_DIR/bitcoin-cli" -version >/dev/null 2>&1
}
if cached_ok; then
    log "using cached install in $BIN_DIR"
    printf '%s\n' "$BIN_DIR"
    exit 0
fi

# 4. install (Debian/apt only)
command -v apt-get >/dev/null && command -v dpkg >/dev/null && [[ -r /etc/debian_version ]] ||
    die "no bitcoind found and this is not a Debian/apt system: install Bitcoin Core >= $MIN_MAJOR and put bitcoind and bitcoin-cli on PATH (or set STINT_BITCOIND)"

case "$(dpkg --print-architecture)" in
amd64) TRIPLET=x86_64-linux-gnu LOADER=ld-linux-x86-64.so.2 ;;
arm64) TRIPLET=aarch64-linux-gnu LOADER=ld-linux-aarch64.so.1 ;;
*) die "unsupported architecture $(dpkg --print-architecture): install Bitcoin Core >= $MIN_MAJOR on PATH" ;;
esac

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "installing needs root (or sudo) for libzmq5; or install Bitcoin Core >= $MIN_MAJOR on PATH"
    SUDO=(sudo)
fi

mkdir -p "$CACHE_DIR"
# Serialize concurrent installs (several builds/tests may call this at once).
exec 9>"$CACHE_DIR/.install.lock"
flock 9
if cached_ok; then
    log "using cached install in $BIN_DIR (installed by a concurrent run)"
    printf '%s\n' "$BIN_DIR"
    exit 0
fi

# The Debian mirror the machine already uses.
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r "$f" ]] || continue
    mirror=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/ && $i ~ /debian/) { print $i; exit } }' "$f")
    [[ -n "$mirror" ]] && break
done
if [[ -z "$mirror" && -r /etc/apt/sources.list ]]; then
    mirror=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|ftp):/) { if ($i !~ /security/ && $i ~ /debian/) { print $i; exit } else break } }' /etc/apt/sources.list)
fi
mirror=${mirror:-http://deb.debian.org/debian}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -r "$KEYRING" ]] || die "$KEYRING missing (package debian-archive-keyring)"
log "installing bitcoin-knots from $mirror trixie-backports into $CACHE_DIR"

APT_DIR="$CACHE_DIR/apt"
mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$APT_DIR/sources.list.d" "$APT_DIR/preferences.d"
cat >"$APT_DIR/sources.list" <<SOURCES
deb [signed-by=$KEYRING] $mirror trixie main
deb [signed-by=$KEYRING] $mirror trixie-backports main
SOURCES
APT_OPTS=(
    -o "Dir::Etc::SourceList=$APT_DIR/sources.list"
    -o "Dir::Etc::SourceParts=$APT_DIR/sources.list.d"
    -o "Dir::Etc::Preferences=$APT_DIR/preferences"
    -o "Dir::Etc::PreferencesParts=$APT_DIR/preferences.d"
    -o "Dir::State::Lists=$APT_DIR/lists"
    -o "Dir::Cache=$APT_DIR/cache"
    -o "Dir::Cache::Archives=$APT_DIR/cache/archives"
    -o "Debug::NoLocking=1"
    -o "Acquire::Languages=none"
    -o "APT::Get::List-Cleanup=0"
)
if [[ $(id -u) -eq 0 ]]; then
    # Private dirs are not readable by the _apt sandbox user; download as root.
    APT_OPTS+=(-o "APT::Sandbox::User=root")
fi

apt-get "${APT_OPTS[@]}" -qq update >&2 || die "apt-get update (private trixie lists) failed"

STAGE=$(mktemp -d "$CACHE_DIR/.stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/debs" "$STAGE/root" "$STAGE/bin"
PACKAGES=(
    bitcoin-knots/trixie-backports
    libc6/trixie libstdc++6/trixie libgcc-s1/trixie libsqlite3-0/trixie
    libevent-core-2.1-7t64/trixie libevent-extra-2.1-7t64/trixie libevent-pthreads-2.1-7t64/trixie
)
(cd "$STAGE/debs" && apt-get "${APT_OPTS[@]}" -qq download "${PACKAGES[@]}" >&2) ||
    die "apt-get download ${PACKAGES[*]} failed"
for deb in "$STAGE"/debs/*.deb; do
    dpkg -x "$deb" "$STAGE/root"
done

# bitcoind links libzmq; take it from the system (stable), installing it if missing.
if ! dpkg-query -W -f '${Status}' libzmq5 2>/dev/null | grep -q 'install ok installed'; then
    log "installing libzmq5 with apt-get"
    "${SUDO[@]}" apt-get -qq update >&2 || true
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get -qq install -y libzmq5 >&2 || die "apt-get install libzmq5 failed"
fi

# Locate the binaries inside the package (dpkg -c of bitcoin-knots lists usr/bin/...).
ROOT="$CACHE_DIR/root"
for name in bitcoind bitcoin-cli; do
    [[ -x "$STAGE/root/usr/bin/$name" ]] || die "bitcoin-knots has no usr/bin/$name (package layout changed?)"
done
[[ -e "$STAGE/root/usr/lib/$TRIPLET/$LOADER" ]] || die "trixie libc6 has no usr/lib/$TRIPLET/$LOADER"

for name in bitcoind bitcoin-cli; do
    cat >"$STAGE/bin/$name" <<WRAPPER
#!/bin/sh
# Generated by scripts/bitcoind.sh: runs Debian trixie's $name with trixie's glibc.
exec "$ROOT/usr/lib/$TRIPLET/$LOADER" --library-path "$ROOT/usr/lib/$TRIPLET:/usr/lib/$TRIPLET:/lib/$TRIPLET" "$ROOT/usr/bin/$name" "\$@"
WRAPPER
    chmod 0755 "$STAGE/bin/$name"
done

# Publish: wrappers reference $ROOT, so move the unpacked tree there first.
rm -rf "$ROOT" "$BIN_DIR"
mv "$STAGE/root" "$ROOT"
mv "$STAGE/bin" "$BIN_DIR"

cached_ok || die "installed bitcoind does not run: try '$BIN_DIR/bitcoind -version'"
log "installed: $("$BIN_DIR/bitcoind" -version | head -n1)"
printf '%s\n' "$BIN_DIR"
