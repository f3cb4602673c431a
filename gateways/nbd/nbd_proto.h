/*
 * The NBD protocol engine: wire constants, option negotiation and
 * transmission-phase parsing and reply encoding.
 *
 * Everything here is a pure function over buffers (plus the export
 * callbacks the caller hands in), so the fuzzer can drive it without
 * sockets, threads or a backend.  Numbers on the wire are big-endian.
 */
#ifndef NBD_PROTO_H
#define NBD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- wire constants (the NBD protocol document) ----------------------- */

#define NBD_MAGIC              0x4e42444d41474943ull /* "NBDMAGIC" */
#define NBD_OPTS_MAGIC         0x49484156454f5054ull /* "IHAVEOPT" */
#define NBD_REP_MAGIC          0x0003e889045565a9ull
#define NBD_REQUEST_MAGIC      0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698u
#define NBD_STRUCTURED_REPLY_MAGIC 0x668e33efu

/* handshake flags (server) and client flags */
#define NBD_FLAG_FIXED_NEWSTYLE   (1u << 0)
#define NBD_FLAG_NO_ZEROES        (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES      (1u << 1)

/* transmission flags */
#define NBD_FLAG_HAS_FLAGS         (1u << 0)
#define NBD_FLAG_READ_ONLY         (1u << 1)
#define NBD_FLAG_SEND_FLUSH        (1u << 2)
#define NBD_FLAG_SEND_FUA          (1u << 3)
#define NBD_FLAG_ROTATIONAL        (1u << 4)
#define NBD_FLAG_SEND_TRIM         (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF           (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN    (1u << 8)

/* options */
#define NBD_OPT_EXPORT_NAME       1
#define NBD_OPT_ABORT             2
#define NBD_OPT_LIST              3
#define NBD_OPT_STARTTLS          5
#define NBD_OPT_INFO              6
#define NBD_OPT_GO                7
#define NBD_OPT_STRUCTURED_REPLY  8
#define NBD_OPT_LIST_META_CONTEXT 9
#define NBD_OPT_SET_META_CONTEXT  10

/* option replies */
#define NBD_REP_ACK              1u
#define NBD_REP_SERVER           2u
#define NBD_REP_INFO             3u
#define NBD_REP_META_CONTEXT     4u
#define NBD_REP_ERR_UNSUP        (0x80000000u | 1)
#define NBD_REP_ERR_POLICY       (0x80000000u | 2)
#define NBD_REP_ERR_INVALID      (0x80000000u | 3)
#define NBD_REP_ERR_UNKNOWN      (0x80000000u | 6)
#define NBD_REP_ERR_SHUTDOWN     (0x80000000u | 7)
#define NBD_REP_ERR_TOO_BIG      (0x80000000u | 9)

/* NBD_REP_INFO types */
#define NBD_INFO_EXPORT      0
#define NBD_INFO_NAME        1
#define NBD_INFO_DESCRIPTION 2
#define NBD_INFO_BLOCK_SIZE  3

/* commands and their flags */
#define NBD_CMD_READ         0
#define NBD_CMD_WRITE        1
#define NBD_CMD_DISC         2
#define NBD_CMD_FLUSH        3
#define NBD_CMD_TRIM         4
#define NBD_CMD_WRITE_ZEROES 6
#define NBD_CMD_BLOCK_STATUS 7

#define NBD_CMD_FLAG_FUA     (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE (1u << 1)
#define NBD_CMD_FLAG_DF      (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE (1u << 3)

/* structured reply chunks */
#define NBD_REPLY_FLAG_DONE          (1u << 0)
#define NBD_REPLY_TYPE_NONE          0
#define NBD_REPLY_TYPE_OFFSET_DATA   1
#define NBD_REPLY_TYPE_BLOCK_STATUS  5
#define NBD_REPLY_TYPE_ERROR         ((1u << 15) | 1)

/* base:allocation flags */
#define NBD_STATE_HOLE (1u << 0)
#define NBD_STATE_ZERO (1u << 1)

