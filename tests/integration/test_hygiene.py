"""Operational hygiene of the daemon (docs/architecture.md "Logs";
docs/install.md "The command line"; process rules; docs/troubleshooting.md,
docs/configuration.md):

- log_format = json: one JSON object per line with the same fields and
  values as the text format; log_level filters what it should;
- no log line longer than 4 KiB, no raw network bytes in the log, and a
  line that had to be cut says so (truncated=1);
- [gateway] user drops privileges (all four uids and gids) after the keys
  are loaded; an unknown user is exit code 3 naming it;
- a private key others (or the group) can read is a warning of -t and a
  config-warning event of the daemon;
- 2,000 connections of every kind (full sessions, TLS without CONNECT,
  bare TCP, refused certificates, garbage) leave no descriptor behind;
- /healthz answers 503 while SIGTERM drains the sessions.

Every wait is bounded; every process is ours and stopped by its PID.
"""

import concurrent.futures
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

import cbtest
from cbtest import admin_request, fd_count, line_of, t, uid, wait_until
from rawmqtt import (CLOSED_ERRORS, DISCONNECT, connect_packet_fields, device_context,
                     mqtt_device, publish_packet, read_connack, tls_device,
                     wait_closed)

DEVICE = "dev-old-1"
LEVELS = ("error", "warn", "info", "debug")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

# A text line, strictly: key=value fields separated by one space, values
# bare (no space, quote, '=' or backslash) or double-quoted with escapes.
_TEXT_FIELD = r'[A-Za-z_][A-Za-z0-9_.\-]*=(?:"(?:[^"\\]|\\.)*"|[^\s"=\\]*)'
TEXT_LINE = re.compile(r"^%s(?: %s)*$" % (_TEXT_FIELD, _TEXT_FIELD))


class DaemonBug(AssertionError):
    """A failure of the daemon's own promise (as opposed to a broken test
    setup), raised with what the daemon actually produced."""


# ---------------------------------------------------------------- helpers


def log_lines(g):
    """The gateway log as a list of raw lines (bytes, without newline);
    checks that the last line is complete."""
    data = g.log_path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), "log does not end with a newline"
    return data.split(b"\n")[:-1] if data else []


def run_device_story(g, pki, client_id):
    """One old-CA device session (CONNECT, a PUBLISH, DISCONNECT) and one
    refused device (unknown CA); waits until both are in the log."""
    mark = g.mark()
    ss = mqtt_device(g.port, pki.device(DEVICE), client_id=client_id)
    try:
        peer = "127.0.0.1:%d" % ss.getsockname()[1]
        ss.sendall(publish_packet("cbtest/hygiene/%s" % uid(), b"hello"))
        ss.sendall(DISCONNECT)
        assert wait_closed(ss, timeout=10.0) == b""
    finally:
        ss.close()
    _, err = cbtest.tls_probe(g.port, pki.device("dev-unknown"))
    assert err is not None
    g.wait_event("session-closed", since=mark, peer=peer)
    g.wait_event("handshake-failed", since=mark, side="downstream", reason="unknown-ca")
    return peer


# ---------------------------------------------------------------- 1. JSON and levels


