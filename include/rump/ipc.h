/*
 * The IPC transport's building blocks: message framing, descriptor passing,
 * the shared area's layout and the rings.  Used by the server framework
 * (rump/server.h) and the client library (rump/client.h); a port to another
 * host replaces this layer and rumpuser, nothing else.
 *
 * Functions return 0 or a positive errno value unless they say otherwise.
 * EPROTO always means "the peer broke the protocol: end the session".
 */
#ifndef RUMP_IPC_H
#define RUMP_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rump/proto.h"

/* ---- framing ---------------------------------------------------------- */

/*
 * Checks a received message of len bytes before any handler sees it:
 * length at least a header, at most RUMP_MSG_MAX, equal to hdr->length;
 * known version; no unknown flag bits; reserved zero; type in range;
 * status zero on a request.  Returns 0 or EPROTO.
 */
int rump_msg_check(const void *msg, size_t len);

/* Fills a header for a message with a body of body_len bytes. */
void rump_msg_init(struct rump_msg_hdr *hdr, uint16_t type, uint8_t flags,
                   uint64_t reqid, int32_t status, size_t body_len);

/*
 * Sends header + body as one SOCK_SEQPACKET record, with up to nfds
 * descriptors (SCM_RIGHTS).  EPIPE when the peer is gone.
 */
int rump_msg_send(int sock, const struct rump_msg_hdr *hdr, const void *body,
                  const int *fds, unsigned nfds);

/*
 * Receives one record into buf (cap bytes, at least RUMP_MSG_MAX) and checks
 * it with rump_msg_check().  Descriptors that came along are stored in
 * fds[0..*nfds) (the caller owns them); more than maxfds are closed and
 * make the message EPROTO.  *lenp is the record's length.
 * ECONNRESET when the peer has closed; EAGAIN with nonblock and nothing to
 * read; EPROTO on a malformed or truncated record.
 */
int rump_msg_recv(int sock, void *buf, size_t cap, size_t *lenp, int *fds,
                  unsigned maxfds, unsigned *nfds, bool nonblock);

/* HELLO bodies: encode and check (both ways). */
void rump_hello_encode(struct rump_hello *h, uint32_t service_kind,
                       const char *client_name);
int rump_hello_decode(const void *body, size_t len, struct rump_hello *out);
void rump_hello_reply_encode(struct rump_hello_reply *r, uint32_t kind,
                             uint64_t boot_id, const char *service_name);
int rump_hello_reply_decode(const void *body, size_t len,
                            struct rump_hello_reply *out);

/* ---- shared area ------------------------------------------------------ */

#define RUMP_RING_MAX_ENTRIES 4096u
#define RUMP_AREA_MAX_SIZE (1ull << 30)

struct rump_area_layout {
	uint32_t sq_entries, cq_entries;
	uint64_t sq_off;        /* struct rump_sqe[sq_entries] */
	uint64_t cq_off;        /* struct rump_cqe[cq_entries] */
	uint64_t buf_off;       /* page aligned */
	uint64_t buf_size;
	uint64_t total;         /* the memfd must be at least this large */
};

/* Computes the layout from a RING_SETUP body; EINVAL if the numbers are
 * not allowed (see struct rump_ring_setup). */
int rump_area_layout(const struct rump_ring_setup *setup,
                     struct rump_area_layout *out);

/* True if [off, off+len) lies inside the buffer area (overflow-safe). */
bool rump_area_buf_ok(const struct rump_area_layout *l, uint64_t off,
                      uint64_t len);

/* ---- rings ------------------------------------------------------------ */

/*
 * One side's view of a single-producer single-consumer ring whose indices
 * and entries sit in memory the other side can scribble on.  Each side keeps
 * its own copy of the index it owns and never reads it back from shared
 * memory; the peer's index is checked on every read (a peer that claims
 * more entries than the ring holds is EPROTO).  Entries are copied out
 * before the caller looks at them.
 */
struct rump_ring {
	struct rump_ring_idx *idx;
	unsigned char *entries;
	uint32_t mask;           /* entries - 1 */
	uint32_t entry_size;
	uint32_t own;            /* producer: tail; consumer: head */
	uint32_t peer_cache;     /* last checked value of the peer's index */
};

void rump_ring_init_producer(struct rump_ring *r, struct rump_ring_idx *idx,
                             void *entries, uint32_t nentries,
                             uint32_t entry_size);
void rump_ring_init_consumer(struct rump_ring *r, struct rump_ring_idx *idx,
                             void *entries, uint32_t nentries,
                             uint32_t entry_size);

/* Producer: free slots now (0 .. entries), or -EPROTO as a negative. */
int64_t rump_ring_space(struct rump_ring *r);
/* Producer: copies entry in; EAGAIN when full; EPROTO on a hostile head.
 * The entry is not visible until rump_ring_publish(). */
int rump_ring_push(struct rump_ring *r, const void *entry);
/* Producer: makes pushed entries visible; returns true if the consumer
 * asked to be woken (ring its doorbell). */
bool rump_ring_publish(struct rump_ring *r);

/* Consumer: entries ready (0 ..), or -EPROTO as a negative. */
int64_t rump_ring_ready(struct rump_ring *r);
/* Consumer: copies one entry out; EAGAIN when empty; EPROTO. */
int rump_ring_pop(struct rump_ring *r, void *entry);
/* Consumer: hands popped slots back to the producer. */
void rump_ring_release(struct rump_ring *r);
/*
 * Consumer, before sleeping: sets WAITING and re-checks; returns true if
 * entries arrived meanwhile (flag cleared again, do not sleep).
 */
bool rump_ring_prepare_wait(struct rump_ring *r);
void rump_ring_end_wait(struct rump_ring *r);

/* ---- sockets and names ------------------------------------------------ */

/* The runtime directory: $RUMPD_DIR, else /run/rumpd for root, else
 * $XDG_RUNTIME_DIR/rumpd, else /tmp/rumpd-$UID.  Writes at most cap bytes. */
int rump_runtime_dir(char *buf, size_t cap);
/* The socket path of service name: "<dir>/<name>.sock". */
int rump_service_path(const char *name, char *buf, size_t cap);

/* A listening SOCK_SEQPACKET socket at path, mode 0660 (a stale socket
 * file is replaced; a live one is EADDRINUSE). */
int rump_listen_unix(const char *path, int *fdp);
int rump_connect_unix(const char *path, int *fdp);

/* Spins for up to ns (adaptive polling before sleeping); the pause hint. */
static inline void rump_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

#endif /* RUMP_IPC_H */
