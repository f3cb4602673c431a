/*
 * fs_ext2: mounting, handles, attributes, file data, xattrs.  Directory
 * operations are in fs_dir.c.  See fs_ext2.h for the rules.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rump/rumpuser.h"

#include "fs_int.h"

/* ---- errors ------------------------------------------------------------ */

int
fs_ext2_errno(long code)
{
	if (code == 0)
		return 0;
	/* libext2fs passes system errors through as errno values. */
	if (code > 0 && code < 4096)
		return (int)code;
	switch (code) {
	case EXT2_ET_NO_MEMORY:
	case EXT2_ET_TDB_ERR_OOM:
		return ENOMEM;
	case EXT2_ET_DIR_NO_SPACE:
	case EXT2_ET_BLOCK_ALLOC_FAIL:
	case EXT2_ET_INODE_ALLOC_FAIL:
	case EXT2_ET_EA_NO_SPACE:
	case EXT2_ET_INLINE_DATA_NO_SPACE:
	case EXT2_ET_EXTENT_NO_SPACE:
	case EXT2_ET_DIR_NO_SPACE_FOR_CSUM:
	case EXT2_ET_TOO_MANY_INODES:
		return ENOSPC;
	case EXT2_ET_RO_FILSYS:
	case EXT2_ET_FILE_RO:
		return EROFS;
	case EXT2_ET_FILE_NOT_FOUND:
		return ENOENT;
	case EXT2_ET_DIR_EXISTS:
	case EXT2_ET_FILE_EXISTS:
		return EEXIST;
	case EXT2_ET_NO_DIRECTORY:
		return ENOTDIR;
	case EXT2_ET_EA_KEY_NOT_FOUND:
		return ENODATA;
	case EXT2_ET_FILE_TOO_BIG:
		return EFBIG;
	case EXT2_ET_SYMLINK_LOOP:
		return ELOOP;
	case EXT2_ET_TOO_MANY_REFS:
		return EMLINK;
	case EXT2_ET_INVALID_ARGUMENT:
	case EXT2_ET_EA_BAD_NAME_LEN:
		return EINVAL;
	case EXT2_ET_EA_BAD_VALUE_SIZE:
		return E2BIG;
	case EXT2_ET_UNIMPLEMENTED:
	case EXT2_ET_OP_NOT_SUPPORTED:
	case EXT2_ET_EXTENT_NOT_SUPPORTED:
		return EOPNOTSUPP;
	default:
		/* Checksums, bad magic, corrupt trees and directories, short
		 * reads: the image is damaged here. */
		return EIO;
	}
}

#define E(code) fs_ext2_errno(code)

/* ---- small helpers ----------------------------------------------------- */

static void
now_ts(struct rump_timespec *ts)
{
	uint64_t ns = 0;

	rumpuser_clock_gettime(RUMPUSER_CLOCK_WALL, &ns);
	ts->sec = (int64_t)(ns / 1000000000u);
	ts->nsec = (uint32_t)(ns % 1000000000u);
	ts->reserved = 0;
}

/* True if the inode's extra space reaches the end of a field at offset
 * off (4 bytes) of struct ext2_inode_large. */
static bool
has_extra(const struct fs_ext2 *m, const struct ext2_inode_large *in,
          size_t off)
{
	size_t isz = EXT2_INODE_SIZE(m->fs->super);

	return isz > EXT2_GOOD_OLD_INODE_SIZE &&
	       EXT2_GOOD_OLD_INODE_SIZE + (size_t)in->i_extra_isize >=
	       off + 4;
}

/* The extra word: 2 bits extending the seconds past 2038, 30 bits of
 * nanoseconds. */
static void
decode_time(uint32_t lo, const uint32_t *extra, struct rump_timespec *ts)
{
	ts->sec = (int32_t)lo;
	ts->nsec = 0;
	ts->reserved = 0;
	if (extra != NULL) {
		ts->sec += (int64_t)(*extra & 3) << 32;
		ts->nsec = *extra >> 2;
		if (ts->nsec >= 1000000000u)
			ts->nsec = 0;
	}
}

static void
encode_time(const struct rump_timespec *ts, uint32_t *lo, uint32_t *extra)
{
	*lo = (uint32_t)ts->sec;
	if (extra != NULL)
		*extra = (uint32_t)(((ts->sec - (int32_t)*lo) >> 32) & 3) |
		         (ts->nsec << 2);
}

#define XFIELD(m, in, f)                                                    \
	(has_extra((m), (in), offsetof(struct ext2_inode_large, f))        \
	 ? &(in)->f : NULL)

void
fs_set_time(struct fs_ext2 *m, struct ext2_inode_large *in, int which,
            const struct rump_timespec *ts)
{
	switch (which) {
	case FS_ATIME:
		encode_time(ts, &in->i_atime, XFIELD(m, in, i_atime_extra));
		break;
	case FS_MTIME:
		encode_time(ts, &in->i_mtime, XFIELD(m, in, i_mtime_extra));
		break;
	case FS_CTIME:
		encode_time(ts, &in->i_ctime, XFIELD(m, in, i_ctime_extra));
		break;
	}
}

void
fs_touch(struct fs_ext2 *m, struct ext2_inode_large *in, unsigned what)
{
	struct rump_timespec now;

	now_ts(&now);
	if (what & FS_TOUCH_ATIME)
		fs_set_time(m, in, FS_ATIME, &now);
	if (what & FS_TOUCH_MTIME)
		fs_set_time(m, in, FS_MTIME, &now);
	if (what & FS_TOUCH_CTIME)
		fs_set_time(m, in, FS_CTIME, &now);
}

uint32_t
fs_inode_uid(const struct ext2_inode_large *in)
{
	return in->i_uid | (uint32_t)in->osd2.linux2.l_i_uid_high << 16;
}

uint32_t
fs_inode_gid(const struct ext2_inode_large *in)
{
	return in->i_gid | (uint32_t)in->osd2.linux2.l_i_gid_high << 16;
}

void
fs_inode_set_owner(struct ext2_inode_large *in, uint32_t uid, uint32_t gid)
{
	in->i_uid = (uint16_t)uid;
	in->osd2.linux2.l_i_uid_high = (uint16_t)(uid >> 16);
	in->i_gid = (uint16_t)gid;
	in->osd2.linux2.l_i_gid_high = (uint16_t)(gid >> 16);
}

/* Device numbers as Linux keeps them in i_block: the old 8:8 form in
 * word 0 when it fits, else the new 12:20 form in word 1. */
static uint64_t
decode_rdev(const struct ext2_inode_large *in)
{
	uint32_t old = in->i_block[0], nw = in->i_block[1], major, minor;

	if (old != 0) {
		major = (old >> 8) & 0xff;
		minor = old & 0xff;
	} else {
		major = (nw & 0xfff00) >> 8;
		minor = (nw & 0xff) | ((nw >> 12) & 0xfff00);
	}
	return ((uint64_t)major << 32) | minor;
}

/* rdev as makedev() builds it on Linux/glibc. */
static void
split_rdev(uint64_t rdev, uint32_t *major, uint32_t *minor)
{
	*major = (uint32_t)(((rdev >> 32) & 0xfffff000u) |
	                    ((rdev >> 8) & 0x00000fffu));
	*minor = (uint32_t)(((rdev >> 12) & 0xffffff00u) |
	                    (rdev & 0x000000ffu));
}

static uint64_t
glibc_makedev(uint32_t major, uint32_t minor)
{
	return ((uint64_t)(major & 0x00000fffu) << 8) |
	       ((uint64_t)(major & 0xfffff000u) << 32) |
	       (uint64_t)(minor & 0x000000ffu) |
	       ((uint64_t)(minor & 0xffffff00u) << 12);
}

int
fs_encode_rdev(struct ext2_inode_large *in, uint64_t rdev)
{
	uint32_t major, minor;

	split_rdev(rdev, &major, &minor);
	if (major > 0xfff || minor > 0xfffff)
		return EINVAL;
	memset(in->i_block, 0, sizeof(in->i_block));
	if (major < 256 && minor < 256)
		in->i_block[0] = major << 8 | minor;
	else
		in->i_block[1] = (minor & 0xff) | (major << 8) |
		                 ((minor & ~0xffu) << 12);
	return 0;
}

