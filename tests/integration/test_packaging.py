"""Packaging: what CI can prove without a Docker engine.

- `make install DESTDIR=<tmp> PREFIX=/usr` installs the binaries, the
  systemd unit and the configuration, and a second install keeps a changed
  certbridge.ini;
- the installed unit passes `systemd-analyze verify` in a root made of that
  DESTDIR (the unit byte for byte as installed, its ExecStart resolved in
  it), and broken copies of it do not (so the check can fail);
- the unit keeps its hardening lines;
- docker/Dockerfile builds with the same commands as the Makefile and
  tools/install-deps.sh, runs as a non-root user, and installs the Debian
  package of every library the binaries link;
- docker/compose.yaml parses, passes yamllint, and has its four services;
- the docker lab's configuration files work, run here without containers:
  the pki command's PKI, docker/mosquitto.conf, docker/lab.ini and
  docker/device.sh, with only the container paths and ports replaced;
- the alert rules of docs/metrics.md are well-formed Prometheus rules.

Needs systemd-analyze (package systemd), yamllint and python3-yaml, which
tools/install-deps.sh installs for `make test`.
"""

import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

import cbtest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
UNIT = "certbridge.service"
UNIT_REL = "usr/lib/systemd/system/" + UNIT  # PREFIX=/usr


def _need(tool, package):
    path = shutil.which(tool)
    if path is None:
        pytest.fail("%s is not installed (Debian package %s; tools/install-deps.sh "
                    "installs it)" % (tool, package))
    return path


def _make_env():
    # When run from `make test`, MAKEFLAGS carries the outer make's
    # variables (SANITIZE=address,undefined in the second pass) and its
    # jobserver: the install below must be a plain, independent make.
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "MAKE_TERMOUT",
              "MAKE_TERMERR"):
        env.pop(k, None)
    return env


