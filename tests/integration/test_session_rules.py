"""The rules of an established session (docs/architecture.md, "Relay,
framing and backpressure" and "What certbridge leaves to the broker";
docs/troubleshooting.md, "Session ends").

- keepalive: a silent device is closed after 1.5 x its keepalive (and not
  before), PINGREQs keep it up (answered by the broker, never by
  certbridge), keepalive 0 is never closed for idleness, and in MQTT 5 the
  broker's server keepalive wins;
- packets a device sends right after CONNECT, before the CONNACK, follow it
  upstream in order;
- a second CONNECT, an undecodable remaining length: reason=protocol;
- a packet above max_packet_size: reason=packet-too-large, with DISCONNECT
  0x95 first for a v5 device; other sessions carry on;
- a device lost without DISCONNECT gets its will published by the broker;
  one that sent DISCONNECT does not;
- when the broker closes a session, what it sent first (v5: DISCONNECT 0x8E
  on a session takeover) reaches the device, byte for byte as for a direct
  client, then the device is closed: reason=broker-closed;
- certbridge never answers on the broker's behalf (PINGRESP, PUBACK,
  CONNACK 0x00), checked with the broker stopped by SIGSTOP;
- the packet and byte counters of session-closed.

Real mosquitto, paho and mosquitto_sub, plus MQTT bytes over TLS by hand
where the exact bytes matter. Every wait is bounded; the windows in which
nothing may happen (a keepalive not yet due, a broker that is stopped) are
watched with select, never slept through blindly.

About mosquitto's own keepalive check: mosquitto (2.0) also closes a client
idle for 1.5 x its keepalive, on whole seconds of CLOCK_MONOTONIC (a client
whose last packet came at second L is dropped once the clock reaches
L + floor(1.5 x keepalive) + 1). Depending on the fraction of the second at
which the CONNECT arrives, mosquitto could then beat certbridge to it (for
keepalive 3: anywhere after 4.0 s, certbridge at 4.5 s), and the session
would end as broker-closed. The keepalive tests therefore send their CONNECT
early in a monotonic second (Python's time.monotonic() is CLOCK_MONOTONIC on
Linux), which leaves mosquitto at least ~0.5 s behind certbridge.
"""

import os
import re
import signal
import socket
import ssl
import time

import pytest

import cbtest
from cbtest import MosquittoSub, PahoClient, t, uid
from rawmqtt import (CLOSED_ERRORS, CONNACK_OK, DISCONNECT, abort, connect_packet_ex,
                     disconnect_packet, encode_packet, publish_packet_ex, quiet_for,
                     read_packet, subscribe_packet_ex, tls_device, wait_closed)

DEVICE = "dev-old-1"
OTHER = "dev-new-1"
PINGREQ = b"\xc0\x00"
PINGRESP = (0xD0, b"")
VNAME = {4: "311", 5: "5"}


# ---------------------------------------------------------------- helpers


def peer_of(sock):
    return "127.0.0.1:%d" % sock.getsockname()[1]


def start_of_second(within=0.1):
    """Returns once time.monotonic() (CLOCK_MONOTONIC) is in the first
    `within` of a second: see the module docstring. At most ~1 s."""
    frac = time.monotonic() % 1.0
    if frac >= within:
        time.sleep(1.0 - frac + 0.005)


def raw_session(port, creds, client_id, keepalive=60, version=4, will=None):
    """A TLS device with its MQTT session up; returns (socket, CONNACK body)."""
    ss = tls_device(port, creds)
    try:
        ss.sendall(connect_packet_ex(client_id, keepalive, version, will=will))
        first, body = read_packet(ss, timeout=10.0)
        assert first == 0x20 and body[1] == 0, "CONNACK %#x %r" % (first, body)
        return ss, body
    except BaseException:
        ss.close()
        raise


def direct_context(pki):
    """A client of the broker itself, with the gateway's upstream identity."""
    c = pki.upstream_client()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(c.cafile)
    ctx.load_cert_chain(c.cert, c.key)
    return ctx


def direct_session(broker, pki, client_id, keepalive=60, version=4):
    """A raw MQTT session straight to the broker; returns (socket, CONNACK body)."""
    s = socket.create_connection(("127.0.0.1", broker.port), timeout=t(5))
    ss = direct_context(pki).wrap_socket(s, server_hostname="localhost")
    try:
        ss.sendall(connect_packet_ex(client_id, keepalive, version))
        first, body = read_packet(ss, timeout=10.0)
        assert first == 0x20 and body[1] == 0, "direct CONNACK %#x %r" % (first, body)
        return ss, body
    except BaseException:
        ss.close()
        raise


def split_packets(data, partial_ok=False):
    """[(first byte, body)] of a byte stream of whole MQTT packets (a cut
    last packet is dropped when partial_ok)."""
    out, i = [], 0
    while i < len(data):
        first, n, mult, j = data[i], 0, 1, i + 1
        while True:
            if j >= len(data) and partial_ok:
                return out
            b = data[j]
            j += 1
            n += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                break
        if j + n > len(data) and partial_ok:
            return out
        out.append((first, data[j:j + n]))
        i = j + n
    assert i == len(data), "trailing partial packet in %r" % data
    return out


