#!/usr/bin/env bash
# A confined driver cannot open files it was not given, make network
# connections, exec or ptrace: the test trigger (test builds only) makes
# rumpnull try each after confinement; the driver reports, and the test
# checks from outside that nothing happened.
RUMPD_TEST_TIMEOUT=60
source "$(dirname "$0")/sup.sh"
requires python3 -c 'import socket'

printf '%s\n' '[null]' 'driver = null' > rumpd.conf
start_rumpd rumpd.conf
if ! "$RUMPCTL" test-trigger null open:/nonexistent > probe.out 2>&1; then
	cat probe.out
	if grep -q 'built without test triggers' probe.out; then
		echo "$0: SKIP: rumpd built without -Dtest_triggers=true"
		exit 77
	fi
	fail "test-trigger does not work"
fi
grep -q 'null is confined: ' rumpd.out || fail "rumpnull was not confined"

# denied TRIGGER: the driver must report a failure.
denied()
{
	local out
	out=$("$RUMPCTL" test-trigger null "$1") || fail "trigger $1 failed"
	echo "$1 -> $out"
	case $out in
	"$1 denied: "*) ;;
	*) fail "a confined driver could $1: $out" ;;
	esac
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

# The driver is still the same, serving process.
[ "$(sup_field null restarts)" = 0 ] || fail "a trigger killed the driver"
"$RUMPCTL" ping null -n 10 > /dev/null || fail "null does not serve"
stop_rumpd
echo "confine: ok"
