"""soak_slow.py - the scenarios of tools/soak.py with slow peers and long
holds: 4 TLS slowloris, 5 CONNECT slowloris, 7 slow readers (subscribers
that stop reading), 8 as many sessions as the descriptor limit allows,
held for 10 minutes.
"""

import asyncio
import collections
import http.client
import resource
import socket
import ssl
import time

import benchkit
from benchkit import connect_packet, publish_packet
from soak_checks import (check_alive, check_echo, check_leaks, check_refusal_lines, fmt_n,
                         take_baseline, warm_up)
from soak_devices import (Attempt, EchoDevice, FleetClient, MqttConn, Pinger, Stream,
                          device_ip, echo_round, finish, make_payload, read_payload)
from soak_lab import MIB, SoakError, log, metric


# ---------------------------------------------------------------- 4-5: slowloris


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
    sock = await a.dial(local_ip, port, 10)
    if sock is None:
        return a, None
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

        def send_q1(seq):
            q["pid"] = q["pid"] % 65535 + 1
            q["inflight"][q["pid"]] = seq
            pc.write(publish_packet(q["topic"], make_payload(1, i, seq, 1024), 1, q["pid"]))

        while time.monotonic() < t_end and not pc.closed.is_set():
            el = time.monotonic() - t0
            while q["sent0_bytes"] < el * p["q0_rate"]:
                pl = make_payload(0, i, seq0, p["q0_size"])
                pc.write(publish_packet(q["topic"], pl, 0))
                q["sent0_bytes"] += len(pl)
                seq0 += 1
            while seq1 < min(p["q1"], int(el / stall * p["q1"]) + 1) \
                    and len(q["inflight"]) < 10:
                send_q1(seq1)
                seq1 += 1
            await pc.drain()
            await asyncio.sleep(tick)
        q["sent0"], q["sent1"] = seq0, seq1
        # Every QoS 1 message sent and PUBACK'd (the broker acknowledges
        # whatever its subscriber does).
        while seq1 < p["q1"] and not pc.closed.is_set():
            if len(q["inflight"]) < 10:
                send_q1(seq1)
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
    await benchkit.close_many(client, conns)
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
    await benchkit.close_many(client, list(conns))  # a copy: conns is counted below
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