_PROP_SIZES = {0x01: 1, 0x02: 4, 0x11: 4, 0x13: 2, 0x17: 1, 0x19: 1, 0x21: 2, 0x22: 2,
               0x23: 2, 0x24: 1, 0x25: 1, 0x27: 4, 0x28: 1, 0x29: 1, 0x2A: 1}
_PROP_STRINGS = {0x03, 0x08, 0x09, 0x12, 0x15, 0x16, 0x1A, 0x1C, 0x1F}


def v5_properties(block):
    """{id: value} of an MQTT 5 property block that starts with its length
    (integers as int, strings and binary as bytes; user properties as a
    list of pairs under 0x26)."""
    n, mult, i = 0, 1, 0
    while True:
        b = block[i]
        i += 1
        n += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            break
    end, props = i + n, {}
    while i < end:
        pid = block[i]
        i += 1
        if pid in _PROP_SIZES:
            size = _PROP_SIZES[pid]
            props[pid] = int.from_bytes(block[i:i + size], "big")
            i += size
        elif pid in _PROP_STRINGS:
            ln = int.from_bytes(block[i:i + 2], "big")
            props[pid] = bytes(block[i + 2:i + 2 + ln])
            i += 2 + ln
        elif pid == 0x26:
            k = int.from_bytes(block[i:i + 2], "big")
            key = bytes(block[i + 2:i + 2 + k])
            i += 2 + k
            v = int.from_bytes(block[i:i + 2], "big")
            props.setdefault(0x26, []).append((key, bytes(block[i + 2:i + 2 + v])))
            i += 2 + v
        else:
            raise AssertionError("unknown property %#x in %r" % (pid, block))
    assert i == end, block
    return props


def closed_event(g, mark, peer, timeout=5.0):
    return g.wait_event("session-closed", since=mark, peer=peer, timeout=timeout)


def broker_count(broker, text, since=0):
    return broker._text_since(since).count(text)


def wait_broker_count(broker, text, n, since=0, timeout=5.0):
    """Polls mosquitto's log until `text` occurs n times; returns the count."""
    deadline = time.monotonic() + t(timeout)
    while True:
        c = broker_count(broker, text, since)
        if c >= n or time.monotonic() >= deadline:
            return c
        time.sleep(0.05)


class Witness:
    """Another device on the same gateway that must not notice anything."""

    def __init__(self, port, pki, version="311"):
        self.c = PahoClient(port, pki.device(OTHER), version)
        self.topic = "cbtest/witness/%s" % uid()
        self.n = 0

    def __enter__(self):
        assert self.c.connect() == 0, self.c.error
        assert self.c.subscribe(self.topic, 1) == 1
        self.check()
        return self

    def check(self, payload=None):
        self.n += 1
        payload = payload if payload is not None else b"witness %d" % self.n
        self.c.publish(self.topic, payload, qos=1)
        got = bytes(self.c.wait_message().payload)
        cbtest.assert_same_bytes(got, payload, "witness payload")
        assert not self.c.disconnected.is_set(), self.c.error

    def __exit__(self, *exc):
        self.c.close()
        return False


# ---------------------------------------------------------------- 1. keepalive


def test_keepalive_closes_a_silent_device(gateway, broker, pki):
    """keepalive 2: still open at 1.6 s, closed by 3 s (+ margin) with
    reason=keepalive; the upstream connection ends without DISCONNECT, so
    the broker publishes the device's will."""
    cid = "ka-silent-" + uid()
    will_topic = "w/" + cid
    with PahoClient(gateway.port, pki.device(OTHER), "311") as b:
        assert b.connect() == 0, b.error
        assert b.subscribe(will_topic, 1) == 1
        mark = gateway.mark()
        start_of_second()
        t0 = time.monotonic()
        ss, _ = raw_session(gateway.port, pki.device(DEVICE), cid, keepalive=2,
                            will=(will_topic, b"gone", 1, False))
        try:
            peer = peer_of(ss)
            early = quiet_for(ss, max(0.0, t0 + 1.6 - time.monotonic()))
            assert early is None, "at %.2fs (keepalive 2 s), the gateway %s" % (
                time.monotonic() - t0, "closed" if early == "closed" else "sent %r" % early)
            got = wait_closed(ss, timeout=1.4 + 2.0)
            closed_after = time.monotonic() - t0
        finally:
            ss.close()
        assert got == b"", got
        # Not before 0.8 x 1.5 x keepalive (the quiet window above proves 1.6 s).
        assert closed_after >= 2.4, "closed after %.2fs, keepalive 2 s" % closed_after
        ev = closed_event(gateway, mark, peer)
        assert ev.get("reason") == "keepalive", ev["_line"]
        assert ev.get("state") == "relay", ev["_line"]
        assert "keepalive" in ev.get("detail", ""), ev["_line"]
        assert gateway.events("mqtt-connect", since=mark, peer=peer, keepalive="2",
                              will="yes"), gateway.report()
        assert gateway.events("mqtt-connack", since=mark, peer=peer, code="0x00",
                              keepalive="2"), gateway.report()
        m = b.wait_message()
        assert (m.topic, bytes(m.payload), m.qos) == (will_topic, b"gone", 1)
    # certbridge closed it, not mosquitto's own keepalive check.
    assert "Client %s has exceeded timeout" % cid not in broker.log_text()


