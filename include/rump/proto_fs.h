/*
 * The file system service (rumpfs): wire structures.  docs/protocol-fs.md
 * is the prose reference.
 *
 * Stateless and handle-based, after NFSv3: a file is named by a handle
 * (inode, generation) that stays valid across a restart of the server, so
 * a gateway can replay what was in flight.  Writes are unstable until a
 * COMMIT; every WRITE and COMMIT reply carries the server's write verifier,
 * which changes when the server restarts: a client that sees it change
 * re-sends the writes it has not seen committed.
 *
 * Every operation goes through the rings.  READ and WRITE name the file in
 * the SQE itself (handle = inode, arg[0] = generation, offset, and buf/len
 * the data).  Every other operation puts a request structure at sqe.buf,
 * followed by its variable data (names, link targets, xattr values);
 * sqe.len is the size of that whole buffer, and the server writes the reply
 * structure (and its variable data) over the same buffer, from its start.
 * The server copies the request out before it writes anything.
 * A CQE's result is 0 or a reply length in bytes (>= 0), or -errno.
 */
#ifndef RUMP_PROTO_FS_H
#define RUMP_PROTO_FS_H

#include <assert.h>
#include <stdint.h>

#include "rump/proto.h"

#define RUMP_FS_NAME_MAX 255
#define RUMP_FS_PATH_MAX 4096
#define RUMP_FS_XATTR_MAX 65536
#define RUMP_FS_IO_MAX (1u << 20) /* largest READ/WRITE */

struct rump_fh {
	uint64_t ino;
	uint32_t gen;
	uint32_t reserved;        /* 0 */
};
static_assert(sizeof(struct rump_fh) == 16, "wire size");

struct rump_timespec {
	int64_t sec;
	uint32_t nsec;
	uint32_t reserved;
};

struct rump_fattr {
	struct rump_fh fh;
	uint32_t mode;            /* type and permission bits, as st_mode */
	uint32_t nlink;
	uint32_t uid, gid;
	uint64_t rdev;            /* makedev() for device nodes */
	uint64_t size;            /* bytes */
	uint64_t blocks;          /* 512-byte units allocated */
	uint32_t blksize;
	uint32_t reserved;
	struct rump_timespec atime, mtime, ctime;
};
static_assert(sizeof(struct rump_fattr) == 112, "wire size");

/* ---- control messages ------------------------------------------------- */

enum rump_fs_msg {
	RUMP_FS_MSG_MOUNTINFO = RUMP_MSG_SERVICE, /* -> rump_fs_mountinfo */
};

#define RUMP_FS_MOUNT_READ_ONLY 0x1

struct rump_fs_mountinfo {
	struct rump_fh root;
	uint64_t verifier;        /* write verifier, new at every start */
	uint32_t flags;           /* RUMP_FS_MOUNT_* */
	uint32_t block_size;
	char fs_type[16];         /* "ext4", "ext2", "vfat" */
	char label[32];
	uint8_t uuid[16];
};

/* ---- ring operations --------------------------------------------------- */

enum rump_fs_op {
	RUMP_FS_OP_READ = 1,      /* SQE form; result bytes; aux 1 at EOF */
	RUMP_FS_OP_WRITE,         /* SQE form; result bytes; aux verifier;
	                           * sqe.flags RUMP_FS_WRITE_STABLE commits */
	RUMP_FS_OP_COMMIT,        /* req: fh (ino 0: whole fs); aux verifier */
	RUMP_FS_OP_LOOKUP,        /* req: dir + name -> rump_fs_entry_reply */
	RUMP_FS_OP_GETATTR,       /* req: fh -> rump_fattr */
	RUMP_FS_OP_SETATTR,       /* rump_fs_setattr_req -> rump_fattr */
	RUMP_FS_OP_READDIR,       /* rump_fs_readdir_req -> dirents */
	RUMP_FS_OP_CREATE,        /* rump_fs_create_req + name -> entry */
	RUMP_FS_OP_MKDIR,         /* rump_fs_create_req + name -> entry */
	RUMP_FS_OP_MKNOD,         /* rump_fs_create_req + name -> entry */
	RUMP_FS_OP_SYMLINK,       /* rump_fs_create_req + name + target */
	RUMP_FS_OP_READLINK,      /* req: fh -> target bytes (no NUL) */
	RUMP_FS_OP_LINK,          /* rump_fs_link_req + name -> entry */
	RUMP_FS_OP_UNLINK,        /* req: dir + name -> 0 */
	RUMP_FS_OP_RMDIR,         /* req: dir + name -> 0 */
	RUMP_FS_OP_RENAME,        /* rump_fs_rename_req + names -> 0 */
	RUMP_FS_OP_STATFS,        /* -> rump_fs_statfs */
	RUMP_FS_OP_GETXATTR,      /* rump_fs_xattr_req + name -> value */
	RUMP_FS_OP_SETXATTR,      /* rump_fs_xattr_req + name + value */
	RUMP_FS_OP_LISTXATTR,     /* req: fh -> NUL-separated names */
	RUMP_FS_OP_REMOVEXATTR,   /* rump_fs_xattr_req + name */
	RUMP_FS_OP_FALLOCATE,     /* rump_fs_fallocate_req -> 0 */
	RUMP_FS_OP_MAX,
};

