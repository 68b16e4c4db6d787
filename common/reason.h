/*
 * reason.h - the reason slugs shared by logs, metrics and the tools.
 *
 * A slug is short, stable and greppable (reason=expired); operators alert on
 * it, so a slug once shipped is never renamed. What to fix is said by the
 * caller, in a detail precise to the event.
 */
#ifndef CB_REASON_H
#define CB_REASON_H

enum reason {
	REASON_NONE = 0,
	/* certificate and TLS refusals */
	REASON_UNKNOWN_CA,
	REASON_EXPIRED,
	REASON_NOT_YET_VALID,
	REASON_REVOKED,
	REASON_CRL_STALE,
	REASON_CRL_ERROR,
	REASON_RETIRED_CA,
	REASON_BAD_SIGNATURE,
	REASON_NO_CLIENT_CERT,
	REASON_BAD_CERT,
	REASON_NAME_MISMATCH,
	REASON_PEER_REJECTED,
	REASON_TIMEOUT,
	REASON_PROTOCOL,
	/* MQTT-level refusals and ends */
	REASON_IDENTITY,
	REASON_UPSTREAM_UNAVAILABLE,
	REASON_LIMIT,
	REASON_PACKET_TOO_LARGE,
	REASON_TAKEOVER,
	REASON_KEEPALIVE,
	REASON_DEVICE_CLOSED,
	REASON_BROKER_CLOSED,
	REASON_SHUTDOWN,
	REASON_INTERNAL,
	REASON_COUNT_
};

/* "unknown-ca", "expired", ...; "none" for REASON_NONE. */
const char *reason_slug(enum reason r);

#endif
