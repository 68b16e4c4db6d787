"""soak_devices.py - the simulated devices of tools/soak.py: their
certificates (Fleet), one device connection speaking MQTT 3.1.1 (MqttConn),
the payloads they check, a device publishing QoS 1 to itself (EchoDevice),
and the sessions of scenario 8 (FleetClient for benchkit.open_many, Pinger).
"""

import asyncio
import collections
import hashlib
import socket
import ssl
import struct
import time

import benchkit
import mkpki
from benchkit import connect_packet, publish_packet


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

    async def dial(self, local_ip, port, timeout, rcvbuf=None):
        """The TCP connection from local_ip to certbridge on port: a
        non-blocking socket, or None when there is none (closed_by "tcp")."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        try:
            sock.bind((local_ip, 0))
            await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), timeout)
        except (OSError, asyncio.TimeoutError) as e:
            sock.close()
            self.closed_by, self.error, self.t_end = "tcp", "%s: %s" % (type(e).__name__, e), \
                time.monotonic()
            return None
        self.peer = "%s:%d" % sock.getsockname()
        return sock


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
        a = self.att
        sock = await a.dial(self.local_ip, port, timeout, self.rcvbuf)
        if sock is None:
            self.closed.set()
            return None
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
        try:
            return benchkit.split_packets(mv, self._packet)
        finally:
            mv.release()

    def _packet(self, mv, first, i, e):
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
            payload = bytes(mv[ps:e])
            if qos == 1:
                self.w.write(benchkit.puback_packet(pid))
            if self.on_publish:
                self.on_publish(topic, payload, qos, bool(first & 0x08))
        elif kind == 0x40:
            if self.on_puback:
                self.on_puback((mv[i] << 8) | mv[i + 1])
        elif kind == 0x90:
            if self.suback is not None and not self.suback.done():
                self.suback.set_result(bytes(mv[i:e]))
        elif kind == 0xD0:
            self.pingresps += 1
            self.pingresp_ev.set()
        else:
            self.unexpected.append(first)

    async def subscribe(self, topic, qos=1, timeout=10.0):
        """SUBSCRIBE and wait for the SUBACK; True when granted."""
        self.suback = asyncio.get_running_loop().create_future()
        self.write(benchkit.subscribe_packet(topic, 1, qos))
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
        self.write(benchkit.PINGREQ)
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



# ---------------------------------------------------------------- scenario 8's sessions


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

    async def close(self, c):
        await c.disconnect()


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
