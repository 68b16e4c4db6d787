/*
 * mqtt_connect.c - the bodies certbridge reads: CONNECT, which it checks
 * before applying the identity rules (and may then re-encode, see
 * mqtt_connect_encode in mqtt.c), and CONNACK, whose server keep alive
 * sets the idle timer. Everything else a session carries is only framed.
 *
 * Clause numbers are MQTT 5.0's unless marked "3.1.1". Decoded fields
 * point into the caller's buffer; nothing here allocates, logs or does I/O.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mqtt.h"
#include "mqtt_int.h"
#include "util.h"

/*
 * A bounds-checked reader over one packet body. The body is the whole
 * remaining length, so running out of bytes is never "wait for more": it
 * is a field that claims more than the packet holds, i.e. MALFORMED.
 */
struct rd {
	const uint8_t *p;
	size_t len;
	size_t off;
	const char *pkt; /* "CONNECT" or "CONNACK", prefixed to every why */
	char *why;
};

static size_t
rd_left(const struct rd *r)
{
	return r->len - r->off;
}

static bool
rd_need(struct rd *r, size_t n, const char *what)
{
	if (rd_left(r) < n) {
		mqtt_why(r->why, "%s: %s needs %zu byte%s but only %zu "
		    "remain", r->pkt, what, n, n == 1 ? "" : "s", rd_left(r));
		return false;
	}
	return true;
}

static bool
rd_u8(struct rd *r, const char *what, uint8_t *v)
{
	if (!rd_need(r, 1, what)) {
		return false;
	}
	*v = r->p[r->off++];
	return true;
}

static bool
rd_u16(struct rd *r, const char *what, uint16_t *v)
{
	if (!rd_need(r, 2, what)) {
		return false;
	}
	*v = (uint16_t)((unsigned)r->p[r->off] << 8 | r->p[r->off + 1]);
	r->off += 2;
	return true;
}

static bool
rd_u32(struct rd *r, const char *what, uint32_t *v)
{
	const uint8_t *b;

	if (!rd_need(r, 4, what)) {
		return false;
	}
	b = r->p + r->off;
	*v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	    (uint32_t)b[2] << 8 | (uint32_t)b[3];
	r->off += 4;
	return true;
}

static bool
rd_vbi(struct rd *r, const char *what, uint32_t *v)
{
	char inner[MQTT_WHY_LEN];
	size_t used;
	enum mqtt_rc rc;

	rc = mqtt_vbi_decode(r->p + r->off, rd_left(r), v, &used, inner);
	if (rc == MQTT_NEED_MORE) {
		mqtt_why(r->why, "%s: %s is cut off after %zu bytes", r->pkt,
		    what, rd_left(r));
	} else if (rc != MQTT_OK) {
		mqtt_why(r->why, "%s: %s: %s", r->pkt, what, inner);
	}
	if (rc != MQTT_OK) {
		return false;
	}
	r->off += used;
	return true;
}

/* A two-byte length and that many bytes: UTF-8 strings and binary data
 * share this form [MQTT-1.5.4] [MQTT-1.5.6]. */
static bool
rd_field(struct rd *r, const char *what, struct mqtt_bytes *out)
{
	uint16_t n;
	char what_len[48];

	(void)snprintf(what_len, sizeof(what_len), "%s length", what);
	if (!rd_u16(r, what_len, &n)) {
		return false;
	}
	if (rd_left(r) < n) {
		mqtt_why(r->why, "%s: %s is %u bytes but only %zu remain",
		    r->pkt, what, (unsigned)n, rd_left(r));
		return false;
	}
	out->ptr = r->p + r->off;
	out->len = n;
	r->off += n;
	return true;
}

static bool
rd_utf8(struct rd *r, const char *what, struct mqtt_bytes *out)
{
	if (!rd_field(r, what, out)) {
		return false;
	}
	if (!mqtt_utf8_valid(out->ptr, out->len)) {
		mqtt_why(r->why, "%s: %s is not valid UTF-8 [MQTT-1.5.4-1]",
		    r->pkt, what);
		return false;
	}
	return true;
}

