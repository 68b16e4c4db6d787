"""Keys in hardware: [downstream] key and [upstream] key as PKCS#11 URIs,
[gateway] pkcs11_module and pkcs11_pin_file (docs/configuration.md, "Keys in
hardware"), with a real SoftHSM2 token made for the test.

- both keys in the token (one named by label, one by id): a device session
  goes through end to end, and the broker sees the gateway's upstream
  identity, signed by the token;
- a reload keeps serving with the token, and one naming a key that does not
  belong to the certificate is refused while the old keys keep working;
- -t names the key line and says what is wrong: a wrong PIN, a token or key
  that is not there, a token key that is another certificate's, a module
  that is not one, a missing module or PIN file, a PIN written in the URI,
  an SNI key in a token.
"""

import os
import subprocess

import pytest

import cbtest
from cbtest import PahoClient, mkpki, uid, wait_broker_client

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "5678"
TOKEN = "certbridge-test"
DOWN_URI = "pkcs11:token=%s;object=gw-down" % TOKEN
UP_URI = "pkcs11:token=%s;id=%%02;type=private" % TOKEN
UPSTREAM_CN = "certbridge-gateway"  # CN of the lab's gateway-upstream.pem


class Hsm:
    """A SoftHSM2 token of its own (SOFTHSM2_CONF names a folder of the
    test's): the lab gateway's two keys, and a device key that belongs to
    neither of the gateway's certificates."""

    def __init__(self, folder, pki):
        self.dir = folder
        (folder / "tokens").mkdir()
        self.conf = folder / "softhsm2.conf"
        self.conf.write_text("directories.tokendir = %s\nobjectstore.backend = file\n"
                             "log.level = ERROR\nslots.removable = false\n" % (folder / "tokens"))
        self.env = {"SOFTHSM2_CONF": str(self.conf)}
        self.util("--init-token", "--free", "--label", TOKEN, "--so-pin", "1234", "--pin", PIN)
        for key, label, kid in (("gateway.key", "gw-down", "01"),
                                ("gateway-upstream.key", "gw-up", "02"),
                                ("dev-old-1.key", "not-the-gateway", "03")):
            self.util("--import", pki(key), "--token", TOKEN, "--label", label, "--id", kid,
                      "--pin", PIN)
        # RSA 2048 pairs for both sides, issued as the lab's EC ones are:
        # the device-facing one by ca-old (what legacy devices trust), the
        # broker-facing one by the broker's client CA.
        from cryptography.hazmat.primitives.asymmetric import rsa
        for name, cn, ca, usage, kid in (
                ("rsa-down", "localhost", "ca-old", "server", "11"),
                ("rsa-up", UPSTREAM_CN, "cloud-client-ca", "client", "12")):
            leaf = mkpki.make_leaf(cn, pki.pair(ca), usage=usage, dns=["localhost"],
                                   ips=["127.0.0.1"],
                                   key=rsa.generate_private_key(65537, 2048))
            mkpki.write_pair(str(folder), name, leaf)
            self.util("--import", str(folder / (name + ".key")), "--token", TOKEN,
                      "--label", name, "--id", kid, "--pin", PIN)
            os.unlink(folder / (name + ".key"))
        self.pin_file = folder / "pin"
        self.pin_file.write_text(PIN + "\n")
        os.chmod(self.pin_file, 0o600)

    def tool(self, *args):
        """pkcs11-tool (opensc) on this token, logged in."""
        env = dict(os.environ)
        env.update(self.env)
        r = subprocess.run(["pkcs11-tool", "--module", MODULE, "--token-label", TOKEN,
                            "--login", "--pin", PIN] + list(args), env=env,
                           capture_output=True, timeout=cbtest.t(30))
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout

    def util(self, *args):
        env = dict(os.environ)
        env.update(self.env)
        r = subprocess.run(["softhsm2-util"] + list(args), env=env, capture_output=True,
                           text=True, timeout=cbtest.t(30))
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout


@pytest.fixture(scope="module")
def hsm(pki, tmp_path_factory):
    if not os.path.exists(MODULE):
        pytest.fail("SoftHSM2 is not installed (tools/install-deps.sh installs softhsm2)")
    return Hsm(tmp_path_factory.mktemp("hsm"), pki)


def token_overrides(hsm, down=DOWN_URI, up=UP_URI, **gateway):
    g = {"pkcs11_module": MODULE, "pkcs11_pin_file": str(hsm.pin_file)}
    g.update(gateway)
    return {"gateway": g, "downstream": {"key": down}, "upstream": {"key": up}}


def check_t(pki, hsm, tmp_path, overrides):
    """certbridge -t on a gateway configuration with these overrides:
    (exit code, stdout + stderr)."""
    g = cbtest.Gateway(pki, tmp_path, 1, overrides=overrides)
    g.write_conf()
    env = dict(os.environ)
    env.update(hsm.env)
    r = subprocess.run([g.binary, "-t", "-c", str(g.conf_path)], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=cbtest.t(60))
    return r.returncode, r.stdout + r.stderr, g.conf_path