def test_json_format_same_fields_as_text(broker, make_gateway, pki):
    cid = "hyg-%s" % uid()
    runs = {}
    for fmt in ("text", "json"):
        g = make_gateway(broker.port, {"gateway": {"log_format": fmt}})
        peer = run_device_story(g, pki, cid)
        runs[fmt] = (g, peer)
    gj = runs["json"][0]
    # Every line of the JSON log is one object with ts, level, event.
    for raw in log_lines(gj):
        obj = json.loads(raw)
        assert isinstance(obj, dict), raw
        assert TS.match(obj.get("ts", "")), raw
        assert obj.get("level") in LEVELS, raw
        assert isinstance(obj.get("event"), str) and obj["event"], raw
    # Every line of the text log is strict key=value.
    for raw in log_lines(runs["text"][0]):
        assert TEXT_LINE.match(raw.decode("ascii")), raw

    def story(fmt):
        g, peer = runs[fmt]
        return {ev: g.events(ev, peer=peer) for ev in
                ("device-admitted", "mqtt-connect", "mqtt-connack", "session-closed")}

    text, js = story("text"), story("json")
    varying = {"ts", "peer", "duration_ms", "ms", "_line"}
    for ev in text:
        assert len(text[ev]) == len(js[ev]) == 1, (ev, text[ev], js[ev])
        a, b = text[ev][0], js[ev][0]
        assert set(a) == set(b), (ev, sorted(a), sorted(b))
        assert {k: v for k, v in a.items() if k not in varying} == \
            {k: v for k, v in b.items() if k not in varying}, (ev, a["_line"], b["_line"])
    assert text["mqtt-connect"][0]["clientid"] == cid
    # The refusal too: same fields (its peer port differs).
    ra = runs["text"][0].events("handshake-failed", side="downstream")
    rb = gj.events("handshake-failed", side="downstream")
    assert len(ra) == len(rb) == 1
    assert set(ra[0]) == set(rb[0])
    assert ra[0]["detail"] == rb[0]["detail"] and ra[0]["reason"] == rb[0]["reason"]
    # The same events, with the same keys, across both whole logs.
    def shapes(g):
        out = {}
        for f in g.events():
            out.setdefault(f["event"], set()).add(frozenset(k for k in f if k != "_line"))
        return out

    assert shapes(runs["text"][0]) == shapes(gj)


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("level", ["warn", "info", "debug"])
def test_log_level(broker, make_gateway, pki, level, fmt):
    g = make_gateway(broker.port, {"gateway": {"log_level": level, "log_format": fmt}})
    if level != "warn":
        run_device_story(g, pki, "lvl-%s" % uid())
    else:
        # Only the refusal (warn) reaches the log: wait for it, not for
        # the session's info lines.
        mark = g.mark()
        with mqtt_device(g.port, pki.device(DEVICE)) as ss:
            ss.sendall(DISCONNECT)
            wait_closed(ss)
        _, err = cbtest.tls_probe(g.port, pki.device("dev-unknown"))
        assert err is not None
        g.wait_event("handshake-failed", since=mark, reason="unknown-ca")
    evs = g.events()
    assert evs and len(evs) == len(log_lines(g)), "unparsed lines\n" + g.report()
    allowed = LEVELS[:LEVELS.index(level) + 1]
    # The one exception: event=ready is written at every level
    # (docs/install.md), once, at info.
    bad = [e["_line"] for e in evs if e.get("level") not in allowed
           and not (e.get("event") == "ready" and e.get("level") == "info")]
    assert not bad, bad[:5]
    assert [e["event"] for e in evs].count("ready") == 1, g.report()
    names = {e["event"] for e in evs}
    if level == "debug":
        assert "state" in names, sorted(names)
        assert any(e["level"] == "debug" for e in evs)
    else:
        assert "state" not in names
    if level == "warn":
        assert "device-admitted" not in names and "session-closed" not in names, sorted(names)
    else:
        assert {"device-admitted", "mqtt-connect", "session-closed"} <= names, sorted(names)


# ---------------------------------------------------------------- 2. line length, raw bytes


def hostile_client_id(n):
    """n bytes: newline, quotes, backslashes and non-ASCII first, then
    every byte 0x01..0x7f over and over. Valid UTF-8 (certbridge refuses a
    CONNECT whose client id is not, [MQTT-1.5.4-1], before logging it)."""
    head = b'nl\nquote"back\\slash \xc3\xa9 \xe2\x82\xac tab\t\x7f end '
    body = bytes((i % 0x7f) + 1 for i in range(n - len(head)))
    cid = head + body
    assert len(cid) == n and 0 not in cid
    return cid


def json_char_at(b, i):
    """The UTF-8 character that starts at b[i] (strict: no overlong form,
    no surrogate), as (its text, its length), or None."""
    for n in (2, 3, 4):
        try:
            ch = b[i:i + n].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if len(ch) == 1:
            return ch, n
    return None


