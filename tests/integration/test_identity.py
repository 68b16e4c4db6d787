"""Identity rules on the MQTT session ([mqtt] identity / clientid / username)
and per-device upstream identities ([upstream] device_certs),
docs/configuration.md "[mqtt]" and "[upstream]: the cloud broker";
docs/architecture.md "What certbridge leaves to the broker".

- clientid = check: the CONNECT's client id must be the certificate identity;
  any other gets CONNACK 0x02 (3.1.1) / 0x85 (5.0), then the connection is
  closed and the broker never hears of it;
- clientid = rewrite: the broker sees the identity as the client id, and the
  rest of the CONNECT (clean flag, MQTT 5 properties) survives re-encoding;
- username = identity | drop, against a mosquitto that judges the CONNECT's
  username and password itself; the broker's refusal reaches the device as
  the broker sent it;
- identity = san-dns | san-uri: exactly one SAN of that type, else refused
  (0x05 / 0x87) as ambiguous or missing;
- [MQTT-3.1.3-8]: an empty client id with clean session off (3.1.1);
- device_certs: <identity>.crt/.key per device, the shared identity for the
  others, refusal without either, and identities that cannot be file names.

Clients: paho-mqtt (3.1.1 and 5.0) and raw MQTT bytes where the exact CONNACK
bytes matter. Every gateway runs with MALLOC_PERTURB_ set, so that a read of
freed memory shows in the log of a plain build too.
"""

import contextlib
import os
import re

import pytest

import cbtest
from cbtest import (AuthBroker, PahoClient, PahoSession, broker_clients, mkpki, t, uid,
                    wait_broker_client)
from rawmqtt import (connect_packet_fields, read_connack, tls_device, wait_closed)

try:
    from paho.mqtt.properties import Properties
    from paho.mqtt.packettypes import PacketTypes
except ImportError:  # reported by PahoClient
    Properties = PacketTypes = None

VERSIONS = ("311", "5")
PROTO = {"311": 4, "5": 5}
ID_REJECTED = {"311": 0x02, "5": 0x85}
NOT_AUTHORIZED = {"311": 0x05, "5": 0x87}
SHARED_CN = "certbridge-gateway"  # CN of the lab's gateway-upstream.pem


# ---------------------------------------------------------------- daemon bug plumbing


class DaemonBug(AssertionError):
    """A memory error of the daemon (or its symptom in the log), reported
    with the sanitizer's or valgrind's own words."""


UAF = ("memory error in the daemon while refusing a CONNECT (a read of the "
       "CONNECT's bytes after they were freed would log bytes the device never "
       "sent as clientid=)")


@pytest.fixture(autouse=True)
def perturbed_malloc(monkeypatch):
    """glibc fills freed memory with 0xa5: a read after free shows up as
    bytes the device never sent (gateways started in the test inherit it)."""
    monkeypatch.setenv("MALLOC_PERTURB_", "165")


def _memory_error(g):
    """The sanitizer or valgrind report of a gateway, if any."""
    text = g.log_text()
    i = text.find("ERROR: AddressSanitizer")
    if i >= 0:
        return text[i:i + 1500]
    if cbtest.VALGRIND and g.vg_log.exists():
        vg = g.vg_log.read_text(errors="replace")
        m = re.search(r"^==\d+== (Invalid read|Invalid write|Use of uninitialised).*$", vg, re.M)
        if m:
            return vg[m.start():m.start() + 1500]
    return None


@contextlib.contextmanager
def watching(g):
    """Runs a test body against gateway g, then stops g (exit code 0 is
    required; under valgrind, no error). A memory error of the daemon,
    whatever assertion it made fail, is raised as DaemonBug."""
    try:
        yield
        rc = g.stop()
        assert rc == 0, "certbridge exited with %s\n%s" % (rc, g.report())
    except AssertionError as e:
        if isinstance(e, DaemonBug):
            raise
        if g.running():
            g.stop()
        err = _memory_error(g)
        if err:
            raise DaemonBug("%s\n---- report ----\n%s" % (UAF, err)) from e
        raise


