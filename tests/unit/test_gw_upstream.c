/*
 * test_gw_upstream.c - the decisions of gateway/upstream.c without a
 * network: the token bucket (burst, pace, rate changes), the FIFO, a
 * waiter withdrawn, one queue place per device (takeover), and the queue
 * figures the status page and the bridge read.
 *
 * A real event_base runs the module; the broker is a socket this test
 * binds and listens on at 127.0.0.1, so a granted waiter gets a real
 * socket with its connect in progress and nothing leaves the host.
 *
 * Time: the bucket reads clock_mono_ms(), which the test moves forward
 * with clock_set_mono_offset(). The module's pump is a libevent timer,
 * and libevent's timers run on the real clock, so after moving the clock
 * the test fires the pending pump itself (fire_pump) instead of sleeping
 * until libevent would. The clock is frozen for the test
 * (clock_freeze_mono), so real time passing, however slowly the test
 * runs, adds no token; steps still stay half a token from a threshold,
 * so no count hangs on floating-point rounding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/event.h>

#include "clock.h"
#include "upstream.h"

/* ------------------------------------------------------------ fixture */

#define MAX_WAITERS 128

struct waiter {
	struct upstream_wait w;   /* what a session embeds */
	int id;
	int calls;                /* done calls, whatever the fd */
	int fd;                   /* the last fd done was given */
	bool why;                 /* done was given a reason */
	bool keep;                /* keep the socket (else closed at once) */
};

static struct event_base *base;
static struct upstream *up;
static int lfd = -1;
static struct parse_hostport target;
static struct waiter ws[MAX_WAITERS];
static int64_t offset_ms;  /* the test's time since setup */

/* Ids of the waiters granted a socket, in the order it happened. */
static int granted[MAX_WAITERS];
static int ngranted;

static void
on_done(void *arg, int fd, const char *why)
{
	struct waiter *x = arg;

	x->calls++;
	x->fd = fd;
	x->why = why != NULL;
	if (fd < 0) {
		return;
	}
	/* The session drives the socket from its own loop: it must never
	 * block, and must not leak into a child process. */
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_true(ngranted < MAX_WAITERS);
	granted[ngranted++] = x->id;
	if (!x->keep) {
		close(fd);
	}
}

static int
setup(void **state)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	(void)state;
	/* Back to the real clock before the module reads it. */
	offset_ms = 0;
	clock_set_mono_offset(0);
	clock_freeze_mono(true);
	memset(ws, 0, sizeof(ws));
	for (int i = 0; i < MAX_WAITERS; i++) {
		ws[i].id = i;
		ws[i].fd = -100;
	}
	ngranted = 0;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0) {
		return -1;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0
	    || listen(lfd, 512) != 0
	    || getsockname(lfd, (struct sockaddr *)&sin, &len) != 0) {
		return -1;
	}
	memset(&target, 0, sizeof(target));
	snprintf(target.host, sizeof(target.host), "127.0.0.1");
	snprintf(target.port, sizeof(target.port), "%u",
	    (unsigned)ntohs(sin.sin_port));

	base = event_base_new();
	/* No evdns base: a literal address never needs one. */
	up = base != NULL ? upstream_new(base, NULL) : NULL;
	return up != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	upstream_free(up);
	up = NULL;
	event_base_free(base);
	base = NULL;
	close(lfd);
	lfd = -1;
	for (int i = 0; i < MAX_WAITERS; i++) {
		if (ws[i].keep && ws[i].fd >= 0) {
			close(ws[i].fd);
		}
	}
	clock_freeze_mono(false);
	clock_set_mono_offset(0);
	return 0;
}

/* ------------------------------------------------------------ helpers */

static void
request(int i)
{
	upstream_request(up, &ws[i].w, &target, on_done, &ws[i]);
}

/* Key bytes: k0 and k1 pick the module's hash bucket, k31 tells devices
 * in one bucket apart. */
static void
set_key(int i, bool has_key, uint8_t k0, uint8_t k1, uint8_t k31)
{
	ws[i].w.has_key = has_key;
	memset(ws[i].w.key, 0x5a, sizeof(ws[i].w.key));
	ws[i].w.key[0] = k0;
	ws[i].w.key[1] = k1;
	ws[i].w.key[31] = k31;
}

