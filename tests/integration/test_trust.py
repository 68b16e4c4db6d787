"""Trust decisions fail closed (docs/configuration.md, "How a device is
judged", "Identities are exact" and [gateway] rejudge).

- T1 revocation is never bypassed: a device listed in its CA's CRL is
  refused reason=revoked while its dates are valid, inside clock_skew and
  inside expired_grace; its unrevoked twins are admitted (grace works);
- T2 identities are exact: a CN with a NUL or a control byte, two CNs, a
  300-byte CN, a DNS SAN with a NUL are refused with CONNACK 0x05 / 0x87,
  reason=identity, whatever clientid says, and never select another
  device's device_certs pair; with identity = none such a device is
  admitted and its name shows escaped in the log and the state file;
- T3 a device leaf is a leaf: CA:TRUE, keyUsage keyCertSign, keyUsage
  without digitalSignature are refused reason=bad-cert; a leaf minted by a
  CA:TRUE device certificate is refused; a [ca.*] file holding a leaf is a
  configuration error;
- T4 live sessions are judged again: at a reload that retires, removes or
  revokes, and at the retire_after instant, each no-longer-trusted session
  is closed (session-revoked, the broker publishes its will), the others
  carry on; with rejudge = no nothing is closed.

Devices are raw TLS sockets (exact CONNACK bytes), paho and mosquitto_pub;
the broker is a real TLS mosquitto. Every wait is bounded.
"""

import datetime
import os
import re
import ssl
import subprocess
import time

import pytest
from cryptography import x509

import cbtest
from cbtest import Creds, PahoClient, mkpki, t, uid
from rawmqtt import (connect_packet_ex, device_context, publish_packet, read_connack,
                     read_packet, subscribe_packet, tls_device, wait_closed)

# CONNACK "not authorized": 3.1.1 0x05; 5.0 0x87 with an empty property list.
NOT_AUTHORIZED = {4: (0x20, b"\x00\x05"), 5: (0x20, b"\x00\x87\x00")}


# ---------------------------------------------------------------- certificates


def leaf(issuer, subject, sans=(), ca=False, key_usage="device", not_before=None,
         not_after=None):
    """A client certificate mkpki.make_leaf cannot make (see make_odd_leaf)."""
    return mkpki.make_odd_leaf(issuer, subject, sans=sans, ca=ca, key_usage=key_usage,
                               not_before=not_before, not_after=not_after)


cn_name = mkpki.cn_name


def write_device(pki, folder, name, issued, chain=()):
    mkpki.write_key(os.path.join(str(folder), name + ".key"), issued.key)
    mkpki.write_cert(os.path.join(str(folder), name + ".pem"), issued.cert, *chain)
    return Creds(name, os.path.join(str(folder), name + ".pem"),
                 os.path.join(str(folder), name + ".key"), pki(pki.DEVICE_TRUST))


def peer_re(sock):
    return re.compile(r":%d$" % sock.getsockname()[1])


# ---------------------------------------------------------------- device helpers


def handshake_refused(g, creds, reason, max_version=None):
    """The TLS handshake of creds is refused with reason; returns the
    handshake-failed event."""
    mark = g.mark()
    local, err = cbtest.tls_probe(g.port, creds, max_version=max_version)
    assert err is not None, "%s was admitted; expected reason=%s\n%s" % (
        creds.name, reason, g.report())
    ev = g.wait_event("handshake-failed", since=mark, side="downstream",
                      peer=re.compile(r":%d$" % local))
    assert ev.get("reason") == reason, ev["_line"]
    assert not g.events("device-admitted", since=mark), g.report()
    return ev


def session_up(g, creds, client_id, version=4, keepalive=60, will=None):
    """A raw TLS MQTT session through g; returns the socket (CONNACK 0)."""
    ss = tls_device(g.port, creds)
    try:
        ss.sendall(connect_packet_ex(client_id, keepalive, version, will=will))
        first, body = read_packet(ss, timeout=10.0)
        assert first == 0x20 and len(body) >= 2 and body[1] == 0, \
            "CONNACK %#x %r\n%s" % (first, body, g.report())
        return ss
    except BaseException:
        ss.close()
        raise


