/*
 * server.c - startup, signals, reload and shutdown (see server.h).
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "clock.h"
#include "admin.h"
#include "admit.h"
#include "gen.h"
#include "listener.h"
#include "metrics.h"
#include "notify.h"
#include "parse.h"
#include "refusals.h"
#include "registry.h"
#include "rejudge.h"
#include "runtime.h"
#include "log.h"
#include "server.h"
#include "session.h"
#include "sightings.h"
#include "tlsctx.h"
#include "trust.h"
#include "upstream.h"
#include "version.h"
#include "watch.h"

/* How often device sightings are written to [gateway] state_file when
 * they changed. */
#define SERVER_STATE_SAVE_S 60

struct server {
	char *config_path;
	/* What the parts share (runtime.h): the loop, the generation in
	 * force, the services. The server alone writes it. */
	struct runtime rt;
	struct evdns_base *dns;
	struct listener_set *listeners;
	struct event *sig_hup, *sig_term, *sig_int;
	struct event *grace_timer;
	struct event *state_timer;
	struct admin *admin;
	struct notify *notify;     /* systemd, when it asked (notify.h) */
	uint64_t generation;
	bool stopping;
};

/* (Re)binds the admin endpoint when its address changed; a failure keeps
 * the old one (or none) and is logged, never fatal for devices. */
/* Binds [gateway] admin_listen. At start a failure stops certbridge
 * (exit 3, as for a device listener: a port held by another process,
 * often a certbridge still running, is found at once); at a reload it
 * leaves the endpoint off and the devices served. */
static bool
server_admin(struct server *srv, const struct cfg *cfg, bool at_start)
{
	const char *want = cfg->gateway.admin_listen;
	struct admin *next;
	char why[320];

	if (srv->admin != NULL && want != NULL
	    && strcmp(admin_address(srv->admin), want) == 0) {
		return true;
	}
	admin_free(srv->admin);
	srv->admin = NULL;
	if (want == NULL) {
		return true;
	}
	next = admin_new(&srv->rt, want, why, sizeof(why));
	if (next == NULL && at_start) {
		log_msg(LOG_ERROR, "admin-failed", "%s; choose a free port for "
		    "[gateway] admin_listen (make run: ADMIN_PORT=), or leave "
		    "it empty to run without the admin endpoint", why);
		return false;
	}
	if (next == NULL) {
		log_msg(LOG_ERROR, "admin-failed", "%s; the admin endpoint is "
		    "off, devices are not affected", why);
		return false;
	}
	srv->admin = next;
	log_msg(LOG_INFO, "admin-listening", "http://%s/ (/healthz, /metrics, "
	    "/status)", want);
	return true;
}

/* The last session ended: after a SIGTERM, that is the end. */
static void
server_sessions_gone(void *arg)
{
	struct server *srv = arg;

	if (srv->stopping) {
		event_base_loopbreak(srv->rt.base);
	}
}

static void
server_print_diag(const struct cfg_diag *diag)
{
	for (size_t i = 0; i < diag->count; i++) {
		fprintf(stderr, "%s\n", diag->lines[i]);
	}
}

/* Logs load problems one per line, for a reload whose stderr nobody
 * watches. */
static void
server_log_diag(const struct cfg_diag *diag, const char *event)
{
	for (size_t i = 0; i < diag->count; i++) {
		struct log_line l;

		if (log_begin(&l, diag->is_error[i] ? LOG_ERROR : LOG_WARN,
		    event)) {
			log_str(&l, "problem", diag->lines[i]);
			log_end(&l);
		}
	}
}

static bool
server_admit(void *arg, const struct sockaddr *peer, const char *listener)
{
	struct server *srv = arg;
	struct hslimit_key key;

	if (srv->stopping) {
		return false;
	}
	/* The slot taken here is the session's from session_start on. */
	return admit_accept(srv->rt.admit, srv->rt.gen->cfg,
	    registry_count(srv->rt.sessions), peer, listener, &key);
}

