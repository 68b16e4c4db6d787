"""Upstream TLS session resumption ([upstream] session_resumption),
docs/configuration.md "[upstream]: the cloud broker" and docs/architecture.md
"Upstream session resumption".

- the second broker connection of an identity resumes the first one's
  session (TLS 1.3 ticket, and TLS 1.2 with tls_versions = 1.2), seen in
  upstream-connected resumed= and certbridge_upstream_handshakes_total{kind};
- session_resumption = no: every broker handshake is full;
- a reload starts with no session: the first connection after it is full;
- identities never share a session: with device_certs, A then B are both
  full, and each resumes only its own (the broker sees each as itself);
- a broker restarted (new ticket keys) refuses the session: the device still
  gets its CONNACK 0, after a full handshake (TLS 1.3: the broker declines the
  ticket; TLS 1.2: wolfSSL fails, and certbridge retries once without it).
"""

import os
import socket
import ssl
import threading
import time

import pytest

import cbtest
import rawmqtt
from cbtest import PahoClient, mkpki, uid, wait_broker_client

SHARED_CN = "certbridge-gateway"  # CN of the lab's gateway-upstream.pem
UP_A = "dev-old-1-up"
UP_B = "dev-new-1-up"


def upstream_counts(g):
    _, samples = cbtest.scrape(g.admin_port)
    return {kind: samples[cbtest.metric_key("certbridge_upstream_handshakes_total", kind=kind)]
            for kind in ("full", "resumed")}


def connect_once(g, broker, pki, device="dev-old-1"):
    """One device session through g; returns (its upstream-connected event,
    the username the broker saw)."""
    cid = "%s-%s" % (device, uid())
    mark, bmark = g.mark(), broker.mark()
    with PahoClient(g.port, pki.device(device), "311", client_id=cid) as c:
        assert c.connect() == 0, c.error
    user = wait_broker_client(broker, cid, bmark)
    ev = g.wait_event("upstream-connected", since=mark, device=device)
    return ev, user


def test_second_connect_resumes(broker, make_gateway, pki):
    g = make_gateway(broker.port, admin=True)
    ev, user = connect_once(g, broker, pki)
    assert ev.get("resumed") == "no", ev["_line"]
    assert ev.get("tls") == "TLSv1.3", ev["_line"]
    assert user == SHARED_CN, user
    assert upstream_counts(g) == {"full": 1, "resumed": 0}
    for i in range(2):
        ev, user = connect_once(g, broker, pki)
        assert ev.get("resumed") == "yes", ev["_line"]
        # The broker still knows the gateway's identity (from the session).
        assert user == SHARED_CN, user
    assert upstream_counts(g) == {"full": 1, "resumed": 2}
    # The other lab device uses the same (shared) identity: it resumes too.
    ev, _ = connect_once(g, broker, pki, "dev-new-1")
    assert ev.get("resumed") == "yes", ev["_line"]


def test_off_never_resumes(broker, make_gateway, pki):
    g = make_gateway(broker.port, {"upstream": {"session_resumption": "no"}}, admin=True)
    for _ in range(3):
        ev, _ = connect_once(g, broker, pki)
        assert ev.get("resumed") == "no", ev["_line"]
    assert upstream_counts(g) == {"full": 3, "resumed": 0}


def test_reload_starts_empty(broker, make_gateway, pki):
    g = make_gateway(broker.port, admin=True)
    connect_once(g, broker, pki)
    ev, _ = connect_once(g, broker, pki)
    assert ev.get("resumed") == "yes", ev["_line"]
    mark = g.mark()
    g.reload()
    g.wait_event("reloaded", since=mark, timeout=10)
    ev, _ = connect_once(g, broker, pki)
    assert ev.get("resumed") == "no", ev["_line"]
    ev, _ = connect_once(g, broker, pki)
    assert ev.get("resumed") == "yes", ev["_line"]
    assert upstream_counts(g) == {"full": 2, "resumed": 2}


