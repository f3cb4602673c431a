#!/usr/bin/env python3
"""A raw NBD client that misbehaves on purpose, for rumpnbd's tests.

    rawnbd.py SOCKET CASE [EXPORT]

Each case speaks the protocol byte by byte (no libnbd: it would refuse to
send most of this) and checks the gateway's answer: an error reply where
the protocol allows one, a hang-up where it does not.  Exit status 0 when
the gateway behaved, 1 (with a message) when not.
"""
import os
import socket
import struct
import sys

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REP_MAGIC = 0x3E889045565A9
REQ_MAGIC = 0x25609513
SIMPLE_MAGIC = 0x67446698
STRUCT_MAGIC = 0x668E33EF

OPT_ABORT, OPT_LIST, OPT_GO, OPT_SR, OPT_SET_META = 2, 3, 7, 8, 10
REP_ACK, REP_INFO, REP_META = 1, 3, 4
ERR_UNSUP, ERR_INVALID, ERR_UNKNOWN, ERR_TOO_BIG = (
    0x80000001, 0x80000003, 0x80000006, 0x80000009)
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM = 0, 1, 2, 3, 4
CMD_ZERO, CMD_BS = 6, 7
EPERM, EINVAL, ENOSPC, EOVERFLOW = 1, 22, 28, 75
REPLY_TYPE_NONE, REPLY_TYPE_DATA, REPLY_TYPE_BS = 0, 1, 5
REPLY_TYPE_ERROR = 0x8001


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(20)
        self.s.connect(path)

    def recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed after %d of %d bytes"
                               % (len(buf), n))
            buf += chunk
        return buf

    def send(self, data):
        self.s.sendall(data)

    def closed_by_peer(self):
        """True if the gateway hangs up (EOF or reset) within the timeout."""
        try:
            while True:
                if not self.s.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def greet(self, flags=1):
        magic, opt, hflags = struct.unpack(">QQH", self.recv(18))
        check(magic == NBDMAGIC and opt == IHAVEOPT, "bad greeting")
        check(hflags & 1, "server is not fixed newstyle")
        self.send(struct.pack(">I", flags))

    def option(self, opt, data=b""):
        self.send(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)

    def reply(self):
        magic, opt, rtype, ln = struct.unpack(">QIII", self.recv(20))
        check(magic == REP_MAGIC, "bad option reply magic")
        return opt, rtype, self.recv(ln)

    def go(self, export, structured=True, meta=False):
        name = export.encode()
        if structured:
            self.option(OPT_SR)
            check(self.reply()[1] == REP_ACK, "STRUCTURED_REPLY refused")
        if meta:
            q = b"base:allocation"
            self.option(OPT_SET_META, struct.pack(">I", len(name)) + name +
                        struct.pack(">II", 1, len(q)) + q)
            _, t, d = self.reply()
            check(t == REP_META, "base:allocation not selected")
            check(self.reply()[1] == REP_ACK, "SET_META_CONTEXT not acked")
        self.option(OPT_GO, struct.pack(">I", len(name)) + name +
                    struct.pack(">H", 0))
        size = None
        while True:
            _, t, d = self.reply()
            if t == REP_INFO and struct.unpack(">H", d[:2])[0] == 0:
                size, self.tflags = struct.unpack(">QH", d[2:12])
            elif t == REP_ACK:
                break
            elif t & 0x80000000:
                raise Fail("GO failed: reply type %#x %r" % (t, d))
        check(size is not None, "GO without NBD_INFO_EXPORT")
        self.size = size
        self.structured = structured
        return size

    def request(self, cmd, cookie, offset, length, flags=0, payload=b""):
        self.send(struct.pack(">IHHQQI", REQ_MAGIC, flags, cmd, cookie,
                              offset, length) + payload)

    def simple_reply(self, data_len=0):
        magic, err, cookie = struct.unpack(">IIQ", self.recv(16))
        check(magic == SIMPLE_MAGIC, "bad simple reply magic %#x" % magic)
        data = self.recv(data_len) if err == 0 and data_len else b""
        return cookie, err, data

    def chunk(self):
        """One structured chunk: (cookie, flags, type, payload)."""
        magic, flags, rtype, cookie, ln = struct.unpack(">IHHQI",
                                                        self.recv(20))
        if magic == SIMPLE_MAGIC:
            # A simple reply in the structured stream: 16 bytes only.
            raise Fail("unexpected simple reply")
        check(magic == STRUCT_MAGIC, "bad structured reply magic %#x" % magic)
        return cookie, flags, rtype, self.recv(ln)

    def result(self, data_len=0):
        """Reply to one request: (cookie, error, data)."""
        if not self.structured:
            return self.simple_reply(data_len)
        hdr = self.recv(4)
        magic = struct.unpack(">I", hdr)[0]
        if magic == SIMPLE_MAGIC:
            err, cookie = struct.unpack(">IQ", self.recv(12))
            return cookie, err, b""
        check(magic == STRUCT_MAGIC, "bad reply magic %#x" % magic)
        flags, rtype, cookie, ln = struct.unpack(">HHQI", self.recv(16))
        payload = self.recv(ln)
        check(flags & 1, "multi-chunk reply not expected here")
        if rtype == REPLY_TYPE_ERROR:
            return cookie, struct.unpack(">I", payload[:4])[0], b""
        if rtype == REPLY_TYPE_DATA:
            return cookie, 0, payload[8:]
        return cookie, 0, payload


