# Shared by the network tests: a network namespace made by the test, with
# a TAP device (or a veth pair) whose host side has 10.0.0.1 / fd00::1 and
# a rumpnet on it at 10.0.0.2 / fd00::2.  Traffic never leaves the
# namespace.  Needs root (namespaces, TAP).
source "$(dirname "$0")/../lib.sh"

requires ip -V
[ "$(id -u)" = 0 ] || { echo "$0: SKIP: needs root" >&2; exit 77; }
[ -c /dev/net/tun ] || { echo "$0: SKIP: no /dev/net/tun" >&2; exit 77; }
: "${RUMPNET:?}" "${RUMPHIJACK:?}"

NS=rnt-$$-$RANDOM
HOST4=10.0.0.1
HOST6=fd00::1
RUMP4=10.0.0.2
RUMP6=fd00::2

in_ns() { ip netns exec "$NS" "$@"; }

_del_ns() { ip netns del "$NS" 2>/dev/null || :; }

make_ns()
{
	ip netns add "$NS" || fail "cannot make namespace $NS"
	cleanup_fn _del_ns
	in_ns ip link set lo up
}

# tap_setup MTU: TAP rump0 in the namespace with the host side configured.
tap_setup()
{
	make_ns
	in_ns ip tuntap add dev rump0 mode tap
	in_ns ip link set rump0 mtu "$1"
	in_ns ip addr add $HOST4/24 dev rump0
	in_ns ip addr add $HOST6/64 dev rump0 nodad
	in_ns ip link set rump0 up
}

# start_rumpnet IFSPEC [more rumpnet args]: rumpnet in the namespace on
# $RUMPD_DIR/net.sock with the usual addresses.
start_rumpnet()
{
	local spec=$1
	shift
	start_server rumpnet.pid ip netns exec "$NS" "$RUMPNET" --if "eth0=$spec" \
		--addr eth0=$RUMP4/24 --addr eth0=$RUMP6/64 \
		--socket "$RUMPD_DIR/net.sock" --pidfile rumpnet.pid "$@"
	wait_for 10 "rumpnet answers ping" \
		in_ns ping -c 1 -W 1 $RUMP4
}

# hijacked CMD...: runs CMD with its sockets in rumpnet.
# The library is never built with sanitizers (see gateways/hijack), so the
# programs it goes into run as they are.
# As a command (env ...), so that "$!" of "${HIJACK[@]} cmd &" is cmd.
HIJACK=(env RUMP_SERVER="$RUMPD_DIR/net.sock" LD_PRELOAD="$RUMPHIJACK")
hijacked()
{
	"${HIJACK[@]}" "$@"
}

# A file with random content to move, and its checksum.
make_blob()
{
	mkdir -p www
	head -c "$1" /dev/urandom > www/blob
	BLOB_SUM=$(sha256sum < www/blob | cut -d' ' -f1)
}

check_sum()
{
	local got
	got=$(sha256sum < "$1" | cut -d' ' -f1)
	[ "$got" = "$BLOB_SUM" ] || fail "$2: checksum differs"
}

# wait_listen_ns PORT: until a host TCP server in the namespace listens.
wait_listen_ns()
{
	wait_for 10 "port $1 listening in the namespace" \
		in_ns bash -c "ss -ltn | grep -q ':$1 '"
}

# wait_http URL: until a (hijacked) HTTP server answers from the host side.
wait_http()
{
	wait_for 10 "$1 to answer" in_ns curl -s -o /dev/null "$1"
}
