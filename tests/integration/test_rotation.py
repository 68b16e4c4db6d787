"""Rotations without taking a device offline (docs/rotation.md).

- (a) device CA rotation: dual trust, then retire_after on the old CA by
  SIGHUP; with [gateway] rejudge = no a session of an old device opened
  before the reload keeps working (the default closes it: test_trust.py);
  new old-CA connections are refused (retired-ca) until
  retire_after moves back; the instant passing while running, and TLS 1.3
  tickets issued before it, are judged too;
- (b) the cloud moves to a new root: devices get CONNACK "server
  unavailable" until the new root is appended to [upstream] ca and certbridge
  is reloaded (same PID);
- (c) clock skew (global and per CA) and expired_grace (only on the CA that
  sets it, never over a signature error);
- (d) CRLs (PEM and DER, of a root or of an intermediate in the CA file):
  a revoked device or intermediate is refused, others admitted; a CRL that
  goes stale while running refuses its CA's devices (crl-stale); a stale
  or foreign CRL at reload is a failed reload, at start a config error;
- (e) a broken configuration on SIGHUP changes nothing: FILE:LINE problems
  in the log, devices still served, the generation does not advance; an
  address that cannot be bound likewise; a moved listener keeps sessions;
- (f) 50 reloads while 20 devices publish at QoS 1: no message lost, no
  session dropped, new sessions keep coming in, the TLS port never refuses
  (and stays the same socket), a plain_listen address comes and goes;
- (g) the state file: per-CA sightings survive a restart; written
  atomically, in the documented format;
- (h) the upstream chain watch: upstream-chain at the first handshake,
  upstream-chain-changed once per rotation; cert-expiring for the broker's
  leaf and for configured CAs.

certbridge-certs (the inventory tool) is covered by test_certs_tool.py.

Clients are paho, mosquitto_pub/sub, and raw TLS sockets (rawmqtt). Every
wait is bounded; every process is ours and stopped by its PID.
"""

import datetime
import os
import queue
import re
import socket
import subprocess
import threading
import time

import pytest

import cbtest
from cbtest import (Creds, PahoClient, VERSIONS, free_port, line_of, mkpki, mosquitto_pub, t,
                    uid)
from rawmqtt import (DISCONNECT, connect_packet, device_context, mqtt_device,
                     mqtt_ticket_session, publish_packet, read_packet, subscribe_packet,
                     tls_device, wait_closed)

SERVER_UNAVAILABLE = {"311": 3, "5": 0x88}


# ---------------------------------------------------------------- helpers


