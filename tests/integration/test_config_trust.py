"""Configuration that would silently weaken trust is refused or flagged, by
`certbridge -t`, at start and at reload (docs/configuration.md, "Configuration
that would weaken trust"):

- a private key that does not belong to its certificate is an error for EC
  and RSA keys alike, naming the key's [section] key: [downstream] key,
  [upstream] key, and every [upstream] device_certs pair. wolfSSL's own
  check (wolfSSL_CTX_check_private_key, 5.5.4) passes the EC key of any
  other certificate, so the EC cases are the ones that matter;
- the daemon refuses to start (exit 1) with such a key, and a reload that
  brings one keeps the old configuration (reload-failed, problem= lines);
- an empty crl = (or retire_after =) is an error, at -t and at reload;
- a state_file whose folder does not exist, or that [gateway] user cannot
  write, is an error;
- with [gateway] user, a certificate or key that user cannot read is an
  error (the reload after the privilege drop would fail); the same file
  given to the user (owner, or its group) passes. Judged exactly as root
  (a child becomes the user), with access() after the drop, and by mode
  bits when -t runs as somebody else.

Certificates are made at test time (tools/mkpki.py; RSA ones with
python3-cryptography, since mkpki makes EC keys only). Every wait is
bounded; every process is ours and stopped by its PID.
"""

import os
import pwd
import re
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import cbtest
import mkpki
from cbtest import line_of, t
from rawmqtt import DISCONNECT, mqtt_device, wait_closed

DEVICE = "dev-old-1"
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0,
                               reason="needs root (a privilege drop, chown)")


# ---------------------------------------------------------------- helpers


def check(binary, conf, **kw):
    """certbridge -t -c conf: (exit code, stderr lines, stdout)."""
    r = subprocess.run([binary, "-t", "-c", str(conf)], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=t(60), **kw)
    return r.returncode, r.stderr.splitlines(), r.stdout


def conf_for(pki, folder, overrides, upstream_port=8883):
    """A Gateway (not started) with overrides, its INI written."""
    g = cbtest.Gateway(pki, folder, upstream_port, overrides=overrides)
    g.write_conf()
    return g


def lines_at(lines, conf, section, key):
    """The -t lines about [section] key, at its line of conf."""
    prefix = "%s:%d: [%s] %s: " % (conf, line_of(conf, section, key), section, key)
    return [l for l in lines if l.startswith(prefix)]


def reload_fails(g, timeout=10.0):
    """SIGHUP; waits for the final reload-failed line. Returns the
    problem= lines. Fails on a reload that succeeded."""
    mark = g.mark()
    g.reload()
    g.wait_event("reload-failed", since=mark, timeout=timeout,
                 msg=re.compile(r"still serving generation \d+ unchanged"))
    assert not g.events("reloaded", since=mark), g.report()
    return [e["problem"] for e in g.events("reload-failed", since=mark) if e.get("problem")]


def device_connects(g, pki, device=DEVICE):
    with mqtt_device(g.port, pki.device(device)) as ss:
        ss.sendall(DISCONNECT)
        assert wait_closed(ss) == b""