/*
 * v5 properties. Each is an identifier and a value whose form the
 * identifier decides [MQTT-2.2.2]; an identifier this table does not know
 * cannot be skipped, since its length is unknown.
 */
enum prop_kind {
	PROP_NONE = 0,
	PROP_BYTE,
	PROP_U16,
	PROP_U32,
	PROP_VBI,
	PROP_STR,
	PROP_BIN,
	PROP_PAIR,
};

struct prop_def {
	uint8_t kind; /* enum prop_kind */
	const char *name;
};

/* The identifiers the code below acts on; the table names them all. */
enum prop_id {
	PROP_PAYLOAD_FORMAT = 0x01,
	PROP_SESSION_EXPIRY = 0x11,
	PROP_SERVER_KEEPALIVE = 0x13,
	PROP_AUTH_METHOD = 0x15,
	PROP_AUTH_DATA = 0x16,
	PROP_REQUEST_PROBLEM = 0x17,
	PROP_REQUEST_RESPONSE = 0x19,
	PROP_RECEIVE_MAX = 0x21,
	PROP_USER = 0x26,
	PROP_MAX_PACKET = 0x27,
	PROP_MAX_ID = 0x2a,
};

static const struct prop_def prop_defs[PROP_MAX_ID + 1] = {
	[0x01] = {PROP_BYTE, "payload format indicator"},
	[0x02] = {PROP_U32, "message expiry interval"},
	[0x03] = {PROP_STR, "content type"},
	[0x08] = {PROP_STR, "response topic"},
	[0x09] = {PROP_BIN, "correlation data"},
	[0x0b] = {PROP_VBI, "subscription identifier"},
	[0x11] = {PROP_U32, "session expiry interval"},
	[0x12] = {PROP_STR, "assigned client identifier"},
	[0x13] = {PROP_U16, "server keep alive"},
	[0x15] = {PROP_STR, "authentication method"},
	[0x16] = {PROP_BIN, "authentication data"},
	[0x17] = {PROP_BYTE, "request problem information"},
	[0x18] = {PROP_U32, "will delay interval"},
	[0x19] = {PROP_BYTE, "request response information"},
	[0x1a] = {PROP_STR, "response information"},
	[0x1c] = {PROP_STR, "server reference"},
	[0x1f] = {PROP_STR, "reason string"},
	[0x21] = {PROP_U16, "receive maximum"},
	[0x22] = {PROP_U16, "topic alias maximum"},
	[0x23] = {PROP_U16, "topic alias"},
	[0x24] = {PROP_BYTE, "maximum QoS"},
	[0x25] = {PROP_BYTE, "retain available"},
	[0x26] = {PROP_PAIR, "user property"},
	[0x27] = {PROP_U32, "maximum packet size"},
	[0x28] = {PROP_BYTE, "wildcard subscription available"},
	[0x29] = {PROP_BYTE, "subscription identifiers available"},
	[0x2a] = {PROP_BYTE, "shared subscription available"},
};

#define PBIT(id) ((uint64_t)1 << (id))

/* Which identifiers each block may carry (5.0 §3.1.2.11, §3.1.3.2,
 * §3.2.2.3); any other is a protocol error in that packet. */
static const uint64_t connect_props = PBIT(0x11) | PBIT(0x21) | PBIT(0x27) |
    PBIT(0x22) | PBIT(0x19) | PBIT(0x17) | PBIT(PROP_USER) | PBIT(0x15) |
    PBIT(0x16);
static const uint64_t will_props = PBIT(0x18) | PBIT(0x01) | PBIT(0x02) |
    PBIT(0x03) | PBIT(0x08) | PBIT(0x09) | PBIT(PROP_USER);
static const uint64_t connack_props = PBIT(0x11) | PBIT(0x21) | PBIT(0x24) |
    PBIT(0x25) | PBIT(0x27) | PBIT(0x12) | PBIT(0x22) | PBIT(0x1f) |
    PBIT(PROP_USER) | PBIT(0x28) | PBIT(0x29) | PBIT(0x2a) | PBIT(0x13) |
    PBIT(0x1a) | PBIT(0x1c) | PBIT(0x15) | PBIT(0x16);

