/*
 * test_mqtt.c - the MQTT codec against hand-built packets.
 *
 * Packets are assembled byte by byte here rather than produced by the
 * encoder, so a decoder bug and an encoder bug cannot cancel out. Bodies
 * given to the decoder are copied into buffers of exactly their length, so
 * AddressSanitizer catches any read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt.h"

/* ------------------------------------------------------------ builders */

struct buf {
	uint8_t b[2048];
	size_t n;
};

static void
put(struct buf *p, const void *d, size_t n)
{
	assert_true(p->n + n <= sizeof(p->b));
	if (n != 0) {
		memcpy(p->b + p->n, d, n);
	}
	p->n += n;
}

static void
put_u8(struct buf *p, uint8_t v)
{
	put(p, &v, 1);
}

static void
put_u16(struct buf *p, uint16_t v)
{
	put_u8(p, (uint8_t)(v >> 8));
	put_u8(p, (uint8_t)v);
}

static void
put_u32(struct buf *p, uint32_t v)
{
	put_u16(p, (uint16_t)(v >> 16));
	put_u16(p, (uint16_t)v);
}

static void
put_vbi(struct buf *p, uint32_t v)
{
	uint8_t t[4];
	size_t n = mqtt_vbi_encode(v, t);

	assert_true(n > 0);
	put(p, t, n);
}

/* A length-prefixed field; p == NULL means "absent", nothing written. */
struct fld {
	const void *p;
	size_t n;
};

#define F(s) ((struct fld){(s), sizeof(s) - 1})
#define NOF ((struct fld){NULL, 0})

static void
put_fld(struct buf *p, struct fld f)
{
	if (f.p == NULL) {
		return;
	}
	put_u16(p, (uint16_t)f.n);
	put(p, f.p, f.n);
}

static void
put_str(struct buf *p, const char *s)
{
	put_fld(p, (struct fld){s, strlen(s)});
}

/* A v5 property block: its length, then its bytes. */
static void
put_block(struct buf *p, const struct buf *blk)
{
	put_vbi(p, (uint32_t)blk->n);
	put(p, blk->b, blk->n);
}

/* Everything a CONNECT body holds, written as given (flags are not
 * derived from the fields), so inconsistent packets can be built too. */
struct spec {
	struct fld proto;
	uint8_t level;
	uint8_t flags;
	uint16_t keepalive;
	const struct buf *props; /* NULL: no property block (3.x) */
	struct fld client_id;
	const struct buf *will_props;
	struct fld will_topic;
	struct fld will_payload;
	struct fld username;
	struct fld password;
};

static void
build(struct buf *out, const struct spec *s)
{
	out->n = 0;
	put_fld(out, s->proto);
	put_u8(out, s->level);
	put_u8(out, s->flags);
	put_u16(out, s->keepalive);
	if (s->props != NULL) {
		put_block(out, s->props);
	}
	put_fld(out, s->client_id);
	if (s->will_props != NULL) {
		put_block(out, s->will_props);
	}
	put_fld(out, s->will_topic);
	put_fld(out, s->will_payload);
	put_fld(out, s->username);
	put_fld(out, s->password);
}

/* The whole packet: fixed header plus body. */
static void
wrap(struct buf *pkt, const struct buf *body)
{
	pkt->n = 0;
	put_u8(pkt, 0x10);
	put_vbi(pkt, (uint32_t)body->n);
	put(pkt, body->b, body->n);
}

/* MQTT 3.1: clean session, user name and password. */
static struct spec
spec_v31(void)
{
	return (struct spec){
		.proto = F("MQIsdp"), .level = 3, .flags = 0xc2,
		.keepalive = 60, .client_id = F("dev31"),
		.username = F("user31"), .password = F("pw31"),
	};
}

/* MQTT 3.1.1 with everything: will (QoS 1, retained), user, password. */
static struct spec
spec_v311(void)
{
	return (struct spec){
		.proto = F("MQTT"), .level = 4, .flags = 0xee,
		.keepalive = 30, .client_id = F("device-0001"),
		.will_topic = F("dev/0001/status"),
		.will_payload = F("offline"),
		.username = F("alice"), .password = F("s3cret"),
	};
}

static struct buf v5_props, v5_will_props, empty_props;

/* Every property CONNECT may carry, the user property twice. */
static void
make_v5_props(struct buf *p)
{
	p->n = 0;
	put_u8(p, 0x11), put_u32(p, 3600);       /* session expiry */
	put_u8(p, 0x21), put_u16(p, 20);         /* receive maximum */
	put_u8(p, 0x27), put_u32(p, 1048576);    /* maximum packet size */
	put_u8(p, 0x22), put_u16(p, 10);         /* topic alias maximum */
	put_u8(p, 0x19), put_u8(p, 1);           /* request response info */
	put_u8(p, 0x17), put_u8(p, 0);           /* request problem info */
	put_u8(p, 0x26), put_str(p, "site"), put_str(p, "plant-7");
	put_u8(p, 0x26), put_str(p, "site"), put_str(p, "plant-8");
	put_u8(p, 0x15), put_str(p, "SCRAM-SHA-1");
	put_u8(p, 0x16), put_fld(p, F("\x01\x00\x02"));
}

/* Every property a will may carry. */
static void
make_v5_will_props(struct buf *p)
{
	p->n = 0;
	put_u8(p, 0x18), put_u32(p, 5);          /* will delay interval */
	put_u8(p, 0x01), put_u8(p, 1);           /* payload format: UTF-8 */
	put_u8(p, 0x02), put_u32(p, 600);        /* message expiry */
	put_u8(p, 0x03), put_str(p, "text/plain");
	put_u8(p, 0x08), put_str(p, "dev/5/reply");
	put_u8(p, 0x09), put_fld(p, F("\x00\xff"));
	put_u8(p, 0x26), put_str(p, "why"), put_str(p, "lost");
}

/* MQTT 5.0 with everything: properties, will (QoS 2) with will
 * properties, user name and a binary password. */
static struct spec
spec_v5(void)
{
	return (struct spec){
		.proto = F("MQTT"), .level = 5, .flags = 0xd6,
		.keepalive = 120, .props = &v5_props,
		.client_id = F("device-0005"), .will_props = &v5_will_props,
		.will_topic = F("dev/5/will"), .will_payload = F("\x00\xff"),
		.username = F("bob"), .password = F("\xde\xad\x00\xbe\xef"),
	};
}

/* A 5.0 CONNECT with no will or credentials and the given properties. */
static struct spec
spec_v5_props(const struct buf *props)
{
	return (struct spec){
		.proto = F("MQTT"), .level = 5, .flags = 0x02,
		.keepalive = 10, .props = props, .client_id = F("c5"),
	};
}

static int
setup(void **state)
{
	(void)state;
	make_v5_props(&v5_props);
	make_v5_will_props(&v5_will_props);
	empty_props.n = 0;
	return 0;
}

/* Decodes body from a heap copy of exactly its length. */
static enum mqtt_rc
decode_exact(const uint8_t *body, size_t len, struct mqtt_connect *c,
    char *why)
{
	uint8_t *copy = malloc(len ? len : 1);
	enum mqtt_rc rc;

	assert_non_null(copy);
	if (len != 0) {
		memcpy(copy, body, len);
	}
	rc = mqtt_connect_decode(copy, len, c, why);
	free(copy);
	return rc;
}

/* Builds s into body and decodes it there: the decoded fields point into
 * body, which the caller keeps. */
static enum mqtt_rc
decode_spec(const struct spec *s, struct buf *body, struct mqtt_connect *c,
    char *why)
{
	build(body, s);
	return mqtt_connect_decode(body->b, body->n, c, why);
}

static void
assert_bytes(struct mqtt_bytes b, const void *want, size_t n)
{
	assert_int_equal(b.len, n);
	if (n != 0) {
		assert_memory_equal(b.ptr, want, n);
	}
}

#define assert_bytes_str(b, s) assert_bytes((b), (s), sizeof(s) - 1)

/* Decoding fails and the reason contains sub. */
static void
expect_malformed(const struct spec *s, const char *sub)
{
	struct buf body;
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];

	build(&body, s);
	assert_int_equal(decode_exact(body.b, body.n, &c, why),
	    MQTT_MALFORMED);
	if (strstr(why, sub) == NULL) {
		fail_msg("why \"%s\" lacks \"%s\"", why, sub);
	}
}

/* ------------------------------------------- remaining length (VBI) */

struct vbi_case {
	uint32_t value;
	uint8_t bytes[4];
	size_t n;
};

static const struct vbi_case vbi_edges[] = {
	{0, {0x00}, 1},
	{127, {0x7f}, 1},
	{128, {0x80, 0x01}, 2},
	{16383, {0xff, 0x7f}, 2},
	{16384, {0x80, 0x80, 0x01}, 3},
	{2097151, {0xff, 0xff, 0x7f}, 3},
	{2097152, {0x80, 0x80, 0x80, 0x01}, 4},
	{268435455, {0xff, 0xff, 0xff, 0x7f}, 4},
};