def rsa_leaf(cn, issuer, usage="server"):
    """An RSA-2048 leaf (mkpki.Issued) signed by issuer."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return mkpki.make_leaf(cn, issuer, usage=usage, dns=["localhost"], ips=["127.0.0.1"],
                           key=key)


# ---------------------------------------------------------------- key/certificate pairs

# Each case: a function (pki, folder) -> (good overrides, bad overrides,
# section, key, path of the wrong key). The good ones prove the check can
# pass, so a failing bad one is the mismatch and nothing else.


def _downstream_ec(pki, folder):
    good = {"downstream": {"key": pki("gateway.key")}}
    # The EC key of another certificate (the upstream identity's).
    bad = {"downstream": {"key": pki("gateway-upstream.key")}}
    return good, bad, "downstream", "key", pki("gateway-upstream.key")


def _upstream_ec(pki, folder):
    good = {"upstream": {"key": pki("gateway-upstream.key")}}
    bad = {"upstream": {"key": pki("dev-old-1.key")}}
    return good, bad, "upstream", "key", pki("dev-old-1.key")


def _downstream_rsa(pki, folder):
    ca_old = pki.pair("ca-old")
    mine, other = rsa_leaf("localhost", ca_old), rsa_leaf("localhost", ca_old)
    mkpki.write_pair(folder, "rsa-gw", mine)
    mkpki.write_key(os.path.join(folder, "rsa-other.key"), other.key)
    cert = os.path.join(folder, "rsa-gw.pem")
    good = {"downstream": {"cert": cert, "key": os.path.join(folder, "rsa-gw.key")}}
    bad = {"downstream": {"cert": cert, "key": os.path.join(folder, "rsa-other.key")}}
    return good, bad, "downstream", "key", os.path.join(folder, "rsa-other.key")


def _device_certs(pki, folder):
    client_ca = pki.pair("cloud-client-ca")
    good_dir, bad_dir = os.path.join(folder, "dc-good"), os.path.join(folder, "dc-bad")
    for d in (good_dir, bad_dir):
        os.makedirs(d)
        for name in ("dev-old-1", "dev-new-1"):
            leaf = mkpki.make_leaf(name, client_ca, usage="client")
            mkpki.write_cert(os.path.join(d, name + ".crt"), leaf.cert)
            mkpki.write_key(os.path.join(d, name + ".key"), leaf.key)
    # In the bad folder dev-new-1's pair is fine and dev-old-1's key is
    # another device's EC key.
    shutil.copyfile(os.path.join(bad_dir, "dev-new-1.key"), os.path.join(bad_dir, "dev-old-1.key"))
    return ({"upstream": {"device_certs": good_dir}}, {"upstream": {"device_certs": bad_dir}},
            "upstream", "device_certs", os.path.join(bad_dir, "dev-old-1.key"))


def _downstream_rsa_cert_ec_key(pki, folder):
    good, _, _, _, _ = _downstream_rsa(pki, folder)
    bad = {"downstream": {"cert": good["downstream"]["cert"], "key": pki("gateway.key")}}
    return good, bad, "downstream", "key", pki("gateway.key")


PAIRS = {
    "downstream-ec": _downstream_ec,
    "upstream-ec": _upstream_ec,
    "downstream-rsa": _downstream_rsa,
    "device-certs": _device_certs,
    "rsa-cert-ec-key": _downstream_rsa_cert_ec_key,
}


@pytest.mark.parametrize("case", sorted(PAIRS))
def test_key_mismatch_check(certbridge_bin, pki, tmp_path, case):
    good, bad, sec, key, wrong = PAIRS[case](pki, str(tmp_path))
    g = conf_for(pki, tmp_path / "good", good)
    rc, lines, out = check(certbridge_bin, g.conf_path)
    assert rc == 0 and not [l for l in lines if "belong" in l], lines
    g = conf_for(pki, tmp_path / "bad", bad)
    rc, lines, out = check(certbridge_bin, g.conf_path)
    assert rc == 1, (rc, lines, out)
    errors = [l for l in lines if ": warning: " not in l]
    about = lines_at(errors, g.conf_path, sec, key)
    assert len(about) == 1 and errors == about, lines
    # The verdict still counts what the INI names (U2).
    assert re.search(r"^%s: configuration NOT valid: \d+ certificates, 2 CAs \(nearest "
                     r"expiry \d{4}-\d\d-\d\d\), 1 error, \d+ warnings?; certbridge would "
                     r"not start with it \(exit 1\)$" % re.escape(str(g.conf_path)),
                     out.strip()), out
    assert '"%s"' % wrong in about[0], about[0]
    if case == "rsa-cert-ec-key":
        assert "is an EC key, but the certificate" in about[0]
        assert "holds an RSA key" in about[0], about[0]
    else:
        assert re.search(r'the private key "%s" does not belong to the certificate '
                         r'/O=certbridge lab/CN=\S+' % re.escape(wrong), about[0]), about[0]


@pytest.mark.parametrize("case", sorted(PAIRS))
def test_key_mismatch_reload_keeps_old(broker, make_gateway, pki, tmp_path, case):
    good, bad, sec, key, wrong = PAIRS[case](pki, str(tmp_path))
    g = make_gateway(broker.port, good)
    device_connects(g, pki)
    g.overrides = bad
    g.write_conf()
    problems = reload_fails(g)
    about = [p for p in problems if p.startswith("%s:%d: [%s] %s: "
                                                  % (g.conf_path, line_of(g.conf_path, sec, key),
                                                     sec, key))]
    assert len(about) == 1 and '"%s"' % wrong in about[0], problems
    # Still serving generation 1: devices connect as before.
    device_connects(g, pki)


@pytest.mark.parametrize("how", ["in-place", "renamed"])
def test_device_key_replaced_fails_reload(broker, make_gateway, pki, tmp_path, how):
    """A reload proves again a device_certs pair whose file changed, even
    under the same name (pairs proven once are remembered by file
    identity, so that a big folder does not stall every reload)."""
    good, bad, sec, key, wrong = _device_certs(pki, str(tmp_path))
    folder = good["upstream"]["device_certs"]
    g = make_gateway(broker.port, good)
    mark = g.mark()
    g.reload()  # unchanged files: proven from memory, the reload passes
    g.wait_event("reloaded", since=mark, timeout=10)
    target = os.path.join(folder, "dev-old-1.key")
    other = mkpki.new_key()
    if how == "in-place":
        with open(target, "wb") as f:
            f.write(mkpki.key_pem(other))
    else:
        mkpki.write_key(target, other)  # a new file renamed over it
    problems = reload_fails(g)
    about = [p for p in problems if p.startswith("%s:%d: [upstream] device_certs: "
                                                  % (g.conf_path, line_of(g.conf_path, "upstream",
                                                                          "device_certs")))]
    assert len(about) == 1 and '"%s"' % target in about[0], problems
    assert "does not belong" in about[0], about[0]
    # The gateway serves on, dev-old-1 included: sessions use the pairs
    # proven at the last good load, from memory, never the files as they
    # are now.
    device_connects(g, pki, "dev-new-1")
    mark = g.mark()
    device_connects(g, pki, "dev-old-1")
    ev = g.wait_event("upstream-connected", since=mark, device="dev-old-1")
    assert ev.get("client_cert") == "device", ev["_line"]


def test_mismatched_key_refuses_start(certbridge_bin, pki, tmp_path):
    good, bad, sec, key, wrong = _downstream_ec(pki, str(tmp_path))
    g = conf_for(pki, tmp_path / "gw", bad, upstream_port=cbtest.free_port())
    r = subprocess.run(g.argv(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=t(30))
    assert r.returncode == 1, (r.returncode, r.stderr)
    about = lines_at(r.stderr.splitlines(), g.conf_path, sec, key)
    assert len(about) == 1 and "does not belong" in about[0], r.stderr
    assert not cbtest.port_listening(g.port)


# ---------------------------------------------------------------- empty crl / retire_after


@pytest.mark.parametrize("key", ["crl", "retire_after"])
def test_empty_trust_key_check_and_reload(broker, make_gateway, certbridge_bin, pki, tmp_path,
                                          key):
    over = {"ca.old": {key: ""}}
    g = conf_for(pki, tmp_path / "check", over)
    rc, lines, out = check(certbridge_bin, g.conf_path)
    assert rc == 1
    about = lines_at(lines, g.conf_path, "ca.old", key)
    assert len(about) == 1 and "empty value" in about[0] and "remove the line" in about[0], lines
    gw = make_gateway(broker.port)
    gw.overrides = over
    gw.write_conf()
    problems = reload_fails(gw)
    assert [p for p in problems if "[ca.old] %s: empty value" % key in p], problems
    device_connects(gw, pki)


# ---------------------------------------------------------------- CRL not yet valid


@pytest.mark.parametrize("this_update,ok", [("+2d", False), ("+2m", True)])
def test_crl_from_the_future(broker, make_gateway, certbridge_bin, pki, tmp_path,
                             this_update, ok):
    """A CRL whose thisUpdate is ahead of the gateway's clock by more than
    clock_skew (default 5m) cannot say what is revoked now (T1): an error at
    -t and at reload, naming [ca.old] crl; within the skew it is taken."""
    crl = tmp_path / "future.crl"
    mkpki.write_crl(str(crl), mkpki.make_crl(pki.pair("ca-old"), revoked=[],
                                             last_update=this_update,
                                             next_update="+30d"))
    over = {"ca.old": {"crl": str(crl)}}
    g = conf_for(pki, tmp_path / "check", over)
    rc, lines, out = check(certbridge_bin, g.conf_path)
    about = lines_at(lines, g.conf_path, "ca.old", "crl")
    if ok:
        assert rc == 0 and not about, lines
        return
    assert rc == 1, (lines, out)
    assert len(about) == 1 and "not valid yet" in about[0] and "clock" in about[0], lines
    gw = make_gateway(broker.port)
    gw.overrides = over
    gw.write_conf()
    problems = reload_fails(gw)
    assert [p for p in problems if "[ca.old] crl:" in p and "not valid yet" in p], problems
    device_connects(gw, pki)


# ---------------------------------------------------------------- state_file


def test_state_file_folder_missing(certbridge_bin, pki, tmp_path):
    state = tmp_path / "no-such-folder" / "devices.state"
    g = conf_for(pki, tmp_path / "gw", {"gateway": {"state_file": str(state)}})
    rc, lines, out = check(certbridge_bin, g.conf_path)
    assert rc == 1, lines
    about = lines_at(lines, g.conf_path, "gateway", "state_file")
    assert len(about) == 1, lines
    assert 'the folder "%s" does not exist' % state.parent in about[0], about[0]
    assert "state_file =" in about[0]  # says how to keep sightings in memory
    # Once the folder exists, the same file passes.
    state.parent.mkdir()
    rc, lines, out = check(certbridge_bin, g.conf_path)
    assert rc == 0, lines


def test_state_file_folder_missing_reload(broker, make_gateway, pki, tmp_path):
    g = make_gateway(broker.port)
    state = tmp_path / "gone" / "devices.state"
    g.overrides.setdefault("gateway", {})["state_file"] = str(state)
    g.write_conf()
    problems = reload_fails(g)
    assert [p for p in problems if "[gateway] state_file: the folder" in p
            and str(state.parent) in p], problems
    device_connects(g, pki)


@pytest.mark.skipif(os.path.exists("/var/lib/certbridge"),
                    reason="the default state_file's folder exists here")
def test_default_state_file_folder_missing(certbridge_bin, pki, tmp_path):
    """Without state_file, the default /var/lib/certbridge/devices.state
    applies: its folder missing is an error at the [gateway] line."""
    g = conf_for(pki, tmp_path / "gw", {"gateway": {"state_file": None}})
    rc, lines, out = check(certbridge_bin, g.conf_path)
    assert rc == 1, lines
    want = "%s:%d: [gateway] state_file: " % (g.conf_path, _section_line(g.conf_path, "gateway"))
    about = [l for l in lines if l.startswith(want)]
    assert len(about) == 1 and '"/var/lib/certbridge"' in about[0], lines
    assert "default state_file" in about[0] and "state_file =" in about[0], about[0]


def _section_line(path, section):
    for i, line in enumerate(open(path).read().splitlines(), 1):
        if line.strip() == "[%s]" % section:
            return i
    raise AssertionError("no [%s] in %s" % (section, path))


@ROOT_ONLY
def test_state_folder_not_writable_by_user(certbridge_bin, pki):
    """A folder root can write but nobody cannot: fine without [gateway]
    user, an error with user = nobody, fine again once it is nobody's."""
    tree = cbtest.UserTree(pki, "nobody")
    try:
        state_dir = tree.dir / "state"
        state_dir.mkdir()
        os.chmod(state_dir, 0o755)  # root's
        state = {"state_file": str(state_dir / "devices.state")}
        over = tree.overrides(user=False)
        over["gateway"] = dict(state)
        g = conf_for(pki, tree.gateway_dir("as-root"), over)
        rc, lines, out = check(certbridge_bin, g.conf_path)
        assert rc == 0, lines
        over["gateway"]["user"] = "nobody"
        g = conf_for(pki, tree.gateway_dir("as-nobody"), over)
        rc, lines, out = check(certbridge_bin, g.conf_path)
        assert rc == 1, lines
        about = lines_at(lines, g.conf_path, "gateway", "state_file")
        assert len(about) == 1 and lines == about, lines
        assert ('user "nobody" ([gateway] user) cannot create files in "%s" (Permission denied)'
                % state_dir) in about[0], about[0]
        nobody = pwd.getpwnam("nobody")
        os.chown(state_dir, nobody.pw_uid, nobody.pw_gid)
        rc, lines, out = check(certbridge_bin, g.conf_path)
        assert rc == 0, lines
    finally:
        tree.remove()


