#!/bin/sh
# device.sh - the docker lab's device simulator (service device in
# docker/compose.yaml), with the lab's two kinds of device:
#
#   dev-new-1 (new 2026 CA, sends its intermediate) subscribes to lab/#
#   dev-old-1 (old 2019 CA) publishes lab/hello every $INTERVAL seconds
#
# both through certbridge, trusting only the 2019 CA (ca-old.pem) as legacy
# firmware does. Every message the subscriber receives is printed
# ("lab/hello hello from dev-old-1 #3"): seeing them proves both CAs are
# admitted and the broker round trip works. Failed publishes are printed and
# retried; a subscriber that loses its connection is restarted.
#
# Environment: GW_HOST (certbridge), GW_PORT (8883), PKI (/pki),
# INTERVAL (5), TOPIC (lab/hello), COUNT (0 = publish forever).
set -u

GW_HOST=${GW_HOST:-certbridge}
GW_PORT=${GW_PORT:-8883}
PKI=${PKI:-/pki}
INTERVAL=${INTERVAL:-5}
TOPIC=${TOPIC:-lab/hello}
COUNT=${COUNT:-0}

SUB_LOOP=

# On exit (COUNT reached, an error, or SIGTERM from `docker stop`): stop the
# subscriber loop, which stops its mosquitto_sub.
cleanup() {
	if [ -n "$SUB_LOOP" ]; then
		kill -TERM "$SUB_LOOP" 2>/dev/null
		wait "$SUB_LOOP" 2>/dev/null
	fi
}
trap cleanup EXIT
trap 'exit 0' TERM INT

for f in ca-old.pem dev-old-1.pem dev-old-1.key dev-new-1-chain.pem dev-new-1.key; do
	if [ ! -r "$PKI/$f" ]; then
		echo "device: $PKI/$f is missing or unreadable (has the pki service run?)" >&2
		exit 1
	fi
done

echo "device: subscribing as dev-new-1 and publishing as dev-old-1 every ${INTERVAL}s via $GW_HOST:$GW_PORT"

(
	SUB=
	trap 'kill -TERM $SUB 2>/dev/null; exit 0' TERM
	while :; do
		mosquitto_sub -h "$GW_HOST" -p "$GW_PORT" -i dev-new-1 \
			--cafile "$PKI/ca-old.pem" --cert "$PKI/dev-new-1-chain.pem" --key "$PKI/dev-new-1.key" \
			-q 1 -t 'lab/#' -v &
		SUB=$!
		wait "$SUB"
		echo "device: dev-new-1 subscriber ended (rc $?); again in 2s" >&2
		sleep 2
	done
) &
SUB_LOOP=$!

n=0
while [ "$COUNT" -eq 0 ] || [ "$n" -lt "$COUNT" ]; do
	sleep "$INTERVAL" &
	wait $!
	n=$((n + 1))
	if ! mosquitto_pub -h "$GW_HOST" -p "$GW_PORT" -i dev-old-1 \
		--cafile "$PKI/ca-old.pem" --cert "$PKI/dev-old-1.pem" --key "$PKI/dev-old-1.key" \
		-q 1 -t "$TOPIC" -m "hello from dev-old-1 #$n"; then
		echo "device: dev-old-1 publish #$n failed (see certbridge's log)" >&2
	fi
done
# COUNT reached: let the last message arrive, then stop.
sleep "$INTERVAL" &
wait $!
