"""End-to-end tests of certbridge's core promise (README.md):

- devices of the old CA and of the new CA (behind an intermediate) both get
  through one gateway, with MQTT 3.1.1 and 5.0, QoS 0/1/2, and large payloads;
- devices that must not get in are refused at the handshake, and the log
  says why (reason= slug, detail= sentence, conn=, peer=);
- admissions are logged with the CA that admitted the device;
- the cloud rotating its intermediate and leaf under the same root changes
  nothing for the devices, with no restart of certbridge;
- a broker whose chain does not verify never gets a device's session: the
  device gets CONNACK "server unavailable".

The first tests check the test harness itself (broker, PKI) without
certbridge, so a failure there points at the harness, not the daemon.
"""

import os
import re
import subprocess

import pytest

import cbtest
from cbtest import (PahoClient, ROUNDTRIPS, VERSIONS, assert_same_bytes, mkpki,
                    mosquitto_pub, paho_connect, uid)

# CONNACK "server unavailable" per protocol version (docs/troubleshooting.md,
# "Session ends": upstream-unavailable).
SERVER_UNAVAILABLE = {"311": 3, "5": 0x88}

DEVICES = {"old": "dev-old-1", "new": "dev-new-1"}


# ---------------------------------------------------------------- the harness itself


def test_lab_pki_layout(pki):
    for f in mkpki.LAB_LAYOUT + [".complete"]:
        p = pki(f)
        assert os.path.isfile(p), f
        mode = os.stat(p).st_mode & 0o777
        if f.endswith(".key"):
            assert mode == 0o600, (f, oct(mode))
        else:
            assert mode == 0o644, (f, oct(mode))
    assert len(mkpki.load_certs(pki("dev-new-1-chain.pem"))) == 2
    assert len(mkpki.load_certs(pki("broker-chain.pem"))) == 2
    # Idempotent: a second run rewrites nothing.
    before = os.stat(pki("ca-old.pem")).st_mtime_ns
    mkpki.lab(pki.dir)
    assert os.stat(pki("ca-old.pem")).st_mtime_ns == before


@pytest.mark.parametrize("cafile,chain,untrusted,want", [
    ("ca-old.pem", "dev-old-1.pem", None, "OK"),
    ("ca-new.pem", "dev-new-1.pem", "dev-new-1-chain.pem", "OK"),
    ("ca-old.pem", "gateway-chain.pem", None, "OK"),
    ("cloud-root.pem", "broker.pem", "broker-chain.pem", "OK"),
    ("cloud-client-ca.pem", "gateway-upstream.pem", None, "OK"),
    ("ca-old.pem", "dev-expired.pem", None, "certificate has expired"),
    ("ca-old.pem", "dev-future.pem", None, "certificate is not yet valid"),
    ("ca-old.pem", "dev-unknown.pem", None, "unable to get local issuer certificate"),
    ("ca-new.pem", "dev-new-1.pem", None, "unable to get local issuer certificate"),
])
def test_lab_pki_verifies_with_openssl(pki, cafile, chain, untrusted, want):
    argv = ["openssl", "verify", "-CAfile", pki(cafile)]
    if untrusted:
        argv += ["-untrusted", pki(untrusted)]
    r = subprocess.run(argv + [pki(chain)], capture_output=True, text=True, timeout=10)
    assert want in r.stdout + r.stderr, r.stdout + r.stderr
    assert (r.returncode == 0) == (want == "OK")


def test_broker_restarts_on_same_port_with_rotated_chain(pki, make_broker, tmp_path):
    """The rotation scenario's mechanics, without certbridge."""
    b = make_broker()
    port = b.port
    chain, key, leaf_der = _cloud_rotation(pki, str(tmp_path), pki.pair("cloud-root"), "Test")
    assert b.peer_cert() != leaf_der
    b.restart(certfile=chain, keyfile=key)
    assert b.port == port and b.peer_cert() == leaf_der
    up = pki.upstream_client()
    assert cbtest.roundtrip_paho(port, up, up, b"rotated", qos=1) == (1, b"rotated")


def test_broker_accepts_upstream_identity_directly(broker, pki):
    """The fixture broker works: the gateway's upstream certificate can
    publish and subscribe on it directly."""
    up = pki.upstream_client()
    sent = b"direct-" + os.urandom(8)
    assert cbtest.roundtrip_cli(broker.port, up, up, sent, qos=1) == (1, sent)
    qos, payload2 = cbtest.roundtrip_paho(broker.port, up, up, b"x" * 1000, qos=2, version="5")
    assert (qos, payload2) == (2, b"x" * 1000)