def expect_hangup(c, what):
    check(c.closed_by_peer(), "gateway kept the connection after " + what)


def case_garbage(path, export):
    c = Conn(path)
    c.recv(18)
    c.send(os.urandom(4096))
    expect_hangup(c, "a garbage handshake")


def case_not_fixed(path, export):
    c = Conn(path)
    c.greet(flags=0)
    expect_hangup(c, "a client that is not fixed newstyle")


def case_bad_option_magic(path, export):
    c = Conn(path)
    c.greet()
    c.send(struct.pack(">QII", 0x1122334455667788, OPT_GO, 0))
    expect_hangup(c, "an option with a bad magic")


def case_options(path, export):
    """Errors during option haggling that leave the session usable."""
    c = Conn(path)
    c.greet()
    c.option(12345)
    check(c.reply()[1] == ERR_UNSUP, "unknown option not ERR_UNSUP")
    c.option(OPT_LIST, b"x")
    check(c.reply()[1] == ERR_INVALID, "LIST with data not ERR_INVALID")
    c.option(OPT_GO, b"\x00\x00\x00\x09wd0")  # name length lies
    check(c.reply()[1] == ERR_INVALID, "short GO not ERR_INVALID")
    c.option(OPT_GO, struct.pack(">I", 6) + b"nosuch" + b"\0\0")
    check(c.reply()[1] == ERR_UNKNOWN, "unknown export not ERR_UNKNOWN")
    c.option(OPT_SET_META, struct.pack(">II", 0, 0))
    check(c.reply()[1] == ERR_INVALID,
          "SET_META_CONTEXT before STRUCTURED_REPLY accepted")
    c.option(99, b"\0" * 100000)
    check(c.reply()[1] == ERR_TOO_BIG, "huge option not ERR_TOO_BIG")
    c.option(OPT_LIST)
    names = []
    while True:
        _, t, d = c.reply()
        if t == REP_ACK:
            break
        check(t == 2, "LIST reply type %#x" % t)
        names.append(d[4:4 + struct.unpack(">I", d[:4])[0]].decode())
    check(export in names, "%s not listed in %r" % (export, names))
    c.go(export, meta=True)
    c.request(CMD_READ, 1, 0, 4096)
    cookie, err, data = c.result(4096)
    check(cookie == 1 and err == 0 and len(data) == 4096,
          "read after option errors failed")
    c.request(CMD_DISC, 2, 0, 0)
    expect_hangup(c, "NBD_CMD_DISC")


def case_bounds(path, export, structured=True):
    """Requests past the end and otherwise invalid: errors, same session."""
    c = Conn(path)
    c.greet()
    size = c.go(export, structured=structured)
    ro = c.tflags & 2
    bad = [
        (CMD_READ, size, 4096, 0, EINVAL),
        (CMD_READ, size - 512, 4096, 0, EINVAL),
        (CMD_READ, 2**64 - 512, 1024, 0, EINVAL),  # offset + len overflows
        (CMD_READ, 0, 0, 0, EINVAL),
        (CMD_READ, 1, 512, 0, EINVAL),             # misaligned
        (CMD_READ, 0, 64 << 20, 0,
         EOVERFLOW if structured else EINVAL),     # over the max payload
        (CMD_READ, 0, 4096, 0x80, EINVAL),         # unknown flag
        (CMD_BS, 0, 4096, 0, EINVAL),              # no meta context
        (77, 0, 4096, 0, EINVAL),                  # unknown command
        (CMD_TRIM, size, 4096, 0, EPERM if ro else ENOSPC),
        (CMD_ZERO, 2**64 - 4096, 8192, 0, EPERM if ro else ENOSPC),
    ]
    for i, (cmd, off, ln, fl, want) in enumerate(bad):
        c.request(cmd, 100 + i, off, ln, flags=fl)
        cookie, err, _ = c.result()
        check(cookie == 100 + i, "cookie %d came back as %d" % (100 + i,
                                                                cookie))
        check(err == want, "request %d (cmd %d off %d len %d): error %d, "
              "expected %d" % (i, cmd, off, ln, err, want))
    # A write past the end: its payload is swallowed, the stream stays
    # in step.
    c.request(CMD_WRITE, 200, size, 4096, payload=b"\xaa" * 4096)
    cookie, err, _ = c.result()
    check(cookie == 200 and err == (EPERM if ro else ENOSPC),
          "write past the end: error %d" % err)
    c.request(CMD_READ, 201, size - 4096, 4096)
    cookie, err, data = c.result(4096)
    check(cookie == 201 and err == 0 and len(data) == 4096,
          "read of the last block failed after the errors")
    # A bad magic ends the session.
    c.send(b"\xde\xad\xbe\xef" + b"\0" * 24)
    expect_hangup(c, "a request with a bad magic")


