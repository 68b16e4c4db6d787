"""[downstream] sni_cert.HOST / sni_key.HOST (docs/configuration.md, "A
chain per SNI name"): a device that asks for HOST by SNI is shown that
chain, every other device [downstream] cert; -t proves each pair,
certbridge-certs and /status list them, a reload swaps them."""
import os
import re
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

import cbtest
from cbtest import admin_status, t, uid
from rawmqtt import connect_packet, device_context, read_packet

mkpki = cbtest.mkpki
BUILD = Path(os.environ.get("CB_BUILD") or cbtest.REPO / "build")
HOST = "legacy.example"


def sni_chain(pki, folder, name, cn, key=None):
    """A server chain for HOST issued by the 2019 CA the devices trust."""
    ca_old = mkpki.load_pair(pki("ca-old"))
    leaf = mkpki.make_leaf(cn, ca_old, usage="server", dns=(HOST,), key=key)
    mkpki.write_pair(str(folder), name, leaf)
    return leaf, str(folder / (name + ".pem")), str(folder / (name + ".key"))


def device_session(port, creds, server_name, max_version=None):
    """An MQTT session of a device asking for server_name by SNI, checking
    the gateway's certificate against it; returns the certificate's CN."""
    ctx = device_context(creds, max_version=max_version)
    raw = socket.create_connection(("127.0.0.1", port), timeout=t(5))
    with ctx.wrap_socket(raw, server_hostname=server_name) as ss:
        cn = dict(x[0] for x in ss.getpeercert()["subject"])["commonName"]
        ss.sendall(connect_packet("sni-%s" % uid()))
        assert read_packet(ss, timeout=10.0) == (0x20, b"\x00\x00")
    return cn


def test_a_device_asking_for_the_name_gets_its_chain(broker, make_gateway, pki, tmp_path):
    _, cert, key = sni_chain(pki, tmp_path, "legacy", "legacy gateway 2019")
    g = make_gateway(broker.port, {"downstream": {"sni_cert.%s" % HOST: cert,
                                                  "sni_key.%s" % HOST: key}},
                     admin=True)
    creds = pki.device("dev-old-1")
    # The name the chain is for, in any case: that chain, verified against it.
    assert device_session(g.port, creds, HOST) == "legacy gateway 2019"
    assert device_session(g.port, creds, HOST.upper()) == "legacy gateway 2019"
    # TLS 1.2 devices too (wolfSSL asks from another place in the handshake).
    assert device_session(g.port, creds, HOST, ssl.TLSVersion.TLSv1_2) == "legacy gateway 2019"
    assert device_session(g.port, creds, "localhost", ssl.TLSVersion.TLSv1_2) == "localhost"
    # Any other name (or the default name): [downstream] cert.
    assert device_session(g.port, creds, "localhost") == "localhost"
    # Without the SNI chain, a device checking the name fails its handshake.
    ctx = device_context(creds)
    raw = socket.create_connection(("127.0.0.1", g.port), timeout=t(5))
    with pytest.raises(ssl.SSLCertVerificationError):
        ctx.wrap_socket(raw, server_hostname="other.example")
    raw.close()
    # /status lists the SNI chain among the certificates.
    st = admin_status(g.admin_port)
    names = [c.get("name") for c in st["certificates"]]
    assert "sni:%s" % HOST in names, names


