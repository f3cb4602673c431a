/*
 * fs_ext2: names.  Lookup, readdir, the creating operations, link,
 * unlink, rmdir, rename.
 *
 * Order of updates: a new inode is written before the entry that names
 * it, and an entry is removed before its inode is freed, so a crash in
 * between leaves an orphan inode (e2fsck reclaims it), never an entry
 * naming a free inode.
 *
 * The protocol is stateless (NFS-like): an inode whose last name goes is
 * freed at once; a client still holding its handle gets ESTALE.
 */
#include <errno.h>
#include <string.h>

#include "rump/rumpuser.h"

#include "fs_int.h"

#define E(code) fs_ext2_errno(code)

static bool
is_dot(const char *name, size_t len)
{
	return len == 1 && name[0] == '.';
}

static bool
is_dotdot(const char *name, size_t len)
{
	return len == 2 && name[0] == '.' && name[1] == '.';
}

/* libext2fs wants NUL-terminated names. */
static int
cname(const char *name, size_t len, char out[EXT2_NAME_LEN + 1])
{
	if (len == 0 || len > EXT2_NAME_LEN || memchr(name, '\0', len) ||
	    memchr(name, '/', len))
		return EINVAL;
	memcpy(out, name, len);
	out[len] = '\0';
	return 0;
}

static int
ftype_of(uint16_t mode)
{
	switch (mode & LINUX_S_IFMT) {
	case LINUX_S_IFREG:  return EXT2_FT_REG_FILE;
	case LINUX_S_IFDIR:  return EXT2_FT_DIR;
	case LINUX_S_IFCHR:  return EXT2_FT_CHRDEV;
	case LINUX_S_IFBLK:  return EXT2_FT_BLKDEV;
	case LINUX_S_IFIFO:  return EXT2_FT_FIFO;
	case LINUX_S_IFSOCK: return EXT2_FT_SOCK;
	case LINUX_S_IFLNK:  return EXT2_FT_SYMLINK;
	default:             return EXT2_FT_UNKNOWN;
	}
}

/* ext2 file type -> DT_* (the values are Linux's). */
static uint8_t
dtype_of(int ftype, uint16_t mode)
{
	static const uint8_t dt[] = {
		[EXT2_FT_REG_FILE] = 8, [EXT2_FT_DIR] = 4,
		[EXT2_FT_CHRDEV] = 2,   [EXT2_FT_BLKDEV] = 6,
		[EXT2_FT_FIFO] = 1,     [EXT2_FT_SOCK] = 12,
		[EXT2_FT_SYMLINK] = 10,
	};

	if (ftype > 0 && ftype <= EXT2_FT_SYMLINK)
		return dt[ftype];
	return (uint8_t)((mode >> 12) & 15);
}

/*
 * Every change to directory blocks goes through dir_add, dir_remove and
 * dir_retarget, which ask the name index (fs_dindex.c) first: it must
 * see them all to stay complete.
 */

/* The inode a name in dir refers to: ENOENT if none. */
static int
dir_find(struct fs_ext2 *m, ext2_ino_t dir, const char *name, size_t len,
         ext2_ino_t *ino)
{
	errcode_t ec;
	int error;

	error = fs_dindex_find(m, dir, name, len, ino);
	if (error != FS_DINDEX_UNINDEXED)
		return error;
	ec = ext2fs_lookup(m->fs, dir, name, (int)len, NULL, ino);
	return ec == EXT2_ET_FILE_NOT_FOUND ? ENOENT : E(ec);
}

/* Adds an entry, growing the directory by a block when the entry fits
 * in none of its blocks (libext2fs leaves that to its caller). */
static int
dir_add(struct fs_ext2 *m, ext2_ino_t dir, const char *name, ext2_ino_t ino,
        int ftype)
{
	errcode_t ec;
	int error;

	error = fs_dindex_add(m, dir, name, strlen(name), ino, ftype);
	if (error != FS_DINDEX_UNINDEXED)
		return error;
	ec = ext2fs_link(m->fs, dir, name, ino, ftype);

	if (ec == EXT2_ET_DIR_NO_SPACE) {
		ec = ext2fs_expand_dir(m->fs, dir);
		if (ec == 0)
			ec = ext2fs_link(m->fs, dir, name, ino, ftype);
	}
	return E(ec);
}

/* Removes the entry name -> ino (NUL-terminated name). */
static int
dir_remove(struct fs_ext2 *m, ext2_ino_t dir, const char *name,
           ext2_ino_t ino)
{
	int error;

	error = fs_dindex_remove(m, dir, name, strlen(name), ino);
	if (error != FS_DINDEX_UNINDEXED)
		return error;
	return E(ext2fs_unlink(m->fs, dir, name, ino, 0));
}

/* A directory's link count, with dir_nlink's "1 means many". */
static int
nlink_adjust(struct fs_ext2 *m, struct ext2_inode_large *in, int delta)
{
	if (delta > 0) {
		if (in->i_links_count == 1)
			return 0;
		if (in->i_links_count + 1 >= EXT2_LINK_MAX) {
			if (!ext2fs_has_feature_dir_nlink(m->fs->super))
				return EMLINK;
			in->i_links_count = 1;
			return 0;
		}
		in->i_links_count++;
	} else if (in->i_links_count > 2) {
		in->i_links_count--;
	}
	return 0;
}

