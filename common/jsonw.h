/*
 * jsonw.h - a small JSON writer into a growing buffer.
 *
 * Strings are escaped for any bytes (certificate subjects and client ids
 * come from outside): quotes, backslashes and control bytes are escaped,
 * valid UTF-8 sequences pass, and a byte that starts none is written as
 * the Latin-1 character it would be, so the output is always valid JSON.
 * Separators are the caller's, to keep the writer this small.
 */
#ifndef CB_JSONW_H
#define CB_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jsonw {
	char *buf;
	size_t len;
	size_t cap;
	bool failed;   /* out of memory at some point: the output is void */
};

void jsonw_raw(struct jsonw *w, const char *text);
void jsonw_str(struct jsonw *w, const char *s);
/* "key": (a string key, then a colon) */
void jsonw_key(struct jsonw *w, const char *key);
void jsonw_i64(struct jsonw *w, int64_t v);
void jsonw_u64(struct jsonw *w, uint64_t v);
void jsonw_bool(struct jsonw *w, bool v);
/* An ISO 8601 UTC date ("2027-06-30T12:00:00Z"), or null for 0. */
void jsonw_date(struct jsonw *w, int64_t epoch);
void jsonw_free(struct jsonw *w);

/* The length of the valid UTF-8 sequence at p, or 0 (overlong forms,
 * surrogates and code points above U+10FFFF are not valid). Never reads
 * past a NUL. */
size_t jsonw_utf8_len(const unsigned char *p);

#endif