static void
test_vbi_encode_edges(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vbi_edges) / sizeof(vbi_edges[0]); i++) {
		uint8_t out[4] = {0};

		assert_int_equal(mqtt_vbi_encode(vbi_edges[i].value, out),
		    vbi_edges[i].n);
		assert_memory_equal(out, vbi_edges[i].bytes, vbi_edges[i].n);
	}
}

static void
test_vbi_encode_too_large(void **state)
{
	uint8_t out[4];

	(void)state;
	assert_int_equal(mqtt_vbi_encode(268435456u, out), 0);
	assert_int_equal(mqtt_vbi_encode(UINT32_MAX, out), 0);
}

/* Each edge value as a PUBLISH remaining length decodes back to itself,
 * with the header length the encoding implies. */
static void
test_fixed_decode_edges_round_trip(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vbi_edges) / sizeof(vbi_edges[0]); i++) {
		uint8_t pkt[5] = {0x35};
		struct mqtt_fixed f;
		char why[MQTT_WHY_LEN];
		size_t n = mqtt_vbi_encode(vbi_edges[i].value, pkt + 1);

		assert_int_equal(mqtt_fixed_decode(pkt, 1 + n, 0, &f, why),
		    MQTT_OK);
		assert_int_equal(f.type, MQTT_PUBLISH);
		assert_int_equal(f.flags, 0x5);
		assert_int_equal(f.header_len, 1 + vbi_edges[i].n);
		assert_int_equal(f.remaining, vbi_edges[i].value);
	}
}

static void
test_vbi_decode_reports_used(void **state)
{
	const uint8_t b[] = {0x80, 0x01, 0xaa};
	uint32_t v = 0;
	size_t used = 0;

	(void)state;
	assert_int_equal(mqtt_vbi_decode(b, sizeof(b), &v, &used, NULL),
	    MQTT_OK);
	assert_int_equal(v, 128);
	assert_int_equal(used, 2);
}

static void
test_fixed_need_more_at_every_truncation(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vbi_edges) / sizeof(vbi_edges[0]); i++) {
		uint8_t pkt[5] = {0x30};
		struct mqtt_fixed f;
		char why[MQTT_WHY_LEN];

		memcpy(pkt + 1, vbi_edges[i].bytes, vbi_edges[i].n);
		for (size_t cut = 0; cut < 1 + vbi_edges[i].n; cut++) {
			assert_int_equal(mqtt_fixed_decode(pkt, cut, 0, &f,
			    why), MQTT_NEED_MORE);
		}
	}
}

/* The header alone decides: the body need not be there yet. */
static void
test_fixed_ok_without_body(void **state)
{
	const uint8_t pkt[] = {0x82, 0x80, 0x01};
	struct mqtt_fixed f;
	char why[MQTT_WHY_LEN];

	(void)state;
	assert_int_equal(mqtt_fixed_decode(pkt, sizeof(pkt), 0, &f, why),
	    MQTT_OK);
	assert_int_equal(f.type, MQTT_SUBSCRIBE);
	assert_int_equal(f.flags, 0x2);
	assert_int_equal(f.header_len, 3);
	assert_int_equal(f.remaining, 128);
}

static void
test_fixed_five_length_bytes_malformed(void **state)
{
	const uint8_t pkt[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0x01};
	struct mqtt_fixed f;
	char why[MQTT_WHY_LEN];

	(void)state;
	assert_int_equal(mqtt_fixed_decode(pkt, sizeof(pkt), 0, &f, why),
	    MQTT_MALFORMED);
	assert_string_equal(why, "remaining length: variable byte integer "
	    "continues past 4 bytes [MQTT-1.5.5]");
}

/* A fourth byte with its continuation bit is already wrong: no need to
 * wait for the fifth. */
static void
test_fixed_fourth_continuation_malformed_at_once(void **state)
{
	const uint8_t pkt[] = {0x30, 0x80, 0x80, 0x80, 0x80};
	struct mqtt_fixed f;
	char why[MQTT_WHY_LEN];

	(void)state;
	assert_int_equal(mqtt_fixed_decode(pkt, sizeof(pkt), 0, &f, why),
	    MQTT_MALFORMED);
}