def one_session(g, broker, pki):
    cid = "p11-" + uid()
    bmark = broker.mark()
    with PahoClient(g.port, pki.device("dev-old-1"), "311", client_id=cid) as c:
        assert c.connect() == 0, (c.error, g.report())
    return wait_broker_client(broker, cid, bmark)


def test_session_with_both_keys_in_the_token(broker, make_gateway, pki, hsm, tmp_path):
    rc, out, _ = check_t(pki, hsm, tmp_path, token_overrides(hsm))
    assert rc == 0, out
    assert "configuration OK" in out and "0 errors" in out, out
    g = make_gateway(broker.port, token_overrides(hsm), env=hsm.env)
    # The device's handshake was signed by the token's gw-down key, the
    # broker's by gw-up: the broker sees the gateway's upstream identity.
    assert one_session(g, broker, pki) == UPSTREAM_CN
    ev = g.wait_event("upstream-connected")
    assert ev.get("client_cert") == "shared", ev["_line"]
    # The PIN is nowhere in what the gateway says.
    assert PIN not in g.log_text().replace("pid=%d" % g.pid, ""), g.report()


@pytest.mark.parametrize("tls", ["1.3", "1.2"])
def test_rsa_keys_in_the_token(broker, make_gateway, pki, hsm, tls):
    """RSA keys sign through the token too: RSA-PSS in TLS 1.3 on both
    legs (and what TLS 1.2 negotiates), the key files gone."""
    ov = token_overrides(hsm, down="pkcs11:token=%s;object=rsa-down" % TOKEN,
                         up="pkcs11:token=%s;id=%%12" % TOKEN)
    ov["downstream"]["cert"] = str(hsm.dir / "rsa-down.pem")
    ov["downstream"]["tls_versions"] = tls
    ov["upstream"]["cert"] = str(hsm.dir / "rsa-up.pem")
    ov["upstream"]["tls_versions"] = tls
    g = make_gateway(broker.port, ov, env=hsm.env)
    assert one_session(g, broker, pki) == UPSTREAM_CN
    ev = g.wait_event("device-admitted")
    assert ev.get("tls") == "TLSv" + tls, ev["_line"]


class _PublicOnly:
    """What mkpki needs of a key to issue a certificate for it: its public
    half (the private one never leaves the token)."""

    def __init__(self, public):
        self._public = public

    def public_key(self):
        return self._public


def test_key_born_in_the_token(broker, make_gateway, pki, hsm, tmp_path):
    """The hardware way: the key pair is generated inside the token
    (pkcs11-tool), a certificate is issued for its public key, and the key
    never exists as a file."""
    from cryptography.hazmat.primitives.serialization import load_der_public_key
    hsm.tool("--keypairgen", "--key-type", "EC:prime256v1", "--label", "born-here",
             "--id", "21")
    pub_der = tmp_path / "born-here.pub.der"
    hsm.tool("--read-object", "--type", "pubkey", "--id", "21", "-o", str(pub_der))
    public = load_der_public_key(pub_der.read_bytes())
    leaf = mkpki.make_leaf("localhost", pki.pair("ca-old"), usage="server",
                           dns=["localhost"], ips=["127.0.0.1"], key=_PublicOnly(public))
    mkpki.write_cert(str(tmp_path / "born-here.pem"), leaf.cert)
    ov = token_overrides(hsm, down="pkcs11:token=%s;object=born-here" % TOKEN)
    ov["downstream"]["cert"] = str(tmp_path / "born-here.pem")
    g = make_gateway(broker.port, ov, env=hsm.env)
    assert one_session(g, broker, pki) == UPSTREAM_CN
    assert not list(tmp_path.glob("*.key")), list(tmp_path.iterdir())


def test_reload_with_the_token(broker, make_gateway, pki, hsm):
    g = make_gateway(broker.port, token_overrides(hsm), env=hsm.env)
    assert one_session(g, broker, pki) == UPSTREAM_CN
    mark = g.mark()
    g.reload()
    g.wait_event("reloaded", since=mark, timeout=15)
    assert one_session(g, broker, pki) == UPSTREAM_CN
    # A key of the token that is not the certificate's: refused, and the
    # running generation keeps its keys.
    g.overrides["downstream"]["key"] = "pkcs11:token=%s;object=not-the-gateway" % TOKEN
    g.write_conf()
    mark = g.mark()
    g.reload()
    g.wait_event("reload-failed", since=mark, timeout=15)
    assert "does not belong to the certificate" in g._text_since(mark), g.report()
    assert one_session(g, broker, pki) == UPSTREAM_CN
    assert g.running()


