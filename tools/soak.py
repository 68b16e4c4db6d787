#!/usr/bin/python3
"""soak.py - certbridge reliability suite: faults injected while messages flow.

    /usr/bin/python3 tools/soak.py --quick      # scenarios 1-7, small scale, ~2 min
    /usr/bin/python3 tools/soak.py              # 1-7 larger, plus 8 (10,000 sessions, 10 min)
    /usr/bin/python3 tools/soak.py --quick --only 1,4   # a subset

Everything runs on this machine on 127.0.0.x and free ports: a fresh lab PKI
(tools/mkpki.py) with one client certificate per simulated device, a TLS
mosquitto that requires client certificates (the broker of tools/bench.py),
and certbridge in front of it. Each scenario starts its own mosquitto and
certbridge, warms certbridge up with the load it is about to carry, takes a
baseline (descriptors, RSS), injects one fault while messages flow, and then
asserts:

  - every device connection got a defined outcome: a CONNACK code, a close
    that certbridge logged with a reason= (key=value log, one line per
    event), or a close at accept counted by certbridge's limit counters
    (certbridge_limit_refusals_total on the admin endpoint);
  - no QoS 1 message was lost: every message whose PUBACK the publisher
    received was delivered, byte for byte as sent (sequence number and
    checksum), in order per publisher (QoS 1 may deliver a message again,
    never altered and never after a later one seen for the first time);
  - certbridge's descriptors return to the baseline and its RSS to within
    the stated margin of the baseline (after a settle period);
  - the scenario's own promise (see each scenario's docstring).

Scenarios: 1 broker SIGKILL + restart, 2 broker certificate rotation,
3 50 reloads under load, 4 TLS slowloris, 5 CONNECT slowloris, 6 connection
flood past max_connections, 7 slow readers, 8 (full mode only) 10,000
sessions held for 10 minutes with PINGREQ at their keepalive.

The results table (markdown) is printed at the end and written to --out.
The exit status is 0 only when every assertion held. Processes are started by
this script and stopped by their PID, never by name. Work folder (PKI,
configurations, every log): --workdir (emptied at start).
See docs/reliability.md.
"""

import argparse
import asyncio
import collections
import datetime
import hashlib
import http.client
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.dont_write_bytecode = True  # leave no __pycache__ in the checkout
sys.path.insert(0, str(REPO / "tools"))
import benchkit  # noqa: E402
import mkpki  # noqa: E402

MIB = 1024.0  # proc_mem figures are KiB


def log(msg):
    print("soak: " + msg, file=sys.stderr, flush=True)


class SoakError(Exception):
    """The suite itself cannot run (not an assertion about certbridge)."""


# Assertions that reveal a certbridge bug found by this suite are tagged with
# a key of KNOWN_BUGS: while the key is listed here, a failure of that
# assertion is reported as "known bug" and does not fail the run. Delete the
# entry (or run with --strict) once the bug is fixed, to re-enable it.
KNOWN_BUGS = {
}


# ---------------------------------------------------------------- processes


def _child_nofile():
    """preexec_fn: the child's soft descriptor limit up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class SoakProc(benchkit.Proc):
    """benchkit.Proc, with the child's RLIMIT_NOFILE raised to the hard limit."""

    def start(self, timeout=15.0):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     cwd=str(self.log_path.parent), preexec_fn=_child_nofile)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SoakError("%s exited with %s before listening; log %s:\n%s"
                                % (self.name, self.proc.returncode, self.log_path, self.tail()))
            if benchkit.listening(self.port):
                return self
            time.sleep(0.02)
        self.stop()
        raise SoakError("%s did not listen on %d within %.0fs" % (self.name, self.port, timeout))

    def kill(self):
        """SIGKILL our child by its PID and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        try:
            self._log.close()
        except (AttributeError, OSError):
            pass


_FIELD = re.compile(r'([A-Za-z_][A-Za-z0-9_.\-]*)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_line(line):
    """The key=value fields of one certbridge text log line."""
    out = {}
    for m in _FIELD.finditer(line):
        v = m.group(2)
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = re.sub(r"\\(.)", r"\1", v[1:-1])
        out[m.group(1)] = v
    return out


def scrape_metrics(port, timeout=5.0):
    """{(name, frozenset(label pairs)): value} from certbridge's /metrics."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", "/metrics")
        r = c.getresponse()
        body = r.read().decode("utf-8", "replace")
        if r.status != 200:
            raise SoakError("GET /metrics: HTTP %d" % r.status)
    finally:
        c.close()
    out = {}
    for line in body.splitlines():
        if not line or line[0] == "#":
            continue
        m = re.match(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{.*\})?\s+(\S+)", line)
        if not m:
            continue
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        try:
            out[(m.group(1), labels)] = float(m.group(3))
        except ValueError:
            pass
    return out