def check_connect_logged(g, since, client_id, rule):
    """The mqtt-connect line shows the client id the device sent."""
    ev = g.wait_event("mqtt-connect", since=since, identity_rule=rule)
    if ev.get("clientid") != client_id:
        raise DaemonBug("%s\nthe device sent client id %r; the log says clientid=%r:\n%s"
                        % (UAF, client_id, ev.get("clientid"), ev["_line"]))
    return ev


# ---------------------------------------------------------------- helpers


def raw_refused(port, creds, version, client_id, want_code, **fields):
    """Sends one CONNECT by hand and checks the exact CONNACK bytes of a
    refusal (session present 0; in 5.0 an empty property list), and that
    the gateway then closes the connection."""
    s = tls_device(port, creds)
    try:
        s.sendall(connect_packet_fields(client_id, version=PROTO[version], **fields))
        ack = read_connack(s)
        want = (0x20, bytes([0, want_code]) + (b"\x00" if version == "5" else b""))
        assert ack == want, "CONNACK %r, want %r" % (ack, want)
        assert wait_closed(s, timeout=5.0) == b"", "bytes after the refusal"
    finally:
        s.close()


def paho_refused(port, creds, version, client_id, want_code, **kw):
    """A paho client sees CONNACK want_code and then the connection ends."""
    c = PahoSession(port, creds, version, client_id=client_id, **kw)
    try:
        code = c.connect(timeout=10.0)
        assert code == want_code, "CONNACK %s (error %s), want %#x" % (code, c.error, want_code)
        assert c.disconnected.wait(t(5.0)), "connection left open after the refusal"
    finally:
        c.close()


def check_refusal_logged(g, since, detail_part):
    ev = g.wait_event("session-closed", since=since, reason="identity")
    assert detail_part in ev.get("detail", ""), ev["_line"]
    assert not g.events("upstream-queued", since=since), g.report()
    return ev


def barrier_then_absent(broker, since, port, creds, absent_ids=(), absent_users=(),
                        probe=None, seen_as=None):
    """Connects a good device (client id probe, which the broker sees as
    seen_as) after the refused ones and waits until the broker logged it;
    by then the refused ones would be in the broker's log if they had
    reached it. Checks they are not."""
    probe = probe or "probe-%s" % uid()
    with PahoClient(port, creds, "311", client_id=probe) as c:
        assert c.connect() == 0, c.error
        wait_broker_client(broker, seen_as or probe, since)
    seen = broker_clients(broker, since)
    for cid in absent_ids:
        assert cid not in [s[0] for s in seen], "the broker saw %r:\n%s" % (cid, broker.report())
    for user in absent_users:
        assert user not in [s[1] for s in seen], "the broker saw user %r:\n%s" % (
            user, broker.report())


def pubsub(c, qos=1):
    """Subscribe, publish, receive on one connected paho client."""
    topic = "cbtest/id/%s" % uid()
    payload = b"identity " + os.urandom(8)
    assert c.subscribe(topic, qos) == qos
    c.publish(topic, payload, qos=qos)
    m = c.wait_message()
    assert (m.topic, bytes(m.payload), m.qos) == (topic, payload, qos)


def mqtt_gw(make_gateway, broker, mqtt=None, upstream=None, **kw):
    over = {"mqtt": dict(mqtt or {})}
    if upstream:
        over["upstream"] = upstream
    return make_gateway(broker.port, over, **kw)


# ---------------------------------------------------------------- 1. clientid = check


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("device", ["dev-old-1", "dev-new-1"])
def test_clientid_check_admits_its_own_id(broker, make_gateway, pki, device, version):
    g = mqtt_gw(make_gateway, broker, {"clientid": "check"})
    mark, bmark = g.mark(), broker.mark()
    with PahoClient(g.port, pki.device(device), version, client_id=device) as c:
        assert c.connect() == 0, c.error
        pubsub(c)
    ev = g.wait_event("mqtt-connect", since=mark, device=device)
    assert ev.get("identity_rule") == "kept" and ev.get("clientid") == device, ev["_line"]
    assert ev.get("version") == {"311": "3.1.1", "5": "5.0"}[version], ev["_line"]
    assert wait_broker_client(broker, device, bmark) == SHARED_CN


