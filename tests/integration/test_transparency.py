"""Transparent to every MQTT client, bridges included (docs/protocol.md).

- The same CONNECT bytes sent to the broker directly and through
  certbridge get the same answer (the bytes that come back, and whether
  the connection is closed): unknown protocol levels get 20 02 00 01 and a
  close whatever follows, bridge levels 0x83/0x84 are accepted, 0x85 and
  malformed CONNECTs (an empty will topic, Maximum Packet Size 0, the
  reserved flag, a length past the end) are closed without a CONNACK, and
  so is a CONNECT only the broker refuses (a will topic with a wildcard):
  its close reaches the device, not a CONNACK of certbridge's.
- A site's own mosquitto bridged to the cloud broker through certbridge,
  with a device certificate of the test PKI, carries messages both ways
  for bridge_protocol_version mqttv311 and mqttv50, try_private on and
  off, under [mqtt] clientid = check.

The test talks to both: a raw TLS client of the broker (with the gateway's
upstream identity) and a raw TLS device of certbridge.
"""

import os
import pwd
import socket
import ssl
import subprocess
import time

import pytest

import cbtest
from cbtest import PahoClient, Proc, free_port, t, uid
from rawmqtt import _varint


def field(b):
    return len(b).to_bytes(2, "big") + b


def connect(name, level, flags=0x02, props=None, payload=None, first=0x10):
    """A CONNECT with the protocol name, level and flags given; props (raw
    bytes) for 5.0 layouts; payload defaults to a client id."""
    var = field(name) + bytes([level, flags]) + (60).to_bytes(2, "big")
    if props is not None:
        var += _varint(len(props)) + props
    body = var + (payload if payload is not None else field(b"probe-" + uid().encode()))
    return bytes([first]) + _varint(len(body)) + body


def cid(tag):
    """A client id of its own for a CONNECT whose payload is spelt out."""
    return field(tag.encode() + b"-" + uid().encode())


