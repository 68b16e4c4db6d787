/*
 * test_config.c - cfg_load against whole files: one valid file with every
 * field checked, the defaults, and one test per kind of mistake asserting
 * the exact lines an operator would read.
 *
 * Each run works in a fresh mkdtemp folder holding empty stand-ins for the
 * certificate files (cfg_load checks that files exist and are readable, not
 * what they hold). In the expected lines "{F}" stands for the INI file's
 * path and "{D}" for the folder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cmocka.h>

#include "config.h"

static char dir[64];
static char ini[128];

static const char *const stand_ins[] = {
	"gw.pem", "gw.key", "ca-2019.pem", "ca-2026.pem", "ca-2019.crl",
	"up-ca.pem", "up.pem", "up.key",
};

/* Lines that make a file valid; tests append or replace sections. */
#define DS_MIN "[downstream]\ncert = gw.pem\nkey = gw.key\n"
#define CA_MIN "[ca.legacy]\nfile = ca-2019.pem\n"
#define UP_MIN "[upstream]\naddress = broker.example.com:8883\n" \
	"ca = up-ca.pem\n"
#define VALID DS_MIN CA_MIN UP_MIN

/* ------------------------------------------------------------ fixtures */

static void
write_file(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

static void
remove_in_dir(const char *name)
{
	char path[256];

	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	(void)unlink(path);
}

static int
group_setup(void **state)
{
	size_t i;

	(void)state;
	(void)snprintf(dir, sizeof(dir), "/tmp/cb-test-config.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		return -1;
	}
	(void)snprintf(ini, sizeof(ini), "%s/t.ini", dir);
	for (i = 0; i < sizeof(stand_ins) / sizeof(stand_ins[0]); i++) {
		write_file(stand_ins[i], "placeholder\n");
	}
	(void)snprintf(ini, sizeof(ini), "%s/devices", dir);
	if (mkdir(ini, 0700) != 0) {
		return -1;
	}
	(void)snprintf(ini, sizeof(ini), "%s/t.ini", dir);
	return 0;
}

static int
group_teardown(void **state)
{
	char path[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(stand_ins) / sizeof(stand_ins[0]); i++) {
		remove_in_dir(stand_ins[i]);
	}
	remove_in_dir("t.ini");
	remove_in_dir("other.ini");
	(void)snprintf(path, sizeof(path), "%s/devices", dir);
	(void)rmdir(path);
	return rmdir(dir) == 0 ? 0 : -1;
}

/* "{F}" -> the INI path, "{D}" -> the folder. */
static void
expand(const char *pattern, char *out, size_t cap)
{
	size_t used = 0;

	while (*pattern != '\0' && used + 1 < cap) {
		if (strncmp(pattern, "{F}", 3) == 0 ||
		    strncmp(pattern, "{D}", 3) == 0) {
			used += (size_t)snprintf(out + used, cap - used, "%s",
			    pattern[1] == 'F' ? ini : dir);
			pattern += 3;
		} else {
			out[used++] = *pattern++;
		}
	}
	out[used < cap ? used : cap - 1] = '\0';
}

/* Loads text as t.ini, expecting failure and exactly the lines given
 * (NULL-terminated), in order. */
static void
expect_lines(const char *text, ...)
{
	struct cfg_diag diag = { 0 };
	struct cfg *cfg;
	const char *pattern;
	char want[1024];
	size_t i = 0;
	va_list ap;

	write_file("t.ini", text);
	cfg = cfg_load(ini, &diag);
	va_start(ap, text);
	while ((pattern = va_arg(ap, const char *)) != NULL) {
		expand(pattern, want, sizeof(want));
		if (i >= diag.count) {
			fail_msg("missing line %zu: %s", i + 1, want);
		}
		if (strcmp(diag.lines[i], want) != 0) {
			print_error("line %zu\n  got:  %s\n  want: %s\n", i + 1,
			    diag.lines[i], want);
			fail();
		}
		i++;
	}
	va_end(ap);
	for (; i < diag.count; i++) {
		fail_msg("unexpected extra line: %s", diag.lines[i]);
	}
	if (diag.errors > 0) {
		assert_null(cfg);
	}
	cfg_free(cfg);
	cfg_diag_free(&diag);
}

/* Loads text, expecting success with no diagnostics. */
static struct cfg *
load_ok(const char *text)
{
	struct cfg_diag diag = { 0 };
	struct cfg *cfg;
	size_t i;

	write_file("t.ini", text);
	cfg = cfg_load(ini, &diag);
	for (i = 0; i < diag.count; i++) {
		print_error("unexpected: %s\n", diag.lines[i]);
	}
	assert_int_equal(diag.count, 0);
	assert_non_null(cfg);
	cfg_diag_free(&diag);
	return cfg;
}

static char *
in_dir(const char *name)
{
	static char path[256];

	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

/* ------------------------------------------------------------ good files */

static void
test_full_file(void **state)
{
	const struct cfg_ca *ca;
	struct cfg *cfg;

	(void)state;
	cfg = load_ok(
	    "; every key of docs/configuration.md\n"
	    "[gateway]\n"
	    "admin_listen = 127.0.0.1:9900   ; admin\n"
	    "log_level = debug\n"
	    "log_format = json\n"
	    "max_connections = 2500\n"
	    "shutdown_grace = 30s\n"
	    "user = certbridge\n"
	    "state_file = state/devices.state\n"
	    "\n"
	    "[downstream]\n"
	    "listen = 0.0.0.0:8883, [::]:8883\n"
	    "cert = gw.pem\n"
	    "key = gw.key\n"
	    "client_auth = optional\n"
	    "tls_versions = 1.3\n"
	    "ciphers = TLS13-AES128-GCM-SHA256:TLS13-CHACHA20-POLY1305-SHA256\n"
	    "clock_skew = 2m\n"
	    "handshake_timeout = 5s\n"
	    "session_tickets = no\n"
	    "plain_listen = 127.0.0.1:1883\n"
	    "\n"
	    "[ca.legacy]\n"
	    "file = ca-2019.pem\n"
	    "retire_after = 2087-06-30\n"
	    "crl = ca-2019.crl\n"
	    "clock_skew = 1h\n"
	    "expired_grace = 30d\n"
	    "\n"
	    "[ca.current]\n"
	    "file = ca-2026.pem\n"
	    "retire_after = 2090-01-01T12:00:00Z\n"
	    "\n"
	    "[upstream]\n"
	    "address = broker.example.com:443\n"
	    "sni = iot.example.com\n"
	    "ca = up-ca.pem\n"
	    "cert = up.pem\n"
	    "key = up.key\n"
	    "device_certs = devices\n"
	    "alpn = x-amzn-mqtt-ca, mqtt\n"
	    "tls_versions = 1.2-1.2\n"
	    "connect_timeout = 2500ms\n"
	    "connect_rate = 200\n"
	    "\n"
	    "[mqtt]\n"
	    "identity = san-dns\n"
	    "clientid = rewrite\n"
	    "username = identity\n"
	    "max_packet_size = 256K\n");

	assert_string_equal(cfg->path, ini);
	assert_string_equal(cfg->gateway.admin_listen, "127.0.0.1:9900");
	assert_int_equal(cfg->gateway.log_level, CFG_LOG_DEBUG);
	assert_int_equal(cfg->gateway.log_format, CFG_LOG_JSON);
	assert_int_equal(cfg->gateway.max_connections, 2500);
	assert_int_equal(cfg->gateway.shutdown_grace_ms, 30000);
	assert_string_equal(cfg->gateway.user, "certbridge");
	assert_int_equal(cfg->gateway.user_line, 8);
	assert_int_equal(cfg->gateway.line, 2);
	assert_string_equal(cfg->gateway.state_file.path,
	    in_dir("state/devices.state"));
	assert_int_equal(cfg->gateway.state_file.line, 9);

	assert_int_equal(cfg->downstream.listen.count, 2);
	assert_int_equal(cfg->downstream.listen.line, 12);
	assert_string_equal(cfg->downstream.listen.addrs[0].host, "0.0.0.0");
	assert_string_equal(cfg->downstream.listen.addrs[0].port, "8883");
	assert_string_equal(cfg->downstream.listen.addrs[1].host, "::");
	assert_string_equal(cfg->downstream.listen.addrs[1].port, "8883");
	assert_string_equal(cfg->downstream.cert.path, in_dir("gw.pem"));
	assert_int_equal(cfg->downstream.cert.line, 13);
	assert_string_equal(cfg->downstream.key.path, in_dir("gw.key"));
	assert_int_equal(cfg->downstream.key.line, 14);
	assert_int_equal(cfg->downstream.client_auth, CFG_AUTH_OPTIONAL);
	assert_int_equal(cfg->downstream.tls_min, 13);
	assert_int_equal(cfg->downstream.tls_max, 13);
	assert_string_equal(cfg->downstream.ciphers,
	    "TLS13-AES128-GCM-SHA256:TLS13-CHACHA20-POLY1305-SHA256");
	assert_int_equal(cfg->downstream.clock_skew_ms, 120000);
	assert_int_equal(cfg->downstream.handshake_timeout_ms, 5000);
	assert_false(cfg->downstream.session_tickets);
	assert_int_equal(cfg->downstream.plain_listen.count, 1);
	assert_int_equal(cfg->downstream.plain_listen.line, 21);
	assert_string_equal(cfg->downstream.plain_listen.addrs[0].host,
	    "127.0.0.1");
	assert_string_equal(cfg->downstream.plain_listen.addrs[0].port, "1883");

	assert_int_equal(cfg->ca_count, 2);
	ca = &cfg->cas[0];
	assert_string_equal(ca->name, "legacy");
	assert_int_equal(ca->line, 23);
	assert_string_equal(ca->file.path, in_dir("ca-2019.pem"));
	assert_int_equal(ca->file.line, 24);
	assert_true(ca->has_retire_after);
	assert_int_equal(ca->retire_after, 3707769600LL);
	assert_string_equal(ca->crl.path, in_dir("ca-2019.crl"));
	assert_int_equal(ca->crl.line, 26);
	assert_true(ca->has_clock_skew);
	assert_int_equal(ca->clock_skew_ms, 3600000);
	assert_int_equal(ca->expired_grace_ms, 30LL * 86400 * 1000);
	ca = &cfg->cas[1];
	assert_string_equal(ca->name, "current");
	assert_int_equal(ca->line, 30);
	assert_string_equal(ca->file.path, in_dir("ca-2026.pem"));
	assert_true(ca->has_retire_after);
	assert_int_equal(ca->retire_after, 3786955200LL);
	assert_null(ca->crl.path);
	assert_false(ca->has_clock_skew);
	assert_int_equal(ca->expired_grace_ms, 0);
	assert_ptr_equal(cfg_find_ca(cfg, "current"), &cfg->cas[1]);
	assert_ptr_equal(cfg_find_ca(cfg, "legacy"), &cfg->cas[0]);
	assert_null(cfg_find_ca(cfg, "Legacy"));
	assert_null(cfg_find_ca(cfg, "ca.legacy"));

	assert_string_equal(cfg->upstream.address.host, "broker.example.com");
	assert_string_equal(cfg->upstream.address.port, "443");
	assert_int_equal(cfg->upstream.address_line, 35);
	assert_string_equal(cfg->upstream.sni, "iot.example.com");
	assert_string_equal(cfg->upstream.ca.path, in_dir("up-ca.pem"));
	assert_string_equal(cfg->upstream.cert.path, in_dir("up.pem"));
	assert_string_equal(cfg->upstream.key.path, in_dir("up.key"));
	assert_string_equal(cfg->upstream.device_certs.path, in_dir("devices"));
	assert_int_equal(cfg->upstream.device_certs.line, 40);
	assert_string_equal(cfg->upstream.alpn, "x-amzn-mqtt-ca,mqtt");
	assert_int_equal(cfg->upstream.tls_min, 12);
	assert_int_equal(cfg->upstream.tls_max, 12);
	assert_int_equal(cfg->upstream.connect_timeout_ms, 2500);
	assert_int_equal(cfg->upstream.connect_rate, 200);

	assert_int_equal(cfg->mqtt.identity, CFG_IDENTITY_SAN_DNS);
	assert_int_equal(cfg->mqtt.clientid, CFG_CLIENTID_REWRITE);
	assert_int_equal(cfg->mqtt.username, CFG_USERNAME_IDENTITY);
	assert_int_equal(cfg->mqtt.max_packet_size, 262144);
	cfg_free(cfg);
}

static void
test_defaults(void **state)
{
	struct cfg *cfg;

	(void)state;
	cfg = load_ok(VALID);
	assert_string_equal(cfg->gateway.admin_listen, "127.0.0.1:9883");
	assert_int_equal(cfg->gateway.log_level, CFG_LOG_INFO);
	assert_int_equal(cfg->gateway.log_format, CFG_LOG_TEXT);
	assert_int_equal(cfg->gateway.max_connections, 10000);
	assert_int_equal(cfg->gateway.shutdown_grace_ms, 10000);
	assert_null(cfg->gateway.user);
	assert_string_equal(cfg->gateway.state_file.path,
	    "/var/lib/certbridge/devices.state");
	assert_int_equal(cfg->downstream.listen.count, 1);
	assert_int_equal(cfg->downstream.listen.line, 0);
	assert_string_equal(cfg->downstream.listen.addrs[0].host, "0.0.0.0");
	assert_string_equal(cfg->downstream.listen.addrs[0].port, "8883");
	assert_int_equal(cfg->downstream.client_auth, CFG_AUTH_REQUIRED);
	assert_int_equal(cfg->downstream.tls_min, 12);
	assert_int_equal(cfg->downstream.tls_max, 13);
	assert_null(cfg->downstream.ciphers);
	assert_int_equal(cfg->downstream.clock_skew_ms, 300000);
	assert_int_equal(cfg->downstream.handshake_timeout_ms, 10000);
	assert_true(cfg->downstream.session_tickets);
	assert_int_equal(cfg->downstream.plain_listen.count, 0);
	assert_false(cfg->cas[0].has_retire_after);
	assert_false(cfg->cas[0].has_clock_skew);
	assert_int_equal(cfg->cas[0].expired_grace_ms, 0);
	assert_null(cfg->cas[0].crl.path);
	assert_string_equal(cfg->upstream.sni, "broker.example.com");
	assert_null(cfg->upstream.cert.path);
	assert_null(cfg->upstream.key.path);
	assert_null(cfg->upstream.device_certs.path);
	assert_null(cfg->upstream.alpn);
	assert_int_equal(cfg->upstream.tls_min, 12);
	assert_int_equal(cfg->upstream.tls_max, 13);
	assert_int_equal(cfg->upstream.connect_timeout_ms, 10000);
	assert_int_equal(cfg->upstream.connect_rate, 50);
	assert_true(cfg->upstream.session_resumption);
	assert_int_equal(cfg->mqtt.identity, CFG_IDENTITY_CN);
	assert_int_equal(cfg->mqtt.clientid, CFG_CLIENTID_CHECK);
	assert_int_equal(cfg->mqtt.username, CFG_USERNAME_KEEP);
	assert_int_equal(cfg->mqtt.max_packet_size, 1048576);
	cfg_free(cfg);
}

static void
test_empty_means_off(void **state)
{
	struct cfg *cfg;

	(void)state;
	cfg = load_ok("[gateway]\nadmin_listen =\nuser =\nstate_file =  ; mem\n"
	    DS_MIN "ciphers =\nplain_listen =\n"
	    "[ca.legacy]\nfile = ca-2019.pem\n"
	    "clock_skew =\n"
	    "[upstream]\naddress = [::1]:8883\nsni =\nca = up-ca.pem\n"
	    "cert =\nkey =\ndevice_certs =\nalpn =\n");
	assert_null(cfg->gateway.admin_listen);
	assert_null(cfg->gateway.user);
	assert_null(cfg->gateway.state_file.path);
	assert_null(cfg->downstream.ciphers);
	assert_int_equal(cfg->downstream.plain_listen.count, 0);
	assert_false(cfg->cas[0].has_clock_skew);
	assert_string_equal(cfg->upstream.sni, "::1");
	assert_null(cfg->upstream.cert.path);
	assert_null(cfg->upstream.alpn);
	cfg_free(cfg);
}

/* An empty crl or retire_after would turn a trust check off unnoticed
 * (docs/configuration.md, "Configuration that would weaken trust"): an
 * error; only leaving the key out means "none". */
static void
test_empty_trust_keys_refused(void **state)
{
	(void)state;
	expect_lines(DS_MIN "[ca.legacy]\nfile = ca-2019.pem\ncrl =\n"
	    "retire_after =  ; none\n" UP_MIN,
	    "{F}:6: [ca.legacy] crl: empty value; write the CRL file of this "
	    "CA, or remove the line to check no CRL for it (revocation "
	    "checking off)",
	    "{F}:7: [ca.legacy] retire_after: empty value; write the date "
	    "after which this CA admits no device, or remove the line to keep "
	    "the CA without one",
	    NULL);
}

/* Trust windows wide enough to weaken trust are warnings, at the line of
 * the key (docs/configuration.md, "Configuration that would weaken
 * trust"); 30 days exactly is not one. */
static void
test_trust_window_warnings(void **state)
{
	(void)state;
	expect_lines("[downstream]\ncert = gw.pem\nkey = gw.key\n"
	    "clock_skew = 30d1s\n"
	    "[ca.legacy]\nfile = ca-2019.pem\nretire_after = 2001-01-01\n"
	    "clock_skew = 30d\nexpired_grace = 31d\n"
	    "[ca.current]\nfile = ca-2026.pem\nretire_after = 2999-12-31\n"
	    "clock_skew = 1000d\nexpired_grace = 30d\n" UP_MIN,
	    "{F}:4: [downstream] clock_skew: warning: 30d1s is more than 30 "
	    "days: device certificates issued up to 30d1s in the future are "
	    "admitted; fix the clock of the machine that issues them and keep "
	    "this to minutes or hours",
	    "{F}:7: [ca.legacy] retire_after: warning: 2001-01-01T00:00:00Z is "
	    "in the past: every device of this CA is refused now "
	    "(reason=retired-ca); if that is a typo in the year, fix it",
	    "{F}:9: [ca.legacy] expired_grace: warning: 31d is more than 30 "
	    "days: device certificates that expired up to 31d ago are "
	    "admitted; renew the stranded certificates and keep this to the "
	    "days they need",
	    "{F}:13: [ca.current] clock_skew: warning: 1000d is more than 30 "
	    "days: device certificates issued up to 1000d in the future are "
	    "admitted; fix the clock of the machine that issues them and keep "
	    "this to minutes or hours",
	    NULL);
}

static void
test_paths(void **state)
{
	struct cfg *cfg;
	char text[512];

	(void)state;
	/* Absolute paths stay as written; relative ones are the file's. */
	(void)snprintf(text, sizeof(text), "[downstream]\ncert = %s/gw.pem\n"
	    "key = ./gw.key\n" CA_MIN UP_MIN, dir);
	cfg = load_ok(text);
	assert_string_equal(cfg->downstream.cert.path, in_dir("gw.pem"));
	assert_string_equal(cfg->downstream.key.path, in_dir("./gw.key"));
	cfg_free(cfg);
}

static void
test_comments_and_layout(void **state)
{
	struct cfg *cfg;

	(void)state;
	/* BOM, CRLF, comments of both kinds, an indented key (not a
	 * continuation: multiline is off), blank lines. */
	cfg = load_ok("\xEF\xBB\xBF# top\r\n; also a comment\r\n\r\n"
	    "[downstream] ; the device side\r\n"
	    "cert = gw.pem ; inline\r\n"
	    "    key = gw.key # inline too\r\n"
	    "ciphers = A;B#C\r\n"
	    "handshake_timeout = 3s\t# after a tab\r\n"
	    CA_MIN UP_MIN);
	assert_string_equal(cfg->downstream.key.path, in_dir("gw.key"));
	/* No blank before ';' or '#': part of the value. */
	assert_string_equal(cfg->downstream.ciphers, "A;B#C");
	assert_int_equal(cfg->downstream.handshake_timeout_ms, 3000);
	cfg_free(cfg);
}

static void
test_warning_only(void **state)
{
	struct cfg_diag diag = { 0 };
	struct cfg *cfg;
	char want[512];

	(void)state;
	write_file("t.ini", VALID "tls_versions = 1.0-1.3\n");
	cfg = cfg_load(ini, &diag);
	assert_non_null(cfg);
	assert_int_equal(diag.count, 1);
	assert_int_equal(diag.errors, 0);
	assert_false(diag.is_error[0]);
	expand("{F}:9: [upstream] tls_versions: warning: TLS 1.0 and 1.1 are "
	    "obsolete and weak; allow them only for devices that cannot do "
	    "TLS 1.2", want, sizeof(want));
	assert_string_equal(diag.lines[0], want);
	assert_int_equal(cfg->upstream.tls_min, 10);
	cfg_free(cfg);
	cfg_diag_free(&diag);
}

/* ------------------------------------------------------------ bad files */

static void
test_unknown_key_suggestion(void **state)
{
	(void)state;
	expect_lines(DS_MIN "handshake_timout = 10s\ncleint_auth = none\n"
	    "address = x:1\nfrobnicate = 1\n" CA_MIN UP_MIN,
	    "{F}:4: [downstream] handshake_timout: unknown key "
	    "\"handshake_timout\"; did you mean \"handshake_timeout\"?",
	    "{F}:5: [downstream] cleint_auth: unknown key \"cleint_auth\"; did "
	    "you mean \"client_auth\"?",
	    "{F}:6: [downstream] address: unknown key \"address\" here; it "
	    "belongs in [upstream]",
	    "{F}:7: [downstream] frobnicate: unknown key \"frobnicate\"; "
	    "expected one of: listen, cert, key, client_auth, tls_versions, "
	    "ciphers, clock_skew, handshake_timeout, session_tickets, "
	    "plain_listen, max_handshakes, max_handshakes_per_ip",
	    NULL);
}

static void
test_unknown_section(void **state)
{
	(void)state;
	expect_lines(VALID "[downstrem]\n[metrics]\nport = 1\n[CA.new]\n"
	    "[ca]\n[ca.bad name]\n[ca.this-name-is-far-too-long-for-a-ca-x]\n"
	    "[]\n",
	    "{F}:9: [downstrem]: unknown section; did you mean [downstream]?",
	    "{F}:10: [metrics]: unknown section; expected [gateway], "
	    "[downstream], [upstream], [mqtt] or [ca.NAME]",
	    "{F}:12: [CA.new]: unknown section; did you mean [ca.new]?",
	    "{F}:13: [ca]: a CA section needs a name, as in [ca.legacy]",
	    "{F}:14: [ca.bad name]: bad CA name \"bad name\"; use 1 to 32 "
	    "characters of A-Z a-z 0-9 _ -",
	    "{F}:15: [ca.this-name-is-far-too-long-for-a-ca-x]: bad CA name "
	    "\"this-name-is-far-too-long-for-a-ca-x\"; use 1 to 32 characters "
	    "of A-Z a-z 0-9 _ -",
	    "{F}:16: []: empty section name; expected [gateway], [downstream], "
	    "[upstream], [mqtt] or [ca.NAME]",
	    NULL);
}

static void
test_duplicates(void **state)
{
	(void)state;
	expect_lines(DS_MIN "key = gw.key\n" CA_MIN UP_MIN
	    "[downstream]\ncert = gw.pem\nclock_skew = 1m\n" CA_MIN,
	    "{F}:4: [downstream] key: duplicate key; already set at line 3 "
	    "(remove one)",
	    "{F}:10: [downstream]: duplicate section; first at line 1 (merge "
	    "the two)",
	    "{F}:11: [downstream] cert: duplicate key; already set at line 2 "
	    "(remove one)",
	    "{F}:13: [ca.legacy]: duplicate section; first at line 5 (merge "
	    "the two)",
	    "{F}:14: [ca.legacy] file: duplicate key; already set at line 6 "
	    "(remove one)",
	    NULL);
}

static void
test_missing_required(void **state)
{
	(void)state;
	/* In a present section: at its header; section absent: line 1. */
	expect_lines("# no upstream\n" CA_MIN "[downstream]\nkey = gw.key\n"
	    "[ca.current]\n",
	    "{F}:1: [upstream] address: required key is missing",
	    "{F}:1: [upstream] ca: required key is missing",
	    "{F}:4: [downstream] cert: required key is missing",
	    "{F}:6: [ca.current] file: required key is missing",
	    NULL);
	expect_lines(CA_MIN "[downstream]\ncert =\nkey = gw.key\n"
	    "[upstream]\naddress =\nca = up-ca.pem\n",
	    "{F}:4: [downstream] cert: required key is empty; expected a file",
	    "{F}:7: [upstream] address: required key is empty; expected a "
	    "host:port",
	    NULL);
}

static void
test_missing_file(void **state)
{
	(void)state;
	expect_lines("[downstream]\ncert = nope.pem\nkey = /nonexistent/gw.key\n"
	    "[ca.legacy]\nfile = devices\ncrl = gw.pem/x\n"
	    UP_MIN "device_certs = gw.pem\n"
	    "[gateway]\nstate_file = no/such/folder/state\n",
	    "{F}:2: [downstream] cert: file \"{D}/nope.pem\" does not exist",
	    "{F}:3: [downstream] key: file \"/nonexistent/gw.key\" does not "
	    "exist",
	    "{F}:5: [ca.legacy] file: \"{D}/devices\" is a folder; expected a "
	    "file",
	    "{F}:6: [ca.legacy] crl: file \"{D}/gw.pem/x\" does not exist",
	    "{F}:10: [upstream] device_certs: \"{D}/gw.pem\" is not a folder",
	    NULL);
	expect_lines(DS_MIN CA_MIN UP_MIN "device_certs = nodir\n",
	    "{F}:9: [upstream] device_certs: folder \"{D}/nodir\" does not "
	    "exist",
	    NULL);
}

static void
test_bad_duration(void **state)
{
	(void)state;
	expect_lines(DS_MIN "handshake_timeout = 10\nclock_skew = 5min\n"
	    "[ca.legacy]\nfile = ca-2019.pem\nexpired_grace = -1d\n"
	    "clock_skew = 1.5h\n"
	    UP_MIN "connect_timeout = 0\n"
	    "[gateway]\nshutdown_grace = 3651d\n",
	    "{F}:4: [downstream] handshake_timeout: bad duration \"10\": "
	    "missing unit; write 10s (or 10ms, 10m, 10h, 10d)",
	    "{F}:5: [downstream] clock_skew: bad duration \"5min\": unknown "
	    "unit \"min\"; use ms, s, m, h or d (lower case)",
	    "{F}:8: [ca.legacy] expired_grace: bad duration \"-1d\": must not "
	    "be negative; expected a duration such as 500ms, 10s, 5m, 2h or 7d",
	    "{F}:9: [ca.legacy] clock_skew: bad duration \"1.5h\": fractions "
	    "are not allowed; use a smaller unit (1500ms, not 1.5s)",
	    "{F}:13: [upstream] connect_timeout: bad duration \"0\": must be "
	    "more than 0; expected a duration such as 10s",
	    "{F}:15: [gateway] shutdown_grace: bad duration \"3651d\": too "
	    "long; at most 3650d",
	    NULL);
}

static void
test_bad_date(void **state)
{
	(void)state;
	expect_lines(DS_MIN "[ca.legacy]\nfile = ca-2019.pem\n"
	    "retire_after = 2027-02-29\n"
	    "[ca.current]\nfile = ca-2026.pem\n"
	    "retire_after = 2027-06-30T12:00:00+02:00\n" UP_MIN,
	    "{F}:6: [ca.legacy] retire_after: bad date \"2027-02-29\": day 29 "
	    "does not exist in 2027-02 (it has 28 days)",
	    "{F}:9: [ca.current] retire_after: bad date "
	    "\"2027-06-30T12:00:00+02:00\": only UTC is accepted: end the time "
	    "with \"Z\", as in 2027-06-30T12:00:00Z",
	    NULL);
}

static void
test_bad_values(void **state)
{
	(void)state;
	expect_lines("[gateway]\nlog_level = INFO\nmax_connections = 1000001\n"
	    "user = ro#ot # the admin\nadmin_listen = localhost\n"
	    DS_MIN "listen = 0.0.0.0:8883,,[::]:8883\nsession_tickets = maybe\n"
	    "tls_versions = 1.3-1.2\nplain_listen = [::1:1883\n"
	    CA_MIN UP_MIN "alpn = a b\nconnect_rate = 0\nsni = bad/name\n"
	    "session_resumption = perhaps\n[mqtt]\nidentity = san_dns\nmax_packet_size = 1G\n"
	    "clientid =\n",
	    "{F}:2: [gateway] log_level: bad value \"INFO\": write it in lower "
	    "case; expected one of: error, warn, info, debug",
	    "{F}:3: [gateway] max_connections: bad number \"1000001\": out of "
	    "range; expected a whole number from 1 to 1000000",
	    "{F}:4: [gateway] user: bad user name \"ro#ot\": "
	    "expected a user name of at most 32 letters, digits, \".\", \"_\" "
	    "or \"-\"",
	    "{F}:5: [gateway] admin_listen: bad address \"localhost\": missing "
	    "the port; expected host:port, as in 0.0.0.0:8883, [::]:8883 or "
	    "broker.example.com:8883",
	    "{F}:9: [downstream] listen: bad address "
	    "\"0.0.0.0:8883,,[::]:8883\": empty item (stray comma?); expected "
	    "host:port items separated by commas",
	    "{F}:10: [downstream] session_tickets: bad value \"maybe\": "
	    "expected yes or no (or true/false, on/off, 1/0)",
	    "{F}:11: [downstream] tls_versions: bad TLS versions \"1.3-1.2\": "
	    "write the lowest version first, as in 1.2-1.3",
	    "{F}:12: [downstream] plain_listen: bad address \"[::1:1883\": "
	    "missing \"]\" after the IPv6 address; expected [address]:port, as "
	    "in [::1]:8883",
	    "{F}:18: [upstream] alpn: bad protocol list \"a b\": a protocol "
	    "name holds a space or a control character; separate names with "
	    "commas",
	    "{F}:19: [upstream] connect_rate: bad number \"0\": out of range; "
	    "expected a whole number from 1 to 100000",
	    "{F}:20: [upstream] sni: bad server name \"bad/name\": expected a "
	    "DNS name such as broker.example.com",
	    "{F}:21: [upstream] session_resumption: bad value \"perhaps\": "
	    "expected yes or no (or true/false, on/off, 1/0)",
	    "{F}:23: [mqtt] identity: bad value \"san_dns\": expected one of: "
	    "cn, san-dns, san-uri, none",
	    "{F}:24: [mqtt] max_packet_size: bad size \"1G\": too large; at "
	    "most 268435460 bytes",
	    "{F}:25: [mqtt] clientid: empty value; expected one of: keep, "
	    "check, rewrite (remove the line to use the default, check)",
	    NULL);
}

static void
test_cert_without_key(void **state)
{
	(void)state;
	expect_lines(DS_MIN CA_MIN UP_MIN "cert = up.pem\n",
	    "{F}:9: [upstream] cert: cert is set but key is missing; set both "
	    "or neither",
	    NULL);
	expect_lines(DS_MIN CA_MIN UP_MIN "key = up.key\ncert =\n",
	    "{F}:9: [upstream] key: key is set but cert is missing; set both "
	    "or neither",
	    NULL);
}

static void
test_client_auth_without_ca(void **state)
{
	(void)state;
	expect_lines("# no CA\n" DS_MIN UP_MIN,
	    "{F}:2: [downstream] client_auth: client_auth = required (the "
	    "default) needs at least one [ca.NAME] section with the CA that "
	    "issues the device certificates (or client_auth = none)",
	    NULL);
	expect_lines(DS_MIN "client_auth = optional\n" UP_MIN,
	    "{F}:4: [downstream] client_auth: client_auth = optional needs at "
	    "least one [ca.NAME] section with the CA that issues the device "
	    "certificates (or client_auth = none)",
	    NULL);
}

static void
test_identity_rules(void **state)
{
	struct cfg *cfg;

	(void)state;
	expect_lines(VALID "[mqtt]\nidentity = none\nusername = identity\n",
	    "{F}:10: [mqtt] identity: identity = none, but clientid = check "
	    "(the default) needs an identity; set clientid = keep",
	    "{F}:11: [mqtt] username: username = identity needs a device "
	    "identity, but identity = none (line 10); set username = keep or "
	    "drop",
	    NULL);
	expect_lines(VALID "[mqtt]\nclientid = rewrite\nidentity = none\n",
	    "{F}:10: [mqtt] clientid: clientid = rewrite needs a device "
	    "identity, but identity = none (line 11); set clientid = keep",
	    NULL);
	expect_lines(DS_MIN "client_auth = none\n" UP_MIN,
	    "{F}:4: [downstream] client_auth: client_auth = none gives no "
	    "device certificate, but [mqtt] identity = cn (the default) needs "
	    "one; set [mqtt] identity = none",
	    NULL);
	expect_lines(DS_MIN "client_auth = none\n" UP_MIN
	    "[mqtt]\nidentity = san-uri\nclientid = keep\n",
	    "{F}:9: [mqtt] identity: identity = san-uri needs a device "
	    "certificate, but [downstream] client_auth = none (line 4); set "
	    "identity = none or client_auth = required",
	    NULL);
	/* The consistent anonymous setup loads. */
	cfg = load_ok(DS_MIN "client_auth = none\n" UP_MIN
	    "[mqtt]\nidentity = none\nclientid = keep\n");
	assert_int_equal(cfg->mqtt.identity, CFG_IDENTITY_NONE);
	cfg_free(cfg);
}

static void
test_listen_overlap(void **state)
{
	(void)state;
	expect_lines("[gateway]\nadmin_listen = 0.0.0.0:8883\n" DS_MIN
	    "plain_listen = 0.0.0.0:1883, 0.0.0.0:8883\n" CA_MIN UP_MIN
	    "[downstream]\nlisten = 1.2.3.4:1, 1.2.3.4:01\n",
	    "{F}:2: [gateway] admin_listen: 0.0.0.0:8883 is also a "
	    "[downstream] listen address; use another port",
	    "{F}:6: [downstream] plain_listen: 0.0.0.0:8883 is also in listen "
	    "(the default); use another port",
	    "{F}:12: [downstream]: duplicate section; first at line 3 (merge "
	    "the two)",
	    "{F}:13: [downstream] listen: bad address \"1.2.3.4:1, "
	    "1.2.3.4:01\": an address is listed twice",
	    NULL);
}

static void
test_syntax_errors(void **state)
{
	(void)state;
	expect_lines(DS_MIN "listen 0.0.0.0:8883\nclient_auth\n"
	    "clock_skew: 5m\n= 5m\n  continued\n"
	    "[ca.legacy\nfile = nope\n" CA_MIN "[upstream] address = x:1\n"
	    "address = broker.example.com:8883\nca = up-ca.pem\n",
	    "{F}:4: syntax error: expected key = value or [section]",
	    "{F}:5: syntax error: expected key = value or [section]",
	    "{F}:6: syntax error: expected key = value; \":\" does not "
	    "separate a key from its value",
	    "{F}:7: syntax error: missing the key name before \"=\"",
	    "{F}:8: syntax error: expected key = value or [section] (a value "
	    "cannot continue on an indented line)",
	    "{F}:9: syntax error: the section header \"[ca.legacy\" has no "
	    "closing \"]\"; write [ca.legacy]",
	    "{F}:13: syntax error: unexpected text after [upstream]; put each "
	    "key on its own line",
	    NULL);
	/* A list continued on the next line is one error, not a section
	 * "[::]" plus its fallout; a key named on a broken line is not also
	 * "missing". */
	expect_lines("[downstream]\ncert = gw.pem\nkey gw.key\n"
	    "listen = 0.0.0.0:8883,\n    [::]:8883\n"
	    "plain_listen = 127.0.0.1:1,\n\n  127.0.0.1:2\n"
	    CA_MIN "[upstream] address = x:1\nca = up-ca.pem\n",
	    "{F}:3: syntax error: expected key = value or [section]",
	    "{F}:4: [downstream] listen: bad address \"0.0.0.0:8883,\": empty "
	    "item (stray comma?); expected host:port items separated by commas",
	    "{F}:5: syntax error: a value cannot continue on the next line; "
	    "write the whole list on one line",
	    "{F}:6: [downstream] plain_listen: bad address \"127.0.0.1:1,\": "
	    "empty item (stray comma?); expected host:port items separated by "
	    "commas",
	    "{F}:8: syntax error: a value cannot continue on the next line; "
	    "write the whole list on one line",
	    "{F}:11: syntax error: unexpected text after [upstream]; put each "
	    "key on its own line",
	    NULL);
}

static void
test_key_outside_section(void **state)
{
	(void)state;
	expect_lines("cert = gw.pem\nfile = x\nbogus = 1\n" VALID,
	    "{F}:1: cert: key before the first [section]; it belongs in "
	    "[downstream] or [upstream]",
	    "{F}:2: file: key before the first [section]; it belongs in "
	    "[ca.NAME]",
	    "{F}:3: bogus: unknown key before the first [section]",
	    NULL);
}

static void
test_long_line_and_nul(void **state)
{
	static const char nul_file[] = "[gateway]\nuser = a\0b\n" VALID
	    "y = 1\n";
	char text[8192];
	struct cfg_diag diag = { 0 };
	char want[256];
	size_t n;
	FILE *f;

	(void)state;
	/* A line longer than inih's buffer is reported, and the lines after
	 * it keep their numbers. */
	n = (size_t)snprintf(text, sizeof(text), "[gateway]\nuser = ");
	memset(text + n, 'a', 5000);
	(void)snprintf(text + n + 5000, sizeof(text) - n - 5000,
	    "\n" VALID "bogus = 1\n");
	expect_lines(text,
	    "{F}:2: syntax error: line is longer than 4093 characters",
	    "{F}:11: [upstream] bogus: unknown key \"bogus\"; expected one of: "
	    "address, sni, ca, cert, key, device_certs, alpn, tls_versions, "
	    "connect_timeout, connect_rate, "
	    "session_resumption",
	    NULL);
	/* A 4093-character line is fine. */
	n = (size_t)snprintf(text, sizeof(text), DS_MIN "ciphers = ");
	memset(text + n, 'c', 4093 - 10);
	(void)snprintf(text + n + 4083, sizeof(text) - n - 4083,
	    "\n" CA_MIN UP_MIN "x = 1\n");
	expect_lines(text, "{F}:10: [upstream] x: unknown key \"x\"; expected "
	    "one of: address, sni, ca, cert, key, device_certs, alpn, "
	    "tls_versions, connect_timeout, connect_rate, "
	    "session_resumption",
	    NULL);
	/* A NUL byte (write_file stops at NUL, so write by hand). */
	f = fopen(ini, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(nul_file, 1, sizeof(nul_file) - 1, f),
	    sizeof(nul_file) - 1);
	assert_int_equal(fclose(f), 0);
	assert_null(cfg_load(ini, &diag));
	assert_int_equal(diag.count, 2);
	expand("{F}:2: syntax error: NUL byte; is this a text file?", want,
	    sizeof(want));
	assert_string_equal(diag.lines[0], want);
	expand("{F}:11: [upstream] y: unknown key \"y\"; expected one of: "
	    "address, sni, ca, cert, key, device_certs, alpn, tls_versions, "
	    "connect_timeout, connect_rate, "
	    "session_resumption", want, sizeof(want));
	assert_string_equal(diag.lines[1], want);
	cfg_diag_free(&diag);
}

static void
test_unreadable_config(void **state)
{
	struct cfg_diag diag = { 0 };
	char want[256];

	(void)state;
	assert_null(cfg_load(in_dir("missing.ini"), &diag));
	assert_int_equal(diag.count, 1);
	assert_int_equal(diag.errors, 1);
	expand("{D}/missing.ini: cannot open the configuration file: No such "
	    "file or directory", want, sizeof(want));
	assert_string_equal(diag.lines[0], want);
	cfg_diag_free(&diag);
	assert_null(cfg_load(dir, &diag));
	expand("{D}: is a folder; expected the configuration file", want,
	    sizeof(want));
	assert_string_equal(diag.lines[0], want);
	cfg_diag_free(&diag);
}

static void
test_multiple_errors(void **state)
{
	(void)state;
	/* Every problem at once, in file order, whatever pass found it. */
	expect_lines("[gateway]\n"
	    "log_level = loud\n"
	    "[downstream]\n"
	    "cert = gw.pem\n"
	    "handshake_timeout = 10x\n"
	    "tls_versions = 1.1-1.3\n"
	    "bogus\n"
	    "[upstrem]\n"
	    "address = x:1\n"
	    "[mqtt]\n"
	    "max_packet_size = 8\n"
	    "max_packet_size = 1M\n",
	    "{F}:1: [upstream] address: required key is missing",
	    "{F}:1: [upstream] ca: required key is missing",
	    "{F}:2: [gateway] log_level: bad value \"loud\": expected one of: "
	    "error, warn, info, debug",
	    "{F}:3: [downstream] key: required key is missing",
	    "{F}:3: [downstream] client_auth: client_auth = required (the "
	    "default) needs at least one [ca.NAME] section with the CA that "
	    "issues the device certificates (or client_auth = none)",
	    "{F}:5: [downstream] handshake_timeout: bad duration \"10x\": "
	    "unknown unit \"x\"; use ms, s, m, h or d (lower case)",
	    "{F}:6: [downstream] tls_versions: warning: TLS 1.1 is obsolete "
	    "and weak; allow it only for devices that cannot do TLS 1.2",
	    "{F}:7: syntax error: expected key = value or [section]",
	    "{F}:8: [upstrem]: unknown section; did you mean [upstream]?",
	    "{F}:11: [mqtt] max_packet_size: bad size \"8\": too small; at "
	    "least 16 bytes",
	    "{F}:12: [mqtt] max_packet_size: duplicate key; already set at "
	    "line 11 (remove one)",
	    NULL);
}

static void
test_diag_add(void **state)
{
	struct cfg_diag diag = { 0 };

	(void)state;
	cfg_diag_add(&diag, false, "%s:%d: [x] y: warning: %s", "f", 3, "w");
	cfg_diag_add(&diag, true, "%s", "e");
	assert_int_equal(diag.count, 2);
	assert_int_equal(diag.errors, 1);
	assert_string_equal(diag.lines[0], "f:3: [x] y: warning: w");
	assert_false(diag.is_error[0]);
	assert_true(diag.is_error[1]);
	cfg_diag_free(&diag);
	assert_int_equal(diag.count, 0);
	assert_null(diag.lines);
	cfg_diag_free(&diag);
	cfg_diag_free(NULL);
	cfg_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_empty_means_off),
		cmocka_unit_test(test_empty_trust_keys_refused),
		cmocka_unit_test(test_trust_window_warnings),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_comments_and_layout),
		cmocka_unit_test(test_warning_only),
		cmocka_unit_test(test_unknown_key_suggestion),
		cmocka_unit_test(test_unknown_section),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_missing_required),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_bad_duration),
		cmocka_unit_test(test_bad_date),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_cert_without_key),
		cmocka_unit_test(test_client_auth_without_ca),
		cmocka_unit_test(test_identity_rules),
		cmocka_unit_test(test_listen_overlap),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_key_outside_section),
		cmocka_unit_test(test_long_line_and_nul),
		cmocka_unit_test(test_unreadable_config),
		cmocka_unit_test(test_multiple_errors),
		cmocka_unit_test(test_diag_add),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
