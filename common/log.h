/*
 * log.h - one line per event, key=value (or one JSON object per line).
 *
 * A line is built field by field so that the same event renders as text or
 * JSON, values are escaped once in one place (no raw network bytes reach the
 * log), and no line exceeds LOG_LINE_MAX. Below the active level, log_begin
 * returns false and every later call on the line is a cheap no-op.
 *
 *	struct log_line l;
 *	if (log_begin(&l, LOG_WARN, "tls-refused")) {
 *		log_u64(&l, "conn", id);
 *		log_str(&l, "reason", "expired");
 *		log_end(&l);
 *	}
 */
#ifndef CB_LOG_H
#define CB_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

enum log_level {
	LOG_ERROR = 0,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
};

enum log_format {
	LOG_TEXT = 0,
	LOG_JSON,
};

#define LOG_LINE_MAX 4096

struct log_line {
	bool active;
	bool truncated;
	/* Where the writer is, so a line cut short can still be closed
	 * properly: 0 between fields, 1 after a key, 2 inside quotes. */
	int at;
	size_t len;
	char buf[LOG_LINE_MAX];
};

/* Where lines go (default stderr), the level and the format. Not thread
 * safe by design: certbridge has one thread. */
void log_setup(enum log_level level, enum log_format format);
void log_set_fd(int fd);
bool log_enabled(enum log_level level);

/* Starts a line with ts=, level= and event=. */
bool log_begin(struct log_line *l, enum log_level level, const char *event);
/* The same line whatever [gateway] log_level says, for the few lines an
 * operator or a supervisor waits for (event=ready). */
bool log_begin_always(struct log_line *l, enum log_level level,
    const char *event);
void log_str(struct log_line *l, const char *key, const char *value);
/* A value of known length that may hold any byte (an MQTT client id). */
void log_bytes(struct log_line *l, const char *key, const void *value,
    size_t len);
void log_u64(struct log_line *l, const char *key, uint64_t value);
void log_i64(struct log_line *l, const char *key, int64_t value);
void log_strf(struct log_line *l, const char *key, const char *fmt, ...)
    CB_PRINTF(3, 4);
/* Writes the line with a single write(2); a line that hit LOG_LINE_MAX ends
 * with truncated=1. */
void log_end(struct log_line *l);

/* For messages with no fields beyond a text (startup, fatal errors). */
void log_msg(enum log_level level, const char *event, const char *fmt, ...)
    CB_PRINTF(3, 4);

const char *log_level_name(enum log_level level);

#endif
