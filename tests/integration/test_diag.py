"""certbridge-diag: connect like the gateway (to the broker) or like a device
(through certbridge), walk resolve / TCP / TLS / MQTT, and end any failure
in one sentence with the exit code of its step (docs/troubleshooting.md,
"Walk through one connection: certbridge-diag"):

    0 every step passed, 1 internal, 2 usage or local file, 3 DNS/TCP,
    4 TLS, 5 MQTT refused or no CONNACK, 6 timeout

Each case checks the exit code, the step named in the "FAILED (step N,
name): ..." line and a distinctive part of its sentence. The brokers are the
harness's TLS mosquitto (client certificates from cloud-client-ca required);
special ones (expired or future leaf, odd names, TLS 1.2 only) are started
per test. The binary is $CB_BUILD/certbridge-diag (default build/).
"""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbtest  # noqa: E402
from cbtest import mkpki  # noqa: E402

BUILD = Path(os.environ.get("CB_BUILD") or cbtest.REPO / "build")
TOOL = BUILD / "certbridge-diag"

OK, INTERNAL, USAGE, NET, TLS, MQTT, TIMEOUT = 0, 1, 2, 3, 4, 5, 6
FAILED = re.compile(r"^FAILED \(step (\d), (\w+)\): (.*)$", re.M)
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture(scope="module")
def tool():
    if not TOOL.is_file():
        pytest.skip("%s is not built (make build, or set CB_BUILD)" % TOOL)
    return str(TOOL)


class Result:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.raw = proc.stdout
        self.out = proc.stdout.decode("utf-8", errors="replace")
        self.err = proc.stderr.decode("utf-8", errors="replace")

    def failure(self):
        """(step number, step name, sentence) of the FAILED line."""
        found = FAILED.findall(self.out)
        assert len(found) == 1, "want exactly one FAILED line\n%r" % self
        n, name, sentence = found[0]
        return int(n), name, sentence

    def __repr__(self):
        return "rc %s\n---- stdout\n%s\n---- stderr\n%s" % (self.rc, self.out, self.err)


def diag(tool, target, *args, timeout=30):
    p = subprocess.run([tool, target] + [str(a) for a in args], capture_output=True,
                       timeout=cbtest.t(timeout), stdin=subprocess.DEVNULL)
    return Result(p)


def as_gateway(pki, *extra):
    """The gateway's upstream view: its trust and client identity."""
    return ["--ca", pki("cloud-root.pem"), "--cert", pki("gateway-upstream.pem"),
            "--key", pki("gateway-upstream.key")] + list(extra)


def as_device(pki, name="dev-old-1", *extra):
    c = pki.device(name)
    return ["--ca", c.cafile, "--cert", c.cert, "--key", c.key] + list(extra)


def fingerprint(path):
    return mkpki.load_cert(path).fingerprint(hashes.SHA256()).hex(":").upper()


def assert_failed(r, rc, step, name, *parts):
    assert r.rc == rc, r
    n, got_name, sentence = r.failure()
    assert (n, got_name) == (step, name), r
    for p in parts:
        if isinstance(p, re.Pattern):
            assert p.search(sentence), (p.pattern, r)
        else:
            assert p in sentence, (p, r)
    return sentence


def broker_with_leaf(pki, make_broker, tmp_path, name, extra_conf="", **leaf_kw):
    """A broker presenting a new leaf under cloud-int (with its chain)."""
    cloud_int = pki.pair("cloud-int")
    kw = {"dns": ["localhost"], "ips": ["127.0.0.1"]}
    kw.update(leaf_kw)
    cn = kw.pop("cn", "localhost")
    leaf = mkpki.make_leaf(cn, cloud_int, usage="server", **kw)
    mkpki.write_pair(str(tmp_path), name, leaf, chain=[cloud_int.cert])
    b = make_broker(certfile=str(tmp_path / (name + "-chain.pem")),
                    keyfile=str(tmp_path / (name + ".key")), extra_conf=extra_conf)
    return b, leaf


# ---------------------------------------------------------------- success


