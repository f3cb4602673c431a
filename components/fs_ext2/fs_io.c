/*
 * The io_manager of fs_ext2: libext2fs's block reads and writes go to a
 * struct fs_ext2_backend through a write-back cache.
 *
 * Why a cache of our own: libext2fs reads and writes metadata a block at
 * a time (an inode table block per inode update, a directory block per
 * lookup); over IPC to rumpdisk each would be a round trip.
 *
 * Crash consistency: the image only moves from one committed state to the
 * next.  A dirty block is never written back on its own (to make room,
 * say): dirty blocks stay in the cache, which grows past its size for as
 * long as an operation needs, until the next flush writes all of them.
 * The caller (fs_ext2_commit) flushes only between operations, after
 * libext2fs has put its bitmaps, group descriptors and superblock into
 * the cache, so a flush carries a whole consistent state.
 *
 * With a journal (fs_io_set_journal) a flush is atomic: file data and
 * fresh blocks in place, everything else as one jbd2 transaction, then
 * its checkpoint (journal_write_back below, journal.c).  Without one,
 * the writes go in the order that makes a crash half way least harmful:
 *
 *   1. blocks allocated since the last flush (file data, new directory
 *      and extent blocks): nothing on disk points to them yet, so this,
 *      the bulk of a flush, is harmless to interrupt;
 *   2. allocation bitmaps as the union of the old and the new bits, so
 *      that whatever is on disk next never shows a block or an inode in
 *      use as free (a crash from here on leaks, it does not lead to
 *      double use);
 *   3. older blocks changed in place: directories, extent and xattr
 *      blocks, file data overwritten;
 *   4. inode tables;
 *   5. the bitmaps' final content;
 *   6. group descriptors and superblock;
 *
 * then a FLUSH of the backend.  There is no journal (as with fuse2fs): a
 * crash during steps 3-6, a few blocks, can still leave a directory entry
 * written and its inode not, or the reverse, and leaked blocks; e2fsck
 * repairs those.  A block freed and allocated again within one interval
 * is written in step 1: after a crash, the file that owned it in the
 * committed state may read the new content.  The order holds for a crash
 * of this process (what was submitted completes); against power loss
 * only the final FLUSH is a barrier.
 *
 * Multi-block transfers of file data go straight to the backend, reads
 * overlaid with any newer cached copy, writes updating the cached copies
 * so the cache never holds older data than the backend.  Those are new
 * blocks (zeroed by fallocate), which nothing committed points to yet.
 *
 * Errors returned to libext2fs are errno values, which is libext2fs's own
 * convention for system errors.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rump/rumpuser.h"

#include "fs_int.h"

#define CACHE_BYTES_DEFAULT (32u << 20)
#define MERGE_MAX (1u << 20)            /* largest write a flush issues */
/* Multi-block writes up to this many blocks are cached like single ones
 * (group descriptors, small metadata runs). */
#define DIRECT_MIN 64u

/* What a block holds, in the order a flush writes them. */
enum bclass { BC_FRESH, BC_OTHER, BC_ITABLE, BC_BITMAP, BC_SUPER };

struct meta_range {
	uint64_t start;
	uint64_t len;
	enum bclass cls;
};

struct cblock {
	uint64_t blk;
	struct cblock *hnext;           /* hash chain, or the free list */
	struct cblock *prev, *next;     /* the clean LRU or the dirty list */
	unsigned char *data;
	bool dirty;
	bool overflow;                  /* allocated past the cache's size */
	bool final;                     /* flush: phase 0 wrote the content */
	bool isdata;                    /* file data (fs_io_data_mode) */
	enum bclass cls;                /* flush: set while sorting */
};

struct fs_io {
	const struct fs_ext2_backend *be;
	unsigned bs;
	size_t cache_bytes;             /* asked for, 0: default */
	unsigned cap;                   /* blocks of the pool */
	struct cblock *blocks;          /* cap of them */
	unsigned char *pool;            /* cap * bs bytes */
	struct cblock **hash;
	unsigned hash_mask;
	struct cblock clean;            /* LRU sentinel, most recent first */
	struct cblock dirty;            /* sentinel, unordered */
	struct cblock *free_list;       /* chained through hnext */
	unsigned ndirty;
	unsigned noverflow;
	struct cblock **sorted;         /* flush scratch, grown on demand */
	unsigned sorted_cap;
	unsigned char *merge;           /* MERGE_MAX bytes */
	unsigned char *scratch;         /* one block, for rw_bytes */
	unsigned char *old;             /* one block, for bitmap unions */
	struct meta_range *ranges;      /* the metadata areas, sorted */
	unsigned nranges;
	ext2fs_block_bitmap fresh;      /* fs_ext2's: allocated since */
	uint64_t fs_blocks;             /* the size of fresh */
	uint64_t dirty_since;           /* monotonic ns; 0: nothing dirty */
	bool unsynced;                  /* backend writes since its FLUSH */
	struct struct_io_stats stats;
	struct fs_journal *jnl;         /* owned; NULL: no journal */
	bool jnl_on;                    /* flushes commit through jnl */
	bool jnl_warned;                /* a commit did not fit, once */
	bool jnl_reset_unsynced;        /* the log emptied, not FLUSHed */
	bool jnl_aborted;               /* a checkpoint failed: no commits */
	bool data_mode;
	unsigned ndirty_meta;           /* dirty and not file data */
	unsigned meta_reserve;          /* what ext2fs_flush2 may add */
	struct held_range *held;        /* freed since the last commit */
	unsigned nheld, held_cap;
	uint64_t held_blocks;
	struct fs_overlay *overlay;     /* owned; the backend, read-only */
};

struct held_range {
	uint64_t start;
	uint64_t len;
};

static struct fs_io *
chan_io(io_channel ch)
{
	return ch->private_data;
}

static unsigned
hash_of(const struct fs_io *io, uint64_t blk)
{
	return (unsigned)((blk * 0x9e3779b97f4a7c15ull) >> 32) & io->hash_mask;
}

static struct cblock *
cache_find(struct fs_io *io, uint64_t blk)
{
	struct cblock *b;

	if (io->cap == 0)
		return NULL;
	for (b = io->hash[hash_of(io, blk)]; b != NULL; b = b->hnext)
		if (b->blk == blk)
			return b;
	return NULL;
}

static void
list_unlink(struct cblock *b)
{
	b->prev->next = b->next;
	b->next->prev = b->prev;
}

