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

/* The comma before an element that is not its container's first. */
static void
jsonw_separate(struct jsonw *w)
{
	uint32_t bit;

	if (w->depth == 0) {
		return;
	}
	bit = 1u << w->depth;
	if (w->has_item & bit) {
		jsonw_put(w, ",", 1);
	}
	w->has_item |= bit;
}

/* Before a value: a key already separated it; in an array it is an
 * element of its own. */
static void
jsonw_value(struct jsonw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	jsonw_separate(w);
}

static void
jsonw_open(struct jsonw *w, bool array)
{
	uint32_t bit;

	jsonw_value(w);
	if (w->depth == JSONW_MAX_DEPTH) {
		w->failed = true;
		return;
	}
	bit = 1u << ++w->depth;
	w->has_item &= ~bit;
	w->is_array = array ? w->is_array | bit : w->is_array & ~bit;
	jsonw_put(w, array ? "[" : "{", 1);
}

void
jsonw_obj(struct jsonw *w)
{
	jsonw_open(w, false);
}

void
jsonw_arr(struct jsonw *w)
{
	jsonw_open(w, true);
}

void
jsonw_end(struct jsonw *w)
{
	if (w->depth == 0) {
		w->failed = true; /* more closed than opened: a bug */
		return;
	}
	jsonw_put(w, w->is_array & (1u << w->depth) ? "]" : "}", 1);
	w->depth--;
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

/* A byte shown as the text \xNN (the backslash escaped for JSON). */
static void
jsonw_hex_byte(struct jsonw *w, unsigned char c)
{
	char esc[8];

	snprintf(esc, sizeof(esc), "\\\\x%02x", c);
	jsonw_put(w, esc, 5);
}

static void
jsonw_quoted(struct jsonw *w, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	char esc[2];

	jsonw_put(w, "\"", 1);
	for (; *p != '\0'; p++) {
		size_t n = jsonw_utf8_len(p);

		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			jsonw_put(w, esc, 2);
		} else if (*p < 0x20 || *p == 0x7f || n == 0) {
			jsonw_hex_byte(w, *p);
		} else if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0) {
			/* U+0080..U+009F, the C1 controls. */
			jsonw_hex_byte(w, p[0]);
			jsonw_hex_byte(w, p[1]);
			p++;
		} else {
			jsonw_put(w, (const char *)p, n);
			p += n - 1;
		}
	}
	jsonw_put(w, "\"", 1);
}

void
jsonw_str(struct jsonw *w, const char *s)
{
	jsonw_value(w);
	jsonw_quoted(w, s);
}

void
jsonw_key(struct jsonw *w, const char *key)
{
	jsonw_separate(w);
	jsonw_quoted(w, key);
	jsonw_put(w, ":", 1);
	w->after_key = true;
}

/* A number, literal or other bare token as a value. */
static void
jsonw_token(struct jsonw *w, const char *text)
{
	jsonw_value(w);
	jsonw_raw(w, text);
}

void
jsonw_i64(struct jsonw *w, int64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%" PRId64, v);
	jsonw_token(w, num);
}

void
jsonw_u64(struct jsonw *w, uint64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%" PRIu64, v);
	jsonw_token(w, num);
}

void
jsonw_bool(struct jsonw *w, bool v)
{
	jsonw_token(w, v ? "true" : "false");
}

void
jsonw_null(struct jsonw *w)
{
	jsonw_token(w, "null");
}

void
jsonw_date(struct jsonw *w, int64_t epoch)
{
	char when[40];

	if (epoch == 0) {
		jsonw_null(w);
		return;
	}
	parse_format_date(epoch, when, sizeof(when));
	jsonw_str(w, when);
}

void
jsonw_kstr(struct jsonw *w, const char *key, const char *s)
{
	jsonw_key(w, key);
	jsonw_str(w, s);
}

void
jsonw_ku64(struct jsonw *w, const char *key, uint64_t v)
{
	jsonw_key(w, key);
	jsonw_u64(w, v);
}

void
jsonw_kbool(struct jsonw *w, const char *key, bool v)
{
	jsonw_key(w, key);
	jsonw_bool(w, v);
}

void
jsonw_kdate(struct jsonw *w, const char *key, int64_t epoch)
{
	jsonw_key(w, key);
	jsonw_date(w, epoch);
}

void
jsonw_free(struct jsonw *w)
{
	free(w->buf);
	w->buf = NULL;
	w->len = w->cap = 0;
}
