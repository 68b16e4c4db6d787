"""certbridge-certs: the certificate inventory of a configuration
(docs/rotation.md, "Seeing the next rotation coming"), with the
monitoring-plugin exit codes:

    0 ok, 1 warning (ends within --warn, 30d), 2 critical (ends within
    --crit, 7d; expired; not yet valid), 3 unknown (usage, configuration or
    file errors); the highest wins.

Each test writes a small site (a device CA valid 400 days, a downstream
certificate, an upstream root) with certificates made to end when the test
needs, runs the tool on it, and checks the exit code, the table and the
JSON. The daemon is not needed.

The binary is $CB_BUILD/certbridge-certs (default build/); the tests skip
when it is not built.
"""

import datetime
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbtest  # noqa: E402
from cbtest import mkpki  # noqa: E402

BUILD = Path(os.environ.get("CB_BUILD") or cbtest.REPO / "build")
TOOL = BUILD / "certbridge-certs"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3

ITEM_FIELDS = {"role", "name", "file", "line", "index", "of", "subject", "issuer",
               "not_before", "not_after", "days_left", "status", "fingerprint_sha256",
               "is_ca", "in_bundle"}
TOP_FIELDS = {"config", "generated_at", "warn_days", "crit_days", "status", "exit_code",
              "certificates", "errors"}
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
SUMMARY = re.compile(r"^certbridge-certs: \d+ certificates?, \d+ CRLs?.*: \d+ warnings?.*, "
                     r"\d+ critical", re.M)


@pytest.fixture(scope="module")
def tool():
    if not TOOL.is_file():
        pytest.skip("%s is not built (make build, or set CB_BUILD)" % TOOL)
    return str(TOOL)