@ROOT_ONLY
def test_state_folder_taken_away_after_drop_fails_reload(broker, pki):
    """After the privilege drop the daemon is nobody: a reload judges the
    state folder with access(), and one nobody can no longer write fails
    the reload (the old configuration stays)."""
    tree = cbtest.UserTree(pki, "nobody")
    nobody = pwd.getpwnam("nobody")
    state_dir = tree.dir / "state"
    state_dir.mkdir()
    os.chown(state_dir, nobody.pw_uid, nobody.pw_gid)
    over = tree.overrides()
    over["gateway"]["state_file"] = str(state_dir / "devices.state")
    g = cbtest.Gateway(pki, tree.gateway_dir(), broker.port, overrides=over)
    try:
        g.start()
        g.wait_event("privileges", msg=re.compile(r"nobody"))
        os.chown(state_dir, 0, 0)
        os.chmod(state_dir, 0o755)
        problems = reload_fails(g)
        assert [p for p in problems if "[gateway] state_file: " in p
                and 'cannot create files in "%s"' % state_dir in p], problems
        device_connects(g, pki)
        os.chown(state_dir, nobody.pw_uid, nobody.pw_gid)
        mark = g.mark()
        g.reload()
        g.wait_event("reloaded", since=mark, timeout=10)
    finally:
        rc = g.stop()
        tree.remove()
    assert rc == 0, g.report()