int
fs_read_inode(struct fs_ext2 *m, ext2_ino_t ino, struct ext2_inode_large *in)
{
	memset(in, 0, sizeof(*in));
	return E(ext2fs_read_inode_full(m->fs, ino, (struct ext2_inode *)in,
	                                sizeof(*in)));
}

int
fs_write_inode(struct fs_ext2 *m, ext2_ino_t ino, struct ext2_inode_large *in)
{
	return E(ext2fs_write_inode_full(m->fs, ino, (struct ext2_inode *)in,
	                                 sizeof(*in)));
}

static bool
ino_in_range(const struct fs_ext2 *m, uint64_t ino)
{
	return ino == EXT2_ROOT_INO ||
	       (ino >= EXT2_FIRST_INO(m->fs->super) &&
	        ino <= m->fs->super->s_inodes_count);
}

/* An inode number found on disk (a directory entry): must be in range. */
int
fs_get_ino(struct fs_ext2 *m, ext2_ino_t ino, struct ext2_inode_large *in)
{
	int error;

	if (!ino_in_range(m, ino))
		return EIO;
	if ((error = fs_read_inode(m, ino, in)) != 0)
		return error;
	if (in->i_links_count == 0 || in->i_mode == 0)
		return EIO;
	return 0;
}

int
fs_get_fh(struct fs_ext2 *m, const struct rump_fh *fh,
          struct ext2_inode_large *in)
{
	int error;

	if (fh->reserved != 0 || fh->ino > UINT32_MAX ||
	    !ino_in_range(m, fh->ino))
		return ESTALE;
	if (m->fs->inode_map != NULL &&
	    !ext2fs_test_inode_bitmap2(m->fs->inode_map, (ext2_ino_t)fh->ino))
		return ESTALE;
	if ((error = fs_read_inode(m, (ext2_ino_t)fh->ino, in)) != 0)
		return error;
	if (in->i_links_count == 0 || in->i_mode == 0 ||
	    in->i_generation != fh->gen)
		return ESTALE;
	return 0;
}

int
fs_get_dir(struct fs_ext2 *m, const struct rump_fh *fh,
           struct ext2_inode_large *in)
{
	int error = fs_get_fh(m, fh, in);

	if (error == 0 && !LINUX_S_ISDIR(in->i_mode))
		error = ENOTDIR;
	return error;
}

void
fs_fill_attr(struct fs_ext2 *m, ext2_ino_t ino,
             const struct ext2_inode_large *in, struct rump_fattr *a)
{
	struct ext2_inode_large *w = (struct ext2_inode_large *)in;

	memset(a, 0, sizeof(*a));
	a->fh.ino = ino;
	a->fh.gen = in->i_generation;
	a->mode = in->i_mode;
	a->nlink = in->i_links_count;
	a->uid = fs_inode_uid(in);
	a->gid = fs_inode_gid(in);
	if (LINUX_S_ISCHR(in->i_mode) || LINUX_S_ISBLK(in->i_mode)) {
		uint64_t r = decode_rdev(in);

		a->rdev = glibc_makedev((uint32_t)(r >> 32), (uint32_t)r);
	}
	a->size = EXT2_I_SIZE(in);
	a->blocks = ext2fs_get_stat_i_blocks(m->fs, (struct ext2_inode *)w);
	a->blksize = m->fs->blocksize;
	decode_time(in->i_atime, XFIELD(m, w, i_atime_extra), &a->atime);
	decode_time(in->i_mtime, XFIELD(m, w, i_mtime_extra), &a->mtime);
	decode_time(in->i_ctime, XFIELD(m, w, i_ctime_extra), &a->ctime);
}

/* ---- mount ------------------------------------------------------------- */

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

#define INCOMPAT_OK (EXT2_FEATURE_INCOMPAT_FILETYPE |                      \
	EXT3_FEATURE_INCOMPAT_RECOVER | EXT3_FEATURE_INCOMPAT_EXTENTS |     \
	EXT4_FEATURE_INCOMPAT_64BIT | EXT4_FEATURE_INCOMPAT_FLEX_BG |       \
	EXT2_FEATURE_INCOMPAT_META_BG | EXT4_FEATURE_INCOMPAT_CSUM_SEED |   \
	EXT4_FEATURE_INCOMPAT_LARGEDIR | EXT4_FEATURE_INCOMPAT_INLINE_DATA | \
	EXT4_FEATURE_INCOMPAT_EA_INODE)
/* What we can read but would not keep consistent when writing. */
#define INCOMPAT_RO_ONLY (EXT4_FEATURE_INCOMPAT_MMP)
#define RO_COMPAT_RW_OK (EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER |              \
	EXT2_FEATURE_RO_COMPAT_LARGE_FILE | EXT4_FEATURE_RO_COMPAT_HUGE_FILE | \
	EXT4_FEATURE_RO_COMPAT_GDT_CSUM | EXT4_FEATURE_RO_COMPAT_DIR_NLINK |  \
	EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE |                                 \
	EXT4_FEATURE_RO_COMPAT_METADATA_CSUM)

/* Refuses what we cannot do safely; why says which it was. */
static int
check_features(const struct ext2_super_block *sb, bool rw, char *why,
               size_t cap)
{
	uint32_t incompat = sb->s_feature_incompat;
	uint32_t ro_compat = sb->s_feature_ro_compat;

	if (incompat & EXT3_FEATURE_INCOMPAT_JOURNAL_DEV) {
		say(why, cap, "this is an external journal, not a file system");
		return EINVAL;
	}
	if (incompat & ~(INCOMPAT_OK | INCOMPAT_RO_ONLY)) {
		say(why, cap, "unsupported incompatible features 0x%x "
		    "(encryption, casefolding, compression or newer)",
		    incompat & ~(INCOMPAT_OK | INCOMPAT_RO_ONLY));
		return EOPNOTSUPP;
	}
	if (!rw)
		return 0;
	if (incompat & INCOMPAT_RO_ONLY) {
		say(why, cap, "features 0x%x (multi-mount protection) are "
		    "supported read-only; mount with --ro",
		    incompat & INCOMPAT_RO_ONLY);
		return EROFS;
	}
	if (ro_compat & ~RO_COMPAT_RW_OK) {
		say(why, cap, "read-only compatible features 0x%x (quota, "
		    "bigalloc, verity, orphan file in use, or newer) cannot be "
		    "kept consistent; mount with --ro",
		    ro_compat & ~RO_COMPAT_RW_OK);
		return EROFS;
	}
	if (sb->s_state & EXT2_ERROR_FS) {
		say(why, cap, "the file system has errors; run e2fsck, or "
		    "mount with --ro");
		return EROFS;
	}
	return 0;
}

/*
 * libext2fs's allocation callbacks keep m->fresh, the blocks allocated
 * since the last commit.  A freed block's cached content is dropped; one
 * allocated since, freed again, is simply free; one the committed state
 * uses is held in use until the next commit (fs_io_freed), so that no
 * file's data lands in it, in place, before the commit that frees it.
 */
static void
blocks_freed(struct fs_ext2 *m, blk64_t blk, uint64_t num)
{
	uint64_t i = 0, j;
	bool fresh;
	int error;

	while (i < num) {
		fresh = ext2fs_test_block_bitmap2(m->fresh, blk + i) != 0;
		for (j = i + 1; j < num &&
		     (ext2fs_test_block_bitmap2(m->fresh, blk + j) != 0) ==
		     fresh; j++)
			;
		if (fresh)
			ext2fs_unmark_block_bitmap_range2(m->fresh, blk + i,
			                                  (unsigned)(j - i));
		error = fs_io_freed(m->fs->io, m->fs->block_map, blk + i,
		                    j - i, fresh);
		if (error)
			rumpuser_log(RUMPUSER_LOG_WARN, "fs_ext2", "cannot "
			             "hold %" PRIu64 " freed blocks until the "
			             "next commit (%s): a crash before it may "
			             "show them reused", j - i,
			             strerror(error));
		i = j;
	}
}

static void
fresh_one(ext2_filsys fs, blk64_t blk, int inuse)
{
	struct fs_ext2 *m = fs->priv_data;

	if (inuse > 0)
		ext2fs_mark_block_bitmap2(m->fresh, blk);
	else
		blocks_freed(m, blk, 1);
}

static void
fresh_range(ext2_filsys fs, blk64_t blk, blk_t num, int inuse)
{
	struct fs_ext2 *m = fs->priv_data;

	if (inuse > 0)
		ext2fs_mark_block_bitmap_range2(m->fresh, blk, num);
	else
		blocks_freed(m, blk, num);
}