static void
server_accept(void *arg, int fd, const struct sockaddr *peer, int peer_len,
    bool tls)
{
	struct server *srv = arg;

	(void)peer_len;
	session_start(&srv->rt, fd, peer, tls);
}

static void
server_log_listeners(const struct listener_set *set)
{
	for (size_t i = 0; i < listener_set_count(set); i++) {
		struct listener *l = listener_set_at(set, i);
		struct log_line line;

		if (log_begin(&line, LOG_INFO, "listening")) {
			log_str(&line, "addr", listener_name(l));
			log_str(&line, "tls", listener_tls(l) ? "yes" : "no");
			log_end(&line);
		}
	}
}

/* Binds the listeners of cfg, taking over the current ones that match. */
static bool
server_bind(struct server *srv, const struct cfg *cfg)
{
	struct listener_set *next;
	char why[320];

	next = listener_set_bind(srv->rt.base, &cfg->downstream.listen,
	    &cfg->downstream.plain_listen, srv->listeners, server_accept,
	    server_admit, srv, why, sizeof(why));
	if (next == NULL) {
		log_msg(LOG_ERROR, "listen-failed", "%s%s", why,
		    srv->listeners != NULL ? "; if the new address overlaps "
		    "one being removed (0.0.0.0 and a specific address on the "
		    "same port), restart certbridge to move" : "");
		return false;
	}
	listener_set_free(srv->listeners);
	srv->listeners = next;
	srv->rt.listeners = next;
	server_log_listeners(next);
	return true;
}

static void
server_unbind(struct server *srv)
{
	srv->rt.serving = false;
	srv->rt.listeners = NULL;
	listener_set_free(srv->listeners);
	srv->listeners = NULL;
}

/* The migration figure, per CA, at startup and at every reload: how many
 * distinct devices each CA admitted in the last 7 days. When an old CA's
 * figure stays at zero, it can be retired. */
static void
server_log_sightings(struct server *srv)
{
	const struct cfg *cfg = srv->rt.gen->cfg;
	int64_t now = clock_wall_s();

	for (size_t i = 0; i < cfg->ca_count; i++) {
		const char *ca = cfg->cas[i].name;
		int64_t last = sightings_last_seen(srv->rt.sightings, ca);
		char when[40] = "never";
		struct log_line l;

		if (last > 0) {
			parse_format_date(last, when, sizeof(when));
		}
		if (log_begin(&l, LOG_INFO, "ca-devices")) {
			log_str(&l, "ca", ca);
			log_u64(&l, "devices_7d", sightings_devices_since(
			    srv->rt.sightings, ca, now - SIGHTINGS_WINDOW_S));
			log_u64(&l, "devices_total", sightings_devices_since(
			    srv->rt.sightings, ca, 0));
			log_str(&l, "last_seen", when);
			log_end(&l);
		}
	}
}

static void
server_save_sightings(struct server *srv)
{
	const char *path = srv->rt.gen->cfg->gateway.state_file.path;
	char why[512];

	if (path == NULL || !sightings_dirty(srv->rt.sightings)) {
		return;
	}
	if (!sightings_save(srv->rt.sightings, path, why, sizeof(why))) {
		log_msg(LOG_ERROR, "state-file", "%s; device sightings stay in "
		    "memory and are retried in %d s", why, SERVER_STATE_SAVE_S);
	}
}

static void
server_on_state_timer(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	session_refresh_sightings(&srv->rt, clock_wall_s());
	server_save_sightings(srv);
	/* Every SERVER_STATE_SAVE_S: what expired tickets held goes back
	 * even when no new device comes to seal one (B4). */
	trust_expire_tickets(srv->rt.gen->trust);
}

static void
server_load_sightings(struct server *srv)
{
	const char *path = srv->rt.gen->cfg->gateway.state_file.path;
	char why[512];
	size_t skipped = 0;

	if (path == NULL) {
		return;
	}
	if (!sightings_load(srv->rt.sightings, path, &skipped, why,
	    sizeof(why))) {
		log_msg(LOG_ERROR, "state-file", "%s; starting with no device "
		    "sightings", why);
	} else if (skipped > 0) {
		log_msg(LOG_WARN, "state-file", "%zu damaged line(s) of %s "
		    "skipped", skipped, path);
	}
}

