/*
 * fs_ext2: ext2/ext3/ext4 file systems through libext2fs, behind the
 * operations of the file system protocol (rump/proto_fs.h).  This
 * component is the only code that includes the ext2fs headers; the rumpfs
 * server and the tests see the operations below and nothing else.
 *
 * Threads: libext2fs is not thread-safe, so neither is a struct fs_ext2:
 * the caller runs every call on one mounted file system one at a time
 * (rumpfs does so from a single worker thread).  Two mounts are
 * independent and may be driven from two threads.
 *
 * Errors: 0 or a positive errno value.  Every EXT2_ET_* code libext2fs
 * returns is translated in one place (fs_ext2_errno()); damage found in
 * the image is EIO (EUCLEAN's meaning, but EIO is what callers handle),
 * a handle whose inode was freed or reused is ESTALE.
 *
 * Blocks come from a backend, a table of calls the caller provides: the
 * image backend below (a host file through rumpuser), or rumpfs's rumpdisk
 * client, or a test's memory.
 */
#ifndef FS_EXT2_H
#define FS_EXT2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rump/proto_fs.h"

/*
 * Where the blocks are.  Offsets and lengths are bytes, multiples of the
 * file system's block size except while the superblock is read at mount.
 * Each call returns 0 or a positive errno; short transfers are errors.
 * Owned by the caller, which keeps it alive until fs_ext2_unmount().
 */
struct fs_ext2_backend {
	void *ctx;
	uint64_t size;              /* bytes */
	bool read_only;
	int (*read)(void *ctx, uint64_t off, void *buf, size_t len);
	int (*write)(void *ctx, uint64_t off, const void *buf, size_t len);
	/* Makes every completed write stable. */
	int (*flush)(void *ctx);
	/* Optional (NULL): the range may read back as anything. */
	int (*discard)(void *ctx, uint64_t off, uint64_t len);
	/* Optional (NULL): the range reads back as zeroes. */
	int (*zeroout)(void *ctx, uint64_t off, uint64_t len);
};

/* The image backend: a host file (or block device) opened through
 * rumpuser.  fs_ext2_image_close() releases what _open filled in. */
int fs_ext2_image_open(const char *path, bool read_only,
                       struct fs_ext2_backend *be);
void fs_ext2_image_close(struct fs_ext2_backend *be);

struct fs_ext2;

struct fs_ext2_mount_opts {
	bool read_only;
	const char *name;           /* for messages: the image or device */
	/* Bytes of block cache (0: 32 MiB). */
	size_t cache_bytes;
};

/*
 * Opens the file system on be.  On failure, why (cap bytes) says in one
 * line what was wrong with the image ("journal needs recovery", "unknown
 * incompatible features 0x...", "bad superblock: ...").
 */
int fs_ext2_mount(const struct fs_ext2_backend *be,
                  const struct fs_ext2_mount_opts *opts, struct fs_ext2 **fsp,
                  char *why, size_t cap);
/*
 * Flushes everything, marks the file system clean (read-write mounts) and
 * closes it; returns the first error met on the way, the fs is gone in
 * any case.
 */
int fs_ext2_unmount(struct fs_ext2 *fs);

/* The mount's facts; verifier is left 0 (the server's to choose). */
void fs_ext2_mountinfo(struct fs_ext2 *fs, struct rump_fs_mountinfo *mi);
bool fs_ext2_read_only(const struct fs_ext2 *fs);

/* ---- operations ---------------------------------------------------------
 * Names are (pointer, length) pairs, already checked by the caller to be
 * 1..RUMP_FS_NAME_MAX bytes without '/' or NUL; the rules about "." and
 * ".." are the component's.  Handles are checked here.
 */

int fs_ext2_getattr(struct fs_ext2 *fs, const struct rump_fh *fh,
                    struct rump_fattr *attr);
int fs_ext2_lookup(struct fs_ext2 *fs, const struct rump_fh *dir,
                   const char *name, size_t len, struct rump_fattr *attr);
int fs_ext2_setattr(struct fs_ext2 *fs, const struct rump_fs_setattr_req *req,
                    struct rump_fattr *attr);

/* Reads up to len bytes at off into buf; *got bytes read, *eof when the
 * read reached the end of the file. */
int fs_ext2_read(struct fs_ext2 *fs, const struct rump_fh *fh, uint64_t off,
                 void *buf, size_t len, size_t *got, bool *eof);
