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
	unsigned vnet_len;          /* virtio-net header before each frame */
	uint8_t *rx_buf;            /* RX_BUF_LEN bytes */
};

/* The largest vnet header rumpuser reports, and room for one frame after
 * it. */
#define VNET_LEN_MAX 256u
#define RX_BUF_LEN (VNET_LEN_MAX + RK_NIC_FRAME_MAX + 1)

/*
 * The virtio-net header (virtio 1.0, 5.1.6), in the host's byte order as
 * a TAP device reads it unless told otherwise.
 */
struct vnet_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;           /* Ethernet + IP + TCP headers */
	uint16_t gso_size;          /* payload bytes per segment */
	uint16_t csum_start;        /* where the TCP checksum starts */
	uint16_t csum_offset;       /* and where, from there, it goes */
};
#define VNET_F_NEEDS_CSUM 1
#define VNET_GSO_TCPV4 1

#define TSO_HDR_MAX (RK_NIC_HDR_LEN + 60 + 60)

/*
 * An IPv4 TCP frame longer than the MTU, for the host to split: its
 * headers are copied into hb (the TCP checksum must become the pseudo-
 * header's sum, which the host finishes per segment) and vh says how to
 * split it.  Returns the header bytes copied, or 0 for a frame that is
 * not such a segment.
 */
static size_t
tso_prepare(const struct rk_nic *nic, const struct rumpuser_iov *iov,
            unsigned n, size_t len, uint8_t hb[TSO_HDR_MAX],
            struct vnet_hdr *vh)
{
	size_t got = 0, c, ihl, thl, hlen;
	const uint8_t *ip, *th;
	uint32_t sum;
	unsigned i;

	for (i = 0; i < n && got < TSO_HDR_MAX; i++) {
		c = iov[i].len < TSO_HDR_MAX - got ? iov[i].len :
		    TSO_HDR_MAX - got;
		memcpy(hb + got, iov[i].base, c);
		got += c;
	}
	ip = hb + RK_NIC_HDR_LEN;
	if (got < RK_NIC_HDR_LEN + 40 || hb[12] != 0x08 || hb[13] != 0x00 ||
	    (ip[0] >> 4) != 4 || ip[9] != 6 /* TCP */)
		return 0;
	ihl = (size_t)(ip[0] & 15) * 4;
	if (ihl < 20 || (size_t)(ip[2] << 8 | ip[3]) != len - RK_NIC_HDR_LEN)
		return 0;
	th = ip + ihl;
	if (RK_NIC_HDR_LEN + ihl + 20 > got)
		return 0;
	thl = (size_t)(th[12] >> 4) * 4;
	hlen = RK_NIC_HDR_LEN + ihl + thl;
	if (thl < 20 || hlen > got || ihl + thl >= nic->mtu)
		return 0;

	/* The pseudo header: addresses, protocol, TCP length; folded, not
	 * inverted. */
	sum = 6u + (uint32_t)(len - RK_NIC_HDR_LEN - ihl);
	for (i = 12; i < 20; i += 2)
		sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
	sum = (sum >> 16) + (sum & 0xffff);
	sum = (sum >> 16) + (sum & 0xffff);
	hb[RK_NIC_HDR_LEN + ihl + 16] = (uint8_t)(sum >> 8);
	hb[RK_NIC_HDR_LEN + ihl + 17] = (uint8_t)sum;

	vh->flags = VNET_F_NEEDS_CSUM;
	vh->gso_type = VNET_GSO_TCPV4;
	vh->hdr_len = (uint16_t)hlen;
	vh->gso_size = (uint16_t)(nic->mtu - ihl - thl);
	vh->csum_start = (uint16_t)(RK_NIC_HDR_LEN + ihl);
	vh->csum_offset = 16;
	return hlen;
}

