"""certbridge-certs --what-if 'retire NAME' (docs/rotation.md, "Retire the
old CA"): from the sightings the gateway keeps in [gateway] state_file,
which devices would be refused if a device CA were retired now, and when
each was last seen; exit 0 none, 1 some, 3 the question cannot be
answered. A device is judged by the CA of its latest admission (one that
came back with a certificate of the new CA has moved)."""
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

import cbtest
from cbtest import t
from rawmqtt import mqtt_device

BUILD = Path(os.environ.get("CB_BUILD") or cbtest.REPO / "build")
TOOL = BUILD / "certbridge-certs"


def what_if(conf, *specs, json_out=False):
    argv = [str(TOOL), "-c", str(conf)]
    for s in specs:
        argv += ["--what-if", s]
    if json_out:
        argv.append("--json")
    p = subprocess.run(argv, capture_output=True, timeout=t(60))
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def ran_with_two_devices(broker, make_gateway, pki, state):
    """A gateway that admitted dev-old-1 (CA old) and dev-new-1 (CA new),
    stopped: its state file is written on the way out."""
    g = make_gateway(broker.port, {"gateway": {"state_file": str(state)}})
    for name in ("dev-old-1", "dev-new-1"):
        ss = mqtt_device(g.port, pki.device(name))
        ss.close()
        g.wait_event("device-admitted", device=name)
    assert g.stop() == 0
    assert state.is_file()
    return g


def test_after_a_real_gateway_ran(broker, make_gateway, pki, tmp_path):
    g = ran_with_two_devices(broker, make_gateway, pki, tmp_path / "devices.state")

    rc, out, err = what_if(g.conf_path, "retire old")
    assert rc == 1, (out, err)
    assert "1 device would be refused:" in out, out
    assert re.search(r"^  dev-old-1\s+last seen \d{4}-\d\d-\d\dT[\d:]+Z \(.* ago\) with ca\.old: "
                     r"reason=retired-ca$", out, re.M), out
    assert "dev-new-1" not in out

    rc, out, err = what_if(g.conf_path, "retire:new", json_out=True)
    assert rc == 1, err
    doc = json.loads(out)
    assert doc["retire"] == ["new"] and doc["refused_count"] == 1, doc
    assert [d["device"] for d in doc["refused"]] == ["dev-new-1"], doc
    assert doc["devices_known"] == 2 and doc["exit_code"] == 1

    # Both retired: both devices; "ca.NAME" as the section is written.
    rc, out, _ = what_if(g.conf_path, "retire ca.old", "retire new")
    assert rc == 1 and "2 devices would be refused" in out, out


def test_crl_after_a_real_gateway_ran(broker, make_gateway, pki, tmp_path):
    """The gateway records each device's serial; a new CRL of the old CA
    that lists dev-old-1's certificate would refuse it (reason=revoked),
    and no one else. A CRL not signed by the CA, or of another CA, cannot
    answer."""
    state = tmp_path / "devices.state"
    g = ran_with_two_devices(broker, make_gateway, pki, state)
    old_cert = cbtest.mkpki.load_cert(pki("dev-old-1.pem"))
    serial = "%X" % old_cert.serial_number
    if len(serial) % 2:
        serial = "0" + serial
    line = [l for l in state.read_text().splitlines() if "\tdev-old-1\t" in l]
    assert line and line[0].split("\t")[4].lstrip("0") == serial.lstrip("0"), state.read_text()

    ca_old = cbtest.mkpki.load_pair(pki("ca-old"))
    crl = tmp_path / "old.crl"
    cbtest.mkpki.write_crl(str(crl), cbtest.mkpki.make_crl(ca_old, revoked=[old_cert]))
    rc, out, err = what_if(g.conf_path, "crl:old=%s" % crl)
    assert rc == 1, (out, err)
    assert "1 device would be refused:" in out, out
    assert re.search(r"^  dev-old-1\s+last seen .* with ca\.old: reason=revoked$", out, re.M), out
    rc, out, err = what_if(g.conf_path, "crl:old=%s" % crl, json_out=True)
    doc = json.loads(out)
    assert [(d["device"], d["reason"]) for d in doc["refused"]] == [("dev-old-1", "revoked")]
    assert doc["crl"][0]["revoked_serials"] == 1 and doc["unknown_count"] == 0

    # A CRL that revokes nobody we know: exit 0.
    empty = tmp_path / "empty.crl"
    cbtest.mkpki.write_crl(str(empty), cbtest.mkpki.make_crl(ca_old), der=True)
    rc, out, _ = what_if(g.conf_path, "crl:ca.old=%s" % empty)
    assert rc == 0 and "0 devices would be refused" in out, out
    # The old CA's CRL given for the new CA: not signed by it.
    rc, out, err = what_if(g.conf_path, "crl:new=%s" % crl)
    assert rc == 3 and "is not a CRL signed by a CA of" in err, err
    # Retired and revoked at once: retired wins (no CRL needed for it).
    rc, out, _ = what_if(g.conf_path, "retire old", "crl:old=%s" % crl)
    assert rc == 1 and "reason=retired-ca" in out and "reason=revoked" not in out, out