@pytest.mark.parametrize("version", VERSIONS)
def test_clientid_check_refuses_another_id(broker, make_gateway, pki, version):
    g = mqtt_gw(make_gateway, broker, {"clientid": "check"})
    dev = pki.device("dev-old-1")
    bad = "not-dev-old-1-%s" % uid()
    with watching(g):
        mark, bmark = g.mark(), broker.mark()
        paho_refused(g.port, dev, version, bad, ID_REJECTED[version])
        ev = check_refusal_logged(g, mark, bad)
        assert ev.get("device") == "dev-old-1", ev["_line"]
        assert g.wait_event("mqtt-connect", since=mark).get("identity_rule") == "refused"

        mark2 = g.mark()
        raw_refused(g.port, dev, version, bad, ID_REJECTED[version])
        check_refusal_logged(g, mark2, bad)
        barrier_then_absent(broker, bmark, g.port, pki.device("dev-old-1"), absent_ids=[bad],
                            probe="dev-old-1")
        assert not g.events("mqtt-connack", since=mark, conn=ev.get("conn")), g.report()
        check_connect_logged(g, mark, bad, "refused")


# ---------------------------------------------------------------- 2. clientid = rewrite


@pytest.mark.parametrize("version", VERSIONS)
def test_clientid_rewrite_broker_sees_identity(broker, make_gateway, pki, version):
    g = mqtt_gw(make_gateway, broker, {"clientid": "rewrite"})
    for device in ("dev-old-1", "dev-new-1"):
        mark, bmark = g.mark(), broker.mark()
        with PahoClient(g.port, pki.device(device), version, client_id="whatever") as c:
            assert c.connect() == 0, c.error
            assert wait_broker_client(broker, device, bmark) == SHARED_CN
            pubsub(c, qos=1)
        ev = g.wait_event("mqtt-connect", since=mark, device=device)
        assert ev.get("identity_rule") == "rewritten", ev["_line"]
        assert "whatever" not in [cid for cid, _ in broker_clients(broker, bmark)]


def test_clientid_rewrite_keeps_v5_properties(pki, make_broker, make_gateway):
    """The re-encoded CONNECT keeps its properties: with a session expiry
    interval the broker keeps the session (and a QoS 1 message sent while
    the device was away); without, it does not. A private broker, so no
    other test's session gets in the way."""
    b = make_broker()
    g = make_gateway(b.port, {"mqtt": {"clientid": "rewrite"}})
    dev = pki.device("dev-old-1")

    def session(clean_start, expiry=None):
        props = None
        if expiry is not None:
            props = Properties(PacketTypes.CONNECT)
            props.UserProperty = ("certbridge", "test")
            props.SessionExpiryInterval = expiry
        c = PahoSession(g.port, dev, "5", client_id="whatever-%s" % uid())
        code = c.connect(clean_start=clean_start, properties=props)
        assert code == 0, (code, c.error)
        return c

    topic = "cbtest/expiry/%s" % uid()
    # Control: no session expiry interval (0), so the session ends with the
    # connection and the next CONNECT finds none.
    c = session(True)
    assert c.session_present == 0
    assert c.subscribe(topic, 1) == 1
    c.close()
    c = session(False)
    assert c.session_present == 0, "the broker kept a session without expiry interval"
    c.close()

    c = session(True, expiry=300)
    assert c.session_present == 0
    assert c.subscribe(topic, 1) == 1
    c.close()
    up = pki.upstream_client()
    with PahoClient(b.port, up, "5") as direct:
        assert direct.connect() == 0, direct.error
        direct.publish(topic, b"while away", qos=1)
    c = session(False, expiry=300)
    try:
        assert c.session_present == 1, "session expiry interval lost on the way upstream"
        m = c.wait_message()
        assert (m.topic, bytes(m.payload)) == (topic, b"while away")
    finally:
        c.close()
    assert len(g.events("mqtt-connect", identity_rule="rewritten")) == 4


