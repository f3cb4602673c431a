/*
 * The part nic_tap and nic_packet share: a NIC whose frames move through
 * one host descriptor, with a receive thread that drains it.
 */
#ifndef RUMP_NIC_FD_H
#define RUMP_NIC_FD_H

#include "rump/nic.h"

struct nic_fd_args {
	const char *kind;         /* "tap", "packet" */
	/* Opens the host side named by spec; name gets the host interface. */
	int (*open)(const char *spec, char *name, int *fdp);
};

/*
 * create() of a descriptor NIC: args is "HOSTIF[,mtu=N][,mac=xx:..]" or
 * "fd=N[,...]" for a descriptor handed in already open.  The MTU defaults
 * to the host interface's.
 */
int nic_fd_create(struct rk_runtime *rt, const char *instance,
                  const char *args, const struct nic_fd_args *how);

#endif /* RUMP_NIC_FD_H */
