/*
 * test_gw_mqttpolicy.c - the [mqtt] identity rules of mqttpolicy_apply,
 * against what docs/configuration.md ([mqtt], "Identities are exact") and
 * docs/protocol.md ("Refusals certbridge answers itself") promise.
 *
 * The configuration is a real file loaded with cfg_load (so only
 * combinations the loader accepts are tested, as in production); the
 * CONNECT is real bytes, built here field by field and decoded with
 * common/mqtt.h's decoder; the identity comes from judge_identity() on
 * certificate facts filled in by hand, so odd certificates reach the policy
 * exactly as the judge reports them. A rewritten CONNECT is decoded again
 * and compared field by field with the one the device sent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/buffer.h>

#include "certfacts.h"
#include "config.h"
#include "der.h"
#include "judge.h"
#include "mqtt.h"
#include "mqttpolicy.h"
#include "reason.h"
#include "trust.h"

/* ------------------------------------------------------------ config */

static char dir[64];
static char ini[128];

/* A device-facing listener where a certificate is optional, so a device
 * with one and a device without one are both possible. cfg_load checks
 * that the files it names exist and are readable, not what they hold:
 * the INI file itself stands in for each of them. */
#define BASE "[downstream]\ncert = t.ini\nkey = t.ini\n" \
	"client_auth = optional\n[ca.fleet]\nfile = t.ini\n" \
	"[upstream]\naddress = broker.example.com:8883\nca = t.ini\n"

static int
group_setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/cb-test-mqttpolicy.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		return -1;
	}
	snprintf(ini, sizeof(ini), "%s/t.ini", dir);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	unlink(ini);
	return rmdir(dir);
}

/* BASE plus the given [mqtt] lines; NULL when the loader refuses them. */
static struct cfg *
try_load(const char *mqtt_lines)
{
	struct cfg_diag diag = {0};
	struct cfg *cfg;
	FILE *f;

	assert_non_null(f = fopen(ini, "wb"));
	assert_true(fprintf(f, BASE "[mqtt]\n%s", mqtt_lines) > 0);
	assert_int_equal(fclose(f), 0);
	cfg = cfg_load(ini, &diag);
	cfg_diag_free(&diag);
	return cfg;
}

static struct cfg *
load(const char *mqtt_lines)
{
	struct cfg *cfg = try_load(mqtt_lines);

	if (cfg == NULL) {
		fail_msg("the loader refused [mqtt] %s", mqtt_lines);
	}
	return cfg;
}

/* ------------------------------------------------------------ identity */

struct blob {
	const void *p;   /* NULL: the field is absent */
	size_t n;
};

#define BL(s) ((struct blob){(s), sizeof(s) - 1})
#define STR(s) ((struct blob){(s), strlen(s)})

/* The verdict of a device whose certificate has these CNs (any bytes,
 * all of DER type tag), as judge_identity() reads it under cfg's [mqtt]
 * identity. */
static void
judge(const struct cfg *cfg, struct trust_verdict *v, const struct blob *cn,
    size_t ncn, uint8_t tag)
{
	struct certfacts f;

	memset(&f, 0, sizeof(f));
	memset(v, 0, sizeof(*v));
	f.cn_count = ncn;
	for (size_t i = 0; i < ncn; i++) {
		f.cn[i] = (struct certfacts_string){{cn[i].p, cn[i].n}, tag};
	}
	judge_identity(&f, cfg->mqtt.identity, &v->id);
}

/* A certificate with one UTF8String CN. */
#define judge_cn(cfg, v, cn) judge((cfg), (v), &STR(cn), 1, DER_UTF8_STRING)

/* ------------------------------------------------------------ CONNECT */

/* A CONNECT as the device sends it; the connect flags are derived from
 * the fields. level carries 0x80 for a bridge. */
struct spec {
	uint8_t level;
	bool clean;
	uint16_t keepalive;
	const struct blob *props;       /* 5.0; NULL: an empty block */
	struct blob id;
	bool will;
	uint8_t will_qos;
	bool will_retain;
	const struct blob *will_props;  /* 5.0 with a will */
	struct blob will_topic, will_payload;
	struct blob user, pass;
};

