"""bench_phases.py - what tools/bench.py measures on one target (a proxy, or
mosquitto itself, with the load generator in front): idle sessions held
(memory), sessions set up (CPU and latency per connect), messages relayed
(QoS 0 throughput and latency, QoS 1 CPU per message). Each phase reads the
CPU and memory of the target's processes, each process summed with its
children (benchkit.tree_*), before and after.
"""

import asyncio
import struct
import time

from benchkit import (BenchError, close_many, log, open_many, pctl, puback_packet, self_cpu,
                      settle_rss, split_packets, subscribe_packet, tree_cpu, tree_fds, tree_mem,
                      varint, wait_fds_below)


def server_pids(target):
    """The processes whose cost we watch: the proxy's first when there is one."""
    return [(p.name, p.pid) for p in target["procs"]]


def cpu_snapshot(target):
    snap = {name: tree_cpu(pid) for name, pid in server_pids(target)}
    snap["client"] = self_cpu()
    snap["wall"] = time.perf_counter()
    return snap


def cpu_delta(a, b):
    return {k: round(b[k] - a[k], 3) for k in a}


def settle(pid):
    return settle_rss(pid, mem=tree_mem)


async def warm_up(client, n, concurrency, prefix, keepalive):
    """Sessions opened and closed before a measurement: the first handshakes
    allocate one-time state (wolfSSL's FP_ECC cache, allocator arenas,
    libevent tables, OpenSSL's); keep that out of the figures."""
    warm, _, err, _ = await open_many(client, n, concurrency, prefix, keepalive)
    if err:
        raise BenchError("warm-up failed: %s" % err[0])
    await close_many(client, warm)


