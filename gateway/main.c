/*
 * main.c - the command line of certbridge (docs/install.md, "The command
 * line").
 *
 *   certbridge -c FILE       run in the foreground until SIGTERM/SIGINT
 *   certbridge -t -c FILE    check the configuration and every file it names
 *   certbridge -V | --version, -h | --help
 *
 * Exit codes: 0 clean stop, 1 configuration error, 2 usage, 3 runtime
 * failure at start (cannot bind, cannot drop privileges).
 */
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "gen.h"
#include "server.h"
#include "testsum.h"
#include "tlsctx.h"
#include "version.h"

/* Where `make install` puts the documentation by default. */
#define CERTBRIDGE_DOCDIR "/usr/local/share/doc/certbridge"

/* The documentation next to this binary: PREFIX/bin/certbridge has it in
 * PREFIX/share/doc/certbridge whatever PREFIX was; a binary elsewhere (the
 * build tree) names the default. */
static void
docdir(char *out, size_t cap)
{
	char exe[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	snprintf(out, cap, "%s", CERTBRIDGE_DOCDIR);
	if (n <= 0) {
		return;
	}
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash == NULL || slash - exe < 4 || strncmp(slash - 4, "/bin", 4)
	    != 0) {
		return;
	}
	slash[-4] = '\0';
	if (snprintf(out, cap, "%s/share/doc/certbridge", exe) >= (int)cap
	    || access(out, R_OK) != 0) {
		snprintf(out, cap, "%s", CERTBRIDGE_DOCDIR);
	}
}

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: certbridge -c FILE          run in the foreground\n"
	    "       certbridge -t -c FILE       check FILE and every file it "
	    "names, then exit\n"
	    "       certbridge -V | --version   print the version\n"
	    "       certbridge -h | --help      the options, signals and exit "
	    "codes\n");
}

static void
help(void)
{
	char docs[PATH_MAX];

	docdir(docs, sizeof(docs));
	usage(stdout);
	printf("\n"
	    "certbridge terminates the TLS of MQTT devices, checks their "
	    "certificates\n"
	    "against every [ca.NAME] of the configuration, and carries each "
	    "session to\n"
	    "the broker over a TLS connection of its own.\n"
	    "\n"
	    "options:\n"
	    "  -c, --config FILE  the INI file (installed example: "
	    "/etc/certbridge/certbridge.ini)\n"
	    "  -t, --test         check the configuration and every "
	    "certificate, key and CRL\n"
	    "                     it names; one problem per line as FILE:LINE: "
	    "[section] key: ...,\n"
	    "                     then a summary line\n"
	    "  -V, --version      print the version (--version also the "
	    "libraries')\n"
	    "  -h, --help         this help\n"
	    "\n"
	    "signals:\n"
	    "  SIGHUP             reload the configuration and every "
	    "certificate file;\n"
	    "                     established sessions stay, new ones use the "
	    "new settings\n"
	    "  SIGTERM, SIGINT    stop accepting, let sessions end within "
	    "[gateway] shutdown_grace,\n"
	    "                     then close the rest and exit 0\n"
	    "\n"
	    "exit codes:\n"
	    "  0  clean stop; with -t: the configuration is valid (warnings "
	    "allowed)\n"
	    "  1  configuration error (at start, or found by -t)\n"
	    "  2  usage error (this text on stderr)\n"
	    "  3  runtime failure at start: cannot bind a listener, cannot "
	    "drop privileges\n"
	    "\n"
	    "documentation: %s\n"
	    "  install.md (systemd, container), configuration.md, rotation.md "
	    "(a CA step by step),\n"
	    "  troubleshooting.md (every event= and reason=), metrics.md\n",
	    docs);
}

static void
version(bool libraries)
{
	printf("certbridge %s\n", CERTBRIDGE_VERSION);
	if (!libraries) {
		return;
	}
#ifdef WOLFSSL_HAVE_FREE_PEER_CERT
	printf("wolfSSL %s (static, the project's own build: "
	    "tools/wolfssl-build.sh)\n", wolfSSL_lib_version());
#else
	printf("wolfSSL %s (shared library)\n", wolfSSL_lib_version());
#endif
	printf("libevent %s\n", event_get_version());
}

