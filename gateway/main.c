/*
 * main.c - the command line of certbridge (docs/install.md, "The command
 * line").
 *
 *   certbridge -c FILE       run in the foreground until SIGTERM/SIGINT
 *   certbridge -t -c FILE    check the configuration and every file it names
 *   certbridge -V | -h
 *
 * Exit codes: 0 clean stop, 1 configuration error, 2 usage, 3 runtime
 * failure at start (cannot bind, cannot drop privileges).
 */
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "gen.h"
#include "server.h"
#include "tlsctx.h"
#include "version.h"

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: certbridge -c FILE        run in the foreground\n"
	    "       certbridge -t -c FILE     check FILE and every file it "
	    "names, then exit\n"
	    "       certbridge -V             print the version\n"
	    "       certbridge -h             this help\n");
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
	if (rc == SERVER_EXIT_OK) {
		printf("%s: configuration OK%s\n", path, diag.count
		    ? " (with warnings)" : "");
	}
	gen_unref(g);
	cfg_diag_free(&diag);
	tlsctx_global_cleanup();
	return rc;
}

int
main(int argc, char **argv)
{
	const char *config = NULL;
	bool test_only = false;
	struct server *srv;
	int opt, rc;

	while ((opt = getopt(argc, argv, "c:tVh")) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 't':
			test_only = true;
			break;
		case 'V':
			printf("certbridge %s\n", CERTBRIDGE_VERSION);
			return SERVER_EXIT_OK;
		case 'h':
			usage(stdout);
			return SERVER_EXIT_OK;
		default:
			usage(stderr);
			return SERVER_EXIT_USAGE;
		}
	}
	if (config == NULL || optind != argc) {
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
