# Shell library for the integration tests (after nbdkit's tests/functions.sh).
#
#   #!/usr/bin/env bash
#   RUMPD_TEST_TIMEOUT=60      # optional, seconds (default 120)
#   source "$(dirname "$0")/lib.sh"
#   requires CMD...            # the test cannot run without CMD succeeding
#   cleanup_fn CMD...          # run at exit, last registered first
#   start_server PIDFILE CMD...  # background server, waits until it serves
#   stop_server PIDFILE        # SIGTERM; fails unless it exits 0
#   kill_at_exit PID           # a background helper killed at exit
#
# Each test gets a fresh temporary directory, exported as RUMPD_DIR (and
# the current directory), removed at exit.  The programs under test come in
# the environment: RUMPNULL, RUMPCTL, RUMPD, NULLCLIENT (meson sets them).

set -euo pipefail

# The timeout: run the whole test under timeout(1), in a process group of
# its own, so that on expiry every server the test started is signalled
# too and the EXIT trap still cleans up.
if [ -z "${_RUMPD_TEST_TIMED:-}" ]; then
	export _RUMPD_TEST_TIMED=1
	exec timeout -k 10 "${RUMPD_TEST_TIMEOUT:-120}" bash "$0" "$@"
fi
trap 'echo "$0: FAIL: timed out after ${RUMPD_TEST_TIMEOUT:-120} s" >&2;
      exit 124' TERM

_cleanup_cmds=()
_server_pids=""

cleanup_fn()
{
	local cmd
	printf -v cmd '%q ' "$@"
	_cleanup_cmds+=("$cmd")
}

_run_cleanup()
{
	local status=$? i
	set +e
	# A failing cleanup (a server that did not exit cleanly) fails the
	# test.
	for (( i = ${#_cleanup_cmds[@]} - 1; i >= 0; i-- )); do
		if ! eval "${_cleanup_cmds[i]}" && [ "$status" = 0 ]; then
			status=1
		fi
	done
	exit "$status"
}
trap _run_cleanup EXIT

fail()
{
	echo "$0: FAIL: $*" >&2
	exit 1
}

requires()
{
	if ! "$@" >/dev/null 2>&1; then
		if [ "${RUMPD_ALLOW_SKIP:-0}" = 1 ]; then
			echo "$0: SKIP: requirement not met: $*"
			exit 77
		fi
		fail "requirement not met: $* (set RUMPD_ALLOW_SKIP=1 to skip)"
	fi
}

# The programs under test must have been handed to us.
for _var in RUMPNULL RUMPCTL RUMPD NULLCLIENT; do
	[ -x "${!_var:-}" ] || fail "\$$_var does not name a program" \
	                            "(run the tests through meson test)"
done
unset _var

RUMPD_DIR=$(mktemp -d "${TMPDIR:-/tmp}/rumpd-test.XXXXXX")
export RUMPD_DIR
cleanup_fn rm -rf "$RUMPD_DIR"
cd "$RUMPD_DIR"

# wait_for SECONDS WHAT CMD...: until CMD succeeds, or fail.
wait_for()
{
	local secs=$1 what=$2 i
	shift 2
	for (( i = 0; i < secs * 20; i++ )); do
		"$@" && return 0
		sleep 0.05
	done
	fail "timed out after $secs s waiting for $what"
}

# wait_for_line SECONDS FILE REGEX: until FILE has a line matching REGEX.
wait_for_line()
{
	wait_for "$1" "'$3' in $2" grep -Eq -- "$3" "$2"
}

_pid_in()
{
	local pid
	[ -s "$1" ] && read -r pid < "$1" && [ -n "$pid" ] &&
		kill -0 "$pid" 2>/dev/null
}

# stop_server PIDFILE: SIGTERM, and the server must exit 0 (a sanitizer
# report at exit is a failure too).  A hung server is caught by the test
# timeout.
stop_server()
{
	local pid status=0
	[ -s "$1" ] || return 0
	read -r pid < "$1" || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	case " $_server_pids " in
	*" $pid "*)
		wait "$pid" 2>/dev/null || status=$?
		;;
	*)	# Not our child: all we can see is that it went away.
		while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
		;;
	esac
	[ "$status" = 0 ] || { echo "$0: FAIL: server $pid exited with" \
	                            "status $status" >&2; return 1; }
}

# start_server PIDFILE CMD...: starts CMD in the background and waits for
# PIDFILE to name a live process and, if CMD has --socket PATH, for the
# socket to exist.  The server is stopped at exit.
start_server()
{
	local pidfile=$1 sock="" prev="" arg i pid
	shift
	for arg in "$@"; do
		case $prev in --socket) sock=$arg ;; esac
		case $arg in --socket=*) sock=${arg#--socket=} ;; esac
		prev=$arg
	done
	rm -f "$pidfile"
	"$@" &
	pid=$!
	_server_pids+=" $pid"
	cleanup_fn stop_server "$pidfile"
	for (( i = 0; i < 200; i++ )); do
		if _pid_in "$pidfile" && { [ -z "$sock" ] || [ -S "$sock" ]; }
		then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null ||
			fail "server exited while starting: $*"
		sleep 0.05
	done
	fail "server did not start within 10 s: $*"
}

# kill_at_exit PID: makes sure a background helper does not outlive us.
kill_at_exit()
{
	cleanup_fn _kill_quietly "$1"
}

_kill_quietly()
{
	kill -KILL "$1" 2>/dev/null || :
}

# server_pid PIDFILE: prints the pid; fails unless it is alive.
server_pid()
{
	local pid
	read -r pid < "$1" || fail "no pid in $1"
	kill -0 "$pid" 2>/dev/null || fail "server $pid is not running"
	echo "$pid"
}
