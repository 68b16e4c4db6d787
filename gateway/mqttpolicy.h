/*
 * mqttpolicy.h - the [mqtt] identity rules applied to a device's CONNECT.
 *
 * Takes the decoded CONNECT and the identity the device's certificate
 * proved, and decides: pass it on unchanged, pass on a rewritten CONNECT
 * (client id and/or username replaced, remaining length recomputed, v5
 * properties kept byte for byte), or refuse with the CONNACK code the
 * device's protocol version uses for that refusal.
 */
#ifndef CB_MQTTPOLICY_H
#define CB_MQTTPOLICY_H

#include <stdint.h>

#include <event2/buffer.h>

#include "config.h"
#include "mqtt.h"
#include "reason.h"
#include "trust.h"

enum mqttpolicy_rc {
	MQTTPOLICY_PASS = 0,   /* forward the original bytes */
	MQTTPOLICY_REWRITTEN,  /* forward what was written to out */
	MQTTPOLICY_REFUSE,     /* answer with connack_code, then close */
};

struct mqttpolicy_result {
	uint8_t connack_code;
	enum reason reason;
	char detail[320];
};

/*
 * Applies cfg->mqtt to c (may modify c). On REWRITTEN the new CONNECT
 * packet has been appended to out.
 */
enum mqttpolicy_rc mqttpolicy_apply(const struct cfg *cfg,
    const struct trust_verdict *v, bool has_cert, struct mqtt_connect *c,
    struct evbuffer *out, struct mqttpolicy_result *res);

#endif
