/*
 * rumpd's configuration: an INI file (docs/rumpd.conf.5) or the built-in
 * default.  Parsing checks everything it can before anything starts: a
 * configuration with one error starts nothing.
 */
#ifndef RUMPD_CONFIG_H
#define RUMPD_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "rump/proto.h"

enum rumpd_kind {
	KIND_NULL,
	KIND_DISK,
	KIND_FS,
	KIND_NET,
	KIND_NBD,
	KIND_FUSE,
	KIND_COUNT,
};

struct rumpd_kind_info {
	const char *name;          /* "disk": the driver = value */
	const char *program;       /* "rumpdisk" */
	const char *build_subdir;  /* where the build tree has it */
	bool serves_rump;          /* listens on a rump IPC socket */
	const char *refers_to;     /* "disk" / "fs": the key naming the
	                            * driver it is a client of, or NULL */
	enum rumpd_kind ref_kind;
};

extern const struct rumpd_kind_info rumpd_kinds[KIND_COUNT];

#define RUMPD_MAX_DEVICES 16
#define RUMPD_MAX_AFTER 8

/* A disk's cache mode (blk_file's cache=): default, O_DIRECT when the
 * image allows it. */
enum rumpd_cache {
	RUMPD_CACHE_DEFAULT,
	RUMPD_CACHE_NONE,
	RUMPD_CACHE_WRITEBACK,
};

/* A device a driver serves: an image or block device (disk), a NIC (net). */
struct rumpd_device {
	char name[RUMP_NAME_MAX];
	char source[PATH_MAX];     /* image path, "shm:BUS", "tap:IFNAME",
	                            * "packet:IFNAME" */
	bool read_only;
	enum rumpd_cache cache;    /* disks */
	int line;
};

#define RUMPD_MAX_NET_ADDRS 16
#define RUMPD_MAX_NET_ROUTES 16
/* Room for "ffff:...:ffff/128", and a route's "fe80::1%IFNAME". */
#define RUMPD_NET_TEXT 64

/* A net driver's address: rumpnet's --addr IF=ADDR/PREFIX. */
struct rumpd_net_addr {
	char ifname[RUMP_NAME_MAX];
	char addr[RUMPD_NET_TEXT]; /* "10.0.0.2/24", as checked */
	int line;
};

/* A net driver's route: rumpnet's --route DEST=GW. */
struct rumpd_net_route {
	char dest[RUMPD_NET_TEXT]; /* default, default4, default6, PREFIX */
	char gw[RUMPD_NET_TEXT];   /* an address, fe80::1%IF when link-local */
	int line;
};

struct rumpd_policy {
	unsigned tries;            /* deaths in a row before giving up */
	unsigned backoff_ms;       /* wait before the 2nd try; doubles */
	unsigned backoff_max_ms;
	unsigned healthy_ms;       /* up this long: the next death is news */
};

struct rumpd_driver_conf {
	char name[RUMP_NAME_MAX];
	int line;                  /* of its [section] */
	enum rumpd_kind kind;
	bool has_kind;
	char program[PATH_MAX];    /* "": the kind's, found like rumpd's */
	int program_line;
	struct rumpd_device devices[RUMPD_MAX_DEVICES];
	unsigned ndevices;
	char ref[RUMP_NAME_MAX];   /* disk = / fs =: the driver it uses */
	int ref_line;
	char device[RUMP_NAME_MAX];/* fs: the device it mounts */
	int device_line;
	char listen[PATH_MAX];     /* nbd: unix:PATH or tcp:HOST:PORT */
	int listen_line;
	char mount[PATH_MAX];      /* fuse: the mount point */
	int mount_line;
	struct rumpd_net_addr addrs[RUMPD_MAX_NET_ADDRS];   /* net */
	unsigned naddrs;
	struct rumpd_net_route routes[RUMPD_MAX_NET_ROUTES];/* net */
	unsigned nroutes;
	char after[RUMPD_MAX_AFTER][RUMP_NAME_MAX];
	int after_line[RUMPD_MAX_AFTER];
	unsigned nafter;
	struct rumpd_policy policy;
	bool confine;
	bool namespaces;
	unsigned max_files;
};

struct rumpd_config {
	char source[PATH_MAX];     /* the file, or "built-in default" */
	char user[64];             /* drivers run as this user (root only) */
	unsigned heartbeat_ms;     /* PING interval; 0: no heartbeat */
	unsigned heartbeat_timeout_ms;
	struct rumpd_driver_conf *drivers;
	unsigned ndrivers;
	/* Start order: indices into drivers, dependencies first. */
	unsigned *order;
	unsigned errors;
};

/*
 * Reads path into *cfg.  Every problem is printed as "FILE:LINE: ..." on
 * stderr; returns 0, or EINVAL after at least one such message, or an
 * errno if the file cannot be read.
 */
int rumpd_config_load(const char *path, struct rumpd_config *cfg);

/*
 * The built-in default: rumpnull, and each other driver whose program is
 * found, on a disk image in state_dir made on first run (a GPT with one
 * ext4 partition).  mount_dir is where the fuse gateway mounts.
 */
int rumpd_config_default(const char *state_dir, const char *mount_dir,
                         struct rumpd_config *cfg);

void rumpd_config_free(struct rumpd_config *cfg);

/* Building a configuration in code (the default): init, add drivers and
 * fill them in, finish (checks and orders them like a file's). */
void rumpd_config_init(struct rumpd_config *cfg, const char *source);
struct rumpd_driver_conf *rumpd_config_add(struct rumpd_config *cfg,
                                           const char *name,
                                           enum rumpd_kind kind);
int rumpd_config_finish(struct rumpd_config *cfg);

/* The driver called name, or NULL. */
struct rumpd_driver_conf *rumpd_config_find(const struct rumpd_config *cfg,
                                            const char *name);

/* "500ms", "2s", "1m" into milliseconds; EINVAL. */
int rumpd_parse_duration(const char *s, unsigned *ms);

#endif /* RUMPD_CONFIG_H */
