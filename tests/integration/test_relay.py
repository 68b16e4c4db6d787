"""The relay between a device and the broker: bounded buffers.

A device that stops reading must not make the gateway buffer what the broker
sends it: the gateway stops reading the broker's side of that session, so the
backlog stays with the broker (TCP and its own queue), and everything arrives,
in order, once the device reads again.
"""

import socket

from cbtest import RSS_MEANINGFUL, t, uid
from rawmqtt import (connect_packet, device_context, mqtt_device,
                     publish_packet, read_packet, subscribe_packet)

MIB = 1024 * 1024
PAYLOAD = 256 * 1024
COUNT = 120  # 30 MiB through one session


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def _slow_subscriber(port, creds, topic):
    """A device with a tiny receive buffer, subscribed, that then stops
    reading (keepalive 0: idleness is allowed)."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(t(10))
    raw.connect(("127.0.0.1", port))
    s = device_context(creds).wrap_socket(raw, server_hostname="localhost")
    s.sendall(connect_packet("slow-" + uid(), keepalive=0))
    assert read_packet(s, 10) == (0x20, b"\x00\x00")
    s.sendall(subscribe_packet(1, topic, 0))
    first, body = read_packet(s, 10)
    assert first == 0x90 and body[-1] == 0, (first, body)
    return s


def _payload(i):
    return i.to_bytes(4, "big") + bytes([i % 251]) * (PAYLOAD - 4)


def test_slow_reader_does_not_grow_the_gateway(gateway, pki):
    creds = pki.device("dev-old-1")
    topic = "bp/" + uid()
    sub = _slow_subscriber(gateway.port, creds, topic)
    pub = mqtt_device(gateway.port, creds)
    try:
        base = _rss_kib(gateway.pid)
        for i in range(COUNT):
            pub.sendall(publish_packet(topic, _payload(i)))
        # PINGRESP comes after the broker has taken every PUBLISH before
        # it: the whole 30 MiB has gone through the gateway towards the
        # broker, and the broker is pushing it at the stalled subscriber.
        pub.sendall(b"\xc0\x00")
        assert read_packet(pub, 30) == (0xD0, b"")
        grown = _rss_kib(gateway.pid) - base
        assert not RSS_MEANINGFUL or grown < 16 * 1024, (
            "gateway RSS grew by %d KiB while %d MiB waited for a stalled "
            "reader" % (grown, COUNT * PAYLOAD // MIB))

        # The reader wakes up: every message arrives, whole and in order.
        for i in range(COUNT):
            first, body = read_packet(sub, 30)
            assert first & 0xF0 == 0x30, hex(first)
            tlen = int.from_bytes(body[:2], "big")
            assert body[2:2 + tlen].decode() == topic
            assert body[2 + tlen:] == _payload(i), "message %d differs" % i
    finally:
        sub.close()
        pub.close()
    assert gateway.running()