def make_install(destdir):
    """`make install DESTDIR=destdir PREFIX=/usr` in the repository (the
    plain build of build/ with the default wolfSSL, as the Dockerfile builds
    it; already built by `make test`, and built here under `make test
    WOLFSSL=system`)."""
    r = subprocess.run(["make", "--no-print-directory", "install", "DESTDIR=%s" % destdir,
                        "PREFIX=/usr", "SANITIZE=", "WOLFSSL=own"],
                       cwd=str(ROOT), env=_make_env(), capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, "make install failed:\n%s\n%s" % (r.stdout, r.stderr)
    return r


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    d = tmp_path_factory.mktemp("destdir")
    make_install(d)
    return d


def tool_names():
    """The binaries the Makefile builds: certbridge and every
    tools/certbridge-*.c (certbridge-certs, certbridge-diag, ...)."""
    return ["certbridge"] + sorted(p.stem for p in (ROOT / "tools").glob("certbridge-*.c"))


# ---------------------------------------------------------------- make install


def test_install_puts_every_file_in_place(installed):
    names = tool_names()
    assert "certbridge-certs" in names
    for n in names:
        p = installed / "usr/bin" / n
        assert p.is_file(), "make install did not install %s" % p
        assert p.stat().st_mode & 0o777 == 0o755, "%s mode %o" % (p, p.stat().st_mode & 0o777)
    unit = installed / UNIT_REL
    assert unit.is_file()
    assert unit.stat().st_mode & 0o777 == 0o644
    ini = installed / "etc/certbridge/certbridge.ini"
    assert ini.is_file()
    assert ini.stat().st_mode & 0o777 == 0o640, "certbridge.ini mode %o" % (
        ini.stat().st_mode & 0o777)
    assert ini.read_text() == (ROOT / "conf/certbridge.ini").read_text()
    # The unit names the installed binary and the installed configuration.
    text = unit.read_text()
    assert "ExecStart=/usr/bin/certbridge -c /etc/certbridge/certbridge.ini\n" in text
    assert "ExecStartPre=/usr/bin/certbridge -t -c /etc/certbridge/certbridge.ini\n" in text
    assert "/usr/local/bin/" not in text


def test_install_puts_the_docs_where_help_points(installed):
    """docs/ and an example INI under share/doc/certbridge, and the
    installed binary's --help names that folder."""
    doc = installed / "usr/share/doc/certbridge"
    for md in sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]:
        p = doc / md.name
        assert p.is_file() and p.read_text() == md.read_text(), "not installed: %s" % p
        assert p.stat().st_mode & 0o777 == 0o644
    example = doc / "certbridge.ini.example"
    assert example.read_text() == (ROOT / "conf/certbridge.ini").read_text()
    rules = doc / "certbridge-alerts.yml"
    assert rules.read_text() == (ROOT / "conf/certbridge-alerts.yml").read_text()
    r = subprocess.run([str(installed / "usr/bin/certbridge"), "--help"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    m = re.search(r"^documentation: (\S+)$", r.stdout, re.M)
    assert m and m.group(1) == str(doc), r.stdout


def test_unit_waits_for_ready_and_has_a_watchdog(installed):
    """Type=notify: systemd knows certbridge serves when it says READY=1
    (not when the process exists), and restarts it when its loop stops
    pinging the watchdog."""
    settings = _unit_settings((installed / UNIT_REL).read_text())
    service = {k: v for sec, k, v in settings if sec == "Service"}
    assert service.get("Type") == "notify", service
    assert service.get("NotifyAccess") == "main", service
    m = re.fullmatch(r"(\d+)s", service.get("WatchdogSec", ""))
    assert m and 10 <= int(m.group(1)) <= 120, service
    assert service.get("Restart") in ("on-failure", "always"), service


def test_second_install_keeps_a_changed_ini(tmp_path):
    make_install(tmp_path)
    ini = tmp_path / "etc/certbridge/certbridge.ini"
    changed = ini.read_text().replace("log_level = info", "log_level = debug")
    changed += "; edited on this gateway\n"
    ini.write_text(changed)
    binary = tmp_path / "usr/bin/certbridge"
    binary.write_bytes(b"old version\n")  # an upgrade replaces the binaries
    make_install(tmp_path)
    assert ini.read_text() == changed, "a second make install overwrote certbridge.ini"
    assert binary.read_bytes() != b"old version\n", "make install did not replace the binary"


# ---------------------------------------------------------------- systemd


def _unit_settings(text):
    """[(section, key, value)] of a unit file, in order."""
    out, section = [], None
    for line in text.splitlines():
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        m = re.match(r"^\[(.+)\]$", s)
        if m:
            section = m.group(1)
            continue
        k, sep, v = s.partition("=")
        assert sep, "not a key=value line in the unit: %r" % line
        out.append((section, k.strip(), v.strip()))
    return out


def _exec_paths(text):
    """Absolute paths of the commands of every Exec*= line (prefixes such
    as - @ + ! stripped)."""
    out = []
    for section, k, v in _unit_settings(text):
        if k.startswith("Exec") and v:
            out.append(shlex.split(v.lstrip("-@:+!"))[0])
    return out


def _host_unit_dir():
    for d in ("/usr/lib/systemd/system", "/lib/systemd/system"):
        if os.path.isfile(os.path.join(d, "sysinit.target")):
            return d
    pytest.fail("no systemd unit folder with sysinit.target on this machine "
                "(Debian package systemd)")


def verify_root(destdir, root):
    """A root for `systemd-analyze verify --root`: the installed DESTDIR,
    plus what a Debian system provides besides certbridge: the system's
    units (sysinit.target, multi-user.target, ...) and the commands the unit
    runs that are not certbridge's (/bin/kill for ExecReload)."""
    shutil.copytree(destdir, root, symlinks=True)
    units = root / "usr/lib/systemd/system"
    host = _host_unit_dir()
    for name in os.listdir(host):
        src = os.path.join(host, name)
        dst = units / name
        if dst.exists() or dst.is_symlink():
            continue  # ours wins
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        elif os.path.isfile(src):
            shutil.copy2(src, dst)
    for cmd in _exec_paths((units / UNIT).read_text()):
        target = root / cmd.lstrip("/")
        if not target.exists() and not cmd.startswith("/usr/bin/certbridge"):
            assert os.path.isfile(cmd), "the unit runs %s, which this machine lacks" % cmd
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.realpath(cmd), target)
    return root


def systemd_verify(root):
    """Runs systemd-analyze verify on the unit inside root. Returns
    (exit code, output lines that concern certbridge's unit)."""
    exe = _need("systemd-analyze", "systemd")
    r = subprocess.run([exe, "verify", "--root=%s" % root, "/" + UNIT_REL],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER=""))
    out = (r.stdout + r.stderr).splitlines()
    mine = [l for l in out if "certbridge" in l]
    return r.returncode, mine, out


