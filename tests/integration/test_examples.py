"""The configuration files shipped in conf/ pass `certbridge -t`.

conf/lab.ini names the lab PKI under build/lab (relative to conf/);
conf/certbridge.ini names /etc/certbridge. Both are checked in a copy whose
certificate paths point at this run's PKI, with everything else unchanged, so
a key renamed in the code or a value that no longer parses fails here.
"""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _check(binary, path):
    r = subprocess.run([binary, "-t", "-c", str(path)], capture_output=True,
                       text=True, timeout=30)
    return r.returncode, r.stderr


# The files conf/certbridge.ini names, and the lab files that stand in.
PRODUCTION_FILES = {
    "/etc/certbridge/gateway-chain.pem": "gateway-chain.pem",
    "/etc/certbridge/gateway.key": "gateway.key",
    "/etc/certbridge/ca/device-ca-2019.pem": "ca-old.pem",
    "/etc/certbridge/ca/device-ca-2026.pem": "ca-new.pem",
    "/etc/certbridge/upstream.pem": "gateway-upstream.pem",
    "/etc/certbridge/upstream.key": "gateway-upstream.key",
}


# The state file's folder must exist and be writable (docs/configuration.md,
# "Configuration that would weaken trust"); the production one,
# /var/lib/certbridge, is made by the package or systemd's StateDirectory,
# not on a test machine.
PRODUCTION_STATE = "/var/lib/certbridge/devices.state"


def _production_example(pki, tmp_path):
    text = open(ROOT / "conf/certbridge.ini").read()
    for old, new in PRODUCTION_FILES.items():
        text = text.replace(old, pki(new))
    assert "state_file = %s" % PRODUCTION_STATE in text
    return text.replace(PRODUCTION_STATE, str(tmp_path / "devices.state"))


def test_lab_ini_passes(certbridge_bin, pki, tmp_path):
    text = open(ROOT / "conf/lab.ini").read()
    text = re.sub(r"\.\./build/lab/([A-Za-z0-9_.-]+)",
                  lambda m: pki(m.group(1)), text)
    text = text.replace(pki("devices.state"), str(tmp_path / "devices.state"))
    conf = tmp_path / "lab.ini"
    conf.write_text(text)
    rc, err = _check(certbridge_bin, conf)
    assert rc == 0, err
    assert "error" not in err.lower()


def test_production_example_passes(certbridge_bin, pki, tmp_path):
    text = _production_example(pki, tmp_path)
    assert "/etc/certbridge/" not in re.sub(r"(?m)^\s*;.*$", "", text), \
        "conf/certbridge.ini names a file this test does not map"
    conf = tmp_path / "certbridge.ini"
    conf.write_text(text)
    rc, err = _check(certbridge_bin, conf)
    assert rc == 0, err


@pytest.mark.parametrize("key,value,needle", [
    ("handshake_timeout", "10", "missing unit"),
    ("client_auth", "yes", "expected one of"),
])
def test_production_example_reports_broken_values(certbridge_bin, pki,
                                                  tmp_path, key, value,
                                                  needle):
    text = _production_example(pki, tmp_path)
    lines = text.splitlines()
    idx = next(i for i, l in enumerate(lines)
               if re.match(r"%s\s*=" % re.escape(key), l))
    lines[idx] = "%s = %s" % (key, value)
    conf = tmp_path / "broken.ini"
    conf.write_text("\n".join(lines) + "\n")
    rc, err = _check(certbridge_bin, conf)
    assert rc == 1
    assert "%s:%d: " % (conf, idx + 1) in err, err
    assert "] %s: " % key in err and needle in err, err
