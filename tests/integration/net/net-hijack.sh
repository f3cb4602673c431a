#!/usr/bin/env bash
# librumphijack's epoll and fork semantics, checked by a hijacked Python
# program (hijack_checks.py) against a host echo server: EPOLLET reports
# edges, not levels; a socket closed without EPOLL_CTL_DEL leaves the
# epoll; after fork() the child's inherited rump sockets fail with EBADF
# and a message, its own sockets work, and the parent's are untouched;
# an exec'd child (sh -c) gets a session of its own.  And POLL requests
# with timeouts short enough to run out before the server waits still
# complete (they used to hang iperf3's UDP test now and then).
RUMPD_TEST_TIMEOUT=90
source "$(dirname "$0")/netlib.sh"
requires python3 --version

tap_setup 1500
start_rumpnet tap:rump0

ip netns exec "$NS" python3 -c '
import socketserver
class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line)
            self.wfile.flush()
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("'$HOST4'", 7000), Echo).serve_forever()
' > echo.log 2>&1 &
kill_at_exit $!
wait_listen_ns 7000

status=0
timeout -s KILL 60 "${HIJACK[@]}" python3 \
	"$(dirname "$0")/hijack_checks.py" $HOST4 > checks.out 2> checks.err ||
	status=$?
cat checks.out
[ "$status" = 0 ] || { cat checks.err; fail "hijack checks: status $status"; }
grep -q 'all ok' checks.out || fail "the checks did not finish"
grep -q "used a rumpnet socket it inherited across fork()" checks.err ||
	fail "the child said nothing of its inherited socket: $(cat checks.err)"
"$NETPOLL" "$RUMPD_DIR/net.sock" 3000 || fail "short POLL timeouts"
echo "net-hijack: ok"
