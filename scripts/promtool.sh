#!/usr/bin/env bash
# Make sure a working `promtool` (Prometheus' checker, used by the tests to check the nodes'
# `/metrics` output) exists and print its path (one line on stdout; everything else goes to
# stderr).
#
# Discovery order:
#   1. $STINT_PROMTOOL (path to a promtool)
#   2. a `promtool` on PATH
#   3. a cached install in ${STINT_CACHE:-$HOME/.cache/stint}/prometheus
#   4. install: Debian/apt only. Downloads Debian's `prometheus` package (which ships promtool)
#      with `apt-get download` into a temporary folder and unpacks it with `dpkg -x` into the
#      cache; the system's installed packages are left untouched (`apt-get update` is run only
#      if the download fails, e.g. on a machine whose package lists were never fetched).
#
# A second run finds the cache and returns immediately.
set -euo pipefail

log() { printf 'promtool.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

CACHE_DIR="${STINT_CACHE:-$HOME/.cache/stint}/prometheus"
CACHED="$CACHE_DIR/usr/bin/promtool"

# Succeeds when "$1" is a promtool that runs.
usable() {
    [[ -x "$1" ]] && "$1" --version >/dev/null 2>&1
}

# Prints the path and the version (to stderr) of the usable promtool "$1".
emit() {
    log "using $1 ($("$1" --version 2>&1 | head -n1))"
    printf '%s\n' "$1"
}

# 1. explicit override
if [[ -n "${STINT_PROMTOOL:-}" ]]; then
    usable "$STINT_PROMTOOL" || die "STINT_PROMTOOL=$STINT_PROMTOOL is not a promtool that runs ('$STINT_PROMTOOL --version' failed)"
    emit "$STINT_PROMTOOL"
    exit 0
fi

# 2. PATH
if path_promtool=$(command -v promtool) && usable "$path_promtool"; then
    emit "$path_promtool"
    exit 0
fi

# 3. cache
if usable "$CACHED"; then
    emit "$CACHED"
    exit 0
fi

# 4. install (Debian/apt only)
command -v apt-get >/dev/null && command -v dpkg >/dev/null && [[ -r /etc/debian_version ]] ||
    die "no promtool found and this is not a Debian/apt system: install Prometheus' promtool and put it on PATH (or set STINT_PROMTOOL)"

mkdir -p "$CACHE_DIR"
# Serialize concurrent installs (several builds/tests may call this at once).
exec 9>"$CACHE_DIR/.install.lock"
flock 9
if usable "$CACHED"; then
    log "installed by a concurrent run"
    emit "$CACHED"
    exit 0
fi

STAGE=$(mktemp -d "$CACHE_DIR/.stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/debs" "$STAGE/root"
APT_OPTS=()
if [[ $(id -u) -eq 0 ]]; then
    # The temporary folder is not readable by apt's _apt sandbox user; download as root.
    APT_OPTS+=(-o "APT::Sandbox::User=root")
fi
download() { (cd "$STAGE/debs" && apt-get "${APT_OPTS[@]}" -qq download prometheus >&2); }
log "downloading Debian's prometheus package (for promtool) into $CACHE_DIR"
if ! download; then
    log "apt-get download failed; running apt-get update and trying again"
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "apt-get update needs root (or sudo); or install promtool on PATH (or set STINT_PROMTOOL)"
        SUDO=(sudo)
    fi
    "${SUDO[@]}" apt-get -qq update >&2 || die "apt-get update failed"
    download || die "apt-get download prometheus failed"
fi
for deb in "$STAGE"/debs/*.deb; do
    dpkg -x "$deb" "$STAGE/root"
done
[[ -x "$STAGE/root/usr/bin/promtool" ]] || die "the prometheus package has no usr/bin/promtool (package layout changed?)"
usable "$STAGE/root/usr/bin/promtool" || die "the unpacked promtool does not run: try '$STAGE/root/usr/bin/promtool --version'"

# The Prometheus server binary (most of the package's size) is not needed.
rm -f "$STAGE/root/usr/bin/prometheus"

# Publish the unpacked usr/ tree only once it works, so a failed install leaves no half-filled
# cache behind.
rm -rf "$CACHE_DIR/usr"
mv "$STAGE/root/usr" "$CACHE_DIR/usr"

usable "$CACHED" || die "installed promtool does not run: try '$CACHED --version'"
log "installed"
emit "$CACHED"
