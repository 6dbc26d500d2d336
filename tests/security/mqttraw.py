#!/usr/bin/env python3
"""mqttraw: a byte-exact MQTT 3.1.1 / 5 client over mTLS for the attack and
fault tests (tests/security, tests/faults). Python 3 standard library only.

It sends what ordinary clients refuse to build (client ids with NUL bytes or
10 KB long, topics of 64 KB or with wildcards in a PUBLISH, topic aliases,
wills on any topic) and prints what the broker answered, one line per event:

  connack RC [session-present]  CONNACK reason code (3.1.1 return codes as
                       they are), and whether the broker kept a session
  puback PID RC        PUBACK of our QoS 1 publish (RC 0 when 3.1.1)
  suback PID RC...     SUBACK reason codes
  msg TOPIC PAYLOAD    a PUBLISH delivered to us (acknowledged if QoS 1)
  disconnect RC        the broker sent DISCONNECT (MQTT 5)
  closed               the broker closed the connection

usage: mqttraw.py PORT CAFILE CERT KEY [-V 4|5] OP...
  connect ID [clean=0|1] [will=TOPIC] [willmsg=PAYLOAD] [willretain=1] [willdelay=S] [expiry=S]
  pub TOPIC PAYLOAD [qos=0|1] [retain=1] [alias=N] [file=PATH]   (file: PAYLOAD unused)
  sub FILTER [qos=0|1]
  wait MS              read (and print) for MS milliseconds
  expect TEXT MS       read (and print) until a line contains TEXT, at most MS
  drop                 close the socket without DISCONNECT (fires a will)
  close                DISCONNECT, then close
Every ID, TOPIC, FILTER and PAYLOAD goes through Python's bytes escapes
(\\x00, \\n ...). A second mode measures the broker's loop:

usage: mqttraw.py PORT CAFILE - - gap PUBCERT PUBKEY PUBID SUBCERT SUBKEY SUBID TOPIC PERIOD_MS SECONDS OUTFILE
  One connection publishes (QoS 1) every PERIOD_MS for SECONDS, another is
  subscribed to TOPIC; OUTFILE gets one line per message received:
  "<sent unix ns> <received unix ns>". Prints "sent N acked N received N".
127.0.0.1 only. Exit 0 unless the arguments or the TLS set-up are wrong (2).
"""
import codecs
import select
import socket
import ssl
import struct
import sys
import threading
import time


def esc(s):
    return codecs.escape_decode(s.encode("utf-8"))[0]


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def s16(b):
    return struct.pack("!H", len(b)) + b


