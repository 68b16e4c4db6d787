#!/usr/bin/python3
"""bench.py - certbridge benchmarks, side by side with direct broker connections.

    /usr/bin/python3 tools/bench.py --build build          # what `make bench` runs
    /usr/bin/python3 tools/bench.py --sessions 10000       # the 10,000-device figure
    /usr/bin/python3 tools/bench.py --json results.json    # also write the figures as JSON

Everything runs on this machine, on 127.0.0.1, on free ports: a fresh lab PKI
(tools/mkpki.py), a TLS mosquitto that requires client certificates, and
certbridge in front of it. Each figure is measured twice, on fresh processes:

  direct      the load generator connects to mosquitto itself
  certbridge  the load generator connects to certbridge, which opens its own
              TLS connection to the same mosquitto configuration

Figures (see docs/benchmarks.md for what they mean):
  1. memory per idle session: RSS of certbridge (and of mosquitto) before and
     after opening --sessions idle MQTT sessions (TLS 1.3, client certificate,
     CONNECT, CONNACK), repeated --rounds times to expose growth;
  2. connection setup rate: --rate-sessions sessions with --concurrency in
     flight, sessions/s and p50/p99 latency (TCP + TLS + CONNECT/CONNACK),
     and the latency of --latency-sessions set up one at a time;
  3. throughput: one publisher, one subscriber, QoS 0, 64 KiB and 100-byte
     payloads with a bounded number in flight, every payload checked at the
     receiver; and the latency of 100-byte messages sent one at a time;
  4. CPU: certbridge's user+sys seconds per 1000 sessions and per GB (and
     mosquitto's and the load generator's, for scale).

Defaults take about 35 s on a 2-core machine; --sessions 10000 about 2 min.
The process raises its RLIMIT_NOFILE (children inherit it); certbridge needs
two descriptors per session, so the hard limit caps the sessions it can hold.

The load generator is one asyncio process (Python ssl, i.e. OpenSSL). It
shares the machine's cores with mosquitto and certbridge: the figures are
those of the whole box, not of certbridge alone. Processes are started by
this script and stopped by their PID, never by name.

Only figures are printed, nothing is asserted; the exit status is non-zero
only when the benchmark itself could not run (or sessions failed).
"""

import argparse
import asyncio
import datetime
import json
import os
import resource
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.dont_write_bytecode = True  # leave no __pycache__ in the checkout
sys.path.insert(0, str(REPO / "tools"))
import mkpki  # noqa: E402
from benchkit import (  # noqa: E402
    BenchError, Client, close_many, log, machine_info, open_many, pctl, proc_cpu,
    proc_fds, proc_mem, self_cpu, settle_rss, split_packets, start_broker, start_gateway,
    subscribe_packet, varint, wait_fds_below,
)


# ---------------------------------------------------------------- phases


def server_pids(target):
    """The processes whose cost we watch: ('certbridge', pid) first when present."""
    return [(p.name, p.pid) for p in target["procs"]]


def cpu_snapshot(target):
    snap = {name: proc_cpu(pid) for name, pid in server_pids(target)}
    snap["client"] = self_cpu()
    snap["wall"] = time.perf_counter()
    return snap


def cpu_delta(a, b):
    return {k: round(b[k] - a[k], 3) for k in a}


