#!/usr/bin/env bash
# Hostile and broken clients: garbage handshakes, clients that are not
# fixed newstyle, bad magics, huge options and writes, requests past the
# end or otherwise invalid, a client vanishing with 64 requests in flight.
# Each gets an error or a hang-up and a log line; the gateway keeps
# serving everybody else, including a transfer running all along.
RUMPD_TEST_TIMEOUT=150
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"
source "$here/nbd-lib.sh"
requires python3 --version
requires nbdcopy --version

sock=$RUMPD_DIR/nbd.sock
start_gateway "$sock" --backend mem:256M
uri=$(nbd_uri "$sock")

# A well-behaved client copying while the others misbehave.
head -c 128M /dev/urandom > src.img
nbdcopy --flush src.img "$uri" &
copy=$!
kill_at_exit "$copy"

for case in garbage not-fixed bad-option-magic options bounds \
            bounds-simple huge-write readwrite; do
	python3 "$RAWNBD" "$sock" "$case" || fail "case $case"
done
for i in 1 2 3; do
	python3 "$RAWNBD" "$sock" inflight || fail "case inflight"
done
# Many connections at once that never finish their handshake.
idle=()
for i in $(seq 20); do
	python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
time.sleep(1)' "$sock" &
	idle+=($!)
done
wait "${idle[@]}" || fail "an idle client could not connect"

wait "$copy" || fail "the concurrent nbdcopy failed"
nbdcopy "$uri" back.img
head -c 128M back.img | cmp - src.img || fail "concurrent copy corrupted"

gateway_alive "$sock"
grep -q 'not a fixed newstyle client' "$RUMPD_DIR/nbd.log" ||
	fail "no log line for the garbage handshake"
grep -q 'bad request magic' "$RUMPD_DIR/nbd.log" ||
	fail "no log line for the bad request"
stop_gateway
echo "$0: PASS"