struct props_walk {
	struct rd r;      /* bounded to the block */
	uint64_t allowed;
	uint64_t seen;
	const char *where; /* "properties" or "will properties" */
};

/* Reads a property length and sets w up to walk exactly that many bytes;
 * raw keeps the block for a byte-for-byte re-encode. */
static bool
props_open(struct rd *r, const char *where, uint64_t allowed,
    struct props_walk *w, struct mqtt_props *raw)
{
	char what[48];
	uint32_t n;

	(void)snprintf(what, sizeof(what), "%s length", where);
	if (!rd_vbi(r, what, &n)) {
		return false;
	}
	if (rd_left(r) < n) {
		mqtt_why(r->why, "%s: %s are %u bytes but only %zu remain",
		    r->pkt, where, (unsigned)n, rd_left(r));
		return false;
	}
	w->r = *r;
	w->r.len = r->off + n;
	w->allowed = allowed;
	w->seen = 0;
	w->where = where;
	if (raw != NULL) {
		raw->ptr = r->p + r->off;
		raw->len = n;
	}
	r->off += n;
	return true;
}

/* The next property: 1 with *id and *num (for integer kinds) set, 0 at the
 * end of the block, -1 when malformed. */
static int
props_next(struct props_walk *w, uint8_t *id, uint32_t *num)
{
	struct rd *r = &w->r;
	const struct prop_def *d;
	struct mqtt_bytes s;
	uint8_t b = 0;
	uint16_t h = 0;
	bool ok = false;

	if (rd_left(r) == 0) {
		return 0;
	}
	/* Identifiers are variable byte integers, but every one 5.0 defines
	 * fits in a single byte [MQTT-2.2.2]: a byte with the continuation
	 * bit can only start an unknown one. */
	*id = r->p[r->off++];
	d = *id <= PROP_MAX_ID ? &prop_defs[*id] : NULL;
	if (d == NULL || d->kind == PROP_NONE) {
		mqtt_why(r->why, "%s: unknown property 0x%02x in %s %s",
		    r->pkt, (unsigned)*id, r->pkt, w->where);
		return -1;
	}
	if ((w->allowed & PBIT(*id)) == 0) {
		mqtt_why(r->why, "%s: %s (0x%02x) is not allowed in %s %s",
		    r->pkt, d->name, (unsigned)*id, r->pkt, w->where);
		return -1;
	}
	/* Only the user property may repeat; every other property "more
	 * than once" is a protocol error (5.0 §3.1.2.11, §3.2.2.3). */
	if (*id != PROP_USER && (w->seen & PBIT(*id)) != 0) {
		mqtt_why(r->why, "%s: %s (0x%02x) appears twice in %s %s",
		    r->pkt, d->name, (unsigned)*id, r->pkt, w->where);
		return -1;
	}
	w->seen |= PBIT(*id);
	*num = 0;
	switch (d->kind) {
	case PROP_BYTE:
		ok = rd_u8(r, d->name, &b);
		*num = b;
		break;
	case PROP_U16:
		ok = rd_u16(r, d->name, &h);
		*num = h;
		break;
	case PROP_U32:
		ok = rd_u32(r, d->name, num);
		break;
	case PROP_VBI:
		ok = rd_vbi(r, d->name, num);
		break;
	case PROP_PAIR:
		/* Name then value [MQTT-1.5.7]. Their UTF-8, like every
		 * string certbridge does not use, is the broker's to judge
		 * (docs/architecture.md, "What certbridge leaves to the
		 * broker"). */
		ok = rd_field(r, "user property name", &s) &&
		    rd_field(r, "user property value", &s);
		break;
	default:
		ok = rd_field(r, d->name, &s);
		break;
	}
	return ok ? 1 : -1;
}

/* A printable copy of an untrusted name for a why text. */
static void
printable(const struct mqtt_bytes *b, char *dst, size_t cap)
{
	size_t i, n = b->len < cap - 1 ? b->len : cap - 1;

	for (i = 0; i < n; i++) {
		uint8_t c = b->ptr[i];

		dst[i] = c >= 0x20u && c < 0x7fu ? (char)c : '?';
	}
	dst[n] = '\0';
}