async def phase_memory(target, args, runid):
    """Idle sessions: RSS before/after, per round."""
    client = target["client"]
    pids = server_pids(target)
    # Warm-up: the first handshakes allocate one-time state (wolfSSL's FP_ECC
    # cache, allocator arenas, libevent tables); keep that out of the delta.
    warm, _, err, _ = await open_many(client, args.warmup, 10, "bench-mw-%s" % runid,
                                      args.keepalive)
    if err:
        raise BenchError("warm-up failed: %s" % err[0])
    await close_many(client, warm)
    base_fds = {}
    for name, pid in pids:
        wait_fds_below(pid, 64)
        base_fds[name] = proc_fds(pid)
    rounds = []
    n = args.sessions
    for r in range(args.rounds):
        before = {name: settle_rss(pid) for name, pid in pids}
        mid = {}

        def progress(k, half=n // 2, mid=mid):
            if k == half and not mid:
                mid.update({name: proc_mem(pid) for name, pid in pids})

        c0 = cpu_snapshot(target)
        sessions, lat, errors, elapsed = await open_many(
            client, n, args.concurrency, "bench-m%d-%s" % (r, runid), args.keepalive, progress)
        c1 = cpu_snapshot(target)
        after = {name: settle_rss(pid) for name, pid in pids}
        fds = {name: proc_fds(pid) for name, pid in pids}
        log("  %s round %d: %d sessions open (%d failed) in %.1fs; fds %s"
            % (target["name"], r + 1, len(sessions), len(errors), elapsed,
               ", ".join("%s %d" % kv for kv in fds.items())))
        if errors:
            log("  first failure: %s" % errors[0])
        if args.hold > 0:
            await asyncio.sleep(args.hold)
            held = {name: proc_mem(pid) for name, pid in pids}
        else:
            held = after
        ok = len(sessions)
        per = {}
        for name, _ in pids:
            d = {}
            for key in ("VmRSS", "Private_Dirty", "RssAnon"):
                if key in before[name] and key in after[name] and ok:
                    d[key + "_kib_per_session"] = round((after[name][key] - before[name][key])
                                                        / ok, 1)
            if mid.get(name) and ok > n // 2:
                d["VmRSS_kib_per_session_2nd_half"] = round(
                    (after[name]["VmRSS"] - mid[name]["VmRSS"]) / (ok - n // 2), 1)
            d["before"] = before[name]
            d["after"] = after[name]
            d["after_hold"] = held[name]
            d["fds_open"] = fds[name]
            d["fds_base"] = base_fds[name]
            per[name] = d
        t_close = time.perf_counter()
        await close_many(client, sessions)
        closed = {}
        for name, pid in pids:
            wait_fds_below(pid, base_fds[name] + 4)
            closed[name] = settle_rss(pid)
            per[name]["after_close"] = closed[name]
        log("  %s round %d: closed in %.1fs; RSS %s"
            % (target["name"], r + 1, time.perf_counter() - t_close,
               ", ".join("%s %d->%d->%d KiB" % (name, before[name]["VmRSS"],
                                                 after[name]["VmRSS"], closed[name]["VmRSS"])
                         for name, _ in pids)))
        rounds.append({"sessions": ok, "failed": len(errors), "open_seconds": round(elapsed, 2),
                       "rate": round(ok / elapsed, 1) if elapsed else None,
                       "latency_p50_ms": round(pctl(lat, 50) * 1000, 2) if lat else None,
                       "cpu": cpu_delta(c0, c1), "proc": per,
                       "failures": errors[:20]})
    return rounds


async def phase_rate(target, args, runid):
    client = target["client"]
    warm, _, err, _ = await open_many(client, args.warmup, args.concurrency,
                                      "bench-rw-%s" % runid, args.keepalive)
    if err:
        raise BenchError("warm-up failed: %s" % err[0])
    await close_many(client, warm)
    c0 = cpu_snapshot(target)
    sessions, lat, errors, elapsed = await open_many(client, args.rate_sessions, args.concurrency,
                                                     "bench-r-%s" % runid, args.keepalive)
    c1 = cpu_snapshot(target)
    cipher = sessions[0].writer.get_extra_info("cipher") if sessions else None
    await close_many(client, sessions)
    # The same, one at a time: the latency of a set-up without queueing.
    lat1 = []
    if args.latency_sessions:
        one, lat1, err1, _ = await open_many(client, args.latency_sessions, 1,
                                             "bench-r1-%s" % runid, args.keepalive)
        errors += err1
        await close_many(client, one)
    ok = len(lat)
    res = {"sessions": ok, "failed": len(errors), "concurrency": args.concurrency,
           "seconds": round(elapsed, 3), "rate": round(ok / elapsed, 1) if elapsed else None,
           "latency_ms": {p: round(pctl(lat, p) * 1000, 2) for p in (50, 90, 99)} if lat else {},
           "latency_max_ms": round(max(lat) * 1000, 2) if lat else None,
           "cpu": cpu_delta(c0, c1), "client_cipher": cipher,
           "unloaded_latency_ms": {p: round(pctl(lat1, p) * 1000, 2) for p in (50, 99)}
           if lat1 else {}, "unloaded_sessions": len(lat1)}
    if errors:
        res["failures"] = errors[:20]
    log("  %s: %d sessions in %.2fs = %.0f/s, p50 %.1f ms, p99 %.1f ms (%d failed)"
        % (target["name"], ok, elapsed, res["rate"] or 0, res["latency_ms"].get(50, 0),
           res["latency_ms"].get(99, 0), len(errors)))
    return res


class Pattern:
    """Payload of message seq: 8-byte seq, then bytes from a fixed pattern
    at an offset that depends on seq (so a shifted or stale buffer shows)."""

    def __init__(self, size):
        if size < 8:
            raise ValueError("payload size must be at least 8")
        self.size = size
        self.p = bytes(((i * 131 + 7) >> 1) & 0xFF for i in range(size + 256))

    def payload(self, seq):
        o = (seq * 7) & 0xFF
        return struct.pack(">Q", seq) + self.p[o:o + self.size - 8]


async def phase_throughput(target, args, runid, size, count, window, tag="tp"):
    """One publisher, one subscriber, QoS 0, at most `window` messages sent
    and not yet received. Returns figures."""
    client = target["client"]
    topic = "bench/%s/%s/%d" % (runid, tag, size)
    tb = topic.encode()
    pat = Pattern(size)
    sub, _ = await client.open("bench-sub-%s-%s-%d" % (runid, tag, size), 0)
    sub.writer.write(subscribe_packet(topic))
    ack = await asyncio.wait_for(sub.reader.readexactly(5), 10)
    if ack[0] != 0x90 or ack[4] != 0:
        raise BenchError("SUBACK %s" % ack.hex())
    pub, _ = await client.open("bench-pub-%s-%s-%d" % (runid, tag, size), 0)

    warm = max(1, min(count // 10, 200 if size > 4096 else 5000))
    total = warm + count
    st = {"next": 0, "received": 0, "lost": 0, "reordered": 0, "bad_len": 0, "bad_content": 0,
          "checked": 0, "bytes": 0, "t_last": None, "t_warm": None}
    sent_at = {}   # seq -> when its batch was handed to the socket
    lat = []       # seconds from write to receipt, measured messages only
    progress = asyncio.Event()
    done = asyncio.Event()
    sample = max(1, args.check_every)

    def on_packet(mv, first, i, e):
        if first & 0xF0 != 0x30:
            return
        tl = (mv[i] << 8) | mv[i + 1]
        payload_mv = mv[i + 2 + tl + (2 if first & 0x06 else 0):e]
        n = len(payload_mv)
        st["received"] += 1
        st["bytes"] += n
        if n != size:
            st["bad_len"] += 1
            return
        seq = struct.unpack_from(">Q", payload_mv, 0)[0]
        if seq != st["next"]:
            if seq > st["next"]:
                st["lost"] += seq - st["next"]
            else:
                st["reordered"] += 1
        if seq % sample == 0:
            st["checked"] += 1
            if payload_mv != pat.payload(seq):
                st["bad_content"] += 1
        st["next"] = max(st["next"], seq + 1)
        t_sent = sent_at.pop(seq, None)
        if t_sent is not None and seq >= warm:
            lat.append(time.perf_counter() - t_sent)
        if seq == warm - 1:
            st["t_warm"] = time.perf_counter()
        if seq == total - 1:
            st["t_last"] = time.perf_counter()
            done.set()

    async def reader():
        buf = bytearray()
        while not done.is_set():
            chunk = await sub.reader.read(1 << 20)
            if not chunk:
                raise BenchError("subscriber connection closed")
            buf += chunk
            mv = memoryview(buf)
            pos = split_packets(mv, on_packet)
            mv.release()
            del buf[:pos]
            progress.set()

    rtask = asyncio.ensure_future(reader())

    async def publish(first, last):
        batch, blen = [], 0
        seq = first
        while seq < last:
            while seq - st["next"] >= window:
                if rtask.done():
                    rtask.result()
                    raise BenchError("subscriber reader stopped")
                progress.clear()
                try:
                    await asyncio.wait_for(progress.wait(), 30)
                except asyncio.TimeoutError:
                    raise BenchError("no message received for 30s (received %d of %d)"
                                     % (st["received"], total)) from None
            p = pat.payload(seq)
            body = struct.pack(">H", len(tb)) + tb + p
            batch.append(b"\x30" + varint(len(body)) + body)
            blen += len(body)
            seq += 1
            if blen >= 65536 or seq == last or seq - st["next"] >= window:
                now = time.perf_counter()
                for k in range(seq - len(batch), seq):
                    sent_at[k] = now
                pub.writer.write(b"".join(batch))
                batch, blen = [], 0
                await pub.writer.drain()

    await publish(0, warm)
    while st["next"] < warm and not rtask.done():
        progress.clear()
        try:
            await asyncio.wait_for(progress.wait(), 30)
        except asyncio.TimeoutError:
            break
    c0 = cpu_snapshot(target)
    t0 = time.perf_counter()
    await publish(warm, total)
    try:
        await asyncio.wait_for(done.wait(), 60)
    except asyncio.TimeoutError:
        pass
    t1 = st["t_last"] or time.perf_counter()
    c1 = cpu_snapshot(target)
    rtask.cancel()
    try:
        await rtask
    except (asyncio.CancelledError, BenchError):
        pass
    await client.close(pub)
    await client.close(sub)
    elapsed = t1 - t0
    measured = st["received"] - warm if st["t_warm"] else st["received"]
    payload_bytes = measured * size
    res = {"payload": size, "messages": count, "received": measured, "window": window,
           "warmup_messages": warm, "seconds": round(elapsed, 3),
           "mb_per_s": round(payload_bytes / elapsed / 1e6, 2) if elapsed > 0 else None,
           "msgs_per_s": round(measured / elapsed, 1) if elapsed > 0 else None,
           "lost": st["lost"], "reordered": st["reordered"], "bad_length": st["bad_len"],
           "bad_content": st["bad_content"], "content_checked": st["checked"],
           "cpu": cpu_delta(c0, c1), "complete": st["t_last"] is not None,
           "latency_ms": {p: round(pctl(lat, p) * 1000, 3) for p in (50, 99)} if lat else {},
           "latency_max_ms": round(max(lat) * 1000, 3) if lat else None}
    log("  %s %d B, %d in flight: %d msgs in %.2fs = %.1f MB/s, %.0f msg/s; latency p50 %.3f "
        "p99 %.3f ms; lost %d, bad %d, content checked %d (incl. warm-up)"
        % (target["name"], size, window, measured, elapsed, res["mb_per_s"] or 0,
           res["msgs_per_s"] or 0, res["latency_ms"].get(50, 0), res["latency_ms"].get(99, 0),
           st["lost"], st["bad_len"] + st["bad_content"], st["checked"]))
    return res


# ---------------------------------------------------------------- driver


def probe_upstream_cipher(binary, pki, workdir, broker, args):
    """One session through a debug-level certbridge, to read the TLS version
    and cipher of both of its sides from its log (info does not log the
    upstream one)."""
    gw = start_gateway(binary, pki, workdir, broker.port, args, "debug", "certbridge-probe")
    try:
        client = Client(gw.port, pki / "ca-old.pem", pki / "dev-old-1.pem", pki / "dev-old-1.key")

        async def one():
            s, _ = await client.open("bench-probe", 60)
            await client.close(s)

        asyncio.run(one())
        time.sleep(0.2)
    finally:
        gw.stop()
    text = gw.log_path.read_text(errors="replace")
    out = {}
    for line in text.splitlines():
        for ev, key in (("device-admitted", "downstream"), ("upstream-connected", "upstream")):
            if "event=%s" % ev in line:
                f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
                out[key] = "%s %s" % (f.get("tls", "?"), f.get("cipher", "?"))
    return out


def run_target(kind, args, binary, pki, workdir, runid):
    wd = Path(workdir) / kind
    wd.mkdir(parents=True, exist_ok=True)
    procs = []
    try:
        broker = start_broker(pki, wd, args)
        procs.append(broker)
        if kind == "certbridge":
            gw = start_gateway(binary, pki, wd, broker.port, args)
            procs.insert(0, gw)
            client = Client(gw.port, pki / "ca-old.pem", pki / "dev-old-1.pem",
                            pki / "dev-old-1.key")
        else:
            # The broker trusts only cloud-client-ca: a direct client presents
            # the identity certbridge itself presents upstream (P-256 leaf
            # under a root, like dev-old-1) and trusts the cloud root.
            client = Client(broker.port, pki / "cloud-root.pem", pki / "gateway-upstream.pem",
                            pki / "gateway-upstream.key")
        target = {"name": kind, "procs": procs, "client": client}
        res = {"pids": {p.name: p.pid for p in procs}}
        try:
            run_phases(target, args, runid, res)
        except OSError as e:  # /proc of a process that is gone, typically
            for p in procs:
                if not p.alive():
                    raise BenchError("%s died during the run (exit %s); log %s:\n%s"
                                     % (p.name, p.proc.returncode, p.log_path,
                                        p.tail())) from None
            raise BenchError("%s: %s" % (type(e).__name__, e)) from None
        res["client_cipher"] = client.cipher
        res["final_mem"] = {p.name: proc_mem(p.pid) for p in procs}
        for p in procs:
            if not p.alive():
                raise BenchError("%s died during the run; log %s:\n%s"
                                 % (p.name, p.log_path, p.tail()))
        return res
    finally:
        for p in procs:
            rc = p.stop()
            if rc not in (0, None):
                log("%s exited with %s (log %s)" % (p.name, rc, p.log_path))


def run_phases(target, args, runid, res):
    kind = target["name"]
    phases = args.phases
    if "memory" in phases:
        log("%s: memory, %d idle sessions x %d rounds" % (kind, args.sessions, args.rounds))
        res["memory"] = asyncio.run(phase_memory(target, args, runid))
    if "rate" in phases:
        log("%s: setup rate, %d sessions, %d in flight"
            % (kind, args.rate_sessions, args.concurrency))
        res["rate"] = asyncio.run(phase_rate(target, args, runid))
    if "throughput" in phases:
        log("%s: throughput" % kind)
        res["bulk"] = asyncio.run(phase_throughput(target, args, runid, args.bulk_size,
                                                   args.bulk_messages, args.bulk_window))
        res["small"] = asyncio.run(phase_throughput(target, args, runid, args.small_size,
                                                    args.small_messages, args.small_window))
        if args.latency_messages:
            res["latency"] = asyncio.run(phase_throughput(
                target, args, runid, args.small_size, args.latency_messages, 1, "lat"))


# ---------------------------------------------------------------- report


def fmt(v, spec="%.1f"):
    if v is None:
        return "-"
    return spec % v


def build_table(results, args):
    d = results.get("direct", {})
    c = results.get("certbridge", {})
    rows = []

    def row(label, dv, cv, note=""):
        rows.append((label, dv, cv, note))

    def mem(res, proc, key, rnd=0):
        m = res.get("memory") or []
        if len(m) <= rnd:
            return None
        return m[rnd]["proc"].get(proc, {}).get(key)

    row("idle sessions held", fmt(d["memory"][0]["sessions"] if d.get("memory") else None, "%d"),
        fmt(c["memory"][0]["sessions"] if c.get("memory") else None, "%d"),
        "of %d asked; TLS 1.3 + client cert, keepalive %d" % (args.sessions, args.keepalive))
    row("certbridge RSS before -> after (MiB)", "-",
        "%s -> %s" % (fmt((mem(c, "certbridge", "before") or {}).get("VmRSS", 0) / 1024),
                      fmt((mem(c, "certbridge", "after") or {}).get("VmRSS", 0) / 1024))
        if mem(c, "certbridge", "before") else "-", "round 1")
    row("certbridge KiB / session (VmRSS)", "-", fmt(mem(c, "certbridge", "VmRSS_kib_per_session")),
        "2 TLS connections each (device + upstream)")
    row("certbridge KiB / session (Private_Dirty)", "-",
        fmt(mem(c, "certbridge", "Private_Dirty_kib_per_session")), "")
    row("certbridge KiB / session, 2nd half", "-",
        fmt(mem(c, "certbridge", "VmRSS_kib_per_session_2nd_half")),
        "marginal: sessions N/2..N")
    row("mosquitto KiB / session (VmRSS)", fmt(mem(d, "mosquitto", "VmRSS_kib_per_session")),
        fmt(mem(c, "mosquitto", "VmRSS_kib_per_session")), "1 TLS connection each")
    row("mosquitto KiB / session (Private_Dirty)",
        fmt(mem(d, "mosquitto", "Private_Dirty_kib_per_session")),
        fmt(mem(c, "mosquitto", "Private_Dirty_kib_per_session")), "")
    if args.rounds > 1:
        last = args.rounds - 1
        for name, res in (("certbridge", c), ("mosquitto", d)):
            a1 = (mem(res, name, "after") or {}).get("VmRSS")
            aN = (mem(res, name, "after", last) or {}).get("VmRSS")
            cl = (mem(res, name, "after_close", last) or {}).get("VmRSS")
            if a1 and aN:
                txt = "%s -> %s MiB" % (fmt(a1 / 1024), fmt(aN / 1024))
                row("%s RSS with N open, round 1 -> %d" % (name, args.rounds),
                    txt if name == "mosquitto" else "-", txt if name == "certbridge" else "-",
                    "after all closed: %s MiB" % fmt(cl / 1024 if cl else None))
    dr, cr = d.get("rate") or {}, c.get("rate") or {}
    row("setup rate (sessions/s)", fmt(dr.get("rate")), fmt(cr.get("rate")),
        "%d sessions, %d in flight" % (args.rate_sessions, args.concurrency))
    for p in (50, 99):
        row("connect latency p%d (ms)" % p, fmt((dr.get("latency_ms") or {}).get(p), "%.2f"),
            fmt((cr.get("latency_ms") or {}).get(p), "%.2f"), "TCP+TLS+CONNECT/CONNACK")
    for p in (50, 99):
        row("connect latency p%d, one at a time (ms)" % p,
            fmt((dr.get("unloaded_latency_ms") or {}).get(p), "%.2f"),
            fmt((cr.get("unloaded_latency_ms") or {}).get(p), "%.2f"),
            "%d sessions, no queueing" % args.latency_sessions if p == 50 else "")
    for key, label in (("bulk", "%d B" % args.bulk_size), ("small", "%d B" % args.small_size)):
        db, cb = d.get(key) or {}, c.get(key) or {}
        row("throughput %s (MB/s)" % label, fmt(db.get("mb_per_s"), "%.2f"),
            fmt(cb.get("mb_per_s"), "%.2f"), "QoS 0, 1 pub -> 1 sub, payload bytes")
        row("throughput %s (msg/s)" % label, fmt(db.get("msgs_per_s"), "%.0f"),
            fmt(cb.get("msgs_per_s"), "%.0f"),
            "lost/bad: %s / %s" % (
                "%d/%d" % (db.get("lost", 0), db.get("bad_length", 0) + db.get("bad_content", 0))
                if db else "-",
                "%d/%d" % (cb.get("lost", 0), cb.get("bad_length", 0) + cb.get("bad_content", 0))
                if cb else "-"))
    # CPU
    def per1000(res, proc):
        r = res.get("rate") or {}
        cpu = (r.get("cpu") or {}).get(proc)
        return cpu / r["sessions"] * 1000 if cpu is not None and r.get("sessions") else None

    def pergb(res, proc, key="bulk"):
        b = res.get(key) or {}
        cpu = (b.get("cpu") or {}).get(proc)
        byt = (b.get("received") or 0) * (b.get("payload") or 0)
        return cpu / (byt / 1e9) if cpu is not None and byt else None

    row("certbridge CPU s / 1000 sessions", "-", fmt(per1000(c, "certbridge"), "%.2f"),
        "user+sys, setup-rate run")
    row("mosquitto CPU s / 1000 sessions", fmt(per1000(d, "mosquitto"), "%.2f"),
        fmt(per1000(c, "mosquitto"), "%.2f"), "")
    row("load generator CPU s / 1000 sessions", fmt(per1000(d, "client"), "%.2f"),
        fmt(per1000(c, "client"), "%.2f"), "")
    row("certbridge CPU s / GB delivered", "-", fmt(pergb(c, "certbridge"), "%.1f"),
        "%d B payloads; each byte crosses certbridge twice" % args.bulk_size)
    row("mosquitto CPU s / GB delivered", fmt(pergb(d, "mosquitto"), "%.1f"),
        fmt(pergb(c, "mosquitto"), "%.1f"), "")
    dl, cl = d.get("latency") or {}, c.get("latency") or {}
    for p in (50, 99):
        row("message latency p%d (ms)" % p, fmt((dl.get("latency_ms") or {}).get(p), "%.3f"),
            fmt((cl.get("latency_ms") or {}).get(p), "%.3f"),
            "%d B, one in flight, publish -> receipt" % args.small_size if p == 50 else "")
    sm = c.get("small") or {}
    if sm.get("cpu", {}).get("certbridge") is not None and sm.get("received"):
        row("certbridge CPU s / 1M messages", "-",
            fmt(sm["cpu"]["certbridge"] / sm["received"] * 1e6, "%.1f"),
            "%d B payloads" % args.small_size)
    return [r for r in rows if r[1] != "-" or r[2] != "-"]


def print_table(rows, info, args, results, started, out=sys.stdout):
    w0 = max(len(r[0]) for r in rows)
    w1 = max(10, max(len(r[1]) for r in rows))
    w2 = max(14, max(len(r[2]) for r in rows))
    p = lambda s="": print(s, file=out)  # noqa: E731
    p()
    p("certbridge benchmark, %s" % started)
    p("machine: %s x %s, %s GiB, %s, kernel %s" % (info.get("nproc"), info.get("cpu", "?"),
                                                   info.get("mem_gib", "?"), info.get("os", "?"),
                                                   info.get("kernel")))
    p("versions: %s; wolfSSL %s; libevent %s; mosquitto %s; client %s"
      % (info.get("certbridge"), info.get("wolfssl"), info.get("libevent"),
         info.get("mosquitto"), info.get("client")))
    tls = results.get("tls") or {}
    if tls:
        p("TLS: device->certbridge %s; certbridge->mosquitto %s; direct client->mosquitto %s"
          % (tls.get("downstream", "?"), tls.get("upstream", "?"), tls.get("direct", "?")))
    p("load generator, certbridge and mosquitto share the same %s cores; certbridge "
      "[upstream] connect_rate = %d (storm control out of the way), "
      "session_resumption = %s"
      % (info.get("nproc"), args.connect_rate, args.session_resumption))
    p()
    p("%-*s  %*s  %*s  %s" % (w0, "figure", w1, "direct", w2, "via certbridge", "notes"))
    p("%s  %s  %s  %s" % ("-" * w0, "-" * w1, "-" * w2, "-" * 5))
    for r in rows:
        p("%-*s  %*s  %*s  %s" % (w0, r[0], w1, r[1], w2, r[2], r[3]))
    p()


# ---------------------------------------------------------------- main


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(need, soft)
    try:
        nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
    except (OSError, ValueError):
        nr_open = 1048576
    want = min(want, nr_open)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        want = min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except empty ones."""

    def _get_help_string(self, action):
        if action.default in (None, "", False) or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="bench.py", description="certbridge benchmarks: certbridge vs direct mosquitto; "
        "see docs/benchmarks.md", formatter_class=_HelpFormatter)
    p.add_argument("--build", default="build", help="folder holding the certbridge binary")
    p.add_argument("--binary", help="the certbridge binary (default: BUILD/certbridge)")
    p.add_argument("--sessions", type=int, default=1000, help="idle sessions for the memory figure")
    p.add_argument("--rounds", type=int, default=2,
                   help="open and close the idle sessions this many times (growth check)")
    p.add_argument("--hold", type=float, default=0.0,
                   help="seconds to keep the idle sessions open before closing (RSS re-read)")
    p.add_argument("--keepalive", type=int, default=600, help="MQTT keepalive of the sessions")
    p.add_argument("--rate-sessions", type=int, default=2000,
                   help="sessions for the setup-rate figure")
    p.add_argument("--concurrency", type=int, default=50, help="sessions being set up at once")
    p.add_argument("--latency-sessions", type=int, default=200,
                   help="sessions set up one at a time for the unloaded latency (0: skip)")
    p.add_argument("--warmup", type=int, default=50, help="sessions opened and closed first")
    p.add_argument("--connect-rate", type=int, default=100000,
                   help="certbridge [upstream] connect_rate during the benchmark")
    p.add_argument("--session-resumption", choices=("yes", "no"), default="no",
                   help="certbridge [upstream] session_resumption; no: every upstream "
                   "handshake is full, as F1's figures assume")
    p.add_argument("--bulk-size", type=int, default=65536, help="bulk payload size (bytes)")
    p.add_argument("--bulk-messages", type=int, default=2000, help="bulk messages measured")
    p.add_argument("--bulk-window", type=int, default=32,
                   help="bulk messages in flight (sent, not yet received)")
    p.add_argument("--small-size", type=int, default=100, help="small payload size (bytes)")
    p.add_argument("--small-messages", type=int, default=100000,
                   help="small messages measured")
    p.add_argument("--small-window", type=int, default=1000,
                   help="small messages in flight (sent, not yet received)")
    p.add_argument("--latency-messages", type=int, default=2000,
                   help="small messages sent one at a time for the latency figure (0: skip)")
    p.add_argument("--check-every", type=int, default=1,
                   help="compare the full content of every Nth payload (length and sequence "
                        "are checked for all)")
    p.add_argument("--only", choices=["direct", "certbridge"], help="measure one side only")
    p.add_argument("--phases", default="memory,rate,throughput",
                   help="comma-separated subset of memory,rate,throughput")
    p.add_argument("--downstream-ciphers", default="",
                   help="certbridge [downstream] ciphers (wolfSSL names; default: certbridge's "
                        "own list); e.g. TLS13-CHACHA20-POLY1305-SHA256 first")
    p.add_argument("--broker-tls13-ciphers", default="",
                   help="mosquitto ciphers_tls1.3 (OpenSSL names), for both sides alike; "
                        "default: mosquitto's own")
    p.add_argument("--broker-nagle", action="store_true",
                   help="leave mosquitto's set_tcp_nodelay at its default (false)")
    p.add_argument("--log-level", default="info", choices=["error", "warn", "info", "debug"],
                   help="certbridge log_level (info: what operators run)")
    p.add_argument("--json", metavar="FILE", help="also write every figure as JSON ('-': stdout)")
    p.add_argument("--workdir", help="keep PKI, configurations and logs here (otherwise a "
                                     "temporary folder, removed after a successful run)")
    a = p.parse_args(argv)
    a.phases = [x.strip() for x in a.phases.split(",") if x.strip()]
    for ph in a.phases:
        if ph not in ("memory", "rate", "throughput"):
            p.error("unknown phase %r" % ph)
    if a.sessions < 2 or a.rate_sessions < 1 or a.concurrency < 1 or a.rounds < 1:
        p.error("--sessions >= 2, --rate-sessions, --concurrency and --rounds >= 1")
    if min(a.bulk_size, a.small_size) < 8 or max(a.bulk_size, a.small_size) > 1000000:
        p.error("payload sizes must be 8..1000000 bytes (certbridge max_packet_size is 1M)")
    return a


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    binary = args.binary
    if not binary:
        b = Path(args.build)
        if not b.is_absolute() and not b.exists():
            b = REPO / b
        binary = str((b / "certbridge").resolve())
    if args.only != "direct" and not os.access(binary, os.X_OK):
        log("%s is not built: run 'make build' first" % binary)
        return 2
    if not shutil.which("mosquitto"):
        log("mosquitto is not installed")
        return 2
    # The load generator holds every socket itself; certbridge holds two per
    # session. Children inherit the limit.
    most = max(args.sessions, args.rate_sessions)
    got = raise_nofile(max(65536, 2 * most + 4096))
    if args.only != "direct" and got < 2 * most + 64:
        log("warning: RLIMIT_NOFILE is %d (hard limit %d) and cannot be raised here; "
            "certbridge holds 2 descriptors per session, so about %d sessions at most "
            "will get through it" % (got, resource.getrlimit(resource.RLIMIT_NOFILE)[1],
                                     (got - 64) // 2))

    started = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    info = machine_info(binary)
    runid = os.urandom(3).hex()
    tmp = None
    if args.workdir:
        workdir = Path(args.workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="cbbench-")
        workdir = Path(tmp)
    t_start = time.monotonic()
    results = {"started": started, "machine": info, "args": vars(args), "tls": {}}
    rc = 0
    try:
        pki = Path(mkpki.lab(str(workdir / "pki")))
        log("PKI in %s; work folder %s" % (pki, workdir))
        kinds = [args.only] if args.only else ["direct", "certbridge"]
        if "certbridge" in kinds:
            pw = workdir / "probe"
            pw.mkdir(exist_ok=True)
            broker = start_broker(pki, pw, args)
            try:
                results["tls"].update(probe_upstream_cipher(binary, pki, pw, broker, args))
            finally:
                broker.stop()
        for kind in kinds:
            results[kind] = run_target(kind, args, binary, pki, workdir, runid)
            cc = results[kind].get("client_cipher")
            if kind == "direct" and cc:
                results["tls"]["direct"] = "%s %s" % (cc[1], cc[0])
    except BenchError as e:
        log("failed: %s" % e)
        rc = 1
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    except BaseException:
        if tmp:
            log("logs kept in %s" % tmp)
        raise
    results["seconds"] = round(time.monotonic() - t_start, 1)
    if rc == 0:
        rows = build_table(results, args)
        print_table(rows, info, args, results, started)
        print("total run time %.0fs; details: --json FILE" % results["seconds"])
        failed = sum((results.get(k, {}).get("rate") or {}).get("failed", 0)
                     + sum(r["failed"] for r in (results.get(k, {}).get("memory") or []))
                     for k in ("direct", "certbridge"))
        broken = [(k, ph) for k in ("direct", "certbridge")
                  for ph in ("bulk", "small", "latency") if results.get(k, {}).get(ph)
                  and (results[k][ph]["bad_content"] or results[k][ph]["bad_length"]
                       or results[k][ph]["lost"] or not results[k][ph]["complete"])]
        if failed or broken:
            log("WARNING: %d sessions failed; lost, incomplete or corrupted messages in %s"
                % (failed, broken or "none"))
            rc = 1
    if tmp and rc == 0:
        shutil.rmtree(tmp, ignore_errors=True)
    elif tmp:
        log("PKI, configurations and logs kept in %s" % tmp)
    if args.json:
        text = json.dumps(results, indent=2, default=str)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
