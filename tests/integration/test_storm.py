"""The broker side of a device's CONNECT: failures, deadlines and storm
control ([upstream] connect_timeout, connect_rate), docs/configuration.md
"[upstream]: the cloud broker", docs/architecture.md "The upstream queue".

- a broker that refuses TCP, that never finishes TLS, or that never sends a
  CONNACK: the device gets CONNACK "server unavailable" (0x03 / 0x88) within
  connect_timeout, and the log names the cause and the stage;
- a broker whose chain does not verify (unknown root, wrong name, expired):
  "server unavailable", and a handshake-failed line with the reason and the
  chain the broker sent;
- a reconnect storm: every device gets in, paced at connect_rate (checked on
  the gateway's own millisecond timestamps, with margins), none refused;
- a device that leaves while it waits in the queue costs the others nothing.

Deadlines given to the gateway are scaled with cbtest.t() (valgrind), so a
slow run changes how long the tests take, not what they check.
"""

import datetime
import re
import socket
import ssl
import threading
import time

import pytest

import cbtest
from cbtest import PahoClient, broker_clients, mkpki, t, uid, wait_broker_client
from rawmqtt import (CLOSED_ERRORS, DISCONNECT, connect_packet, connect_packet_fields,
                     read_connack, tls_device, wait_closed)

VERSIONS = ("311", "5")
PROTO = {"311": 4, "5": 5}
SERVER_UNAVAILABLE = {"311": 0x03, "5": 0x88}
DEVICE = "dev-old-1"


@pytest.fixture(autouse=True)
def perturbed_malloc(monkeypatch):
    """glibc fills freed memory (0xa5): gateways started in a test inherit
    it, so a read after free shows in a plain build too."""
    monkeypatch.setenv("MALLOC_PERTURB_", "165")


def seconds_setting(seconds):
    """A duration for the INI, scaled for slow runs, in whole milliseconds."""
    return "%dms" % int(t(seconds) * 1000)


def unavailable_bytes(version):
    return (0x20, bytes([0, SERVER_UNAVAILABLE[version]]) + (b"\x00" if version == "5" else b""))


