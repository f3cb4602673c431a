/*
 * inet's static routes: which next hop a packet to a destination asks
 * the link for (ARP or neighbour solicitation), with longest-prefix
 * matching, lwIP's on-link rules first, and the errors of bad routes.
 * One stack per process (lwIP's globals), on a NIC that records frames.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "inet.h"
#include "rump/nic.h"

#define FRAMES 64
#define SNAP 128

/* What the NIC sent, newest last; the stack's timer thread sends too. */
struct recorder {
	pthread_mutex_t lock;
	uint8_t frame[FRAMES][SNAP];
	unsigned n;
};

static struct recorder rec = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int
rec_output(struct rk_nic *nic, const struct rumpuser_iov *iov, unsigned n)
{
	size_t off = 0, c;

	(void)nic;
	pthread_mutex_lock(&rec.lock);
	if (rec.n < FRAMES) {
		memset(rec.frame[rec.n], 0, SNAP);
		for (unsigned i = 0; i < n && off < SNAP; i++) {
			c = iov[i].len < SNAP - off ? iov[i].len : SNAP - off;
			memcpy(rec.frame[rec.n] + off, iov[i].base, c);
			off += c;
		}
		rec.n++;
	}
	pthread_mutex_unlock(&rec.lock);
	return 0;
}

static int
nop_start(struct rk_nic *nic)
{
	(void)nic;
	return 0;
}

static void
nop_stop(struct rk_nic *nic)
{
	(void)nic;
}

static const struct rk_nic_ops rec_ops = {
	.output = rec_output,
	.start = nop_start,
	.stop = nop_stop,
};

static void
nop_destroy(struct rk_device *dev)
{
	(void)dev;
}

static const struct rk_devops nic_devops = {
	.version = RK_DEVOPS_VERSION,
	.destroy = nop_destroy,
};

static struct rk_nic nic = {
	.ops = &rec_ops,
	.kind = "test",
	.mac = { 0x02, 0, 0, 0, 0, 2 },
	.mtu = 1500,
};

static struct inet *in;
static struct inet_sock *udp4, *udp6;

static int
setup(void **state)
{
	struct rk_runtime_opts o = { .name = "test-routes" };
	struct rk_device_args da = {
		.name = "eth0", .class = RK_NIC_CLASS, .ops = &nic_devops,
		.softc = &nic,
	};
	struct rk_runtime *rt;
	struct inet_if *ifp;

	(void)state;
	if (rk_runtime_create(&o, &rt) != 0 ||
	    rk_device_add(rt, &da, &nic.dev) != 0 ||
	    inet_create(rt, &in) != 0 || inet_if_attach(in, &nic, &ifp) != 0 ||
	    inet_if_add_addr(ifp, "10.0.0.2/24") != 0 ||
	    inet_if_add_addr(ifp, "fd00::2/64") != 0 ||
	    inet_socket(in, AF_INET, SOCK_DGRAM, &udp4) != 0 ||
	    inet_socket(in, AF_INET6, SOCK_DGRAM, &udp6) != 0)
		return -1;
	return 0;
}

static void
sent(struct inet_op *op, int64_t result, uint64_t aux)
{
	(void)aux;
	*(int64_t *)op->arg = result;
}

/*
 * Sends a datagram to dest and returns the address the link was asked
 * about (ARP's target, or the target of a neighbour solicitation), as
 * text; "unreachable" if the send found no route.
 */
static const char *
asked_for(const char *dest, char *out, size_t cap)
{
	struct inet_op op = { .kind = INET_OP_SEND };
	struct sockaddr_in *sin = (struct sockaddr_in *)&op.addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&op.addr;
	bool v6 = strchr(dest, ':') != NULL;
	int64_t result = -1;
	unsigned first, i;

	pthread_mutex_lock(&rec.lock);
	first = rec.n;
	pthread_mutex_unlock(&rec.lock);
	if (v6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(9);
		assert_int_equal(inet_pton(AF_INET6, dest, &sin6->sin6_addr),
		                 1);
		op.addr_len = sizeof(*sin6);
	} else {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(9);
		assert_int_equal(inet_pton(AF_INET, dest, &sin->sin_addr), 1);
		op.addr_len = sizeof(*sin);
	}
	op.buf = "x";
	op.len = 1;
	op.done = sent;
	op.arg = &result;
	inet_op_start(v6 ? udp6 : udp4, &op);
	if (result == -EHOSTUNREACH) {
		snprintf(out, cap, "unreachable");
		return out;
	}
	assert_int_equal(result, 1);
	out[0] = '\0';
	pthread_mutex_lock(&rec.lock);
	for (i = first; i < rec.n; i++) {
		const uint8_t *f = rec.frame[i];

		/* ARP request: the target protocol address. */
		if (f[12] == 0x08 && f[13] == 0x06 && f[21] == 1)
			inet_ntop(AF_INET, f + 38, out, (socklen_t)cap);
		/* ICMPv6 neighbour solicitation: its target. */
		else if (f[12] == 0x86 && f[13] == 0xdd && f[20] == 58 &&
		         f[54] == 135)
			inet_ntop(AF_INET6, f + 62, out, (socklen_t)cap);
		else
			continue;
		break;
	}
	pthread_mutex_unlock(&rec.lock);
	return out;
}