@pytest.fixture(scope="module")
def two_identities(pki, tmp_path_factory):
    """A device_certs folder with a pair for dev-old-1 (CN dev-old-1-up) and
    one for dev-new-1 (CN dev-new-1-up), issued by the broker's client CA."""
    folder = tmp_path_factory.mktemp("devcerts")
    client_ca = pki.pair("cloud-client-ca")
    for device, cn in (("dev-old-1", UP_A), ("dev-new-1", UP_B)):
        leaf = mkpki.make_leaf(cn, client_ca, usage="client")
        mkpki.write_cert(str(folder / (device + ".crt")), leaf.cert)
        mkpki.write_key(str(folder / (device + ".key")), leaf.key)
    return str(folder)


@pytest.mark.parametrize("tls", ["1.3", "1.2"])
def test_identities_never_share(broker, make_gateway, pki, two_identities, tls):
    g = make_gateway(broker.port, {"upstream": {"device_certs": two_identities,
                                                "tls_versions": tls}}, admin=True)
    want = {"dev-old-1": UP_A, "dev-new-1": UP_B}
    # A, then B: B has no session of its own yet, and must not use A's.
    for device, resumed in (("dev-old-1", "no"), ("dev-new-1", "no"),
                            ("dev-old-1", "yes"), ("dev-new-1", "yes"),
                            ("dev-old-1", "yes")):
        ev, user = connect_once(g, broker, pki, device)
        assert ev.get("resumed") == resumed, (device, ev["_line"])
        assert ev.get("client_cert") == "device", ev["_line"]
        assert ev.get("tls") == "TLSv" + tls, ev["_line"]
        # A resumed session carries the identity of its full handshake:
        # the broker must see each device as itself.
        assert user == want[device], (device, user)
    assert upstream_counts(g) == {"full": 2, "resumed": 3}


def test_tls12_resumes(broker, make_gateway, pki):
    g = make_gateway(broker.port, {"upstream": {"tls_versions": "1.2"}}, admin=True)
    ev, _ = connect_once(g, broker, pki)
    assert (ev.get("tls"), ev.get("resumed")) == ("TLSv1.2", "no"), ev["_line"]
    ev, _ = connect_once(g, broker, pki)
    assert (ev.get("tls"), ev.get("resumed")) == ("TLSv1.2", "yes"), ev["_line"]


@pytest.mark.parametrize("tls", ["1.3", "1.2"])
def test_broker_restart_falls_back_to_full(make_broker, make_gateway, pki, tls):
    b = make_broker()
    g = make_gateway(b.port, {"upstream": {"tls_versions": tls}}, admin=True)
    connect_once(g, b, pki)
    ev, _ = connect_once(g, b, pki)
    assert ev.get("resumed") == "yes", ev["_line"]
    # A new mosquitto process has new ticket keys: it cannot resume.
    b.restart()
    mark = g.mark()
    ev, _ = connect_once(g, b, pki)
    assert ev.get("resumed") == "no", ev["_line"]
    assert not g.events("upstream-failed", since=mark), g.report()
    assert not g.events("handshake-failed", since=mark), g.report()
    refused = g.events("upstream-resume-refused", since=mark)
    if tls == "1.3":
        # The broker declines the ticket and runs a full handshake.
        assert not refused, g.report()
    else:
        # wolfSSL 5.5.4 fails on the ticket the broker cannot decrypt
        # (-373) instead of going on with the full handshake the broker
        # started: one retry without the session, on a new connection.
        assert len(refused) == 1 and "-373" in refused[0].get("detail", ""), g.report()
    # The new session is kept: the next connection resumes again.
    ev, _ = connect_once(g, b, pki)
    assert ev.get("resumed") == "yes", ev["_line"]
    assert upstream_counts(g) == {"full": 2, "resumed": 2}


def test_address_sni_resumes_only_after_its_check(broker, make_gateway, pki):
    """[upstream] sni as an address is checked on the leaf after a full
    handshake; a resumed session shows no leaf, so it must come from a full
    handshake that passed that check: with the right address the second
    connection resumes, with a wrong one no session is ever kept."""
    good = make_gateway(broker.port, {"upstream": {"sni": "127.0.0.1"}}, admin=True)
    for resumed in ("no", "yes"):
        ev, _ = connect_once(good, broker, pki)
        assert ev.get("resumed") == resumed, ev["_line"]
    bad = make_gateway(broker.port, {"upstream": {"sni": "127.0.0.2"}}, admin=True)
    for _ in range(2):
        mark = bad.mark()
        c = PahoClient(bad.port, pki.device("dev-old-1"), "311", client_id="ip-" + uid())
        try:
            assert c.connect() == 3, c.error  # server unavailable
        finally:
            c.close()
        ev = bad.wait_event("handshake-failed", since=mark, side="upstream")
        assert ev.get("reason") == "name-mismatch", ev["_line"]
    assert not bad.events("upstream-connected"), bad.report()
    assert upstream_counts(bad) == {"full": 0, "resumed": 0}


