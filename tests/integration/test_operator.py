"""The operator's first hour (docs/install.md): --help and --version, the
one event=ready line, and systemd's notification protocol (READY=1,
RELOADING=1, STOPPING=1, WATCHDOG=1) spoken to a socket of the test's own.
"""
import re
import signal
import socket
import subprocess
import time

import pytest

from cbtest import free_port, t, uid
from rawmqtt import mqtt_device


def run(binary, *args):
    return subprocess.run([binary] + list(args), capture_output=True, text=True,
                          timeout=t(10))


# ---------------------------------------------------------------- --help, --version


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_options_signals_exit_codes_and_docs(certbridge_bin, flag):
    r = run(certbridge_bin, flag)
    assert r.returncode == 0, r
    out = r.stdout
    for opt in ("-c", "-t", "-V", "--version", "--help"):
        assert re.search(r"(^|\s)%s\b" % re.escape(opt), out), (opt, out)
    for sig in ("SIGHUP", "SIGTERM"):
        assert sig in out, out
    for code in ("1", "2", "3"):
        assert re.search(r"^\s+%s\s+\S" % code, out, re.M), (code, out)
    assert re.search(r"reload", out), out
    m = re.search(r"^documentation: (\S+)$", out, re.M)
    assert m and m.group(1).startswith("/") and m.group(1).endswith("/doc/certbridge"), out


def test_version_includes_the_short_line(certbridge_bin):
    short = run(certbridge_bin, "-V")
    long = run(certbridge_bin, "--version")
    assert short.returncode == 0 and long.returncode == 0, (short, long)
    assert re.fullmatch(r"certbridge \d+\.\d+\.\d+\n", short.stdout), short.stdout
    assert long.stdout.startswith(short.stdout), (short.stdout, long.stdout)
    assert re.search(r"^wolfSSL \d", long.stdout, re.M), long.stdout
    assert re.search(r"^libevent \d", long.stdout, re.M), long.stdout


@pytest.mark.parametrize("args", [["--bogus"], ["--config"], ["-c", "a.ini", "extra"], [],
                                  # every option is read before any acts
                                  ["--version", "--bogus"], ["-V", "extra"],
                                  ["-h", "--bogus"], ["-c", "a.ini", "-c", "b.ini"]])
def test_usage_errors_exit_2(certbridge_bin, args):
    r = run(certbridge_bin, *args)
    assert r.returncode == 2, r
    assert "usage: certbridge" in r.stderr and r.stdout == "", r


# ---------------------------------------------------------------- event=ready


def test_one_ready_line_before_any_device(broker, make_gateway, pki):
    g = make_gateway(broker.port, admin=True)
    ready = g.wait_event("ready")
    assert ready.get("listen") == "127.0.0.1:%d" % g.port, ready["_line"]
    assert ready.get("cas") == "old,new", ready["_line"]
    assert ready.get("upstream") == "127.0.0.1:%d" % broker.port, ready["_line"]
    assert ready.get("admin") == "127.0.0.1:%d" % g.admin_port, ready["_line"]
    assert ready.get("generation") == "1", ready["_line"]
    ss = mqtt_device(g.port, pki.device("dev-new-1"))
    ss.close()
    g.wait_event("device-admitted")
    mark = g.mark()
    g.reload()
    g.wait_event("reloaded", since=mark)
    # Exactly one, and before the first admission.
    lines = [f.get("event") for f in g.events()]
    assert lines.count("ready") == 1, g.report()
    assert lines.index("ready") < lines.index("device-admitted"), g.report()


@pytest.mark.parametrize("level", ["warn", "error"])
def test_ready_line_at_every_log_level(broker, make_gateway, level):
    """The one line an operator waits for is written however quiet the log
    is set; nothing else at info level is."""
    g = make_gateway(broker.port, {"gateway": {"log_level": level}})
    ready = g.wait_event("ready")
    assert ready.get("generation") == "1", ready["_line"]
    assert [f.get("event") for f in g.events()].count("ready") == 1, g.report()
    assert not [f for f in g.events() if f.get("level") in ("info", "debug")
                and f.get("event") != "ready"], g.report()