def test_keepalive_pingreq_keeps_session_up(gateway, broker, pki):
    """keepalive 2 with a PINGREQ every second: up past 5 s (2.5 x the
    keepalive), each PINGREQ answered by mosquitto itself."""
    cid = "ka-ping-" + uid()
    bmark = broker.mark()
    mark = gateway.mark()
    t0 = time.monotonic()
    ss, _ = raw_session(gateway.port, pki.device(DEVICE), cid, keepalive=2)
    try:
        peer = peer_of(ss)
        pings = 0
        for _ in range(5):
            got = quiet_for(ss, 1.0)
            assert got is None, "after %d PINGREQs the gateway %s" % (
                pings, "closed" if got == "closed" else "sent %r" % got)
            ss.sendall(PINGREQ)
            pings += 1
            assert read_packet(ss, timeout=5.0) == PINGRESP
        assert time.monotonic() - t0 > 5.0
        assert not gateway.events("session-closed", since=mark, peer=peer), gateway.report()
        # The broker got every PINGREQ and answered each one.
        received = wait_broker_count(broker, "Received PINGREQ from %s\n" % cid, pings,
                                     since=bmark)
        sent = wait_broker_count(broker, "Sending PINGRESP to %s\n" % cid, pings, since=bmark)
        assert (received, sent) == (pings, pings), broker.report()
        ss.sendall(DISCONNECT)
        assert wait_closed(ss) == b""
    finally:
        ss.close()
    ev = closed_event(gateway, mark, peer)
    assert ev.get("reason") == "device-closed", ev["_line"]
    assert ev.get("packets_up") == str(2 + pings), ev["_line"]
    assert ev.get("packets_down") == str(1 + pings), ev["_line"]


def test_keepalive_zero_is_never_idle(gateway, pki):
    mark = gateway.mark()
    ss, _ = raw_session(gateway.port, pki.device(DEVICE), "ka-zero-" + uid(), keepalive=0)
    try:
        peer = peer_of(ss)
        got = quiet_for(ss, 4.0)
        assert got is None, "keepalive 0: the gateway %s" % (
            "closed" if got == "closed" else "sent %r" % got)
        ss.sendall(PINGREQ)
        assert read_packet(ss) == PINGRESP
        assert not gateway.events("session-closed", since=mark, peer=peer), gateway.report()
        gateway.wait_event("mqtt-connack", since=mark, peer=peer, keepalive="0")
        ss.sendall(DISCONNECT)
        wait_closed(ss)
    finally:
        ss.close()
    assert closed_event(gateway, mark, peer).get("reason") == "device-closed"


# mosquitto 2.0.11 refuses max_keepalive below 10 ("Invalid max_keepalive
# value"), so 10 s is the shortest server keepalive a real broker gives us.
SERVER_KEEPALIVE = 10


def test_v5_server_keepalive_wins(make_broker, make_gateway, pki):
    """mosquitto with max_keepalive 10 answers v5 CONNECTs asking for 60 s
    and for 0 (none) with Server Keep Alive 10 (property 0x13 = 0x000a):
    each device gets that CONNACK unchanged, and the gateway then holds both
    to 10 s: still open at 12 s (0.8 x 15), closed after 15 s (not 90 s,
    and not never). The two devices run side by side."""
    k = SERVER_KEEPALIVE
    b = make_broker(extra_conf="max_keepalive %d" % k)
    g = make_gateway(b.port)
    asked = (60, 0)
    # What the broker answers a direct client, for comparison.
    direct = {}
    for ka in asked:
        d, direct[ka] = direct_session(b, pki, "ska-direct-" + uid(), keepalive=ka, version=5)
        d.sendall(DISCONNECT)
        d.close()

    mark = g.mark()
    devices = []  # (keepalive asked, client id, socket, peer)
    try:
        start_of_second()
        t0 = time.monotonic()
        for ka in asked:
            cid = "ska-%d-%s" % (ka, uid())
            ss, body = raw_session(g.port, pki.device(DEVICE), cid, keepalive=ka, version=5)
            devices.append((ka, cid, ss, peer_of(ss)))
            assert body[:2] == b"\x00\x00", body
            props = v5_properties(body[2:])
            assert props.get(0x13) == k, (ka, props)
            assert b"\x13" + k.to_bytes(2, "big") in body[2:], body
            assert body == direct[ka], "keepalive %d: CONNACK through certbridge %r, " \
                "direct %r" % (ka, body, direct[ka])
        for ka, cid, ss, peer in devices:
            early = quiet_for(ss, max(0.0, t0 + 0.8 * 1.5 * k - time.monotonic()))
            assert early is None, "asked %d: at %.2fs (server keepalive %d s), the gateway " \
                "%s" % (ka, time.monotonic() - t0, k,
                        "closed" if early == "closed" else "sent %r" % early)
        for ka, cid, ss, peer in devices:
            got = wait_closed(ss, timeout=0.2 * 1.5 * k + 2.0)
            assert got == b"", got
    finally:
        for _, _, ss, _ in devices:
            ss.close()
    for ka, cid, ss, peer in devices:
        ev = closed_event(g, mark, peer)
        assert ev.get("reason") == "keepalive", ev["_line"]
        assert g.events("mqtt-connect", since=mark, peer=peer, keepalive=str(ka)), g.report()
        assert g.events("mqtt-connack", since=mark, peer=peer, code="0x00",
                        keepalive=str(k)), g.report()
        assert "Client %s has exceeded timeout" % cid not in b.log_text()