/* errors on the wire (fixed numbers, not the host's errno values) */
#define NBD_EPERM     1
#define NBD_EIO       5
#define NBD_ENOMEM    12
#define NBD_EINVAL    22
#define NBD_ENOSPC    28
#define NBD_EOVERFLOW 75
#define NBD_ENOTSUP   95
#define NBD_ESHUTDOWN 108

/* ---- our limits ------------------------------------------------------- */

#define NBD_GREETING_LEN     18   /* magic, IHAVEOPT, handshake flags */
#define NBD_OPT_HDR_LEN      16
#define NBD_REQUEST_LEN      28
#define NBD_SIMPLE_REPLY_LEN 16
#define NBD_CHUNK_HDR_LEN    20
#define NBD_MAX_PAYLOAD      (32u << 20)
#define NBD_PREF_BLOCK       4096u
#define NBD_STRING_MAX       4096u  /* the protocol's cap on any string */
#define NBD_OPT_DATA_MAX     (64u << 10) /* longer options: ERR_TOO_BIG */
#define NBD_EXPORT_NAME_MAX  64     /* device names are far shorter */
#define NBD_META_ID_BASE_ALLOCATION 1u

/* ---- negotiation ------------------------------------------------------ */

/* What the negotiation needs to know about an export. */
struct nbd_export_desc {
	char name[NBD_EXPORT_NAME_MAX]; /* canonical: "" resolves to a name */
	uint64_t size;
	uint32_t block_size;            /* the device's sector size */
	bool read_only;
	bool multi_conn;                /* flushes visible across connections */
};

/*
 * The caller's view of the exports.  Each returns 0, ENOENT for an unknown
 * name, or another errno (reported to the client as a failed option).
 */
struct nbd_export_ops {
	/* Calls fn for every export name; stops at fn's first non-zero. */
	int (*list)(void *ctx, int (*fn)(void *arg, const char *name),
	            void *arg);
	/* Describes the export called name ("" is the default one). */
	int (*lookup)(void *ctx, const char *name, struct nbd_export_desc *d);
	/* Like lookup, and opens the export for the transmission phase. */
	int (*open)(void *ctx, const char *name, struct nbd_export_desc *d);
};

/* Negotiation state of one connection. */
struct nbd_neg {
	uint32_t client_flags;
	bool structured;                /* NBD_OPT_STRUCTURED_REPLY acked */
	bool meta_base_allocation;      /* base:allocation selected ... */
	char meta_export[NBD_EXPORT_NAME_MAX]; /* ... for this export */
	struct nbd_export_desc export;  /* after NBD_NEG_TRANSMIT */
	uint16_t tx_flags;              /* after NBD_NEG_TRANSMIT */
};

/* Bytes to send back; a bounded buffer that notes when it ran out. */
struct nbd_obuf {
	uint8_t *p;
	size_t len, cap;
	bool overflow;
};

enum nbd_neg_action {
	NBD_NEG_CONTINUE,   /* send out, read the next option */
	NBD_NEG_TRANSMIT,   /* send out, enter the transmission phase */
	NBD_NEG_CLOSE,      /* send out, then end the connection */
};

/* The server's greeting: NBD_GREETING_LEN bytes. */
void nbd_greeting(uint8_t out[NBD_GREETING_LEN]);

/*
 * The client's 32-bit flags.  0, or EPROTO for a client that is not fixed
 * newstyle or sets bits we did not offer (the caller hangs up).
 */
int nbd_client_flags(struct nbd_neg *neg, const uint8_t in[4]);

/* An option header: 0, or EPROTO on a bad magic. */
int nbd_option_header(const uint8_t in[NBD_OPT_HDR_LEN], uint32_t *opt,
                      uint32_t *len);

/*
 * One option with its data.  Appends the reply to out and says what the
 * connection does next.  data was read in full (len <= NBD_OPT_DATA_MAX);
 * for longer options the caller discards the data and sends
 * nbd_option_too_big() instead.
 */