# name: (bytes, the answer mosquitto 2.0.11 gives: (reply bytes, closed)).
# None as reply bytes: any CONNACK 0 (5.0's carries properties).
UNSUPPORTED = (b"\x20\x02\x00\x01", True)
CLOSED = (b"", True)
ACCEPTED = (b"\x20\x02\x00\x00", False)
CASES = {
    "MQTT level 6": (connect(b"MQTT", 6), UNSUPPORTED),
    "MQTT level 7": (connect(b"MQTT", 7), UNSUPPORTED),
    "MQTT level 3": (connect(b"MQTT", 3), UNSUPPORTED),
    "MQTT level 0": (connect(b"MQTT", 0), UNSUPPORTED),
    "MQTT level 255": (connect(b"MQTT", 255), UNSUPPORTED),
    "MQIsdp level 4": (connect(b"MQIsdp", 4), UNSUPPORTED),
    "MQIsdp level 5": (connect(b"MQIsdp", 5), UNSUPPORTED),
    "MQTT level 0x86": (connect(b"MQTT", 0x86), UNSUPPORTED),
    "MQTT level 6, other layout": (b"\x10\x0a\x00\x04MQTT\x06\xff\xff\xff\xff", UNSUPPORTED),
    "MQTT level 6, nothing after": (b"\x10\x07\x00\x04MQTT\x06", UNSUPPORTED),
    "bridge MQIsdp 0x83": (connect(b"MQIsdp", 0x83), (b"\x20\x02\x00\x00", False)),
    "bridge MQTT 0x84": (connect(b"MQTT", 0x84), (b"\x20\x02\x00\x00", False)),
    "MQTT level 0x85": (connect(b"MQTT", 0x85, props=b""), CLOSED),
    "protocol name MQTX": (connect(b"MQTX", 4), CLOSED),
    "3.1.1 will, empty topic": (connect(b"MQTT", 4, flags=0x06, payload=field(b"w1")
                                        + field(b"") + field(b"x")), CLOSED),
    "5.0 will, empty topic": (connect(b"MQTT", 5, flags=0x06, props=b"", payload=field(b"w2")
                                      + b"\x00" + field(b"") + field(b"x")), CLOSED),
    "5.0 maximum packet size 0": (connect(b"MQTT", 5, props=b"\x27\x00\x00\x00\x00"), CLOSED),
    "3.1.1 reserved flag": (connect(b"MQTT", 4, flags=0x03), CLOSED),
    "5.0 reserved flag": (connect(b"MQTT", 5, flags=0x03, props=b""), CLOSED),
    "3.1.1 length past the end": (b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x09probe",
                                  CLOSED),
    "3.1.1 fixed header flags": (connect(b"MQTT", 4, first=0x11), CLOSED),
    "3.1.1 password without user": (connect(b"MQTT", 4, flags=0x42,
                                            payload=field(b"p1") + field(b"pw")), CLOSED),
    "3.1 empty client id": (connect(b"MQIsdp", 3, payload=field(b"")),
                            (b"\x20\x02\x00\x02", True)),
    "3.1.1 empty client id, session kept": (connect(b"MQTT", 4, flags=0x00, payload=field(b"")),
                                            (b"\x20\x02\x00\x02", True)),
    # Only the broker judges will topics; its close must reach the device.
    "3.1.1 will topic with a wildcard": (connect(b"MQTT", 4, flags=0x06, payload=field(b"w3")
                                                 + field(b"a/#") + field(b"x")), CLOSED),
    "3.1.1 good": (connect(b"MQTT", 4), (b"\x20\x02\x00\x00", False)),
    "5.0 good": (connect(b"MQTT", 5, props=b""), (None, False)),
    # mosquitto reads the name and level before the fixed header flags:
    # an unknown level gets its 0x01 whatever the flags.
    "MQTT level 6, fixed header flags": (connect(b"MQTT", 6, first=0x11), UNSUPPORTED),
    "MQTT level 0, fixed header flags": (connect(b"MQTT", 0, first=0x11), UNSUPPORTED),
    "MQTT level 3, fixed header flags": (connect(b"MQTT", 3, first=0x18), UNSUPPORTED),
    "MQIsdp level 4, fixed header flags": (connect(b"MQIsdp", 4, first=0x11), UNSUPPORTED),
    "MQIsdp 0x84, fixed header flags": (connect(b"MQIsdp", 0x84, first=0x11), UNSUPPORTED),
    "5.0 fixed header flags": (connect(b"MQTT", 5, props=b"", first=0x11), CLOSED),
    # MQTT 3.1 as mosquitto 2.0 holds it: only to will QoS 3 and a
    # password without the user name flag; the rest of 3.1.1's flag rules
    # do not apply, and a user name or password announced but missing, cut
    # or (user name) not UTF-8 is absent.
    "3.1 reserved flag": (connect(b"MQIsdp", 3, flags=0x03), ACCEPTED),
    "bridge 0x83 reserved flag": (connect(b"MQIsdp", 0x83, flags=0x03), ACCEPTED),
    "3.1 fixed header flags 0x11": (connect(b"MQIsdp", 3, first=0x11), ACCEPTED),
    "3.1 fixed header flags 0x1f": (connect(b"MQIsdp", 3, first=0x1f), ACCEPTED),
    "bridge 0x83 fixed header flags": (connect(b"MQIsdp", 0x83, first=0x1f), ACCEPTED),
    "3.1 will QoS 1 without a will": (connect(b"MQIsdp", 3, flags=0x0a), ACCEPTED),
    "3.1 will retain without a will": (connect(b"MQIsdp", 3, flags=0x22), ACCEPTED),
    "3.1 will QoS 3 without a will": (connect(b"MQIsdp", 3, flags=0x1a), CLOSED),
    "3.1 user name flag, no user name": (connect(b"MQIsdp", 3, flags=0x82), ACCEPTED),
    "bridge 0x83 user name flag, no user name": (connect(b"MQIsdp", 0x83, flags=0x82),
                                                 ACCEPTED),
    "3.1 both flags, only a client id": (connect(b"MQIsdp", 3, flags=0xc2), ACCEPTED),
    "3.1 password flag, no password": (connect(b"MQIsdp", 3, flags=0xc2,
                                              payload=cid("q1") + field(b"u")), ACCEPTED),
    "3.1 user name not UTF-8": (connect(b"MQIsdp", 3, flags=0x82,
                                       payload=cid("q2") + field(b"\xff")), ACCEPTED),
    "3.1 user name with U+0000": (connect(b"MQIsdp", 3, flags=0x82,
                                         payload=cid("q3") + field(b"a\x00")), ACCEPTED),
    "3.1 user name not UTF-8, a password": (connect(b"MQIsdp", 3, flags=0xc2, payload=cid("q4")
                                                    + field(b"\xff") + field(b"pw")), ACCEPTED),
    "3.1 user name cut, nothing after": (connect(b"MQIsdp", 3, flags=0x82,
                                                payload=cid("q5") + b"\x00\x05"), ACCEPTED),
    "3.1 user name cut, bytes after": (connect(b"MQIsdp", 3, flags=0x82,
                                              payload=cid("q6") + b"\x00\x05ab"), CLOSED),
    "3.1 password without user name": (connect(b"MQIsdp", 3, flags=0x42,
                                               payload=cid("q7") + field(b"pw")), CLOSED),
    "3.1.1 user name flag, no user name": (connect(b"MQTT", 4, flags=0x82), CLOSED),
    "3.1.1 user name not UTF-8": (connect(b"MQTT", 4, flags=0x82,
                                         payload=cid("q8") + field(b"\xff")), CLOSED),
    "3.1.1 will QoS 1 without a will": (connect(b"MQTT", 4, flags=0x0a), CLOSED),
}