def test_installed_unit_passes_systemd_analyze_verify(installed, tmp_path):
    root = verify_root(installed, tmp_path / "root")
    rc, mine, out = systemd_verify(root)
    assert rc == 0 and not mine, "systemd-analyze verify (exit %d):\n%s" % (rc, "\n".join(out))


BROKEN_UNITS = {
    # an unknown directive: systemd ignores it with a warning (exit 0), so
    # the warning line itself must fail the check
    "unknown-directive": lambda t: t.replace("NoNewPrivileges=yes\n",
                                             "NoNewPrivileges=yes\nProtectEverything=yes\n"),
    # a value systemd cannot parse
    "bad-restart-value": lambda t: t.replace("Restart=on-failure", "Restart=sometimes"),
    # a misspelt section: no ExecStart= left, verify exits non-zero
    "misspelt-section": lambda t: t.replace("[Service]\n", "[Servce]\n"),
    # (systemd-analyze 252 says nothing about an unknown capability name:
    # test_unit_hardening checks CapabilityBoundingSet itself.)
}


@pytest.mark.parametrize("breakage", sorted(BROKEN_UNITS) + ["missing-binary"])
def test_systemd_analyze_verify_catches_a_broken_unit(installed, tmp_path, breakage):
    root = verify_root(installed, tmp_path / "root")
    unit = root / UNIT_REL
    if breakage == "missing-binary":
        # ExecStart names a binary that is not installed where it says.
        (root / "usr/bin/certbridge").unlink()
    else:
        text = unit.read_text()
        broken = BROKEN_UNITS[breakage](text)
        assert broken != text, "the %s edit no longer applies to the unit" % breakage
        unit.write_text(broken)
    rc, mine, out = systemd_verify(root)
    assert rc != 0 or mine, "systemd-analyze verify accepted a %s unit:\n%s" % (
        breakage, "\n".join(out))


def test_unit_hardening(installed):
    settings = _unit_settings((installed / UNIT_REL).read_text())
    svc = {}
    for section, k, v in settings:
        if section == "Service":
            svc.setdefault(k, []).append(v)

    def one(key):
        assert key in svc, "[Service] %s is missing" % key
        assert len(svc[key]) == 1, "[Service] %s is given %d times" % (key, len(svc[key]))
        return svc[key][0]

    assert one("NoNewPrivileges") == "yes"
    assert one("ProtectSystem") == "strict"
    assert one("CapabilityBoundingSet").split() == ["CAP_NET_BIND_SERVICE"]
    assert set(one("AmbientCapabilities").split()) <= {"CAP_NET_BIND_SERVICE"}
    assert one("Restart") == "on-failure"
    reload_cmd = shlex.split(one("ExecReload"))
    assert reload_cmd[0] in ("/bin/kill", "/usr/bin/kill") and reload_cmd[1:] == [
        "-HUP", "$MAINPID"], "ExecReload must send SIGHUP to the daemon: %s" % reload_cmd
    assert one("User") == "certbridge"
    assert one("ProtectHome") == "yes"
    assert one("PrivateTmp") == "yes"
    # The configuration is checked before every start.
    pre = shlex.split(one("ExecStartPre"))
    assert pre[1:] == ["-t", "-c", "/etc/certbridge/certbridge.ini"], pre
    # Two descriptors per session at the default max_connections = 10000,
    # plus room (certbridge logs event=fd-limit when it is too low).
    assert int(one("LimitNOFILE")) > 2 * 10000


# ---------------------------------------------------------------- Dockerfile