# ---------------------------------------------------------------- files [gateway] user must read


@ROOT_ONLY
@pytest.mark.parametrize("give", ["owner", "group"])
def test_user_cannot_read_key(certbridge_bin, pki, give):
    tree = cbtest.UserTree(pki, "nobody")
    try:
        key = tree("gateway.key")
        os.chown(key, 0, 0)  # root's, mode 0600: nobody cannot read it
        g = conf_for(pki, tree.gateway_dir(), tree.overrides())
        rc, lines, out = check(certbridge_bin, g.conf_path)
        assert rc == 1, lines
        about = lines_at(lines, g.conf_path, "downstream", "key")
        assert len(about) == 1, lines
        assert ('user "nobody" ([gateway] user) cannot read "%s" (Permission denied)' % key
                in about[0]), about[0]
        assert [l for l in lines if ": warning: " not in l] == about, lines
        nobody = pwd.getpwnam("nobody")
        if give == "owner":
            os.chown(key, nobody.pw_uid, nobody.pw_gid)
        else:
            # root's file, readable by nobody's primary group only
            os.chown(key, 0, nobody.pw_gid)
            os.chmod(key, 0o640)
        rc, lines, out = check(certbridge_bin, g.conf_path)
        assert rc == 0, lines
        # (a group-readable key is still the usual warning)
        assert [l for l in lines if ": warning: " not in l] == [], lines
    finally:
        tree.remove()