/* mtime and ctime of a directory whose entries changed; subdirs moves
 * its link count. */
static int
dir_changed(struct fs_ext2 *m, ext2_ino_t dir, int subdirs)
{
	struct ext2_inode_large in;
	int error;

	if ((error = fs_read_inode(m, dir, &in)) != 0)
		return error;
	if (subdirs != 0 && (error = nlink_adjust(m, &in, subdirs)) != 0)
		return error;
	fs_touch(m, &in, FS_TOUCH_MTIME | FS_TOUCH_CTIME);
	return fs_write_inode(m, dir, &in);
}

/* The last link is gone: blocks, xattrs and the inode itself. */
static int
free_inode(struct fs_ext2 *m, ext2_ino_t ino, struct ext2_inode_large *in)
{
	errcode_t ec;
	int error;

	if (ext2fs_inode_has_valid_blocks2(m->fs, (struct ext2_inode *)in) ||
	    (in->i_flags & EXT4_INLINE_DATA_FL)) {
		ec = ext2fs_punch(m->fs, ino, (struct ext2_inode *)in, NULL, 0,
		                  ~0ULL);
		if (ec)
			return E(ec);
		if ((error = fs_read_inode(m, ino, in)) != 0)
			return error;
	}
	if ((ec = ext2fs_free_ext_attr(m->fs, ino, in)) != 0)
		return E(ec);
	in->i_links_count = 0;
	fs_touch(m, in, FS_TOUCH_CTIME);
	in->i_dtime = in->i_ctime;
	if ((error = fs_write_inode(m, ino, in)) != 0)
		return error;
	ext2fs_inode_alloc_stats2(m->fs, ino, -1, LINUX_S_ISDIR(in->i_mode));
	if (LINUX_S_ISDIR(in->i_mode))
		fs_dindex_forget(m, ino);
	return 0;
}

/* Takes back an inode an unfinished operation allocated. */
static void
undo_new_inode(struct fs_ext2 *m, ext2_ino_t ino, const char *op)
{
	struct ext2_inode_large in;
	int error;

	if ((error = fs_read_inode(m, ino, &in)) != 0 ||
	    (error = free_inode(m, ino, &in)) != 0)
		fs_mark_error(m, op, error);
}

/*
 * libext2fs's mkdir and symlink, when they fail, give back the bitmap
 * bits but may have written the inode already: one that is in use on
 * disk and free in the bitmap is what e2fsck calls damage.
 */
static void
scrub_inode(struct fs_ext2 *m, ext2_ino_t ino, const char *op)
{
	struct ext2_inode_large in;
	int error;

	if (ext2fs_test_inode_bitmap2(m->fs->inode_map, ino)) {
		undo_new_inode(m, ino, op);
		return;
	}
	if (fs_read_inode(m, ino, &in) != 0 || in.i_links_count == 0)
		return;
	in.i_links_count = 0;
	fs_touch(m, &in, FS_TOUCH_CTIME);
	in.i_dtime = in.i_ctime;
	if ((error = fs_write_inode(m, ino, &in)) != 0)
		fs_mark_error(m, op, error);
}

/* One name of a non-directory went away. */
static int
drop_link(struct fs_ext2 *m, ext2_ino_t ino, struct ext2_inode_large *in)
{
	if (in->i_links_count <= 1)
		return free_inode(m, ino, in);
	in->i_links_count--;
	fs_touch(m, in, FS_TOUCH_CTIME);
	return fs_write_inode(m, ino, in);
}

/* Inline directories are iterated only when asked for. */
static int
iter_flags(struct fs_ext2 *m, ext2_ino_t dir)
{
	struct ext2_inode_large in;

	if (fs_read_inode(m, dir, &in) == 0 &&
	    (in.i_flags & EXT4_INLINE_DATA_FL))
		return DIRENT_FLAG_INCLUDE_INLINE_DATA;
	return 0;
}

struct empty_ctx {
	bool empty;
};

static int
empty_cb(ext2_ino_t dir, int entry, struct ext2_dir_entry *d, int offset,
         int blocksize, char *buf, void *priv)
{
	struct empty_ctx *c = priv;
	int len = ext2fs_dirent_name_len(d);

	(void)dir;
	(void)entry;
	(void)offset;
	(void)blocksize;
	(void)buf;
	if (d->inode == 0 || is_dot(d->name, (size_t)len) ||
	    is_dotdot(d->name, (size_t)len))
		return 0;
	c->empty = false;
	return DIRENT_ABORT;
}

static int
dir_empty(struct fs_ext2 *m, ext2_ino_t dir)
{
	struct empty_ctx c = { .empty = true };
	errcode_t ec;

	ec = ext2fs_dir_iterate2(m->fs, dir, iter_flags(m, dir), NULL,
	                         empty_cb, &c);
	if (ec)
		return E(ec);
	return c.empty ? 0 : ENOTEMPTY;
}

struct retarget_ctx {
	const char *name;
	int len;
	ext2_ino_t ino;
	int ftype;
	bool done;
	bool filetype;
};