def test_clientid_rewrite_keeps_clean_session_flag_311(pki, make_broker, make_gateway):
    b = make_broker()
    g = make_gateway(b.port, {"mqtt": {"clientid": "rewrite"}})
    dev = pki.device("dev-new-1")
    for present in (0, 1):
        c = PahoSession(g.port, dev, "311", client_id="whatever-%s" % uid(), clean=False)
        try:
            assert c.connect() == 0, c.error
            assert c.session_present == present, c.flags
        finally:
            c.close()
    ev = g.events("mqtt-connect", identity_rule="rewritten")
    assert [e.get("clean") for e in ev] == ["no", "no"], [e["_line"] for e in ev]


# ---------------------------------------------------------------- 3. username rules

PASSWORD = "pw-%s" % uid()


@pytest.fixture(scope="module")
def auth_broker(pki, tmp_path_factory):
    """mosquitto that checks usernames and passwords: dev-old-1 only."""
    b = AuthBroker(pki, tmp_path_factory.mktemp("authbroker"), users={"dev-old-1": PASSWORD})
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def anon_broker(pki, tmp_path_factory):
    """mosquitto that shows the CONNECT's username as is (anonymous allowed)."""
    b = AuthBroker(pki, tmp_path_factory.mktemp("anonbroker"), users=None)
    b.start()
    yield b
    b.stop()


def _broker_refusal_code(broker, since):
    """The code of the first CONNACK mosquitto sent after since (for a
    refused client it names the peer address, not the client id)."""
    m = broker.wait_log(r"Sending CONNACK to \S+ \(\d+, (\d+)\)", since=since)
    return int(m.group(1))


@pytest.mark.parametrize("version", VERSIONS)
def test_username_identity(auth_broker, make_gateway, pki, version):
    g = make_gateway(auth_broker.port, {"mqtt": {"username": "identity"}})
    dev = pki.device("dev-old-1")
    cid = "uid-%s" % uid()
    mark, bmark = g.mark(), auth_broker.mark()
    with PahoSession(g.port, dev, version, client_id=cid, username="someone-else",
                     password=PASSWORD) as c:
        assert c.connect() == 0, (c.connack, c.error)
        pubsub(c)
    assert wait_broker_client(auth_broker, cid, bmark) == "dev-old-1"
    assert g.wait_event("mqtt-connect", since=mark).get("identity_rule") == "rewritten"


@pytest.mark.parametrize("version", VERSIONS)
def test_username_keep_broker_refusal_reaches_device(auth_broker, make_gateway, pki, version):
    """The same device and password without the rewrite: the broker itself
    refuses the username, and the device gets exactly the broker's code."""
    g = make_gateway(auth_broker.port, {"mqtt": {"username": "keep"}})
    dev = pki.device("dev-old-1")
    cid = "ukeep-%s" % uid()
    mark, bmark = g.mark(), auth_broker.mark()
    c = PahoSession(g.port, dev, version, client_id=cid, username="someone-else",
                    password=PASSWORD)
    try:
        code = c.connect()
        assert code in ((5,) if version == "311" else (0x86, 0x87)), (code, c.error)
        assert code == _broker_refusal_code(auth_broker, bmark)
        assert c.disconnected.wait(t(5.0)), "connection left open after the broker's refusal"
    finally:
        c.close()
    ev = g.wait_event("mqtt-connack", since=mark)
    assert ev.get("code") == "0x%02x" % code, ev["_line"]
    assert ev.get("level") == "warn", ev["_line"]
    assert g.wait_event("mqtt-connect", since=mark).get("identity_rule") == "kept"


