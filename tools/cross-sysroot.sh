#!/bin/sh
# cross-sysroot.sh - the libraries `make cross` links for an ARM gateway.
#
#   tools/cross-sysroot.sh ARCH OUTDIR     ARCH: arm64 or armhf
#
# Debian's -dev packages of libevent and inih (and cmocka, for the unit
# tests) for ARCH, fetched from this machine's own Debian mirror with a
# private apt configuration (tools/debian-sources.sh) and unpacked into
# OUTDIR/usr/... with dpkg-deb. Installing them beside the amd64 ones with
# `dpkg --add-architecture` conflicts (their headers and .pc files clash),
# and the machine's apt configuration is never touched. The C library and
# its headers come with the cross compiler (libc6-dev-ARCH-cross).
#
# OUTDIR/PACKAGES lists the exact versions unpacked; a run finds the same
# versions on the mirror and leaves OUTDIR as it is (about a second), or
# unpacks the new ones into a fresh OUTDIR.
set -eu

die() { echo "cross-sysroot: $*" >&2; exit 1; }
say() { echo "cross-sysroot: $*" >&2; }

[ $# -eq 2 ] || die "usage: $0 arm64|armhf OUTDIR"
ARCH=$1
case "$ARCH" in
arm64 | armhf) ;;
*) die "ARCH=$ARCH: certbridge cross-builds for arm64 and armhf" ;;
esac
mkdir -p "$2"
OUT=$(cd "$2" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# libevent-dev's .a files need no shared libraries at link time, but the
# package depends on them; cmocka's tests link libcmocka.so (no .a).
PKGS="libevent-dev libinih-dev libinih1 libcmocka-dev libcmocka0"

APT="$OUT.apt"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/parts"
# shellcheck source=tools/debian-sources.sh
. "$ROOT/tools/debian-sources.sh"
debian_deb_lines > "$APT/sources.list"
[ -s "$APT/sources.list" ] || die "no Debian archive among this machine's apt sources"
set -- -o Dir::Etc::SourceList="$APT/sources.list" \
    -o Dir::Etc::SourceParts="$APT/parts" \
    -o Dir::State::Lists="$APT/lists" \
    -o Dir::Cache="$APT/cache" \
    -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
    -o APT::Architecture="$ARCH" -o APT::Architectures::="$ARCH" \
    -o Debug::NoLocking=1
apt-get "$@" -qq update >&2 || die "apt-get update (private lists in $APT) failed"

# The versions the mirror has now: the cache key.
want=$(for p in $PKGS; do
	v=$(apt-cache "$@" policy "$p:$ARCH" 2>/dev/null | awk '/Candidate:/ { print $2; exit }')
	[ -n "$v" ] && [ "$v" != "(none)" ] || die "the mirror has no $p for $ARCH"
	echo "$p=$v"
done)
if [ -f "$OUT/PACKAGES" ] && [ "$(cat "$OUT/PACKAGES")" = "$want" ]; then
	exit 0
fi

say "unpacking $ARCH packages into $OUT"
dl="$APT/dl"
rm -rf "$dl" "$OUT.new"
mkdir -p "$dl" "$OUT.new"
# apt downloads as the unprivileged _apt user when it can write there.
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
	chown _apt "$dl"
fi
# shellcheck disable=SC2046
(cd "$dl" && apt-get "$@" -qq download $(echo "$want" | sed "s/=/:$ARCH=/") >&2) \
    || die "apt-get download failed"
for deb in "$dl"/*.deb; do
	dpkg-deb -x "$deb" "$OUT.new" || die "dpkg-deb -x $deb failed"
done
echo "$want" > "$OUT.new/PACKAGES"
rm -rf "$OUT" "$dl"
mv "$OUT.new" "$OUT"