/*
 * Each session holds two sockets (device and broker), and Debian's
 * wolfSSL (WOLFSSL=system) opens /dev/urandom while it sets a connection
 * up (the default build uses getrandom: docs/wolfssl.md). Raise the soft descriptor
 * limit to the hard one, and say at startup when max_connections cannot
 * fit, rather than let devices meet failures at the thousandth connection.
 */
static void
server_check_fd_limit(const struct cfg *cfg)
{
	struct rlimit rl;
	uint64_t need = (uint64_t)cfg->gateway.max_connections * 2 + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		log_msg(LOG_WARN, "fd-limit", "[gateway] max_connections = %u "
		    "needs about %llu file descriptors (two per session), but "
		    "the limit is %llu: only about %llu devices can connect; "
		    "raise the limit (systemd: LimitNOFILE=%llu) or lower "
		    "max_connections", cfg->gateway.max_connections,
		    (unsigned long long)need, (unsigned long long)rl.rlim_cur,
		    (unsigned long long)(rl.rlim_cur > 64
		    ? (rl.rlim_cur - 64) / 2 : 0), (unsigned long long)need);
	}
}

static bool
server_drop_privileges(const char *user)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		log_msg(LOG_ERROR, "privileges", "[gateway] user: no such user "
		    "\"%s\"%s%s", user, errno ? ": " : "",
		    errno ? strerror(errno) : "");
		return false;
	}
	if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0
	    || setuid(pw->pw_uid) != 0) {
		log_msg(LOG_ERROR, "privileges", "cannot become user \"%s\": %s "
		    "(start certbridge as root to use [gateway] user)", user,
		    strerror(errno));
		return false;
	}
	if (setuid(0) == 0) {
		log_msg(LOG_ERROR, "privileges", "privileges could be regained "
		    "after switching to \"%s\"; refusing to run", user);
		return false;
	}
	log_msg(LOG_INFO, "privileges", "running as user %s (uid %u)", user,
	    (unsigned)pw->pw_uid);
	return true;
}

static bool
server_same_path(const char *a, const char *b)
{
	return (a == NULL && b == NULL)
	    || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* READY=1 with a status systemctl shows. */
static void
server_notify_ready(struct server *srv)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=serving, generation "
	    "%llu, %zu session(s)", (unsigned long long)srv->generation,
	    registry_count(srv->rt.sessions));
	notify_send(srv->notify, msg);
}