def iso(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_SPAN = re.compile(r"(\d+)(ms|d|h|m|s)")
_SPAN_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def span_seconds(text):
    """Seconds of a duration as certbridge prints it ("1h59m55s", "2d")."""
    text = text.strip()
    if text == "0":
        return 0
    parts = _SPAN.findall(text)
    assert parts and "".join(n + u for n, u in parts) == text, "not a duration: %r" % text
    return sum(int(n) * _SPAN_UNITS[u] for n, u in parts)


def reload_ok(g, timeout=10.0):
    """SIGHUP and wait for `event=reloaded`; fails at once on
    reload-failed. Returns the new generation (int)."""
    mark = g.mark()
    g.reload()
    deadline = time.monotonic() + t(timeout)
    while True:
        failed = g.events("reload-failed", since=mark)
        assert not failed, "reload failed:\n%s" % "\n".join(e["_line"] for e in failed)
        ok = g.events("reloaded", since=mark)
        if ok:
            return int(ok[0]["generation"])
        assert time.monotonic() < deadline, "no reload within %.1fs\n%s" % (t(timeout),
                                                                            g.report())
        time.sleep(0.02)


def reload_fails(g, timeout=10.0):
    """SIGHUP a broken configuration; returns (problem lines, final msg)."""
    mark = g.mark()
    g.reload()
    final = g.wait_event("reload-failed", since=mark, timeout=timeout,
                         msg=re.compile(r"still serving generation"))
    assert not g.events("reloaded", since=mark), g.report()
    problems = [e.get("problem", "") for e in g.events("reload-failed", since=mark)
                if e.get("problem")]
    assert problems, "reload-failed without problem= lines\n" + g.report()
    return problems, final


def wait_events(g, count, event, since=0, timeout=5.0, **match):
    """At least count matching events (polling until timeout)."""
    deadline = time.monotonic() + t(timeout)
    while True:
        evs = g.events(event, since, **match)
        if len(evs) >= count or time.monotonic() >= deadline:
            return evs
        time.sleep(0.05)


def peer_of(local_port):
    return re.compile(r":%d$" % local_port)


def assert_refused(g, creds, reason):
    """A TLS handshake by creds is refused with reason; returns the
    handshake-failed event (matched by the client's port)."""
    mark = g.mark()
    local, err = cbtest.tls_probe(g.port, creds)
    assert err is not None, "%s was admitted; expected reason=%s\n%s" % (
        creds.name, reason, g.report())
    ev = g.wait_event("handshake-failed", since=mark, side="downstream", peer=peer_of(local))
    assert ev.get("reason") == reason, ev["_line"]
    assert ev.get("detail", "").strip(), ev["_line"]
    assert not g.events("device-admitted", since=mark, peer=peer_of(local)), g.report()
    return ev


def assert_admitted(g, creds, ca, version="311"):
    """creds gets CONNACK 0 through g (paho), admitted by [ca.<ca>];
    returns the device-admitted event."""
    mark = g.mark()
    with PahoClient(g.port, creds, version, client_id="%s-%s" % (creds.name, uid())) as c:
        code = c.connect()
        assert code == 0, "%s: CONNACK %s (%s)\n%s" % (creds.name, code, c.error, g.report())
    ev = g.wait_event("device-admitted", since=mark)
    assert ev.get("ca") == ca, ev["_line"]
    return ev


def device_creds(pki, folder, name, issuer, chain=None, **kw):
    """A new client certificate CN=name under issuer (an mkpki.Issued),
    written to folder; the device trusts the gateway's (ca-old) chain."""
    leaf = mkpki.make_leaf(name, issuer, usage="client", **kw)
    mkpki.write_pair(str(folder), name, leaf, chain=chain)
    cert = os.path.join(str(folder), name + ("-chain.pem" if chain else ".pem"))
    return Creds(name, cert, os.path.join(str(folder), name + ".key"),
                 pki(pki.DEVICE_TRUST)), leaf


class LiveSession:
    """A raw TLS MQTT 3.1.1 session of one device, subscribed (QoS 0) to a
    topic of its own: exchange() publishes there and reads it back on the
    same connection."""

    def __init__(self, g, creds):
        self.g = g
        self.topic = "cbtest/live/%s" % uid()
        mark = g.mark()
        self.sock = mqtt_device(g.port, creds, client_id="%s-live-%s" % (creds.name, uid()))
        local = self.sock.getsockname()[1]
        self.conn = g.wait_event("device-admitted", since=mark, peer=peer_of(local))["conn"]
        self.sock.sendall(subscribe_packet(1, self.topic, 0))
        assert read_packet(self.sock, timeout=10.0) == (0x90, b"\x00\x01\x00")

    def exchange(self, payload):
        self.sock.sendall(publish_packet(self.topic, payload))
        first, body = read_packet(self.sock, timeout=10.0)
        assert first & 0xF0 == 0x30, (first, body)
        assert body == len(self.topic).to_bytes(2, "big") + self.topic.encode() + payload, body

    def assert_open(self):
        assert not self.g.events("session-closed", conn=self.conn), self.g.report()

    def close(self):
        try:
            self.sock.sendall(DISCONNECT)
            wait_closed(self.sock)
        finally:
            self.sock.close()


def ticket(g, creds):
    """A full MQTT session over TLS 1.3 that ends with a session ticket;
    returns (context, session) to resume with."""
    ctx = device_context(creds)
    sess, _ = mqtt_ticket_session(g.port, creds, ctx,
                                  client_id="%s-ticket-%s" % (creds.name, uid()))
    return ctx, sess


def assert_resumption_refused(g, creds, ctx, sess, reason):
    """A TLS 1.3 resumption with a ticket from before is judged again:
    refused with reason (the handshake itself resumes)."""
    mark = g.mark()
    ss = tls_device(g.port, creds, ctx=ctx, session=sess)
    try:
        local = ss.getsockname()[1]
        assert ss.session_reused, "the gateway did not resume the session"
        try:
            ss.sendall(connect_packet("%s-resumed-%s" % (creds.name, uid())))
        except OSError:
            pass
        wait_closed(ss)
    finally:
        ss.close()
    ev = g.wait_event("handshake-failed", since=mark, side="downstream", peer=peer_of(local))
    assert ev.get("reason") == reason, ev["_line"]
    assert not g.events("device-admitted", since=mark, peer=peer_of(local)), g.report()
    assert not g.events("mqtt-connect", since=mark, peer=peer_of(local)), g.report()


def listen_inode(port):
    """The inode of the socket listening on 127.0.0.1:port (/proc/net/tcp)."""
    want = "0100007F:%04X" % port
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        if f[1] == want and f[3] == "0A":
            return f[9]
    return None


def cloud_chain(folder, root, tag, **leaf_kw):
    """A new cloud intermediate and broker leaf (localhost) under root,
    written to folder. Returns (chain file, key file, intermediate)."""
    inter = mkpki.make_ca("certbridge lab Cloud Intermediate %s" % tag, issuer=root,
                          path_length=0)
    leaf = mkpki.make_leaf("localhost", inter, usage="server", dns=["localhost"],
                           ips=["127.0.0.1"], **leaf_kw)
    name = "broker-%s" % re.sub(r"\W", "", tag.lower())
    mkpki.write_pair(str(folder), name, leaf, chain=[inter.cert])
    return (os.path.join(str(folder), name + "-chain.pem"),
            os.path.join(str(folder), name + ".key"), inter)


def roundtrips(g, pki, versions=VERSIONS):
    old, new = pki.device("dev-old-1"), pki.device("dev-new-1")
    for version in versions:
        for tool in ("paho", "cli"):
            payload = ("%s v%s %s" % (tool, version, uid())).encode()
            assert cbtest.ROUNDTRIPS[tool](g.port, old, new, payload, qos=1,
                                           version=version) == (1, payload)


# ---------------------------------------------------------------- (a) device CA rotation


def test_retire_old_ca_with_rejudge_off_keeps_established_sessions(broker, make_gateway, pki):
    """With [gateway] rejudge = no, retiring a CA refuses its new
    connections only: sessions opened before the reload go on. (With the
    default, rejudge = yes, they are closed: test_trust.py.)"""
    g = make_gateway(broker.port, {"gateway": {"rejudge": "no"}})
    old, new = pki.device("dev-old-1"), pki.device("dev-new-1")
    assert_admitted(g, old, "old")
    assert_admitted(g, new, "new", version="5")

    # Sessions of an old device opened before the reload: raw and paho.
    live = LiveSession(g, old)
    live.exchange(b"before the reload")
    p = PahoClient(g.port, old, "5", client_id="dev-old-1-paho-%s" % uid())
    try:
        assert p.connect() == 0, p.error
        ptopic = "cbtest/retire/%s" % uid()
        assert p.subscribe(ptopic, 1) == 1
        p.publish(ptopic, b"paho before", qos=1)
        assert bytes(p.wait_message().payload) == b"paho before"

        g.overrides["ca.old"] = {"retire_after": iso(mkpki.now() - datetime.timedelta(hours=1))}
        g.write_conf()
        pid = g.pid
        mark = g.mark()
        assert reload_ok(g) == 2
        ev = g.wait_event("reloaded", since=mark)
        assert int(ev["sessions"]) >= 2, ev["_line"]

        # The same connections still carry messages both ways.
        live.exchange(b"after the reload")
        p.publish(ptopic, b"paho after", qos=1)
        assert bytes(p.wait_message().payload) == b"paho after"

        # New connections of old-CA devices are refused, with every client.
        ev = assert_refused(g, old, "retired-ca")
        assert "[ca.old]" in ev["detail"] and "retire" in ev["detail"], ev["_line"]
        mark = g.mark()
        r = mosquitto_pub(g.port, old, "cbtest/retired", b"x", qos=1)
        assert r.rc not in (0, None), r
        code, err = cbtest.paho_connect(g.port, old, "311")
        assert code is None, "a retired-CA device got CONNACK %s" % code
        evs = wait_events(g, 2, "handshake-failed", since=mark, side="downstream")
        assert len(evs) >= 2 and all(e.get("reason") == "retired-ca" for e in evs), \
            [e["_line"] for e in evs]
        assert not g.events("device-admitted", since=mark), g.report()
        # New-CA devices are fine, through the same gateway.
        assert_admitted(g, new, "new")
        payload = b"new fleet " + os.urandom(4)
        assert cbtest.roundtrip_paho(g.port, new, new, payload, qos=1) == (1, payload)

        live.exchange(b"still up")
        p.publish(ptopic, b"paho still up", qos=1)
        assert bytes(p.wait_message().payload) == b"paho still up"
        live.assert_open()
        assert not p.disconnected.is_set(), p.error

        # More time for the stragglers: retire_after moves to the future.
        g.overrides["ca.old"]["retire_after"] = iso(mkpki.now() + datetime.timedelta(days=30))
        g.write_conf()
        assert reload_ok(g) == 3
        assert_admitted(g, old, "old")
        assert cbtest.roundtrip_cli(g.port, old, new, b"back") == (1, b"back")
        live.exchange(b"three generations later")
        assert g.pid == pid and g.running()
    finally:
        p.close()
        live.close()


def test_retire_after_instant_passes_while_running(broker, make_gateway, pki):
    """retire_after is an instant: when it passes, the CA stops admitting
    devices without any reload."""
    g = make_gateway(broker.port)
    at = mkpki.now() + datetime.timedelta(seconds=max(3, round(t(1.5))))
    g.overrides["ca.old"] = {"retire_after": iso(at)}
    g.write_conf()
    assert reload_ok(g) == 2
    old = pki.device("dev-old-1")
    ctx, sess = ticket(g, old)
    if mkpki.now() < at:  # (a slow run may already be past it)
        assert_admitted(g, old, "old")
    while mkpki.now() <= at:
        time.sleep(0.1)  # waiting for a wall-clock instant, not for the daemon
    assert_refused(g, old, "retired-ca")
    # A ticket issued before the instant does not bypass the retirement.
    assert_resumption_refused(g, old, ctx, sess, "retired-ca")
    assert_admitted(g, pki.device("dev-new-1"), "new")


# ---------------------------------------------------------------- (b) cloud root change


def test_cloud_moves_to_new_root(pki, make_broker, make_gateway, tmp_path):
    roots = tmp_path / "cloud-roots.pem"
    roots.write_bytes(open(pki("cloud-root.pem"), "rb").read())
    b = make_broker()
    g = make_gateway(b.port, {"upstream": {"ca": str(roots)}})
    pid = g.pid
    roundtrips(g, pki, versions=("311",))
    g.wait_event("upstream-chain")

    new_root = mkpki.make_ca("certbridge lab Cloud Root 2027")
    mkpki.write_pair(str(tmp_path), "cloud-root-2027", new_root)
    chain, key, inter = cloud_chain(tmp_path, new_root, "NewRoot")
    mark = g.mark()
    b.restart(certfile=chain, keyfile=key)

    for version in VERSIONS:
        for dev in ("dev-old-1", "dev-new-1"):
            m = g.mark()
            c = PahoClient(g.port, pki.device(dev), version)
            try:
                code = c.connect(timeout=15.0)
                assert code == SERVER_UNAVAILABLE[version], (
                    "%s v%s: CONNACK %s (error %s); the contract says %#x"
                    % (dev, version, code, c.error, SERVER_UNAVAILABLE[version]))
                assert c.disconnected.wait(t(5.0)), "connection left open after CONNACK"
            finally:
                c.close()
            ev = g.wait_event("handshake-failed", since=m, side="upstream")
            assert ev.get("reason") == "unknown-ca", ev["_line"]
            assert "Cloud Intermediate NewRoot" in ev.get("chain", ""), ev["_line"]
            assert ev.get("detail", "").strip(), ev["_line"]
    r = mosquitto_pub(g.port, pki.device("dev-old-1"), "cbtest/newroot", b"x", qos=1)
    assert r.rc not in (0, None), r
    assert not g.events("upstream-chain-changed", since=mark), g.report()

    # The operator appends the new root (keeping the old one) and reloads.
    with open(roots, "ab") as f:
        f.write(open(str(tmp_path / "cloud-root-2027.pem"), "rb").read())
    assert len(mkpki.load_certs(str(roots))) == 2
    assert reload_ok(g) == 2
    roundtrips(g, pki)
    assert g.pid == pid and g.running(), "certbridge restarted\n" + g.report()
    changed = g.events("upstream-chain-changed", since=mark)
    assert len(changed) == 1, [e["_line"] for e in changed]
    assert changed[0].get("level") == "warn", changed[0]["_line"]
    assert "Cloud Intermediate NewRoot" in changed[0].get("chain", ""), changed[0]["_line"]


# ---------------------------------------------------------------- (c) clock skew, expired grace


@pytest.fixture(scope="module")
def skewed(pki, tmp_path_factory):
    """A device under ca-old whose notBefore is 2h ahead (a clock-skewed
    issuing machine)."""
    folder = tmp_path_factory.mktemp("skew")
    creds, _ = device_creds(pki, folder, "dev-skewed-%s" % uid()[:4], pki.pair("ca-old"),
                            not_before=mkpki.now() + datetime.timedelta(hours=2),
                            not_after=mkpki.now() + datetime.timedelta(days=30))
    return creds


def _skew_gateway(g, global_skew, old_skew=None, new_skew=None):
    g.overrides["downstream"] = {"clock_skew": global_skew}
    g.overrides["ca.old"] = {"clock_skew": old_skew}
    g.overrides["ca.new"] = {"clock_skew": new_skew}
    g.write_conf()
    reload_ok(g)


def test_clock_skew_global(broker, make_gateway, skewed):
    g = make_gateway(broker.port, {"downstream": {"clock_skew": "3h"}})
    ev = assert_admitted(g, skewed, "old")
    assert ev.get("grace") == "skew" and ev.get("level") == "warn", ev["_line"]
    assert abs(span_seconds(ev["offset"]) - 7200) < 600, ev["_line"]
    assert ev.get("device") == skewed.name, ev["_line"]

    _skew_gateway(g, "1h")
    ev = assert_refused(g, skewed, "not-yet-valid")
    m = re.search(r"notBefore is (\S+) in the future \(allowed skew (\S+)\)", ev["detail"])
    assert m, ev["_line"]
    assert abs(span_seconds(m.group(1)) - 7200) < 600, ev["_line"]
    assert span_seconds(m.group(2)) == 3600, ev["_line"]
    # Also with a real client.
    code, err = cbtest.paho_connect(g.port, skewed, "5")
    assert code is None, code


@pytest.mark.parametrize("global_skew,old_skew,new_skew,allowed", [
    ("1h", "3h", None, None),    # the CA's own skew wins over a strict global one
    ("3h", "1h", None, 3600),    # ... and over a lenient global one
    ("3h", "0", None, 0),        # ... even when it is zero
    ("1h", None, "3h", 3600),    # another CA's skew does not apply
])
def test_clock_skew_per_ca(broker, make_gateway, skewed, global_skew, old_skew, new_skew,
                           allowed):
    g = make_gateway(broker.port)
    _skew_gateway(g, global_skew, old_skew, new_skew)
    if allowed is None:
        ev = assert_admitted(g, skewed, "old")
        assert ev.get("grace") == "skew" and ev.get("level") == "warn", ev["_line"]
    else:
        ev = assert_refused(g, skewed, "not-yet-valid")
        m = re.search(r"allowed skew (\S+)\)", ev["detail"])
        assert m and span_seconds(m.group(1)) == allowed, ev["_line"]


@pytest.fixture(scope="module")
def stranded(pki, tmp_path_factory):
    """Two device CAs, each with a device that expired 2 days ago; a device
    of the grace CA expired 10 days ago; and forged devices that name the
    grace CA as issuer but are signed by another key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    folder = tmp_path_factory.mktemp("stranded")
    tag = uid()[:4]
    grace = mkpki.make_ca("certbridge lab Grace CA %s" % tag)
    strict = mkpki.make_ca("certbridge lab Strict CA %s" % tag)
    mkpki.write_pair(str(folder), "grace-ca", grace)
    mkpki.write_pair(str(folder), "strict-ca", strict)
    two_days_ago = dict(not_before=mkpki.now() - datetime.timedelta(days=300),
                        not_after=mkpki.now() - datetime.timedelta(days=2))
    s = {"folder": folder, "grace_ca": os.path.join(str(folder), "grace-ca.pem"),
         "strict_ca": os.path.join(str(folder), "strict-ca.pem")}
    s["grace_dev"], _ = device_creds(pki, folder, "dev-grace-%s" % tag, grace, **two_days_ago)
    s["strict_dev"], _ = device_creds(pki, folder, "dev-strict-%s" % tag, strict,
                                      **two_days_ago)
    s["too_old"], _ = device_creds(pki, folder, "dev-toolate-%s" % tag, grace,
                                   not_before=mkpki.now() - datetime.timedelta(days=300),
                                   not_after=mkpki.now() - datetime.timedelta(days=10))

    def forge(name, not_after):
        # Issuer name and authority key id of the grace CA, signature by a
        # key that is not the grace CA's.
        key = mkpki.new_key()
        impostor = mkpki.new_key()
        b = (x509.CertificateBuilder()
             .subject_name(mkpki._name(name))
             .issuer_name(grace.cert.subject)
             .public_key(key.public_key())
             .serial_number(mkpki._serial())
             .not_valid_before(mkpki.now() - datetime.timedelta(days=300))
             .not_valid_after(not_after)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                            critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                 grace.key.public_key()), critical=False))
        forged = mkpki.Issued(b.sign(impostor, hashes.SHA256()), key)
        mkpki.write_pair(str(folder), name, forged)
        return Creds(name, os.path.join(str(folder), name + ".pem"),
                     os.path.join(str(folder), name + ".key"), pki(pki.DEVICE_TRUST))

    s["forged_expired"] = forge("dev-forged-exp-%s" % tag,
                                mkpki.now() - datetime.timedelta(days=2))
    s["forged_valid"] = forge("dev-forged-ok-%s" % tag, mkpki.now() + datetime.timedelta(days=30))
    return s


@pytest.fixture
def grace_gateway(broker, make_gateway, stranded):
    return make_gateway(broker.port, {
        "ca.grace": {"file": stranded["grace_ca"], "expired_grace": "7d"},
        "ca.strict": {"file": stranded["strict_ca"]},
    })


def test_expired_grace_only_on_its_ca(grace_gateway, stranded, pki):
    g = grace_gateway
    ev = assert_admitted(g, stranded["grace_dev"], "grace", version="5")
    assert ev.get("grace") == "expired" and ev.get("level") == "warn", ev["_line"]
    assert abs(span_seconds(ev["offset"]) - 2 * 86400) < 600, ev["_line"]
    # The grace admission is a real session.
    dev = stranded["grace_dev"]
    payload = b"stranded " + os.urandom(4)
    assert cbtest.roundtrip_paho(g.port, dev, dev, payload, qos=1) == (1, payload)

    ev = assert_refused(g, stranded["strict_dev"], "expired")
    assert "[ca.strict]" in ev["detail"] and "expired_grace" in ev["detail"], ev["_line"]
    r = mosquitto_pub(g.port, stranded["strict_dev"], "cbtest/strict", b"x", qos=1)
    assert r.rc not in (0, None), r
    # Beyond the grace window, and on the CA without grace, still expired.
    assert_refused(g, stranded["too_old"], "expired")
    assert_refused(g, pki.device("dev-expired"), "expired")


def test_expired_grace_through_an_intermediate(broker, make_gateway, pki, tmp_path):
    """A new-CA device (sending its issuing intermediate) expired 2 days
    ago: admitted when [ca.new] has expired_grace, refused otherwise."""
    creds, _ = device_creds(pki, tmp_path, "dev-new-expired", pki.pair("ca-new-int"),
                            chain=[mkpki.load_cert(pki("ca-new-int.pem"))],
                            not_before=mkpki.now() - datetime.timedelta(days=300),
                            not_after=mkpki.now() - datetime.timedelta(days=2))
    g = make_gateway(broker.port)
    assert_refused(g, creds, "expired")
    g.overrides["ca.new"] = {"expired_grace": "3d"}
    g.write_conf()
    assert reload_ok(g) == 2
    ev = assert_admitted(g, creds, "new")
    assert ev.get("grace") == "expired", ev["_line"]
    # The old CA has no grace.
    assert_refused(g, pki.device("dev-expired"), "expired")


@pytest.mark.parametrize("which", ["forged_expired", "forged_valid"])
def test_expired_grace_never_overrides_a_bad_signature(grace_gateway, stranded, which):
    ev = assert_refused(grace_gateway, stranded[which], "bad-signature")
    assert ev.get("grace") is None, ev["_line"]


# ---------------------------------------------------------------- (d) CRLs


@pytest.fixture(scope="module")
def old_ca_devices(pki, tmp_path_factory):
    """Another device of the old CA (dev-old-1 is the one revoked)."""
    folder = tmp_path_factory.mktemp("crl")
    creds, _ = device_creds(pki, folder, "dev-old-2", pki.pair("ca-old"))
    return {"folder": folder, "dev-old-2": creds}


@pytest.mark.parametrize("fmt", ["pem", "der"])
def test_crl_revokes_device(broker, make_gateway, pki, old_ca_devices, tmp_path, fmt):
    ca_old = pki.pair("ca-old")
    crl = tmp_path / ("ca-old.crl" + (".der" if fmt == "der" else ""))
    mkpki.write_crl(str(crl), mkpki.make_crl(ca_old, revoked=[mkpki.load_cert(
        pki("dev-old-1.pem"))]), der=(fmt == "der"))
    assert crl.read_bytes().startswith(b"-----BEGIN X509 CRL") == (fmt == "pem")
    g = make_gateway(broker.port, {"ca.old": {"crl": str(crl)}})
    ev = assert_refused(g, pki.device("dev-old-1"), "revoked")
    assert "dev-old-1" in ev["detail"] and "[ca.old]" in ev["detail"], ev["_line"]
    code, err = cbtest.paho_connect(g.port, pki.device("dev-old-1"), "311")
    assert code is None, code
    assert_admitted(g, old_ca_devices["dev-old-2"], "old")
    assert_admitted(g, pki.device("dev-new-1"), "new")

    # The CA publishes a new CRL without dev-old-1: reload, and it is back.
    mkpki.write_crl(str(crl), mkpki.make_crl(ca_old), der=(fmt == "der"))
    assert reload_ok(g) == 2
    assert_admitted(g, pki.device("dev-old-1"), "old")


def test_crl_revokes_intermediate(broker, make_gateway, pki, tmp_path):
    """[ca.new] is the 2026 root; its devices send their issuing
    intermediate. The root's CRL revoking that intermediate refuses the
    devices under it; an empty root CRL does not."""
    crl = tmp_path / "ca-new.crl"
    mkpki.write_crl(str(crl), mkpki.make_crl(pki.pair("ca-new")))
    g = make_gateway(broker.port, {"ca.new": {"crl": str(crl)}})
    assert_admitted(g, pki.device("dev-new-1"), "new")
    mkpki.write_crl(str(crl), mkpki.make_crl(pki.pair("ca-new"), revoked=[
        mkpki.load_cert(pki("ca-new-int.pem"))]))
    assert reload_ok(g) == 2
    ev = assert_refused(g, pki.device("dev-new-1"), "revoked")
    assert "intermediate" in ev["detail"] and "Issuing CA 2026" in ev["detail"], ev["_line"]
    assert_admitted(g, pki.device("dev-old-1"), "old")


def test_crl_of_an_intermediate_in_the_ca_file(broker, make_gateway, pki, tmp_path):
    """[ca.new] file holds the root and its issuing intermediate; the CRL
    is the intermediate's: it revokes dev-new-1, and only it."""
    bundle = tmp_path / "ca-new-bundle.pem"
    bundle.write_bytes(open(pki("ca-new.pem"), "rb").read()
                       + open(pki("ca-new-int.pem"), "rb").read())
    crl = tmp_path / "ca-new-int.crl"
    mkpki.write_crl(str(crl), mkpki.make_crl(pki.pair("ca-new-int"), revoked=[
        mkpki.load_cert(pki("dev-new-1.pem"))]), der=True)
    other, _ = device_creds(pki, tmp_path, "dev-new-2", pki.pair("ca-new-int"),
                            chain=[mkpki.load_cert(pki("ca-new-int.pem"))])
    g = make_gateway(broker.port, {"ca.new": {"file": str(bundle), "crl": str(crl)}})
    ev = assert_refused(g, pki.device("dev-new-1"), "revoked")
    assert "dev-new-1" in ev["detail"], ev["_line"]
    assert_admitted(g, other, "new")
    # The same CRL on a section without the intermediate is not that
    # section's CRL: the reload fails and changes nothing.
    g.overrides["ca.new"]["file"] = pki("ca-new.pem")
    g.write_conf()
    problems, _ = reload_fails(g)
    want = "%s:%d: [ca.new] crl" % (g.conf_path, line_of(g.conf_path, "ca.new", "crl"))
    assert any(p.startswith(want) for p in problems), problems
    assert_refused(g, pki.device("dev-new-1"), "revoked")


def test_stale_crl_at_start_is_a_config_error(pki, certbridge_bin, tmp_path):
    crl = tmp_path / "ca-old.crl"
    mkpki.write_crl(str(crl), mkpki.make_crl(
        pki.pair("ca-old"), last_update=mkpki.now() - datetime.timedelta(days=8),
        next_update=mkpki.now() - datetime.timedelta(days=1)))
    g = cbtest.Gateway(pki, tmp_path / "gw", free_port(), binary=certbridge_bin,
                       overrides={"ca.old": {"crl": str(crl)}})
    g.write_conf()
    want = "%s:%d: [ca.old] crl:" % (g.conf_path, line_of(g.conf_path, "ca.old", "crl"))
    for args in (["-t"], []):
        r = subprocess.run([certbridge_bin] + args + ["-c", str(g.conf_path)],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=t(20))
        assert r.returncode == 1, (args, r.returncode, r.stderr[-2000:])
        assert any(line.startswith(want) and "stale" in line
                   for line in (r.stdout + r.stderr).splitlines()), r.stdout + r.stderr


def test_crl_goes_stale_while_running(broker, make_gateway, pki, old_ca_devices, tmp_path):
    g = make_gateway(broker.port)
    crl = tmp_path / "ca-old.crl"
    ahead = max(3, round(t(1.5)))
    next_update = mkpki.now() + datetime.timedelta(seconds=ahead)
    mkpki.write_crl(str(crl), mkpki.make_crl(pki.pair("ca-old"), next_update=next_update))
    g.overrides["ca.old"] = {"crl": str(crl)}
    g.write_conf()
    assert reload_ok(g) == 2
    dev2 = old_ca_devices["dev-old-2"]
    ctx, sess = ticket(g, dev2)
    if mkpki.now() < next_update:  # (a slow run may already be past it)
        assert_admitted(g, dev2, "old")
    while mkpki.now() <= next_update + datetime.timedelta(seconds=1):
        time.sleep(0.1)  # waiting for a wall-clock instant, not for the daemon
    ev = assert_refused(g, dev2, "crl-stale")
    assert "[ca.old]" in ev["detail"] and "nextUpdate" in ev["detail"], ev["_line"]
    assert_resumption_refused(g, dev2, ctx, sess, "crl-stale")
    # Only that CA's devices: the other CA has no CRL.
    assert_admitted(g, pki.device("dev-new-1"), "new")


def test_stale_crl_at_reload_fails_and_keeps_serving(broker, make_gateway, pki, tmp_path):
    g = make_gateway(broker.port)
    crl = tmp_path / "ca-old.crl"
    mkpki.write_crl(str(crl), mkpki.make_crl(
        pki.pair("ca-old"), revoked=[mkpki.load_cert(pki("dev-old-1.pem"))],
        last_update=mkpki.now() - datetime.timedelta(days=8),
        next_update=mkpki.now() - datetime.timedelta(days=1)))
    g.overrides["ca.old"] = {"crl": str(crl)}
    g.write_conf()
    problems, final = reload_fails(g)
    want = "%s:%d: [ca.old] crl" % (g.conf_path, line_of(g.conf_path, "ca.old", "crl"))
    assert any(p.startswith(want) and "stale" in p for p in problems), problems
    assert "generation 1" in final["msg"], final["_line"]
    # Still generation 1, without the CRL: dev-old-1 is not refused.
    assert_admitted(g, pki.device("dev-old-1"), "old")
    # A CRL signed by another CA is refused the same way.
    mkpki.write_crl(str(crl), mkpki.make_crl(pki.pair("ca-new")))
    problems, _ = reload_fails(g)
    assert any(p.startswith(want) for p in problems), problems
    assert_admitted(g, pki.device("dev-old-1"), "old")


# ---------------------------------------------------------------- (e) broken configuration


def test_broken_reload_keeps_serving(broker, make_gateway, pki, tmp_path):
    g = make_gateway(broker.port)
    pid = g.pid
    live = LiveSession(g, pki.device("dev-new-1"))
    try:
        # A typo in a key.
        g.overrides["downstream"] = {"handshake_timout": "10s"}
        g.write_conf()
        problems, final = reload_fails(g)
        want = "%s:%d: [downstream] handshake_timout" % (
            g.conf_path, line_of(g.conf_path, "downstream", "handshake_timout"))
        assert any(p.startswith(want) for p in problems), problems
        assert "generation 1" in final["msg"], final["_line"]
        assert final.get("level") == "error", final["_line"]
        roundtrips(g, pki, versions=("311",))
        live.exchange(b"after a failed reload")

        # A missing CA file, and the typo still there: both reported.
        missing = str(tmp_path / "no-such-ca.pem")
        g.overrides["ca.new"] = {"file": missing}
        g.write_conf()
        problems, final = reload_fails(g)
        assert any(p.startswith(want) for p in problems), problems
        want_ca = "%s:%d: [ca.new] file" % (g.conf_path, line_of(g.conf_path, "ca.new", "file"))
        assert any(p.startswith(want_ca) and "no-such-ca.pem" in p for p in problems), problems
        assert "generation 1" in final["msg"], final["_line"]
        # Both CAs still work: the old configuration is in force.
        roundtrips(g, pki, versions=("5",))
        live.exchange(b"after two failed reloads")

        # Fixed: the next reload is generation 2, not 4.
        g.overrides["downstream"]["handshake_timout"] = None
        g.overrides["ca.new"]["file"] = pki("ca-new.pem")
        g.write_conf()
        assert reload_ok(g) == 2
        roundtrips(g, pki, versions=("311",))
        live.exchange(b"after the good reload")
        live.assert_open()
        assert g.pid == pid
    finally:
        live.close()


def test_unbindable_listen_address_keeps_serving(broker, make_gateway, pki):
    """A reload whose new address cannot be bound changes nothing: the TLS
    listener stays the same socket, the generation does not advance."""
    g = make_gateway(broker.port)
    inode = listen_inode(g.port)
    assert inode, "no listener on %d" % g.port
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        g.overrides["downstream"] = {"plain_listen": "127.0.0.1:%d" % busy}
        g.write_conf()
        mark = g.mark()
        g.reload()
        final = g.wait_event("reload-failed", since=mark,
                             msg=re.compile(r"still serving generation 1"))
        assert not g.events("reloaded", since=mark), g.report()
        assert g.events("listen-failed", since=mark), g.report()
        assert listen_inode(g.port) == inode, final["_line"]
        roundtrips(g, pki, versions=("311",))
    finally:
        taken.close()
    g.overrides["downstream"]["plain_listen"] = None
    g.write_conf()
    assert reload_ok(g) == 2
    assert listen_inode(g.port) == inode
    roundtrips(g, pki, versions=("5",))


def test_listen_moves_sessions_stay(broker, make_gateway, pki):
    """[downstream] listen moves to another port: the new one accepts, the
    old one closes, and sessions accepted on the old one go on."""
    g = make_gateway(broker.port)
    old_port, new_port = g.port, free_port()
    live = LiveSession(g, pki.device("dev-old-1"))
    try:
        g.overrides["downstream"] = {"listen": "127.0.0.1:%d" % new_port}
        g.write_conf()
        mark = g.mark()
        assert reload_ok(g) == 2
        g.wait_event("listening", since=mark, addr="127.0.0.1:%d" % new_port)
        g.port = new_port
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", old_port), timeout=t(2.0)).close()
        roundtrips(g, pki, versions=("311",))
        live.exchange(b"the listener moved, the session stayed")
        live.assert_open()
    finally:
        live.close()


# ---------------------------------------------------------------- (f) 50 reloads under load


class Publisher(threading.Thread):
    """A paho device publishing QoS 1 to its own topic at about rate/s;
    remembers every payload the broker acknowledged (PUBACK)."""

    def __init__(self, client, topic, rate=20.0):
        super().__init__(daemon=True)
        self.c, self.topic, self.period = client, topic, 1.0 / rate
        self.acked = []
        self.errors = []
        self.stop = threading.Event()

    def run(self):
        seq = 0
        next_at = time.monotonic()
        while not self.stop.is_set():
            payload = ("%s #%d" % (self.topic, seq)).encode()
            try:
                info = self.c.c.publish(self.topic, payload, qos=1)
                if info.rc != 0:
                    self.errors.append("publish rc %d at #%d" % (info.rc, seq))
                    return
                info.wait_for_publish(timeout=t(10.0))
                if not info.is_published():
                    self.errors.append("no PUBACK for #%d within %.0fs" % (seq, t(10.0)))
                    return
            except Exception as e:  # noqa: BLE001 - reported by the test
                self.errors.append("#%d: %s: %s" % (seq, type(e).__name__, e))
                return
            self.acked.append(payload)
            seq += 1
            next_at += self.period
            self.stop.wait(max(0.0, next_at - time.monotonic()))


class PortProber(threading.Thread):
    """Opens and closes TCP connections to a port in a loop; counts
    ECONNREFUSED."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.attempts = 0
        self.refused = 0
        self.other = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.attempts += 1
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=t(2.0))
                s.close()
            except ConnectionRefusedError:
                self.refused += 1
            except OSError as e:
                self.other.append("%s: %s" % (type(e).__name__, e))
            self.stop.wait(0.01)


class Churner(threading.Thread):
    """Full device sessions, one after the other, during the reloads:
    connect (CONNACK 0 expected), one QoS 1 publish, disconnect."""

    def __init__(self, port, creds):
        super().__init__(daemon=True)
        self.port, self.creds = port, creds
        self.sessions = 0
        self.errors = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            c = PahoClient(self.port, self.creds, "311",
                           client_id="churn-%s-%s" % (self.creds.name, uid()))
            try:
                code = c.connect()
                if code != 0:
                    self.errors.append("CONNACK %s (%s)" % (code, c.error))
                    return
                c.publish("cbtest/churn/%s" % uid(), b"churn", qos=1)
                self.sessions += 1
            except AssertionError as e:
                self.errors.append(str(e))
                return
            finally:
                c.close()


def _plain_session(port):
    """A certificate-less MQTT session over plain TCP: CONNECT, CONNACK 0,
    DISCONNECT."""
    s = socket.create_connection(("127.0.0.1", port), timeout=t(5.0))
    try:
        s.sendall(connect_packet("plain-%s" % uid()))
        assert read_packet(s, timeout=10.0) == (0x20, b"\x00\x00")
        s.sendall(DISCONNECT)
        wait_closed(s)
    finally:
        s.close()


def test_fifty_reloads_under_load(broker, make_gateway, pki):
    n_devices, n_reloads = 20, 50
    g = make_gateway(broker.port)
    plain_port = free_port()
    base = "cbtest/storm/%s" % uid()
    devices = {"old": pki.device("dev-old-1"), "new": pki.device("dev-new-1")}

    sub = PahoClient(g.port, devices["new"], "311", client_id="storm-sub-%s" % uid())
    clients, publishers = [], []
    prober = PortProber(g.port)
    churners = [Churner(g.port, devices[ca]) for ca in ("old", "new")]
    try:
        assert sub.connect() == 0, sub.error
        assert sub.subscribe(base + "/#", 1) == 1
        for i in range(n_devices):
            creds = devices["old" if i % 2 == 0 else "new"]
            c = PahoClient(g.port, creds, "5" if i % 4 == 3 else "311",
                           client_id="storm-%02d-%s" % (i, uid()))
            clients.append(c)
            assert c.connect() == 0, "device %d: %s" % (i, c.error)
        inode = listen_inode(g.port)
        assert inode, "no listener on %d" % g.port
        conns = {}
        for c in clients + [sub]:
            conns[g.wait_event("mqtt-connect", clientid=c.client_id)["conn"]] = c.client_id
        assert len(conns) == n_devices + 1
        mark = g.mark()

        prober.start()
        for ch in churners:
            ch.start()
        for i, c in enumerate(clients):
            publishers.append(Publisher(c, "%s/%02d" % (base, i)))
            publishers[-1].start()

        plain_seen = False
        for k in range(n_reloads):
            if k == n_reloads // 2:
                g.overrides["downstream"] = {"plain_listen": "127.0.0.1:%d" % plain_port}
                g.write_conf()
            elif k == n_reloads // 2 + 1:
                g.overrides["downstream"]["plain_listen"] = None
                g.write_conf()
            m = g.mark()
            assert reload_ok(g) == k + 2
            ev = g.wait_event("reloaded", since=m)
            assert int(ev["sessions"]) >= n_devices + 1, ev["_line"]
            if k == n_reloads // 2:
                ev = g.wait_event("listening", since=m, addr="127.0.0.1:%d" % plain_port)
                assert ev.get("tls") == "no", ev["_line"]
                _plain_session(plain_port)
                plain_seen = True
            elif k == n_reloads // 2 + 1:
                assert not g.events("listening", since=m, addr="127.0.0.1:%d" % plain_port)
                with pytest.raises(ConnectionRefusedError):
                    socket.create_connection(("127.0.0.1", plain_port), timeout=t(2.0)).close()
            for p in publishers:
                assert not p.errors, "device %s: %s" % (p.topic, p.errors)
            time.sleep(0.05)  # spacing between signals, not an assertion
        assert plain_seen

        for p in publishers + churners:
            p.stop.set()
        prober.stop.set()
        for ch in churners:
            ch.join(t(15.0))
            assert not ch.is_alive(), "a churning device is stuck"
            assert not ch.errors, "a new session during the reloads failed: %s" % ch.errors
            assert ch.sessions >= 5, "only %d churning sessions" % ch.sessions
        for p in publishers:
            p.join(t(15.0))
            assert not p.is_alive(), "publisher %s stuck" % p.topic
        prober.join(t(10.0))

        # Every acknowledged message reaches the subscriber.
        want = set()
        for p in publishers:
            assert not p.errors, "device %s: %s" % (p.topic, p.errors)
            assert len(p.acked) >= 10, "device %s published only %d" % (p.topic, len(p.acked))
            want.update(p.acked)
        got = set()
        deadline = time.monotonic() + t(30.0)
        while not want <= got and time.monotonic() < deadline:
            try:
                got.add(bytes(sub.messages.get(timeout=0.2).payload))
            except queue.Empty:
                pass
        missing = want - got
        assert not missing, "%d of %d acknowledged messages never arrived, e.g. %s" % (
            len(missing), len(want), sorted(missing)[:5])

        # No session dropped: same connections, no session-closed, no
        # paho disconnect.
        for c in clients + [sub]:
            assert not c.disconnected.is_set(), "%s disconnected: %s" % (c.client_id, c.error)
        closed = [e["_line"] for e in g.events("session-closed", since=mark)
                  if e.get("conn") in conns]
        assert not closed, closed
        assert prober.attempts >= n_reloads, prober.attempts
        assert prober.refused == 0, "the TLS port refused %d of %d connections during reloads" % (
            prober.refused, prober.attempts)
        assert not prober.other, prober.other[:5]
        gens = [int(e["generation"]) for e in g.events("reloaded", since=mark)]
        assert gens == list(range(2, n_reloads + 2)), gens
        assert listen_inode(g.port) == inode, "the TLS listener was replaced by a reload"
    finally:
        for p in publishers + churners:
            p.stop.set()
        prober.stop.set()
        for c in clients + [sub]:
            c.close()
    # Clean stop: exit code 0 (and, under CB_VALGRIND=1, no error or leak).
    rc = g.stop()
    assert rc == 0, "certbridge exited with %s\n%s" % (rc, g.report())


# ---------------------------------------------------------------- (g) state file


STATE_HEADER = "# certbridge device sightings v1: ca<TAB>device<TAB>first<TAB>last"


def _read_state(path):
    lines = open(path).read().splitlines()
    assert lines and lines[0].startswith(STATE_HEADER), lines[:1]
    rows = {}
    for line in lines[1:]:
        if not line or line.startswith("#"):
            continue
        f = line.split("\t")
        # ca, device, first, last, and the serial of the device's last
        # certificate (common/sightfile.h), as a CRL lists it.
        assert len(f) == 5 and re.fullmatch(r"([0-9A-F]{2}){1,32}", f[4]), \
            "bad line %r" % line
        key = (f[0], f[1])
        assert key not in rows, "device listed twice: %r" % line
        rows[key] = (int(f[2]), int(f[3]))
    return rows


def test_state_file_survives_restart(broker, make_gateway, pki, tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    state = folder / "devices.state"
    g = make_gateway(broker.port, {"gateway": {"state_file": str(state)}})
    for ev in (g.wait_event("ca-devices", ca="old"), g.wait_event("ca-devices", ca="new")):
        assert ev.get("devices_total") == "0" and ev.get("last_seen") == "never", ev["_line"]
    t0 = int(time.time())
    assert_admitted(g, pki.device("dev-old-1"), "old")
    assert_admitted(g, pki.device("dev-new-1"), "new")
    assert_admitted(g, pki.device("dev-old-1"), "old")
    # Each reload reports the per-CA figures, from memory.
    mark = g.mark()
    reload_ok(g)
    for ca in ("old", "new"):
        ev = g.wait_event("ca-devices", since=mark, ca=ca)
        assert ev.get("devices_7d") == "1" and ev.get("devices_total") == "1", ev["_line"]
    assert g.stop() == 0, g.report()
    t1 = int(time.time())

    assert sorted(os.listdir(folder)) == ["devices.state"], os.listdir(folder)
    rows = _read_state(state)
    assert set(rows) == {("old", "dev-old-1"), ("new", "dev-new-1")}, rows
    for first, last in rows.values():
        assert t0 - 2 <= first <= last <= t1 + 2, rows

    g2 = make_gateway(broker.port, {"gateway": {"state_file": str(state)}})
    for ca in ("old", "new"):
        ev = g2.wait_event("ca-devices", ca=ca)
        assert int(ev["devices_total"]) >= 1 and int(ev["devices_7d"]) >= 1, ev["_line"]
        assert ev.get("last_seen") != "never", ev["_line"]
    # A new sighting updates the device's line, never adds one.
    assert_admitted(g2, pki.device("dev-old-1"), "old")
    assert g2.stop() == 0, g2.report()
    assert sorted(os.listdir(folder)) == ["devices.state"], os.listdir(folder)
    rows2 = _read_state(state)
    assert set(rows2) == set(rows), rows2
    assert rows2[("old", "dev-old-1")][0] == rows[("old", "dev-old-1")][0]
    assert rows2[("old", "dev-old-1")][1] >= rows[("old", "dev-old-1")][1]
    assert rows2[("new", "dev-new-1")] == rows[("new", "dev-new-1")]


def test_a_lasting_session_keeps_its_device_seen(broker, make_gateway, pki, tmp_path):
    """A device whose session stays up is still on its CA: its sighting is
    made new while the session lasts (every minute, and at the stop), so a
    fleet that never reconnects does not fall out of the 7-day figure, and
    retiring its CA is not planned on a figure of 0 (docs/rotation.md)."""
    state = tmp_path / "devices.state"
    g = make_gateway(broker.port, {"gateway": {"state_file": str(state)}})
    with PahoClient(g.port, pki.device("dev-old-1"), "311", client_id="lasting-%s" % uid()) as c:
        assert c.connect() == 0, c.error
        time.sleep(t(3))
        assert g.stop() == 0, g.report()
    (first, last), = [v for k, v in _read_state(state).items() if k == ("old", "dev-old-1")]
    assert last - first >= 2, (first, last)


def test_state_file_relative_to_config_folder(broker, pki, certbridge_bin, tmp_path):
    """A relative state_file lives next to the configuration file, not in
    the daemon's working folder."""
    g = cbtest.Gateway(pki, tmp_path / "run", broker.port, binary=certbridge_bin,
                       overrides={"gateway": {"state_file": "devices.state"}})
    etc = tmp_path / "etc"
    etc.mkdir()
    g.conf_path = etc / "certbridge.ini"
    g.start()
    try:
        assert_admitted(g, pki.device("dev-new-1"), "new")
    finally:
        assert g.stop() == 0, g.report()
    assert (etc / "devices.state").is_file(), sorted(os.listdir(etc))
    assert not (tmp_path / "run" / "devices.state").exists()
    assert set(_read_state(etc / "devices.state")) == {("new", "dev-new-1")}


def test_state_file_damaged_line_skipped(broker, make_gateway, tmp_path):
    state = tmp_path / "devices.state"
    now = int(time.time())
    week = 7 * 86400
    state.write_text(STATE_HEADER + " (epoch seconds, UTC)\n"
                     "old\tdev-a\t%d\t%d\n"
                     "this line is damaged\n"
                     "new\tdev-b\t%d\t%d\n"
                     "old\tdev-c\t%d\t%d\n"
                     % (now - 100, now - 50, now - 20, now - 10,
                        now - 3 * week, now - week - 3600))
    g = make_gateway(broker.port, {"gateway": {"state_file": str(state)}})
    ev = g.wait_event("state-file")
    assert ev.get("level") == "warn" and "1 damaged" in ev.get("msg", ""), ev["_line"]
    # dev-c was last seen 8 days ago: counted in total, not in the 7 days.
    ev = g.wait_event("ca-devices", ca="old")
    assert (ev.get("devices_total"), ev.get("devices_7d")) == ("2", "1"), ev["_line"]
    ev = g.wait_event("ca-devices", ca="new")
    assert (ev.get("devices_total"), ev.get("devices_7d")) == ("1", "1"), ev["_line"]
    assert ev.get("last_seen", "").startswith(iso(datetime.datetime.fromtimestamp(
        now - 10, datetime.timezone.utc))[:16]), ev["_line"]


def test_state_file_moved_by_reload_keeps_sightings(broker, make_gateway, pki, tmp_path):
    first, moved = tmp_path / "first.state", tmp_path / "moved.state"
    g = make_gateway(broker.port, {"gateway": {"state_file": str(first)}})
    assert_admitted(g, pki.device("dev-old-1"), "old")
    g.overrides["gateway"]["state_file"] = str(moved)
    g.write_conf()
    assert reload_ok(g) == 2
    assert g.stop() == 0, g.report()
    g2 = make_gateway(broker.port, {"gateway": {"state_file": str(moved)}})
    ev = g2.wait_event("ca-devices", ca="old")
    assert ev.get("devices_total") == "1", "%s\n%s exists: %s" % (
        ev["_line"], moved, moved.exists())


# ---------------------------------------------------------------- (h) upstream chain watch


def test_upstream_chain_watch(pki, make_broker, make_gateway, tmp_path):
    b = make_broker()
    g = make_gateway(b.port)
    assert not g.events("upstream-chain"), g.report()
    roundtrips(g, pki, versions=("311",))
    ev = g.wait_event("upstream-chain")
    assert ev.get("broker") == "127.0.0.1:%d" % b.port, ev["_line"]
    assert ev.get("certificates") == "2", ev["_line"]
    assert re.search(r"localhost \(notAfter [^,]+, sha256 [0-9a-fA-F:]+.*\) <- .*"
                     r"Cloud Intermediate CA 2026", ev.get("chain", "")), ev["_line"]
    roundtrips(g, pki, versions=("5",))
    assert len(g.events("upstream-chain")) == 1, g.report()
    assert not g.events("upstream-chain-changed"), g.report()

    # The cloud rotates leaf and intermediate under the same root.
    chain, key, _ = cloud_chain(tmp_path, pki.pair("cloud-root"), "Rotated")
    mark = g.mark()
    b.restart(certfile=chain, keyfile=key)
    roundtrips(g, pki)  # eight sessions
    changed = g.events("upstream-chain-changed", since=mark)
    assert len(changed) == 1, [e["_line"] for e in changed]
    assert changed[0].get("level") == "warn", changed[0]["_line"]
    assert "Cloud Intermediate Rotated" in changed[0].get("chain", ""), changed[0]["_line"]
    assert len(g.events("upstream-chain")) == 1, g.report()


def test_broker_leaf_expiring_is_logged(pki, make_broker, make_gateway, tmp_path):
    chain, key, _ = cloud_chain(tmp_path, pki.pair("cloud-root"), "Short",
                                not_after=mkpki.now() + datetime.timedelta(days=10, hours=1))
    b = make_broker(certfile=chain, keyfile=key)
    g = make_gateway(b.port)
    roundtrips(g, pki, versions=("311",))
    g.wait_event("upstream-chain")
    mark = g.mark()
    assert reload_ok(g) == 2
    ev = g.wait_event("cert-expiring", since=mark, role="broker")
    assert ev.get("level") == "warn", ev["_line"]
    assert ev.get("name") == "127.0.0.1:%d" % b.port, ev["_line"]
    assert ev.get("days_left") in ("9", "10"), ev["_line"]
    assert "localhost" in ev.get("subject", ""), ev["_line"]
    # The intermediate (ten years) is not listed.
    assert not g.events("cert-expiring", since=mark, role="broker-ca"), g.report()


def test_configured_ca_expiring_is_logged(broker, make_gateway, tmp_path):
    """A device CA within 30 days of its end: a warning at start and at
    every reload (and daily)."""
    short = mkpki.make_ca("certbridge lab Short CA %s" % uid()[:4],
                          not_after=mkpki.now() + datetime.timedelta(days=10, hours=1))
    mkpki.write_pair(str(tmp_path), "short-ca", short)
    path = str(tmp_path / "short-ca.pem")
    g = make_gateway(broker.port, {"ca.short": {"file": path}})
    for since in (0, None):
        if since is None:
            since = g.mark()
            reload_ok(g)
        ev = g.wait_event("cert-expiring", since=since, role="device-ca")
        assert ev.get("level") == "warn", ev["_line"]
        assert ev.get("days_left") in ("9", "10"), ev["_line"]
        assert "Short CA" in ev.get("subject", "") and ev.get("file") == path, ev["_line"]
        assert ev.get("name") == "ca.short", ev["_line"]
        # Certificates far from their end are not listed.
        assert all(e.get("file") == path
                   for e in g.events("cert-expiring", since=since, role="device-ca")), g.report()
