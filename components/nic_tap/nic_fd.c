/*
 * Descriptor NICs (TAP devices, packet sockets).  One receive thread per
 * NIC sleeps in rumpuser_nic_wait() and hands each frame to the NIC's
 * input; senders write straight to the descriptor from their own thread,
 * so transmission never waits for a queue.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nic_fd.h"

struct nic_fd {
	struct rk_nic nic;          /* first: the device's softc */
	struct rk_runtime *rt;
	int fd;
	int stop_fd;                /* doorbell that ends the receive thread */
	bool running;
	bool stopping;
	struct rumpuser_thread *rx_thread;
	uint8_t *rx_buf;            /* RK_NIC_FRAME_MAX + 1 bytes */
};

static int
nic_fd_output(struct rk_nic *nic, const struct rumpuser_iov *iov, unsigned n)
{
	struct nic_fd *nf = (struct nic_fd *)nic;
	size_t len = 0;
	unsigned i;
	int error;

	for (i = 0; i < n; i++)
		len += iov[i].len;
	if (len < RK_NIC_HDR_LEN || len > RK_NIC_HDR_LEN + 4 + nic->mtu) {
		rk_nic_count(&nic->stats.tx_errors, 1);
		return EMSGSIZE;
	}
	if (nic->outbound != NULL)
		nic->outbound(nic->outbound_arg, iov, n, len);
	error = rumpuser_nic_send(nf->fd, iov, n);
	if (error == 0) {
		rk_nic_count(&nic->stats.tx_packets, 1);
		rk_nic_count(&nic->stats.tx_bytes, len);
	} else if (error == EAGAIN || error == ENOBUFS) {
		rk_nic_count(&nic->stats.tx_dropped, 1);
	} else {
		rk_nic_count(&nic->stats.tx_errors, 1);
	}
	return error;
}

static void *
nic_fd_rx_main(void *arg)
{
	struct nic_fd *nf = arg;
	struct rk_nic *nic = &nf->nic;
	size_t cap = RK_NIC_HDR_LEN + 4 + (size_t)nic->mtu + 1;
	size_t len;
	int ready, error;

	while (!__atomic_load_n(&nf->stopping, __ATOMIC_ACQUIRE)) {
		error = rumpuser_nic_recv(nf->fd, nf->rx_buf, cap, &len);
		if (error == 0) {
			rk_nic_count(&nic->stats.rx_packets, 1);
			rk_nic_count(&nic->stats.rx_bytes, len);
			if (len < RK_NIC_HDR_LEN || nic->input == NULL)
				rk_nic_count(&nic->stats.rx_dropped, 1);
			else
				nic->input(nic->input_arg, nf->rx_buf, len);
			continue;
		}
		if (error == EMSGSIZE) {
			rk_nic_count(&nic->stats.rx_errors, 1);
			continue;
		}
		if (error != EAGAIN) {
			rk_err(nf->rt, "%s: receive failed: %s",
			       rk_device_name(nic->dev), strerror(error));
			break;
		}
		error = rumpuser_nic_wait(nf->fd, nf->stop_fd, UINT64_MAX,
		                          &ready);
		if (error) {
			rk_err(nf->rt, "%s: host interface gone: %s",
			       rk_device_name(nic->dev), strerror(error));
			break;
		}
	}
	return NULL;
}

static int
nic_fd_start(struct rk_nic *nic)
{
	struct nic_fd *nf = (struct nic_fd *)nic;
	char name[16];
	int error;

	if (nf->running)
		return EBUSY;
	snprintf(name, sizeof(name), "rx-%s", rk_device_name(nic->dev));
	nf->stopping = false;
	error = rumpuser_thread_create(nic_fd_rx_main, nf, name,
	                               &nf->rx_thread);
	if (error == 0)
		nf->running = true;
	return error;
}

static void
nic_fd_stop(struct rk_nic *nic)
{
	struct nic_fd *nf = (struct nic_fd *)nic;

	if (!nf->running)
		return;
	__atomic_store_n(&nf->stopping, true, __ATOMIC_RELEASE);
	(void)rumpuser_doorbell_ring(nf->stop_fd);
	(void)rumpuser_thread_join(nf->rx_thread, NULL);
	nf->running = false;
}

static const struct rk_nic_ops nic_fd_ops = {
	.output = nic_fd_output,
	.start = nic_fd_start,
	.stop = nic_fd_stop,
};

static void
nic_fd_destroy(struct rk_device *dev)
{
	struct nic_fd *nf = rk_device_softc(dev);

	nic_fd_stop(&nf->nic);
	if (nf->fd >= 0)
		(void)rumpuser_close(nf->fd);
	if (nf->stop_fd >= 0)
		(void)rumpuser_close(nf->stop_fd);
	rumpuser_free(nf->rx_buf, RK_NIC_FRAME_MAX + 1);
	rumpuser_free(nf, sizeof(*nf));
}

static const struct rk_devops nic_fd_devops = {
	.version = RK_DEVOPS_VERSION,
	.destroy = nic_fd_destroy,
};

static int
parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	int n = 0, i;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &v[0], &v[1], &v[2],
	           &v[3], &v[4], &v[5], &n) != 6 || s[n] != '\0')
		return EINVAL;
	for (i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	if (mac[0] & 1)
		return EINVAL; /* a multicast address cannot be a station */
	return 0;
}