enum nbd_neg_action nbd_option(struct nbd_neg *neg,
                               const struct nbd_export_ops *ops, void *ctx,
                               uint32_t opt, const uint8_t *data,
                               uint32_t len, struct nbd_obuf *out);
void nbd_option_too_big(uint32_t opt, struct nbd_obuf *out);

/* The transmission flags for an export under this negotiation. */
uint16_t nbd_tx_flags(const struct nbd_neg *neg,
                      const struct nbd_export_desc *d);

/* ---- transmission ----------------------------------------------------- */

struct nbd_request {
	uint16_t flags;
	uint16_t type;
	uint64_t cookie;
	uint64_t offset;
	uint32_t len;
};

/* What the requests are checked against. */
struct nbd_tx_params {
	uint64_t size;
	uint32_t block_size;      /* offsets and lengths are multiples */
	bool read_only;
	bool structured;
	bool meta;                /* base:allocation selected */
};

/* Decodes a request header; 0, or EPROTO on a bad magic. */
int nbd_request_decode(const uint8_t in[NBD_REQUEST_LEN],
                       struct nbd_request *rq);

#define NBD_CHECK_FATAL (-1)

/*
 * Validates a decoded request once, at the edge.  *payload gets the
 * number of bytes that follow its header on the wire (they must be read,
 * or skipped, whatever the verdict).  Returns 0 when the request may run,
 * an NBD_E* error to reply with, or NBD_CHECK_FATAL when the stream cannot
 * be trusted any more (the caller hangs up).
 */
int nbd_request_check(const struct nbd_tx_params *p,
                      const struct nbd_request *rq, uint32_t *payload);

/* The NBD error for a host errno value (EIO for the unknown ones). */
uint32_t nbd_errno(int err);

/* Reply headers; each returns its length. */
size_t nbd_simple_reply(uint8_t out[NBD_SIMPLE_REPLY_LEN], uint64_t cookie,
                        uint32_t error);
size_t nbd_chunk_header(uint8_t out[NBD_CHUNK_HDR_LEN], uint16_t flags,
                        uint16_t type, uint64_t cookie, uint32_t len);
/* An OFFSET_DATA chunk's header and offset (28 bytes); data follows. */
#define NBD_READ_CHUNK_LEN (NBD_CHUNK_HDR_LEN + 8)
size_t nbd_read_chunk(uint8_t out[NBD_READ_CHUNK_LEN], uint64_t cookie,
                      uint64_t offset, uint32_t len);
/* A final ERROR chunk without a message (26 bytes). */
#define NBD_ERROR_CHUNK_LEN (NBD_CHUNK_HDR_LEN + 6)
size_t nbd_error_chunk(uint8_t out[NBD_ERROR_CHUNK_LEN], uint64_t cookie,
                       uint32_t error);
/* A final BLOCK_STATUS chunk's header and context id (24 bytes);
 * ndesc descriptors of 8 bytes follow. */
#define NBD_BS_CHUNK_LEN (NBD_CHUNK_HDR_LEN + 4)
size_t nbd_block_status_chunk(uint8_t out[NBD_BS_CHUNK_LEN],
                              uint64_t cookie, uint32_t ndesc);

/* An extent as backends report it (same layout as rump_disk_extent). */
struct nbd_extent {
	uint64_t length;
	uint32_t flags;           /* NBD_STATE_HOLE | NBD_STATE_ZERO */
	uint32_t reserved;
};

/*
 * Turns n backend extents in buf into NBD block status descriptors, in
 * place (a descriptor is half an extent): empty extents are dropped,
 * neighbours with equal flags merged, the total clipped to len, and with
 * one_only a single descriptor kept.  Returns the number of descriptors
 * (at least 1: no extents at all read as one allocated extent of len).
 * buf must have room for one extent even when n is 0.
 */
uint32_t nbd_extents_encode(void *buf, uint32_t n, uint32_t len,
                            bool one_only);

#endif /* NBD_PROTO_H */
