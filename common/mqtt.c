/*
 * mqtt.c - framing for every MQTT packet (the fixed header and its
 * variable byte integer, the flag rules per type, type names, UTF-8
 * validation) and everything certbridge writes: a re-encoded CONNECT, a
 * refusal CONNACK, a v5 DISCONNECT. The bodies it reads, CONNECT and
 * CONNACK, are decoded in mqtt_connect.c.
 *
 * Clause numbers are MQTT 5.0's unless marked "3.1.1"; the two versions
 * agree on everything here unless a comment says otherwise.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mqtt.h"
#include "mqtt_int.h"
#include "util.h"

/* Fills why (when the caller gave one) with a reason that names what was
 * found, so the log line says what to fix without a packet capture. */
void
mqtt_why(char *why, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL) {
		return;
	}
	va_start(ap, fmt);
	(void)vsnprintf(why, MQTT_WHY_LEN, fmt, ap);
	va_end(ap);
}

static enum mqtt_rc mqtt_vbi_read(const uint8_t *p, size_t len, bool minimal,
    uint32_t *value, size_t *used, char why[MQTT_WHY_LEN]);

enum mqtt_rc
mqtt_vbi_decode(const uint8_t *p, size_t len, uint32_t *value, size_t *used,
    char why[MQTT_WHY_LEN])
{
	return mqtt_vbi_read(p, len, true, value, used, why);
}

static enum mqtt_rc
mqtt_vbi_read(const uint8_t *p, size_t len, bool minimal, uint32_t *value,
    size_t *used, char why[MQTT_WHY_LEN])
{
	uint32_t v = 0;
	size_t i;

	/* At most four bytes carry a value: a fourth byte with its
	 * continuation bit set is wrong whatever follows, so it is refused
	 * without waiting for a fifth [MQTT-1.5.5]. */
	for (i = 0; i < 4; i++) {
		uint8_t b;

		if (i >= len) {
			return MQTT_NEED_MORE;
		}
		b = p[i];
		v |= (uint32_t)(b & 0x7fu) << (7u * i);
		if ((b & 0x80u) != 0) {
			continue;
		}
		/* A last byte of 0 after a continuation adds nothing: the
		 * value fits in fewer bytes [MQTT-1.5.5-1]. Accepting it
		 * would give one value several encodings, and a re-encoded
		 * packet would no longer match the original. */
		if (minimal && i > 0 && b == 0) {
			mqtt_why(why, "%zu-byte encoding of %u is not minimal "
			    "[MQTT-1.5.5-1]", i + 1, (unsigned)v);
			return MQTT_MALFORMED;
		}
		*value = v;
		*used = i + 1;
		return MQTT_OK;
	}
	mqtt_why(why, "variable byte integer continues past 4 bytes "
	    "[MQTT-1.5.5]");
	return MQTT_MALFORMED;
}

size_t
mqtt_vbi_encode(uint32_t value, uint8_t out[4])
{
	size_t n = 0;

	if (value > MQTT_MAX_REMAINING) {
		return 0;
	}
	do {
		uint8_t b = (uint8_t)(value & 0x7fu);

		value >>= 7;
		if (value != 0) {
			b |= 0x80u;
		}
		out[n++] = b;
	} while (value != 0);
	return n;
}

static enum mqtt_rc mqtt_fixed_read(const uint8_t *buf, size_t len,
    uint32_t max_packet, bool minimal, struct mqtt_fixed *out,
    char why[MQTT_WHY_LEN]);

enum mqtt_rc
mqtt_fixed_decode(const uint8_t *buf, size_t len, uint32_t max_packet,
    struct mqtt_fixed *out, char why[MQTT_WHY_LEN])
{
	return mqtt_fixed_read(buf, len, max_packet, true, out, why);
}

enum mqtt_rc
mqtt_fixed_frame(const uint8_t *buf, size_t len, uint32_t max_packet,
    struct mqtt_fixed *out, char why[MQTT_WHY_LEN])
{
	return mqtt_fixed_read(buf, len, max_packet, false, out, why);
}

