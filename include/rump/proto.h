/*
 * The rumpd IPC protocol: wire structures and constants shared by clients
 * and servers.  docs/protocol.md is the byte-level reference; this header
 * follows it.
 *
 * Peers are on one host, so integers are in the host's byte order.  Every
 * structure has a fixed size and explicit padding (checked below).
 */
#ifndef RUMP_PROTO_H
#define RUMP_PROTO_H

#include <assert.h>
#include <stdint.h>

#define RUMP_PROTO_VERSION 1

/* ---- control messages (SOCK_SEQPACKET) -------------------------------- */

#define RUMP_MSG_MAX (64u * 1024u) /* whole message, header included */

struct rump_msg_hdr {
	uint8_t version;        /* RUMP_PROTO_VERSION */
	uint8_t flags;          /* RUMP_MSGF_* */
	uint16_t type;          /* RUMP_MSG_* or a service's type */
	uint32_t length;        /* whole message, header included */
	uint64_t reqid;         /* chosen by the client, echoed in the reply */
	int32_t status;         /* replies: 0 or a positive errno; requests: 0 */
	uint32_t reserved;      /* 0 */
};
static_assert(sizeof(struct rump_msg_hdr) == 24, "wire size");

#define RUMP_MSGF_REPLY 0x01
#define RUMP_MSGF_ALL   RUMP_MSGF_REPLY

enum rump_msg_type {
	RUMP_MSG_HELLO = 1,       /* first message of a session */
	RUMP_MSG_RING_SETUP = 2,  /* carries memfd + two eventfds */
	RUMP_MSG_BYE = 3,         /* orderly end of the session */
	RUMP_MSG_SERVICE = 0x100, /* first type a service may define */
	RUMP_MSG_TYPE_MAX = 0x1ff,
};

enum rump_service_kind {
	RUMP_SERVICE_ANY = 0,     /* in HELLO: whatever the socket serves */
	RUMP_SERVICE_NULL = 1,
	RUMP_SERVICE_DISK = 2,
	RUMP_SERVICE_FS = 3,
	RUMP_SERVICE_NET = 4,
};

#define RUMP_NAME_MAX 32 /* NUL-padded names in messages */

struct rump_hello {
	uint32_t proto_version;   /* RUMP_PROTO_VERSION */
	uint32_t service_kind;    /* what the client wants, or RUMP_SERVICE_ANY */
	uint32_t flags;           /* 0 */
	uint32_t reserved;        /* 0 */
	char client_name[RUMP_NAME_MAX];
};
static_assert(sizeof(struct rump_hello) == 48, "wire size");

struct rump_hello_reply {
	uint32_t proto_version;
	uint32_t service_kind;
	uint64_t boot_id;         /* random, new at every server start */
	uint32_t max_msg;         /* RUMP_MSG_MAX */
	uint32_t max_ring_entries;
	uint64_t max_area_size;   /* largest shared area the server maps */
	char service_name[RUMP_NAME_MAX];
};
static_assert(sizeof(struct rump_hello_reply) == 64, "wire size");

/* ---- shared-memory rings ---------------------------------------------- */

/*
 * RING_SETUP passes, with SCM_RIGHTS, three descriptors in this order: the
 * memfd holding the shared area, the submission doorbell (eventfd the
 * client writes to wake the server) and the completion doorbell (eventfd
 * the server writes to wake the client).  The layout of the area follows
 * from the three numbers below (rump_area_layout()); the server checks the
 * memfd is at least that large.
 */
struct rump_ring_setup {
	uint32_t sq_entries;      /* power of 2, 2 .. max_ring_entries */
	uint32_t cq_entries;      /* power of 2, >= sq_entries */
	uint64_t buf_size;        /* bytes of buffer area, multiple of 4096 */
};
static_assert(sizeof(struct rump_ring_setup) == 16, "wire size");

/*
 * One ring's indices.  head is written only by the consumer, tail only by
 * the producer; both run free (mod 2^32), entry i lives at i & (entries-1).
 * flags is written only by the consumer: RUMP_RINGF_WAITING means it is
 * about to sleep on the doorbell, so the producer must ring it.
 * Each field has a cache line of its own.
 */
struct rump_ring_idx {
	uint32_t head;
	uint8_t pad0[60];
	uint32_t tail;
	uint8_t pad1[60];
	uint32_t flags;
	uint8_t pad2[60];
};
static_assert(sizeof(struct rump_ring_idx) == 192, "wire size");

#define RUMP_RINGF_WAITING 0x1

/* The area starts with this; entries and buffers follow (see layout). */
struct rump_area_hdr {
	struct rump_ring_idx sq;
	struct rump_ring_idx cq;
};

/* Submission entry: one request. */
struct rump_sqe {
	uint16_t opcode;          /* service-defined */
	uint16_t flags;           /* service-defined */
	uint32_t len;             /* bytes at buf */
	uint64_t user_data;       /* echoed in the completion */
	uint64_t handle;          /* the open object, service-defined */
	uint64_t offset;          /* position in the object */
	uint64_t buf;             /* offset of the data in the buffer area */
	uint64_t arg[3];          /* service-defined */
};
static_assert(sizeof(struct rump_sqe) == 64, "wire size");