struct nic_fd_spec {
	char host[64];
	int fd;                     /* -1: open host by name */
	unsigned mtu;               /* 0: the host interface's */
	bool have_mac;
	uint8_t mac[6];
};

static int
parse_spec(const char *args, struct nic_fd_spec *sp)
{
	char buf[256], *tok, *save = NULL, *end;
	unsigned long v;
	bool first = true;

	memset(sp, 0, sizeof(*sp));
	sp->fd = -1;
	if (args == NULL || strlen(args) >= sizeof(buf))
		return EINVAL;
	strcpy(buf, args);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save), first = false) {
		if (strncmp(tok, "mtu=", 4) == 0) {
			errno = 0;
			v = strtoul(tok + 4, &end, 10);
			if (errno || *end || v < 576 || v > RK_NIC_MTU_MAX)
				return EINVAL;
			sp->mtu = (unsigned)v;
		} else if (strncmp(tok, "mac=", 4) == 0) {
			if (parse_mac(tok + 4, sp->mac) != 0)
				return EINVAL;
			sp->have_mac = true;
		} else if (first && strncmp(tok, "fd=", 3) == 0) {
			errno = 0;
			v = strtoul(tok + 3, &end, 10);
			if (errno || *end || tok[3] == '\0' || v > INT_MAX)
				return EINVAL;
			sp->fd = (int)v;
		} else if (first && *tok != '\0' &&
		           strlen(tok) < RUMPUSER_IFNAME_MAX) {
			strcpy(sp->host, tok);
		} else {
			return EINVAL;
		}
	}
	if (sp->fd < 0 && sp->host[0] == '\0')
		return EINVAL;
	return 0;
}

int
nic_fd_create(struct rk_runtime *rt, const char *instance, const char *args,
              const struct nic_fd_args *how)
{
	struct rk_device_args da = { 0 };
	struct nic_fd_spec sp;
	struct nic_fd *nf = NULL;
	char ifname[RUMPUSER_IFNAME_MAX];
	uint8_t host_mac[6];
	unsigned host_mtu = 1500;
	int error;

	if ((error = parse_spec(args, &sp)) != 0) {
		rk_err(rt, "%s: bad %s arguments '%s' (want IFNAME or fd=N, "
		       "then ,mtu=N ,mac=xx:xx:xx:xx:xx:xx)", instance,
		       how->kind, args ? args : "");
		return error;
	}
	if ((error = rumpuser_malloc(sizeof(*nf), 0, (void **)&nf)) != 0)
		return error;
	memset(nf, 0, sizeof(*nf));
	nf->rt = rt;
	nf->fd = nf->stop_fd = -1;
	if ((error = rumpuser_malloc(RK_NIC_FRAME_MAX + 1, 64,
	                             (void **)&nf->rx_buf)) != 0)
		goto fail;
	if (sp.fd >= 0) {
		error = rumpuser_nic_adopt(sp.fd, ifname);
		if (error == 0)
			nf->fd = sp.fd;
	} else {
		error = how->open(sp.host, ifname, &nf->fd);
	}
	if (error) {
		rk_err(rt, "%s: cannot open %s %s: %s", instance, how->kind,
		       sp.fd >= 0 ? "descriptor" : sp.host, strerror(error));
		goto fail;
	}
	if (rumpuser_nic_host_info(ifname, &host_mtu, host_mac) != 0)
		host_mtu = 1500;
	if ((error = rumpuser_doorbell_create(&nf->stop_fd)) != 0)
		goto fail;

	nf->nic.ops = &nic_fd_ops;
	snprintf(nf->nic.kind, sizeof(nf->nic.kind), "%s", how->kind);
	snprintf(nf->nic.backing, sizeof(nf->nic.backing), "%s", ifname);
	nf->nic.mtu = sp.mtu ? sp.mtu : host_mtu;
	if (nf->nic.mtu > RK_NIC_MTU_MAX)
		nf->nic.mtu = RK_NIC_MTU_MAX;
	/* Our own station address: the host interface's belongs to the
	 * host's side of the link. */
	if (sp.have_mac)
		memcpy(nf->nic.mac, sp.mac, 6);
	else if ((error = rk_nic_random_mac(nf->nic.mac)) != 0)
		goto fail;

	da.name = instance;
	da.class = RK_NIC_CLASS;
	da.ops = &nic_fd_devops;
	da.softc = nf;
	error = rk_device_add(rt, &da, &nf->nic.dev);
	if (error) {
		rk_err(rt, "%s: cannot add the device: %s", instance,
		       strerror(error));
		goto fail;
	}
	rk_info(rt, "%s: %s %s, mtu %u, mac %02x:%02x:%02x:%02x:%02x:%02x",
	        instance, how->kind, ifname, nf->nic.mtu, nf->nic.mac[0],
	        nf->nic.mac[1], nf->nic.mac[2], nf->nic.mac[3],
	        nf->nic.mac[4], nf->nic.mac[5]);
	return 0;
fail:
	if (nf->fd >= 0 && sp.fd < 0)
		(void)rumpuser_close(nf->fd);
	if (nf->stop_fd >= 0)
		(void)rumpuser_close(nf->stop_fd);
	if (nf->rx_buf != NULL)
		rumpuser_free(nf->rx_buf, RK_NIC_FRAME_MAX + 1);
	rumpuser_free(nf, sizeof(*nf));
	return error;
}