def escape_value(b, fmt):
    """A value escaped as log.c does (bytes), and the list of cut points
    that end on an escape boundary. JSON: a UTF-8 character as its \\u
    escape (a surrogate pair past U+FFFF), a byte that is not UTF-8 as the
    text \\xNN, so a parser reads the name the device sent."""
    out, cuts = bytearray(), [0]
    i = 0
    while i < len(b):
        c = b[i]
        got = json_char_at(b, i) if fmt == "json" and c >= 0x80 else None
        if c in (0x22, 0x5C):
            out += b"\\" + bytes([c])
        elif 0x20 <= c < 0x7F:
            out.append(c)
        elif got is not None:
            units = got[0].encode("utf-16-be")
            for k in range(0, len(units), 2):
                out += b"\\u%04x" % int.from_bytes(units[k:k + 2], "big")
            i += got[1] - 1
        elif fmt == "json" and c >= 0x80:
            out += b"\\\\x%02x" % c
        elif fmt == "json":
            out += b"\\u%04x" % c
        else:
            out += b"\\x%02x" % c
        cuts.append(len(out))
        i += 1
    return bytes(out), cuts


TRUNCATED = {"text": b" truncated=1", "json": b',"truncated":1}'}
ESCAPES = {"text": (b"\\x0a", b"\\x09", b"\\x7f", b"\\xc3\\xa9", b"\\xe2\\x82\\xac"),
           "json": (b"\\u000a", b"\\u0009", b"\\u007f", b"\\u00e9", b"\\u20ac")}


def send_hostile_connect(g, pki, cid):
    """A raw TLS device whose CONNECT carries cid; returns its peer
    address (the broker's answer does not matter here)."""
    ss = tls_device(g.port, pki.device(DEVICE))
    try:
        peer = "127.0.0.1:%d" % ss.getsockname()[1]
        ss.sendall(connect_packet_fields(cid))
        read_connack(ss, timeout=20.0)  # whatever the broker said, or a close
    finally:
        ss.close()
    return peer


def connect_line(g, peer, timeout=10.0):
    """The raw mqtt-connect line of that peer (found by bytes: a cut JSON
    line may not parse)."""
    want = b"mqtt-connect"
    tag = peer.encode()

    def find():
        found = [l for l in log_lines(g) if want in l
                 and (b"peer=" + tag + b" " in l or b'"peer":"' + tag + b'"' in l)]
        return found or None

    found = wait_until("mqtt-connect line of %s" % peer, find, timeout=timeout)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_log_lines_bounded_and_escaped(broker, make_gateway, pki, fmt):
    g = make_gateway(broker.port, {"gateway": {"log_format": fmt}})
    for n in (3500, 10000):
        cid = hostile_client_id(n)
        peer = send_hostile_connect(g, pki, cid)
        line = connect_line(g, peer)
        assert len(line) + 1 <= 4096, "%d bytes with the newline" % (len(line) + 1)
        raw = [b for b in line if b < 0x20 or b >= 0x7F]
        assert not raw, "raw bytes %r in %r" % (bytes(raw[:10]), line[:300])
        for esc in ESCAPES[fmt] + (b'\\"', b"\\\\"):
            assert esc in line, (esc, line[:400])
        # The client id is the escaped bytes, whole, or cut on an escape
        # boundary in a line that ends with truncated=1.
        start = line.index(b'clientid="') + len(b'clientid="') if fmt == "text" \
            else line.index(b'"clientid":"') + len(b'"clientid":"')
        esc, cuts = escape_value(cid, fmt)
        if line.endswith(TRUNCATED[fmt]):
            shown = line[start:-len(TRUNCATED[fmt])]
            if shown.endswith(b'"'):
                shown = shown[:-1]
            assert esc.startswith(shown) and len(shown) in cuts, shown[-40:]
            assert len(shown) < len(esc)
        else:
            assert n != 10000, "a 10,000-byte client id fitted in 4 KiB?"
            assert line[start:start + len(esc) + 1] == esc + b'"', line[-200:]
    # No line of the whole log breaks the rules; the gateway still serves.
    for l in log_lines(g):
        assert len(l) + 1 <= 4096 and all(0x20 <= b < 0x7F for b in l), l[:200]
    assert g.running()
    with mqtt_device(g.port, pki.device(DEVICE)) as ss:
        ss.sendall(DISCONNECT)
        assert wait_closed(ss) == b""


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_truncated_line_still_parses(broker, make_gateway, pki, fmt):
    """log.c promises a cut line "stays parseable": a JSON line is still
    one object with truncated=1, a text line still key=value fields
    ending with truncated=1."""
    g = make_gateway(broker.port, {"gateway": {"log_format": fmt}})
    peer = send_hostile_connect(g, pki, hostile_client_id(10000))
    line = connect_line(g, peer)
    assert line.endswith(TRUNCATED[fmt]), line[-100:]
    if fmt == "json":
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise DaemonBug("truncated JSON line does not parse: %s: ...%r"
                            % (e, line[-80:])) from None
        assert obj["event"] == "mqtt-connect" and obj["truncated"] == 1, obj
        assert obj["peer"] == peer
    else:
        if not TEXT_LINE.match(line.decode("ascii")):
            raise DaemonBug("truncated text line is not key=value fields: ...%r"
                            % line[-80:])
        f = cbtest.parse_fields(line.decode("ascii"))
        assert f["truncated"] == "1" and f["peer"] == peer, f


