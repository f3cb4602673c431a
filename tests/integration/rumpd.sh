#!/usr/bin/env bash
# The main job: rumpd with its built-in configuration starts rumpnull (and
# every other driver that is built), shows it works, supervises it.
RUMPD_TEST_TIMEOUT=120
source "$(dirname "$0")/lib.sh"
# The default disk image is made here, not in the system's state folder.
export RUMPD_STATE_DIR=$RUMPD_DIR/state
# rumpd finds rumpnull next to itself through /proc/self/exe.
requires test -r /proc/self/exe

# --once: start, check, stop.
"$RUMPD" --once > once.out 2>&1 ||
	{ cat once.out; fail "rumpd --once failed"; }
cat once.out
ready='null \(pid [0-9]+\) is ready: boot id [0-9a-f]{16}, listening on '
grep -Eq "$ready$RUMPD_DIR/null.sock" once.out ||
	fail "rumpd did not report a ready rumpnull"
grep -Eq '1000 round trips: control NULL p50 [0-9.]+ us' once.out ||
	fail "rumpd did not ping rumpnull"
# The gateways that are built are shown working: the default disk image
# (GPT, ext4) read over NBD, a file written and read back through FUSE.
if grep -q 'started nbd' once.out; then
	grep -q 'over NBD: a GPT' once.out || fail "rumpd did not read NBD"
fi
if grep -q 'started files' once.out; then
	grep -q 'wrote, fsynced and read back' once.out ||
		fail "rumpd did not write through the fuse mount"
	grep -q " $RUMPD_DIR/files " /proc/mounts &&
		fail "rumpd --once left its fuse mount behind"
fi
for d in disk nbd fs files; do
	if grep -q "started $d " once.out; then
		grep -Eq "$d \(pid [0-9]+\) stopped: exited with status 0" \
			once.out || fail "$d did not stop cleanly"
	fi
done
pid=$(sed -n 's/.*: null (pid \([0-9]*\)) is ready.*/\1/p' once.out)
grep -q "null (pid $pid) stopped: exited with status 0" once.out ||
	fail "rumpnull did not exit cleanly"
kill -0 "$pid" 2>/dev/null && fail "rumpnull $pid outlived rumpd --once"
[ -e "$RUMPD_DIR/null.sock" ] && fail "rumpnull left its socket behind"

# Supervising: a killed rumpnull comes back, SIGTERM stops everything.
"$RUMPD" > run.out 2>&1 &
rumpd=$!
kill_at_exit "$rumpd"
wait_for_line 10 run.out 'supervising'
first=$(sed -n 's/.*: null (pid \([0-9]*\)) is ready.*/\1/p' run.out)
# A client of the supervised server rides through the restart: the
# listening socket is rumpd's, so it never goes away.
"$NULLCLIENT" reconnect -n 500 -r 1 -t 60 null > client.out &
client=$!
kill_at_exit "$client"
wait_for_line 10 client.out '^RUNNING$'
kill -KILL "$first"
wait_for_line 10 run.out 'null serves again'
grep -q "null (pid $first) was killed by SIGKILL" run.out ||
	fail "rumpd did not say why rumpnull died"
second=$(sed -n 's/.*: null (pid \([0-9]*\)) is ready.*/\1/p' run.out |
         tail -n 1)
[ "$second" != "$first" ] || fail "no new rumpnull process"
"$RUMPCTL" ping null -n 100
"$RUMPCTL" status
[ "$("$RUMPCTL" status -p | awk '$1 == "null" { print $5 }')" = restarts=1 ] ||
	fail "rumpctl status does not show the restart"
wait "$client" || { cat client.out; fail "the client did not ride through"; }
cat client.out
kill -TERM "$rumpd"
wait "$rumpd" || { cat run.out; fail "rumpd did not exit 0 on SIGTERM"; }
cat run.out
grep -q "null (pid $second) stopped: exited with status 0" run.out ||
	fail "rumpnull did not exit cleanly"
kill -0 "$second" 2>/dev/null && fail "rumpnull $second outlived rumpd"

# A driver does not outlive its supervisor, even one killed with -9.  The
# fuse mount of a rumpd killed so stays (dead) until the next rumpd.
_detach_files() { umount -l "$RUMPD_DIR/files" 2>/dev/null || :; }
cleanup_fn _detach_files
"$RUMPD" > orphan.out 2>&1 &
rumpd=$!
kill_at_exit "$rumpd"
wait_for_line 10 orphan.out 'supervising'
child=$(sed -n 's/.*: null (pid \([0-9]*\)) is ready.*/\1/p' orphan.out)
kill -KILL "$rumpd"
{ wait "$rumpd"; } 2>/dev/null || :
child_gone() { ! kill -0 "$child" 2>/dev/null; }
wait_for 10 "rumpnull $child to end with its supervisor" child_gone
echo "rumpd: ok"