@pytest.mark.parametrize("version", VERSIONS)
def test_username_drop(anon_broker, make_gateway, pki, version):
    keep = make_gateway(anon_broker.port, {"mqtt": {"username": "keep"}})
    drop = make_gateway(anon_broker.port, {"mqtt": {"username": "drop"}})
    dev = pki.device("dev-new-1")
    seen = {}
    for g in (keep, drop):
        cid = "udrop-%s" % uid()
        mark, bmark = g.mark(), anon_broker.mark()
        with PahoSession(g.port, dev, version, client_id=cid, username="devuser",
                         password="devpass") as c:
            assert c.connect() == 0, (c.connack, c.error)
            pubsub(c, qos=0)
        seen[g] = wait_broker_client(anon_broker, cid, bmark)
        rule = g.wait_event("mqtt-connect", since=mark).get("identity_rule")
        assert rule == ("kept" if g is keep else "rewritten"), rule
    assert seen[keep] == "devuser"   # the observable works
    assert seen[drop] is None, "username %r reached the broker" % seen[drop]


# ---------------------------------------------------------------- 4. identity from a SAN

SAN_CASES = {
    # kind: {case: (dns SANs, uri SANs)}
    "san-dns": {"one": (["dev-san-1.devices.example"], ["urn:certbridge:other"]),
                "two": (["a.devices.example", "b.devices.example"], []),
                "none": ([], ["urn:certbridge:dev-uri-only"])},
    "san-uri": {"one": (["dns-only.devices.example"], ["urn:certbridge:dev-uri-1"]),
                "two": ([], ["urn:certbridge:a", "urn:certbridge:b"]),
                "none": (["dns-only.devices.example"], [])},
}


@pytest.fixture(scope="module")
def san_devices(pki, tmp_path_factory):
    """Devices of the old CA with chosen SANs: {(kind, case): Creds}."""
    folder = tmp_path_factory.mktemp("san-devices")
    ca = pki.pair("ca-old")
    out = {}
    for kind, cases in SAN_CASES.items():
        for case, (dns, uris) in cases.items():
            name = "%s-%s" % (kind, case)
            leaf = mkpki.make_leaf("cn-" + name, ca, usage="client", dns=dns, uris=uris)
            mkpki.write_pair(str(folder), name, leaf)
            out[(kind, case)] = cbtest.Creds(name, str(folder / (name + ".pem")),
                                             str(folder / (name + ".key")),
                                             pki(pki.DEVICE_TRUST))
    return out


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("kind", ["san-dns", "san-uri"])
def test_identity_from_one_san(broker, make_gateway, san_devices, kind, version):
    g = mqtt_gw(make_gateway, broker, {"identity": kind, "clientid": "rewrite"})
    dns, uris = SAN_CASES[kind]["one"]
    want = (dns if kind == "san-dns" else uris)[0]
    mark, bmark = g.mark(), broker.mark()
    with PahoClient(g.port, san_devices[(kind, "one")], version, client_id="whatever") as c:
        assert c.connect() == 0, c.error
        pubsub(c)
    assert wait_broker_client(broker, want, bmark) == SHARED_CN
    ev = g.wait_event("mqtt-connect", since=mark)
    assert ev.get("identity_rule") == "rewritten" and ev.get("device") == want, ev["_line"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case,detail", [("two", "more than one SAN"),
                                         ("none", "no SAN of that type")])
@pytest.mark.parametrize("kind", ["san-dns", "san-uri"])
def test_identity_san_refused(broker, make_gateway, pki, san_devices, kind, case, detail,
                              version):
    g = mqtt_gw(make_gateway, broker, {"identity": kind, "clientid": "rewrite"})
    creds = san_devices[(kind, case)]
    cid = "san-%s" % uid()
    with watching(g):
        mark, bmark = g.mark(), broker.mark()
        paho_refused(g.port, creds, version, cid, NOT_AUTHORIZED[version])
        check_refusal_logged(g, mark, detail)
        mark2 = g.mark()
        raw_refused(g.port, creds, version, cid, NOT_AUTHORIZED[version])
        check_refusal_logged(g, mark2, detail)
        dns, uris = SAN_CASES[kind]["one"]
        barrier_then_absent(broker, bmark, g.port, san_devices[(kind, "one")], absent_ids=[cid],
                            seen_as=(dns if kind == "san-dns" else uris)[0])
        check_connect_logged(g, mark, cid, "refused")