def dockerfile_stages(path):
    """[{"from": "image", "name": "alias" or None, "instr": [(INSTR, args)]}]
    of a Dockerfile: continuation lines joined, comments dropped."""
    logical, cur = [], ""
    for line in Path(path).read_text().splitlines():
        s = line.strip()
        if s.startswith("#") and not cur:
            continue
        if s.startswith("#"):
            continue  # a comment inside a continued instruction
        if not s and not cur:
            continue
        if s.endswith("\\"):
            cur += s[:-1].strip() + " "
            continue
        cur += s
        logical.append(cur.strip())
        cur = ""
    assert not cur, "%s ends inside a continued instruction" % path
    stages, global_args = [], {}
    for l in logical:
        instr, _, args = l.partition(" ")
        instr = instr.upper()
        if instr == "ARG" and not stages:
            # A global ARG (before the first FROM), usable in FROM lines.
            k, _, v = args.strip().partition("=")
            global_args[k] = v
            continue
        if instr == "FROM":
            a = args.split()
            name = a[2] if len(a) == 3 and a[1].upper() == "AS" else None
            assert len(a) in (1, 3), "odd FROM line: %r" % l
            image = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], a[0])
            stages.append({"from": image, "from_raw": a[0], "name": name, "instr": []})
            continue
        assert stages, "%s: %s before FROM" % (path, instr)
        stages[-1]["instr"].append((instr, args.strip()))
    return stages


def run_commands(stage):
    """Every command of the stage's RUN lines, split at &&."""
    out = []
    for instr, args in stage["instr"]:
        if instr == "RUN":
            out += [c.strip() for c in args.split("&&")]
    return out


