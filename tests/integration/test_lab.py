"""`make run`'s lab (tools/lab.sh) on ports of the test's choosing: it
serves (one event=ready line with those ports), carries a device to its
broker, stops both on Ctrl-C, and a port already taken is refused with
the way out (`make run PORT=...`)."""
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from cbtest import free_port, parse_fields, t, uid

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "build" / "lab"


def lab_env(certbridge_bin, gw, admin, broker):
    env = dict(os.environ)
    env.update({"CERTBRIDGE": certbridge_bin, "PORT": str(gw), "ADMIN_PORT": str(admin),
                "BROKER_PORT": str(broker)})
    return env


def wait_text(path, pattern, proc, timeout=30.0):
    deadline = time.monotonic() + t(timeout)
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        m = re.search(pattern, text, re.M)
        if m:
            return m
        assert proc.poll() is None, "the lab exited (%s):\n%s" % (proc.returncode, text[-3000:])
        time.sleep(0.1)
    raise AssertionError("no %r in the lab's output:\n%s" % (pattern, text[-3000:]))


def test_lab_on_other_ports_serves_a_device_and_stops(certbridge_bin, tmp_path):
    gw, admin, broker = free_port(), free_port(), free_port()
    out = tmp_path / "lab.out"
    with open(out, "wb") as fh:
        # Its own session: Ctrl-C goes to the lab's process group (the
        # script and certbridge), as in a terminal.
        proc = subprocess.Popen([str(ROOT / "tools" / "lab.sh")], stdin=subprocess.DEVNULL,
                                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                env=lab_env(certbridge_bin, gw, admin, broker))
    try:
        m = wait_text(out, r"^.*event=ready .*$", proc)
        ready = parse_fields(m.group(0))
        assert ready["listen"] == "127.0.0.1:%d" % gw, m.group(0)
        assert ready["admin"] == "127.0.0.1:%d" % admin, m.group(0)
        assert ready["upstream"] == "127.0.0.1:%d" % broker, m.group(0)
        mq_pid = int(wait_text(out, r"mosquitto on 127\.0\.0\.1:%d, pid (\d+)" % broker,
                               proc).group(1))
        # A device of the old CA, as the banner shows it.
        topic = "lab/test-%s" % uid()
        r = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(gw),
                            "--cafile", str(LAB / "ca-old.pem"), "--cert", str(LAB / "dev-old-1.pem"),
                            "--key", str(LAB / "dev-old-1.key"), "-t", topic, "-m", "hi", "-q", "1"],
                           capture_output=True, text=True, timeout=t(30))
        assert r.returncode == 0, r
        wait_text(out, r"event=device-admitted .*device=dev-old-1", proc)
        assert "run.ini" in out.read_text(), "other ports need the lab's own copy of lab.ini"
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=t(30)) in (0, 130), out.read_text()[-3000:]
        deadline = time.monotonic() + t(10)
        while time.monotonic() < deadline:
            try:
                os.kill(mq_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the lab's mosquitto (pid %d) still runs" % mq_pid)
        for p in (gw, admin, broker):
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", p)) != 0, "port %d still open" % p
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_lab_port_taken_says_how_to_choose_others(certbridge_bin):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([str(ROOT / "tools" / "lab.sh")], capture_output=True, text=True,
                           timeout=t(30),
                           env=lab_env(certbridge_bin, port, free_port(), free_port()))
    assert r.returncode == 1, r
    assert "port %d on 127.0.0.1 is already in use" % port in r.stderr, r.stderr
    assert re.search(r"make run PORT=\d+ ADMIN_PORT=\d+ BROKER_PORT=\d+", r.stderr), r.stderr


def test_readme_says_how_long_tests_take_and_how_to_move_the_lab():
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"`make test` takes about \d+ minutes", readme), "no make test duration"
    assert "`make test-quick`" in readme and re.search(r"^test-quick:", makefile, re.M)
    assert re.search(r"make run PORT=\d+ ADMIN_PORT=\d+", readme)
    assert 'PORT="$(PORT)" ADMIN_PORT="$(ADMIN_PORT)"' in makefile