def rsa_key():
    from cryptography.hazmat.primitives.asymmetric import rsa
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize("tls", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_rsa_chain_beside_the_ec_default(broker, make_gateway, pki, tmp_path, tls):
    """The old RSA chain a legacy TLS 1.2 fleet pins, beside the EC default:
    the suite is one the RSA key can sign (wolfSSL had picked an ECDSA one
    and failed every TLS 1.2 handshake), and [downstream] ciphers still
    applies to it."""
    _, cert, key = sni_chain(pki, tmp_path, "legacy-rsa", "legacy rsa 2019", key=rsa_key())
    g = make_gateway(broker.port, {"downstream": {
        "sni_cert.%s" % HOST: cert, "sni_key.%s" % HOST: key,
        "ciphers": "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"}})
    creds = pki.device("dev-old-1")
    assert device_session(g.port, creds, HOST, tls) == "legacy rsa 2019"
    assert device_session(g.port, creds, "localhost", tls) == "localhost"
    if tls == ssl.TLSVersion.TLSv1_2:
        ctx = device_context(creds, max_version=tls)
        raw = socket.create_connection(("127.0.0.1", g.port), timeout=t(5))
        with ctx.wrap_socket(raw, server_hostname=HOST) as ss:
            assert ss.cipher()[0] == "ECDHE-RSA-AES256-GCM-SHA384", ss.cipher()
        raw = socket.create_connection(("127.0.0.1", g.port), timeout=t(5))
        with ctx.wrap_socket(raw, server_hostname="localhost") as ss:
            assert ss.cipher()[0] == "ECDHE-ECDSA-AES256-GCM-SHA384", ss.cipher()


def test_rsa_chain_without_a_suite_for_it_is_an_error(certbridge_bin, pki, tmp_path):
    _, cert, key = sni_chain(pki, tmp_path, "legacy-rsa", "legacy rsa 2019", key=rsa_key())
    g = cbtest.Gateway(pki, tmp_path / "gw", 1, overrides={"downstream": {
        "sni_cert.%s" % HOST: cert, "sni_key.%s" % HOST: key,
        "ciphers": "ECDHE-ECDSA-AES128-GCM-SHA256"}})
    g.write_conf()
    r = subprocess.run([certbridge_bin, "-t", "-c", str(g.conf_path)], capture_output=True,
                       text=True, timeout=t(60))
    assert r.returncode == 1, r
    assert re.search(r"\[downstream\] sni_cert\.%s: its key is an RSA key, and "
                     r"\[downstream\] ciphers enables no TLS 1\.2 suite" % re.escape(HOST),
                     r.stderr), r.stderr


def test_reload_swaps_the_sni_chain(broker, make_gateway, pki, tmp_path):
    _, cert, key = sni_chain(pki, tmp_path, "legacy", "legacy gateway A")
    g = make_gateway(broker.port, {"downstream": {"sni_cert.%s" % HOST: cert,
                                                  "sni_key.%s" % HOST: key}})
    creds = pki.device("dev-old-1")
    assert device_session(g.port, creds, HOST) == "legacy gateway A"
    sni_chain(pki, tmp_path, "legacy", "legacy gateway B")  # same files, new pair
    mark = g.mark()
    g.reload()
    g.wait_event("reloaded", since=mark)
    assert device_session(g.port, creds, HOST) == "legacy gateway B"


def run_t(binary, conf):
    p = subprocess.run([binary, "-t", "-c", str(conf)], capture_output=True, text=True,
                       timeout=t(30))
    return p.returncode, p.stderr


def write_conf(pki, path, downstream):
    ds = {"listen": "127.0.0.1:18883", "cert": pki("gateway-chain.pem"),
          "key": pki("gateway.key")}
    ds.update(downstream)
    path.write_text(cbtest.ini_text({
        "gateway": {"state_file": ""},
        "downstream": ds,
        "ca.old": {"file": pki("ca-old.pem")},
        "upstream": {"address": "127.0.0.1:18884", "ca": pki("cloud-root.pem")},
    }))
    return path


def test_check_proves_each_pair(certbridge_bin, pki, tmp_path):
    _, cert, key = sni_chain(pki, tmp_path, "legacy", "legacy gateway")
    _, _, other_key = sni_chain(pki, tmp_path, "other", "other gateway")
    conf = tmp_path / "certbridge.ini"
    ok = write_conf(pki, conf, {"sni_cert.%s" % HOST: cert, "sni_key.%s" % HOST: key})
    assert run_t(certbridge_bin, ok)[0] == 0
    r = subprocess.run([str(BUILD / "certbridge-certs"), "-c", str(conf)], capture_output=True,
                       text=True, timeout=t(30))
    assert re.search(r"^downstream\s+sni:legacy\.ex", r.stdout, re.M), r.stdout

    cases = [
        # the key of another certificate
        ({"sni_cert.%s" % HOST: cert, "sni_key.%s" % HOST: other_key},
         r"\[downstream\] sni_key\.legacy\.example: .*does not belong"),
        # half a pair, either half
        ({"sni_cert.%s" % HOST: cert},
         r"\[downstream\] sni_cert\.legacy\.example: no sni_key\.legacy\.example beside it"),
        ({"sni_key.%s" % HOST: key},
         r"\[downstream\] sni_key\.legacy\.example: no sni_cert\.legacy\.example beside it"),
        # not a host name
        ({"sni_cert.bad_host!": cert, "sni_key.bad_host!": key},
         r"\[downstream\] sni_cert\.bad_host!: \"bad_host!\" is not a host name"),
        # an address: SNI carries host names only (RFC 6066)
        ({"sni_cert.127.0.0.2": cert, "sni_key.127.0.0.2": key},
         r"\[downstream\] sni_cert\.127\.0\.0\.2: \"127\.0\.0\.2\" is an IP address"),
        # a file that is not there
        ({"sni_cert.%s" % HOST: str(tmp_path / "nope.pem"), "sni_key.%s" % HOST: key},
         r"\[downstream\] sni_cert\.legacy\.example: file .*nope\.pem\" does not exist"),
    ]
    for downstream, want in cases:
        rc, err = run_t(certbridge_bin, write_conf(pki, conf, downstream))
        assert rc == 1, (downstream, err)
        assert re.search(r"certbridge\.ini:\d+: " + want, err), (want, err)
    # The same host twice, in another case: one name, a duplicate key.
    text = write_conf(pki, conf, {"sni_cert.%s" % HOST: cert, "sni_key.%s" % HOST: key}
                      ).read_text()
    text = text.replace("[downstream]\n", "[downstream]\nsni_cert.LEGACY.example = %s\n" % cert)
    conf.write_text(text)
    rc, err = run_t(certbridge_bin, conf)
    assert rc == 1 and "duplicate key" in err, err
