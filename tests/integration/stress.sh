#!/usr/bin/env bash
# Many clients, many requests in flight, random sizes: every answer checked.
RUMPD_TEST_TIMEOUT=240
source "$(dirname "$0")/lib.sh"

sock=$RUMPD_DIR/null.sock
start_server null.pid "$RUMPNULL" --socket "$sock" --pidfile null.pid

"$NULLCLIENT" stress -c "${STRESS_CLIENTS:-8}" -n "${STRESS_REQUESTS:-10000}" \
	"$sock"
server_pid null.pid >/dev/null
stop_server null.pid
echo "stress: ok, the server is still up"