/* Room for a CONNECT with three 65535-byte fields. */
#define PKT_MAX (4 * 65540)

struct buf {
	uint8_t *b;
	size_t n;
};

enum prefix { RAW, LEN16, VBI };

/* Appends n bytes, after their length as MQTT writes it: two bytes for a
 * string or binary field, a variable byte integer for a v5 property block
 * or the remaining length. */
static void
put(struct buf *p, const void *d, size_t n, enum prefix pre)
{
	uint8_t len[4] = {(uint8_t)(n >> 8), (uint8_t)n};
	size_t k = pre == LEN16 ? 2 : 0;

	if (pre == VBI) {
		assert_true((k = mqtt_vbi_encode((uint32_t)n, len)) > 0);
	}
	assert_true(n <= (pre == LEN16 ? 0xffff : PKT_MAX - 5));
	assert_true(p->n + k + n <= PKT_MAX);
	memcpy(p->b + p->n, len, k);
	if (n > 0) {
		memcpy(p->b + p->n + k, d, n);
	}
	p->n += k + n;
}

/* A field the flags say is there; nothing when absent. */
static void
put_field(struct buf *p, struct blob f)
{
	if (f.p != NULL) {
		put(p, f.p, f.n, LEN16);
	}
}

/* A v5 property block; NULL writes an empty one. */
static void
put_props(struct buf *p, const struct blob *f)
{
	put(p, f != NULL ? f->p : NULL, f != NULL ? f->n : 0, VBI);
}

/* The whole packet, fixed header included, into pkt (PKT_MAX bytes). */
static void
build(const struct spec *s, struct buf *pkt)
{
	struct buf body = {malloc(PKT_MAX), 0};
	bool v5 = (s->level & 0x7f) == MQTT_V5;
	uint8_t head[4] = {s->level, (uint8_t)((s->user.p ? 0x80 : 0)
	    | (s->pass.p ? 0x40 : 0) | (s->will_retain ? 0x20 : 0)
	    | (s->will_qos << 3) | (s->will ? 0x04 : 0)
	    | (s->clean ? 0x02 : 0)), (uint8_t)(s->keepalive >> 8),
	    (uint8_t)s->keepalive};

	assert_non_null(body.b);
	put_field(&body, (s->level & 0x7f) == MQTT_V31 ? BL("MQIsdp")
	    : BL("MQTT"));
	put(&body, head, 4, RAW);
	if (v5) {
		put_props(&body, s->props);
	}
	put_field(&body, s->id);
	if (s->will && v5) {
		put_props(&body, s->will_props);
	}
	if (s->will) {
		put_field(&body, s->will_topic);
		put_field(&body, s->will_payload);
	}
	put_field(&body, s->user);
	put_field(&body, s->pass);
	pkt->n = 0;
	put(pkt, "\x10", 1, RAW);
	put(pkt, body.b, body.n, VBI);   /* the remaining length, then all */
	free(body.b);
}

/* Decodes a whole CONNECT packet, whose remaining length must cover it
 * exactly; returns the fixed header's length. */
static uint8_t
decode(const uint8_t *p, size_t n, struct mqtt_connect *c)
{
	struct mqtt_fixed f;
	char why[MQTT_WHY_LEN];

	assert_int_equal(mqtt_fixed_decode(p, n, 0, &f, why), MQTT_OK);
	assert_int_equal(f.type, MQTT_CONNECT);
	assert_int_equal(f.flags, 0);
	assert_int_equal(f.header_len + f.remaining, n);
	if (mqtt_connect_decode(p + f.header_len, f.remaining, c, why)
	    != MQTT_OK) {
		fail_msg("decode: %s", why);
	}
	return f.header_len;
}

/* One application of the policy: the device's packet, the CONNECT as
 * decoded before the policy saw it, and what the policy made of it. */
