/*
 * test_gw_relay.c - the framing pump between the two sides.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <event2/buffer.h>

#include "relay.h"

struct bufs {
	struct evbuffer *src;
	struct evbuffer *dst;
};

static int
setup(void **state)
{
	struct bufs *b = calloc(1, sizeof(*b));

	b->src = evbuffer_new();
	b->dst = evbuffer_new();
	*state = b;
	return 0;
}

static int
teardown(void **state)
{
	struct bufs *b = *state;

	evbuffer_free(b->src);
	evbuffer_free(b->dst);
	free(b);
	return 0;
}

static const uint8_t publish_qos0[] = {0x30, 0x07, 0x00, 0x03, 't', '/', 'a',
    'h', 'i'};
static const uint8_t pingreq[] = {0xc0, 0x00};
static const uint8_t connack_ok_v311[] = {0x20, 0x02, 0x00, 0x00};
/* v5 CONNACK with server keep alive 0x13 = 30 s. */
static const uint8_t connack_v5_ka[] = {0x20, 0x06, 0x00, 0x00, 0x03, 0x13,
    0x00, 0x1e};

static void
test_moves_whole_packets_and_counts_types(void **state)
{
	struct bufs *b = *state;
	struct relay_dir d;
	uint8_t out[32];

	relay_init(&d, true, 4, 1024, NULL);
	evbuffer_add(b->src, publish_qos0, sizeof(publish_qos0));
	evbuffer_add(b->src, pingreq, sizeof(pingreq));
	assert_int_equal(relay_move(&d, b->src, b->dst), RELAY_OK);
	assert_int_equal(evbuffer_get_length(b->src), 0);
	assert_int_equal(evbuffer_get_length(b->dst),
	    sizeof(publish_qos0) + sizeof(pingreq));
	evbuffer_copyout(b->dst, out, sizeof(out));
	assert_memory_equal(out, publish_qos0, sizeof(publish_qos0));
	assert_int_equal(d.packets, 2);
	assert_int_equal(d.by_type[3], 1);
	assert_int_equal(d.by_type[12], 1);
	assert_int_equal(d.bytes, sizeof(publish_qos0) + sizeof(pingreq));
	assert_int_equal(d.last_type, 12);
}

/* Byte by byte: nothing moves until the fixed header is whole, then the
 * body streams through without waiting for the packet's end. */
static void
test_streams_partial_packets(void **state)
{
	struct bufs *b = *state;
	struct relay_dir d;

	relay_init(&d, true, 4, 1024, NULL);
	evbuffer_add(b->src, publish_qos0, 1);
	assert_int_equal(relay_move(&d, b->src, b->dst), RELAY_OK);
	assert_int_equal(evbuffer_get_length(b->dst), 0);
	assert_int_equal(evbuffer_get_length(b->src), 1);
	for (size_t i = 1; i < sizeof(publish_qos0); i++) {
		evbuffer_add(b->src, publish_qos0 + i, 1);
		assert_int_equal(relay_move(&d, b->src, b->dst), RELAY_OK);
		assert_int_equal(evbuffer_get_length(b->dst), i + 1);
	}
	assert_int_equal(d.packets, 1);
	assert_int_equal(d.left, 0);
}

static void
test_large_packet_needs_no_whole_buffer(void **state)
{
	struct bufs *b = *state;
	struct relay_dir d;
	/* PUBLISH with remaining length 200000 (0xC0 0x9A 0x0C). */
	uint8_t head[] = {0x30, 0xc0, 0x9a, 0x0c};
	uint8_t chunk[1000];

	memset(chunk, 'x', sizeof(chunk));
	relay_init(&d, true, 4, 300000, NULL);
	evbuffer_add(b->src, head, sizeof(head));
	evbuffer_add(b->src, chunk, sizeof(chunk));
	assert_int_equal(relay_move(&d, b->src, b->dst), RELAY_OK);
	assert_int_equal(evbuffer_get_length(b->dst), sizeof(head)
	    + sizeof(chunk));
	assert_int_equal(d.left, 200000 - sizeof(chunk));
}