static void
test_fixed_overlong_length_malformed(void **state)
{
	static const struct {
		uint8_t b[5];
		size_t n;
		const char *why;
	} cases[] = {
		{{0x30, 0x80, 0x00}, 3, "remaining length: 2-byte encoding "
		    "of 0 is not minimal [MQTT-1.5.5-1]"},
		{{0x30, 0x81, 0x00}, 3, "remaining length: 2-byte encoding "
		    "of 1 is not minimal [MQTT-1.5.5-1]"},
		{{0x30, 0xff, 0x80, 0x00}, 4, "remaining length: 3-byte "
		    "encoding of 127 is not minimal [MQTT-1.5.5-1]"},
		{{0x30, 0x80, 0x80, 0x80, 0x00}, 5, "remaining length: 4-byte "
		    "encoding of 0 is not minimal [MQTT-1.5.5-1]"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mqtt_fixed f;
		char why[MQTT_WHY_LEN];

		assert_int_equal(mqtt_fixed_decode(cases[i].b, cases[i].n, 0,
		    &f, why), MQTT_MALFORMED);
		assert_string_equal(why, cases[i].why);
	}
}

/* Framing for the relay takes the same non-minimal lengths as values: a
 * 3.1.1 broker accepts them, so certbridge passes them on. Five bytes is
 * still no length at all. */
static void
test_frame_accepts_non_minimal_lengths(void **state)
{
	static const struct {
		uint8_t b[6];
		size_t n;
		uint32_t remaining;
		uint8_t header_len;
	} cases[] = {
		{{0x30, 0x80, 0x00}, 3, 0, 3},
		{{0x30, 0x81, 0x00}, 3, 1, 3},
		{{0x30, 0xff, 0x80, 0x00}, 4, 127, 4},
		{{0x30, 0x80, 0x80, 0x80, 0x00}, 5, 0, 5},
		{{0x30, 0x7f}, 2, 127, 2},
	};
	const uint8_t five[] = {0x30, 0x80, 0x80, 0x80, 0x80, 0x01};
	struct mqtt_fixed f;
	char why[MQTT_WHY_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(mqtt_fixed_frame(cases[i].b, cases[i].n, 0, &f,
		    why), MQTT_OK);
		assert_int_equal(f.remaining, cases[i].remaining);
		assert_int_equal(f.header_len, cases[i].header_len);
		assert_int_equal(f.type, MQTT_PUBLISH);
	}
	assert_int_equal(mqtt_fixed_frame(five, sizeof(five), 0, &f, why),
	    MQTT_MALFORMED);
	assert_int_equal(mqtt_fixed_frame(cases[0].b, 2, 0, &f, why),
	    MQTT_NEED_MORE);
	/* The limit is judged on the total, header bytes included. */
	assert_int_equal(mqtt_fixed_frame(cases[3].b, 5, 4, &f, why),
	    MQTT_TOO_BIG);
}

/* header_len + remaining against the limit: equal passes, one over
 * fails, for a 2-byte and a 5-byte header. */
static void
test_fixed_too_big_at_boundary(void **state)
{
	const uint8_t small[] = {0x30, 98};               /* 100 bytes */
	const uint8_t large[] = {0x30, 0x80, 0x80, 0x80, 0x01}; /* 2097157 */
	struct mqtt_fixed f;
	char why[MQTT_WHY_LEN];

	(void)state;
	assert_int_equal(mqtt_fixed_decode(small, 2, 100, &f, why), MQTT_OK);
	assert_int_equal(mqtt_fixed_decode(small, 2, 99, &f, why),
	    MQTT_TOO_BIG);
	assert_int_equal(f.type, MQTT_PUBLISH);
	assert_int_equal(f.remaining, 98);
	assert_string_equal(why, "PUBLISH packet of 100 bytes is larger than "
	    "the limit of 99 bytes");
	assert_int_equal(mqtt_fixed_decode(large, 5, 2097157, &f, why),
	    MQTT_OK);
	assert_int_equal(mqtt_fixed_decode(large, 5, 2097156, &f, why),
	    MQTT_TOO_BIG);
	assert_int_equal(f.header_len, 5);
	assert_int_equal(f.remaining, 2097152);
}

static void
test_fixed_no_limit_when_zero(void **state)
{
	const uint8_t pkt[] = {0x30, 0xff, 0xff, 0xff, 0x7f};
	struct mqtt_fixed f;
	char why[MQTT_WHY_LEN];

	(void)state;
	assert_int_equal(mqtt_fixed_decode(pkt, sizeof(pkt), 0, &f, why),
	    MQTT_OK);
	assert_int_equal(f.remaining, MQTT_MAX_REMAINING);
	assert_int_equal(mqtt_fixed_decode(pkt, sizeof(pkt), 1024 * 1024, &f,
	    why), MQTT_TOO_BIG);
}

/* ------------------------------------------------------------ flags */

/* valid[type] is a bit set of the flag values the type allows. */
static const uint16_t flags_v311[16] = {
	0x0000, 0x0001, 0x0001, 0x3f3f, 0x0001, 0x0001, 0x0004, 0x0001,
	0x0004, 0x0001, 0x0004, 0x0001, 0x0001, 0x0001, 0x0001, 0x0000,
};

static void
check_flags_table(uint8_t version, const uint16_t valid[16])
{
	for (unsigned t = 0; t < 16; t++) {
		for (unsigned fl = 0; fl < 16; fl++) {
			bool want = (valid[t] >> fl) & 1u;

			if (mqtt_flags_valid((uint8_t)t, (uint8_t)fl,
			    version) != want) {
				fail_msg("version %u type %u (%s) flags 0x%x: "
				    "want %s", version, t,
				    mqtt_type_name((uint8_t)t), fl,
				    want ? "valid" : "invalid");
			}
		}
	}
}

static void
test_flags_every_type_v311(void **state)
{
	(void)state;
	check_flags_table(MQTT_V311, flags_v311);
}

static void
test_flags_every_type_v5(void **state)
{
	uint16_t v5[16];

	(void)state;
	memcpy(v5, flags_v311, sizeof(v5));
	v5[MQTT_AUTH] = 0x0001;
	check_flags_table(MQTT_V5, v5);
}

/* 3.1 sets DUP on retransmitted PUBREL/SUBSCRIBE/UNSUBSCRIBE. */
static void
test_flags_every_type_v31(void **state)
{
	uint16_t v31[16];

	(void)state;
	memcpy(v31, flags_v311, sizeof(v31));
	v31[MQTT_PUBREL] = v31[MQTT_SUBSCRIBE] = v31[MQTT_UNSUBSCRIBE] =
	    0x0404;
	check_flags_table(MQTT_V31, v31);
}

static void
test_flags_publish_qos3_invalid(void **state)
{
	(void)state;
	assert_true(mqtt_flags_valid(MQTT_PUBLISH, 0x0d, MQTT_V311));
	assert_false(mqtt_flags_valid(MQTT_PUBLISH, 0x06, MQTT_V311));
	assert_false(mqtt_flags_valid(MQTT_PUBLISH, 0x0f, MQTT_V5));
}

static void
test_flags_auth_only_in_v5(void **state)
{
	(void)state;
	assert_true(mqtt_flags_valid(MQTT_AUTH, 0, MQTT_V5));
	assert_false(mqtt_flags_valid(MQTT_AUTH, 0, MQTT_V311));
	assert_false(mqtt_flags_valid(MQTT_AUTH, 0, MQTT_V31));
	assert_false(mqtt_flags_valid(MQTT_AUTH, 0, 0));
}

static void
test_flags_out_of_range_invalid(void **state)
{
	(void)state;
	assert_false(mqtt_flags_valid(MQTT_CONNECT, 0x10, MQTT_V311));
	assert_false(mqtt_flags_valid(16, 0, MQTT_V5));
	assert_false(mqtt_flags_valid(MQTT_RESERVED, 0, MQTT_V5));
}

static void
test_type_names(void **state)
{
	static const char *const names[16] = {
		"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK",
		"PUBREC", "PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK",
		"UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP",
		"DISCONNECT", "AUTH",
	};

	(void)state;
	for (unsigned t = 0; t < 16; t++) {
		assert_string_equal(mqtt_type_name((uint8_t)t), names[t]);
	}
	assert_string_equal(mqtt_type_name(16), "UNKNOWN");
	assert_string_equal(mqtt_type_name(255), "UNKNOWN");
}

/* ------------------------------------------------------------ UTF-8 */

#define U8(s) (const uint8_t *)(s), sizeof(s) - 1

static void
test_utf8_valid_forms(void **state)
{
	(void)state;
	assert_true(mqtt_utf8_valid(U8("")));
	assert_true(mqtt_utf8_valid(U8("device-01")));
	assert_true(mqtt_utf8_valid(U8("\xc2\x80")));         /* U+0080 */
	assert_true(mqtt_utf8_valid(U8("\xe0\xa0\x80")));     /* U+0800 */
	assert_true(mqtt_utf8_valid(U8("\xed\x9f\xbf")));     /* U+D7FF */
	assert_true(mqtt_utf8_valid(U8("\xee\x80\x80")));     /* U+E000 */
	assert_true(mqtt_utf8_valid(U8("\xef\xbb\xbf")));     /* BOM kept */
	assert_true(mqtt_utf8_valid(U8("\xf0\x90\x80\x80"))); /* U+10000 */
	assert_true(mqtt_utf8_valid(U8("\xf4\x8f\xbf\xbf"))); /* U+10FFFF */
}

static void
test_utf8_rejects_null(void **state)
{
	(void)state;
	assert_false(mqtt_utf8_valid(U8("ab\x00" "c")));
	assert_false(mqtt_utf8_valid(U8("\xc0\x80"))); /* overlong U+0000 */
}

static void
test_utf8_rejects_surrogates(void **state)
{
	(void)state;
	assert_false(mqtt_utf8_valid(U8("\xed\xa0\x80"))); /* U+D800 */
	assert_false(mqtt_utf8_valid(U8("\xed\xbf\xbf"))); /* U+DFFF */
}

static void
test_utf8_rejects_overlong(void **state)
{
	(void)state;
	assert_false(mqtt_utf8_valid(U8("\xc1\xbf")));
	assert_false(mqtt_utf8_valid(U8("\xe0\x9f\xbf")));
	assert_false(mqtt_utf8_valid(U8("\xf0\x8f\xbf\xbf")));
}

static void
test_utf8_rejects_above_10ffff(void **state)
{
	(void)state;
	assert_false(mqtt_utf8_valid(U8("\xf4\x90\x80\x80")));
	assert_false(mqtt_utf8_valid(U8("\xf5\x80\x80\x80")));
	assert_false(mqtt_utf8_valid(U8("\xff")));
}

static void
test_utf8_rejects_broken_sequences(void **state)
{
	(void)state;
	assert_false(mqtt_utf8_valid(U8("\x80")));         /* lone cont. */
	assert_false(mqtt_utf8_valid(U8("a\xc3")));        /* cut short */
	assert_false(mqtt_utf8_valid(U8("\xe2\x82")));     /* cut short */
	assert_false(mqtt_utf8_valid(U8("\xe2\x28\xa1"))); /* bad cont. */
	/* The bytes after len are not read: a valid sequence cut by len. */
	assert_false(mqtt_utf8_valid((const uint8_t *)"\xc3\xa9", 1));
}

/* ------------------------------------------------- CONNECT decoding */

static void
test_connect_v31_decode(void **state)
{
	struct spec s = spec_v31();
	struct buf body;
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];

	(void)state;
	assert_int_equal(decode_spec(&s, &body, &c, why), MQTT_OK);
	assert_int_equal(c.version, MQTT_V31);
	assert_int_equal(c.connect_flags, 0xc2);
	assert_true(c.clean_start);
	assert_false(c.will);
	assert_int_equal(c.keepalive, 60);
	assert_bytes_str(c.client_id, "dev31");
	assert_true(c.has_username);
	assert_bytes_str(c.username, "user31");
	assert_true(c.has_password);
	assert_bytes_str(c.password, "pw31");
	assert_int_equal(c.props.len, 0);
	assert_string_equal(why, "");
}

static void
test_connect_v311_decode(void **state)
{
	struct spec s = spec_v311();
	struct buf body;
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];

	(void)state;
	assert_int_equal(decode_spec(&s, &body, &c, why), MQTT_OK);
	assert_int_equal(c.version, MQTT_V311);
	assert_true(c.clean_start);
	assert_true(c.will);
	assert_int_equal(c.will_qos, 1);
	assert_true(c.will_retain);
	assert_int_equal(c.keepalive, 30);
	assert_bytes_str(c.client_id, "device-0001");
	assert_bytes_str(c.will_topic, "dev/0001/status");
	assert_bytes_str(c.will_payload, "offline");
	assert_bytes_str(c.username, "alice");
	assert_bytes_str(c.password, "s3cret");
	assert_int_equal(c.session_expiry, 0);
	assert_int_equal(c.max_packet_size, 0);
}