static void
list_push_front(struct cblock *head, struct cblock *b)
{
	b->next = head->next;
	b->prev = head;
	head->next->prev = b;
	head->next = b;
}

static void
hash_remove(struct fs_io *io, struct cblock *b)
{
	struct cblock **pp = &io->hash[hash_of(io, b->blk)];

	while (*pp != b)
		pp = &(*pp)->hnext;
	*pp = b->hnext;
}

/* A block that is in neither hash nor list goes back where it came
 * from: the free list, or the heap for an overflow block. */
static void
cache_release(struct fs_io *io, struct cblock *b)
{
	if (b->overflow) {
		io->noverflow--;
		rumpuser_free(b->data, 0);
		rumpuser_free(b, sizeof(*b));
		return;
	}
	b->hnext = io->free_list;
	io->free_list = b;
}

static void
cache_drop(struct fs_io *io, struct cblock *b)
{
	hash_remove(io, b);
	list_unlink(b);
	if (b->dirty) {
		io->ndirty--;
		if (!b->isdata)
			io->ndirty_meta--;
	}
	b->dirty = false;
	cache_release(io, b);
}

static void
mark_dirty(struct fs_io *io, struct cblock *b)
{
	uint64_t now = 0;

	if (b->dirty)
		return;
	list_unlink(b);
	list_push_front(&io->dirty, b);
	b->dirty = true;
	b->isdata = false;
	io->ndirty_meta++;
	if (io->ndirty++ == 0) {
		rumpuser_clock_gettime(RUMPUSER_CLOCK_MONO, &now);
		io->dirty_since = now ? now : 1;
	}
}

static int
be_write(struct fs_io *io, uint64_t blk, const void *data, size_t len)
{
	int error = io->be->write(io->be->ctx, blk * io->bs, data, len);

	io->unsynced = true;
	if (error == 0)
		io->stats.bytes_written += len;
	return error;
}

static int
be_read(struct fs_io *io, uint64_t blk, void *data, size_t len)
{
	int error = io->be->read(io->be->ctx, blk * io->bs, data, len);

	if (error == 0)
		io->stats.bytes_read += len;
	return error;
}

static enum bclass
class_of(const struct fs_io *io, uint64_t blk)
{
	unsigned lo = 0, hi = io->nranges, mid;

	/* The last range starting at or before blk. */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (io->ranges[mid].start <= blk)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0 && blk - io->ranges[lo - 1].start < io->ranges[lo - 1].len)
		return io->ranges[lo - 1].cls;
	if (io->fresh != NULL && blk < io->fs_blocks &&
	    ext2fs_test_block_bitmap2(io->fresh, blk))
		return BC_FRESH;
	return BC_OTHER;
}

static int
cmp_flush(const void *a, const void *b)
{
	const struct cblock *x = *(struct cblock *const *)a;
	const struct cblock *y = *(struct cblock *const *)b;

	if (x->cls != y->cls)
		return x->cls < y->cls ? -1 : 1;
	return x->blk < y->blk ? -1 : x->blk > y->blk;
}

/* Writes sorted[i..n) of one class, runs of neighbours merged, skipping
 * blocks phase 0 already wrote in full. */
static int
write_runs(struct fs_io *io, unsigned i, unsigned n)
{
	unsigned per = MERGE_MAX / io->bs, j, k;
	struct cblock **s = io->sorted;
	int error;

	for (; i < n; i = j) {
		if (s[i]->final) {
			j = i + 1;
			continue;
		}
		for (j = i + 1; j < n && j - i < per && !s[j]->final &&
		     s[j]->blk == s[j - 1]->blk + 1; j++)
			;
		if (j - i == 1) {
			error = be_write(io, s[i]->blk, s[i]->data, io->bs);
		} else {
			for (k = i; k < j; k++)
				memcpy(io->merge + (size_t)(k - i) * io->bs,
				       s[k]->data, io->bs);
			error = be_write(io, s[i]->blk, io->merge,
			                 (size_t)(j - i) * io->bs);
		}
		if (error)
			return error;
	}
	return 0;
}

/*
 * Phase 0 for one dirty bitmap block: the union of the bits on disk and
 * the new ones goes out first, unless it adds nothing.  When the union is
 * the new content itself (only allocations), that write is final.
 */
static int
write_bitmap_union(struct fs_io *io, struct cblock *b)
{
	unsigned char *u = io->merge;
	bool adds = false, frees = false;
	int error;

	if ((error = be_read(io, b->blk, io->old, io->bs)) != 0)
		return error;
	for (unsigned i = 0; i < io->bs; i++) {
		u[i] = io->old[i] | b->data[i];
		adds |= u[i] != io->old[i];
		frees |= u[i] != b->data[i];
	}
	if (!adds)
		return 0;
	if ((error = be_write(io, b->blk, u, io->bs)) != 0)
		return error;
	b->final = !frees;
	return 0;
}

/* All of it is on its way: clean, and the overflow given back. */
static void
cache_all_clean(struct fs_io *io)
{
	struct cblock *b;

	while ((b = io->dirty.next) != &io->dirty) {
		list_unlink(b);
		b->dirty = false;
		if (b->overflow) {
			hash_remove(io, b);
			cache_release(io, b);
		} else {
			list_push_front(&io->clean, b);
		}
	}
	io->ndirty = 0;
	io->ndirty_meta = 0;
	io->dirty_since = 0;
}

static int
sorted_room(struct fs_io *io)
{
	struct cblock **grown;
	int error;

	if (io->sorted_cap >= io->ndirty)
		return 0;
	if ((error = rumpuser_malloc(sizeof(*grown) * io->ndirty, 0,
	                             (void **)&grown)) != 0)
		return error;
	rumpuser_free(io->sorted, 0);
	io->sorted = grown;
	io->sorted_cap = io->ndirty;
	return 0;
}