def connect_refused(g, creds, client_id, version):
    """CONNECT by creds gets exactly the not-authorized CONNACK of its
    version and a close; returns the refusal's session-closed event."""
    mark = g.mark()
    ss = tls_device(g.port, creds)
    try:
        ss.sendall(connect_packet_ex(client_id, 60, version))
        got = read_connack(ss)
        assert got == NOT_AUTHORIZED[version], "got %r, want %r\n%s" % (
            got, NOT_AUTHORIZED[version], g.report())
        wait_closed(ss)
        peer = peer_re(ss)
    finally:
        ss.close()
    ev = g.wait_event("session-closed", since=mark, peer=peer)
    assert ev.get("reason") == "identity", ev["_line"]
    return ev


def assert_live(ss, topic):
    """The session still carries a message both ways (QoS 0 to itself)."""
    ss.sendall(publish_packet(topic, b"still here"))
    first, body = read_packet(ss, timeout=10.0)
    assert first & 0xF0 == 0x30 and body.endswith(b"still here"), (first, body)


def subscribed(g, creds, topic, client_id):
    ss = session_up(g, creds, client_id)
    ss.sendall(subscribe_packet(1, topic, 0))
    assert read_packet(ss, timeout=10.0) == (0x90, b"\x00\x01\x00")
    return ss


def wait_revoked(g, since, peer, reason, timeout=10.0):
    ev = g.wait_event("session-revoked", since=since, timeout=timeout, peer=peer)
    assert ev.get("reason") == reason, ev["_line"]
    assert ev.get("detail", "").strip(), ev["_line"]
    return ev