# ---------------------------------------------------------------- 5. empty client id


def test_empty_clientid_without_clean_session_311(broker, make_gateway, pki):
    """[MQTT-3.1.3-8]: a 3.1.1 client with an empty client id must set
    clean session; CONNACK 0x02 otherwise, even with clientid = keep."""
    g = mqtt_gw(make_gateway, broker, {"clientid": "keep"})
    with watching(g):
        mark = g.mark()
        raw_refused(g.port, pki.device("dev-old-1"), "311", "", 0x02, clean=False)
        check_refusal_logged(g, mark, "MQTT-3.1.3-8")
        # (An empty client id leaves nothing for the use-after-free to show.)
        check_connect_logged(g, mark, "", "refused")


def test_empty_clientid_with_clean_session_311(broker, make_gateway, pki):
    """The control: with clean session the broker assigns an id."""
    g = mqtt_gw(make_gateway, broker, {"clientid": "keep"})
    s = tls_device(g.port, pki.device("dev-old-1"))
    try:
        s.sendall(connect_packet_fields("", version=4, clean=True))
        assert read_connack(s) == (0x20, b"\x00\x00")
    finally:
        s.close()
    ev = g.wait_event("mqtt-connect", identity_rule="kept")
    assert ev.get("clientid") == "", ev["_line"]


# ---------------------------------------------------------------- 6. device_certs

UP_CN = "dev-old-1-up"


@pytest.fixture(scope="module")
def device_certs(pki, tmp_path_factory):
    """A device_certs folder with dev-old-1.crt/.key, issued by the
    broker's client CA with CN dev-old-1-up; next to the folder (../etc.crt)
    and in a subfolder (sub/dev.crt) valid upstream identities that an
    unsafe device identity could reach if it were used as a path."""
    root = tmp_path_factory.mktemp("devcerts")
    folder = root / "dc"
    folder.mkdir()
    client_ca = pki.pair("cloud-client-ca")

    def issue(path_prefix, cn):
        leaf = mkpki.make_leaf(cn, client_ca, usage="client")
        mkpki.write_cert(str(path_prefix) + ".crt", leaf.cert)
        mkpki.write_key(str(path_prefix) + ".key", leaf.key)

    issue(folder / "dev-old-1", UP_CN)
    issue(root / "etc", "escaped-parent")
    (folder / "sub").mkdir()
    issue(folder / "sub" / "dev", "escaped-sub")
    # Devices whose CN cannot be a file name.
    ca = pki.pair("ca-old")
    unsafe = {}
    for name, cn in (("dotdot", "../etc"), ("slash", "sub/dev")):
        leaf = mkpki.make_leaf(cn, ca, usage="client")
        mkpki.write_pair(str(root), "device-" + name, leaf)
        unsafe[cn] = cbtest.Creds(name, str(root / ("device-%s.pem" % name)),
                                  str(root / ("device-%s.key" % name)), pki(pki.DEVICE_TRUST))
    return {"folder": str(folder), "unsafe": unsafe}


@pytest.mark.parametrize("version", VERSIONS)
def test_device_certs_per_device_identity(broker, make_gateway, pki, device_certs, version):
    g = make_gateway(broker.port, {"upstream": {"device_certs": device_certs["folder"]}})
    for device, user, kind in (("dev-old-1", UP_CN, "device"),
                               ("dev-new-1", SHARED_CN, "shared")):
        cid = "%s-%s" % (device, uid())
        mark, bmark = g.mark(), broker.mark()
        with PahoClient(g.port, pki.device(device), version, client_id=cid) as c:
            assert c.connect() == 0, c.error
            pubsub(c)
        assert wait_broker_client(broker, cid, bmark) == user
        ev = g.wait_event("upstream-connected", since=mark, device=device)
        assert ev.get("client_cert") == kind, ev["_line"]