static void
request_key(int i, uint8_t k0, uint8_t k1, uint8_t k31)
{
	set_key(i, true, k0, k1, k31);
	request(i);
}

/* One pass of the loop without waiting: what is due now runs. */
static void
run(void)
{
	assert_int_not_equal(event_base_loop(base, EVLOOP_NONBLOCK), -1);
}

static int
find_pump(const struct event_base *b, const struct event *ev, void *arg)
{
	struct event **found = arg;

	(void)b;
	/* The module's only event is its pump timer (its argument is the
	 * upstream itself). foreach hands out const events; activating one
	 * needs the event itself, as event_active() takes it. */
	if (event_get_callback_arg(ev) == up) {
		*found = (struct event *)(uintptr_t)ev;
		return 1;
	}
	return 0;
}

/* Runs the pump now if it is waiting on its timer, as libevent would once
 * real time caught up with the moved clock. */
static void
fire_pump(void)
{
	struct event *pump = NULL;

	event_base_foreach_event(base, find_pump, &pump);
	if (pump != NULL && evtimer_pending(pump, NULL)) {
		event_active(pump, EV_TIMEOUT, 0);
	}
	run();
}

static void
move_clock(int64_t ms)
{
	offset_ms += ms;
	clock_set_mono_offset(offset_ms);
}

/* Moves the clock by ms, then lets the pump run. */
static void
advance(int64_t ms)
{
	move_clock(ms);
	fire_pump();
}

/* n pump passes, ms apart. */
static void
advance_steps(int n, int64_t ms)
{
	for (int i = 0; i < n; i++) {
		advance(ms);
	}
}

static void
assert_granted_in_order(int first, int count)
{
	assert_int_equal(ngranted, count);
	for (int i = 0; i < count; i++) {
		assert_int_equal(granted[i], first + i);
	}
}

/* ------------------------------------------------------------ tests */

/* connect_rate 10 has a burst of 2 (a fifth): two go at once, then one
 * every 100 ms, in arrival order. */
static void
test_burst_then_pace(void **state)
{
	(void)state;
	upstream_set_rate(up, 10);
	for (int i = 0; i < 5; i++) {
		request(i);
	}
	/* done is never called from inside upstream_request. */
	assert_int_equal(ngranted, 0);
	assert_int_equal(upstream_queue_length(up), 5);
	run();
	assert_granted_in_order(0, 2);
	assert_int_equal(upstream_queue_length(up), 3);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(ws[i].calls, 1);
		assert_true(ws[i].fd >= 0);
		assert_false(ws[i].why);
	}
	advance(50);                 /* half a token */
	assert_int_equal(ngranted, 2);
	advance(100);                /* 1.5 */
	assert_granted_in_order(0, 3);
	advance(100);
	assert_granted_in_order(0, 4);
	advance(100);
	assert_granted_in_order(0, 5);
	assert_int_equal(upstream_queue_length(up), 0);
	/* The pump keeps running but grants nothing twice. */
	advance(1000);
	assert_granted_in_order(0, 5);
}

/* Over a second the bucket grants its burst plus connect_rate, whatever
 * the number of pump passes. */
static void
test_pace_over_a_second(void **state)
{
	(void)state;
	upstream_set_rate(up, 20);   /* burst 4, one token every 50 ms */
	for (int i = 0; i < 40; i++) {
		request(i);
	}
	run();
	assert_granted_in_order(0, 4);
	advance_steps(100, 10);
	advance(25);                 /* 20.5 tokens have come in */
	assert_granted_in_order(0, 24);
	assert_int_equal(upstream_queue_length(up), 16);
}

/* An idle bucket fills up to its burst, not beyond: a quiet hour does
 * not let a storm through. */
static void
test_idle_bucket_caps_at_burst(void **state)
{
	(void)state;
	upstream_set_rate(up, 10);
	advance(3600 * 1000);
	for (int i = 0; i < 10; i++) {
		request(i);
	}
	run();
	assert_granted_in_order(0, 2);
	assert_int_equal(upstream_queue_length(up), 8);
}