struct run {
	struct buf in;
	uint8_t in_header_len;
	struct mqtt_connect sent;   /* untouched copy */
	struct mqtt_connect c;      /* the one the policy may modify */
	enum mqttpolicy_rc rc;
	struct mqttpolicy_result res;
	uint8_t *out;
	size_t out_n;
	uint8_t out_header_len;
	struct mqtt_connect got;    /* out, decoded again */
};

/* The tests' one run: each apply() replaces the previous one. */
static struct run r;

static void
run_free(struct run *x)
{
	free(x->in.b);
	free(x->out);
}

static void
apply(const struct cfg *cfg, const struct trust_verdict *v, bool has_cert,
    const struct spec *s, struct run *x)
{
	struct evbuffer *out = evbuffer_new();

	run_free(x);
	memset(x, 0, sizeof(*x));
	assert_non_null(out);
	assert_non_null(x->in.b = malloc(PKT_MAX));
	build(s, &x->in);
	x->in_header_len = decode(x->in.b, x->in.n, &x->sent);
	x->c = x->sent;
	x->rc = mqttpolicy_apply(cfg, v, has_cert, &x->c, out, &x->res);
	x->out_n = evbuffer_get_length(out);
	if (x->rc == MQTTPOLICY_REWRITTEN) {
		assert_non_null(x->out = malloc(x->out_n));
		assert_int_equal(evbuffer_remove(out, x->out, x->out_n),
		    (int)x->out_n);
		x->out_header_len = decode(x->out, x->out_n, &x->got);
	} else {
		/* PASS forwards the original bytes; a refusal nothing. */
		assert_int_equal(x->out_n, 0);
	}
	evbuffer_free(out);
}

/* The rewritten packet's body is the sent one's plus delta bytes (the
 * fields that changed), whatever its fixed header needs for the length. */
static void
assert_body_delta(const struct run *x, long delta)
{
	assert_int_equal((long)(x->out_n - x->out_header_len),
	    (long)(x->in.n - x->in_header_len) + delta);
}

static void
assert_bytes(const void *ptr, size_t len, const void *want, size_t n)
{
	assert_int_equal(len, n);
	if (n > 0) {
		assert_memory_equal(ptr, want, n);
	}
}

#define ASSERT_FIELD(b, want, n) assert_bytes((b).ptr, (b).len, (want), (n))
#define ASSERT_SAME(a, b) assert_bytes((a).ptr, (a).len, (b).ptr, (b).len)

/* Everything but the client id and the user name, as the device sent
 * it: the rules touch nothing else (in 3.x the password goes with a
 * dropped user name; the caller checks those). */
static void
assert_rest_kept(const struct run *x)
{
	const struct mqtt_connect *a = &x->got, *b = &x->sent;

	assert_int_equal(a->version, b->version);
	assert_int_equal(a->level, b->level);
	assert_int_equal(a->bridge, b->bridge);
	assert_int_equal(a->clean_start, b->clean_start);
	assert_int_equal(a->keepalive, b->keepalive);
	assert_int_equal(a->will, b->will);
	assert_int_equal(a->will_qos, b->will_qos);
	assert_int_equal(a->will_retain, b->will_retain);
	ASSERT_SAME(a->will_topic, b->will_topic);
	ASSERT_SAME(a->will_payload, b->will_payload);
	ASSERT_SAME(a->props, b->props);
	ASSERT_SAME(a->will_props, b->will_props);
	assert_int_equal(a->session_expiry, b->session_expiry);
	assert_int_equal(a->max_packet_size, b->max_packet_size);
}

static void
assert_refused(const struct run *x, uint8_t code)
{
	assert_int_equal(x->rc, MQTTPOLICY_REFUSE);
	assert_int_equal(x->res.connack_code, code);
	assert_int_equal(x->res.reason, REASON_IDENTITY);
	assert_true(x->res.detail[0] != '\0');
}

/* The refusal codes of docs/configuration.md, by protocol level. */
#define IS_V5(level) (((level) & 0x7f) == MQTT_V5)
#define ID_REJECTED(level) (IS_V5(level) ? MQTT_RC_V5_CLIENT_ID_INVALID \
	: MQTT_CONNACK_V3_IDENTIFIER_REJECTED)
