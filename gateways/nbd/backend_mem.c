/*
 * A RAM export for testing the gateway with real NBD clients without
 * rumpdisk: "mem:SIZE" serves one export, wd0, of SIZE bytes (suffixes
 * K, M, G), with 512-byte sectors.
 *
 * I/O runs synchronously in submit().  Pages never written, trimmed or
 * zeroed whole are holes, so base:allocation has something to report.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "backend.h"

#define MEM_SECTOR 512u
#define MEM_PAGE   4096u
#define MEM_NAME   "wd0"

struct nbd_export {
	struct nbd_backend base;       /* first: the backend is the export */
	pthread_rwlock_t lock;         /* data and map: writers exclusive */
	uint8_t *data;
	uint64_t size;
	uint64_t npages;
	uint64_t *map;                 /* bit set: page allocated */
};

static struct nbd_export *
mem_of(struct nbd_backend *b)
{
	return (struct nbd_export *)b;
}

static bool
page_allocated(const struct nbd_export *m, uint64_t pg)
{
	return m->map[pg / 64] >> (pg % 64) & 1;
}

static void
page_set(struct nbd_export *m, uint64_t pg, bool on)
{
	if (on)
		m->map[pg / 64] |= 1ull << (pg % 64);
	else
		m->map[pg / 64] &= ~(1ull << (pg % 64));
}

static int
mem_list(struct nbd_backend *b, int (*fn)(void *arg, const char *name),
         void *arg)
{
	(void)b;
	return fn(arg, MEM_NAME);
}

static int
mem_lookup(struct nbd_backend *b, const char *name, struct nbd_export_desc *d)
{
	struct nbd_export *m = mem_of(b);

	if (name[0] != '\0' && strcmp(name, MEM_NAME) != 0)
		return ENOENT;
	memset(d, 0, sizeof(*d));
	strcpy(d->name, MEM_NAME);
	d->size = m->size;
	d->block_size = MEM_SECTOR;
	d->multi_conn = true;
	return 0;
}

static int
mem_open(struct nbd_backend *b, const char *name, struct nbd_export_desc *d,
         struct nbd_export **ep)
{
	int err = mem_lookup(b, name, d);

	if (err == 0)
		*ep = mem_of(b);
	return err;
}

static void
mem_close(struct nbd_export *e)
{
	(void)e;
}

static void *
mem_buf_alloc(struct nbd_export *e, size_t len)
{
	(void)e;
	return malloc(len);
}

static void
mem_buf_free(struct nbd_export *e, void *buf)
{
	(void)e;
	free(buf);
}

/* Marks pages touched by [off, off+len) allocated; under the write lock. */
static void
mem_allocate(struct nbd_export *m, uint64_t off, uint64_t len)
{
	uint64_t pg;

	for (pg = off / MEM_PAGE; pg * MEM_PAGE < off + len; pg++)
		page_set(m, pg, true);
}

/*
 * Zeroes [off, off+len); whole pages become holes unless keep is set,
 * and give their memory back.  Under the write lock.
 */
static void
mem_zero(struct nbd_export *m, uint64_t off, uint64_t len, bool keep)
{
	uint64_t first = (off + MEM_PAGE - 1) / MEM_PAGE;
	uint64_t end = (off + len) / MEM_PAGE, pg;

	if (keep || first >= end) {
		memset(m->data + off, 0, len);
		if (keep)
			mem_allocate(m, off, len);
		return;
	}
	memset(m->data + off, 0, first * MEM_PAGE - off);
	memset(m->data + end * MEM_PAGE, 0, off + len - end * MEM_PAGE);
	/* Anonymous private pages read back as zeroes once dropped. */
	if (madvise(m->data + first * MEM_PAGE, (end - first) * MEM_PAGE,
	            MADV_DONTNEED) != 0)
		memset(m->data + first * MEM_PAGE, 0,
		       (end - first) * MEM_PAGE);
	for (pg = first; pg < end; pg++)
		page_set(m, pg, false);
}

/* Extents of [off, off+len) into buf; returns how many. */
static int64_t
mem_block_status(struct nbd_export *m, uint64_t off, uint32_t len,
                 struct nbd_extent *ext, uint32_t max)
{
	uint64_t pos = off, end = off + len;
	uint32_t n = 0;

