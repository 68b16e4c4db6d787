/*
 * mqtt.h - a pure MQTT codec: bytes in, structs out, and back.
 *
 * No I/O, no logging, no allocation: decoded strings point into the caller's
 * buffer. It frames MQTT 3.1 (protocol level 3), 3.1.1 (4) and 5.0 (5)
 * packets and fully decodes the packets certbridge must understand (CONNECT,
 * CONNACK); every other packet is framed and named, and its contents are the
 * broker's to judge.
 *
 * Results are distinct on purpose: NEED_MORE means "wait for bytes",
 * MALFORMED means "close the connection", TOO_BIG means "above the
 * configured limit" (v5 answers it with DISCONNECT 0x95).
 */
#ifndef CB_MQTT_H
#define CB_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mqtt_rc {
	MQTT_OK = 0,
	MQTT_NEED_MORE,
	MQTT_MALFORMED,
	MQTT_TOO_BIG,
	/* A CONNECT of a protocol level the broker refuses with CONNACK
	 * 0x01 (docs/protocol.md). */
	MQTT_UNSUPPORTED,
};

enum mqtt_type {
	MQTT_RESERVED = 0,
	MQTT_CONNECT = 1,
	MQTT_CONNACK = 2,
	MQTT_PUBLISH = 3,
	MQTT_PUBACK = 4,
	MQTT_PUBREC = 5,
	MQTT_PUBREL = 6,
	MQTT_PUBCOMP = 7,
	MQTT_SUBSCRIBE = 8,
	MQTT_SUBACK = 9,
	MQTT_UNSUBSCRIBE = 10,
	MQTT_UNSUBACK = 11,
	MQTT_PINGREQ = 12,
	MQTT_PINGRESP = 13,
	MQTT_DISCONNECT = 14,
	MQTT_AUTH = 15,
};

/* Protocol levels as carried in CONNECT. */
enum mqtt_version {
	MQTT_V31 = 3,
	MQTT_V311 = 4,
	MQTT_V5 = 5,
};

/* The largest remaining length a variable byte integer can carry [MQTT-1.5.5]. */
#define MQTT_MAX_REMAINING 268435455u
/* Fixed header: one type/flags byte plus at most four length bytes. */
#define MQTT_MAX_FIXED_HEADER 5

/* Room for a short, precise reason; callers log it as detail="...". */
#define MQTT_WHY_LEN 128

struct mqtt_fixed {
	uint8_t type;        /* enum mqtt_type */
	uint8_t flags;       /* low nibble of the first byte */
	uint8_t header_len;  /* 2..5 */
	uint32_t remaining;  /* bytes after the fixed header */
};

/*
 * Decodes the fixed header at buf. NEED_MORE while the length bytes are
 * incomplete; MALFORMED for a length that uses more than four bytes or is
 * encoded in more bytes than needed [MQTT-1.5.5-1]; TOO_BIG when the whole
 * packet (header + remaining) would exceed max_packet (0 = no limit), decided
 * from the header alone so nothing is buffered first; out is filled on OK
 * and on TOO_BIG (so the refusal can name the type). OK needs only the
 * header: the caller waits until header_len + remaining bytes are there.
 * Flags are not judged here: see mqtt_flags_valid().
 */
enum mqtt_rc mqtt_fixed_decode(const uint8_t *buf, size_t len,
    uint32_t max_packet, struct mqtt_fixed *out, char why[MQTT_WHY_LEN]);

/* Decodes the variable byte integer at p, reading at most len bytes: on OK
 * *value and *used (1..4) are set; NEED_MORE when the bytes end inside it;
 * MALFORMED past four bytes or for a non-minimal encoding [MQTT-1.5.5-1].
 * Used for the remaining length and for v5 property lengths. */
enum mqtt_rc mqtt_vbi_decode(const uint8_t *p, size_t len, uint32_t *value,
    size_t *used, char why[MQTT_WHY_LEN]);

/*
 * Like mqtt_fixed_decode, for framing packets certbridge only relays: a
 * remaining length written in more bytes than needed is accepted (MQTT
 * 3.1.1 brokers accept it, and judging it is the broker's business:
 * docs/architecture.md, "What certbridge leaves to the broker"); more than
 * four bytes is still MALFORMED.
 */
