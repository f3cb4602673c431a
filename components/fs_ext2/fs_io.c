/*
 * The io_manager of fs_ext2: libext2fs's block reads and writes go to a
 * struct fs_ext2_backend through a write-back cache.
 *
 * Why a cache of our own: libext2fs reads and writes metadata a block at
 * a time (an inode table block per inode update, a directory block per
 * lookup); over IPC to rumpdisk each would be a round trip.  Single-block
 * transfers are cached; multi-block transfers (file data) go straight to
 * the backend, reads overlaid with any newer cached copy, writes updating
 * the cached copies so the cache never holds older data than the backend.
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

struct cblock {
	uint64_t blk;
	struct cblock *hnext;           /* hash chain */
	struct cblock *prev, *next;     /* LRU list, most recent first */
	unsigned char *data;
	bool dirty;
};

struct fs_io {
	const struct fs_ext2_backend *be;
	unsigned bs;
	size_t cache_bytes;             /* asked for, 0: default */
	unsigned cap;                   /* blocks the cache holds */
	struct cblock *blocks;          /* cap of them */
	unsigned char *pool;            /* cap * bs bytes */
	struct cblock **hash;
	unsigned hash_mask;
	struct cblock lru;              /* sentinel */
	struct cblock *free_list;       /* chained through hnext */
	unsigned ndirty;
	struct cblock **sorted;         /* scratch for flushing, cap entries */
	unsigned char *merge;           /* MERGE_MAX bytes */
	unsigned char *scratch;         /* one block, for rw_bytes */
	struct struct_io_stats stats;
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
lru_unlink(struct cblock *b)
{
	b->prev->next = b->next;
	b->next->prev = b->prev;
}

static void
lru_push_front(struct fs_io *io, struct cblock *b)
{
	b->next = io->lru.next;
	b->prev = &io->lru;
	io->lru.next->prev = b;
	io->lru.next = b;
}

static void
hash_remove(struct fs_io *io, struct cblock *b)
{
	struct cblock **pp = &io->hash[hash_of(io, b->blk)];

	while (*pp != b)
		pp = &(*pp)->hnext;
	*pp = b->hnext;
}

static void
cache_drop(struct fs_io *io, struct cblock *b)
{
	hash_remove(io, b);
	lru_unlink(b);
	if (b->dirty)
		io->ndirty--;
	b->dirty = false;
	b->hnext = io->free_list;
	io->free_list = b;
}

static int
be_write(struct fs_io *io, uint64_t blk, const void *data, size_t len)
{
	int error = io->be->write(io->be->ctx, blk * io->bs, data, len);

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

static int
cmp_blk(const void *a, const void *b)
{
	uint64_t x = (*(struct cblock *const *)a)->blk;
	uint64_t y = (*(struct cblock *const *)b)->blk;

	return x < y ? -1 : x > y;
}

/* Writes every dirty block, sorted, runs of neighbours merged. */
static int
cache_write_back(struct fs_io *io)
{
	unsigned n = 0, i, j, per = MERGE_MAX / io->bs;
	struct cblock *b;
	int error;

	if (io->ndirty == 0)
		return 0;
	for (b = io->lru.next; b != &io->lru; b = b->next)
		if (b->dirty)
			io->sorted[n++] = b;
	qsort(io->sorted, n, sizeof(io->sorted[0]), cmp_blk);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && j - i < per &&
		     io->sorted[j]->blk == io->sorted[j - 1]->blk + 1; j++)
			;
		if (j - i == 1) {
			error = be_write(io, io->sorted[i]->blk,
			                 io->sorted[i]->data, io->bs);
		} else {
			for (unsigned k = i; k < j; k++)
				memcpy(io->merge + (size_t)(k - i) * io->bs,
				       io->sorted[k]->data, io->bs);
			error = be_write(io, io->sorted[i]->blk, io->merge,
			                 (size_t)(j - i) * io->bs);
		}
		if (error)
			return error;
		for (unsigned k = i; k < j; k++)
			io->sorted[k]->dirty = false;
		io->ndirty -= j - i;
	}
	return 0;
}