def answer(port, ctx, data, quiet=1.0):
    """(bytes received, closed) after sending data on a new TLS
    connection: read until the peer closes, or `quiet` s of silence."""
    s = socket.create_connection(("127.0.0.1", port), timeout=t(5))
    ss = ctx.wrap_socket(s, server_hostname="localhost")
    got, closed = b"", False
    try:
        ss.sendall(data)
        ss.settimeout(t(quiet))
        while True:
            d = ss.recv(256)
            if not d:
                closed = True
                break
            got += d
    except socket.timeout:
        pass
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
        closed = True
    finally:
        ss.close()
    return got, closed


def shape(reply):
    """A CONNACK 0 of 5.0 carries properties the broker chooses (an
    assigned client id): compare up to its reason code."""
    got, closed = reply
    if got[:1] == b"\x20" and len(got) > 4 and got[3:4] == b"\x00":
        return got[:1] + got[2:4], closed
    return reply


@pytest.fixture(scope="module")
def contexts(pki):
    up = pki.upstream_client()
    broker_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    broker_ctx.load_verify_locations(up.cafile)
    broker_ctx.load_cert_chain(up.cert, up.key)
    dev = pki.device("dev-old-1")
    gw_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    gw_ctx.load_verify_locations(dev.cafile)
    gw_ctx.load_cert_chain(dev.cert, dev.key)
    return broker_ctx, gw_ctx


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_answer_as_the_broker(broker, gateway, contexts, case):
    data, (want, want_closed) = CASES[case]
    broker_ctx, gw_ctx = contexts
    direct = answer(broker.port, broker_ctx, data)
    through = answer(gateway.port, gw_ctx, data)
    assert shape(through) == shape(direct), (case, direct, through, gateway.report())
    # And the broker answers as documented (docs/protocol.md).
    assert direct[1] == want_closed, (case, direct)
    if want is None:
        assert direct[0][:1] == b"\x20" and direct[0][3:4] == b"\x00", direct
    else:
        assert direct[0] == want, (case, direct)


