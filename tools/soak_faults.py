"""soak_faults.py - the scenarios of tools/soak.py that inject a fault
while echo devices publish QoS 1 to themselves (echo_fault): 1 the broker
SIGKILLed and restarted, 2 the broker's certificate rotated, 3 reloads
under load, 6 a connection flood past max_connections.
"""

import asyncio
import collections
import os
import signal
import time

import mkpki
from soak_checks import (check_alive, check_echo, check_leaks, check_refusal_lines, fmt_n,
                         take_baseline, warm_up)
from soak_devices import EchoDevice, MqttConn, echo_round, finish
from soak_lab import log, metric


# ---------------------------------------------------------------- faults under echo load


async def echo_fault(run, p, inject, role="device", at_accept_ok=False):
    """The frame of scenarios 1-3 and 6: warm-up, baseline, p['devices'] echo
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


# ---------------------------------------------------------------- 6. connection flood


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