/* A free cache block for blk, not yet in the hash or LRU list. */
static int
cache_get_free(struct fs_io *io, struct cblock **bp)
{
	struct cblock *b;
	int error;

	if (io->free_list == NULL) {
		b = io->lru.prev;
		if (b->dirty && (error = cache_write_back(io)) != 0)
			return error;
		cache_drop(io, b);
	}
	b = io->free_list;
	io->free_list = b->hnext;
	*bp = b;
	return 0;
}

static void
cache_insert(struct fs_io *io, struct cblock *b, uint64_t blk)
{
	unsigned h = hash_of(io, blk);

	b->blk = blk;
	b->hnext = io->hash[h];
	io->hash[h] = b;
	lru_push_front(io, b);
}

static void
cache_free(struct fs_io *io)
{
	rumpuser_free(io->blocks, 0);
	rumpuser_free(io->pool, 0);
	rumpuser_free(io->hash, 0);
	rumpuser_free(io->sorted, 0);
	rumpuser_free(io->merge, 0);
	rumpuser_free(io->scratch, 0);
	io->scratch = NULL;
	io->blocks = NULL;
	io->pool = NULL;
	io->hash = NULL;
	io->sorted = NULL;
	io->merge = NULL;
	io->cap = 0;
	io->ndirty = 0;
	io->free_list = NULL;
	io->lru.next = io->lru.prev = &io->lru;
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
	    (error = rumpuser_malloc(sizeof(*io->sorted) * cap, 0,
	                             (void **)&io->sorted)) != 0 ||
	    (error = rumpuser_malloc(MERGE_MAX > bs ? MERGE_MAX : bs, 4096,
	                             (void **)&io->merge)) != 0 ||
	    (error = rumpuser_malloc(bs, 4096, (void **)&io->scratch)) != 0) {
		cache_free(io);
		return error;
	}
	memset(io->hash, 0, sizeof(*io->hash) * hsize);
	io->hash_mask = hsize - 1;
	for (i = 0; i < cap; i++) {
		io->blocks[i].data = io->pool + (size_t)i * bs;
		io->blocks[i].dirty = false;
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
	struct cblock *b, *next;

	if (count > io->cap) {
		for (b = io->lru.next; b != &io->lru; b = next) {
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
		lru_unlink(b);
		lru_push_front(io, b);
		memcpy(data, b->data, io->bs);
		return 0;
	}
	if ((error = cache_get_free(io, &b)) != 0)
		return error;
	if ((error = be_read(io, blk, b->data, io->bs)) != 0) {
		b->hnext = io->free_list;
		io->free_list = b;
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
	if (io->lru.next == &io->lru)
		return 0;
	for (uint64_t i = 0; i < count; i++)
		if ((b = cache_find(io, blk + i)) != NULL)
			memcpy((unsigned char *)data + i * io->bs, b->data,
			       io->bs);
	return 0;
}

static errcode_t
write_one(struct fs_io *io, uint64_t blk, const void *data)
{
	struct cblock *b = cache_find(io, blk);
	int error;

	if (b != NULL) {
		lru_unlink(b);
		lru_push_front(io, b);
	} else {
		if ((error = cache_get_free(io, &b)) != 0)
			return error;
		cache_insert(io, b, blk);
	}
	memcpy(b->data, data, io->bs);
	if (!b->dirty) {
		b->dirty = true;
		io->ndirty++;
	}
	/* Keeps clean blocks around for reads, and flushes large. */
	if (io->ndirty > io->cap / 2)
		return cache_write_back(io);
	return 0;
}

static errcode_t
write_blocks(struct fs_io *io, uint64_t blk, uint64_t count, const void *data)
{
	struct cblock *b;
	int error;

	if (count == 1)
		return write_one(io, blk, data);
	/* Cached copies take the new bytes; a dirty one stays dirty (it is
	 * written again at the next flush, which is harmless). */
	for (uint64_t i = 0; i < count && io->lru.next != &io->lru; i++)
		if ((b = cache_find(io, blk + i)) != NULL)
			memcpy(b->data,
			       (const unsigned char *)data + i * io->bs, io->bs);
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
	if ((error = cache_write_back(io)) != 0)
		return error;
	return io->be->flush(io->be->ctx);
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
	io->lru.next = io->lru.prev = &io->lru;
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