#define NOT_AUTHORIZED(level) (IS_V5(level) ? MQTT_RC_V5_NOT_AUTHORIZED \
	: MQTT_CONNACK_V3_NOT_AUTHORIZED)

/* ------------------------------------------------------------ fixtures */

/* CONNECT properties of several kinds, a user property twice, and
 * authentication data with a NUL and 0xff: kept byte for byte. */
static const uint8_t v5_props_b[] = {
	0x11, 0, 0, 0x0e, 0x10,                      /* expiry 3600 */
	0x21, 0, 20,                                 /* receive maximum */
	0x27, 0, 0x10, 0, 0,                         /* max packet 1 MiB */
	0x26, 0, 4, 's', 'i', 't', 'e', 0, 2, 'p', '7',
	0x26, 0, 4, 's', 'i', 't', 'e', 0, 2, 'p', '8',
	0x15, 0, 4, 'X', '-', 'A', 'U',              /* auth method */
	0x16, 0, 3, 0x00, 0xff, 0x01,                /* auth data */
};
static const uint8_t v5_will_props_b[] = {
	0x18, 0, 0, 0, 5,                            /* will delay */
	0x01, 1,                                     /* UTF-8 payload */
	0x03, 0, 4, 't', 'e', 'x', 't',              /* content type */
	0x09, 0, 2, 0x00, 0xff,                      /* correlation data */
	0x26, 0, 3, 'w', 'h', 'y', 0, 4, 'l', 'o', 's', 't',
};
static const struct blob v5_props = {v5_props_b, sizeof(v5_props_b)};
static const struct blob v5_will_props = {v5_will_props_b,
    sizeof(v5_will_props_b)};

/* A device with everything: will, user name and a binary password. */
static struct spec
full(uint8_t level, const char *id)
{
	return (struct spec){
		.level = level, .clean = true, .keepalive = 60,
		.props = &v5_props, .id = STR(id),
		.will = true, .will_qos = 1, .will_retain = true,
		.will_props = &v5_will_props,
		.will_topic = BL("dev/status"), .will_payload = BL("off\0\xff"),
		.user = BL("alice"), .pass = BL("s3\0cr\xff"),
	};
}

/* A device with a client id and nothing else. */
static struct spec
bare(uint8_t level, const char *id)
{
	return (struct spec){.level = level, .clean = true, .keepalive = 30,
	    .id = STR(id)};
}

/* The three protocol levels, then the bridge levels of 3.1 and 3.1.1. */
static const uint8_t levels[] = {MQTT_V31, MQTT_V311, MQTT_V5, 0x83, 0x84};
#define NLEVELS 3
#define NLEVELS_BRIDGES 5

/* 65535 bytes of 'x' (the longest MQTT string) and a NUL, set in main;
 * its first 255 or 256 bytes are the longest identity and one too many. */
static char xs[65536];
#define LONGEST ((struct blob){xs, JUDGE_IDENTITY_MAX})

/* ------------------------------------------------------------ tests */

/* Nothing to do: the original bytes go on (PASS), under every rule that
 * finds the CONNECT already as it wants it. */
static void
test_pass_unchanged(void **state)
{
	/* The defaults (check, keep); 3: the user name is the identity;
	 * 4: the device sends no user name. */
	static const char *const rules[] = {"", "clientid = keep\n",
	    "clientid = rewrite\n", "clientid = keep\nusername = identity\n",
	    "clientid = keep\nusername = drop\n",
	    "identity = none\nclientid = keep\n"};
	struct trust_verdict v;

	(void)state;
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		struct cfg *cfg = load(rules[i]);

		judge_cn(cfg, &v, "dev-1");
		for (size_t l = 0; l < NLEVELS_BRIDGES; l++) {
			struct spec s = i == 4 ? bare(levels[l], "dev-1")
			    : full(levels[l], "dev-1");

			if (i == 3) {
				s.user = BL("dev-1");
			}
			apply(cfg, &v, true, &s, &r);
			assert_int_equal(r.rc, MQTTPOLICY_PASS);
			assert_int_equal(r.res.connack_code, 0);
		}
		cfg_free(cfg);
	}
}

