#!/usr/bin/env bash
# A client killed with requests in flight must not hurt the server or the
# other clients, neither at once nor when its requests complete later.
RUMPD_TEST_TIMEOUT=120
source "$(dirname "$0")/lib.sh"

sock=$RUMPD_DIR/null.sock
start_server null.pid "$RUMPNULL" --socket "$sock" --pidfile null.pid

# 500 sleeps of 2 s in flight when the client dies.
"$NULLCLIENT" sleeper -n 500 -m 2000 "$sock" > sleeper.out &
sleeper=$!
kill_at_exit "$sleeper"
wait_for_line 10 sleeper.out '^SUBMITTED 500$'

"$NULLCLIENT" stress -c 2 -n 3000 "$sock" > stress1.out &
stress=$!
sleep 0.2
kill -KILL "$sleeper"
{ wait "$sleeper"; } 2>/dev/null && fail "the sleeper was supposed to die" || :
echo "killed the client with 500 requests in flight"

wait "$stress" || { cat stress1.out; fail "a concurrent client failed"; }
cat stress1.out
server_pid null.pid >/dev/null

# Past the dead client's sleeps: they completed into the void by now.
sleep 2
server_pid null.pid >/dev/null
"$NULLCLIENT" stress -c 2 -n 1000 "$sock"
"$RUMPCTL" -s "$sock" ping null -n 50 >/dev/null
stop_server null.pid
echo "client-killed: ok"