enum mqtt_rc mqtt_fixed_frame(const uint8_t *buf, size_t len,
    uint32_t max_packet, struct mqtt_fixed *out, char why[MQTT_WHY_LEN]);

/* Writes the variable byte integer for value (<= MQTT_MAX_REMAINING) and
 * returns the number of bytes written (1..4), or 0 if value is too large. */
size_t mqtt_vbi_encode(uint32_t value, uint8_t out[4]);

/* Whether the fixed-header flags are the ones the spec fixes for this type
 * and protocol level (PUBLISH: QoS 3 is invalid; PUBREL, SUBSCRIBE,
 * UNSUBSCRIBE: 0x2, and in 3.1 also 0xA, since 3.1 sets DUP on their
 * retransmission; others 0; type 0 never; AUTH exists only in 5.0). */
bool mqtt_flags_valid(uint8_t type, uint8_t flags, uint8_t version);

/* "CONNECT", "PUBLISH", ...; "RESERVED" for 0, "UNKNOWN" above 15.
 * Never NULL. */
const char *mqtt_type_name(uint8_t type);

/* A length-prefixed string or binary field, pointing into the decoded buffer. */
struct mqtt_bytes {
	const uint8_t *ptr;
	uint16_t len;
};

/* A v5 property block, kept raw so a re-encoded CONNECT carries it
 * byte for byte. */
struct mqtt_props {
	const uint8_t *ptr;
	uint32_t len;
};

struct mqtt_connect {
	uint8_t version;        /* enum mqtt_version */
	/* The protocol level byte as sent: the version, plus 0x80 from a
	 * bridge (mosquitto's try_private), kept when re-encoded. */
	uint8_t level;
	bool bridge;
	uint8_t connect_flags;  /* the raw byte */
	bool clean_start;
	bool will;
	uint8_t will_qos;
	bool will_retain;
	bool has_username;
	bool has_password;
	uint16_t keepalive;     /* seconds, 0 = none */
	struct mqtt_props props;       /* v5 only */
	struct mqtt_bytes client_id;
	struct mqtt_props will_props;  /* v5 only, when will */
	struct mqtt_bytes will_topic;
	struct mqtt_bytes will_payload;
	struct mqtt_bytes username;
	struct mqtt_bytes password;
	/* v5 properties certbridge reads; 0 when absent. */
	uint32_t session_expiry;
	uint32_t max_packet_size;
};

/*
 * Decodes a whole CONNECT from its variable header on (body points just
 * after the fixed header, len is the remaining length). Checks the protocol
 * name and level, reserved flag and will/user/password flag rules,
 * every length against len, v5 properties (known identifiers allowed in
 * CONNECT, no duplicates of single-use ones, value ranges) and UTF-8 of
 * the client id, will topic and username, and that a will topic is not
 * empty. Any trailing byte is MALFORMED. A body cut short is MALFORMED
 * too: len is the whole remaining length. The fixed header's flags are
 * judged apart, by mqtt_connect_fixed_flags_ok.
 *
 * MQTT 3.1 is read as mosquitto 2.0 reads it: the reserved flag, and will
 * QoS or retain without a will, are ignored (and cleared in out); a user
 * name or password its flag announces but that is missing, cut short or
 * (user name) not UTF-8 is absent, has_username / has_password false.
 *
 * The protocol level is judged as mosquitto 2.0 does (docs/protocol.md):
 * "MQIsdp" with level 3 is 3.1 and "MQTT" with 4 is 3.1.1, either also
 * with the bridge bit 0x80 (out->bridge); "MQTT" with 5 is 5.0; "MQTT"
 * with 0x85 and any other protocol name are MALFORMED; every other level
 * is UNSUPPORTED, whatever follows it (the caller answers CONNACK 0x01,
 * 20 02 00 01, and closes), with out->level set.
 */
enum mqtt_rc mqtt_connect_decode(const uint8_t *body, size_t len,
    struct mqtt_connect *out, char why[MQTT_WHY_LEN]);