def test_gateway_view_of_the_broker(tool, pki, broker):
    r = diag(tool, "127.0.0.1:%d" % broker.port, *as_gateway(pki, "--sni", "localhost"))
    assert r.rc == OK, r
    # One group per step, in order, and the summary.
    heads = re.findall(r"^(\d)\. ", r.out, re.M)
    assert heads == ["1", "2", "3", "4"], r
    assert "FAILED" not in r.out
    assert re.search(r"^OK: every step passed", r.out, re.M), r
    assert re.search(r"^   connected 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:%d in " % broker.port,
                     r.out, re.M), r
    assert re.search(r"^   TLSv1\.[23], \S+, in ", r.out, re.M), r
    # Both certificates the broker sends, with their fingerprints.
    assert re.search(r"^   \[0\] subject  /O=certbridge lab/CN=localhost$", r.out, re.M), r
    assert re.search(r"^   \[1\] subject  /O=certbridge lab/CN=certbridge lab Cloud "
                     r"Intermediate CA 2026$", r.out, re.M), r
    for f in ("broker.pem", "cloud-int.pem"):
        assert "sha256   " + fingerprint(pki(f)) in r.out, (f, r)
    assert re.search(r"valid    %s \.\. %s \(\d+ days left\)" % (ISO, ISO), r.out), r
    assert "names    " in r.out and "DNS:localhost" in r.out and "IP:127.0.0.1" in r.out
    assert re.search(r"verified: the chain ends in /O=certbridge lab/CN=certbridge lab Cloud "
                     r"Root CA", r.out), r
    assert re.search(r"^   CONNACK 0x00 \(connection accepted\)", r.out, re.M), r
    assert "DISCONNECT sent" in r.out


def test_ip_address_is_checked_against_ip_sans(tool, pki, broker):
    """No --sni and an address: no SNI, the address must be an IP SAN."""
    r = diag(tool, "127.0.0.1:%d" % broker.port, *as_gateway(pki, "--mqtt-version", "5"))
    assert r.rc == OK, r
    assert "no SNI for an address; 127.0.0.1 must be an IP SAN" in r.out, r
    assert re.search(r"^   CONNACK 0x00 \(success\)", r.out, re.M), r


def test_device_through_certbridge(tool, pki, gateway):
    r = diag(tool, "localhost:%d" % gateway.port, *as_device(pki))
    assert r.rc == OK, r
    assert "CONNACK 0x00" in r.out and re.search(r"^OK: ", r.out, re.M), r
    # certbridge's own chain is the leaf under the 2019 device CA.
    assert fingerprint(pki("gateway.pem")) in r.out, r
    assert "ends in /O=certbridge lab/CN=certbridge lab Device CA 2019" in r.out, r


# ---------------------------------------------------------------- TLS


def test_unknown_ca_names_the_issuer_to_add(tool, pki, broker):
    ca = pki("ca-old.pem")
    r = diag(tool, "127.0.0.1:%d" % broker.port, "--ca", ca, "--cert",
             pki("gateway-upstream.pem"), "--key", pki("gateway-upstream.key"))
    assert_failed(r, TLS, 3, "tls",
                  "the server's chain ends in /O=certbridge lab/CN=certbridge lab Cloud Root CA, "
                  "which is not in --ca %s" % ca,
                  "add that CA's certificate to %s" % ca, "[upstream] ca")
    # The chain is shown even though it does not verify.
    assert fingerprint(pki("broker.pem")) in r.out, r


def test_expired_server_certificate(tool, pki, make_broker, tmp_path):
    b, leaf = broker_with_leaf(pki, make_broker, tmp_path, "expired",
                               not_before="-400d", not_after="-2d")
    r = diag(tool, "127.0.0.1:%d" % b.port, *as_gateway(pki, "--sni", "localhost"))
    end = mkpki.not_after(leaf.cert).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert_failed(r, TLS, 3, "tls",
                  "the server's certificate /O=certbridge lab/CN=localhost expired on %s, "
                  "2 days ago by this machine's clock (" % end,
                  re.compile(r"clock \(%s\): the server must renew it" % ISO))
    assert "EXPIRED 2 days ago" in r.out, r


def test_not_yet_valid_server_certificate(tool, pki, make_broker, tmp_path):
    b, leaf = broker_with_leaf(pki, make_broker, tmp_path, "future",
                               not_before="+2h", not_after="+400d")
    r = diag(tool, "127.0.0.1:%d" % b.port, *as_gateway(pki, "--sni", "localhost"))
    start = mkpki.not_before(leaf.cert).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert_failed(r, TLS, 3, "tls", "is valid from %s, " % start,
                  re.compile(r", (2 hours|1\d\d minutes) ahead of this machine's clock"),
                  "check the clocks")