@ROOT_ONLY
def test_user_cannot_read_device_certs_and_ini(certbridge_bin, pki):
    """The device_certs folder and its pairs, and the configuration file
    itself, must be readable by [gateway] user too."""
    tree = cbtest.UserTree(pki, "nobody")
    try:
        dc = tree.dir / "device_certs"
        dc.mkdir()
        os.chmod(dc, 0o755)
        leaf = mkpki.make_leaf("dev-old-1", pki.pair("cloud-client-ca"), usage="client")
        mkpki.write_cert(dc / "dev-old-1.crt", leaf.cert)
        mkpki.write_key(dc / "dev-old-1.key", leaf.key)  # 0600 root
        over = tree.overrides()
        over["upstream"]["device_certs"] = str(dc)
        g = conf_for(pki, tree.gateway_dir(), over)
        os.chmod(g.conf_path, 0o600)  # root's
        rc, lines, out = check(certbridge_bin, g.conf_path)
        assert rc == 1, lines
        user_line = lines_at(lines, g.conf_path, "gateway", "user")
        assert len(user_line) == 1 and "the configuration file" in user_line[0], lines
        dev = lines_at(lines, g.conf_path, "upstream", "device_certs")
        assert len(dev) == 1 and '"%s"' % (dc / "dev-old-1.key") in dev[0], lines
        assert "cannot read" in dev[0], dev[0]
        nobody = pwd.getpwnam("nobody")
        os.chown(dc / "dev-old-1.key", nobody.pw_uid, nobody.pw_gid)
        os.chmod(g.conf_path, 0o644)
        rc, lines, out = check(certbridge_bin, g.conf_path)
        assert rc == 0, lines
    finally:
        tree.remove()