def metric(samples, name, **labels):
    """Sum of the samples of name whose labels include labels."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= lab)


BROKER_EXTRA = "set_tcp_nodelay true\n"


class Lab:
    """One scenario's mosquitto and certbridge, on fixed ports so that either
    can be restarted in place."""

    def __init__(self, suite, name, gateway=None, broker_extra=""):
        self.suite = suite
        self.pki = suite.pki
        self.dir = suite.workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.broker_port = benchkit.free_port()
        self.port = benchkit.free_port()
        self.admin_port = benchkit.free_port()
        self.gw_over = gateway or {}
        self.broker_extra = broker_extra
        self.broker = None
        self.gw = None
        self.broker_starts = 0

    # -- broker

    def start_broker(self, certfile=None, keyfile=None):
        conf = self.dir / "mosquitto.conf"
        text = benchkit.MOSQUITTO_CONF.format(
            user=pwd.getpwuid(os.geteuid()).pw_name, port=self.broker_port,
            cafile=self.pki / "cloud-client-ca.pem",
            certfile=certfile or self.pki / "broker-chain.pem",
            keyfile=keyfile or self.pki / "broker.key")
        conf.write_text(text + BROKER_EXTRA + self.broker_extra)
        self.broker_starts += 1
        deadline = time.monotonic() + 10
        while benchkit.listening(self.broker_port) and time.monotonic() < deadline:
            time.sleep(0.02)  # the previous one's socket
        self.broker = SoakProc("mosquitto", ["mosquitto", "-c", str(conf)], self.dir,
                               self.broker_port).start()
        return self.broker

    # -- gateway

    def ini(self):
        g = {"max_connections": 2000, "handshake_timeout": "10s", "max_handshakes": None,
             "max_handshakes_per_ip": None, "connect_rate": None, "connect_timeout": None}
        g.update(self.gw_over)
        opt = lambda k: "" if g[k] is None else "%s = %s\n" % (k, g[k])  # noqa: E731
        p = self.pki
        return ("; written by tools/soak.py\n"
                "[gateway]\nadmin_listen = 127.0.0.1:%d\nstate_file =\nlog_level = info\n"
                "%sshutdown_grace = 2s\n\n"
                "[downstream]\nlisten = 127.0.0.1:%d\ncert = %s/gateway-chain.pem\n"
                "key = %s/gateway.key\nclient_auth = required\n%s%s%s\n"
                "[ca.old]\nfile = %s/ca-old.pem\n\n[ca.new]\nfile = %s/ca-new.pem\n\n"
                "[upstream]\naddress = 127.0.0.1:%d\nsni = localhost\nca = %s/cloud-root.pem\n"
                "cert = %s/gateway-upstream.pem\nkey = %s/gateway-upstream.key\n%s%s\n"
                "[mqtt]\nidentity = cn\nclientid = check\nusername = keep\n"
                "max_packet_size = 1M\n"
                % (self.admin_port, opt("max_connections"), self.port, p, p,
                   opt("handshake_timeout"), opt("max_handshakes"),
                   opt("max_handshakes_per_ip"), p, p, self.broker_port, p, p, p,
                   opt("connect_rate"), opt("connect_timeout")))

    def start_gateway(self):
        ini = self.dir / "certbridge.ini"
        ini.write_text(self.ini())
        self.gw = SoakProc("certbridge", [self.suite.binary, "-c", str(ini)], self.dir,
                           self.port).start()
        deadline = time.monotonic() + 10
        while not benchkit.listening(self.admin_port):
            if time.monotonic() > deadline:
                raise SoakError("certbridge's admin endpoint did not listen")
            time.sleep(0.02)
        return self.gw

    def start(self):
        self.start_broker()
        self.start_gateway()
        return self

    def stop(self):
        rc = {}
        for p in (self.gw, self.broker):
            if p is not None:
                rc[p.name] = p.stop()
        return rc

    # -- certbridge observations

    def lines(self):
        try:
            data = self.gw.log_path.read_bytes()
        except OSError:
            return []
        text = data[:data.rfind(b"\n") + 1].decode("utf-8", "replace")
        return text.splitlines()

    def events(self, event=None, **match):
        out = []
        for line in self.lines():
            f = parse_line(line)
            if not f or (event is not None and f.get("event") != event):
                continue
            if all(f.get(k) == v for k, v in match.items()):
                out.append(f)
        return out

    def metrics(self):
        return scrape_metrics(self.admin_port)

    async def ametrics(self):
        return await asyncio.to_thread(scrape_metrics, self.admin_port)

    def fds(self):
        return benchkit.proc_fds(self.gw.pid)

    def rss(self):
        return benchkit.proc_mem(self.gw.pid)["VmRSS"]

    async def settle_rss(self, quiet_s=1.0, timeout=15.0):
        return (await asyncio.to_thread(benchkit.settle_rss, self.gw.pid, quiet_s, timeout))["VmRSS"]

    async def wait_fds(self, limit, timeout=20.0):
        deadline = time.monotonic() + timeout
        n = self.fds()
        while n > limit and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            n = self.fds()
        return n

    async def wait_event(self, event, count=1, timeout=10.0, **match):
        deadline = time.monotonic() + timeout
        while True:
            ev = self.events(event, **match)
            if len(ev) >= count or time.monotonic() > deadline:
                return ev
            await asyncio.sleep(0.05)


# ---------------------------------------------------------------- devices


class Fleet:
    """One client certificate per simulated device (CN = client id), issued
    by the lab's old device CA, made on first use and cached. The devices
    share one key (a test shortcut: certbridge judges the certificate)."""

    def __init__(self, pki):
        self.pki = pki
        self.dir = pki / "fleet"
        self.dir.mkdir(exist_ok=True)
        self.ca = mkpki.load_pair(str(pki / "ca-old"))
        self.key = mkpki.new_key()
        self.key_path = self.dir / "device.key"
        mkpki.write_key(self.key_path, self.key)
        self.ctxs = {}

    def ctx(self, name):
        c = self.ctxs.get(name)
        if c is None:
            cert = self.dir / (name + ".pem")
            if not cert.exists():
                mkpki.write_cert(cert, mkpki.make_leaf(name, self.ca, usage="client",
                                                       key=self.key))
            c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            c.minimum_version = ssl.TLSVersion.TLSv1_3
            c.load_verify_locations(str(self.pki / "ca-old.pem"))
            c.load_cert_chain(str(cert), str(self.key_path))
            self.ctxs[name] = c
        return c

    def prepare(self, names):
        for n in names:
            self.ctx(n)


def varint(n):
    return benchkit.varint(n)


def connect_packet(client_id, keepalive):
    return benchkit.connect_packet(client_id, keepalive)


def publish_packet(topic, payload, qos=0, pid=0, dup=False):
    tb = topic.encode()
    body = struct.pack(">H", len(tb)) + tb + (struct.pack(">H", pid) if qos else b"") + payload
    return bytes([0x30 | (qos << 1) | (0x08 if dup and qos else 0)]) + varint(len(body)) + body


PINGREQ = b"\xc0\x00"


def device_ip(idx):
    """The address a simulated device connects from: 127.0.0.100-199, as
    the devices of a site each have their own (certbridge's
    max_handshakes_per_ip counts connections per address; a hundred devices
    reconnecting at once from one address would meet that limit, which
    scenario 4 tests on its own)."""
    return "127.0.0.%d" % (100 + idx % 100)


class Attempt:
    """One TCP connection a simulated device made to certbridge."""

    __slots__ = ("role", "name", "peer", "t0", "connack", "closed_by", "t_end", "error",
                 "outcome", "reason", "state")

    def __init__(self, role, name):
        self.role, self.name = role, name
        self.peer = None
        self.t0 = time.monotonic()
        self.connack = None      # CONNACK return code, when one came
        self.closed_by = None    # "peer", "us", "tcp" (no TCP connection)
        self.t_end = None
        self.error = None
        self.outcome = None      # filled by Run.judge_outcomes()
        self.reason = None
        self.state = None


class MqttConn:
    """One device connection: TCP from a chosen 127.0.0.x, TLS, MQTT 3.1.1,
    and a reader task that answers QoS 1 PUBLISH with PUBACK and hands
    packets to callbacks. Every wait is bounded."""

    def __init__(self, run, role, name, ctx, local_ip="127.0.0.1", rcvbuf=None):
        self.run, self.name, self.ctx, self.local_ip = run, name, ctx, local_ip
        self.rcvbuf = rcvbuf
        self.att = Attempt(role, name)
        run.attempts.append(self.att)
        self.r = self.w = None
        self.reader_task = None
        self.closed = asyncio.Event()
        self.closing = False
        self.gate = asyncio.Event()   # cleared: the reader stops reading
        self.gate.set()
        self.on_publish = None        # (topic, payload, qos, dup)
        self.on_puback = None         # (pid)
        self.suback = None
        self.pingresps = 0
        self.pingresp_ev = asyncio.Event()
        self.unexpected = []

    async def open(self, port, client_id, keepalive=60, timeout=20.0):
        """TCP + TLS + CONNECT + CONNACK. Returns the CONNACK code, or None
        when the connection ended before one (att.error says how)."""
        loop = asyncio.get_running_loop()
        a = self.att
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if self.rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        try:
            sock.bind((self.local_ip, 0))
            await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), timeout)
        except (OSError, asyncio.TimeoutError) as e:
            sock.close()
            a.closed_by, a.error, a.t_end = "tcp", "%s: %s" % (type(e).__name__, e), \
                time.monotonic()
            self.closed.set()
            return None
        a.peer = "%s:%d" % sock.getsockname()
        try:
            self.r, self.w = await asyncio.wait_for(asyncio.open_connection(
                sock=sock, ssl=self.ctx, server_hostname="localhost", limit=1 << 16,
                ssl_handshake_timeout=timeout), timeout)
            self.w.write(connect_packet(client_id, keepalive))
            first, body = await asyncio.wait_for(self._read_packet(), timeout)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ssl.SSLError,
                EOFError) as e:
            a.closed_by = "peer" if not isinstance(e, asyncio.TimeoutError) else "us"
            a.error, a.t_end = "%s: %s" % (type(e).__name__, e), time.monotonic()
            self._abort()
            self.closed.set()
            return None
        if first != 0x20 or len(body) != 2:
            a.error = "first packet %#x, not CONNACK" % first
            self._abort()
            a.closed_by, a.t_end = "us", time.monotonic()
            self.closed.set()
            return None
        a.connack = body[1]
        self.reader_task = asyncio.ensure_future(self._reader())
        if a.connack != 0:
            # certbridge (or the broker) closes after a refusal.
            try:
                await asyncio.wait_for(self.closed.wait(), 10)
            except asyncio.TimeoutError:
                await self.abort()
        return a.connack

    async def _read_packet(self):
        """One packet read directly (before the reader task runs)."""
        first = (await self.r.readexactly(1))[0]
        n, mult = 0, 1
        for _ in range(4):
            b = (await self.r.readexactly(1))[0]
            n += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                break
        return first, await self.r.readexactly(n)

    async def _reader(self):
        buf = bytearray()
        try:
            while True:
                if not self.gate.is_set():
                    await self.gate.wait()
                chunk = await self.r.read(1 << 16)
                if not chunk:
                    break
                buf += chunk
                pos = self._parse(buf)
                if pos:
                    del buf[:pos]
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        a = self.att
        if a.closed_by is None:
            a.closed_by = "us" if self.closing else "peer"
            a.t_end = time.monotonic()
        self.closed.set()
        self.pingresp_ev.set()

    def _parse(self, buf):
        mv = memoryview(buf)
        pos, end = 0, len(buf)
        try:
            while end - pos >= 2:
                rl, mult, i = 0, 1, pos + 1
                while True:
                    if i >= end:
                        return pos
                    b = mv[i]
                    rl += (b & 0x7F) * mult
                    mult <<= 7
                    i += 1
                    if not b & 0x80:
                        break
                if end - i < rl:
                    return pos
                first = mv[pos]
                kind = first & 0xF0
                if kind == 0x30:
                    qos = (first >> 1) & 3
                    tl = (mv[i] << 8) | mv[i + 1]
                    topic = bytes(mv[i + 2:i + 2 + tl]).decode("utf-8", "replace")
                    ps = i + 2 + tl
                    pid = 0
                    if qos:
                        pid = (mv[ps] << 8) | mv[ps + 1]
                        ps += 2
                    payload = bytes(mv[ps:i + rl])
                    if qos == 1:
                        self.w.write(b"\x40\x02" + struct.pack(">H", pid))
                    if self.on_publish:
                        self.on_publish(topic, payload, qos, bool(first & 0x08))
                elif kind == 0x40:
                    if self.on_puback:
                        self.on_puback((mv[i] << 8) | mv[i + 1])
                elif kind == 0x90:
                    if self.suback is not None and not self.suback.done():
                        self.suback.set_result(bytes(mv[i:i + rl]))
                elif kind == 0xD0:
                    self.pingresps += 1
                    self.pingresp_ev.set()
                else:
                    self.unexpected.append(first)
                pos = i + rl
            return pos
        finally:
            mv.release()

    async def subscribe(self, topic, qos=1, timeout=10.0):
        """SUBSCRIBE and wait for the SUBACK; True when granted."""
        self.suback = asyncio.get_running_loop().create_future()
        tb = topic.encode()
        body = struct.pack(">H", 1) + struct.pack(">H", len(tb)) + tb + bytes([qos])
        self.write(b"\x82" + varint(len(body)) + body)
        done, _ = await asyncio.wait([self.suback, asyncio.ensure_future(self.closed.wait())],
                                     timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if self.suback.done():
            return self.suback.result()[-1] == qos
        return False

    def write(self, data):
        if self.w is not None and not self.closed.is_set():
            self.w.write(data)

    async def drain(self, timeout=30.0):
        if self.w is not None and not self.closed.is_set():
            try:
                await asyncio.wait_for(self.w.drain(), timeout)
            except (OSError, ssl.SSLError, asyncio.TimeoutError, ConnectionError):
                pass

    async def ping(self, timeout=10.0):
        """PINGREQ; True when a PINGRESP came."""
        n = self.pingresps
        self.pingresp_ev.clear()
        self.write(PINGREQ)
        deadline = time.monotonic() + timeout
        while self.pingresps == n and not self.closed.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self.pingresp_ev.wait(), left)
            except asyncio.TimeoutError:
                return False
            self.pingresp_ev.clear()
        return self.pingresps > n

    async def disconnect(self, timeout=5.0):
        """DISCONNECT, then wait for certbridge to close (it drains first)."""
        if self.closed.is_set():
            return
        self.closing = True
        self.write(benchkit.DISCONNECT)
        self.gate.set()
        try:
            await asyncio.wait_for(self.closed.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        await self.abort(graceful=True)

    def _abort(self):
        if self.w is not None:
            self.w.transport.abort()

    async def abort(self, graceful=False):
        self.closing = True
        if self.w is not None:
            if graceful:
                try:
                    self.w.close()
                    await asyncio.wait_for(self.w.wait_closed(), 3)
                except (OSError, ssl.SSLError, asyncio.TimeoutError, ConnectionError):
                    self.w.transport.abort()
            else:
                self.w.transport.abort()
        if self.reader_task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.reader_task), 3)
            except asyncio.TimeoutError:
                self.reader_task.cancel()
        if self.att.closed_by is None:
            self.att.closed_by, self.att.t_end = "us", time.monotonic()
        self.closed.set()


_PAT = bytes(((i * 131 + 7) >> 1) & 0xFF for i in range(65536 + 256))


def make_payload(kind, dev, seq, size):
    """Message seq of publisher dev: kind, dev, seq, a body that depends on
    all three, and an 8-byte BLAKE2 checksum of everything before it."""
    head = struct.pack(">BIQ", kind, dev, seq)
    n = max(0, size - len(head) - 8)
    o = (seq * 7 + dev * 13) & 0xFF
    body = _PAT[o:o + n]
    return head + body + hashlib.blake2b(head + body, digest_size=8).digest()


def read_payload(p):
    """(kind, dev, seq) of a payload, or None when it is malformed or its
    checksum or body does not match."""
    if len(p) < 21:
        return None
    kind, dev, seq = struct.unpack_from(">BIQ", p, 0)
    if p != make_payload(kind, dev, seq, len(p)):
        return None
    return kind, dev, seq


class Stream:
    """What one subscriber received from one publisher: first deliveries
    must come in increasing sequence order; a repeat must be a message
    already delivered (QoS 1 redelivery)."""

    __slots__ = ("seen", "last_first", "dups", "out_of_order", "bad")

    def __init__(self):
        self.seen = set()
        self.last_first = -1
        self.dups = 0
        self.out_of_order = 0
        self.bad = 0

    def add(self, seq):
        if seq in self.seen:
            self.dups += 1
        else:
            if seq < self.last_first:
                self.out_of_order += 1
            self.seen.add(seq)
            self.last_first = max(self.last_first, seq)


class EchoDevice:
    """A device that subscribes (QoS 1) to its own topic and publishes QoS 1
    messages to it, at most `window` unacknowledged, about `rate` a second.
    When its connection ends it reconnects (backoff 0.2-1 s), subscribes
    again and first sends again, in order, what was not acknowledged.
    With per_conn, it disconnects after that many PUBACKs and connects
    again (a device that churns).

    Since mosquitto forwards the message to the subscriber before it sends
    the PUBACK to the publisher, and both go to the same connection here,
    a PUBACK'd message has always been delivered already: none may be
    missing."""

    KIND = 1

    def __init__(self, run, idx, name, window=8, rate=20.0, keepalive=60, size=None,
                 role="device", per_conn=None, local_ip=None):
        self.run, self.idx, self.name = run, idx, name
        self.topic = "soak/%s/%s" % (run.tag, name)
        self.window, self.rate, self.keepalive = window, rate, keepalive
        self.size = size
        self.role = role
        self.per_conn = per_conn   # disconnect after this many PUBACKs, then reconnect
        self.local_ip = local_ip or device_ip(idx)
        self.ctx = run.fleet.ctx(name)
        self.next_seq = 0
        self.acked = set()
        self.resend = []
        self.inflight = {}     # pid -> seq, current connection
        self.pid = 0
        self.stream = Stream()
        self.bad = 0
        self.foreign = 0
        self.conns = []
        self.conn = None
        self.connacks = collections.Counter()
        self.peer_closes = 0
        self.no_connack = 0
        self.puback_ev = asyncio.Event()
        self.stop = asyncio.Event()
        self.up = asyncio.Event()    # set while subscribed and publishing
        self.done = False
        self.failed = None
        self.received_at = []  # monotonic time of each delivery (rate checks)

    def _size(self, seq):
        return self.size or (40 + (seq * 37 + self.idx * 11) % 200)

    def on_publish(self, topic, payload, qos, dup):
        info = read_payload(payload)
        if info is None:
            self.bad += 1
            return
        kind, dev, seq = info
        if kind != self.KIND or dev != self.idx or topic != self.topic:
            self.foreign += 1
            return
        self.stream.add(seq)
        self.received_at.append(time.monotonic())

    def on_puback(self, pid):
        seq = self.inflight.pop(pid, None)
        if seq is not None:
            self.acked.add(seq)
            self.puback_ev.set()

    def _send(self, seq, dup):
        self.pid = self.pid % 65535 + 1
        self.inflight[self.pid] = seq
        self.conn.write(publish_packet(self.topic, make_payload(self.KIND, self.idx, seq,
                                                                self._size(seq)),
                                       1, self.pid, dup))

    async def connect_once(self, port):
        c = MqttConn(self.run, self.role, self.name, self.ctx, self.local_ip)
        c.on_publish = self.on_publish
        c.on_puback = self.on_puback
        self.conns.append(c)
        code = await c.open(port, self.name, self.keepalive)
        if code is None:
            self.no_connack += 1
            return None
        self.connacks[code] += 1
        if code != 0:
            return code
        if not await c.subscribe(self.topic, 1):
            await c.abort()
            return None
        self.conn = c
        return 0

    async def run_loop(self, port, deadline):
        """Publishes until stop is set, reconnecting whenever the connection
        ends; then waits for every PUBACK and disconnects."""
        backoff = 0.2
        interval = 1.0 / self.rate if self.rate else 0
        while True:
            if time.monotonic() > deadline:
                self.failed = "no connection by the deadline (CONNACKs %s, no CONNACK %d)" \
                    % (dict(self.connacks), self.no_connack)
                return
            code = await self.connect_once(port)
            if code != 0:
                await asyncio.sleep(backoff * (0.75 + 0.5 * (hash((self.idx, len(self.conns)))
                                                             % 100) / 100.0))
                backoff = min(1.0, backoff * 1.5)
                continue
            backoff = 0.2
            c = self.conn
            # What the last connection left unacknowledged goes first, in order.
            todo = sorted(set(self.resend))
            self.resend = []
            self.inflight.clear()
            self.up.set()
            t_next = time.monotonic()
            acked0 = len(self.acked)
            while not c.closed.is_set():
                if self.stop.is_set() and not todo and not self.inflight:
                    break
                if self.per_conn and len(self.acked) - acked0 >= self.per_conn \
                        and not todo and not self.inflight:
                    break
                if len(self.inflight) >= self.window or (self.stop.is_set() and not todo):
                    self.puback_ev.clear()
                    try:
                        await asyncio.wait_for(self.puback_ev.wait(), 0.5)
                    except asyncio.TimeoutError:
                        pass
                    continue
                now = time.monotonic()
                if interval and now < t_next and not todo:
                    await asyncio.sleep(min(t_next - now, 0.5))
                    continue
                if todo:
                    self._send(todo.pop(0), True)
                else:
                    self._send(self.next_seq, False)
                    self.next_seq += 1
                    t_next = max(t_next + interval, now - 1.0)
            self.up.clear()
            if c.closed.is_set():
                if c.att.closed_by == "peer":
                    self.peer_closes += 1
                self.resend = todo + sorted(self.inflight.values())
                self.inflight.clear()
                continue
            await c.disconnect()
            if self.stop.is_set():
                self.done = True
                return
            await asyncio.sleep(0.2)

    def lost(self):
        return len(self.acked - self.stream.seen)


class Run:
    """What one scenario observes: its attempts, figures and assertions."""

    def __init__(self, suite, num, title, lab):
        self.suite, self.num, self.title, self.lab = suite, num, title, lab
        self.tag = "s%d-%s" % (num, suite.runid)
        self.fleet = suite.fleet
        self.attempts = []
        self.failures = []
        self.known = []
        self.notes = []
        self.row = {"fault": title, "load": "", "outcome": "", "lost": "", "leaked": ""}
        self.t0 = time.monotonic()

    def check(self, ok, what, bug=None):
        """An assertion. bug: a KNOWN_BUGS key; while listed, a failure is
        reported but does not fail the run."""
        if ok:
            return True
        if bug and bug in KNOWN_BUGS and not self.suite.args.strict:
            self.known.append("%s [known bug %s]" % (what, bug))
            log("  KNOWN BUG %s: %s" % (bug, what))
        else:
            self.failures.append(what)
            log("  FAILED: %s" % what)
        return False

    def note(self, text):
        self.notes.append(text)
        log("  " + text)

    def names(self, prefix, n, start=0):
        return ["soak-%s-%s-%d" % (self.tag, prefix, i) for i in range(start, start + n)]

    # -- outcomes

    def judge_outcomes(self):
        """Matches each attempt with certbridge's end line for its peer
        (session-closed, session-revoked, or handshake-failed side=downstream,
        in log order). An attempt with
        no line was closed at accept (a limit); their number is returned for
        comparison with certbridge's counters."""
        ends = collections.defaultdict(list)
        for line in self.lab.lines():
            f = parse_line(line)
            # handshake-failed side=upstream is the broker side's cause;
            # the session-closed line after it ends the device's connection.
            if f.get("peer") and (f.get("event") in ("session-closed", "session-revoked") or (
                    f.get("event") == "handshake-failed" and f.get("side") == "downstream")):
                ends[f["peer"]].append(f)
        by_peer = collections.defaultdict(list)
        for a in self.attempts:
            if a.peer is None:
                a.outcome = "no TCP connection (%s)" % a.error
                continue
            by_peer[a.peer].append(a)
        at_accept = 0
        for peer, atts in by_peer.items():
            atts.sort(key=lambda x: x.t0)
            ev = ends.get(peer, [])
            # Attempts closed at accept leave no line: when there are fewer
            # lines than attempts, those without a CONNACK or with the
            # earliest end are the ones closed at accept.
            if len(ev) < len(atts):
                ranked = sorted(atts, key=lambda x: (x.connack is not None,
                                                     (x.t_end or 0) - x.t0))
                silent = set(id(x) for x in ranked[:len(atts) - len(ev)])
            else:
                silent = set()
            it = iter(ev)
            for a in atts:
                if id(a) in silent:
                    a.outcome = "closed at accept"
                    at_accept += 1
                    continue
                f = next(it, None)
                a.reason, a.state = f.get("reason"), f.get("state")
                a.outcome = ("CONNACK %d, " % a.connack if a.connack is not None else "") \
                    + "reason=%s" % a.reason
            extra = list(it)
            self.check(not extra, "certbridge logged %d end lines for peer %s, which had %d "
                       "connections" % (len(ev), peer, len(atts)))
        return at_accept

    def check_defined(self, allowed_reasons, roles=None, allow_accept=False):
        """Every attempt (of roles) ended with a CONNACK code or a logged
        reason in allowed_reasons (or, with allow_accept, at accept)."""
        bad = collections.Counter()
        for a in self.attempts:
            if roles is not None and a.role not in roles:
                continue
            if a.outcome == "closed at accept":
                if not allow_accept:
                    bad["%s: closed at accept with no log line" % a.role] += 1
                continue
            if a.reason is None:
                bad["%s: %s" % (a.role, a.outcome)] += 1
            elif a.reason not in allowed_reasons:
                bad["%s: reason=%s (%s)" % (a.role, a.reason, a.error or a.closed_by)] += 1
        self.check(not bad, "connections without a defined outcome, or with an unexpected "
                   "one: %s" % dict(bad))
        return bad


