"""Behaviour that depended on how wolfSSL was built, pinned for every build
(docs/architecture.md, "wolfSSL facts"; tools/wolfssl-build.sh).

Debian's libwolfssl has OPENSSL_COMPATIBLE_DEFAULTS and WOLFSSL_QT by
accident of its other options; certbridge's own static build has neither.
These tests hold for both, and each fails on a build or a code change that
lets the difference through:

- a custom [downstream] ciphers list is served in its own order, TLS 1.3
  suites included (wolfSSL names suites the IANA way without
  WOLFSSL_CIPHER_INTERNALNAME, and a list read as "no TLS 1.3 suite" got
  certbridge's ChaCha20-first suites put in front of it);
- a device chain that carries an untrusted root above the intermediate a
  [ca.NAME] file holds is judged at that intermediate: admitted (the
  section closest to the leaf, docs/configuration.md "How a device is
  judged"); wolfSSL needs WOLFSSL_ALT_CERT_CHAINS for this;
- a broker chain that carries a cross-signed copy of the [upstream] ca root
  (signed by a root the gateway does not trust, as AWS IoT's and the old
  Let's Encrypt chains do) verifies at the trusted root.

The "only TLS 1.3 suites while tls_versions allows older" check of -t is a
tests/conf fixture (bad/tls13-only-ciphers.ini).
"""

from cbtest import Creds, PahoClient, mkpki
from test_downstream import negotiated, s_client


def test_custom_cipher_order_is_served_tls13(broker, make_gateway, pki):
    """AES-128-GCM first in the INI, a client that prefers ChaCha20: the
    gateway's order wins, on TLS 1.3 and on TLS 1.2."""
    over = {"downstream": {"ciphers": "TLS13-AES128-GCM-SHA256:"
                           "TLS13-CHACHA20-POLY1305-SHA256:"
                           "ECDHE-ECDSA-AES128-GCM-SHA256:"
                           "ECDHE-ECDSA-CHACHA20-POLY1305"}}
    g = make_gateway(broker.port, over)
    creds = pki.device("dev-old-1")
    mark = g.mark()
    rc, out = s_client(g.port, "-ciphersuites",
                       "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256",
                       "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305:"
                       "ECDHE-ECDSA-AES128-GCM-SHA256", creds=creds)
    assert negotiated(out) == ("TLSv1.3", "TLS_AES_128_GCM_SHA256"), out[-1500:]
    ev = g.wait_event("device-admitted", since=mark)
    assert ev.get("cipher") == "TLS13-AES128-GCM-SHA256", ev["_line"]
    mark = g.mark()
    rc, out = s_client(g.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305:"
                       "ECDHE-ECDSA-AES128-GCM-SHA256", creds=creds)
    assert negotiated(out) == ("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256"), out[-1500:]


def test_untrusted_root_above_configured_intermediate_admitted(broker, make_gateway,
                                                               pki, tmp_path):
    """leaf + intermediate + a self-signed root no section trusts, with only
    the intermediate in [ca.plant]: admitted by [ca.plant]. The root the
    device sends above its anchor is not looked at."""
    corp = mkpki.make_ca("Parity Corporate Root")
    plant = mkpki.make_ca("Parity Plant Issuing CA", issuer=corp)
    dev = mkpki.make_leaf("dev-parity-1", plant, usage="client")
    mkpki.write_cert(str(tmp_path / "plant.pem"), plant.cert)
    mkpki.write_key(str(tmp_path / "dev.key"), dev.key)
    mkpki.write_cert(str(tmp_path / "dev.pem"), dev.cert, plant.cert, corp.cert)
    creds = Creds("dev-parity-1", str(tmp_path / "dev.pem"), str(tmp_path / "dev.key"),
                  pki(pki.DEVICE_TRUST))
    g = make_gateway(broker.port, {"ca.plant": {"file": str(tmp_path / "plant.pem")}})
    mark = g.mark()
    with PahoClient(g.port, creds, "311", client_id="dev-parity-1") as c:
        assert c.connect() == 0, (c.error, g.report())
    ev = g.wait_event("device-admitted", since=mark)
    assert ev.get("ca") == "plant", ev["_line"]
    # The same chain with the root trusted instead is admitted too: the
    # verdict does not depend on which of the two the file holds.
    mkpki.write_cert(str(tmp_path / "corp.pem"), corp.cert)
    g2 = make_gateway(broker.port, {"ca.plant": {"file": str(tmp_path / "corp.pem")}})
    mark = g2.mark()
    with PahoClient(g2.port, creds, "311", client_id="dev-parity-1") as c:
        assert c.connect() == 0, (c.error, g2.report())
    assert g2.wait_event("device-admitted", since=mark).get("ca") == "plant"


def test_cross_signed_root_in_broker_chain(make_broker, make_gateway, pki, tmp_path):
    """The broker sends leaf, intermediate, and its root cross-signed by an
    older root the gateway does not trust; [upstream] ca holds the
    self-signed root. The chain verifies at the trusted root."""
    old = mkpki.make_ca("Parity Old Cloud Root")
    root = mkpki.make_ca("Parity Cloud Root")
    cross = mkpki.make_ca("Parity Cloud Root", issuer=old, key=root.key)
    inter = mkpki.make_ca("Parity Cloud Issuing CA", issuer=root)
    leaf = mkpki.make_leaf("localhost", inter, usage="server", dns=("localhost",),
                           ips=("127.0.0.1",))
    mkpki.write_cert(str(tmp_path / "broker-chain.pem"), leaf.cert, inter.cert, cross.cert)
    mkpki.write_key(str(tmp_path / "broker.key"), leaf.key)
    mkpki.write_cert(str(tmp_path / "root.pem"), root.cert)
    b = make_broker(certfile=str(tmp_path / "broker-chain.pem"),
                    keyfile=str(tmp_path / "broker.key"))
    g = make_gateway(b.port, {"upstream": {"ca": str(tmp_path / "root.pem")}})
    mark = g.mark()
    with PahoClient(g.port, pki.device("dev-old-1"), "311", client_id="dev-old-1") as c:
        assert c.connect() == 0, (c.error, g.report())
    ev = g.wait_event("upstream-chain", since=mark)
    assert "certificates=3" in ev["_line"], ev["_line"]