static enum mqtt_rc
mqtt_fixed_read(const uint8_t *buf, size_t len, uint32_t max_packet,
    bool minimal, struct mqtt_fixed *out, char why[MQTT_WHY_LEN])
{
	uint32_t remaining;
	size_t used;
	uint64_t total;
	enum mqtt_rc rc;
	char inner[MQTT_WHY_LEN];

	mqtt_why(why, "%s", "");
	if (len < 1) {
		return MQTT_NEED_MORE;
	}
	rc = mqtt_vbi_read(buf + 1, len - 1, minimal, &remaining, &used,
	    inner);
	if (rc == MQTT_MALFORMED) {
		mqtt_why(why, "remaining length: %s", inner);
	}
	if (rc != MQTT_OK) {
		return rc;
	}
	out->type = (uint8_t)(buf[0] >> 4);
	out->flags = (uint8_t)(buf[0] & 0x0fu);
	out->header_len = (uint8_t)(1 + used);
	out->remaining = remaining;
	/* Judged before a single body byte is buffered, so a peer that
	 * announces 256 MB costs nothing but this header. */
	total = (uint64_t)out->header_len + remaining;
	if (max_packet != 0 && total > max_packet) {
		mqtt_why(why, "%s packet of %llu bytes is larger than the "
		    "limit of %u bytes", mqtt_type_name(out->type),
		    (unsigned long long)total, (unsigned)max_packet);
		return MQTT_TOO_BIG;
	}
	return MQTT_OK;
}

bool
mqtt_flags_valid(uint8_t type, uint8_t flags, uint8_t version)
{
	if (flags > 0x0fu) {
		return false;
	}
	switch (type) {
	case MQTT_RESERVED:
		/* Type 0 is reserved in every version: no flags make it a
		 * packet. */
		return false;
	case MQTT_PUBLISH:
		/* DUP, QoS and RETAIN are all meaningful; only QoS 3 is
		 * forbidden [MQTT-3.3.1-4]. DUP on QoS 0 [MQTT-3.3.1-2] and
		 * the rest of PUBLISH's meaning are the broker's to judge. */
		return ((flags >> 1) & 0x3u) != 0x3u;
	case MQTT_PUBREL:
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		/* 3.1.1 and 5.0 fix these to 0010 [MQTT-3.6.1-1]
		 * [MQTT-3.8.1-1] [MQTT-3.10.1-1]. MQTT 3.1 sends them "at
		 * QoS 1" and sets DUP on a retransmission, so 1010 is a
		 * legal 3.1 packet that must not cost the device its
		 * connection. */
		if (version == MQTT_V31) {
			return (flags & 0x7u) == 0x2u;
		}
		return flags == 0x2u;
	case MQTT_AUTH:
		/* AUTH is new in 5.0; in 3.x type 15 is reserved. */
		return version == MQTT_V5 && flags == 0;
	default:
		/* Every other type has all four bits reserved as 0 (3.1.1
		 * [MQTT-2.2.2-1], 5.0 [MQTT-2.1.3-1]). */
		return type < 16 && flags == 0;
	}
}

static const char *const type_names[16] = {
	"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC",
	"PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK",
	"PINGREQ", "PINGRESP", "DISCONNECT", "AUTH",
};

const char *
mqtt_type_name(uint8_t type)
{
	if (type >= CB_ARRAY_SIZE(type_names)) {
		return "UNKNOWN";
	}
	return type_names[type];
}