/*
 * Protocol name and level together choose the version: MQTT 3.1 calls
 * itself "MQIsdp" at level 3, 3.1.1 and 5.0 "MQTT" at 4 and 5
 * [MQTT-3.1.2-1] [MQTT-3.1.2-2]. A bridge sets 0x80 on 3 and 4 (mosquitto's
 * try_private), never on 5: mosquitto 2.0 closes on 0x85 and answers any
 * other level with CONNACK 0x01, so certbridge does the same
 * (docs/protocol.md). The name decides as much as the level: "MQIsdp" at
 * level 5 is no 5.0 CONNECT. Returns MQTT_OK with *version set,
 * MQTT_MALFORMED (0x85) or MQTT_UNSUPPORTED.
 */
static enum mqtt_rc
protocol_version(bool is_mqtt, uint8_t level, uint8_t *version)
{
	uint8_t base = (uint8_t)(level & 0x7fu);

	if ((!is_mqtt && base == MQTT_V31) || (is_mqtt && base == MQTT_V311)) {
		*version = base;
		return MQTT_OK;
	}
	if (is_mqtt && level == MQTT_V5) {
		*version = MQTT_V5;
		return MQTT_OK;
	}
	return is_mqtt && base == MQTT_V5 ? MQTT_MALFORMED : MQTT_UNSUPPORTED;
}

static enum mqtt_rc
connect_protocol(struct rd *r, struct mqtt_connect *out)
{
	struct mqtt_bytes name;
	char shown[20];
	uint8_t level;
	bool is_mqtt, is_isdp;
	enum mqtt_rc rc;

	if (!rd_field(r, "protocol name", &name)) {
		return MQTT_MALFORMED;
	}
	is_mqtt = name.len == 4 && memcmp(name.ptr, "MQTT", 4) == 0;
	is_isdp = name.len == 6 && memcmp(name.ptr, "MQIsdp", 6) == 0;
	printable(&name, shown, sizeof(shown));
	if (!is_mqtt && !is_isdp) {
		mqtt_why(r->why, "CONNECT: protocol name is \"%s\" (%u bytes), "
		    "not \"MQTT\" or \"MQIsdp\"", shown, (unsigned)name.len);
		return MQTT_MALFORMED;
	}
	if (!rd_u8(r, "protocol level", &level)) {
		return MQTT_MALFORMED;
	}
	out->level = level;
	rc = protocol_version(is_mqtt, level, &out->version);
	if (rc == MQTT_OK) {
		out->bridge = (level & 0x80u) != 0;
	} else if (rc == MQTT_MALFORMED) {
		mqtt_why(r->why, "CONNECT: protocol level 0x%02x: 5.0 has no "
		    "bridge level (a 5.0 bridge sends 5)", (unsigned)level);
	} else {
		mqtt_why(r->why, "CONNECT: protocol level %u with name \"%s\" "
		    "is not MQTT 3.1 (MQIsdp/3), 3.1.1 (MQTT/4) or 5.0 "
		    "(MQTT/5)", (unsigned)level, shown);
	}
	return rc;
}

/*
 * The flag rules that make a CONNECT self-consistent. 3.1.1 and 5.0 make
 * each one a protocol error. MQTT 3.1 predates them, and mosquitto 2.0
 * holds a 3.1 CONNECT only to two: no will QoS 3,
 * no password flag without the user name flag; a 3.1 device the broker
 * accepts is accepted here too (docs/protocol.md). Bits that mean nothing
 * are left out of the struct, so a re-encoded CONNECT does not carry them.
 */