def read_for(sock, seconds):
    """Reads whatever arrives during `seconds`; returns (bytes, closed)."""
    got = b""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return got, False
        sock.settimeout(left)
        try:
            d = sock.recv(65536)
        except socket.timeout:
            return got, False
        except CLOSED_ERRORS:
            return got, True
        if not d:
            return got, True
        got += d


def test_keepalive_counts_only_what_the_device_sends(gateway, pki):
    """Messages flowing to a device are not activity of the device: a
    keepalive-2 subscriber that receives a message every 0.5 s but sends
    nothing is closed after 3 s, as the broker itself would."""
    cid = "ka-recv-" + uid()
    topic = "cbtest/ka-recv/" + uid()
    with PahoClient(gateway.port, pki.device(OTHER), "311") as pub:
        assert pub.connect() == 0, pub.error
        mark = gateway.mark()
        start_of_second()
        t0 = time.monotonic()
        ss = tls_device(gateway.port, pki.device(DEVICE))
        try:
            peer = peer_of(ss)
            # CONNECT and SUBSCRIBE in one write: nothing from the device after.
            ss.sendall(connect_packet_ex(cid, keepalive=2) + subscribe_packet_ex(1, topic, 0))
            assert read_packet(ss, timeout=10.0) == (0x20, b"\x00\x00")
            assert read_packet(ss) == (0x90, b"\x00\x01\x00")
            received, closed, n = b"", False, 0
            while not closed and time.monotonic() - t0 < 3.0 + t(2.0):
                n += 1
                pub.publish(topic, b"tick %d" % n, qos=0)
                got, closed = read_for(ss, 0.5)
                closed_after = time.monotonic() - t0  # read_for returns at the close
                received += got
        finally:
            ss.close()
    assert closed, "still open after %.2fs with keepalive 2 s" % closed_after
    assert closed_after >= 2.4, closed_after
    ticks = [p for p in split_packets(received, partial_ok=True) if p[0] & 0xF0 == 0x30]
    assert len(ticks) >= 3, "the device received %d messages" % len(ticks)
    ev = closed_event(gateway, mark, peer)
    assert ev.get("reason") == "keepalive", ev["_line"]
    assert ev.get("packets_up") == "2", ev["_line"]


# ---------------------------------------------------------------- 3. packets before the CONNACK


@pytest.mark.parametrize("version", [4, 5], ids=["311", "5"])
def test_packets_sent_before_connack(gateway, pki, version):
    """CONNECT + SUBSCRIBE + PUBLISH (QoS 1) in one write, before reading
    anything: CONNACK, SUBACK, PUBACK come back in that order and the
    publish reaches another subscriber."""
    cid = "early-" + uid()
    topic = "cbtest/early/" + uid()
    payload = b"sent before the CONNACK " + os.urandom(8)
    with MosquittoSub(gateway.port, pki.device(OTHER), topic, qos=1, version=VNAME[version],
                      client_id="early-sub-" + uid()) as sub:
        assert sub.wait_subscribed() == 1, sub.output()
        mark = gateway.mark()
        ss = tls_device(gateway.port, pki.device(DEVICE))
        try:
            peer = peer_of(ss)
            ss.sendall(connect_packet_ex(cid, 60, version)
                       + subscribe_packet_ex(11, "cbtest/cmd/" + cid, 1, version)
                       + publish_packet_ex(topic, payload, qos=1, pid=12, version=version))
            first, body = read_packet(ss, timeout=10.0)
            assert first == 0x20 and body[1] == 0, (first, body)
            first, body = read_packet(ss)
            assert first == 0x90 and body[:2] == b"\x00\x0b" and body[-1] == 1, (first, body)
            first, body = read_packet(ss)
            assert first == 0x40 and body[:2] == b"\x00\x0c", (first, body)
            assert len(body) == 2 or body[2] == 0, body  # v5: success (or omitted)
            msgs = sub.wait_messages()
            assert msgs[0] == (1, payload), msgs
            ss.sendall(DISCONNECT)
            assert wait_closed(ss) == b""
        finally:
            ss.close()
    ev = closed_event(gateway, mark, peer)
    assert ev.get("reason") == "device-closed", ev["_line"]
    assert ev.get("packets_up") == "4" and ev.get("packets_down") == "3", ev["_line"]
    assert not gateway.events(None, since=mark, reason="protocol"), gateway.report()


