/*
 * log.c - the line builder behind log.h.
 *
 * Text lines quote a value only when it needs it (spaces, quotes, '=',
 * control bytes), so plain values stay greppable: reason=expired. Bytes
 * outside printable ASCII are written as \xNN in text; in JSON a control
 * byte as \u00NN, a UTF-8 character as its \uXXXX escape (so a parser
 * reads "Münich" as the text it is) and a byte that is not UTF-8 as the
 * text \xNN. Lines stay ASCII: nothing from the network reaches the
 * terminal or a log shipper raw.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "jsonw.h"
#include "log.h"

static enum log_level active_level = LOG_INFO;
static enum log_format active_format = LOG_TEXT;
static int log_fd = 2;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* Room kept free at the end of the buffer for the closing "}" or
 * " truncated=1" and the newline. */
#define LOG_TAIL_RESERVE 24

void
log_setup(enum log_level level, enum log_format format)
{
	active_level = level;
	active_format = format;
}

void
log_set_fd(int fd)
{
	log_fd = fd;
}

bool
log_enabled(enum log_level level)
{
	return level <= active_level;
}

const char *
log_level_name(enum log_level level)
{
	if ((unsigned)level >= CB_ARRAY_SIZE(level_names)) {
		return "unknown";
	}
	return level_names[level];
}

static size_t
log_room(const struct log_line *l)
{
	size_t limit = LOG_LINE_MAX - LOG_TAIL_RESERVE;

	return l->len < limit ? limit - l->len : 0;
}

/* Appends raw bytes; once the line is full it is marked truncated and
 * every further append is dropped, so the line stays parseable. */
static void
log_put(struct log_line *l, const char *s, size_t n)
{
	if (l->truncated) {
		return;
	}
	if (n > log_room(l)) {
		l->truncated = true;
		return;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void
log_putc(struct log_line *l, char c)
{
	log_put(l, &c, 1);
}

static bool
log_needs_quotes(const unsigned char *v, size_t n)
{
	if (n == 0) {
		return true;
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i] <= ' ' || v[i] >= 0x7f || v[i] == '"' || v[i] == '='
		    || v[i] == '\\') {
			return true;
		}
	}
	return false;
}

/* In JSON, the bytes from v on that start with one of 0x80 and above, as
 * a JSON parser should read them while the line stays ASCII: a UTF-8
 * sequence as the \uXXXX escape of its character (a surrogate pair past
 * U+FFFF), a byte that starts none as the text \xNN (there is no
 * character to name). Returns the bytes taken. */
static size_t
log_put_json_utf8(struct log_line *l, const unsigned char *v, size_t left)
{
	static const unsigned char lead_bits[5] = {0, 0, 0x1f, 0x0f, 0x07};
	unsigned char seq[5] = {0};
	uint32_t cp;
	size_t u;
	char esc[16];

	/* Copied with a NUL after: jsonw_utf8_len reads at most 4 bytes
	 * and stops at a NUL, and v need not be NUL-terminated. */
	memcpy(seq, v, left < 4 ? left : 4);
	u = jsonw_utf8_len(seq);
	if (u < 2) {
		snprintf(esc, sizeof(esc), "\\\\x%02x", v[0]);
		log_put(l, esc, 5);
		return 1;
	}
	cp = seq[0] & lead_bits[u];
	for (size_t k = 1; k < u; k++) {
		cp = (cp << 6) | (seq[k] & 0x3fu);
	}
	if (cp < 0x10000) {
		snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)cp);
		log_put(l, esc, 6);
	} else {
		cp -= 0x10000;
		snprintf(esc, sizeof(esc), "\\u%04x\\u%04x",
		    (unsigned)(0xd800 + (cp >> 10)),
		    (unsigned)(0xdc00 + (cp & 0x3ff)));
		log_put(l, esc, 12);
	}
	return u;
}

/* Escapes one value for the active format. A multi-byte escape is written
 * whole or not at all, never cut in the middle. */
static void
log_put_escaped(struct log_line *l, const unsigned char *v, size_t n)
{
	char esc[8];

	for (size_t i = 0; i < n && !l->truncated; i++) {
		unsigned char c = v[i];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			log_put(l, esc, 2);
		} else if (c >= 0x20 && c < 0x7f) {
			log_putc(l, (char)c);
		} else if (active_format == LOG_JSON && c >= 0x80) {
			i += log_put_json_utf8(l, v + i, n - i) - 1;
		} else if (active_format == LOG_JSON) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			log_put(l, esc, 6);
		} else {
			snprintf(esc, sizeof(esc), "\\x%02x", c);
			log_put(l, esc, 4);
		}
	}
}

enum {
	LOG_AT_FIELD = 0,
	LOG_AT_VALUE = 1,
	LOG_AT_QUOTED = 2,
};

