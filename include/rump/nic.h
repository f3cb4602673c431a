/*
 * Network interfaces inside a rump process: what a NIC component (nic_tap,
 * nic_packet, nic_shm) offers to the consumers of its frames (the inet
 * stack, rumpnet's raw-frame clients).
 *
 * A NIC is a runtime device of class "nic" whose softc is a struct rk_nic
 * (drivers put it first in their state).  Frames are whole Ethernet frames
 * without the FCS.  Received frames go to one input callback, on the NIC's
 * receive thread; the frame is the driver's and only valid during the
 * call.  output may be called from any thread.
 */
#ifndef RUMP_NIC_H
#define RUMP_NIC_H

#include <stddef.h>
#include <stdint.h>

#include "rump/rumpkern.h"
#include "rump/rumpuser.h"

#define RK_NIC_CLASS "nic"
#define RK_NIC_HDR_LEN 14        /* Ethernet header */
#define RK_NIC_MTU_MAX 65535u    /* largest IP packet a NIC may carry */
#define RK_NIC_FRAME_MAX (RK_NIC_MTU_MAX + RK_NIC_HDR_LEN + 4) /* + VLAN */

struct rk_nic;

typedef void (*rk_nic_input_fn)(void *arg, const void *frame, size_t len);

struct rk_nic_ops {
	/* Sends one frame gathered from iov[0..n) (n <= 64); EAGAIN when the
	 * link is full (the frame is dropped and counted). */
	int (*output)(struct rk_nic *nic, const struct rumpuser_iov *iov,
	              unsigned n);
	/* Starts delivering frames to nic->input; stop waits until the
	 * receive thread is out of input. */
	int (*start)(struct rk_nic *nic);
	void (*stop)(struct rk_nic *nic);
};

/* Counters, updated with relaxed atomics; read them with rk_nic_stats. */
struct rk_nic_stats {
	uint64_t rx_packets, rx_bytes, rx_dropped, rx_errors;
	uint64_t tx_packets, tx_bytes, tx_dropped, tx_errors;
};

struct rk_nic {
	const struct rk_nic_ops *ops;
	struct rk_device *dev;
	char kind[8];            /* "tap", "packet", "shm" */
	char backing[64];        /* host interface or bus file, for status */
	uint8_t mac[6];
	uint32_t mtu;            /* largest IP packet, without the header */
	rk_nic_input_fn input;   /* set before start; NULL drops */
	void *input_arg;
	/* Optional: sees every frame output() sends, before it goes (for
	 * captures); runs on the sender's thread. */
	void (*outbound)(void *arg, const struct rumpuser_iov *iov,
	                 unsigned n, size_t len);
	void *outbound_arg;
	struct rk_nic_stats stats;
	uint32_t offloads;       /* RK_NIC_OFF_*, set by the driver */
};

/*
 * output() also takes IPv4 TCP segments longer than mtu (up to
 * RK_NIC_MTU_MAX) with their checksums complete, and has the link split
 * them into segments whose IP packets fit mtu.
 */
#define RK_NIC_OFF_TSO4 0x1u

static inline void
rk_nic_count(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

static inline void
rk_nic_stats(const struct rk_nic *nic, struct rk_nic_stats *out)
{
	const uint64_t *in = (const uint64_t *)&nic->stats;
	uint64_t *o = (uint64_t *)out;
	size_t i;

	for (i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		o[i] = __atomic_load_n(&in[i], __ATOMIC_RELAXED);
}

/* The NIC behind a device of class "nic", or NULL. */
static inline struct rk_nic *
rk_nic_of(struct rk_device *dev)
{
	const char *c = rk_device_class(dev);

	if (c == NULL || c[0] != 'n' || c[1] != 'i' || c[2] != 'c' || c[3])
		return NULL;
	return (struct rk_nic *)rk_device_softc(dev);
}

/* A locally administered unicast MAC address from the host's randomness. */
static inline int
rk_nic_random_mac(uint8_t mac[6])
{
	int error = rumpuser_getrandom(mac, 6);

	mac[0] = (uint8_t)((mac[0] & 0xfe) | 0x02);
	return error;
}

#endif /* RUMP_NIC_H */