def _reference(cond, what):
    """A check of the broker's own behaviour (direct client): its failure is
    not the daemon's, so it fails the test as an error of the reference, not
    as an assertion about certbridge."""
    if not cond:
        pytest.fail("reference (direct to mosquitto) did not behave as assumed: " + what)


def _early_close(port, creds, kind, topic, cid, ctx=None):
    """A device that sends CONNECT and, for "publish", a QoS 0 PUBLISH and
    DISCONNECT in the same write, or for "will" a CONNECT with a will, then
    ends its side of the connection (TCP FIN) without waiting for the
    CONNACK. It keeps reading (raw bytes) until the peer closes too, so
    that the close never turns into a RST that could discard what it sent.
    Returns the device's peer address."""
    if ctx is None:
        ss = tls_device(port, creds)
    else:
        ss = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=t(5)),
                             server_hostname="localhost")
    try:
        peer = peer_of(ss)
        if kind == "publish":
            ss.sendall(connect_packet_ex(cid) + publish_packet_ex(topic, b"fire and forget")
                       + DISCONNECT)
        else:
            ss.sendall(connect_packet_ex(cid, will=(topic, b"gone", 1, False)))
        ss.shutdown(socket.SHUT_WR)  # drops TLS: what follows is raw TCP
        deadline = time.monotonic() + t(10)
        while time.monotonic() < deadline:
            ss.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not ss.recv(65536):
                    break
            except socket.timeout:
                break
            except OSError:
                break
        return peer
    finally:
        ss.close()


@pytest.mark.parametrize("kind", ["publish", "will"])
def test_device_closing_before_connack_still_reaches_the_broker(gateway, broker, pki, kind):
    """What a device sent after its CONNECT follows it upstream even when
    the device ends its side before the CONNACK: a fire-and-forget PUBLISH +
    DISCONNECT is delivered, and a device that goes away right after its
    CONNECT (no DISCONNECT) gets its will published, as with a direct
    connection to the broker (checked first, as the reference)."""
    topic = "cbtest/early-close/" + uid()
    want = b"fire and forget" if kind == "publish" else b"gone"
    with PahoClient(gateway.port, pki.device(OTHER), "311") as b:
        assert b.connect() == 0, b.error
        assert b.subscribe(topic, 1) == 1
        # Reference: the broker's behaviour for a direct client.
        _early_close(broker.port, None, kind, topic, "early-direct-" + uid(),
                     ctx=direct_context(pki))
        try:
            m = b.wait_message()
        except AssertionError:
            m = None
        _reference(m is not None and bytes(m.payload) == want,
                   "%s: subscriber got %r" % (kind, m and bytes(m.payload)))

        mark = gateway.mark()
        peer = _early_close(gateway.port, pki.device(DEVICE), kind, topic,
                            "early-close-" + uid())
        ev = closed_event(gateway, mark, peer)
        try:
            # The gateway has logged the end: whatever it sent upstream is
            # with the broker within moments.
            m = b.wait_message(timeout=1.5)
        except AssertionError:
            m = None
        assert m is not None and bytes(m.payload) == want, (
            "%s sent before the CONNACK was lost; the gateway logged: %s"
            % (kind, ev["_line"]))
        assert ev.get("reason") == "device-closed", ev["_line"]


# ---------------------------------------------------------------- 4. a second CONNECT


@pytest.mark.parametrize("when", ["established", "before-connack"])
def test_second_connect_is_a_protocol_error(gateway, pki, when):
    with Witness(gateway.port, pki) as w:
        mark = gateway.mark()
        cid = "twice-" + uid()
        if when == "established":
            ss, _ = raw_session(gateway.port, pki.device(DEVICE), cid)
            ss.sendall(connect_packet_ex(cid))
        else:
            ss = tls_device(gateway.port, pki.device(DEVICE))
            ss.sendall(connect_packet_ex(cid) + connect_packet_ex(cid))
        try:
            peer = peer_of(ss)
            got = wait_closed(ss)
        finally:
            ss.close()
        if when == "established":
            assert got == b"", got
        else:
            assert got in (b"", CONNACK_OK), got
        ev = closed_event(gateway, mark, peer)
        assert ev.get("reason") == "protocol", ev["_line"]
        assert "CONNECT" in ev.get("detail", ""), ev["_line"]
        w.check()
    assert gateway.running()


# ---------------------------------------------------------------- 5. max_packet_size