def iso(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fingerprint(cert):
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


class Result:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout.decode("utf-8", errors="replace")
        self.err = proc.stderr.decode("utf-8", errors="replace")
        self.raw = proc.stdout

    def __repr__(self):
        return "rc %s\n---- stdout\n%s\n---- stderr\n%s" % (self.rc, self.out, self.err)

    def summary(self):
        lines = self.out.strip().splitlines()
        return lines[-1] if lines else ""


class Site:
    """A configuration folder: certbridge.ini and the certificates it names."""

    def __init__(self, folder, tool):
        self.dir = Path(folder)
        self.tool = tool
        self.ca = mkpki.make_ca("certs-tool Device CA", not_after=mkpki.rel("+400d"))
        self.write_pair("device-ca", self.ca)
        self.root = mkpki.make_ca("certs-tool Cloud Root")
        self.write_pair("cloud-root", self.root)
        self.gateway = self.leaf("gateway", not_after="+400d")
        self.sections = {
            "gateway": {"state_file": ""},
            "downstream": {"listen": "127.0.0.1:18883", "cert": "gateway.pem",
                           "key": "gateway.key"},
            "ca.dev": {"file": "device-ca.pem"},
            "upstream": {"address": "127.0.0.1:18884", "ca": "cloud-root.pem"},
        }
        self.conf = self.dir / "certbridge.ini"

    def write_pair(self, name, issued, chain=None):
        return mkpki.write_pair(str(self.dir), name, issued, chain=chain)

    def leaf(self, name, issuer=None, not_before=None, not_after=None, cn=None,
             usage="server"):
        """Issues NAME.pem + NAME.key under the device CA (or issuer);
        returns the mkpki.Issued."""
        issued = mkpki.make_leaf(cn or name, issuer or self.ca, usage=usage,
                                 not_before=not_before, not_after=not_after)
        self.write_pair(name, issued)
        return issued

    def downstream(self, issued, name="gw-test"):
        """Makes issued the [downstream] certificate."""
        self.write_pair(name, issued)
        self.sections["downstream"].update(cert=name + ".pem", key=name + ".key")

    def write(self, text=None):
        self.conf.write_text(text if text is not None else cbtest.ini_text(self.sections))
        return self.conf

    def line_of(self, key, value):
        """The 1-based line of `key = value` in the written file."""
        for i, line in enumerate(self.conf.read_text().splitlines(), 1):
            if line == "%s = %s" % (key, value):
                return i
        raise AssertionError("%s = %s not in %s" % (key, value, self.conf))

    def run(self, *args, write=True):
        if write:
            self.write()
        argv = [self.tool] + list(args)
        if "-c" not in args:
            argv += ["-c", str(self.conf)]
        p = subprocess.run(argv, capture_output=True, timeout=60, cwd=str(self.dir))
        return Result(p)

    def json(self, *args):
        r = self.run("--json", *args)
        try:
            return r, json.loads(r.raw)
        except ValueError as e:
            raise AssertionError("--json output does not parse: %s\n%r" % (e, r)) from None


@pytest.fixture
def site(tool, tmp_path):
    return Site(tmp_path, tool)


def item(doc, role, name=None, index=1):
    for c in doc["certificates"]:
        if c["role"] == role and (name is None or c["name"] == name) and c["index"] == index:
            return c
    raise AssertionError("no %s %s #%d in %s" % (role, name, index,
                                                  json.dumps(doc, indent=1)))


# ---------------------------------------------------------------- exit codes


def test_all_valid_400_days_is_ok(site):
    r = site.run()
    assert r.rc == OK, r
    assert SUMMARY.search(r.out), r
    assert "0 warnings, 0 critical" in r.summary(), r
    # The table: a header, one row per certificate, with who issued it.
    assert re.search(r"^ROLE\s+NAME\s+NOT AFTER\s+DAYS\s+STATUS\s+SUBJECT$", r.out, re.M), r
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^([a-z-]+)\s+\S+\s.*$", r.out, re.M)}
    assert {"downstream", "device-ca", "upstream-ca"} <= set(rows), r
    assert "ok" in rows["downstream"].split()
    fp = fingerprint(site.gateway.cert)
    assert re.search(r"^\s+sha256 %s\.\.\.%s " % (re.escape(fp[:23]), re.escape(fp[-8:])),
                     r.out, re.M), r
    assert re.search(r"^\s+issued by /O=certbridge lab/CN=certs-tool Device CA, from ",
                     r.out, re.M), r
    # --wide: every column whole, the whole fingerprint on the row.
    r = site.run("--wide")
    assert r.rc == OK, r
    assert re.search(r"^ROLE\s+NAME\s+SUBJECT\s+NOT AFTER\s+DAYS\s+STATUS\s+FINGERPRINT",
                     r.out, re.M), r
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^([a-z-]+)\s+\S+\s.*$", r.out, re.M)}
    assert fp in rows["downstream"]
    assert re.search(r"^\s+issued by /O=certbridge lab/CN=certs-tool Device CA, valid from ",
                     r.out, re.M), r


def test_table_fits_100_columns(site, tmp_path):
    """A serial console: long names, subjects and paths are cut, never
    wrapped, in everything but the summary line; --wide keeps them whole."""
    deep = site.dir / ("a-rather-long-folder-name-for-the-certificates-of-site-%s" % ("x" * 40))
    deep.mkdir()
    long_cn = "certs-tool Device CA with a very long common name " + "y" * 60
    ca = mkpki.make_ca(long_cn, not_after=mkpki.rel("+400d"))
    mkpki.write_pair(str(deep), "device-ca-long", ca)
    site.sections["ca.a-very-long-section-name"] = {
        "file": str(deep / "device-ca-long.pem"), "retire_after": "2031-01-01"}
    crl = deep / "dev.crl"
    mkpki.write_crl(str(crl), mkpki.make_crl(site.ca, next_update=mkpki.rel("+60d")))
    site.sections["ca.dev"]["crl"] = str(crl)
    r = site.run()
    assert r.rc == OK, r
    lines = r.out.splitlines()
    assert all(len(l) <= 100 for l in lines[:-1]), \
        "\n".join(l for l in lines if len(l) > 100)
    assert long_cn not in r.out and "y" * 20 in r.out  # the end of the name is kept
    r = site.run("--wide")
    assert long_cn in r.out and str(deep) in r.out
    assert max(len(l) for l in r.out.splitlines()[:-1]) > 100


def test_dates_that_stop_devices(site, tmp_path):
    """After the table, soonest first: a CA's retire_after, a CRL's
    nextUpdate, the end of the device CA and of the gateway's chain."""
    crl = tmp_path / "dev.crl"
    next_update = mkpki.rel("+45d")
    mkpki.write_crl(str(crl), mkpki.make_crl(site.ca, next_update=next_update))
    site.sections["ca.dev"].update(crl="dev.crl", retire_after="2031-07-01")
    r = site.run()
    assert r.rc == OK, r
    block = r.out.split("DATES THAT STOP DEVICES\n", 1)
    assert len(block) == 2, r
    stops = [l for l in block[1].splitlines() if re.match(r"^\d{4}-\d\d-\d\d  ", l)]
    dates = [l[:10] for l in stops]
    assert dates == sorted(dates), stops
    text = "\n".join(stops)
    assert re.search(r"^%s  in \d+ days\s+ca\.dev CRL nextUpdate" % next_update.strftime("%Y-%m-%d"),
                     text, re.M), text
    assert re.search(r"^2031-07-01  in \d+ days\s+ca\.dev retire_after: its devices are refused",
                     text, re.M), text
    assert re.search(r"ca\.dev certificate ends: its devices are refused", text), text
    assert re.search(r"downstream certificate ends: devices refuse the gateway", text), text
    # The CA's row says its retire_after too.
    assert re.search(r"^\s+retire_after 2031-07-01 \(in \d+ days\): then its devices are refused",
                     r.out, re.M), r


@pytest.mark.parametrize("days,want", [(400, OK), (20, WARNING), (3, CRITICAL)])
def test_downstream_expiry_levels(site, days, want):
    site.downstream(site.leaf("gw-%dd" % days, not_after="+%dd" % days))
    r = site.run()
    assert r.rc == want, r
    if want == WARNING:
        assert re.search(r"1 warning \(downstream expires in (19|20) days\), 0 critical",
                         r.summary()), r
    if want == CRITICAL:
        assert re.search(r"0 warnings, 1 critical \(downstream expires in (2|3) days\)",
                         r.summary()), r


def test_device_ca_expiry_levels(site):
    """The device CA itself: 400 days is fine, 20 days warns."""
    assert site.run().rc == OK
    ca = mkpki.make_ca("certs-tool Device CA", key=site.ca.key, not_after=mkpki.rel("+20d"))
    site.write_pair("device-ca", ca)
    r = site.run()
    assert r.rc == WARNING, r
    assert "ca.dev expires in" in r.summary(), r


def test_warn_window_option(site):
    site.downstream(site.leaf("gw-20d", not_after="+20d"))
    assert site.run().rc == WARNING
    for args in (["--warn", "10d"], ["--warn=10d"], ["--warn", "240h"]):
        r = site.run(*args)
        assert r.rc == OK, (args, r)
    # A critical window wider than the certificate's life left.
    r = site.run("--crit=21d")
    assert r.rc == CRITICAL, r


def test_expired_is_critical(site):
    site.downstream(site.leaf("gw-old", not_before="-400d", not_after="-1d"))
    r = site.run()
    assert r.rc == CRITICAL, r
    assert re.search(r"downstream expired (1 day|\d+ hours) ago", r.summary()), r
    assert re.search(r"^downstream\s.*\sexpired\s", r.out, re.M), r


def test_not_yet_valid_is_critical(site):
    site.downstream(site.leaf("gw-future", not_before="+2d", not_after="+400d"))
    r = site.run()
    assert r.rc == CRITICAL, r
    assert "downstream is not valid until" in r.summary(), r
    r, doc = site.json()
    assert item(doc, "downstream")["status"] == "not-yet-valid"


def test_crl_next_update(site, tmp_path):
    crl = tmp_path / "dev.crl"
    # A monthly CRL just issued: not due yet (a quarter of its life is
    # the window, as certbridge -t says), so the check stays OK.
    mkpki.write_crl(str(crl), mkpki.make_crl(site.ca, next_update=mkpki.rel("+30d")))
    site.sections["ca.dev"]["crl"] = "dev.crl"
    r = site.run()
    assert r.rc == OK, r
    # 10 days left of 70: due.
    mkpki.write_crl(str(crl), mkpki.make_crl(site.ca, last_update=mkpki.rel("-60d"),
                                             next_update=mkpki.rel("+10d")))
    r = site.run()
    assert r.rc == WARNING, r
    assert "ca.dev CRL must be replaced within" in r.summary(), r
    assert "1 CRL" in r.summary(), r
    r, doc = site.json()
    c = item(doc, "crl", "ca.dev")
    ca = item(doc, "device-ca", "ca.dev")
    assert c["subject"] == c["issuer"] == ca["subject"]
    assert c["status"] == "warning" and c["fingerprint_sha256"] is None
    assert c["line"] == site.line_of("crl", "dev.crl")
    # A stale CRL (nextUpdate passed), in DER this time.
    mkpki.write_crl(str(crl), mkpki.make_crl(site.ca, last_update=mkpki.rel("-10d"),
                                             next_update=mkpki.rel("-1d")), der=True)
    r = site.run()
    assert r.rc == CRITICAL, r
    assert "ca.dev CRL is stale since" in r.summary(), r


@pytest.mark.parametrize("when,rc,words", [
    ("+400d", "OK", None),
    ("+20d", "WARNING", r"1 warning \(ca\.dev retires in \d+ days \(retire_after "),
    ("+2d", "CRITICAL", r"1 critical \(ca\.dev retires in (\d+ days|\d+ hours) "),
    ("-2d", "WARNING", r"1 warning \(ca\.dev retired 2 days ago "),
])
def test_retire_after_counts_like_an_expiry(site, when, rc, words):
    """A CA's retire_after stops its devices as an expiry does, so a check
    that runs certbridge-certs hears of it in time: a warning within --warn,
    critical within --crit; once past, a warning (remove the section)."""
    site.sections["ca.dev"]["retire_after"] = mkpki.rel(when).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = site.run()
    assert r.rc == globals()[rc], r
    if words:
        assert re.search(words, r.summary()), r.summary()


def test_highest_level_wins(site):
    """warning + critical = 2; anything + a file error = 3."""
    site.downstream(site.leaf("gw-20d", not_after="+20d"))
    ca = mkpki.make_ca("certs-tool Device CA", key=site.ca.key, not_after=mkpki.rel("+3d"))
    site.write_pair("device-ca", ca)
    r = site.run()
    assert r.rc == CRITICAL, r
    assert re.search(r": 1 warning \(downstream .*\), 1 critical \(ca.dev ", r.summary()), r
    (site.dir / "damaged.pem").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n"
                                          "-----END CERTIFICATE-----\n")
    site.sections["ca.other"] = {"file": "damaged.pem"}
    r = site.run()
    assert r.rc == UNKNOWN, r


