#!/usr/bin/env bash
# Large MTUs: a TAP at its largest MTU (65521) and a veth pair at 65535
# (rumpnet on one end through nic_packet): pings of every size up to the
# largest IP packet, both families, and a checksummed HTTP transfer.  Run
# under the sanitizer build, this is the proof that big frames are clean.
RUMPD_TEST_TIMEOUT=140
source "$(dirname "$0")/netlib.sh"
requires curl --version
requires python3 --version
requires ethtool --version

check_pings()
{
	local s
	for s in 56 1472 1473 9000 32768 65000 65507; do
		in_ns ping -c 1 -W 2 -s $s $RUMP4 > /dev/null ||
			fail "$1: IPv4 ping of $s bytes"
	done
	for s in 56 1452 9000 65000 65487; do
		in_ns ping -6 -c 1 -W 2 -s $s $RUMP6 > /dev/null ||
			fail "$1: IPv6 ping of $s bytes"
	done
}

check_http()
{
	(cd www && exec ip netns exec "$NS" python3 -m http.server \
		--bind $HOST4 $2 > ../http-$2.log 2>&1) &
	kill_at_exit $!
	wait_listen_ns $2
	hijacked curl -sS -o got-$2 "http://$HOST4:$2/blob" ||
		fail "$1: hijacked curl"
	check_sum got-$2 "$1: HTTP"
}

make_blob 4000000

# TAP: the kernel caps its MTU at 65521.
tap_setup 65521
start_rumpnet tap:rump0
"$RUMPCTL" -s "$RUMPD_DIR/net.sock" net list | grep -q "mtu 65521" ||
	fail "rumpnet did not take the TAP's MTU"
check_pings "TAP 65521"
check_http "TAP 65521" 8000
stop_server rumpnet.pid || fail "rumpnet did not stop cleanly"

# veth at 65535: frames of 65549 bytes, past lwIP's 16-bit pbufs.
_del_ns
make_ns
in_ns ip link add vh type veth peer name vr
in_ns ip link set vh mtu 65535
in_ns ip link set vr mtu 65535
in_ns ip addr add $HOST4/24 dev vh
in_ns ip addr add $HOST6/64 dev vh nodad
# A packet socket sees the host's frames before segmentation and checksum
# offload: the host side must send finished frames.
in_ns ethtool -K vh tx off tso off gso off > /dev/null
in_ns ip link set vh up
in_ns ip link set vr up
start_rumpnet packet:vr
check_pings "veth 65535"
check_http "veth 65535" 8001
echo "net-mtu: ok"
