/*
 * test_mqtt_mosquitto.c - the CONNECTs whose fate the MQTT specification
 * leaves to the server, judged as the reference broker (mosquitto 2.0.11)
 * judges them (docs/protocol.md, SPEC "Transparent to every MQTT client"):
 * an MQTT 3.1 CONNECT held only to the rules mosquitto holds 3.1 to, the
 * fixed header flags judged after the protocol level, and the version of
 * a CONNECT too large to read whole. Each expectation here was checked
 * against mosquitto 2.0.11 with the same bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt.h"

struct buf {
	uint8_t b[256];
	size_t n;
};

static void
put(struct buf *p, const void *d, size_t n)
{
	assert_true(p->n + n <= sizeof(p->b));
	memcpy(p->b + p->n, d, n);
	p->n += n;
}

/* A two-byte length and the bytes. */
static void
put_field(struct buf *p, const char *s, size_t n)
{
	uint8_t len[2] = {(uint8_t)(n >> 8), (uint8_t)n};

	put(p, len, 2);
	put(p, s, n);
}

#define FIELD(p, s) put_field((p), (s), sizeof(s) - 1)

/* A CONNECT body up to and including the client id "c31". */
static void
head(struct buf *p, const char *name, uint8_t level, uint8_t flags)
{
	uint8_t var[4] = {level, flags, 0, 60};

	p->n = 0;
	put_field(p, name, strlen(name));
	put(p, var, sizeof(var));
	FIELD(p, "c31");
}

static enum mqtt_rc
decode(const struct buf *p, struct mqtt_connect *c, char *why)
{
	return mqtt_connect_decode(p->b, p->n, c, why);
}

/* Accepted, and encoded again it is a CONNECT any version's rules accept:
 * what certbridge sends the broker when it rewrites one. */
static void
expect_ok_and_clean(const struct buf *p, struct mqtt_connect *c)
{
	char why[MQTT_WHY_LEN];
	uint8_t out[300];
	size_t n;
	struct mqtt_fixed f;
	struct mqtt_connect again;

	if (decode(p, c, why) != MQTT_OK) {
		fail_msg("decode: %s", why);
	}
	n = mqtt_connect_encode(c, out, sizeof(out));
	assert_true(n > 0 && n <= sizeof(out));
	assert_int_equal(mqtt_fixed_decode(out, n, 0, &f, why), MQTT_OK);
	assert_int_equal(mqtt_connect_decode(out + f.header_len, f.remaining,
	    &again, why), MQTT_OK);
	/* The re-encoded flags say exactly what the fields hold. */
	assert_int_equal(again.connect_flags & 0x01, 0);
	assert_int_equal(again.has_username, c->has_username);
	assert_int_equal(again.has_password, c->has_password);
	assert_int_equal(again.will_qos, c->will_qos);
	assert_int_equal(again.will_retain, c->will_retain);
}

/* Reserved flag, will QoS or retain without a will: mosquitto checks
 * these only in 3.1.1 and 5.0; in 3.1 they are dropped, not refused. A
 * bridge's 3.1 (0x83) is 3.1. Will QoS 3 stays refused in 3.1 too. */
static void
test_v31_flags_mosquitto_ignores(void **state)
{
	static const uint8_t ignored[] = {0x03, 0x0a, 0x12, 0x22, 0x32, 0x0b};
	static const uint8_t levels[] = {3, 0x83};
	struct buf p;
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];

	(void)state;
	for (size_t l = 0; l < 2; l++) {
		for (size_t i = 0; i < sizeof(ignored); i++) {
			head(&p, "MQIsdp", levels[l], ignored[i]);
			expect_ok_and_clean(&p, &c);
			assert_int_equal(c.connect_flags, ignored[i]);
			assert_false(c.will);
			assert_int_equal(c.will_qos, 0);
			assert_false(c.will_retain);
			assert_true(c.clean_start);
		}
		head(&p, "MQIsdp", levels[l], 0x1a);
		assert_int_equal(decode(&p, &c, why), MQTT_MALFORMED);
		assert_non_null(strstr(why, "will QoS is 3"));
	}
	/* 3.1.1 and 5.0 stay strict. */
	head(&p, "MQTT", 4, 0x03);
	assert_int_equal(decode(&p, &c, why), MQTT_MALFORMED);
	head(&p, "MQTT", 4, 0x0a);
	assert_int_equal(decode(&p, &c, why), MQTT_MALFORMED);
	head(&p, "MQTT", 4, 0x22);
	assert_int_equal(decode(&p, &c, why), MQTT_MALFORMED);
}

