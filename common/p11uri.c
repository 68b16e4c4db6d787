/*
 * p11uri.c - PKCS#11 URIs for private keys (see p11uri.h).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "p11uri.h"
#include "parse.h"

#define P11URI_SCHEME "pkcs11:"

bool
p11uri_is(const char *s)
{
	return s != NULL && strncasecmp(s, P11URI_SCHEME,
	    sizeof(P11URI_SCHEME) - 1) == 0;
}

/* Decodes the n bytes at v (%XX escapes) into out (cap bytes); the length,
 * or -1 with why set. Text fields (binary false) may not hold a NUL: a
 * label cut at it would name another object. */
static long
p11uri_decode(const char *name, const char *v, size_t n, uint8_t *out,
    size_t cap, bool binary, char why[P11URI_WHY_LEN])
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		int hi, lo;

		if (c == '%') {
			if (i + 2 >= n) {
				hi = lo = -1;
			} else {
				hi = parse_hex_digit(v[i + 1]);
				lo = parse_hex_digit(v[i + 2]);
			}
			if (hi < 0 || lo < 0) {
				snprintf(why, P11URI_WHY_LEN, "%s: \"%%\" must "
				    "start an escape of two hex digits (write "
				    "a %% itself as %%25)", name);
				return -1;
			}
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
			if (c == 0 && !binary) {
				snprintf(why, P11URI_WHY_LEN, "%s: a NUL byte "
				    "(%%00) cannot be part of a name", name);
				return -1;
			}
		} else if (c <= 0x20 || c == 0x7f) {
			snprintf(why, P11URI_WHY_LEN, "%s: a space or control "
			    "byte must be written as a %%-escape (a space is "
			    "%%20)", name);
			return -1;
		}
		if (len == cap) {
			snprintf(why, P11URI_WHY_LEN, "%s: longer than %zu "
			    "bytes, the most a token holds for it", name, cap);
			return -1;
		}
		out[len++] = c;
	}
	return (long)len;
}

/* A text attribute into its NUL-terminated field of cap - 1 bytes. */
static bool
p11uri_text(const char *name, const char *v, size_t n, char *field,
    size_t cap, char why[P11URI_WHY_LEN])
{
	long len = p11uri_decode(name, v, n, (uint8_t *)field, cap - 1, false,
	    why);

	if (len < 0) {
		return false;
	}
	if (len == 0) {
		snprintf(why, P11URI_WHY_LEN, "%s: empty; give a value or "
		    "leave the attribute out", name);
		return false;
	}
	field[len] = '\0';
	return true;
}

static bool
p11uri_slot(const char *v, size_t n, unsigned long *out,
    char why[P11URI_WHY_LEN])
{
	unsigned long x = 0;

	if (n == 0) {
		snprintf(why, P11URI_WHY_LEN, "slot-id: empty; give the slot's "
		    "number or leave it out");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9' || x > (ULONG_MAX - 9) / 10) {
			snprintf(why, P11URI_WHY_LEN, "slot-id: \"%.*s\" is not "
			    "a slot number (decimal digits)", (int)(n < 40 ? n
			    : 40), v);
			return false;
		}
		x = x * 10 + (unsigned long)(v[i] - '0');
	}
	*out = x;
	return true;
}