/* clientid = rewrite: the client id upstream is the identity; every
 * other byte is the device's (v5 properties, a binary password, a
 * bridge's level byte). username = identity as well: both at once. */
static void
test_rewrite(void **state)
{
	static const char *const rules[] = {"clientid = rewrite\n",
	    "clientid = rewrite\nusername = identity\n"};
	static const char id[] = "dev-\xc3\xa9t\xc3\xa9";  /* "dev-été" */
	struct trust_verdict v;

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct cfg *cfg = load(rules[i]);

		judge_cn(cfg, &v, id);
		for (size_t l = 0; l < NLEVELS_BRIDGES; l++) {
			struct spec s = full(levels[l], "whatever-it-says");

			apply(cfg, &v, true, &s, &r);
			assert_int_equal(r.rc, MQTTPOLICY_REWRITTEN);
			ASSERT_FIELD(r.got.client_id, id, 9);
			assert_true(r.got.has_username);
			if (i == 0) {
				ASSERT_SAME(r.got.username, r.sent.username);
			} else {
				ASSERT_FIELD(r.got.username, id, 9);
			}
			assert_true(r.got.has_password);
			ASSERT_FIELD(r.got.password, "s3\0cr\xff", 6);
			assert_rest_kept(&r);
			assert_body_delta(&r, 9 - 16 + (i == 0 ? 0 : 9 - 5));
			if (levels[l] == MQTT_V5) {
				ASSERT_FIELD(r.got.props, v5_props.p,
				    v5_props.n);
				ASSERT_FIELD(r.got.will_props, v5_will_props.p,
				    v5_will_props.n);
				assert_int_equal(r.got.session_expiry, 3600);
				assert_int_equal(r.got.max_packet_size,
				    0x100000);
			}
		}
		cfg_free(cfg);
	}
}

/* A 3.1 user name that is not UTF-8 is skipped by the broker (mosquitto:
 * "Username flag given, but no username. Ignore.") and by the decoder; a
 * rewritten CONNECT leaves out its password too, which would otherwise
 * stand alone and be refused [MQTT-3.1.2-22]; username = identity gives
 * it a user name to follow. */
static void
test_v31_skipped_user_name(void **state)
{
	struct cfg *rw = load("clientid = rewrite\n");
	struct cfg *ident = load("clientid = rewrite\nusername = identity\n");
	struct trust_verdict v;

	(void)state;
	for (size_t l = 0; l < NLEVELS_BRIDGES; l += 3) {  /* 3 and 0x83 */
		struct spec s = bare(levels[l], "any");

		s.user = BL("\xff");
		s.pass = BL("pw");
		judge_cn(rw, &v, "dev-1");
		apply(rw, &v, true, &s, &r);
		assert_false(r.sent.has_username);
		assert_int_equal(r.rc, MQTTPOLICY_REWRITTEN);
		assert_false(r.got.has_username);
		assert_false(r.got.has_password);
		assert_rest_kept(&r);
		judge_cn(ident, &v, "dev-1");
		apply(ident, &v, true, &s, &r);
		assert_int_equal(r.rc, MQTTPOLICY_REWRITTEN);
		ASSERT_FIELD(r.got.username, "dev-1", 5);
		ASSERT_FIELD(r.got.password, "pw", 2);
	}
	cfg_free(rw);
	cfg_free(ident);
}

/* The remaining length is recomputed, also when its own size changes: a
 * 255-byte identity (the longest there is) makes a small CONNECT need two
 * length bytes, and a 65535-byte client id replaced by a short identity
 * makes a large one need one instead of three. */