/* Completion entry. */
struct rump_cqe {
	uint64_t user_data;
	int64_t result;           /* >= 0: success (often bytes); < 0: -errno */
	uint64_t aux;             /* service-defined */
	uint64_t reserved;
};
static_assert(sizeof(struct rump_cqe) == 32, "wire size");

/* ---- the null service -------------------------------------------------- */

/* Control calls */
enum rump_null_msg {
	RUMP_NULL_MSG_NULL = RUMP_MSG_SERVICE,  /* empty body both ways */
	RUMP_NULL_MSG_ECHO,                     /* reply body = request body */
	RUMP_NULL_MSG_SLEEP,                    /* body: uint64_t ns */
};

/* Ring requests */
enum rump_null_op {
	RUMP_NULL_OP_NULL = 1,    /* result 0 */
	RUMP_NULL_OP_ECHO = 2,    /* copies len bytes from buf to arg[0];
	                           * result len, aux = FNV-1a 64 of the bytes */
	RUMP_NULL_OP_SLEEP = 3,   /* completes after arg[0] ns; result 0 */
};

/* ---- the disk service (rumpdisk) -------------------------------------- */

/*
 * After Mach's device interface: devices are listed and opened by name
 * (wd0, wd0s1); an open device is a handle that ring requests name.
 * Offsets and lengths are bytes, 64-bit; I/O must be aligned to the
 * device's sector size and stay inside the device.
 */
enum rump_disk_msg {
	RUMP_DISK_MSG_LIST = RUMP_MSG_SERVICE, /* reply: rump_disk_info[] */
	RUMP_DISK_MSG_OPEN,       /* rump_disk_open -> rump_disk_open_reply */
	RUMP_DISK_MSG_CLOSE,      /* uint64_t handle -> empty */
	RUMP_DISK_MSG_STATUS,     /* name[RUMP_NAME_MAX] -> rump_disk_info */
};

#define RUMP_DISK_OPEN_READ  0x1
#define RUMP_DISK_OPEN_WRITE 0x2 /* one writer, or any number of readers */

struct rump_disk_open {
	char name[RUMP_NAME_MAX];
	uint32_t mode;            /* RUMP_DISK_OPEN_* */
	uint32_t reserved;        /* 0 */
};

#define RUMP_DISK_INFO_READ_ONLY 0x1
#define RUMP_DISK_INFO_PARTITION 0x2

enum rump_disk_scheme { RUMP_DISK_SCHEME_NONE, RUMP_DISK_SCHEME_MBR,
                        RUMP_DISK_SCHEME_GPT };

struct rump_disk_info {
	char name[RUMP_NAME_MAX];
	char parent[RUMP_NAME_MAX]; /* "" for a whole disk */
	uint64_t size;            /* bytes */
	uint32_t sector_size;     /* bytes; I/O alignment */
	uint32_t flags;           /* RUMP_DISK_INFO_* */
	uint64_t part_start;      /* bytes from the start of the parent */
	uint32_t part_index;      /* wd0s<index> */
	uint8_t scheme;           /* enum rump_disk_scheme */
	uint8_t mbr_type;
	uint16_t reserved;
	uint8_t gpt_type[16];
	uint8_t gpt_guid[16];
	char label[72];           /* GPT partition name, UTF-8 */
};
static_assert(sizeof(struct rump_disk_info) == 200, "wire size");

struct rump_disk_open_reply {
	uint64_t handle;
	struct rump_disk_info info;
};

/* Ring requests: handle, offset, len, buf as in struct rump_sqe. */
enum rump_disk_op {
	RUMP_DISK_OP_READ = 1,    /* result: bytes read into buf */
	RUMP_DISK_OP_WRITE = 2,   /* result: bytes written from buf */
	RUMP_DISK_OP_FLUSH = 3,   /* result 0 once earlier writes are stable */
	RUMP_DISK_OP_DISCARD = 4, /* the range may read back as anything */
	RUMP_DISK_OP_WRITE_ZEROES = 5, /* the range reads back as zeroes */
	RUMP_DISK_OP_BLOCK_STATUS = 6, /* buf gets rump_disk_extent[], at most
	                                * len bytes of them; result: count */
};

#define RUMP_DISK_F_FUA 0x1 /* sqe.flags on WRITE: stable before done */

#define RUMP_DISK_EXTENT_HOLE 0x1 /* not allocated */
#define RUMP_DISK_EXTENT_ZERO 0x2 /* reads as zeroes */

struct rump_disk_extent {
	uint64_t length;
	uint32_t flags;           /* RUMP_DISK_EXTENT_* */
	uint32_t reserved;
};
static_assert(sizeof(struct rump_disk_extent) == 16, "wire size");

#endif /* RUMP_PROTO_H */
