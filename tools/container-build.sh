#!/bin/sh
# container-build.sh - builds certbridge's container image for real, with no
# image registry: the Debian 12 base is made from the package mirror this
# machine's apt already uses (debootstrap), then docker/Dockerfile is built
# on it with buildah. `make test-container` runs this, then the checks of
# tests/container/ on the image (docs/install.md, "Container").
#
#   tools/container-build.sh          prints the image name on stdout
#
# The base (localhost/certbridge-base:<key>) is cached: in buildah's storage,
# and as a tarball under ${CONTAINER_CACHE:-/var/tmp/certbridge-container}
# to import again if that storage was cleared. <key> is the SHA-256 of the
# mirror's bookworm Release file (a new point release or security update of
# the base makes a new key), or the ISO week when the mirror cannot be read.
# Needs root, buildah and debootstrap (installed with apt-get when missing).
#
# buildah runs with --isolation chroot: no daemon, no user namespace, the
# host's network (the build stage fetches packages and wolfSSL's source).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${CONTAINER_CACHE:-/var/tmp/certbridge-container}
IMAGE=localhost/certbridge:test

say() { echo "container-build: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, buildah)"
need=""
command -v buildah >/dev/null 2>&1 || need="$need buildah"
command -v debootstrap >/dev/null 2>&1 || need="$need debootstrap"
if [ -n "$need" ]; then
	say "installing:$need"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

# ------------------------------------------------------------------ mirror
# The Debian archives among the machine's apt sources (one-line .list files
# and deb822 .sources alike); the first main archive is what debootstrap
# fetches from, and all of them (updates, security) go into the base, so
# that the image sees the same package versions as this machine (the
# wolfSSL pin of tools/wolfssl-build.sh depends on it).
# shellcheck source=tools/debian-sources.sh
. "$ROOT/tools/debian-sources.sh"

SOURCES=$(debian_deb_lines)
MIRROR=$(echo "$SOURCES" | awk '$3 == "bookworm" && $2 !~ /security/ { print $2; exit }')
[ -n "$MIRROR" ] || die "no Debian bookworm archive among this machine's apt sources"

release=$(mktemp)
trap 'rm -f "$release"' EXIT
if /usr/lib/apt/apt-helper download-file "${MIRROR%/}/dists/bookworm/Release" \
    "$release" >/dev/null 2>&1 && [ -s "$release" ]; then
	KEY=$(sha256sum < "$release" | cut -c1-12)
else
	KEY=week-$(date -u +%G-%V)
fi
BASE=localhost/certbridge-base:$KEY
TARBALL=$CACHE/base-$KEY.tar

# ------------------------------------------------------------------ base
if buildah inspect --type image "$BASE" >/dev/null 2>&1; then
	say "base $BASE (cached)"
else
	mkdir -p "$CACHE"
	if [ ! -s "$TARBALL" ]; then
		work=$CACHE/rootfs-$KEY.tmp
		rm -rf "$work"
		say "debootstrap --variant=minbase bookworm from $MIRROR (about a minute)"
		debootstrap --variant=minbase bookworm "$work" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
		    || die "debootstrap failed: see $CACHE/debootstrap.log"
		rm -f "$work/etc/apt/sources.list"
		echo "$SOURCES" >"$work/etc/apt/sources.list.d/debian.list"
		# Leave no package lists or caches in the base.
		rm -rf "$work"/var/lib/apt/lists/* "$work"/var/cache/apt/*.bin
		tar -C "$work" -cf "$TARBALL.tmp" .
		mv "$TARBALL.tmp" "$TARBALL"
		rm -rf "$work"
		# Older bases are not needed any more.
		find "$CACHE" -maxdepth 1 -name 'base-*.tar' ! -name "base-$KEY.tar" -delete
	fi
	say "importing $TARBALL as $BASE"
	ctr=$(buildah from scratch)
	mnt=$(buildah mount "$ctr")
	tar -C "$mnt" -xf "$TARBALL"
	buildah umount "$ctr" >/dev/null
	buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
	buildah commit -q "$ctr" "$BASE" >/dev/null
	buildah rm "$ctr" >/dev/null
fi

# ------------------------------------------------------------------ image
say "buildah bud -f docker/Dockerfile on $BASE (log: $CACHE/bud.log)"
mkdir -p "$CACHE"
(cd "$ROOT" && buildah bud --isolation chroot --build-arg "BASE=$BASE" -t "$IMAGE" \
    -f docker/Dockerfile . >"$CACHE/bud.log" 2>&1) \
    || { tail -n 40 "$CACHE/bud.log" >&2; die "the image build failed: see $CACHE/bud.log"; }
echo "$IMAGE"