/* Writes every dirty block in the order described at the top. */
static int
cache_write_back(struct fs_io *io)
{
	unsigned n = 0, i, j, c;
	struct cblock *b;
	int error;

	if (io->ndirty == 0)
		return 0;
	if ((error = sorted_room(io)) != 0)
		return error;
	for (b = io->dirty.next; b != &io->dirty; b = b->next) {
		b->cls = class_of(io, b->blk);
		b->final = false;
		io->sorted[n++] = b;
	}
	qsort(io->sorted, n, sizeof(io->sorted[0]), cmp_flush);

	/* With no fresh blocks, the unions come first of all. */
	if (n > 0 && io->sorted[0]->cls != BC_FRESH)
		for (i = 0; i < n; i++)
			if (io->sorted[i]->cls == BC_BITMAP &&
			    (error = write_bitmap_union(io,
			                                io->sorted[i])) != 0)
				return error;
	for (i = 0; i < n; i = j) {
		c = io->sorted[i]->cls;
		for (j = i; j < n && io->sorted[j]->cls == c; j++)
			;
		if ((error = write_runs(io, i, j)) != 0)
			return error;
		if (c != BC_FRESH)
			continue;
		for (unsigned k = j; k < n; k++)
			if (io->sorted[k]->cls == BC_BITMAP &&
			    (error = write_bitmap_union(io,
			                                io->sorted[k])) != 0)
				return error;
	}

	cache_all_clean(io);
	return 0;
}

static const void *
log_block(void *ctx, unsigned i, uint64_t *blk)
{
	struct cblock **s = ctx;

	*blk = s[i]->blk;
	return s[i]->data;
}

/*
 * A flush with the journal (ordered mode): file data and fresh blocks
 * (nothing committed points to them) in place; then the rest, the
 * metadata, as one transaction of the journal, made stable; then the
 * same blocks at home (the checkpoint), a FLUSH, and the log emptied.
 * The log holds one transaction at most, and only until its checkpoint
 * is stable, which is what lets a freed block be reused from the next
 * transaction on without revoke records (journal.c).
 *
 * A dirty set larger than the log is written as without a journal (the
 * careful order, not atomic): fs_ext2_tick commits before that happens,
 * so only one operation bigger than half the log can get there.
 */
static int
journal_write_back(struct fs_io *io)
{
	unsigned n = 0, split, nlog;
	struct cblock *b;
	int error;

	if (io->jnl_aborted)
		return EIO;
	if (io->ndirty == 0)
		return 0;
	if ((error = sorted_room(io)) != 0)
		return error;
	for (b = io->dirty.next; b != &io->dirty; b = b->next) {
		b->cls = b->isdata || class_of(io, b->blk) == BC_FRESH
		         ? BC_FRESH : BC_SUPER;
		b->final = false;
		io->sorted[n++] = b;
	}
	qsort(io->sorted, n, sizeof(io->sorted[0]), cmp_flush);
	for (split = 0; split < n && io->sorted[split]->cls == BC_FRESH;
	     split++)
		;
	nlog = n - split;
	if (nlog > fs_journal_capacity(io->jnl)) {
		if (!io->jnl_warned)
			rumpuser_log(RUMPUSER_LOG_WARN, "fs_ext2", "a commit "
			             "of %u metadata blocks does not fit the "
			             "journal (%u): written in place, not "
			             "atomically", nlog,
			             fs_journal_capacity(io->jnl));
		io->jnl_warned = true;
		/* The last transaction's checkpoint must be stable before
		 * anything else goes home. */
		if (io->unsynced &&
		    (error = io->be->flush(io->be->ctx)) != 0)
			return error;
		io->unsynced = false;
		return cache_write_back(io);
	}
	if ((error = write_runs(io, 0, split)) != 0)
		return error;
	if (nlog > 0) {
		error = fs_journal_commit(io->jnl, nlog, log_block,
		                          io->sorted + split);
		if (error)
			return error;
		io->unsynced = false;
		if ((error = write_runs(io, split, n)) != 0 ||
		    (error = io->be->flush(io->be->ctx)) != 0) {
			/*
			 * The log holds a committed transaction whose home
			 * copies may be half written, and the cache holds
			 * newer, uncommitted versions of some of them: no
			 * later state can be written safely.  As jbd2 does
			 * after an I/O error: no more commits; a restart
			 * replays the log.
			 */
			rumpuser_log(RUMPUSER_LOG_ERROR, "fs_ext2", "the "
			             "checkpoint failed (%s): journal aborted, "
			             "nothing more is committed until a "
			             "restart replays it", strerror(error));
			io->jnl_aborted = true;
			return error;
		}
		io->unsynced = false;
		/* Needs no FLUSH of its own: replaying a transaction
		 * whose blocks are home again changes nothing. */
		if ((error = fs_journal_checkpointed(io->jnl)) != 0)
			return error;
		io->jnl_reset_unsynced = true;
	}
	cache_all_clean(io);
	return 0;
}

/*
 * A free cache block for blk, not yet in the hash or a list: an unused
 * one, else the least recently used clean one, else (everything dirty)
 * a new one past the cache's size.
 */
static int
cache_get_free(struct fs_io *io, struct cblock **bp)
{
	struct cblock *b;
	int error;

	if (io->free_list == NULL && io->clean.prev != &io->clean)
		cache_drop(io, io->clean.prev);
	if ((b = io->free_list) != NULL) {
		io->free_list = b->hnext;
		*bp = b;
		return 0;
	}
	if ((error = rumpuser_malloc(sizeof(*b), 0, (void **)&b)) != 0)
		return error;
	memset(b, 0, sizeof(*b));
	if ((error = rumpuser_malloc(io->bs, 4096, (void **)&b->data)) != 0) {
		rumpuser_free(b, sizeof(*b));
		return error;
	}
	b->overflow = true;
	io->noverflow++;
	*bp = b;
	return 0;
}

static void
cache_insert(struct fs_io *io, struct cblock *b, uint64_t blk)
{
	unsigned h = hash_of(io, blk);

	b->blk = blk;
	b->dirty = false;
	b->isdata = false;
	b->hnext = io->hash[h];
	io->hash[h] = b;
	list_push_front(&io->clean, b);
}

static void
cache_free(struct fs_io *io)
{
	struct cblock *b;

	/* Overflow blocks are only ever dirty or clean, never free. */
	while ((b = io->dirty.next) != NULL && b != &io->dirty)
		cache_drop(io, b);
	while ((b = io->clean.next) != NULL && b != &io->clean)
		cache_drop(io, b);
	rumpuser_free(io->blocks, 0);
	rumpuser_free(io->pool, 0);
	rumpuser_free(io->hash, 0);
	rumpuser_free(io->sorted, 0);
	rumpuser_free(io->merge, 0);
	rumpuser_free(io->scratch, 0);
	rumpuser_free(io->old, 0);
	io->scratch = NULL;
	io->old = NULL;
	io->blocks = NULL;
	io->pool = NULL;
	io->hash = NULL;
	io->sorted = NULL;
	io->sorted_cap = 0;
	io->merge = NULL;
	io->cap = 0;
	io->ndirty = 0;
	io->dirty_since = 0;
	io->free_list = NULL;
	io->clean.next = io->clean.prev = &io->clean;
	io->dirty.next = io->dirty.prev = &io->dirty;
}

