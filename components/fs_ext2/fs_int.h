/* Internals of fs_ext2 shared between its files. */
#ifndef FS_EXT2_INT_H
#define FS_EXT2_INT_H

#include <ext2fs/ext2fs.h>

#include "fs_ext2.h"

/*
 * The io_manager over a struct fs_ext2_backend, with a write-back block
 * cache: metadata blocks libext2fs reads and writes one at a time stay in
 * memory until a flush (fs_ext2_commit) or until the cache needs room,
 * and then go out sorted and merged into large writes.
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

/* A mounted file system. */
struct fs_ext2 {
	ext2_filsys fs;
	bool read_only;
	struct rump_fs_mountinfo info;
	unsigned char *blockbuf;        /* one block of scratch */
};

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
