"""The status page, GET / on the admin endpoint (docs/operations.md, "The
status page"), loaded in a real headless browser (Debian's chromium).

A gateway with two CAs, the old one retiring in 20 days: a device admitted
by each, one refused as expired, one refused whose certificate's CN is
`<script>alert(1)</script>` with quotes and a control byte. The DOM the
browser built must show one row per CA with its figures, the migration bar
split between them, the retire_after date flagged, both refusals with
reason= and what to do, the hostile CN as text (no script element
anywhere), and /status must carry the same refusals. The screenshot is
kept under build/ (status-page*.png) for a person to look at.
"""

import datetime
import os
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

import cbtest
from cbtest import PahoClient, mkpki, uid

HOSTILE_CN = "<script>alert(1)</script>\"'\x01"
HOSTILE_SHOWN = "<script>alert(1)</script>\"'\\x01"
CHROMIUM = "/usr/lib/chromium/chromium"
SCREENSHOTS = cbtest.REPO / "build"


class Dom(HTMLParser):
    """The elements of a serialized DOM, with their attributes and text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags = []          # (tag, attrs dict)
        self.rows = {}          # table id -> [[cell text, ...], ...]
        self._table = []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table":
            self._table.append(a.get("id", ""))
            self.rows.setdefault(self._table[-1], [])
        elif tag == "tr" and self._table:
            self.rows[self._table[-1]].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "table" and self._table:
            self._table.pop()
        elif tag in ("td", "th") and self._cell is not None and self._table:
            self.rows[self._table[-1]][-1].append(self._cell.strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def browser(url, *args, tmp):
    """chromium --headless on url; its standard output."""
    r = subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--no-first-run",
                        "--user-data-dir=%s" % tmp] + list(args) + [url],
                       capture_output=True, text=True, timeout=cbtest.t(90))
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    return r.stdout


@pytest.fixture(scope="module")
def site(pki, broker, certbridge_bin, tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed (tools/install-deps.sh installs it)")
    folder = tmp_path_factory.mktemp("page")
    retire = (datetime.datetime.now(datetime.timezone.utc)
              + datetime.timedelta(days=20)).strftime("%Y-%m-%d")
    g = cbtest.Gateway(pki, folder, broker.port, binary=certbridge_bin, admin=True,
                       overrides={"ca.old": {"retire_after": retire}})
    g.start()
    hostile = mkpki.make_leaf(HOSTILE_CN, pki.pair("rogue-ca"), usage="client")
    mkpki.write_pair(str(folder), "hostile", hostile)
    try:
        for dev in ("dev-old-1", "dev-new-1"):
            with PahoClient(g.port, pki.device(dev), "311", client_id="pg-" + uid()) as c:
                assert c.connect() == 0, (c.error, g.report())
        for creds in (pki.device("dev-expired"),
                      cbtest.Creds("hostile", str(folder / "hostile.pem"),
                                   str(folder / "hostile.key"), pki("ca-old.pem"))):
            with PahoClient(g.port, creds, "311", client_id="pg-" + uid()) as c:
                assert c.connect() != 0, g.report()
        cbtest.wait_until("two refusals in /status",
                          lambda: len(cbtest.admin_status(g.admin_port)["refusals"]) >= 2)
        yield g, folder, retire
    finally:
        g.stop()


def test_served_as_html_that_runs_nothing(site):
    g, _, _ = site
    status, h, body = cbtest.admin_request(g.admin_port, "/")
    assert status == 200, body[:300]
    assert h["content-type"] == "text/html; charset=utf-8", h
    assert "default-src 'none'" in h["content-security-policy"], h
    text = body.decode("utf-8")
    assert "<script" not in text.lower(), "a script element in the page"
    # Nothing fetched from elsewhere: no src= and no outside href.
    assert " src=" not in text, text
    assert "http://" not in text and "https://" not in text, text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;\\x01" in text, text


def test_the_browser_shows_the_fleet(site, tmp_path):
    g, _, retire = site
    url = "http://127.0.0.1:%d/" % g.admin_port
    dom_text = browser(url, "--dump-dom", tmp=tmp_path / "profile")
    dom = Dom()
    dom.feed(dom_text)
    assert not [t for t, _ in dom.tags if t == "script"], "a script element in the DOM"

    cas = {r[0]: r for r in dom.rows["ca-table"][1:]}
    assert set(cas) == {"old", "new"}, dom.rows["ca-table"]
    assert cas["old"][1:4] == ["1", "1", "50%"], cas["old"]
    assert cas["new"][1:4] == ["1", "1", "50%"], cas["new"]
    assert cas["old"][5] == retire, cas["old"]
    assert "under 30 days" in cas["old"][6] and cas["old"][6].split()[0] in ("19", "20"), \
        cas["old"]
    assert cas["new"][5] == "not set", cas["new"]

    bars = {a["data-ca"]: a for t, a in dom.tags if t == "rect" and a.get("class") == "ca-share"}
    assert set(bars) == {"old", "new"}, bars
    assert [int(bars[c]["width"]) for c in ("old", "new")] == [500, 500], bars

    refusals = dom.rows["refusal-table"][1:]
    by_reason = {r[3]: r for r in refusals}
    assert by_reason["expired"][2] == "dev-expired", refusals
    assert "renew" in by_reason["expired"][4] or "expired" in by_reason["expired"][4], refusals
    assert by_reason["unknown-ca"][2] == HOSTILE_SHOWN, refusals
    assert by_reason["unknown-ca"][4], refusals

    certs = dom.rows["cert-table"][1:]
    assert any(r[0] == "downstream" for r in certs), certs
    assert any(r[0] == "device-ca" and r[1] == "ca.old" for r in certs), certs


def test_status_has_the_same_refusals(site):
    g, _, _ = site
    st = cbtest.admin_status(g.admin_port)
    reasons = {r["reason"]: r for r in st["refusals"]}
    assert reasons["expired"]["device"] == "dev-expired", st["refusals"]
    assert reasons["unknown-ca"]["device"] == HOSTILE_SHOWN, st["refusals"]
    for r in st["refusals"]:
        assert r["peer"].startswith("127.0.0.1:") and r["time"].endswith("Z"), r
        assert r["detail"], r


@pytest.mark.parametrize("name,size", [("status-page.png", "1366,768"),
                                       ("status-page-full.png", "1366,1900"),
                                       ("status-page-phone.png", "412,915")])
def test_screenshots_for_a_person(site, tmp_path, name, size):
    """A laptop's screen, the whole page (docs/operations.md shows it) and
    a phone's: kept under build/ for a person to look at."""
    g, _, _ = site
    shot = tmp_path / name
    browser("http://127.0.0.1:%d/" % g.admin_port, "--screenshot=%s" % shot,
            "--window-size=%s" % size, "--hide-scrollbars", tmp=tmp_path / "profile")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000, len(data)
    # The PNG's own size is the window's: the page was laid out at it.
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert "%d,%d" % (width, height) == size, (width, height)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, SCREENSHOTS / name)
