/*
 * relay.c - the framing pump (see relay.h).
 */
#include <stdio.h>
#include <string.h>

#include "relay.h"

void
relay_init(struct relay_dir *d, bool from_device, uint8_t version,
    uint32_t max_packet, struct metrics_traffic *totals)
{
	memset(d, 0, sizeof(*d));
	d->totals = totals;
	d->from_device = from_device;
	d->version = version;
	d->max_packet = max_packet;
	d->await_connack = !from_device;
}

void
relay_count(struct relay_dir *d, uint8_t type, size_t bytes)
{
	d->packets++;
	d->by_type[type & 0x0f]++;
	d->bytes += bytes;
	if (d->totals != NULL) {
		d->totals->packets[type & 0x0f]++;
		d->totals->bytes += bytes;
	}
}

static void
relay_moved(struct relay_dir *d, size_t n)
{
	d->bytes += n;
	if (d->totals != NULL) {
		d->totals->bytes += n;
	}
}

/* Holds the broker's first packet until it is whole, then decodes it. */
static enum relay_rc
relay_connack(struct relay_dir *d, struct evbuffer *src,
    const struct mqtt_fixed *fh, bool *wait)
{
	size_t total = (size_t)fh->header_len + fh->remaining;
	const uint8_t *p;

	*wait = false;
	if (fh->type == MQTT_AUTH) {
		return RELAY_OK; /* v5 enhanced auth precedes the CONNACK */
	}
	/* Anything else first is the broker's to answer for; the connect
	 * phase is over either way. */
	d->await_connack = false;
	if (fh->type != MQTT_CONNACK) {
		return RELAY_OK;
	}
	if (evbuffer_get_length(src) < total) {
		d->await_connack = true;
		*wait = true;
		return RELAY_OK;
	}
	p = evbuffer_pullup(src, (ssize_t)total);
	if (p == NULL || mqtt_connack_decode(p + fh->header_len, fh->remaining,
	    d->version, &d->connack, d->why) != MQTT_OK) {
		/* The device sees the broker's bytes as they are; only note
		 * that the code could not be read. */
		memset(&d->connack, 0, sizeof(d->connack));
		d->connack.code = 0xff;
	}
	return RELAY_CONNACK;
}

enum relay_rc
relay_move(struct relay_dir *d, struct evbuffer *src, struct evbuffer *dst)
{
	uint8_t head[MQTT_MAX_FIXED_HEADER];
	struct mqtt_fixed fh;
	size_t avail, n;
	enum relay_rc result;

	while ((avail = evbuffer_get_length(src)) > 0) {
		if (d->left == 0) {
			enum mqtt_rc rc;
			bool wait = false;

			n = avail < sizeof(head) ? avail : sizeof(head);
			evbuffer_copyout(src, head, n);
			rc = mqtt_fixed_frame(head, n, d->max_packet, &fh,
			    d->why);
			if (rc == MQTT_NEED_MORE) {
				return RELAY_OK;
			}
			if (rc == MQTT_MALFORMED) {
				return RELAY_MALFORMED;
			}
			if (rc == MQTT_TOO_BIG) {
				return RELAY_TOO_BIG;
			}
			if (d->from_device && fh.type == MQTT_CONNECT) {
				snprintf(d->why, sizeof(d->why), "a second "
				    "CONNECT on an established session "
				    "[MQTT-3.1.0-2]");
				return RELAY_SECOND_CONNECT;
			}
			result = RELAY_OK;
			if (d->await_connack) {
				result = relay_connack(d, src, &fh, &wait);
				if (wait) {
					return RELAY_OK;
				}
			}
			d->left = fh.header_len + fh.remaining;
			d->packets++;
			d->by_type[fh.type & 0x0f]++;
			if (d->totals != NULL) {
				d->totals->packets[fh.type & 0x0f]++;
			}
			d->last_type = fh.type;
			if (result == RELAY_CONNACK) {
				n = d->left;
				evbuffer_remove_buffer(src, dst, n);
				relay_moved(d, n);
				d->left = 0;
				return RELAY_CONNACK;
			}
		}
		n = avail < d->left ? avail : d->left;
		evbuffer_remove_buffer(src, dst, n);
		d->left -= (uint32_t)n;
		relay_moved(d, n);
	}
	return RELAY_OK;
}