static bool
connect_flags(struct rd *r, uint8_t fl, struct mqtt_connect *out)
{
	bool strict = out->version != MQTT_V31;

	out->connect_flags = fl;
	out->clean_start = (fl & 0x02u) != 0;
	out->will = (fl & 0x04u) != 0;
	out->will_qos = (uint8_t)((fl >> 3) & 0x3u);
	out->will_retain = (fl & 0x20u) != 0;
	out->has_password = (fl & 0x40u) != 0;
	out->has_username = (fl & 0x80u) != 0;
	if (strict && (fl & 0x01u) != 0) {
		mqtt_why(r->why, "CONNECT: reserved connect flag (bit 0) is "
		    "set [MQTT-3.1.2-3]");
		return false;
	}
	if (out->will_qos == 3) {
		mqtt_why(r->why, "CONNECT: will QoS is 3 [MQTT-3.1.2-12]");
		return false;
	}
	/* Will QoS and retain mean nothing without a will, so they must be
	 * 0 then [MQTT-3.1.2-11] [MQTT-3.1.2-13] (3.1.1: -13, -15). */
	if (strict && !out->will && out->will_qos != 0) {
		mqtt_why(r->why, "CONNECT: will QoS is %u but the will flag "
		    "is 0", (unsigned)out->will_qos);
		return false;
	}
	if (strict && !out->will && out->will_retain) {
		mqtt_why(r->why, "CONNECT: will retain is set but the will "
		    "flag is 0");
		return false;
	}
	if (!out->will) {
		out->will_qos = 0;
		out->will_retain = false;
	}
	/* 3.x allows a password only after a user name (3.1.1
	 * [MQTT-3.1.2-22], and mosquitto holds 3.1 to it too); 5.0 dropped
	 * the rule so a password can carry a token on its own. */
	if (out->version != MQTT_V5 && out->has_password &&
	    !out->has_username) {
		mqtt_why(r->why, "CONNECT: password flag is set without the "
		    "user name flag [MQTT-3.1.2-22]");
		return false;
	}
	return true;
}

/*
 * A 3.1 user name or password as mosquitto 2.0 reads one its flag
 * announces: missing, cut short or (a user name) not UTF-8, it is absent
 * and the CONNECT goes on (its "Username flag given, but no username.
 * Ignore."). Bytes are taken as mosquitto takes them, so the check for
 * bytes after the last field agrees: a length that claims more than is
 * left is consumed, a lone byte is not. Returns whether the field is there.
 */
static bool
rd_field_v31(struct rd *r, bool utf8, struct mqtt_bytes *out)
{
	size_t n;

	if (rd_left(r) < 2) {
		return false;
	}
	n = (size_t)r->p[r->off] << 8 | r->p[r->off + 1];
	r->off += 2;
	if (rd_left(r) < n) {
		return false;
	}
	out->ptr = r->p + r->off;
	out->len = (uint16_t)n;
	r->off += n;
	if (utf8 && !mqtt_utf8_valid(out->ptr, out->len)) {
		out->ptr = NULL;
		out->len = 0;
		return false;
	}
	return true;
}

static bool
connect_props_decode(struct rd *r, struct mqtt_connect *out)
{
	struct props_walk w;
	uint8_t id;
	uint32_t v;
	int more;

	if (!props_open(r, "properties", connect_props, &w,
	    &out->props)) {
		return false;
	}
	while ((more = props_next(&w, &id, &v)) > 0) {
		const char *bad = NULL;

		switch (id) {
		case PROP_SESSION_EXPIRY:
			out->session_expiry = v;
			break;
		case PROP_MAX_PACKET:
			out->max_packet_size = v;
			bad = v == 0 ? "0" : NULL;
			break;
		case PROP_RECEIVE_MAX:
			bad = v == 0 ? "0" : NULL;
			break;
		case PROP_REQUEST_PROBLEM:
		case PROP_REQUEST_RESPONSE:
			if (v > 1) {
				bad = "not 0 or 1";
			}
			break;
		default:
			break;
		}
		if (bad != NULL) {
			mqtt_why(r->why, "CONNECT: %s is %u, %s is a protocol "
			    "error", prop_defs[id].name, (unsigned)v, bad);
			return false;
		}
	}
	if (more < 0) {
		return false;
	}
	/* Authentication data belongs to a method (5.0 §3.1.2.11.10). */
	if ((w.seen & PBIT(PROP_AUTH_DATA)) != 0 &&
	    (w.seen & PBIT(PROP_AUTH_METHOD)) == 0) {
		mqtt_why(r->why, "CONNECT: authentication data without an "
		    "authentication method");
		return false;
	}
	return true;
}