def makefile_recipe(target):
    """The recipe lines of a Makefile target (without @ and leading tab)."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    for i, l in enumerate(lines):
        if re.match(r"^%s\s*:(?!=)" % re.escape(target), l):
            out = []
            for r in lines[i + 1:]:
                if not r.startswith("\t"):
                    break
                out.append(r[1:].lstrip("@").strip())
            return out
    raise AssertionError("the Makefile has no target %s" % target)


# The commands `make` (build-deps, build) and `make install` run, as the
# Dockerfile's build stage must run them.
BUILD_STAGE_COMMANDS = [
    "tools/install-deps.sh build",
    "make build",
    "make install PREFIX=/usr/local DESTDIR=/out",
]


def test_dockerfile_builds_with_the_makefile_commands():
    stages = dockerfile_stages(DOCKER / "Dockerfile")
    assert len(stages) == 2, "expected a build and a runtime stage"
    build, runtime = stages
    assert build["from"] == "debian:bookworm-slim" and build["name"] == "build"
    assert runtime["from"] == "debian:bookworm-slim"
    # Both from one base argument, which make test-container sets to an
    # image made from the package mirror (no registry needed).
    assert build["from_raw"] == runtime["from_raw"] == "${BASE}"
    assert run_commands(build) == BUILD_STAGE_COMMANDS
    # ... which are the Makefile's own: `make` runs build-deps then build.
    mk = (ROOT / "Makefile").read_text()
    assert makefile_recipe("build-deps") == ["tools/install-deps.sh build"]
    assert re.search(r"^all:\s*build-deps\s*$", mk, re.M)
    assert makefile_recipe("all") == ["$(MAKE) --no-print-directory build"]
    assert re.search(r"^build:\s*\$\(BINS\)\s*$", mk, re.M)
    assert re.search(r"^install:\s*build\s*$", mk, re.M)
    assert re.search(r"^build\)\s*PKGS=", (ROOT / "tools/install-deps.sh").read_text(), re.M), \
        "tools/install-deps.sh no longer takes 'build'"
    # Everything it copies exists; the host's build/ never goes in.
    for instr, args in build["instr"]:
        if instr == "COPY":
            for src in args.split()[:-1]:
                assert not src.startswith("--"), "unexpected COPY option in the build stage"
                assert (ROOT / src).exists(), "COPY %s: no such file in the repository" % src
                assert not src.rstrip("/").startswith("build"), "the host build/ is copied"
    # The install-deps layer comes before the sources (cached).
    assert build["instr"][1] == ("COPY", "tools/install-deps.sh tools/install-deps.sh")


def _runtime(stages):
    return stages[-1]


def test_dockerfile_runtime_stage_is_non_root():
    rt = _runtime(dockerfile_stages(DOCKER / "Dockerfile"))
    users = [a for i, a in rt["instr"] if i == "USER"]
    assert users, "the runtime stage has no USER"
    user = users[-1]
    uid = user.split(":")[0]
    assert uid not in ("root", "0") and user.split(":")[-1] not in ("root", "0")
    assert uid.isdigit(), "USER should be numeric (runAsNonRoot can only check a uid)"
    runs = " ".join(run_commands(rt))
    assert re.search(r"useradd [^&]*--uid %s\b[^&]* certbridge\b" % uid, runs), \
        "the user of USER %s is not created as certbridge" % user
    exposed = " ".join(a for i, a in rt["instr"] if i == "EXPOSE").split()
    assert "8883" in exposed and "9883" in exposed
    entry = [a for i, a in rt["instr"] if i == "ENTRYPOINT"]
    cmd = [a for i, a in rt["instr"] if i == "CMD"]
    assert entry == ['["/usr/local/bin/certbridge"]']
    assert cmd == ['["-c", "/etc/certbridge/certbridge.ini"]']
    # The binaries come from the build stage's `make install` with PREFIX=/usr/local.
    assert ("COPY", "--from=build /out/usr/local/bin/ /usr/local/bin/") in rt["instr"]
    # The uid the compose lab gives the gateway's keys to is this one.
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert "chown %s:%s /pki/gateway.key" % (uid, uid) in compose["services"]["pki"]["command"][-1]


# Packages every debian:bookworm-slim image has (libc6 and what it needs).
BASE_IMAGE_PACKAGES = {"libc6", "libgcc-s1"}


def _package_of(path):
    for p in (path, os.path.realpath(path), "/usr" + path if path.startswith("/lib") else None):
        if not p:
            continue
        r = subprocess.run(["dpkg-query", "-S", p], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":")[0].strip()
    raise AssertionError("no Debian package owns %s" % path)


def test_dockerfile_runtime_installs_the_libraries_the_binaries_link(installed):
    rt = _runtime(dockerfile_stages(DOCKER / "Dockerfile"))
    runs = run_commands(rt)
    apt = [c for c in runs if c.startswith("apt-get install")]
    assert len(apt) == 1, runs
    wanted = {w for w in apt[0].split()[2:] if not w.startswith("-")}
    needed = set()
    for n in tool_names():
        r = subprocess.run(["ldd", str(installed / "usr/bin" / n)], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        for m in re.finditer(r"=>\s+(/\S+)", r.stdout):
            needed.add(_package_of(m.group(1)))
    missing = needed - BASE_IMAGE_PACKAGES - wanted
    assert not missing, "the runtime image lacks %s (linked by the binaries)" % sorted(missing)


# ---------------------------------------------------------------- compose


def test_compose_file_parses_and_passes_yamllint():
    exe = _need("yamllint", "yamllint")
    r = subprocess.run([exe, "--strict", "-f", "parsable", str(DOCKER / "compose.yaml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    c = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = c["services"]
    assert set(services) == {"pki", "broker", "certbridge", "device"}
    assert set(c["volumes"]) == {"pki", "state"}

    def mounts(svc):
        out = {}
        for v in services[svc].get("volumes", []):
            parts = v.split(":")
            out[parts[1]] = (parts[0], parts[2] if len(parts) > 2 else "rw")
        return out

    # Named volumes are declared; bind mounts exist (relative to docker/).
    for svc in services:
        for target, (src, mode) in mounts(svc).items():
            if src.startswith("."):
                assert (DOCKER / src).exists(), "%s mounts %s, which does not exist" % (svc, src)
            else:
                assert src in c["volumes"], "%s uses undeclared volume %s" % (svc, src)
    assert mounts("pki") == {"/pki": ("pki", "rw")}
    for svc in ("broker", "certbridge", "device"):
        assert mounts(svc)["/pki"] == ("pki", "ro"), svc
    cb = mounts("certbridge")
    assert cb["/etc/certbridge/certbridge.ini"] == ("./lab.ini", "ro")
    assert cb["/var/lib/certbridge"] == ("state", "rw")

    # Images: certbridge from docker/Dockerfile, the others from the lab image.
    for svc, dockerfile in (("certbridge", "docker/Dockerfile"), ("pki", "docker/lab.Dockerfile"),
                            ("broker", "docker/lab.Dockerfile"),
                            ("device", "docker/lab.Dockerfile")):
        b = services[svc]["build"]
        assert b["dockerfile"] == dockerfile, svc
        assert (DOCKER / b["context"]).resolve() == ROOT, svc
        assert (ROOT / dockerfile).is_file()
    lab_copies = [a for i, a in dockerfile_stages(DOCKER / "lab.Dockerfile")[-1]["instr"]
                  if i == "COPY"]
    for src in ("tools/mkpki.py", "docker/device.sh", "docker/mosquitto.conf"):
        assert any(src in a.split() for a in lab_copies), "lab.Dockerfile does not copy " + src

    # What the services run.
    assert services["broker"]["command"] == ["mosquitto", "-c",
                                             "/etc/mosquitto/certbridge-lab.conf"]
    assert any(a.endswith("docker/mosquitto.conf /etc/mosquitto/certbridge-lab.conf")
               for a in lab_copies)
    assert services["device"]["command"] == ["certbridge-lab-device"]
    pki_cmd = services["pki"]["command"][-1]
    assert "mkpki.py lab /pki" in pki_cmd
    assert set(re.findall(r"--broker-name (\S+)", pki_cmd)) == {"broker", "certbridge"}

    # Order: pki first, then broker, then certbridge, then the device.
    dep = {s: services[s].get("depends_on", {}) for s in services}
    assert dep["broker"]["pki"]["condition"] == "service_completed_successfully"
    assert dep["certbridge"]["pki"]["condition"] == "service_completed_successfully"
    assert dep["certbridge"]["broker"]["condition"] == "service_healthy"
    assert dep["device"]["certbridge"]["condition"] == "service_healthy"
    # Published on the host's loopback only.
    ports = services["certbridge"]["ports"]
    assert sorted(ports) == ["127.0.0.1:8883:8883", "127.0.0.1:9883:9883"]
    for svc in ("pki", "broker", "device"):
        assert "ports" not in services[svc], svc


# ---------------------------------------------------------------- the lab, without containers


def _replace_once(text, old, new, what):
    n = text.count(old)
    assert n == 1, "%s: expected %r once, found it %d times" % (what, old, n)
    return text.replace(old, new)


def lab_pki(folder):
    """The PKI the compose pki service writes (same mkpki arguments)."""
    cmd = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]["pki"]["command"][-1]
    names = re.findall(r"--broker-name (\S+)", cmd)
    cbtest.mkpki.lab(folder, broker_names=names)
    return cbtest.Pki(folder)


def lab_ini_text(pki_dir, state, listen_port, admin_port, broker_port):
    text = (DOCKER / "lab.ini").read_text()
    assert len(re.findall(r"(?m)^\w+ = /pki/", text)) == 7, "lab.ini names other /pki files"
    text = re.sub(r"(?m)^(\w+) = /pki/", lambda m: "%s = %s/" % (m.group(1), pki_dir), text)
    text = _replace_once(text, "state_file = /var/lib/certbridge/devices.state",
                         "state_file = %s" % state, "lab.ini")
    text = _replace_once(text, "listen = 0.0.0.0:8883", "listen = 127.0.0.1:%d" % listen_port,
                         "lab.ini")
    text = _replace_once(text, "admin_listen = 0.0.0.0:9883",
                         "admin_listen = 127.0.0.1:%d" % admin_port, "lab.ini")
    text = _replace_once(text, "address = broker:8884", "address = 127.0.0.1:%d" % broker_port,
                         "lab.ini")
    # sni = broker stays: the broker's certificate must carry that name.
    assert re.search(r"(?m)^sni = broker$", text)
    return text


def test_docker_lab_ini_passes_certbridge_check(certbridge_bin, tmp_path):
    pki = lab_pki(tmp_path / "pki")
    conf = tmp_path / "lab.ini"
    conf.write_text(lab_ini_text(pki.dir, tmp_path / "devices.state", cbtest.free_port(),
                                 cbtest.free_port(), 8884))
    r = subprocess.run([certbridge_bin, "-t", "-c", str(conf)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert "error" not in r.stderr.lower(), r.stderr


class LabBroker(cbtest.Broker):
    """mosquitto on docker/mosquitto.conf, with the container's paths, port
    and user replaced."""

    def write_conf(self):
        text = (DOCKER / "mosquitto.conf").read_text()
        text = text.replace(" /pki/", " %s/" % self.pki.dir)
        text = _replace_once(text, "\nlistener 8884\n", "\nlistener %d 127.0.0.1\n" % self.port,
                             "mosquitto.conf")
        # The container's broker drops to user mosquitto, which owns
        # broker.key there; here the key is ours.
        text = _replace_once(text, "\nuser mosquitto\n", "\nuser %s\n"
                             % pwd.getpwuid(os.geteuid()).pw_name, "mosquitto.conf")
        self.conf_path.write_text(text)


class LabGateway(cbtest.Gateway):
    """certbridge on docker/lab.ini (paths and ports replaced)."""

    def __init__(self, pki, workdir, broker_port, **kw):
        super().__init__(pki, workdir, broker_port, admin=True, **kw)

    def write_conf(self):
        self.conf_path.write_text(lab_ini_text(self.pki.dir, self.workdir / "devices.state",
                                               self.port, self.admin_port, self.upstream_port))


class LabDevice(cbtest.Proc):
    kind = "device"


def _group_gone(pgid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_docker_lab_runs_without_containers(certbridge_bin, tmp_path):
    """The compose lab's files, on this machine: broker (mosquitto.conf),
    certbridge (lab.ini, sni = broker) and the device script; the device's
    messages must go through, and the compose health check must pass."""
    pki = lab_pki(tmp_path / "pki")
    broker = LabBroker(pki, tmp_path / "broker").start()
    gw = dev = None
    try:
        gw = LabGateway(pki, tmp_path / "gateway", broker.port, binary=certbridge_bin).start()
        dev = LabDevice(tmp_path / "device")
        dev._spawn(["sh", str(DOCKER / "device.sh")],
                   env=dict(os.environ, GW_HOST="127.0.0.1", GW_PORT=str(gw.port),
                            PKI=str(pki.dir), INTERVAL="0.5"))
        dev.wait_log(r"^lab/hello hello from dev-old-1 #\d+$", timeout=30)
        gw.wait_event("device-admitted", device="dev-old-1", ca="old")
        gw.wait_event("device-admitted", device="dev-new-1", ca="new")
        assert not gw.events("handshake-failed"), gw.report()

        # docker stop: SIGTERM ends the script and everything it started.
        pgid = dev.pid
        rc = dev.stop(timeout=10)
        assert rc == 0, dev.report()
        if not _group_gone(pgid, 5):
            os.killpg(pgid, signal.SIGKILL)  # our own process group
            pytest.fail("device.sh left processes running after SIGTERM")

        # The compose health check command, against this certbridge.
        hc = yaml.safe_load((DOCKER / "compose.yaml").read_text())
        test = hc["services"]["certbridge"]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "bash", "-c"]
        script = _replace_once(test[3].replace("$$", "$"), "127.0.0.1/9883",
                               "127.0.0.1/%d" % gw.admin_port, "healthcheck")
        r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, "compose healthcheck failed: %s\n%s" % (r.stderr, gw.report())
        # ... and fails when certbridge is not there.
        assert gw.stop() == 0, gw.report()
        r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=10)
        assert r.returncode != 0, "the compose healthcheck passes without certbridge"
    finally:
        if dev is not None and dev.running():
            dev.stop()
        if gw is not None:
            rc = gw.stop()
            assert rc == 0, gw.report()
        broker.stop()


# ---------------------------------------------------------------- docs/metrics.md alert rules

DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


def metrics_doc_rules():
    text = (ROOT / "docs/metrics.md").read_text()
    blocks = re.findall(r"^```yaml\n(.*?)^```$", text, re.S | re.M)
    rules = [b for b in blocks if b.lstrip().startswith("groups:")]
    assert len(rules) == 1, "docs/metrics.md should have one ```yaml block of rule groups"
    return text, rules[0]


def test_metrics_doc_alert_rules_are_valid(tmp_path):
    text, block = metrics_doc_rules()
    doc = yaml.safe_load(block)
    assert set(doc) == {"groups"}
    documented = set(re.findall(r"^### (certbridge_[a-z_]+)$", text, re.M))
    seen_alerts, seen_groups = set(), set()
    for g in doc["groups"]:
        assert set(g) <= {"name", "interval", "rules", "limit"}, g.keys()
        assert g["name"] not in seen_groups
        seen_groups.add(g["name"])
        assert g["rules"]
        for r in g["rules"]:
            assert set(r) <= {"alert", "expr", "for", "labels", "annotations",
                              "keep_firing_for"}, r.keys()
            assert re.match(r"^[A-Z][A-Za-z0-9]+$", r["alert"]), r["alert"]
            assert r["alert"] not in seen_alerts, "duplicate alert %s" % r["alert"]
            seen_alerts.add(r["alert"])
            expr = r["expr"]
            assert isinstance(expr, str) and expr.strip()
            assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}")
            if "for" in r:
                assert DURATION.match(str(r["for"])), r["for"]
            assert r["labels"]["severity"] in ("info", "warning", "critical")
            assert r["annotations"]["summary"]
            for name in re.findall(r"\b(certbridge_[a-z_]+)", expr):
                assert name in documented, "%s uses %s, not documented" % (r["alert"], name)
            for v in re.findall(r'\{\{\s*\$labels\.([a-z_]+)\s*\}\}',
                                " ".join(r["annotations"].values())):
                assert v in ("instance", "role", "name", "subject", "ca", "reason", "kind"), v
    # The alerts the operator docs promise.
    exprs = " ".join(r["expr"] for g in doc["groups"] for r in g["rules"])
    for needle in ("certbridge_cert_not_after_seconds{role!=\"crl\"} - time() < 30 * 86400",
                   "certbridge_cert_not_after_seconds{role!=\"crl\"} - time() < 14 * 86400",
                   "certbridge_cert_not_after_seconds{role!=\"crl\"} - time() < 7 * 86400",
                   "certbridge_cert_not_after_seconds{role=\"crl\"}",
                   "rate(certbridge_handshakes_total{side=\"downstream\",result=\"fail\"}[5m])",
                   "increase(certbridge_connect_refused_total"
                   "{reason=\"upstream-unavailable\"}[5m]) > 0",
                   "certbridge_upstream_connect_queue >",
                   "certbridge_devices_seen{ca=\"legacy\"",
                   "increase(certbridge_config_reloads_total{result=\"fail\"}[1h]) > 0"):
        assert needle in exprs, needle
    # yamllint on the block as a file of its own.
    f = tmp_path / "certbridge-rules.yml"
    f.write_text("---\n" + block)
    exe = _need("yamllint", "yamllint")
    r = subprocess.run([exe, "-d", "{extends: default, rules: {line-length: disable}}",
                        "--strict", str(f)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_metrics_doc_names_every_exported_metric():
    text = (ROOT / "docs/metrics.md").read_text()
    documented = set(re.findall(r"^### (certbridge_[a-z_]+)$", text, re.M))
    # Every series /metrics exports (gateway/metrics.c, gateway/admin.c):
    # a new one goes here and under its own heading in docs/metrics.md.
    want = {"certbridge_connections", "certbridge_handshakes_total",
            "certbridge_device_auth_total", "certbridge_devices_seen",
            "certbridge_grace_admissions_total", "certbridge_connect_refused_total",
            "certbridge_cert_not_after_seconds", "certbridge_mqtt_packets_total",
            "certbridge_bytes_total", "certbridge_upstream_connect_queue",
            "certbridge_sessions_revoked_total", "certbridge_config_reloads_total",
            "certbridge_build_info", "certbridge_start_time_seconds",
            "certbridge_config_generation", "certbridge_limit_refusals_total",
            "certbridge_handshakes_pending", "certbridge_upstream_handshakes_total"}
    assert want <= documented, sorted(want - documented)
    # The reason slugs it lists are those of troubleshooting.md.
    slugs = set(re.findall(r"^\| `([a-z-]+)`(?:, `([a-z-]+)`)? \|",
                           (ROOT / "docs/troubleshooting.md").read_text(), re.M))
    known = {s for pair in slugs for s in pair if s}
    section = text.split("### certbridge_handshakes_total", 1)[1].split("###", 1)[0]
    listed = set(re.findall(r"`([a-z]+(?:-[a-z]+)*)`", section.split("reason`:", 1)[1]
                            .split("- meaning", 1)[0]))
    listed -= {"ok", "fail", "rate"}
    assert listed and listed <= known, sorted(listed - known)