def fmt_kib(kib):
    return "%+.1f MiB" % (kib / MIB)


def fmt_n(n):
    return "{:,}".format(n)


# ---------------------------------------------------------------- scenario helpers

FD_SLACK = 2  # a descriptor or two may come and go (an admin scrape, /dev/urandom)


async def wait_idle(lab, timeout=20.0):
    """Until certbridge reports no device connection (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        m = await lab.ametrics()
        n = metric(m, "certbridge_connections")
        if n == 0 or time.monotonic() > deadline:
            return n
        await asyncio.sleep(0.1)


async def echo_round(run, devs, port, until_acked, timeout=60.0):
    """Runs echo devices until each has until_acked messages PUBACK'd; then
    they finish (every PUBACK awaited) and disconnect. Returns the seconds
    it took."""
    deadline = time.monotonic() + timeout
    tasks = [asyncio.ensure_future(d.run_loop(port, deadline)) for d in devs]
    t0 = time.monotonic()
    try:
        await asyncio.wait_for(asyncio.gather(*[d.up.wait() for d in devs]),
                               max(1.0, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        pass
    while time.monotonic() < deadline and any(
            len(d.acked) < until_acked for d in devs if not d.failed):
        await asyncio.sleep(0.05)
    for d in devs:
        d.stop.set()
    await finish(tasks, deadline)
    return time.monotonic() - t0


async def finish(tasks, deadline):
    left = max(5.0, deadline - time.monotonic())
    done, pending = await asyncio.wait(tasks, timeout=left)
    for t in pending:
        t.cancel()
    for t in done:
        if t.exception() is not None:
            raise t.exception()
    return not pending


async def warm_up(run, n):
    """Brings certbridge to the heap it needs for n sessions moving
    messages at once (wolfSSL's one-time ECC cache, allocator arenas,
    libevent tables), so that the baseline taken next is a fair one."""
    devs = [EchoDevice(run, 900000 + i, name, rate=50, role="warm-up")
            for i, name in enumerate(run.names("w", n))]
    await echo_round(run, devs, run.lab.port, until_acked=5, timeout=90)
    bad = [d.name for d in devs if not d.done]
    if bad:
        raise SoakError("warm-up: %d devices did not complete (%s)" % (len(bad), bad[0]))


async def take_baseline(run):
    lab = run.lab
    n = await wait_idle(lab)
    if n:
        raise SoakError("certbridge still reports %d connections after the warm-up" % n)
    await lab.wait_fds(0, timeout=1.0)
    run.base_fds = lab.fds()
    run.base_fd_list = fd_list(lab.gw.pid)
    run.base_rss = await lab.settle_rss()
    run.t_fault = time.monotonic()
    log("  baseline: %d descriptors, RSS %.1f MiB" % (run.base_fds, run.base_rss / MIB))


async def check_leaks(run, margin_kib):
    """Descriptors back to the baseline (+FD_SLACK) and RSS within margin
    of the baseline, once every session has ended."""
    lab = run.lab
    n = await wait_idle(lab, timeout=30)
    run.check(n == 0, "certbridge still reports %d connections at the end" % n)
    # Its own accounting back to zero too: a handshake slot or a queue place
    # that is never given back would refuse devices later.
    m = await lab.ametrics()
    for name in ("certbridge_handshakes_pending", "certbridge_upstream_connect_queue"):
        run.check(metric(m, name) == 0, "%s is %d at the end" % (name, metric(m, name)))
    fds = await lab.wait_fds(run.base_fds + FD_SLACK, timeout=20)
    fds = await lab.wait_fds(run.base_fds, timeout=3)
    if fds > run.base_fds:
        extra = [f for f in fd_list(lab.gw.pid) if f not in run.base_fd_list]
        run.note("descriptors above the baseline at the end: %s" % extra[:10])
    rss = await lab.settle_rss()
    run.end_fds, run.end_rss = fds, rss
    run.check(fds <= run.base_fds + FD_SLACK, "descriptors %d -> %d (allowed +%d)"
              % (run.base_fds, fds, FD_SLACK))
    run.check(rss - run.base_rss <= margin_kib, "RSS %.1f -> %.1f MiB, margin %.1f MiB"
              % (run.base_rss / MIB, rss / MIB, margin_kib / MIB))
    run.row["leaked"] = "fds %d -> %d; RSS %s (margin %.0f MiB)" % (
        run.base_fds, fds, fmt_kib(rss - run.base_rss), margin_kib / MIB)


def fd_list(pid):
    d = "/proc/%d/fd" % pid
    out = []
    for f in os.listdir(d):
        try:
            out.append((int(f), os.readlink(d + "/" + f)))
        except OSError:
            pass
    return sorted(out)


def check_refusal_lines(run, limit, refused):
    """event=connection-refused for limit: at most one line a second, and
    their count= never adds up to more than were refused."""
    lines = run.lab.events("connection-refused", reason="limit", limit=limit)
    run.check(lines, "no event=connection-refused reason=limit limit=%s" % limit)
    ts = []
    for e in lines:
        try:
            ts.append(datetime.datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp())
        except (KeyError, ValueError):
            run.check(False, "connection-refused line without a readable ts=: %s" % e)
    close = sum(1 for a, b in zip(ts, ts[1:]) if b - a < 0.99)
    run.check(close == 0, "%d connection-refused lines for %s less than a second after the "
              "previous one" % (close, limit))
    counted = sum(int(e.get("count", 0)) for e in lines)
    run.check(0 < counted <= refused, "connection-refused count= adds up to %d, %d were "
              "refused" % (counted, refused))
    return lines, counted


def check_alive(run):
    lab = run.lab
    run.check(lab.gw.alive(), "certbridge exited (%s); log %s" % (
        lab.gw.proc.returncode, lab.gw.log_path))
    errors = [l for l in lab.lines() if " level=error " in l]
    run.check(not errors, "certbridge logged %d error lines, first: %s"
              % (len(errors), errors[0][:300] if errors else ""))


def check_echo(run, devs):
    """No PUBACK'd message missing, none altered, none out of order."""
    lost = sum(d.lost() for d in devs)
    acked = sum(len(d.acked) for d in devs)
    bad = sum(d.bad + d.foreign for d in devs)
    ooo = sum(d.stream.out_of_order for d in devs)
    dups = sum(d.stream.dups for d in devs)
    unfinished = [d for d in devs if not d.done]
    run.check(lost == 0, "%d of %d PUBACK'd messages never delivered" % (lost, acked))
    run.check(bad == 0, "%d messages altered or misdelivered" % bad)
    run.check(ooo == 0, "%d messages delivered out of order" % ooo)
    run.check(not unfinished, "%d devices did not finish: %s" % (
        len(unfinished), "; ".join("%s: %s" % (d.name, d.failed or "unfinished")
                                   for d in unfinished[:3])))
    run.row["lost"] = "0 of %s" % fmt_n(acked) if lost == 0 else "**%d** of %s" % (
        lost, fmt_n(acked))
    if dups:
        run.row["lost"] += " (%d redelivered)" % dups
    return acked