static int
retarget_cb(ext2_ino_t dir, int entry, struct ext2_dir_entry *d, int offset,
            int blocksize, char *buf, void *priv)
{
	struct retarget_ctx *c = priv;

	(void)dir;
	(void)entry;
	(void)offset;
	(void)blocksize;
	(void)buf;
	if (d->inode == 0 || ext2fs_dirent_name_len(d) != c->len ||
	    memcmp(d->name, c->name, (size_t)c->len) != 0)
		return 0;
	d->inode = c->ino;
	if (c->filetype)
		ext2fs_dirent_set_file_type(d, c->ftype);
	c->done = true;
	return DIRENT_CHANGED | DIRENT_ABORT;
}

/* Points the existing entry name of dir at ino: a rename over an
 * existing name swaps the target in one directory block write. */
static int
dir_retarget(struct fs_ext2 *m, ext2_ino_t dir, const char *name, size_t len,
             ext2_ino_t ino, int ftype)
{
	struct retarget_ctx c = {
		.name = name, .len = (int)len, .ino = ino, .ftype = ftype,
		.filetype = ext2fs_has_feature_filetype(m->fs->super),
	};
	errcode_t ec;
	int error;

	error = fs_dindex_retarget(m, dir, name, len, ino, ftype);
	if (error != FS_DINDEX_UNINDEXED)
		return error;
	ec = ext2fs_dir_iterate2(m->fs, dir, iter_flags(m, dir), NULL,
	                         retarget_cb, &c);
	if (ec)
		return E(ec);
	return c.done ? 0 : ENOENT;
}

/* A generation no handle of an earlier life of ino carries. */
static uint32_t
new_generation(struct fs_ext2 *m, ext2_ino_t ino)
{
	struct ext2_inode_large old;
	uint32_t gen;

	memset(&old, 0, sizeof(old));
	if (ext2fs_read_inode2(m->fs, ino, (struct ext2_inode *)&old,
	                       sizeof(old), READ_INODE_NOCSUM) == 0)
		return old.i_generation + 1;
	rumpuser_getrandom(&gen, sizeof(gen));
	return gen;
}

/* A brand new inode: the whole on-disk inode is written, so nothing of
 * a previous life (in-inode xattrs) survives. */
static int
write_new_inode(struct fs_ext2 *m, ext2_ino_t ino, struct ext2_inode_large *in)
{
	size_t isz = EXT2_INODE_SIZE(m->fs->super);
	unsigned char *buf = m->blockbuf;
	errcode_t ec;

	memset(buf, 0, isz);
	memcpy(buf, in, isz < sizeof(*in) ? isz : sizeof(*in));
	ec = ext2fs_write_inode_full(m->fs, ino, (struct ext2_inode *)buf,
	                             (int)isz);
	return E(ec);
}

static void
init_inode(struct fs_ext2 *m, struct ext2_inode_large *in, uint16_t mode,
           uint32_t uid, uint32_t gid, uint32_t gen)
{
	size_t isz = EXT2_INODE_SIZE(m->fs->super);
	memset(in, 0, sizeof(*in));
	if (isz > EXT2_GOOD_OLD_INODE_SIZE)
		in->i_extra_isize = (uint16_t)((isz < sizeof(*in) ? isz
		                                : sizeof(*in)) -
		                               EXT2_GOOD_OLD_INODE_SIZE);
	in->i_mode = mode;
	fs_inode_set_owner(in, uid, gid);
	in->i_links_count = 1;
	in->i_generation = gen;
	fs_touch(m, in, FS_TOUCH_ATIME | FS_TOUCH_MTIME | FS_TOUCH_CTIME);
	if (in->i_extra_isize >= offsetof(struct ext2_inode_large,
	                                  i_crtime_extra) + 4 -
	                         EXT2_GOOD_OLD_INODE_SIZE) {
		in->i_crtime = in->i_ctime;
		in->i_crtime_extra = in->i_ctime_extra;
	}
}

/* An empty extent tree in i_block, as the kernel starts regular files. */
static void
init_extents(struct ext2_inode_large *in)
{
	struct ext3_extent_header *eh = (struct ext3_extent_header *)in->i_block;

	in->i_flags |= EXT4_EXTENTS_FL;
	eh->eh_magic = ext2fs_cpu_to_le16(EXT3_EXT_MAGIC);
	eh->eh_entries = 0;
	eh->eh_max = ext2fs_cpu_to_le16((sizeof(in->i_block) - sizeof(*eh)) /
	                                sizeof(struct ext3_extent));
	eh->eh_depth = 0;
	eh->eh_generation = 0;
}

/* ---- lookup and readdir ------------------------------------------------- */

int
fs_ext2_lookup(struct fs_ext2 *m, const struct rump_fh *dir,
               const char *name, size_t len, struct rump_fattr *attr)
{
	struct ext2_inode_large in;
	ext2_ino_t ino;
	int error;

	if ((error = fs_get_dir(m, dir, &in)) != 0)
		return error;
	if (len == 0 || len > EXT2_NAME_LEN)
		return len ? ENAMETOOLONG : EINVAL;
	if (is_dot(name, len))
		ino = (ext2_ino_t)dir->ino;
	else if ((error = dir_find(m, (ext2_ino_t)dir->ino, name, len,
	                           &ino)) != 0)
		return error;
	if ((error = fs_get_ino(m, ino, &in)) != 0)
		return error;
	fs_fill_attr(m, ino, &in, attr);
	return 0;
}

struct rd {
	struct fs_ext2 *m;
	unsigned char *out;
	size_t cap, used;
	bool plus, full;
	uint64_t skip;                  /* inline dirs: entries to skip */
	uint64_t index;
	int error;
};

