/*
 * jsonw.h - a small JSON writer into a growing buffer.
 *
 * Strings are escaped for any bytes (certificate subjects and client ids
 * come from outside): quotes and backslashes as JSON wants; valid UTF-8
 * passes; a control byte (C0, DEL, and a C1 control's two bytes) and a
 * byte that is not part of valid UTF-8 become the text \xNN, as the logs
 * write them (docs/configuration.md, "Identities are exact"), so the
 * parsed string holds no control character either, and a reader sees
 * which byte it was.
 *
 * Objects and arrays opened with jsonw_obj/jsonw_arr get their commas
 * from the writer: each key, and each value inside an array, is preceded
 * by one when it is not the first. A document is written as
 *
 *	jsonw_obj(w);
 *	jsonw_kstr(w, "name", name);
 *	jsonw_key(w, "list");
 *	jsonw_arr(w);
 *	jsonw_u64(w, 1);
 *	jsonw_u64(w, 2);
 *	jsonw_end(w);
 *	jsonw_end(w);
 */
#ifndef CB_JSONW_H
#define CB_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest nesting of objects and arrays; deeper fails the document. */
#define JSONW_MAX_DEPTH 31

struct jsonw {
	char *buf;
	size_t len;
	size_t cap;
	bool failed;   /* out of memory at some point: the output is void */
	/* The open containers, bit d for depth d (1 = outermost). */
	unsigned depth;
	uint32_t is_array;
	uint32_t has_item;
	bool after_key; /* a key was written: its value needs no comma */
};

/* Text written as it is, with no separator: the caller's JSON. */
void jsonw_raw(struct jsonw *w, const char *text);
void jsonw_obj(struct jsonw *w);
void jsonw_arr(struct jsonw *w);
/* Closes the innermost object or array. */
void jsonw_end(struct jsonw *w);
/* "key": (a string key, then a colon), inside an object */
void jsonw_key(struct jsonw *w, const char *key);
void jsonw_str(struct jsonw *w, const char *s);
void jsonw_i64(struct jsonw *w, int64_t v);
void jsonw_u64(struct jsonw *w, uint64_t v);
void jsonw_bool(struct jsonw *w, bool v);
void jsonw_null(struct jsonw *w);
/* An ISO 8601 UTC date ("2027-06-30T12:00:00Z"), or null for 0. */
void jsonw_date(struct jsonw *w, int64_t epoch);

/* A key and its value. */
void jsonw_kstr(struct jsonw *w, const char *key, const char *s);
void jsonw_ku64(struct jsonw *w, const char *key, uint64_t v);
void jsonw_kbool(struct jsonw *w, const char *key, bool v);
void jsonw_kdate(struct jsonw *w, const char *key, int64_t epoch);

void jsonw_free(struct jsonw *w);

/* The length of the valid UTF-8 sequence at p, or 0 (overlong forms,
 * surrogates and code points above U+10FFFF are not valid). Never reads
 * past a NUL. */
size_t jsonw_utf8_len(const unsigned char *p);

#endif
