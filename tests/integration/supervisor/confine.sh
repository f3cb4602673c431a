#!/usr/bin/env bash
# A confined driver cannot open files it was not given, make network
# connections, exec or ptrace: the test trigger (test builds only) makes
# rumpnull, and rumpnet when it is built, try each after confinement; the
# driver reports, and the test checks from outside that nothing happened.
# rumpnet, confined on a shared-memory bus, must still move frames, answer
# the heartbeat with its counters, and come back serving when killed.
RUMPD_TEST_TIMEOUT=90
source "$(dirname "$0")/sup.sh"
requires python3 -c 'import socket'

drivers=(null)
printf '%s\n' '[null]' 'driver = null' > rumpd.conf
if [ -n "${RUMPNET:-}" ]; then
	drivers+=(net)
	printf '%s\n' '[net]' 'driver = net' "nic = eth0 shm:$RUMPD_DIR/bus" \
		>> rumpd.conf
fi
start_rumpd rumpd.conf
if ! "$RUMPCTL" test-trigger null open:/nonexistent > probe.out 2>&1; then
	cat probe.out
	if grep -q 'built without test triggers' probe.out; then
		echo "$0: SKIP: rumpd built without -Dtest_triggers=true"
		exit 77
	fi
	fail "test-trigger does not work"
fi
for d in "${drivers[@]}"; do
	wait_field 10 "$d" state running
	grep -q "$d is confined: " rumpd.out || fail "$d was not confined"
done

# denied TRIGGER: every driver must report a failure.
denied()
{
	local out d
	for d in "${drivers[@]}"; do
		out=$("$RUMPCTL" test-trigger "$d" "$1") ||
			fail "trigger $1 on $d failed"
		echo "$d: $1 -> $out"
		case $out in
		"$1 denied: "*) ;;
		*) fail "confined $d could $1: $out" ;;
		esac
	done
}

# Files: a secret, and a file anyone may read (seccomp, not the user,
# must stop that one).
denied open:/etc/shadow
denied open:/etc/passwd

# Network: a listener of our own on 127.0.0.1 sees nobody come.
python3 - > port <<'PY' &
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
print(s.getsockname()[1], flush=True)
s.settimeout(3)
try:
    s.accept()
    print("CONNECTED", flush=True)
except socket.timeout:
    print("nobody", flush=True)
PY
listener=$!
kill_at_exit "$listener"
wait_for 5 "the listener's port" test -s port
denied "connect:127.0.0.1:$(head -n 1 port)"
wait "$listener"
[ "$(tail -n 1 port)" = nobody ] || fail "the driver reached 127.0.0.1"

# exec: a program that would leave a mark anyone can write.
mkdir -m 1777 marks
printf '#!/bin/sh\ntouch %s/marks/ran\n' "$RUMPD_DIR" > mark.sh
chmod 755 mark.sh
denied "exec:$RUMPD_DIR/mark.sh"
[ ! -e marks/ran ] || fail "the driver ran a program"
"$RUMPCTL" ping null -n 10 > /dev/null || fail "null died from exec"

# ptrace: a process of ours stays untraced.
sleep 30 &
victim=$!
kill_at_exit "$victim"
denied "ptrace:$victim"
grep -q '^TracerPid:[[:space:]]*0$' "/proc/$victim/status" ||
	fail "the driver attached to $victim"

# The drivers are still the same, serving processes.
for d in "${drivers[@]}"; do
	[ "$(sup_field "$d" restarts)" = 0 ] || fail "a trigger killed $d"
done
"$RUMPCTL" ping null -n 10 > /dev/null || fail "null does not serve"
[ -n "${RUMPNET:-}" ] || { stop_rumpd; echo "confine: ok"; exit 0; }

# Confined, rumpnet still reads its bus: a second member (by hand, not
# confined) sends frames that the first one counts, and the heartbeat
# reports its requests and the bytes its interface moved.
net_list() { "$RUMPCTL" -s "$RUMPD_DIR/net.sock" net list; }
net_list > list1 || fail "rumpctl net list"
# Its TAP or bus was opened before: it needs no network namespace but an
# empty one of its own.
pid=$(sup_field net pid)
[ "$(readlink "/proc/$pid/ns/net")" != "$(readlink /proc/self/ns/net)" ] ||
	fail "rumpnet shares the host's network namespace"
grep 'net is confined: ' rumpd.out
grep -q '^eth0: shm ' list1 || fail "net list: $(cat list1)"
start_server peer.pid "$RUMPNET" --if "eth0=shm:$RUMPD_DIR/bus" \
	--addr eth0=10.9.0.1/24 --socket "$RUMPD_DIR/peer.sock" \
	--pidfile peer.pid
# A datagram to a neighbour nobody answers for: ARP requests on the bus.
RUMP_SERVER="$RUMPD_DIR/peer.sock" LD_PRELOAD="$RUMPHIJACK" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(3):
    s.sendto(b"x", ("10.9.0.2", 9))
'
_net_got_frames() {
	net_list | awk '$1 == "RX" && $2 == "packets" { n = $3 }
		END { exit !(n > 0) }'
}
wait_for 10 "the confined rumpnet to receive from the bus" _net_got_frames
_net_counted() {
	[ "$(sup_field net bytes)" -gt 0 ] &&
	[ "$(sup_field net requests)" -gt 0 ]
}
wait_for 10 "rumpnet's heartbeat to count bytes and requests" _net_counted

# Killed, it is restarted confined, rejoins the bus and serves again.
old=$(sup_field net pid)
kill -KILL "$old"
wait_field 20 net restarts 1
wait_field 10 net state running
[ "$(sup_field net pid)" != "$old" ] || fail "rumpnet has the old pid"
[ "$(grep -c 'net is confined: ' rumpd.out)" -ge 2 ] ||
	fail "the restarted rumpnet was not confined"
_net_serves() { net_list > /dev/null; }
wait_for 10 "the restarted rumpnet to serve" _net_serves
stop_server peer.pid
stop_rumpd
echo "confine: ok"
