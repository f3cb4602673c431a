#!/usr/bin/env bash
# bench/net: one run, side by side, ratios printed.
#
#   limit    kernel to kernel over a veth pair (two namespaces): iperf3 TCP
#            throughput and ping round-trip time
#   rumpnet  iperf3 under librumphijack through rumpnet over a TAP device,
#            against a host iperf3 on the TAP's other side; ping from the
#            host to rumpnet
# Both at MTU 1500 and at the largest MTU each link takes (veth 65535, TAP
# 65521).  Targets (issue 5): at least 25% of the kernel's throughput and
# at most 3x its round-trip time.  Everything runs in namespaces made here.
#
#   bench/net/run.sh [BUILDDIR]      env: SECONDS_PER_RUN=5
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
secs=${SECONDS_PER_RUN:-5}
rumpnet=$build/servers/rumpnet/rumpnet
hijack=$build/gateways/hijack/librumphijack.so
work=$(mktemp -d /tmp/rumpd-bench-net.XXXXXX)
ns_a=rbn-a-$$ ns_b=rbn-b-$$ ns_t=rbn-t-$$
pids=()

[ "$(id -u)" = 0 ] || { echo "bench-net: needs root (namespaces)" >&2; exit 1; }
for tool in iperf3 ping python3 ip; do
	command -v "$tool" >/dev/null ||
		{ echo "bench-net: needs $tool" >&2; exit 1; }
done
[ -x "$rumpnet" ] && [ -f "$hijack" ] ||
	{ echo "bench-net: build rumpnet and librumphijack in $build" >&2; exit 1; }

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for n in $ns_a $ns_b $ns_t; do ip netns del $n 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

gbits() { # iperf3 JSON -> Gbit/s received
	python3 -c 'import json,sys
e = json.load(open(sys.argv[1]))["end"]
print("%.2f" % (e["sum_received"]["bits_per_second"] / 1e9))' "$1"
}
rtt() { # ping output -> average ms
	awk -F/ '/^rtt/ { print $5 }' "$1"
}

# --- the limit: kernel to kernel over veth -------------------------------
ip netns add $ns_a
ip netns add $ns_b
ip link add va netns $ns_a type veth peer name vb netns $ns_b
ip -n $ns_a addr add 10.9.0.1/24 dev va
ip -n $ns_b addr add 10.9.0.2/24 dev vb
ip -n $ns_a link set va up
ip -n $ns_b link set vb up

# --- rumpnet over TAP -----------------------------------------------------
ip netns add $ns_t
ip -n $ns_t link set lo up
ip -n $ns_t tuntap add dev rump0 mode tap
ip -n $ns_t addr add 10.8.0.1/24 dev rump0
ip -n $ns_t link set rump0 up

kernel_run() { # MTU
	ip -n $ns_a link set va mtu "$1"
	ip -n $ns_b link set vb mtu "$1"
	ip netns exec $ns_b iperf3 -s -1 -p 5500 > /dev/null 2>&1 &
	pids+=($!)
	sleep 0.5
	ip netns exec $ns_a iperf3 -c 10.9.0.2 -p 5500 -t "$secs" -J \
		> "$work/k-$1.json"
	ip netns exec $ns_a ping -c 50 -i 0.02 -q 10.9.0.2 > "$work/k-$1.ping"
}

rump_run() { # MTU
	local p
	ip -n $ns_t link set rump0 mtu "$1"
	RUMPD_DIR=$work ip netns exec $ns_t "$rumpnet" --if eth0=tap:rump0 \
		--addr eth0=10.8.0.2/24 --socket "$work/net.sock" \
		2> "$work/rumpnet-$1.log" &
	p=$!
	pids+=($p)
	for _ in $(seq 100); do [ -S "$work/net.sock" ] && break; sleep 0.05; done
	ip netns exec $ns_t iperf3 -s -1 -p 5501 > /dev/null 2>&1 &
	pids+=($!)
	sleep 0.5
	RUMP_SERVER=$work/net.sock LD_PRELOAD=$hijack \
		iperf3 -c 10.8.0.1 -p 5501 -t "$secs" -J > "$work/r-$1.json"
	ip netns exec $ns_t ping -c 50 -i 0.02 -q 10.8.0.2 > "$work/r-$1.ping"
	kill $p
	wait $p 2>/dev/null || true
	rm -f "$work/net.sock"
}

printf "%-22s %12s %12s %8s   %10s %10s %7s\n" "link" "kernel Gb/s" \
	"rumpnet Gb/s" "ratio" "kernel ms" "rumpnet ms" "ratio"
for pair in "1500 1500" "65535 65521"; do
	set -- $pair
	kernel_run "$1"
	rump_run "$2"
	kg=$(gbits "$work/k-$1.json") rg=$(gbits "$work/r-$2.json")
	kr=$(rtt "$work/k-$1.ping") rr=$(rtt "$work/r-$2.ping")
	printf "%-22s %12s %12s %7.0f%%   %10s %10s %6.1fx\n" \
		"veth $1 / tap $2" "$kg" "$rg" \
		"$(echo "100 * $rg / $kg" | bc -l)" "$kr" "$rr" \
		"$(echo "$rr / $kr" | bc -l)"
done