class Conn:
    def __init__(self, port, cafile, cert, key, version):
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
        ctx.check_hostname = False
        ctx.load_cert_chain(cert, key)
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ctx.wrap_socket(raw)
        self.v = version
        self.buf = b""
        self.pid = 0
        self.open = True

    def send(self, ptype, body):
        self.sock.sendall(bytes([ptype]) + varint(len(body)) + body)

    def next_pid(self):
        self.pid = self.pid % 65535 + 1
        return self.pid

    def props(self, data=b""):
        return varint(len(data)) + data if self.v == 5 else b""

    def connect(self, cid, clean=True, will=None, willmsg=b"", willretain=False, willdelay=0, expiry=0):
        flags = 0x02 if clean else 0
        if will is not None:
            flags |= 0x04 | (0x20 if willretain else 0)
        cprops = b"" if not expiry else b"\x11" + struct.pack("!I", expiry)
        body = s16(b"MQTT") + bytes([self.v, flags]) + struct.pack("!H", 60) + self.props(cprops)
        body += s16(cid)
        if will is not None:
            wprops = b"" if not willdelay else b"\x18" + struct.pack("!I", willdelay)
            body += self.props(wprops) + s16(will) + s16(willmsg)
        self.send(0x10, body)

    def publish(self, topic, payload, qos=0, retain=False, alias=None):
        pid = self.next_pid() if qos else None
        body = s16(topic) + (struct.pack("!H", pid) if qos else b"")
        body += self.props(b"" if alias is None else b"\x23" + struct.pack("!H", alias))
        self.send(0x30 | (qos << 1) | (1 if retain else 0), body + payload)
        return pid

    def subscribe(self, filt, qos=0):
        pid = self.next_pid()
        self.send(0x82, struct.pack("!H", pid) + self.props() + s16(filt) + bytes([qos]))
        return pid

    def packets(self, timeout):
        """Yields (type, flags, body) until timeout (seconds) or the end."""
        deadline = time.monotonic() + timeout
        while self.open:
            while True:
                pkt = self._parse()
                if pkt is None:
                    break
                yield pkt
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if not self.sock.pending():
                r, _, _ = select.select([self.sock], [], [], left)
                if not r:
                    return
            try:
                data = self.sock.recv(65536)
            except (ssl.SSLError, OSError):
                data = b""
            if not data:
                self.open = False
                yield ("closed", 0, b"")
                return
            self.buf += data

    def _parse(self):
        b = self.buf
        if len(b) < 2:
            return None
        n, mult, i = 0, 1, 1
        while True:
            if i >= len(b):
                return None
            n += (b[i] & 0x7F) * mult
            mult *= 128
            i += 1
            if not b[i - 1] & 0x80:
                break
        if len(b) < i + n:
            return None
        self.buf = b[i + n:]
        return (b[0] >> 4, b[0] & 0x0F, b[i:i + n])

    def skip_props(self, body, off):
        if self.v != 5:
            return off
        n, mult = 0, 1
        while True:
            c = body[off]
            off += 1
            n += (c & 0x7F) * mult
            mult *= 128
            if not c & 0x80:
                return off + n

    def describe(self, pkt, out):
        t, flags, body = pkt
        if t == "closed":
            out("closed")
        elif t == 2:
            # the Session Present flag, only when set (older readers match "connack RC")
            out("connack %d%s" % (body[1], " session-present" if body[0] & 1 else ""))
        elif t == 4:
            pid = struct.unpack("!H", body[:2])[0]
            out("puback %d %d" % (pid, body[2] if len(body) > 2 else 0))
        elif t == 9:
            pid = struct.unpack("!H", body[:2])[0]
            off = self.skip_props(body, 2)
            out("suback %d %s" % (pid, " ".join(str(c) for c in body[off:])))
        elif t == 3:
            qos = (flags >> 1) & 3
            tl = struct.unpack("!H", body[:2])[0]
            topic = body[2:2 + tl]
            off = 2 + tl
            if qos:
                pid = body[off:off + 2]
                off += 2
                self.send(0x40, pid)
            off = self.skip_props(body, off)
            out("msg %s %s" % (topic.decode("utf-8", "replace"), body[off:].decode("utf-8", "replace")))
        elif t == 14:
            out("disconnect %d" % (body[0] if body else 0))
        else:
            out("packet %d" % t)


def kv(args):
    d = {}
    for a in args:
        k, _, v = a.partition("=")
        d[k] = v
    return d


def script(port, cafile, cert, key, version, ops):
    def out(line):
        print(line, flush=True)

    c = Conn(port, cafile, cert, key, version)
    i = 0
    while i < len(ops):
        op = ops[i]
        args = []
        j = i + 1
        while j < len(ops) and ops[j] not in ("connect", "pub", "sub", "wait", "expect", "drop", "close"):
            args.append(ops[j])
            j += 1
        i = j
        if op == "connect":
            o = kv(args[1:])
            c.connect(esc(args[0]), clean=o.get("clean", "1") == "1",
                      will=esc(o["will"]) if "will" in o else None,
                      willmsg=esc(o.get("willmsg", "")), willretain=o.get("willretain") == "1",
                      willdelay=int(o.get("willdelay", "0")), expiry=int(o.get("expiry", "0")))
            for p in c.packets(5):
                c.describe(p, out)
                if p[0] in (2, "closed"):
                    break
        elif op == "pub":
            o = kv(args[2:])
            qos = int(o.get("qos", "0"))
            payload = open(o["file"], "rb").read() if "file" in o else esc(args[1])
            c.publish(esc(args[0]), payload, qos=qos, retain=o.get("retain") == "1",
                      alias=int(o["alias"]) if "alias" in o else None)
            if qos:
                for p in c.packets(3):
                    c.describe(p, out)
                    if p[0] in (4, "closed"):
                        break
        elif op == "sub":
            o = kv(args[1:])
            c.subscribe(esc(args[0]), int(o.get("qos", "0")))
            for p in c.packets(3):
                c.describe(p, out)
                if p[0] in (9, "closed"):
                    break
        elif op == "wait":
            for p in c.packets(int(args[0]) / 1000.0):
                c.describe(p, out)
        elif op == "expect":
            seen = []
            for p in c.packets(int(args[1]) / 1000.0):
                c.describe(p, lambda line: (out(line), seen.append(line)))
                if any(args[0] in line for line in seen):
                    break
        elif op == "drop":
            c.sock.close()
            c.open = False
        elif op == "close":
            if c.open:
                c.send(0xE0, b"\x00\x00" if version == 5 else b"")
                c.sock.close()
                c.open = False
        else:
            print("mqttraw: unknown op %s" % op, file=sys.stderr)
            sys.exit(2)
        if not c.open and op not in ("drop", "close"):
            break


