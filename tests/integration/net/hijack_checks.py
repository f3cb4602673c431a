"""Runs under librumphijack (net-hijack.sh): edge-triggered epoll, epoll
after close, and fork() with rumpnet sockets.  argv[1] is the host's echo
server address (it echoes every line back).  Exits non-zero on the first
check that fails, saying which."""
import ctypes
import errno
import os
import select
import socket
import subprocess
import sys
import time

HOST = sys.argv[1]
PORT = 7000


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok:", what.split(":")[0], flush=True)


def has(evs, bit):
    return any(e & bit for _, e in evs)


def wait_bit(ep, bit, secs=2.0):
    """The events of waits until one has bit (a send re-arms EPOLLOUT,
    which may come first), or all of them after secs."""
    seen = []
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        ev = ep.poll(max(deadline - time.monotonic(), 0.01))
        seen += ev
        if has(ev, bit):
            break
    return seen


def connect():
    return socket.create_connection((HOST, PORT), timeout=5)


# ---- EPOLLET ---------------------------------------------------------
s = connect()
s.setblocking(False)
ep = select.epoll()
ep.register(s.fileno(), select.EPOLLIN | select.EPOLLOUT | select.EPOLLET)
ev = ep.poll(2)
check(has(ev, select.EPOLLOUT), "ET: the first wait reports writable: %r" % ev)
ev = ep.poll(0.3)
check(ev == [], "ET: nothing new, no event (level would repeat): %r" % ev)
s.send(b"one\n")
ev = wait_bit(ep, select.EPOLLIN)
check(has(ev, select.EPOLLIN), "ET: the echo is an edge: %r" % ev)
ev = ep.poll(0.3)
check(not has(ev, select.EPOLLIN),
      "ET: unread data is not reported twice: %r" % ev)
check(s.recv(100) == b"one\n", "ET: the echo reads back")
try:
    s.recv(100)
    check(False, "ET: a drained socket says EAGAIN")
except BlockingIOError:
    pass
ev = ep.poll(0.3)
check(not has(ev, select.EPOLLIN), "ET: drained, no event: %r" % ev)
s.send(b"two\n")
ev = wait_bit(ep, select.EPOLLIN)
check(has(ev, select.EPOLLIN), "ET: new data after EAGAIN is an edge: %r" % ev)
check(s.recv(100) == b"two\n", "ET: the second echo reads back")

# Level-triggered stays level: unread data is reported every time.
lt = select.epoll()
s.send(b"three\n")
lt.register(s.fileno(), select.EPOLLIN)
check(has(lt.poll(2), select.EPOLLIN) and has(lt.poll(0.3), select.EPOLLIN),
      "LT: unread data is reported again")
lt.close()

# A socket closed without EPOLL_CTL_DEL leaves the epoll, as in Linux:
# its number, taken again, registers anew.
fd = s.fileno()
s.close()
s2 = connect()
check(s2.fileno() == fd, "epoll: the number comes back (%d, %d)"
      % (fd, s2.fileno()))
try:
    ep.register(s2.fileno(), select.EPOLLIN)
    ok = True
except FileExistsError:
    ok = False
check(ok, "epoll: a closed socket left it")
s2.close()
ep.close()

# ---- ppoll, pselect, epoll_pwait2 (no Python wrappers: through libc) ---
libc = ctypes.CDLL(None, use_errno=True)


class PollFd(ctypes.Structure):
    _fields_ = [("fd", ctypes.c_int), ("events", ctypes.c_short),
                ("revents", ctypes.c_short)]


class TimeSpec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class EpollEvent(ctypes.Structure):
    _pack_ = 1    # x86-64's struct epoll_event is packed
    _fields_ = [("events", ctypes.c_uint32), ("data", ctypes.c_uint64)]


w = connect()
w.sendall(b"wait\n")
pf = PollFd(w.fileno(), select.POLLIN, 0)
n = libc.ppoll(ctypes.byref(pf), 1, ctypes.byref(TimeSpec(3, 0)), None)
check(n == 1 and pf.revents & select.POLLIN,
      "ppoll: a rump socket with data is readable: %d %#x" % (n, pf.revents))
rd = (ctypes.c_uint64 * 16)()
rd[w.fileno() // 64] |= 1 << (w.fileno() % 64)
n = libc.pselect(w.fileno() + 1, ctypes.byref(rd), None, None,
                 ctypes.byref(TimeSpec(3, 0)), None)
check(n == 1 and rd[w.fileno() // 64] & (1 << (w.fileno() % 64)),
      "pselect: a rump socket with data is readable: %d" % n)
ep = select.epoll()
ep.register(w.fileno(), select.EPOLLIN)
evs = (EpollEvent * 4)()
n = libc.epoll_pwait2(ep.fileno(), evs, 4, ctypes.byref(TimeSpec(3, 0)),
                      None)
check(n == 1 and evs[0].events & select.EPOLLIN,
      "epoll_pwait2: a rump socket with data is readable: %d" % n)
ep.close()
check(w.recv(100) == b"wait\n", "ppoll: the data reads back")
w.close()

# ---- fork --------------------------------------------------------------
c = connect()
c.sendall(b"before\n")
check(c.recv(100) == b"before\n", "fork: the parent's socket works")
pid = os.fork()
if pid == 0:
    status = 0
    try:
        # A session of its own, whose first socket could have the
        # number the parent's has in the parent's session.
        d = connect()
        try:
            c.sendall(b"child\n")
            status = 10  # the parent's socket must not be the child's
        except OSError as e:
            if e.errno != errno.EBADF:
                status = 11
        d.sendall(b"own\n")
        if d.recv(100) != b"own\n":
            status = 12
        c.close()        # closes nothing of the parent's, nor d
        d.sendall(b"still\n")
        if d.recv(100) != b"still\n":
            status = 13
        d.close()
    except OSError:
        status = 14
    os._exit(status)
_, st = os.waitpid(pid, 0)
check(os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0,
      "fork: the child's inherited socket fails with EBADF and its own "
      "works: status %r" % (os.WEXITSTATUS(st) if os.WIFEXITED(st) else st))
c.sendall(b"after\n")
check(c.recv(100) == b"after\n",
      "fork: the parent's socket is untouched by the child")

# sh -c: the grandchild is a new program with a new session.
out = subprocess.run(
    ["sh", "-c", "exec python3 -c 'import socket, sys\n"
     "s = socket.create_connection((sys.argv[1], %d))\n"
     "s.sendall(b\"sh\\n\")\n"
     "print(s.recv(100).decode().strip())' %s" % (PORT, HOST)],
    capture_output=True, text=True, timeout=20)
check(out.stdout.strip() == "sh",
      "sh -c: a hijacked child program talks: %r %r"
      % (out.stdout, out.stderr))
# A program exec'd with an inherited rump socket gets its shadow: reading
# fails at once, it does not hang.
fd = c.fileno()
out = subprocess.run(["sh", "-c", "exec cat <&%d" % fd], pass_fds=(fd,),
                     capture_output=True, text=True, timeout=20)
check(out.returncode != 0 and "Invalid argument" in out.stderr,
      "exec: an inherited rump socket fails cleanly: %r %r"
      % (out.returncode, out.stderr))
c.sendall(b"last\n")
check(c.recv(100) == b"last\n", "sh -c: the parent's socket still works")
c.close()
print("all ok", flush=True)