static const char *
fs_type_name(const struct ext2_super_block *sb)
{
	if (sb->s_feature_incompat & ~(EXT2_FEATURE_INCOMPAT_FILETYPE |
	                               EXT3_FEATURE_INCOMPAT_RECOVER |
	                               EXT2_FEATURE_INCOMPAT_META_BG) ||
	    sb->s_feature_ro_compat & ~(EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER |
	                                EXT2_FEATURE_RO_COMPAT_LARGE_FILE))
		return "ext4";
	if (sb->s_feature_compat & EXT3_FEATURE_COMPAT_HAS_JOURNAL)
		return "ext3";
	return "ext2";
}

static int
open_fs(const struct fs_ext2_backend *be, size_t cache_bytes, bool rw,
        ext2_filsys *fsp, char *why, size_t cap)
{
	struct fs_io_params params = { .be = be, .cache_bytes = cache_bytes };
	char name[48];
	errcode_t ec;
	int flags;

	fs_io_name(&params, name, sizeof(name));
	flags = EXT2_FLAG_64BITS | EXT2_FLAG_NOFREE_ON_ERROR |
	        (rw ? EXT2_FLAG_RW : 0);
	ec = ext2fs_open2(name, NULL, flags, 0, 0, &fs_io_manager, fsp);
	if (ec) {
		say(why, cap, "cannot open the file system: %s",
		    error_message(ec));
		if (*fsp != NULL) {
			ext2fs_free(*fsp);
			*fsp = NULL;
		}
		return E(ec);
	}
	return 0;
}

/* Closes what must not reach the image (a refused or superseded open). */
static void
discard_fs(ext2_filsys fs)
{
	fs->flags &= ~(EXT2_FLAG_DIRTY | EXT2_FLAG_IB_DIRTY |
	               EXT2_FLAG_BB_DIRTY);
	if (ext2fs_close2(fs, 0) != 0)
		ext2fs_free(fs);
}

struct replay_home {
	const struct fs_ext2_backend *be;
	unsigned bs;
};

static int
put_home(void *ctx, uint64_t blk, const void *data)
{
	const struct replay_home *h = ctx;

	return h->be->write(h->be->ctx, blk * h->bs, data, h->bs);
}

/*
 * The journal at mount.  When the file system needs recovery, the log is
 * replayed: read-write, into the image, made stable and emptied, as the
 * kernel does; read-only, into an overlay in memory (*ovp) that the
 * mount reads through, so that a read-only mount sees the same
 * consistent state a read-write one would, and the image is not touched.
 * *reopen: the file system must be opened again to see the result.
 * Read-write, *jp is the journal commits write to.
 */
static int
mount_journal(struct fs_ext2 *m, const struct fs_ext2_backend *be, bool rw,
              const char *name, struct fs_journal **jp,
              struct fs_overlay **ovp, bool *reopen, char *why, size_t cap)
{
	struct ext2_super_block *sb = m->fs->super;
	bool recover = ext2fs_has_feature_journal_needs_recovery(sb);
	struct replay_home home = { .be = be, .bs = m->fs->blocksize };
	struct fs_journal *j = NULL;
	unsigned ntx = 0, nblocks = 0;
	int error;

	*reopen = false;
	if (!ext2fs_has_feature_journal(sb)) {
		if (recover && rw) {
			say(why, cap, "the file system needs recovery but has "
			    "no journal; run e2fsck");
			return EROFS;
		}
		return 0;
	}
	if ((error = fs_journal_open(m->fs, be, &j, why, cap)) != 0) {
		if (rw)
			return error;
		rumpuser_log(RUMPUSER_LOG_WARN, "fs_ext2", "%s: %s; mounted "
		             "read-only without the journal%s", name, why,
		             recover ? ", whose changes are not visible" : "");
		return 0;
	}
	if (rw && (error = fs_journal_check_rw(j, why, cap)) != 0)
		goto fail;
	if (!recover || !fs_journal_needs_recovery(j)) {
		/* A log the superblock does not ask for is stale: the
		 * kernel wipes it too. */
		if (fs_journal_needs_recovery(j)) {
			rumpuser_log(RUMPUSER_LOG_WARN, "fs_ext2", "%s: the "
			             "journal holds transactions the file "
			             "system does not need; ignored", name);
			if (rw && (error = fs_journal_reset(j)) != 0) {
				say(why, cap, "cannot reset the journal: %s",
				    strerror(error));
				goto fail;
			}
		}
		goto done;
	}
	if (rw) {
		error = fs_journal_recover(j, put_home, &home, &ntx, &nblocks,
		                           why, cap);
		if (error == 0 && ((error = be->flush(be->ctx)) != 0 ||
		                   (error = fs_journal_reset(j)) != 0 ||
		                   (error = be->flush(be->ctx)) != 0))
			say(why, cap, "cannot write the replayed journal: %s",
			    strerror(error));
	} else {
		if ((error = fs_overlay_create(be, m->fs->blocksize,
		                               ovp)) != 0) {
			say(why, cap, "out of memory");
			goto fail;
		}
		error = fs_journal_recover(j, fs_overlay_put, *ovp, &ntx,
		                           &nblocks, why, cap);
		if (error == E2BIG)
			say(why, cap, "the journal needs recovery and holds "
			    "too much to replay in memory; mount read-write "
			    "(which replays it) or run e2fsck");
	}
	if (error)
		goto fail;
	rumpuser_log(RUMPUSER_LOG_INFO, "fs_ext2", "%s: journal replayed%s: "
	             "%u transactions, %u blocks", name,
	             rw ? "" : " in memory (read-only)", ntx, nblocks);
	*reopen = true;
done:
	if (!rw) {
		fs_journal_close(j);
		return 0;
	}
	/* The log is empty now: the features can change. */
	if ((error = fs_journal_set_features(j,
	             ext2fs_has_feature_metadata_csum(sb),
	             ext2fs_has_feature_64bit(sb))) != 0) {
		say(why, cap, "cannot write the journal superblock: %s",
		    strerror(error));
		goto fail;
	}
	*jp = j;
	return 0;

fail:
	fs_journal_close(j);
	return error;
}