def gap(port, cafile, a):
    pcert, pkey, pid_, scert, skey, sid, topic, period, seconds, outfile = a
    period = int(period) / 1000.0
    seconds = float(seconds)
    sub = Conn(port, cafile, scert, skey, 5)
    sub.connect(esc(sid))
    if not any(p[0] == 2 and p[2][1] == 0 for p in sub.packets(5)):
        print("mqttraw: subscriber refused", file=sys.stderr)
        sys.exit(2)
    sub.subscribe(esc(topic), 1)
    for p in sub.packets(5):
        if p[0] == 9:
            break
    pub = Conn(port, cafile, pcert, pkey, 5)
    pub.connect(esc(pid_))
    if not any(p[0] == 2 and p[2][1] == 0 for p in pub.packets(5)):
        print("mqttraw: publisher refused", file=sys.stderr)
        sys.exit(2)
    received = []
    acked = [0]
    done = threading.Event()

    def reader():
        while not done.is_set() and sub.open:
            for p in sub.packets(0.2):
                if p[0] == 3:
                    tl = struct.unpack("!H", p[2][:2])[0]
                    off = sub.skip_props(p[2], 2 + tl + (2 if (p[1] >> 1) & 3 else 0))
                    if (p[1] >> 1) & 3:
                        sub.send(0x40, p[2][2 + tl:4 + tl])
                    received.append((int(p[2][off:]), time.time_ns()))

    def acker():
        while not done.is_set() and pub.open:
            for p in pub.packets(0.2):
                if p[0] == 4:
                    acked[0] += 1

    threads = [threading.Thread(target=reader), threading.Thread(target=acker)]
    for t in threads:
        t.start()
    sent = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds and pub.open:
        pub.publish(esc(topic), str(time.time_ns()).encode(), qos=1)
        sent += 1
        nxt = start + sent * period
        time.sleep(max(0.0, nxt - time.monotonic()))
    settle = time.monotonic() + 3
    while time.monotonic() < settle and (len(received) < sent or acked[0] < sent):
        time.sleep(0.02)
    done.set()
    for t in threads:
        t.join()
    with open(outfile, "w") as f:
        for s, r in received:
            f.write("%d %d\n" % (s, r))
    print("sent %d acked %d received %d" % (sent, acked[0], len(received)))


def main(argv):
    if len(argv) < 6:
        print(__doc__, file=sys.stderr)
        return 2
    port, cafile, cert, key = int(argv[1]), argv[2], argv[3], argv[4]
    rest = argv[5:]
    if rest[0] == "gap":
        if len(rest) != 11:
            print(__doc__, file=sys.stderr)
            return 2
        gap(port, cafile, rest[1:])
        return 0
    version = 5
    if rest[0] == "-V":
        version = int(rest[1])
        rest = rest[2:]
    try:
        script(port, cafile, cert, key, version, rest)
    except (ssl.SSLError, ConnectionError) as e:
        print("tls-error %s" % e, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