static void
test_connect_v5_decode(void **state)
{
	struct spec s = spec_v5();
	struct buf body;
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];

	(void)state;
	assert_int_equal(decode_spec(&s, &body, &c, why), MQTT_OK);
	assert_int_equal(c.version, MQTT_V5);
	assert_true(c.clean_start);
	assert_true(c.will);
	assert_int_equal(c.will_qos, 2);
	assert_false(c.will_retain);
	assert_int_equal(c.keepalive, 120);
	assert_int_equal(c.session_expiry, 3600);
	assert_int_equal(c.max_packet_size, 1048576);
	assert_int_equal(c.props.len, v5_props.n);
	assert_memory_equal(c.props.ptr, v5_props.b, v5_props.n);
	assert_int_equal(c.will_props.len, v5_will_props.n);
	assert_memory_equal(c.will_props.ptr, v5_will_props.b,
	    v5_will_props.n);
	assert_bytes_str(c.client_id, "device-0005");
	assert_bytes_str(c.will_topic, "dev/5/will");
	assert_bytes_str(c.will_payload, "\x00\xff");
	assert_bytes_str(c.username, "bob");
	assert_bytes_str(c.password, "\xde\xad\x00\xbe\xef");
}

/* Decoded fields point into the caller's buffer, not into copies. */
static void
test_connect_fields_point_into_buffer(void **state)
{
	struct spec s = spec_v311();
	struct buf body;
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];

	(void)state;
	build(&body, &s);
	assert_int_equal(mqtt_connect_decode(body.b, body.n, &c, why),
	    MQTT_OK);
	/* 2+4 name, level, flags, 2 keep alive, 2 length: client id at 12 */
	assert_ptr_equal(c.client_id.ptr, body.b + 12);
	assert_true(c.password.ptr + c.password.len == body.b + body.n);
}

static void
test_connect_empty_client_id(void **state)
{
	struct spec s = spec_v5_props(&empty_props);
	struct buf body;
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];

	(void)state;
	s.client_id = F("");
	assert_int_equal(decode_spec(&s, &body, &c, why), MQTT_OK);
	assert_int_equal(c.client_id.len, 0);
	assert_int_equal(c.props.len, 0);
}

/* Every proper prefix of a body is MALFORMED (len is the whole remaining
 * length), and every proper prefix of the packet is "wait for more" at the
 * framing level. */
static void
check_truncations(const struct spec *s)
{
	struct buf body, pkt;

	build(&body, s);
	wrap(&pkt, &body);
	{
		struct mqtt_connect c;
		char why[MQTT_WHY_LEN];

		assert_int_equal(decode_exact(body.b, body.n, &c, why),
		    MQTT_OK);
	}
	for (size_t n = 0; n < body.n; n++) {
		struct mqtt_connect c;
		char why[MQTT_WHY_LEN];

		if (decode_exact(body.b, n, &c, why) != MQTT_MALFORMED) {
			fail_msg("body cut at %zu of %zu not MALFORMED", n,
			    body.n);
		}
		assert_true(why[0] != '\0');
	}
	for (size_t n = 0; n < pkt.n; n++) {
		struct mqtt_fixed f;
		char why[MQTT_WHY_LEN];
		enum mqtt_rc rc = mqtt_fixed_decode(pkt.b, n, 0, &f, why);

		if (rc == MQTT_OK) {
			assert_true(f.header_len + f.remaining > n);
		} else {
			assert_int_equal(rc, MQTT_NEED_MORE);
		}
	}
}

/* 3.1 as mosquitto 2.0 reads it: up to the client id every cut is
 * malformed; in the user name and password, a cut that leaves a field
 * announced but missing or short (its length consumed) with nothing after
 * it is that field absent, and the CONNECT is accepted (docs/protocol.md;
 * test_mqtt_mosquitto.c). */
static void
test_connect_v31_truncated_everywhere(void **state)
{
	struct spec s = spec_v31();
	struct buf body;
	/* The client id ends at 19; "\0\6user31" and "\0\4pw31" follow. */
	static const size_t ok[] = {19, 21, 23, 27, 29};
	size_t k = 0;

	(void)state;
	build(&body, &s);
	assert_int_equal(body.n, 33);
	for (size_t n = 0; n < body.n; n++) {
		struct mqtt_connect c;
		char why[MQTT_WHY_LEN];
		enum mqtt_rc rc = decode_exact(body.b, n, &c, why);

		if (k < sizeof(ok) / sizeof(ok[0]) && n == ok[k]) {
			k++;
			assert_int_equal(rc, MQTT_OK);
			assert_int_equal(c.has_username, n >= 27);
			assert_false(c.has_password);
			continue;
		}
		if (rc != MQTT_MALFORMED) {
			fail_msg("body cut at %zu of %zu not MALFORMED", n,
			    body.n);
		}
		assert_true(why[0] != '\0');
	}
	s.proto = F("MQTT");
	s.level = 4;
	check_truncations(&s);
}

static void
test_connect_v311_truncated_everywhere(void **state)
{
	struct spec s = spec_v311();

	(void)state;
	check_truncations(&s);
}

static void
test_connect_v5_truncated_everywhere(void **state)
{
	struct spec s = spec_v5();

	(void)state;
	check_truncations(&s);
}

static void
test_connect_client_id_longer_than_body(void **state)
{
	struct buf body = {.n = 0};
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];

	(void)state;
	put_str(&body, "MQTT");
	put_u8(&body, 4), put_u8(&body, 0x02), put_u16(&body, 60);
	put_u16(&body, 30);
	put(&body, "only-12-here", 12);
	assert_int_equal(decode_exact(body.b, body.n, &c, why),
	    MQTT_MALFORMED);
	assert_string_equal(why, "CONNECT: client id is 30 bytes but only 12 "
	    "remain");
}

static void
test_connect_bad_protocol_name(void **state)
{
	struct spec s = spec_v311();
	struct buf body;
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];

	(void)state;
	s.proto = F("MQTX");
	assert_int_equal(decode_spec(&s, &body, &c, why), MQTT_MALFORMED);
	assert_string_equal(why, "CONNECT: protocol name is \"MQTX\" (4 "
	    "bytes), not \"MQTT\" or \"MQIsdp\"");
	assert_int_equal(c.version, 0);
	s.proto = F("mqtt");
	expect_malformed(&s, "\"mqtt\"");
	s.proto = F("");
	expect_malformed(&s, "\"\" (0 bytes)");
	s.proto = F("MQ\x00T");
	expect_malformed(&s, "\"MQ?T\"");
}

/*
 * Levels are judged as mosquitto 2.0 does (docs/protocol.md): an unknown
 * one is UNSUPPORTED (the caller answers CONNACK 0x01), whatever follows;
 * a bridge's 0x80 on 3.1 and 3.1.1 is kept; 0x85 is malformed.
 */
static void
test_connect_bad_protocol_level(void **state)
{
	static const uint8_t levels[] = { 0, 1, 2, 3, 6, 7, 0x80, 0x86, 0xff };
	struct spec s = spec_v311();
	struct buf body;
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(levels); i++) {
		s.level = levels[i];
		assert_int_equal(decode_spec(&s, &body, &c, why),
		    MQTT_UNSUPPORTED);
		assert_int_equal(c.level, levels[i]);
	}
	s.level = 6;
	assert_int_equal(decode_spec(&s, &body, &c, why), MQTT_UNSUPPORTED);
	assert_non_null(strstr(why, "protocol level 6 with name \"MQTT\""));
	s = spec_v31();
	for (uint8_t l = 4; l <= 5; l++) {
		s.level = l;
		assert_int_equal(decode_spec(&s, &body, &c, why),
		    MQTT_UNSUPPORTED);
		assert_non_null(strstr(why, "with name \"MQIsdp\""));
	}
	/* Whatever follows the level byte: nothing at all here. */
	assert_int_equal(mqtt_connect_decode((const uint8_t *)
	    "\x00\x04MQTT\x06", 7, &c, why), MQTT_UNSUPPORTED);
	s = spec_v5();
	s.level = 0x85;
	expect_malformed(&s, "5.0 has no bridge level");
}

static void
test_connect_bridge_levels(void **state)
{
	struct spec s = spec_v311();
	struct buf body;
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];
	uint8_t out[512];
	size_t n;

	(void)state;
	s.level = 0x84;
	assert_int_equal(decode_spec(&s, &body, &c, why), MQTT_OK);
	assert_int_equal(c.version, MQTT_V311);
	assert_true(c.bridge);
	assert_int_equal(c.level, 0x84);
	/* Re-encoded (a rewritten client id), the level keeps its 0x80. */
	c.client_id.ptr = (const uint8_t *)"site-17";
	c.client_id.len = 7;
	n = mqtt_connect_encode(&c, out, sizeof(out));
	assert_true(n > 9);
	assert_int_equal(out[2 + 6], 0x84);
	s = spec_v31();
	s.level = 0x83;
	assert_int_equal(decode_spec(&s, &body, &c, why), MQTT_OK);
	assert_int_equal(c.version, MQTT_V31);
	assert_true(c.bridge);
	s = spec_v311();
	assert_int_equal(decode_spec(&s, &body, &c, why), MQTT_OK);
	assert_false(c.bridge);
	assert_int_equal(c.level, 4);
}

