/*
 * fs_ext2: an in-memory name index of large linear directories.
 *
 * libext2fs finds a name by reading (and checksumming) every block of a
 * directory, and ext2fs_link and ext2fs_unlink do the same to find room
 * or the victim: filling a directory of n names costs O(n^2) block reads.
 * Here a directory of at least DIX_MIN_BLOCKS blocks gets, on first use,
 * a hash table name -> (inode, file type, block, offset), plus the
 * largest free gap of each block, so that a look-up, an insert and a
 * removal each touch one block.
 *
 * Trust: every change to the blocks of an indexed directory goes through
 * this file (fs_dir.c routes them here first), so the index is complete
 * and a miss is an answer.  A hit is still checked against the block it
 * names before anything relies on it; a mismatch drops the index and the
 * caller falls back to libext2fs's scan.  An index remembers the
 * directory's generation and size and is rebuilt when either moved.
 *
 * Only plain linear directories are indexed: htree (dir_index) ones are
 * left to libext2fs, whose ext2fs_link keeps their tree, and so are
 * inline, encrypted and case-folded ones, whose names do not compare as
 * bytes.
 *
 * Memory is bounded per mount (DIX_MAX_BYTES, DIX_MAX_DIRS): the least
 * recently used indexes are dropped whole.
 */
#include <errno.h>
#include <string.h>

#include "rump/rumpuser.h"

#include "fs_int.h"

#define E(code) fs_ext2_errno(code)

/* Below this many blocks a scan is as cheap as keeping an index. */
#define DIX_MIN_BLOCKS 4
#define DIX_MAX_BYTES (64u << 20)
#define DIX_MAX_DIRS 64

/* One name.  Owned by its directory's table; name is not terminated. */
struct dix_ent {
	struct dix_ent *next;           /* hash chain */
	uint32_t hash;
	ext2_ino_t ino;
	uint32_t lblk;                  /* where the entry is */
	uint32_t off;
	uint8_t ftype;
	uint8_t len;
	char name[];
};

/* The index of one directory. */
struct dix {
	struct dix *prev, *next;        /* the mount's list, most recent first */
	ext2_ino_t dir;
	uint32_t gen;
	uint64_t size;                  /* i_size the index describes */
	struct dix_ent **buckets;
	uint32_t nbuckets, count;
	uint32_t nblocks, capblocks;
	blk64_t *pblk;                  /* per logical block; 0: a hole */
	uint32_t *room;                 /* largest entry that fits, bytes */
	uint32_t first_room;            /* no block before this has room */
	size_t bytes;
};

struct fs_dindex {
	struct dix *head, *tail;
	unsigned ndirs;
	size_t bytes;
	uint32_t seed;                  /* hash seed: names are the client's */
};

static uint32_t
name_hash(uint32_t seed, const char *name, size_t len)
{
	uint32_t h = 2166136261u ^ seed;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 16777619u;
	}
	/* FNV's low bits are weak; buckets use them. */
	h ^= h >> 15;
	h *= 0x2c1b3c6du;
	h ^= h >> 12;
	return h;
}

static size_t
ent_size(size_t len)
{
	return sizeof(struct dix_ent) + len;
}

/* ---- the mount's set of indexes ---------------------------------------- */

static struct fs_dindex *
set_of(struct fs_ext2 *m)
{
	struct fs_dindex *set;

	if (m->dindex != NULL)
		return m->dindex;
	if (rumpuser_malloc(sizeof(*set), 0, (void **)&set) != 0)
		return NULL;
	memset(set, 0, sizeof(*set));
	rumpuser_getrandom(&set->seed, sizeof(set->seed));
	m->dindex = set;
	return set;
}