/* One path attribute "name=value" (n bytes at a). */
static bool
p11uri_attr(struct p11uri *u, const char *a, size_t n,
    char why[P11URI_WHY_LEN])
{
	const char *eq = memchr(a, '=', n);
	size_t nlen = eq != NULL ? (size_t)(eq - a) : n;
	const char *v = eq != NULL ? eq + 1 : a + n;
	size_t vlen = eq != NULL ? n - nlen - 1 : 0;
	char name[24];
	bool *seen;

	if (eq == NULL || nlen == 0 || nlen >= sizeof(name)) {
		snprintf(why, P11URI_WHY_LEN, "\"%.*s\" is not an attribute "
		    "(expected name=value, such as token=NAME)",
		    (int)(n < 60 ? n : 60), a);
		return false;
	}
	memcpy(name, a, nlen);
	name[nlen] = '\0';
	if (strcmp(name, "token") == 0) {
		seen = &u->has_token;
	} else if (strcmp(name, "manufacturer") == 0) {
		seen = &u->has_manufacturer;
	} else if (strcmp(name, "model") == 0) {
		seen = &u->has_model;
	} else if (strcmp(name, "serial") == 0) {
		seen = &u->has_serial;
	} else if (strcmp(name, "slot-id") == 0) {
		seen = &u->has_slot_id;
	} else if (strcmp(name, "object") == 0) {
		seen = &u->has_object;
	} else if (strcmp(name, "id") == 0) {
		seen = &u->has_id;
	} else if (strcmp(name, "type") == 0) {
		if (vlen == 7 && memcmp(v, "private", 7) == 0) {
			return true;
		}
		snprintf(why, P11URI_WHY_LEN, "type=%.*s: certbridge needs the "
		    "private key (type=private, or no type); the certificate "
		    "stays in the cert file", (int)(vlen < 40 ? vlen : 40), v);
		return false;
	} else if (strncmp(name, "library-", 8) == 0
	    || strncmp(name, "slot-", 5) == 0) {
		/* Descriptions of the module and slot: the module is
		 * [gateway] pkcs11_module, and a slot is found by its token. */
		return true;
	} else {
		snprintf(why, P11URI_WHY_LEN, "unknown attribute \"%s\"; a key "
		    "is named by token, manufacturer, model, serial or slot-id "
		    "(its token) and object or id (the key)", name);
		return false;
	}
	if (*seen) {
		snprintf(why, P11URI_WHY_LEN, "%s is given twice", name);
		return false;
	}
	*seen = true;
	if (seen == &u->has_token) {
		return p11uri_text(name, v, vlen, u->token, sizeof(u->token),
		    why);
	}
	if (seen == &u->has_manufacturer) {
		return p11uri_text(name, v, vlen, u->manufacturer,
		    sizeof(u->manufacturer), why);
	}
	if (seen == &u->has_model) {
		return p11uri_text(name, v, vlen, u->model, sizeof(u->model),
		    why);
	}
	if (seen == &u->has_serial) {
		return p11uri_text(name, v, vlen, u->serial,
		    sizeof(u->serial), why);
	}
	if (seen == &u->has_object) {
		return p11uri_text(name, v, vlen, u->object,
		    sizeof(u->object), why);
	}
	if (seen == &u->has_slot_id) {
		return p11uri_slot(v, vlen, &u->slot_id, why);
	}
	{
		long len = p11uri_decode(name, v, vlen, u->id, sizeof(u->id),
		    true, why);

		if (len == 0) {
			snprintf(why, P11URI_WHY_LEN, "id: empty; give the "
			    "key's CKA_ID (%%-escaped bytes, such as "
			    "id=%%01) or leave it out");
		}
		u->id_len = len > 0 ? (size_t)len : 0;
		return len > 0;
	}
}

/* The query part: nothing certbridge takes from it. */
static bool
p11uri_query(const char *q, char why[P11URI_WHY_LEN])
{
	size_t n = strcspn(q, "&=");

	if (*q == '\0') {
		return true;
	}
	if ((n == 9 && strncmp(q, "pin-value", n) == 0)
	    || (n == 10 && strncmp(q, "pin-source", n) == 0)) {
		snprintf(why, P11URI_WHY_LEN, "%.*s: the PIN does not go in "
		    "the INI; write it in a file of its own (mode 0600) and "
		    "name that file in [gateway] pkcs11_pin_file", (int)n, q);
		return false;
	}
	if ((n == 11 && strncmp(q, "module-name", n) == 0)
	    || (n == 11 && strncmp(q, "module-path", n) == 0)) {
		snprintf(why, P11URI_WHY_LEN, "%.*s: the module is named once, "
		    "in [gateway] pkcs11_module", (int)n, q);
		return false;
	}
	snprintf(why, P11URI_WHY_LEN, "unknown query attribute \"%.*s\"; "
	    "certbridge takes nothing after \"?\"", (int)(n < 40 ? n : 40), q);
	return false;
}

bool
p11uri_parse(const char *s, struct p11uri *out, char why[P11URI_WHY_LEN])
{
	const char *p, *q;

	memset(out, 0, sizeof(*out));
	if (!p11uri_is(s)) {
		snprintf(why, P11URI_WHY_LEN, "not a PKCS#11 URI (they start "
		    "with \"pkcs11:\")");
		return false;
	}
	p = s + sizeof(P11URI_SCHEME) - 1;
	q = strchr(p, '?');
	while (*p != '\0' && p != q) {
		size_t n = strcspn(p, ";?");

		/* An empty attribute (a doubled or trailing ";") names
		 * nothing: skipped rather than refused. */
		if (n > 0 && !p11uri_attr(out, p, n, why)) {
			return false;
		}
		p += n;
		if (*p == ';') {
			p++;
		}
	}
	if (q != NULL && !p11uri_query(q + 1, why)) {
		return false;
	}
	if (!out->has_token && !out->has_serial && !out->has_slot_id) {
		snprintf(why, P11URI_WHY_LEN, "no token named: add "
		    "token=LABEL (the token's label, as softhsm2-util "
		    "--show-slots or pkcs11-tool -L lists it)");
		return false;
	}
	if (!out->has_object && !out->has_id) {
		snprintf(why, P11URI_WHY_LEN, "no key named: add object=LABEL "
		    "(the key's label) or id=%%XX... (its CKA_ID)");
		return false;
	}
	return true;
}
