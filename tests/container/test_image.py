"""The container image, built for real by tools/container-build.sh (make
test-container; docs/install.md, "Container"): in a container of it, with a
configuration and its certificates mounted at /etc/certbridge, certbridge
passes -t, serves as uid 8883, and carries a device session to a broker
outside the container (buildah run with chroot isolation shares this
machine's network). Every process is ours, signalled by its PID."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from cbtest import free_port, parse_fields, t, uid

UID = 8883


def buildah(*args, check=True, timeout=120):
    r = subprocess.run(["buildah"] + list(args), capture_output=True, text=True,
                       timeout=t(timeout))
    if check:
        assert r.returncode == 0, "buildah %s: %s%s" % (" ".join(args), r.stdout, r.stderr)
    return r


@pytest.fixture
def container(image):
    ctr = buildah("from", "--pull-never", image).stdout.strip()
    yield ctr
    buildah("rm", ctr, check=False)


@pytest.fixture
def etc(pki, broker):
    """/etc/certbridge for the container: the gateway's certificates and a
    configuration naming them there, readable by uid 8883 (keys its own,
    0600). In a folder of its own under /tmp (pytest's are root's alone,
    0700), removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix="cb-container-"))
    yield from _fill_etc(d, pki, broker)
    shutil.rmtree(d, ignore_errors=True)


def _fill_etc(d, pki, broker):
    gw = free_port()
    files = {"gateway-chain.pem": "gateway-chain.pem", "gateway.key": "gateway.key",
             "ca-old.pem": "ca-old.pem", "ca-new.pem": "ca-new.pem",
             "cloud-root.pem": "cloud-root.pem",
             "gateway-upstream.pem": "gateway-upstream.pem",
             "gateway-upstream.key": "gateway-upstream.key"}
    for src, dst in files.items():
        shutil.copy(pki(src), d / dst)
        if dst.endswith(".key"):
            os.chown(d / dst, UID, UID)
            os.chmod(d / dst, 0o600)
        else:
            os.chmod(d / dst, 0o644)
    (d / "certbridge.ini").write_text("""[gateway]
admin_listen =
state_file =
shutdown_grace = 2s
[downstream]
listen = 127.0.0.1:%d
cert = gateway-chain.pem
key = gateway.key
[ca.old]
file = ca-old.pem
[ca.new]
file = ca-new.pem
[upstream]
address = 127.0.0.1:%d
sni = localhost
ca = cloud-root.pem
cert = gateway-upstream.pem
key = gateway-upstream.key
[mqtt]
identity = cn
clientid = keep
""" % (gw, broker.port))
    os.chmod(d / "certbridge.ini", 0o644)
    os.chmod(d, 0o755)
    yield d, gw


def run_in(ctr, etc_dir, *argv, timeout=60):
    return buildah("run", "--isolation", "chroot", "-v", "%s:/etc/certbridge:ro" % etc_dir,
                   ctr, "--", *argv, check=False, timeout=timeout)


def test_check_passes_in_the_container(container, etc):
    d, _ = etc
    r = run_in(container, d, "/usr/local/bin/certbridge", "-t", "-c",
               "/etc/certbridge/certbridge.ini")
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"configuration OK: \d+ certificates, 2 CAs", r.stdout), r.stdout


def test_help_points_at_docs_the_image_has(container, etc):
    d, _ = etc
    r = run_in(container, d, "/usr/local/bin/certbridge", "--help")
    assert r.returncode == 0, r.stderr
    m = re.search(r"^documentation: (\S+)$", r.stdout, re.M)
    assert m and m.group(1) == "/usr/local/share/doc/certbridge", r.stdout
    r = run_in(container, d, "ls", m.group(1))
    assert r.returncode == 0, r.stderr
    for name in ("install.md", "troubleshooting.md", "certbridge.ini.example",
                 "certbridge-alerts.yml"):
        assert name in r.stdout.split(), r.stdout


def _children(pid):
    """Every descendant of pid (from /proc), so that only processes this
    test started are ever signalled."""
    kids = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(p.name))
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _daemon_pid(runner_pid, conf):
    want = ["/usr/local/bin/certbridge", "-c", conf]
    for pid in _children(runner_pid):
        try:
            argv = Path("/proc/%d/cmdline" % pid).read_bytes().split(b"\0")[:-1]
        except OSError:
            continue
        if [a.decode() for a in argv] == want:
            return pid
    return None


def test_serves_as_8883_and_carries_a_device_to_the_broker(container, etc, pki, tmp_path):
    d, gw = etc
    conf = "/etc/certbridge/run-%s.ini" % uid()
    shutil.copy(d / "certbridge.ini", d / Path(conf).name)
    os.chmod(d / Path(conf).name, 0o644)
    log = tmp_path / "container.log"
    with open(log, "wb") as fh:
        runner = subprocess.Popen(
            ["buildah", "run", "--isolation", "chroot", "-v", "%s:/etc/certbridge:ro" % d,
             container, "--", "/usr/local/bin/certbridge", "-c", conf],
            stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT)
    daemon = None
    try:
        deadline = time.monotonic() + t(30)
        ready = None
        while time.monotonic() < deadline and ready is None:
            assert runner.poll() is None, log.read_text()
            m = re.search(r"^.*event=ready .*$", log.read_text(errors="replace"), re.M)
            ready = parse_fields(m.group(0)) if m else None
            time.sleep(0.1)
        assert ready, "no event=ready:\n" + log.read_text()
        assert ready["listen"] == "127.0.0.1:%d" % gw, ready
        daemon = _daemon_pid(runner.pid, conf)
        assert daemon, "the daemon is not among the processes buildah run started"
        status = Path("/proc/%d/status" % daemon).read_text()
        uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M).groups()
        gids = re.search(r"^Gid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M).groups()
        assert set(uids) == {str(UID)} and set(gids) == {str(UID)}, status
        # One device session through the container to the broker outside.
        dev = pki.device("dev-new-1")
        r = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(gw),
                            "--cafile", dev.cafile, "--cert", dev.cert, "--key", dev.key,
                            "-i", "ctr-%s" % uid(), "-t", "container/test", "-m", "hello",
                            "-q", "1"], capture_output=True, text=True, timeout=t(30))
        assert r.returncode == 0, r
        text = log.read_text()
        assert re.search(r"event=device-admitted .*device=dev-new-1 ca=new", text), text
        assert re.search(r"event=mqtt-connack .*code=0x00", text), text
        # SIGTERM to the daemon itself (buildah run would kill its child).
        os.kill(daemon, signal.SIGTERM)
        assert runner.wait(timeout=t(30)) == 0, log.read_text()
        assert "event=stopped" in log.read_text()
    finally:
        if runner.poll() is None:
            if daemon is not None:
                try:
                    os.kill(daemon, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            runner.kill()
            runner.wait()
