/*
 * fuzz_certfacts.c - libFuzzer target for the certificate reader.
 *
 * Feeds arbitrary bytes to certfacts_parse, which reads what devices send,
 * and checks its promises: a refusal says why and leaves nothing behind;
 * an accepted certificate has every span inside the input, counts that
 * agree with what is kept, flags that agree with each other, and is read
 * the same way twice. DER has one encoding per value and no trailing
 * bytes, so no strict prefix of an accepted input is accepted.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "certfacts.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Epoch seconds of 0000-01-01 and 9999-12-31T23:59:59Z. */
#define YEAR_0_EPOCH (-62167219200LL)
#define YEAR_9999_END 253402300799LL

static void
check_inside(struct der_span s, const uint8_t *data, size_t size)
{
	CB_ASSERT(s.len == 0 || s.ptr != NULL);
	CB_ASSERT(s.len == 0 || (s.ptr >= data && s.len <= size
	    && (size_t)(s.ptr - data) <= size - s.len));
}

static void
check_kept(const struct der_span *kept, size_t count, const uint8_t *data,
    size_t size)
{
	for (size_t i = 0; i < count && i < CERTFACTS_MAX_VALUES; i++) {
		check_inside(kept[i], data, size);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct certfacts zero;
	struct certfacts f, again;
	char why[CERTFACTS_WHY_LEN];

	why[0] = '\0';
	if (!certfacts_parse(data, size, &f, why)) {
		CB_ASSERT(why[0] != '\0');
		CB_ASSERT(memchr(why, '\0', sizeof(why)) != NULL);
		CB_ASSERT(memcmp(&f, &zero, sizeof(f)) == 0);
		return 0;
	}
	check_inside(f.serial, data, size);
	CB_ASSERT(der_integer_ok(f.serial));
	check_inside(f.issuer, data, size);
	check_inside(f.subject, data, size);
	CB_ASSERT(f.issuer.len >= 2 && f.issuer.ptr[0] == DER_SEQUENCE);
	CB_ASSERT(f.subject.len >= 2 && f.subject.ptr[0] == DER_SEQUENCE);
	CB_ASSERT(f.not_before >= YEAR_0_EPOCH
	    && f.not_before <= YEAR_9999_END);
	CB_ASSERT(f.not_after >= YEAR_0_EPOCH && f.not_after <= YEAR_9999_END);

	for (size_t i = 0; i < f.cn_count && i < CERTFACTS_MAX_VALUES; i++) {
		check_inside(f.cn[i].bytes, data, size);
		/* A universal primitive string type. */
		CB_ASSERT(f.cn[i].tag >= DER_UTF8_STRING
		    && f.cn[i].tag <= DER_BMP_STRING);
		/* Inside the subject, not the issuer. */
		CB_ASSERT(f.cn[i].bytes.ptr >= f.subject.ptr
		    && f.cn[i].bytes.ptr + f.cn[i].bytes.len
		    <= f.subject.ptr + f.subject.len);
	}
	check_kept(f.dns, f.dns_count, data, size);
	check_kept(f.uri, f.uri_count, data, size);
	CB_ASSERT(f.has_san || (f.dns_count == 0 && f.uri_count == 0));
	CB_ASSERT(f.has_basic_constraints || (!f.is_ca && !f.has_path_len));
	CB_ASSERT(f.has_path_len || f.path_len == 0);
	CB_ASSERT(f.path_len <= 255);
	CB_ASSERT(f.has_key_usage || f.key_usage == 0);
	CB_ASSERT(f.key_usage < (1u << 9));

	/* The same bytes read the same way. */
	CB_ASSERT(certfacts_parse(data, size, &again, why));
	CB_ASSERT(memcmp(&f, &again, sizeof(f)) == 0);
	/* Nothing shorter is the same certificate. */
	CB_ASSERT(!certfacts_parse(data, size - 1, &again, why));
	return 0;
}
