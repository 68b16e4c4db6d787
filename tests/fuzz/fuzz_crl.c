/*
 * fuzz_crl.c - libFuzzer target for the CRL reader.
 *
 * Feeds arbitrary bytes to crl_parse and checks its promises: a refusal
 * says why and leaves an empty record (nothing allocated, so a leak shows);
 * an accepted list has its issuer and every serial inside the input, every
 * serial a minimal INTEGER, the serials in crl_lists' order, and
 * crl_lists agreeing with a plain scan on probes taken from the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "crl.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_inside(struct der_span s, const uint8_t *data, size_t size)
{
	CB_ASSERT(s.len > 0 && s.ptr != NULL);
	CB_ASSERT(s.ptr >= data && s.len <= size
	    && (size_t)(s.ptr - data) <= size - s.len);
}

static bool
scan_lists(const struct crl_facts *c, struct der_span serial)
{
	for (size_t i = 0; i < c->count; i++) {
		if (der_span_eq(c->serials[i], serial)) {
			return true;
		}
	}
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct crl_facts c;
	char why[CRL_WHY_LEN];

	why[0] = '\0';
	if (!crl_parse(data, size, &c, why)) {
		CB_ASSERT(why[0] != '\0');
		CB_ASSERT(memchr(why, '\0', sizeof(why)) != NULL);
		CB_ASSERT(c.serials == NULL && c.count == 0);
		CB_ASSERT(c.issuer.len == 0 && !c.has_next_update);
		crl_facts_free(&c);
		return 0;
	}
	check_inside(c.issuer, data, size);
	CB_ASSERT(c.issuer.ptr[0] == DER_SEQUENCE);
	CB_ASSERT(crl_covers(&c, c.issuer));
	CB_ASSERT(c.has_next_update || c.next_update == 0);
	CB_ASSERT((c.count == 0) == (c.serials == NULL));
	for (size_t i = 0; i < c.count; i++) {
		struct der_span s = c.serials[i];

		check_inside(s, data, size);
		CB_ASSERT(der_integer_ok(s));
		CB_ASSERT(crl_lists(&c, s));
		if (i > 0) {
			struct der_span p = c.serials[i - 1];

			CB_ASSERT(p.len < s.len || (p.len == s.len
			    && memcmp(p.ptr, s.ptr, s.len) <= 0));
		}
	}
	/* Probes that may or may not be listed: the input's first bytes
	 * and its last ones. */
	for (size_t n = 1; n <= 4 && n <= size; n++) {
		struct der_span head = { data, n };
		struct der_span tail = { data + size - n, n };

		CB_ASSERT(crl_lists(&c, head) == scan_lists(&c, head));
		CB_ASSERT(crl_lists(&c, tail) == scan_lists(&c, tail));
	}
	crl_facts_free(&c);
	CB_ASSERT(c.serials == NULL && c.count == 0);
	return 0;
}
