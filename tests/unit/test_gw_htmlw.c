/*
 * test_gw_htmlw.c - the status page's escaping (gateway/htmlw.c): markup
 * characters become entities, odd bytes (NUL, control bytes, DEL, invalid
 * UTF-8, a sequence cut short) become visible \xNN text, valid UTF-8
 * passes, and nothing past the given length is read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "htmlw.h"

/* htmlw_textn of n bytes at s, as a NUL-terminated string (freed by the
 * caller). */
static char *
escaped(const char *s, size_t n)
{
	struct evbuffer *b = evbuffer_new();
	size_t len;
	char *out;

	assert_non_null(b);
	htmlw_textn(b, s, n);
	len = evbuffer_get_length(b);
	out = malloc(len + 1);
	assert_non_null(out);
	evbuffer_remove(b, out, len);
	out[len] = '\0';
	evbuffer_free(b);
	return out;
}

static void
check(const char *s, size_t n, const char *want)
{
	char *got = escaped(s, n);

	assert_string_equal(got, want);
	free(got);
}

static void
test_markup(void **state)
{
	(void)state;
	check("<script>alert(1)</script>", 25,
	    "&lt;script&gt;alert(1)&lt;/script&gt;");
	check("a&b \"q\" 'x'", 11, "a&amp;b &quot;q&quot; &#39;x&#39;");
	check("plain text 123", 14, "plain text 123");
	check("", 0, "");
	/* An attribute cannot be closed from inside. */
	check("\" onload=\"x", 11, "&quot; onload=&quot;x");
}

static void
test_odd_bytes(void **state)
{
	(void)state;
	check("a\0b", 3, "a\\x00b");
	check("\x01\x1f\x7f\t\n", 5, "\\x01\\x1f\\x7f\\x09\\x0a");
	/* Invalid UTF-8: a lone continuation byte, an overlong form, a
	 * surrogate, a lead byte with nothing after it. */
	check("\x80", 1, "\\x80");
	check("\xc0\xaf", 2, "\\xc0\\xaf");
	check("\xed\xa0\x80", 3, "\\xed\\xa0\\x80");
	check("x\xe2\x82", 3, "x\\xe2\\x82");
	/* C1 controls (U+0080..U+009F) are valid UTF-8, yet controls: shown
	 * as their bytes; U+00A0 and up pass. */
	check("dev\xc2\x85x", 6, "dev\\xc2\\x85x");
	check("\xc2\x80\xc2\x9f\xc2\xa0", 6, "\\xc2\\x80\\xc2\\x9f\xc2\xa0");
	/* Valid UTF-8 of 2, 3 and 4 bytes passes. */
	check("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92", 14,
	    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92");
}

static void
test_length_is_the_bound(void **state)
{
	/* The 3-byte euro sign cut after its first 2 bytes by n: shown as
	 * odd bytes, the third never read. */
	const char euro[] = "\xe2\x82\xac";

	(void)state;
	check(euro, 2, "\\xe2\\x82");
	check("abc", 1, "a");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_markup),
		cmocka_unit_test(test_odd_bytes),
		cmocka_unit_test(test_length_is_the_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
