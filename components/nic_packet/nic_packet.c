/*
 * nic_packet: a NIC on a host interface through an AF_PACKET socket, e.g.
 * one end of a veth pair whose other end lives in the host's stack.
 *
 *   create(rt, "eth0", "veth1[,mtu=N][,mac=..]")
 *   create(rt, "eth0", "fd=N[,...]")     a bound packet socket handed in
 *
 * The station has a MAC address of its own (random unless given), not the
 * host interface's, so the host's stack on that interface does not answer
 * for it.
 */
#include "rump/rumpkern.h"

#include "nic_fd.h"

static int
packet_open(const char *spec, char *name, int *fdp)
{
	size_t n = 0;

	while (spec[n] != '\0' && n + 1 < RUMPUSER_IFNAME_MAX) {
		name[n] = spec[n];
		n++;
	}
	name[n] = '\0';
	return rumpuser_nic_packet_open(spec, fdp);
}

static const struct nic_fd_args packet_how = {
	.kind = "packet",
	.open = packet_open,
};

static int
nic_packet_create(struct rk_runtime *rt, const char *instance,
                  const char *args)
{
	return nic_fd_create(rt, instance, args, &packet_how);
}

static const struct rk_component nic_packet_component = {
	.version = RK_COMPONENT_VERSION,
	.name = "nic_packet",
	.create = nic_packet_create,
};
RK_COMPONENT(nic_packet_component);