/* A key and its separator go in whole or not at all. */
static void
log_key(struct log_line *l, const char *key)
{
	char tmp[96];
	int n;

	if (active_format == LOG_JSON) {
		n = snprintf(tmp, sizeof(tmp), "%s\"%s\":", l->len > 1 ? ","
		    : "", key);
	} else {
		n = snprintf(tmp, sizeof(tmp), "%s%s=", l->len > 0 ? " " : "",
		    key);
	}
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		l->truncated = true;
		return;
	}
	log_put(l, tmp, (size_t)n);
	if (!l->truncated) {
		l->at = LOG_AT_VALUE;
	}
}

void
log_bytes(struct log_line *l, const char *key, const void *value, size_t len)
{
	const unsigned char *v = value;
	bool quote;

	if (!l->active) {
		return;
	}
	quote = active_format == LOG_JSON || log_needs_quotes(v, len);
	log_key(l, key);
	if (quote) {
		log_putc(l, '"');
		if (!l->truncated) {
			l->at = LOG_AT_QUOTED;
		}
	}
	log_put_escaped(l, v, len);
	if (quote) {
		log_putc(l, '"');
	}
	if (!l->truncated) {
		l->at = LOG_AT_FIELD;
	}
}

void
log_str(struct log_line *l, const char *key, const char *value)
{
	if (value == NULL) {
		value = "";
	}
	log_bytes(l, key, value, strlen(value));
}

void
log_strf(struct log_line *l, const char *key, const char *fmt, ...)
{
	char tmp[LOG_LINE_MAX];
	va_list ap;
	int n;

	if (!l->active) {
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0) {
		return;
	}
	log_bytes(l, key, tmp, strnlen(tmp, sizeof(tmp)));
}

static void
log_number(struct log_line *l, const char *key, const char *digits)
{
	if (!l->active) {
		return;
	}
	log_key(l, key);
	log_put(l, digits, strlen(digits));
	if (!l->truncated) {
		l->at = LOG_AT_FIELD;
	}
}

void
log_u64(struct log_line *l, const char *key, uint64_t value)
{
	char digits[24];

	snprintf(digits, sizeof(digits), "%llu", (unsigned long long)value);
	log_number(l, key, digits);
}

void
log_i64(struct log_line *l, const char *key, int64_t value)
{
	char digits[24];

	snprintf(digits, sizeof(digits), "%lld", (long long)value);
	log_number(l, key, digits);
}

static bool
log_open(struct log_line *l, enum log_level level, bool always,
    const char *event)
{
	struct timeval tv;
	struct tm tm;
	char ts[96];

	l->active = always || log_enabled(level);
	l->truncated = false;
	l->at = LOG_AT_FIELD;
	l->len = 0;
	if (!l->active) {
		return false;
	}
	if (active_format == LOG_JSON) {
		log_putc(l, '{');
	}
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000));
	log_str(l, "ts", ts);
	log_str(l, "level", log_level_name(level));
	log_str(l, "event", event);
	return true;
}

bool
log_begin(struct log_line *l, enum log_level level, const char *event)
{
	return log_open(l, level, false, event);
}

bool
log_begin_always(struct log_line *l, enum log_level level, const char *event)
{
	return log_open(l, level, true, event);
}

void
log_end(struct log_line *l)
{
	ssize_t n;
	size_t off = 0;

	if (!l->active) {
		return;
	}
	/* The reserve guarantees these fit even on a truncated line: first
	 * close what the cut left open, so the line still parses. */
	if (l->truncated && l->at == LOG_AT_QUOTED) {
		l->buf[l->len++] = '"';
	} else if (l->truncated && l->at == LOG_AT_VALUE) {
		const char *none = active_format == LOG_JSON ? "null" : "\"\"";

		memcpy(l->buf + l->len, none, strlen(none));
		l->len += strlen(none);
	}
	if (l->truncated) {
		static const char tail_text[] = " truncated=1";
		static const char tail_json[] = ",\"truncated\":1";

		if (active_format == LOG_JSON) {
			memcpy(l->buf + l->len, tail_json, sizeof(tail_json) - 1);
			l->len += sizeof(tail_json) - 1;
		} else {
			memcpy(l->buf + l->len, tail_text, sizeof(tail_text) - 1);
			l->len += sizeof(tail_text) - 1;
		}
	}
	if (active_format == LOG_JSON) {
		l->buf[l->len++] = '}';
	}
	l->buf[l->len++] = '\n';
	while (off < l->len) {
		n = write(log_fd, l->buf + off, l->len - off);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			break;
		}
		off += (size_t)n;
	}
	l->active = false;
}

void
log_msg(enum log_level level, const char *event, const char *fmt, ...)
{
	struct log_line l;
	char tmp[LOG_LINE_MAX];
	va_list ap;

	if (!log_begin(&l, level, event)) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	log_str(&l, "msg", tmp);
	log_end(&l);
}
