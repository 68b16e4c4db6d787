/*
 * test_config_table.c - the key table of common/config_keys.c is the one
 * source of every default: each default the loader applied is what the
 * table's default string parses to (so the two cannot drift), and a key
 * without a default is required, or leaving it out means "off".
 *
 * The minimal file names itself for every file it needs: cfg_load checks
 * that files exist and are readable, not what they hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "config_int.h"
#include "parse.h"

/* Loads the smallest valid file: the required keys only, and one CA. */
static struct cfg *
load_minimal(void)
{
	char path[] = "/tmp/cb-test-config-table.XXXXXX";
	struct cfg_diag diag = { 0 };
	const char *name;
	struct cfg *cfg;
	FILE *f;
	int fd;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	name = strrchr(path, '/') + 1;
	assert_true(fprintf(f, "[downstream]\ncert = %s\nkey = %s\n"
	    "[ca.legacy]\nfile = %s\n"
	    "[upstream]\naddress = broker.example.com:8883\nca = %s\n",
	    name, name, name, name) > 0);
	assert_int_equal(fclose(f), 0);
	cfg = cfg_load(path, &diag);
	(void)unlink(path);
	if (diag.count > 0) {
		fail_msg("unexpected: %s", diag.lines[0]);
	}
	cfg_diag_free(&diag);
	assert_non_null(cfg);
	return cfg;
}

static const void *
at(const void *base, size_t off)
{
	return (const char *)base + off;
}

/* What a default string parses to, by the strict parsers of parse.h (not
 * the loader's path), against the field the loader filled. */
static void
check_default(const struct cfg_key_def *def, const void *base)
{
	const void *field = at(base, def->off);
	char why[PARSE_WHY_LEN];
	struct parse_hostport hp;
	uint64_t u = 0;
	int64_t i = 0;
	int lo, hi;
	bool b;

	switch (def->store) {
	case CS_STR:
		/* admin_listen: an address checked, kept as written */
		assert_int_equal(def->type, KT_HOSTPORT);
		assert_true(parse_hostport(def->dflt, &hp, why));
		assert_string_equal(*(char *const *)field, def->dflt);
		break;
	case CS_FILE: {
		const struct cfg_file *f = field;

		assert_true(def->dflt[0] == '/'); /* else it is resolved */
		assert_string_equal(f->path, def->dflt);
		assert_int_equal(f->line, 0);
		break;
	}
	case CS_LIST: {
		const struct cfg_listen *l = field;

		assert_null(strchr(def->dflt, ','));
		assert_true(parse_hostport(def->dflt, &hp, why));
		assert_int_equal(l->count, 1);
		assert_int_equal(l->line, 0);
		assert_string_equal(l->addrs[0].host, hp.host);
		assert_string_equal(l->addrs[0].port, hp.port);
		break;
	}
	case CS_HOSTPORT:
		fail_msg("%s: no address has a default", def->name);
		break;
	case CS_INT:
		assert_int_equal(*(const int *)field,
		    parse_enum(def->dflt, def->words, why));
		break;
	case CS_U32:
		assert_true(def->type == KT_SIZE ?
		    parse_size(def->dflt, def->max, &u, why) :
		    parse_uint(def->dflt, def->min, def->max, &u, why));
		assert_int_equal(*(const uint32_t *)field, u);
		break;
	case CS_I64:
		assert_true(def->type == KT_DATE ? parse_date(def->dflt, &i,
		    why) : parse_duration_ms(def->dflt, &i, why));
		assert_int_equal(*(const int64_t *)field, i);
		break;
	case CS_BOOL:
		assert_true(parse_bool(def->dflt, &b, why));
		assert_int_equal(*(const bool *)field, b);
		break;
	case CS_TLS:
		assert_true(parse_tls_versions(def->dflt, &lo, &hi, why));
		assert_int_equal(*(const int *)field, lo);
		assert_int_equal(*(const int *)at(base, def->off_max), hi);
		break;
	}
}

static void
test_every_default(void **state)
{
	static const char zero[sizeof(struct cfg_listen)];
	struct cfg *cfg;
	size_t i;

	(void)state;
	cfg = load_minimal();
	for (i = 0; i < CFG_KEY_COUNT; i++) {
		const struct cfg_key_def *def = &cfg_keys[i];
		const void *base = def->sec == CFG_SEC_CA ?
		    (const void *)&cfg->cas[0] : (const void *)cfg;

		if (def->flags & KF_REQUIRED) {
			assert_null(def->dflt);
			continue; /* written in the file */
		}
		/* Not written: no line, not "set". */
		if (def->off_line != 0) {
			assert_int_equal(*(const unsigned *)at(base,
			    def->off_line), 0);
		}
		if (def->off_has != 0) {
			assert_false(*(const bool *)at(base, def->off_has));
		}
		if (def->dflt != NULL) {
			check_default(def, base);
			continue;
		}
		/* Leaving it out means off; so does an empty value, or it
		 * is refused (KF_NO_EMPTY). */
		assert_true(def->flags & (KF_EMPTY_OFF | KF_NO_EMPTY));
		/* sni's default is the host of address (config_check.c). */
		if (i != K_UP_SNI) {
			assert_true(def->size <= sizeof(zero));
			assert_memory_equal(at(base, def->off), zero,
			    def->size);
		}
	}
	assert_string_equal(cfg->upstream.sni, "broker.example.com");
	cfg_free(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_default),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