/* Appends one record; false when it does not fit. */
static bool
rd_emit(struct rd *r, ext2_ino_t ino, const char *name, size_t nlen,
        int ftype, uint64_t next_cookie)
{
	struct rump_fs_dirent de = { 0 };
	struct ext2_inode_large in;
	struct rump_fattr attr;
	size_t need, name_off;
	bool have;

	/* A damaged entry's inode is skipped, not fatal to the listing. */
	have = fs_get_ino(r->m, ino, &in) == 0;
	de.has_attr = have && r->plus;
	need = sizeof(de) + (de.has_attr ? sizeof(attr) : 0) + nlen;
	need = (need + 7) & ~(size_t)7;
	if (r->used + need > r->cap) {
		r->full = true;
		return false;
	}
	de.ino = ino;
	de.next_cookie = next_cookie;
	de.gen = have ? in.i_generation : 0;
	de.name_len = (uint16_t)nlen;
	de.type = dtype_of(ftype, have ? in.i_mode : 0);
	memcpy(r->out + r->used, &de, sizeof(de));
	if (de.has_attr) {
		fs_fill_attr(r->m, ino, &in, &attr);
		memcpy(r->out + r->used + sizeof(de), &attr, sizeof(attr));
	}
	name_off = sizeof(de) + (de.has_attr ? sizeof(attr) : 0);
	memcpy(r->out + r->used + name_off, name, nlen);
	memset(r->out + r->used + name_off + nlen, 0, need - name_off - nlen);
	r->used += need;
	return true;
}

static int
inline_cb(ext2_ino_t dir, int entry, struct ext2_dir_entry *d, int offset,
          int blocksize, char *buf, void *priv)
{
	struct rd *r = priv;

	(void)dir;
	(void)entry;
	(void)offset;
	(void)blocksize;
	(void)buf;
	if (d->inode == 0)
		return 0;
	if (++r->index <= r->skip)
		return 0;
	if (!rd_emit(r, d->inode, d->name, (size_t)ext2fs_dirent_name_len(d),
	             ext2fs_dirent_file_type(d), r->index))
		return DIRENT_ABORT;
	return 0;
}

/*
 * Cookies of block directories are (logical block << 32 | offset) of the
 * next entry: they stay meaningful whatever happens to entries before
 * them, and resuming costs one block map lookup.  Directories kept inline
 * in the inode are tiny; their cookies count entries.
 */
static int
readdir_blocks(struct rd *r, ext2_ino_t dir, struct ext2_inode_large *in,
               uint64_t cookie)
{
	struct fs_ext2 *m = r->m;
	unsigned bs = m->fs->blocksize;
	uint64_t nblocks = EXT2_I_SIZE(in) / bs;
	uint64_t lblk = cookie >> 32;
	unsigned start = (unsigned)(cookie & 0xffffffffu), off, rec;
	struct ext2_dir_entry *d;
	blk64_t pblk;
	errcode_t ec;
	int nlen;

	for (; lblk < nblocks && !r->full; lblk++, start = 0) {
		ec = ext2fs_bmap2(m->fs, dir, (struct ext2_inode *)in, NULL, 0,
		                  lblk, NULL, &pblk);
		if (ec)
			return E(ec);
		if (pblk == 0)
			continue;
		ec = ext2fs_read_dir_block4(m->fs, pblk, m->blockbuf, 0, dir);
		if (ec)
			return E(ec);
		for (off = 0; off < bs; off += rec) {
			d = (struct ext2_dir_entry *)(m->blockbuf + off);
			if (off + 8 > bs ||
			    ext2fs_get_rec_len(m->fs, d, &rec) != 0 ||
			    rec < 8 || rec % 4 != 0 || off + rec > bs)
				return EIO;
			nlen = ext2fs_dirent_name_len(d);
			if ((unsigned)nlen + 8 > rec)
				return EIO;
			if (off < start || d->inode == 0)
				continue;
			if (!rd_emit(r, d->inode, d->name, (size_t)nlen,
			             ext2fs_dirent_file_type(d),
			             off + rec < bs
			             ? (lblk << 32) | (off + rec)
			             : (lblk + 1) << 32))
				break;
		}
	}
	return 0;
}

int
fs_ext2_readdir(struct fs_ext2 *m, const struct rump_fh *dir,
                uint64_t cookie, bool plus, void *out, size_t cap,
                size_t *used)
{
	struct rd r = { .m = m, .out = out, .cap = cap, .plus = plus };
	struct ext2_inode_large in;
	errcode_t ec;
	int error;

	*used = 0;
	if ((error = fs_get_dir(m, dir, &in)) != 0)
		return error;
	if (in.i_flags & EXT4_INLINE_DATA_FL) {
		r.skip = cookie;
		ec = ext2fs_dir_iterate2(m->fs, (ext2_ino_t)dir->ino,
		                         DIRENT_FLAG_INCLUDE_INLINE_DATA, NULL,
		                         inline_cb, &r);
		error = E(ec);
	} else {
		error = readdir_blocks(&r, (ext2_ino_t)dir->ino, &in, cookie);
	}
	if (error == 0 && r.full && r.used == 0)
		error = EINVAL;
	if (error == 0)
		*used = r.used;
	return error;
}

/* ---- creating ---------------------------------------------------------- */