# ---------------------------------------------------------------- errors: 3


def test_damaged_certificate_file_is_unknown(site):
    (site.dir / "damaged.pem").write_text("not a certificate\n")
    site.sections["ca.dev"]["file"] = "damaged.pem"
    r = site.run()
    assert r.rc == UNKNOWN, r
    line = site.line_of("file", "damaged.pem")
    want = "%s:%d: [ca.dev] file: " % (site.conf, line)
    assert any(l.startswith(want) for l in r.err.splitlines()), r
    # The rest is still listed.
    assert re.search(r"^downstream\s", r.out, re.M), r
    assert "1 error" in r.summary(), r
    r, doc = site.json()
    assert doc["status"] == "error" and doc["exit_code"] == UNKNOWN
    assert len(doc["errors"]) == 1 and doc["errors"][0].startswith(want)


@pytest.mark.parametrize("section", ["downstream", "upstream", "sni"])
def test_key_of_another_certificate_is_an_error(site, section):
    """A key file that is not its certificate's: the gateway would refuse
    the configuration at its next reload, so the inventory is no "ok"
    either (exit 3), naming the key's line as certbridge -t does."""
    site.leaf("other")
    if section == "downstream":
        site.sections["downstream"]["key"] = "other.key"
        key_name, right = "key", "gateway.key"
    elif section == "upstream":
        site.leaf("up", usage="client")
        site.sections["upstream"].update(cert="up.pem", key="other.key")
        key_name, right = "key", "up.key"
    else:
        site.leaf("legacy")
        site.sections["downstream"].update({"sni_cert.legacy.example": "legacy.pem",
                                            "sni_key.legacy.example": "other.key"})
        key_name, right = "sni_key.legacy.example", "legacy.key"
        section = "downstream"
    at = (key_name, "other.key")
    r = site.run()
    assert r.rc == UNKNOWN, r
    want = "%s:%d: [%s] %s: " % (site.conf, site.line_of(*at), section, key_name)
    lines = [l for l in r.err.splitlines() if l.startswith(want)]
    assert len(lines) == 1 and "does not belong to the certificate" in lines[0], r
    assert "1 error" in r.summary(), r
    r, doc = site.json()
    assert doc["status"] == "error" and doc["exit_code"] == UNKNOWN, doc
    assert [e for e in doc["errors"] if e.startswith(want)], doc["errors"]
    # The certificate's own key: no error.
    site.sections[section][key_name] = right
    r = site.run()
    assert r.rc == OK, r