static bool
will_props_decode(struct rd *r, struct mqtt_connect *out)
{
	struct props_walk w;
	uint8_t id;
	uint32_t v;
	int more;

	if (!props_open(r, "will properties", will_props, &w,
	    &out->will_props)) {
		return false;
	}
	while ((more = props_next(&w, &id, &v)) > 0) {
		if (id == PROP_PAYLOAD_FORMAT && v > 1) {
			mqtt_why(r->why, "CONNECT: will payload format "
			    "indicator is %u, not 0 or 1", (unsigned)v);
			return false;
		}
	}
	return more == 0;
}

enum mqtt_rc
mqtt_connect_level(const uint8_t *body, size_t len, uint8_t *level)
{
	size_t name_len;

	if (len < 2) {
		return MQTT_NEED_MORE;
	}
	name_len = (size_t)body[0] << 8 | body[1];
	if (name_len != 4 && name_len != 6) {
		return MQTT_MALFORMED;
	}
	if (len < 2 + name_len) {
		return MQTT_NEED_MORE;
	}
	if (!(name_len == 4 && memcmp(body + 2, "MQTT", 4) == 0)
	    && !(name_len == 6 && memcmp(body + 2, "MQIsdp", 6) == 0)) {
		return MQTT_MALFORMED;
	}
	if (len < 2 + name_len + 1) {
		return MQTT_NEED_MORE;
	}
	*level = body[2 + name_len];
	return MQTT_OK;
}

enum mqtt_rc
mqtt_connect_version(const uint8_t *body, size_t len, uint8_t *version)
{
	uint8_t level;
	enum mqtt_rc rc = mqtt_connect_level(body, len, &level);

	if (rc != MQTT_OK) {
		return rc;
	}
	/* mqtt_connect_level accepted the name, so its length tells which
	 * of the two it is. */
	return protocol_version(body[1] == 4, level, version);
}

bool
mqtt_connect_fixed_flags_ok(uint8_t version, uint8_t flags,
    char why[MQTT_WHY_LEN])
{
	/* 3.1.1 and 5.0 reserve the four bits as 0 [MQTT-2.2.2-2]; mosquitto
	 * 2.0 does not look at them in a 3.1 CONNECT, and closes on them only
	 * once the name and level are known, so an unknown level still gets
	 * its CONNACK 0x01 (docs/protocol.md). */
	if (version == MQTT_V31 || flags == 0) {
		return true;
	}
	mqtt_why(why, "CONNECT: fixed header flags are 0x%x, not 0 "
	    "[MQTT-2.2.2-2]", (unsigned)flags);
	return false;
}

enum mqtt_rc
mqtt_connect_decode(const uint8_t *body, size_t len,
    struct mqtt_connect *out, char why[MQTT_WHY_LEN])
{
	struct rd r = {body, len, 0, "CONNECT", why};
	enum mqtt_rc rc;
	uint8_t fl;