def case_bounds_simple(path, export):
    case_bounds(path, export, structured=False)


def case_huge_write(path, export):
    """A write longer than the max payload cannot be swallowed: hang-up."""
    c = Conn(path)
    c.greet()
    c.go(export)
    c.request(CMD_WRITE, 1, 0, 0xFFFFFFFF)
    expect_hangup(c, "a 4 GiB write")


def case_inflight(path, export, n=64):
    """n large reads in flight, then the client vanishes."""
    c = Conn(path)
    c.greet()
    c.go(export)
    for i in range(n):
        c.request(CMD_READ, i, (i * 1048576) % (c.size - 1048576 + 1)
                  // 4096 * 4096, 1048576)
    c.s.close()


def case_readwrite(path, export):
    """Writes, FUA, flush, zero (NO_HOLE), trim and block status, in the
    export's last MiB (the tests copy data to the rest meanwhile)."""
    c = Conn(path)
    c.greet()
    b = c.go(export, meta=True) - 1048576
    pat = os.urandom(65536)
    c.request(CMD_WRITE, 1, b, len(pat), flags=1, payload=pat)
    check(c.result()[1] == 0, "FUA write failed")
    c.request(CMD_FLUSH, 2, 0, 0)
    check(c.result()[1] == 0, "flush failed")
    c.request(CMD_READ, 3, b, len(pat))
    check(c.result(len(pat))[2] == pat, "read back differs")
    c.request(CMD_ZERO, 4, b + 4096, 8192, flags=2)
    r = c.result(); check(r[1] == 0, "write zeroes (NO_HOLE) failed: error %d" % r[1])
    c.request(CMD_READ, 5, b, 16384)
    data = c.result(16384)[2]
    check(data[:4096] == pat[:4096] and data[4096:12288] == bytes(8192)
          and data[12288:] == pat[12288:16384], "zeroed range wrong")
    c.request(CMD_TRIM, 6, b + 32768, 32768)
    check(c.result()[1] == 0, "trim failed")
    c.request(CMD_BS, 7, b, 65536)
    cookie, err, payload = c.result()
    check(err == 0 and len(payload) >= 12, "block status failed")
    ctx = struct.unpack(">I", payload[:4])[0]
    total = sum(struct.unpack(">I", payload[i:i + 4])[0]
                for i in range(4, len(payload), 8))
    check(ctx != 0 and 0 < total <= 65536,
          "block status extents cover %d bytes" % total)
    # Several requests in flight: replies may come in any order.
    for i in range(32):
        c.request(CMD_READ, 1000 + i, b + (i % 16) * 4096, 4096)
    seen = set()
    for i in range(32):
        cookie, err, data = c.result(4096)
        check(err == 0 and len(data) == 4096, "pipelined read failed")
        page = (cookie - 1000) % 16
        if page == 0 or 3 <= page < 8:
            check(data == pat[page * 4096:page * 4096 + 4096],
                  "pipelined read of page %d wrong" % page)
        elif page < 3:
            check(data == bytes(4096), "zeroed page %d not zero" % page)
        seen.add(cookie)
    check(len(seen) == 32, "replies lost or duplicated")
    c.request(CMD_DISC, 9, 0, 0)
    expect_hangup(c, "NBD_CMD_DISC")


CASES = {name[5:].replace("_", "-"): fn for name, fn in globals().items()
         if name.startswith("case_")}


def main():
    if len(sys.argv) not in (3, 4) or sys.argv[2] not in CASES:
        sys.stderr.write("usage: rawnbd.py SOCKET {%s} [EXPORT]\n"
                         % ",".join(sorted(CASES)))
        return 2
    try:
        CASES[sys.argv[2]](sys.argv[1],
                           sys.argv[3] if len(sys.argv) == 4 else "wd0")
    except (Fail, EOFError, OSError) as e:
        sys.stderr.write("rawnbd %s: %s\n" % (sys.argv[2], e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
