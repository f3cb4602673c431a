/*
 * The ext4 journal (jbd2), as the ext4 disk layout documentation
 * describes it: written by fs_ext2 at each commit, replayed at mount.
 *
 * The log lives in the blocks of the journal inode.  Its first block
 * holds the journal superblock (big-endian, like every jbd2 structure);
 * the log proper is the circle [s_first, s_maxlen).  A transaction is
 * descriptor blocks, each followed by the images of the blocks its tags
 * name, then a commit block; revoke blocks say "do not replay this block
 * from transactions up to mine".  s_start (0: empty) and s_sequence say
 * where the oldest transaction still needed begins and which sequence
 * number it carries.
 *
 * Writing: fs_ext2 checkpoints every transaction before it starts the
 * next (fs_io.c), so the log never holds more than one, which we write at
 * s_first.  That is also why we write no revoke blocks: a block freed in
 * a transaction is left out of it (its content no longer matters), and it
 * can be reused only after that transaction has been checkpointed and the
 * log moved past it; nothing older is ever replayed over it.  Replay
 * honours the revoke blocks of journals others wrote (the kernel's).
 *
 * Errors: 0 or a positive errno; mount-time failures also say why in one
 * line.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rump/rumpuser.h"

#include "fs_int.h"

#define JBD2_MAGIC 0xc03b3998u
enum {
	JBD2_DESCRIPTOR = 1,
	JBD2_COMMIT = 2,
	JBD2_SUPER_V1 = 3,
	JBD2_SUPER_V2 = 4,
	JBD2_REVOKE = 5,
};
#define JBD2_COMPAT_CHECKSUM 0x1u
#define JBD2_INCOMPAT_REVOKE 0x1u
#define JBD2_INCOMPAT_64BIT 0x2u
#define JBD2_INCOMPAT_ASYNC_COMMIT 0x4u
#define JBD2_INCOMPAT_CSUM_V2 0x8u
#define JBD2_INCOMPAT_CSUM_V3 0x10u
#define JBD2_INCOMPAT_FAST_COMMIT 0x20u
#define JBD2_INCOMPAT_KNOWN (JBD2_INCOMPAT_REVOKE | JBD2_INCOMPAT_64BIT |   \
	JBD2_INCOMPAT_ASYNC_COMMIT | JBD2_INCOMPAT_CSUM_V2 |                 \
	JBD2_INCOMPAT_CSUM_V3)
#define JBD2_CRC32C 4

#define TAG_ESCAPE 0x1u
#define TAG_SAME_UUID 0x2u
#define TAG_LAST 0x8u

/* Offsets in the journal superblock. */
enum {
	JSB_BLOCKSIZE = 0x0c,
	JSB_MAXLEN = 0x10,
	JSB_FIRST = 0x14,
	JSB_SEQUENCE = 0x18,
	JSB_START = 0x1c,
	JSB_ERRNO = 0x20,
	JSB_COMPAT = 0x24,
	JSB_INCOMPAT = 0x28,
	JSB_RO_COMPAT = 0x2c,
	JSB_UUID = 0x30,
	JSB_CSUM_TYPE = 0x50,
	JSB_CHECKSUM = 0xfc,
	JSB_SIZE = 1024,
};
/* Offsets in a commit block. */
enum {
	/* h_chksum_type and _size (12, 13) stay 0 with checksum v2/v3. */
	COMMIT_CSUM = 16,
	COMMIT_SEC = 48,
	COMMIT_NSEC = 56,
};
#define HDR_SIZE 12
#define REVOKE_HDR 16           /* header and r_count */
#define TAIL_SIZE 4             /* descriptor/revoke checksum (v2, v3) */
#define UUID_SIZE 16
#define WRITE_MAX (1u << 20)    /* bytes a log write gathers */

/* A run of journal blocks [lblk, lblk+len) at pblk on the disk. */
struct jrun {
	uint32_t lblk;
	uint32_t len;
	uint64_t pblk;
};