def write_state(path, lines):
    path.write_text("# certbridge device sightings v1: ca<TAB>device<TAB>first<TAB>last\n"
                    + "".join("%s\n" % l for l in lines))


@pytest.fixture
def site(pki, tmp_path):
    """A configuration with CAs old and new and a state file written by
    the test."""
    state = tmp_path / "devices.state"
    conf = tmp_path / "certbridge.ini"
    conf.write_text(cbtest.ini_text({
        "gateway": {"state_file": str(state)},
        "downstream": {"listen": "127.0.0.1:18883", "cert": pki("gateway-chain.pem"),
                       "key": pki("gateway.key")},
        "ca.old": {"file": pki("ca-old.pem")},
        "ca.new": {"file": pki("ca-new.pem")},
        "upstream": {"address": "127.0.0.1:18884", "ca": pki("cloud-root.pem")},
    }))
    return conf, state


@pytest.mark.parametrize("spec", ["retire old", "retire:old", " retire old ", "retire\told",
                                  "retire  ca.old", "remove old\n"])
def test_question_forms_and_blank_space(site, spec):
    """The forms the runbook gives, and the same with the blank space a
    paste or a tab adds, ask the same question."""
    conf, state = site
    now = int(time.time())
    write_state(state, ["old\tdev-a\t%d\t%d" % (now - 100, now - 10),
                        "old\tdev-b\t%d\t%d" % (now - 100, now - 20)])
    rc, out, err = what_if(conf, spec)
    assert rc == 1, (spec, out, err)
    assert "2 devices would be refused:" in out, out
    assert "dev-a" in out and "dev-b" in out, out


def test_remove_is_answered_as_the_gateway_would_refuse(site):
    """Removing the section refuses its devices as unknown-ca (retiring it,
    as retired-ca): the answer says which question it answers."""
    conf, state = site
    now = int(time.time())
    write_state(state, ["old\tdev-a\t%d\t%d" % (now - 100, now - 10)])
    rc, out, _ = what_if(conf, "remove old")
    assert rc == 1 and "what if ca.old were removed now" in out, out
    assert "reason=unknown-ca" in out and "retired-ca" not in out, out
    rc, out, _ = what_if(conf, "remove old", json_out=True)
    doc = json.loads(out)
    assert doc["remove"] == ["old"] and doc["retire"] == [], doc
    assert [d["reason"] for d in doc["refused"]] == ["unknown-ca"], doc
    rc, out, _ = what_if(conf, "retire old", json_out=True)
    doc = json.loads(out)
    assert doc["retire"] == ["old"] and doc["remove"] == [], doc
    assert [d["reason"] for d in doc["refused"]] == ["retired-ca"], doc


def test_moved_devices_are_not_refused(site):
    conf, state = site
    now = int(time.time())
    write_state(state, [
        "old\tdev-a\t%d\t%d" % (now - 90 * 86400, now - 3600),
        # seen with old, then with new: moved
        "old\tdev-b\t%d\t%d" % (now - 90 * 86400, now - 30 * 86400),
        "new\tdev-b\t%d\t%d" % (now - 29 * 86400, now - 60),
        "new\tdev-c\t%d\t%d" % (now - 10 * 86400, now - 10),
    ])
    rc, out, err = what_if(conf, "retire old", json_out=True)
    assert rc == 1, err
    doc = json.loads(out)
    assert [d["device"] for d in doc["refused"]] == ["dev-a"], doc
    assert [(d["device"], d["from"], d["ca"]) for d in doc["moved"]] == [("dev-b", "old", "new")]
    rc, out, _ = what_if(conf, "retire old")
    assert "1 device has moved to another CA since (not refused):" in out, out
    # Nobody of a CA that admitted no one: exit 0.
    write_state(state, ["new\tdev-c\t%d\t%d" % (now - 100, now - 10)])
    rc, out, _ = what_if(conf, "retire old")
    assert rc == 0 and "0 devices would be refused" in out, out