static void
test_connect_empty_will_topic(void **state)
{
	struct spec s = spec_v311();

	(void)state;
	s.will_topic = F("");
	expect_malformed(&s, "will topic is empty [MQTT-4.7.3-1]");
	s = spec_v5();
	s.will_topic = F("");
	expect_malformed(&s, "will topic is empty");
}

static void
test_connect_reserved_flag(void **state)
{
	struct spec s = spec_v311();

	(void)state;
	s.flags |= 0x01;
	expect_malformed(&s, "CONNECT: reserved connect flag (bit 0) is set");
	s = spec_v5();
	s.flags |= 0x01;
	expect_malformed(&s, "reserved connect flag");
	/* 3.1 ignores it, as mosquitto does: test_mqtt_mosquitto.c. */
}

static void
test_connect_will_qos3(void **state)
{
	struct spec s = spec_v311();

	(void)state;
	s.flags |= 0x18;
	expect_malformed(&s, "CONNECT: will QoS is 3");
	s = spec_v5();
	s.flags |= 0x18;
	expect_malformed(&s, "CONNECT: will QoS is 3");
}

static void
test_connect_will_qos_without_will(void **state)
{
	struct spec s = spec_v31();

	(void)state;
	/* 3.1.1 (3.1 ignores it, as mosquitto does: test_mqtt_mosquitto.c). */
	s.proto = F("MQTT");
	s.level = 4;
	s.flags |= 0x08;
	expect_malformed(&s, "CONNECT: will QoS is 1 but the will flag is 0");
}

static void
test_connect_will_retain_without_will(void **state)
{
	struct spec s = spec_v31();

	(void)state;
	/* 3.1.1 (3.1 ignores it, as mosquitto does: test_mqtt_mosquitto.c). */
	s.proto = F("MQTT");
	s.level = 4;
	s.flags |= 0x20;
	expect_malformed(&s, "CONNECT: will retain is set but the will flag "
	    "is 0");
}

static void
test_connect_password_without_user_v3_malformed(void **state)
{
	struct spec s = spec_v311();

	(void)state;
	s.flags &= (uint8_t)~0x80;
	s.username = NOF;
	expect_malformed(&s, "password flag is set without the user name "
	    "flag");
	s = spec_v31();
	s.flags &= (uint8_t)~0x80;
	s.username = NOF;
	expect_malformed(&s, "password flag is set without the user name "
	    "flag");
}

static void
test_connect_password_without_user_v5_ok(void **state)
{
	struct spec s = spec_v5();
	struct buf body;
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];

	(void)state;
	s.flags &= (uint8_t)~0x80;
	s.username = NOF;
	assert_int_equal(decode_spec(&s, &body, &c, why), MQTT_OK);
	assert_false(c.has_username);
	assert_true(c.has_password);
	assert_bytes_str(c.password, "\xde\xad\x00\xbe\xef");
}

/* A flag promising a field the packet does not carry. */
static void
test_connect_flag_without_field(void **state)
{
	struct spec s = spec_v311();

	(void)state;
	s.password = NOF;
	expect_malformed(&s, "CONNECT: password length needs 2 bytes but "
	    "only 0 remain");
}

static void
test_connect_trailing_garbage(void **state)
{
	const struct spec all[] = {spec_v31(), spec_v311(), spec_v5()};

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct buf body;
		struct mqtt_connect c;
		char why[MQTT_WHY_LEN];

		build(&body, &all[i]);
		put_u8(&body, 0x00);
		assert_int_equal(decode_exact(body.b, body.n, &c, why),
		    MQTT_MALFORMED);
		assert_string_equal(why, "CONNECT: 1 byte after the last "
		    "field");
	}
}

static void
test_connect_bad_utf8_client_id(void **state)
{
	struct spec s = spec_v311();

	(void)state;
	s.client_id = F("dev\xed\xa0\x80");
	expect_malformed(&s, "CONNECT: client id is not valid UTF-8");
	s.client_id = F("dev\x00" "1");
	expect_malformed(&s, "CONNECT: client id is not valid UTF-8");
}

static void
test_connect_bad_utf8_will_topic(void **state)
{
	struct spec s = spec_v5();

	(void)state;
	s.will_topic = F("a\xc0\xaf");
	expect_malformed(&s, "CONNECT: will topic is not valid UTF-8");
}

static void
test_connect_bad_utf8_username(void **state)
{
	struct spec s = spec_v311();

	(void)state;
	s.username = F("\xff");
	expect_malformed(&s, "CONNECT: user name is not valid UTF-8");
}

/* Password and will payload are binary: any bytes pass. */
static void
test_connect_binary_fields_not_utf8_checked(void **state)
{
	struct spec s = spec_v311();
	struct buf body;
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];

	(void)state;
	s.password = F("\x00\xed\xa0\x80\xff");
	s.will_payload = F("\xc0\x80");
	assert_int_equal(decode_spec(&s, &body, &c, why), MQTT_OK);
	assert_bytes_str(c.password, "\x00\xed\xa0\x80\xff");
}

/* ----------------------------------------------- v5 CONNECT properties */

static void
test_connect_v5_duplicate_property(void **state)
{
	struct buf p = {.n = 0};
	struct spec s = spec_v5_props(&p);

	(void)state;
	put_u8(&p, 0x11), put_u32(&p, 1);
	put_u8(&p, 0x11), put_u32(&p, 2);
	expect_malformed(&s, "CONNECT: session expiry interval (0x11) appears "
	    "twice in CONNECT properties");
	p.n = 0;
	put_u8(&p, 0x15), put_str(&p, "a");
	put_u8(&p, 0x15), put_str(&p, "b");
	expect_malformed(&s, "authentication method (0x15) appears twice");
}

static void
test_connect_v5_user_property_repeats(void **state)
{
	struct buf p = {.n = 0};
	struct spec s = spec_v5_props(&p);
	struct buf body;
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];

	(void)state;
	for (int i = 0; i < 3; i++) {
		put_u8(&p, 0x26), put_str(&p, "k"), put_str(&p, "v");
	}
	assert_int_equal(decode_spec(&s, &body, &c, why), MQTT_OK);
	assert_int_equal(c.props.len, p.n);
}

static void
test_connect_v5_unknown_property(void **state)
{
	struct buf p = {.n = 0};
	struct spec s = spec_v5_props(&p);

	(void)state;
	put_u8(&p, 0x7f), put_u8(&p, 0);
	expect_malformed(&s, "CONNECT: unknown property 0x7f in CONNECT "
	    "properties");
	p.n = 0;
	put_u8(&p, 0x80), put_u8(&p, 0x01);
	expect_malformed(&s, "unknown property 0x80");
}

/* Known identifiers that belong to other packets or to the will. */
static void
test_connect_v5_property_not_allowed(void **state)
{
	struct buf p = {.n = 0}, wp = {.n = 0};
	struct spec s = spec_v5_props(&p);

	(void)state;
	put_u8(&p, 0x13), put_u16(&p, 60);
	expect_malformed(&s, "CONNECT: server keep alive (0x13) is not allowed "
	    "in CONNECT properties");
	p.n = 0;
	put_u8(&p, 0x18), put_u32(&p, 5);
	expect_malformed(&s, "will delay interval (0x18) is not allowed in "
	    "CONNECT properties");
	s = spec_v5();
	s.will_props = &wp;
	put_u8(&wp, 0x11), put_u32(&wp, 5);
	expect_malformed(&s, "session expiry interval (0x11) is not allowed "
	    "in CONNECT will properties");
}

static void
test_connect_v5_receive_maximum_zero(void **state)
{
	struct buf p = {.n = 0};
	struct spec s = spec_v5_props(&p);

	(void)state;
	put_u8(&p, 0x21), put_u16(&p, 0);
	expect_malformed(&s, "CONNECT: receive maximum is 0, 0 is a protocol "
	    "error");
}

static void
test_connect_v5_maximum_packet_size_zero(void **state)
{
	struct buf p = {.n = 0};
	struct spec s = spec_v5_props(&p);

	(void)state;
	put_u8(&p, 0x27), put_u32(&p, 0);
	expect_malformed(&s, "maximum packet size is 0");
}

static void
test_connect_v5_boolean_properties_range(void **state)
{
	struct buf p = {.n = 0}, wp = {.n = 0};
	struct spec s = spec_v5_props(&p);

	(void)state;
	put_u8(&p, 0x19), put_u8(&p, 2);
	expect_malformed(&s, "request response information is 2, not 0 or 1");
	p.n = 0;
	put_u8(&p, 0x17), put_u8(&p, 2);
	expect_malformed(&s, "request problem information is 2, not 0 or 1");
	s = spec_v5();
	s.will_props = &wp;
	put_u8(&wp, 0x01), put_u8(&wp, 2);
	expect_malformed(&s, "will payload format indicator is 2, not 0 or 1");
}

static void
test_connect_v5_auth_data_without_method(void **state)
{
	struct buf p = {.n = 0};
	struct spec s = spec_v5_props(&p);

	(void)state;
	put_u8(&p, 0x16), put_fld(&p, F("\x01"));
	expect_malformed(&s, "CONNECT: authentication data without an "
	    "authentication method");
}

