#!/usr/bin/env bash
# kill -9 and SIGSTOP at random moments while a client checks every answer
# through the restarts; prints the time from a driver's death to its first
# served request again, p50 and max.
RUMPD_TEST_TIMEOUT=200
source "$(dirname "$0")/sup.sh"

kills=${CHAOS_KILLS:-40}
stops=${CHAOS_STOPS:-5}
printf '%s\n' '[rumpd]' 'heartbeat_interval = 100ms' \
	'heartbeat_timeout = 500ms' 'healthy_after = 50ms' '' '[null]' \
	'driver = null' > rumpd.conf
start_rumpd rumpd.conf
"$NULLCLIENT" reconnect -n 20 -r $((kills / 2)) -t 150 null > client.out 2>&1 &
client=$!
kill_at_exit "$client"
wait_for_line 10 client.out '^RUNNING$'

# Running again, as a new process, its recovery timed.
back()
{
	[ "$(sup_field null state)" = running ] &&
		[ "$(sup_field null pid)" != "$1" ] &&
		[ "$(sup_field null recoveries)" = "$2" ]
}

RANDOM=7
n=0
every=$(( (kills + stops) / (stops > 0 ? stops : 1) ))
for (( i = 0; i < kills + stops; i++ )); do
	pid=$(sup_field null pid)
	if (( stops > 0 && i % every == every / 2 && i / every < stops )); then
		sig=STOP
	else
		sig=KILL
	fi
	kill -"$sig" "$pid"
	n=$((n + 1))
	wait_for 10 "a new null after SIG$sig of $pid" back "$pid" "$n"
	# A random moment: 60 to 200 ms into its new life.
	sleep "0.$(printf '%03d' $((60 + RANDOM % 140)))"
done
"$RUMPCTL" status
[ "$(grep -c 'did not answer the heartbeat' rumpd.out)" = "$stops" ] ||
	fail "the heartbeat did not catch every SIGSTOP"
[ "$(sup_field null restarts)" = "$n" ] || fail "restarts miscounted"
"$RUMPCTL" ping null -n 100 > /dev/null || fail "null does not serve"
wait "$client" || { cat client.out; fail "the client saw a wrong answer"; }
tail -n 1 client.out

# rumpd measures from the death (for a hung driver: the heartbeat's
# verdict) to the answer to the new process's first request.
grep -o 'serves again [0-9.]* ms' rumpd.out | awk '{ print $3 }' |
	sort -n > times
[ "$(wc -l < times)" = "$n" ] ||
	fail "$(wc -l < times) recoveries timed, not $n"
p50=$(awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }' times)
max=$(tail -n 1 times)
echo "chaos: $kills kill -9 and $stops SIGSTOP of rumpnull: death to" \
     "serving again p50 $p50 ms, max $max ms"
stop_rumpd
echo "chaos: ok"
