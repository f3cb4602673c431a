/*
 * nic_tap: a NIC on a TAP device.
 *
 *   create(rt, "eth0", "rump0[,mtu=N][,mac=..]")   opens (or makes) TAP rump0
 *   create(rt, "eth0", "fd=N[,...]")              a TAP descriptor handed in
 *
 * The supervisor, which holds the privilege, may open the TAP device and
 * pass the descriptor down; a process with CAP_NET_ADMIN may open it
 * itself.
 */
#include "rump/rumpkern.h"

#include "nic_fd.h"

static int
tap_open(const char *spec, char *name, int *fdp)
{
	return rumpuser_nic_tap_open(spec, name, fdp);
}

static const struct nic_fd_args tap_how = { .kind = "tap", .open = tap_open };

static int
nic_tap_create(struct rk_runtime *rt, const char *instance, const char *args)
{
	return nic_fd_create(rt, instance, args, &tap_how);
}

static const struct rk_component nic_tap_component = {
	.version = RK_COMPONENT_VERSION,
	.name = "nic_tap",
	.create = nic_tap_create,
};
RK_COMPONENT(nic_tap_component);