static void
test_connect_v5_property_cut_inside_block(void **state)
{
	struct buf p = {.n = 0};
	struct spec s = spec_v5_props(&p);

	(void)state;
	put_u8(&p, 0x11), put_u16(&p, 1); /* 2 of the 4 value bytes */
	expect_malformed(&s, "CONNECT: session expiry interval needs 4 bytes "
	    "but only 2 remain");
}

static void
test_connect_v5_property_length_past_body(void **state)
{
	struct buf body = {.n = 0};
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];

	(void)state;
	put_str(&body, "MQTT");
	put_u8(&body, 5), put_u8(&body, 0x02), put_u16(&body, 60);
	put_vbi(&body, 200);
	put_u8(&body, 0x11), put_u32(&body, 1);
	assert_int_equal(decode_exact(body.b, body.n, &c, why),
	    MQTT_MALFORMED);
	assert_string_equal(why, "CONNECT: properties are 200 bytes but "
	    "only 5 remain");
}

static void
test_connect_v5_property_length_overlong(void **state)
{
	struct buf body = {.n = 0};
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];

	(void)state;
	put_str(&body, "MQTT");
	put_u8(&body, 5), put_u8(&body, 0x02), put_u16(&body, 60);
	put_u8(&body, 0x80), put_u8(&body, 0x00); /* 0 in two bytes */
	put_str(&body, "c");
	assert_int_equal(decode_exact(body.b, body.n, &c, why),
	    MQTT_MALFORMED);
	assert_non_null(strstr(why, "CONNECT: properties length: 2-byte "
	    "encoding of 0 is not minimal"));
}

/* ------------------------------------------------- CONNECT encoding */

static void
check_round_trip(const struct spec *s)
{
	struct buf body, pkt;
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];
	uint8_t out[2048];
	size_t n;

	build(&body, s);
	wrap(&pkt, &body);
	assert_int_equal(mqtt_connect_decode(body.b, body.n, &c, why),
	    MQTT_OK);
	n = mqtt_connect_encode(&c, out, sizeof(out));
	assert_int_equal(n, pkt.n);
	assert_memory_equal(out, pkt.b, pkt.n);
}

static void
test_connect_round_trip_v31(void **state)
{
	struct spec s = spec_v31();

	(void)state;
	check_round_trip(&s);
}

static void
test_connect_round_trip_v311(void **state)
{
	struct spec s = spec_v311();

	(void)state;
	check_round_trip(&s);
	s.flags = 0x00;
	s.will_topic = s.will_payload = s.username = s.password = NOF;
	s.client_id = F("");
	check_round_trip(&s);
}

static void
test_connect_round_trip_v5(void **state)
{
	struct spec s = spec_v5();

	(void)state;
	check_round_trip(&s);
	s = spec_v5_props(&empty_props);
	check_round_trip(&s);
}

static void
test_connect_encode_ignores_raw_flags(void **state)
{
	struct spec s = spec_v311();
	struct buf body, pkt;
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];
	uint8_t out[512];

	(void)state;
	build(&body, &s);
	wrap(&pkt, &body);
	assert_int_equal(mqtt_connect_decode(body.b, body.n, &c, why),
	    MQTT_OK);
	c.connect_flags = 0xff;
	assert_int_equal(mqtt_connect_encode(&c, out, sizeof(out)), pkt.n);
	assert_memory_equal(out, pkt.b, pkt.n);
}

/* A longer client id pushes the remaining length past 127: the length
 * is recomputed and now takes two bytes. */
static void
test_connect_rewrite_client_id_v311(void **state)
{
	struct spec s = spec_v311();
	struct buf body;
	struct mqtt_connect c, d;
	struct mqtt_fixed f;
	char why[MQTT_WHY_LEN], id[200];
	uint8_t out[1024];
	size_t n;

	(void)state;
	memset(id, 'x', sizeof(id));
	build(&body, &s);
	assert_true(body.n < 128);
	assert_int_equal(mqtt_connect_decode(body.b, body.n, &c, why),
	    MQTT_OK);
	c.client_id.ptr = (const uint8_t *)id;
	c.client_id.len = sizeof(id);
	n = mqtt_connect_encode(&c, out, sizeof(out));
	assert_int_equal(n, 3 + body.n - 11 + 200);
	assert_int_equal(mqtt_fixed_decode(out, n, 0, &f, why), MQTT_OK);
	assert_int_equal(f.header_len, 3);
	assert_int_equal(f.remaining, n - 3);
	assert_int_equal(mqtt_connect_decode(out + 3, f.remaining, &d, why),
	    MQTT_OK);
	assert_bytes(d.client_id, id, sizeof(id));
	assert_bytes_str(d.will_topic, "dev/0001/status");
	assert_bytes_str(d.username, "alice");
	assert_bytes_str(d.password, "s3cret");
	assert_int_equal(d.connect_flags, 0xee);
}

static void
test_connect_rewrite_client_id_v5_keeps_properties(void **state)
{
	struct spec s = spec_v5();
	struct buf body;
	struct mqtt_connect c, d;
	struct mqtt_fixed f;
	char why[MQTT_WHY_LEN];
	uint8_t out[1024];
	size_t n;

	(void)state;
	build(&body, &s);
	assert_int_equal(mqtt_connect_decode(body.b, body.n, &c, why),
	    MQTT_OK);
	c.client_id.ptr = (const uint8_t *)"CN=device-0005";
	c.client_id.len = 14;
	n = mqtt_connect_encode(&c, out, sizeof(out));
	assert_int_not_equal(n, 0);
	assert_int_equal(mqtt_fixed_decode(out, n, 0, &f, why), MQTT_OK);
	assert_int_equal(f.remaining, body.n + 3);
	assert_int_equal(f.header_len + f.remaining, n);
	assert_int_equal(mqtt_connect_decode(out + f.header_len, f.remaining,
	    &d, why), MQTT_OK);
	assert_bytes_str(d.client_id, "CN=device-0005");
	assert_int_equal(d.props.len, v5_props.n);
	assert_memory_equal(d.props.ptr, v5_props.b, v5_props.n);
	assert_int_equal(d.will_props.len, v5_will_props.n);
	assert_memory_equal(d.will_props.ptr, v5_will_props.b,
	    v5_will_props.n);
	assert_int_equal(d.session_expiry, 3600);
	assert_int_equal(d.max_packet_size, 1048576);
}

/* username = drop in 5.0: the flag goes, the password stays. */
static void
test_connect_drop_username_v5(void **state)
{
	struct spec s = spec_v5(), want = spec_v5();
	struct buf body, wbody, wpkt;
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];
	uint8_t out[1024];

	(void)state;
	build(&body, &s);
	assert_int_equal(mqtt_connect_decode(body.b, body.n, &c, why),
	    MQTT_OK);
	c.has_username = false;
	want.flags &= (uint8_t)~0x80;
	want.username = NOF;
	build(&wbody, &want);
	wrap(&wpkt, &wbody);
	assert_int_equal(mqtt_connect_encode(&c, out, sizeof(out)), wpkt.n);
	assert_memory_equal(out, wpkt.b, wpkt.n);
}

/* In 3.x a password cannot stand alone: the encoder refuses rather than
 * send the broker a packet it must reject; dropping both works. */
static void
test_connect_drop_username_v311_needs_password_dropped(void **state)
{
	struct spec s = spec_v311(), want = spec_v311();
	struct buf body, wbody, wpkt;
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];
	uint8_t out[1024];

	(void)state;
	build(&body, &s);
	assert_int_equal(mqtt_connect_decode(body.b, body.n, &c, why),
	    MQTT_OK);
	c.has_username = false;
	assert_int_equal(mqtt_connect_encode(&c, out, sizeof(out)), 0);
	c.has_password = false;
	want.flags &= (uint8_t)~0xc0;
	want.username = want.password = NOF;
	build(&wbody, &want);
	wrap(&wpkt, &wbody);
	assert_int_equal(mqtt_connect_encode(&c, out, sizeof(out)), wpkt.n);
	assert_memory_equal(out, wpkt.b, wpkt.n);
}

static void
test_connect_encode_small_buffer_writes_nothing(void **state)
{
	struct spec s = spec_v311();
	struct buf body;
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];
	uint8_t out[256], untouched[256];
	size_t need;

	(void)state;
	build(&body, &s);
	assert_int_equal(mqtt_connect_decode(body.b, body.n, &c, why),
	    MQTT_OK);
	need = 2 + body.n;
	assert_int_equal(mqtt_connect_encode(&c, NULL, 0), need);
	memset(out, 0xaa, sizeof(out));
	memset(untouched, 0xaa, sizeof(untouched));
	assert_int_equal(mqtt_connect_encode(&c, out, need - 1), need);
	assert_memory_equal(out, untouched, sizeof(out));
	assert_int_equal(mqtt_connect_encode(&c, out, need), need);
}