/* (Re)builds an empty cache for block size bs. */
static int
cache_setup(struct fs_io *io, unsigned bs)
{
	size_t bytes = io->cache_bytes ? io->cache_bytes : CACHE_BYTES_DEFAULT;
	unsigned cap = bytes / bs > (1u << 22) ? 1u << 22 : (unsigned)(bytes / bs);
	unsigned hsize = 1, i;
	int error;

	if (cap < 16)
		cap = 16;
	while (hsize < cap)
		hsize <<= 1;
	cache_free(io);
	io->bs = bs;
	if ((error = rumpuser_malloc(sizeof(*io->blocks) * cap, 0,
	                             (void **)&io->blocks)) != 0 ||
	    (error = rumpuser_malloc((size_t)cap * bs, 4096,
	                             (void **)&io->pool)) != 0 ||
	    (error = rumpuser_malloc(sizeof(*io->hash) * hsize, 0,
	                             (void **)&io->hash)) != 0 ||
	    (error = rumpuser_malloc(MERGE_MAX > bs ? MERGE_MAX : bs, 4096,
	                             (void **)&io->merge)) != 0 ||
	    (error = rumpuser_malloc(bs, 4096, (void **)&io->scratch)) != 0 ||
	    (error = rumpuser_malloc(bs, 4096, (void **)&io->old)) != 0) {
		cache_free(io);
		return error;
	}
	memset(io->hash, 0, sizeof(*io->hash) * hsize);
	io->hash_mask = hsize - 1;
	for (i = 0; i < cap; i++) {
		memset(&io->blocks[i], 0, sizeof(io->blocks[i]));
		io->blocks[i].data = io->pool + (size_t)i * bs;
		io->blocks[i].hnext = i + 1 < cap ? &io->blocks[i + 1] : NULL;
	}
	io->free_list = &io->blocks[0];
	io->cap = cap;
	return 0;
}

/* Drops cached copies of [blk, blk+count): their content is superseded. */
static void
cache_forget(struct fs_io *io, uint64_t blk, uint64_t count)
{
	struct cblock *b, *next, *head;

	if (count > io->cap) {
		for (head = &io->clean; head != NULL;
		     head = head == &io->clean ? &io->dirty : NULL)
			for (b = head->next; b != head; b = next) {
				next = b->next;
				if (b->blk >= blk && b->blk - blk < count)
					cache_drop(io, b);
			}
		return;
	}
	for (uint64_t i = 0; i < count; i++)
		if ((b = cache_find(io, blk + i)) != NULL)
			cache_drop(io, b);
}

/* ---- block transfers --------------------------------------------------- */

static errcode_t
read_one(struct fs_io *io, uint64_t blk, void *data)
{
	struct cblock *b = cache_find(io, blk);
	int error;

	if (b != NULL) {
		if (!b->dirty) {
			list_unlink(b);
			list_push_front(&io->clean, b);
		}
		memcpy(data, b->data, io->bs);
		return 0;
	}
	if ((error = cache_get_free(io, &b)) != 0)
		return error;
	if ((error = be_read(io, blk, b->data, io->bs)) != 0) {
		cache_release(io, b);
		return error;
	}
	cache_insert(io, b, blk);
	memcpy(data, b->data, io->bs);
	return 0;
}

static errcode_t
read_blocks(struct fs_io *io, uint64_t blk, uint64_t count, void *data)
{
	struct cblock *b;
	int error;

	if (count == 1)
		return read_one(io, blk, data);
	if ((error = be_read(io, blk, data, count * io->bs)) != 0)
		return error;
	if (io->clean.next == &io->clean && io->dirty.next == &io->dirty)
		return 0;
	for (uint64_t i = 0; i < count; i++)
		if ((b = cache_find(io, blk + i)) != NULL)
			memcpy((unsigned char *)data + i * io->bs, b->data,
			       io->bs);
	return 0;
}

/*
 * Whether a block written now is file data.  Only what fs_ext2 says is,
 * and never a fixed metadata area, nor a block that starts like an
 * extent tree node: ext2fs_file_write, in data mode, also writes the
 * extent blocks it allocates.  Calling file data metadata costs journal
 * space; the reverse would break atomicity.
 */
static bool
is_data(const struct fs_io *io, uint64_t blk, const unsigned char *data)
{
	enum bclass c;

	if (!io->data_mode)
		return false;
	if (data[0] == 0x0a && data[1] == 0xf3)     /* le16 0xf30a */
		return false;
	c = class_of(io, blk);
	return c == BC_OTHER || c == BC_FRESH;
}

static errcode_t
write_one(struct fs_io *io, uint64_t blk, const void *data)
{
	struct cblock *b = cache_find(io, blk);
	bool data_now;
	int error;

	if (b != NULL) {
		/* libext2fs rewrites every bitmap and descriptor block at a
		 * flush: unchanged ones need not go out again. */
		if (!b->dirty && memcmp(b->data, data, io->bs) == 0) {
			list_unlink(b);
			list_push_front(&io->clean, b);
			return 0;
		}
	} else {
		if ((error = cache_get_free(io, &b)) != 0)
			return error;
		/* Likewise for a bitmap or descriptor the cache let go of:
		 * with a journal, each would cost a block of the log. */
		if (io->jnl_on && class_of(io, blk) >= BC_BITMAP &&
		    be_read(io, blk, b->data, io->bs) == 0 &&
		    memcmp(b->data, data, io->bs) == 0) {
			cache_insert(io, b, blk);
			return 0;
		}
		cache_insert(io, b, blk);
	}
	memcpy(b->data, data, io->bs);
	mark_dirty(io, b);
	data_now = is_data(io, blk, data);
	if (data_now != b->isdata) {
		io->ndirty_meta += data_now ? -1u : 1u;
		b->isdata = data_now;
	}
	return 0;
}

/* True if [blk, blk+count) may be written at once, past the cache:
 * nothing but file system blocks outside the fixed metadata areas, and
 * with a journal only blocks that nothing committed points to. */
