#!/usr/bin/env bash
# Control calls: answers, refusals, and a SLEEP that blocks its own
# session only.
RUMPD_TEST_TIMEOUT=60
source "$(dirname "$0")/lib.sh"

sock=$RUMPD_DIR/null.sock
start_server null.pid "$RUMPNULL" --socket "$sock" --pidfile null.pid

"$NULLCLIENT" control "$sock"
stop_server null.pid
echo "control: ok"
