#!/bin/bash
# lab.sh - the certbridge lab (`make run`): everything on this machine.
#
#   device (mosquitto_pub/sub) --TLS 127.0.0.1:8883--> certbridge --TLS 127.0.0.1:18884--> mosquitto
#
# 1. writes the lab PKI into build/lab (tools/mkpki.py lab; kept while valid),
# 2. writes build/lab/mosquitto.conf and starts mosquitto on 127.0.0.1:18884
#    (TLS, client certificates required, trusting only cloud-client-ca.pem),
# 3. prints mosquitto_sub / mosquitto_pub commands to try,
# 4. runs build/certbridge -c conf/lab.ini in the foreground.
# Ctrl-C stops certbridge; on exit this script stops the mosquitto it started
# (by its PID, nothing else).
#
# Environment: CERTBRIDGE (default build/certbridge); PORT (the gateway's
# device port, 8883), ADMIN_PORT (9883) and BROKER_PORT (18884) on
# 127.0.0.1, which `make run PORT=... ADMIN_PORT=... BROKER_PORT=...`
# passes on. With other ports than those the lab runs a copy of
# conf/lab.ini with them, build/lab/run.ini.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LAB=$ROOT/build/lab
CONF=$ROOT/conf/lab.ini
BIN=${CERTBRIDGE:-$ROOT/build/certbridge}
PY=/usr/bin/python3
GW_PORT=${PORT:-8883}
ADMIN_PORT=${ADMIN_PORT:-9883}
BROKER_PORT=${BROKER_PORT:-18884}

MQ_PID=

die() {
	echo "lab: $*" >&2
	exit 1
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$MQ_PID" ] && kill -0 "$MQ_PID" 2>/dev/null; then
		kill -TERM "$MQ_PID" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$MQ_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$MQ_PID" 2>/dev/null; then
			kill -KILL "$MQ_PID" 2>/dev/null || true
		fi
		wait "$MQ_PID" 2>/dev/null || true
		echo "lab: mosquitto (pid $MQ_PID) stopped" >&2
	fi
	exit "$rc"
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

[ -x "$BIN" ] || die "$BIN is not built: run 'make' first"
command -v mosquitto >/dev/null || die "mosquitto is not installed (apt-get install mosquitto mosquitto-clients)"
for v in GW_PORT ADMIN_PORT BROKER_PORT; do
	case ${!v} in
	'' | *[!0-9]*) die "${v/GW_PORT/PORT}=\"${!v}\" is not a port number" ;;
	esac
	[ "${!v}" -ge 1 ] && [ "${!v}" -le 65535 ] || die "port ${!v} is out of range"
done
for p in $GW_PORT $BROKER_PORT $ADMIN_PORT; do
	if port_open "$p"; then
		die "port $p on 127.0.0.1 is already in use (another lab running?); \
choose free ones: make run PORT=$((GW_PORT + 10000 > 65535 ? 28883 : GW_PORT + 10000)) \
ADMIN_PORT=$((ADMIN_PORT + 10000 > 65535 ? 29883 : ADMIN_PORT + 10000)) \
BROKER_PORT=$((BROKER_PORT + 10000 > 65535 ? 38884 : BROKER_PORT + 10000))"
	fi
done

"$PY" "$ROOT/tools/mkpki.py" lab "$LAB" >/dev/null

# Other ports: the same configuration, with its paths relative to
# build/lab (where the copy lives) and the three addresses replaced.
if [ "$GW_PORT$ADMIN_PORT$BROKER_PORT" != "8883988318884" ]; then
	sed -e "s|^listen = 127.0.0.1:8883\$|listen = 127.0.0.1:$GW_PORT|" \
	    -e "s|^admin_listen = 127.0.0.1:9883\$|admin_listen = 127.0.0.1:$ADMIN_PORT|" \
	    -e "s|^address = 127.0.0.1:18884\$|address = 127.0.0.1:$BROKER_PORT|" \
	    -e "s|\.\./build/lab/|./|g" \
	    -e "1i ; written by tools/lab.sh from conf/lab.ini for PORT=$GW_PORT ADMIN_PORT=$ADMIN_PORT BROKER_PORT=$BROKER_PORT" \
	    "$CONF" >"$LAB/run.ini"
	CONF=$LAB/run.ini