int fs_ext2_write(struct fs_ext2 *fs, const struct rump_fh *fh, uint64_t off,
                  const void *buf, size_t len);
/*
 * Everything written so far reaches stable storage.  The image only ever
 * holds committed states: changes stay in memory until a commit, which
 * writes all of them (see fs_io.c for the order).
 */
int fs_ext2_commit(struct fs_ext2 *fs);

/* Changes are committed implicitly this long after the first of them,
 * so a crash loses little. */
#define FS_EXT2_COMMIT_INTERVAL_NS (5 * 1000000000ull)
/*
 * Call between operations, after each one and when *next_ns has passed:
 * commits if one is due (the cache is half dirty, or changes are older
 * than FS_EXT2_COMMIT_INTERVAL_NS).  *next_ns: how long until the next
 * is due by age, UINT64_MAX when nothing is pending.
 */
int fs_ext2_tick(struct fs_ext2 *fs, uint64_t *next_ns);

/*
 * Fills out (cap bytes) with struct rump_fs_dirent records, each padded
 * to 8 bytes, starting after cookie (0: from the start).  *used is the
 * bytes filled, 0 at the end of the directory.  EINVAL if not even one
 * entry fits.
 */
int fs_ext2_readdir(struct fs_ext2 *fs, const struct rump_fh *dir,
                    uint64_t cookie, bool plus, void *out, size_t cap,
                    size_t *used);

enum fs_ext2_kind { FS_EXT2_FILE, FS_EXT2_DIR, FS_EXT2_NODE, FS_EXT2_SYMLINK };

struct fs_ext2_create {
	enum fs_ext2_kind kind;
	struct rump_fh dir;
	const char *name;
	size_t name_len;
	const char *target;         /* SYMLINK */
	size_t target_len;
	uint32_t mode;              /* NODE: with the type bits */
	uint32_t uid, gid;
	uint64_t rdev;              /* NODE: block and character devices */
	bool excl;                  /* FILE: EEXIST if the name exists */
};
/* For FILE without excl, an existing regular file is returned as is. */
int fs_ext2_create(struct fs_ext2 *fs, const struct fs_ext2_create *c,
                   struct rump_fattr *attr);

/* The target into buf (cap bytes); ERANGE if it does not fit, *len then
 * says what is needed. */
int fs_ext2_readlink(struct fs_ext2 *fs, const struct rump_fh *fh, void *buf,
                     size_t cap, size_t *len);
int fs_ext2_link(struct fs_ext2 *fs, const struct rump_fh *fh,
                 const struct rump_fh *dir, const char *name, size_t len,
                 struct rump_fattr *attr);
int fs_ext2_unlink(struct fs_ext2 *fs, const struct rump_fh *dir,
                   const char *name, size_t len);
int fs_ext2_rmdir(struct fs_ext2 *fs, const struct rump_fh *dir,
                  const char *name, size_t len);
int fs_ext2_rename(struct fs_ext2 *fs, const struct rump_fh *from_dir,
                   const char *from, size_t from_len,
                   const struct rump_fh *to_dir, const char *to,
                   size_t to_len, uint32_t flags);
int fs_ext2_statfs(struct fs_ext2 *fs, struct rump_fs_statfs *st);

/* Values and name lists: ERANGE if cap is too small, *len then says what
 * is needed.  Names are full ("user.x", "system.posix_acl_access"). */
int fs_ext2_getxattr(struct fs_ext2 *fs, const struct rump_fh *fh,
                     const char *name, size_t name_len, void *buf,
                     size_t cap, size_t *len);
int fs_ext2_setxattr(struct fs_ext2 *fs, const struct rump_fh *fh,
                     const char *name, size_t name_len, const void *value,
                     size_t value_len, uint32_t flags);
int fs_ext2_listxattr(struct fs_ext2 *fs, const struct rump_fh *fh,
                      void *buf, size_t cap, size_t *len);
int fs_ext2_removexattr(struct fs_ext2 *fs, const struct rump_fh *fh,
                        const char *name, size_t name_len);
int fs_ext2_fallocate(struct fs_ext2 *fs, const struct rump_fh *fh,
                      uint64_t off, uint64_t len, uint32_t mode);

/* EXT2_ET_* (or a plain errno, which libext2fs also returns) -> errno. */
int fs_ext2_errno(long code);

#endif /* FS_EXT2_H */