	while (pos < end && n < max) {
		bool alloc = page_allocated(m, pos / MEM_PAGE);
		uint64_t start = pos;

		while (pos < end && page_allocated(m, pos / MEM_PAGE) == alloc)
			pos = (pos / MEM_PAGE + 1) * MEM_PAGE;
		if (pos > end)
			pos = end;
		ext[n++] = (struct nbd_extent){
			.length = pos - start,
			.flags = alloc ? 0 : NBD_STATE_HOLE | NBD_STATE_ZERO,
		};
	}
	return n;
}

static void
mem_submit(struct nbd_export *m, struct nbd_io *io)
{
	struct nbd_backend *b = &m->base;

	/* The connection checked the range against our size already. */
	switch (io->op) {
	case NBD_IO_READ:
		pthread_rwlock_rdlock(&m->lock);
		memcpy(io->buf, m->data + io->offset, io->len);
		pthread_rwlock_unlock(&m->lock);
		io->result = io->len;
		break;
	case NBD_IO_WRITE:
		pthread_rwlock_wrlock(&m->lock);
		memcpy(m->data + io->offset, io->buf, io->len);
		mem_allocate(m, io->offset, io->len);
		pthread_rwlock_unlock(&m->lock);
		io->result = io->len;
		break;
	case NBD_IO_FLUSH:
		io->result = 0;
		break;
	case NBD_IO_TRIM:
	case NBD_IO_ZERO:
		pthread_rwlock_wrlock(&m->lock);
		mem_zero(m, io->offset, io->len, io->no_hole);
		pthread_rwlock_unlock(&m->lock);
		io->result = 0;
		break;
	case NBD_IO_BLOCK_STATUS:
		pthread_rwlock_rdlock(&m->lock);
		io->result = mem_block_status(m, io->offset, io->len, io->buf,
		                              io->buf_len /
		                              sizeof(struct nbd_extent));
		pthread_rwlock_unlock(&m->lock);
		break;
	default:
		io->result = -EINVAL;
		break;
	}
	b->complete(b->complete_ctx, &io, 1);
}

static void
mem_destroy(struct nbd_backend *b)
{
	struct nbd_export *m = mem_of(b);

	munmap(m->data, m->size);
	free(m->map);
	pthread_rwlock_destroy(&m->lock);
	free(m);
}

static const struct nbd_backend_ops mem_ops = {
	.name = "mem",
	.list = mem_list,
	.lookup = mem_lookup,
	.open = mem_open,
	.close = mem_close,
	.buf_alloc = mem_buf_alloc,
	.buf_free = mem_buf_free,
	.submit = mem_submit,
	.destroy = mem_destroy,
};

/* "SIZE[K|M|G]" to bytes; EINVAL unless a positive multiple of a sector. */
static int
parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (*s < '0' || *s > '9')
		return EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return EINVAL;
	switch (*end) {
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	}
	if (*end != '\0' || v == 0 || v > (UINT64_MAX >> 1) >> shift)
		return EINVAL;
	v <<= shift;
	if (v % MEM_SECTOR != 0)
		return EINVAL;
	*out = v;
	return 0;
}

int
nbd_backend_mem_create(const char *spec, struct nbd_backend **bp)
{
	struct nbd_export *m;
	int err;

	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return ENOMEM;
	if ((err = parse_size(spec, &m->size)) != 0)
		goto fail;
	m->npages = (m->size + MEM_PAGE - 1) / MEM_PAGE;
	m->map = calloc((m->npages + 63) / 64, sizeof(uint64_t));
	if (m->map == NULL) {
		err = ENOMEM;
		goto fail;
	}
	m->data = mmap(NULL, m->size, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m->data == MAP_FAILED) {
		err = errno;
		goto fail_map;
	}
	if ((err = pthread_rwlock_init(&m->lock, NULL)) != 0)
		goto fail_data;
	m->base.ops = &mem_ops;
	*bp = &m->base;
	return 0;

fail_data:
	munmap(m->data, m->size);
fail_map:
	free(m->map);
fail:
	free(m);
	return err;
}
