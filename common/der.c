/*
 * der.c - the strict DER reader (see der.h).
 *
 * Every check here exists because BER allows a second encoding of the same
 * value: two parsers that disagree on which bytes a field covers (a long
 * length, an indefinite one, a padded integer) can be made to see two
 * different certificates in one buffer. DER has one encoding per value, so
 * anything else is refused rather than normalised.
 */
#include <stdio.h>
#include <string.h>

#include "der.h"
#include "parse.h"
#include "util.h"

/* Lengths of up to 4 octets: 4 GiB is far beyond any certificate, and a
 * bound keeps the arithmetic in size_t on 32-bit platforms too. */
#define DER_LEN_OCTETS_MAX 4

bool
der_read(struct der_span *in, uint8_t *tag, struct der_span *value,
    struct der_span *whole)
{
	const uint8_t *p = in->ptr;
	size_t avail = in->len, hdr, len;

	if (avail < 2) {
		return false;
	}
	/* Tag number 31 announces the high tag number form: more tag
	 * bytes follow, which nothing X.509 uses. */
	if ((p[0] & 0x1fu) == 0x1fu) {
		return false;
	}
	if (p[1] < 0x80u) {
		hdr = 2;
		len = p[1];
	} else {
		size_t n = p[1] & 0x7fu;

		/* 0x80 is the indefinite form; 0xff is reserved and caught
		 * by the bound. */
		if (n == 0 || n > DER_LEN_OCTETS_MAX || avail < 2 + n) {
			return false;
		}
		/* The long form must be needed: no leading zero octet, and
		 * not used for a length the short form can hold. */
		if (p[2] == 0) {
			return false;
		}
		len = 0;
		for (size_t i = 0; i < n; i++) {
			len = (len << 8) | p[2 + i];
		}
		if (len < 0x80u) {
			return false;
		}
		hdr = 2 + n;
	}
	if (len > avail - hdr) {
		return false;
	}
	if (tag != NULL) {
		*tag = p[0];
	}
	if (value != NULL) {
		value->ptr = p + hdr;
		value->len = len;
	}
	if (whole != NULL) {
		whole->ptr = p;
		whole->len = hdr + len;
	}
	in->ptr = p + hdr + len;
	in->len = avail - hdr - len;
	return true;
}

bool
der_expect(struct der_span *in, uint8_t tag, struct der_span *value,
    struct der_span *whole)
{
	if (!der_peek(in, tag)) {
		return false;
	}
	return der_read(in, NULL, value, whole);
}

bool
der_peek(const struct der_span *in, uint8_t tag)
{
	return in->len > 0 && in->ptr[0] == tag;
}

bool
der_span_eq(struct der_span a, struct der_span b)
{
	/* memcmp with a NULL pointer is undefined even for 0 bytes. */
	return a.len == b.len && (a.len == 0
	    || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* ------------------------------------------------------------ time */

/* Reads n decimal digits; false on anything else. */
static bool
der_digits(const uint8_t *p, size_t n, int *out)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9') {
			return false;
		}
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return true;
}

static bool
der_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

bool
der_time(uint8_t tag, struct der_span value, int64_t *epoch)
{
	static const int mdays[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31,
	};
	const uint8_t *p = value.ptr;
	size_t ylen;
	int y, mo, d, h, mi, s, dim;

	/* Only the forms RFC 5280 4.1.2.5 allows: seconds present, no
	 * fraction, 'Z' and never an offset. */
	if (tag == DER_UTC_TIME) {
		ylen = 2;
	} else if (tag == DER_GENERALIZED_TIME) {
		ylen = 4;
	} else {
		return false;
	}
	if (value.len != ylen + 11 || p[ylen + 10] != 'Z') {
		return false;
	}
	if (!der_digits(p, ylen, &y) || !der_digits(p + ylen, 2, &mo)
	    || !der_digits(p + ylen + 2, 2, &d)
	    || !der_digits(p + ylen + 4, 2, &h)
	    || !der_digits(p + ylen + 6, 2, &mi)
	    || !der_digits(p + ylen + 8, 2, &s)) {
		return false;
	}
	if (tag == DER_UTC_TIME) {
		y += y < 50 ? 2000 : 1900;
	}
	if (mo < 1 || mo > 12) {
		return false;
	}
	dim = mdays[mo - 1] + (mo == 2 && der_leap(y));
	if (d < 1 || d > dim || h > 23 || mi > 59 || s > 59) {
		return false;
	}
	*epoch = parse_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60
	    + s;
	return true;
}

