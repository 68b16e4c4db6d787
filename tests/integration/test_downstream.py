"""The device-facing side of certbridge: [downstream] and [gateway]
(docs/configuration.md).

- TLS versions (default 1.2-1.3; 1.3 only) and cipher suites (never NULL,
  anonymous, RC4 or non-AEAD by default; a custom list is honoured; an unsafe
  list is a configuration error);
- handshake_timeout, for the TLS handshake and for the first CONNECT;
- max_connections: refused at accept, before TLS, one log line;
- session_tickets: TLS 1.3 resumption logged with resumed=yes; never TLS 1.2;
- plain_listen and client_auth = optional;
- bad input (HTTP on the TLS port, a first packet that is not CONNECT, a
  malformed remaining length) costs one connection, never another device's;
- the broker being down gives CONNACK "server unavailable";
- the command line (-V, usage, missing file) and SIGTERM with shutdown_grace.

Clients are the openssl CLI (s_client), Python's ssl module with MQTT bytes
written by hand, paho and the mosquitto clients. Every wait is bounded.
"""

import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

import cbtest
from cbtest import PahoClient, free_port, t, uid, wait_until
from rawmqtt import (CLOSED_ERRORS, CONNACK_OK, DISCONNECT, connect_packet,
                     device_context, mqtt_device, mqtt_ticket_session, publish_packet,
                     read_packet, subscribe_packet, tls_device, wait_closed)

# ---------------------------------------------------------------- helpers

DEVICE = "dev-old-1"
SERVER_UNAVAILABLE = {"311": 3, "5": 0x88}

# TLS 1.2 suites with forward secrecy and AEAD (s_client's names).
AEAD_FS_TLS12 = re.compile(r"^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$")


def s_client(port, *args, send=None, until=None, timeout=10.0, creds=None):
    """Runs openssl s_client against 127.0.0.1:port (SNI localhost) as a
    device (creds, default dev-old-1). Without send, stdin is empty and
    s_client ends after the handshake. With send, those bytes are written
    and stdout is read until it holds `until` (or EOF, or timeout); stdin
    is then closed. Returns (exit code, output as text)."""
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
            "-servername", "localhost", "-nocommands"]
    if creds is not None:
        argv += ["-CAfile", creds.cafile]
        if creds.cert:
            argv += ["-cert", creds.cert, "-cert_chain", creds.cert, "-key", creds.key]
    argv += list(args)
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    chunks = []
    cond = threading.Condition()

    def reader():
        while True:
            d = p.stdout.read1(65536)
            with cond:
                chunks.append(d)
                cond.notify_all()
            if not d:
                return

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    deadline = time.monotonic() + t(timeout)
    try:
        if send is not None:
            p.stdin.write(send)
            p.stdin.flush()
            with cond:
                while until is not None and until not in b"".join(chunks) \
                        and not (chunks and chunks[-1] == b""):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    cond.wait(min(left, 0.1))
        p.stdin.close()
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 1.0))
        except subprocess.TimeoutExpired:
            p.kill()  # our child, by PID
            p.wait(timeout=10)
            th.join(5)
            raise AssertionError("openssl s_client did not end within %.1fs:\n%s"
                                 % (t(timeout), b"".join(chunks).decode("latin-1")[-3000:]))
        th.join(t(5))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
        p.stdout.close()
    return p.returncode, b"".join(chunks).decode("latin-1")


def negotiated(out):
    """(protocol, cipher) from s_client's "New|Reused, TLSvX, Cipher is C"
    line; None when no handshake completed."""
    m = re.search(r"^(New|Reused), (TLSv1\.[0-3]|\(NONE\)), Cipher is (\S+)", out, re.M)
    if not m or m.group(3) == "(NONE)":
        return None
    proto = re.search(r"^\s*Protocol\s*:\s*(\S+)", out, re.M)
    return (proto.group(1) if proto else m.group(2)), m.group(3)


def session_kind(out):
    m = re.search(r"^(New|Reused), TLSv1\.[23], Cipher is ", out, re.M)
    return m.group(1) if m else None


def dev_creds(pki, name=DEVICE):
    return pki.device(name)