static void
server_reload(struct server *srv)
{
	struct cfg_diag diag = {0};
	bool moved;
	struct gen *next;
	struct log_line l;

	notify_reloading(srv->notify);
	next = gen_load(srv->config_path, srv->generation + 1, &diag);
	if (next == NULL) {
		metrics_reload(srv->rt.metrics, false);
		server_log_diag(&diag, "reload-failed");
		log_msg(LOG_ERROR, "reload-failed", "the new configuration has "
		    "%zu problem(s); still serving generation %llu unchanged",
		    diag.errors, (unsigned long long)srv->generation);
		cfg_diag_free(&diag);
		server_notify_ready(srv);
		return;
	}
	server_log_diag(&diag, "reload-warning");
	cfg_diag_free(&diag);
	if (!server_bind(srv, next->cfg)) {
		log_msg(LOG_ERROR, "reload-failed", "the new listen addresses "
		    "cannot be bound; still serving generation %llu unchanged",
		    (unsigned long long)srv->generation);
		metrics_reload(srv->rt.metrics, false);
		gen_unref(next);
		server_notify_ready(srv);
		return;
	}
	if ((next->cfg->gateway.user == NULL) != (srv->rt.gen->cfg->gateway.user
	    == NULL) || (next->cfg->gateway.user != NULL && strcmp(
	    next->cfg->gateway.user, srv->rt.gen->cfg->gateway.user) != 0)) {
		log_msg(LOG_WARN, "reload-warning", "[gateway] user changed: "
		    "this takes a restart (privileges are dropped once)");
	}
	/* Sightings noted so far go to the old file before a new path
	 * takes over; the new file then gets the whole table (merged with
	 * what it already held), not only what comes next. */
	server_save_sightings(srv);
	moved = !server_same_path(srv->rt.gen->cfg->gateway.state_file.path,
	    next->cfg->gateway.state_file.path);
	srv->generation++;
	metrics_reload(srv->rt.metrics, true);
	gen_unref(srv->rt.gen);
	srv->rt.gen = next;
	if (moved) {
		server_load_sightings(srv);
		sightings_touch(srv->rt.sightings);
		server_save_sightings(srv);
	}
	log_setup((enum log_level)next->cfg->gateway.log_level,
	    (enum log_format)next->cfg->gateway.log_format);
	upstream_set_rate(srv->rt.upstream, next->cfg->upstream.connect_rate);
	if (log_begin(&l, LOG_INFO, "reloaded")) {
		log_u64(&l, "generation", srv->generation);
		log_u64(&l, "sessions", registry_count(srv->rt.sessions));
		log_end(&l);
	}
	server_log_sightings(srv);
	watch_set_inventory(srv->rt.watch, &next->inv);
	(void)server_admin(srv, next->cfg, false);
	rejudge_start(srv->rt.rejudge, "reload");
	rejudge_watch_retirements(srv->rt.rejudge);
	server_notify_ready(srv);
}

static void
server_grace_over(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	log_msg(LOG_INFO, "stopping", "shutdown_grace over; closing %zu "
	    "session(s)", registry_count(srv->rt.sessions));
	session_close_all(&srv->rt, REASON_SHUTDOWN,
	    "certbridge is stopping (shutdown_grace over)");
}

static void
server_stop(struct server *srv, const char *signame)
{
	struct timeval tv;
	int64_t ms = srv->rt.gen->cfg->gateway.shutdown_grace_ms;

	if (srv->stopping) {
		return;
	}
	srv->stopping = true;
	/* The devices connected until now were seen until now: the state
	 * file written at the end says so. */
	session_refresh_sightings(&srv->rt, clock_wall_s());
	notify_send(srv->notify, "STOPPING=1\nSTATUS=stopping: no longer "
	    "accepting, sessions end within shutdown_grace");
	server_unbind(srv);
	log_msg(LOG_INFO, "stopping", "%s: no longer accepting; %zu "
	    "session(s) may end within shutdown_grace", signame,
	    registry_count(srv->rt.sessions));
	if (registry_count(srv->rt.sessions) == 0) {
		event_base_loopbreak(srv->rt.base);
		return;
	}
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(srv->grace_timer, &tv);
}

