"""An ARM gateway's certbridge (make cross, docs/install.md "ARM gateways"),
run under qemu-user on this machine:

- the file is an ELF for the target that needs no shared library but the C
  library's (wolfSSL, libevent and inih are inside it);
- -V names the build, -t judges a configuration as on amd64;
- a CA that ends in 2049 reads as 2049 (armhf's time_t stops in 2038);
- a device session goes through it to a mosquitto on this machine: the
  device gets CONNACK 0 and the broker sees the gateway's upstream identity.
"""

import subprocess

import cbtest
from cbtest import PahoClient, mkpki, uid, wait_broker_client

MACHINE = {"arm64": "AArch64", "armhf": "ARM"}
# What the C library provides (the dynamic loader, libc itself).
LIBC = {"libc.so.6", "ld-linux-aarch64.so.1", "ld-linux-armhf.so.3"}


def readelf(*args):
    return subprocess.run(["readelf"] + list(args), capture_output=True, text=True,
                          check=True, timeout=cbtest.t(30)).stdout


def test_one_file_for_the_target(cross):
    for name in ("certbridge", "certbridge-certs", "certbridge-diag"):
        path = cross.binary(name)
        header = readelf("-h", path)
        assert "Machine:" in header and MACHINE[cross.arch] in header.split("Machine:")[1] \
            .splitlines()[0], header
        needed = {line.split("[")[1].rstrip("]") for line in readelf("-d", path).splitlines()
                  if "(NEEDED)" in line}
        assert needed and needed <= LIBC, (name, needed)


def test_version_and_check(cross, pki, broker, tmp_path):
    run = cross.wrapper(tmp_path)
    r = subprocess.run([run, "-V"], capture_output=True, text=True, timeout=cbtest.t(60))
    assert r.returncode == 0 and r.stdout.startswith("certbridge "), (r.stdout, r.stderr)
    g = cbtest.Gateway(pki, tmp_path, broker.port, binary=run)
    g.write_conf()
    r = subprocess.run([run, "-t", "-c", str(g.conf_path)], capture_output=True, text=True,
                       timeout=cbtest.t(120))
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "configuration OK" in r.stdout and "0 errors" in r.stdout, r.stdout


def test_dates_past_2038(cross, pki, broker, tmp_path):
    far = mkpki.make_ca("certbridge far CA", not_before="2026-01-01T00:00:00Z",
                        not_after="2049-12-31T23:59:59Z")
    mkpki.write_cert(str(tmp_path / "far.pem"), far.cert)
    g = cbtest.Gateway(pki, tmp_path, broker.port,
                       overrides={"ca.far": {"file": str(tmp_path / "far.pem")}})
    g.write_conf()
    r = subprocess.run([cross.wrapper(tmp_path), "-t", "-c", str(g.conf_path)],
                       capture_output=True, text=True, timeout=cbtest.t(120))
    assert r.returncode == 0 and "0 errors" in r.stdout, (r.stdout, r.stderr)
    r = subprocess.run([cross.wrapper(tmp_path, "certbridge-certs"), "--wide", "-c",
                        str(g.conf_path)], capture_output=True, text=True,
                       timeout=cbtest.t(120))
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith("device-ca") and " ca.far " in ln]
    assert len(rows) == 1 and "2049-12-31T23:59:59Z" in rows[0] and " ok " in rows[0], \
        r.stdout + r.stderr
    assert any(ln.startswith("2049-12-31") and "ca.far" in ln
               for ln in r.stdout.splitlines()), r.stdout


def test_device_session_through_it(cross, pki, broker, tmp_path):
    g = cbtest.Gateway(pki, tmp_path, broker.port, binary=cross.wrapper(tmp_path))
    g.start(timeout=120)
    try:
        cid = "arm-" + uid()
        bmark = broker.mark()
        with PahoClient(g.port, pki.device("dev-old-1"), "311", client_id=cid) as c:
            assert c.connect() == 0, (c.error, g.report())
        assert wait_broker_client(broker, cid, bmark, timeout=60) == "certbridge-gateway"
        ev = g.wait_event("device-admitted", timeout=30)
        assert ev.get("device") == "dev-old-1", ev["_line"]
    finally:
        assert g.stop() == 0, g.report()
