/*
 * test_log.c - log lines: escaping, the 4 KiB bound, and lines cut short
 * that still parse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

/* Runs fn with the log going to a pipe; returns what it wrote. */
static char *
capture(enum log_format fmt, void (*fn)(void))
{
	static char out[2 * LOG_LINE_MAX];
	int fds[2];
	ssize_t n;

	assert_int_equal(pipe(fds), 0);
	log_setup(LOG_DEBUG, fmt);
	log_set_fd(fds[1]);
	fn();
	close(fds[1]);
	n = read(fds[0], out, sizeof(out) - 1);
	close(fds[0]);
	log_set_fd(2);
	assert_true(n > 0);
	out[n] = '\0';
	return out;
}

static void
one_escaped(void)
{
	struct log_line l;

	log_begin(&l, LOG_INFO, "test");
	log_bytes(&l, "id", "a\"b\\c\n\x01\xff", 8);
	log_str(&l, "plain", "word");
	log_end(&l);
}

static void
test_text_escapes_and_quotes(void **state)
{
	char *s;

	(void)state;
	s = capture(LOG_TEXT, one_escaped);
	assert_non_null(strstr(s, " event=test id=\"a\\\"b\\\\c\\x0a\\x01\\xff\""
	    " plain=word\n"));
}

static void
test_json_escapes(void **state)
{
	char *s;

	(void)state;
	s = capture(LOG_JSON, one_escaped);
	/* 0xff is no UTF-8: the text \xff, not a guessed character. */
	assert_non_null(strstr(s, ",\"event\":\"test\",\"id\":\"a\\\"b\\\\c"
	    "\\u000a\\u0001\\\\xff\",\"plain\":\"word\"}\n"));
	assert_int_equal(s[0], '{');
}

static void
one_utf8(void)
{
	struct log_line l;

	log_begin(&l, LOG_INFO, "test");
	/* M\u00fcnich, a C1 control, the euro sign, U+1F512, a cut
	 * sequence. */
	log_bytes(&l, "device", "M\xc3\xbcnich\xc2\x85\xe2\x82\xac"
	    "\xf0\x9f\x94\x92\xe2\x82", 18);
	log_end(&l);
}

/* A UTF-8 name reads back as itself from a JSON line, which stays ASCII. */
static void
test_json_utf8_as_characters(void **state)
{
	char *s;

	(void)state;
	s = capture(LOG_JSON, one_utf8);
	assert_non_null(strstr(s, "\"device\":\"M\\u00fcnich\\u0085\\u20ac"
	    "\\ud83d\\udd12\\\\xe2\\\\x82\"}"));
	for (const char *p = s; *p != '\0'; p++) {
		assert_true(*p == '\n' || (*p >= 0x20 && *p < 0x7f));
	}
}

static void
one_long_quoted(void)
{
	char big[6000];
	struct log_line l;

	memset(big, '\x01', sizeof(big));
	log_begin(&l, LOG_INFO, "test");
	log_bytes(&l, "id", big, sizeof(big));
	log_str(&l, "after", "never");
	log_end(&l);
}

static void
test_cut_text_line_closes_its_quote(void **state)
{
	char *s;
	size_t n;

	(void)state;
	s = capture(LOG_TEXT, one_long_quoted);
	n = strlen(s);
	assert_true(n <= LOG_LINE_MAX);
	assert_int_equal(s[n - 1], '\n');
	assert_non_null(strstr(s, "\" truncated=1\n"));
	assert_null(strstr(s, "after="));
	for (size_t i = 0; i + 1 < n; i++) {
		assert_true(s[i] >= 0x20 && s[i] < 0x7f);
	}
}

static void
test_cut_json_line_stays_an_object(void **state)
{
	char *s;
	size_t n;

	(void)state;
	s = capture(LOG_JSON, one_long_quoted);
	n = strlen(s);
	assert_true(n <= LOG_LINE_MAX);
	assert_non_null(strstr(s, "\",\"truncated\":1}\n"));
	/* The cut never splits an escape: the value ends on a whole one. */
	assert_non_null(strstr(s, "\\u0001\",\"truncated\":1}"));
}

static void
many_fields(void)
{
	struct log_line l;
	char key[16];

	log_begin(&l, LOG_INFO, "test");
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		log_u64(&l, key, (uint64_t)i);
	}
	log_end(&l);
}

/* Cut between fields: no half key, no key without a value. */
static void
test_cut_between_fields(void **state)
{
	char *s;
	size_t n;

	(void)state;
	s = capture(LOG_JSON, many_fields);
	n = strlen(s);
	assert_true(n <= LOG_LINE_MAX);
	assert_non_null(strstr(s, ",\"truncated\":1}\n"));
	assert_null(strstr(s, ":,"));
	s = capture(LOG_TEXT, many_fields);
	assert_non_null(strstr(s, " truncated=1\n"));
	assert_null(strstr(s, "= "));
}

static void
below_level(void)
{
	struct log_line l;

	log_setup(LOG_WARN, LOG_TEXT);
	assert_false(log_begin(&l, LOG_INFO, "hidden"));
	log_str(&l, "k", "v");
	log_end(&l);
	log_begin(&l, LOG_WARN, "shown");
	log_end(&l);
}

static void
test_level_gates_lines(void **state)
{
	char *s;

	(void)state;
	s = capture(LOG_TEXT, below_level);
	assert_null(strstr(s, "hidden"));
	assert_non_null(strstr(s, "event=shown"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_escapes_and_quotes),
		cmocka_unit_test(test_json_escapes),
		cmocka_unit_test(test_json_utf8_as_characters),
		cmocka_unit_test(test_cut_text_line_closes_its_quote),
		cmocka_unit_test(test_cut_json_line_stays_an_object),
		cmocka_unit_test(test_cut_between_fields),
		cmocka_unit_test(test_level_gates_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