int
fs_ext2_mount(const struct fs_ext2_backend *be,
              const struct fs_ext2_mount_opts *opts, struct fs_ext2 **fsp,
              char *why, size_t cap)
{
	const char *name = opts->name ? opts->name : "the file system";
	struct ext2_inode_large root;
	struct ext2_super_block *sb;
	struct fs_journal *jnl = NULL;
	struct fs_overlay *ov = NULL;
	struct fs_ext2 *m;
	errcode_t ec;
	int error;
	bool rw = !opts->read_only, reopen;

	say(why, cap, "unknown error");
	/* Idempotent; makes error_message() know the EXT2_ET_* codes. */
	initialize_ext2_error_table();
	if (rw && be->read_only) {
		say(why, cap, "the device is read-only; mount with --ro");
		return EROFS;
	}
	if ((error = rumpuser_malloc(sizeof(*m), 0, (void **)&m)) != 0) {
		say(why, cap, "out of memory");
		return error;
	}
	memset(m, 0, sizeof(*m));
	m->read_only = !rw;
	if ((error = open_fs(be, opts->cache_bytes, rw, &m->fs, why,
	                     cap)) != 0)
		goto fail;
	if ((error = check_features(m->fs->super, rw, why, cap)) != 0)
		goto fail;
	why[0] = '\0';
	error = mount_journal(m, be, rw, name, &jnl, &ov, &reopen, why, cap);
	if (error)
		goto fail;
	if (reopen) {
		discard_fs(m->fs);
		m->fs = NULL;
		if ((error = open_fs(ov ? fs_overlay_backend(ov) : be,
		                     opts->cache_bytes, rw, &m->fs, why,
		                     cap)) != 0)
			goto fail;
		if (ov != NULL) {
			fs_io_adopt_overlay(m->fs->io, ov);
			ov = NULL;
		}
		/* The replayed superblock may say "has errors". */
		if ((error = check_features(m->fs->super, rw, why, cap)) != 0)
			goto fail;
	}
	sb = m->fs->super;
	ec = ext2fs_read_bitmaps(m->fs);
	if ((ec == EXT2_ET_BLOCK_BITMAP_CSUM_INVALID ||
	     ec == EXT2_ET_INODE_BITMAP_CSUM_INVALID) && rw && jnl == NULL &&
	    !(sb->s_state & EXT2_VALID_FS)) {
		/* A stop in the middle of a flush without a journal:
		 * bitmaps go out before the descriptors holding their
		 * checksums, and hold at least every bit in use (fs_io.c),
		 * so they are safe to use.  The next flush writes them with
		 * fresh checksums. */
		rumpuser_log(RUMPUSER_LOG_WARN, "fs_ext2", "%s: allocation "
		             "bitmaps of an interrupted flush; using them",
		             name);
		m->fs->flags |= EXT2_FLAG_IGNORE_CSUM_ERRORS;
		ec = ext2fs_read_bitmaps(m->fs);
		m->fs->flags &= ~EXT2_FLAG_IGNORE_CSUM_ERRORS;
		if (ec == 0) {
			ext2fs_mark_ib_dirty(m->fs);
			ext2fs_mark_bb_dirty(m->fs);
		}
	}
	if (ec != 0) {
		say(why, cap, "cannot read the allocation bitmaps: %s",
		    error_message(ec));
		error = E(ec);
		goto fail;
	}
	if (rw) {
		ec = ext2fs_allocate_block_bitmap(m->fs, "fresh", &m->fresh);
		if (ec) {
			say(why, cap, "out of memory");
			error = E(ec);
			goto fail;
		}
		m->fs->priv_data = m;
		ext2fs_set_block_alloc_stats_callback(m->fs, fresh_one, NULL);
		ext2fs_set_block_alloc_stats_range_callback(m->fs,
		                                            fresh_range, NULL);
	}
	if ((error = fs_io_attach(m->fs->io, m->fs, m->fresh)) != 0) {
		say(why, cap, "out of memory");
		goto fail;
	}
	if ((error = fs_read_inode(m, EXT2_ROOT_INO, &root)) != 0 ||
	    !LINUX_S_ISDIR(root.i_mode) || root.i_links_count == 0) {
		say(why, cap, "the root directory is damaged");
		error = EIO;
		goto fail;
	}
	if ((error = rumpuser_malloc(m->fs->blocksize, 4096,
	                             (void **)&m->blockbuf)) != 0) {
		say(why, cap, "out of memory");
		goto fail;
	}

	m->info.root.ino = EXT2_ROOT_INO;
	m->info.root.gen = root.i_generation;
	m->info.flags = rw ? 0 : RUMP_FS_MOUNT_READ_ONLY;
	m->info.block_size = m->fs->blocksize;
	snprintf(m->info.fs_type, sizeof(m->info.fs_type), "%s",
	         fs_type_name(sb));
	memcpy(m->info.label, sb->s_volume_name,
	       sizeof(sb->s_volume_name) < sizeof(m->info.label) - 1
	       ? sizeof(sb->s_volume_name) : sizeof(m->info.label) - 1);
	memcpy(m->info.uuid, sb->s_uuid, sizeof(m->info.uuid));

	if (rw) {
		struct rump_timespec now;

		/* Marked in use until a clean unmount, as the kernel does,
		 * so that a crash sends e2fsck looking; and, with a journal,
		 * "needs recovery", so that e2fsck and the kernel replay
		 * what we log.  Written in place before any transaction.
		 * Backup superblocks are left alone while mounted. */
		if (!(sb->s_state & EXT2_VALID_FS))
			rumpuser_log(RUMPUSER_LOG_WARN, "fs_ext2",
			             "%s was not cleanly unmounted", name);
		now_ts(&now);
		sb->s_state &= (uint16_t)~EXT2_VALID_FS;
		sb->s_mnt_count++;
		sb->s_mtime = (uint32_t)now.sec;
		if (jnl != NULL)
			ext2fs_set_feature_journal_needs_recovery(sb);
		m->fs->flags |= EXT2_FLAG_MASTER_SB_ONLY;
		ext2fs_mark_super_dirty(m->fs);
		if ((error = fs_ext2_commit(m)) != 0) {
			say(why, cap, "cannot write the superblock: %s",
			    strerror(error));
			goto fail;
		}
		if (jnl != NULL) {
			fs_io_set_journal(m->fs->io, m->fs, jnl);
			jnl = NULL;
		}
	}
	*fsp = m;
	return 0;

fail:
	fs_journal_close(jnl);
	fs_overlay_destroy(ov);
	if (m->fs != NULL)
		discard_fs(m->fs);
	if (m->fresh != NULL)
		ext2fs_free_block_bitmap(m->fresh);
	rumpuser_free(m->blockbuf, 0);
	rumpuser_free(m, sizeof(*m));
	return error;
}

int
fs_ext2_unmount(struct fs_ext2 *m)
{
	errcode_t ec = 0;
	int error = 0;

	if (m == NULL)
		return 0;
	if (!m->read_only) {
		/* The last transaction, checkpointed; then, in place, the
		 * superblock that says clean and needs no recovery. */
		if ((error = fs_ext2_commit(m)) == 0 &&
		    (error = fs_io_journal_stop(m->fs->io)) == 0) {
			ext2fs_clear_feature_journal_needs_recovery(
				m->fs->super);
			m->fs->super->s_state |= EXT2_VALID_FS;
		}
		m->fs->flags &= ~EXT2_FLAG_MASTER_SB_ONLY;
		ext2fs_mark_super_dirty(m->fs);
	}
	fs_dindex_fini(m);
	ec = ext2fs_close2(m->fs, 0);
	if (ec)
		ext2fs_free(m->fs);
	if (m->fresh != NULL)
		ext2fs_free_block_bitmap(m->fresh);
	rumpuser_free(m->blockbuf, 0);
	rumpuser_free(m, sizeof(*m));
	return error ? error : E(ec);
}

void
fs_ext2_mountinfo(struct fs_ext2 *m, struct rump_fs_mountinfo *mi)
{
	*mi = m->info;
}

bool
fs_ext2_read_only(const struct fs_ext2 *m)
{
	return m->read_only;
}

int
fs_ext2_commit(struct fs_ext2 *m)
{
	errcode_t ec;

	if (m->read_only)
		return 0;
	/* ext2fs_flush2 hands superblock, descriptors and bitmaps to the
	 * channel's cache; left to itself it would also flush the channel
	 * twice (before the superblock and after).  One flush writes all
	 * of the state, ordered (fs_io.c), then FLUSHes the disk once. */
	ec = 0;
	/* Blocks freed since the last commit are free in what it writes,
	 * and reusable once it is stable. */
	if (fs_io_held(m->fs->io) > 0) {
		fs_io_release_held(m->fs->io, m->fs->block_map);
		ext2fs_mark_bb_dirty(m->fs);
	}
	if (m->fs->flags & (EXT2_FLAG_DIRTY | EXT2_FLAG_IB_DIRTY |
	                    EXT2_FLAG_BB_DIRTY))
		ec = ext2fs_flush2(m->fs, EXT2_FLAG_FLUSH_NO_SYNC);
	if (ec == 0)
		ec = io_channel_flush(m->fs->io);
	if (ec == 0) {
		m->flags_dirty_since = 0;
		ext2fs_clear_block_bitmap(m->fresh);
		fs_io_commit_held(m->fs->io);
	} else {
		fs_io_rehold(m->fs->io, m->fs->block_map);
	}
	return E(ec);
}

int
fs_ext2_tick(struct fs_ext2 *m, uint64_t *next_ns)
{
	uint64_t since = 0, now = 0;
	unsigned dirty;

	*next_ns = UINT64_MAX;
	if (m->read_only)
		return 0;
	dirty = fs_io_dirty(m->fs->io, &since);
	rumpuser_clock_gettime(RUMPUSER_CLOCK_MONO, &now);
	if (since == 0 && (m->fs->flags & (EXT2_FLAG_DIRTY |
	                                   EXT2_FLAG_IB_DIRTY |
	                                   EXT2_FLAG_BB_DIRTY))) {
		if (m->flags_dirty_since == 0)
			m->flags_dirty_since = now;
		since = m->flags_dirty_since;
	}
	if (since == 0)
		return 0;
	/* Half the cache dirty: past that, reads would find no room.  Half
	 * the journal: one more operation must still fit a transaction.
	 * Half the free space held by frees not yet committed: new data
	 * would not find room. */
	if (dirty >= fs_io_capacity(m->fs->io) / 2 ||
	    now - since >= FS_EXT2_COMMIT_INTERVAL_NS ||
	    fs_io_journal_due(m->fs->io) ||
	    fs_io_held(m->fs->io) > ext2fs_free_blocks_count(m->fs->super) / 2)
		return fs_ext2_commit(m);
	*next_ns = since + FS_EXT2_COMMIT_INTERVAL_NS - now;
	return 0;
}