static bool
direct_ok(const struct fs_io *io, uint64_t blk, uint64_t count)
{
	enum bclass want = io->jnl_on ? BC_FRESH : BC_OTHER;

	for (uint64_t i = 0; i < count; i++)
		if (class_of(io, blk + i) != want)
			return false;
	return true;
}

static errcode_t
write_blocks(struct fs_io *io, uint64_t blk, uint64_t count, const void *data)
{
	const unsigned char *p = data;
	struct cblock *b;
	int error;

	if (count < DIRECT_MIN || !direct_ok(io, blk, count)) {
		for (uint64_t i = 0; i < count; i++)
			if ((error = write_one(io, blk + i,
			                       p + i * io->bs)) != 0)
				return error;
		return 0;
	}
	/* Cached copies take the new bytes; a dirty one stays dirty (it is
	 * written again at the next flush, which is harmless). */
	for (uint64_t i = 0; i < count; i++)
		if ((b = cache_find(io, blk + i)) != NULL)
			memcpy(b->data, p + i * io->bs, io->bs);
	error = be_write(io, blk, data, count * io->bs);
	if (error)
		cache_forget(io, blk, count);
	return error;
}

/*
 * Transfers whose size is not a whole number of blocks (the superblock at
 * mount) go through whole blocks, so the backend only ever sees aligned
 * requests.
 */
static errcode_t
rw_bytes(struct fs_io *io, uint64_t off, size_t len, void *rdata,
         const void *wdata)
{
	unsigned char *tmp = io->scratch;
	uint64_t blk = off / io->bs;
	size_t skip = off % io->bs, n;
	errcode_t error;

	while (len > 0) {
		n = io->bs - skip < len ? io->bs - skip : len;
		if ((error = read_one(io, blk, tmp)) != 0)
			return error;
		if (rdata != NULL) {
			memcpy(rdata, tmp + skip, n);
			rdata = (unsigned char *)rdata + n;
		} else {
			memcpy(tmp + skip, wdata, n);
			if ((error = write_one(io, blk, tmp)) != 0)
				return error;
			wdata = (const unsigned char *)wdata + n;
		}
		len -= n;
		skip = 0;
		blk++;
	}
	return 0;
}

static bool
in_range(const struct fs_io *io, uint64_t blk, uint64_t bytes)
{
	uint64_t off;

	if (__builtin_mul_overflow(blk, io->bs, &off))
		return false;
	return off <= io->be->size && bytes <= io->be->size - off;
}

static errcode_t
fs_io_read_blk64(io_channel ch, unsigned long long blk, int count, void *data)
{
	struct fs_io *io = chan_io(ch);
	uint64_t bytes = count < 0 ? (uint64_t)-(int64_t)count
	                           : (uint64_t)count * io->bs;

	if (!in_range(io, blk, bytes))
		return EXT2_ET_SHORT_READ;
	if (bytes == 0)
		return 0;
	if (count < 0 && bytes % io->bs != 0)
		return rw_bytes(io, blk * io->bs, bytes, data, NULL);
	return read_blocks(io, blk, bytes / io->bs, data);
}

static errcode_t
fs_io_write_blk64(io_channel ch, unsigned long long blk, int count,
                  const void *data)
{
	struct fs_io *io = chan_io(ch);
	uint64_t bytes = count < 0 ? (uint64_t)-(int64_t)count
	                           : (uint64_t)count * io->bs;

	if (io->be->read_only)
		return EXT2_ET_RO_FILSYS;
	if (!in_range(io, blk, bytes))
		return EXT2_ET_SHORT_WRITE;
	if (bytes == 0)
		return 0;
	if (count < 0 && bytes % io->bs != 0)
		return rw_bytes(io, blk * io->bs, bytes, NULL, data);
	return write_blocks(io, blk, bytes / io->bs, data);
}

static errcode_t
fs_io_read_blk(io_channel ch, unsigned long blk, int count, void *data)
{
	return fs_io_read_blk64(ch, blk, count, data);
}

static errcode_t
fs_io_write_blk(io_channel ch, unsigned long blk, int count, const void *data)
{
	return fs_io_write_blk64(ch, blk, count, data);
}

/* libext2fs writes the changed bytes of the primary superblock with this;
 * without it, it would switch the block size back and forth. */
static errcode_t
fs_io_write_byte(io_channel ch, unsigned long off, int count, const void *data)
{
	struct fs_io *io = chan_io(ch);

	if (io->be->read_only)
		return EXT2_ET_RO_FILSYS;
	if (count < 0 || off > io->be->size ||
	    (uint64_t)count > io->be->size - off)
		return EXT2_ET_SHORT_WRITE;
	return rw_bytes(io, off, (size_t)count, NULL, data);
}

static errcode_t
fs_io_flush(io_channel ch)
{
	struct fs_io *io = chan_io(ch);
	int error;

	if (io->be->read_only)
		return 0;
	error = io->jnl_on ? journal_write_back(io) : cache_write_back(io);
	if (error)
		return error;
	/* A commit with nothing new since the last one costs nothing. */
	if (!io->unsynced)
		return 0;
	if ((error = io->be->flush(io->be->ctx)) != 0)
		return error;
	io->unsynced = false;
	io->jnl_reset_unsynced = false;
	return 0;
}

static errcode_t
fs_io_discard(io_channel ch, unsigned long long blk, unsigned long long count)
{
	struct fs_io *io = chan_io(ch);

	if (io->be->read_only)
		return EXT2_ET_RO_FILSYS;
	if (io->be->discard == NULL)
		return EXT2_ET_UNIMPLEMENTED;
	if (!in_range(io, blk, 0) || count > (io->be->size / io->bs) - blk)
		return EXT2_ET_INVALID_ARGUMENT;
	cache_forget(io, blk, count);
	io->unsynced = true;
	return io->be->discard(io->be->ctx, blk * io->bs, count * io->bs);
}

static errcode_t
fs_io_zeroout(io_channel ch, unsigned long long blk, unsigned long long count)
{
	struct fs_io *io = chan_io(ch);

	if (io->be->read_only)
		return EXT2_ET_RO_FILSYS;
	if (io->be->zeroout == NULL)
		return EXT2_ET_UNIMPLEMENTED;
	if (!in_range(io, blk, 0) || count > (io->be->size / io->bs) - blk)
		return EXT2_ET_INVALID_ARGUMENT;
	cache_forget(io, blk, count);
	io->unsynced = true;
	return io->be->zeroout(io->be->ctx, blk * io->bs, count * io->bs);
}