static void
dix_free(struct dix *x)
{
	struct dix_ent *e, *next;
	uint32_t b;

	for (b = 0; b < x->nbuckets; b++) {
		for (e = x->buckets[b]; e != NULL; e = next) {
			next = e->next;
			rumpuser_free(e, ent_size(e->len));
		}
	}
	rumpuser_free(x->buckets, x->nbuckets * sizeof(*x->buckets));
	rumpuser_free(x->pblk, x->capblocks * sizeof(*x->pblk));
	rumpuser_free(x->room, x->capblocks * sizeof(*x->room));
	rumpuser_free(x, sizeof(*x));
}

static void
unlink_dix(struct fs_dindex *set, struct dix *x)
{
	if (x->prev != NULL)
		x->prev->next = x->next;
	else
		set->head = x->next;
	if (x->next != NULL)
		x->next->prev = x->prev;
	else
		set->tail = x->prev;
	x->prev = x->next = NULL;
}

static void
push_front(struct fs_dindex *set, struct dix *x)
{
	x->prev = NULL;
	x->next = set->head;
	if (set->head != NULL)
		set->head->prev = x;
	set->head = x;
	if (set->tail == NULL)
		set->tail = x;
}

static void
drop_dix(struct fs_dindex *set, struct dix *x)
{
	unlink_dix(set, x);
	set->ndirs--;
	set->bytes -= x->bytes;
	dix_free(x);
}

static struct dix *
find_dix(struct fs_dindex *set, ext2_ino_t dir)
{
	struct dix *x;

	for (x = set->head; x != NULL; x = x->next)
		if (x->dir == dir)
			return x;
	return NULL;
}

void
fs_dindex_forget(struct fs_ext2 *m, ext2_ino_t dir)
{
	struct dix *x;

	if (m->dindex != NULL && (x = find_dix(m->dindex, dir)) != NULL)
		drop_dix(m->dindex, x);
}

void
fs_dindex_forget_all(struct fs_ext2 *m)
{
	struct fs_dindex *set = m->dindex;

	while (set != NULL && set->head != NULL)
		drop_dix(set, set->head);
}

void
fs_dindex_fini(struct fs_ext2 *m)
{
	fs_dindex_forget_all(m);
	rumpuser_free(m->dindex, sizeof(*m->dindex));
	m->dindex = NULL;
}

/* Makes room for need more bytes, dropping old indexes other than keep;
 * false if the cap cannot be met. */
static bool
reserve(struct fs_dindex *set, const struct dix *keep, size_t need)
{
	struct dix *x = set->tail, *prev;

	while (x != NULL && set->bytes + need > DIX_MAX_BYTES) {
		prev = x->prev;
		if (x != keep)
			drop_dix(set, x);
		x = prev;
	}
	return set->bytes + need <= DIX_MAX_BYTES;
}

/* ---- one directory's table --------------------------------------------- */