@pytest.mark.parametrize("device", ["dev-old-1", "dev-new-1", None])
def test_broker_refuses_devices_directly(broker, pki, device):
    """Device certificates (and no certificate) do not get into the broker:
    only certbridge's upstream identity does. That is why devices need it."""
    creds = pki.device(device)
    creds.cafile = pki("cloud-root.pem")
    r = mosquitto_pub(broker.port, creds, "cbtest/direct", b"x", qos=1)
    assert r.rc not in (0, None), r
    code, err = paho_connect(broker.port, creds, "311")
    assert code is None, (code, err)


# ---------------------------------------------------------------- traffic


@pytest.mark.parametrize("qos", [0, 1, 2])
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("ca", ["old", "new"])
@pytest.mark.parametrize("tool", ["cli", "paho"])
def test_publish_receive(gateway, pki, tool, ca, version, qos):
    dev = pki.device(DEVICES[ca])
    payload = ("%s %s v%s q%d " % (tool, ca, version, qos)).encode() + os.urandom(16)
    got_qos, got = ROUNDTRIPS[tool](gateway.port, dev, dev, payload, qos=qos, version=version)
    assert_same_bytes(got, payload)
    assert got_qos == qos


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("tool", ["cli", "paho"])
def test_old_and_new_devices_talk_to_each_other(gateway, pki, tool, version):
    """Dual trust: at the same time, an old-CA device reaches a new-CA
    device and back."""
    old, new = pki.device("dev-old-1"), pki.device("dev-new-1")
    for pub, sub in ((old, new), (new, old)):
        payload = ("from %s to %s" % (pub.name, sub.name)).encode()
        assert ROUNDTRIPS[tool](gateway.port, pub, sub, payload, qos=1,
                                version=version) == (1, payload)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("ca", ["old", "new"])
@pytest.mark.parametrize("tool", ["cli", "paho"])
def test_one_mebibyte_payload(gateway, broker, pki, tool, ca, version):
    dev = pki.device(DEVICES[ca])
    payload = os.urandom(1 << 20)
    topic = "cbtest/big/%s" % uid()
    # A subscriber directly on the broker checks the upstream direction on
    # its own: the same defect in both directions could otherwise cancel
    # out when the same device publishes and subscribes.
    with PahoClient(broker.port, pki.upstream_client(), version) as direct:
        assert direct.connect() == 0, direct.error
        assert direct.subscribe(topic, 1) == 1
        got_qos, got = ROUNDTRIPS[tool](gateway.port, dev, dev, payload, qos=1,
                                        version=version, topic=topic)
        up = bytes(direct.wait_message(timeout=20.0).payload)
    assert_same_bytes(up, payload, "device -> broker")
    assert_same_bytes(got, payload, "broker -> device")
    assert got_qos == 1


# ---------------------------------------------------------------- admission log


@pytest.mark.parametrize("ca", ["old", "new"])
def test_admitted_device_logged_with_its_ca(gateway, pki, ca):
    device = DEVICES[ca]
    mark = gateway.mark()
    with PahoClient(gateway.port, pki.device(device), "311") as c:
        assert c.connect() == 0, c.error
    ev = gateway.wait_event("device-admitted", since=mark, device=device)
    assert ev.get("ca") == ca, ev["_line"]
    assert ev.get("conn"), ev["_line"]
    assert "127.0.0.1" in ev.get("peer", ""), ev["_line"]


# ---------------------------------------------------------------- refusals

REFUSALS = [
    ("dev-unknown", "unknown-ca"),
    ("dev-expired", "expired"),
    (None, "no-client-cert"),
    ("dev-future", "not-yet-valid"),  # 2h ahead, beyond the default 5m clock_skew
]


@pytest.mark.parametrize("device,reason", REFUSALS,
                         ids=[r for _, r in REFUSALS])
def test_refused_device(gateway, pki, device, reason):
    creds = pki.device(device)
    for attempt in ("cli", "paho"):
        mark = gateway.mark()
        if attempt == "cli":
            r = mosquitto_pub(gateway.port, creds, "cbtest/refused", b"x", qos=1)
            assert r.rc not in (0, None), "mosquitto_pub got through: %r" % r
        else:
            code, err = paho_connect(gateway.port, creds, "5")
            assert code is None, "a refused device got CONNACK %s" % code
        ev = gateway.wait_event("handshake-failed", since=mark, side="downstream")
        assert ev.get("reason") == reason, ev["_line"]
        assert ev.get("conn"), ev["_line"]
        assert "127.0.0.1" in ev.get("peer", ""), ev["_line"]
        assert ev.get("detail", "").strip(), ev["_line"]
        if device:
            assert not gateway.events("device-admitted", since=mark, device=device), \
                gateway.report()