struct fs_journal {
	const struct fs_ext2_backend *be;
	unsigned bs;
	uint64_t fs_blocks;
	uint32_t maxlen, first, start;
	uint32_t seq;                   /* the next transaction's */
	uint32_t incompat;
	bool csum;                      /* v2 or v3 */
	bool v3, is64;
	uint32_t seed;                  /* crc32c of the journal's uuid */
	unsigned tag_bytes;
	struct jrun *runs;
	unsigned nruns, runs_cap;
	unsigned char *sb;              /* the journal's block 0 */
	unsigned char *blk;             /* one block of scratch */
	unsigned char *gather;          /* WRITE_MAX bytes of log to write */
	uint32_t gather_at;             /* journal block of gather[0] */
	unsigned gathered;              /* blocks in gather */
};

static void
say(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (cap == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
}

static uint32_t
get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint16_t
get_be16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void
put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void
put_be16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void
put_be64(unsigned char *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static uint32_t
crc(uint32_t seed, const void *p, size_t len)
{
	return ext2fs_crc32c_le(seed, p, len);
}

/* Checksum of len bytes whose 4 at off (the checksum) read as zero. */
static uint32_t
zeroed_csum(uint32_t seed, const unsigned char *b, size_t len, size_t off)
{
	static const unsigned char zero[4];
	uint32_t c = crc(seed, b, off);

	c = crc(c, zero, 4);
	return crc(c, b + off + 4, len - off - 4);
}

static uint32_t
block_csum(const struct fs_journal *j, const unsigned char *b, size_t off)
{
	return zeroed_csum(j->seed, b, j->bs, off);
}

static uint32_t
tag_csum(const struct fs_journal *j, uint32_t seq, const unsigned char *b)
{
	unsigned char s[4];

	put_be32(s, seq);
	return crc(crc(j->seed, s, 4), b, j->bs);
}

static uint32_t
next_blk(const struct fs_journal *j, uint32_t b)
{
	return b + 1 >= j->maxlen ? j->first : b + 1;
}

/* The disk block of journal block lblk (which is < maxlen). */
static uint64_t
phys(const struct fs_journal *j, uint32_t lblk)
{
	unsigned lo = 0, hi = j->nruns, mid;

	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (j->runs[mid].lblk <= lblk)
			lo = mid;
		else
			hi = mid;
	}
	return j->runs[lo].pblk + (lblk - j->runs[lo].lblk);
}

static int
jread(struct fs_journal *j, uint32_t lblk, void *buf)
{
	return j->be->read(j->be->ctx, phys(j, lblk) * j->bs, buf, j->bs);
}

/* ---- opening ----------------------------------------------------------- */

struct map_ctx {
	struct fs_journal *j;
	uint32_t want;                  /* the next logical block */
	int error;
};

static int
map_block(ext2_filsys fs, blk64_t *pblk, e2_blkcnt_t lblk, blk64_t ref,
          int ref_off, void *arg)
{
	struct map_ctx *c = arg;
	struct fs_journal *j = c->j;
	struct jrun *r, *grown;

	(void)fs;
	(void)ref;
	(void)ref_off;
	if (lblk < 0)
		return 0;
	if ((uint64_t)lblk != c->want || *pblk == 0 ||
	    *pblk >= j->fs_blocks) {
		c->error = EIO;         /* a hole, or out of the fs */
		return BLOCK_ABORT;
	}
	c->want++;
	r = j->nruns ? &j->runs[j->nruns - 1] : NULL;
	if (r != NULL && r->pblk + r->len == *pblk) {
		r->len++;
	} else {
		if (j->nruns == j->runs_cap) {
			unsigned cap = j->runs_cap ? j->runs_cap * 2 : 8;

			if ((c->error = rumpuser_malloc(sizeof(*grown) * cap,
			                                0, (void **)&grown)))
				return BLOCK_ABORT;
			if (j->nruns)
				memcpy(grown, j->runs,
				       sizeof(*grown) * j->nruns);
			rumpuser_free(j->runs, 0);
			j->runs = grown;
			j->runs_cap = cap;
		}
		j->runs[j->nruns++] = (struct jrun){
			.lblk = (uint32_t)lblk, .len = 1, .pblk = *pblk };
	}
	return c->want == j->maxlen ? BLOCK_ABORT : 0;
}

static void
derive_features(struct fs_journal *j)
{
	j->v3 = j->incompat & JBD2_INCOMPAT_CSUM_V3;
	j->csum = j->v3 || (j->incompat & JBD2_INCOMPAT_CSUM_V2);
	j->is64 = j->incompat & JBD2_INCOMPAT_64BIT;
	if (j->v3)
		j->tag_bytes = 16;
	else
		j->tag_bytes = 12 + (j->csum ? 2 : 0) - (j->is64 ? 0 : 4);
	j->seed = crc(~0u, j->sb + JSB_UUID, UUID_SIZE);
}

/* The journal superblock in j->sb: checked, and its facts in j. */
static int
parse_super(struct fs_journal *j, char *why, size_t cap)
{
	const unsigned char *s = j->sb;
	uint32_t type = get_be32(s + 4);

	if (get_be32(s) != JBD2_MAGIC ||
	    (type != JBD2_SUPER_V1 && type != JBD2_SUPER_V2)) {
		say(why, cap, "the journal superblock is damaged (bad magic)");
		return EIO;
	}
	if (get_be32(s + JSB_BLOCKSIZE) != j->bs) {
		say(why, cap, "the journal's block size %" PRIu32 " is not "
		    "the file system's", get_be32(s + JSB_BLOCKSIZE));
		return EIO;
	}
	j->maxlen = get_be32(s + JSB_MAXLEN);
	j->first = get_be32(s + JSB_FIRST);
	j->start = get_be32(s + JSB_START);
	j->seq = get_be32(s + JSB_SEQUENCE);
	j->incompat = type == JBD2_SUPER_V2 ? get_be32(s + JSB_INCOMPAT) : 0;
	if (j->first == 0 || j->first >= j->maxlen ||
	    j->maxlen - j->first < 4 ||
	    (j->start != 0 &&
	     (j->start < j->first || j->start >= j->maxlen))) {
		say(why, cap, "the journal superblock is damaged (first %"
		    PRIu32 ", start %" PRIu32 ", length %" PRIu32 ")",
		    j->first, j->start, j->maxlen);
		return EIO;
	}
	if (j->incompat & ~JBD2_INCOMPAT_KNOWN) {
		say(why, cap, "the journal has features 0x%" PRIx32 " (fast "
		    "commits or newer) that rumpfs cannot replay or write; run "
		    "e2fsck", j->incompat & ~JBD2_INCOMPAT_KNOWN);
		return EOPNOTSUPP;
	}
	derive_features(j);
	if (j->csum) {
		if (s[JSB_CSUM_TYPE] != JBD2_CRC32C) {
			say(why, cap, "the journal's checksum type %u is not "
			    "crc32c", s[JSB_CSUM_TYPE]);
			return EIO;
		}
		if (zeroed_csum(~0u, s, JSB_SIZE, JSB_CHECKSUM) !=
		    get_be32(s + JSB_CHECKSUM)) {
			say(why, cap, "the journal superblock's checksum is "
			    "wrong");
			return EIO;
		}
	}
	return 0;
}

int
fs_journal_open(ext2_filsys fs, const struct fs_ext2_backend *be,
                struct fs_journal **jp, char *why, size_t cap)
{
	struct ext2_super_block *es = fs->super;
	struct fs_journal *j;
	struct map_ctx mc;
	errcode_t ec;
	int error;

	*jp = NULL;
	if (es->s_journal_inum == 0) {
		say(why, cap, "the journal is on another device; rumpfs only "
		    "handles internal journals");
		return EOPNOTSUPP;
	}
	if ((error = rumpuser_malloc(sizeof(*j), 0, (void **)&j)) != 0) {
		say(why, cap, "out of memory");
		return error;
	}
	memset(j, 0, sizeof(*j));
	j->be = be;
	j->bs = fs->blocksize;
	j->fs_blocks = ext2fs_blocks_count(es);
	if ((error = rumpuser_malloc(j->bs, 4096, (void **)&j->sb)) != 0 ||
	    (error = rumpuser_malloc(j->bs, 4096, (void **)&j->blk)) != 0 ||
	    (error = rumpuser_malloc(WRITE_MAX > j->bs ? WRITE_MAX : j->bs,
	                             4096, (void **)&j->gather)) != 0) {
		say(why, cap, "out of memory");
		goto fail;
	}
	/* The superblock first: its length bounds the mapping. */
	j->maxlen = 1;
	mc = (struct map_ctx){ .j = j };
	ec = ext2fs_block_iterate3(fs, es->s_journal_inum,
	                           BLOCK_FLAG_READ_ONLY | BLOCK_FLAG_DATA_ONLY,
	                           NULL, map_block, &mc);
	if (ec || mc.error || j->nruns == 0) {
		say(why, cap, "cannot map the journal inode %u: %s",
		    es->s_journal_inum, ec ? error_message(ec)
		                          : "a hole or a bad block");
		error = EIO;
		goto fail;
	}
	if ((error = jread(j, 0, j->sb)) != 0) {
		say(why, cap, "cannot read the journal superblock: %s",
		    strerror(error));
		goto fail;
	}
	if ((error = parse_super(j, why, cap)) != 0)
		goto fail;
	j->nruns = 0;
	mc = (struct map_ctx){ .j = j };
	ec = ext2fs_block_iterate3(fs, es->s_journal_inum,
	                           BLOCK_FLAG_READ_ONLY | BLOCK_FLAG_DATA_ONLY,
	                           NULL, map_block, &mc);
	if (ec || mc.error || mc.want != j->maxlen) {
		say(why, cap, "the journal inode %u does not map all %" PRIu32
		    " blocks of its log", es->s_journal_inum, j->maxlen);
		error = EIO;
		goto fail;
	}
	if (!j->is64 && j->fs_blocks > UINT32_MAX) {
		say(why, cap, "the journal lacks the 64bit feature the file "
		    "system needs");
		error = EOPNOTSUPP;
		goto fail;
	}
	*jp = j;
	return 0;

fail:
	fs_journal_close(j);
	return error;
}

void
fs_journal_close(struct fs_journal *j)
{
	if (j == NULL)
		return;
	rumpuser_free(j->runs, 0);
	rumpuser_free(j->sb, 0);
	rumpuser_free(j->blk, 0);
	rumpuser_free(j->gather, 0);
	rumpuser_free(j, sizeof(*j));
}

bool
fs_journal_needs_recovery(const struct fs_journal *j)
{
	return j->start != 0;
}

int
fs_journal_check_rw(const struct fs_journal *j, char *why, size_t cap)
{
	uint32_t err = get_be32(j->sb + JSB_ERRNO);

	if (err != 0) {
		say(why, cap, "the journal was aborted (error %" PRId32 "); "
		    "run e2fsck", (int32_t)err);
		return EROFS;
	}
	if (j->incompat & JBD2_INCOMPAT_ASYNC_COMMIT) {
		say(why, cap, "the journal asks for asynchronous commits "
		    "(checksum v1), which rumpfs does not write; run tune2fs "
		    "or mount with --ro");
		return EROFS;
	}
	if (get_be32(j->sb + JSB_COMPAT) & JBD2_COMPAT_CHECKSUM) {
		say(why, cap, "the journal uses checksum v1, which rumpfs "
		    "does not write; mount with --ro");
		return EROFS;
	}
	return 0;
}

/* ---- recovery ---------------------------------------------------------- */

#define REVOKED_MAX (1u << 22)

struct revoked {
	uint64_t blk;
	uint32_t seq;
};

struct recovery {
	struct fs_journal *j;
	uint32_t end_seq;               /* first sequence not replayed */
	struct revoked *rv;
	size_t nrv, rv_cap;
	char *why;
	size_t cap;
};

/* A tag parsed out of a descriptor block. */
struct tag {
	uint64_t blk;
	uint32_t flags;
	uint32_t csum;
};

/*
 * The tags of descriptor block d, one at a time: *pos is the offset of
 * the next (start at HDR_SIZE); 1 with *t filled, 0 after the last, -1
 * if the block is malformed.
 */
static int
next_tag(const struct fs_journal *j, const unsigned char *d, size_t *pos,
         struct tag *t)
{
	size_t end = j->bs - (j->csum ? TAIL_SIZE : 0), p = *pos;

	if (p == 0)                     /* after the last tag */
		return 0;
	if (p + j->tag_bytes > end)
		return p == HDR_SIZE ? -1 : 0;
	t->blk = get_be32(d + p);
	if (j->v3) {
		t->flags = get_be32(d + p + 4);
		if (j->is64)
			t->blk |= (uint64_t)get_be32(d + p + 8) << 32;
		t->csum = get_be32(d + p + 12);
	} else {
		t->flags = get_be16(d + p + 6);
		t->csum = j->csum ? get_be16(d + p + 4) : 0;
		if (j->is64)
			t->blk |= (uint64_t)get_be32(d + p + 8) << 32;
	}
	p += j->tag_bytes;
	if (!(t->flags & TAG_SAME_UUID))
		p += UUID_SIZE;
	if (p > end)
		return -1;
	*pos = (t->flags & TAG_LAST) ? 0 : p;
	return 1;
}

static bool
tag_ok(const struct fs_journal *j, const struct tag *t, uint32_t seq,
       const unsigned char *data)
{
	uint32_t c;

	if (!j->csum)
		return true;
	c = tag_csum(j, seq, data);
	return j->v3 ? c == t->csum : (c & 0xffff) == t->csum;
}

static bool
tail_ok(const struct fs_journal *j, const unsigned char *b)
{
	size_t off = j->bs - TAIL_SIZE;

	return !j->csum || block_csum(j, b, off) == get_be32(b + off);
}

static bool
commit_ok(const struct fs_journal *j, const unsigned char *b)
{
	return !j->csum || block_csum(j, b, COMMIT_CSUM) ==
	                   get_be32(b + COMMIT_CSUM);
}

/*
 * Pass 1: from s_start, the transactions whose every block is there and
 * checks out, up to the first that does not (its sequence is
 * r->end_seq).  A tag naming a block outside the file system or inside
 * the log makes the journal damaged (EIO), not just ended.
 */
static int
scan(struct recovery *r)
{
	struct fs_journal *j = r->j;
	uint32_t b = j->start, seq = j->seq, budget = j->maxlen - j->first;
	unsigned char *d = j->gather;   /* the descriptor, kept */
	struct tag t;
	size_t pos;
	int k, error;

	r->end_seq = seq;
	while (budget > 0) {
		if ((error = jread(j, b, d)) != 0)
			return error;
		if (get_be32(d) != JBD2_MAGIC || get_be32(d + 8) != seq)
			break;
		b = next_blk(j, b);
		budget--;
		switch (get_be32(d + 4)) {
		case JBD2_DESCRIPTOR:
			if (!tail_ok(j, d))
				return 0;
			for (pos = HDR_SIZE; (k = next_tag(j, d, &pos,
			                                   &t)) > 0;) {
				if (budget == 0)
					return 0;
				if (t.blk >= j->fs_blocks) {
					say(r->why, r->cap, "the journal "
					    "names block %" PRIu64 ", outside "
					    "the file system", t.blk);
					return EIO;
				}
				if ((error = jread(j, b, j->blk)) != 0)
					return error;
				if (!tag_ok(j, &t, seq, j->blk))
					return 0;
				b = next_blk(j, b);
				budget--;
			}
			if (k < 0)
				return 0;
			break;
		case JBD2_COMMIT:
			if (!commit_ok(j, d))
				return 0;
			r->end_seq = ++seq;
			break;
		case JBD2_REVOKE:
			if (!tail_ok(j, d))
				return 0;
			break;
		default:
			return 0;
		}
	}
	return 0;
}

static int
cmp_revoked(const void *a, const void *b)
{
	const struct revoked *x = a, *y = b;

	if (x->blk != y->blk)
		return x->blk < y->blk ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
add_revoked(struct recovery *r, uint64_t blk, uint32_t seq)
{
	struct revoked *grown;
	size_t cap;
	int error;

	if (r->nrv == r->rv_cap) {
		/* A log of revoke blocks must not take all the memory. */
		if (r->rv_cap >= REVOKED_MAX) {
			say(r->why, r->cap, "the journal holds more than %u "
			    "revoke records", REVOKED_MAX);
			return EFBIG;
		}
		cap = r->rv_cap ? r->rv_cap * 2 : 64;
		if ((error = rumpuser_malloc(sizeof(*grown) * cap, 0,
		                             (void **)&grown)) != 0)
			return error;
		if (r->nrv)
			memcpy(grown, r->rv, sizeof(*grown) * r->nrv);
		rumpuser_free(r->rv, 0);
		r->rv = grown;
		r->rv_cap = cap;
	}
	r->rv[r->nrv++] = (struct revoked){ .blk = blk, .seq = seq };
	return 0;
}

/* True if blk was revoked by a transaction at or after seq. */
static bool
is_revoked(const struct recovery *r, uint64_t blk, uint32_t seq)
{
	size_t lo = 0, hi = r->nrv, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (r->rv[mid].blk < blk)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* The last record of blk holds its highest sequence. */
	while (lo < r->nrv && r->rv[lo].blk == blk) {
		if (lo + 1 == r->nrv || r->rv[lo + 1].blk != blk)
			return (int32_t)(r->rv[lo].seq - seq) >= 0;
		lo++;
	}
	return false;
}

/*
 * Passes 2 and 3 over the transactions scan() accepted: the revoke
 * records, then every tagged block not revoked, in log order, to put().
 */
static int
walk(struct recovery *r, bool replay,
     int (*put)(void *ctx, uint64_t blk, const void *data), void *ctx,
     unsigned *nblocks)
{
	struct fs_journal *j = r->j;
	uint32_t b = j->start, seq = j->seq;
	unsigned char *d = j->gather;
	size_t pos, cnt, per = j->is64 ? 8 : 4, end;
	struct tag t;
	uint64_t blk;
	int error;

	while (seq != r->end_seq) {
		if ((error = jread(j, b, d)) != 0)
			return error;
		b = next_blk(j, b);
		switch (get_be32(d + 4)) {
		case JBD2_DESCRIPTOR:
			for (pos = HDR_SIZE; next_tag(j, d, &pos, &t) > 0;
			     b = next_blk(j, b)) {
				if (!replay || is_revoked(r, t.blk, seq))
					continue;
				if ((error = jread(j, b, j->blk)) != 0)
					return error;
				if (t.flags & TAG_ESCAPE)
					put_be32(j->blk, JBD2_MAGIC);
				if ((error = put(ctx, t.blk, j->blk)) != 0)
					return error;
				(*nblocks)++;
			}
			break;
		case JBD2_COMMIT:
			seq++;
			break;
		case JBD2_REVOKE:
			if (replay)
				break;
			cnt = get_be32(d + 12);
			end = j->bs - (j->csum ? TAIL_SIZE : 0);
			if (cnt < REVOKE_HDR || cnt > end) {
				say(r->why, r->cap, "a revoke block of the "
				    "journal is damaged");
				return EIO;
			}
			for (pos = REVOKE_HDR; pos + per <= cnt; pos += per) {
				blk = get_be32(d + pos);
				if (per == 8)
					blk = blk << 32 | get_be32(d + pos + 4);
				if ((error = add_revoked(r, blk, seq)) != 0)
					return error;
			}
			break;
		}
	}
	return 0;
}

int
fs_journal_recover(struct fs_journal *j,
                   int (*put)(void *ctx, uint64_t blk, const void *data),
                   void *ctx, unsigned *ntx, unsigned *nblocks, char *why,
                   size_t cap)
{
	struct recovery r = { .j = j, .why = why, .cap = cap };
	int error;

	*ntx = *nblocks = 0;
	if (j->start == 0)
		return 0;
	if ((error = scan(&r)) != 0)
		goto out;
	if ((error = walk(&r, false, put, ctx, nblocks)) != 0)
		goto out;
	if (r.nrv > 1)
		qsort(r.rv, r.nrv, sizeof(*r.rv), cmp_revoked);
	if ((error = walk(&r, true, put, ctx, nblocks)) != 0)
		goto out;
	*ntx = r.end_seq - j->seq;
	/*
	 * The next transaction skips a number, as the kernel's recovery
	 * does: what followed the last good commit may be the start of
	 * transaction end_seq, which must never pass for ours.
	 */
	j->seq = r.end_seq + 1;
out:
	if (error && why[0] == '\0')
		say(why, cap, "cannot read the journal: %s", strerror(error));
	rumpuser_free(r.rv, 0);
	return error;
}

/* ---- writing ----------------------------------------------------------- */

static int
write_super(struct fs_journal *j, uint32_t start, uint32_t seq)
{
	unsigned char *s = j->sb;

	put_be32(s + JSB_START, start);
	put_be32(s + JSB_SEQUENCE, seq);
	if (j->csum)
		put_be32(s + JSB_CHECKSUM,
		         zeroed_csum(~0u, s, JSB_SIZE, JSB_CHECKSUM));
	return j->be->write(j->be->ctx, phys(j, 0) * j->bs, s, j->bs);
}

int
fs_journal_set_features(struct fs_journal *j, bool csum_v3, bool is64)
{
	uint32_t incompat = j->incompat;

	if (j->start != 0 || get_be32(j->sb + 4) != JBD2_SUPER_V2)
		return 0;
	if (csum_v3)
		incompat = (incompat & ~JBD2_INCOMPAT_CSUM_V2) |
		           JBD2_INCOMPAT_CSUM_V3;
	if (is64)
		incompat |= JBD2_INCOMPAT_64BIT;
	if (incompat == j->incompat)
		return 0;
	j->incompat = incompat;
	put_be32(j->sb + JSB_INCOMPAT, incompat);
	if (csum_v3) {
		put_be32(j->sb + JSB_COMPAT, get_be32(j->sb + JSB_COMPAT) &
		                             ~JBD2_COMPAT_CHECKSUM);
		j->sb[JSB_CSUM_TYPE] = JBD2_CRC32C;
	}
	derive_features(j);
	return write_super(j, 0, j->seq);
}

int
fs_journal_reset(struct fs_journal *j)
{
	j->start = 0;
	return write_super(j, 0, j->seq);
}

/* Tags one descriptor block holds. */
static unsigned
tags_per_desc(const struct fs_journal *j)
{
	size_t room = j->bs - HDR_SIZE - (j->csum ? TAIL_SIZE : 0);

	unsigned per = 1 + (unsigned)((room - j->tag_bytes - UUID_SIZE) /
	                              j->tag_bytes);
	/* A descriptor and its blocks are written in one gather. */
	unsigned most = WRITE_MAX / j->bs - 1;

	return per < most ? per : most;
}

unsigned
fs_journal_capacity(const struct fs_journal *j)
{
	uint32_t log = j->maxlen - j->first - 1;        /* commit block */
	unsigned per = tags_per_desc(j);

	/* n blocks need ceil(n / per) descriptors: n + n/per + 1 <= log. */
	return (unsigned)((uint64_t)log * per / (per + 1));
}

/* Writes what was gathered, as runs that are contiguous on disk. */
static int
gather_flush(struct fs_journal *j)
{
	unsigned i = 0, n;
	int error;

	while (i < j->gathered) {
		uint64_t p = phys(j, j->gather_at + i);

		for (n = 1; i + n < j->gathered &&
		     phys(j, j->gather_at + i + n) == p + n; n++)
			;
		error = j->be->write(j->be->ctx, p * j->bs,
		                     j->gather + (size_t)i * j->bs,
		                     (size_t)n * j->bs);
		if (error)
			return error;
		i += n;
	}
	j->gathered = 0;
	return 0;
}

/* The next log block to fill, at journal block *at (which advances). */
static int
gather_next(struct fs_journal *j, uint32_t *at, unsigned char **slot)
{
	int error;

	if (j->gathered > 0 &&
	    ((size_t)(j->gathered + 1) * j->bs > WRITE_MAX ||
	     j->gather_at + j->gathered != *at) &&
	    (error = gather_flush(j)) != 0)
		return error;
	if (j->gathered == 0)
		j->gather_at = *at;
	*slot = j->gather + (size_t)j->gathered++ * j->bs;
	(*at)++;
	return 0;
}

static void
put_header(unsigned char *b, uint32_t type, uint32_t seq)
{
	put_be32(b, JBD2_MAGIC);
	put_be32(b + 4, type);
	put_be32(b + 8, seq);
}

/*
 * One transaction of n blocks at the start of the log: the superblock
 * pointing at it, descriptors and images, a flush, the commit block, a
 * flush.  Descriptors are filled in after their blocks are copied (a
 * tag's checksum is over the block), which the gather buffer allows as
 * long as a descriptor and its blocks are written together: so a
 * descriptor never covers more blocks than one gathered write holds.
 */
static int
commit(struct fs_journal *j, unsigned n,
       const void *(*get)(void *ctx, unsigned i, uint64_t *blk), void *ctx)
{
	unsigned per = tags_per_desc(j), i = 0, k, in_desc;
	uint32_t at = j->first, seq = j->seq;
	unsigned char *desc, *slot, *tag;
	const unsigned char *data;
	uint64_t blk, now = 0;
	int error;

	if ((error = write_super(j, j->first, seq)) != 0)
		return error;
	j->start = j->first;
	j->gathered = 0;
	while (i < n) {
		/* The descriptor and its blocks go out in one gather. */
		in_desc = n - i < per ? n - i : per;
		if (j->gathered > 0 &&
		    (size_t)(j->gathered + 1 + in_desc) * j->bs > WRITE_MAX &&
		    (error = gather_flush(j)) != 0)
			return error;
		if ((error = gather_next(j, &at, &desc)) != 0)
			return error;
		memset(desc, 0, j->bs);
		put_header(desc, JBD2_DESCRIPTOR, seq);
		tag = desc + HDR_SIZE;
		for (k = 0; k < in_desc; k++, i++) {
			uint32_t flags = k == 0 ? 0 : TAG_SAME_UUID, c;

			data = get(ctx, i, &blk);
			if ((error = gather_next(j, &at, &slot)) != 0)
				return error;
			memcpy(slot, data, j->bs);
			/* A block that would read as a journal block is
			 * written escaped; replay restores the magic. */
			if (get_be32(slot) == JBD2_MAGIC) {
				put_be32(slot, 0);
				flags |= TAG_ESCAPE;
			}
			if (k + 1 == in_desc)
				flags |= TAG_LAST;
			c = j->csum ? tag_csum(j, seq, slot) : 0;
			put_be32(tag, (uint32_t)blk);
			if (j->v3) {
				put_be32(tag + 4, flags);
				put_be32(tag + 8, (uint32_t)(blk >> 32));
				put_be32(tag + 12, c);
			} else {
				if (j->csum)
					put_be16(tag + 4, (uint16_t)c);
				put_be16(tag + 6, (uint16_t)flags);
				if (j->is64)
					put_be32(tag + 8,
					         (uint32_t)(blk >> 32));
			}
			tag += j->tag_bytes;
			if (k == 0) {
				memcpy(tag, j->sb + JSB_UUID, UUID_SIZE);
				tag += UUID_SIZE;
			}
		}
		if (j->csum)
			put_be32(desc + j->bs - TAIL_SIZE,
			         block_csum(j, desc, j->bs - TAIL_SIZE));
	}
	if ((error = gather_flush(j)) != 0)
		return error;
	/* Everything before the commit block is stable before it is
	 * written: a commit block on disk vouches for all of it. */
	if ((error = j->be->flush(j->be->ctx)) != 0)
		return error;
	memset(j->blk, 0, j->bs);
	put_header(j->blk, JBD2_COMMIT, seq);
	rumpuser_clock_gettime(RUMPUSER_CLOCK_WALL, &now);
	put_be64(j->blk + COMMIT_SEC, now / 1000000000u);
	put_be32(j->blk + COMMIT_NSEC, (uint32_t)(now % 1000000000u));
	if (j->csum)
		put_be32(j->blk + COMMIT_CSUM,
		         block_csum(j, j->blk, COMMIT_CSUM));
	if ((error = j->be->write(j->be->ctx, phys(j, at) * j->bs, j->blk,
	                          j->bs)) != 0)
		return error;
	return j->be->flush(j->be->ctx);
}

int
fs_journal_commit(struct fs_journal *j, unsigned n,
                  const void *(*get)(void *ctx, unsigned i, uint64_t *blk),
                  void *ctx)
{
	int error;

	if (j->start != 0)
		return EBUSY;           /* a transaction not checkpointed */
	if (n > fs_journal_capacity(j))
		return ENOSPC;
	if ((error = commit(j, n, get, ctx)) != 0) {
		/*
		 * Whatever of it reached the disk, the blocks stay dirty and
		 * go into the next transaction, which takes a new number: a
		 * half-written one must never be mistaken for it.
		 */
		j->seq++;
		j->start = 0;
	}
	return error;
}

int
fs_journal_checkpointed(struct fs_journal *j)
{
	j->seq++;
	return fs_journal_reset(j);
}

uint32_t
fs_journal_sequence(const struct fs_journal *j)
{
	return j->seq;
}