static int
check_new_name(const char *name, size_t len, char nm[EXT2_NAME_LEN + 1])
{
	if (len > EXT2_NAME_LEN)
		return ENAMETOOLONG;
	if (is_dot(name, len) || is_dotdot(name, len))
		return EEXIST;
	return cname(name, len, nm);
}

static int
create_node(struct fs_ext2 *m, const struct fs_ext2_create *c, ext2_ino_t dir,
            const char *nm, ext2_ino_t *inop)
{
	struct ext2_inode_large in;
	uint16_t type, mode;
	ext2_ino_t ino;
	errcode_t ec;
	int error;

	if (c->kind == FS_EXT2_FILE) {
		type = LINUX_S_IFREG;
	} else {
		type = (uint16_t)(c->mode & LINUX_S_IFMT);
		if (type != LINUX_S_IFREG && type != LINUX_S_IFCHR &&
		    type != LINUX_S_IFBLK && type != LINUX_S_IFIFO &&
		    type != LINUX_S_IFSOCK)
			return EINVAL;
	}
	mode = (uint16_t)(type | (c->mode & 07777));
	if ((ec = ext2fs_new_inode(m->fs, dir, mode, NULL, &ino)) != 0)
		return E(ec);
	init_inode(m, &in, mode, c->uid, c->gid, new_generation(m, ino));
	if (type == LINUX_S_IFREG) {
		if (ext2fs_has_feature_extents(m->fs->super))
			init_extents(&in);
	} else if (type == LINUX_S_IFCHR || type == LINUX_S_IFBLK) {
		if ((error = fs_encode_rdev(&in, c->rdev)) != 0)
			return error;
	}
	if ((error = write_new_inode(m, ino, &in)) != 0) {
		scrub_inode(m, ino, "create");
		return error;
	}
	ext2fs_inode_alloc_stats2(m->fs, ino, +1, 0);
	if ((error = dir_add(m, dir, nm, ino, ftype_of(mode))) != 0) {
		undo_new_inode(m, ino, "create");
		return error;
	}
	*inop = ino;
	return 0;
}

/* mkdir and symlink build the inode in libext2fs; we then give it its
 * owner, mode, generation and times. */
static int
finish_inode(struct fs_ext2 *m, ext2_ino_t ino, uint16_t mode, uint32_t uid,
             uint32_t gid, uint32_t gen)
{
	struct ext2_inode_large in;
	int error;

	if ((error = fs_read_inode(m, ino, &in)) != 0)
		return error;
	in.i_mode = mode;
	fs_inode_set_owner(&in, uid, gid);
	in.i_generation = gen;
	fs_touch(m, &in, FS_TOUCH_ATIME | FS_TOUCH_MTIME | FS_TOUCH_CTIME);
	return fs_write_inode(m, ino, &in);
}

/*
 * ext2fs_mkdir writes the first block checksummed with generation 0, and
 * metadata_csum seeds directory block checksums with the generation: the
 * block is written again once the inode has its own.
 */
static int
finish_dir(struct fs_ext2 *m, ext2_ino_t ino, uint16_t mode, uint32_t uid,
           uint32_t gid, uint32_t gen)
{
	struct ext2_inode_large in;
	blk64_t pblk = 0;
	errcode_t ec;
	int error;

	if ((error = fs_read_inode(m, ino, &in)) != 0)
		return error;
	if (!(in.i_flags & EXT4_INLINE_DATA_FL)) {
		ec = ext2fs_bmap2(m->fs, ino, (struct ext2_inode *)&in, NULL, 0,
		                  0, NULL, &pblk);
		if (ec == 0 && pblk != 0)
			ec = ext2fs_read_dir_block4(m->fs, pblk, m->blockbuf, 0,
			                            ino);
		if (ec)
			return E(ec);
	}
	if ((error = finish_inode(m, ino, mode, uid, gid, gen)) != 0)
		return error;
	if (pblk != 0)
		return E(ext2fs_write_dir_block4(m->fs, pblk, m->blockbuf, 0,
		                                 ino));
	return 0;
}

/* The parent's link count back to what it was before a failed mkdir. */
static void
restore_links(struct fs_ext2 *m, ext2_ino_t dir, uint16_t links)
{
	struct ext2_inode_large in;
	int error;

	if ((error = fs_read_inode(m, dir, &in)) != 0)
		goto fail;
	if (in.i_links_count == links)
		return;
	in.i_links_count = links;
	if ((error = fs_write_inode(m, dir, &in)) == 0)
		return;
fail:
	fs_mark_error(m, "mkdir", error);
}

/*
 * libext2fs builds the directory unnamed, and dir_add names it: given a
 * name, ext2fs_mkdir fails on a full parent block instead of growing it.
 * Any failure takes everything back.
 */
