/*
 * fuzz_mqtt.c - libFuzzer target for the MQTT codec.
 *
 * Feeds arbitrary bytes to every decoder certbridge exposes to the network
 * and checks the codec's own promises on what it accepts: a decoded fixed
 * header never claims more than the limit, and a CONNECT that decodes
 * re-encodes to a packet that decodes to the same fields.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_connect_roundtrip(const struct mqtt_connect *c)
{
	struct mqtt_fixed fh;
	struct mqtt_connect again;
	char why[MQTT_WHY_LEN];
	size_t n = mqtt_connect_encode(c, NULL, 0);
	uint8_t *buf;

	if (n == 0) {
		return;
	}
	buf = malloc(n);
	CB_ASSERT(buf != NULL);
	CB_ASSERT(mqtt_connect_encode(c, buf, n) == n);
	CB_ASSERT(mqtt_fixed_decode(buf, n, 0, &fh, why) == MQTT_OK);
	CB_ASSERT(fh.type == MQTT_CONNECT);
	CB_ASSERT((size_t)fh.header_len + fh.remaining == n);
	CB_ASSERT(mqtt_connect_decode(buf + fh.header_len, fh.remaining, &again,
	    why) == MQTT_OK);
	CB_ASSERT(again.version == c->version);
	CB_ASSERT(again.level == c->level && again.bridge == c->bridge);
	CB_ASSERT(again.keepalive == c->keepalive);
	CB_ASSERT(again.client_id.len == c->client_id.len);
	CB_ASSERT(c->client_id.len == 0 || memcmp(again.client_id.ptr,
	    c->client_id.ptr, c->client_id.len) == 0);
	CB_ASSERT(again.has_username == c->has_username);
	CB_ASSERT(again.props.len == c->props.len);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mqtt_fixed fh;
	struct mqtt_connect c;
	struct mqtt_connack ack;
	char why[MQTT_WHY_LEN];
	uint32_t limit;
	enum mqtt_rc rc;

	if (size < 1) {
		return 0;
	}
	/* The first byte picks the size limit, so both sides of it are
	 * explored. */
	limit = (uint32_t)data[0] * 64u;
	data++;
	size--;
	rc = mqtt_fixed_decode(data, size, limit, &fh, why);
	if (rc == MQTT_OK) {
		CB_ASSERT(fh.header_len >= 2 && fh.header_len <= 5);
		CB_ASSERT(limit == 0 || (uint64_t)fh.header_len + fh.remaining
		    <= limit);
		(void)mqtt_flags_valid(fh.type, fh.flags, MQTT_V311);
		(void)mqtt_flags_valid(fh.type, fh.flags, MQTT_V5);
		(void)mqtt_type_name(fh.type);
		if (size >= (size_t)fh.header_len + fh.remaining) {
			const uint8_t *body = data + fh.header_len;

			if (mqtt_connect_decode(body, fh.remaining, &c, why)
			    == MQTT_OK) {
				check_connect_roundtrip(&c);
			}
			(void)mqtt_connack_decode(body, fh.remaining, MQTT_V311,
			    &ack, why);
			(void)mqtt_connack_decode(body, fh.remaining, MQTT_V5,
			    &ack, why);
		}
	}
	/* The body decoders must also hold on bytes that no header framed. */
	rc = mqtt_connect_decode(data, size, &c, why);
	if (rc == MQTT_OK) {
		check_connect_roundtrip(&c);
	}
	{
		uint8_t level = 0;

		/* The level read from a CONNECT's first bytes is the one
		 * the whole decode saw. */
		if (mqtt_connect_level(data, size, &level) == MQTT_OK
		    && (rc == MQTT_OK || rc == MQTT_UNSUPPORTED)) {
			CB_ASSERT(level == c.level);
		}
	}
	(void)mqtt_utf8_valid(data, size);
	return 0;
}