def test_unsupported_level_logged(gateway, contexts):
    mark = gateway.mark()
    assert answer(gateway.port, contexts[1], connect(b"MQTT", 6)) == UNSUPPORTED
    ev = gateway.wait_event("session-closed", since=mark)
    assert ev.get("reason") == "protocol", ev["_line"]
    assert "CONNACK 0x01" in ev.get("detail", ""), ev["_line"]


def test_broker_refusal_is_a_close_not_a_connack(gateway, contexts):
    mark = gateway.mark()
    data = CASES["3.1.1 will topic with a wildcard"][0]
    assert answer(gateway.port, contexts[1], data) == CLOSED
    ev = gateway.wait_event("session-closed", since=mark)
    assert ev.get("reason") == "broker-closed", ev["_line"]
    assert "without a CONNACK" in ev.get("detail", ""), ev["_line"]
    assert not gateway.events("mqtt-connack", since=mark), gateway.report()


def test_v31_rewritten_as_the_broker_reads_it(broker, make_gateway, contexts):
    """A 3.1 CONNECT the broker accepts stays accepted when certbridge
    rewrites it (clientid = rewrite): what it sends upstream carries no
    flag whose field the broker would have skipped, and no password left
    without its user name."""
    g = make_gateway(broker.port, {"mqtt": {"identity": "cn", "clientid": "rewrite"}})
    for case in ["3.1 reserved flag", "3.1 fixed header flags 0x1f",
                 "3.1 will retain without a will", "3.1 both flags, only a client id",
                 "3.1 user name not UTF-8", "3.1 user name not UTF-8, a password",
                 "3.1 user name cut, nothing after", "bridge 0x83 user name flag, no user name"]:
        mark = g.mark()
        got = answer(g.port, contexts[1], CASES[case][0])
        assert got == ACCEPTED, (case, got, g.report())
        ev = g.wait_event("mqtt-connect", since=mark)
        assert ev.get("identity_rule") == "rewritten", (case, ev["_line"])
        assert ev.get("clientid_upstream") == "dev-old-1", (case, ev["_line"])


def big(name, level, size, props=None, first=0x10):
    """A CONNECT of about `size` bytes, padded in its client id."""
    return connect(name, level, props=props, first=first, payload=field(b"x" * size))


# Over [mqtt] max_connect_size (1K here), read no further than its level:
# an unknown level still gets the broker's 0x01 ("MQIsdp" with 5 is not
# 5.0), and a 5.0 CONNECT with fixed header flags is closed as the broker
# closes it, without CONNACK 0x95.
OVERSIZED = {
    "MQIsdp level 5": (big(b"MQIsdp", 5, 2048, props=b""), UNSUPPORTED),
    "MQTT level 6": (big(b"MQTT", 6, 2048), UNSUPPORTED),
    "MQIsdp level 4, fixed header flags": (big(b"MQIsdp", 4, 2048, first=0x11), UNSUPPORTED),
    "5.0, fixed header flags": (big(b"MQTT", 5, 2048, props=b"", first=0x11), CLOSED),
}


@pytest.mark.parametrize("case", sorted(OVERSIZED))
def test_over_max_connect_size_same_answer_as_the_broker(broker, make_gateway, contexts, case):
    data, want = OVERSIZED[case]
    g = make_gateway(broker.port, {"mqtt": {"max_connect_size": "1K"}})
    mark = g.mark()
    direct = answer(broker.port, contexts[0], data)
    through = answer(g.port, contexts[1], data)
    assert direct == want, (case, direct)
    assert through == direct, (case, direct, through, g.report())
    ev = g.wait_event("session-closed", since=mark)
    if want == UNSUPPORTED:
        assert ev.get("reason") == "protocol", ev["_line"]
        assert "CONNACK 0x01" in ev.get("detail", ""), ev["_line"]
    else:
        assert ev.get("reason") == "packet-too-large", ev["_line"]


# ---------------------------------------------------------------- a site's own broker