static void
test_bad_routes(void **state)
{
	(void)state;
	assert_int_equal(inet_add_route(in, "2001:db8::1/32", "fe80::1"),
	                 EINVAL);
	assert_int_equal(inet_add_route(in, "10.1.0.1/16", "10.0.0.1"),
	                 EINVAL);
	assert_int_equal(inet_add_route(in, "2001:db8::/129", "fe80::1"),
	                 EINVAL);
	assert_int_equal(inet_add_route(in, "2001:db8::/32", "nonsense"),
	                 EINVAL);
	assert_int_equal(inet_add_route(in, "10.0.0.1%eth0", "10.0.0.1"),
	                 EINVAL);
	assert_int_equal(inet_add_route(in, "10.1.0.0/16", "10.0.0.1%eth0"),
	                 EINVAL);
	assert_int_equal(inet_add_route(in, "2001:db8::/32", "10.0.0.1"),
	                 EAFNOSUPPORT);
	assert_int_equal(inet_add_route(in, "default6", "10.0.0.1"),
	                 EAFNOSUPPORT);
	assert_int_equal(inet_add_route(in, "10.1.0.0/16", "10.9.0.1"),
	                 ENETUNREACH);
	assert_int_equal(inet_add_route(in, "2001:db8::/32", "2001:db9::1"),
	                 ENETUNREACH);
	assert_int_equal(inet_add_route(in, "2001:db8::/32", "fe80::1%eth9"),
	                 ENETUNREACH);
}

static void
test_ipv4_routes(void **state)
{
	char a[INET6_ADDRSTRLEN];

	(void)state;
	/* No route, no default. */
	assert_string_equal(asked_for("10.1.2.3", a, sizeof(a)),
	                    "unreachable");
	assert_int_equal(inet_add_route(in, "10.1.0.0/16", "10.0.0.1"), 0);
	assert_int_equal(inet_add_route(in, "10.1.2.0/24", "10.0.0.9"), 0);
	assert_int_equal(inet_add_route(in, "10.1.0.0/16", "10.0.0.7"),
	                 EEXIST);
	assert_string_equal(asked_for("10.1.2.3", a, sizeof(a)), "10.0.0.9");
	assert_string_equal(asked_for("10.1.7.3", a, sizeof(a)), "10.0.0.1");
	/* On the interface's subnet: the destination itself. */
	assert_string_equal(asked_for("10.0.0.5", a, sizeof(a)), "10.0.0.5");
	assert_int_equal(inet_add_route(in, "default", "10.0.0.254"), 0);
	assert_int_equal(inet_add_route(in, "0.0.0.0/0", "10.0.0.253"),
	                 EEXIST);
	assert_string_equal(asked_for("192.0.2.1", a, sizeof(a)),
	                    "10.0.0.254");
	/* A prefix still wins over the default.  (Each case asks about a
	 * gateway not asked about before: lwIP asks once per neighbour.) */
	assert_int_equal(inet_add_route(in, "10.2.0.0/16", "10.0.0.8"), 0);
	assert_string_equal(asked_for("10.2.3.4", a, sizeof(a)), "10.0.0.8");
}

static void
test_ipv6_routes(void **state)
{
	char a[INET6_ADDRSTRLEN];

	(void)state;
	assert_string_equal(asked_for("2001:db8:1::1", a, sizeof(a)),
	                    "unreachable");
	assert_int_equal(inet_add_route(in, "2001:db8::/32", "fe80::1"), 0);
	assert_int_equal(inet_add_route(in, "2001:db8:5::/48",
	                                "fe80::5%eth0"), 0);
	assert_int_equal(inet_add_route(in, "2001:db8::/32", "fe80::2"),
	                 EEXIST);
	assert_string_equal(asked_for("2001:db8:1::1", a, sizeof(a)),
	                    "fe80::1");
	assert_string_equal(asked_for("2001:db8:5::1", a, sizeof(a)),
	                    "fe80::5");
	/* A gateway on the interface's prefix, for everything else. */
	assert_int_equal(inet_add_route(in, "default6", "fd00::1"), 0);
	assert_string_equal(asked_for("2001:db9::1", a, sizeof(a)),
	                    "fd00::1");
	/* lwIP's on-link /64 of a static address comes first. */
	assert_string_equal(asked_for("fd00::77", a, sizeof(a)), "fd00::77");
	assert_int_equal(inet_add_route(in, "::/0", "fd00::1"), EEXIST);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_routes),
		cmocka_unit_test(test_ipv4_routes),
		cmocka_unit_test(test_ipv6_routes),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