#define RUMP_FS_WRITE_STABLE 0x1

/* The request of the simple forms: an object, optionally one name
 * (name_len bytes follow, no NUL). */
struct rump_fs_req {
	struct rump_fh fh;
	uint32_t name_len;
	uint32_t reserved;
};

struct rump_fs_entry_reply {
	struct rump_fattr attr;   /* attr.fh is the entry's handle */
};

#define RUMP_FS_SET_MODE  0x01
#define RUMP_FS_SET_UID   0x02
#define RUMP_FS_SET_GID   0x04
#define RUMP_FS_SET_SIZE  0x08
#define RUMP_FS_SET_ATIME 0x10
#define RUMP_FS_SET_MTIME 0x20
#define RUMP_FS_SET_ATIME_NOW 0x40
#define RUMP_FS_SET_MTIME_NOW 0x80

struct rump_fs_setattr_req {
	struct rump_fh fh;
	uint32_t valid;           /* RUMP_FS_SET_* */
	uint32_t mode, uid, gid;
	uint64_t size;
	struct rump_timespec atime, mtime;
};

/* Who creates: owner of new objects (the gateway's caller). */
struct rump_fs_create_req {
	struct rump_fh dir;
	uint32_t name_len;        /* name follows the struct */
	uint32_t target_len;      /* SYMLINK: target follows the name */
	uint32_t mode;            /* type bits for MKNOD; permissions */
	uint32_t uid, gid;
	uint32_t flags;           /* RUMP_FS_CREATE_EXCL */
	uint64_t rdev;
};
#define RUMP_FS_CREATE_EXCL 0x1

struct rump_fs_link_req {
	struct rump_fh fh;        /* the existing file */
	struct rump_fh dir;       /* where the new name goes */
	uint32_t name_len;
	uint32_t reserved;
};

#define RUMP_FS_RENAME_NOREPLACE 0x1
#define RUMP_FS_RENAME_EXCHANGE  0x2

struct rump_fs_rename_req {
	struct rump_fh from_dir, to_dir;
	uint32_t from_len, to_len; /* the two names follow, in this order */
	uint32_t flags;           /* RUMP_FS_RENAME_* */
	uint32_t reserved;
};

struct rump_fs_readdir_req {
	struct rump_fh dir;
	uint64_t cookie;          /* 0: from the start; else a next_cookie */
	uint32_t plus;            /* 1: entries carry attributes */
	uint32_t reserved;
};

/*
 * READDIR replies with a sequence of these, each padded to 8 bytes, as
 * many as fit in sqe.len; result is the bytes used, 0 at the end.
 */
struct rump_fs_dirent {
	uint64_t ino;
	uint64_t next_cookie;     /* resume after this entry */
	uint32_t gen;
	uint16_t name_len;
	uint8_t type;             /* DT_* */
	uint8_t has_attr;         /* a rump_fattr follows, then the name */
};

struct rump_fs_statfs {
	uint64_t blocks, bfree, bavail;   /* in units of bsize */
	uint64_t files, ffree;
	uint32_t bsize, namemax;
};

#define RUMP_FS_XATTR_CREATE  0x1
#define RUMP_FS_XATTR_REPLACE 0x2

struct rump_fs_xattr_req {
	struct rump_fh fh;
	uint32_t name_len;        /* the name follows, then the value */
	uint32_t value_len;       /* SETXATTR: value bytes; GETXATTR: 0 */
	uint32_t flags;           /* RUMP_FS_XATTR_* */
	uint32_t reserved;
};

#define RUMP_FS_FALLOC_KEEP_SIZE  0x1
#define RUMP_FS_FALLOC_PUNCH_HOLE 0x2

struct rump_fs_fallocate_req {
	struct rump_fh fh;
	uint64_t offset, len;
	uint32_t mode;            /* RUMP_FS_FALLOC_* */
	uint32_t reserved;
};

#endif /* RUMP_PROTO_FS_H */
