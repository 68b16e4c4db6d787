#!/usr/bin/python3
"""The status page's cost (docs/benchmarks.md, "The status page"): a gateway
that knows 10,000 devices (a state file of two CAs' sightings) and holds 50
refusals; GET / and GET /status timed from the client, wall clock, over
keep-alive-less requests as a browser's first load makes them.

    tools/bench_page.py --build build [--requests 200]

Figures, not assertions: it prints a table and writes BUILD/bench/page.md.
"""

import argparse
import http.client
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.dont_write_bytecode = True
sys.path.insert(0, str(REPO / "tools"))
import mkpki  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("certbridge exited with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("certbridge did not listen on %d" % port)


def get(port, path):
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    assert r.status == 200, (path, r.status)
    return time.perf_counter() - t0, len(body)


def refuse(port, pki, n):
    """n devices refused as expired (each a refusal in the ring)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(str(pki / "dev-expired.pem"), str(pki / "dev-expired.key"))
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            try:
                with ctx.wrap_socket(s) as ss:
                    ss.recv(1)
            except (OSError, ssl.SSLError):
                pass


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default="build")
    p.add_argument("--devices", type=int, default=10000)
    p.add_argument("--refusals", type=int, default=50)
    p.add_argument("--requests", type=int, default=200)
    args = p.parse_args()
    binary = REPO / args.build / "certbridge"
    work = Path(tempfile.mkdtemp(prefix="cb-bench-page."))
    pki = work / "pki"
    mkpki.lab(str(pki))
    now = int(time.time())
    with open(work / "devices.state", "w") as f:
        f.write("# certbridge device sightings v1: ca\tdevice\tfirst\tlast "
                "(epoch seconds, UTC)[\tserial (hex)]\n")
        for i in range(args.devices):
            ca = "old" if i % 3 else "new"
            f.write("%s\tmeter-%05d\t%d\t%d\t%06X\n" % (ca, i, now - 86400 * 30,
                                                        now - (i % 14) * 86400, i + 1))
    port, admin = free_port(), free_port()
    (work / "certbridge.ini").write_text(
        "[gateway]\nadmin_listen = 127.0.0.1:%d\nstate_file = %s\nlog_level = warn\n"
        "[downstream]\nlisten = 127.0.0.1:%d\ncert = %s\nkey = %s\n"
        "[ca.old]\nfile = %s\n[ca.new]\nfile = %s\n"
        "[upstream]\naddress = 127.0.0.1:1\nsni = localhost\nca = %s\n"
        % (admin, work / "devices.state", port, pki / "gateway-chain.pem",
           pki / "gateway.key", pki / "ca-old.pem", pki / "ca-new.pem",
           pki / "cloud-root.pem"))
    log = open(work / "certbridge.log", "wb")
    proc = subprocess.Popen([str(binary), "-c", str(work / "certbridge.ini")],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc)
        refuse(port, pki, args.refusals)
        rows = []
        for path in ("/", "/status"):
            for _ in range(10):
                get(admin, path)
            times, size = [], 0
            for _ in range(args.requests):
                t, size = get(admin, path)
                times.append(t * 1000)
            times.sort()
            rows.append((path, size, statistics.median(times),
                         times[int(len(times) * 0.99) - 1], max(times)))
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    lines = ["| request | bytes | median ms | p99 ms | max ms |",
             "| --- | --- | --- | --- | --- |"]
    for path, size, med, p99, mx in rows:
        lines.append("| `GET %s` | %d | %.2f | %.2f | %.2f |" % (path, size, med, p99, mx))
    text = ("%d devices known (state file), %d refusals, %d requests each, one "
            "connection per request, 127.0.0.1\n\n" % (args.devices, args.refusals,
                                                       args.requests)
            + "\n".join(lines) + "\n")
    out = REPO / args.build / "bench" / "page.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