static void
test_too_big_moves_nothing(void **state)
{
	struct bufs *b = *state;
	struct relay_dir d;
	uint8_t head[] = {0x30, 0xc0, 0x9a, 0x0c};

	relay_init(&d, true, 4, 100000, NULL);
	evbuffer_add(b->src, pingreq, sizeof(pingreq));
	evbuffer_add(b->src, head, sizeof(head));
	assert_int_equal(relay_move(&d, b->src, b->dst), RELAY_TOO_BIG);
	assert_int_equal(evbuffer_get_length(b->dst), sizeof(pingreq));
	assert_int_equal(evbuffer_get_length(b->src), sizeof(head));
	assert_true(strlen(d.why) > 0);
}

static void
test_bad_length_is_malformed(void **state)
{
	struct bufs *b = *state;
	struct relay_dir d;
	uint8_t bad[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0x01};

	relay_init(&d, true, 4, 0, NULL);
	evbuffer_add(b->src, bad, sizeof(bad));
	assert_int_equal(relay_move(&d, b->src, b->dst), RELAY_MALFORMED);
	assert_int_equal(evbuffer_get_length(b->dst), 0);
}

static void
test_second_connect_from_device(void **state)
{
	struct bufs *b = *state;
	struct relay_dir d;
	uint8_t connect_head[] = {0x10, 0x0c};

	relay_init(&d, true, 4, 1024, NULL);
	evbuffer_add(b->src, connect_head, sizeof(connect_head));
	assert_int_equal(relay_move(&d, b->src, b->dst),
	    RELAY_SECOND_CONNECT);
	assert_int_equal(evbuffer_get_length(b->dst), 0);
}

/* The broker's side holds its first packet until whole, then reports the
 * CONNACK and stops, so the session sees it before anything after it. */
static void
test_connack_held_until_whole(void **state)
{
	struct bufs *b = *state;
	struct relay_dir d;

	relay_init(&d, false, 5, 1024, NULL);
	evbuffer_add(b->src, connack_v5_ka, 5);
	assert_int_equal(relay_move(&d, b->src, b->dst), RELAY_OK);
	assert_int_equal(evbuffer_get_length(b->dst), 0);
	evbuffer_add(b->src, connack_v5_ka + 5, sizeof(connack_v5_ka) - 5);
	evbuffer_add(b->src, publish_qos0, sizeof(publish_qos0));
	assert_int_equal(relay_move(&d, b->src, b->dst), RELAY_CONNACK);
	assert_int_equal(evbuffer_get_length(b->dst), sizeof(connack_v5_ka));
	assert_int_equal(d.connack.code, 0);
	assert_true(d.connack.has_server_keepalive);
	assert_int_equal(d.connack.server_keepalive, 30);
	assert_false(d.await_connack);
	assert_int_equal(relay_move(&d, b->src, b->dst), RELAY_OK);
	assert_int_equal(evbuffer_get_length(b->dst), sizeof(connack_v5_ka)
	    + sizeof(publish_qos0));
}

static void
test_connack_v311_refusal_code(void **state)
{
	struct bufs *b = *state;
	struct relay_dir d;
	uint8_t refused[] = {0x20, 0x02, 0x00, 0x05};

	relay_init(&d, false, 4, 1024, NULL);
	evbuffer_add(b->src, refused, sizeof(refused));
	assert_int_equal(relay_move(&d, b->src, b->dst), RELAY_CONNACK);
	assert_int_equal(d.connack.code, 5);
}

/* A broker's CONNECT is no "second CONNECT" rule: that one is for
 * devices; and once the CONNACK passed, nothing is held any more. */
static void
test_broker_side_does_not_hold_after_connack(void **state)
{
	struct bufs *b = *state;
	struct relay_dir d;

	relay_init(&d, false, 4, 1024, NULL);
	evbuffer_add(b->src, connack_ok_v311, sizeof(connack_ok_v311));
	assert_int_equal(relay_move(&d, b->src, b->dst), RELAY_CONNACK);
	evbuffer_add(b->src, publish_qos0, 3);
	assert_int_equal(relay_move(&d, b->src, b->dst), RELAY_OK);
	assert_int_equal(evbuffer_get_length(b->dst),
	    sizeof(connack_ok_v311) + 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_moves_whole_packets_and_counts_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_streams_partial_packets,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_large_packet_needs_no_whole_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_big_moves_nothing,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_length_is_malformed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_connect_from_device,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_connack_held_until_whole,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_connack_v311_refusal_code,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_broker_side_does_not_hold_after_connack, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