# ---------------------------------------------------------------- 3. privileges


def _ids(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "Groups"):
                out[k] = v.split()
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
def test_user_drops_privileges(broker, pki):
    import pwd
    nobody = pwd.getpwnam("nobody")
    # The files must be readable by nobody, or the load refuses to start
    # (the reload after the drop would fail: docs/configuration.md,
    # "Configuration that would weaken trust"; test_config_trust.py).
    tree = cbtest.UserTree(pki, "nobody")
    g = cbtest.Gateway(pki, tree.gateway_dir(), broker.port, overrides=tree.overrides())
    try:
        g.start()
        g.wait_event("privileges", msg=re.compile(r"nobody"))
        ids = _ids(g.pid)
        assert ids["Uid"] == [str(nobody.pw_uid)] * 4, ids
        assert ids["Gid"] == [str(nobody.pw_gid)] * 4, ids
        assert nobody.pw_uid == 65534 and nobody.pw_gid == 65534
        assert ids.get("Groups", []) == [], ids
        # Keys are 0600 (nobody's here): devices connect.
        assert os.stat(tree("gateway.key")).st_mode & 0o077 == 0
        with mqtt_device(g.port, pki.device(DEVICE)) as ss:
            ss.sendall(publish_packet("cbtest/nobody", b"x"))
            ss.sendall(DISCONNECT)
            assert wait_closed(ss) == b""
        with mqtt_device(g.port, pki.device("dev-new-1")) as ss:
            ss.sendall(DISCONNECT)
            assert wait_closed(ss) == b""
    finally:
        rc = g.stop()
        tree.remove()
    assert rc == 0, "certbridge exited with %s on SIGTERM\n%s" % (rc, g.report())