static void
test_remaining_length_recomputed(void **state)
{
	struct cfg *cfg = load("clientid = rewrite\n");
	struct trust_verdict v;

	(void)state;
	for (size_t l = 0; l < NLEVELS; l++) {
		struct spec s = bare(levels[l], "d");

		judge(cfg, &v, &LONGEST, 1, DER_UTF8_STRING);
		assert_int_equal(v.id.state, JUDGE_ID_OK);
		apply(cfg, &v, true, &s, &r);
		assert_int_equal(r.rc, MQTTPOLICY_REWRITTEN);
		assert_int_equal(r.in_header_len, 2);
		assert_int_equal(r.out_header_len, 3);
		assert_body_delta(&r, JUDGE_IDENTITY_MAX - 1);
		ASSERT_FIELD(r.got.client_id, xs, JUDGE_IDENTITY_MAX);
		assert_rest_kept(&r);

		judge_cn(cfg, &v, "dev-1");
		s = bare(levels[l], xs);
		apply(cfg, &v, true, &s, &r);
		assert_int_equal(r.rc, MQTTPOLICY_REWRITTEN);
		assert_int_equal(r.in_header_len, 4);
		assert_int_equal(r.out_header_len, 2);
		assert_body_delta(&r, 5 - 65535);
		ASSERT_FIELD(r.got.client_id, "dev-1", 5);
	}
	cfg_free(cfg);
}

/* username = identity: the user name upstream is the identity, added
 * when the device sent none, the password kept (5.0 allows one without a
 * user name). username = drop: no user name upstream; in 3.x the
 * password goes too (3.x forbids one without the other), in 5.0 it
 * stays; the largest fields there are. */
static void
test_username(void **state)
{
	struct cfg *ident = load("clientid = keep\nusername = identity\n");
	struct cfg *drop = load("clientid = keep\nusername = drop\n");
	struct trust_verdict v;

	(void)state;
	judge_cn(ident, &v, "dev-1");
	for (size_t l = 0; l < NLEVELS * 2; l++) {
		struct spec s = l < NLEVELS ? full(levels[l], "any")
		    : bare(levels[l - NLEVELS], "any");

		if (l == 2 * NLEVELS - 1) {
			s.pass = BL("\x00\x01");     /* 5.0, no user name */
		}
		apply(ident, &v, true, &s, &r);
		assert_int_equal(r.rc, MQTTPOLICY_REWRITTEN);
		ASSERT_FIELD(r.got.client_id, "any", 3);
		ASSERT_FIELD(r.got.username, "dev-1", 5);
		assert_int_equal(r.got.has_password, r.sent.has_password);
		ASSERT_SAME(r.got.password, r.sent.password);
		assert_rest_kept(&r);
	}
	for (size_t l = 0; l < NLEVELS; l++) {
		struct spec s = full(levels[l], "any");
		bool v5 = levels[l] == MQTT_V5;

		s.user = (struct blob){xs, 65535};
		s.pass = (struct blob){xs, 65535};
		apply(drop, &v, true, &s, &r);
		assert_int_equal(r.rc, MQTTPOLICY_REWRITTEN);
		assert_false(r.got.has_username);
		assert_int_equal(r.got.has_password, v5);
		assert_body_delta(&r, v5 ? -65537 : -2 * 65537);
		if (v5) {
			ASSERT_SAME(r.got.password, r.sent.password);
		}
		ASSERT_FIELD(r.got.client_id, "any", 3);
		assert_rest_kept(&r);
	}
	cfg_free(ident);
	cfg_free(drop);
}

/* clientid = check: a client id other than the identity, byte for byte
 * and length for length, is refused "identifier rejected" in the
 * device's own protocol's words (0x02, 0x85), the detail naming both.
 * A 65535-byte or non-ASCII client id is shown cut and printable. */