void
fs_mark_error(struct fs_ext2 *m, const char *op, int error)
{
	rumpuser_log(RUMPUSER_LOG_ERROR, "fs_ext2", "%s failed half way (%s) "
	             "and could not be undone; marking the file system for "
	             "e2fsck", op, strerror(error));
	m->fs->super->s_state |= EXT2_ERROR_FS;
	ext2fs_mark_super_dirty(m->fs);
}

int
fs_ext2_statfs(struct fs_ext2 *m, struct rump_fs_statfs *st)
{
	struct ext2_super_block *sb = m->fs->super;
	uint64_t free = ext2fs_free_blocks_count(sb);
	uint64_t reserved = ext2fs_r_blocks_count(sb);

	memset(st, 0, sizeof(*st));
	st->bsize = m->fs->blocksize;
	st->blocks = ext2fs_blocks_count(sb);
	st->bfree = free;
	st->bavail = free > reserved ? free - reserved : 0;
	st->files = sb->s_inodes_count;
	st->ffree = sb->s_free_inodes_count;
	st->namemax = EXT2_NAME_LEN;
	return 0;
}

/* ---- attributes -------------------------------------------------------- */

int
fs_ext2_getattr(struct fs_ext2 *m, const struct rump_fh *fh,
                struct rump_fattr *attr)
{
	struct ext2_inode_large in;
	int error;

	if ((error = fs_get_fh(m, fh, &in)) != 0)
		return error;
	fs_fill_attr(m, (ext2_ino_t)fh->ino, &in, attr);
	return 0;
}

static int
set_size(struct fs_ext2 *m, ext2_ino_t ino, struct ext2_inode_large *in,
         uint64_t size)
{
	ext2_file_t f;
	errcode_t ec, ec2;

	ec = ext2fs_file_open2(m->fs, ino, (struct ext2_inode *)in,
	                       EXT2_FILE_WRITE, &f);
	if (ec)
		return E(ec);
	ec = ext2fs_file_set_size2(f, size);
	ec2 = ext2fs_file_close(f);
	if (ec == 0)
		ec = ec2;
	if (ec)
		return E(ec);
	return fs_read_inode(m, ino, in);
}

static bool
valid_ts(const struct rump_timespec *ts)
{
	return ts->nsec < 1000000000u && ts->reserved == 0;
}

int
fs_ext2_setattr(struct fs_ext2 *m, const struct rump_fs_setattr_req *req,
                struct rump_fattr *attr)
{
	const uint32_t known = RUMP_FS_SET_MODE | RUMP_FS_SET_UID |
	    RUMP_FS_SET_GID | RUMP_FS_SET_SIZE | RUMP_FS_SET_ATIME |
	    RUMP_FS_SET_MTIME | RUMP_FS_SET_ATIME_NOW | RUMP_FS_SET_MTIME_NOW;
	ext2_ino_t ino = (ext2_ino_t)req->fh.ino;
	struct ext2_inode_large in;
	struct rump_timespec now;
	int error;

	if ((error = fs_get_fh(m, &req->fh, &in)) != 0)
		return error;
	if (req->valid & ~known)
		return EINVAL;
	if (((req->valid & RUMP_FS_SET_ATIME) && !valid_ts(&req->atime)) ||
	    ((req->valid & RUMP_FS_SET_MTIME) && !valid_ts(&req->mtime)))
		return EINVAL;
	if (req->valid == 0) {
		fs_fill_attr(m, ino, &in, attr);
		return 0;
	}
	if (m->read_only)
		return EROFS;
	now_ts(&now);
	if (req->valid & RUMP_FS_SET_SIZE) {
		if (LINUX_S_ISDIR(in.i_mode))
			return EISDIR;
		if (!LINUX_S_ISREG(in.i_mode))
			return EINVAL;
		if (req->size != EXT2_I_SIZE(&in)) {
			if ((error = set_size(m, ino, &in, req->size)) != 0)
				return error;
			if (!(req->valid & (RUMP_FS_SET_MTIME |
			                    RUMP_FS_SET_MTIME_NOW)))
				fs_set_time(m, &in, FS_MTIME, &now);
		}
	}
	if (req->valid & RUMP_FS_SET_MODE)
		in.i_mode = (uint16_t)((in.i_mode & LINUX_S_IFMT) |
		                       (req->mode & 07777));
	if (req->valid & (RUMP_FS_SET_UID | RUMP_FS_SET_GID))
		fs_inode_set_owner(&in,
		    req->valid & RUMP_FS_SET_UID ? req->uid : fs_inode_uid(&in),
		    req->valid & RUMP_FS_SET_GID ? req->gid : fs_inode_gid(&in));
	if (req->valid & RUMP_FS_SET_ATIME_NOW)
		fs_set_time(m, &in, FS_ATIME, &now);
	else if (req->valid & RUMP_FS_SET_ATIME)
		fs_set_time(m, &in, FS_ATIME, &req->atime);
	if (req->valid & RUMP_FS_SET_MTIME_NOW)
		fs_set_time(m, &in, FS_MTIME, &now);
	else if (req->valid & RUMP_FS_SET_MTIME)
		fs_set_time(m, &in, FS_MTIME, &req->mtime);
	fs_set_time(m, &in, FS_CTIME, &now);
	if ((error = fs_write_inode(m, ino, &in)) != 0)
		return error;
	fs_fill_attr(m, ino, &in, attr);
	return 0;
}

/* ---- file data --------------------------------------------------------- */

int
fs_read_file(struct fs_ext2 *m, ext2_ino_t ino, struct ext2_inode_large *in,
              uint64_t off, void *buf, size_t len, size_t *got)
{
	ext2_file_t f;
	unsigned int n;
	errcode_t ec, ec2;

	*got = 0;
	ec = ext2fs_file_open2(m->fs, ino, (struct ext2_inode *)in, 0, &f);
	if (ec)
		return E(ec);
	ec = ext2fs_file_llseek(f, off, EXT2_SEEK_SET, NULL);
	while (ec == 0 && *got < len) {
		ec = ext2fs_file_read(f, (char *)buf + *got,
		                      (unsigned int)(len - *got), &n);
		if (ec == 0 && n == 0)
			break;
		*got += n;
	}
	ec2 = ext2fs_file_close(f);
	return E(ec ? ec : ec2);
}

/*
 * Maps the file block by block and reads runs of physically contiguous
 * blocks with one channel request, straight into buf: a large read costs
 * a few backend requests instead of one per block.  Holes and unwritten
 * extents read as zeroes.
 */
