"""Bounded under attack and at fleet scale (docs/configuration.md:
[mqtt] max_connect_size, [downstream] max_handshakes and
max_handshakes_per_ip; the connect queue's takeover rule).

- max_connect_size: a CONNECT larger than it is refused from its fixed
  header (3.1.1: closed; 5.0: CONNACK 0x95), reason=packet-too-large; one
  of exactly that size passes; 300 devices each holding all but the last
  byte of a CONNECT just under it cost at most 256 KiB of RSS each, TLS
  included;
- handshake slots: connections before their CONNECT are capped in all
  and per source address; above either they are closed at accept
  (event=connection-refused reason=limit, once a second, with a
  count), counted by limit; 500 idle sockets from 127.0.0.2 do not keep a
  device at 127.0.0.1 out; established sessions never count;
- takeover: thirty CONNECTs of one device held back by connect_rate hold
  one place in the queue (the older ones closed, reason=takeover), so
  another device is not starved; with identity = none the client id is
  the key.

Raw sockets and raw MQTT bytes (exact CONNACKs), from other addresses of
127.0.0.0/8 where the source matters. Every wait is bounded.
"""

import datetime
import re
import socket
import ssl
import time

import pytest

import cbtest
from cbtest import RSS_MEANINGFUL, t, uid
from rawmqtt import (_varint, connect_packet_ex, read_connack, read_packet, tls_device,
                     wait_closed)