def test_reload_with_another_pin_keeps_the_running_keys(broker, make_gateway, pki, hsm,
                                                        tmp_path):
    """A token's login is one for the whole process: a reload whose PIN
    file holds another PIN (wrong, or a PIN changed on the token) is refused
    without touching the token, and the running keys keep signing on both
    legs (upstream resumption off, so every session signs upstream)."""
    pin = tmp_path / "pin"
    pin.write_text(PIN + "\n")
    os.chmod(pin, 0o600)
    ov = token_overrides(hsm, pkcs11_pin_file=str(pin))
    ov["upstream"]["session_resumption"] = "no"
    g = make_gateway(broker.port, ov, env=hsm.env)
    assert one_session(g, broker, pki) == UPSTREAM_CN
    pin.write_text("0000\n")
    mark = g.mark()
    g.reload()
    g.wait_event("reload-failed", since=mark, timeout=15)
    text = g._text_since(mark)
    assert "[downstream] key" in text and "restart certbridge" in text, g.report()
    for _ in range(3):
        assert one_session(g, broker, pki) == UPSTREAM_CN
    # The right PIN back: the next reload takes the running token as is.
    pin.write_text(PIN + "\n")
    mark = g.mark()
    g.reload()
    g.wait_event("reloaded", since=mark, timeout=15)
    assert one_session(g, broker, pki) == UPSTREAM_CN
    assert g.running()


@pytest.mark.parametrize("case,overrides_fn,line_key,says", [
    ("wrong PIN", lambda h, p: token_overrides(h, pkcs11_pin_file=str(p)),
     "[downstream] key", "the PIN is wrong (CKR_PIN_INCORRECT)"),
    ("no such token", lambda h, p: token_overrides(h, down="pkcs11:token=other;object=gw-down"),
     "[downstream] key", 'no token of the module matches the URI; it has "%s"' % TOKEN),
    ("no such key", lambda h, p: token_overrides(h, up="pkcs11:token=%s;object=nope" % TOKEN),
     "[upstream] key", "holds no private key with this label"),
    ("label and id of two keys", lambda h, p: token_overrides(
        h, up="pkcs11:token=%s;object=gw-up;id=%%01" % TOKEN),
     "[upstream] key", "holds no private key with this label and id"),
    ("another certificate's key", lambda h, p: token_overrides(
        h, down="pkcs11:token=%s;id=%%03" % TOKEN),
     "[downstream] key", "does not belong to the certificate"),
    ("not a module", lambda h, p: token_overrides(h, pkcs11_module=str(p)),
     "[gateway] pkcs11_module", "is not a PKCS#11 module wolfSSL can load"),
    ("no module", lambda h, p: token_overrides(h, pkcs11_module=None),
     "[downstream] key", "a PKCS#11 key needs [gateway] pkcs11_module"),
    ("no PIN file", lambda h, p: token_overrides(h, pkcs11_pin_file=None),
     "[downstream] key", "the token needs its user PIN"),
    ("PIN in the URI", lambda h, p: token_overrides(h, down=DOWN_URI + "?pin-value=" + PIN),
     "[downstream] key", "the PIN does not go in the INI"),
])
def test_t_names_the_problem(pki, hsm, tmp_path, case, overrides_fn, line_key, says):
    other = tmp_path / "other"
    # A wrong PIN for the PIN case, a text file for the module case.
    other.write_text("0000\n")
    os.chmod(other, 0o600)
    rc, out, conf = check_t(pki, hsm, tmp_path, overrides_fn(hsm, other))
    assert rc == 1, (case, out)
    assert "NOT valid" in out, out
    sec, key = line_key[1:].split("] ")
    line = cbtest.line_of(conf, sec, key)
    want = "%s:%d: %s: " % (conf, line, line_key)
    hits = [ln for ln in out.splitlines() if ln.startswith(want) and says in ln]
    assert hits, (case, want, says, out)


def test_sni_key_stays_in_a_file(pki, hsm, tmp_path):
    ov = token_overrides(hsm)
    ov["downstream"]["sni_cert.legacy.example.com"] = pki("gateway-chain.pem")
    ov["downstream"]["sni_key.legacy.example.com"] = DOWN_URI
    rc, out, conf = check_t(pki, hsm, tmp_path, ov)
    assert rc == 1, out
    assert "an SNI chain needs its key in a file" in out, out


def test_pin_file_others_can_read_is_a_warning(pki, hsm, tmp_path):
    loose = tmp_path / "loose-pin"
    loose.write_text(PIN + "\n")
    os.chmod(loose, 0o644)
    rc, out, conf = check_t(pki, hsm, tmp_path, token_overrides(hsm, pkcs11_pin_file=str(loose)))
    assert rc == 0, out
    line = cbtest.line_of(conf, "gateway", "pkcs11_pin_file")
    assert "%s:%d: [gateway] pkcs11_pin_file: warning: the PIN file" % (conf, line) in out, out
    assert "can be read by others (mode 0644)" in out, out
    assert PIN not in out.replace(str(tmp_path), ""), out


@pytest.mark.skipif(os.geteuid() != 0, reason="judging another user's access needs root")
def test_pin_file_must_be_readable_by_the_user(pki, hsm, tmp_path):
    """After the privilege drop a reload reads the PIN file again as
    [gateway] user: -t says so when that user cannot."""
    rc, out, conf = check_t(pki, hsm, tmp_path, token_overrides(hsm, user="nobody"))
    assert rc == 1, out
    line = cbtest.line_of(conf, "gateway", "pkcs11_pin_file")
    assert ('%s:%d: [gateway] pkcs11_pin_file: user "nobody" ([gateway] user) cannot read "%s"'
            % (conf, line, hsm.pin_file)) in out, out
