#!/bin/sh
# Installs the Debian packages certbridge needs to build and test, only those
# missing, so `make` on a fresh Debian 12 machine works without hand steps.
set -eu

PKGS="gcc make pkg-config libwolfssl-dev libevent-dev libinih-dev libcmocka-dev \
mosquitto mosquitto-clients openssl python3 python3-pytest python3-paho-mqtt \
python3-cryptography python3-prometheus-client clang libclang-rt-14-dev valgrind procps"

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
$SUDO apt-get update -qq || true
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