@pytest.mark.parametrize("version", [4, 5], ids=["311", "5"])
def test_packet_too_large(broker, make_gateway, pki, version):
    """max_packet_size 64K: a 100 KiB PUBLISH closes that session (v5:
    DISCONNECT 0x95 first); a 32 KiB one on another session goes through."""
    g = make_gateway(broker.port, {"mqtt": {"max_packet_size": "64K"}})
    with Witness(g.port, pki, VNAME[version]) as w:
        mark = g.mark()
        ss, _ = raw_session(g.port, pki.device(DEVICE), "big-" + uid(), version=version)
        try:
            peer = peer_of(ss)
            big = publish_packet_ex("cbtest/big/" + uid(), os.urandom(100 * 1024), qos=0,
                                    version=version)
            try:
                ss.sendall(big)
            except CLOSED_ERRORS:
                pass  # the gateway may close while we still write
            # Meanwhile another device's 32 KiB PUBLISH goes through.
            w.check(os.urandom(32 * 1024))
            got = wait_closed(ss)
        finally:
            ss.close()
        if version == 5:
            pkts = split_packets(got)
            assert len(pkts) == 1 and pkts[0][0] == 0xE0, got
            assert pkts[0][1][0] == 0x95, "DISCONNECT reason %r" % pkts[0][1]
        else:
            assert got == b"", got
        ev = closed_event(g, mark, peer)
        assert ev.get("reason") == "packet-too-large", ev["_line"]
        assert "65536" in ev.get("detail", ""), ev["_line"]
        # What to change, and whose packet it was.
        assert "[mqtt] max_packet_size" in ev["detail"] and "device" in ev["detail"], \
            ev["_line"]
        w.check(os.urandom(32 * 1024))
        # Only that session closed.
        closed = g.events("session-closed", since=mark)
        assert [e.get("peer") for e in closed] == [peer], [e["_line"] for e in closed]


@pytest.mark.parametrize("version", [4, 5], ids=["311", "5"])
def test_packet_too_large_before_connack(broker, make_gateway, pki, version):
    """CONNECT + a 100 KiB PUBLISH in one write (limit 64K): the session
    closes with packet-too-large, and the device never receives a DISCONNECT
    before a CONNACK [MQTT-3.14.0-1]: either only the close, or the
    broker's CONNACK first."""
    g = make_gateway(broker.port, {"mqtt": {"max_packet_size": "64K"}})
    mark = g.mark()
    ss = tls_device(g.port, pki.device(DEVICE))
    try:
        peer = peer_of(ss)
        try:
            ss.sendall(connect_packet_ex("big-early-" + uid(), 60, version)
                       + publish_packet_ex("cbtest/big/" + uid(), os.urandom(100 * 1024),
                                           version=version))
        except CLOSED_ERRORS:
            pass
        got = wait_closed(ss)
    finally:
        ss.close()
    ev = closed_event(g, mark, peer)
    assert ev.get("reason") == "packet-too-large", ev["_line"]
    pkts = split_packets(got)
    assert not pkts or pkts[0][0] == 0x20, (
        "the device's first packet is %r, not a CONNACK" % encode_packet(*pkts[0]))


@pytest.mark.parametrize("version", [4, 5], ids=["311", "5"])
def test_packet_too_large_from_broker(broker, make_gateway, pki, version):
    """A 100 KiB message for a subscriber, limit 64K: that session closes
    (v5: DISCONNECT 0x95 first), with no part of the PUBLISH delivered."""
    g = make_gateway(broker.port, {"mqtt": {"max_packet_size": "64K"}})
    topic = "cbtest/big-down/" + uid()
    mark = g.mark()
    ss, connack = raw_session(g.port, pki.device(DEVICE), "big-down-" + uid(),
                              version=version)
    try:
        peer = peer_of(ss)
        ss.sendall(subscribe_packet_ex(1, topic, 0, version))
        first, body = read_packet(ss)
        assert first == 0x90 and body[-1] == 0, (first, body)
        r = cbtest.mosquitto_pub(broker.port, pki.upstream_client(), topic,
                                 os.urandom(100 * 1024), client_id="big-pub-" + uid())
        assert r.rc == 0, r
        got = wait_closed(ss)
    finally:
        ss.close()
    if version == 5:
        pkts = split_packets(got)
        assert len(pkts) == 1 and pkts[0][0] == 0xE0 and pkts[0][1][0] == 0x95, got
    else:
        assert got == b"", got
    ev = closed_event(g, mark, peer)
    assert ev.get("reason") == "packet-too-large", ev["_line"]
    # Nothing of the PUBLISH went down: CONNACK and SUBACK (plus, maybe,
    # the gateway's own DISCONNECT).
    relayed = len(encode_packet(0x20, connack)) + len(encode_packet(0x90, body))
    assert relayed <= int(ev.get("bytes_down", "-1")) <= relayed + len(got), ev["_line"]


# ---------------------------------------------------------------- 6. undecodable remaining length


@pytest.mark.parametrize("data", [b"\x30\xff\xff\xff\xff\x01", b"\xc0\x80\x80\x80\x80\x01"],
                         ids=["publish-ff", "pingreq-80"])
def test_bad_remaining_length_after_connect(gateway, pki, data):
    with Witness(gateway.port, pki) as w:
        mark = gateway.mark()
        ss, _ = raw_session(gateway.port, pki.device(DEVICE), "badlen-" + uid())
        try:
            peer = peer_of(ss)
            ss.sendall(data)
            got = wait_closed(ss)
        finally:
            ss.close()
        assert got == b"", got
        ev = closed_event(gateway, mark, peer)
        assert ev.get("reason") == "protocol", ev["_line"]
        assert "remaining length" in ev.get("detail", ""), ev["_line"]
        w.check()


# ---------------------------------------------------------------- 7. will