# ---------------------------------------------------------------- upstream changes


def _cloud_rotation(pki, folder, root_pair, tag):
    """A new intermediate and broker leaf under root_pair, written to
    folder; returns (chain file, key file, leaf DER)."""
    inter = mkpki.make_ca("certbridge lab Cloud Intermediate %s" % tag, issuer=root_pair,
                          path_length=0)
    leaf = mkpki.make_leaf("localhost", inter, usage="server", dns=["localhost"],
                           ips=["127.0.0.1"])
    name = "broker-%s" % re.sub(r"\W", "", tag.lower())
    mkpki.write_pair(folder, name, leaf, chain=[inter.cert])
    from cryptography.hazmat.primitives.serialization import Encoding
    return (os.path.join(folder, name + "-chain.pem"), os.path.join(folder, name + ".key"),
            leaf.cert.public_bytes(Encoding.DER))


def test_cloud_rotates_intermediate_and_leaf(pki, make_broker, make_gateway, tmp_path):
    """The Losant incident: the cloud changes its intermediate and server
    certificate under the same root. certbridge trusts the root, not the
    leaf, so it keeps working: no restart, no reload, devices unaffected."""
    b = make_broker()
    g = make_gateway(b.port)
    old, new = pki.device("dev-old-1"), pki.device("dev-new-1")
    assert cbtest.roundtrip_paho(g.port, old, new, b"before", qos=1) == (1, b"before")

    chain, key, leaf_der = _cloud_rotation(pki, str(tmp_path), pki.pair("cloud-root"), "2027")
    pid = g.pid
    b.restart(certfile=chain, keyfile=key)
    assert b.peer_cert() == leaf_der, "the broker does not present the rotated leaf"

    assert g.running() and g.pid == pid, "certbridge stopped\n" + g.report()
    for tool, version in (("paho", "311"), ("cli", "5"), ("paho", "5"), ("cli", "311")):
        for pub, sub in ((old, new), (new, old)):
            payload = ("after rotation %s v%s %s" % (tool, version, uid())).encode()
            assert ROUNDTRIPS[tool](g.port, pub, sub, payload, qos=1,
                                    version=version) == (1, payload)
    assert g.running() and g.pid == pid


@pytest.fixture
def rogue_upstream(pki, make_broker, make_gateway, tmp_path):
    """A gateway whose broker (restarted) presents a chain under a root the
    gateway does not trust. Function-scoped on purpose: pytest reports only
    the first failing finalizer of a scope, and the module's gateway must
    keep its own teardown report (exit code, valgrind)."""
    b = make_broker()
    g = make_gateway(b.port)
    evil_root = mkpki.make_ca("certbridge lab Evil Cloud Root")
    mkpki.write_pair(str(tmp_path), "evil-root", evil_root)
    chain, key, _ = _cloud_rotation(pki, str(tmp_path), evil_root, "Evil")
    b.restart(certfile=chain, keyfile=key)
    b.evil_root = str(tmp_path / "evil-root.pem")
    return b, g


@pytest.mark.parametrize("version", VERSIONS)
def test_untrusted_upstream_chain_refused(rogue_upstream, pki, version):
    b, g = rogue_upstream
    # The rogue broker itself is up and speaks TLS with its own chain.
    assert b.peer_cert(cafile=b.evil_root)
    for ca in ("old", "new"):
        mark = g.mark()
        c = PahoClient(g.port, pki.device(DEVICES[ca]), version)
        try:
            code = c.connect(timeout=15.0)
            assert code == SERVER_UNAVAILABLE[version], (
                "CONNACK %s (error: %s); the contract says %#x" % (
                    code, c.error, SERVER_UNAVAILABLE[version]))
            # certbridge closes after the refusal.
            assert c.disconnected.wait(cbtest.t(5.0)), "connection left open after CONNACK"
        finally:
            c.close()
        ev = g.wait_event("handshake-failed", since=mark, side="upstream")
        assert ev.get("reason") == "unknown-ca", ev["_line"]
        assert ev.get("conn") and ev.get("detail", "").strip(), ev["_line"]
    # mosquitto_pub gives up too.
    r = mosquitto_pub(g.port, pki.device("dev-old-1"), "cbtest/rogue", b"x", qos=1,
                      version=version)
    assert r.rc not in (0, None), r