static errcode_t
fs_io_set_blksize(io_channel ch, int blksize)
{
	struct fs_io *io = chan_io(ch);
	int error;

	if (blksize <= 0 || blksize > 65536 || (blksize & (blksize - 1)))
		return EXT2_ET_INVALID_ARGUMENT;
	if ((unsigned)blksize == io->bs)
		return 0;
	if (!io->be->read_only && (error = cache_write_back(io)) != 0)
		return error;
	if ((error = cache_setup(io, (unsigned)blksize)) != 0)
		return error;
	ch->block_size = blksize;
	return 0;
}

static errcode_t
fs_io_set_option(io_channel ch, const char *option, const char *arg)
{
	(void)ch;
	(void)option;
	(void)arg;
	return EXT2_ET_INVALID_ARGUMENT;
}

static errcode_t
fs_io_get_stats(io_channel ch, io_stats *stats)
{
	*stats = &chan_io(ch)->stats;
	return 0;
}

static errcode_t
fs_io_close(io_channel ch)
{
	struct fs_io *io = chan_io(ch);
	errcode_t error = 0;

	if (--ch->refcount > 0)
		return 0;
	if (!io->be->read_only)
		error = fs_io_flush(ch);
	cache_free(io);
	fs_journal_close(io->jnl);
	fs_overlay_destroy(io->overlay);
	rumpuser_free(io->held, 0);
	rumpuser_free(io->ranges, 0);
	rumpuser_free(io, sizeof(*io));
	ext2fs_free_mem(&ch->name);
	ext2fs_free_mem(&ch);
	return error;
}

void
fs_io_name(const struct fs_io_params *p, char *buf, size_t cap)
{
	snprintf(buf, cap, "fs_ext2:%" PRIxPTR, (uintptr_t)p);
}

static errcode_t
fs_io_open(const char *name, int flags, io_channel *chp)
{
	const struct fs_io_params *p;
	io_channel ch = NULL;
	struct fs_io *io = NULL;
	uintptr_t addr;
	errcode_t error;
	int n = 0;

	if (name == NULL ||
	    sscanf(name, "fs_ext2:%" SCNxPTR "%n", &addr, &n) != 1 ||
	    name[n] != '\0' || addr == 0)
		return EXT2_ET_BAD_DEVICE_NAME;
	p = (const struct fs_io_params *)addr;
	if ((flags & IO_FLAG_RW) && p->be->read_only)
		return EROFS;
	if ((error = ext2fs_get_memzero(sizeof(*ch), &ch)) != 0)
		return error;
	if ((error = rumpuser_malloc(sizeof(*io), 0, (void **)&io)) != 0)
		goto fail;
	memset(io, 0, sizeof(*io));
	io->be = p->be;
	io->cache_bytes = p->cache_bytes;
	io->clean.next = io->clean.prev = &io->clean;
	io->dirty.next = io->dirty.prev = &io->dirty;
	io->stats.num_fields = 2;
	if ((error = cache_setup(io, 1024)) != 0)
		goto fail;
	if ((error = ext2fs_get_mem(strlen(name) + 1, &ch->name)) != 0)
		goto fail;
	strcpy(ch->name, name);
	ch->magic = EXT2_ET_MAGIC_IO_CHANNEL;
	ch->manager = &fs_io_manager;
	ch->block_size = 1024;
	ch->refcount = 1;
	ch->private_data = io;
	*chp = ch;
	return 0;

fail:
	if (io != NULL) {
		cache_free(io);
		rumpuser_free(io, sizeof(*io));
	}
	ext2fs_free_mem(&ch);
	return error;
}

/* Not const only because libext2fs's io_manager type is a pointer to a
 * mutable struct; nothing writes to it. */
struct struct_io_manager fs_io_manager = {
	.magic = EXT2_ET_MAGIC_IO_MANAGER,
	.name = "fs_ext2 backend",
	.open = fs_io_open,
	.close = fs_io_close,
	.set_blksize = fs_io_set_blksize,
	.read_blk = fs_io_read_blk,
	.write_blk = fs_io_write_blk,
	.flush = fs_io_flush,
	.write_byte = fs_io_write_byte,
	.set_option = fs_io_set_option,
	.get_stats = fs_io_get_stats,
	.read_blk64 = fs_io_read_blk64,
	.write_blk64 = fs_io_write_blk64,
	.discard = fs_io_discard,
	.zeroout = fs_io_zeroout,
};

/* ---- what fs_ext2 asks of its channel -------------------------------- */

static void
add_range(struct meta_range *r, unsigned *n, uint64_t start, uint64_t len,
          enum bclass cls)
{
	if (len == 0)
		return;
	r[*n] = (struct meta_range){ .start = start, .len = len, .cls = cls };
	(*n)++;
}