/* Without upstream_set_rate the module paces at 50 a second, the
 * documented default of connect_rate, with a burst of 10. */
static void
test_default_rate(void **state)
{
	(void)state;
	for (int i = 0; i < 15; i++) {
		request(i);
	}
	run();
	assert_granted_in_order(0, 10);
	advance(30);                 /* 1.5 tokens at 50/s */
	assert_granted_in_order(0, 11);
}

/* A reload's new rate paces what is granted from then on; a lower one
 * also shrinks what the bucket already holds to the new burst. Each
 * change comes at the instant of a pump pass, so no time before it is
 * left to be credited at either rate. */
static void
test_rate_change(void **state)
{
	(void)state;
	upstream_set_rate(up, 10);
	for (int i = 0; i < 30; i++) {
		request(i);
	}
	run();
	assert_granted_in_order(0, 2);
	advance(150);                /* 1.5: one more, 0.5 left */
	assert_granted_in_order(0, 3);

	upstream_set_rate(up, 100);  /* burst 20, 10 ms a token */
	advance(50);                 /* 0.5 + 5 */
	assert_granted_in_order(0, 8);

	upstream_set_rate(up, 10);   /* back to 100 ms a token */
	advance(30);                 /* 0.5 + 0.3 */
	assert_granted_in_order(0, 8);
	advance(40);                 /* 1.2 */
	assert_granted_in_order(0, 9);

	/* Lowering the rate clamps a full bucket: at 1000/s a second fills
	 * it to 200, 21 are granted, and of the 179 left a burst of 1 is
	 * all rate 5 allows. */
	upstream_set_rate(up, 1000);
	advance(1000);
	assert_granted_in_order(0, 30);
	upstream_set_rate(up, 5);
	for (int i = 30; i < 33; i++) {
		request(i);
	}
	run();
	assert_int_equal(ngranted, 31);
	assert_int_equal(upstream_queue_length(up), 2);
}

/* A reload between two pump passes: the time since the last pass was
 * spent at the old rate and is credited at it, not at the new one. */
static void
test_rate_change_between_passes(void **state)
{
	(void)state;
	upstream_set_rate(up, 1);
	for (int i = 0; i < 100; i++) {
		request(i);
	}
	run();
	assert_granted_in_order(0, 1);
	move_clock(500);             /* half a token at 1/s, no pass yet */
	upstream_set_rate(up, 1000);
	fire_pump();
	assert_granted_in_order(0, 1);
	advance(1);                  /* 0.5 + 1 at the new rate */
	assert_granted_in_order(0, 2);
}

/* connect_rate is 1..100000 in the configuration; the module itself
 * takes 0 as 1 a second (burst 1) rather than stopping the queue. */
static void
test_rate_zero_is_one_per_second(void **state)
{
	(void)state;
	upstream_set_rate(up, 0);
	for (int i = 0; i < 3; i++) {
		request(i);
	}
	run();
	assert_granted_in_order(0, 1);
	advance(500);
	assert_granted_in_order(0, 1);
	advance(600);
	assert_granted_in_order(0, 2);
	advance(1000);
	assert_granted_in_order(0, 3);
}

/* First come, first served, also across pump passes. */
static void
test_fifo(void **state)
{
	(void)state;
	upstream_set_rate(up, 100);
	advance(1000);               /* a full bucket: 20 */
	for (int i = 0; i < 12; i++) {
		request(i);
	}
	run();
	assert_granted_in_order(0, 12);
	for (int i = 12; i < 40; i++) {
		request(i);
	}
	advance_steps(40, 15);
	assert_granted_in_order(0, 40);
}

/* A session that closes while held back by the rate leaves the queue and
 * is never called; the broker is never contacted for it. */
static void
test_cancel_queued(void **state)
{
	(void)state;
	upstream_set_rate(up, 10);
	request(0);
	request(1);
	run();                       /* the burst is spent */
	assert_granted_in_order(0, 2);
	request(2);
	request(3);
	request(4);
	upstream_cancel(up, &ws[3].w);
	assert_int_equal(upstream_queue_length(up), 2);
	assert_false(ws[3].w.queued);
	advance(1000);
	assert_int_equal(ngranted, 4);
	assert_int_equal(granted[2], 2);
	assert_int_equal(granted[3], 4);
	assert_int_equal(ws[3].calls, 0);
	/* Withdrawing again, or after the turn came, changes nothing. */
	upstream_cancel(up, &ws[3].w);
	upstream_cancel(up, &ws[2].w);
	assert_int_equal(upstream_queue_length(up), 0);
	assert_int_equal(ws[2].calls, 1);
	assert_int_equal(ws[3].calls, 0);
}

