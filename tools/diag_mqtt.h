/*
 * diag_mqtt.h - CONNACK codes in words, and the sentence certbridge-diag
 * prints when a server refuses its CONNECT: what the code means and what
 * to change, for a broker and for certbridge in front of one.
 */
#ifndef CB_DIAG_MQTT_H
#define CB_DIAG_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "3.1.1", "311" or "4"; "5" or "5.0"; "3.1", "31" or "3": the protocol
 * level (4, 5, 3) in *out. False for anything else. */
bool diag_mqtt_version_parse(const char *s, uint8_t *out);

/* "3.1", "3.1.1", "5"; "?" for other levels. */
const char *diag_mqtt_version_name(uint8_t level);

/* The name of a CONNACK code for the protocol level (3 and 4: return codes
 * 0-5; 5: reason codes 0x00 and 0x80-0x9F). "unknown code" for others. */
const char *diag_connack_name(uint8_t version, uint8_t code);

/* What the explanation may mention. */
struct diag_connect_facts {
	const char *client_id;   /* as sent */
	const char *cert_cn;     /* the CN of our client certificate, or NULL */
	const char *username;    /* as sent, or NULL */
};

/* The sentence for a refused CONNECT (code != 0), names escaped. */
void diag_connack_explain(uint8_t version, uint8_t code,
    const struct diag_connect_facts *f, char *out, size_t cap);

#endif