def test_hostile_identities_and_damaged_lines(site):
    """An identity is what a device chose: escaped in the file, shown
    without control bytes, valid JSON; damaged lines are counted on stderr
    and cost nothing else."""
    conf, state = site
    now = int(time.time())
    write_state(state, [
        "old\t%%3Cscript%%3E%%1B[2J%%22x\t%d\t%d" % (now - 100, now - 50),
        "old\tok-device\t%d\t%d" % (now - 100, now - 40),
        "old\tbad%%00nul\t%d\t%d" % (now - 100, now - 40),   # escaped NUL
        "old\tno-dates",
        "old\tback\t%d\t%d" % (now - 10, now - 100),          # last before first
        "\t\t\t",
    ])
    rc, out, err = what_if(conf, "retire old")
    assert rc == 1, (out, err)
    assert "2 devices would be refused" in out, out
    assert "\x1b" not in out and "<script>?[2J\"x" in out, repr(out)
    assert "4 damaged line(s)" in err, err
    rc, out, _ = what_if(conf, "retire old", json_out=True)
    doc = json.loads(out)
    # JSON names the byte as the logs do, and holds no control character.
    assert "<script>\\x1b[2J\"x" in [d["device"] for d in doc["refused"]], doc


@pytest.mark.parametrize("args,fragment", [
    (["--what-if", "retire nope"], "has no [ca.nope]; its device CAs are: old new"),
    (["--what-if", "frob old"], "expected \"retire NAME\""),
    (["--what-if"], "--what-if needs a value"),
    (["--what-if", "retire "], "expected \"retire NAME\""),
])
def test_questions_that_cannot_be_answered_exit_3(site, args, fragment):
    conf, state = site
    write_state(state, [])
    p = subprocess.run([str(TOOL), "-c", str(conf)] + args, capture_output=True, text=True,
                       timeout=t(60))
    assert p.returncode == 3, p
    assert fragment in p.stderr, p.stderr


def test_crl_for_devices_seen_before_serials_were_kept(site, pki, tmp_path):
    """Lines of an older state file carry no serial: such devices cannot
    be told, and are counted as such rather than called safe."""
    conf, state = site
    now = int(time.time())
    write_state(state, [
        "old\tdev-x\t%d\t%d" % (now - 100, now - 50),
        "old\tdev-y\t%d\t%d\t0A" % (now - 100, now - 40),
    ])
    crl = tmp_path / "old.crl"
    ca_old = cbtest.mkpki.load_pair(pki("ca-old"))
    cbtest.mkpki.write_crl(str(crl), cbtest.mkpki.make_crl(ca_old, revoked=[0x0A]))
    rc, out, _ = what_if(conf, "crl:old=%s" % crl)
    assert rc == 1, out
    assert re.search(r"^  dev-y\s+.*reason=revoked$", out, re.M), out
    assert "1 device of the CRL's CA cannot be told" in out, out


@pytest.mark.parametrize("spec,fragment", [
    ("crl:old", "expected \"crl:NAME=FILE\""),
    ("crl:=x.crl", "expected \"crl:NAME=FILE\""),
    ("crl:nope=x.crl", "has no [ca.nope]"),
    ("crl:old=/nonexistent.crl", "nonexistent.crl"),
])
def test_crl_questions_that_cannot_be_answered(site, spec, fragment):
    conf, state = site
    write_state(state, [])
    rc, out, err = what_if(conf, spec)
    assert rc == 3, (out, err)
    assert fragment in err, err


def test_no_state_file_set_or_written(site):
    conf, state = site
    rc, out, err = what_if(conf, "retire old")
    assert rc == 3 and "does not exist yet" in err, err
    text = conf.read_text().replace("state_file = %s" % state, "state_file =")
    conf.write_text(text)
    rc, out, err = what_if(conf, "retire old")
    assert rc == 3 and "state_file is not set" in err, err