# ---------------------------------------------------------------- 1-3: faults under echo load


async def echo_fault(run, p, inject, role="device", at_accept_ok=False):
    """The frame of scenarios 1-3: warm-up, baseline, p['devices'] echo
    devices publishing, p['before'] seconds, then inject() (the fault,
    returning a dict of what it saw), every device back up, p['after']
    seconds more, then every PUBACK awaited, disconnect, and the common
    checks (messages, descriptors, RSS, certbridge alive, outcomes)."""
    lab = run.lab
    n = p["devices"]
    await warm_up(run, n + p.get("churn", 0))
    await take_baseline(run)
    devs = [EchoDevice(run, i, name, rate=p["rate"], role=role)
            for i, name in enumerate(run.names("d", n))]
    # Devices that connect, publish 3 messages and leave, again and again:
    # the fault also finds sessions in their handshake, in the connect
    # queue, or waiting for the broker's CONNACK.
    churn = [EchoDevice(run, 1000 + i, name, rate=50, role="churn", per_conn=3)
             for i, name in enumerate(run.names("c", p.get("churn", 0)))]
    run.churn = churn
    deadline = time.monotonic() + p["before"] + p.get("down", 0) + p["after"] + 120
    tasks = [asyncio.ensure_future(d.run_loop(lab.port, deadline)) for d in devs + churn]
    try:
        await asyncio.wait_for(asyncio.gather(*[d.up.wait() for d in devs]), 30)
        await asyncio.sleep(p["before"])
        run.check(all(d.acked for d in devs), "some devices had no message PUBACK'd before "
                  "the fault")
        live = {d.name: d.conn for d in devs}
        info = await inject(devs)
        info["live"] = live
        t_back = info.get("t_back", time.monotonic())
        try:
            await asyncio.wait_for(asyncio.gather(*[d.up.wait() for d in devs if not d.done]),
                                   30)
        except asyncio.TimeoutError:
            pass
        info["back_s"] = time.monotonic() - t_back
        await asyncio.sleep(p["after"])
    finally:
        for d in devs + churn:
            d.stop.set()
        await finish(tasks, deadline)
    info["acked"] = check_echo(run, devs + churn)
    info["churn_conns"] = sum(len(d.conns) for d in churn)
    await check_leaks(run, p["margin"])
    check_alive(run)
    at_accept = run.judge_outcomes()
    if not at_accept_ok:
        run.check(at_accept == 0, "%d connections closed at accept with no log line"
                  % at_accept)
    info["seconds"] = time.monotonic() - run.t_fault
    run.row["load"] = "%d devices, QoS 1 to themselves, %s msgs PUBACK'd in %.0f s" % (
        n, fmt_n(info["acked"]), info["seconds"])
    if churn:
        run.row["load"] += "; %d more reconnecting after every 3 (%d connections)" % (
            len(churn), info["churn_conns"])
    return devs, info


def check_broker_gone(run, devs, info):
    """After the broker went away: the connections live then were closed by
    certbridge with broker-closed (or upstream-unavailable), every device
    reconnected with CONNACK 0, only CONNACK 0 and 3 were seen."""
    n = len(devs)
    killed = collections.Counter()
    for name, c in info["live"].items():
        a = c.att
        killed[a.reason] += 1
        run.check(a.closed_by == "peer" and a.reason in ("broker-closed", "upstream-unavailable"),
                  "%s: the connection live at the fault ended with %s (closed by %s)"
                  % (name, a.outcome, a.closed_by))
    reconnected = sum(1 for d in devs if d.connacks[0] >= 2)
    run.check(reconnected == n, "%d of %d devices reconnected with CONNACK 0" % (reconnected, n))
    run.check_defined({"broker-closed", "upstream-unavailable", "device-closed"},
                      roles={"device", "churn"})
    codes = collections.Counter(a.connack for a in run.attempts
                                if a.role in ("device", "churn"))
    run.check(set(c for c in codes if c is not None) <= {0, 3},
              "unexpected CONNACK codes %s" % dict(codes))
    return killed, reconnected, codes


# ---------------------------------------------------------------- 1. broker killed


async def scenario_broker_kill(run, p):
    """Broker SIGKILLed mid-stream and restarted after p['down'] seconds while
    every device publishes QoS 1 to itself: every device's connection is
    closed (reason=broker-closed or upstream-unavailable), every device
    reconnects (CONNACK 3 while the broker is down, then 0), no PUBACK'd
    message is lost, altered or reordered."""
    lab = run.lab

    async def inject(devs):
        acked = sum(len(d.acked) for d in devs)
        log("  SIGKILL mosquitto (pid %d) with %d messages PUBACK'd" % (lab.broker.pid, acked))
        lab.broker.kill()
        t_kill = time.monotonic()
        await asyncio.sleep(p["down"])
        await asyncio.to_thread(lab.start_broker)
        log("  mosquitto restarted after %.1fs" % (time.monotonic() - t_kill))
        return {"t_back": time.monotonic()}

    devs, info = await echo_fault(run, p, inject)
    killed, reconnected, codes = check_broker_gone(run, devs, info)
    n = len(devs)
    run.row["outcome"] = ("%d/%d closed (%s); %d CONNACK 3 while down; %d/%d back "
                          "(CONNACK 0) %.1f s after restart" % (
                              sum(killed.values()), n,
                              ", ".join("%s %d" % kv for kv in sorted(killed.items(), key=str)),
                              codes.get(3, 0), reconnected, n, info["back_s"]))


# ---------------------------------------------------------------- 2. broker certificate rotated


async def scenario_rotation(run, p):
    """The broker's leaf and intermediate replaced (same cloud root, made
    with mkpki) and mosquitto restarted with them while messages flow:
    sessions reconnect and continue, certbridge logs upstream-chain-changed
    once, naming the new intermediate; nothing lost."""
    lab = run.lab
    root = mkpki.load_pair(str(run.suite.pki / "cloud-root"))
    inter_cn = "certbridge lab Cloud Intermediate CA rotated %s" % run.suite.runid
    inter = mkpki.make_ca(inter_cn, issuer=root, path_length=0)
    leaf = mkpki.make_leaf("localhost", inter, usage="server", dns=["localhost"],
                           ips=["127.0.0.1"])
    rot = lab.dir / "rotated"
    mkpki.write_pair(str(rot), "broker", leaf, chain=[inter])

    async def inject(devs):
        log("  restarting mosquitto with a new leaf and intermediate")
        t = time.monotonic()
        await asyncio.to_thread(lab.broker.stop)
        await asyncio.to_thread(lab.start_broker, rot / "broker-chain.pem", rot / "broker.key")
        log("  mosquitto back after %.1fs" % (time.monotonic() - t))
        return {"t_back": time.monotonic()}

    devs, info = await echo_fault(run, p, inject)
    killed, reconnected, codes = check_broker_gone(run, devs, info)
    changed = lab.events("upstream-chain-changed")
    run.check(len(changed) == 1, "certbridge logged upstream-chain-changed %d times "
              "(expected once)" % len(changed))
    run.check(any(inter_cn in e.get("chain", "") for e in changed),
              "upstream-chain-changed does not name the new intermediate %r" % inter_cn)
    n = len(devs)
    run.row["outcome"] = ("%d/%d closed (%s), %d/%d back (CONNACK 0) %.1f s after restart; "
                          "upstream-chain-changed logged %d time(s) with the new "
                          "intermediate" % (
                              sum(killed.values()), n,
                              ", ".join("%s %d" % kv for kv in sorted(killed.items(), key=str)),
                              reconnected, n, info["back_s"], len(changed)))


# ---------------------------------------------------------------- 3. reloads