class SiteBroker(Proc):
    """A site's mosquitto: anonymous plain TCP for the site's machines, and
    a bridge to the cloud through certbridge with a device certificate."""

    kind = "site-broker"

    def __init__(self, pki, workdir, gateway_port, version, try_private, client_id):
        super().__init__(workdir)
        self.port = free_port()
        dev = pki.device("dev-old-1")
        self.conf = """# written by tests/integration/test_transparency.py
per_listener_settings false
allow_anonymous true
persistence false
# As root mosquitto would become "mosquitto" and not read our 0600 keys.
user {user}
log_dest stderr
log_type all
listener {port} 127.0.0.1

connection cloud
address 127.0.0.1:{gw}
bridge_protocol_version {version}
try_private {private}
remote_clientid {cid}
bridge_cafile {ca}
bridge_certfile {cert}
bridge_keyfile {key}
cleansession true
notifications false
restart_timeout 1
topic site/# out 1
topic cloud/# in 1
""".format(user=pwd.getpwuid(os.geteuid()).pw_name, port=self.port, gw=gateway_port, version=version,
           private="true" if try_private else "false", cid=client_id, ca=dev.cafile,
           cert=dev.cert, key=dev.key)

    def start(self, timeout=10.0):
        path = self.workdir / "mosquitto.conf"
        path.write_text(self.conf)
        self._spawn(["mosquitto", "-c", str(path)])
        self._wait_port(self.port, t(timeout))
        return self


def site_pub(port, topic, payload):
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1",
                    "-t", topic, "-m", payload], check=True, timeout=t(10))


@pytest.mark.parametrize("try_private", [True, False], ids=["try_private", "plain"])
@pytest.mark.parametrize("version", ["mqttv311", "mqttv50"])
def test_site_broker_bridges_through_certbridge(broker, make_gateway, pki, tmp_path,
                                               version, try_private):
    g = make_gateway(broker.port, {"mqtt": {"identity": "cn", "clientid": "check"}})
    mark = g.mark()
    site = SiteBroker(pki, tmp_path / "site", g.port, version, try_private, "dev-old-1")
    cloud = pki.upstream_client()
    try:
        site.start()
        ev = g.wait_event("mqtt-connack", since=mark, code="0x00", timeout=15)
        conn = g.events("mqtt-connect", since=mark, conn=ev["conn"])[0]
        assert conn.get("clientid") == "dev-old-1", conn["_line"]
        assert conn.get("version") == ("5.0" if version == "mqttv50" else "3.1.1"), conn["_line"]
        # mosquitto's try_private marks 3.1.1 bridges (level 0x84), never 5.0.
        assert conn.get("bridge") == ("yes" if try_private and version == "mqttv311" else None), \
            conn["_line"]
        tag = uid()
        with PahoClient(broker.port, cloud, "311", client_id="cloud-%s" % tag) as c:
            assert c.connect() == 0, c.error
            assert c.subscribe("site/#", 1) == 1
            # Up: a site machine publishes on the site broker.
            deadline = time.monotonic() + t(10)
            while True:
                site_pub(site.port, "site/%s" % tag, "up-%s" % tag)
                try:
                    m = c.wait_message(timeout=1.0)
                    break
                except AssertionError:
                    assert time.monotonic() < deadline, g.report()
            assert (m.topic, bytes(m.payload)) == ("site/%s" % tag, b"up-" + tag.encode())
            # Down: the cloud publishes; a site machine receives.
            sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(site.port),
                                    "-q", "1", "-t", "cloud/#", "-C", "1", "-W", "15"],
                                   stdout=subprocess.PIPE, text=True)
            try:
                deadline = time.monotonic() + t(10)
                while sub.poll() is None and time.monotonic() < deadline:
                    c.publish("cloud/%s" % tag, b"down-" + tag.encode(), qos=1)
                    try:
                        sub.wait(timeout=0.5)
                    except subprocess.TimeoutExpired:
                        pass
                out = sub.communicate(timeout=t(15))[0]
            finally:
                if sub.poll() is None:
                    sub.kill()
                    sub.wait()
            assert out.strip() == "down-%s" % tag, (out, site.log_text()[-2000:])
    finally:
        site.stop()