static int
nic_fd_output(struct rk_nic *nic, const struct rumpuser_iov *iov, unsigned n)
{
	struct nic_fd *nf = (struct nic_fd *)nic;
	uint8_t vh_buf[VNET_LEN_MAX];
	uint8_t hb[TSO_HDR_MAX];
	struct rumpuser_iov v[66];
	struct vnet_hdr vh = { 0 };
	size_t len = 0, hlen = 0, skip;
	unsigned i, k;
	int error;

	for (i = 0; i < n; i++)
		len += iov[i].len;
	if (len > RK_NIC_HDR_LEN + 4 + nic->mtu && len <= RK_NIC_FRAME_MAX &&
	    nf->vnet_len != 0 && (nic->offloads & RK_NIC_OFF_TSO4))
		hlen = tso_prepare(nic, iov, n, len, hb, &vh);
	if (len < RK_NIC_HDR_LEN ||
	    (len > RK_NIC_HDR_LEN + 4 + nic->mtu && hlen == 0)) {
		rk_nic_count(&nic->stats.tx_errors, 1);
		return EMSGSIZE;
	}
	if (nic->outbound != NULL)
		nic->outbound(nic->outbound_arg, iov, n, len);
	if (nf->vnet_len == 0) {
		error = rumpuser_nic_send(nf->fd, iov, n);
	} else {
		memset(vh_buf, 0, nf->vnet_len);
		memcpy(vh_buf, &vh, sizeof(vh));
		v[0].base = vh_buf;
		v[0].len = nf->vnet_len;
		k = 1;
		i = 0;
		skip = 0;
		if (hlen != 0) {
			/* The copied headers stand for the frame's first
			 * hlen bytes. */
			v[k].base = hb;
			v[k++].len = hlen;
			for (skip = hlen; i < n && iov[i].len <= skip; i++)
				skip -= iov[i].len;
		}
		for (; i < n; i++, skip = 0) {
			v[k].base = (const uint8_t *)iov[i].base + skip;
			v[k++].len = iov[i].len - skip;
		}
		error = rumpuser_nic_send(nf->fd, v, k);
	}
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
	size_t cap = nf->vnet_len + RK_NIC_HDR_LEN + 4 + (size_t)nic->mtu + 1;
	const uint8_t *frame = nf->rx_buf + nf->vnet_len;
	size_t len;
	int ready, error;

	while (!__atomic_load_n(&nf->stopping, __ATOMIC_ACQUIRE)) {
		error = rumpuser_nic_recv(nf->fd, nf->rx_buf, cap, &len);
		if (error == 0) {
			/* With offloads off the host never sends a segment
			 * to split or a checksum to finish: the header only
			 * says so, and is skipped. */
			len = len > nf->vnet_len ? len - nf->vnet_len : 0;
			rk_nic_count(&nic->stats.rx_packets, 1);
			rk_nic_count(&nic->stats.rx_bytes, len);
			if (len < RK_NIC_HDR_LEN || nic->input == NULL)
				rk_nic_count(&nic->stats.rx_dropped, 1);
			else
				nic->input(nic->input_arg, frame, len);
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
	rumpuser_free(nf->rx_buf, RX_BUF_LEN);
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
	if ((error = rumpuser_malloc(RX_BUF_LEN, 64,
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
	error = rumpuser_nic_vnet_hdr_len(nf->fd, &nf->vnet_len);
	if (error == 0 && nf->vnet_len > VNET_LEN_MAX)
		error = EPROTO;
	if (error) {
		rk_err(rt, "%s: %s %s: bad virtio-net header: %s", instance,
		       how->kind, ifname, strerror(error));
		goto fail;
	}
	if (nf->vnet_len >= sizeof(struct vnet_hdr))
		nf->nic.offloads = RK_NIC_OFF_TSO4;
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
	rk_info(rt, "%s: %s %s, mtu %u, mac %02x:%02x:%02x:%02x:%02x:%02x%s",
	        instance, how->kind, ifname, nf->nic.mtu, nf->nic.mac[0],
	        nf->nic.mac[1], nf->nic.mac[2], nf->nic.mac[3],
	        nf->nic.mac[4], nf->nic.mac[5],
	        nf->nic.offloads & RK_NIC_OFF_TSO4 ?
	        ", TCP segmentation offload" : "");
	return 0;
fail:
	if (nf->fd >= 0 && sp.fd < 0)
		(void)rumpuser_close(nf->fd);
	if (nf->stop_fd >= 0)
		(void)rumpuser_close(nf->stop_fd);
	if (nf->rx_buf != NULL)
		rumpuser_free(nf->rx_buf, RX_BUF_LEN);
	rumpuser_free(nf, sizeof(*nf));
	return error;
}