def _strip_tls(argv):
    """A mosquitto client command line without its TLS options."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--cafile", "--cert", "--key"):
            skip = True
            continue
        out.append(a)
    return out


def run_bin(binary, *args, timeout=20.0):
    argv = [binary] + list(args)
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=t(timeout))


# ---------------------------------------------------------------- 1. TLS versions


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_default_versions_accept_tls12_and_tls13(gateway, pki, version):
    mark = gateway.mark()
    rc, out = s_client(gateway.port, "-tls" + version.replace(".", "_"),
                       creds=dev_creds(pki))
    got = negotiated(out)
    assert got is not None, out
    assert got[0] == "TLSv" + version, out
    assert "Verify return code: 0 (ok)" in out, out
    ev = gateway.wait_event("device-admitted", since=mark, device=DEVICE)
    assert ev.get("tls") == "TLSv" + version and ev.get("ca") == "old", ev["_line"]


def test_default_versions_refuse_tls11(gateway, pki):
    mark = gateway.mark()
    rc, out = s_client(gateway.port, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0",
                       creds=dev_creds(pki))
    assert negotiated(out) is None, out
    # The gateway refused (alert 70), not the client's own configuration.
    assert "alert protocol version" in out, out
    ev = gateway.wait_event("handshake-failed", since=mark, side="downstream")
    assert ev.get("reason") == "protocol", ev["_line"]
    assert ev.get("detail", "").strip() and ev.get("conn"), ev["_line"]
    assert not gateway.events("device-admitted", since=mark)


def test_tls13_only(broker, make_gateway, pki):
    g = make_gateway(broker.port, {"downstream": {"tls_versions": "1.3"}})
    mark = g.mark()
    rc, out = s_client(g.port, "-tls1_2", creds=dev_creds(pki))
    assert negotiated(out) is None, out
    assert "alert protocol version" in out, out
    ev = g.wait_event("handshake-failed", since=mark, side="downstream")
    assert ev.get("reason") == "protocol", ev["_line"]

    mark = g.mark()
    rc, out = s_client(g.port, "-tls1_3", creds=dev_creds(pki))
    assert (negotiated(out) or ("",))[0] == "TLSv1.3", out
    ev = g.wait_event("device-admitted", since=mark, device=DEVICE)
    assert ev.get("tls") == "TLSv1.3", ev["_line"]
    # A client that offers both versions gets 1.3.
    rc, out = s_client(g.port, creds=dev_creds(pki))
    assert (negotiated(out) or ("",))[0] == "TLSv1.3", out


def test_tls11_only_when_written(broker, make_gateway, pki):
    """1.0 and 1.1 come only when the INI names them; then a 1.1 device
    gets an ECDHE suite (CBC: 1.1 has no AEAD), and a TLS 1.2 device still
    gets an AEAD one."""
    g = make_gateway(broker.port, {"downstream": {"tls_versions": "1.1-1.3"}})
    mark = g.mark()
    rc, out = s_client(g.port, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0",
                       creds=dev_creds(pki))
    got = negotiated(out)
    assert got is not None and got[0] == "TLSv1.1", out
    assert got[1].startswith("ECDHE-"), out
    ev = g.wait_event("device-admitted", since=mark, device=DEVICE)
    assert ev.get("tls") == "TLSv1.1", ev["_line"]
    rc, out = s_client(g.port, "-tls1_2", creds=dev_creds(pki))
    got = negotiated(out)
    assert got is not None and AEAD_FS_TLS12.match(got[1]), out


# ---------------------------------------------------------------- 2. ciphers


def test_default_ciphers_refuse_null_anon_rc4(gateway, pki):
    mark = gateway.mark()
    rc, out = s_client(gateway.port, "-tls1_2", "-cipher", "aNULL:eNULL:RC4:@SECLEVEL=0",
                       creds=dev_creds(pki))
    assert negotiated(out) is None, out
    assert "alert handshake failure" in out, out
    ev = gateway.wait_event("handshake-failed", since=mark, side="downstream")
    assert ev.get("reason") == "protocol", ev["_line"]
    assert not gateway.events("device-admitted", since=mark)


def test_default_ciphers_refuse_non_aead(gateway, pki):
    """CBC suites (with forward secrecy even) are not on the default list."""
    mark = gateway.mark()
    rc, out = s_client(gateway.port, "-tls1_2", "-cipher",
                       "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:"
                       "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384",
                       creds=dev_creds(pki))
    assert negotiated(out) is None, out
    gateway.wait_event("handshake-failed", since=mark, side="downstream", reason="protocol")


def test_default_ciphers_tls12_negotiates_aead(gateway, pki):
    mark = gateway.mark()
    rc, out = s_client(gateway.port, "-tls1_2", creds=dev_creds(pki))
    got = negotiated(out)
    assert got is not None and got[0] == "TLSv1.2", out
    assert AEAD_FS_TLS12.match(got[1]), out
    ev = gateway.wait_event("device-admitted", since=mark, device=DEVICE)
    assert ev.get("tls") == "TLSv1.2", ev["_line"]
    assert re.search(r"GCM|CHACHA20", ev.get("cipher", "")), ev["_line"]


def test_custom_cipher_honoured(broker, make_gateway, pki):
    g = make_gateway(broker.port, {"downstream": {"ciphers": "ECDHE-ECDSA-AES256-GCM-SHA384"}})
    mark = g.mark()
    rc, out = s_client(g.port, "-tls1_2", creds=dev_creds(pki))
    assert negotiated(out) == ("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384"), out
    ev = g.wait_event("device-admitted", since=mark, device=DEVICE)
    assert ev.get("cipher") == "ECDHE-ECDSA-AES256-GCM-SHA384", ev["_line"]
    # Another suite the client prefers is not served.
    rc, out = s_client(g.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256",
                       creds=dev_creds(pki))
    assert negotiated(out) is None, out


def test_custom_tls12_cipher_with_dual_version_device(broker, make_gateway, pki, tmp_path):
    """A list of TLS 1.2 suites only, with tls_versions 1.2-1.3: -t accepts
    it and keeps the default TLS 1.3 suites (as OpenSSL keeps its 1.3
    ciphersuites apart), so a device offering both versions is admitted on
    TLS 1.3 with an AEAD suite, and a 1.2-only device gets the configured
    suite (test_custom_cipher_honoured)."""
    over = {"downstream": {"ciphers": "ECDHE-ECDSA-AES256-GCM-SHA384"}}
    conf = cbtest.Gateway(pki, tmp_path / "check", broker.port, overrides=over,
                          binary=cbtest.certbridge_binary())
    conf.write_conf()
    r = run_bin(conf.binary, "-t", "-c", str(conf.conf_path))
    assert r.returncode == 0, r.stderr
    g = make_gateway(broker.port, over)
    mark = g.mark()
    rc, out = s_client(g.port, creds=dev_creds(pki))  # offers 1.2 and 1.3
    got = negotiated(out)
    assert got is not None and got[0] == "TLSv1.3", (
        out[-1500:] + "\n" + "\n".join(e["_line"] for e in g.events(since=mark)))
    assert re.search(r"GCM|CHACHA20", got[1]), got
    g.wait_event("device-admitted", since=mark, tls="TLSv1.3")


def _check_conf(pki, tmp_path, overrides):
    conf = cbtest.Gateway(pki, tmp_path / ("conf-" + uid()), free_port(),
                          overrides=overrides, binary=cbtest.certbridge_binary())
    conf.write_conf()
    r = run_bin(conf.binary, "-t", "-c", str(conf.conf_path))
    return conf, r


def _line_of(path, key):
    for i, line in enumerate(open(path).read().splitlines(), 1):
        if re.match(r"\s*%s\s*=" % re.escape(key), line):
            return i
    raise AssertionError("no %s in %s" % (key, path))


@pytest.mark.parametrize("ciphers", [
    "NULL-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-NULL-SHA",
    "eNULL",
])
def test_null_cipher_list_is_a_config_error(pki, tmp_path, ciphers):
    conf, r = _check_conf(pki, tmp_path, {"downstream": {"ciphers": ciphers}})
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    problems = [l for l in r.stderr.splitlines() if "ciphers" in l]
    assert problems, r.stderr
    assert "NULL" in problems[0], r.stderr
    # docs/configuration.md: FILE:LINE: [section] key: what is wrong
    line = _line_of(conf.conf_path, "ciphers")
    assert problems[0].startswith("%s:%d: [downstream] ciphers: " % (conf.conf_path, line)), \
        r.stderr
    # The daemon refuses to start on it too (exit 1, configuration error).
    r2 = subprocess.run([conf.binary, "-c", str(conf.conf_path)], stdin=subprocess.DEVNULL,
                        capture_output=True, text=True, timeout=t(20))
    assert r2.returncode == 1, (r2.returncode, r2.stderr)


@pytest.mark.parametrize("ciphers", ["ALL", "DEFAULT", "HIGH"])
def test_cipher_keyword_never_enables_null(broker, make_gateway, pki, tmp_path, ciphers):
    """Either -t refuses the list, or the gateway it runs never negotiates
    a NULL or anonymous suite."""
    over = {"downstream": {"ciphers": ciphers}}
    conf, r = _check_conf(pki, tmp_path, over)
    if r.returncode != 0:
        assert "ciphers" in r.stderr, r.stderr
        return
    g = make_gateway(broker.port, over)
    mark = g.mark()
    rc, out = s_client(g.port, "-tls1_2", "-cipher", "eNULL:aNULL:@SECLEVEL=0",
                       creds=dev_creds(pki))
    assert negotiated(out) is None, out[-1500:]
    assert not g.events("device-admitted", since=mark), g.report()


# ---------------------------------------------------------------- 3. handshake_timeout


@pytest.fixture
def quick_gateway(broker, make_gateway):
    return make_gateway(broker.port, {"downstream": {"handshake_timeout": "1s"}})


def test_handshake_timeout_silent_tcp_client(quick_gateway, pki):
    g = quick_gateway
    mark = g.mark()
    with socket.create_connection(("127.0.0.1", g.port), timeout=t(5)) as s:
        local = s.getsockname()[1]
        got = wait_closed(s, timeout=10.0)
    assert got == b"", got
    ev = g.wait_event("handshake-failed", since=mark, side="downstream",
                      peer="127.0.0.1:%d" % local)
    assert ev.get("reason") == "timeout", ev["_line"]
    assert "handshake_timeout" in ev.get("detail", ""), ev["_line"]


def test_handshake_timeout_no_connect_after_tls(quick_gateway, pki):
    g = quick_gateway
    mark = g.mark()
    ss = tls_device(g.port, dev_creds(pki))
    try:
        local = ss.getsockname()[1]
        got = wait_closed(ss, timeout=10.0)
    finally:
        ss.close()
    assert got == b"", got
    peer = "127.0.0.1:%d" % local
    g.wait_event("device-admitted", since=mark, peer=peer, device=DEVICE)
    ev = g.wait_event("session-closed", since=mark, peer=peer)
    assert ev.get("reason") == "timeout", ev["_line"]
    assert ev.get("device") == DEVICE and ev.get("ca") == "old", ev["_line"]
    assert not g.events("mqtt-connect", since=mark, peer=peer)


def test_handshake_timeout_spares_a_prompt_device(quick_gateway, pki):
    """The deadline is for the handshake and CONNECT only: a session that
    sent CONNECT in time stays up past it."""
    g = quick_gateway
    mark = g.mark()
    ss = mqtt_device(g.port, dev_creds(pki), keepalive=60)
    try:
        local = ss.getsockname()[1]
        # Wait for a slow client's handshake timeout on the same gateway,
        # which fires after ours would have.
        with socket.create_connection(("127.0.0.1", g.port), timeout=t(5)) as slow:
            slow_port = slow.getsockname()[1]
            wait_closed(slow, timeout=10.0)
        g.wait_event("handshake-failed", since=mark, peer="127.0.0.1:%d" % slow_port,
                     reason="timeout")
        ss.sendall(b"\xc0\x00")  # PINGREQ
        assert read_packet(ss) == (0xD0, b""), "no PINGRESP"
        ss.sendall(DISCONNECT)
    finally:
        ss.close()
    assert not g.events("session-closed", since=mark, peer="127.0.0.1:%d" % local,
                        reason="timeout")


# ---------------------------------------------------------------- 4. max_connections


def test_max_connections(broker, make_gateway, pki):
    g = make_gateway(broker.port, {"gateway": {"max_connections": "2"}})
    a = mqtt_device(g.port, pki.device("dev-old-1"))
    b = None
    try:
        b = mqtt_device(g.port, pki.device("dev-new-1"))
        mark = g.mark()
        with socket.create_connection(("127.0.0.1", g.port), timeout=t(5)) as third:
            local = third.getsockname()[1]
            # Closed at accept: no TLS byte ever comes (a TLS server would
            # wait for our ClientHello instead).
            assert wait_closed(third, timeout=5.0) == b""
        ev = g.wait_event("connection-refused", since=mark, reason="limit")
        assert ev.get("listener") == "127.0.0.1:%d" % g.port, ev["_line"]
        assert int(ev.get("count", "0")) >= 1, ev["_line"]
        # Refused before TLS: no session, no handshake for that peer.
        assert not g.events(None, since=mark, peer="127.0.0.1:%d" % local), g.report()
        # A TLS client is refused the same way.
        with pytest.raises((ssl.SSLError,) + CLOSED_ERRORS):
            tls_device(g.port, pki.device("dev-old-1")).close()
        # The two sessions still work.
        for s in (a, b):
            s.sendall(b"\xc0\x00")
            assert read_packet(s) == (0xD0, b"")

        mark = g.mark()
        a.sendall(DISCONNECT)
        wait_closed(a, timeout=5.0)
        g.wait_event("session-closed", since=mark, device="dev-old-1")
        c = mqtt_device(g.port, pki.device("dev-old-1"))
        c.sendall(DISCONNECT)
        c.close()
    finally:
        a.close()
        if b is not None:
            b.close()


# ---------------------------------------------------------------- 5. session tickets


def _mqtt_over_s_client(port, creds, *args):
    """s_client sends a CONNECT and reads until the CONNACK: by then any
    TLS 1.3 ticket the gateway issues has arrived (it is sent right after
    the handshake, before any application data)."""
    rc, out = s_client(port, *args, creds=creds,
                       send=connect_packet("ds-%s" % uid()), until=CONNACK_OK)
    assert CONNACK_OK.decode("latin-1") in out, out[-2000:]
    return out


@pytest.mark.parametrize("device,ca", [("dev-old-1", "old"), ("dev-new-1", "new")])
def test_tls13_resumption(gateway, pki, tmp_path, device, ca):
    creds = pki.device(device)
    sess = str(tmp_path / "sess.pem")
    mark = gateway.mark()
    out = _mqtt_over_s_client(gateway.port, creds, "-tls1_3", "-sess_out", sess)
    assert session_kind(out) == "New", out[-2000:]
    assert "Post-Handshake New Session Ticket arrived" in out, out[-2000:]
    assert os.path.getsize(sess) > 0

    out = _mqtt_over_s_client(gateway.port, creds, "-tls1_3", "-sess_in", sess)
    assert session_kind(out) == "Reused", out[-2000:]
    evs = gateway.events("device-admitted", since=mark)
    assert len(evs) == 2, [e["_line"] for e in evs]
    assert evs[0].get("resumed") is None, evs[0]["_line"]
    assert evs[1].get("resumed") == "yes", evs[1]["_line"]
    for ev in evs:
        assert ev.get("device") == device and ev.get("ca") == ca, ev["_line"]
        assert ev.get("tls") == "TLSv1.3", ev["_line"]
    # The resumed session was a full MQTT session.
    gateway.wait_event("mqtt-connack", since=mark, conn=evs[1]["conn"], code="0x00")


def test_reload_forces_full_handshake(broker, make_gateway, pki, tmp_path):
    """Ticket keys are new with every reload: a ticket from before SIGHUP
    does not resume, one from after does."""
    g = make_gateway(broker.port)
    creds = dev_creds(pki)
    before, after = str(tmp_path / "before.pem"), str(tmp_path / "after.pem")
    out = _mqtt_over_s_client(g.port, creds, "-tls1_3", "-sess_out", before)
    assert session_kind(out) == "New" and os.path.getsize(before) > 0, out[-2000:]
    mark = g.mark()
    g.reload()
    g.wait_event("reloaded", since=mark)
    out = _mqtt_over_s_client(g.port, creds, "-tls1_3", "-sess_in", before,
                              "-sess_out", after)
    assert session_kind(out) == "New", out[-2000:]
    out = _mqtt_over_s_client(g.port, creds, "-tls1_3", "-sess_in", after)
    assert session_kind(out) == "Reused", out[-2000:]
    evs = g.events("device-admitted", since=mark)
    assert [e.get("resumed") for e in evs] == [None, "yes"], [e["_line"] for e in evs]


def test_session_tickets_off(broker, make_gateway, pki, tmp_path):
    g = make_gateway(broker.port, {"downstream": {"session_tickets": "no"}})
    sess = str(tmp_path / "sess.pem")
    mark = g.mark()
    out = _mqtt_over_s_client(g.port, dev_creds(pki), "-tls1_3", "-sess_out", sess)
    assert session_kind(out) == "New", out[-2000:]
    assert "Post-Handshake New Session Ticket" not in out, out[-2000:]
    if os.path.exists(sess) and os.path.getsize(sess) > 0:
        out = _mqtt_over_s_client(g.port, dev_creds(pki), "-tls1_3", "-sess_in", sess)
        assert session_kind(out) == "New", out[-2000:]
    assert not g.events("device-admitted", since=mark, resumed="yes")


def _first_of_many_tickets(port, creds, ctx, newer=70):
    """The first of newer + 1 tickets, each from a whole MQTT session."""
    first, _ = mqtt_ticket_session(port, creds, ctx)
    for _ in range(newer):
        mqtt_ticket_session(port, creds, ctx)
    return first


def test_ticket_resumes_after_many_newer_tickets(gateway, pki):
    """A ticket resumes whatever was issued since: the gateway remembers
    the chain of each ticket itself (docs/architecture.md, "Dual trust").
    wolfSSL's own tickets looked the chain up in a process-wide cache of a
    few dozen sessions; past that, the resumed device had no certificate
    and was refused (no-client-cert) although its ticket was good."""
    creds = dev_creds(pki)
    ctx = device_context(creds)
    first = _first_of_many_tickets(gateway.port, creds, ctx)
    mark = gateway.mark()
    again, reused = mqtt_ticket_session(gateway.port, creds, ctx, session=first)
    assert reused, "the first ticket no longer resumes"
    ev = gateway.wait_event("device-admitted", since=mark)
    assert ev.get("resumed") == "yes" and ev.get("device") == DEVICE, ev["_line"]
    # The ticket issued on that resumption names the same chain.
    mark = gateway.mark()
    _, reused = mqtt_ticket_session(gateway.port, creds, ctx, session=again)
    assert reused, "a ticket issued on a resumption does not resume"
    ev = gateway.wait_event("device-admitted", since=mark)
    assert ev.get("resumed") == "yes" and ev.get("device") == DEVICE, ev["_line"]
    assert ev.get("ca") == "old", ev["_line"]
    assert not gateway.events("handshake-failed", since=mark), gateway.report()


def test_ticket_beyond_the_newest_makes_a_full_handshake(broker, make_gateway, pki):
    """The gateway remembers the newest 2 x max_connections tickets (at
    least 64). An older one is declined inside the handshake, which goes on
    as a full one: the device is admitted on the certificate it sends, not
    refused for the ticket it offered."""
    g = make_gateway(broker.port, {"gateway": {"max_connections": "8"}})
    creds = dev_creds(pki)
    ctx = device_context(creds)
    first = _first_of_many_tickets(g.port, creds, ctx)
    mark = g.mark()
    _, reused = mqtt_ticket_session(g.port, creds, ctx, session=first)
    assert not reused, "a ticket older than the newest 64 resumed"
    ev = g.wait_event("device-admitted", since=mark)
    assert ev.get("resumed") is None and ev.get("device") == DEVICE, ev["_line"]
    assert not g.events("handshake-failed", since=mark), g.report()
    # A recent one still resumes.
    recent, _ = mqtt_ticket_session(g.port, creds, ctx)
    _, reused = mqtt_ticket_session(g.port, creds, ctx, session=recent)
    assert reused


def test_tls12_never_resumes(gateway, pki, tmp_path):
    """TLS 1.2 resumption would skip re-verification: no session ID, no
    ticket, and an offered session is not resumed."""
    sess = str(tmp_path / "sess12.pem")
    mark = gateway.mark()
    out = _mqtt_over_s_client(gateway.port, dev_creds(pki), "-tls1_2", "-sess_out", sess)
    assert session_kind(out) == "New", out[-2000:]
    assert re.search(r"^\s*Session-ID:\s*$", out, re.M), out[-2000:]
    assert "TLS session ticket" not in out, out[-2000:]
    if os.path.exists(sess) and os.path.getsize(sess) > 0:
        out = _mqtt_over_s_client(gateway.port, dev_creds(pki), "-tls1_2", "-sess_in", sess)
        assert session_kind(out) == "New", out[-2000:]
    # Python's client offers whatever session it got: still no resumption.
    ctx = device_context(dev_creds(pki), max_version=ssl.TLSVersion.TLSv1_2)
    with tls_device(gateway.port, dev_creds(pki), ctx=ctx) as s1:
        first = s1.session
        assert not s1.session_reused
    with tls_device(gateway.port, dev_creds(pki), ctx=ctx, session=first) as s2:
        assert s2.version() == "TLSv1.2"
        assert not s2.session_reused
    assert not gateway.events("device-admitted", since=mark, resumed="yes")


# ---------------------------------------------------------------- 6. plain_listen, optional auth


@pytest.fixture
def plain_gateway(broker, make_gateway):
    plain_port = free_port()
    g = make_gateway(broker.port, {
        "downstream": {"plain_listen": "127.0.0.1:%d" % plain_port, "client_auth": "optional"},
        "mqtt": {"identity": "none", "clientid": "keep", "username": "keep"},
    })
    g.plain_port = plain_port
    return g


def test_plain_listen_roundtrip(plain_gateway, pki):
    g = plain_gateway
    ev = g.wait_event("listening", addr="127.0.0.1:%d" % g.plain_port)
    assert ev.get("tls") == "no", ev["_line"]
    assert g.wait_event("listening", addr="127.0.0.1:%d" % g.port).get("tls") == "yes"

    topic = "cbtest/plain/%s" % uid()
    payload = b"plain " + os.urandom(8)
    nocert = pki.device(None)
    mark = g.mark()
    sub = cbtest.MosquittoSub(g.plain_port, nocert, topic, qos=1,
                              client_id="plain-sub-%s" % uid())
    sub.argv = _strip_tls(sub.argv)
    assert "--cafile" not in sub.argv
    with sub:
        assert sub.wait_subscribed() == 1, sub.output()
        argv = _strip_tls(["mosquitto_pub"] + cbtest._mosq_base(
            g.plain_port, nocert, "311", "plain-pub-%s" % uid())
            + ["-t", topic, "-q", "1", "-m", payload.hex()])
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=t(10))
        assert r.returncode == 0, r.stderr
        msgs = sub.wait_messages()
    assert msgs[0] == (1, payload.hex().encode()), msgs
    evs = g.events("device-admitted", since=mark, tls="none")
    assert len(evs) >= 2, g.report()
    for e in evs:
        assert e.get("client_cert") == "none", e["_line"]
        assert e.get("device") is None and e.get("ca") is None, e["_line"]


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_optional_client_auth_admits_certless_device(plain_gateway, pki, tls):
    g = plain_gateway
    mark = g.mark()
    nocert = pki.device(None)
    ctx = device_context(nocert, max_version=getattr(ssl.TLSVersion,
                                                     "TLSv" + tls.replace(".", "_")))
    topic = "cbtest/nocert/%s" % uid()
    ss = tls_device(g.port, nocert, ctx=ctx)
    try:
        assert ss.version() == "TLSv" + tls
        ss.sendall(connect_packet("nocert-%s" % uid()))
        assert read_packet(ss, timeout=10.0) == (0x20, b"\x00\x00")
        ss.sendall(subscribe_packet(1, topic))
        assert read_packet(ss, timeout=10.0) == (0x90, b"\x00\x01\x00")  # SUBACK QoS 0
        ss.sendall(publish_packet(topic, b"no cert"))
        first, body = read_packet(ss, timeout=10.0)
        assert first & 0xF0 == 0x30 and body.endswith(b"no cert"), (first, body)
        ss.sendall(DISCONNECT)
    finally:
        ss.close()
    ev = g.wait_event("device-admitted", since=mark, client_cert="none")
    assert ev.get("tls") == "TLSv" + tls, ev["_line"]
    assert ev.get("device") is None and ev.get("ca") is None, ev["_line"]


def test_optional_client_auth_still_checks_certificates(plain_gateway, pki):
    g = plain_gateway
    # A device with a certificate is still checked, and logged with the CA
    # that admitted it (identity = none here: no device= field).
    mark = g.mark()
    with PahoClient(g.port, pki.device("dev-new-1"), "5") as c:
        assert c.connect() == 0, c.error
    ev = g.wait_event("device-admitted", since=mark)
    assert ev.get("ca") == "new" and ev.get("client_cert") is None, ev["_line"]
    # ... and certificates of an unknown CA, or expired, are refused.
    for device, reason in (("dev-unknown", "unknown-ca"), ("dev-expired", "expired")):
        mark = g.mark()
        code, err = cbtest.paho_connect(g.port, pki.device(device), "311")
        assert code is None, code
        ev = g.wait_event("handshake-failed", since=mark, side="downstream")
        assert ev.get("reason") == reason, ev["_line"]


# ---------------------------------------------------------------- 7. bad input costs one connection


class Witness:
    """A device that stays connected and checks it still gets messages."""

    def __init__(self, port, pki):
        self.c = PahoClient(port, pki.device("dev-new-1"), "311")
        self.topic = "cbtest/witness/%s" % uid()
        self.n = 0

    def __enter__(self):
        assert self.c.connect() == 0, self.c.error
        assert self.c.subscribe(self.topic, 1) == 1
        self.check()
        return self

    def check(self):
        self.n += 1
        payload = b"witness %d" % self.n
        self.c.publish(self.topic, payload, qos=1)
        assert bytes(self.c.wait_message().payload) == payload
        assert not self.c.disconnected.is_set(), self.c.error

    def __exit__(self, *exc):
        self.c.close()
        return False


def test_http_on_tls_port(gateway, pki):
    with Witness(gateway.port, pki) as w:
        mark = gateway.mark()
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=t(5)) as s:
            local = s.getsockname()[1]
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            got = wait_closed(s, timeout=10.0)
        assert not got.startswith(b"HTTP"), got
        ev = gateway.wait_event("handshake-failed", since=mark,
                                peer="127.0.0.1:%d" % local)
        assert ev.get("reason") == "protocol" and ev.get("side") == "downstream", ev["_line"]
        w.check()
        assert gateway.running()


@pytest.mark.parametrize("first,detail", [
    (b"\xc0\x00", re.compile(r"CONNECT")),                        # PINGREQ first
    (b"\x10\xff\xff\xff\xff\x01", re.compile(r".")),              # 5-byte remaining length
    (b"\x30\x05\x00\x01t", re.compile(r"CONNECT")),               # PUBLISH first
    (b"\x10\x04\x00\x04MQ", re.compile(r".")),                    # CONNECT cut short
], ids=["pingreq", "bad-remaining-length", "publish", "short-connect"])
def test_bad_first_packet(gateway, pki, first, detail):
    with Witness(gateway.port, pki) as w:
        mark = gateway.mark()
        ss = tls_device(gateway.port, dev_creds(pki))
        try:
            local = ss.getsockname()[1]
            ss.sendall(first)
            got = wait_closed(ss, timeout=10.0)
        finally:
            ss.close()
        assert got == b"", "the gateway answered %r" % got
        peer = "127.0.0.1:%d" % local
        ev = gateway.wait_event("session-closed", since=mark, peer=peer)
        assert ev.get("reason") == "protocol", ev["_line"]
        assert detail.search(ev.get("detail", "")), ev["_line"]
        assert ev.get("device") == DEVICE, ev["_line"]
        assert not gateway.events("mqtt-connect", since=mark, peer=peer)
        w.check()
        assert gateway.running()


TLS_GARBAGE = [
    (b"GET / HTTP/1.0\r\n\r\n", "protocol"),
    (b"\x00\x01\x02\x03garbage garbage", "protocol"),         # unknown record type
    (b"\x16\x03\x01\x00\x05hello", "protocol"),              # handshake record, no ClientHello
    (b"\x17\x03\x03\x00\x04abcd", "protocol"),               # application data first
    (b"\xff" * 64, "protocol"),                               # record length error
    (b"\x15\x03\x03\x00\x02\x02\x28", "peer-rejected"),      # fatal alert first
]


def test_tls_garbage_burst_spares_others(gateway, pki):
    """Several bad clients at once (TLS garbage, HTTP, a half-open
    handshake, bad MQTT) while a device keeps talking: each costs its own
    connection only, with a handshake-failed line that says so."""
    with Witness(gateway.port, pki) as w:
        mark = gateway.mark()
        socks = []
        try:
            # Half a ClientHello: it stays open until handshake_timeout.
            half = socket.create_connection(("127.0.0.1", gateway.port), timeout=t(5))
            socks.append(half)
            half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            peers = {}
            for data, reason in TLS_GARBAGE:
                s = socket.create_connection(("127.0.0.1", gateway.port), timeout=t(5))
                socks.append(s)
                peers["127.0.0.1:%d" % s.getsockname()[1]] = (s, reason)
                s.sendall(data)
            w.check()
            bad_mqtt = []
            for first in (b"\xc0\x00", b"\x10\xff\xff\xff\xff\x01", b"\x82\x00"):
                ss = tls_device(gateway.port, dev_creds(pki))
                socks.append(ss)
                bad_mqtt.append("127.0.0.1:%d" % ss.getsockname()[1])
                ss.sendall(first)
            for peer, (s, reason) in peers.items():
                wait_closed(s, timeout=10.0)
                ev = gateway.wait_event("handshake-failed", since=mark, peer=peer)
                assert ev.get("reason") == reason, ev["_line"]
            for ss, peer in zip(socks[-3:], bad_mqtt):
                assert wait_closed(ss, timeout=10.0) == b""
                ev = gateway.wait_event("session-closed", since=mark, peer=peer)
                assert ev.get("reason") == "protocol", ev["_line"]
            w.check()
        finally:
            for s in socks:
                s.close()
        w.check()
    assert gateway.running()


def test_device_disconnect_is_device_closed(gateway, pki):
    mark = gateway.mark()
    ss = mqtt_device(gateway.port, dev_creds(pki))
    try:
        peer = "127.0.0.1:%d" % ss.getsockname()[1]
        ss.sendall(DISCONNECT)
        assert wait_closed(ss, timeout=10.0) == b""
    finally:
        ss.close()
    ev = gateway.wait_event("session-closed", since=mark, peer=peer)
    assert ev.get("reason") == "device-closed", ev["_line"]
    assert "DISCONNECT" in ev.get("detail", ""), ev["_line"]


# ---------------------------------------------------------------- 8. broker down


def test_broker_down(make_broker, make_gateway, pki):
    b = make_broker()
    g = make_gateway(b.port)
    dev = dev_creds(pki)
    with PahoClient(g.port, dev, "311") as c:
        assert c.connect() == 0, c.error
    b.stop()
    for version in ("311", "5"):
        mark = g.mark()
        c = PahoClient(g.port, dev, version)
        try:
            code = c.connect(timeout=15.0)
            assert code == SERVER_UNAVAILABLE[version], (code, c.error)
            assert c.disconnected.wait(t(5.0)), "connection left open after the refusal"
        finally:
            c.close()
        ev = g.wait_event("upstream-failed", since=mark)
        assert ev.get("reason") == "upstream-unavailable", ev["_line"]
        assert ev.get("side") == "upstream" and ev.get("detail", "").strip(), ev["_line"]
        assert ev.get("device") == DEVICE, ev["_line"]
        assert not g.events("mqtt-connack", since=mark, code="0x00")
    # The broker comes back: so do the devices, without touching certbridge.
    b.start()
    with PahoClient(g.port, dev, "5") as c:
        assert c.connect() == 0, c.error


# ---------------------------------------------------------------- 9. command line


def test_cli_version(certbridge_bin):
    r = run_bin(certbridge_bin, "-V")
    assert r.returncode == 0, r
    assert re.search(r"\d+\.\d+", r.stdout), r.stdout


def test_cli_no_arguments_is_usage(certbridge_bin):
    r = run_bin(certbridge_bin)
    assert r.returncode == 2, r
    assert "usage" in r.stderr.lower(), r.stderr
    assert r.stdout == "", r.stdout


def test_cli_unknown_option_is_usage(certbridge_bin):
    r = run_bin(certbridge_bin, "-x")
    assert r.returncode == 2, r
    assert "usage" in r.stderr.lower(), r.stderr


def test_cli_missing_config(certbridge_bin):
    missing = "/nonexistent-%s.ini" % uid()
    for args in (["-c", missing], ["-t", "-c", missing]):
        r = run_bin(certbridge_bin, *args)
        assert r.returncode == 1, (args, r)
        assert missing in r.stderr, r.stderr


# ---------------------------------------------------------------- 10. SIGTERM


def test_sigterm_with_open_sessions(broker, make_gateway, pki):
    # 2s as in the harness; longer only when everything runs slower
    # (valgrind), so that the checks below fit in the grace.
    g = make_gateway(broker.port, {"gateway": {"shutdown_grace": "%dms" % (t(2) * 1000)}})
    topic = "cbtest/term/%s" % uid()
    a = PahoClient(g.port, pki.device("dev-old-1"), "311", keepalive=60)
    z = PahoClient(g.port, pki.device("dev-new-1"), "5", keepalive=60)
    try:
        assert a.connect() == 0, a.error
        assert z.connect() == 0, z.error
        assert z.subscribe(topic, 1) == 1
        mark = g.mark()
        g.proc.send_signal(signal.SIGTERM)  # our child, by PID

        # It stops accepting at once: the listener goes away.
        deadline = time.monotonic() + t(5)
        while cbtest.port_listening(g.port) and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", g.port), timeout=t(5)).close()
        g.wait_event("stopping", since=mark)
        assert g.running(), "certbridge exited with sessions open\n" + g.report()

        # Established sessions keep working during shutdown_grace.
        a.publish(topic, b"during grace", qos=1)
        assert bytes(z.wait_message().payload) == b"during grace"
        # One ends on its own; the other is closed when the grace is over.
        a.close()
        # (device-closed or broker-closed: the broker closes on the
        # forwarded DISCONNECT too; see test_device_disconnect_is_device_closed)
        g.wait_event("session-closed", since=mark, device="dev-old-1",
                     reason=re.compile(r"^(device|broker)-closed$"))
        try:
            rc = g.proc.wait(timeout=t(15))
        except subprocess.TimeoutExpired:
            raise AssertionError("certbridge still running after shutdown_grace\n"
                                 + g.report()) from None
        assert rc == 0, "exit code %s after SIGTERM\n%s" % (rc, g.report())
        ev = g.wait_event("session-closed", since=mark, device="dev-new-1")
        assert ev.get("reason") == "shutdown", ev["_line"]
        assert z.disconnected.wait(t(5)), "the device was not disconnected"
    finally:
        a.close()
        z.close()
        g.stop()


def test_sigterm_idle_exits_at_once(broker, make_gateway):
    g = make_gateway(broker.port)
    mark = g.mark()
    g.proc.send_signal(signal.SIGTERM)
    try:
        rc = g.proc.wait(timeout=t(10))
    except subprocess.TimeoutExpired:
        raise AssertionError("certbridge did not exit\n" + g.report()) from None
    assert rc == 0, g.report()
    g.wait_event("stopped", since=mark)
    assert not [e for e in g.events("stopping", since=mark)
                if "shutdown_grace over" in e.get("msg", "")], g.report()
    g.stop()


# ---------------------------------------------------------------- records that come early


def _bio_exchange(sock, tls, inc, out, until, timeout):
    """Feeds what the socket brings into the TLS object until until() says
    enough (or the peer closes, or timeout). Returns the plaintext read."""
    got = b""
    sock.settimeout(0.2)
    deadline = time.monotonic() + t(timeout)
    while not until(got) and time.monotonic() < deadline:
        pending = out.read()
        if pending:
            sock.sendall(pending)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        if not data:
            break
        inc.write(data)
        try:
            while True:
                chunk = tls.read(65536)
                if not chunk:
                    break
                got += chunk
        except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
            pass
    return got


def test_first_records_in_the_handshakes_last_write(gateway, pki):
    """A device whose TLS stack sends its last handshake flight and its
    CONNECT in one write, then PINGREQ and DISCONNECT in one write: the
    gateway reads records ahead of wolfSSL (docs/architecture.md, "TLS
    without bufferevents"), so bytes that arrived with the handshake must
    still be seen, and later ones still wake it."""
    creds = dev_creds(pki)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(creds.cafile)
    ctx.load_cert_chain(creds.cert, creds.key)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname="localhost")
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=t(10))
    try:
        deadline = time.monotonic() + t(10)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                assert time.monotonic() < deadline, "no TLS handshake"
                pending = out.read()
                if pending:
                    sock.sendall(pending)
                data = sock.recv(65536)
                assert data, "the gateway closed during the handshake"
                inc.write(data)
        # The client's Finished is still in `out`: the CONNECT joins it.
        tls.write(connect_packet("early-%s" % uid(), keepalive=30))
        flight = out.read()
        sock.sendall(flight)
        got = _bio_exchange(sock, tls, inc, out, lambda b: len(b) >= 4, 10)
        assert got[:4] == b"\x20\x02\x00\x00", got
        tls.write(b"\xc0\x00" + DISCONNECT)  # PINGREQ, DISCONNECT: one record
        sock.sendall(out.read())
        got = _bio_exchange(sock, tls, inc, out, lambda b: len(b) >= 2, 10)
        assert got[:2] == b"\xd0\x00", got
        # DISCONNECT ends the session: the gateway closes the connection.
        sock.settimeout(t(10))
        end = time.monotonic() + t(10)
        while time.monotonic() < end:
            try:
                if not sock.recv(65536):
                    break
            except (ConnectionResetError, socket.timeout):
                break
        else:
            raise AssertionError("the gateway kept the connection after DISCONNECT")
    finally:
        sock.close()
    wait_until("the session closed as device-closed",
               lambda: "reason=device-closed" in gateway.log_text())


@pytest.mark.parametrize("tls", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_device_that_rejects_the_gateway_chain(gateway, pki, tls):
    """A device whose trust store does not hold the gateway's CA aborts with
    an alert: peer-rejected with the alert's name over TLS 1.3 as over 1.2
    (in 1.3 the alert comes in plaintext while wolfSSL already expects
    encrypted records, and wolfSSL never reads it: certbridge does)."""
    creds = dev_creds(pki)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ctx.maximum_version = tls
    ctx.load_verify_locations(pki("ca-new.pem"))  # not the gateway's CA
    ctx.load_cert_chain(creds.cert, creds.key)
    mark = gateway.mark()
    raw = socket.create_connection(("127.0.0.1", gateway.port), timeout=t(5))
    local = raw.getsockname()[1]
    with pytest.raises(ssl.SSLCertVerificationError):
        ctx.wrap_socket(raw, server_hostname="localhost")
    raw.close()
    ev = gateway.wait_event("handshake-failed", since=mark, peer="127.0.0.1:%d" % local)
    assert ev.get("reason") == "peer-rejected", ev["_line"]
    assert "unknown_ca" in ev["detail"] and "give the device" in ev["detail"], ev["_line"]
