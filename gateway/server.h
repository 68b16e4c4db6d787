/*
 * server.h - the process: it owns the event loop, the runtime record the
 * other parts read (runtime.h: the generation in force, the upstream
 * queue, the sessions' registry, the counters), the listeners and the
 * admin endpoint.
 *
 * Signals arrive as libevent events on the same loop: SIGHUP reloads,
 * SIGTERM/SIGINT drain for [gateway] shutdown_grace and stop.
 */
#ifndef CB_SERVER_H
#define CB_SERVER_H

struct server;

/* Exit codes of the daemon (docs/install.md, "The command line"). */
enum server_exit {
	SERVER_EXIT_OK = 0,
	SERVER_EXIT_CONFIG = 1,
	SERVER_EXIT_USAGE = 2,
	SERVER_EXIT_RUNTIME = 3,
};

/* Loads the configuration, binds, and returns a server ready to run, or
 * NULL with *exit_code set (problems already printed/logged). */
struct server *server_new(const char *config_path, int *exit_code);

/* Runs until stopped; returns the exit code. */
int server_run(struct server *srv);
void server_free(struct server *srv);

#endif
