#!/bin/sh
# Installs the Debian packages certbridge needs, only those missing, so that
# `make`, `make test` and `make run` work on a fresh Debian 12 machine with no
# hand steps.
#
#   tools/install-deps.sh build   compiling the daemon (also used by docker/)
#   tools/install-deps.sh cross   compiling for ARM gateways (make cross)
#   tools/install-deps.sh         everything: build, tests, the lab
set -eu

# softhsm2, opensc: the PKCS#11 tests (a software token, pkcs11-tool);
# chromium: the status page is checked in a real headless browser.
# dpkg-dev, autoconf, automake, libtool: tools/wolfssl-build.sh unpacks and
# builds Debian's wolfSSL source (the default build); libwolfssl-dev is the
# pin it checks against and what `make WOLFSSL=system` links.
BUILD_PKGS="gcc make libc6-dev pkg-config libwolfssl-dev libevent-dev libinih-dev \
dpkg-dev autoconf automake libtool"
TEST_PKGS="libcmocka-dev mosquitto mosquitto-clients openssl python3 python3-pytest \
python3-paho-mqtt python3-cryptography python3-prometheus-client clang \
libclang-rt-14-dev valgrind procps coreutils python3-yaml yamllint systemd \
softhsm2 opensc chromium"

# make cross / make test-cross: Debian's cross compilers (with their C
# libraries) and qemu-user to run what they build.
CROSS_PKGS="gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf qemu-user-static file"

case "${1:-all}" in
build) PKGS=$BUILD_PKGS ;;
all) PKGS="$BUILD_PKGS $TEST_PKGS" ;;
cross) PKGS="$BUILD_PKGS $CROSS_PKGS" ;;
*) echo "usage: $0 [build|cross]" >&2; exit 2 ;;
esac

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -n "$missing" ] || exit 0

echo "install-deps: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# A stale package index is the usual reason an install fails on a new machine.
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