@pytest.mark.parametrize("how,version", [
    ("rst", 4), ("rst", 5), ("fin", 4), ("disconnect", 4), ("disconnect", 5),
    ("disconnect-with-will", 5),
])
def test_will_on_abrupt_loss_only(gateway, broker, pki, how, version):
    """A device lost without DISCONNECT (RST, or a bare TCP close) gets its
    will published; after DISCONNECT it does not (v5: unless the DISCONNECT
    asks for it with reason 0x04: the broker's call, passed through)."""
    cid = "will-%s-%s" % (how, uid())
    will_topic = "w/" + cid
    will_expected = how in ("rst", "fin", "disconnect-with-will")
    with PahoClient(gateway.port, pki.device(OTHER), VNAME[version]) as b:
        assert b.connect() == 0, b.error
        assert b.subscribe(will_topic, 1) == 1
        mark = gateway.mark()
        bmark = broker.mark()
        ss, _ = raw_session(gateway.port, pki.device(DEVICE), cid, version=version,
                            will=(will_topic, b"gone", 1, False))
        peer = peer_of(ss)
        if how == "rst":
            abort(ss)
        elif how == "fin":
            ss.close()  # TCP FIN, no DISCONNECT, no close_notify
        else:
            reason = 0x04 if how == "disconnect-with-will" else 0
            ss.sendall(disconnect_packet(version, reason))
            try:
                wait_closed(ss)
            finally:
                ss.close()
        ev = closed_event(gateway, mark, peer)
        assert ev.get("reason") == "device-closed", ev["_line"]
        detail = ev.get("detail", "")
        if how in ("rst", "fin"):
            assert "without DISCONNECT" in detail, ev["_line"]
        else:
            assert "DISCONNECT" in detail and "without" not in detail, ev["_line"]
        if will_expected:
            m = b.wait_message()
            assert (m.topic, bytes(m.payload), m.qos) == (will_topic, b"gone", 1)
        else:
            # Once mosquitto has logged the end of the device's connection,
            # a will would already be on its way to B; a marker published
            # after that must be the first thing B receives.
            broker.wait_log(r"Client %s (disconnected|closed its connection)"
                            % re.escape(cid), since=bmark)
            b.publish(will_topic, b"marker", qos=1)
            m = b.wait_message()
            assert bytes(m.payload) == b"marker", "will published after DISCONNECT: %r" % (
                bytes(m.payload),)
        assert b.messages.empty(), "unexpected extra message"


# ---------------------------------------------------------------- 8. the broker closes


def _takeover(broker, pki, ss_or_none, cid, version):
    """Another client connects straight to the broker with client id cid;
    returns what the old connection (ss_or_none, or a direct one made
    here) received until it was closed."""
    old = ss_or_none
    if old is None:
        old, _ = direct_session(broker, pki, cid, version=version)
    try:
        new, _ = direct_session(broker, pki, cid, version=version)
        try:
            return wait_closed(old)
        finally:
            new.sendall(DISCONNECT)
            new.close()
    finally:
        old.close()


def _bad_publish(kind, version):
    if kind == "wildcard-topic":  # a PUBLISH topic must not hold wildcards
        return publish_packet_ex("cbtest/+/bad", b"x", version=version)
    # A topic that is not UTF-8: a field certbridge does not use, so the
    # broker's to judge (docs/architecture.md, "What certbridge leaves to the
    # broker").
    return encode_packet(0x30, b"\x00\x03a\xffb" + (b"\x00" if version == 5 else b"") + b"x")


def _bad_publish_answer(broker, pki, kind, version):
    """What mosquitto sends a direct client for _bad_publish before closing."""
    d, _ = direct_session(broker, pki, "bad-direct-" + uid(), version=version)
    try:
        d.sendall(_bad_publish(kind, version))
        return wait_closed(d)
    finally:
        d.close()


@pytest.mark.parametrize("kind,version", [
    ("takeover", 4), ("takeover", 5),
    ("wildcard-topic", 4), ("wildcard-topic", 5), ("bad-utf8-topic", 5),
])
def test_broker_close_delivers_then_closes(gateway, broker, pki, kind, version):
    """The broker ends a session: another client takes it over (same client
    id, straight to the broker), or the device sent a PUBLISH the broker
    refuses (v5: mosquitto answers DISCONNECT 0x82 protocol error or 0x81
    malformed packet, then closes). The device receives exactly the bytes
    a direct client of the broker receives, then the close:
    reason=broker-closed."""
    if kind == "takeover":
        want = _takeover(broker, pki, None, "takeover-direct-" + uid(), version)
        # MQTT 5 allows DISCONNECT 0x8E "session taken over" here;
        # mosquitto 2.0.11 sends nothing and just closes.
        assert want in (b"",) or split_packets(want)[0][1][:1] == b"\x8e", want
    else:
        want = _bad_publish_answer(broker, pki, kind, version)
        if version == 5:
            pkts = split_packets(want)
            assert len(pkts) == 1 and pkts[0][0] == 0xE0, want
            assert pkts[0][1][:1] in (b"\x81", b"\x82"), want

    cid = "bclose-" + uid()
    mark = gateway.mark()
    ss, connack = raw_session(gateway.port, pki.device(DEVICE), cid, version=version)
    peer = peer_of(ss)
    if kind == "takeover":
        got = _takeover(broker, pki, ss, cid, version)
    else:
        try:
            ss.sendall(_bad_publish(kind, version))
            got = wait_closed(ss)
        finally:
            ss.close()
    assert got == want, "through certbridge %r, direct %r" % (got, want)
    ev = closed_event(gateway, mark, peer)
    assert ev.get("reason") == "broker-closed", ev["_line"]
    # Down: the CONNACK, then what the broker sent before it closed.
    assert ev.get("bytes_down") == str(len(encode_packet(0x20, connack)) + len(want)), \
        ev["_line"]
    assert ev.get("packets_down") == str(1 + len(split_packets(want))), ev["_line"]


