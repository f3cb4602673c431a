/*
 * The supervisor service: what rumpctl asks rumpd over its control socket,
 * "<runtime dir>/rumpd.sock".  Framing, HELLO and checks are the common
 * ones (rump/ipc.h); rumpd serves no rings.  docs/rumpd.md describes it
 * together with the supervisor <-> driver contract.
 *
 * Names are NUL-padded; a request naming a driver carries a
 * struct rump_sup_name.  Replies carry 0 or a positive errno as status
 * (ENOENT: no such driver; EPERM: the caller may only look).
 */
#ifndef RUMP_PROTO_SUP_H
#define RUMP_PROTO_SUP_H

#include <assert.h>
#include <stdint.h>

#include "rump/proto.h"

/* The service kind rumpd reports in its HELLO reply. */
#define RUMP_SERVICE_SUPERVISOR 5

/* The socket's name in the runtime directory (rump_service_path()). */
#define RUMP_SUP_SOCKET_NAME "rumpd"

enum rump_sup_msg {
	RUMP_SUP_MSG_STATUS = RUMP_MSG_SERVICE, /* -> status + driver[] */
	RUMP_SUP_MSG_START,     /* rump_sup_name -> empty */
	RUMP_SUP_MSG_STOP,      /* rump_sup_name -> empty */
	RUMP_SUP_MSG_RESTART,   /* rump_sup_name -> empty */
	RUMP_SUP_MSG_DEVICES,   /* empty -> rump_sup_device[] */
	RUMP_SUP_MSG_LOGS,      /* rump_sup_name -> text (the newest bytes) */
	/* Test builds only (ENOTSUP otherwise): rump_sup_trigger -> text,
	 * the driver's own account of what happened. */
	RUMP_SUP_MSG_TRIGGER,
};

struct rump_sup_name {
	char name[RUMP_NAME_MAX];
};

enum rump_sup_state {
	RUMP_SUP_STOPPED = 0,   /* stopped by rumpctl stop (or not yet run) */
	RUMP_SUP_STARTING = 1,  /* forked, waiting for READY */
	RUMP_SUP_RUNNING = 2,   /* READY */
	RUMP_SUP_BACKOFF = 3,   /* died; restarts at restart_in_ms */
	RUMP_SUP_FAILED = 4,    /* crash loop: given up until rumpctl start */
	RUMP_SUP_STOPPING = 5,
};

#define RUMP_SUP_F_HEARTBEAT 0x1  /* the driver answers PING */
#define RUMP_SUP_F_CONFINED  0x2  /* the driver reported CONFINED */
#define RUMP_SUP_F_COUNTERS  0x4  /* requests/bytes are known */

struct rump_sup_status {
	uint32_t ndrivers;        /* struct rump_sup_driver follow */
	int32_t pid;              /* rumpd's */
	uint64_t uptime_ms;
	char runtime_dir[112];
};
static_assert(sizeof(struct rump_sup_status) == 128, "wire size");

struct rump_sup_driver {
	char name[RUMP_NAME_MAX];
	char kind[16];            /* "disk", "nbd", ... */
	int32_t pid;              /* -1 when none */
	uint32_t state;           /* enum rump_sup_state */
	uint32_t flags;           /* RUMP_SUP_F_* */
	uint32_t restarts;        /* starts after the first */
	uint32_t failures;        /* deaths in a row counted as a crash loop */
	uint32_t tries;           /* ... allowed before FAILED */
	uint64_t uptime_ms;       /* since READY; 0 unless running */
	uint64_t restart_in_ms;   /* BACKOFF: time left */
	uint64_t boot_id;
	uint64_t requests, bytes; /* as the driver last reported them */
	/* Death to serving again (the first answered request), in us:
	 * the last one, and the median and worst of the recent ones. */
	uint64_t recovery_last_us, recovery_p50_us, recovery_max_us;
	uint32_t recoveries;      /* how many were measured */
	uint32_t reserved;
	char last_exit[80];       /* "was killed by SIGKILL", "" */
	char endpoint[112];       /* how to reach it: a socket path */
};
static_assert(sizeof(struct rump_sup_driver) == 336, "wire size");

#define RUMP_SUP_DEV_READ_ONLY 0x1

struct rump_sup_device {
	char name[RUMP_NAME_MAX];   /* wd0, a mount point's fs, nic0 */
	char driver[RUMP_NAME_MAX]; /* the instance serving it */
	char kind[16];              /* "disk image", "fs", "nic", ... */
	uint32_t flags;             /* RUMP_SUP_DEV_* */
	uint32_t reserved;
	char source[168];           /* image path, "wd0s1 of disk", ... */
};
static_assert(sizeof(struct rump_sup_device) == 256, "wire size");

#define RUMP_SUP_TRIGGER_MAX 160

struct rump_sup_trigger {
	char name[RUMP_NAME_MAX];
	char action[RUMP_SUP_TRIGGER_MAX]; /* "open:/etc/shadow", ... */
};

#endif /* RUMP_PROTO_SUP_H */