bool
mqtt_utf8_valid(const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = p[i];
		uint32_t cp;
		size_t n, k;

		/* U+0000 is forbidden even though it is well-formed UTF-8
		 * [MQTT-1.5.4-2] (3.1.1 [MQTT-1.5.3-2]). */
		if (c == 0) {
			return false;
		}
		if (c < 0x80u) {
			i++;
			continue;
		}
		/* 0x80..0xC1 cannot start a character (a continuation byte,
		 * or a lead that could only encode ASCII overlong), and
		 * 0xF5..0xFF would start code points above U+10FFFF. */
		if (c >= 0xc2u && c <= 0xdfu) {
			n = 1;
			cp = c & 0x1fu;
		} else if (c >= 0xe0u && c <= 0xefu) {
			n = 2;
			cp = c & 0x0fu;
		} else if (c >= 0xf0u && c <= 0xf4u) {
			n = 3;
			cp = c & 0x07u;
		} else {
			return false;
		}
		if (len - i - 1 < n) {
			return false;
		}
		for (k = 1; k <= n; k++) {
			uint8_t b = p[i + k];

			if ((b & 0xc0u) != 0x80u) {
				return false;
			}
			cp = (cp << 6) | (uint32_t)(b & 0x3fu);
		}
		/* Well-formed UTF-8 as RFC 3629 restates it: shortest form
		 * only, nothing past U+10FFFF, and no UTF-16 surrogates
		 * [MQTT-1.5.4-1] (3.1.1 [MQTT-1.5.3-1]). */
		if ((n == 2 && cp < 0x800u) || (n == 3 && cp < 0x10000u) ||
		    cp > 0x10ffffu || (cp >= 0xd800u && cp <= 0xdfffu)) {
			return false;
		}
		i += n + 1;
	}
	return true;
}

/* A plain writer: mqtt_connect_encode sizes the packet first, so every
 * write below is known to fit. */
struct wr {
	uint8_t *p;
	size_t off;
};

static void
wr_raw(struct wr *w, const void *src, size_t n)
{
	if (n != 0) {
		memcpy(w->p + w->off, src, n);
		w->off += n;
	}
}

static void
wr_u8(struct wr *w, uint8_t v)
{
	w->p[w->off++] = v;
}

static void
wr_u16(struct wr *w, uint16_t v)
{
	wr_u8(w, (uint8_t)(v >> 8));
	wr_u8(w, (uint8_t)(v & 0xffu));
}

static void
wr_vbi(struct wr *w, uint32_t v)
{
	uint8_t b[4];

	wr_raw(w, b, mqtt_vbi_encode(v, b));
}

static void
wr_field(struct wr *w, const struct mqtt_bytes *b)
{
	wr_u16(w, b->len);
	wr_raw(w, b->ptr, b->len);
}

/* Bytes a property block takes with its length, or 0 if it cannot be
 * encoded. */
static uint64_t
props_size(const struct mqtt_props *p)
{
	uint8_t b[4];
	size_t n = mqtt_vbi_encode(p->len, b);

	return n == 0 ? 0 : n + (uint64_t)p->len;
}

static bool
bytes_ok(const struct mqtt_bytes *b)
{
	return b->len == 0 || b->ptr != NULL;
}

/* Whether c describes a CONNECT its own version allows, so the encoder
 * never sends the broker something the decoder would refuse. */
static bool
connect_encodable(const struct mqtt_connect *c)
{
	if (c->version != MQTT_V31 && c->version != MQTT_V311 &&
	    c->version != MQTT_V5) {
		return false;
	}
	if (!bytes_ok(&c->client_id)) {
		return false;
	}
	if (c->will && (c->will_qos > 2 || !bytes_ok(&c->will_topic) ||
	    !bytes_ok(&c->will_payload))) {
		return false;
	}
	if ((c->has_username && !bytes_ok(&c->username)) ||
	    (c->has_password && !bytes_ok(&c->password))) {
		return false;
	}
	if (c->version == MQTT_V5) {
		if ((c->props.len != 0 && c->props.ptr == NULL) ||
		    (c->will && c->will_props.len != 0 &&
		    c->will_props.ptr == NULL)) {
			return false;
		}
	} else if (c->has_password && !c->has_username) {
		return false; /* 3.1.1 [MQTT-3.1.2-22] */
	}
	return true;
}