def test_missing_file_is_unknown(site):
    site.sections["downstream"]["cert"] = "no-such-file.pem"
    r = site.run()
    assert r.rc == UNKNOWN, r
    assert re.search(r":%d: \[downstream\] cert: .*no-such-file\.pem"
                     % site.line_of("cert", "no-such-file.pem"), r.err), r
    r, doc = site.json()
    assert r.rc == UNKNOWN and doc["status"] == "error" and doc["certificates"] == []
    assert any("no-such-file.pem" in e for e in doc["errors"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode 000 file")
def test_unreadable_file_is_unknown(site):
    os.chmod(site.dir / "device-ca.pem", 0)
    try:
        r = site.run()
    finally:
        os.chmod(site.dir / "device-ca.pem", 0o644)
    assert r.rc == UNKNOWN, r
    assert "device-ca.pem" in r.err, r


def test_broken_ini_is_unknown(site):
    site.write("[downstream\ncert gateway.pem\n")
    r = site.run(write=False)
    assert r.rc == UNKNOWN, r
    assert re.search(r"certbridge\.ini:1: ", r.err), r
    assert "configuration error" in r.summary(), r
    r = site.run("-c", str(site.dir / "absent.ini"), write=False)
    assert r.rc == UNKNOWN, r


@pytest.mark.parametrize("args", [
    [],                                   # no -c
    ["-c"],                               # no value
    ["--warn", "30"],                     # no unit
    ["--crit=7x"],
    ["--bogus"],
    ["extra-argument"],
])
def test_usage_errors_are_unknown(tool, site, args):
    site.write()
    argv = [tool] + args
    if args and args[0] != "-c":
        argv += ["-c", str(site.conf)]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert p.returncode == UNKNOWN, (args, p.stdout, p.stderr)
    assert "usage: certbridge-certs" in p.stderr
    assert p.stdout == ""


def test_help(tool):
    p = subprocess.run([tool, "-h"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0
    assert "usage: certbridge-certs -c FILE" in p.stdout and "--json" in p.stdout


# ---------------------------------------------------------------- JSON


def test_json_schema(site):
    chain_int = mkpki.make_ca("certs-tool Issuing CA", issuer=site.ca, path_length=0)
    leaf = mkpki.make_leaf("gw-chain", chain_int, usage="server", not_after="+20d")
    site.write_pair("gw-chain", leaf, chain=[chain_int.cert])
    site.sections["downstream"].update(cert="gw-chain-chain.pem", key="gw-chain.key")
    up = site.leaf("upstream-id", issuer=site.root, usage="client")
    site.sections["upstream"].update(cert="upstream-id.pem", key="upstream-id.key")
    r, doc = site.json()
    assert r.rc == WARNING, r
    assert TOP_FIELDS <= set(doc), doc
    assert doc["config"] == str(site.conf)
    assert ISO_Z.match(doc["generated_at"])
    assert doc["warn_days"] == 30 and doc["crit_days"] == 7
    assert doc["status"] == "warning" and doc["exit_code"] == WARNING
    assert doc["errors"] == []
    roles = [(c["role"], c["name"], c["index"]) for c in doc["certificates"]]
    assert roles == [("downstream", "downstream", 1), ("downstream", "downstream", 2),
                     ("device-ca", "ca.dev", 1), ("upstream-ca", "upstream", 1),
                     ("upstream-cert", "upstream", 1)], roles
    for c in doc["certificates"]:
        assert set(c) >= ITEM_FIELDS, c
        assert ISO_Z.match(c["not_before"]) and ISO_Z.match(c["not_after"]), c
        assert isinstance(c["days_left"], int) and isinstance(c["line"], int)
        assert isinstance(c["is_ca"], bool) and c["in_bundle"] is False
        assert re.match(r"^([0-9A-F]{2}:){31}[0-9A-F]{2}$", c["fingerprint_sha256"]), c
        assert os.path.isabs(c["file"]) or (site.dir / c["file"]).exists()

    d = item(doc, "downstream")
    assert d["of"] == 2 and d["status"] == "warning" and d["days_left"] in (19, 20)
    assert d["subject"] == "/O=certbridge lab/CN=gw-chain"
    assert d["issuer"] == "/O=certbridge lab/CN=certs-tool Issuing CA"
    assert d["not_after"] == iso(mkpki.not_after(leaf.cert))
    assert d["not_before"] == iso(mkpki.not_before(leaf.cert))
    assert d["fingerprint_sha256"] == fingerprint(leaf.cert)
    assert d["is_ca"] is False
    assert d["line"] == site.line_of("cert", "gw-chain-chain.pem")
    assert d["file"].endswith("gw-chain-chain.pem")
    i = item(doc, "downstream", index=2)
    assert i["is_ca"] is True and i["fingerprint_sha256"] == fingerprint(chain_int.cert)
    assert item(doc, "device-ca")["is_ca"] is True
    assert item(doc, "device-ca")["days_left"] in (399, 400)
    u = item(doc, "upstream-cert")
    assert u["fingerprint_sha256"] == fingerprint(up.cert) and u["status"] == "ok"


def test_json_escapes_every_byte(site):
    """Subjects with quotes, backslashes, control bytes, non-ASCII and even
    bytes that are not UTF-8 come out as valid JSON, and valid UTF-8 comes
    out unchanged; a control byte or a byte that is not UTF-8 is the text
    \\xNN once parsed, as in the logs (never the byte, never a guess at a
    Latin-1 character)."""
    import base64
    from cryptography.hazmat.primitives import serialization

    cn = 'QQQQ "quoted" \\back\\slash\\ caf\u00e9 \u4e2d\u6587 \U0001F512 tab\there'
    leaf = mkpki.make_leaf(cn, site.ca, usage="server", org='Acme, "Inc" \\ <&>')
    der = leaf.cert.public_bytes(serialization.Encoding.DER)
    assert der.count(b"QQQQ") == 1
    # Four bytes that are not UTF-8 (a Latin-1 e-acute, a control byte, 0xff,
    # DEL): the signature no longer matches, which the inventory does not check.
    der = der.replace(b"QQQQ", b"\xe9\x01\xff\x7f")
    pem = (b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der)
           + b"-----END CERTIFICATE-----\n")
    (site.dir / "odd.pem").write_bytes(pem)
    mkpki.write_key(str(site.dir / "odd.key"), leaf.key)
    site.sections["downstream"].update(cert="odd.pem", key="odd.key")
    r, doc = site.json()
    assert r.rc == OK, r
    d = item(doc, "downstream")
    tail = cn.replace("QQQQ", "").replace("\t", "\\x09")
    assert d["subject"].endswith("/CN=\\xe9\\x01\\xff\\x7f" + tail), repr(d["subject"])
    def strings(v):
        if isinstance(v, dict):
            for k, x in v.items():
                yield k
                yield from strings(x)
        elif isinstance(v, list):
            for x in v:
                yield from strings(x)
        elif isinstance(v, str):
            yield v
    odd = [s for s in strings(doc) if re.search(r"[\x00-\x1f\x7f-\x9f]", s)]
    assert not odd, odd
    assert 'O=Acme, "Inc" \\ <&>' in d["subject"], repr(d["subject"])
    # No raw control byte and only valid UTF-8 in the output.
    r.raw.decode("utf-8")
    assert not re.search(rb"[\x00-\x08\x0b-\x1f\x7f]", r.raw)
    # The table replaces what a terminal must not see.
    t = site.run()
    assert not re.search(rb"[\x00-\x08\x0b-\x1f\x7f]", t.raw.replace(b"\n", b""))
    t.raw.decode("utf-8")


# ---------------------------------------------------------------- bundles, device certs


@pytest.mark.skipif(not os.path.isfile(SYSTEM_BUNDLE), reason="no system CA bundle")
def test_system_bundle_listed_not_judged(site):
    site.sections["upstream"]["ca"] = SYSTEM_BUNDLE
    r = site.run()
    assert r.rc == OK, r
    m = re.search(r"^upstream-ca\s+upstream\s+(\d+) certificates \(root bundle: dates not "
                  r"judged\)\n\s+file %s$" % re.escape(SYSTEM_BUNDLE), r.out, re.M)
    assert m, r
    n = int(m.group(1))
    assert n >= 11
    assert re.search(r"1 bundle of %d roots \(not judged\)" % n, r.summary()), r
    r, doc = site.json()
    bundle = [c for c in doc["certificates"] if c["role"] == "upstream-ca"]
    assert len(bundle) == n
    assert all(c["in_bundle"] and c["status"] == "not-judged" and c["of"] == n
               for c in bundle)
    assert [c["index"] for c in bundle] == list(range(1, n + 1))
    # Even with windows that would flag every root, the bundle is not judged.
    r = site.run("--warn", "3650d", "--crit", "3000d")
    assert r.rc == CRITICAL, r  # the 400-day device CA is, the bundle is not
    assert "upstream (certificate" not in r.summary()


def test_small_ca_file_is_judged(site):
    """A CA file under the bundle size is the operator's own: judged."""
    roots = [mkpki.make_ca("certs-tool Root %d" % i, not_after=mkpki.rel("+5d"))
             for i in range(3)]
    mkpki.write_cert(str(site.dir / "roots.pem"), *roots)
    site.sections["upstream"]["ca"] = "roots.pem"
    r, doc = site.json()
    assert r.rc == CRITICAL, r
    ups = [c for c in doc["certificates"] if c["role"] == "upstream-ca"]
    assert len(ups) == 3 and not any(c["in_bundle"] for c in ups)
    assert all(c["status"] == "critical" for c in ups)


def test_device_certs_folder(site):
    folder = site.dir / "devices"
    folder.mkdir()
    for ident, days in (("zeta-7", 400), ("alpha-1", 3), ("mid_5", 20)):
        leaf = mkpki.make_leaf(ident, site.root, usage="client",
                               not_after="+%dd" % days)
        mkpki.write_cert(str(folder / (ident + ".crt")), leaf)
        mkpki.write_key(str(folder / (ident + ".key")), leaf.key)
    (folder / "README").write_text("not a certificate\n")
    (folder / ".hidden.crt").write_text("never read\n")
    site.sections["upstream"]["device_certs"] = "devices"
    r, doc = site.json()
    assert r.rc == CRITICAL, r
    devs = [c for c in doc["certificates"] if c["role"] == "device-cert"]
    assert [c["name"] for c in devs] == ["device:alpha-1", "device:mid_5", "device:zeta-7"]
    assert [c["status"] for c in devs] == ["critical", "warning", "ok"]
    assert all(c["line"] == site.line_of("device_certs", "devices") for c in devs)
    t = site.run()
    assert re.search(r"1 warning \(device:mid_5 .*\), 1 critical \(device:alpha-1 ",
                     t.summary()), t
