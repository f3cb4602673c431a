#!/usr/bin/env bash
# A driver that dies at start is restarted with backoff, given up after
# restart_tries, shown as FAILED, and the others keep serving; rumpctl
# start tries it again.
RUMPD_TEST_TIMEOUT=90
source "$(dirname "$0")/sup.sh"

# Serves once; every later start dies before READY, as a driver with a
# broken disk would.  (rumpd runs it before it confines itself.)
printf '%s\n' '#!/bin/sh' \
	"[ -e '$RUMPD_DIR/served-once' ] && { echo 'flaky: cannot start' >&2; exit 3; }" \
	"touch '$RUMPD_DIR/served-once'" \
	"exec '$RUMPNULL' \"\$@\"" > flaky
chmod +x flaky
printf '%s\n' '[rumpd]' 'restart_tries = 4' 'restart_backoff = 20ms' \
	'healthy_after = 1s' '' '[good]' 'driver = null' '' '[flaky]' \
	'driver = null' "program = $RUMPD_DIR/flaky" > rumpd.conf

start_rumpd rumpd.conf
kill -KILL "$(sup_field flaky pid)"
wait_field 20 flaky state FAILED
"$RUMPCTL" status
[ "$(sup_field flaky failures)" = 4 ] ||
	fail "gave up after $(sup_field flaky failures) tries, not 4"
grep -q 'flaky: crash loop: it died 4 times in a row' rumpd.out ||
	fail "rumpd did not say it gave up"
grep -q 'restarting flaky in 20 ms' rumpd.out &&
	grep -q 'restarting flaky in 40 ms' rumpd.out ||
	fail "no exponential backoff between the tries"
"$RUMPCTL" status | grep -q 'FAILED: crash loop' ||
	fail "status does not show the crash loop"
"$RUMPCTL" logs flaky | grep -q 'flaky: cannot start' ||
	fail "the driver's own words are not in its log"
# Given up means given up: nothing more is tried.
n=$(grep -c 'started flaky' rumpd.out)
sleep 0.5
[ "$(grep -c 'started flaky' rumpd.out)" = "$n" ] || fail "still restarting"
# The others are untouched.
[ "$(sup_field good state)" = running ] || fail "good is not running"
[ "$(sup_field good restarts)" = 0 ] || fail "good was restarted"
"$RUMPCTL" ping good -n 50 > /dev/null || fail "good does not serve"
# A person fixes it and starts it again.
rm -f "$RUMPD_DIR/served-once"
"$RUMPCTL" start flaky
wait_field 10 flaky state running
[ "$(sup_field flaky failures)" = 0 ] || fail "failures not reset"
"$RUMPCTL" ping flaky -n 10 > /dev/null || fail "flaky does not serve"
# stop keeps it stopped; restart brings a new process.
"$RUMPCTL" stop good
[ "$(sup_field good state)" = stopped ] || fail "good did not stop"
sleep 0.3
[ "$(sup_field good state)" = stopped ] || fail "rumpd restarted good"
"$RUMPCTL" start good
wait_field 10 good state running
old=$(sup_field good pid)
"$RUMPCTL" restart good
wait_field 10 good state running
[ "$(sup_field good pid)" != "$old" ] || fail "restart kept the process"
stop_rumpd
echo "crashloop: ok"