static int
grow_buckets(struct dix *x, struct fs_dindex *set)
{
	uint32_t n = x->nbuckets ? x->nbuckets * 2 : 256, b;
	size_t sz = n * sizeof(struct dix_ent *);
	struct dix_ent **nb, *e, *next;
	int error;

	if (!reserve(set, x, sz))
		return ENOMEM;
	if ((error = rumpuser_malloc(sz, 0, (void **)&nb)) != 0)
		return error;
	memset(nb, 0, sz);
	for (b = 0; b < x->nbuckets; b++) {
		for (e = x->buckets[b]; e != NULL; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	}
	rumpuser_free(x->buckets, x->nbuckets * sizeof(*x->buckets));
	x->bytes += sz - x->nbuckets * sizeof(*x->buckets);
	set->bytes += sz - x->nbuckets * sizeof(*x->buckets);
	x->buckets = nb;
	x->nbuckets = n;
	return 0;
}

static int
grow_blocks(struct dix *x, struct fs_dindex *set, uint32_t want)
{
	uint32_t n = x->capblocks ? x->capblocks : 16;
	blk64_t *pblk;
	uint32_t *room;
	size_t more;
	int error;

	if (want <= x->capblocks)
		return 0;
	while (n < want)
		n *= 2;
	more = (n - x->capblocks) * (sizeof(*pblk) + sizeof(*room));
	if (!reserve(set, x, more))
		return ENOMEM;
	if ((error = rumpuser_malloc(n * sizeof(*pblk), 0,
	                             (void **)&pblk)) != 0)
		return error;
	if ((error = rumpuser_malloc(n * sizeof(*room), 0,
	                             (void **)&room)) != 0) {
		rumpuser_free(pblk, n * sizeof(*pblk));
		return error;
	}
	if (x->nblocks > 0) {
		memcpy(pblk, x->pblk, x->nblocks * sizeof(*pblk));
		memcpy(room, x->room, x->nblocks * sizeof(*room));
	}
	rumpuser_free(x->pblk, x->capblocks * sizeof(*x->pblk));
	rumpuser_free(x->room, x->capblocks * sizeof(*x->room));
	x->pblk = pblk;
	x->room = room;
	x->capblocks = n;
	x->bytes += more;
	set->bytes += more;
	return 0;
}

static int
add_ent(struct dix *x, struct fs_dindex *set, const char *name, size_t len,
        ext2_ino_t ino, int ftype, uint32_t lblk, uint32_t off)
{
	struct dix_ent *e;
	int error;

	if (x->count >= x->nbuckets && (error = grow_buckets(x, set)) != 0)
		return error;
	if (!reserve(set, x, ent_size(len)))
		return ENOMEM;
	if ((error = rumpuser_malloc(ent_size(len), 0, (void **)&e)) != 0)
		return error;
	e->hash = name_hash(set->seed, name, len);
	e->ino = ino;
	e->ftype = (uint8_t)ftype;
	e->len = (uint8_t)len;
	e->lblk = lblk;
	e->off = off;
	memcpy(e->name, name, len);
	e->next = x->buckets[e->hash & (x->nbuckets - 1)];
	x->buckets[e->hash & (x->nbuckets - 1)] = e;
	x->count++;
	x->bytes += ent_size(len);
	set->bytes += ent_size(len);
	return 0;
}

/* The first entry of that name (a damaged directory may hold two, and
 * libext2fs's scan also answers the first). */
static struct dix_ent **
find_ent(struct dix *x, uint32_t seed, const char *name, size_t len)
{
	uint32_t h = name_hash(seed, name, len);
	struct dix_ent **pp, **first = NULL;

	for (pp = &x->buckets[h & (x->nbuckets - 1)]; *pp != NULL;
	     pp = &(*pp)->next) {
		struct dix_ent *e = *pp;

		if (e->hash != h || e->len != len ||
		    memcmp(e->name, name, len) != 0)
			continue;
		if (first == NULL || e->lblk < (*first)->lblk ||
		    (e->lblk == (*first)->lblk && e->off < (*first)->off))
			first = pp;
	}
	return first;
}

static void
del_ent(struct dix *x, struct fs_dindex *set, struct dix_ent **pp)
{
	struct dix_ent *e = *pp;

	*pp = e->next;
	x->count--;
	x->bytes -= ent_size(e->len);
	set->bytes -= ent_size(e->len);
	rumpuser_free(e, ent_size(e->len));
}

/* ---- directory blocks -------------------------------------------------- */

/* Bytes of a block entries may use: the checksum tail is not theirs. */
static unsigned
usable(struct fs_ext2 *m)
{
	return m->fs->blocksize -
	       (ext2fs_has_feature_metadata_csum(m->fs->super)
	        ? sizeof(struct ext2_dir_entry_tail) : 0);
}

/*
 * Walks the entries of one block (in m->blockbuf): checks the chain of
 * record lengths, and finds the largest entry that would fit.  With
 * metadata_csum the chain must end at the checksum tail.  For each entry
 * that names an inode, visit (when not NULL) is called.
 */
typedef int (*visit_fn)(void *ctx, const struct ext2_dir_entry *d,
                        unsigned off);

static int
walk_block(struct fs_ext2 *m, uint32_t *roomp, visit_fn visit, void *ctx)
{
	unsigned end = usable(m), off, rec, used, nlen, room = 0;
	struct ext2_dir_entry *d;
	int error;

	for (off = 0; off < end; off += rec) {
		d = (struct ext2_dir_entry *)(m->blockbuf + off);
		if (off + 8 > end || ext2fs_get_rec_len(m->fs, d, &rec) != 0 ||
		    rec < 8 || rec % 4 != 0 || off + rec > end)
			return EIO;
		nlen = (unsigned)ext2fs_dirent_name_len(d);
		if (nlen + 8 > rec)
			return EIO;
		used = d->inode != 0 ? EXT2_DIR_REC_LEN(nlen) : 0;
		if (rec - used > room)
			room = rec - used;
		if (d->inode != 0 && visit != NULL &&
		    (error = visit(ctx, d, off)) != 0)
			return error;
	}
	if (end != m->fs->blocksize) {
		struct ext2_dir_entry_tail *t =
		    EXT2_DIRENT_TAIL(m->blockbuf, m->fs->blocksize);

		if (t->det_reserved_zero1 != 0 ||
		    t->det_rec_len != sizeof(*t) ||
		    t->det_reserved_name_len != EXT2_DIR_NAME_LEN_CSUM)
			return EIO;
	}
	*roomp = room;
	return 0;
}

static int
read_block(struct fs_ext2 *m, struct dix *x, uint32_t lblk)
{
	if (x->pblk[lblk] == 0)
		return EIO;
	return E(ext2fs_read_dir_block4(m->fs, x->pblk[lblk], m->blockbuf, 0,
	                                x->dir));
}

static int
write_block(struct fs_ext2 *m, struct dix *x, uint32_t lblk)
{
	return E(ext2fs_write_dir_block4(m->fs, x->pblk[lblk], m->blockbuf, 0,
	                                 x->dir));
}

static void
note_room(struct dix *x, uint32_t lblk, uint32_t room)
{
	x->room[lblk] = room;
	if (room >= EXT2_DIR_REC_LEN(1) && lblk < x->first_room)
		x->first_room = lblk;
}

struct build_ctx {
	struct dix *x;
	struct fs_dindex *set;
	uint32_t lblk;
};

static int
build_visit(void *ctx, const struct ext2_dir_entry *d, unsigned off)
{
	struct build_ctx *b = ctx;

	return add_ent(b->x, b->set, d->name,
	               (size_t)ext2fs_dirent_name_len(d), d->inode,
	               ext2fs_dirent_file_type(d), b->lblk, off);
}

/* Maps and reads in the blocks past the last one the index knows, up to
 * nblocks. */
static int
load_blocks(struct fs_ext2 *m, struct fs_dindex *set, struct dix *x,
            struct ext2_inode_large *in, uint32_t nblocks)
{
	struct build_ctx b = { .x = x, .set = set };
	uint32_t room;
	errcode_t ec;
	int error;

	if ((error = grow_blocks(x, set, nblocks)) != 0)
		return error;
	for (b.lblk = x->nblocks; b.lblk < nblocks; b.lblk++) {
		ec = ext2fs_bmap2(m->fs, x->dir, (struct ext2_inode *)in, NULL,
		                  0, b.lblk, NULL, &x->pblk[b.lblk]);
		if (ec)
			return E(ec);
		x->room[b.lblk] = 0;
		x->nblocks = b.lblk + 1;
		if (x->pblk[b.lblk] == 0)
			continue;
		if ((error = read_block(m, x, b.lblk)) != 0 ||
		    (error = walk_block(m, &room, build_visit, &b)) != 0)
			return error;
		note_room(x, b.lblk, room);
	}
	return 0;
}

static bool
indexable(struct fs_ext2 *m, const struct ext2_inode_large *in)
{
	uint64_t size = EXT2_I_SIZE(in);
	unsigned bs = m->fs->blocksize;

	if (!LINUX_S_ISDIR(in->i_mode) ||
	    (in->i_flags & (EXT2_INDEX_FL | EXT4_INLINE_DATA_FL |
	                    EXT4_ENCRYPT_FL | EXT4_CASEFOLD_FL)))
		return false;
	return size % bs == 0 && size / bs >= DIX_MIN_BLOCKS &&
	       size / bs < UINT32_MAX;
}

/*
 * The index of dir, built if needed, with dir's inode in *in.
 * FS_DINDEX_UNINDEXED when dir is not indexed (not eligible, or the
 * memory cap is reached): the caller scans.
 */
static int
get_dix(struct fs_ext2 *m, ext2_ino_t dir, struct ext2_inode_large *in,
        struct dix **xp)
{
	struct fs_dindex *set;
	struct dix *x;
	int error;

	if ((error = fs_read_inode(m, dir, in)) != 0)
		return error;
	if ((set = set_of(m)) == NULL)
		return FS_DINDEX_UNINDEXED;
	x = find_dix(set, dir);
	if (x != NULL && (x->gen != in->i_generation ||
	                  x->size != EXT2_I_SIZE(in) || !indexable(m, in))) {
		drop_dix(set, x);
		x = NULL;
	}
	if (x != NULL) {
		if (x != set->head) {
			unlink_dix(set, x);
			push_front(set, x);
		}
		*xp = x;
		return 0;
	}
	if (!indexable(m, in))
		return FS_DINDEX_UNINDEXED;

	while (set->ndirs >= DIX_MAX_DIRS)
		drop_dix(set, set->tail);
	if (!reserve(set, NULL, sizeof(*x)) ||
	    rumpuser_malloc(sizeof(*x), 0, (void **)&x) != 0)
		return FS_DINDEX_UNINDEXED;
	memset(x, 0, sizeof(*x));
	x->dir = dir;
	x->gen = in->i_generation;
	x->size = EXT2_I_SIZE(in);
	x->bytes = sizeof(*x);
	x->first_room = UINT32_MAX;
	set->bytes += x->bytes;
	set->ndirs++;
	push_front(set, x);
	error = grow_buckets(x, set);
	if (error == 0)
		error = load_blocks(m, set, x, in,
		                    (uint32_t)(x->size / m->fs->blocksize));
	if (error != 0) {
		/* Short of memory, or a block this file does not understand
		 * (damage is libext2fs's to report): the scan still works. */
		drop_dix(set, x);
		return FS_DINDEX_UNINDEXED;
	}
	*xp = x;
	return 0;
}

/*
 * Reads the block of e and checks that e is there: *dp points at it in
 * m->blockbuf, *prevp at the entry before it in the block (NULL if first).
 * A mismatch means the index is wrong: it is dropped and the caller
 * falls back to a scan.
 */
static int
verify_ent(struct fs_ext2 *m, struct dix *x, const struct dix_ent *e,
           struct ext2_dir_entry **dp, struct ext2_dir_entry **prevp)
{
	unsigned end = usable(m), off, rec;
	struct ext2_dir_entry *d, *prev = NULL;
	int error;

	if (e->lblk >= x->nblocks || (error = read_block(m, x, e->lblk)) != 0)
		goto stale;
	for (off = 0; off < end; off += rec) {
		d = (struct ext2_dir_entry *)(m->blockbuf + off);
		if (off + 8 > end || ext2fs_get_rec_len(m->fs, d, &rec) != 0 ||
		    rec < 8 || off + rec > end || off > e->off)
			break;
		if (off == e->off) {
			if (d->inode != e->ino ||
			    (unsigned)ext2fs_dirent_name_len(d) != e->len ||
			    e->len + 8u > rec ||
			    memcmp(d->name, e->name, e->len) != 0)
				break;
			*dp = d;
			if (prevp != NULL)
				*prevp = prev;
			return 0;
		}
		prev = d;
	}
stale:
	rumpuser_log(RUMPUSER_LOG_WARN, "fs_ext2", "directory %u: the name "
	             "index disagrees with block %u; scanning instead",
	             (unsigned)x->dir, (unsigned)e->lblk);
	drop_dix(m->dindex, x);
	return FS_DINDEX_UNINDEXED;
}

/* ---- operations -------------------------------------------------------- */

int
fs_dindex_find(struct fs_ext2 *m, ext2_ino_t dir, const char *name,
               size_t len, ext2_ino_t *ino)
{
	struct ext2_inode_large in;
	struct ext2_dir_entry *d;
	struct dix_ent **pp;
	struct dix *x;
	int error;

	if ((error = get_dix(m, dir, &in, &x)) != 0)
		return error;
	if ((pp = find_ent(x, m->dindex->seed, name, len)) == NULL)
		return ENOENT;
	if ((error = verify_ent(m, x, *pp, &d, NULL)) != 0)
		return error;
	*ino = (*pp)->ino;
	return 0;
}

/* Puts the entry into block lblk, which has room for it. */
static int
insert_at(struct fs_ext2 *m, struct dix *x, uint32_t lblk, const char *name,
          size_t len, ext2_ino_t ino, int ftype)
{
	unsigned end = usable(m), need = EXT2_DIR_REC_LEN(len), off, rec, used;
	struct ext2_dir_entry *d, *n;
	uint32_t room;
	errcode_t ec;
	int error;

	if ((error = read_block(m, x, lblk)) != 0)
		return error;
	for (off = 0; off < end; off += rec) {
		d = (struct ext2_dir_entry *)(m->blockbuf + off);
		if (off + 8 > end || ext2fs_get_rec_len(m->fs, d, &rec) != 0 ||
		    rec < 8 || rec % 4 != 0 || off + rec > end)
			return EIO;
		used = d->inode != 0
		       ? EXT2_DIR_REC_LEN(ext2fs_dirent_name_len(d)) : 0;
		if (used <= rec && rec - used >= need)
			break;
	}
	if (off >= end)
		return EIO;     /* the room the index saw is gone */
	if (used != 0) {
		if ((ec = ext2fs_set_rec_len(m->fs, used, d)) != 0)
			return E(ec);
		off += used;
		rec -= used;
	}
	n = (struct ext2_dir_entry *)(m->blockbuf + off);
	n->inode = ino;
	if ((ec = ext2fs_set_rec_len(m->fs, rec, n)) != 0)
		return E(ec);
	n->name_len = 0;
	ext2fs_dirent_set_name_len(n, (int)len);
	if (ext2fs_has_feature_filetype(m->fs->super))
		ext2fs_dirent_set_file_type(n, ftype);
	memcpy(n->name, name, len);
	if ((error = walk_block(m, &room, NULL, NULL)) != 0)
		return error;
	if ((error = write_block(m, x, lblk)) != 0)
		return error;
	x->room[lblk] = room;
	/* The entry is in: short of memory, the index goes, not the name. */
	if (add_ent(x, m->dindex, name, len, ino,
	            ext2fs_has_feature_filetype(m->fs->super) ? ftype : 0,
	            lblk, off) != 0)
		drop_dix(m->dindex, x);
	return 0;
}

/*
 * A block-level change failed half way: what is on disk is unknown to
 * the index, which must go.  The error stands.
 */
static int
failed(struct fs_ext2 *m, struct dix *x, int error)
{
	drop_dix(m->dindex, x);
	return error;
}

int
fs_dindex_add(struct fs_ext2 *m, ext2_ino_t dir, const char *name,
              size_t len, ext2_ino_t ino, int ftype)
{
	unsigned need = EXT2_DIR_REC_LEN(len);
	struct ext2_inode_large in;
	struct dix *x;
	uint32_t b;
	errcode_t ec;
	int error;

	if ((error = get_dix(m, dir, &in, &x)) != 0)
		return error;
	for (b = x->first_room; b < x->nblocks; b++)
		if (x->room[b] >= need)
			break;
	if (b >= x->nblocks) {
		/* No block has room: one more, as ext2fs_link's caller would
		 * do.  Only the new block needs reading. */
		if ((ec = ext2fs_expand_dir(m->fs, dir)) != 0)
			return failed(m, x, E(ec));
		if ((error = fs_read_inode(m, dir, &in)) != 0)
			return failed(m, x, error);
		x->size = EXT2_I_SIZE(&in);
		if (x->size % m->fs->blocksize != 0 ||
		    x->size / m->fs->blocksize <= x->nblocks ||
		    x->size / m->fs->blocksize >= UINT32_MAX)
			return failed(m, x, EIO);
		if ((error = load_blocks(m, m->dindex, x, &in,
		                         (uint32_t)(x->size /
		                                    m->fs->blocksize))) != 0)
			return failed(m, x, error);
		for (b = x->first_room; b < x->nblocks; b++)
			if (x->room[b] >= need)
				break;
		if (b >= x->nblocks)
			return failed(m, x, EIO);
	}
	/* The scan for room starts at the first block that has some. */
	while (x->first_room < x->nblocks &&
	       x->room[x->first_room] < EXT2_DIR_REC_LEN(1))
		x->first_room++;
	if ((error = insert_at(m, x, b, name, len, ino, ftype)) != 0)
		return failed(m, x, error);
	return 0;
}

int
fs_dindex_remove(struct fs_ext2 *m, ext2_ino_t dir, const char *name,
                 size_t len, ext2_ino_t ino)
{
	struct ext2_dir_entry *d, *prev;
	struct ext2_inode_large in;
	struct dix_ent **pp;
	unsigned rec, prec;
	uint32_t lblk, room;
	struct dix *x;
	errcode_t ec;
	int error;

	if ((error = get_dix(m, dir, &in, &x)) != 0)
		return error;
	if ((pp = find_ent(x, m->dindex->seed, name, len)) == NULL ||
	    (*pp)->ino != ino)
		return ENOENT;
	if ((error = verify_ent(m, x, *pp, &d, &prev)) != 0)
		return error;
	lblk = (*pp)->lblk;
	/* As the kernel does: the record joins the one before it, or,
	 * first in its block, stays as an empty record. */
	if (prev != NULL) {
		if ((ec = ext2fs_get_rec_len(m->fs, prev, &prec)) != 0 ||
		    (ec = ext2fs_get_rec_len(m->fs, d, &rec)) != 0 ||
		    (ec = ext2fs_set_rec_len(m->fs, prec + rec, prev)) != 0)
			return failed(m, x, E(ec));
	} else {
		d->inode = 0;
	}
	if ((error = walk_block(m, &room, NULL, NULL)) != 0 ||
	    (error = write_block(m, x, lblk)) != 0)
		return failed(m, x, error);
	note_room(x, lblk, room);
	del_ent(x, m->dindex, pp);
	return 0;
}

int
fs_dindex_retarget(struct fs_ext2 *m, ext2_ino_t dir, const char *name,
                   size_t len, ext2_ino_t ino, int ftype)
{
	struct ext2_inode_large in;
	struct ext2_dir_entry *d;
	struct dix_ent **pp;
	struct dix *x;
	int error;

	if ((error = get_dix(m, dir, &in, &x)) != 0)
		return error;
	if ((pp = find_ent(x, m->dindex->seed, name, len)) == NULL)
		return ENOENT;
	if ((error = verify_ent(m, x, *pp, &d, NULL)) != 0)
		return error;
	d->inode = ino;
	if (ext2fs_has_feature_filetype(m->fs->super))
		ext2fs_dirent_set_file_type(d, ftype);
	else
		ftype = 0;
	if ((error = write_block(m, x, (*pp)->lblk)) != 0)
		return failed(m, x, error);
	(*pp)->ino = ino;
	(*pp)->ftype = (uint8_t)ftype;
	return 0;
}