def iso(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def reload_ok(g, timeout=10.0):
    mark = g.mark()
    g.reload()
    deadline = time.monotonic() + t(timeout)
    while not g.events("reloaded", since=mark):
        assert not g.events("reload-failed", since=mark), g.report()
        assert time.monotonic() < deadline, g.report()
        time.sleep(0.02)
    return mark


# ---------------------------------------------------------------- T1 revocation


@pytest.fixture(scope="module")
def revocation(pki, tmp_path_factory):
    """Devices of ca-old with valid, graced-expired and graced-future
    dates, each with a revoked twin, and a CRL of ca-old listing the
    twins."""
    folder = tmp_path_factory.mktemp("revocation")
    ca = pki.pair("ca-old")
    made = {}
    for kind, nb, na in [("valid", None, None),
                         ("expired", "-10d", "-2h"),
                         ("future", "+2m", "+30d")]:
        for revoked in (False, True):
            name = "t1-%s%s" % (kind, "-revoked" if revoked else "")
            issued = leaf(ca, cn_name(name), not_before=nb, not_after=na)
            made[name] = (write_device(pki, folder, name, issued), issued)
    crl = folder / "ca-old.crl"
    mkpki.write_crl(str(crl), mkpki.make_crl(ca, revoked=[
        i for n, (_, i) in made.items() if n.endswith("-revoked")]))
    return {"crl": str(crl), "devices": {n: c for n, (c, _) in made.items()}}


@pytest.mark.parametrize("kind", ["valid", "expired", "future"])
def test_revoked_is_refused_inside_grace_and_skew(broker, make_gateway, revocation, kind):
    """expired_grace 1d and the default clock_skew 5m admit the unrevoked
    twin (with its grace logged); the revoked one is refused revoked."""
    g = make_gateway(broker.port, {"ca.old": {"crl": revocation["crl"],
                                              "expired_grace": "1d"}})
    devs = revocation["devices"]
    mark = g.mark()
    with PahoClient(g.port, devs["t1-%s" % kind], "311") as c:
        assert c.connect() == 0, "%s\n%s" % (c.error, g.report())
    ev = g.wait_event("device-admitted", since=mark)
    assert ev.get("ca") == "old", ev["_line"]
    if kind != "valid":
        assert ev.get("grace") == {"expired": "expired", "future": "skew"}[kind], ev["_line"]
    ev = handshake_refused(g, devs["t1-%s-revoked" % kind], "revoked")
    assert "t1-%s-revoked" % kind in ev["detail"] and "serial" in ev["detail"], ev["_line"]


def test_revoked_resumption_refused(broker, make_gateway, revocation, tmp_path):
    """A TLS 1.3 ticket of a device admitted under grace does not bring it
    back once the CRL lists it: the new CRL comes with a reload, whose new
    ticket keys force a full handshake, and that handshake is judged."""
    g = make_gateway(broker.port, {"ca.old": {"expired_grace": "1d"}})
    dev = revocation["devices"]["t1-expired-revoked"]
    ctx = device_context(dev)
    ss = tls_device(g.port, dev, ctx=ctx)
    ss.sendall(connect_packet_ex("t1-resume-%s" % uid()))
    assert read_packet(ss, timeout=10.0)[0] == 0x20
    sess = ss.session
    ss.close()
    g.overrides["ca.old"]["crl"] = revocation["crl"]
    g.write_conf()
    reload_ok(g)
    mark = g.mark()
    try:
        s2 = tls_device(g.port, dev, ctx=ctx, session=sess)
        s2.sendall(connect_packet_ex("t1-resume2-%s" % uid()))
        got = read_connack(s2)
        s2.close()
    except (OSError, ConnectionError):
        got = None
    assert got is None, "revoked device got %r" % (got,)
    ev = g.wait_event("handshake-failed", since=mark, side="downstream")
    assert ev.get("reason") == "revoked", ev["_line"]


# ---------------------------------------------------------------- T2 identities


@pytest.fixture(scope="module")
def odd_ids(pki, tmp_path_factory):
    folder = tmp_path_factory.mktemp("odd-ids")
    ca = pki.pair("ca-old")
    cases = {
        "nul": cn_name("dev-old-1\x00.attacker"),
        "two-cns": cn_name("dev-old-1", "dev-evil"),
        "long": cn_name("d" * 300),
        "ctl": cn_name("dev-\x1b[31m-1"),
    }
    out = {n: write_device(pki, folder, "id-" + n, leaf(ca, subj)) for n, subj in cases.items()}
    out["san-nul"] = write_device(pki, folder, "id-san-nul", leaf(
        ca, cn_name("id-san-nul"), sans=[x509.DNSName("dev-old-1\x00.example")]))
    out["san-ok"] = write_device(pki, folder, "id-san-ok", leaf(
        ca, cn_name("id-san-ok"), sans=[x509.DNSName("dev-san.example")]))
    return out


WHY = {"nul": "NUL", "two-cns": "2 CNs", "long": "300 bytes", "ctl": "control"}


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("case", sorted(WHY))
@pytest.mark.parametrize("clientid", ["check", "keep"])
def test_inexact_cn_refused(broker, make_gateway, odd_ids, case, version, clientid):
    """The client id the device would pass with a cut CN ("dev-old-1") is
    refused too; so is any client id under clientid = keep."""
    g = make_gateway(broker.port, {"mqtt": {"identity": "cn", "clientid": clientid}})
    bmark = broker.mark()
    ev = connect_refused(g, odd_ids[case], "dev-old-1", version)
    assert WHY[case] in ev.get("detail", ""), ev["_line"]
    assert "CN" in ev["detail"], ev["_line"]
    assert not g.events("upstream-queued", since=0), g.report()
    assert not cbtest.broker_clients(broker, since=bmark)


def test_inexact_cn_never_selects_device_certs(broker, make_gateway, pki, odd_ids, tmp_path):
    """device_certs holds dev-old-1's pair: the NUL-cut CN must not use it."""
    folder = tmp_path / "device-certs"
    folder.mkdir()
    up = mkpki.make_leaf("dev-old-1", pki.pair("cloud-client-ca"), usage="client")
    mkpki.write_cert(str(folder / "dev-old-1.crt"), up.cert)
    mkpki.write_key(str(folder / "dev-old-1.key"), up.key)
    g = make_gateway(broker.port, {"upstream": {"device_certs": str(folder)},
                                   "mqtt": {"clientid": "check"}})
    bmark = broker.mark()
    connect_refused(g, odd_ids["nul"], "dev-old-1", 4)
    assert not g.events("upstream-connected"), g.report()
    assert not cbtest.broker_clients(broker, since=bmark)
    # The real dev-old-1 does get its own pair.
    mark = g.mark()
    with PahoClient(g.port, pki.device("dev-old-1"), "311", client_id="dev-old-1") as c:
        assert c.connect() == 0, c.error
    assert g.wait_event("upstream-connected", since=mark).get("client_cert") == "device"


@pytest.mark.parametrize("version", [4, 5])
def test_nul_in_dns_san_refused(broker, make_gateway, odd_ids, version):
    g = make_gateway(broker.port, {"mqtt": {"identity": "san-dns", "clientid": "rewrite"}})
    ev = connect_refused(g, odd_ids["san-nul"], "whatever", version)
    assert "DNS SAN" in ev["detail"] and "NUL" in ev["detail"], ev["_line"]
    # The control: a clean DNS SAN becomes the client id.
    ss = session_up(g, odd_ids["san-ok"], "whatever", version)
    ss.close()


def test_identity_none_admits_and_escapes(broker, make_gateway, odd_ids, tmp_path):
    """identity = none reads no field: the NUL-CN device is admitted, and
    its name shows escaped in the log and the state file (never cut)."""
    state = tmp_path / "devices.state"
    g = make_gateway(broker.port, {"mqtt": {"identity": "none", "clientid": "keep"},
                                   "gateway": {"state_file": str(state)}})
    mark = g.mark()
    ss = session_up(g, odd_ids["nul"], "any-%s" % uid())
    ss.close()
    ev = g.wait_event("device-admitted", since=mark)
    assert 'device="dev-old-1\\x00.attacker"' in ev["_line"], ev["_line"]
    g.stop()
    text = state.read_text()
    assert "dev-old-1\\x00.attacker" in text or "dev-old-1%5Cx00.attacker" in text, text
    assert "\x00" not in text


# ---------------------------------------------------------------- T3 leaves


@pytest.fixture(scope="module")
def leaves(pki, tmp_path_factory):
    folder = tmp_path_factory.mktemp("leaves")
    ca = pki.pair("ca-old")
    evil = leaf(ca, cn_name("dev-evil"), ca=True)
    evil_signer = leaf(ca, cn_name("dev-evil-2"), ca=True, key_usage="certsign")
    issuing = pki.pair("ca-new-int")  # pathLenConstraint 0
    out = {
        "ca-true": write_device(pki, folder, "t3-ca-true", evil),
        "ca-true-under-pl0": write_device(pki, folder, "t3-ca-true-new", leaf(
            issuing, cn_name("t3-ca-true-new"), ca=True), chain=[issuing.cert]),
        "certsign-only": write_device(pki, folder, "t3-certsign-only", leaf(
            ca, cn_name("t3-certsign-only"), key_usage="certsign-only")),
        "crlsign-only": write_device(pki, folder, "t3-crlsign-only", leaf(
            ca, cn_name("t3-crlsign-only"), key_usage="crlsign-only")),
        "certsign": write_device(pki, folder, "t3-certsign", leaf(
            ca, cn_name("t3-certsign"), key_usage="certsign")),
        "no-digital-signature": write_device(pki, folder, "t3-encipher", leaf(
            ca, cn_name("t3-encipher"), key_usage="encipher")),
        "no-key-usage": write_device(pki, folder, "t3-no-ku", leaf(
            ca, cn_name("t3-no-ku"), key_usage="none")),
        "minted": write_device(pki, folder, "t3-minted", leaf(
            evil, cn_name("dev-old-1")), chain=[evil.cert]),
        "minted-certsign": write_device(pki, folder, "t3-minted-2", leaf(
            evil_signer, cn_name("dev-old-1")), chain=[evil_signer.cert]),
    }
    return out


@pytest.mark.parametrize("case,words", [
    ("ca-true", "CA:TRUE"),
    ("certsign", "keyCertSign"),
    ("no-digital-signature", "digitalSignature"),
    ("minted", "keyCertSign"),
])
def test_leaf_that_is_not_a_leaf_refused(broker, make_gateway, leaves, case, words):
    g = make_gateway(broker.port)
    ev = handshake_refused(g, leaves[case], "bad-cert")
    assert words in ev["detail"], ev["_line"]


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
@pytest.mark.parametrize("case,words", [
    # wolfSSL's own words here were "path length constraint exceeded".
    ("ca-true-under-pl0", "basicConstraints CA:TRUE"),
    # ... and over TLS 1.2 "Key Use digitalSignature not set".
    ("certsign", "keyUsage keyCertSign"),
    ("certsign-only", "keyUsage keyCertSign"),
    ("crlsign-only", "keyUsage cRLSign"),
    ("no-digital-signature", "without digitalSignature"),
])
def test_leaf_refusal_names_the_extension(broker, make_gateway, leaves, case, words, tls):
    """Whichever check fires first, wolfSSL's or certbridge's, the refusal
    names the extension and says what to issue instead (docs/configuration.md,
    "A device leaf is a leaf")."""
    g = make_gateway(broker.port)
    version = ssl.TLSVersion.TLSv1_2 if tls == "1.2" else ssl.TLSVersion.TLSv1_3
    ev = handshake_refused(g, leaves[case], "bad-cert", max_version=version)
    assert words in ev["detail"], ev["_line"]
    assert "issue" in ev["detail"], ev["_line"]


def test_minted_leaf_refused_by_path_length(broker, make_gateway, pki, leaves, tmp_path):
    """A device certificate mis-issued as a full CA (CA:TRUE, keyCertSign)
    is refused as a device; what it signs is a valid X.509 path unless the
    device CA limits it: with pathLenConstraint 0 on the issuing CA it is
    refused (docs/configuration.md says to set it)."""
    g = make_gateway(broker.port)
    handshake_refused(g, leaves["ca-true"], "bad-cert")
    # ca-old has no pathLenConstraint: a sub-CA is X.509-legal there.
    mark = g.mark()
    with PahoClient(g.port, leaves["minted-certsign"], "311",
                    client_id="dev-old-1") as c:
        assert c.connect() == 0, c.error
    g.wait_event("device-admitted", since=mark)
    # The same CA re-issued with pathLenConstraint 0 (same key and name):
    old = pki.pair("ca-old")
    strict = mkpki.make_ca(old.cn, key=old.key, path_length=0)
    mkpki.write_cert(str(tmp_path / "ca-old-pl0.pem"), strict.cert)
    g.overrides["ca.old"] = {"file": str(tmp_path / "ca-old-pl0.pem")}
    g.write_conf()
    reload_ok(g)
    ev = handshake_refused(g, leaves["minted-certsign"], "bad-cert")
    assert "pathLenConstraint" in ev["detail"], ev["_line"]


def test_leaf_without_key_usage_admitted(broker, make_gateway, leaves):
    g = make_gateway(broker.port)
    with PahoClient(g.port, leaves["no-key-usage"], "311") as c:
        assert c.connect() == 0, c.error


def test_ca_file_holding_a_leaf_is_a_config_error(pki, certbridge_bin, tmp_path):
    g = cbtest.Gateway(pki, tmp_path, 1, binary=certbridge_bin,
                       overrides={"ca.old": {"file": pki("dev-old-1.pem")}})
    g.write_conf()
    r = subprocess.run([certbridge_bin, "-t", "-c", str(g.conf_path)],
                       capture_output=True, text=True, timeout=t(30))
    assert r.returncode == 1, r
    assert re.search(r"certbridge\.ini:\d+: \[ca\.old\] file: certificate 1 in .* is not a CA",
                     r.stderr), r.stderr


# ---------------------------------------------------------------- T4 re-judging


def will_watch(g, pki, topic):
    """A new-CA device subscribed to topic (QoS 1), to see wills."""
    c = PahoClient(g.port, pki.device("dev-new-1"), "311",
                   client_id="watch-%s" % uid())
    assert c.connect() == 0, c.error
    assert c.subscribe(topic, 1) == 1
    return c


@pytest.mark.parametrize("change", ["retire", "remove", "crl"])
def test_reload_closes_untrusted_sessions(broker, make_gateway, pki, tmp_path, change):
    """dev-old-1 (keepalive 0: it would never end by itself) is closed at
    the reload that retires, removes or revokes it; the broker publishes its
    will; dev-new-1's session is untouched and keeps carrying messages."""
    g = make_gateway(broker.port, admin=True)
    cid = "t4-%s-%s" % (change, uid())
    will_topic = "w/" + cid
    watcher = will_watch(g, pki, will_topic)
    try:
        old = session_up(g, pki.device("dev-old-1"), cid, keepalive=0,
                         will=(will_topic, b"revoked", 1, False))
        new_topic = "t4/new/%s" % uid()
        new = subscribed(g, pki.device("dev-new-1"), new_topic, "t4-new-%s" % uid())
        peer = peer_re(old)
        if change == "retire":
            g.overrides["ca.old"] = {"retire_after": iso(mkpki.now()
                                                         - datetime.timedelta(hours=1))}
            reason = "retired-ca"
        elif change == "remove":
            g.overrides["ca.old"] = None
            reason = "unknown-ca"
        else:
            crl = tmp_path / "ca-old.crl"
            mkpki.write_crl(str(crl), mkpki.make_crl(pki.pair("ca-old"), revoked=[
                mkpki.load_cert(pki("dev-old-1.pem"))]))
            g.overrides["ca.old"] = {"crl": str(crl)}
            reason = "revoked"
        g.write_conf()
        mark = reload_ok(g)
        ev = wait_revoked(g, mark, peer, reason)
        if change == "remove":
            # Not "add the CA": the operator has just removed it.
            assert "[ca.old], which the configuration no longer has" in ev["detail"], \
                ev["_line"]
        assert wait_closed(old) == b""
        old.close()
        m = watcher.wait_message()
        assert (m.topic, bytes(m.payload)) == (will_topic, b"revoked")
        assert_live(new, new_topic)
        assert not g.events("session-revoked", since=mark, device="dev-new-1"), g.report()
        ev = g.wait_event("rejudged", since=mark)
        assert ev.get("cause") == "reload" and int(ev["closed"]) == 1, ev["_line"]
        _, metrics = cbtest.scrape(g.admin_port)
        key = cbtest.metric_key("certbridge_sessions_revoked_total", reason=reason)
        assert metrics.get(key) == 1, key
        new.close()
    finally:
        watcher.close()


def test_retire_instant_closes_sessions_without_reload(broker, make_gateway, pki):
    g = make_gateway(broker.port)
    at = mkpki.now() + datetime.timedelta(seconds=max(3, round(t(2))))
    g.overrides["ca.old"] = {"retire_after": iso(at)}
    g.write_conf()
    reload_ok(g)
    cid = "t4-instant-%s" % uid()
    old = session_up(g, pki.device("dev-old-1"), cid, keepalive=0)
    new_topic = "t4/instant/%s" % uid()
    new = subscribed(g, pki.device("dev-new-1"), new_topic, "t4-new-%s" % uid())
    peer = peer_re(old)
    mark = g.mark()
    if mkpki.now() < at:
        assert not g.events("session-revoked"), g.report()
    wait_revoked(g, mark, peer, "retired-ca", timeout=(at - mkpki.now()).total_seconds() + 5)
    assert wait_closed(old) == b""
    old.close()
    ev = g.wait_event("rejudged", since=mark)
    assert ev.get("cause") == "retire_after of [ca.old]", ev["_line"]
    assert_live(new, new_topic)
    new.close()


def test_rejudge_off_keeps_sessions(broker, make_gateway, pki):
    g = make_gateway(broker.port, {"gateway": {"rejudge": "no"}})
    topic = "t4/off/%s" % uid()
    old = subscribed(g, pki.device("dev-old-1"), topic, "t4-off-%s" % uid())
    g.overrides["ca.old"] = None
    g.write_conf()
    mark = reload_ok(g)
    assert_live(old, topic)
    assert not g.events("session-revoked", since=mark), g.report()
    assert not g.events("rejudged", since=mark), g.report()
    # New connections are judged by the new rules all the same.
    handshake_refused(g, pki.device("dev-old-1"), "unknown-ca")
    old.close()


def test_untouched_sessions_when_nothing_changes(broker, make_gateway, pki):
    """A reload that changes no trust rule closes nothing."""
    g = make_gateway(broker.port)
    topic = "t4/same/%s" % uid()
    old = subscribed(g, pki.device("dev-old-1"), topic, "t4-same-%s" % uid())
    mark = reload_ok(g)
    ev = g.wait_event("rejudged", since=mark)
    assert int(ev["closed"]) == 0 and int(ev["sessions"]) >= 1, ev["_line"]
    assert_live(old, topic)
    old.close()