def test_ready_names_plain_listeners_apart(broker, make_gateway):
    plain = free_port()
    g = make_gateway(broker.port, {"downstream": {"plain_listen": "127.0.0.1:%d" % plain}})
    ready = g.wait_event("ready")
    assert ready.get("listen") == "127.0.0.1:%d" % g.port, ready["_line"]
    assert ready.get("plain_listen") == "127.0.0.1:%d" % plain, ready["_line"]
    assert ready.get("admin") == "off", ready["_line"]


# ---------------------------------------------------------------- systemd


class NotifySocket:
    """The receiving end of $NOTIFY_SOCKET, as systemd holds it."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.1)
        self.got = []

    def drain(self):
        while True:
            try:
                self.got.append(self.sock.recv(4096).decode())
            except socket.timeout:
                return self.got

    def wait_for(self, pred, start=0, timeout=5.0):
        """The index of the first notification from got[start] on that
        pred accepts."""
        deadline = time.monotonic() + t(timeout)
        while time.monotonic() < deadline:
            self.drain()
            for i in range(start, len(self.got)):
                if pred(self.got[i]):
                    return i
        raise AssertionError("no such notification; got %r" % self.got)

    def close(self):
        self.sock.close()


def fields(msg):
    return dict(line.split("=", 1) for line in msg.split("\n") if "=" in line)


@pytest.mark.parametrize("abstract", [False, True])
def test_systemd_ready_reload_stop_and_watchdog(broker, make_gateway, tmp_path, abstract):
    if abstract:
        name = "@certbridge-test-%s" % uid()
        ns = NotifySocket("\0" + name[1:])
    else:
        name = str(tmp_path / "notify.sock")
        ns = NotifySocket(name)
    try:
        g = make_gateway(broker.port, env={"NOTIFY_SOCKET": name,
                                           "WATCHDOG_USEC": "200000"})
        ready_at = ns.wait_for(lambda m: fields(m).get("READY") == "1")
        # READY=1 comes with the ready line, when everything is bound.
        g.wait_event("ready")
        assert "STATUS" in fields(ns.got[ready_at]), ns.got
        # Pings every 100 ms from the event loop.
        n0 = sum(1 for m in ns.drain() if m == "WATCHDOG=1")
        time.sleep(t(1.0))
        pings = sum(1 for m in ns.drain() if m == "WATCHDOG=1") - n0
        assert pings >= 4, ns.got
        # A reload: RELOADING=1 (with the monotonic time systemd asks for),
        # then READY=1 again.
        before = len(ns.got)
        g.reload()
        rel = ns.wait_for(lambda m: fields(m).get("RELOADING") == "1", start=before)
        assert int(fields(ns.got[rel])["MONOTONIC_USEC"]) > 0, ns.got
        ns.wait_for(lambda m: fields(m).get("READY") == "1", start=rel + 1)
        # A reload that fails still serves: READY=1 again too.
        g.conf_path.write_text("[downstream\n")
        before = len(ns.got)
        mark = g.mark()
        g.reload()
        g.wait_event("reload-failed", since=mark)
        ns.wait_for(lambda m: fields(m).get("READY") == "1", start=before)
        # Stopping.
        g.proc.send_signal(signal.SIGTERM)
        ns.wait_for(lambda m: fields(m).get("STOPPING") == "1", start=before)
        assert g.proc.wait(timeout=t(10)) == 0
    finally:
        ns.close()


def test_watchdog_of_another_process_is_not_pinged(broker, make_gateway, tmp_path):
    name = str(tmp_path / "notify.sock")
    ns = NotifySocket(name)
    try:
        make_gateway(broker.port, env={"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "100000",
                                       "WATCHDOG_PID": "1"})
        ns.wait_for(lambda m: fields(m).get("READY") == "1")
        time.sleep(t(0.5))
        assert "WATCHDOG=1" not in ns.drain(), ns.got
    finally:
        ns.close()


def test_no_notify_socket_no_notifications(broker, make_gateway, tmp_path):
    """Without NOTIFY_SOCKET nothing is sent, and a socket that cannot be
    reached is said once and costs nothing else."""
    g = make_gateway(broker.port, env={"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")})
    ev = g.wait_event("notify-failed")
    assert "nobody.sock" in ev["_line"], ev["_line"]
    g.wait_event("ready")