static int
make_dir(struct fs_ext2 *m, const struct fs_ext2_create *c, ext2_ino_t dir,
         const char *nm, ext2_ino_t *inop)
{
	struct ext2_inode_large parent;
	uint16_t old_links, new_links;
	ext2_ino_t ino;
	uint32_t gen;
	errcode_t ec;
	int error;

	/* The parent's new count first: EMLINK leaves nothing to undo. */
	if ((error = fs_read_inode(m, dir, &parent)) != 0)
		return error;
	old_links = parent.i_links_count;
	if ((error = nlink_adjust(m, &parent, +1)) != 0)
		return error;
	new_links = parent.i_links_count;
	if ((ec = ext2fs_new_inode(m->fs, dir, LINUX_S_IFDIR | 0755, NULL,
	                           &ino)) != 0)
		return E(ec);
	gen = new_generation(m, ino);
	if ((ec = ext2fs_mkdir(m->fs, dir, ino, NULL)) != 0) {
		scrub_inode(m, ino, "mkdir");
		restore_links(m, dir, old_links);
		return E(ec);
	}
	error = finish_dir(m, ino, (uint16_t)(LINUX_S_IFDIR | (c->mode & 07777)),
	                   c->uid, c->gid, gen);
	if (error == 0)
		error = dir_add(m, dir, nm, ino, EXT2_FT_DIR);
	if (error)
		goto undo;
	/* Read again: adding the entry may have grown the parent. */
	if ((error = fs_read_inode(m, dir, &parent)) != 0)
		goto unlink;
	parent.i_links_count = new_links;
	if ((error = fs_write_inode(m, dir, &parent)) != 0)
		goto unlink;
	*inop = ino;
	return 0;

unlink:
	if (dir_remove(m, dir, nm, ino) != 0) {
		fs_mark_error(m, "mkdir", error);
		return error;
	}
undo:
	undo_new_inode(m, ino, "mkdir");
	restore_links(m, dir, old_links);
	return error;
}

static int
make_symlink(struct fs_ext2 *m, const struct fs_ext2_create *c,
             ext2_ino_t dir, const char *nm, ext2_ino_t *inop)
{
	char target[RUMP_FS_PATH_MAX + 1];
	ext2_ino_t ino;
	uint32_t gen;
	errcode_t ec;
	int error;

	if (c->target_len == 0 || memchr(c->target, '\0', c->target_len))
		return EINVAL;
	if (c->target_len > RUMP_FS_PATH_MAX ||
	    c->target_len >= m->fs->blocksize)
		return ENAMETOOLONG;
	memcpy(target, c->target, c->target_len);
	target[c->target_len] = '\0';
	if ((ec = ext2fs_new_inode(m->fs, dir, LINUX_S_IFLNK | 0777, NULL,
	                           &ino)) != 0)
		return E(ec);
	gen = new_generation(m, ino);
	/* Unnamed, for the reason given at make_dir. */
	if ((ec = ext2fs_symlink(m->fs, dir, ino, NULL, target)) != 0) {
		scrub_inode(m, ino, "symlink");
		return E(ec);
	}
	if ((error = finish_inode(m, ino, LINUX_S_IFLNK | 0777, c->uid,
	                          c->gid, gen)) != 0 ||
	    (error = dir_add(m, dir, nm, ino, EXT2_FT_SYMLINK)) != 0) {
		undo_new_inode(m, ino, "symlink");
		return error;
	}
	*inop = ino;
	return 0;
}

int
fs_ext2_create(struct fs_ext2 *m, const struct fs_ext2_create *c,
               struct rump_fattr *attr)
{
	char nm[EXT2_NAME_LEN + 1];
	struct ext2_inode_large in;
	ext2_ino_t dir = (ext2_ino_t)c->dir.ino, ino;
	int error;

	if ((error = fs_get_dir(m, &c->dir, &in)) != 0)
		return error;
	if ((error = check_new_name(c->name, c->name_len, nm)) != 0)
		return error;
	error = dir_find(m, dir, c->name, c->name_len, &ino);
	if (error == 0) {
		if (c->kind != FS_EXT2_FILE || c->excl)
			return EEXIST;
		if ((error = fs_get_ino(m, ino, &in)) != 0)
			return error;
		if (!LINUX_S_ISREG(in.i_mode))
			return EEXIST;
		fs_fill_attr(m, ino, &in, attr);
		return 0;
	}
	if (error != ENOENT)
		return error;
	if (m->read_only)
		return EROFS;

	switch (c->kind) {
	case FS_EXT2_FILE:
	case FS_EXT2_NODE:
		error = create_node(m, c, dir, nm, &ino);
		break;
	case FS_EXT2_DIR:
		error = make_dir(m, c, dir, nm, &ino);
		break;
	case FS_EXT2_SYMLINK:
		error = make_symlink(m, c, dir, nm, &ino);
		break;
	default:
		error = EINVAL;
	}
	if (error)
		return error;
	if ((error = dir_changed(m, dir, 0)) != 0)
		return error;
	if ((error = fs_read_inode(m, ino, &in)) != 0)
		return error;
	fs_fill_attr(m, ino, &in, attr);
	return 0;
}

int
fs_ext2_readlink(struct fs_ext2 *m, const struct rump_fh *fh, void *buf,
                 size_t cap, size_t *len)
{
	struct ext2_inode_large in;
	uint64_t size;
	size_t got;
	int error;

	*len = 0;
	if ((error = fs_get_fh(m, fh, &in)) != 0)
		return error;
	if (!LINUX_S_ISLNK(in.i_mode))
		return EINVAL;
	size = EXT2_I_SIZE(&in);
	if (size == 0 || size >= m->fs->blocksize || size > RUMP_FS_PATH_MAX)
		return EIO;
	*len = (size_t)size;
	if (size > cap)
		return ERANGE;
	if (ext2fs_is_fast_symlink((struct ext2_inode *)&in)) {
		if (size > sizeof(in.i_block))
			return EIO;
		memcpy(buf, in.i_block, (size_t)size);
		return 0;
	}
	error = fs_read_file(m, (ext2_ino_t)fh->ino, &in, 0, buf, (size_t)size,
	                     &got);
	if (error == 0 && got != size)
		error = EIO;
	return error;
}

