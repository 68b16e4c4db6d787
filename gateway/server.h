/*
 * server.h - the process: one event loop, the current configuration
 * generation, the listeners, the upstream queue and the set of sessions.
 *
 * Signals arrive as libevent events on the same loop: SIGHUP reloads,
 * SIGTERM/SIGINT drain for [gateway] shutdown_grace and stop.
 */
#ifndef CB_SERVER_H
#define CB_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

struct server;
struct session;
struct gen;
struct upstream;
struct listener_set;
struct admit;

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

struct event_base *server_base(struct server *srv);
struct gen *server_gen(struct server *srv);
struct upstream *server_upstream(struct server *srv);
struct sightings *server_sightings(struct server *srv);
struct watch *server_watch(struct server *srv);
struct metrics *server_metrics(struct server *srv);
struct admit *server_admission(struct server *srv);
const struct listener_set *server_listeners(struct server *srv);
int64_t server_started_at(struct server *srv);
/* Whether the device listeners are bound and a configuration loaded. */
bool server_listening(struct server *srv);

/* Session registry, for drain at stop and for counting. The list itself
 * is linked by session.c; the server only stores it. */
struct session_list *server_sessions(struct server *srv);
uint64_t server_session_added(struct server *srv);
/* Called while s is still in the list, just before it leaves it. */
void server_session_removed(struct server *srv, struct session *s);
size_t server_session_count(const struct server *srv);

#endif
