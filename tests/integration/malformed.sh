#!/usr/bin/env bash
# Malformed messages end the offending session only.
RUMPD_TEST_TIMEOUT=120
source "$(dirname "$0")/lib.sh"

sock=$RUMPD_DIR/null.sock
start_server null.pid "$RUMPNULL" --socket "$sock" --pidfile null.pid

"$NULLCLIENT" stress -c 2 -n 20000 "$sock" > stress.out &
stress=$!
kill_at_exit "$stress"

"$NULLCLIENT" malformed "$sock"
wait "$stress" || { cat stress.out; fail "a concurrent client failed"; }
cat stress.out
server_pid null.pid >/dev/null
stop_server null.pid
echo "malformed: ok, the server is still up"