int
fs_ext2_link(struct fs_ext2 *m, const struct rump_fh *fh,
             const struct rump_fh *dir, const char *name, size_t len,
             struct rump_fattr *attr)
{
	char nm[EXT2_NAME_LEN + 1];
	struct ext2_inode_large in, din;
	ext2_ino_t ino = (ext2_ino_t)fh->ino, other;
	int error;

	if ((error = fs_get_fh(m, fh, &in)) != 0 ||
	    (error = fs_get_dir(m, dir, &din)) != 0)
		return error;
	if ((error = check_new_name(name, len, nm)) != 0)
		return error;
	if (LINUX_S_ISDIR(in.i_mode))
		return EPERM;
	if (in.i_links_count >= EXT2_LINK_MAX)
		return EMLINK;
	error = dir_find(m, (ext2_ino_t)dir->ino, name, len, &other);
	if (error == 0)
		return EEXIST;
	if (error != ENOENT)
		return error;
	if (m->read_only)
		return EROFS;
	if ((error = dir_add(m, (ext2_ino_t)dir->ino, nm, ino,
	                     ftype_of(in.i_mode))) != 0)
		return error;
	in.i_links_count++;
	fs_touch(m, &in, FS_TOUCH_CTIME);
	if ((error = fs_write_inode(m, ino, &in)) != 0) {
		if (dir_remove(m, (ext2_ino_t)dir->ino, nm, ino) != 0)
			fs_mark_error(m, "link", error);
		return error;
	}
	if ((error = dir_changed(m, (ext2_ino_t)dir->ino, 0)) != 0)
		return error;
	fs_fill_attr(m, ino, &in, attr);
	return 0;
}

/* ---- removing ---------------------------------------------------------- */

int
fs_ext2_unlink(struct fs_ext2 *m, const struct rump_fh *dir,
               const char *name, size_t len)
{
	char nm[EXT2_NAME_LEN + 1];
	struct ext2_inode_large in;
	ext2_ino_t d = (ext2_ino_t)dir->ino, ino;
	int error;

	if ((error = fs_get_dir(m, dir, &in)) != 0)
		return error;
	if (is_dot(name, len) || is_dotdot(name, len))
		return EISDIR;
	if ((error = cname(name, len, nm)) != 0)
		return len > EXT2_NAME_LEN ? ENAMETOOLONG : error;
	if ((error = dir_find(m, d, name, len, &ino)) != 0 ||
	    (error = fs_get_ino(m, ino, &in)) != 0)
		return error;
	if (LINUX_S_ISDIR(in.i_mode))
		return EISDIR;
	if (m->read_only)
		return EROFS;
	if ((error = dir_remove(m, d, nm, ino)) != 0 ||
	    (error = dir_changed(m, d, 0)) != 0)
		return error;
	return drop_link(m, ino, &in);
}

int
fs_ext2_rmdir(struct fs_ext2 *m, const struct rump_fh *dir,
              const char *name, size_t len)
{
	char nm[EXT2_NAME_LEN + 1];
	struct ext2_inode_large in;
	ext2_ino_t d = (ext2_ino_t)dir->ino, ino;
	int error;

	if ((error = fs_get_dir(m, dir, &in)) != 0)
		return error;
	if (is_dot(name, len))
		return EINVAL;
	if (is_dotdot(name, len))
		return ENOTEMPTY;
	if ((error = cname(name, len, nm)) != 0)
		return len > EXT2_NAME_LEN ? ENAMETOOLONG : error;
	if ((error = dir_find(m, d, name, len, &ino)) != 0 ||
	    (error = fs_get_ino(m, ino, &in)) != 0)
		return error;
	if (!LINUX_S_ISDIR(in.i_mode))
		return ENOTDIR;
	if (m->read_only)
		return EROFS;
	if ((error = dir_empty(m, ino)) != 0)
		return error;
	if ((error = dir_remove(m, d, nm, ino)) != 0 ||
	    (error = dir_changed(m, d, -1)) != 0)
		return error;
	return free_inode(m, ino, &in);
}

/* ---- rename ------------------------------------------------------------ */

/* EINVAL if dir is anc or lies below it (moving anc there would cut the
 * tree off).  Walks '..' up to the root. */
static int
check_not_below(struct fs_ext2 *m, ext2_ino_t anc, ext2_ino_t dir)
{
	ext2_ino_t up;
	unsigned depth;
	int error;

	for (depth = 0; depth < 65536; depth++) {
		if (dir == anc)
			return EINVAL;
		if (dir == EXT2_ROOT_INO)
			return 0;
		if ((error = dir_find(m, dir, "..", 2, &up)) != 0)
			return error == ENOENT ? EIO : error;
		dir = up;
	}
	return EIO;
}