@ROOT_ONLY
def test_user_check_by_mode_bits_when_not_root(certbridge_bin, pki):
    """-t run by neither root nor the user: judged from mode bits, and the
    line says so. Here -t runs as nobody for [gateway] user = daemon."""
    tree = cbtest.UserTree(pki, "nobody")  # nobody can read everything
    daemon = pwd.getpwnam("daemon")
    nobody = pwd.getpwnam("nobody")
    try:
        over = tree.overrides(user=False)
        over["gateway"] = {"user": "daemon"}
        g = conf_for(pki, tree.gateway_dir(), over)
        key = tree("gateway.key")  # nobody's, 0600

        def as_nobody():
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)

        for name in ("gateway-upstream.key",):
            os.chown(tree(name), nobody.pw_uid, daemon.pw_gid)
            os.chmod(tree(name), 0o640)
        rc, lines, out = check(certbridge_bin, g.conf_path, preexec_fn=as_nobody)
        assert rc == 1, lines
        about = lines_at(lines, g.conf_path, "downstream", "key")
        assert len(about) == 1, lines
        assert 'user "daemon" ([gateway] user) cannot read "%s"' % key in about[0], about[0]
        assert "judged from mode bits" in about[0], about[0]
        # The upstream key, readable through daemon's primary group, passes
        # (a group-readable key is only the usual warning).
        assert not [l for l in lines_at(lines, g.conf_path, "upstream", "key")
                    if ": warning: " not in l], lines
        os.chown(key, nobody.pw_uid, daemon.pw_gid)
        os.chmod(key, 0o640)
        rc, lines, out = check(certbridge_bin, g.conf_path, preexec_fn=as_nobody)
        assert rc == 0, lines
    finally:
        tree.remove()


def test_unknown_user_is_a_check_error(certbridge_bin, pki, tmp_path):
    name = "cbnouser%s" % cbtest.uid()[:6]
    g = conf_for(pki, tmp_path / "gw", {"gateway": {"user": name}})
    rc, lines, out = check(certbridge_bin, g.conf_path)
    assert rc == 1, lines
    about = lines_at(lines, g.conf_path, "gateway", "user")
    assert len(about) == 1 and 'no such user "%s"' % name in about[0], lines