def test_wrong_host_name(tool, pki, broker):
    r = diag(tool, "127.0.0.1:%d" % broker.port, *as_gateway(pki, "--sni", "other.example"))
    assert_failed(r, TLS, 3, "tls",
                  "the server's certificate is not valid for \"other.example\"",
                  "CN=localhost", "DNS:localhost", "IP:127.0.0.1", "--sni")
    assert "SNI other.example" in r.out
    assert "CONNACK" not in r.out


def test_wrong_ip_address(tool, pki, broker):
    """An address is matched against IP SANs only. wolfSSL 5.5.4 skips
    X509_VERIFY_PARAM_set1_ip_asc when a verify callback is set, so the tool
    checks the verified leaf again: this must fail, not pass."""
    r = diag(tool, "127.0.0.1:%d" % broker.port, *as_gateway(pki, "--sni", "127.0.0.2"))
    assert_failed(r, TLS, 3, "tls", "the server's certificate is not valid for \"127.0.0.2\"",
                  "IP:127.0.0.1")
    assert "CONNACK" not in r.out


def test_missing_client_certificate(tool, pki, broker):
    r = diag(tool, "127.0.0.1:%d" % broker.port, "--ca", pki("cloud-root.pem"),
             "--sni", "localhost")
    assert_failed(r, TLS, 3, "tls", "the server wants a client certificate and we sent none",
                  "--cert FILE --key FILE")
    assert "CONNACK" not in r.out


class Tls12Server:
    """A TLS 1.2-only server (Python's ssl) that requires a client
    certificate from cloud-client-ca, answers a CONNECT with CONNACK 0 and
    serves `count` connections in a thread. mosquitto's tls_version is only
    a minimum, so this stands in for a TLS 1.2 broker."""

    def __init__(self, pki, count):
        import ssl
        import threading
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.ctx.load_cert_chain(pki("broker-chain.pem"), pki("broker.key"))
        self.ctx.load_verify_locations(pki("cloud-client-ca.pem"))
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(cbtest.t(10))
        self.port = self.sock.getsockname()[1]
        self.errors = []
        self.thread = threading.Thread(target=self._serve, args=(count,), daemon=True)
        self.thread.start()

    def _serve(self, count):
        for _ in range(count):
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.settimeout(cbtest.t(10))
            try:
                with self.ctx.wrap_socket(c, server_side=True) as ss:
                    ss.recv(256)                   # the CONNECT
                    ss.sendall(b"\x20\x02\x00\x00")  # CONNACK 0
                    ss.recv(16)                    # DISCONNECT
            except OSError as e:
                self.errors.append(str(e))
            finally:
                c.close()

    def close(self):
        self.sock.close()
        self.thread.join(cbtest.t(10))


def test_missing_client_certificate_tls12(tool, pki):
    """In TLS 1.2 the refusal comes during the handshake itself."""
    srv = Tls12Server(pki, 2)
    try:
        r = diag(tool, "127.0.0.1:%d" % srv.port, "--ca", pki("cloud-root.pem"))
        assert_failed(r, TLS, 3, "tls", "alert 40", "client certificate",
                      "--cert FILE --key FILE")
        assert "CONNACK" not in r.out
        r = diag(tool, "127.0.0.1:%d" % srv.port, *as_gateway(pki))
        assert r.rc == OK, r
        assert re.search(r"^   TLSv1\.2, ", r.out, re.M), r
    finally:
        srv.close()
    assert any("did not return a certificate" in e for e in srv.errors), srv.errors


def test_client_certificate_refused_by_certbridge(tool, pki, gateway):
    """A device certificate from a CA certbridge does not trust."""
    r = diag(tool, "127.0.0.1:%d" % gateway.port, *as_device(pki, "dev-unknown"))
    assert_failed(r, TLS, 3, "tls", "the server refused our client certificate "
                  "/O=certbridge lab/CN=dev-unknown",
                  "issued by /O=certbridge lab/CN=certbridge lab Rogue CA")