@pytest.mark.parametrize("version", VERSIONS)
def test_device_certs_without_shared_identity(broker, make_gateway, pki, device_certs, version):
    g = make_gateway(broker.port, {"upstream": {"device_certs": device_certs["folder"],
                                                "cert": None, "key": None}})
    # dev-old-1 has its files.
    cid = "dc-old-%s" % uid()
    mark, bmark = g.mark(), broker.mark()
    with PahoClient(g.port, pki.device("dev-old-1"), version, client_id=cid) as c:
        assert c.connect() == 0, c.error
    assert wait_broker_client(broker, cid, bmark) == UP_CN
    assert g.wait_event("upstream-connected", since=mark).get("client_cert") == "device"
    # dev-new-1 has none, and there is no shared identity to fall back on.
    cid = "dc-new-%s" % uid()
    mark, bmark = g.mark(), broker.mark()
    paho_refused(g.port, pki.device("dev-new-1"), version, cid, NOT_AUTHORIZED[version])
    ev = check_refusal_logged(g, mark, "dev-new-1.crt")
    assert ev.get("device") == "dev-new-1", ev["_line"]
    mark = g.mark()
    raw_refused(g.port, pki.device("dev-new-1"), version, cid, NOT_AUTHORIZED[version])
    check_refusal_logged(g, mark, "dev-new-1.crt")
    barrier_then_absent(broker, bmark, g.port, pki.device("dev-old-1"), absent_ids=[cid])


def test_device_certs_pair_added_takes_effect_at_reload(broker, make_gateway, pki, tmp_path):
    """Sessions use the pairs proven at load, from memory: a pair added to
    the folder is used from the next reload on, like every other file the
    configuration names; until then the device keeps the shared identity."""
    folder = tmp_path / "dc"
    folder.mkdir()
    g = make_gateway(broker.port, {"upstream": {"device_certs": str(folder)}})

    def connect_as(expected_user, kind):
        cid = "dc-added-%s" % uid()
        mark, bmark = g.mark(), broker.mark()
        with PahoClient(g.port, pki.device("dev-new-1"), "311", client_id=cid) as c:
            assert c.connect() == 0, c.error
        assert wait_broker_client(broker, cid, bmark) == expected_user
        ev = g.wait_event("upstream-connected", since=mark, device="dev-new-1")
        assert ev.get("client_cert") == kind, ev["_line"]

    leaf = mkpki.make_leaf("dev-new-1-up", pki.pair("cloud-client-ca"), usage="client")
    mkpki.write_cert(str(folder / "dev-new-1.crt"), leaf.cert)
    mkpki.write_key(str(folder / "dev-new-1.key"), leaf.key)
    connect_as(SHARED_CN, "shared")
    mark = g.mark()
    g.reload()
    g.wait_event("reloaded", since=mark, timeout=10)
    connect_as("dev-new-1-up", "device")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("cn", ["../etc", "sub/dev"])
def test_device_certs_unsafe_identity(broker, make_gateway, pki, device_certs, cn, version):
    """An identity that is not a safe file name is refused, even though a
    shared identity is configured, and no file outside the folder (nor in
    a subfolder) is used: valid certificates wait at both places."""
    g = make_gateway(broker.port, {"upstream": {"device_certs": device_certs["folder"]}})
    creds = device_certs["unsafe"][cn]
    cid = "unsafe-%s" % uid()
    mark, bmark = g.mark(), broker.mark()
    paho_refused(g.port, creds, version, cid, NOT_AUTHORIZED[version])
    ev = check_refusal_logged(g, mark, "cannot be a file name")
    assert cn in ev.get("detail", ""), ev["_line"]
    mark = g.mark()
    raw_refused(g.port, creds, version, cid, NOT_AUTHORIZED[version])
    check_refusal_logged(g, mark, "cannot be a file name")
    barrier_then_absent(broker, bmark, g.port, pki.device("dev-old-1"), absent_ids=[cid],
                        absent_users=["escaped-parent", "escaped-sub"])
