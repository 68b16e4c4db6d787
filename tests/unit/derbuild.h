/*
 * derbuild.h - DER assembled by hand, and the real DER fixtures, for the
 * unit tests of the DER readers (test_der.c, test_certfacts.c, test_crl.c).
 *
 * The tests build their inputs field by field from hex, so that each case
 * breaks exactly one rule; the helpers that turn hex and TLVs into bytes
 * live here once so that every reader is fed by the same encoder. Each test
 * is one translation unit, hence static functions in a header; CB_UNUSED
 * because no test uses all of them. A test that needs larger buffers
 * defines DERBUILD_MAX before including this file.
 */
#ifndef CB_TEST_DERBUILD_H
#define CB_TEST_DERBUILD_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "der.h"
#include "util.h"

#ifndef DERBUILD_MAX
#define DERBUILD_MAX 8192
#endif

/* Field defaults both builders share. */
#define ALG "30 0a 06 08 2a 86 48 ce 3d 04 03 02"
/* SEQUENCE { SET { SEQUENCE { 2.5.4.3, UTF8String "CA" } } } */
#define ISSUER "30 0d 31 0b 30 09 06 03 55 04 03 0c 02 43 41"
#define ISSUER_LEN 15
#define OID_OTHER "2a 03 04" /* 1.2.3.4 */
#define CRIT_TRUE "01 01 ff"

struct buf {
	uint8_t b[DERBUILD_MAX];
	size_t n;
};

/* Hex with spaces ("30 03 02 01 05") to bytes; returns the count. */
static CB_UNUSED size_t
unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	unsigned v;

	while (*hex != '\0') {
		if (*hex == ' ') {
			hex++;
			continue;
		}
		assert_int_equal(sscanf(hex, "%2x", &v), 1);
		assert_true(n < cap);
		out[n++] = (uint8_t)v;
		hex += 2;
	}
	return n;
}

static CB_UNUSED void
put(struct buf *o, const void *p, size_t n)
{
	assert_true(o->n + n <= sizeof(o->b));
	memcpy(o->b + o->n, p, n);
	o->n += n;
}

static CB_UNUSED void
put_hex(struct buf *o, const char *hex)
{
	o->n += unhex(hex, o->b + o->n, sizeof(o->b) - o->n);
}

/* A TLV with the shortest length, as DER wants. */
static CB_UNUSED void
put_tlv(struct buf *o, uint8_t tag, const void *content, size_t n)
{
	uint8_t h[4] = { tag };
	size_t hl;

	if (n < 0x80) {
		h[1] = (uint8_t)n;
		hl = 2;
	} else if (n < 0x100) {
		h[1] = 0x81;
		h[2] = (uint8_t)n;
		hl = 3;
	} else {
		assert_true(n < 0x10000);
		h[1] = 0x82;
		h[2] = (uint8_t)(n >> 8);
		h[3] = (uint8_t)n;
		hl = 4;
	}
	put(o, h, hl);
	put(o, content, n);
}

static CB_UNUSED void
put_tlv_buf(struct buf *o, uint8_t tag, const struct buf *content)
{
	put_tlv(o, tag, content->b, content->n);
}

static CB_UNUSED void
put_tlv_hex(struct buf *o, uint8_t tag, const char *hex)
{
	/* Static: a struct buf may be too large for every call's stack, and
	 * nothing below calls back in here. */
	static struct buf c;

	c.n = 0;
	put_hex(&c, hex);
	put_tlv_buf(o, tag, &c);
}

/* Appends to an Extensions SEQUENCE's contents one Extension whose
 * extnValue holds the hex given; crit is "" or a BOOLEAN TLV in hex. */
static CB_UNUSED void
put_ext(struct buf *exts, const char *oid_hex, const char *crit,
    const char *value_hex)
{
	struct buf e = { .n = 0 };

	put_tlv_hex(&e, DER_OID, oid_hex);
	put_hex(&e, crit);
	put_tlv_hex(&e, DER_OCTET_STRING, value_hex);
	put_tlv_buf(exts, DER_SEQUENCE, &e);
}

/* A field of a test's spec: NULL takes the default, "" leaves it out. */
static CB_UNUSED const char *
dflt(const char *v, const char *d)
{
	return v != NULL ? v : d;
}

/* A file made by gen_der_fixtures.py, read whole; a NUL follows the bytes
 * so that a PEM fixture can be searched as text. Skips the test when
 * CB_DER_FIXTURES is not set. */
static CB_UNUSED uint8_t *
fixture(const char *name, size_t *len)
{
	const char *dir = getenv("CB_DER_FIXTURES");
	char path[1024];
	uint8_t *buf;
	FILE *f;
	long n;

	if (dir == NULL) {
		fprintf(stderr, "CB_DER_FIXTURES is not set (make test-unit "
		    "sets it)\n");
		skip();
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (f == NULL) {
		fail_msg("cannot open %s", path);
	}
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = 0;
	fclose(f);
	*len = (size_t)n;
	return buf;
}

#endif