int
fs_ext2_rename(struct fs_ext2 *m, const struct rump_fh *from_dir,
               const char *from, size_t from_len,
               const struct rump_fh *to_dir, const char *to, size_t to_len,
               uint32_t flags)
{
	char fnm[EXT2_NAME_LEN + 1], tnm[EXT2_NAME_LEN + 1];
	struct ext2_inode_large fdin, tdin, src, dst;
	ext2_ino_t fd = (ext2_ino_t)from_dir->ino, td = (ext2_ino_t)to_dir->ino;
	ext2_ino_t sino, dino = 0;
	bool sdir, ddir = false, cross = fd != td;
	int error;

	if ((error = fs_get_dir(m, from_dir, &fdin)) != 0 ||
	    (error = fs_get_dir(m, to_dir, &tdin)) != 0)
		return error;
	if (flags & ~(RUMP_FS_RENAME_NOREPLACE | RUMP_FS_RENAME_EXCHANGE) ||
	    flags == (RUMP_FS_RENAME_NOREPLACE | RUMP_FS_RENAME_EXCHANGE))
		return EINVAL;
	if (from_len > EXT2_NAME_LEN || to_len > EXT2_NAME_LEN)
		return ENAMETOOLONG;
	if (is_dot(from, from_len) || is_dotdot(from, from_len) ||
	    is_dot(to, to_len) || is_dotdot(to, to_len))
		return EINVAL;
	if ((error = cname(from, from_len, fnm)) != 0 ||
	    (error = cname(to, to_len, tnm)) != 0)
		return error;
	if ((error = dir_find(m, fd, from, from_len, &sino)) != 0 ||
	    (error = fs_get_ino(m, sino, &src)) != 0)
		return error;
	sdir = LINUX_S_ISDIR(src.i_mode);
	error = dir_find(m, td, to, to_len, &dino);
	if (error == 0) {
		if ((error = fs_get_ino(m, dino, &dst)) != 0)
			return error;
		ddir = LINUX_S_ISDIR(dst.i_mode);
	} else if (error == ENOENT) {
		dino = 0;
	} else {
		return error;
	}

	if (flags & RUMP_FS_RENAME_EXCHANGE) {
		if (dino == 0)
			return ENOENT;
	} else if (dino != 0) {
		if (flags & RUMP_FS_RENAME_NOREPLACE)
			return EEXIST;
		/* Two names of one file: POSIX says do nothing. */
		if (dino == sino)
			return 0;
		if (sdir && !ddir)
			return ENOTDIR;
		if (!sdir && ddir)
			return EISDIR;
	}
	if (dino == sino)
		return 0;
	if (m->read_only)
		return EROFS;
	if (sdir && cross && (error = check_not_below(m, sino, td)) != 0)
		return error;
	if (ddir && cross && (flags & RUMP_FS_RENAME_EXCHANGE) &&
	    (error = check_not_below(m, dino, fd)) != 0)
		return error;
	if (dino != 0 && ddir && !(flags & RUMP_FS_RENAME_EXCHANGE) &&
	    (error = dir_empty(m, dino)) != 0)
		return error;

	if (flags & RUMP_FS_RENAME_EXCHANGE) {
		if ((error = dir_retarget(m, fd, from, from_len, dino,
		                          ftype_of(dst.i_mode))) != 0 ||
		    (error = dir_retarget(m, td, to, to_len, sino,
		                          ftype_of(src.i_mode))) != 0)
			return error;
		if (cross && sdir &&
		    (error = dir_retarget(m, sino, "..", 2, td,
		                          EXT2_FT_DIR)) != 0)
			return error;
		if (cross && ddir &&
		    (error = dir_retarget(m, dino, "..", 2, fd,
		                          EXT2_FT_DIR)) != 0)
			return error;
		if ((error = dir_changed(m, fd, cross ? ddir - sdir : 0)) != 0 ||
		    (error = dir_changed(m, td, cross ? sdir - ddir : 0)) != 0)
			return error;
		if ((error = fs_read_inode(m, dino, &dst)) != 0)
			return error;
		fs_touch(m, &dst, FS_TOUCH_CTIME);
		if ((error = fs_write_inode(m, dino, &dst)) != 0)
			return error;
	} else {
		if (dino != 0) {
			/* The target name switches to the source in place,
			 * then the old target loses that name. */
			if ((error = dir_retarget(m, td, to, to_len, sino,
			                          ftype_of(src.i_mode))) != 0)
				return error;
			if (ddir) {
				if ((error = free_inode(m, dino, &dst)) != 0 ||
				    (error = dir_changed(m, td, -1)) != 0)
					return error;
			} else if ((error = drop_link(m, dino, &dst)) != 0) {
				return error;
			}
		} else if ((error = dir_add(m, td, tnm, sino,
		                            ftype_of(src.i_mode))) != 0) {
			return error;
		}
		if ((error = dir_remove(m, fd, fnm, sino)) != 0) {
			if (dino != 0 || dir_remove(m, td, tnm, sino) != 0)
				fs_mark_error(m, "rename", error);
			return error;
		}
		if (cross && sdir &&
		    (error = dir_retarget(m, sino, "..", 2, td,
		                          EXT2_FT_DIR)) != 0)
			return error;
		if ((error = dir_changed(m, fd, cross && sdir ? -1 : 0)) != 0 ||
		    (cross && (error = dir_changed(m, td, sdir ? 1 : 0)) != 0))
			return error;
	}
	if ((error = fs_read_inode(m, sino, &src)) != 0)
		return error;
	fs_touch(m, &src, FS_TOUCH_CTIME);
	return fs_write_inode(m, sino, &src);
}