static int
cmp_range(const void *a, const void *b)
{
	const struct meta_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

int
fs_io_attach(io_channel ch, ext2_filsys fs, ext2fs_block_bitmap fresh)
{
	struct fs_io *io = chan_io(ch);
	struct meta_range *r;
	blk64_t super, old_desc, new_desc;
	blk_t used;
	uint64_t desc;
	unsigned n = 0, m, i, per = 5;
	dgrp_t g;
	int error;

	if (fs->group_desc_count > UINT32_MAX / per)
		return EFBIG;
	if ((error = rumpuser_malloc(sizeof(*r) * fs->group_desc_count * per,
	                             0, (void **)&r)) != 0)
		return error;
	desc = ext2fs_has_feature_meta_bg(fs->super)
	       ? fs->super->s_first_meta_bg : fs->desc_blocks;
	for (g = 0; g < fs->group_desc_count; g++) {
		add_range(r, &n, ext2fs_block_bitmap_loc(fs, g), 1, BC_BITMAP);
		add_range(r, &n, ext2fs_inode_bitmap_loc(fs, g), 1, BC_BITMAP);
		add_range(r, &n, ext2fs_inode_table_loc(fs, g),
		          fs->inode_blocks_per_group, BC_ITABLE);
		if (ext2fs_super_and_bgd_loc2(fs, g, &super, &old_desc,
		                              &new_desc, &used) != 0)
			continue;
		/* Group 0's superblock lives in block 0 with 4 KiB blocks. */
		if (super != 0 || g == 0)
			add_range(r, &n, super, 1, BC_SUPER);
		if (old_desc != 0)
			add_range(r, &n, old_desc, desc, BC_SUPER);
		if (new_desc != 0)
			add_range(r, &n, new_desc, 1, BC_SUPER);
	}
	qsort(r, n, sizeof(*r), cmp_range);
	/* Neighbours of one class merge (flex_bg packs them); overlaps,
	 * which only a damaged image has, keep the first class. */
	for (m = 0, i = 0; i < n; i++) {
		uint64_t prev_end = m > 0 ? r[m - 1].start + r[m - 1].len : 0;

		if (m > 0 && (r[i].start < prev_end ||
		              (r[i].start == prev_end &&
		               r[i].cls == r[m - 1].cls))) {
			if (r[i].start + r[i].len > prev_end)
				r[m - 1].len = r[i].start + r[i].len -
				               r[m - 1].start;
			continue;
		}
		r[m++] = r[i];
	}
	rumpuser_free(io->ranges, 0);
	io->ranges = r;
	io->nranges = m;
	io->fresh = fresh;
	io->fs_blocks = ext2fs_blocks_count(fs->super);
	return 0;
}

unsigned
fs_io_dirty(io_channel ch, uint64_t *since)
{
	struct fs_io *io = chan_io(ch);

	if (since != NULL)
		*since = io->dirty_since;
	return io->ndirty;
}

unsigned
fs_io_capacity(io_channel ch)
{
	return chan_io(ch)->cap;
}

void
fs_io_set_journal(io_channel ch, ext2_filsys fs, struct fs_journal *j)
{
	struct fs_io *io = chan_io(ch);
	uint64_t reserve;

	fs_journal_close(io->jnl);
	io->jnl = j;
	io->jnl_on = j != NULL;
	/* At a commit ext2fs_flush2 adds bitmaps and descriptors of the
	 * groups that changed: at most all of them, and the superblock. */
	reserve = (uint64_t)fs->group_desc_count * 2 + fs->desc_blocks + 1;
	io->meta_reserve = reserve > UINT32_MAX ? UINT32_MAX
	                                        : (unsigned)reserve;
}

int
fs_io_journal_stop(io_channel ch)
{
	struct fs_io *io = chan_io(ch);
	int error;

	if (!io->jnl_on)
		return 0;
	if ((error = journal_write_back(io)) != 0)
		return error;
	/* The superblock written next says "no recovery needed": the log
	 * must be known empty first. */
	if (io->jnl_reset_unsynced) {
		if ((error = io->be->flush(io->be->ctx)) != 0)
			return error;
		io->jnl_reset_unsynced = false;
	}
	io->jnl_on = false;
	return 0;
}

void
fs_io_data_mode(io_channel ch, bool on)
{
	chan_io(ch)->data_mode = on;
}

bool
fs_io_journal_due(io_channel ch)
{
	struct fs_io *io = chan_io(ch);

	if (!io->jnl_on)
		return false;
	return (uint64_t)io->ndirty_meta + io->meta_reserve >=
	       fs_journal_capacity(io->jnl) / 2;
}

int
fs_io_freed(io_channel ch, ext2fs_block_bitmap map, uint64_t blk,
            uint64_t count, bool fresh)
{
	struct fs_io *io = chan_io(ch);
	struct held_range *r, *grown;
	unsigned cap;
	int error;

	cache_forget(io, blk, count);
	if (fresh || count == 0)
		return 0;
	r = io->nheld ? &io->held[io->nheld - 1] : NULL;
	if (r != NULL && r->start + r->len == blk) {
		r->len += count;
	} else {
		if (io->nheld == io->held_cap) {
			cap = io->held_cap ? io->held_cap * 2 : 64;
			if ((error = rumpuser_malloc(sizeof(*grown) * cap, 0,
			                             (void **)&grown)) != 0)
				return error;
			if (io->nheld)
				memcpy(grown, io->held,
				       sizeof(*grown) * io->nheld);
			rumpuser_free(io->held, 0);
			io->held = grown;
			io->held_cap = cap;
		}
		io->held[io->nheld++] = (struct held_range){ blk, count };
	}
	io->held_blocks += count;
	ext2fs_mark_block_bitmap_range2(map, blk, (unsigned)count);
	return 0;
}

void
fs_io_release_held(io_channel ch, ext2fs_block_bitmap map)
{
	struct fs_io *io = chan_io(ch);

	for (unsigned i = 0; i < io->nheld; i++)
		ext2fs_unmark_block_bitmap_range2(map, io->held[i].start,
		                                  (unsigned)io->held[i].len);
}

void
fs_io_rehold(io_channel ch, ext2fs_block_bitmap map)
{
	struct fs_io *io = chan_io(ch);

	for (unsigned i = 0; i < io->nheld; i++)
		ext2fs_mark_block_bitmap_range2(map, io->held[i].start,
		                                (unsigned)io->held[i].len);
}

void
fs_io_commit_held(io_channel ch)
{
	struct fs_io *io = chan_io(ch);

	io->nheld = 0;
	io->held_blocks = 0;
}

uint64_t
fs_io_held(io_channel ch)
{
	return chan_io(ch)->held_blocks;
}

void
fs_io_adopt_overlay(io_channel ch, struct fs_overlay *ov)
{
	chan_io(ch)->overlay = ov;
}

/* ---- the read-only overlay --------------------------------------------- */

/* 64 MiB of replayed blocks at most: a journal is rarely bigger, and a
 * hostile one must not take the process's memory. */
#define OVERLAY_MAX_BYTES (64u << 20)

struct overlay_block {
	uint64_t blk;
	unsigned order;                 /* of put(): the last one wins */
	unsigned char *data;
};

struct fs_overlay {
	struct fs_ext2_backend be;      /* what the channel reads */
	const struct fs_ext2_backend *lower;
	unsigned bs;
	struct overlay_block *v;
	unsigned n, cap;
	bool sorted;
};

static int
cmp_overlay(const void *a, const void *b)
{
	const struct overlay_block *x = a, *y = b;

	if (x->blk != y->blk)
		return x->blk < y->blk ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Sorted by block, one entry per block (the last put). */
static void
overlay_sort(struct fs_overlay *ov)
{
	unsigned i, m = 0;

	ov->sorted = true;
	if (ov->n == 0)
		return;
	qsort(ov->v, ov->n, sizeof(*ov->v), cmp_overlay);
	for (i = 0; i < ov->n; i++) {
		if (i + 1 < ov->n && ov->v[i + 1].blk == ov->v[i].blk) {
			rumpuser_free(ov->v[i].data, 0);
			continue;
		}
		ov->v[m++] = ov->v[i];
	}
	ov->n = m;
}

static int
overlay_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct fs_overlay *ov = ctx;
	unsigned lo = 0, hi, mid;
	uint64_t end = off + len, bstart, from, to;
	int error;

	if ((error = ov->lower->read(ov->lower->ctx, off, buf, len)) != 0)
		return error;
	if (!ov->sorted)
		overlay_sort(ov);
	hi = ov->n;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((ov->v[mid].blk + 1) * ov->bs <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < ov->n && ov->v[lo].blk * ov->bs < end; lo++) {
		bstart = ov->v[lo].blk * ov->bs;
		from = bstart > off ? bstart : off;
		to = bstart + ov->bs < end ? bstart + ov->bs : end;
		memcpy((unsigned char *)buf + (from - off),
		       ov->v[lo].data + (from - bstart), to - from);
	}
	return 0;
}

static int
overlay_write(void *ctx, uint64_t off, const void *buf, size_t len)
{
	(void)ctx;
	(void)off;
	(void)buf;
	(void)len;
	return EROFS;
}

static int
overlay_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

int
fs_overlay_create(const struct fs_ext2_backend *be, unsigned bs,
                  struct fs_overlay **ovp)
{
	struct fs_overlay *ov;
	int error;

	if ((error = rumpuser_malloc(sizeof(*ov), 0, (void **)&ov)) != 0)
		return error;
	memset(ov, 0, sizeof(*ov));
	ov->lower = be;
	ov->bs = bs;
	ov->be = (struct fs_ext2_backend){
		.ctx = ov,
		.size = be->size,
		.read_only = true,
		.read = overlay_read,
		.write = overlay_write,
		.flush = overlay_flush,
	};
	*ovp = ov;
	return 0;
}

int
fs_overlay_put(void *ctx, uint64_t blk, const void *data)
{
	struct fs_overlay *ov = ctx;
	struct overlay_block *grown;
	unsigned cap;
	int error;

	if (blk >= ov->lower->size / ov->bs)
		return EIO;
	if ((uint64_t)(ov->n + 1) * ov->bs > OVERLAY_MAX_BYTES)
		return E2BIG;
	if (ov->n == ov->cap) {
		cap = ov->cap ? ov->cap * 2 : 64;
		if ((error = rumpuser_malloc(sizeof(*grown) * cap, 0,
		                             (void **)&grown)) != 0)
			return error;
		if (ov->n)
			memcpy(grown, ov->v, sizeof(*grown) * ov->n);
		rumpuser_free(ov->v, 0);
		ov->v = grown;
		ov->cap = cap;
	}
	if ((error = rumpuser_malloc(ov->bs, 0,
	                             (void **)&ov->v[ov->n].data)) != 0)
		return error;
	memcpy(ov->v[ov->n].data, data, ov->bs);
	ov->v[ov->n].blk = blk;
	ov->v[ov->n].order = ov->n;
	ov->n++;
	ov->sorted = false;
	return 0;
}

const struct fs_ext2_backend *
fs_overlay_backend(struct fs_overlay *ov)
{
	return &ov->be;
}

void
fs_overlay_destroy(struct fs_overlay *ov)
{
	if (ov == NULL)
		return;
	for (unsigned i = 0; i < ov->n; i++)
		rumpuser_free(ov->v[i].data, 0);
	rumpuser_free(ov->v, 0);
	rumpuser_free(ov, sizeof(*ov));
}

/* ---- the image backend ------------------------------------------------- */

struct image {
	int fd;
};

static int
image_rw(void *ctx, enum rumpuser_bio_op op, uint64_t off, void *buf,
         size_t len)
{
	struct image *im = ctx;
	int64_t done;
	int error;

	error = rumpuser_bio_sync(im->fd, op, buf, len, off, &done);
	if (error)
		return error;
	if (done < 0)
		return (int)-done;
	if ((op == RUMPUSER_BIO_READ || op == RUMPUSER_BIO_WRITE) &&
	    (uint64_t)done != len)
		return EIO;
	return 0;
}

static int
image_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	return image_rw(ctx, RUMPUSER_BIO_READ, off, buf, len);
}

