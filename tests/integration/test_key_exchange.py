"""Key exchange groups on both legs (docs/configuration.md, "Key exchange";
docs/benchmarks.md):

- towards the broker, certbridge offers its TLS 1.3 key share for X25519
  first (seen in the ClientHello by an openssl s_server standing in for the
  broker, with -trace);
- towards devices, a device offering only a P-256 share gets P-256 (no
  failure, no other group forced on it), one offering X25519 gets X25519,
  and a TLS 1.2 device still completes its ECDHE handshake.

Every process is ours and stopped by its PID; every wait is bounded.
"""

import re
import subprocess
import time

import pytest

from cbtest import free_port, t
from test_downstream import dev_creds, negotiated, s_client


def server_temp_key(out):
    m = re.search(r"^Server Temp Key: ([^\n]+)$", out, re.M)
    return m.group(1) if m else None


@pytest.mark.parametrize("groups, want", [
    ("P-256", "ECDH, prime256v1, 256 bits"),
    ("X25519", "X25519, 253 bits"),
    ("P-384", "ECDH, secp384r1, 384 bits"),
])
def test_device_keeps_the_group_it_offers(gateway, pki, groups, want):
    rc, out = s_client(gateway.port, "-tls1_3", "-groups", groups, creds=dev_creds(pki))
    assert negotiated(out) is not None, out[-2000:]
    assert server_temp_key(out) == want, out[-2000:]
    # One key share was enough: no HelloRetryRequest was asked for.
    assert "HelloRetryRequest" not in out


def test_tls12_device_completes_ecdhe(gateway, pki):
    rc, out = s_client(gateway.port, "-tls1_2", creds=dev_creds(pki))
    proto_cipher = negotiated(out)
    assert proto_cipher is not None and proto_cipher[1].startswith("ECDHE-"), out[-2000:]


def clienthello_key_share_groups(trace):
    """The NamedGroups of the first ClientHello's key_share extension, in
    the order the client sent them, from openssl s_server -trace."""
    hello = trace.split("ClientHello", 1)
    assert len(hello) == 2, trace[-3000:]
    ks = hello[1].split("extension_type=key_share", 1)
    assert len(ks) == 2, hello[1][:3000]
    body = re.split(r"extension_type=", ks[1], 1)[0]
    return re.findall(r"NamedGroup: (\S+)", body)


def test_upstream_offers_x25519_first(make_gateway, pki, tmp_path):
    port = free_port()
    log = tmp_path / "s_server.log"
    with open(log, "wb") as f:
        srv = subprocess.Popen(
            ["openssl", "s_server", "-accept", "127.0.0.1:%d" % port, "-naccept", "1",
             "-cert", pki("broker-chain.pem"), "-cert_chain", pki("broker-chain.pem"),
             "-key", pki("broker.key"),
             "-CAfile", pki("cloud-client-ca.pem"), "-Verify", "1", "-tls1_3",
             "-trace", "-quiet"],
            stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        deadline = time.monotonic() + t(10)
        while b"ACCEPT" not in log.read_bytes() and time.monotonic() < deadline:
            if srv.poll() is not None:
                break
            time.sleep(0.05)
        g = make_gateway(port)
        # A device's CONNECT makes certbridge connect upstream; the stand-in
        # broker speaks no MQTT, so the session ends there: only the
        # ClientHello matters.
        s_client(g.port, send=b"\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04dev1",
                 until=b"\x20", timeout=8.0, creds=dev_creds(pki))
        deadline = time.monotonic() + t(10)
        while "ClientHello" not in log.read_text(errors="replace") \
                and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        if srv.poll() is None:
            srv.kill()  # ours, by PID
        srv.wait(timeout=10)
    trace = log.read_text(errors="replace")
    groups = clienthello_key_share_groups(trace)
    assert groups, trace[-3000:]
    assert groups[0].startswith("ecdh_x25519"), groups