class FakeBroker:
    """A TLS server with the lab broker's chain that speaks just enough MQTT
    for one CONNECT per connection, then does what the next entry of
    `script` says: "connack" answers CONNACK 0 and waits for the close,
    "garbage" sends a TLS record that cannot decrypt (a record-layer error
    at the gateway, after a handshake that succeeded), "reset" closes with
    a RST. Python's ssl (OpenSSL) issues TLS 1.3 tickets, so the gateway
    keeps a session and offers it the next time."""

    def __init__(self, pki, script):
        self.script = list(script)
        self.resumed = []
        self.errors = []
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki("broker-chain.pem"), pki("broker.key"))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(cbtest.t(30))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        for what in self.script:
            try:
                raw, _ = self.sock.accept()
            except OSError as e:
                self.errors.append("accept: %s" % e)
                return
            try:
                ss = self.ctx.wrap_socket(raw, server_side=True)
                self.resumed.append(ss.session_reused)
                first, _ = rawmqtt.read_packet(ss, timeout=10.0)
                assert first == 0x10, "first packet %#x" % first
                if what == "connack":
                    ss.sendall(b"\x20\x02\x00\x00")
                    rawmqtt.wait_closed(ss, timeout=10.0)
                elif what == "garbage":
                    # An application-data record no key can open.
                    os.write(ss.fileno(), b"\x17\x03\x03\x00\x20" + os.urandom(32))
                    time.sleep(0.5)
                    ss.close()
                else:
                    rawmqtt.abort(ss)
            except Exception as e:  # reported by the test, not lost in a thread
                self.errors.append("%s: %r" % (what, e))
                raw.close()

    def close(self):
        self.sock.close()
        self.thread.join(timeout=cbtest.t(15))


@pytest.mark.parametrize("failure", ["garbage", "reset"])
def test_broker_failing_after_handshake_is_not_a_refused_session(make_gateway, pki, failure):
    """A broker that completes the handshake of an offered session and then
    fails before the CONNACK has not refused the session, and certbridge
    carries on. It once took a record-layer error there for a refused
    resumption and tried to requeue a session already past its handshake:
    an assertion stopped the whole gateway (the soak's broker restart hit
    it once). Only the handshake can refuse a session (docs/troubleshooting.md,
    upstream-resume-refused). A record that cannot decrypt is the
    broker failing: CONNACK 3 (server unavailable), upstream-failed; a RST
    reads as the broker closing after the CONNECT, which the device sees
    the same way, a close (docs/protocol.md)."""
    fake = FakeBroker(pki, ["connack", failure, "connack"])
    try:
        g = make_gateway(fake.port, admin=True)
        for expect in (0, failure, 0):
            mark = g.mark()
            with PahoClient(g.port, pki.device("dev-old-1"), "311",
                            client_id="fail-" + uid()) as c:
                rc = c.connect()
            if expect == "garbage":
                assert rc == 3, (c.error, g.report())
                ev = g.wait_event("upstream-failed", since=mark, side="upstream")
                assert ev.get("reason") == "upstream-unavailable", ev["_line"]
                assert "before CONNACK" in ev.get("detail", ""), ev["_line"]
            elif expect == "reset":
                assert rc is None, (rc, g.report())
                ev = g.wait_event("session-closed", since=mark, reason="broker-closed")
                assert "after the CONNECT" in ev.get("detail", ""), ev["_line"]
            else:
                assert rc == 0, (c.error, g.report())
            assert not g.events("upstream-resume-refused", since=mark), g.report()
            assert not g.events("handshake-failed", since=mark), g.report()
            assert g.running(), g.report()
    finally:
        fake.close()
    assert not fake.errors, fake.errors
    # The second connection offered the first one's session (the broker
    # resumed it): the failure came after a resumed handshake.
    assert fake.resumed[:2] == [False, True], fake.resumed