fi

# mosquitto 2.0 started as root drops to user "mosquitto", which could not
# read the 0600 keys: name the current user so that it stays who we are.
cat >"$LAB/mosquitto.conf" <<EOF
# written by tools/lab.sh: the lab's "cloud" broker
per_listener_settings false
allow_anonymous false
persistence false
user $(id -un)
log_dest file $LAB/mosquitto.log
log_type all
connection_messages true
log_timestamp_format %Y-%m-%dT%H:%M:%S

listener $BROKER_PORT 127.0.0.1
cafile $LAB/cloud-client-ca.pem
certfile $LAB/broker-chain.pem
keyfile $LAB/broker.key
require_certificate true
use_identity_as_username true
EOF

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

: >"$LAB/mosquitto.log"
# setsid: Ctrl-C in this terminal goes to certbridge, not to the broker;
# this script stops the broker itself, by PID.
setsid mosquitto -c "$LAB/mosquitto.conf" </dev/null >>"$LAB/mosquitto.log" 2>&1 &
MQ_PID=$!
for _ in $(seq 100); do
	kill -0 "$MQ_PID" 2>/dev/null || { cat "$LAB/mosquitto.log" >&2; die "mosquitto did not start"; }
	port_open "$BROKER_PORT" && break
	sleep 0.1
done
port_open "$BROKER_PORT" || { cat "$LAB/mosquitto.log" >&2; die "mosquitto is not listening on $BROKER_PORT after 10s"; }

OLD="--cafile $LAB/ca-old.pem --cert $LAB/dev-old-1.pem --key $LAB/dev-old-1.key"
NEW="--cafile $LAB/ca-old.pem --cert $LAB/dev-new-1-chain.pem --key $LAB/dev-new-1.key"
cat <<EOF

== certbridge lab ==
  broker (the "cloud"): mosquitto on 127.0.0.1:$BROKER_PORT, pid $MQ_PID, log $LAB/mosquitto.log
  gateway:              certbridge on 127.0.0.1:$GW_PORT, admin http://127.0.0.1:$ADMIN_PORT/status
  configuration:        $CONF
  certificates:         $LAB

Devices trust only the 2019 CA (ca-old.pem), as legacy firmware does.
In other terminals, try:

# an old-CA device subscribes (certificate from the 2019 device CA)
mosquitto_sub -h 127.0.0.1 -p $GW_PORT $OLD -t 'lab/#' -v

# a new-CA device subscribes (2026 CA, sends its intermediate along)
mosquitto_sub -h 127.0.0.1 -p $GW_PORT $NEW -t 'lab/#' -v

# the old-CA device publishes
mosquitto_pub -h 127.0.0.1 -p $GW_PORT $OLD -t lab/hello -m 'hello from dev-old-1'

# the new-CA device publishes
mosquitto_pub -h 127.0.0.1 -p $GW_PORT $NEW -t lab/hello -m 'hello from dev-new-1'

# refused: unknown CA, expired, not yet valid (watch the reason= in the log below)
mosquitto_pub -h 127.0.0.1 -p $GW_PORT --cafile $LAB/ca-old.pem --cert $LAB/dev-unknown.pem --key $LAB/dev-unknown.key -t lab/hello -m x
mosquitto_pub -h 127.0.0.1 -p $GW_PORT --cafile $LAB/ca-old.pem --cert $LAB/dev-expired.pem --key $LAB/dev-expired.key -t lab/hello -m x
mosquitto_pub -h 127.0.0.1 -p $GW_PORT --cafile $LAB/ca-old.pem --cert $LAB/dev-future.pem --key $LAB/dev-future.key -t lab/hello -m x

Ctrl-C stops certbridge and the broker. certbridge's log follows; it
serves once it prints event=ready.

EOF

# In the foreground: certbridge gets the terminal's Ctrl-C (SIGINT) and
# shuts down gracefully; the EXIT trap then stops mosquitto.
set +e
"$BIN" -c "$CONF"
rc=$?
set -e
echo "lab: certbridge exited with $rc" >&2
exit "$rc"
