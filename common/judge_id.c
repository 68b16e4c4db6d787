/*
 * judge_id.c - who a device is: the identity [mqtt] identity reads from
 * its certificate, exactly or not at all (docs/configuration.md, "Identities are exact").
 *
 * An identity selects the upstream certificate of device_certs, must equal
 * the client id under clientid = check, and becomes the client id or the
 * username sent to the broker. Cutting it at a NUL ("dev-old-1\0.evil"),
 * at 255 bytes, or picking the first of two CNs would let one certificate
 * pass for another device, so each of those is refused instead, with a
 * sentence naming the field and the byte. The bytes also end up in MQTT
 * UTF-8 strings [MQTT-1.5.4], which exclude U+0000 and where control
 * characters SHOULD NOT appear: an identity is valid UTF-8 without C0 or
 * C1 controls.
 */
#include <stdio.h>
#include <string.h>

#include "judge.h"

/* Converts a BMPString (UCS-2) or UniversalString (UCS-4), big-endian,
 * to UTF-8. Surrogates and code points above U+10FFFF fail; so does
 * running out of room (the caller reports "too long"). */
static bool
judge_wide_to_utf8(const uint8_t *in, size_t len, size_t unit, uint8_t *out,
    size_t cap, size_t *out_len, bool *too_long)
{
	size_t o = 0;

	*too_long = false;
	if (len % unit != 0) {
		return false;
	}
	for (size_t i = 0; i < len; i += unit) {
		uint32_t cp = 0;
		uint8_t buf[4];
		size_t n;

		for (size_t k = 0; k < unit; k++) {
			cp = (cp << 8) | in[i + k];
		}
		if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
			return false;
		}
		if (cp < 0x80) {
			buf[0] = (uint8_t)cp;
			n = 1;
		} else if (cp < 0x800) {
			buf[0] = (uint8_t)(0xc0 | (cp >> 6));
			buf[1] = (uint8_t)(0x80 | (cp & 0x3f));
			n = 2;
		} else if (cp < 0x10000) {
			buf[0] = (uint8_t)(0xe0 | (cp >> 12));
			buf[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
			buf[2] = (uint8_t)(0x80 | (cp & 0x3f));
			n = 3;
		} else {
			buf[0] = (uint8_t)(0xf0 | (cp >> 18));
			buf[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
			buf[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
			buf[3] = (uint8_t)(0x80 | (cp & 0x3f));
			n = 4;
		}
		if (o + n > cap) {
			*too_long = true;
			return false;
		}
		memcpy(out + o, buf, n);
		o += n;
	}
	*out_len = o;
	return true;
}

/*
 * The first problem of s as an identity, or NULL: a NUL, a C0 or C1
 * control, DEL, or bytes that are not UTF-8 (overlong forms, surrogates
 * and code points past U+10FFFF included). *at is the byte offset.
 */
static const char *
judge_text_problem(const uint8_t *s, size_t len, size_t *at, unsigned *byte)
{
	for (size_t i = 0; i < len;) {
		uint8_t c = s[i];
		uint32_t cp;
		size_t n;

		*at = i;
		*byte = c;
		if (c == 0) {
			return "a NUL byte";
		}
		if (c < 0x20 || c == 0x7f) {
			return "a control byte";
		}
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 2;
			cp = c & 0x1fu;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 3;
			cp = c & 0x0fu;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 4;
			cp = c & 0x07u;
		} else {
			return "a byte that is not UTF-8";
		}
		if (i + n > len) {
			return "a cut UTF-8 sequence";
		}
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80) {
				return "a byte that is not UTF-8";
			}
			cp = (cp << 6) | (s[i + k] & 0x3fu);
		}
		if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)
		    || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
			return "a byte that is not UTF-8";
		}
		if (cp >= 0x80 && cp <= 0x9f) {
			return "a control character";
		}
		i += n;
	}
	return NULL;
}

static void
judge_id_set_shown(struct judge_identity *id, const uint8_t *p, size_t len)
{
	if (len > JUDGE_IDENTITY_MAX) {
		len = JUDGE_IDENTITY_MAX;
	}
	if (len > 0) {
		memcpy(id->bytes, p, len);
	}
	id->bytes[len] = '\0';
	id->len = len;
}

