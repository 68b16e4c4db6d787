/*
 * jsonw.c - the JSON writer (see jsonw.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "mqtt.h"
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
	size_t n = s ? strlen(s) : 0;
	bool utf8 = n == 0 || mqtt_utf8_valid((const uint8_t *)s, n);
	char esc[8];

	jsonw_put(w, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			jsonw_put(w, esc, 2);
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			jsonw_put(w, esc, 6);
		} else if (c >= 0x80 && !utf8) {
			jsonw_latin1(w, c);
		} else {
			jsonw_put(w, &s[i], 1);
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
