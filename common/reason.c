/*
 * reason.c - slug and hint table (see reason.h).
 */
#include "reason.h"
#include "util.h"

struct reason_row {
	const char *slug;
	const char *hint;
};

static const struct reason_row rows[REASON_COUNT_] = {
	[REASON_NONE] = {"none", ""},
	[REASON_UNKNOWN_CA] = {"unknown-ca",
	    "the certificate chain does not end in a trusted CA; add the CA "
	    "(or the missing intermediate) to the configuration"},
	[REASON_EXPIRED] = {"expired",
	    "the certificate has expired; issue a new one, or set "
	    "expired_grace on its [ca.NAME] to bring a stranded fleet home"},
	[REASON_NOT_YET_VALID] = {"not-yet-valid",
	    "the certificate's notBefore is in the future; check the clock of "
	    "the machine that issued it, or raise [downstream] clock_skew"},
	[REASON_REVOKED] = {"revoked",
	    "the certificate is listed in its CA's CRL; issue the device a "
	    "new certificate"},
	[REASON_CRL_STALE] = {"crl-stale",
	    "the CA's CRL is past its nextUpdate, so revocation cannot be "
	    "checked; install a fresh CRL and reload"},
	[REASON_CRL_ERROR] = {"crl-error",
	    "the CA's CRL gave no clear answer for this certificate, so the "
	    "device is refused rather than admitted unchecked; check the "
	    "CRL file"},
	[REASON_RETIRED_CA] = {"retired-ca",
	    "the CA that issued this certificate is past its retire_after "
	    "date; migrate the device to the new CA"},
	[REASON_BAD_SIGNATURE] = {"bad-signature",
	    "a signature in the chain does not verify: the certificate was "
	    "not issued by the CA it names"},
	[REASON_NO_CLIENT_CERT] = {"no-client-cert",
	    "the device sent no client certificate; configure one on the "
	    "device, or set [downstream] client_auth = optional"},
	[REASON_BAD_CERT] = {"bad-cert",
	    "the certificate is malformed or unusable for this purpose"},
	[REASON_NAME_MISMATCH] = {"name-mismatch",
	    "the broker's certificate does not carry the expected name; set "
	    "[upstream] sni to a name in its certificate"},
	[REASON_PEER_REJECTED] = {"peer-rejected",
	    "the peer aborted the handshake with an alert, usually because "
	    "it does not trust our certificate"},
	[REASON_TIMEOUT] = {"timeout",
	    "the peer did not complete the step in time"},
	[REASON_PROTOCOL] = {"protocol",
	    "the peer broke the TLS or MQTT protocol"},
	[REASON_IDENTITY] = {"identity",
	    "the device's MQTT identity does not match its certificate"},
	[REASON_UPSTREAM_UNAVAILABLE] = {"upstream-unavailable",
	    "the broker could not be reached or refused the gateway; see "
	    "the upstream log line for the cause"},
	[REASON_LIMIT] = {"limit",
	    "max_connections reached; raise [gateway] max_connections or "
	    "add a gateway"},
	[REASON_PACKET_TOO_LARGE] = {"packet-too-large",
	    "an MQTT packet exceeded [mqtt] max_packet_size"},
	[REASON_TAKEOVER] = {"takeover",
	    "a newer connection of the same device (identity, or client id "
	    "with [mqtt] identity = none) replaced this one while it waited "
	    "for the broker; a device reconnecting in a loop does this"},
	[REASON_KEEPALIVE] = {"keepalive",
	    "no packet within 1.5 times the keepalive"},
	[REASON_DEVICE_CLOSED] = {"device-closed", "the device closed"},
	[REASON_BROKER_CLOSED] = {"broker-closed", "the broker closed"},
	[REASON_SHUTDOWN] = {"shutdown", "certbridge is stopping"},
	[REASON_INTERNAL] = {"internal",
	    "out of memory or descriptors; see the preceding error"},
};

const char *
reason_slug(enum reason r)
{
	if ((unsigned)r >= CB_ARRAY_SIZE(rows) || rows[r].slug == NULL) {
		return "unknown";
	}
	return rows[r].slug;
}

const char *
reason_hint(enum reason r)
{
	if ((unsigned)r >= CB_ARRAY_SIZE(rows) || rows[r].hint == NULL) {
		return "";
	}
	return rows[r].hint;
}