/* Withdrawn before the pump ever ran: not called, not counted; the same
 * wait can be used again. */
static void
test_cancel_before_pump(void **state)
{
	(void)state;
	request(0);
	upstream_cancel(up, &ws[0].w);
	assert_int_equal(upstream_queue_length(up), 0);
	run();
	assert_int_equal(ws[0].calls, 0);
	request(0);
	run();
	assert_int_equal(ws[0].calls, 1);
	assert_true(ws[0].fd >= 0);
}

/* A newer connection of the same device takes the older one's place: the
 * older is told at once (UPSTREAM_TAKEN_OVER, with a reason), the newer
 * queues at the back (it arrived last), and the device holds one place. */
static void
test_takeover_same_key(void **state)
{
	(void)state;
	upstream_set_rate(up, 10);
	request(0);
	request(1);
	run();                       /* spend the burst: all below wait */
	request_key(2, 1, 2, 3);
	request(3);
	request_key(4, 1, 2, 3);
	assert_int_equal(ws[2].calls, 1);
	assert_int_equal(ws[2].fd, UPSTREAM_TAKEN_OVER);
	assert_true(ws[2].why);
	assert_false(ws[2].w.queued);
	assert_int_equal(ws[4].calls, 0);
	assert_int_equal(upstream_queue_length(up), 2);
	/* Three connections of one device still hold one place. */
	request_key(5, 1, 2, 3);
	assert_int_equal(ws[4].calls, 1);
	assert_int_equal(ws[4].fd, UPSTREAM_TAKEN_OVER);
	assert_int_equal(upstream_queue_length(up), 2);
	advance(1000);
	assert_int_equal(ngranted, 4);
	assert_int_equal(granted[2], 3);
	assert_int_equal(granted[3], 5);
	/* The ones taken over were called once, never with a socket;
	 * withdrawing them afterwards (their sessions closing) is harmless. */
	assert_int_equal(ws[2].calls, 1);
	assert_int_equal(ws[4].calls, 1);
	upstream_cancel(up, &ws[2].w);
	upstream_cancel(up, &ws[4].w);
	assert_int_equal(upstream_queue_length(up), 0);
}

/* Different devices both keep their places, also when their keys share
 * a hash bucket (same first two bytes); a waiter without a key never
 * takes over, whatever its key bytes hold. */
static void
test_no_takeover_across_keys(void **state)
{
	(void)state;
	upstream_set_rate(up, 10);
	request(0);
	request(1);
	run();
	request_key(2, 7, 7, 1);
	request_key(3, 7, 7, 2);     /* same bucket, another device */
	request_key(4, 8, 7, 1);     /* another bucket */
	set_key(5, false, 7, 7, 1);  /* 2's bytes, but no key */
	request(5);
	for (int i = 2; i <= 5; i++) {
		assert_int_equal(ws[i].calls, 0);
	}
	assert_int_equal(upstream_queue_length(up), 4);
	/* Two waiters without keys never take over each other. */
	set_key(6, false, 7, 7, 1);
	request(6);
	assert_int_equal(ws[5].calls, 0);
	assert_int_equal(upstream_queue_length(up), 5);
	advance_steps(10, 150);
	assert_granted_in_order(0, 7);
}

/* The key index follows the queue: a device whose turn came, or that
 * was withdrawn, is no longer there to be taken over, and a withdrawal
 * in the middle of a bucket's chain leaves the others findable. */
