/*
 * test_gw_devstore.c - [upstream] device_certs pairs read and proven at
 * load, kept in memory per generation, looked up per session.
 *
 * The pairs are made fresh by the Makefile in $CB_DER_FIXTURES/devstore
 * (tests/unit/gen_devstore_pki.py); each test copies them into a folder of
 * its own and changes files between loads, as an operator would.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <sys/socket.h>
#include <sys/stat.h>

#include <cmocka.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "devcert.h"
#include "devcheck.h"
#include "devstore.h"
#include "gen.h"
#include "x509.h"

static char fixtures[512];
static char dir[64];
static struct cfg cfg;
static struct cfg_diag diag;

/* ------------------------------------------------------------ helpers */

static void
path_in(char *out, size_t cap, const char *folder, const char *name)
{
	snprintf(out, cap, "%s/%s", folder, name);
}

/* Copies fixture src to the test folder as dst: through a new file renamed
 * over dst (a new inode, as tools that write atomically do), or in place
 * (same inode, new contents and ctime). */
static void
put(const char *dst, const char *src, bool in_place)
{
	char from[640], to[128], tmp[140];
	size_t len = 0;
	struct stat st;
	char *buf, why[X509_WHY_LEN];
	FILE *f;

	path_in(from, sizeof(from), fixtures, src);
	path_in(to, sizeof(to), dir, dst);
	snprintf(tmp, sizeof(tmp), "%s.tmp", to);
	buf = x509_read_file(from, &len, &st, why);
	assert_non_null(buf);
	f = fopen(in_place ? to : tmp, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	free(buf);
	if (!in_place) {
		assert_int_equal(rename(tmp, to), 0);
	}
}

static void
put_pair(const char *id, const char *src)
{
	char a[80], b[80];

	snprintf(a, sizeof(a), "%s.crt", id);
	snprintf(b, sizeof(b), "%s.crt", src);
	put(a, b, false);
	snprintf(a, sizeof(a), "%s.key", id);
	snprintf(b, sizeof(b), "%s.key", src);
	put(a, b, false);
}

static void
write_text(const char *name, const char *text)
{
	char to[128];
	FILE *f;

	path_in(to, sizeof(to), dir, name);
	f = fopen(to, "wb");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* One load, as gen_load does it. ok says whether the load found no
 * problem. */
static struct devstore *
load(bool *ok)
{
	struct devstore *s;

	cfg_diag_free(&diag);
	memset(&diag, 0, sizeof(diag));
	*ok = devcheck_run(&cfg, &diag, &s);
	return s;
}

static struct devstore *
load_ok(void)
{
	bool ok;
	struct devstore *s = load(&ok);

	if (!ok) {
		for (size_t i = 0; i < diag.count; i++) {
			fprintf(stderr, "unexpected: %s\n", diag.lines[i]);
		}
	}
	assert_true(ok);
	assert_non_null(s);
	assert_int_equal(diag.errors, 0);
	return s;
}

/* The DER chain of fixture name.crt, as the store should hold it. */
static size_t
fixture_chain(const char *name, unsigned char *out, size_t cap)
{
	char path[640], why[X509_WHY_LEN];
	struct x509_list list;
	size_t len = 0;
	int n;

	snprintf(path, sizeof(path), "%s/%s.crt", fixtures, name);
	assert_true(x509_load_file(path, &list, why));
	for (size_t i = 0; i < list.count; i++) {
		const unsigned char *der = wolfSSL_X509_get_der(list.certs[i],
		    &n);

		assert_non_null(der);
		assert_true(len + (size_t)n <= cap);
		memcpy(out + len, der, (size_t)n);
		len += (size_t)n;
	}
	x509_list_free(&list);
	return len;
}

static void
assert_chain_is(const struct devstore_pair *p, const char *fixture)
{
	unsigned char want[8192];
	size_t len = fixture_chain(fixture, want, sizeof(want));

	assert_non_null(p);
	assert_int_equal(p->chain_len, len);
	assert_memory_equal(p->chain, want, len);
}

/* What uplink_use_identity does with a pair, on a connection of its own. */
static void
assert_usable(const struct devstore_pair *p)
{
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
	WOLFSSL *ssl;

	assert_non_null(ctx);
	ssl = wolfSSL_new(ctx);
	assert_non_null(ssl);
	assert_int_equal(wolfSSL_use_certificate_chain_buffer_format(ssl,
	    p->chain, (long)p->chain_len, WOLFSSL_FILETYPE_ASN1),
	    WOLFSSL_SUCCESS);
	assert_int_equal(wolfSSL_use_PrivateKey_buffer(ssl, p->key,
	    (long)p->key_len, WOLFSSL_FILETYPE_ASN1), WOLFSSL_SUCCESS);
	assert_int_equal(wolfSSL_check_private_key(ssl), WOLFSSL_SUCCESS);
	wolfSSL_free(ssl);
	wolfSSL_CTX_free(ctx);
}

static bool
diag_has(const char *a, const char *b)
{
	for (size_t i = 0; i < diag.count; i++) {
		if (strstr(diag.lines[i], a) != NULL
		    && (b == NULL || strstr(diag.lines[i], b) != NULL)) {
			return true;
		}
	}
	return false;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/cb-devstore-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		return -1;
	}
	memset(&cfg, 0, sizeof(cfg));
	memset(&diag, 0, sizeof(diag));
	cfg.path = (char *)"devstore.ini";
	cfg.upstream.device_certs.path = dir;
	cfg.upstream.device_certs.line = 42;
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	devcheck_forget();
	cfg_diag_free(&diag);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* -------------------------------------------------------------- tests */

static void
test_lookup_hit_and_miss(void **state)
{
	struct devstore *s;

	(void)state;
	put_pair("dev-a", "dev-a");
	put_pair("dev-b", "dev-b");
	put_pair("dev-r", "dev-r");
	put_pair("dev-d", "dev-d");
	put("stray.key", "stray.key", false);  /* no .crt */
	put("lone.crt", "dev-a.crt", false);   /* no .key */
	s = load_ok();
	assert_int_equal(devstore_count(s), 4);
	/* EC with PKCS#8 and SEC1 keys, RSA with PKCS#1, DER files. */
	assert_chain_is(devstore_find(s, "dev-a"), "dev-a");
	assert_chain_is(devstore_find(s, "dev-b"), "dev-b");
	assert_chain_is(devstore_find(s, "dev-r"), "dev-r");
	assert_chain_is(devstore_find(s, "dev-d"), "dev-d");
	assert_string_equal(devstore_find(s, "dev-b")->id, "dev-b");
	for (const char *id = "abdr"; *id != '\0'; id++) {
		char name[8];

		snprintf(name, sizeof(name), "dev-%c", *id);
		assert_usable(devstore_find(s, name));
	}
	assert_null(devstore_find(s, "stray"));
	assert_null(devstore_find(s, "lone"));
	assert_null(devstore_find(s, "dev-"));
	assert_null(devstore_find(s, "dev-a "));
	assert_null(devstore_find(s, "DEV-A"));
	assert_null(devstore_find(s, "dev-aa"));
	assert_null(devstore_find(s, ""));
	assert_null(devstore_find(NULL, "dev-a"));
	devstore_unref(s);
}

static void
test_pick_choices_and_unsafe_names(void **state)
{
	const struct devstore_pair *pair;
	struct gen g;
	char longest[130];

	(void)state;
	put_pair("dev-a", "dev-a");
	/* Pairs whose names are no safe identity are never loaded. */
	put_pair("dev a", "dev-b");
	put_pair(".dev-a", "dev-b");
	memset(&g, 0, sizeof(g));
	g.cfg = &cfg;
	g.devstore = load_ok();
	assert_int_equal(devstore_count(g.devstore), 1);

	assert_int_equal(devcert_pick(g.cfg, g.devstore, "dev-a", &pair), DEVCERT_DEVICE);
	assert_ptr_equal(pair, devstore_find(g.devstore, "dev-a"));
	assert_int_equal(devcert_pick(g.cfg, g.devstore, "dev-b", &pair), DEVCERT_NONE);
	assert_null(pair);
	assert_int_equal(devcert_pick(g.cfg, g.devstore, NULL, &pair), DEVCERT_NONE);
	assert_int_equal(devcert_pick(g.cfg, g.devstore, "", &pair), DEVCERT_NONE);
	memset(longest, 'x', 129);
	longest[129] = '\0';
	for (size_t i = 0; i < 8; i++) {
		const char *bad[] = { "../dev-a", "sub/dev-a", ".dev-a",
		    "dev-a/", "dev a", "dev-a\n", "..", longest };

		pair = (const struct devstore_pair *)&g;
		assert_int_equal(devcert_pick(g.cfg, g.devstore, bad[i], &pair),
		    DEVCERT_UNSAFE);
		assert_null(pair);
	}
	longest[128] = '\0';
	assert_int_equal(devcert_pick(g.cfg, g.devstore, longest, &pair), DEVCERT_NONE);

	/* With a shared identity, devices without a pair use it. */
	cfg.upstream.cert.path = (char *)"shared.pem";
	assert_int_equal(devcert_pick(g.cfg, g.devstore, "dev-b", &pair), DEVCERT_SHARED);
	assert_null(pair);
	assert_int_equal(devcert_pick(g.cfg, g.devstore, "dev-a", &pair), DEVCERT_DEVICE);
	assert_int_equal(devcert_pick(g.cfg, g.devstore, "../x", &pair), DEVCERT_UNSAFE);
	/* Without device_certs nothing is looked up. */
	cfg.upstream.device_certs.path = NULL;
	assert_int_equal(devcert_pick(g.cfg, g.devstore, "dev-a", &pair), DEVCERT_SHARED);
	assert_null(pair);
	cfg.upstream.cert.path = NULL;
	assert_int_equal(devcert_pick(g.cfg, g.devstore, "dev-a", &pair), DEVCERT_ANONYMOUS);
	cfg.upstream.device_certs.path = dir;
	devstore_unref(g.devstore);
}

static void
test_reload_shares_unchanged_pairs(void **state)
{
	struct devstore *s1, *s2;
	const struct devstore_pair *a1, *b1;

	(void)state;
	put_pair("dev-a", "dev-a");
	put_pair("dev-b", "dev-b");
	s1 = load_ok();
	a1 = devstore_find(s1, "dev-a");
	b1 = devstore_find(s1, "dev-b");
	s2 = load_ok();
	assert_ptr_not_equal(s1, s2);
	/* The same records: shared, not read again. */
	assert_ptr_equal(devstore_find(s2, "dev-a"), a1);
	assert_ptr_equal(devstore_find(s2, "dev-b"), b1);
	/* The older generation going away leaves the newer one whole. */
	devstore_unref(s1);
	assert_chain_is(devstore_find(s2, "dev-a"), "dev-a");
	assert_usable(devstore_find(s2, "dev-b"));
	devstore_unref(s2);
}

static void
test_changed_files_are_read_again(void **state)
{
	struct devstore *s1, *s2, *s3;
	const struct devstore_pair *b2;
	char key[128];
	struct stat st;

	(void)state;
	put_pair("dev-a", "dev-a");
	put_pair("dev-b", "dev-b");
	s1 = load_ok();
	/* dev-a replaced (new files renamed over the old ones). */
	put_pair("dev-a", "dev-a2");
	s2 = load_ok();
	assert_ptr_not_equal(devstore_find(s2, "dev-a"),
	    devstore_find(s1, "dev-a"));
	assert_chain_is(devstore_find(s2, "dev-a"), "dev-a2");
	assert_usable(devstore_find(s2, "dev-a"));
	assert_ptr_equal(devstore_find(s2, "dev-b"), devstore_find(s1, "dev-b"));
	/* The older generation keeps the pair it proved. */
	assert_chain_is(devstore_find(s1, "dev-a"), "dev-a");

	/* dev-b's key written again in place, same bytes: a new ctime is
	 * enough to read it again (ctime moves in clock ticks: wait for
	 * one). */
	b2 = devstore_find(s2, "dev-b");
	path_in(key, sizeof(key), dir, "dev-b.key");
	do {
		usleep(2000);
		put("dev-b.key", "dev-b.key", true);
		assert_int_equal(stat(key, &st), 0);
	} while (st.st_ctim.tv_sec == b2->key_file.ctime_s
	    && st.st_ctim.tv_nsec == b2->key_file.ctime_ns);
	assert_int_equal(st.st_ino, b2->key_file.ino);
	s3 = load_ok();
	assert_ptr_not_equal(devstore_find(s3, "dev-b"), b2);
	assert_chain_is(devstore_find(s3, "dev-b"), "dev-b");
	assert_ptr_equal(devstore_find(s3, "dev-a"), devstore_find(s2, "dev-a"));
	devstore_unref(s1);
	devstore_unref(s2);
	devstore_unref(s3);
}

static void
test_bad_pairs_are_excluded(void **state)
{
	struct devstore *s1, *s2, *s3;
	bool ok;

	(void)state;
	put_pair("dev-a", "dev-a");
	put_pair("dev-b", "dev-b");
	put_pair("dev-r", "dev-r");
	s1 = load_ok();
	/* dev-b's key now belongs to no certificate here; dev-r's
	 * certificate is damaged. */
	put("dev-b.key", "stray.key", false);
	write_text("dev-r.crt", "-----BEGIN CERTIFICATE-----\nAAAA\n"
	    "-----END CERTIFICATE-----\n");
	s2 = load(&ok);
	assert_false(ok);
	assert_non_null(s2);
	assert_int_equal(diag.errors, 2);
	assert_true(diag_has("devstore.ini:42: [upstream] device_certs: ",
	    "dev-b.key\" does not belong to the certificate"));
	assert_true(diag_has("\"dev-b.key\" must hold the private key of the "
	    "first certificate in", "dev-b.crt\""));
	assert_true(diag_has("devstore.ini:42: [upstream] device_certs: ",
	    "dev-r.crt\": certificate 1 of 1 does not parse"));
	assert_int_equal(devstore_count(s2), 1);
	assert_null(devstore_find(s2, "dev-b"));
	assert_null(devstore_find(s2, "dev-r"));
	assert_ptr_equal(devstore_find(s2, "dev-a"), devstore_find(s1, "dev-a"));
	/* Fixed: read and proven again, since the failed load kept no
	 * record of them. */
	put("dev-b.key", "dev-b.key", false);
	put("dev-r.crt", "dev-r.crt", false);
	s3 = load_ok();
	assert_int_equal(devstore_count(s3), 3);
	assert_usable(devstore_find(s3, "dev-b"));
	assert_usable(devstore_find(s3, "dev-r"));
	assert_ptr_not_equal(devstore_find(s3, "dev-b"),
	    devstore_find(s1, "dev-b"));
	devstore_unref(s1);
	devstore_unref(s2);
	devstore_unref(s3);
}

static void
test_added_pair_waits_for_the_next_load(void **state)
{
	struct devstore *s1, *s2;

	(void)state;
	put_pair("dev-a", "dev-a");
	s1 = load_ok();
	put_pair("dev-c", "dev-a2");
	assert_null(devstore_find(s1, "dev-c"));
	s2 = load_ok();
	assert_chain_is(devstore_find(s2, "dev-c"), "dev-a2");
	assert_null(devstore_find(s1, "dev-c"));
	devstore_unref(s1);
	devstore_unref(s2);
}

/* A TLS handshake between a server that trusts only the root and asks for
 * a client certificate, and a client presenting p the way
 * uplink_use_identity does; the server's verdict. */
static bool
handshake_with(const struct devstore_pair *p)
{
	char ca[640], crt[640], key[640];
	WOLFSSL_CTX *sctx, *cctx;
	WOLFSSL *srv, *cli;
	int sv[2], done_s = 0, done_c = 0, rc, err;

	snprintf(ca, sizeof(ca), "%s/up-ca.pem", fixtures);
	snprintf(crt, sizeof(crt), "%s/server.crt", fixtures);
	snprintf(key, sizeof(key), "%s/server.key", fixtures);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	sctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
	cctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
	assert_non_null(sctx);
	assert_non_null(cctx);
	assert_int_equal(wolfSSL_CTX_use_certificate_chain_file(sctx, crt),
	    WOLFSSL_SUCCESS);
	assert_int_equal(wolfSSL_CTX_use_PrivateKey_file(sctx, key,
	    WOLFSSL_FILETYPE_PEM), WOLFSSL_SUCCESS);
	assert_int_equal(wolfSSL_CTX_load_verify_locations(sctx, ca, NULL),
	    WOLFSSL_SUCCESS);
	wolfSSL_CTX_set_verify(sctx, WOLFSSL_VERIFY_PEER
	    | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	assert_int_equal(wolfSSL_CTX_load_verify_locations(cctx, ca, NULL),
	    WOLFSSL_SUCCESS);
	srv = wolfSSL_new(sctx);
	cli = wolfSSL_new(cctx);
	assert_non_null(srv);
	assert_non_null(cli);
	wolfSSL_set_fd(srv, sv[0]);
	wolfSSL_set_fd(cli, sv[1]);
	assert_int_equal(wolfSSL_use_certificate_chain_buffer_format(cli,
	    p->chain, (long)p->chain_len, WOLFSSL_FILETYPE_ASN1),
	    WOLFSSL_SUCCESS);
	assert_int_equal(wolfSSL_use_PrivateKey_buffer(cli, p->key,
	    (long)p->key_len, WOLFSSL_FILETYPE_ASN1), WOLFSSL_SUCCESS);
	/* Both sides step in turn until the server has decided. */
	for (int i = 0; i < 100 && done_s == 0; i++) {
		if (done_c == 0) {
			rc = wolfSSL_connect(cli);
			err = wolfSSL_get_error(cli, rc);
			done_c = rc == WOLFSSL_SUCCESS ? 1
			    : (err == WOLFSSL_ERROR_WANT_READ
			    || err == WOLFSSL_ERROR_WANT_WRITE) ? 0 : -1;
		}
		rc = wolfSSL_accept(srv);
		err = wolfSSL_get_error(srv, rc);
		done_s = rc == WOLFSSL_SUCCESS ? 1
		    : (err == WOLFSSL_ERROR_WANT_READ
		    || err == WOLFSSL_ERROR_WANT_WRITE) ? 0 : -1;
	}
	wolfSSL_free(srv);
	wolfSSL_free(cli);
	wolfSSL_CTX_free(sctx);
	wolfSSL_CTX_free(cctx);
	close(sv[0]);
	close(sv[1]);
	return done_s == 1;
}

/* The chain is kept as DER certificates one after the other: wolfSSL
 * 5.5.4 must send every one of them, or a broker that knows only the root
 * refuses every device. */
static void
test_der_chain_sends_the_intermediate(void **state)
{
	struct devstore *s;

	(void)state;
	put_pair("dev-a", "dev-a");
	put_pair("dev-r", "dev-r");
	put_pair("dev-d", "dev-d"); /* the leaf alone */
	s = load_ok();
	assert_true(handshake_with(devstore_find(s, "dev-a")));
	assert_true(handshake_with(devstore_find(s, "dev-r")));
	/* The control: without its intermediate the server refuses. */
	assert_false(handshake_with(devstore_find(s, "dev-d")));
	devstore_unref(s);
}

/* A folder that cannot be read gives no store at all; a load without
 * device_certs drops the pairs kept for the next one. */
static void
test_unreadable_folder_and_forget(void **state)
{
	struct devstore *s, *again;
	bool ok;

	(void)state;
	put_pair("dev-a", "dev-a");
	s = load_ok();
	devcheck_forget();
	again = load_ok(); /* nothing to share: read again */
	assert_ptr_not_equal(devstore_find(s, "dev-a"),
	    devstore_find(again, "dev-a"));
	devstore_unref(s);
	devstore_unref(again);
	cfg.upstream.device_certs.path = (char *)"/nonexistent/cb-devstore";
	s = load(&ok);
	assert_false(ok);
	assert_null(s);
	assert_true(diag_has("devstore.ini:42: [upstream] device_certs: ",
	    "cannot read folder"));
	cfg.upstream.device_certs.path = dir;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lookup_hit_and_miss,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_pick_choices_and_unsafe_names, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_reload_shares_unchanged_pairs, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_changed_files_are_read_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_pairs_are_excluded,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_added_pair_waits_for_the_next_load, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_der_chain_sends_the_intermediate, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_unreadable_folder_and_forget, setup, teardown),
	};
	const char *base = getenv("CB_DER_FIXTURES");
	int rc;

	if (base == NULL) {
		fprintf(stderr, "test_gw_devstore: set CB_DER_FIXTURES (make "
		    "test-unit does)\n");
		return 1;
	}
	snprintf(fixtures, sizeof(fixtures), "%s/devstore", base);
	wolfSSL_Init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	wolfSSL_Cleanup();
	return rc;
}