static void
test_connect_encode_too_large(void **state)
{
	struct mqtt_connect c;
	uint8_t out[16];
	static const uint8_t dummy[1];

	(void)state;
	memset(&c, 0, sizeof(c));
	c.version = MQTT_V5;
	c.props.ptr = dummy;
	c.props.len = MQTT_MAX_REMAINING;
	assert_int_equal(mqtt_connect_encode(&c, out, sizeof(out)), 0);
	c.props.len = MQTT_MAX_REMAINING + 1u;
	assert_int_equal(mqtt_connect_encode(&c, out, sizeof(out)), 0);
	/* the largest that fits: 10 bytes of header + id length + props */
	c.props.len = MQTT_MAX_REMAINING - 10 - 2 - 4;
	assert_int_equal(mqtt_connect_encode(&c, out, sizeof(out)),
	    1 + 4 + (size_t)MQTT_MAX_REMAINING);
}

static void
test_connect_encode_refuses_invalid_struct(void **state)
{
	struct mqtt_connect c;
	uint8_t out[64];

	(void)state;
	memset(&c, 0, sizeof(c));
	c.version = MQTT_V311;
	assert_int_equal(mqtt_connect_encode(&c, out, sizeof(out)), 14);
	c.version = 6;
	assert_int_equal(mqtt_connect_encode(&c, out, sizeof(out)), 0);
	c.version = MQTT_V311;
	c.will = true;
	c.will_qos = 3;
	assert_int_equal(mqtt_connect_encode(&c, out, sizeof(out)), 0);
	c.will = false;
	c.client_id.len = 4; /* with a NULL pointer */
	assert_int_equal(mqtt_connect_encode(&c, out, sizeof(out)), 0);
}

/* ---------------------------------------------------------- CONNACK */

static void
test_connack_v311_decode(void **state)
{
	const uint8_t ok_sp[] = {0x01, 0x00}, refused[] = {0x00, 0x05};
	struct mqtt_connack a;
	char why[MQTT_WHY_LEN];

	(void)state;
	assert_int_equal(mqtt_connack_decode(ok_sp, 2, MQTT_V311, &a, why),
	    MQTT_OK);
	assert_true(a.session_present);
	assert_int_equal(a.code, 0);
	assert_false(a.has_server_keepalive);
	assert_int_equal(mqtt_connack_decode(refused, 2, MQTT_V31, &a, why),
	    MQTT_OK);
	assert_false(a.session_present);
	assert_int_equal(a.code, 5);
}

static void
test_connack_v311_malformed(void **state)
{
	const uint8_t three[] = {0x00, 0x00, 0x00}, reserved[] = {0x02, 0x00};
	struct mqtt_connack a;
	char why[MQTT_WHY_LEN];

	(void)state;
	assert_int_equal(mqtt_connack_decode(three, 3, MQTT_V311, &a, why),
	    MQTT_MALFORMED);
	assert_string_equal(why, "CONNACK: remaining length is 3, not 2");
	assert_int_equal(mqtt_connack_decode(three, 1, MQTT_V311, &a, why),
	    MQTT_MALFORMED);
	assert_int_equal(mqtt_connack_decode(reserved, 2, MQTT_V311, &a, why),
	    MQTT_MALFORMED);
	assert_non_null(strstr(why, "reserved acknowledge flags are set "
	    "(0x02)"));
	assert_int_equal(mqtt_connack_decode(three, 2, 6, &a, why),
	    MQTT_MALFORMED);
}

static enum mqtt_rc
connack_exact(const struct buf *body, uint8_t version, struct mqtt_connack *a,
    char *why)
{
	uint8_t *copy = malloc(body->n ? body->n : 1);
	enum mqtt_rc rc;

	assert_non_null(copy);
	if (body->n != 0) {
		memcpy(copy, body->b, body->n);
	}
	rc = mqtt_connack_decode(copy, body->n, version, a, why);
	free(copy);
	return rc;
}

static void
test_connack_v5_server_keepalive(void **state)
{
	struct buf p = {.n = 0}, body = {.n = 0};
	struct mqtt_connack a;
	char why[MQTT_WHY_LEN];

	(void)state;
	put_u8(&p, 0x12), put_str(&p, "auto-1");
	put_u8(&p, 0x24), put_u8(&p, 1);
	put_u8(&p, 0x27), put_u32(&p, 65536);
	put_u8(&p, 0x13), put_u16(&p, 90);
	put_u8(&p, 0x26), put_str(&p, "a"), put_str(&p, "b");
	put_u8(&p, 0x26), put_str(&p, "a"), put_str(&p, "c");
	put_u8(&p, 0x1f), put_str(&p, "welcome");
	put_u8(&body, 0x01), put_u8(&body, 0x00);
	put_block(&body, &p);
	assert_int_equal(connack_exact(&body, MQTT_V5, &a, why), MQTT_OK);
	assert_true(a.session_present);
	assert_int_equal(a.code, 0);
	assert_true(a.has_server_keepalive);
	assert_int_equal(a.server_keepalive, 90);
}

static void
test_connack_v5_without_properties(void **state)
{
	struct buf body = {.n = 0};
	struct mqtt_connack a;
	char why[MQTT_WHY_LEN];

	(void)state;
	put_u8(&body, 0x00), put_u8(&body, 0x87), put_u8(&body, 0x00);
	assert_int_equal(connack_exact(&body, MQTT_V5, &a, why), MQTT_OK);
	assert_false(a.session_present);
	assert_int_equal(a.code, 0x87);
	assert_false(a.has_server_keepalive);
	assert_int_equal(a.server_keepalive, 0);
}

/* The broker's property values are the device's to judge, not ours. */
static void
test_connack_v5_property_values_not_judged(void **state)
{
	struct buf p = {.n = 0}, body = {.n = 0};
	struct mqtt_connack a;
	char why[MQTT_WHY_LEN];

	(void)state;
	put_u8(&p, 0x24), put_u8(&p, 7);   /* maximum QoS 7 */
	put_u8(&p, 0x21), put_u16(&p, 0);  /* receive maximum 0 */
	put_u8(&body, 0x00), put_u8(&body, 0x00);
	put_block(&body, &p);
	assert_int_equal(connack_exact(&body, MQTT_V5, &a, why), MQTT_OK);
}

static void
expect_connack_v5_malformed(const struct buf *body, const char *sub)
{
	struct mqtt_connack a;
	char why[MQTT_WHY_LEN];

	assert_int_equal(connack_exact(body, MQTT_V5, &a, why),
	    MQTT_MALFORMED);
	if (strstr(why, sub) == NULL) {
		fail_msg("why \"%s\" lacks \"%s\"", why, sub);
	}
}

static void
test_connack_v5_malformed(void **state)
{
	struct buf body = {.n = 0}, p = {.n = 0};

	(void)state;
	put_u8(&body, 0x00), put_u8(&body, 0x00);
	expect_connack_v5_malformed(&body, "CONNACK: properties length is cut "
	    "off after 0 bytes");
	p.n = 0;
	put_u8(&p, 0x13), put_u16(&p, 10);
	put_u8(&p, 0x13), put_u16(&p, 20);
	body.n = 2;
	put_block(&body, &p);
	expect_connack_v5_malformed(&body, "server keep alive (0x13) appears "
	    "twice");
	p.n = 0;
	put_u8(&p, 0x17), put_u8(&p, 1);
	body.n = 2;
	put_block(&body, &p);
	expect_connack_v5_malformed(&body, "request problem information "
	    "(0x17) is not allowed in CONNACK properties");
	p.n = 0;
	put_u8(&p, 0x13), put_u8(&p, 0);
	body.n = 2;
	put_block(&body, &p);
	expect_connack_v5_malformed(&body, "server keep alive needs 2 bytes "
	    "but only 1 remain");
	p.n = 0;
	body.n = 2;
	put_block(&body, &p);
	put_u8(&body, 0xff);
	expect_connack_v5_malformed(&body, "CONNACK: 1 byte after the "
	    "properties");
	body.n = 0;
	put_u8(&body, 0x80), put_u8(&body, 0x00), put_u8(&body, 0x00);
	expect_connack_v5_malformed(&body, "reserved acknowledge flags are set "
	    "(0x80)");
}

static void
test_connack_encode_v3(void **state)
{
	const uint8_t want[] = {0x20, 0x02, 0x00, 0x05};
	uint8_t out[5];
	struct mqtt_fixed f;
	struct mqtt_connack a;
	char why[MQTT_WHY_LEN];

	(void)state;
	assert_int_equal(mqtt_connack_encode(MQTT_V311,
	    MQTT_CONNACK_V3_NOT_AUTHORIZED, out), 4);
	assert_memory_equal(out, want, 4);
	assert_int_equal(mqtt_connack_encode(MQTT_V31,
	    MQTT_CONNACK_V3_NOT_AUTHORIZED, out), 4);
	assert_memory_equal(out, want, 4);
	assert_int_equal(mqtt_fixed_decode(out, 4, 0, &f, why), MQTT_OK);
	assert_true(mqtt_flags_valid(f.type, f.flags, MQTT_V311));
	assert_int_equal(mqtt_connack_decode(out + 2, f.remaining, MQTT_V311,
	    &a, why), MQTT_OK);
	assert_int_equal(a.code, 0x05);
}