def ts_ms(ev):
    """The gateway's timestamp of a log line, in ms since the epoch."""
    d = datetime.datetime.strptime(ev["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
    return int(d.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


def connect_unavailable(port, creds, version, bound):
    """A paho device connects; it must get CONNACK "server unavailable"
    and then be closed, all within bound seconds. Returns the elapsed time."""
    c = PahoClient(port, creds, version, client_id="unavail-%s" % uid())
    t0 = time.monotonic()
    try:
        code = c.connect(timeout=bound + 5)
        elapsed = time.monotonic() - t0
        assert code == SERVER_UNAVAILABLE[version], (
            "CONNACK %s (error %s), want %#x" % (code, c.error, SERVER_UNAVAILABLE[version]))
        assert elapsed <= bound, "CONNACK came after %.1fs, bound %.1fs" % (elapsed, bound)
        assert c.disconnected.wait(t(5.0)), "connection left open after CONNACK"
        return elapsed
    finally:
        c.close()


def raw_unavailable(port, creds, version):
    s = tls_device(port, creds)
    try:
        s.sendall(connect_packet_fields("raw-%s" % uid(), version=PROTO[version]))
        assert read_connack(s, timeout=30.0) == unavailable_bytes(version)
        assert wait_closed(s, timeout=5.0) == b""
    finally:
        s.close()


def in_parallel(fn, args_list):
    """Runs fn(*args) for each args in threads; re-raises the first failure."""
    errors, threads = [], []

    def run(args):
        try:
            fn(*args)
        except BaseException as e:  # noqa: B902 - handed to the test thread
            errors.append(e)

    for args in args_list:
        th = threading.Thread(target=run, args=(args,), daemon=True)
        th.start()
        threads.append(th)
    for th in threads:
        th.join(t(60))
        assert not th.is_alive(), "a client thread did not finish"
    if errors:
        raise errors[0]


class FakeBroker:
    """A "broker" on 127.0.0.1 that never answers a CONNECT. With tls it
    completes the TLS handshake with the lab broker certificate (and checks
    the gateway's client certificate against the cloud client CA), then only
    reads; without tls it accepts TCP and never says a word."""

    def __init__(self, pki, tls=True):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.ctx = None
        if tls:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(pki("broker-chain.pem"), pki("broker.key"))
            self.ctx.load_verify_locations(pki("cloud-client-ca.pem"))
            self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.lock = threading.Lock()
        self.accepted = 0
        self.handshakes = 0
        self.received = []  # bytes read on each connection (after TLS)
        self.errors = []
        self._stop = threading.Event()
        self._threads = []
        self._socks = []

    def __enter__(self):
        th = threading.Thread(target=self._accept, daemon=True)
        th.start()
        self._threads.append(th)
        return self

    def _accept(self):
        self.lsock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                s, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self._socks.append(s)
                self.received.append(b"")
                idx = len(self.received) - 1
            th = threading.Thread(target=self._serve, args=(s, idx), daemon=True)
            th.start()
            self._threads.append(th)

    def _serve(self, s, idx):
        try:
            if self.ctx is not None:
                s.settimeout(t(10))
                s = self.ctx.wrap_socket(s, server_side=True)
                with self.lock:
                    self.handshakes += 1
                    self._socks.append(s)
            s.settimeout(0.1)
            while not self._stop.is_set():
                try:
                    d = s.recv(4096)
                except socket.timeout:
                    continue
                if not d:
                    return
                with self.lock:
                    self.received[idx] += d
        except CLOSED_ERRORS:
            return
        except (OSError, ssl.SSLError) as e:
            with self.lock:
                self.errors.append("%s: %s" % (type(e).__name__, e))

    def __exit__(self, *exc):
        self._stop.set()
        self.lsock.close()
        for th in self._threads:
            th.join(5)
        with self.lock:
            for s in self._socks:
                try:
                    s.close()
                except OSError:
                    pass
        return False


# ---------------------------------------------------------------- 1. TCP refused


@pytest.mark.parametrize("tls", ["1.3", "1.2"])
def test_broker_that_does_not_trust_the_gateway(make_broker, make_gateway, pki, tls):
    """A broker whose cafile does not hold the gateway's client CA: the
    device gets "server unavailable", the log says the broker refused the
    gateway and what to check, and the handshake counts as failed
    (peer-rejected), also in TLS 1.3, where the broker judges the client
    certificate after the handshake (docs/metrics.md)."""
    b = make_broker(cafile=pki("ca-old.pem"))  # not the gateway's issuer
    g = make_gateway(b.port, {"upstream": {"tls_versions": tls}}, admin=True)
    dev = pki.device(DEVICE)
    for version in VERSIONS:
        mark = g.mark()
        connect_unavailable(g.port, dev, version, bound=t(10))
        ev = g.wait_event("handshake-failed", since=mark, side="upstream")
        assert ev.get("reason") in ("peer-rejected", "protocol"), ev["_line"]
        assert "[upstream] cert" in ev.get("detail", ""), ev["_line"]
        assert "(null)" not in ev["_line"], ev["_line"]
        ev = g.wait_event("session-closed", since=mark)
        assert ev.get("reason") == "upstream-unavailable", ev["_line"]
    _, m = cbtest.scrape(g.admin_port)
    ok = m.get(cbtest.metric_key("certbridge_handshakes_total", side="upstream",
                                 result="ok", reason=""), 0)
    failed = sum(v for k, v in m.items() if k[0] == "certbridge_handshakes_total"
                 and dict(k[1]).get("side") == "upstream"
                 and dict(k[1]).get("result") == "fail")
    assert ok == 0 and failed == len(VERSIONS), (ok, failed)


def test_broker_refuses_tcp(make_broker, make_gateway, pki):
    b = make_broker()
    port = b.port
    b.stop()
    assert not cbtest.port_listening(port)
    g = make_gateway(port, {"upstream": {"connect_timeout": seconds_setting(3)}})
    dev = pki.device(DEVICE)
    for version in VERSIONS:
        mark = g.mark()
        connect_unavailable(g.port, dev, version, bound=t(3) + 2)
        ev = g.wait_event("upstream-failed", since=mark, side="upstream")
        assert ev.get("reason") == "upstream-unavailable", ev["_line"]
        assert "refused" in ev.get("detail", "").lower(), ev["_line"]
        ev = g.wait_event("session-closed", since=mark)
        assert ev.get("reason") == "upstream-unavailable", ev["_line"]
        raw_unavailable(g.port, dev, version)


# ---------------------------------------------------------------- 2. no answer in time


@pytest.mark.parametrize("tls,stage", [(True, "waiting for CONNACK"),
                                       (False, "TCP/TLS connect")],
                         ids=["no-connack", "no-tls"])
def test_broker_silent_until_connect_timeout(make_gateway, pki, tls, stage):
    """Both versions at once against a broker that never answers: each
    device gets "server unavailable" once connect_timeout (2 s) has run
    out, not before and not much after."""
    timeout = t(2)
    with FakeBroker(pki, tls=tls) as fake:
        g = make_gateway(fake.port, {"upstream": {"connect_timeout": seconds_setting(2)}})
        mark = g.mark()
        elapsed = {}

        # Two devices, one per version: one device connecting twice at
        # once would rightly keep one place in the connect queue.
        def one(version, device):
            elapsed[version] = connect_unavailable(g.port, pki.device(device), version,
                                                   bound=timeout + 3)

        in_parallel(one, list(zip(VERSIONS, (DEVICE, "dev-new-1"))))
        for version in VERSIONS:
            # The gateway waited for the broker (its clock starts when it
            # reads the CONNECT, after our TLS handshake): a behaviour bound.
            assert elapsed[version] >= timeout - 0.3, elapsed
        failed = g.events("upstream-failed", since=mark, side="upstream")
        assert len(failed) == 2, g.report()
        for ev in failed:
            assert ev.get("reason") == "timeout", ev["_line"]
            assert "stage: %s" % stage in ev.get("detail", ""), ev["_line"]
            assert "connect_timeout" in ev.get("detail", ""), ev["_line"]
        # The gateway logs the end once the device has closed its side
        # too (an orderly close), which may come just after the client
        # saw the gateway's close: wait for both lines, bounded.
        deadline = time.monotonic() + t(5)
        while len(g.events("session-closed", since=mark)) < 2 \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        closed = g.events("session-closed", since=mark)
        assert [e.get("reason") for e in closed] == ["upstream-unavailable"] * 2, g.report()
        with fake.lock:
            assert fake.accepted == 2, fake.accepted
            if tls:
                assert fake.handshakes == 2, (fake.handshakes, fake.errors)
                # The CONNECTs did reach this broker: the stage is right.
                assert all(r[:1] == b"\x10" for r in fake.received), fake.received
            else:
                # A ClientHello and nothing more.
                assert all(r[:1] in (b"", b"\x16") for r in fake.received), fake.received


# ---------------------------------------------------------------- 3. chain refused


def _write_broker_cert(folder, name, leaf, chain):
    mkpki.write_pair(str(folder), name, leaf, chain=chain)
    return str(folder / (name + "-chain.pem")), str(folder / (name + ".key"))


def _broker_certs(pki, folder, case):
    """(chain file, key file, leaf) of a broker certificate that must fail
    verification for reason `case`."""
    if case == "unknown-ca":
        root = mkpki.make_ca("certbridge lab Evil Root %s" % uid())
        inter = mkpki.make_ca("certbridge lab Evil Intermediate", issuer=root, path_length=0)
        leaf = mkpki.make_leaf("localhost", inter, usage="server", dns=["localhost"],
                               ips=["127.0.0.1"])
        return _write_broker_cert(folder, case, leaf, [inter.cert]) + (leaf,)
    inter = pki.pair("cloud-int")
    if case == "name-mismatch":
        leaf = mkpki.make_leaf("other.example", inter, usage="server", dns=["other.example"])
    else:  # expired
        leaf = mkpki.make_leaf("localhost", inter, usage="server", dns=["localhost"],
                               ips=["127.0.0.1"], not_before=mkpki.rel("-30d"),
                               not_after=mkpki.rel("-1d"))
    return _write_broker_cert(folder, case, leaf, [inter.cert]) + (leaf,)


@pytest.mark.parametrize("case", ["unknown-ca", "name-mismatch", "expired"])
def test_broker_chain_refused(make_broker, make_gateway, pki, tmp_path, case):
    chain, key, leaf = _broker_certs(pki, tmp_path, case)
    b = make_broker(certfile=chain, keyfile=key)
    g = make_gateway(b.port, {"upstream": {"connect_timeout": seconds_setting(5)}})
    bmark = b.mark()
    for version in VERSIONS:
        mark = g.mark()
        connect_unavailable(g.port, pki.device(DEVICE), version, bound=t(5) + 3)
        ev = g.wait_event("handshake-failed", since=mark, side="upstream")
        assert ev.get("reason") == case, ev["_line"]
        assert ev.get("detail", "").strip() and ev.get("conn"), ev["_line"]
        # The chain the broker sent: subjects with their notAfter dates.
        chain_field = ev.get("chain", "")
        leaf_day = mkpki.not_after(leaf.cert).strftime("%Y-%m-%d")
        assert re.search(r"CN=%s \(notAfter %s" % (re.escape(leaf.cn), leaf_day),
                         chain_field), ev["_line"]
        assert " <- " in chain_field, ev["_line"]
        ev = g.wait_event("session-closed", since=mark)
        assert ev.get("reason") == "upstream-unavailable", ev["_line"]
        raw_unavailable(g.port, pki.device(DEVICE), version)
    # The broker never got an MQTT session out of it.
    assert not broker_clients(b, bmark), b.report()


def test_broker_address_checked_against_ip_sans(broker, make_gateway, pki):
    """[upstream] sni as an address: the broker's certificate (IP SAN
    127.0.0.1 only) is accepted when 127.0.0.1 is expected and refused when
    127.0.0.2 is (same broker, same address connected to: only the
    expected name differs)."""
    good = make_gateway(broker.port, {"upstream": {"sni": "127.0.0.1"}})
    c = PahoClient(good.port, pki.device(DEVICE), "311", client_id="ipsan-" + uid())
    try:
        assert c.connect(timeout=t(10)) == 0
    finally:
        c.close()
    bad = make_gateway(broker.port, {"upstream": {"sni": "127.0.0.2",
                                                  "connect_timeout": seconds_setting(5)}})
    bmark = broker.mark()
    for version in VERSIONS:
        mark = bad.mark()
        connect_unavailable(bad.port, pki.device(DEVICE), version, bound=t(5) + 3)
        ev = bad.wait_event("handshake-failed", since=mark, side="upstream")
        assert ev.get("reason") == "name-mismatch", ev["_line"]
        assert "127.0.0.2" in ev.get("detail", ""), ev["_line"]
    assert not broker_clients(broker, bmark), broker.report()


# ---------------------------------------------------------------- 4. the storm

STORM = 40
RATE = 5
# Several devices with one certificate, told apart by their client ids.
STORM_DEVICES = {"identity": "none", "clientid": "keep", "username": "keep"}
BURST = max(1, RATE // 5)


def test_connect_storm_is_paced(broker, make_gateway, pki):
    """40 devices send their CONNECT at the same moment through a gateway
    with connect_rate = 5: all get CONNACK 0 (none refused: connect_timeout
    is 20 s), and the gateway's upstream connections come at most 5 per
    second after the burst of 1."""
    g = make_gateway(broker.port, {
        "upstream": {"connect_rate": str(RATE), "connect_timeout": seconds_setting(20)},
        # The TLS handshakes of 40 devices come first; the CONNECTs after.
        "downstream": {"handshake_timeout": seconds_setting(30)},
        # One certificate stands for 40 devices here: told apart by
        # client id, or a newer one would take an older one's place in
        # the queue (test_limits.py).
        "mqtt": STORM_DEVICES,
    })
    dev = pki.device(DEVICE)
    ids = ["storm-%02d-%s" % (i, uid()) for i in range(STORM)]
    socks = []
    try:
        for _ in ids:
            socks.append(tls_device(g.port, dev, timeout=10.0))
        mark, bmark = g.mark(), broker.mark()
        for s, cid in zip(socks, ids):
            s.sendall(connect_packet(cid))
        acks = [read_connack(s, timeout=30.0) for s in socks]
        assert acks == [(0x20, b"\x00\x00")] * STORM, acks
        for s in socks:
            s.sendall(DISCONNECT)
    finally:
        for s in socks:
            s.close()

    connected = g.events("upstream-connected", since=mark)
    assert len(connected) == STORM, g.report()
    assert not g.events("upstream-failed", since=mark), g.report()
    codes = [e.get("code") for e in g.events("mqtt-connack", since=mark)]
    assert codes == ["0x00"] * STORM, codes
    stamps = sorted(ts_ms(e) for e in connected)
    # Pace: any 1 s window holds at most rate + burst connections (+1 margin).
    limit = RATE + BURST + 1
    for i, start in enumerate(stamps):
        n = sum(1 for s in stamps[i:] if s - start < 1000)
        assert n <= limit, "%d upstream connections within 1 s from %d ms (limit %d): %s" % (
            n, start - stamps[0], limit, [s - stamps[0] for s in stamps])
    span = (stamps[-1] - stamps[0]) / 1000.0
    floor = (STORM - BURST) / RATE - 1
    assert span >= floor, "40 upstream connections in %.2fs of gateway time, at rate %d " \
        "they need at least %.1fs" % (span, RATE, floor)
    queued = [int(e.get("queue", "0")) for e in g.events("upstream-queued", since=mark)]
    assert len(queued) == STORM and max(queued) > 1, queued
    # The broker saw all 40.
    for cid in ids:
        wait_broker_client(broker, cid, bmark)


# ---------------------------------------------------------------- 5. gone while queued


def test_device_gone_while_queued(broker, make_gateway, pki):
    """connect_rate = 1: five devices queue up; the last one leaves before
    its turn. The other four get CONNACK 0, the one that left is logged as
    device-closed and never reaches the broker."""
    g = make_gateway(broker.port, {"upstream": {"connect_rate": "1",
                                                "connect_timeout": seconds_setting(20)},
                                   "mqtt": STORM_DEVICES})
    dev = pki.device(DEVICE)
    ids = ["queued-%d-%s" % (i, uid()) for i in range(5)]
    conns = {}
    socks = []
    mark, bmark = g.mark(), broker.mark()
    try:
        for cid in ids:
            s = tls_device(g.port, dev)
            socks.append(s)
            s.sendall(connect_packet(cid))
            ev = g.wait_event("mqtt-connect", since=mark, clientid=cid)
            conns[cid] = ev["conn"]
            g.wait_event("upstream-queued", since=mark, conn=conns[cid])
        gone = ids[-1]
        # Still waiting for its turn (4 s away at 1 per second).
        assert not g.events("upstream-connected", since=mark, conn=conns[gone]), g.report()
        socks[-1].close()
        ev = g.wait_event("session-closed", since=mark, conn=conns[gone])
        assert ev.get("reason") == "device-closed", ev["_line"]
        assert ev.get("state") in (None, "upstream"), ev["_line"]
        for s in socks[:-1]:
            assert read_connack(s, timeout=30.0) == (0x20, b"\x00\x00")
        # One more device, after the one that left: when the broker has
        # seen it, it would have seen the one that left too.
        late = "queued-late-%s" % uid()
        s = tls_device(g.port, dev)
        socks.append(s)
        s.sendall(connect_packet(late))
        assert read_connack(s, timeout=30.0) == (0x20, b"\x00\x00")
        wait_broker_client(broker, late, bmark)
    finally:
        for s in socks:
            s.close()
    seen = [cid for cid, _ in broker_clients(broker, bmark)]
    assert gone not in seen, broker.report()
    assert all(cid in seen for cid in ids[:-1]), seen
    assert not g.events("upstream-connected", since=mark, conn=conns[gone]), g.report()
    assert not g.events("upstream-failed", since=mark), g.report()