static void
test_check(void **state)
{
	static const char *const wrong[] = {"dev-2", "dev-10", "dev-", "DEV-1",
	    "dev-1 ", ""};
	struct cfg *cfg = load("clientid = check\n");
	struct trust_verdict v;
	struct spec s;

	(void)state;
	judge_cn(cfg, &v, "dev-1");
	for (size_t l = 0; l < NLEVELS_BRIDGES; l++) {
		for (size_t w = 0; w < sizeof(wrong) / sizeof(wrong[0]); w++) {
			s = full(levels[l], wrong[w]);
			apply(cfg, &v, true, &s, &r);
			assert_refused(&r, ID_REJECTED(levels[l]));
			assert_non_null(strstr(r.res.detail, "\"dev-1\""));
		}
	}
	s = bare(MQTT_V311, xs);
	apply(cfg, &v, true, &s, &r);
	assert_refused(&r, MQTT_CONNACK_V3_IDENTIFIER_REJECTED);
	assert_true(strlen(r.res.detail) < sizeof(r.res.detail));
	assert_null(strstr(r.res.detail, xs + 65535 - 100));
	s = bare(MQTT_V5, "d\xc3\xa9v-1");                /* "dév-1" */
	apply(cfg, &v, true, &s, &r);
	assert_refused(&r, MQTT_RC_V5_CLIENT_ID_INVALID);
	assert_non_null(strstr(r.res.detail, "\"d??v-1\""));
	/* The same non-ASCII name as identity and client id passes. */
	judge_cn(cfg, &v, "d\xc3\xa9v-1");
	apply(cfg, &v, true, &s, &r);
	assert_int_equal(r.rc, MQTTPOLICY_PASS);
	cfg_free(cfg);
}

/* "Identities are exact": a certificate without one clean identity is
 * refused "not authorized" (0x05 / 0x87), whatever clientid and username
 * say, also when its first bytes equal the client id; the detail is the
 * judge's sentence naming the field and the byte. With identity = none
 * no field is read for rules, and none of that stops the device. */
static void
test_unclean_identity_refused(void **state)
{
	static const char *const rules[] = {"", "clientid = keep\n",
	    "clientid = rewrite\n", "clientid = keep\nusername = drop\n",
	    "clientid = keep\nusername = identity\n",
	    "identity = none\nclientid = keep\n"};
	static const struct {
		struct blob cn[2];
		size_t ncn;
		uint8_t tag;
	} certs[] = {
		{{BL("dev-1\0.evil")}, 1, DER_UTF8_STRING},    /* a NUL */
		{{BL("dev-1\xff")}, 1, DER_UTF8_STRING},       /* not UTF-8 */
		{{BL("dev-\xc0\xb1")}, 1, DER_UTF8_STRING},    /* overlong */
		{{BL("dev-1\n")}, 1, DER_UTF8_STRING},         /* C0 control */
		{{BL("dev-\xc2\x85")}, 1, DER_UTF8_STRING},    /* C1 control */
		{{BL("")}, 1, DER_UTF8_STRING},                /* empty */
		{{BL("\xd8\x00\x00\x31")}, 1, DER_BMP_STRING}, /* surrogate */
		{{BL("dev-1"), BL("dev-1")}, 2, DER_UTF8_STRING}, /* two CNs */
		{{{NULL, 0}}, 0, DER_UTF8_STRING},             /* no CN */
		{{{NULL, JUDGE_IDENTITY_MAX + 1}}, 1, DER_UTF8_STRING},
	};
	struct trust_verdict v;

	(void)state;
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		struct cfg *cfg = load(rules[i]);

		for (size_t k = 0; k < sizeof(certs) / sizeof(certs[0]); k++) {
			struct blob cn[2] = {certs[k].cn[0], certs[k].cn[1]};

			if (cn[0].p == NULL && certs[k].ncn == 1) {
				cn[0].p = xs;        /* 256 bytes: never cut */
			}
			judge(cfg, &v, cn, certs[k].ncn, certs[k].tag);
			assert_int_not_equal(v.id.state, JUDGE_ID_OK);
			for (size_t l = 0; l < NLEVELS; l++) {
				struct spec s = full(levels[l], "dev-1");

				apply(cfg, &v, true, &s, &r);
				if (cfg->mqtt.identity == CFG_IDENTITY_NONE) {
					assert_int_equal(r.rc, MQTTPOLICY_PASS);
					continue;
				}
				assert_refused(&r, NOT_AUTHORIZED(levels[l]));
				assert_string_equal(r.res.detail, v.id.why);
			}
		}
		cfg_free(cfg);
	}
}

