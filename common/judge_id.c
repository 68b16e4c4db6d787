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
 * running out of room (the caller reports "too long"). On failure,
 * *out_len is what was converted before it, a name to show. */
static bool
judge_wide_to_utf8(const uint8_t *in, size_t len, size_t unit, uint8_t *out,
    size_t cap, size_t *out_len, bool *too_long)
{
	size_t o = 0;

	*too_long = false;
	*out_len = 0;
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
			*out_len = o;
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
			*out_len = o;
			return false;
		}
		memcpy(out + o, buf, n);
		o += n;
	}
	*out_len = o;
	return true;
}

/* The length of the UTF-8 sequence a lead byte starts, 0 for a byte that
 * cannot start one (a continuation, 0xc0, 0xc1, 0xf5 and up). */
static size_t
judge_utf8_lead_len(uint8_t c)
{
	if (c >= 0xc2 && c <= 0xdf) {
		return 2;
	}
	if (c >= 0xe0 && c <= 0xef) {
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		return 4;
	}
	return 0;
}

/* The length of the well-formed multi-byte UTF-8 sequence at s (at most
 * left bytes read) and its code point, or 0: overlong forms, surrogates and
 * code points past U+10FFFF are not UTF-8. */
static size_t
judge_utf8_seq(const uint8_t *s, size_t left, uint32_t *cp)
{
	size_t n = judge_utf8_lead_len(s[0]);

	if (n == 0 || n > left) {
		return 0;
	}
	*cp = s[0] & (n == 2 ? 0x1fu : n == 3 ? 0x0fu : 0x07u);
	for (size_t k = 1; k < n; k++) {
		if ((s[k] & 0xc0) != 0x80) {
			return 0;
		}
		*cp = (*cp << 6) | (s[k] & 0x3fu);
	}
	if ((n == 3 && *cp < 0x800) || (n == 4 && *cp < 0x10000)
	    || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff)) {
		return 0;
	}
	return n;
}

static bool
judge_is_c1(uint32_t cp)
{
	return cp >= 0x80 && cp <= 0x9f;
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
		uint32_t cp = 0;
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
		n = judge_utf8_lead_len(c);
		if (n == 0) {
			return "a byte that is not UTF-8";
		}
		if (i + n > len) {
			return "a cut UTF-8 sequence";
		}
		if (judge_utf8_seq(s + i, len - i, &cp) == 0) {
			return "a byte that is not UTF-8";
		}
		if (judge_is_c1(cp)) {
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

/* A name to show in logs and sightings (escaped there) for a device
 * without an identity: the first CN, as UTF-8 where it is a wide string,
 * as far as it converts. */
static void
judge_id_show_cn(struct judge_identity *id, const struct certfacts_string *cn)
{
	uint8_t wide[JUDGE_IDENTITY_MAX + 4];
	size_t n = 0;
	bool too_long;

	if (cn->tag != DER_BMP_STRING && cn->tag != DER_UNIVERSAL_STRING) {
		judge_id_set_shown(id, cn->bytes.ptr, cn->bytes.len);
		return;
	}
	(void)judge_wide_to_utf8(cn->bytes.ptr, cn->bytes.len,
	    cn->tag == DER_BMP_STRING ? 2 : 4, wide, JUDGE_IDENTITY_MAX, &n,
	    &too_long);
	judge_id_set_shown(id, wide, n);
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
		judge_id_show_cn(id, &f->cn[0]);
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
	const uint8_t *b = (const uint8_t *)id->bytes;
	size_t o = 0;

	if (cap == 0) {
		return;
	}
	for (size_t i = 0; i < id->len; i++) {
		uint32_t cp = 0;
		size_t n = b[i] >= 0x80 ? judge_utf8_seq(b + i, id->len - i, &cp)
		    : 1;

		if (n == 0 || judge_is_c1(cp) || b[i] < 0x20 || b[i] == 0x7f
		    || b[i] == '\\') {
			/* One byte escaped: a C1 control's two bytes are
			 * each written, as the logs write them. */
			if (o + 4 >= cap) {
				break;
			}
			snprintf(out + o, cap - o, "\\x%02x", b[i]);
			o += 4;
			continue;
		}
		if (o + n >= cap) {
			break;
		}
		memcpy(out + o, b + i, n);
		o += n;
		i += n - 1;
	}
	out[o] = '\0';
}