static void
test_key_index_follows_queue(void **state)
{
	(void)state;
	upstream_set_rate(up, 10);
	request_key(0, 3, 3, 1);
	run();
	assert_int_equal(ws[0].calls, 1);
	assert_true(ws[0].fd >= 0);
	request(1);
	run();                       /* spend the burst */
	request_key(2, 3, 3, 1);     /* 0 already has its socket */
	assert_int_equal(ws[0].calls, 1);
	assert_int_equal(upstream_queue_length(up), 1);
	request_key(3, 3, 3, 2);
	request_key(4, 3, 3, 3);
	upstream_cancel(up, &ws[3].w);
	request_key(5, 3, 3, 1);     /* takes over 2, not another */
	assert_int_equal(ws[2].fd, UPSTREAM_TAKEN_OVER);
	assert_int_equal(ws[4].calls, 0);
	request_key(6, 3, 3, 3);     /* takes over 4 */
	assert_int_equal(ws[4].fd, UPSTREAM_TAKEN_OVER);
	request_key(7, 3, 3, 2);     /* 3 was withdrawn: nothing to take */
	assert_int_equal(ws[3].calls, 0);
	assert_int_equal(upstream_queue_length(up), 3);
	advance_steps(10, 150);
	assert_int_equal(ngranted, 5);
	assert_int_equal(granted[2], 5);
	assert_int_equal(granted[3], 6);
	assert_int_equal(granted[4], 7);
}

/* Queue length counts waiters not yet granted; congested means more
 * waiters than tokens (held back by the rate), not merely queued. */
static void
test_queue_length_and_congested(void **state)
{
	(void)state;
	upstream_set_rate(up, 10);   /* burst 2, bucket full */
	assert_int_equal(upstream_queue_length(up), 0);
	assert_false(upstream_congested(up));
	request(0);
	request(1);
	assert_int_equal(upstream_queue_length(up), 2);
	assert_false(upstream_congested(up));    /* 2 waiters, 2 tokens */
	request(2);
	assert_true(upstream_congested(up));
	run();
	assert_int_equal(upstream_queue_length(up), 1);
	assert_true(upstream_congested(up));     /* 1 waiter, 0 tokens */
	/* Time alone ends congestion, before the pump runs. */
	move_clock(150);
	assert_false(upstream_congested(up));
	assert_int_equal(upstream_queue_length(up), 1);
	fire_pump();
	assert_int_equal(upstream_queue_length(up), 0);
	assert_false(upstream_congested(up));
}

/* The socket a waiter gets is connecting to the target: the listener
 * accepts it, and the two ends are each other's peers. */
static void
test_socket_reaches_target(void **state)
{
	struct sockaddr_in mine, peer;
	socklen_t ml = sizeof(mine), pl = sizeof(peer);
	struct pollfd p = {.fd = -1, .events = POLLIN};
	int afd;

	(void)state;
	ws[0].keep = true;
	request(0);
	run();
	assert_int_equal(ws[0].calls, 1);
	assert_true(ws[0].fd >= 0);
	p.fd = lfd;
	/* Loopback completes the handshake in the kernel; the wait is a
	 * bound, not a pace. */
	assert_int_equal(poll(&p, 1, 5000), 1);
	afd = accept(lfd, (struct sockaddr *)&peer, &pl);
	assert_true(afd >= 0);
	assert_int_equal(getsockname(ws[0].fd, (struct sockaddr *)&mine, &ml),
	    0);
	assert_int_equal(mine.sin_port, peer.sin_port);
	assert_int_equal(mine.sin_addr.s_addr, peer.sin_addr.s_addr);
	close(afd);
}

/* Freeing the module with waiters still queued calls none of them (the
 * sessions that own them are being freed too) and leaks nothing. */
static void
test_free_with_waiters(void **state)
{
	(void)state;
	upstream_set_rate(up, 1);
	for (int i = 0; i < 4; i++) {
		request(i);
	}
	run();
	assert_int_equal(ngranted, 1);
	upstream_free(up);
	up = NULL;
	run();
	for (int i = 1; i < 4; i++) {
		assert_int_equal(ws[i].calls, 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_burst_then_pace, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pace_over_a_second, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_idle_bucket_caps_at_burst,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_default_rate, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rate_change_between_passes,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_change, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_rate_zero_is_one_per_second, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_queued, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cancel_before_pump, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_takeover_same_key, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_takeover_across_keys,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_index_follows_queue,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_queue_length_and_congested, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_reaches_target,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_waiters, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