/* A device without a certificate has no identity: under each identity
 * mode, a rule that needs one refuses it "not authorized" (0x05 / 0x87,
 * never "identifier rejected"), and the rules that need none apply. */
static void
test_no_certificate(void **state)
{
	static const char *const modes[] = {"cn", "san-dns", "san-uri", "none"};
	static const struct {
		const char *lines;
		enum mqttpolicy_rc rc;      /* for full(), which has a user */
	} rules[] = {
		{"", MQTTPOLICY_REFUSE},
		{"clientid = rewrite\n", MQTTPOLICY_REFUSE},
		{"clientid = keep\nusername = identity\n", MQTTPOLICY_REFUSE},
		{"clientid = keep\n", MQTTPOLICY_PASS},
		{"clientid = keep\nusername = drop\n", MQTTPOLICY_REWRITTEN},
	};
	struct trust_verdict v;
	char lines[256];

	(void)state;
	memset(&v, 0, sizeof(v));   /* no certificate: identity state NONE */
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
			struct cfg *cfg;

			snprintf(lines, sizeof(lines), "identity = %s\n%s",
			    modes[m], rules[i].lines);
			if ((cfg = try_load(lines)) == NULL) {
				/* Only none refuses rules: those needing one. */
				assert_string_equal(modes[m], "none");
				assert_int_equal(rules[i].rc,
				    MQTTPOLICY_REFUSE);
				continue;
			}
			for (size_t l = 0; l < NLEVELS_BRIDGES; l++) {
				struct spec s = full(levels[l], "dev-1");

				apply(cfg, &v, false, &s, &r);
				assert_int_equal(r.rc, rules[i].rc);
				if (r.rc == MQTTPOLICY_REFUSE) {
					assert_refused(&r,
					    NOT_AUTHORIZED(levels[l]));
				} else if (r.rc == MQTTPOLICY_REWRITTEN) {
					assert_false(r.got.has_username);
					ASSERT_FIELD(r.got.client_id, "dev-1",
					    5);
				}
			}
			cfg_free(cfg);
		}
	}
}

/* [MQTT-3.1.3-8] (docs/protocol.md): a 3.x device with an empty client
 * id that wants its session kept is refused "identifier rejected";
 * under clientid = rewrite it gets the identity instead. 5.0 lets the
 * broker assign one, and so does 3.1.1 with a clean session. */
static void
test_empty_client_id(void **state)
{
	struct cfg *keep = load("clientid = keep\n");
	struct cfg *rewrite = load("clientid = rewrite\n");
	struct trust_verdict v;
	struct spec s;

	(void)state;
	judge_cn(keep, &v, "dev-1");
	for (size_t l = 0; l < NLEVELS_BRIDGES; l++) {
		s = bare(levels[l], "");
		s.clean = false;
		apply(keep, &v, true, &s, &r);
		if (levels[l] == MQTT_V5) {
			assert_int_equal(r.rc, MQTTPOLICY_PASS);
		} else {
			assert_refused(&r, MQTT_CONNACK_V3_IDENTIFIER_REJECTED);
		}

		apply(rewrite, &v, true, &s, &r);
		assert_int_equal(r.rc, MQTTPOLICY_REWRITTEN);
		ASSERT_FIELD(r.got.client_id, "dev-1", 5);
		assert_false(r.got.clean_start);
	}
	s = bare(MQTT_V311, "");
	apply(keep, &v, true, &s, &r);
	assert_int_equal(r.rc, MQTTPOLICY_PASS);
	cfg_free(keep);
	cfg_free(rewrite);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pass_unchanged),
		cmocka_unit_test(test_rewrite),
		cmocka_unit_test(test_v31_skipped_user_name),
		cmocka_unit_test(test_remaining_length_recomputed),
		cmocka_unit_test(test_username),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_unclean_identity_refused),
		cmocka_unit_test(test_no_certificate),
		cmocka_unit_test(test_empty_client_id),
	};
	int rc;

	memset(xs, 'x', 65535);
	rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
	run_free(&r);
	return rc;
}