def test_server_names_are_escaped(tool, pki, make_broker, tmp_path):
    """Names from the network never reach the terminal raw."""
    b, _ = broker_with_leaf(pki, make_broker, tmp_path, "odd", cn="evil\x1b[2J\x07name\\")
    r = diag(tool, "127.0.0.1:%d" % b.port, *as_gateway(pki, "--sni", "localhost"))
    assert r.rc == OK, r
    assert not re.search(rb"[\x00-\x08\x0b-\x1f\x7f]", r.raw), r
    assert "CN=evil\\x1B[2J\\x07name\\\\" in r.out, r


# ---------------------------------------------------------------- MQTT


@pytest.mark.parametrize("version,code,name", [
    ("3.1.1", "0x02", "identifier rejected"),
    ("5", "0x85", "client identifier not valid"),
])
def test_connack_refusal_through_certbridge(tool, pki, broker, make_gateway, version, code,
                                            name):
    g = make_gateway(broker.port, overrides={"mqtt": {"clientid": "check"}})
    r = diag(tool, "127.0.0.1:%d" % g.port,
             *as_device(pki, "dev-old-1", "--mqtt-version", version, "--client-id", "not-me"))
    assert_failed(r, MQTT, 4, "mqtt", "the server rejected the client id \"not-me\"",
                  "CONNACK %s, %s" % (code, name), "the CN of --cert: \"dev-old-1\"")
    assert re.search(r"^   CONNACK %s \(%s\)" % (code, name), r.out, re.M), r
    # With the identity as client id the same gateway lets it through.
    r = diag(tool, "127.0.0.1:%d" % g.port,
             *as_device(pki, "dev-old-1", "--mqtt-version", version, "--client-id",
                        "dev-old-1"))
    assert r.rc == OK, r


def test_server_unavailable_behind_certbridge(tool, pki, make_gateway):
    """certbridge whose broker is gone answers CONNACK 0x03."""
    g = make_gateway(cbtest.free_port())
    r = diag(tool, "127.0.0.1:%d" % g.port, *as_device(pki))
    assert_failed(r, MQTT, 4, "mqtt", "CONNACK 0x03, server unavailable",
                  "the broker behind it", "event=upstream-failed")


# ---------------------------------------------------------------- network


def test_tcp_refused(tool, pki):
    port = cbtest.free_port()
    r = diag(tool, "127.0.0.1:%d" % port, *as_gateway(pki))
    assert_failed(r, NET, 2, "tcp", "nothing listens on 127.0.0.1:%d (connection refused)"
                  % port)


def test_timeout_when_the_server_says_nothing(tool, pki):
    """A port that accepts TCP but never answers TLS."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        r = diag(tool, "127.0.0.1:%d" % s.getsockname()[1], *as_gateway(pki, "--timeout",
                                                                         "500ms"))
    assert_failed(r, TIMEOUT, 3, "tls", "no TLS handshake within 500ms")


def test_dns_failure(tool, pki):
    r = diag(tool, "no-such-host.invalid:8883", *as_gateway(pki))
    assert_failed(r, NET, 1, "resolve", "\"no-such-host.invalid\"")


# ---------------------------------------------------------------- usage


@pytest.mark.parametrize("args", [
    [],
    ["localhost"],                              # no port
    ["localhost:8883", "--cert", "x.pem"],      # --cert without --key
    ["localhost:8883", "--mqtt-version", "4.0"],
    ["localhost:8883", "--timeout", "10"],
    ["localhost:8883", "--bogus"],
    ["localhost:8883", "other:1"],
    ["localhost:8883", "--ca"],
])
def test_usage_errors(tool, args):
    p = subprocess.run([tool] + args, capture_output=True, text=True, timeout=30)
    assert p.returncode == USAGE, (args, p.stdout, p.stderr)
    assert "usage: certbridge-diag HOST:PORT" in p.stderr
    assert p.stdout == ""


def test_unreadable_ca_file_is_a_usage_error(tool, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    r = diag(tool, "localhost:1", "--ca", str(bad))
    assert_failed(r, USAGE, 0, "files", "--ca cannot be used", "bad.pem")


def test_help_lists_exit_codes(tool):
    p = subprocess.run([tool, "-h"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0
    for want in ("usage: certbridge-diag HOST:PORT", "2 usage", "3 DNS or TCP", "4 TLS",
                 "5 MQTT", "6 timeout"):
        assert want in p.stdout, (want, p.stdout)