async def scenario_reloads(run, p):
    """p['reloads'] SIGHUPs, one after the other (each waits for its
    event=reloaded), while the devices publish QoS 1: no session dropped,
    no message lost, the same certbridge process; devices that connect
    during the reloads are admitted."""
    lab = run.lab
    pid = lab.gw.pid
    late = []

    async def latecomer(i, name):
        d = EchoDevice(run, 500000 + i, name, rate=50, role="latecomer")
        late.append(d)
        await echo_round(run, [d], lab.port, until_acked=5, timeout=30)

    async def inject(devs):
        m0 = await lab.ametrics()
        before = len(lab.events("reloaded"))
        t = time.monotonic()
        lt = []
        names = run.names("late", p["reloads"] // 10 + 1)
        for i in range(p["reloads"]):
            os.kill(pid, signal.SIGHUP)  # our child, by its PID
            got = await lab.wait_event("reloaded", count=before + i + 1, timeout=15)
            if not run.check(len(got) >= before + i + 1, "reload %d: no event=reloaded "
                             "within 15 s" % (i + 1)):
                break
            if i % 10 == 5:
                lt.append(asyncio.ensure_future(latecomer(i, names[i // 10])))
            await asyncio.sleep(p["spacing"])
        if lt:
            await asyncio.wait(lt, timeout=40)
        m1 = await lab.ametrics()
        return {"t_back": time.monotonic(), "reload_s": time.monotonic() - t,
                "ok": metric(m1, "certbridge_config_reloads_total", result="ok")
                - metric(m0, "certbridge_config_reloads_total", result="ok"),
                "fail": metric(m1, "certbridge_config_reloads_total", result="fail")
                - metric(m0, "certbridge_config_reloads_total", result="fail")}

    devs, info = await echo_fault(run, p, inject)
    run.check(lab.gw.alive() and lab.gw.pid == pid, "certbridge PID changed or it exited")
    run.check(info["ok"] == p["reloads"] and info["fail"] == 0,
              "config_reloads_total: %d ok, %d failed (expected %d ok)"
              % (info["ok"], info["fail"], p["reloads"]))
    dropped = [d.name for d in devs if len(d.conns) != 1 or d.peer_closes]
    run.check(not dropped, "%d sessions dropped during the reloads (%s)"
              % (len(dropped), ", ".join(dropped[:3])))
    revoked = sum(int(e.get("closed", "0")) for e in lab.events("rejudged"))
    run.check(revoked == 0, "%d sessions closed by re-judging after a reload" % revoked)
    late_ok = sum(1 for d in late if d.done and d.connacks[0] == 1 and not d.lost())
    run.check(late_ok == len(late), "%d of %d devices connecting during the reloads "
              "completed" % (late_ok, len(late)))
    run.check_defined({"device-closed"})
    run.row["outcome"] = ("%d reloads in %.1f s, each confirmed (event=reloaded), same PID; "
                          "%d/%d sessions kept; %d/%d devices connecting meanwhile admitted"
                          % (info["ok"], info["reload_s"], len(devs) - len(dropped), len(devs),
                             late_ok, len(late)))


# ---------------------------------------------------------------- 4-6: slowloris and floods


def client_hello(ctx):
    """The bytes of a real TLS ClientHello from ctx."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    o = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        o.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


async def trickle_conn(run, role, name, port, local_ip, data, t_stop, tls_ctx=None):
    """A connection from local_ip that sends data one byte a second (after
    a TLS handshake with tls_ctx, if given) until certbridge closes it or
    t_stop. Returns (attempt, something to close at the end of the wave):
    the socket stays open until then, so its port is not reused."""
    loop = asyncio.get_running_loop()
    a = Attempt(role, name)
    run.attempts.append(a)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        sock.bind((local_ip, 0))
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), 10)
    except (OSError, asyncio.TimeoutError) as e:
        sock.close()
        a.closed_by, a.error, a.t_end = "tcp", "%s: %s" % (type(e).__name__, e), \
            time.monotonic()
        return a, None
    a.peer = "%s:%d" % sock.getsockname()
    r = w = None
    if tls_ctx is not None:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(
                sock=sock, ssl=tls_ctx, server_hostname="localhost"), 10)
        except (OSError, asyncio.TimeoutError, ssl.SSLError) as e:
            a.closed_by, a.error, a.t_end = "peer", "TLS: %s" % e, time.monotonic()
            return a, sock

    async def send(b):
        if w is not None:
            w.write(b)
            await w.drain()
        else:
            await loop.sock_sendall(sock, b)

    async def recv(timeout):
        if w is not None:
            return await asyncio.wait_for(r.read(4096), timeout)
        return await asyncio.wait_for(loop.sock_recv(sock, 4096), timeout)

    i, t_next = 0, time.monotonic()
    try:
        while time.monotonic() < t_stop:
            now = time.monotonic()
            if now >= t_next and i < len(data):
                await send(data[i:i + 1])
                i += 1
                t_next += 1.0
            try:
                got = await recv(max(0.01, min(t_next, t_stop) - time.monotonic()))
            except asyncio.TimeoutError:
                continue
            if not got:
                raise EOFError()
            # An alert or a session ticket: keep going until the close.
    except (OSError, EOFError, ssl.SSLError, asyncio.IncompleteReadError) as e:
        a.closed_by, a.t_end = "peer", time.monotonic()
        a.error = "%s after %d bytes" % (type(e).__name__, i)
    else:
        a.closed_by, a.t_end, a.error = "us", time.monotonic(), "still open at t_stop"
    return a, (w.transport if w is not None else sock)


def close_all(handles):
    for h in handles:
        if h is None:
            continue
        try:
            if isinstance(h, socket.socket):
                h.close()
            else:
                h.abort()
        except OSError:
            pass


async def sample_gauges(run, stop, out):
    """Max of certbridge's handshakes_pending gauge and descriptor count
    while stop is not set."""
    while not stop.is_set():
        try:
            m = await run.lab.ametrics()
            out["pending"] = max(out.get("pending", 0),
                                 metric(m, "certbridge_handshakes_pending"))
            out["fds"] = max(out.get("fds", 0), run.lab.fds())
        except (OSError, SoakError, http.client.HTTPException):
            pass
        try:
            await asyncio.wait_for(stop.wait(), 0.2)
        except asyncio.TimeoutError:
            pass


async def valid_devices(run, n, delay, role="valid"):
    """n devices from 127.0.0.1, one after the other, each connecting,
    exchanging 3 QoS 1 messages and disconnecting; returns them with the
    time each took to reach CONNACK."""
    await asyncio.sleep(delay)
    out = []
    for i, name in enumerate(run.names(role, n)):
        d = EchoDevice(run, 700000 + i, name, rate=50, role=role, local_ip="127.0.0.1")
        t = time.monotonic()
        await echo_round(run, [d], run.lab.port, until_acked=3, timeout=20)
        d.took = (d.conns[0].att.t_end or time.monotonic()) - t if d.conns else None
        out.append(d)
    return out


def check_valid(run, valid):
    ok = [d for d in valid if d.done and d.connacks[0] == 1 and not d.lost()]
    run.check(len(ok) == len(valid), "%d of %d valid devices connected (CONNACK 0) and "
              "exchanged messages during the attack" % (len(ok), len(valid)))
    return ok


async def scenario_tls_slowloris(run, p):
    """p['addrs'] addresses (127.0.0.2...) each open p['per_addr']
    connections at once and send a real ClientHello one byte a second, in
    p['waves'] waves: per address only max_handshakes_per_ip are held (the
    handshakes_pending gauge), the rest are closed at accept (counted,
    logged as connection-refused limit=max_handshakes_per_ip), every held
    one is closed at handshake_timeout with reason=timeout, and devices from
    127.0.0.1 connect meanwhile."""
    lab = run.lab
    per_ip = p["gateway"]["max_handshakes_per_ip"]
    hs = float(p["gateway"]["handshake_timeout"].rstrip("s"))
    addrs = ["127.0.0.%d" % (2 + i) for i in range(p["addrs"])]
    hello = client_hello(run.fleet.ctx(run.names("hello", 1)[0]))
    await warm_up(run, p["warm"])
    await take_baseline(run)
    m0 = await lab.ametrics()
    gauges, valid, waves = {}, [], []
    for wave in range(p["waves"]):
        t0 = time.monotonic()
        t_stop = t0 + hs + 4
        stop = asyncio.Event()
        sampler = asyncio.ensure_future(sample_gauges(run, stop, gauges))
        vt = asyncio.ensure_future(valid_devices(run, p["valid"], 0.5, "valid"))
        res = await asyncio.gather(*[
            trickle_conn(run, "attacker", "w%d-%s-%d" % (wave, ip, i), lab.port, ip, hello,
                         t_stop)
            for ip in addrs for i in range(p["per_addr"])])
        valid += await vt
        stop.set()
        await sampler
        close_all(h for _, h in res)
        waves.append((t0, [a for a, _ in res]))
    await asyncio.sleep(0.5)
    m1 = await lab.ametrics()
    await check_leaks(run, p["margin"])
    check_alive(run)
    at_accept = run.judge_outcomes()
    refused = metric(m1, "certbridge_limit_refusals_total") - \
        metric(m0, "certbridge_limit_refusals_total")
    per_ip_refused = metric(m1, "certbridge_limit_refusals_total",
                            limit="max_handshakes_per_ip") - \
        metric(m0, "certbridge_limit_refusals_total", limit="max_handshakes_per_ip")
    run.check(at_accept == refused == per_ip_refused,
              "connections with no log line %d, limit refusals counted %d (per-IP %d)"
              % (at_accept, refused, per_ip_refused))
    held_total, late = 0, []
    for t0, atts in waves:
        for ip in addrs:
            mine = [a for a in atts if a.peer and a.peer.startswith(ip + ":")]
            held = [a for a in mine if a.reason is not None]
            held_total += len(held)
            run.check(len(held) == per_ip, "%s: %d connections held in their handshake, "
                      "expected max_handshakes_per_ip = %d" % (ip, len(held), per_ip))
            for a in held:
                took = (a.t_end or t0) - a.t0
                if a.reason != "timeout" or not hs - 0.5 <= took <= hs + 1.5:
                    late.append("%s reason=%s after %.1fs" % (a.peer, a.reason, took))
        run.check(all(a.peer for a in atts), "some attackers got no TCP connection")
    run.check(not late, "%d held connections not closed at handshake_timeout with "
              "reason=timeout: %s" % (len(late), late[:3]))
    check_refusal_lines(run, "max_handshakes_per_ip", per_ip_refused)
    cap = per_ip * len(addrs)
    run.check(gauges.get("pending", 0) <= cap + 1, "handshakes_pending reached %d (cap %d + "
              "one valid device)" % (gauges.get("pending", 0), cap))
    run.check(gauges.get("fds", 0) <= run.base_fds + cap + 6, "certbridge held %d descriptors "
              "(baseline %d + %d)" % (gauges.get("fds", 0), run.base_fds, cap))
    ok = check_valid(run, valid)
    run.check_defined({"timeout"}, roles={"attacker"}, allow_accept=True)
    run.check_defined({"device-closed"}, roles={"valid"})
    total = sum(len(a) for _, a in waves)
    run.row["load"] = ("%d slow ClientHellos (1 byte/s) from %d address(es) in %d wave(s); "
                       "max_handshakes_per_ip %d, handshake_timeout %gs"
                       % (total, len(addrs), len(waves), per_ip, hs))
    run.row["outcome"] = ("%d held at once at most (handshakes_pending max %d), each closed "
                          "reason=timeout at %gs; %d closed at accept (limit=max_handshakes_per_"
                          "ip, all counted); %d/%d valid devices CONNACK 0 meanwhile (max %.0f ms)"
                          % (cap, gauges.get("pending", 0), hs, at_accept, len(ok), len(valid),
                             1000 * max([d.took or 0 for d in valid] or [0])))
    run.row["lost"] = "0 of %d (valid devices)" % sum(len(d.acked) for d in valid) \
        if not sum(d.lost() for d in valid) else "**%d**" % sum(d.lost() for d in valid)


async def scenario_connect_slowloris(run, p):
    """Devices that complete TLS and then send their CONNECT one byte a
    second: each is closed at handshake_timeout (counted from accept) with
    reason=timeout; devices from 127.0.0.1 connect meanwhile."""
    lab = run.lab
    hs = float(p["gateway"]["handshake_timeout"].rstrip("s"))
    addrs = ["127.0.0.%d" % (10 + i) for i in range(p["addrs"])]
    names = run.names("slow", p["per_addr"] * len(addrs))
    run.fleet.prepare(names)
    await warm_up(run, p["warm"])
    await take_baseline(run)
    valid, waves = [], []
    for wave in range(p["waves"]):
        t0 = time.monotonic()
        t_stop = t0 + hs + 4
        vt = asyncio.ensure_future(valid_devices(run, p["valid"], 0.5, "valid"))
        res = await asyncio.gather(*[
            trickle_conn(run, "attacker", name, lab.port, addrs[k % len(addrs)],
                         connect_packet(name, 60), t_stop, tls_ctx=run.fleet.ctx(name))
            for k, name in enumerate(names)])
        valid += await vt
        close_all(h for _, h in res)
        waves.append((t0, [a for a, _ in res]))
    await check_leaks(run, p["margin"])
    check_alive(run)
    at_accept = run.judge_outcomes()
    run.check(at_accept == 0, "%d connections closed at accept with no log line" % at_accept)
    late = []
    for t0, atts in waves:
        for a in atts:
            took = (a.t_end or t0) - a.t0
            if a.reason != "timeout" or a.state != "wait-connect" \
                    or not hs - 0.5 <= took <= hs + 1.5:
                late.append("%s reason=%s state=%s after %.1fs (%s)"
                            % (a.peer, a.reason, a.state, took, a.error))
    run.check(not late, "%d slow CONNECTs not closed at handshake_timeout with reason=timeout "
              "in state wait-connect: %s" % (len(late), late[:3]))
    ok = check_valid(run, valid)
    run.check_defined({"timeout"}, roles={"attacker"})
    run.check_defined({"device-closed"}, roles={"valid"})
    total = sum(len(a) for _, a in waves)
    run.row["load"] = ("%d TLS sessions trickling CONNECT (1 byte/s) from %d address(es) in %d "
                       "wave(s); handshake_timeout %gs" % (total, len(addrs), len(waves), hs))
    run.row["outcome"] = ("%d/%d closed reason=timeout (state wait-connect) at %gs; %d/%d valid "
                          "devices CONNACK 0 meanwhile (max %.0f ms)"
                          % (total - len(late), total, hs, len(ok), len(valid),
                             1000 * max([d.took or 0 for d in valid] or [0])))
    lost = sum(d.lost() for d in valid)
    run.row["lost"] = "0 of %d (valid devices)" % sum(len(d.acked) for d in valid) \
        if not lost else "**%d**" % lost


async def scenario_flood(run, p):
    """[gateway] max_connections sessions established and publishing; a
    flood of connections for p['flood_s'] seconds (full TLS attempts from
    127.0.0.20, p['concurrency'] at once): every one is closed at accept (counted, logged as
    connection-refused limit=max_connections), the established sessions
    keep exchanging messages, none is dropped, and a freed slot is usable
    again at once."""
    lab = run.lab
    maxc = p["gateway"]["max_connections"]
    p = dict(p, devices=maxc)
    fctx = run.fleet.ctx(run.names("flood", 1)[0])
    flood_name = run.names("flood", 1)[0]

    async def inject(devs):
        m0 = await lab.ametrics()
        t0 = time.monotonic()
        nxt = 0

        t_end = t0 + p["flood_s"]

        async def worker():
            nonlocal nxt
            while time.monotonic() < t_end:
                nxt += 1
                c = MqttConn(run, "flood", flood_name, fctx, "127.0.0.20")
                code = await c.open(lab.port, flood_name, 60, timeout=10)
                if code is not None:
                    await c.abort()

        await asyncio.gather(*[worker() for _ in range(p["concurrency"])])
        t1 = time.monotonic()
        m1 = await lab.ametrics()
        during = [sum(1 for t in d.received_at if t0 <= t <= t1) for d in devs]
        # A freed slot: one device leaves, a new one takes its place.
        devs[0].stop.set()
        deadline = time.monotonic() + 15
        while not devs[0].done and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await lab.wait_fds(2 * maxc + run.base_fds - 2, 5)
        newcomer = EchoDevice(run, 600000, run.names("new", 1)[0], rate=50, role="newcomer")
        await echo_round(run, [newcomer], lab.port, until_acked=3, timeout=20)
        return {"t_back": time.monotonic(), "flood_s": t1 - t0, "during": during,
                "refused": metric(m1, "certbridge_limit_refusals_total", limit="max_connections")
                - metric(m0, "certbridge_limit_refusals_total", limit="max_connections"),
                "refused_all": metric(m1, "certbridge_limit_refusals_total")
                - metric(m0, "certbridge_limit_refusals_total"),
                "newcomer": newcomer}

    devs, info = await echo_fault(run, p, inject, at_accept_ok=True)
    flood = [a for a in run.attempts if a.role == "flood"]
    at_accept = sum(1 for a in flood if a.outcome == "closed at accept")
    run.check(at_accept == len(flood) == info["refused"] == info["refused_all"],
              "%d flood connections: %d closed at accept with no log line, %d counted by "
              "limit=max_connections (%d by any limit)"
              % (len(flood), at_accept, info["refused"], info["refused_all"]))
    check_refusal_lines(run, "max_connections", info["refused"])
    dropped = [d.name for d in devs if len(d.conns) != 1 or d.peer_closes]
    run.check(not dropped, "%d established sessions dropped (%s)" % (len(dropped), dropped[:3]))
    starved = sum(1 for n in info["during"] if n == 0)
    run.check(starved == 0, "%d established devices received nothing during the flood"
              % starved)
    nc = info["newcomer"]
    run.check(nc.done and nc.connacks[0] == 1, "a device could not take a freed slot: "
              "CONNACKs %s" % dict(nc.connacks))
    run.check_defined({"device-closed"}, roles={"device", "newcomer", "warm-up"})
    run.row["load"] = ("max_connections %d held, QoS 1 to themselves; flood of %d TLS "
                       "connections (%d in flight) in %.1f s; %s msgs PUBACK'd"
                       % (maxc, len(flood), p["concurrency"], info["flood_s"],
                          fmt_n(info["acked"])))
    run.row["outcome"] = ("%d/%d flood connections closed at accept (limit=max_connections, "
                          "all counted); %d/%d sessions kept, each received messages during "
                          "the flood (min %d); a freed slot taken at once (CONNACK 0)"
                          % (at_accept, len(flood), maxc - len(dropped), maxc,
                             min(info["during"] or [0])))


# ---------------------------------------------------------------- 7. slow readers


def upstream_unread(broker_port):
    """Bytes waiting, unread, in the receive queues of connections to
    broker_port (certbridge's upstream sockets): what certbridge has
    stopped reading from the broker (/proc/net/tcp rx_queue)."""
    total = 0
    try:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                p = line.split()
                if int(p[2].rsplit(":", 1)[1], 16) == broker_port:
                    total += int(p[4].split(":")[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return total


async def scenario_slow_reader(run, p):
    """p['pairs'] subscribers (QoS 1, small receive buffer) stop reading
    while their publishers send QoS 1 and large QoS 0 messages at them for
    p['stall'] seconds: certbridge's RSS stays bounded (backpressure, about
    256 KiB buffered per direction per session) while a bystander device
    keeps exchanging messages; once the readers read again each gets every
    QoS 1 message, in order, and the QoS 0 ones it gets are intact and in
    order. A first, shorter stall (p['warm_stall']) is the warm-up: it
    brings the heap to what buffering costs, so that the baseline taken
    after it shows growth, not the allocator keeping freed buffers."""
    lab = run.lab
    k = p["pairs"]
    await warm_up(run, 2 * k + 1)
    run.base_rss = await lab.settle_rss()
    r0 = await slow_round(run, p, p["warm_stall"], 0)
    await take_baseline(run)
    r = await slow_round(run, p, p["stall"], 1)
    r["growth"] = max(r["growth"], r0["growth"])
    await check_leaks(run, p["margin"])
    check_alive(run)
    at_accept = run.judge_outcomes()
    run.check(at_accept == 0, "%d connections closed at accept with no log line" % at_accept)
    run.check_defined({"device-closed"})
    run.note("stall %.1f s: %.1f MB of QoS 0 pushed at %d stalled readers, certbridge RSS "
             "+%.1f MiB at peak (over the RSS before the first stall), up to %d KiB left "
             "unread in its upstream sockets (backpressure); the readers then drained in "
             "%.1f s"
             % (r["stall_s"], r["sent0"] / 1e6, k, r["growth"] / MIB, r["unread"] // 1024,
                r["drain_s"]))
    run.row["load"] = ("%d subscribers not reading for %.0f s (receive buffer %d KiB) while "
                       "their publishers send %.1f MB QoS 0 (%d KiB messages) and %d QoS 1; "
                       "a bystander device publishing" % (k, r["stall_s"], p["rcvbuf"] // 1024,
                                                          r["sent0"] / 1e6, p["q0_size"] // 1024,
                                                          r["sent1"]))
    run.row["outcome"] = ("RSS +%.1f MiB at peak (bound %.0f MiB = %d x %d KiB + %d MiB); "
                          "no session dropped; bystander kept receiving; after resuming: "
                          "%d/%d QoS 1 in order, %d QoS 0 delivered intact (the broker may "
                          "drop QoS 0)" % (r["growth"] / MIB, r["bound"] / MIB, k,
                                           p["per_session_kib"], p["fixed_kib"] // 1024,
                                           r["acked"] - r["lost"], r["acked"], r["got0"]))
    run.row["lost"] = ("0 of %s QoS 1" % fmt_n(r["acked"]) if r["lost"] == 0
                       else "**%d** of %s QoS 1" % (r["lost"], fmt_n(r["acked"])))


async def slow_round(run, p, stall, rnd):
    """One stall of every subscriber; checks messages and the RSS bound."""
    lab = run.lab
    k = p["pairs"]
    subs, pubs, st = [], [], []
    for i in range(k):
        sname, pname = run.names("r%d-sub" % rnd, 1, i)[0], run.names("r%d-pub" % rnd, 1, i)[0]
        topic = "soak/%s/slow%d/%d" % (run.tag, rnd, i)
        s = MqttConn(run, "subscriber", sname, run.fleet.ctx(sname), device_ip(2 * i),
                     rcvbuf=p["rcvbuf"])
        q = {"q1": Stream(), "q0": Stream(), "bad": 0, "n0": 0, "n1": 0, "acked": set(),
             "inflight": {}, "pid": 0, "sent0": 0, "sent0_bytes": 0, "topic": topic,
             "ev": asyncio.Event(), "last": time.monotonic()}

        def on_pub(topic, payload, qos, dup, q=q, i=i):
            info = read_payload(payload)
            q["last"] = time.monotonic()
            if info is None or info[1] != i:
                q["bad"] += 1
                return
            kind, _, seq = info
            if kind == 1:
                q["q1"].add(seq)
                q["n1"] += 1
            else:
                q["q0"].add(seq)
                q["n0"] += 1
            q["ev"].set()

        def on_ack(pid, q=q):
            seq = q["inflight"].pop(pid, None)
            if seq is not None:
                q["acked"].add(seq)

        s.on_publish = on_pub
        if await s.open(lab.port, sname) != 0 or not await s.subscribe(topic, 1):
            raise SoakError("subscriber %s could not subscribe" % sname)
        pc = MqttConn(run, "publisher", pname, run.fleet.ctx(pname), device_ip(2 * i + 1))
        pc.on_puback = on_ack
        if await pc.open(lab.port, pname) != 0:
            raise SoakError("publisher %s could not connect" % pname)
        subs.append(s)
        pubs.append(pc)
        st.append(q)
    bystander = EchoDevice(run, 800000 + rnd, run.names("bystander", 1, rnd)[0], rate=20)
    by_task = asyncio.ensure_future(bystander.run_loop(lab.port, time.monotonic() + 300))
    await asyncio.wait_for(bystander.up.wait(), 20)
    for s in subs:
        s.gate.clear()     # the readers stop reading
    peak = {"rss": run.base_rss, "unread": 0}
    stop = asyncio.Event()

    async def sampler():
        while not stop.is_set():
            peak["rss"] = max(peak["rss"], lab.rss())
            peak["unread"] = max(peak["unread"], upstream_unread(lab.broker_port))
            try:
                await asyncio.wait_for(stop.wait(), 0.1)
            except asyncio.TimeoutError:
                pass

    async def publisher(i):
        pc, q = pubs[i], st[i]
        t0 = time.monotonic()
        t_end = t0 + stall
        seq0 = seq1 = 0
        tick = 0.05
        while time.monotonic() < t_end and not pc.closed.is_set():
            el = time.monotonic() - t0
            while q["sent0_bytes"] < el * p["q0_rate"]:
                pl = make_payload(0, i, seq0, p["q0_size"])
                pc.write(publish_packet(q["topic"], pl, 0))
                q["sent0_bytes"] += len(pl)
                seq0 += 1
            while seq1 < min(p["q1"], int(el / stall * p["q1"]) + 1) \
                    and len(q["inflight"]) < 10:
                q["pid"] = q["pid"] % 65535 + 1
                q["inflight"][q["pid"]] = seq1
                pc.write(publish_packet(q["topic"], make_payload(1, i, seq1, 1024), 1, q["pid"]))
                seq1 += 1
            await pc.drain()
            await asyncio.sleep(tick)
        q["sent0"], q["sent1"] = seq0, seq1
        # Every QoS 1 message sent and PUBACK'd (the broker acknowledges
        # whatever its subscriber does).
        while seq1 < p["q1"] and not pc.closed.is_set():
            if len(q["inflight"]) < 10:
                q["pid"] = q["pid"] % 65535 + 1
                q["inflight"][q["pid"]] = seq1
                pc.write(publish_packet(q["topic"], make_payload(1, i, seq1, 1024), 1, q["pid"]))
                seq1 += 1
            else:
                await asyncio.sleep(0.01)
        q["sent1"] = seq1
        deadline = time.monotonic() + 30
        while q["inflight"] and time.monotonic() < deadline and not pc.closed.is_set():
            await asyncio.sleep(0.05)

    smp = asyncio.ensure_future(sampler())
    t_stall = time.monotonic()
    by0 = len(bystander.received_at)
    await asyncio.gather(*[publisher(i) for i in range(k)])
    stall_s = time.monotonic() - t_stall
    by_during = len(bystander.received_at) - by0
    stop.set()
    await smp
    held_rss = lab.rss()
    log("  stall %d of %.1fs: certbridge RSS peak %.1f MiB (baseline %.1f), unread upstream "
        "%d KiB at most" % (rnd, stall_s, peak["rss"] / MIB, run.base_rss / MIB,
                             peak["unread"] // 1024))
    # The readers read again.
    t_resume = time.monotonic()
    for s in subs:
        s.gate.set()
    deadline = time.monotonic() + p["drain_timeout"]
    while time.monotonic() < deadline:
        if all(q["acked"] <= q["q1"].seen for q in st) and \
                all(time.monotonic() - q["last"] > 1.0 for q in st):
            break
        await asyncio.sleep(0.1)
    drain_s = time.monotonic() - t_resume
    dropped = [c.name for c in subs + pubs if c.closed.is_set()]
    for c in subs + pubs:
        await c.disconnect()
    bystander.stop.set()
    await finish([by_task], time.monotonic() + 30)
    lost = sum(len(q["acked"] - q["q1"].seen) for q in st)
    acked = sum(len(q["acked"]) for q in st)
    sent1 = sum(q["sent1"] for q in st)
    run.check(acked == sent1, "%d of %d QoS 1 messages PUBACK'd to the publishers"
              % (acked, sent1))
    run.check(lost == 0, "%d of %d PUBACK'd QoS 1 messages never reached the slow reader"
              % (lost, acked))
    ooo = sum(q["q1"].out_of_order + q["q0"].out_of_order for q in st)
    bad = sum(q["bad"] for q in st)
    run.check(ooo == 0, "%d messages out of order at the slow readers" % ooo)
    run.check(bad == 0, "%d messages altered at the slow readers" % bad)
    run.check(not dropped, "connections closed during the stall: %s" % dropped)
    run.check(by_during > 0, "the bystander received nothing during the stall")
    growth = peak["rss"] - run.base_rss
    bound = k * p["per_session_kib"] + p["fixed_kib"]
    run.check(growth <= bound, "certbridge RSS grew %.1f MiB during the stall, bound %.1f MiB"
              % (growth / MIB, bound / MIB))
    sent0 = sum(q["sent0_bytes"] for q in st)
    got0 = sum(q["n0"] for q in st)
    check_echo(run, [bystander])
    return {"stall_s": stall_s, "sent0": sent0, "got0": got0, "sent1": sent1, "acked": acked,
            "lost": lost, "growth": growth, "bound": bound, "unread": peak["unread"],
            "drain_s": drain_s, "held_rss": held_rss}


# ---------------------------------------------------------------- 8. 10,000 sessions held


class FleetClient:
    """benchkit.open_many's client: each client id is a device of the fleet
    (its own certificate), opened as an MqttConn; on_open(conn) is called
    as soon as a session has its CONNACK 0."""

    def __init__(self, run, port, role, on_open=None):
        self.run, self.port, self.role, self.on_open = run, port, role, on_open

    async def open(self, client_id, keepalive, timeout=30.0):
        t0 = time.perf_counter()
        c = MqttConn(self.run, self.role, client_id, self.run.fleet.ctx(client_id),
                     device_ip(int(client_id.rsplit("-", 1)[1])))
        code = await c.open(self.port, client_id, keepalive, timeout)
        if code != 0:
            raise benchkit.BenchError("CONNACK %s for %s (%s)" % (code, client_id, c.att.error))
        if self.on_open:
            self.on_open(c)
        return c, time.perf_counter() - t0


class Pinger:
    """PINGREQ every `every` seconds from the session's CONNACK on (the
    first within `every`, at a phase of its own), until stop is set;
    records when each was sent and whether the last one was answered."""

    def __init__(self, every):
        self.every = every
        self.stop = asyncio.Event()
        self.state = {}   # conn -> [t_open, [ping times], last answered]
        self.tasks = []

    def start(self, c):
        st = self.state[c] = [time.monotonic(), [], None]
        phase = (len(self.state) * 7919 % 1000) / 1000.0 * self.every
        self.tasks.append(asyncio.ensure_future(self._run(c, st, phase)))

    async def _run(self, c, st, first):
        wait = first
        while not c.closed.is_set():
            try:
                await asyncio.wait_for(self.stop.wait(), wait)
                return
            except asyncio.TimeoutError:
                pass
            st[1].append(time.monotonic())
            st[2] = await c.ping(timeout=20)
            if not st[2]:
                return
            wait = max(0.0, st[1][-1] + self.every - time.monotonic())

    async def end(self):
        self.stop.set()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=30)

    def max_gap(self, c, t_end):
        """The longest the session went without sending a PINGREQ."""
        t_open, times, _ = self.state[c]
        marks = [t_open] + times + [t_end]
        return max(b - a for a, b in zip(marks, marks[1:]))


async def close_conns(conns, concurrency=200):
    it = iter(list(conns))

    async def worker():
        for c in it:
            await c.disconnect()

    await asyncio.gather(*[worker() for _ in range(concurrency)])


def hold_sessions(hard):
    """Sessions certbridge can hold under a descriptor limit: two each,
    plus its own (about 10) and room for the descriptor wolfSSL opens for
    a moment per handshake."""
    return max(1, (hard - 80) // 2)


async def scenario_hold(run, p):
    """As many sessions as the descriptor limit allows (max_connections set
    just under it), opened p['concurrency'] at a time and held for
    p['hold'] seconds, each sending PINGREQ every p['ping'] seconds at
    keepalive p['keepalive'] (certbridge closes a session after 1.5 x
    keepalive of silence): at the end every session is still up and got a
    PINGRESP to its last PINGREQ; then all close, and descriptors and RSS
    return to the baseline. A few sessions with keepalive 10 that never
    send anything are the control: closed at 15 s, reason=keepalive. A
    first round (open all, close all) is the warm-up: RSS does not shrink
    when sessions close (the allocator keeps the freed heap for the next
    ones), so the baseline is taken after it and the held round must not
    grow past it."""
    lab = run.lab
    maxc = p["gateway"]["max_connections"]
    n = maxc - p["silent"]   # the silent control sessions take the rest
    keepalive, every = p["keepalive"], p["ping"]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # The same devices in both rounds (they reconnect): benchkit.open_many
    # names them PREFIX-0 .. PREFIX-(n-1).
    prefix = run.names("hold", 1)[0]
    t = time.monotonic()
    await asyncio.to_thread(run.fleet.prepare, ["%s-%d" % (prefix, i) for i in range(n)])
    log("  %d device certificates in %.0fs" % (n, time.monotonic() - t))
    warned = lab.events("fd-limit")
    expect_warn = 2 * maxc + 64 > hard
    run.check(bool(warned) == expect_warn, "event=fd-limit %s at start with max_connections "
              "%d and a limit of %d" % ("logged" if warned else "not logged", maxc, hard))
    pre_rss = await lab.settle_rss()
    await warm_up(run, 20)
    # Every session pings from its own CONNACK on: opening them all takes
    # longer than 1.5 x keepalive.
    pinger0 = Pinger(every)
    client = FleetClient(run, lab.port, "warm-up", pinger0.start)
    conns, lat, errors, el = await benchkit.open_many(client, n, p["concurrency"], prefix,
                                                   keepalive)
    log("  warm-up round: %d sessions in %.0fs (%d failed), certbridge RSS %.0f MiB"
        % (len(conns), el, len(errors), lab.rss() / MIB))
    peak0 = await lab.settle_rss()
    await pinger0.end()
    await close_conns(conns)
    await take_baseline(run)
    pinger = Pinger(every)
    client = FleetClient(run, lab.port, "held", pinger.start)
    t_open = time.monotonic()
    conns, lat, errors, el = await benchkit.open_many(client, n, p["concurrency"], prefix,
                                                   keepalive)
    held_rss = await lab.settle_rss()
    held_fds = lab.fds()
    log("  %d of %d sessions open in %.0fs (%.0f/s), %d failed; certbridge %d descriptors, "
        "RSS %.0f MiB" % (len(conns), n, el, len(conns) / el if el else 0, len(errors),
                          held_fds, held_rss / MIB))
    if errors:
        run.note("%d sessions not opened, first: %s" % (len(errors), errors[0]))
    # The control: sessions with keepalive 10 that never send anything are
    # closed by certbridge after 1.5 x 10 s with reason=keepalive.
    silent = []
    for name in run.names("silent", p["silent"]):
        c = MqttConn(run, "silent", name, run.fleet.ctx(name), "127.0.0.30")
        if await c.open(lab.port, name, 10) == 0:
            silent.append(c)
    run.check(len(silent) == p["silent"], "%d of %d silent sessions opened"
              % (len(silent), p["silent"]))
    # Hold, from when the last one opened.
    t_hold = time.monotonic()
    t_end = t_hold + p["hold"]
    samples = []
    while time.monotonic() < t_end:
        await asyncio.sleep(min(30, max(0.1, t_end - time.monotonic())))
        up = sum(1 for c in conns if not c.closed.is_set())
        samples.append((time.monotonic() - t_hold, up, lab.rss(), lab.fds()))
        el_, up_, rss_, fds_ = samples[-1]
        log("  hold %3.0fs: %d sessions up, certbridge RSS %.0f MiB, %d descriptors"
            % (el_, up_, rss_ / MIB, fds_))
    t_stop = time.monotonic()
    await pinger.end()
    up = [c for c in conns if not c.closed.is_set()]
    answered = sum(1 for c in conns if pinger.state[c][2])
    pings = sum(len(pinger.state[c][1]) for c in conns)
    gap = max([pinger.max_gap(c, t_stop) for c in conns] or [0])
    closed = collections.Counter()
    for c in conns:
        if c.closed.is_set():
            closed[c.att.closed_by] += 1
    run.check(len(up) == len(conns), "%d of %d sessions closed during the hold (%s)"
              % (len(conns) - len(up), len(conns), dict(closed)))
    run.check(answered == len(conns), "%d of %d sessions got a PINGRESP to their last PINGREQ"
              % (answered, len(conns)))
    run.check(gap <= every + 15, "a session went %.0f s without a PINGREQ (the suite's own "
              "pace, %d s)" % (gap, every))
    run.check(len(conns) >= p["min_held_frac"] * n, "only %d of %d sessions held"
              % (len(conns), n))
    odd = ["%s after %.1fs by %s" % (c.att.peer, (c.att.t_end or t_stop) - c.att.t0,
                                     c.att.closed_by) for c in silent
           if c.att.closed_by != "peer" or not 14.5 <= c.att.t_end - c.att.t0 <= 18.5]
    run.check(not odd, "silent sessions (keepalive 10) not closed by certbridge at 15 s: %s"
              % odd[:3])
    t = time.monotonic()
    await close_conns(conns)
    close_s = time.monotonic() - t
    margin = p["margin"] + int(p["margin_frac"] * max(0, peak0 - pre_rss))
    await check_leaks(run, margin)
    check_alive(run)
    at_accept = run.judge_outcomes()
    run.check(at_accept == 0, "%d connections closed at accept with no log line" % at_accept)
    run.check_defined({"device-closed"}, roles={"held", "warm-up"})
    run.check_defined({"keepalive"}, roles={"silent"})
    run.row["fault"] = "%s sessions held %s (PINGREQ every %ds, keepalive %ds)" % (
        fmt_n(n), "%.0f min" % (p["hold"] / 60) if p["hold"] >= 120 else "%.0f s" % p["hold"],
        every, keepalive)
    run.row["load"] = ("%s of %s sessions (descriptor limit %d, max_connections %d) opened in "
                       "%.0f s, %d in flight; certbridge %d descriptors, RSS %.0f MiB"
                       % (fmt_n(len(conns)), fmt_n(n), hard, maxc, el, p["concurrency"],
                          held_fds, held_rss / MIB))
    run.row["outcome"] = ("%s/%s up at the end (%.0f s after the first opened), each with a "
                          "PINGRESP to its last PINGREQ (%s PINGREQs, at most %.0f s apart); "
                          "all closed in %.0f s (reason=device-closed); %d silent sessions "
                          "(keepalive 10 s) closed at 15 s, reason=keepalive"
                          % (fmt_n(len(up)), fmt_n(len(conns)), t_stop - t_open, fmt_n(pings),
                             gap, close_s, len(silent) - len(odd)))
    run.row["lost"] = "0 PINGRESP missing" if answered == len(conns) else \
        "**%d** PINGRESP missing" % (len(conns) - answered)
    run.note("RSS: %.0f MiB before any session, %.0f MiB with the warm-up round open, %.0f MiB "
             "after it closed (baseline), %.0f MiB with %d held, %.0f MiB after they closed"
             % (pre_rss / MIB, peak0 / MIB, run.base_rss / MIB, held_rss / MIB, len(conns),
                run.end_rss / MIB))


# ---------------------------------------------------------------- the scenarios and their scale

SCENARIOS = {
    1: (scenario_broker_kill, lambda p: "broker SIGKILL mid-stream, restarted after %g s"
        % p["down"], {}, ""),
    2: (scenario_rotation, "broker leaf + intermediate rotated (same root), broker restarted",
        {}, ""),
    3: (scenario_reloads, lambda p: "%d reloads (SIGHUP) under load" % p["reloads"], {}, ""),
    4: (scenario_tls_slowloris, "TLS slowloris (ClientHello 1 byte/s)", {}, ""),
    5: (scenario_connect_slowloris, "CONNECT slowloris (after TLS, CONNECT 1 byte/s)", {}, ""),
    6: (scenario_flood, "connection flood past max_connections", {}, ""),
    7: (scenario_slow_reader, "slow readers (subscribers stop reading)", {},
        "max_queued_messages 100000\n"),
    8: (scenario_hold, "sessions held", {}, ""),
}

SLOW_GW = {"handshake_timeout": "3s", "max_handshakes_per_ip": 64}

PARAMS = {
    "quick": {
        1: {"devices": 20, "churn": 5, "rate": 20, "before": 2.5, "down": 2.0, "after": 2.5,
            "margin": 4096},
        2: {"devices": 20, "churn": 5, "rate": 20, "before": 2.5, "after": 2.5,
            "margin": 4096},
        3: {"devices": 20, "rate": 20, "before": 1.0, "after": 1.0, "reloads": 50,
            "spacing": 0.02, "margin": 4096},
        4: {"addrs": 1, "per_addr": 200, "waves": 1, "valid": 3, "warm": 20, "margin": 4096,
            "gateway": SLOW_GW},
        5: {"addrs": 1, "per_addr": 30, "waves": 1, "valid": 3, "warm": 20, "margin": 4096,
            "gateway": SLOW_GW},
        6: {"flood_s": 2, "concurrency": 50, "rate": 10, "before": 1.0, "after": 1.0,
            "margin": 4096, "gateway": {"max_connections": 50}},
        7: {"pairs": 2, "stall": 5, "warm_stall": 2, "q0_size": 32768, "q0_rate": 4e6, "q1": 300,
            "rcvbuf": 65536, "per_session_kib": 1024, "fixed_kib": 4096, "drain_timeout": 60,
            "margin": 4096},
    },
    "full": {
        1: {"devices": 100, "churn": 20, "rate": 20, "before": 10, "down": 5, "after": 10,
            "margin": 8192},
        2: {"devices": 100, "churn": 20, "rate": 20, "before": 10, "after": 10,
            "margin": 8192},
        3: {"devices": 100, "rate": 20, "before": 5, "after": 5, "reloads": 50,
            "spacing": 0.2, "margin": 8192},
        4: {"addrs": 4, "per_addr": 200, "waves": 2, "valid": 10, "warm": 100, "margin": 8192,
            "gateway": SLOW_GW},
        5: {"addrs": 2, "per_addr": 60, "waves": 2, "valid": 10, "warm": 100, "margin": 8192,
            "gateway": SLOW_GW},
        6: {"flood_s": 10, "concurrency": 100, "rate": 10, "before": 5, "after": 5,
            "margin": 8192, "gateway": {"max_connections": 200}},
        7: {"pairs": 8, "stall": 15, "warm_stall": 5, "q0_size": 32768, "q0_rate": 1e6, "q1": 800,
            "rcvbuf": 65536, "per_session_kib": 1024, "fixed_kib": 4096, "drain_timeout": 120,
            "margin": 8192},
        8: {"sessions": None, "hold": 600, "ping": 45, "keepalive": 60, "concurrency": 50,
            "silent": 5,
            "min_held_frac": 0.99, "margin": 16384, "margin_frac": 0.02, "timeout": 1500,
            "gateway": {"max_connections": None, "connect_rate": 2000}},
    },
}


# ---------------------------------------------------------------- driver



class Suite:
    def __init__(self, args):
        self.args = args
        self.binary = args.binary
        self.workdir = args.workdir
        self.runid = os.urandom(2).hex()
        self.pki = None
        self.fleet = None


def run_scenario(suite, num):
    fn, title, gw, broker_extra = SCENARIOS[num]
    p = PARAMS[suite.mode][num]
    lab = Lab(suite, "s%d" % num, gateway=dict(gw, **p.get("gateway", {})),
              broker_extra=broker_extra)
    run = Run(suite, num, title(p) if callable(title) else title, lab)
    log("scenario %d: %s" % (num, run.row["fault"]))
    t0 = time.monotonic()
    try:
        lab.start()
        run.pid0 = lab.gw.pid
        asyncio.run(asyncio.wait_for(fn(run, p), p.get("timeout", 600)))
    except asyncio.TimeoutError:
        run.check(False, "scenario did not finish within %ds" % p.get("timeout", 600))
    except SoakError as e:
        run.check(False, "could not run: %s" % e)
    except Exception as e:  # a bug of the suite: report it, go on
        traceback.print_exc()
        run.check(False, "suite error: %s: %s" % (type(e).__name__, e))
    finally:
        rc = lab.stop()
        if rc.get("certbridge") not in (0, None):
            run.check(False, "certbridge exited with %s at stop" % rc.get("certbridge"))
    run.seconds = time.monotonic() - t0
    ok = not run.failures
    run.row["result"] = ("PASS" if ok else "FAIL") + (" (known bugs: %d)" % len(run.known)
                                                      if run.known else "")
    log("scenario %d: %s in %.1fs%s" % (num, "passed" if ok else "FAILED", run.seconds,
                                       "" if ok else ": " + "; ".join(run.failures)))
    return run


def table(runs):
    cols = [("#", None), ("fault", "fault"), ("load held", "load"), ("outcome", "outcome"),
            ("lost", "lost"), ("leaked", "leaked"), ("result", "result")]
    out = ["| " + " | ".join(c for c, _ in cols) + " |",
           "| " + " | ".join("---" for _ in cols) + " |"]
    for r in runs:
        cells = [str(r.num)] + [str(r.row.get(k, "")).replace("|", "/") for _, k in cols[1:]]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="soak.py", description="certbridge reliability suite; "
                                "see docs/reliability.md")
    p.add_argument("--quick", action="store_true",
                   help="scenarios 1-7 at small scale (about 2 minutes)")
    p.add_argument("--only", help="comma-separated scenario numbers")
    p.add_argument("--build", default="build", help="folder holding the certbridge binary")
    p.add_argument("--binary", help="the certbridge binary (default: BUILD/certbridge)")
    p.add_argument("--workdir", help="PKI, configurations and logs (default BUILD/soak/work; "
                                     "emptied at start if an earlier run made it)")
    p.add_argument("--out", help="write the results table here (default BUILD/soak/results.md)")
    p.add_argument("--hold", type=float, help="scenario 8: seconds to hold the sessions "
                                              "(default 600)")
    p.add_argument("--sessions", type=int, help="scenario 8: max_connections, the sessions "
                   "opened (5 of them the silent control sessions); default: as many as the "
                   "descriptor limit allows")
    p.add_argument("--strict", action="store_true",
                   help="known certbridge bugs (KNOWN_BUGS) fail the run too")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    build = Path(args.build)
    if not build.is_absolute():
        build = (Path.cwd() / build) if (Path.cwd() / build).exists() else REPO / build
    args.binary = str(Path(args.binary or build / "certbridge").resolve())
    args.workdir = Path(args.workdir or build / "soak" / "work").resolve()
    args.out = Path(args.out or build / "soak" / "results.md").resolve()
    if not os.access(args.binary, os.X_OK):
        log("%s is not built: run 'make build' first" % args.binary)
        return 2
    if not shutil.which("mosquitto"):
        log("mosquitto is not installed")
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    suite = Suite(args)
    suite.mode = "quick" if args.quick else "full"
    nums = sorted(SCENARIOS) if not args.only else [int(x) for x in args.only.split(",")]
    skipped = [n for n in nums if n not in PARAMS[suite.mode]]
    if skipped:
        log("scenario(s) %s: full mode only" % ",".join(map(str, skipped)))
    nums = [n for n in nums if n in PARAMS[suite.mode]]
    if args.hold is not None and 8 in PARAMS[suite.mode]:
        PARAMS[suite.mode][8]["hold"] = args.hold
    if 8 in PARAMS[suite.mode]:
        p8 = PARAMS[suite.mode][8]
        p8["gateway"]["max_connections"] = args.sessions or hold_sessions(hard)
        if args.hold is not None:
            p8["timeout"] = max(p8["timeout"], args.hold + 900)
    marker = args.workdir / ".soak-workdir"
    if args.workdir.exists() and any(args.workdir.iterdir()):
        if not marker.exists():
            log("%s is not empty and was not made by soak.py: not touching it" % args.workdir)
            return 2
        shutil.rmtree(args.workdir)
    args.workdir.mkdir(parents=True, exist_ok=True)
    marker.write_text("made by tools/soak.py; emptied at its next run\n")
    started = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    t0 = time.monotonic()
    suite.pki = Path(mkpki.lab(str(args.workdir / "pki")))
    suite.fleet = Fleet(suite.pki)
    info = benchkit.machine_info(args.binary)
    log("%s mode, scenarios %s; work folder %s; descriptor limit %d (hard %d)"
        % (suite.mode, ",".join(map(str, nums)), args.workdir,
           resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard))
    runs = []
    for n in nums:
        runs.append(run_scenario(suite, n))
    total = time.monotonic() - t0
    failed = [r for r in runs if r.failures]
    head = ("certbridge reliability suite (tools/soak.py%s), %s\n\n"
            "machine: %s x %s, %s GiB, %s, kernel %s; descriptor hard limit %d\n"
            "versions: %s; wolfSSL %s; libevent %s; mosquitto %s; load generator %s\n"
            "run time %.0f s; %s\n"
            % (" --quick" if args.quick else "", started.isoformat(), info.get("nproc"),
               info.get("cpu", "?"), info.get("mem_gib", "?"), info.get("os", "?"),
               info.get("kernel"), hard, info.get("certbridge"), info.get("wolfssl"),
               info.get("libevent"), info.get("mosquitto"), info.get("client"), total,
               "every assertion held" if not failed else
               "FAILED: scenario(s) %s" % ", ".join(str(r.num) for r in failed)))
    text = head + "\n" + table(runs) + "\n"
    notes = []
    for r in runs:
        for f in r.failures:
            notes.append("- scenario %d FAILED: %s" % (r.num, f))
        for k in r.known:
            notes.append("- scenario %d: %s" % (r.num, k))
        for nt in r.notes:
            notes.append("- scenario %d: %s" % (r.num, nt))
    if notes:
        text += "\n" + "\n".join(notes) + "\n"
    print()
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    log("results in %s; logs in %s" % (args.out, args.workdir))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