def rss_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def raw_tcp(port, source="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(t(5))
    s.connect(("127.0.0.1", port))
    return s


def closed_soon(sock, within=2.0):
    """Whether the peer closes sock (EOF or reset) within `within` s."""
    sock.settimeout(t(within))
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def device_from(g, creds, source):
    """A TLS connection of creds from the source address (handshake done)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(creds.cafile)
    ctx.load_cert_chain(creds.cert, creds.key)
    s = raw_tcp(g.port, source)
    return ctx.wrap_socket(s, server_hostname="localhost")


def connected(g, creds, cid, source="127.0.0.1", version=4):
    ss = device_from(g, creds, source)
    ss.sendall(connect_packet_ex(cid, 60, version))
    first, body = read_packet(ss, timeout=10.0)
    assert first == 0x20 and body[1] == 0, (first, body, g.report())
    return ss


def big_connect(total, version=4):
    """A well-formed CONNECT of exactly `total` bytes (the client id pads
    it), or as close as the encoding allows."""
    for cid_len in range(total, -1, -1):
        pkt = connect_packet_ex("x" * cid_len, 60, version)
        if len(pkt) <= total:
            assert len(pkt) == total, (len(pkt), total)
            return pkt
    raise AssertionError("no CONNECT of %d bytes" % total)


def claimed_connect_head(remaining, version):
    """The first bytes of a CONNECT whose fixed header claims `remaining`
    bytes: the header and the protocol name and level only."""
    return b"\x10" + _varint(remaining) + b"\x00\x04MQTT" + bytes([version])


# ---------------------------------------------------------------- max_connect_size


@pytest.mark.parametrize("version", [4, 5])
def test_connect_over_max_connect_size_refused_from_header(broker, make_gateway, pki, version):
    """A CONNECT claiming 1 MiB: refused before its bytes come (the
    default limit is 64K); 5.0 gets CONNACK 0x95, 3.1.1 a close."""
    g = make_gateway(broker.port)
    mark = g.mark()
    ss = tls_device(g.port, pki.device("dev-old-1"))
    peer = re.compile(r":%d$" % ss.getsockname()[1])
    try:
        ss.sendall(claimed_connect_head(1024 * 1024, version))
        got = read_connack(ss)
        if version == 5:
            assert got == (0x20, b"\x00\x95\x00"), got
        else:
            assert got is None, got
        wait_closed(ss)
    finally:
        ss.close()
    ev = g.wait_event("session-closed", since=mark, peer=peer)
    assert ev.get("reason") == "packet-too-large", ev["_line"]
    assert "max_connect_size" in ev.get("detail", ""), ev["_line"]


@pytest.mark.parametrize("version", [4, 5])
def test_connect_at_max_connect_size_passes(broker, make_gateway, pki, version):
    g = make_gateway(broker.port, {"mqtt": {"max_connect_size": "1K", "clientid": "keep"}})
    ss = tls_device(g.port, pki.device("dev-old-1"))
    try:
        ss.sendall(big_connect(1024, version))
        first, body = read_packet(ss, timeout=10.0)
        assert first == 0x20 and body[1] == 0, (first, body)
    finally:
        ss.close()
    mark = g.mark()
    ss = tls_device(g.port, pki.device("dev-old-1"))
    peer = re.compile(r":%d$" % ss.getsockname()[1])
    try:
        ss.sendall(big_connect(1025, version))
        got = read_connack(ss)
        assert got == ((0x20, b"\x00\x95\x00") if version == 5 else None), got
    finally:
        ss.close()
    ev = g.wait_event("session-closed", since=mark, peer=peer)
    assert ev.get("reason") == "packet-too-large", ev["_line"]


@pytest.mark.parametrize("size", [64 * 1024 - 1, 1024 * 1024])
def test_max_connect_size_bounds_memory_before_connack(broker, make_gateway, pki, size):
    """300 devices each send all but the last byte of a CONNECT just under
    max_connect_size (64K), or of 1 MiB (refused from its header, the rest
    never held): at most 256 KiB of RSS each, TLS included."""
    n = 300
    g = make_gateway(broker.port, {"downstream": {"max_handshakes_per_ip": "1000",
                                                  "handshake_timeout": "60s"}})
    if size < 64 * 1024:
        pkt = big_connect(size)
    else:
        head = claimed_connect_head(size - 4, 4)
        pkt = head + b"\x00" * (size - len(head))
    # A first session, so one-time allocations are not counted.
    connected(g, pki.device("dev-old-1"), "warm-%s" % uid()).close()
    time.sleep(t(0.3))
    before = rss_kib(g.pid)
    socks = []
    try:
        for i in range(n):
            ss = tls_device(g.port, pki.device("dev-old-1"))
            socks.append(ss)
            try:
                ss.sendall(pkt[:-1])
            except OSError:
                assert size > 64 * 1024  # refused while sending: fine
        time.sleep(t(1.0))
        after = rss_kib(g.pid)
        per = (after - before) / n
        print("%d-byte CONNECTs: %.1f KiB of RSS per session (%d -> %d KiB)"
              % (size, per, before, after))
        assert not RSS_MEANINGFUL or per <= 256, (
            "%.1f KiB of RSS per session (%d -> %d KiB)" % (per, before, after))
        refused = g.events("session-closed", reason="packet-too-large")
        if size < 64 * 1024:
            # All still waiting for their last byte, not refused.
            assert not refused, g.report()
        else:
            assert len(refused) == n, len(refused)
    finally:
        for ss in socks:
            ss.close()


# ---------------------------------------------------------------- handshake slots


def log_seconds(ev):
    """A log line's ts= as seconds (UTC)."""
    ts = datetime.datetime.strptime(ev["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
    return ts.replace(tzinfo=datetime.timezone.utc).timestamp()


def refusal_lines_covering(g, mark, refused, timeout=5.0):
    """The connection-refused lines since mark, once their count= fields add
    up to refused (bounded wait); never more than that."""
    deadline = time.monotonic() + t(timeout)
    while True:
        lines = g.events("connection-refused", since=mark, reason="limit")
        total = sum(int(e["count"]) for e in lines)
        assert total <= refused, [e["_line"] for e in lines]
        if total == refused:
            return lines
        assert time.monotonic() < deadline, "%d of %d refusals logged\n%s" % (
            total, refused, g.report())
        time.sleep(0.1)


def test_per_ip_cap_refuses_at_accept_and_spares_others(broker, make_gateway, pki):
    g = make_gateway(broker.port, {"downstream": {"max_handshakes_per_ip": "5"}},
                     admin=True)
    mark = g.mark()
    idle = [raw_tcp(g.port, "127.0.0.2") for _ in range(20)]
    try:
        closed = [s for s in idle if closed_soon(s, 0.5)]
        assert len(closed) == 15, "%d of 20 closed; want 15" % len(closed)
        ev = g.wait_event("connection-refused", since=mark)
        assert ev.get("reason") == "limit" and ev.get("limit") == "max_handshakes_per_ip", \
            ev["_line"]
        assert ev.get("peer") == "127.0.0.2", ev["_line"]
        # At most one line a second, and every refusal counted in one:
        # those held back are written a second later though no further
        # refusal comes (docs/troubleshooting.md, connection-refused).
        lines = refusal_lines_covering(g, mark, 15)
        assert len(lines) == 2, [e["_line"] for e in lines]
        assert log_seconds(lines[1]) - log_seconds(lines[0]) >= 0.95, lines
        # Another address is not affected.
        connected(g, pki.device("dev-old-1"), "pip-%s" % uid()).close()
        connected(g, pki.device("dev-new-1"), "pip2-%s" % uid(), source="127.0.0.3").close()
        _, m = cbtest.scrape(g.admin_port)
        key = cbtest.metric_key("certbridge_limit_refusals_total", limit="max_handshakes_per_ip")
        assert m[key] == 15, m[key]
        assert m[cbtest.metric_key("certbridge_connect_refused_total", reason="limit")] == 15
        assert m[cbtest.metric_key("certbridge_handshakes_pending")] == 5
    finally:
        for s in idle:
            s.close()


def test_one_refusal_line_a_second_whatever_the_limit(broker, make_gateway):
    """Refusals by two limits in the same second make one line (reason=limit
    is one reason), naming the latest; the rest are counted in it or in the
    line a second later."""
    g = make_gateway(broker.port, {"downstream": {"max_handshakes_per_ip": "2",
                                                  "max_handshakes": "4"}})
    mark = g.mark()
    idle = []
    try:
        idle += [raw_tcp(g.port, "127.0.0.2") for _ in range(4)]   # 2 refused per IP
        idle += [raw_tcp(g.port, "127.0.0.%d" % (3 + i)) for i in range(4)]  # 2 total
        lines = refusal_lines_covering(g, mark, 4)
        assert {e["limit"] for e in lines} <= {"max_handshakes_per_ip", "max_handshakes"}
        for a, b in zip(lines, lines[1:]):
            assert log_seconds(b) - log_seconds(a) >= 0.95, [e["_line"] for e in lines]
        assert len(lines) == 2, [e["_line"] for e in lines]
    finally:
        for s in idle:
            s.close()


def test_500_idle_sockets_do_not_lock_a_device_out(broker, make_gateway, pki):
    """The defaults (max_handshakes 1000, per address 64): a host at
    127.0.0.2 holding 500 idle TCP connections takes 64 slots."""
    g = make_gateway(broker.port)
    idle = []
    try:
        for _ in range(500):
            idle.append(raw_tcp(g.port, "127.0.0.2"))
        held = [s for s in idle if not closed_soon(s, 0.05)]
        assert len(held) == 64, len(held)
        for i in range(3):
            connected(g, pki.device("dev-old-1"), "free-%d-%s" % (i, uid())).close()
    finally:
        for s in idle:
            s.close()


def test_total_cap_and_established_sessions_do_not_count(broker, make_gateway, pki):
    g = make_gateway(broker.port, {"downstream": {"max_handshakes": "10"}})
    # Established sessions never count: twenty of them, one after another.
    sessions = [connected(g, pki.device("dev-old-1"), "est-%d-%s" % (i, uid()))
                for i in range(20)]
    mark = g.mark()
    idle = []
    try:
        for i in range(10):
            idle.append(raw_tcp(g.port, "127.0.0.%d" % (2 + i)))
        time.sleep(t(0.2))
        extra = raw_tcp(g.port, "127.0.0.20")
        assert closed_soon(extra), "the 11th pending connection was not refused"
        extra.close()
        ev = g.wait_event("connection-refused", since=mark)
        assert ev.get("limit") == "max_handshakes" and ev.get("max") == "10", ev["_line"]
        # A slot frees as soon as one completes or closes.
        idle.pop().close()
        deadline = time.monotonic() + t(5)
        while True:
            try:
                connected(g, pki.device("dev-new-1"), "slot-%s" % uid(),
                          source="127.0.0.30").close()
                break
            except (OSError, AssertionError, ssl.SSLError):
                assert time.monotonic() < deadline, g.report()
                time.sleep(0.05)
        assert not g.events("session-closed", since=0, reason="limit"), g.report()
    finally:
        for s in idle + sessions:
            s.close()


def test_max_connections_below_max_handshakes_caps_them(broker, make_gateway, pki):
    g = make_gateway(broker.port, {"gateway": {"max_connections": "3"}})
    mark = g.mark()
    idle = [raw_tcp(g.port, "127.0.0.%d" % (2 + i)) for i in range(3)]
    try:
        extra = raw_tcp(g.port, "127.0.0.9")
        assert closed_soon(extra)
        extra.close()
        ev = g.wait_event("connection-refused", since=mark)
        assert ev.get("limit") == "max_connections", ev["_line"]
    finally:
        for s in idle:
            s.close()


# ---------------------------------------------------------------- takeover


def queue_gateway(make_gateway, broker, identity="cn"):
    return make_gateway(broker.port, {
        "upstream": {"connect_rate": "1", "connect_timeout": "20s"},
        "mqtt": {"identity": identity, "clientid": "keep"},
        "downstream": {"handshake_timeout": "30s"}})


def test_one_device_holds_one_queue_place(broker, make_gateway, pki):
    """connect_rate = 1: thirty CONNECTs of dev-old-1 in a burst keep one
    place between them; dev-new-1, queued after them, is served within a
    few seconds instead of timing out behind them."""
    g = queue_gateway(make_gateway, broker)
    old = pki.device("dev-old-1")
    mark = g.mark()
    socks = []
    try:
        for i in range(30):
            ss = tls_device(g.port, old)
            ss.sendall(connect_packet_ex("burst-%d-%s" % (i, uid()), 60, 4))
            socks.append(ss)
        t0 = time.monotonic()
        new = tls_device(g.port, pki.device("dev-new-1"))
        socks.append(new)
        new.sendall(connect_packet_ex("patient-%s" % uid(), 60, 4))
        first, body = read_packet(new, timeout=15.0)
        assert (first, body) == (0x20, b"\x00\x00"), (first, body)
        assert time.monotonic() - t0 < t(8), "dev-new-1 waited behind the burst"
        taken = g.events("session-closed", since=mark, reason="takeover")
        assert len(taken) >= 27, "%d takeovers\n%s" % (len(taken), g.report())
        assert all(e.get("device") == "dev-old-1" for e in taken), taken
        assert "took its place" in taken[0].get("detail", ""), taken[0]["_line"]
        # The taken-over devices were closed without any CONNACK.
        answered = 0
        for ss in socks[:29]:
            got = read_connack(ss)
            answered += got is not None
        assert answered <= 1, "%d of the replaced devices got a CONNACK" % answered
    finally:
        for ss in socks:
            ss.close()


def test_identity_none_takes_over_by_client_id(broker, make_gateway, pki):
    g = queue_gateway(make_gateway, broker, identity="none")
    mark = g.mark()
    socks = []
    try:
        # Fill the one token first, so the rest really wait.
        for cid in ["first-%s" % uid(), "same", "same", "other-%s" % uid()]:
            ss = tls_device(g.port, pki.device("dev-old-1"))
            ss.sendall(connect_packet_ex(cid, 60, 4))
            socks.append(ss)
        taken = cbtest.wait_until("a takeover", lambda: g.events(
            "session-closed", since=mark, reason="takeover"), timeout=5)
        assert len(taken) == 1, taken
        time.sleep(t(0.5))
        assert len(g.events("session-closed", since=mark, reason="takeover")) == 1
    finally:
        for ss in socks:
            ss.close()
