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
	/* Name indexes of large directories (fs_dindex.c); NULL until
	 * first used, freed by fs_dindex_fini(). */
	struct fs_dindex *dindex;
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

/* ---- directory name index (fs_dindex.c) ----------------------------------
 * Large linear directories get an in-memory name index.  Every change to
 * a directory's blocks must go through fs_dindex_add/_remove/_retarget
 * first, and take the libext2fs path only when they answer
 * FS_DINDEX_UNINDEXED; anything else that rewrites directory blocks
 * (journal replay, a rollback of cached blocks) calls fs_dindex_forget()
 * or fs_dindex_forget_all().
 */
#define FS_DINDEX_UNINDEXED (-1)

/* 0 and *ino, ENOENT, an errno, or FS_DINDEX_UNINDEXED: scan instead. */
int fs_dindex_find(struct fs_ext2 *m, ext2_ino_t dir, const char *name,
                   size_t len, ext2_ino_t *ino);
/* Adds the entry (growing dir when full); the name must be new. */
int fs_dindex_add(struct fs_ext2 *m, ext2_ino_t dir, const char *name,
                  size_t len, ext2_ino_t ino, int ftype);
/* Removes the entry name -> ino; ENOENT if name does not name ino. */
int fs_dindex_remove(struct fs_ext2 *m, ext2_ino_t dir, const char *name,
                     size_t len, ext2_ino_t ino);
/* Points the existing entry name at ino. */
int fs_dindex_retarget(struct fs_ext2 *m, ext2_ino_t dir, const char *name,
                       size_t len, ext2_ino_t ino, int ftype);
/* dir's index is dropped (the directory was freed, or changed behind
 * the index's back). */
void fs_dindex_forget(struct fs_ext2 *m, ext2_ino_t dir);
void fs_dindex_forget_all(struct fs_ext2 *m);
/* At unmount, before m is freed: frees every index. */
void fs_dindex_fini(struct fs_ext2 *m);

/* ---- the journal (journal.c) and its use by the channel (fs_io.c) -------
 * fs_ext2 writes ext4's jbd2 journal itself: see journal.c for the
 * format and fs_io.c for how a commit uses it.
 */
struct fs_journal;

/* Opens fs's internal journal: maps its blocks, reads and checks its
 * superblock.  why (cap bytes) says what is wrong on failure. */
int fs_journal_open(ext2_filsys fs, const struct fs_ext2_backend *be,
                    struct fs_journal **jp, char *why, size_t cap);
void fs_journal_close(struct fs_journal *j);
/* The log holds transactions (s_start is set). */
bool fs_journal_needs_recovery(const struct fs_journal *j);
/* EROFS, saying why, if we must not write to this journal. */
int fs_journal_check_rw(const struct fs_journal *j, char *why, size_t cap);
/*
 * Replays the log: every block of every complete, valid transaction, in
 * order, minus the revoked ones, goes to put() (which copies it).  Does
 * not touch the log: fs_journal_reset() empties it once put()'s writes
 * are stable.  *ntx transactions, *nblocks blocks.
 */
int fs_journal_recover(struct fs_journal *j,
                       int (*put)(void *ctx, uint64_t blk, const void *data),
                       void *ctx, unsigned *ntx, unsigned *nblocks,
                       char *why, size_t cap);
/*
 * As the kernel does at a read-write mount: checksum v3 for a file
 * system with metadata_csum, 64-bit block numbers for a 64bit one.  The
 * log must be empty; writes the journal superblock (no flush).
 */
int fs_journal_set_features(struct fs_journal *j, bool csum_v3, bool is64);
/* Marks the log empty (writes the journal superblock, no flush). */
int fs_journal_reset(struct fs_journal *j);
/* Blocks one transaction can carry. */
unsigned fs_journal_capacity(const struct fs_journal *j);
/*
 * Writes one transaction of n blocks (get() names block i and returns
 * its content, valid until the next call) and makes it stable: when this
 * returns 0, a crash replays it.  The log must be empty.
 */
int fs_journal_commit(struct fs_journal *j, unsigned n,
                      const void *(*get)(void *ctx, unsigned i,
                                         uint64_t *blk),
                      void *ctx);
/* Its blocks are stable at home: the log is emptied. */
int fs_journal_checkpointed(struct fs_journal *j);
/* The sequence number the next transaction will carry. */
uint32_t fs_journal_sequence(const struct fs_journal *j);

/*
 * The channel's side.  Once attached, a flush commits through the journal
 * (fs_io.c); the channel owns j from then on and closes it.
 */
void fs_io_set_journal(io_channel ch, ext2_filsys fs, struct fs_journal *j);
/* Makes the empty log stable, then goes back to writing in place. */
int fs_io_journal_stop(io_channel ch);
/* Blocks written between begin and end are file data (ordered mode:
 * written in place before the commit, not journaled). */
void fs_io_data_mode(io_channel ch, bool on);
/* True when the blocks waiting for the journal fill half of it: the
 * caller commits at the next boundary between operations. */
bool fs_io_journal_due(io_channel ch);
/*
 * Blocks freed by the file system: their cached content is dropped (it
 * must never be written), and those that were in use at the last commit
 * (not fresh) are held: they stay marked in use in map until the next
 * commit, so that nothing reuses a block the committed state still
 * points to.  fs_io_release_held() unmarks them just before a commit
 * writes the bitmaps; fs_io_commit_held() forgets them after it succeeded
 * (after a failure, fs_io_rehold() marks them again).
 */
int fs_io_freed(io_channel ch, ext2fs_block_bitmap map, uint64_t blk,
                uint64_t count, bool fresh);
void fs_io_release_held(io_channel ch, ext2fs_block_bitmap map);
void fs_io_rehold(io_channel ch, ext2fs_block_bitmap map);
void fs_io_commit_held(io_channel ch);
uint64_t fs_io_held(io_channel ch);
/* A read-only overlay: a backend that reads be with blocks replaced
 * (the journal replayed in memory).  The channel opened on it frees it
 * with fs_io_adopt_overlay(). */
struct fs_overlay;
int fs_overlay_create(const struct fs_ext2_backend *be, unsigned bs,
                      struct fs_overlay **ovp);
int fs_overlay_put(void *ovp, uint64_t blk, const void *data);
const struct fs_ext2_backend *fs_overlay_backend(struct fs_overlay *ov);
void fs_overlay_destroy(struct fs_overlay *ov);
void fs_io_adopt_overlay(io_channel ch, struct fs_overlay *ov);

#endif /* FS_EXT2_INT_H */
