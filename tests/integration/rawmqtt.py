"""MQTT spoken by hand over raw sockets, for tests that must control every
byte (a first packet that is not CONNECT, a slow reader, exact CONNACK
codes). Every read is bounded by a timeout.
"""

import socket
import ssl
import time

from cbtest import t, uid

# Ways a socket shows that the peer closed it (TLS or plain).
CLOSED_ERRORS = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError,
                 ssl.SSLEOFError, ssl.SSLZeroReturnError)


def _varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def connect_packet(client_id, keepalive=60, version=4):
    """A CONNECT (3.1.1 when version is 4, 5.0 when 5), clean session."""
    cid = client_id.encode()
    var = b"\x00\x04MQTT" + bytes([version, 0x02]) + keepalive.to_bytes(2, "big")
    if version == 5:
        var += b"\x00"  # no properties
    body = var + len(cid).to_bytes(2, "big") + cid
    return b"\x10" + _varint(len(body)) + body


def subscribe_packet(pid, topic, qos=0):
    tb = topic.encode()
    body = pid.to_bytes(2, "big") + len(tb).to_bytes(2, "big") + tb + bytes([qos])
    return b"\x82" + _varint(len(body)) + body


def publish_packet(topic, payload):
    tb = topic.encode()
    body = len(tb).to_bytes(2, "big") + tb + payload
    return b"\x30" + _varint(len(body)) + body


DISCONNECT = b"\xe0\x00"
CONNACK_OK = b"\x20\x02\x00\x00"


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        d = sock.recv(n - len(buf))
        if not d:
            raise ConnectionResetError("closed after %d of %d bytes" % (len(buf), n))
        buf += d
    return buf


def read_packet(sock, timeout=5.0):
    """(first byte, body) of the next MQTT packet."""
    sock.settimeout(t(timeout))
    first = _recv_exact(sock, 1)[0]
    n, mult = 0, 1
    for _ in range(4):
        b = _recv_exact(sock, 1)[0]
        n += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            break
    return first, _recv_exact(sock, n)


def wait_closed(sock, timeout=10.0):
    """Reads until the peer closes; returns the bytes read before that.
    Fails when the connection is still open after timeout."""
    deadline = time.monotonic() + t(timeout)
    got = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("connection still open after %.1fs (read %r)"
                                 % (t(timeout), got[:64]))
        sock.settimeout(left)
        try:
            d = sock.recv(4096)
        except socket.timeout:
            continue
        except CLOSED_ERRORS:
            return got
        if not d:
            return got
        got += d


def device_context(creds, max_version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(creds.cafile)
    if creds.cert:
        ctx.load_cert_chain(creds.cert, creds.key)
    ctx.check_hostname = True
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


def tls_device(port, creds, timeout=5.0, ctx=None, session=None):
    """A TLS connection of a device (handshake done); the caller closes it."""
    ctx = ctx or device_context(creds)
    s = socket.create_connection(("127.0.0.1", port), timeout=t(timeout))
    try:
        return ctx.wrap_socket(s, server_hostname="localhost", session=session)
    except BaseException:
        s.close()
        raise


def mqtt_device(port, creds, client_id=None, keepalive=60):
    """A raw TLS device with an MQTT session up (CONNACK 0 read)."""
    ss = tls_device(port, creds)
    try:
        ss.sendall(connect_packet(client_id or "ds-%s" % uid(), keepalive))
        first, body = read_packet(ss, timeout=10.0)
        assert (first, body) == (0x20, b"\x00\x00"), "CONNACK %#x %r" % (first, body)
        return ss
    except BaseException:
        ss.close()
        raise