/* A 3.1 user name or password its flag announces but that is missing, cut
 * short or (user name) not UTF-8 is absent, as mosquitto reads it ("Username
 * flag given, but no username. Ignore."). */
static void
test_v31_absent_credentials(void **state)
{
	struct buf p;
	struct mqtt_connect c;

	(void)state;
	/* Both flags, only a client id. */
	head(&p, "MQIsdp", 3, 0xc2);
	expect_ok_and_clean(&p, &c);
	assert_false(c.has_username);
	assert_false(c.has_password);
	/* A user name, no password. */
	head(&p, "MQIsdp", 3, 0xc2);
	FIELD(&p, "u");
	expect_ok_and_clean(&p, &c);
	assert_true(c.has_username);
	assert_int_equal(c.username.len, 1);
	assert_false(c.has_password);
	/* User name flag, nothing after the client id. */
	head(&p, "MQIsdp", 0x83, 0x82);
	expect_ok_and_clean(&p, &c);
	assert_false(c.has_username);
	/* User names that are not UTF-8, or hold U+0000: skipped. */
	head(&p, "MQIsdp", 3, 0x82);
	FIELD(&p, "\xff");
	expect_ok_and_clean(&p, &c);
	assert_false(c.has_username);
	head(&p, "MQIsdp", 3, 0x82);
	FIELD(&p, "a\x00");
	expect_ok_and_clean(&p, &c);
	assert_false(c.has_username);
	/* An empty user name is a user name. */
	head(&p, "MQIsdp", 3, 0x82);
	FIELD(&p, "");
	expect_ok_and_clean(&p, &c);
	assert_true(c.has_username);
	assert_int_equal(c.username.len, 0);
}

/* A user name skipped because it is not UTF-8 leaves a password behind:
 * mosquitto accepts that CONNECT, and the decoder reports exactly what
 * the broker reads. Encoding it again needs the password gone too (a 3.x
 * password alone is refused, [MQTT-3.1.2-22]): mqttpolicy does that. */
static void
test_v31_password_after_skipped_user_name(void **state)
{
	struct buf p;
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];

	(void)state;
	head(&p, "MQIsdp", 3, 0xc2);
	FIELD(&p, "\xff");
	FIELD(&p, "pw");
	assert_int_equal(decode(&p, &c, why), MQTT_OK);
	assert_false(c.has_username);
	assert_true(c.has_password);
	assert_int_equal(c.password.len, 2);
	assert_int_equal(mqtt_connect_encode(&c, NULL, 0), 0);
	/* The password flag without the user name flag: refused in 3.1 too,
	 * as mosquitto 2.0 refuses it. */
	head(&p, "MQIsdp", 3, 0x42);
	FIELD(&p, "pw");
	assert_int_equal(decode(&p, &c, why), MQTT_MALFORMED);
}

/* Bytes are taken as mosquitto takes them: a length claiming more than is
 * left is consumed with the field absent, a lone byte is not; whatever is
 * left over is a byte after the last field. */