	memset(out, 0, sizeof(*out));
	mqtt_why(why, "%s", "");
	rc = connect_protocol(&r, out);
	if (rc != MQTT_OK) {
		return rc;
	}
	if (!rd_u8(&r, "connect flags", &fl) ||
	    !connect_flags(&r, fl, out) ||
	    !rd_u16(&r, "keep alive", &out->keepalive)) {
		return MQTT_MALFORMED;
	}
	if (out->version == MQTT_V5 && !connect_props_decode(&r, out)) {
		return MQTT_MALFORMED;
	}
	/* The payload's fields come in this order, each present exactly
	 * when its flag says [MQTT-3.1.3-1]; client id, will topic and user
	 * name are UTF-8 strings [MQTT-3.1.3-4] [MQTT-3.1.3-11]
	 * [MQTT-3.1.3-12] (3.1.1: -4, -10, -11). */
	if (!rd_utf8(&r, "client id", &out->client_id)) {
		return MQTT_MALFORMED;
	}
	if (out->will) {
		if (out->version == MQTT_V5 && !will_props_decode(&r, out)) {
			return MQTT_MALFORMED;
		}
		if (!rd_utf8(&r, "will topic", &out->will_topic) ||
		    !rd_field(&r, "will payload", &out->will_payload)) {
			return MQTT_MALFORMED;
		}
		/* A topic name is at least one character [MQTT-4.7.3-1]. */
		if (out->will_topic.len == 0) {
			mqtt_why(why, "CONNECT: the will flag is set but the will "
			    "topic is empty [MQTT-4.7.3-1]");
			return MQTT_MALFORMED;
		}
	}
	if (out->version == MQTT_V31) {
		if (out->has_username) {
			out->has_username = rd_field_v31(&r, true,
			    &out->username);
		}
		if (out->has_password) {
			out->has_password = rd_field_v31(&r, false,
			    &out->password);
		}
	} else if ((out->has_username &&
	    !rd_utf8(&r, "user name", &out->username)) ||
	    (out->has_password &&
	    !rd_field(&r, "password", &out->password))) {
		return MQTT_MALFORMED;
	}
	/* The remaining length must be exactly the fields: bytes after the
	 * last one would be forwarded to the broker unchecked. */
	if (rd_left(&r) != 0) {
		mqtt_why(why, "CONNECT: %zu byte%s after the last field",
		    rd_left(&r), rd_left(&r) == 1 ? "" : "s");
		return MQTT_MALFORMED;
	}
	return MQTT_OK;
}

enum mqtt_rc
mqtt_connack_decode(const uint8_t *body, size_t len, uint8_t version,
    struct mqtt_connack *out, char why[MQTT_WHY_LEN])
{
	struct rd r = {body, len, 0, "CONNACK", why};
	struct props_walk w;
	uint8_t flags, id;
	uint32_t v;
	int more;

	memset(out, 0, sizeof(*out));
	mqtt_why(why, "%s", "");
	if (version != MQTT_V31 && version != MQTT_V311 &&
	    version != MQTT_V5) {
		mqtt_why(why, "CONNACK: protocol level %u is unknown",
		    (unsigned)version);
		return MQTT_MALFORMED;
	}
	/* 3.x: exactly the acknowledge flags and the return code. */
	if (version != MQTT_V5 && len != 2) {
		mqtt_why(why, "CONNACK: remaining length is %zu, not 2", len);
		return MQTT_MALFORMED;
	}
	if (!rd_u8(&r, "acknowledge flags", &flags) ||
	    !rd_u8(&r, "reason code", &out->code)) {
		return MQTT_MALFORMED;
	}
	/* Bits 7-1 are reserved [MQTT-3.2.2-1] (3.1.1 §3.2.2.1). */
	if ((flags & 0xfeu) != 0) {
		mqtt_why(why, "CONNACK: reserved acknowledge flags are set "
		    "(0x%02x) [MQTT-3.2.2-1]", (unsigned)flags);
		return MQTT_MALFORMED;
	}
	out->session_present = (flags & 0x01u) != 0;
	if (version != MQTT_V5) {
		return MQTT_OK;
	}
	/* Only the server keep alive matters to certbridge (it replaces the
	 * device's keep alive for the idle timer [MQTT-3.1.2-21]); the other
	 * properties are walked so the block is known to be well framed,
	 * and their values are the device's to judge. */
	if (!props_open(&r, "properties", connack_props, &w, NULL)) {
		return MQTT_MALFORMED;
	}
	while ((more = props_next(&w, &id, &v)) > 0) {
		if (id == PROP_SERVER_KEEPALIVE) {
			out->has_server_keepalive = true;
			out->server_keepalive = (uint16_t)v;
		}
	}
	if (more < 0) {
		return MQTT_MALFORMED;
	}
	if (rd_left(&r) != 0) {
		mqtt_why(why, "CONNACK: %zu byte%s after the properties",
		    rd_left(&r), rd_left(&r) == 1 ? "" : "s");
		return MQTT_MALFORMED;
	}
	return MQTT_OK;
}