/* Takes one field as the identity, or says why it cannot be one. */
static void
judge_id_take(struct judge_identity *id, const char *field,
    const uint8_t *p, size_t len, uint8_t tag)
{
	uint8_t wide[JUDGE_IDENTITY_MAX + 4];
	size_t n = len, at = 0;
	unsigned byte = 0;
	bool too_long = false;
	const char *problem;

	if (tag == DER_BMP_STRING || tag == DER_UNIVERSAL_STRING) {
		if (!judge_wide_to_utf8(p, len, tag == DER_BMP_STRING ? 2 : 4,
		    wide, JUDGE_IDENTITY_MAX + 1, &n, &too_long)) {
			id->state = JUDGE_ID_INVALID;
			if (too_long) {
				snprintf(id->why, sizeof(id->why), "the "
				    "device certificate's %s is longer than %d "
				    "bytes as UTF-8; an identity is never cut: "
				    "issue a shorter one", field,
				    JUDGE_IDENTITY_MAX);
			} else {
				snprintf(id->why, sizeof(id->why), "the "
				    "device certificate's %s is a %s that does "
				    "not convert to UTF-8", field, tag
				    == DER_BMP_STRING ? "BMPString"
				    : "UniversalString");
			}
			return;
		}
		p = wide;
	}
	if (n == 0) {
		id->state = JUDGE_ID_MISSING;
		snprintf(id->why, sizeof(id->why), "the device certificate's "
		    "%s is empty", field);
		return;
	}
	if (n > JUDGE_IDENTITY_MAX) {
		id->state = JUDGE_ID_INVALID;
		snprintf(id->why, sizeof(id->why), "the device certificate's "
		    "%s is %zu bytes long (at most %d); an identity is never "
		    "cut: issue a shorter one", field, n, JUDGE_IDENTITY_MAX);
		return;
	}
	problem = judge_text_problem(p, n, &at, &byte);
	if (problem != NULL) {
		id->state = JUDGE_ID_INVALID;
		snprintf(id->why, sizeof(id->why), "the device certificate's "
		    "%s holds %s (0x%02x at byte %zu); an identity must be "
		    "printable UTF-8 text: reissue the certificate", field,
		    problem, byte, at);
		return;
	}
	judge_id_set_shown(id, p, n);
	id->state = JUDGE_ID_OK;
}

static void
judge_id_san(const struct certfacts *f, bool dns, struct judge_identity *id)
{
	const char *kind = dns ? "DNS" : "URI";
	size_t count = dns ? f->dns_count : f->uri_count;
	const struct der_span *vals = dns ? f->dns : f->uri;
	char field[32];

	if (count == 0) {
		id->state = JUDGE_ID_MISSING;
		snprintf(id->why, sizeof(id->why), "the device certificate has "
		    "no SAN of that type (%s), which [mqtt] identity = san-%s "
		    "reads; fix [mqtt] identity or the certificate", kind,
		    dns ? "dns" : "uri");
		return;
	}
	if (count > 1) {
		id->state = JUDGE_ID_AMBIGUOUS;
		snprintf(id->why, sizeof(id->why), "the device certificate "
		    "carries more than one SAN of the type [mqtt] identity "
		    "names (%zu %s SANs); issue it with exactly one", count,
		    kind);
		return;
	}
	snprintf(field, sizeof(field), "%s SAN", kind);
	judge_id_take(id, field, vals[0].ptr, vals[0].len, DER_IA5_STRING);
}

void
judge_identity(const struct certfacts *f, enum cfg_identity rule,
    struct judge_identity *id)
{
	memset(id, 0, sizeof(*id));
	switch (rule) {
	case CFG_IDENTITY_CN:
		if (f->cn_count == 0) {
			id->state = JUDGE_ID_MISSING;
			snprintf(id->why, sizeof(id->why), "the device "
			    "certificate has no CN to take the identity from; "
			    "fix [mqtt] identity or the certificate");
		} else if (f->cn_count > 1) {
			id->state = JUDGE_ID_AMBIGUOUS;
			snprintf(id->why, sizeof(id->why), "the device "
			    "certificate's subject has %zu CNs; which one is "
			    "the device is ambiguous: issue it with exactly "
			    "one", f->cn_count);
		} else {
			judge_id_take(id, "CN", f->cn[0].bytes.ptr,
			    f->cn[0].bytes.len, f->cn[0].tag);
		}
		break;
	case CFG_IDENTITY_SAN_DNS:
		judge_id_san(f, true, id);
		break;
	case CFG_IDENTITY_SAN_URI:
		judge_id_san(f, false, id);
		break;
	case CFG_IDENTITY_NONE:
		id->state = JUDGE_ID_NONE;
		break;
	}
	if (id->state != JUDGE_ID_OK && f->cn_count > 0) {
		/* A name to show in logs and sightings, escaped there. */
		judge_id_set_shown(id, f->cn[0].bytes.ptr, f->cn[0].bytes.len);
	}
}

bool
judge_identity_equals(const struct judge_identity *id, const uint8_t *ptr,
    size_t len)
{
	return id->state == JUDGE_ID_OK && id->len == len
	    && (len == 0 || memcmp(id->bytes, ptr, len) == 0);
}

void
judge_identity_display(const struct judge_identity *id, char *out,
    size_t cap)
{
	size_t o = 0;

	if (cap == 0) {
		return;
	}
	for (size_t i = 0; i < id->len; i++) {
		uint8_t c = (uint8_t)id->bytes[i];

		if (c < 0x20 || c == 0x7f || c == '\\') {
			if (o + 4 >= cap) {
				break;
			}
			snprintf(out + o, cap - o, "\\x%02x", c);
			o += 4;
		} else {
			if (o + 1 >= cap) {
				break;
			}
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
}