static int
image_write(void *ctx, uint64_t off, const void *buf, size_t len)
{
	return image_rw(ctx, RUMPUSER_BIO_WRITE, off, (void *)buf, len);
}

static int
image_flush(void *ctx)
{
	return image_rw(ctx, RUMPUSER_BIO_FSYNC, 0, NULL, 0);
}

static int
image_discard(void *ctx, uint64_t off, uint64_t len)
{
	return image_rw(ctx, RUMPUSER_BIO_DISCARD, off, NULL, len);
}

static int
image_zeroout(void *ctx, uint64_t off, uint64_t len)
{
	return image_rw(ctx, RUMPUSER_BIO_WRITE_ZEROES, off, NULL, len);
}

int
fs_ext2_image_open(const char *path, bool read_only,
                   struct fs_ext2_backend *be)
{
	struct rumpuser_fileinfo info;
	struct image *im;
	int error, fd;

	error = rumpuser_open(path, read_only ? RUMPUSER_OPEN_RDONLY
	                                      : RUMPUSER_OPEN_RDWR, &fd);
	if (error)
		return error;
	if ((error = rumpuser_getfileinfo(fd, &info)) != 0)
		goto fail;
	if (info.type != RUMPUSER_FT_REG && info.type != RUMPUSER_FT_BLK) {
		error = EINVAL;
		goto fail;
	}
	if ((error = rumpuser_malloc(sizeof(*im), 0, (void **)&im)) != 0)
		goto fail;
	im->fd = fd;
	*be = (struct fs_ext2_backend){
		.ctx = im,
		.size = info.size,
		.read_only = read_only,
		.read = image_read,
		.write = image_write,
		.flush = image_flush,
		.discard = image_discard,
		.zeroout = image_zeroout,
	};
	return 0;

fail:
	rumpuser_close(fd);
	return error;
}

void
fs_ext2_image_close(struct fs_ext2_backend *be)
{
	struct image *im = be->ctx;

	if (im == NULL)
		return;
	rumpuser_close(im->fd);
	rumpuser_free(im, sizeof(*im));
	be->ctx = NULL;
}
