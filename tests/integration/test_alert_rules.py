"""The shipped Prometheus alert rules (conf/certbridge-alerts.yml,
docs/metrics.md "Example alert rules"): promtool accepts them, the docs
show exactly them, and every certbridge metric they name is one a running
gateway exports."""
import re
import subprocess
from pathlib import Path

from cbtest import scrape, t

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "conf" / "certbridge-alerts.yml"


def promtool():
    """tools/promtool.sh: the one on PATH, or Debian's unpacked (not
    installed) under /var/tmp."""
    r = subprocess.run([str(ROOT / "tools" / "promtool.sh")], capture_output=True,
                       text=True, timeout=t(300))
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_promtool_accepts_the_rules():
    r = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True,
                       text=True, timeout=t(60))
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"SUCCESS: (\d+) rules found", r.stdout)
    assert m and int(m.group(1)) >= 10, r.stdout


def test_the_docs_show_the_shipped_rules():
    doc = (ROOT / "docs" / "metrics.md").read_text()
    m = re.search(r"## Example alert rules.*?```yaml\n(.*?)```", doc, re.S)
    assert m, "no yaml block under Example alert rules"
    shipped = "".join(l for l in RULES.read_text().splitlines(True)
                      if not l.startswith("# ") and l.strip() != "#")
    assert m.group(1) == shipped


def test_every_metric_the_rules_use_is_exported(broker, make_gateway):
    g = make_gateway(broker.port, admin=True)
    text, _ = scrape(g.admin_port)
    exported = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    used = set(re.findall(r"\b(certbridge_[a-z_]+)", RULES.read_text()))
    assert used, "the rules name no certbridge metric"
    assert used <= exported, "not exported: %s" % sorted(used - exported)