static int
read_mapped(struct fs_ext2 *m, ext2_ino_t ino, struct ext2_inode_large *in,
            uint64_t off, unsigned char *buf, size_t len)
{
	unsigned bs = m->fs->blocksize;
	blk64_t lblk, pblk, next;
	size_t skip, n, run;
	int rflags;
	errcode_t ec;

	while (len > 0) {
		lblk = off / bs;
		skip = off % bs;
		ec = ext2fs_bmap2(m->fs, ino, (struct ext2_inode *)in, NULL, 0,
		                  lblk, &rflags, &pblk);
		if (ec)
			return E(ec);
		if (pblk == 0 || (rflags & BMAP_RET_UNINIT)) {
			n = bs - skip < len ? bs - skip : len;
			memset(buf, 0, n);
		} else if (skip != 0 || len < bs) {
			ec = io_channel_read_blk64(m->fs->io, pblk, 1,
			                           m->blockbuf);
			if (ec)
				return E(ec);
			n = bs - skip < len ? bs - skip : len;
			memcpy(buf, m->blockbuf + skip, n);
		} else {
			for (run = 1; (run + 1) * bs <= len && run < 256;
			     run++) {
				ec = ext2fs_bmap2(m->fs, ino,
				                  (struct ext2_inode *)in, NULL,
				                  0, lblk + run, &rflags, &next);
				if (ec)
					return E(ec);
				if (next != pblk + run ||
				    (rflags & BMAP_RET_UNINIT))
					break;
			}
			ec = io_channel_read_blk64(m->fs->io, pblk, (int)run,
			                           buf);
			if (ec)
				return E(ec);
			n = run * bs;
		}
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

int
fs_ext2_read(struct fs_ext2 *m, const struct rump_fh *fh, uint64_t off,
             void *buf, size_t len, size_t *got, bool *eof)
{
	ext2_ino_t ino = (ext2_ino_t)fh->ino;
	struct ext2_inode_large in;
	uint64_t size;
	int error;

	*got = 0;
	*eof = false;
	if ((error = fs_get_fh(m, fh, &in)) != 0)
		return error;
	if (LINUX_S_ISDIR(in.i_mode))
		return EISDIR;
	if (!LINUX_S_ISREG(in.i_mode))
		return EINVAL;
	size = EXT2_I_SIZE(&in);
	if (off >= size) {
		*eof = true;
		return 0;
	}
	if (len > size - off)
		len = (size_t)(size - off);
	if (in.i_flags & EXT4_INLINE_DATA_FL) {
		error = fs_read_file(m, ino, &in, off, buf, len, got);
	} else {
		error = read_mapped(m, ino, &in, off, buf, len);
		if (error == 0)
			*got = len;
	}
	if (error == 0)
		*eof = off + *got >= size;
	return error;
}

/*
 * Where the file's blocks from lblk on are: *pblk (0: a hole) for *len
 * blocks, at most max; *uninit for an unwritten extent.
 */
static errcode_t
map_run(ext2_extent_handle_t h, blk64_t lblk, blk64_t max, blk64_t *pblk,
        blk64_t *len, bool *uninit)
{
	struct ext2fs_extent ex;
	errcode_t ec;

	*pblk = 0;
	*len = max;
	*uninit = false;
	ec = ext2fs_extent_goto2(h, 0, lblk);
	if (ec == 0) {
		if ((ec = ext2fs_extent_get(h, EXT2_EXTENT_CURRENT, &ex)) != 0)
			return ec;
		*pblk = ex.e_pblk + (lblk - ex.e_lblk);
		if (ex.e_lblk + ex.e_len - lblk < max)
			*len = ex.e_lblk + ex.e_len - lblk;
		*uninit = (ex.e_flags & EXT2_EXTENT_FLAGS_UNINIT) != 0;
		return 0;
	}
	if (ec != EXT2_ET_EXTENT_NOT_FOUND)
		return ec;
	/* A hole, up to the next extent: the handle is left on the extent
	 * before lblk, or on the first one when there is none before. */
	ec = ext2fs_extent_get(h, EXT2_EXTENT_CURRENT, &ex);
	if (ec == EXT2_ET_NO_CURRENT_NODE)
		return 0;                       /* no extents at all */
	if (ec)
		return ec;
	if (ex.e_lblk <= lblk) {
		ec = ext2fs_extent_get(h, EXT2_EXTENT_NEXT_LEAF, &ex);
		if (ec == EXT2_ET_EXTENT_NO_NEXT)
			return 0;
		if (ec)
			return ec;
		if (ex.e_lblk <= lblk)
			return 0;               /* wrapped around: the last */
	}
	if (ex.e_lblk - lblk < max)
		*len = ex.e_lblk - lblk;
	return 0;
}

/*
 * Writes count blocks from lblk on, all mapped and initialized, one
 * extent lookup per extent.  Block by block: the channel keeps file data
 * with the metadata until a commit, which writes it back in contiguous
 * runs.
 */
static errcode_t
write_mapped(struct fs_ext2 *m, ext2_ino_t ino, struct ext2_inode_large *in,
             blk64_t lblk, blk64_t count, const unsigned char *buf)
{
	unsigned bs = m->fs->blocksize;
	ext2_extent_handle_t h;
	blk64_t at, pblk, len;
	bool uninit;
	errcode_t ec;

	ec = ext2fs_extent_open2(m->fs, ino, (struct ext2_inode *)in, &h);
	if (ec)
		return ec;
	for (at = 0; ec == 0 && at < count; at += len) {
		if ((ec = map_run(h, lblk + at, count - at, &pblk, &len,
		                  &uninit)) != 0)
			break;
		if (pblk == 0 || uninit) {
			ec = EXT2_ET_EXTENT_NOT_FOUND;  /* not what we mapped */
			break;
		}
		fs_io_data_mode(m->fs->io, true);
		for (blk64_t i = 0; ec == 0 && i < len; i++)
			ec = io_channel_write_blk64(m->fs->io, pblk + i, 1,
			                            buf + (at + i) * bs);
		fs_io_data_mode(m->fs->io, false);
	}
	ext2fs_extent_free(h);
	return ec;
}

/*
 * Maps count new blocks at lblk by growing the extent that ends there,
 * when the blocks after it are free (ext2fs_fallocate would start a new
 * extent: it grows an initialized one only when it zeroes the blocks);
 * an extent that then follows without a gap, a piece that arrived
 * early, is merged in.  A sequential write stays in a few extents, which
 * the inode itself holds, so that mapping a block reads no extent block.
 * EAGAIN, with nothing changed: not so.
 */
static errcode_t
grow_left(struct fs_ext2 *m, ext2_ino_t ino, struct ext2_inode_large *in,
          blk64_t lblk, blk64_t count)
{
	ext2_filsys fs = m->fs;
	ext2_extent_handle_t h;
	struct ext2fs_extent left, right;
	blk64_t pblk, plen;
	errcode_t ec;

	if (lblk == 0 || count > EXT_INIT_MAX_LEN)
		return EAGAIN;
	ec = ext2fs_extent_open2(fs, ino, (struct ext2_inode *)in, &h);
	if (ec)
		return ec;
	ec = ext2fs_extent_goto2(h, 0, lblk - 1);
	if (ec == 0)
		ec = ext2fs_extent_get(h, EXT2_EXTENT_CURRENT, &left);
	if (ec == EXT2_ET_EXTENT_NOT_FOUND ||
	    (ec == 0 && ((left.e_flags & EXT2_EXTENT_FLAGS_UNINIT) ||
	                 left.e_lblk + left.e_len != lblk ||
	                 left.e_len + count > EXT_INIT_MAX_LEN)))
		ec = EAGAIN;
	if (ec)
		goto out;
	if (ext2fs_new_range(fs, EXT2_NEWRANGE_FIXED_GOAL |
	                     EXT2_NEWRANGE_MIN_LENGTH,
	                     left.e_pblk + left.e_len, count, NULL, &pblk,
	                     &plen) != 0) {
		ec = EAGAIN;
		goto out;
	}
	left.e_len += count;
	if ((ec = ext2fs_extent_replace(h, 0, &left)) != 0)
		goto out;                       /* the leaf is as it was */
	ext2fs_block_alloc_stats_range(fs, pblk, count, +1);
	if ((ec = ext2fs_extent_fix_parents(h)) != 0 ||
	    (ec = ext2fs_iblk_add_blocks(fs, (struct ext2_inode *)in,
	                                 count)) != 0) {
		fs_mark_error(m, "write", E(ec));
		goto out;
	}

	if (ext2fs_extent_get(h, EXT2_EXTENT_NEXT_LEAF, &right) != 0 ||
	    right.e_lblk != left.e_lblk + left.e_len ||
	    right.e_pblk != left.e_pblk + left.e_len ||
	    (right.e_flags & EXT2_EXTENT_FLAGS_UNINIT) ||
	    left.e_len + right.e_len > EXT_INIT_MAX_LEN)
		goto out;
	/* Deleted first: a failure half way loses a mapping (the error is
	 * marked for e2fsck) rather than leave two that overlap. */
	if ((ec = ext2fs_extent_delete(h, 0)) == 0 &&
	    (ec = ext2fs_extent_fix_parents(h)) == 0 &&
	    (ec = ext2fs_extent_goto(h, left.e_lblk)) == 0) {
		left.e_len += right.e_len;
		if ((ec = ext2fs_extent_replace(h, 0, &left)) == 0)
			ec = ext2fs_extent_fix_parents(h);
	}
	if (ec)
		fs_mark_error(m, "write", E(ec));
out:
	ext2fs_extent_free(h);
	return ec;
}

/*
 * Whole blocks of an extent-mapped file, past ext2fs_file_write's block
 * at a time path, which maps each block alone (the extent leaf written
 * and checksummed again per block), allocates in arrival order (the
 * gateway's threads send a sequential write's pieces out of order: the
 * file ends up in dozens of extents) and zeroes each new block before
 * the data overwrites it.  Here the holes are allocated at once by
 * ext2fs_fallocate, whose goal is the left neighbour's physical block
 * plus the logical distance, so pieces arriving out of order still land
 * contiguously, and the data goes to the channel once.
 *
 * EAGAIN, with nothing changed: an unwritten extent lies in the range,
 * which ext2fs_file_write knows how to convert.  On another error the
 * inode in memory may have changed and must be written.
 */
static int
write_whole_blocks(struct fs_ext2 *m, ext2_ino_t ino,
                   struct ext2_inode_large *in, blk64_t lblk,
                   blk64_t count, const unsigned char *buf)
{
	ext2_extent_handle_t h;
	blk64_t at, pblk, len, holes = 0;
	bool uninit;
	errcode_t ec, ec2;

	ec = ext2fs_extent_open2(m->fs, ino, (struct ext2_inode *)in, &h);
	if (ec)
		return E(ec);
	for (at = 0; at < count; at += len) {
		if ((ec = map_run(h, lblk + at, count - at, &pblk, &len,
		                  &uninit)) != 0)
			break;
		if (uninit) {
			ext2fs_extent_free(h);
			return EAGAIN;
		}
		if (pblk == 0)
			holes += len;
	}
	ext2fs_extent_free(h);
	if (ec)
		return E(ec);
	/* Initialized at once: the data is written before the next
	 * commit can make the mapping durable. */
	if (holes == count)
		ec = grow_left(m, ino, in, lblk, count);
	if (holes > 0 && (holes < count || ec == EAGAIN))
		ec = ext2fs_fallocate(m->fs, EXT2_FALLOCATE_FORCE_INIT |
		                      EXT2_FALLOCATE_INIT_BEYOND_EOF, ino,
		                      (struct ext2_inode *)in, ~0ULL, lblk,
		                      count);
	if (ec == 0)
		ec = write_mapped(m, ino, in, lblk, count, buf);
	if (ec == 0 || holes == 0)
		return E(ec);
	/* The new blocks must not show what they held before. */
	if (holes == count)
		ec2 = ext2fs_punch(m->fs, ino, (struct ext2_inode *)in, NULL,
		                   lblk, lblk + count - 1);
	else
		ec2 = EXT2_ET_SHORT_WRITE;  /* holes and data mixed */
	if (ec2)
		fs_mark_error(m, "write", E(ec2));
	return E(ec);
}

/*
 * Blocks freed since the last commit are held until the next one
 * (fs_io_freed): when they are what an allocation of about `blocks`
 * would need, commit first.  Called at the start of an operation, which
 * is a boundary between two.
 */
static int
make_room(struct fs_ext2 *m, uint64_t blocks)
{
	uint64_t held = fs_io_held(m->fs->io);
	uint64_t free = ext2fs_free_blocks_count(m->fs->super);

	if (held == 0 || (free > held && free - held > blocks + 64))
		return 0;
	return fs_ext2_commit(m);
}

int
fs_ext2_write(struct fs_ext2 *m, const struct rump_fh *fh, uint64_t off,
              const void *buf, size_t len)
{
	ext2_ino_t ino = (ext2_ino_t)fh->ino;
	struct ext2_inode_large in;
	unsigned bs = m->fs->blocksize;
	ext2_file_t f;
	size_t done = 0;
	unsigned int n;
	uint64_t end;
	errcode_t ec, ec2;
	int error, error2;
	bool data;

	if ((error = fs_get_fh(m, fh, &in)) != 0)
		return error;
	if (LINUX_S_ISDIR(in.i_mode))
		return EISDIR;
	if (!LINUX_S_ISREG(in.i_mode))
		return EINVAL;
	if (m->read_only)
		return EROFS;
	/* Logical block numbers are 32 bits. */
	if (__builtin_add_overflow(off, (uint64_t)len, &end) ||
	    end > ((uint64_t)1 << 32) * m->fs->blocksize)
		return EFBIG;
	if (len == 0)
		return 0;
	if ((error = make_room(m, len / bs + 1)) != 0)
		return error;
	if (off % bs == 0 && len >= bs && EXT2FS_CLUSTER_RATIO(m->fs) == 1 &&
	    (in.i_flags & EXT4_EXTENTS_FL) &&
	    !(in.i_flags & EXT4_INLINE_DATA_FL)) {
		error = write_whole_blocks(m, ino, &in, off / bs, len / bs,
		                           buf);
		if (error != EAGAIN) {
			done = len - len % bs;
			if (error == 0 && off + done > EXT2_I_SIZE(&in))
				error = E(ext2fs_inode_size_set(m->fs,
				        (struct ext2_inode *)&in, off + done));
			if (error == 0 && done == len)
				fs_touch(m, &in,
				         FS_TOUCH_MTIME | FS_TOUCH_CTIME);
			/* Even after an error: i_blocks counts what the
			 * extent tree maps now. */
			error2 = fs_write_inode(m, ino, &in);
			if (error != 0 || done == len)
				return error != 0 ? error : error2;
			if (error2 != 0)
				return error2;
		} else {
			done = 0;
		}
	}
	ec = ext2fs_file_open2(m->fs, ino, (struct ext2_inode *)&in,
	                       EXT2_FILE_WRITE, &f);
	if (ec)
		return E(ec);
	/* Through ext2fs_file_write only an extent-mapped file's blocks
	 * are told apart from its metadata (fs_io.c): an indirect block
	 * looks like data. */
	data = (in.i_flags & EXT4_EXTENTS_FL) &&
	       !(in.i_flags & EXT4_INLINE_DATA_FL);
	fs_io_data_mode(m->fs->io, data);
	ec = ext2fs_file_llseek(f, off + done, EXT2_SEEK_SET, NULL);
	while (ec == 0 && done < len) {
		ec = ext2fs_file_write(f, (const char *)buf + done,
		                       (unsigned int)(len - done), &n);
		if (ec == 0 && n == 0)
			ec = EXT2_ET_SHORT_WRITE;
		done += n;
	}
	ec2 = ext2fs_file_close(f);
	fs_io_data_mode(m->fs->io, false);
	if (ec == 0)
		ec = ec2;
	if (ec)
		return E(ec);
	if ((error = fs_read_inode(m, ino, &in)) != 0)
		return error;
	fs_touch(m, &in, FS_TOUCH_MTIME | FS_TOUCH_CTIME);
	return fs_write_inode(m, ino, &in);
}

int
fs_ext2_fallocate(struct fs_ext2 *m, const struct rump_fh *fh, uint64_t off,
                  uint64_t len, uint32_t mode)
{
	ext2_ino_t ino = (ext2_ino_t)fh->ino;
	unsigned bs = m->fs->blocksize;
	struct ext2_inode_large in;
	uint64_t end, size, first, last;
	errcode_t ec;
	int error, flags;

	if ((error = fs_get_fh(m, fh, &in)) != 0)
		return error;
	if (mode & ~(RUMP_FS_FALLOC_KEEP_SIZE | RUMP_FS_FALLOC_PUNCH_HOLE))
		return EOPNOTSUPP;
	if (LINUX_S_ISDIR(in.i_mode))
		return EISDIR;
	if (!LINUX_S_ISREG(in.i_mode))
		return ENODEV;
	if (m->read_only)
		return EROFS;
	if (len == 0 || __builtin_add_overflow(off, len, &end))
		return EINVAL;
	if (end > ((uint64_t)1 << 32) * bs)
		return EFBIG;
	if (!(mode & RUMP_FS_FALLOC_PUNCH_HOLE) &&
	    (error = make_room(m, len / bs + 1)) != 0)
		return error;
	size = EXT2_I_SIZE(&in);

	if (mode & RUMP_FS_FALLOC_PUNCH_HOLE) {
		/* As on Linux: punching always keeps the size. */
		if (!(mode & RUMP_FS_FALLOC_KEEP_SIZE))
			return EOPNOTSUPP;
		if (off >= size)
			return 0;
		if (end > size)
			end = size;
		first = (off + bs - 1) / bs;
		last = end / bs;  /* exclusive */
		/* Partial blocks at either edge are zeroed in place. */
		if (off % bs != 0 || first > last) {
			uint64_t stop = first * bs < end ? first * bs : end;

			memset(m->blockbuf, 0, bs);
			if ((error = fs_ext2_write(m, fh, off, m->blockbuf,
			                           (size_t)(stop - off))) != 0)
				return error;
		}
		if (end % bs != 0 && last >= first && last * bs > off) {
			memset(m->blockbuf, 0, bs);
			if ((error = fs_ext2_write(m, fh, last * bs,
			                           m->blockbuf,
			                           (size_t)(end - last * bs))) != 0)
				return error;
		}
		if ((error = fs_read_inode(m, ino, &in)) != 0)
			return error;
		if (last > first) {
			ec = ext2fs_punch(m->fs, ino, (struct ext2_inode *)&in,
			                  NULL, first, last - 1);
			if (ec)
				return E(ec);
			if ((error = fs_read_inode(m, ino, &in)) != 0)
				return error;
		}
	} else {
		flags = (in.i_flags & EXT4_EXTENTS_FL)
		        ? EXT2_FALLOCATE_FORCE_UNINIT
		        : EXT2_FALLOCATE_ZERO_BLOCKS;
		/* Not read again after: ext2fs_fallocate counts the blocks in
		 * our copy, and writes the inode only when the extent tree's
		 * root changes. */
		ec = ext2fs_fallocate(m->fs, flags, ino,
		                      (struct ext2_inode *)&in, ~0ULL, off / bs,
		                      (end + bs - 1) / bs - off / bs);
		if (ec) {
			/* What it did allocate is mapped and counted: best
			 * effort, the first error is the one to report. */
			(void)fs_write_inode(m, ino, &in);
			return E(ec);
		}
		if (!(mode & RUMP_FS_FALLOC_KEEP_SIZE) && end > size) {
			if ((ec = ext2fs_inode_size_set(m->fs,
			        (struct ext2_inode *)&in, end)) != 0)
				return E(ec);
		}
	}
	fs_touch(m, &in, FS_TOUCH_MTIME | FS_TOUCH_CTIME);
	return fs_write_inode(m, ino, &in);
}

/* ---- extended attributes ----------------------------------------------- */

static int
xattr_name(const char *name, size_t len, char *out)
{
	static const char *const prefixes[] = {
		"user.", "trusted.", "security.",
	};
	size_t i;

	if (len == 0 || len > 255 || memchr(name, '\0', len) != NULL)
		return EINVAL;
	memcpy(out, name, len);
	out[len] = '\0';
	if (strcmp(out, "system.posix_acl_access") == 0 ||
	    strcmp(out, "system.posix_acl_default") == 0)
		return 0;
	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t pl = strlen(prefixes[i]);

		if (len > pl && memcmp(out, prefixes[i], pl) == 0)
			return 0;
	}
	return EOPNOTSUPP;
}

static int
xattrs_open(struct fs_ext2 *m, const struct rump_fh *fh,
            struct ext2_xattr_handle **hp)
{
	struct ext2_inode_large in;
	errcode_t ec;
	int error;

	if ((error = fs_get_fh(m, fh, &in)) != 0)
		return error;
	if ((ec = ext2fs_xattrs_open(m->fs, (ext2_ino_t)fh->ino, hp)) != 0)
		return E(ec);
	if ((ec = ext2fs_xattrs_read(*hp)) != 0) {
		ext2fs_xattrs_close(hp);
		return E(ec);
	}
	return 0;
}

int
fs_ext2_getxattr(struct fs_ext2 *m, const struct rump_fh *fh,
                 const char *name, size_t name_len, void *buf, size_t cap,
                 size_t *len)
{
	struct ext2_xattr_handle *h;
	char key[256];
	void *val = NULL;
	size_t vlen = 0;
	errcode_t ec;
	int error;

	*len = 0;
	if ((error = xattr_name(name, name_len, key)) != 0)
		return error == EOPNOTSUPP ? ENODATA : error;
	if ((error = xattrs_open(m, fh, &h)) != 0)
		return error;
	ec = ext2fs_xattr_get(h, key, &val, &vlen);
	ext2fs_xattrs_close(&h);
	if (ec)
		return E(ec);
	*len = vlen;
	if (vlen > cap)
		error = ERANGE;
	else if (vlen > 0)
		memcpy(buf, val, vlen);
	ext2fs_free_mem(&val);
	return error;
}

int
fs_ext2_setxattr(struct fs_ext2 *m, const struct rump_fh *fh,
                 const char *name, size_t name_len, const void *value,
                 size_t value_len, uint32_t flags)
{
	struct ext2_xattr_handle *h;
	struct ext2_inode_large in;
	char key[256];
	void *old = NULL;
	size_t olen;
	errcode_t ec;
	int error;

	if (flags & ~(RUMP_FS_XATTR_CREATE | RUMP_FS_XATTR_REPLACE) ||
	    flags == (RUMP_FS_XATTR_CREATE | RUMP_FS_XATTR_REPLACE))
		return EINVAL;
	if ((error = xattr_name(name, name_len, key)) != 0)
		return error;
	if (value_len > RUMP_FS_XATTR_MAX)
		return E2BIG;
	if (m->read_only)
		return EROFS;
	if ((error = xattrs_open(m, fh, &h)) != 0)
		return error;
	if (flags) {
		ec = ext2fs_xattr_get(h, key, &old, &olen);
		if (ec == 0)
			ext2fs_free_mem(&old);
		if (ec == 0 && (flags & RUMP_FS_XATTR_CREATE))
			error = EEXIST;
		else if (ec == EXT2_ET_EA_KEY_NOT_FOUND &&
		         (flags & RUMP_FS_XATTR_REPLACE))
			error = ENODATA;
		else if (ec != 0 && ec != EXT2_ET_EA_KEY_NOT_FOUND)
			error = E(ec);
	}
	if (error == 0)
		error = E(ext2fs_xattr_set(h, key, value, value_len));
	ec = ext2fs_xattrs_close(&h);
	if (error == 0)
		error = E(ec);
	if (error == 0 &&
	    (error = fs_read_inode(m, (ext2_ino_t)fh->ino, &in)) == 0) {
		fs_touch(m, &in, FS_TOUCH_CTIME);
		error = fs_write_inode(m, (ext2_ino_t)fh->ino, &in);
	}
	return error;
}

struct list_ctx {
	char *buf;
	size_t cap, len;
};

static int
list_one(char *name, char *value, size_t value_len, void *data)
{
	struct list_ctx *c = data;
	size_t n = strlen(name) + 1;

	(void)value;
	(void)value_len;
	if (c->len + n <= c->cap)
		memcpy(c->buf + c->len, name, n);
	c->len += n;
	return 0;
}

int
fs_ext2_listxattr(struct fs_ext2 *m, const struct rump_fh *fh, void *buf,
                  size_t cap, size_t *len)
{
	struct list_ctx c = { .buf = buf, .cap = cap };
	struct ext2_xattr_handle *h;
	errcode_t ec;
	int error;

	*len = 0;
	if ((error = xattrs_open(m, fh, &h)) != 0)
		return error;
	ec = ext2fs_xattrs_iterate(h, list_one, &c);
	ext2fs_xattrs_close(&h);
	if (ec)
		return E(ec);
	*len = c.len;
	return c.len > cap ? ERANGE : 0;
}

int
fs_ext2_removexattr(struct fs_ext2 *m, const struct rump_fh *fh,
                    const char *name, size_t name_len)
{
	struct ext2_xattr_handle *h;
	struct ext2_inode_large in;
	char key[256];
	void *old = NULL;
	size_t olen;
	errcode_t ec;
	int error;

	if ((error = xattr_name(name, name_len, key)) != 0)
		return error == EOPNOTSUPP ? ENODATA : error;
	if (m->read_only)
		return EROFS;
	if ((error = xattrs_open(m, fh, &h)) != 0)
		return error;
	ec = ext2fs_xattr_get(h, key, &old, &olen);
	if (ec == 0) {
		ext2fs_free_mem(&old);
		ec = ext2fs_xattr_remove(h, key);
	}
	error = E(ec);
	ec = ext2fs_xattrs_close(&h);
	if (error == 0)
		error = E(ec);
	if (error == 0 &&
	    (error = fs_read_inode(m, (ext2_ino_t)fh->ino, &in)) == 0) {
		fs_touch(m, &in, FS_TOUCH_CTIME);
		error = fs_write_inode(m, (ext2_ino_t)fh->ino, &in);
	}
	return error;
}