static void
test_connack_encode_v5(void **state)
{
	const uint8_t want[] = {0x20, 0x03, 0x00, 0x88, 0x00};
	uint8_t out[5];
	struct mqtt_fixed f;
	struct mqtt_connack a;
	char why[MQTT_WHY_LEN];

	(void)state;
	assert_int_equal(mqtt_connack_encode(MQTT_V5,
	    MQTT_RC_V5_SERVER_UNAVAILABLE, out), 5);
	assert_memory_equal(out, want, 5);
	assert_int_equal(mqtt_fixed_decode(out, 5, 0, &f, why), MQTT_OK);
	assert_int_equal(mqtt_connack_decode(out + 2, f.remaining, MQTT_V5,
	    &a, why), MQTT_OK);
	assert_int_equal(a.code, 0x88);
	assert_false(a.session_present);
}

/* ------------------------------------------------------- DISCONNECT */

static void
test_disconnect_v5_encode(void **state)
{
	const uint8_t want[] = {0xe0, 0x02, 0x95, 0x00};
	uint8_t out[4];
	struct mqtt_fixed f;
	char why[MQTT_WHY_LEN];

	(void)state;
	assert_int_equal(mqtt_disconnect_encode_v5(MQTT_RC_V5_PACKET_TOO_LARGE,
	    out), 4);
	assert_memory_equal(out, want, 4);
	assert_int_equal(mqtt_fixed_decode(out, 4, 0, &f, why), MQTT_OK);
	assert_int_equal(f.type, MQTT_DISCONNECT);
	assert_int_equal(f.remaining, 2);
	assert_true(mqtt_flags_valid(f.type, f.flags, MQTT_V5));
}

/* The protocol level from the first bytes of a CONNECT body, for refusing
 * one that is too large before it is whole. */
static void
test_connect_level(void **state)
{
	static const uint8_t v5[] = { 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02 };
	static const uint8_t v31[] = { 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3 };
	static const uint8_t odd[] = { 0, 4, 'M', 'Q', 'T', 'X', 4 };
	static const uint8_t wide[] = { 0, 5, 'M', 'Q', 'T', 'T', 'T', 4 };
	uint8_t level = 0;

	(void)state;
	assert_int_equal(mqtt_connect_level(v5, sizeof(v5), &level), MQTT_OK);
	assert_int_equal(level, 5);
	for (size_t n = 0; n < 7; n++) {
		assert_int_equal(mqtt_connect_level(v5, n, &level),
		    MQTT_NEED_MORE);
	}
	assert_int_equal(mqtt_connect_level(v31, sizeof(v31), &level),
	    MQTT_OK);
	assert_int_equal(level, 3);
	assert_int_equal(mqtt_connect_level(v31, 8, &level), MQTT_NEED_MORE);
	assert_int_equal(mqtt_connect_level(odd, sizeof(odd), &level),
	    MQTT_MALFORMED);
	assert_int_equal(mqtt_connect_level(wide, sizeof(wide), &level),
	    MQTT_MALFORMED);
	assert_int_equal(mqtt_connect_level(wide, 2, &level), MQTT_MALFORMED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vbi_encode_edges),
		cmocka_unit_test(test_vbi_encode_too_large),
		cmocka_unit_test(test_fixed_decode_edges_round_trip),
		cmocka_unit_test(test_frame_accepts_non_minimal_lengths),
		cmocka_unit_test(test_vbi_decode_reports_used),
		cmocka_unit_test(test_fixed_need_more_at_every_truncation),
		cmocka_unit_test(test_fixed_ok_without_body),
		cmocka_unit_test(test_fixed_five_length_bytes_malformed),
		cmocka_unit_test(test_fixed_fourth_continuation_malformed_at_once),
		cmocka_unit_test(test_fixed_overlong_length_malformed),
		cmocka_unit_test(test_fixed_too_big_at_boundary),
		cmocka_unit_test(test_fixed_no_limit_when_zero),
		cmocka_unit_test(test_flags_every_type_v311),
		cmocka_unit_test(test_flags_every_type_v5),
		cmocka_unit_test(test_flags_every_type_v31),
		cmocka_unit_test(test_flags_publish_qos3_invalid),
		cmocka_unit_test(test_flags_auth_only_in_v5),
		cmocka_unit_test(test_flags_out_of_range_invalid),
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_utf8_valid_forms),
		cmocka_unit_test(test_utf8_rejects_null),
		cmocka_unit_test(test_utf8_rejects_surrogates),
		cmocka_unit_test(test_utf8_rejects_overlong),
		cmocka_unit_test(test_utf8_rejects_above_10ffff),
		cmocka_unit_test(test_utf8_rejects_broken_sequences),
		cmocka_unit_test(test_connect_v31_decode),
		cmocka_unit_test(test_connect_v311_decode),
		cmocka_unit_test(test_connect_v5_decode),
		cmocka_unit_test(test_connect_fields_point_into_buffer),
		cmocka_unit_test(test_connect_empty_client_id),
		cmocka_unit_test(test_connect_v31_truncated_everywhere),
		cmocka_unit_test(test_connect_v311_truncated_everywhere),
		cmocka_unit_test(test_connect_v5_truncated_everywhere),
		cmocka_unit_test(test_connect_client_id_longer_than_body),
		cmocka_unit_test(test_connect_bad_protocol_name),
		cmocka_unit_test(test_connect_bad_protocol_level),
		cmocka_unit_test(test_connect_bridge_levels),
		cmocka_unit_test(test_connect_empty_will_topic),
		cmocka_unit_test(test_connect_reserved_flag),
		cmocka_unit_test(test_connect_will_qos3),
		cmocka_unit_test(test_connect_will_qos_without_will),
		cmocka_unit_test(test_connect_will_retain_without_will),
		cmocka_unit_test(test_connect_password_without_user_v3_malformed),
		cmocka_unit_test(test_connect_password_without_user_v5_ok),
		cmocka_unit_test(test_connect_flag_without_field),
		cmocka_unit_test(test_connect_trailing_garbage),
		cmocka_unit_test(test_connect_bad_utf8_client_id),
		cmocka_unit_test(test_connect_bad_utf8_will_topic),
		cmocka_unit_test(test_connect_bad_utf8_username),
		cmocka_unit_test(test_connect_binary_fields_not_utf8_checked),
		cmocka_unit_test(test_connect_v5_duplicate_property),
		cmocka_unit_test(test_connect_v5_user_property_repeats),
		cmocka_unit_test(test_connect_v5_unknown_property),
		cmocka_unit_test(test_connect_v5_property_not_allowed),
		cmocka_unit_test(test_connect_v5_receive_maximum_zero),
		cmocka_unit_test(test_connect_v5_maximum_packet_size_zero),
		cmocka_unit_test(test_connect_v5_boolean_properties_range),
		cmocka_unit_test(test_connect_v5_auth_data_without_method),
		cmocka_unit_test(test_connect_v5_property_cut_inside_block),
		cmocka_unit_test(test_connect_v5_property_length_past_body),
		cmocka_unit_test(test_connect_v5_property_length_overlong),
		cmocka_unit_test(test_connect_round_trip_v31),
		cmocka_unit_test(test_connect_round_trip_v311),
		cmocka_unit_test(test_connect_round_trip_v5),
		cmocka_unit_test(test_connect_encode_ignores_raw_flags),
		cmocka_unit_test(test_connect_rewrite_client_id_v311),
		cmocka_unit_test(test_connect_rewrite_client_id_v5_keeps_properties),
		cmocka_unit_test(test_connect_drop_username_v5),
		cmocka_unit_test(test_connect_drop_username_v311_needs_password_dropped),
		cmocka_unit_test(test_connect_encode_small_buffer_writes_nothing),
		cmocka_unit_test(test_connect_encode_too_large),
		cmocka_unit_test(test_connect_encode_refuses_invalid_struct),
		cmocka_unit_test(test_connack_v311_decode),
		cmocka_unit_test(test_connack_v311_malformed),
		cmocka_unit_test(test_connack_v5_server_keepalive),
		cmocka_unit_test(test_connack_v5_without_properties),
		cmocka_unit_test(test_connack_v5_property_values_not_judged),
		cmocka_unit_test(test_connack_v5_malformed),
		cmocka_unit_test(test_connack_encode_v3),
		cmocka_unit_test(test_connack_encode_v5),
		cmocka_unit_test(test_disconnect_v5_encode),
		cmocka_unit_test(test_connect_level),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
