# Helpers shared by the disk integration tests; sourced after ../lib.sh.
# RUMPDISK and DISKCLIENT name the programs under test (meson sets them).

for _var in RUMPDISK DISKCLIENT; do
	[ -x "${!_var:-}" ] || fail "\$$_var does not name a program" \
	                            "(run the tests through meson test)"
done
unset _var

requires sfdisk --version
requires jq --version

SOCK=$RUMPD_DIR/disk.sock
LOG=$RUMPD_DIR/rumpdisk.log

# start_rumpdisk ARGS...: rumpdisk on $SOCK, log in $LOG.
start_rumpdisk()
{
	# exec keeps the pid rumpdisk writes to its pidfile.
	start_server "$RUMPD_DIR/rumpdisk.pid" \
		bash -c 'log=$0; exec "$@" 2>>"$log"' "$LOG" \
		"$RUMPDISK" --socket "$SOCK" \
		--pidfile "$RUMPD_DIR/rumpdisk.pid" "$@"
}

dc()
{
	"$DISKCLIENT" "$1" "$SOCK" "${@:2}"
}

# expect_soon WANT CMD...: CMD's output becomes WANT within 5 s.  For
# what a session that just ended held: it lets go once its last request
# completed, a moment after its client is gone.
expect_soon()
{
	local want=$1 got i
	shift
	for (( i = 0; i < 100; i++ )); do
		got=$("$@") || fail "'$*' failed"
		[ "$got" = "$want" ] && return 0
		sleep 0.05
	done
	fail "'$*' still says '$got' after 5 s, want '$want'"
}

# expect WANT CMD...: CMD's output must be WANT.
expect()
{
	local want=$1 got
	shift
	got=$("$@") || fail "'$*' failed"
	[ "$got" = "$want" ] || fail "'$*' said '$got', want '$want'"
}

# make_image PATH SIZE SCRIPT: a sparse image partitioned by sfdisk.
make_image()
{
	rm -f "$1"
	truncate -s "$2" "$1"
	printf '%b' "$3" | sfdisk -q "$1" >/dev/null
}

# sfdisk_parts IMAGE: "N START SIZE" lines in bytes, as sfdisk --json says.
sfdisk_parts()
{
	sfdisk --json "$1" 2>/dev/null | jq -r --arg img "$1" '
		.partitiontable as $t |
		$t.partitions[] |
		"\(.node | ltrimstr($img)) \(.start * $t.sectorsize)" +
		" \(.size * $t.sectorsize)"'
}

# rumpdisk_parts DISK: the same lines for DISK's partitions, from LIST.
rumpdisk_parts()
{
	dc list | awk -v d="$1" '
		$2 == "parent=" d {
			for (i = 2; i <= NF; i++) {
				split($i, kv, "=")
				v[kv[1]] = kv[2]
			}
			print v["index"], v["start"], v["size"]
		}'
}

# sha IMAGE OFFSET LEN: checksum of a byte range of a file.
sha()
{
	dd if="$1" bs=512 skip=$(( $2 / 512 )) count=$(( $3 / 512 )) \
		status=none | sha256sum | cut -d' ' -f1
}

# stop_rumpdisk: SIGTERM, then the log must show a clean stop (sanitizer
# reports, leaks included, land in the log, not in an exit status we see).
stop_rumpdisk()
{
	local pidfile=$RUMPD_DIR/rumpdisk.pid pid i
	read -r pid < "$pidfile" || fail "no rumpdisk pid"
	kill -TERM "$pid"
	for (( i = 0; i < 200; i++ )); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$pid" 2>/dev/null && fail "rumpdisk did not stop on SIGTERM"
	if grep -Eq 'Sanitizer|runtime error:' "$LOG"; then
		cat "$LOG" >&2
		fail "rumpdisk's log has sanitizer reports"
	fi
	grep -q 'stopping' "$LOG" || fail "rumpdisk did not stop cleanly"
}