/*
 * The protocol level of a CONNECT from the first bytes of its body (len
 * may be less than the whole body): NEED_MORE until the level byte is
 * there, MALFORMED when the protocol name is not "MQTT" or "MQIsdp", else
 * OK with *level as sent. The name is checked but not reported: for the
 * version, see mqtt_connect_version.
 */
enum mqtt_rc mqtt_connect_level(const uint8_t *body, size_t len,
    uint8_t *level);

/*
 * The version a CONNECT's first body bytes choose, as mqtt_connect_decode
 * judges name and level: NEED_MORE until the level byte is there; OK with
 * *version 3, 4 or 5 (the bridge bit dropped); UNSUPPORTED for a level the
 * broker answers with CONNACK 0x01 ("MQIsdp" with 5 among them: only
 * "MQTT" with 5 is 5.0); MALFORMED for another name or "MQTT" 0x85.
 */
enum mqtt_rc mqtt_connect_version(const uint8_t *body, size_t len,
    uint8_t *version);

/*
 * Whether a CONNECT of this version (as decoded) may carry these
 * fixed-header flags: 0 in 3.1.1 and 5.0 [MQTT-2.2.2-2]; anything in 3.1,
 * which mosquitto 2.0 accepts. why says what is wrong when false.
 */
bool mqtt_connect_fixed_flags_ok(uint8_t version, uint8_t flags,
    char why[MQTT_WHY_LEN]);

/*
 * Encodes c as a complete CONNECT packet (fixed header included) into out.
 * The connect flags are recomputed from clean_start, will, will_qos,
 * will_retain, has_username and has_password (connect_flags is ignored);
 * fields whose flag is off are not written; in 5.0 props and, with a will,
 * will_props are copied raw after their lengths. Returns the packet's size;
 * if that is larger than cap, nothing is written (out may be NULL with
 * cap 0 to ask for the size) and the caller retries with a buffer of the
 * returned size. Returns 0 when the packet would exceed MQTT_MAX_REMAINING,
 * or when c is not a CONNECT its version allows: unknown version, will
 * QoS 3, a NULL pointer with a non-zero length, or (3.x) a password
 * without a user name [MQTT-3.1.2-22] - so a caller that drops the user
 * name of a 3.x client must drop the password too.
 */
size_t mqtt_connect_encode(const struct mqtt_connect *c, uint8_t *out,
    size_t cap);

struct mqtt_connack {
	bool session_present;
	uint8_t code;               /* 3.x return code or 5.0 reason code */
	bool has_server_keepalive;  /* v5 property 0x13 */
	uint16_t server_keepalive;
};

/* Decodes a CONNACK body for the given protocol level. */
enum mqtt_rc mqtt_connack_decode(const uint8_t *body, size_t len,
    uint8_t version, struct mqtt_connack *out, char why[MQTT_WHY_LEN]);

/* Encodes a refusal CONNACK (session present 0, no properties) for the
 * level; returns the packet's size (4 for 3.x, 5 for 5.0). */
size_t mqtt_connack_encode(uint8_t version, uint8_t code, uint8_t out[5]);

/* Encodes a v5 DISCONNECT with a reason code and no properties (4 bytes). */
size_t mqtt_disconnect_encode_v5(uint8_t reason, uint8_t out[4]);

/* Whether [p, p+len) is well-formed UTF-8 as MQTT requires: no surrogates,
 * no overlong forms, no U+0000 [MQTT-1.5.4]. */
bool mqtt_utf8_valid(const uint8_t *p, size_t len);

/* CONNACK codes certbridge itself sends. */
#define MQTT_CONNACK_V3_PROTOCOL_VERSION 0x01
#define MQTT_CONNACK_V3_IDENTIFIER_REJECTED 0x02
#define MQTT_CONNACK_V3_SERVER_UNAVAILABLE 0x03
#define MQTT_CONNACK_V3_NOT_AUTHORIZED 0x05
#define MQTT_RC_V5_CLIENT_ID_INVALID 0x85
#define MQTT_RC_V5_NOT_AUTHORIZED 0x87
#define MQTT_RC_V5_SERVER_UNAVAILABLE 0x88
#define MQTT_RC_V5_SERVER_BUSY 0x89
#define MQTT_RC_V5_PACKET_TOO_LARGE 0x95

#endif