# ---------------------------------------------------------------- 9. never on the broker's behalf


def test_nothing_answered_for_a_stopped_broker(make_broker, make_gateway, pki):
    """With mosquitto stopped (SIGSTOP): no PINGRESP, no PUBACK, and a new
    CONNECT gets "server unavailable" after connect_timeout, never 0x00.
    After SIGCONT the broker's answers arrive."""
    b = make_broker()
    ct = t(2.0)
    g = make_gateway(b.port, {"upstream": {"connect_timeout": "%dms" % (ct * 1000)}})
    d1, _ = raw_session(g.port, pki.device(DEVICE), "stopped-" + uid(), keepalive=0)
    late = []
    try:
        mark = g.mark()
        os.kill(b.pid, signal.SIGSTOP)  # our broker, by its PID
        try:
            d1.sendall(PINGREQ + publish_packet_ex("cbtest/stopped/" + uid(), b"q1",
                                                   qos=1, pid=7))
            for version in (4, 5):
                s = tls_device(g.port, pki.device(OTHER))
                late.append((version, s))
                sent = g.mark()
                s.sendall(connect_packet_ex("stopped-%d-%s" % (version, uid()), 60, version))
                # Both have the same identity: the second must find the
                # first connecting, not waiting in the connect queue, or
                # it takes the first's place there (reason=takeover, a
                # rule of its own, tested in test_limits).
                g.wait_event("state", since=sent, device=OTHER, to="connecting")
            got = quiet_for(d1, 1.5)
            assert got is None, "with the broker stopped, the device got %r" % (got,)
            for version, s in late:
                first, body = read_packet(s, timeout=ct + 5.0)
                assert first == 0x20, (first, body)
                want = 0x03 if version == 4 else 0x88
                assert body[1] == want, "CONNACK code %#x, want %#x" % (body[1], want)
                assert wait_closed(s) == b""
                ev = g.wait_event("upstream-failed", since=mark, peer=peer_of(s))
                assert ev.get("reason") == "timeout", ev["_line"]
                ev = closed_event(g, mark, peer_of(s))
                assert ev.get("reason") == "upstream-unavailable", ev["_line"]
            assert not g.events("mqtt-connack", since=mark, code="0x00"), g.report()
            got = quiet_for(d1, 0.0)
            assert got is None, "with the broker stopped, the device got %r" % (got,)
        finally:
            os.kill(b.pid, signal.SIGCONT)
        assert read_packet(d1, timeout=10.0) == PINGRESP
        assert read_packet(d1, timeout=10.0) == (0x40, b"\x00\x07")
        d1.sendall(DISCONNECT)
        wait_closed(d1)
    finally:
        d1.close()
        for _, s in late:
            s.close()


# ---------------------------------------------------------------- 10. counters


def test_session_counters(gateway, pki):
    """CONNECT + 3 PUBLISH (QoS 1) + DISCONNECT up, CONNACK + 3 PUBACK down:
    the session-closed line counts every packet and byte."""
    mark = gateway.mark()
    cid = "count-" + uid()
    topic = "cbtest/count/" + uid()
    up = [connect_packet_ex(cid, 60, 4)]
    down = []
    ss = tls_device(gateway.port, pki.device(DEVICE))
    try:
        peer = peer_of(ss)
        ss.sendall(up[0])
        down.append(encode_packet(*read_packet(ss, timeout=10.0)))
        assert down[0] == CONNACK_OK, down
        for i in range(3):
            pkt = publish_packet_ex(topic, b"count %d" % i, qos=1, pid=i + 1)
            up.append(pkt)
            ss.sendall(pkt)
            ack = read_packet(ss)
            assert ack == (0x40, (i + 1).to_bytes(2, "big")), ack
            down.append(encode_packet(*ack))
        up.append(DISCONNECT)
        ss.sendall(DISCONNECT)
        assert wait_closed(ss) == b""
    finally:
        ss.close()
    ev = closed_event(gateway, mark, peer)
    assert ev.get("reason") == "device-closed", ev["_line"]
    assert ev.get("packets_up") == "5", ev["_line"]
    assert ev.get("packets_down") == "4", ev["_line"]
    assert ev.get("bytes_up") == str(sum(map(len, up))), ev["_line"]
    assert ev.get("bytes_down") == str(sum(map(len, down))), ev["_line"]
