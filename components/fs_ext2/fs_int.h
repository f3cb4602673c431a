/* Internals of fs_ext2 shared between its files. */
#ifndef FS_EXT2_INT_H
#define FS_EXT2_INT_H

#include <ext2fs/ext2fs.h>

#include "fs_ext2.h"

/*
 * The io_manager over a struct fs_ext2_backend, with a write-back block
 * cache: blocks libext2fs writes stay in memory until a flush
 * (fs_ext2_commit), and then all go out together, in an order chosen for
 * crash safety, merged into large writes.
 *
 * libext2fs opens a channel by name only, so the name carries the address
 * of a struct fs_io_params (fs_io_name()); the params must live until the
 * open returns.
 */
struct fs_io_params {
	const struct fs_ext2_backend *be;
	size_t cache_bytes;
};

extern struct struct_io_manager fs_io_manager;

/* Writes the channel name for p into buf (at least 48 bytes). */
void fs_io_name(const struct fs_io_params *p, char *buf, size_t cap);
/* Once the file system is open: learns where its metadata lives, and
 * which blocks were allocated since the last flush (fresh, owned by the
 * caller, NULL: unknown), to order the writes of a flush (fs_io.c). */
int fs_io_attach(io_channel ch, ext2_filsys fs, ext2fs_block_bitmap fresh);
/* Dirty blocks held, and since when (monotonic ns, 0 when none). */
unsigned fs_io_dirty(io_channel ch, uint64_t *since);
/* The blocks the cache holds before it grows past its size. */
unsigned fs_io_capacity(io_channel ch);

/* A mounted file system. */
struct fs_ext2 {
	ext2_filsys fs;
	bool read_only;
	struct rump_fs_mountinfo info;
	unsigned char *blockbuf;        /* one block of scratch */
	/* Monotonic ns since libext2fs holds changes no cached block
	 * shows (0: none); see fs_ext2_tick(). */
	uint64_t flags_dirty_since;
	/* Blocks allocated since the last commit (read-write mounts). */
	ext2fs_block_bitmap fresh;
};

/* An operation failed after changing the image in a way it could not
 * undo: logged, and the superblock says "has errors" from the next
 * commit on, so that e2fsck runs before the next read-write mount. */
void fs_mark_error(struct fs_ext2 *m, const char *op, int error);

/* Inodes: read and write the large form (extra fields included). */
int fs_read_inode(struct fs_ext2 *m, ext2_ino_t ino,
                  struct ext2_inode_large *in);
int fs_write_inode(struct fs_ext2 *m, ext2_ino_t ino,
                   struct ext2_inode_large *in);
/* A client's handle: ESTALE unless it names a live inode of that
 * generation.  _dir also wants a directory (ENOTDIR). */
int fs_get_fh(struct fs_ext2 *m, const struct rump_fh *fh,
              struct ext2_inode_large *in);
int fs_get_dir(struct fs_ext2 *m, const struct rump_fh *fh,
               struct ext2_inode_large *in);
/* An inode number read from disk: EIO unless it names a live inode. */
int fs_get_ino(struct fs_ext2 *m, ext2_ino_t ino,
               struct ext2_inode_large *in);
void fs_fill_attr(struct fs_ext2 *m, ext2_ino_t ino,
                  const struct ext2_inode_large *in, struct rump_fattr *a);

enum { FS_ATIME, FS_MTIME, FS_CTIME };
#define FS_TOUCH_ATIME 0x1
#define FS_TOUCH_MTIME 0x2
#define FS_TOUCH_CTIME 0x4
void fs_set_time(struct fs_ext2 *m, struct ext2_inode_large *in, int which,
                 const struct rump_timespec *ts);
/* Sets the named times to now. */
void fs_touch(struct fs_ext2 *m, struct ext2_inode_large *in, unsigned what);
uint32_t fs_inode_uid(const struct ext2_inode_large *in);
uint32_t fs_inode_gid(const struct ext2_inode_large *in);
void fs_inode_set_owner(struct ext2_inode_large *in, uint32_t uid,
                        uint32_t gid);
/* Reads through ext2fs_file (inline data, symlink blocks). */
int fs_read_file(struct fs_ext2 *m, ext2_ino_t ino,
                 struct ext2_inode_large *in, uint64_t off, void *buf,
                 size_t len, size_t *got);
/* rdev as makedev() makes it; EINVAL if ext4 cannot hold it. */
int fs_encode_rdev(struct ext2_inode_large *in, uint64_t rdev);

#endif /* FS_EXT2_INT_H */
