#!/usr/bin/env bash
# A server killed and started again: the client sees a new boot id,
# reconnects on its own and carries on.
RUMPD_TEST_TIMEOUT=120
source "$(dirname "$0")/lib.sh"

sock=$RUMPD_DIR/null.sock
start_server null.pid "$RUMPNULL" --socket "$sock" --pidfile null.pid

"$NULLCLIENT" reconnect -n 500 -r 1 -t 60 "$sock" > client.out &
client=$!
kill_at_exit "$client"
wait_for_line 10 client.out '^RUNNING$'

old=$(sed -n 's/^boot id \([0-9a-f]\{16\}\)$/\1/p' client.out)
[ -n "$old" ] || fail "no boot id from the client"
pid=$(server_pid null.pid)
kill -KILL "$pid"
{ wait "$pid"; } 2>/dev/null || :
echo "killed the server (boot id $old)"
sleep 0.3
start_server null.pid "$RUMPNULL" --socket "$sock" --pidfile null.pid

wait "$client" || { cat client.out; fail "the client did not carry on"; }
cat client.out
new=$("$RUMPCTL" -s "$sock" info null | sed -n 's/^boot id: //p')
grep -q "^boot id $old -> $new (restart 1)$" client.out ||
	fail "the client did not report the change $old -> $new"
[ "$old" != "$new" ] || fail "the boot id did not change"
stop_server null.pid
echo "restart: ok, boot id $old -> $new"