size_t
mqtt_connect_encode(const struct mqtt_connect *c, uint8_t *out, size_t cap)
{
	const char *name = c->version == MQTT_V31 ? "MQIsdp" : "MQTT";
	struct mqtt_bytes proto;
	struct wr w = {out, 0};
	uint64_t rem, part;
	uint8_t flags = 0, vbi[4];
	size_t total;
	bool v5 = c->version == MQTT_V5;

	if (!connect_encodable(c)) {
		return 0;
	}
	/* The flags are rebuilt from the fields, never copied from
	 * connect_flags: a field the identity rules dropped must take its
	 * flag along, or the broker would read the next field in its place
	 * [MQTT-3.1.3-1]. */
	proto.ptr = (const uint8_t *)name;
	proto.len = (uint16_t)strlen(name);
	/* name, level, flags, keep alive, client id */
	rem = 2u + proto.len + 1u + 1u + 2u + 2u + c->client_id.len;
	if (v5) {
		if ((part = props_size(&c->props)) == 0) {
			return 0;
		}
		rem += part;
	}
	if (c->will) {
		if (v5) {
			if ((part = props_size(&c->will_props)) == 0) {
				return 0;
			}
			rem += part;
		}
		rem += 2u + c->will_topic.len + 2u + c->will_payload.len;
		flags |= (uint8_t)(0x04u | (unsigned)c->will_qos << 3 |
		    (c->will_retain ? 0x20u : 0u));
	}
	if (c->has_username) {
		rem += 2u + c->username.len;
		flags |= 0x80u;
	}
	if (c->has_password) {
		rem += 2u + c->password.len;
		flags |= 0x40u;
	}
	if (c->clean_start) {
		flags |= 0x02u;
	}
	if (rem > MQTT_MAX_REMAINING) {
		return 0;
	}
	total = 1 + mqtt_vbi_encode((uint32_t)rem, vbi) + (size_t)rem;
	if (total > cap) {
		return total;
	}
	wr_u8(&w, (uint8_t)(MQTT_CONNECT << 4));
	wr_vbi(&w, (uint32_t)rem);
	wr_field(&w, &proto);
	/* A bridge's level keeps its 0x80 (docs/protocol.md). */
	wr_u8(&w, (c->level & 0x7fu) == c->version ? c->level : c->version);
	wr_u8(&w, flags);
	wr_u16(&w, c->keepalive);
	if (v5) {
		wr_vbi(&w, c->props.len);
		wr_raw(&w, c->props.ptr, c->props.len);
	}
	wr_field(&w, &c->client_id);
	if (c->will) {
		if (v5) {
			wr_vbi(&w, c->will_props.len);
			wr_raw(&w, c->will_props.ptr, c->will_props.len);
		}
		wr_field(&w, &c->will_topic);
		wr_field(&w, &c->will_payload);
	}
	if (c->has_username) {
		wr_field(&w, &c->username);
	}
	if (c->has_password) {
		wr_field(&w, &c->password);
	}
	return w.off;
}

size_t
mqtt_connack_encode(uint8_t version, uint8_t code, uint8_t out[5])
{
	out[0] = (uint8_t)(MQTT_CONNACK << 4);
	out[2] = 0; /* session present 0: a refusal never resumes one */
	out[3] = code;
	if (version != MQTT_V5) {
		out[1] = 2;
		return 4;
	}
	/* The property length is not optional in a 5.0 CONNACK, even when
	 * there are no properties [MQTT-2.2.2-1]. */
	out[1] = 3;
	out[4] = 0;
	return 5;
}

size_t
mqtt_disconnect_encode_v5(uint8_t reason, uint8_t out[4])
{
	/* Reason code plus a zero property length: 5.0 would allow dropping
	 * the property length here, but writing it keeps one fixed form. */
	out[0] = (uint8_t)(MQTT_DISCONNECT << 4);
	out[1] = 2;
	out[2] = reason;
	out[3] = 0;
	return 4;
}