static void
test_v31_cut_fields_consumed_as_mosquitto(void **state)
{
	static const struct {
		uint8_t flags;
		const char *tail;
		size_t n;
		enum mqtt_rc rc;
	} cases[] = {
		{0x82, "\x00\x05", 2, MQTT_OK},             /* user cut, nothing */
		{0x82, "\x00\x05" "ab", 4, MQTT_MALFORMED}, /* ab left over */
		{0x82, "\x00", 1, MQTT_MALFORMED},          /* lone byte */
		{0xc2, "\x00\x05" "\x00\x00", 4, MQTT_OK},  /* then empty pw */
		{0xc2, "\x00\x01u" "\x00\x05", 5, MQTT_OK}, /* pw cut */
		{0xc2, "\x00\x01u" "\x00\x05" "ab", 7, MQTT_MALFORMED},
		{0xc2, "\x00\x01u" "\x00", 4, MQTT_MALFORMED},
	};
	struct buf p;
	struct mqtt_connect c;
	char why[MQTT_WHY_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		head(&p, "MQIsdp", 3, cases[i].flags);
		put(&p, cases[i].tail, cases[i].n);
		if (decode(&p, &c, why) != cases[i].rc) {
			fail_msg("case %zu: %s", i, why);
		}
		if (cases[i].rc == MQTT_MALFORMED) {
			assert_non_null(strstr(why, "after the last field"));
		}
	}
	/* In 3.1.1 every one of them is malformed. */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		head(&p, "MQTT", 4, cases[i].flags);
		put(&p, cases[i].tail, cases[i].n);
		assert_int_equal(decode(&p, &c, why), MQTT_MALFORMED);
	}
}

/* The fixed header flags of a CONNECT: 0 in 3.1.1 and 5.0, anything in
 * 3.1, which mosquitto accepts. */
static void
test_connect_fixed_flags(void **state)
{
	char why[MQTT_WHY_LEN];

	(void)state;
	for (uint8_t f = 0; f < 16; f++) {
		assert_true(mqtt_connect_fixed_flags_ok(MQTT_V31, f, why));
		assert_int_equal(mqtt_connect_fixed_flags_ok(MQTT_V311, f, why),
		    f == 0);
		assert_int_equal(mqtt_connect_fixed_flags_ok(MQTT_V5, f, why),
		    f == 0);
	}
	assert_false(mqtt_connect_fixed_flags_ok(MQTT_V311, 0x1, why));
	assert_non_null(strstr(why, "fixed header flags are 0x1"));
}

/* The version of a CONNECT from its first bytes, for one too large to
 * read whole: name and level decide together, as in the whole decode. */
static void
test_connect_version(void **state)
{
	static const struct {
		const char *name;
		uint8_t level;
		enum mqtt_rc rc;
		uint8_t version;
	} cases[] = {
		{"MQTT", 5, MQTT_OK, MQTT_V5},
		{"MQTT", 4, MQTT_OK, MQTT_V311},
		{"MQTT", 0x84, MQTT_OK, MQTT_V311},
		{"MQIsdp", 3, MQTT_OK, MQTT_V31},
		{"MQIsdp", 0x83, MQTT_OK, MQTT_V31},
		{"MQIsdp", 5, MQTT_UNSUPPORTED, 0},
		{"MQIsdp", 4, MQTT_UNSUPPORTED, 0},
		{"MQIsdp", 0x85, MQTT_UNSUPPORTED, 0},
		{"MQTT", 3, MQTT_UNSUPPORTED, 0},
		{"MQTT", 6, MQTT_UNSUPPORTED, 0},
		{"MQTT", 0, MQTT_UNSUPPORTED, 0},
		{"MQTT", 0x85, MQTT_MALFORMED, 0},
		{"MQTX", 4, MQTT_MALFORMED, 0},
	};
	struct buf p;
	uint8_t version;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p.n = 0;
		put_field(&p, cases[i].name, strlen(cases[i].name));
		put(&p, &cases[i].level, 1);
		version = 0;
		assert_int_equal(mqtt_connect_version(p.b, p.n, &version),
		    cases[i].rc);
		assert_int_equal(version, cases[i].version);
		if (cases[i].rc != MQTT_MALFORMED) {
			assert_int_equal(mqtt_connect_version(p.b, p.n - 1,
			    &version), MQTT_NEED_MORE);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v31_flags_mosquitto_ignores),
		cmocka_unit_test(test_v31_absent_credentials),
		cmocka_unit_test(test_v31_password_after_skipped_user_name),
		cmocka_unit_test(test_v31_cut_fields_consumed_as_mosquitto),
		cmocka_unit_test(test_connect_fixed_flags),
		cmocka_unit_test(test_connect_version),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