static void
server_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	(void)what;
	if (sig == SIGHUP) {
		if (!srv->stopping) {
			server_reload(srv);
		}
		return;
	}
	server_stop(srv, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* Appends "a,b" items to buf while they fit. */
static void
server_list_add(char *buf, size_t cap, const char *item)
{
	size_t used = strlen(buf);

	if (used + strlen(item) + 2 < cap) {
		snprintf(buf + used, cap - used, "%s%s", used ? "," : "", item);
	}
}

/*
 * The one line that says the gateway serves, and with what (docs/
 * troubleshooting.md): logged once, when everything is bound and before
 * the loop can admit anyone; systemd hears READY=1 at the same moment.
 */
static void
server_ready(struct server *srv)
{
	const struct cfg *cfg = srv->rt.gen->cfg;
	char tls[256] = "", plain[256] = "", cas[256] = "", up[300];
	struct log_line l;

	for (size_t i = 0; i < listener_set_count(srv->listeners); i++) {
		struct listener *li = listener_set_at(srv->listeners, i);

		server_list_add(listener_tls(li) ? tls : plain,
		    sizeof(tls), listener_name(li));
	}
	for (size_t i = 0; i < cfg->ca_count; i++) {
		server_list_add(cas, sizeof(cas), cfg->cas[i].name);
	}
	snprintf(up, sizeof(up), "%s:%s", cfg->upstream.address.host,
	    cfg->upstream.address.port);
	/* Written at every log_level: "exactly one ready line" is what an
	 * operator (and a test, a script) waits for (docs/install.md). */
	if (log_begin_always(&l, LOG_INFO, "ready")) {
		log_str(&l, "listen", tls);
		if (plain[0] != '\0') {
			log_str(&l, "plain_listen", plain);
		}
		log_str(&l, "cas", cas[0] != '\0' ? cas : "none");
		log_str(&l, "upstream", up);
		log_str(&l, "admin", srv->admin != NULL
		    ? admin_address(srv->admin) : "off");
		log_u64(&l, "generation", srv->generation);
		log_str(&l, "version", CERTBRIDGE_VERSION);
		log_end(&l);
	}
	server_notify_ready(srv);
}

struct server *
server_new(const char *config_path, int *exit_code)
{
	struct server *srv;
	struct cfg_diag diag = {0};
	const struct cfg *cfg;

	*exit_code = SERVER_EXIT_RUNTIME;
	signal(SIGPIPE, SIG_IGN);
	if (!tlsctx_global_init()) {
		fprintf(stderr, "certbridge: wolfSSL failed to initialise\n");
		return NULL;
	}
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL) {
		fprintf(stderr, "certbridge: out of memory at start\n");
		return NULL;
	}
	srv->config_path = strdup(config_path);
	srv->rt.started_at = clock_wall_s();
	srv->generation = 1;
	srv->rt.gen = gen_load(config_path, 1, &diag);
	if (srv->rt.gen == NULL) {
		/* Exactly as -t prints them: FILE:LINE: [section] key: ... */
		server_print_diag(&diag);
		cfg_diag_free(&diag);
		*exit_code = SERVER_EXIT_CONFIG;
		server_free(srv);
		return NULL;
	}
	cfg = srv->rt.gen->cfg;
	log_setup((enum log_level)cfg->gateway.log_level,
	    (enum log_format)cfg->gateway.log_format);
	server_log_diag(&diag, "config-warning");
	cfg_diag_free(&diag);
	srv->rt.base = event_base_new();
	if (srv->rt.base == NULL) {
		fprintf(stderr, "certbridge: cannot create the event loop\n");
		server_free(srv);
		return NULL;
	}
	srv->dns = evdns_base_new(srv->rt.base,
	    EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (srv->dns == NULL) {
		/* No resolv.conf: literal broker addresses still work. */
		srv->dns = evdns_base_new(srv->rt.base, 0);
	}
	srv->rt.upstream = upstream_new(srv->rt.base, srv->dns);
	/* Before the privilege drop: the socket may be root's alone. */
	srv->notify = notify_new(srv->rt.base);
	srv->sig_hup = evsignal_new(srv->rt.base, SIGHUP, server_on_signal, srv);
	srv->sig_term = evsignal_new(srv->rt.base, SIGTERM, server_on_signal,
	    srv);
	srv->sig_int = evsignal_new(srv->rt.base, SIGINT, server_on_signal, srv);
	srv->grace_timer = evtimer_new(srv->rt.base, server_grace_over, srv);
	srv->state_timer = event_new(srv->rt.base, -1, EV_PERSIST,
	    server_on_state_timer, srv);
	srv->rt.sightings = sightings_new();
	srv->rt.refusals = refusals_new();
	srv->rt.watch = watch_new(srv->rt.base);
	srv->rt.metrics = metrics_new();
	srv->rt.sessions = registry_new();
	srv->rt.rejudge = srv->rt.sessions != NULL ? rejudge_new(&srv->rt)
	    : NULL;
	srv->rt.admit = admit_new(srv->rt.base, srv->rt.metrics);
	if (srv->rt.admit == NULL || srv->rt.rejudge == NULL
	    || srv->rt.metrics == NULL || srv->rt.watch == NULL
	    || srv->dns == NULL || srv->rt.upstream == NULL
	    || srv->sig_hup == NULL || srv->sig_term == NULL
	    || srv->sig_int == NULL || srv->grace_timer == NULL
	    || srv->state_timer == NULL || srv->rt.sightings == NULL
	    || srv->rt.refusals == NULL
	    || srv->notify == NULL) {
		fprintf(stderr, "certbridge: out of memory at start\n");
		server_free(srv);
		return NULL;
	}
	registry_on_empty(srv->rt.sessions, server_sessions_gone, srv);
	upstream_set_rate(srv->rt.upstream, cfg->upstream.connect_rate);
	evsignal_add(srv->sig_hup, NULL);
	evsignal_add(srv->sig_term, NULL);
	evsignal_add(srv->sig_int, NULL);
	log_msg(LOG_INFO, "starting", "certbridge %s, configuration %s",
	    CERTBRIDGE_VERSION, config_path);
	if (!server_bind(srv, cfg)) {
		server_free(srv);
		return NULL;
	}
	srv->rt.serving = true;
	if (cfg->gateway.user != NULL
	    && !server_drop_privileges(cfg->gateway.user)) {
		server_free(srv);
		return NULL;
	}
	server_check_fd_limit(cfg);
	server_load_sightings(srv);
	server_log_sightings(srv);
	watch_set_inventory(srv->rt.watch, &srv->rt.gen->inv);
	if (!server_admin(srv, cfg, true)) {
		server_free(srv);
		return NULL;
	}
	rejudge_watch_retirements(srv->rt.rejudge);
	{
		struct timeval every = {SERVER_STATE_SAVE_S, 0};

		evtimer_add(srv->state_timer, &every);
	}
	server_ready(srv);
	*exit_code = SERVER_EXIT_OK;
	return srv;
}

int
server_run(struct server *srv)
{
	event_base_dispatch(srv->rt.base);
	server_save_sightings(srv);
	log_msg(LOG_INFO, "stopped", "all sessions ended");
	return SERVER_EXIT_OK;
}

void
server_free(struct server *srv)
{
	if (srv == NULL) {
		return;
	}
	server_unbind(srv);
	/* Sessions hold references to generations and events on the base:
	 * they go first (only after an aborted start or a break). */
	while (srv->rt.sessions != NULL
	    && registry_count(srv->rt.sessions) > 0) {
		session_close_all(&srv->rt, REASON_SHUTDOWN, "exiting");
		event_base_loop(srv->rt.base, EVLOOP_NONBLOCK);
	}
	admin_free(srv->admin);
	srv->admin = NULL;
	notify_free(srv->notify);
	srv->notify = NULL;
	rejudge_free(srv->rt.rejudge);
	srv->rt.rejudge = NULL;
	admit_free(srv->rt.admit);
	srv->rt.admit = NULL;
	if (srv->sig_hup != NULL) {
		event_free(srv->sig_hup);
	}
	if (srv->sig_term != NULL) {
		event_free(srv->sig_term);
	}
	if (srv->sig_int != NULL) {
		event_free(srv->sig_int);
	}
	if (srv->grace_timer != NULL) {
		event_free(srv->grace_timer);
	}
	if (srv->state_timer != NULL) {
		event_free(srv->state_timer);
	}
	sightings_free(srv->rt.sightings);
	refusals_free(srv->rt.refusals);
	watch_free(srv->rt.watch);
	metrics_free(srv->rt.metrics);
	upstream_free(srv->rt.upstream);
	if (srv->dns != NULL) {
		evdns_base_free(srv->dns, 1);
	}
	if (srv->rt.base != NULL) {
		event_base_free(srv->rt.base);
	}
	registry_free(srv->rt.sessions);
	gen_unref(srv->rt.gen);
	free(srv->config_path);
	free(srv);
	tlsctx_global_cleanup();
}
