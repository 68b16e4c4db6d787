/*
 * reason.c - the slug table (see reason.h).
 */
#include "reason.h"
#include "util.h"

static const char *const slugs[REASON_COUNT_] = {
	[REASON_NONE] = "none",
	[REASON_UNKNOWN_CA] = "unknown-ca",
	[REASON_EXPIRED] = "expired",
	[REASON_NOT_YET_VALID] = "not-yet-valid",
	[REASON_REVOKED] = "revoked",
	[REASON_CRL_STALE] = "crl-stale",
	[REASON_CRL_ERROR] = "crl-error",
	[REASON_RETIRED_CA] = "retired-ca",
	[REASON_BAD_SIGNATURE] = "bad-signature",
	[REASON_NO_CLIENT_CERT] = "no-client-cert",
	[REASON_BAD_CERT] = "bad-cert",
	[REASON_NAME_MISMATCH] = "name-mismatch",
	[REASON_PEER_REJECTED] = "peer-rejected",
	[REASON_TIMEOUT] = "timeout",
	[REASON_PROTOCOL] = "protocol",
	[REASON_IDENTITY] = "identity",
	[REASON_UPSTREAM_UNAVAILABLE] = "upstream-unavailable",
	[REASON_LIMIT] = "limit",
	[REASON_PACKET_TOO_LARGE] = "packet-too-large",
	[REASON_TAKEOVER] = "takeover",
	[REASON_KEEPALIVE] = "keepalive",
	[REASON_DEVICE_CLOSED] = "device-closed",
	[REASON_BROKER_CLOSED] = "broker-closed",
	[REASON_SHUTDOWN] = "shutdown",
	[REASON_INTERNAL] = "internal",
};

const char *
reason_slug(enum reason r)
{
	if ((unsigned)r >= CB_ARRAY_SIZE(slugs) || slugs[r] == NULL) {
		return "unknown";
	}
	return slugs[r];
}