async def phase_memory(target, args, runid, n=None, rounds=None, tag="m"):
    """Idle sessions (n, default --sessions): RSS before/after, per round."""
    client = target["client"]
    pids = server_pids(target)
    await warm_up(client, args.warmup, 10, "bench-%sw-%s" % (tag, runid), args.keepalive)
    base_fds = {}
    for name, pid in pids:
        base_fds[name] = wait_fds_below(pid, 64, fds=tree_fds)
    out = []
    n = n or args.sessions
    for r in range(rounds or args.rounds):
        before = {name: settle(pid) for name, pid in pids}
        mid = {}

        def progress(k, half=n // 2, mid=mid):
            if k == half and not mid:
                mid.update({name: tree_mem(pid) for name, pid in pids})

        c0 = cpu_snapshot(target)
        sessions, lat, errors, elapsed = await open_many(
            client, n, args.concurrency, "bench-%s%d-%s" % (tag, r, runid), args.keepalive,
            progress)
        c1 = cpu_snapshot(target)
        after = {name: settle(pid) for name, pid in pids}
        fds = {name: tree_fds(pid) for name, pid in pids}
        log("  %s round %d: %d sessions open (%d failed) in %.1fs; fds %s"
            % (target["name"], r + 1, len(sessions), len(errors), elapsed,
               ", ".join("%s %d" % kv for kv in fds.items())))
        if errors:
            log("  first failure: %s" % errors[0])
        if args.hold > 0:
            await asyncio.sleep(args.hold)
            held = {name: tree_mem(pid) for name, pid in pids}
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
            wait_fds_below(pid, base_fds[name] + 4, fds=tree_fds)
            closed[name] = settle(pid)
            per[name]["after_close"] = closed[name]
        log("  %s round %d: closed in %.1fs; RSS %s"
            % (target["name"], r + 1, time.perf_counter() - t_close,
               ", ".join("%s %d->%d->%d KiB" % (name, before[name]["VmRSS"],
                                                 after[name]["VmRSS"], closed[name]["VmRSS"])
                         for name, _ in pids)))
        out.append({"sessions": ok, "failed": len(errors), "open_seconds": round(elapsed, 2),
                       "rate": round(ok / elapsed, 1) if elapsed else None,
                       "latency_p50_ms": round(pctl(lat, 50) * 1000, 2) if lat else None,
                       "cpu": cpu_delta(c0, c1), "proc": per,
                       "failures": errors[:20]})
    return out


async def phase_rate(target, args, runid):
    client = target["client"]
    await warm_up(client, args.warmup, args.concurrency, "bench-rw-%s" % runid, args.keepalive)
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


async def phase_throughput(target, args, runid, size, count, window, tag="tp", qos=0):
    """One publisher, one subscriber, at most `window` messages sent and not
    yet received. QoS 0, or QoS 1 on both legs: the publisher's PUBLISH is
    answered by the broker's PUBACK, the broker's PUBLISH to the subscriber
    by the subscriber's PUBACK. Returns figures."""
    client = target["client"]
    topic = "bench/%s/%s/%d" % (runid, tag, size)
    tb = topic.encode()
    pat = Pattern(size)
    sub, _ = await client.open("bench-sub-%s-%s-%d" % (runid, tag, size), 0)
    sub.writer.write(subscribe_packet(topic, qos=qos))
    ack = await asyncio.wait_for(sub.reader.readexactly(5), 10)
    if ack[0] != 0x90 or ack[4] != qos:
        raise BenchError("SUBACK %s" % ack.hex())
    pub, _ = await client.open("bench-pub-%s-%s-%d" % (runid, tag, size), 0)
    acks = []      # PUBACKs the subscriber owes, written after each read

    warm = max(1, min(count // 10, 200 if size > 4096 else 5000))
    total = warm + count
    st = {"next": 0, "received": 0, "lost": 0, "reordered": 0, "bad_len": 0, "bad_content": 0,
          "checked": 0, "bytes": 0, "t_last": None, "t_warm": None, "pubacks": 0}
    sent_at = {}   # seq -> when its batch was handed to the socket
    lat = []       # seconds from write to receipt, measured messages only
    progress = asyncio.Event()
    done = asyncio.Event()
    sample = max(1, args.check_every)

    def on_packet(mv, first, i, e):
        if first & 0xF0 != 0x30:
            return
        tl = (mv[i] << 8) | mv[i + 1]
        if first & 0x06:
            acks.append(puback_packet((mv[i + 2 + tl] << 8) | mv[i + 3 + tl]))
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
            if acks:
                sub.writer.write(b"".join(acks))
                acks.clear()
            progress.set()

    def on_puback(mv, first, i, e):
        if first == 0x40:
            st["pubacks"] += 1

    async def ack_reader():
        """The publisher's side: the broker's PUBACKs, counted."""
        buf = bytearray()
        while True:
            chunk = await pub.reader.read(1 << 16)
            if not chunk:
                return
            buf += chunk
            mv = memoryview(buf)
            pos = split_packets(mv, on_puback)
            mv.release()
            del buf[:pos]

    rtask = asyncio.ensure_future(reader())
    atask = asyncio.ensure_future(ack_reader()) if qos else None

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
            if qos:
                body = struct.pack(">H", len(tb)) + tb + struct.pack(">H", seq % 65535 + 1) + p
                batch.append(b"\x32" + varint(len(body)) + body)
            else:
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
    deadline = time.monotonic() + 10
    while qos and st["pubacks"] < total and time.monotonic() < deadline:
        await asyncio.sleep(0.005)  # the last PUBACKs count in the CPU too
    c1 = cpu_snapshot(target)
    for task in (rtask, atask):
        if task is None:
            continue
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, BenchError, OSError):
            pass
    await client.close(pub)
    await client.close(sub)
    elapsed = t1 - t0
    measured = st["received"] - warm if st["t_warm"] else st["received"]
    payload_bytes = measured * size
    res = {"payload": size, "messages": count, "received": measured, "window": window,
           "qos": qos, "pubacks": st["pubacks"] if qos else None,
           "warmup_messages": warm, "seconds": round(elapsed, 3),
           "mb_per_s": round(payload_bytes / elapsed / 1e6, 2) if elapsed > 0 else None,
           "msgs_per_s": round(measured / elapsed, 1) if elapsed > 0 else None,
           "lost": st["lost"], "reordered": st["reordered"], "bad_length": st["bad_len"],
           "bad_content": st["bad_content"], "content_checked": st["checked"],
           "cpu": cpu_delta(c0, c1),
           "complete": st["t_last"] is not None and (not qos or st["pubacks"] == total),
           "latency_ms": {p: round(pctl(lat, p) * 1000, 3) for p in (50, 99)} if lat else {},
           "latency_max_ms": round(max(lat) * 1000, 3) if lat else None}
    log("  %s QoS %d, %d B, %d in flight: %d msgs in %.2fs = %.1f MB/s, %.0f msg/s; "
        "latency p50 %.3f p99 %.3f ms; lost %d, bad %d, content checked %d (incl. warm-up)"
        % (target["name"], qos, size, window, measured, elapsed, res["mb_per_s"] or 0,
           res["msgs_per_s"] or 0, res["latency_ms"].get(50, 0), res["latency_ms"].get(99, 0),
           st["lost"], st["bad_len"] + st["bad_content"], st["checked"]))
    return res

