/*
 * test_jsonw.c - the JSON writer of common/jsonw.c: commas placed by the
 * writer at any nesting, values escaped for any bytes, and a document
 * that cannot be written whole reported as failed rather than cut.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "jsonw.h"

static void
test_separators(void **state)
{
	struct jsonw w = {0};

	(void)state;
	jsonw_obj(&w);
	jsonw_kstr(&w, "a", "x");
	jsonw_ku64(&w, "b", 2);
	jsonw_key(&w, "list");
	jsonw_arr(&w);
	jsonw_u64(&w, 1);
	jsonw_obj(&w);
	jsonw_kbool(&w, "t", true);
	jsonw_key(&w, "n");
	jsonw_null(&w);
	jsonw_end(&w);
	jsonw_arr(&w);
	jsonw_end(&w);
	jsonw_i64(&w, -3);
	jsonw_end(&w);
	jsonw_key(&w, "empty");
	jsonw_obj(&w);
	jsonw_end(&w);
	jsonw_kdate(&w, "never", 0);
	jsonw_kdate(&w, "when", 1800000000);
	jsonw_end(&w);
	assert_false(w.failed);
	assert_string_equal(w.buf, "{\"a\":\"x\",\"b\":2,\"list\":[1,{\"t\":true,"
	    "\"n\":null},[],-3],\"empty\":{},\"never\":null,"
	    "\"when\":\"2027-01-15T08:00:00Z\"}");
	jsonw_free(&w);
}

/* Keys and values from outside: quotes, backslashes, control bytes and
 * bytes that are not UTF-8 all come out as valid JSON, and the parsed
 * string holds no control character: each odd byte is the text \xNN. */
static void
test_escaping(void **state)
{
	struct jsonw w = {0};

	(void)state;
	jsonw_obj(&w);
	jsonw_kstr(&w, "k\"\\", "a\x01\n\x7f" "\xc3\xa9" "\xff" "\xc2\x85"
	    "\xc2\xa0" "\xe2\x82");
	jsonw_end(&w);
	assert_string_equal(w.buf, "{\"k\\\"\\\\\":\"a\\\\x01\\\\x0a\\\\x7f"
	    "\xc3\xa9\\\\xff\\\\xc2\\\\x85\xc2\xa0\\\\xe2\\\\x82\"}");
	jsonw_free(&w);
}

static void
test_depth_and_balance(void **state)
{
	struct jsonw w = {0};

	(void)state;
	for (int i = 0; i < JSONW_MAX_DEPTH; i++) {
		jsonw_arr(&w);
	}
	assert_false(w.failed);
	jsonw_arr(&w);
	assert_true(w.failed);
	jsonw_free(&w);

	memset(&w, 0, sizeof(w));
	jsonw_obj(&w);
	jsonw_end(&w);
	assert_false(w.failed);
	jsonw_end(&w);
	assert_true(w.failed);
	jsonw_free(&w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_separators),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_depth_and_balance),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