/* The verdict line on stdout (problems went to stderr: a script reads
 * either alone). Where the generation failed past the INI, the INI is read
 * again for what it names, so the line still counts certificates and CAs
 * (U2). */
static void
check_summary(const char *path, const struct gen *g, size_t errors,
    size_t warnings)
{
	struct cfg_diag scratch = {0};
	struct cfg *cfg = NULL;
	struct certinv inv;
	bool have_inv = false;
	char line[512];

	if (g == NULL) {
		cfg = cfg_load(path, &scratch);
		have_inv = cfg != NULL && certinv_build(cfg, &inv);
	}
	if (g != NULL) {
		testsum_line(path, g->cfg, &g->inv, errors, warnings, line,
		    sizeof(line));
	} else {
		testsum_line(path, have_inv ? cfg : NULL, have_inv ? &inv
		    : NULL, errors, warnings, line, sizeof(line));
	}
	printf("%s\n", line);
	if (have_inv) {
		certinv_free(&inv);
	}
	cfg_free(cfg);
	cfg_diag_free(&scratch);
}

/* -t: one problem per line on stderr, exit 0 when there is no error
 * (warnings alone still pass). */
static int
check_config(const char *path)
{
	struct cfg_diag diag = {0};
	struct gen *g;
	int rc;

	if (!tlsctx_global_init()) {
		fprintf(stderr, "certbridge: wolfSSL failed to initialise\n");
		return SERVER_EXIT_RUNTIME;
	}
	g = gen_load(path, 1, &diag);
	/* The daemon finds an unknown user only when it drops privileges
	 * (exit 3); -t says so now. */
	if (g != NULL && g->cfg->gateway.user != NULL
	    && getpwnam(g->cfg->gateway.user) == NULL) {
		cfg_diag_add(&diag, true, "%s:%u: [gateway] user: no such user "
		    "\"%s\"; certbridge would not start (exit 3): create the "
		    "user, or fix the name", path, g->cfg->gateway.user_line,
		    g->cfg->gateway.user);
		cfg_diag_sort(&diag, path);
	}
	for (size_t i = 0; i < diag.count; i++) {
		fprintf(stderr, "%s\n", diag.lines[i]);
	}
	rc = g != NULL && diag.errors == 0 ? SERVER_EXIT_OK : SERVER_EXIT_CONFIG;
	check_summary(path, g, diag.errors, diag.count - diag.errors);
	gen_unref(g);
	cfg_diag_free(&diag);
	tlsctx_global_cleanup();
	return rc;
}

int
main(int argc, char **argv)
{
	const char *config = NULL;
	bool test_only = false, bad = false;
	int want_version = 0; /* 1 -V, 2 --version (the libraries too) */
	bool want_help = false;
	struct server *srv;
	int opt, rc;

	static const struct option longs[] = {
		{"config", required_argument, NULL, 'c'},
		{"test", no_argument, NULL, 't'},
		{"version", no_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};

	/* Every option is read before any is acted on: a typo anywhere on
	 * the line is a usage error, never ignored behind a -V. */
	while ((opt = getopt_long(argc, argv, "c:tVh", longs, NULL)) != -1) {
		switch (opt) {
		case 'c':
			if (config != NULL) {
				fprintf(stderr, "certbridge: -c given twice\n");
				bad = true;
			}
			config = optarg;
			break;
		case 't':
			test_only = true;
			break;
		case 'V':
			want_version = want_version > 1 ? want_version : 1;
			break;
		case 'L':
			want_version = 2;
			break;
		case 'h':
			want_help = true;
			break;
		default:
			bad = true;
			break;
		}
	}
	if (bad || optind != argc) {
		usage(stderr);
		return SERVER_EXIT_USAGE;
	}
	if (want_help) {
		help();
		return SERVER_EXIT_OK;
	}
	if (want_version > 0) {
		version(want_version == 2);
		return SERVER_EXIT_OK;
	}
	if (config == NULL) {
		usage(stderr);
		return SERVER_EXIT_USAGE;
	}
	if (test_only) {
		return check_config(config);
	}
	srv = server_new(config, &rc);
	if (srv == NULL) {
		return rc;
	}
	rc = server_run(srv);
	server_free(srv);
	return rc;
}