def test_user_unknown_is_exit_3(broker, pki, tmp_path):
    name = "cbnouser%s" % uid()[:6]
    g = cbtest.Gateway(pki, tmp_path / "gw", broker.port, overrides={"gateway": {"user": name}})
    g.write_conf()
    r = subprocess.run(g.argv(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=t(30))
    assert r.returncode == 3, (r.returncode, r.stderr)
    lines = [l for l in r.stderr.splitlines() if name in l]
    assert lines, r.stderr
    f = cbtest.parse_fields(lines[0])
    assert f.get("level") == "error", lines[0]


# ---------------------------------------------------------------- 4. key permissions


KEY_WARNING = re.compile(r"can be read by (others|its group) \(mode (0\d{3})\)")


@pytest.mark.parametrize("mode,who", [(0o644, "others"), (0o640, "its group"), (0o600, None)])
def test_private_key_mode_warning(broker, make_gateway, pki, tmp_path, mode, who):
    key = tmp_path / "gateway.key"
    shutil.copy(pki("gateway.key"), key)
    os.chmod(key, mode)
    over = {"downstream": {"key": str(key)}}
    conf = cbtest.Gateway(pki, tmp_path / "check", broker.port, overrides=over)
    conf.write_conf()
    r = subprocess.run([conf.binary, "-t", "-c", str(conf.conf_path)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=t(30))
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    out = (r.stdout + r.stderr).splitlines()
    warned = [l for l in out if "private key" in l]
    g = make_gateway(broker.port, over)
    if who is None:
        assert not warned, warned
        assert not [e for e in g.events("config-warning")
                    if "private key" in e.get("problem", "")], g.report()
        return
    line = line_of(conf.conf_path, "downstream", "key")
    prefix = "%s:%d: [downstream] key: warning: the private key " % (conf.conf_path, line)
    assert len(warned) == 1 and warned[0].startswith(prefix), out
    m = KEY_WARNING.search(warned[0])
    assert m and m.groups() == (who, "%04o" % mode), warned[0]
    assert str(key) in warned[0]
    # The daemon says the same at startup, and runs.
    ev = g.wait_event("config-warning", problem=re.compile(r"private key"))
    assert ev.get("level") == "warn", ev["_line"]
    assert ev["problem"].startswith("%s:%d: [downstream] key: warning: "
                                    % (g.conf_path, line_of(g.conf_path, "downstream", "key")))
    assert KEY_WARNING.search(ev["problem"]).groups() == (who, "%04o" % mode)
    with mqtt_device(g.port, pki.device(DEVICE)) as ss:
        ss.sendall(DISCONNECT)
        assert wait_closed(ss) == b""


# ---------------------------------------------------------------- 5. descriptors


FD_CYCLES = 2000
FD_THREADS = 16
MODES = ("full", "tls-only", "tcp", "unknown-ca", "garbage")


def _fd_cycle(port, pki, i):
    mode = MODES[i % len(MODES)]
    if mode == "full":
        ss = mqtt_device(port, pki.device(DEVICE), client_id="fd-%d-%s" % (i, uid()))
        try:
            ss.sendall(DISCONNECT)
            wait_closed(ss, timeout=10.0)
        finally:
            ss.close()
    elif mode == "tls-only":
        tls_device(port, pki.device(DEVICE)).close()
    elif mode == "tcp":
        socket.create_connection(("127.0.0.1", port), timeout=t(10)).close()
    elif mode == "unknown-ca":
        s = socket.create_connection(("127.0.0.1", port), timeout=t(10))
        try:
            ss = device_context(pki.device("dev-unknown")).wrap_socket(
                s, server_hostname="localhost")
            try:
                # TLS 1.3: the refusal arrives after the client's
                # handshake is done; read it (or the close).
                ss.settimeout(t(10))
                ss.recv(1)
            except (ssl.SSLError, *CLOSED_ERRORS):
                pass
            finally:
                ss.close()
        except (ssl.SSLError, *CLOSED_ERRORS):
            pass
        finally:
            s.close()
    else:
        with socket.create_connection(("127.0.0.1", port), timeout=t(10)) as s:
            s.sendall(b"\x01\x02garbage \xff\xfe" * 8)
            try:
                wait_closed(s, timeout=10.0)
            except CLOSED_ERRORS:
                pass
    return mode


def test_no_descriptor_leak(broker, make_gateway, pki):
    """2,000 connect/close cycles of five kinds, 16 at a time (400 under
    valgrind); then the descriptor count is back to its value after
    startup, exactly (listeners, admin socket, log, event loop)."""
    # The cycles all come from 127.0.0.1 (a connection the client already
    # closed holds its handshake slot until the gateway sees it), with one
    # certificate: the devices are told apart by client id.
    g = make_gateway(broker.port, {"gateway": {"log_level": "info"},
                                   "downstream": {"max_handshakes_per_ip": "1000"},
                                   "mqtt": {"identity": "none", "clientid": "keep",
                                            "username": "keep"}},
                     admin=True)
    fd_dir = "/proc/%d/fd" % g.pid

    def listing():
        out = {}
        for f in os.listdir(fd_dir):
            try:
                out[f] = os.readlink(os.path.join(fd_dir, f))
            except FileNotFoundError:
                pass
        return out

    start = listing()
    cycles = 400 if cbtest.VALGRIND else FD_CYCLES
    peak = len(start)
    with concurrent.futures.ThreadPoolExecutor(FD_THREADS) as pool:
        futs = [pool.submit(_fd_cycle, g.port, pki, i) for i in range(cycles)]
        # (The highest count seen while they run: a figure for the report.)
        deadline = time.monotonic() + t(120)
        while not all(f.done() for f in futs) and time.monotonic() < deadline:
            peak = max(peak, fd_count(g.pid))
            time.sleep(0.02)
        done = [f.result(timeout=t(120)) for f in futs]
    assert len(done) == cycles
    try:
        wait_until("descriptors back to %d" % len(start),
                   lambda: fd_count(g.pid) == len(start), timeout=20.0)
    except AssertionError:
        now = listing()
        extra = {k: v for k, v in now.items() if start.get(k) != v}
        raise AssertionError("descriptors: %d after startup, %d now; new or changed: %r\n%s"
                             % (len(start), len(now), extra, g.report())) from None
    assert listing() == start
    print("fd count: %d at start, at most %d during %d cycles, %d at the end"
          % (len(start), peak, cycles, fd_count(g.pid)))
    # Every kind was refused or closed the way it should, and the
    # gateway still serves a device.
    assert g.running()
    status, _, body = admin_request(g.admin_port, "/metrics")
    m = cbtest.metric_samples(body.decode())
    assert m[cbtest.metric_key("certbridge_connections", side="downstream")] == 0
    assert m[cbtest.metric_key("certbridge_handshakes_total", side="downstream",
                               result="fail", reason="unknown-ca")] == cycles // 5
    with mqtt_device(g.port, pki.device("dev-new-1")) as ss:
        ss.sendall(DISCONNECT)
        assert wait_closed(ss) == b""


# ---------------------------------------------------------------- 6. SIGTERM drain


def test_healthz_503_while_draining(broker, make_gateway, pki):
    """(test_sigterm_* in test_downstream.py covers the drain itself.)"""
    g = make_gateway(broker.port, {"gateway": {"shutdown_grace": "%dms" % (t(5) * 1000)}},
                     admin=True)
    assert admin_request(g.admin_port, "/healthz")[::2] == (200, b"ok\n")
    ss = mqtt_device(g.port, pki.device(DEVICE))
    try:
        mark = g.mark()
        g.proc.send_signal(signal.SIGTERM)  # our child, by PID
        g.wait_event("stopping", since=mark)
        assert g.running(), g.report()
        status, headers, body = admin_request(g.admin_port, "/healthz")
        assert status == 503, (status, body)
        assert body.strip() and body != b"ok\n", body
        # The rest of the endpoint still answers during the drain.
        status, _, body = admin_request(g.admin_port, "/status")
        assert status == 200 and json.loads(body)["sessions"] == 1
        assert g.running(), "certbridge exited before shutdown_grace with a session open"
        ss.sendall(DISCONNECT)
        assert wait_closed(ss) == b""
    finally:
        ss.close()
    try:
        rc = g.proc.wait(timeout=t(15))
    except subprocess.TimeoutExpired:
        raise AssertionError("certbridge did not exit after its last session\n"
                             + g.report()) from None
    assert rc == 0, g.report()


def test_json_log_reads_back_utf8_names(broker, make_gateway, pki):
    """A client id in UTF-8 reads back from a JSON line as the same text a
    device sent (and /status shows), while the line stays ASCII."""
    g = make_gateway(broker.port, {"gateway": {"log_format": "json"}})
    cid = "\u00fcn\u00ef-\u20ac-\U0001F512-%s" % uid()
    peer = send_hostile_connect(g, pki, cid.encode("utf-8"))
    line = connect_line(g, peer)
    assert all(0x20 <= b < 0x7F for b in line), line
    assert json.loads(line)["clientid"] == cid, line
