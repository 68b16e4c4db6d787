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


def mqtt_ticket_session(port, creds, ctx, session=None, client_id=None):
    """A whole MQTT session over TLS 1.3 (offering session when given), up
    to a clean DISCONNECT; returns (the TLS 1.3 ticket it ended with,
    whether the handshake resumed). The gateway's ticket has arrived by the
    CONNACK (it is sent right after the handshake)."""
    ss = tls_device(port, creds, ctx=ctx, session=session)
    try:
        assert ss.version() == "TLSv1.3", ss.version()
        reused = ss.session_reused
        ss.sendall(connect_packet(client_id or "tk-%s" % uid()))
        assert read_packet(ss, timeout=10.0) == (0x20, b"\x00\x00")
        sess = ss.session
        ss.sendall(DISCONNECT)
        wait_closed(ss)
    finally:
        ss.close()
    assert sess is not None and sess.has_ticket, "no TLS 1.3 ticket from the gateway"
    return sess, reused


# ---------------------------------------------------------------- CONNECT with every field
# (added for test_identity.py / test_storm.py)


def _field(b):
    if isinstance(b, str):
        b = b.encode()
    return len(b).to_bytes(2, "big") + b


def connect_packet_fields(client_id, version=4, clean=True, keepalive=60, username=None,
                          password=None, properties=b""):
    """A CONNECT with the fields a test chooses: 3.1.1 (version 4) or 5.0
    (version 5), clean session/start flag, optional username and password
    (str or bytes), and for 5.0 the raw bytes of the property list (see
    v5_session_expiry, v5_user_property)."""
    flags = (0x02 if clean else 0) | (0x80 if username is not None else 0) \
        | (0x40 if password is not None else 0)
    var = b"\x00\x04MQTT" + bytes([version, flags]) + keepalive.to_bytes(2, "big")
    if version == 5:
        var += _varint(len(properties)) + properties
    payload = _field(client_id)
    if username is not None:
        payload += _field(username)
    if password is not None:
        payload += _field(password)
    body = var + payload
    return b"\x10" + _varint(len(body)) + body


def v5_session_expiry(seconds):
    """Property 0x11 Session Expiry Interval (four-byte integer)."""
    return b"\x11" + seconds.to_bytes(4, "big")


def v5_user_property(key, value):
    """Property 0x26 User Property (a UTF-8 string pair)."""
    return b"\x26" + _field(key) + _field(value)


def read_connack(sock, timeout=10.0):
    """(first byte, body) of the next packet, which must be a CONNACK;
    None when the connection closes first."""
    try:
        first, body = read_packet(sock, timeout)
    except CLOSED_ERRORS:
        return None
    return first, body


# ---------------------------------------------------------------- more packets and waits
# (added for test_session_rules.py: wills, MQTT 5 packets, bounded silence)

def connect_packet_ex(client_id, keepalive=60, version=4, will=None, clean=True):
    """A CONNECT (3.1.1 when version is 4, 5.0 when 5) with an optional
    will: (topic, payload bytes, qos, retain). No properties in 5.0."""
    cid = client_id.encode()
    flags = 0x02 if clean else 0x00
    if will is not None:
        wtopic, wpayload, wqos, wretain = will
        flags |= 0x04 | (wqos << 3) | (0x20 if wretain else 0)
    var = b"\x00\x04MQTT" + bytes([version, flags]) + keepalive.to_bytes(2, "big")
    if version == 5:
        var += b"\x00"  # no properties
    body = var + len(cid).to_bytes(2, "big") + cid
    if will is not None:
        if version == 5:
            body += b"\x00"  # no will properties
        tb = wtopic.encode()
        body += len(tb).to_bytes(2, "big") + tb + len(wpayload).to_bytes(2, "big") + wpayload
    return b"\x10" + _varint(len(body)) + body


def publish_packet_ex(topic, payload, qos=0, pid=None, version=4):
    """A PUBLISH at any QoS, for 3.1.1 or 5.0 (no properties)."""
    tb = topic.encode()
    body = len(tb).to_bytes(2, "big") + tb
    if qos:
        body += pid.to_bytes(2, "big")
    if version == 5:
        body += b"\x00"
    body += payload
    return bytes([0x30 | (qos << 1)]) + _varint(len(body)) + body


def subscribe_packet_ex(pid, topic, qos=0, version=4):
    """A SUBSCRIBE of one topic, for 3.1.1 or 5.0 (no properties)."""
    tb = topic.encode()
    body = pid.to_bytes(2, "big") + (b"\x00" if version == 5 else b"")
    body += len(tb).to_bytes(2, "big") + tb + bytes([qos])
    return b"\x82" + _varint(len(body)) + body


def disconnect_packet(version=4, reason=0):
    """DISCONNECT; in 5.0 with a reason code (and no properties)."""
    if version == 5 and reason:
        return bytes([0xE0, 0x01, reason])
    return DISCONNECT


def encode_packet(first, body):
    """The bytes of a packet from (first byte, body), as read_packet returns."""
    return bytes([first]) + _varint(len(body)) + body


def quiet_for(sock, seconds):
    """Watches sock for `seconds` (a behaviour window, not scaled) without
    sending anything. Returns None when nothing arrived and the peer did
    not close; otherwise what happened: the bytes received, or "closed".
    TLS records without application data (session tickets) do not count."""
    import select
    deadline = time.monotonic() + seconds
    old = sock.gettimeout()
    try:
        sock.setblocking(False)
        while True:
            pending = sock.pending() if hasattr(sock, "pending") else 0
            left = deadline - time.monotonic()
            if not pending:
                if left <= 0:
                    return None
                r, _, _ = select.select([sock], [], [], left)
                if not r:
                    continue
            try:
                d = sock.recv(4096)
            except (ssl.SSLWantReadError, BlockingIOError):
                continue
            except CLOSED_ERRORS:
                return "closed"
            return d if d else "closed"
    finally:
        sock.settimeout(old)


def abort(sock):
    """Cuts the TCP connection at once with a RST (SO_LINGER 0), without
    DISCONNECT or TLS close_notify, as a device losing power or network."""
    import struct
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
