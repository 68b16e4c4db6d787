/*
 * jsonw.c - the JSON writer (see jsonw.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "parse.h"

static void
jsonw_put(struct jsonw *w, const char *p, size_t n)
{
	if (w->failed) {
		return;
	}
	if (w->len + n + 1 > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		char *grown;

		while (cap < w->len + n + 1) {
			cap *= 2;
		}
		grown = realloc(w->buf, cap);
		if (grown == NULL) {
			w->failed = true;
			return;
		}
		w->buf = grown;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

void
jsonw_raw(struct jsonw *w, const char *text)
{
	jsonw_put(w, text, strlen(text));
}

/* The length of the valid UTF-8 sequence at p, or 0 (overlong forms,
 * surrogates and code points above U+10FFFF are not valid). Never reads
 * past a NUL. */
size_t
jsonw_utf8_len(const unsigned char *p)
{
	unsigned c = p[0], lo, hi;

	if (c < 0x80) {
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		return (p[1] & 0xC0) == 0x80 ? 2 : 0;
	}
	if (c >= 0xE0 && c <= 0xEF) {
		lo = c == 0xE0 ? 0xA0 : 0x80;
		hi = c == 0xED ? 0x9F : 0xBF;
		return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80
		    ? 3 : 0;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		lo = c == 0xF0 ? 0x90 : 0x80;
		hi = c == 0xF4 ? 0x8F : 0xBF;
		return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80
		    && (p[3] & 0xC0) == 0x80 ? 4 : 0;
	}
	return 0;
}

/* A byte that is not part of valid UTF-8, as its Latin-1 character. */
static void
jsonw_latin1(struct jsonw *w, unsigned char c)
{
	char two[2] = {(char)(0xc0 | (c >> 6)), (char)(0x80 | (c & 0x3f))};

	jsonw_put(w, two, 2);
}

void
jsonw_str(struct jsonw *w, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	char esc[8];

	jsonw_put(w, "\"", 1);
	for (; *p != '\0'; p++) {
		size_t n = jsonw_utf8_len(p);

		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			jsonw_put(w, esc, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			jsonw_put(w, esc, 6);
		} else if (n == 0) {
			jsonw_latin1(w, *p);
		} else {
			jsonw_put(w, (const char *)p, n);
			p += n - 1;
		}
	}
	jsonw_put(w, "\"", 1);
}

void
jsonw_key(struct jsonw *w, const char *key)
{
	jsonw_str(w, key);
	jsonw_put(w, ":", 1);
}

void
jsonw_i64(struct jsonw *w, int64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%" PRId64, v);
	jsonw_raw(w, num);
}

void
jsonw_u64(struct jsonw *w, uint64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%" PRIu64, v);
	jsonw_raw(w, num);
}

void
jsonw_bool(struct jsonw *w, bool v)
{
	jsonw_raw(w, v ? "true" : "false");
}

void
jsonw_date(struct jsonw *w, int64_t epoch)
{
	char when[40];

	if (epoch == 0) {
		jsonw_raw(w, "null");
		return;
	}
	parse_format_date(epoch, when, sizeof(when));
	jsonw_str(w, when);
}

void
jsonw_free(struct jsonw *w)
{
	free(w->buf);
	w->buf = NULL;
	w->len = w->cap = 0;
}