/* -------------------------------------------------------- integers, OIDs */

bool
der_integer_ok(struct der_span value)
{
	if (value.len == 0) {
		return false;
	}
	if (value.len >= 2 && ((value.ptr[0] == 0x00 && value.ptr[1] < 0x80)
	    || (value.ptr[0] == 0xff && value.ptr[1] >= 0x80))) {
		return false;
	}
	return true;
}

bool
der_oid_is(struct der_span oid, const uint8_t *enc, size_t enc_len)
{
	return oid.len == enc_len && (enc_len == 0
	    || memcmp(oid.ptr, enc, enc_len) == 0);
}

/* Longest subidentifier printed exactly, in base-128 digits (280 bits:
 * UUID arcs under 2.25 take 19). */
#define DER_ARC_DIGITS_MAX 40

/* Appends to out what snprintf would, keeping *used at most cap - 1. */
static void
der_append(char *out, size_t cap, size_t *used, const char *s)
{
	size_t n = strlen(s);

	if (*used + 1 >= cap) {
		return;
	}
	if (n > cap - 1 - *used) {
		n = cap - 1 - *used;
	}
	memcpy(out + *used, s, n);
	*used += n;
	out[*used] = '\0';
}

/* The decimal text of a subidentifier given as base-128 digits (most
 * significant first), less sub (0, 40 or 80, for the first one). Long
 * division by 10, so an arc of any size within the bound prints exactly. */
static void
der_arc_text(const uint8_t *digits, size_t n, unsigned sub, char *dec,
    size_t cap)
{
	uint8_t v[DER_ARC_DIGITS_MAX];
	char rev[DER_ARC_DIGITS_MAX * 3 + 1];
	size_t k = 0;
	bool nonzero;

	if (n > DER_ARC_DIGITS_MAX) {
		snprintf(dec, cap, "?");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		v[i] = digits[i] & 0x7fu;
	}
	/* Subtracts sub, borrowing in base 128; the caller made sure the
	 * value is at least sub. */
	for (size_t i = n; sub != 0 && i-- > 0;) {
		unsigned take = sub % 128u, cur = v[i];

		sub /= 128u;
		if (cur < take) {
			cur += 128u;
			sub++;
		}
		v[i] = (uint8_t)(cur - take);
	}
	do {
		unsigned rem = 0;

		nonzero = false;
		for (size_t i = 0; i < n; i++) {
			unsigned cur = rem * 128u + v[i];

			v[i] = (uint8_t)(cur / 10u);
			rem = cur % 10u;
			nonzero = nonzero || v[i] != 0;
		}
		rev[k++] = (char)('0' + rem);
	} while (nonzero && k < sizeof(rev) - 1);
	for (size_t i = 0; i < k && i + 1 < cap; i++) {
		dec[i] = rev[k - 1 - i];
		dec[i + 1] = '\0';
	}
}

bool
der_oid_text(struct der_span oid, char *out, size_t cap)
{
	char arc[DER_ARC_DIGITS_MAX * 3 + 2];
	size_t used = 0, start = 0;
	bool first = true;

	if (cap == 0) {
		return false;
	}
	out[0] = '\0';
	if (oid.len == 0 || (oid.ptr[oid.len - 1] & 0x80u) != 0) {
		der_append(out, cap, &used, "(malformed OID)");
		return false;
	}
	for (size_t i = 0; i < oid.len; i++) {
		const uint8_t *d = oid.ptr + start;
		size_t n;

		if (i == start && oid.ptr[i] == 0x80u) {
			/* A leading 0x80 pads a subidentifier: not minimal. */
			out[0] = '\0';
			used = 0;
			der_append(out, cap, &used, "(malformed OID)");
			return false;
		}
		if ((oid.ptr[i] & 0x80u) != 0) {
			continue;
		}
		n = i + 1 - start;
		start = i + 1;
		if (first) {
			/* The first subidentifier holds two arcs: 40 * X + Y,
			 * X being 0 or 1 (Y < 40) or 2 (Y anything). */
			unsigned x = n == 1 ? d[0] / 40u : 2u;

			if (x > 2) {
				x = 2;
			}
			snprintf(arc, sizeof(arc), "%u.", x);
			der_append(out, cap, &used, arc);
			der_arc_text(d, n, x * 40u, arc, sizeof(arc));
			first = false;
		} else {
			arc[0] = '.';
			der_arc_text(d, n, 0, arc + 1, sizeof(arc) - 1);
		}
		der_append(out, cap, &used, arc);
	}
	return true;
}
