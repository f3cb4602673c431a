/*
 * The FUSE operations: each turns one kernel request into rumpfs requests
 * (rpc.c) and replies.  Worker threads of libfuse's multi-threaded loop
 * run them, one request each, blocking on rumpfs: concurrency comes from
 * the threads.
 *
 * Nothing is opened on the server (the protocol is stateless): a file
 * handle (fi->fh) keeps the open flags, a directory handle keeps the last
 * chunk of entries read, so that the kernel's small readdir buffers do
 * not re-read the directory from its start each time.
 *
 * Replies from rumpfs are checked here before use: lengths, names,
 * cookies.  A malformed one fails that request with EIO.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "rumpfuse.h"

#define READDIR_CHUNK (64u << 10)
#define NAME_REQ_MAX (sizeof(struct rump_fs_rename_req) + \
                      2 * RUMP_FS_NAME_MAX)

static struct gw *gw_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void attr_to_stat(const struct rump_fattr *a, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = a->fh.ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_blksize = a->blksize;
	st->st_atim.tv_sec = a->atime.sec;
	st->st_atim.tv_nsec = a->atime.nsec;
	st->st_mtim.tv_sec = a->mtime.sec;
	st->st_mtim.tv_nsec = a->mtime.nsec;
	st->st_ctim.tv_sec = a->ctime.sec;
	st->st_ctim.tv_nsec = a->ctime.nsec;
}

/* A rump_fattr reply must be whole, and sane enough for the kernel. */
static int check_attr(const struct rump_fattr *a, size_t len)
{
	if (len != sizeof *a || a->atime.nsec >= 1000000000u ||
	    a->mtime.nsec >= 1000000000u || a->ctime.nsec >= 1000000000u ||
	    (a->mode & S_IFMT) == 0 || a->size > INT64_MAX)
		return EIO;
	return 0;
}

/* Replies with the entry attr names, counting one lookup. */
static void reply_entry(fuse_req_t req, const struct rump_fattr *attr)
{
	struct gw *gw = gw_of(req);
	struct fuse_entry_param e = {
		.generation = attr->fh.gen,
		.attr_timeout = gw->opts.attr_timeout,
		.entry_timeout = gw->opts.entry_timeout,
	};
	int err;

	err = nodes_ref(&gw->nodes, attr, &e.ino);
	if (err != 0) {
		fuse_reply_err(req, err);
		return;
	}
	attr_to_stat(attr, &e.attr);
	/* An interrupted request's reply is dropped: no lookup then. */
	if (fuse_reply_entry(req, &e) != 0)
		nodes_forget(&gw->nodes, e.ino, 1);
}

static int check_name(const char *name, size_t *len)
{
	*len = strlen(name);
	if (*len == 0)
		return EINVAL;
	return *len > RUMP_FS_NAME_MAX ? ENAMETOOLONG : 0;
}

/* A request of the simple form (handle + name) into buf, whose size is
 * returned. */
static size_t name_req(void *buf, const struct rump_fh *fh,
                       const char *name, size_t name_len)
{
	struct rump_fs_req r = { .fh = *fh, .name_len = (uint32_t)name_len };

	memcpy(buf, &r, sizeof r);
	memcpy((char *)buf + sizeof r, name, name_len);
	return sizeof r + name_len;
}

/* LOOKUP of name in dir; ENOENT when absent. */
static int do_lookup(struct gw *gw, const struct rump_fh *dir,
                     const char *name, size_t name_len,
                     struct rump_fattr *attr)
{
	unsigned char rq[sizeof(struct rump_fs_req) + RUMP_FS_NAME_MAX];
	size_t len;
	int err;

	err = gw_call(gw, RUMP_FS_OP_LOOKUP, rq,
	              name_req(rq, dir, name, name_len), attr, sizeof *attr,
	              &len, NULL, NULL);
	return err != 0 ? err : check_attr(attr, len);
}

static int do_getattr(struct gw *gw, const struct rump_fh *fh,
                      struct rump_fattr *attr)
{
	struct rump_fs_req rq = { .fh = *fh };
	size_t len;
	int err;

	err = gw_call(gw, RUMP_FS_OP_GETATTR, &rq, sizeof rq, attr,
	              sizeof *attr, &len, NULL, NULL);
	return err != 0 ? err : check_attr(attr, len);
}

/* The xattr the kernel looks for before each write (file_remove_privs). */
#define CAPS_XATTR "security.capability"

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Until when an answer of ours about a node may be trusted: as long as
 * the kernel trusts its attributes (capped at a day). */
static uint64_t cache_horizon(const struct gw *gw, uint64_t now)
{
	double s = gw->opts.attr_timeout < 86400 ? gw->opts.attr_timeout
	                                         : 86400;

	return now + (uint64_t)(s * 1e9);
}

/* ---- set-up ----------------------------------------------------------- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->want |= conn->capable & (FUSE_CAP_WRITEBACK_CACHE |
	                               FUSE_CAP_READDIRPLUS |
	                               FUSE_CAP_PARALLEL_DIROPS |
	                               FUSE_CAP_ASYNC_READ |
	                               FUSE_CAP_CACHE_SYMLINKS |
	                               FUSE_CAP_AUTO_INVAL_DATA);
	/* rumpfs returns attributes with every entry: always take them
	 * (rsync, diff -r and make stat what they list). */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	/* The kernel clears set-user-ID bits on write and chown itself. */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	conn->max_write = RUMP_FS_IO_MAX;
	conn->max_readahead = RUMP_FS_IO_MAX;
	if (conn->max_background < 32)
		conn->max_background = 32;
	conn->time_gran = 1;
}

/*
 * Undoes mountinfo's octal escapes (\040 for a space, ...) in place.
 */
static void unescape_mountinfo(char *s)
{
	char *out = s;

	for (; *s != '\0'; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
			                (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

void gw_tune_readahead(const char *mountpoint)
{
	char *line = NULL, path[96];
	unsigned major = 0, minor = 0;
	bool found = false;
	size_t cap = 0;
	FILE *f;
	int fd;

	/*
	 * The device is read from mountinfo, not by stat of the mount
	 * point: that would ask this gateway for the root's attributes
	 * before its loop runs.  The last entry is the topmost mount.
	 */
	if ((f = fopen("/proc/self/mountinfo", "re")) == NULL)
		return;
	while (getline(&line, &cap, f) > 0) {
		unsigned ma, mi;
		int at = -1;
		char *mnt;

		if (sscanf(line, "%*u %*u %u:%u %*s %n", &ma, &mi, &at) != 2 ||
		    at < 0)
			continue;
		mnt = line + at;
		mnt[strcspn(mnt, " \n")] = '\0';
		unescape_mountinfo(mnt);
		if (strcmp(mnt, mountpoint) == 0) {
			major = ma;
			minor = mi;
			found = true;
		}
	}
	free(line);
	fclose(f);
	if (!found)
		return;
	/* FUSE names its backing device after the mount's device. */
	snprintf(path, sizeof path, "/sys/class/bdi/%u:%u/read_ahead_kb",
	         major, minor);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
		return;   /* not root: the kernel's 128 KiB stands */
	if (dprintf(fd, "%u\n", RUMP_FS_IO_MAX >> 10) < 0)
		gw_log("cannot raise the read-ahead in %s: %s", path,
		       strerror(errno));
	close(fd);
}

static void op_destroy(void *userdata)
{
	struct gw *gw = userdata;
	int err;

	err = gw_commit(gw);
	if (err != 0)
		gw_log("final COMMIT failed: %s", strerror(err));
}

/* ---- names ------------------------------------------------------------ */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct gw *gw = gw_of(req);
	struct rump_fattr attr;
	struct rump_fh dir;
	size_t name_len;
	int err;

	if ((err = check_name(name, &name_len)) != 0 ||
	    (err = nodes_fh(&gw->nodes, parent, &dir)) != 0)
		goto fail;
	err = do_lookup(gw, &dir, name, name_len, &attr);
	if (err == ENOENT) {
		/* A negative entry the kernel may cache. */
		struct fuse_entry_param e = {
			.entry_timeout = gw->opts.entry_timeout,
		};

		fuse_reply_entry(req, &e);
		return;
	}
	if (err != 0)
		goto fail;
	reply_entry(req, &attr);
	return;
fail:
	fuse_reply_err(req, err);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	nodes_forget(&gw_of(req)->nodes, ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
                            struct fuse_forget_data *forgets)
{
	struct gw *gw = gw_of(req);

	for (size_t i = 0; i < count; i++)
		nodes_forget(&gw->nodes, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
	struct gw *gw = gw_of(req);
	struct rump_fattr attr;
	struct rump_fh fh;
	struct stat st;
	int err;

	(void)fi;
	if ((err = nodes_fh(&gw->nodes, ino, &fh)) != 0 ||
	    (err = do_getattr(gw, &fh, &attr)) != 0) {
		fuse_reply_err(req, err);
		return;
	}
	nodes_note_attr(&gw->nodes, ino, &attr);
	attr_to_stat(&attr, &st);
	fuse_reply_attr(req, &st, gw->opts.attr_timeout);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *in,
                       int to_set, struct fuse_file_info *fi)
{
	struct gw *gw = gw_of(req);
	struct rump_fs_setattr_req rq = { 0 };
	struct rump_fattr attr;
	struct stat st;
	size_t len;
	int err;

	(void)fi;
	if ((err = nodes_fh(&gw->nodes, ino, &rq.fh)) != 0)
		goto fail;
	if (to_set & FUSE_SET_ATTR_MODE) {
		rq.valid |= RUMP_FS_SET_MODE;
		rq.mode = in->st_mode & 07777;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		rq.valid |= RUMP_FS_SET_UID;
		rq.uid = in->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		rq.valid |= RUMP_FS_SET_GID;
		rq.gid = in->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (in->st_size < 0) {
			err = EINVAL;
			goto fail;
		}
		rq.valid |= RUMP_FS_SET_SIZE;
		rq.size = (uint64_t)in->st_size;
	}
	if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
		rq.valid |= RUMP_FS_SET_ATIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_ATIME) {
		rq.valid |= RUMP_FS_SET_ATIME;
		rq.atime.sec = in->st_atim.tv_sec;
		rq.atime.nsec = (uint32_t)in->st_atim.tv_nsec;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		rq.valid |= RUMP_FS_SET_MTIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		rq.valid |= RUMP_FS_SET_MTIME;
		rq.mtime.sec = in->st_mtim.tv_sec;
		rq.mtime.nsec = (uint32_t)in->st_mtim.tv_nsec;
	}
	/* ctime follows any change on the server; nothing else to set. */
	if (rq.valid == 0) {
		struct rump_fs_req g = { .fh = rq.fh };

		err = gw_call(gw, RUMP_FS_OP_GETATTR, &g, sizeof g, &attr,
		              sizeof attr, &len, NULL, NULL);
	} else {
		err = gw_call(gw, RUMP_FS_OP_SETATTR, &rq, sizeof rq, &attr,
		              sizeof attr, &len, NULL, NULL);
	}
	if (err != 0 || (err = check_attr(&attr, len)) != 0)
		goto fail;
	nodes_note_attr(&gw->nodes, ino, &attr);
	attr_to_stat(&attr, &st);
	fuse_reply_attr(req, &st, gw->opts.attr_timeout);
	return;
fail:
	fuse_reply_err(req, err);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct gw *gw = gw_of(req);
	struct rump_fs_req rq = { 0 };
	char target[RUMP_FS_PATH_MAX + 1];
	size_t len;
	int err;

	if ((err = nodes_fh(&gw->nodes, ino, &rq.fh)) != 0 ||
	    (err = gw_call(gw, RUMP_FS_OP_READLINK, &rq, sizeof rq, target,
	                   RUMP_FS_PATH_MAX, &len, NULL, NULL)) != 0) {
		fuse_reply_err(req, err);
		return;
	}
	target[len] = '\0';
	if (len == 0 || strlen(target) != len) {
		fuse_reply_err(req, EIO);
		return;
	}
	fuse_reply_readlink(req, target);
}

/*
 * CREATE, MKDIR, MKNOD and SYMLINK: one request shape.  The owner is the
 * caller, the group the caller's unless the directory is set-group-ID
 * (then it is the directory's, and a new directory inherits the bit).
 * Re-issued after a restart, EEXIST may be our own first attempt having
 * succeeded: then the entry is looked up (not for an exclusive create).
 */
static int make_object(fuse_req_t req, uint16_t op, fuse_ino_t parent,
                       const char *name, uint32_t mode, uint64_t rdev,
                       const char *target, uint32_t flags,
                       struct rump_fattr *attr)
{
	struct gw *gw = gw_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct rump_fs_create_req rq = { .mode = mode, .rdev = rdev,
	                                 .flags = flags };
	size_t name_len, target_len = 0, len;
	uint32_t dir_mode, dir_gid;
	unsigned char *buf;
	bool replayed;
	int err;

	if ((err = check_name(name, &name_len)) != 0)
		return err;
	if (target != NULL) {
		target_len = strlen(target);
		if (target_len == 0 || target_len > RUMP_FS_PATH_MAX)
			return target_len == 0 ? ENOENT : ENAMETOOLONG;
	}
	err = nodes_fh_attr(&gw->nodes, parent, &rq.dir, &dir_mode, &dir_gid);
	if (err != 0)
		return err;
	rq.uid = ctx->uid;
	rq.gid = ctx->gid;
	if (dir_mode & S_ISGID) {
		rq.gid = dir_gid;
		if (op == RUMP_FS_OP_MKDIR)
			rq.mode |= S_ISGID;
	}
	rq.name_len = (uint32_t)name_len;
	rq.target_len = (uint32_t)target_len;
	buf = malloc(sizeof rq + name_len + target_len);
	if (buf == NULL)
		return ENOMEM;
	memcpy(buf, &rq, sizeof rq);
	memcpy(buf + sizeof rq, name, name_len);
	if (target_len > 0)
		memcpy(buf + sizeof rq + name_len, target, target_len);
	err = gw_call(gw, op, buf, sizeof rq + name_len + target_len, attr,
	              sizeof *attr, &len, NULL, &replayed);
	free(buf);
	if (err == EEXIST && replayed && !(flags & RUMP_FS_CREATE_EXCL))
		return do_lookup(gw, &rq.dir, name, name_len, attr);
	return err != 0 ? err : check_attr(attr, len);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode, dev_t rdev)
{
	struct rump_fattr attr;
	int err;

	err = make_object(req, RUMP_FS_OP_MKNOD, parent, name, mode, rdev,
	                  NULL, 0, &attr);
	if (err != 0)
		fuse_reply_err(req, err);
	else
		reply_entry(req, &attr);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode)
{
	struct rump_fattr attr;
	int err;

	err = make_object(req, RUMP_FS_OP_MKDIR, parent, name, mode & 07777,
	                  0, NULL, 0, &attr);
	if (err != 0)
		fuse_reply_err(req, err);
	else
		reply_entry(req, &attr);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
                       const char *name)
{
	struct rump_fattr attr;
	int err;

	err = make_object(req, RUMP_FS_OP_SYMLINK, parent, name, 0777, 0,
	                  link, 0, &attr);
	if (err != 0)
		fuse_reply_err(req, err);
	else
		reply_entry(req, &attr);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                      mode_t mode, struct fuse_file_info *fi)
{
	struct gw *gw = gw_of(req);
	struct fuse_entry_param e = {
		.attr_timeout = gw->opts.attr_timeout,
		.entry_timeout = gw->opts.entry_timeout,
	};
	struct rump_fattr attr;
	int err;

	err = make_object(req, RUMP_FS_OP_CREATE, parent, name, mode & 07777,
	                  0, NULL, fi->flags & O_EXCL ? RUMP_FS_CREATE_EXCL
	                                               : 0, &attr);
	if (err == 0 && !S_ISREG(attr.mode))
		err = EISDIR;  /* a non-exclusive create met a directory */
	if (err == 0)
		err = nodes_ref(&gw->nodes, &attr, &e.ino);
	if (err != 0) {
		fuse_reply_err(req, err);
		return;
	}
	e.generation = attr.fh.gen;
	attr_to_stat(&attr, &e.attr);
	/* Made just now (O_EXCL): it has no xattrs, so the writes that
	 * follow need not ask for its capabilities. */
	if (fi->flags & O_EXCL)
		nodes_set_nocaps(&gw->nodes, e.ino,
		                 cache_horizon(gw, mono_ns()));
	fi->fh = (uint64_t)fi->flags;
	if (fuse_reply_create(req, &e, fi) != 0)
		nodes_forget(&gw->nodes, e.ino, 1);
}

/* UNLINK and RMDIR.  Re-issued, ENOENT is our first attempt's success. */
static void remove_name(fuse_req_t req, uint16_t op, fuse_ino_t parent,
                        const char *name)
{
	struct gw *gw = gw_of(req);
	unsigned char rq[sizeof(struct rump_fs_req) + RUMP_FS_NAME_MAX];
	struct rump_fh dir;
	size_t name_len;
	bool replayed;
	int err;

	if ((err = check_name(name, &name_len)) == 0 &&
	    (err = nodes_fh(&gw->nodes, parent, &dir)) == 0)
		err = gw_call(gw, op, rq, name_req(rq, &dir, name, name_len),
		              NULL, 0, NULL, NULL, &replayed);
	if (err == ENOENT && replayed)
		err = 0;
	fuse_reply_err(req, err);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, RUMP_FS_OP_UNLINK, parent, name);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, RUMP_FS_OP_RMDIR, parent, name);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                      fuse_ino_t newparent, const char *newname,
                      unsigned int flags)
{
	struct gw *gw = gw_of(req);
	unsigned char buf[NAME_REQ_MAX];
	struct rump_fs_rename_req rq = { 0 };
	size_t from_len, to_len;
	bool replayed = false;
	int err;

	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		err = EINVAL;          /* RENAME_WHITEOUT: no overlays here */
		goto out;
	}
	if ((err = check_name(name, &from_len)) != 0 ||
	    (err = check_name(newname, &to_len)) != 0 ||
	    (err = nodes_fh(&gw->nodes, parent, &rq.from_dir)) != 0 ||
	    (err = nodes_fh(&gw->nodes, newparent, &rq.to_dir)) != 0)
		goto out;
	rq.from_len = (uint32_t)from_len;
	rq.to_len = (uint32_t)to_len;
	if (flags & RENAME_NOREPLACE)
		rq.flags |= RUMP_FS_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		rq.flags |= RUMP_FS_RENAME_EXCHANGE;
	memcpy(buf, &rq, sizeof rq);
	memcpy(buf + sizeof rq, name, from_len);
	memcpy(buf + sizeof rq + from_len, newname, to_len);
	err = gw_call(gw, RUMP_FS_OP_RENAME, buf, sizeof rq + from_len + to_len,
	              NULL, 0, NULL, NULL, &replayed);
	if (err == ENOENT && replayed)
		err = 0;
out:
	fuse_reply_err(req, err);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                    const char *newname)
{
	struct gw *gw = gw_of(req);
	unsigned char buf[sizeof(struct rump_fs_link_req) + RUMP_FS_NAME_MAX];
	struct rump_fs_link_req rq = { 0 };
	struct rump_fattr attr;
	size_t name_len, len;
	bool replayed;
	int err;

	if ((err = check_name(newname, &name_len)) != 0 ||
	    (err = nodes_fh(&gw->nodes, ino, &rq.fh)) != 0 ||
	    (err = nodes_fh(&gw->nodes, newparent, &rq.dir)) != 0)
		goto fail;
	rq.name_len = (uint32_t)name_len;
	memcpy(buf, &rq, sizeof rq);
	memcpy(buf + sizeof rq, newname, name_len);
	err = gw_call(gw, RUMP_FS_OP_LINK, buf, sizeof rq + name_len, &attr,
	              sizeof attr, &len, NULL, &replayed);
	if (err == EEXIST && replayed)
		err = do_lookup(gw, &rq.dir, newname, name_len, &attr);
	else if (err == 0)
		err = check_attr(&attr, len);
	if (err != 0)
		goto fail;
	reply_entry(req, &attr);
	return;
fail:
	fuse_reply_err(req, err);
}

/* ---- files ------------------------------------------------------------ */

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	/* Nothing to open on a stateless server: keep the flags. */
	fi->fh = (uint64_t)fi->flags;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	struct gw *gw = gw_of(req);
	struct rump_fh fh;
	void *buf = NULL;
	size_t n;
	int err;

	(void)fi;
	if (size > RUMP_FS_IO_MAX)
		size = RUMP_FS_IO_MAX;
	if (off < 0) {
		err = EINVAL;
		goto fail;
	}
	if ((err = nodes_fh(&gw->nodes, ino, &fh)) != 0)
		goto fail;
	if (size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	buf = gw_buf_alloc(gw, size);
	if (buf == NULL) {
		err = ENOMEM;
		goto fail;
	}
	/* rumpfs reads straight into the shared area; the reply goes out
	 * from there. */
	if ((err = gw_read(gw, &fh, (uint64_t)off, buf, size, &n)) != 0)
		goto fail;
	fuse_reply_buf(req, buf, n);
	gw_buf_free(gw, buf);
	return;
fail:
	gw_buf_free(gw, buf);
	fuse_reply_err(req, err);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *data,
                     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct gw *gw = gw_of(req);
	bool stable = fi->flags & (O_SYNC | O_DSYNC);
	struct rump_fh fh;
	void *buf;
	size_t n;
	int err;

	if (off < 0 || size > RUMP_FS_IO_MAX) {
		err = EINVAL;
		goto fail;
	}
	if ((err = nodes_fh(&gw->nodes, ino, &fh)) != 0)
		goto fail;
	if (size == 0) {
		fuse_reply_write(req, 0);
		return;
	}
	buf = gw_buf_alloc(gw, size);
	if (buf == NULL) {
		err = ENOMEM;
		goto fail;
	}
	memcpy(buf, data, size);
	err = gw_write(gw, &fh, (uint64_t)off, buf, size, stable, &n);
	if (err != 0)
		goto fail;
	fuse_reply_write(req, n);
	return;
fail:
	fuse_reply_err(req, err);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                     struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	/* The whole file system: a new file's name must last as well. */
	fuse_reply_err(req, gw_commit(gw_of(req)));
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
                         off_t offset, off_t length,
                         struct fuse_file_info *fi)
{
	struct gw *gw = gw_of(req);
	struct rump_fs_fallocate_req rq = { 0 };
	int err;

	(void)fi;
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) {
		err = EOPNOTSUPP;
		goto out;
	}
	if (offset < 0 || length <= 0) {
		err = EINVAL;
		goto out;
	}
	if ((err = nodes_fh(&gw->nodes, ino, &rq.fh)) != 0)
		goto out;
	rq.offset = (uint64_t)offset;
	rq.len = (uint64_t)length;
	if (mode & FALLOC_FL_KEEP_SIZE)
		rq.mode |= RUMP_FS_FALLOC_KEEP_SIZE;
	if (mode & FALLOC_FL_PUNCH_HOLE) {
		rq.mode |= RUMP_FS_FALLOC_PUNCH_HOLE;
	}
	err = gw_call(gw, RUMP_FS_OP_FALLOCATE, &rq, sizeof rq, NULL, 0, NULL,
	              NULL, NULL);
out:
	fuse_reply_err(req, err);
}

/* ---- directories ------------------------------------------------------ */

struct dirh {
	pthread_mutex_t lock;
	unsigned char *chunk;     /* the last READDIR reply, a private copy */
	size_t len;
	uint64_t start;           /* the cookie it was read from */
	bool valid, plus;
};

struct dent {
	uint64_t ino, next_cookie;
	uint32_t gen;
	uint8_t type;
	bool has_attr;
	struct rump_fattr attr;
	char name[RUMP_FS_NAME_MAX + 1];
};

/* Decodes the entry at *pos of a chunk and moves *pos past it. */
static int dent_decode(const struct dirh *d, size_t *pos, struct dent *e)
{
	struct rump_fs_dirent w;
	size_t at = *pos, need;

	if (d->len - at < sizeof w)
		return EIO;
	memcpy(&w, d->chunk + at, sizeof w);
	at += sizeof w;
	need = (w.has_attr ? sizeof e->attr : 0) + w.name_len;
	if (w.name_len == 0 || w.name_len > RUMP_FS_NAME_MAX ||
	    w.has_attr > 1 || d->len - at < need || w.next_cookie == 0)
		return EIO;
	e->has_attr = w.has_attr;
	if (e->has_attr) {
		memcpy(&e->attr, d->chunk + at, sizeof e->attr);
		at += sizeof e->attr;
		if (check_attr(&e->attr, sizeof e->attr) != 0 ||
		    e->attr.fh.ino != w.ino || e->attr.fh.gen != w.gen)
			return EIO;
	}
	memcpy(e->name, d->chunk + at, w.name_len);
	e->name[w.name_len] = '\0';
	if (strlen(e->name) != w.name_len || strchr(e->name, '/') != NULL)
		return EIO;
	at += w.name_len;
	at = (at + 7) & ~(size_t)7;
	*pos = at < d->len ? at : d->len;
	e->ino = w.ino;
	e->gen = w.gen;
	e->next_cookie = w.next_cookie;
	e->type = w.type;
	return 0;
}

static int dir_fetch(struct gw *gw, struct dirh *d, const struct rump_fh *fh,
                     uint64_t cookie, bool plus)
{
	struct rump_fs_readdir_req rq = { .dir = *fh, .cookie = cookie,
	                                  .plus = plus };
	int err;

	d->valid = false;
	err = gw_call(gw, RUMP_FS_OP_READDIR, &rq, sizeof rq, d->chunk,
	              READDIR_CHUNK, &d->len, NULL, NULL);
	if (err != 0)
		return err;
	d->start = cookie;
	d->plus = plus;
	d->valid = true;
	return 0;
}

/* Where in the cached chunk the entry after cookie is; false if the
 * chunk does not tell. */
static bool dir_find(const struct dirh *d, uint64_t cookie, bool plus,
                     size_t *pos)
{
	struct dent e;
	size_t at = 0;

	if (!d->valid || d->plus != plus)
		return false;
	if (cookie == d->start) {
		*pos = 0;
		return true;
	}
	while (at < d->len) {
		if (dent_decode(d, &at, &e) != 0)
			return false;
		if (e.next_cookie == cookie) {
			*pos = at;
			return at < d->len || d->len == 0;
		}
	}
	return false;
}

static bool is_dot(const char *name)
{
	return name[0] == '.' &&
	       (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size,
                           off_t off, struct fuse_file_info *fi, bool plus)
{
	struct gw *gw = gw_of(req);
	struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
	uint64_t cookie = (uint64_t)off, *refs = NULL;
	size_t used = 0, pos, nrefs = 0;
	struct rump_fh fh;
	struct dent *e = NULL;
	char *out = NULL;
	int err;

	pthread_mutex_lock(&d->lock);
	out = malloc(size);
	e = malloc(sizeof *e);
	/* A direntplus is more than 64 bytes: a bound on lookups counted. */
	refs = malloc((size / 64 + 1) * sizeof *refs);
	if (out == NULL || e == NULL || refs == NULL) {
		err = ENOMEM;
		goto fail;
	}
	if ((err = nodes_fh(&gw->nodes, ino, &fh)) != 0)
		goto fail;
	if (!dir_find(d, cookie, plus, &pos)) {
		if ((err = dir_fetch(gw, d, &fh, cookie, plus)) != 0)
			goto fail;
		pos = 0;
	}
	for (;;) {
		struct fuse_entry_param ep = { 0 };
		size_t need, before = pos;

		if (pos >= d->len) {
			/* End of the chunk: the end of the directory if it
			 * was empty, else read on. */
			if (d->len == 0)
				break;
			if ((err = dir_fetch(gw, d, &fh, cookie, plus)) != 0)
				goto fail;
			pos = 0;
			continue;
		}
		if ((err = dent_decode(d, &pos, e)) != 0)
			goto fail;
		if (plus) {
			need = fuse_add_direntry_plus(req, NULL, 0, e->name,
			                              &ep, 0);
		} else {
			need = fuse_add_direntry(req, NULL, 0, e->name, NULL,
			                         0);
		}
		if (need > size - used) {
			pos = before;
			break;
		}
		if (plus && e->has_attr && !is_dot(e->name)) {
			if ((err = nodes_ref(&gw->nodes, &e->attr,
			                     &ep.ino)) != 0)
				goto fail;
			refs[nrefs++] = ep.ino;
			ep.generation = e->gen;
			ep.attr_timeout = gw->opts.attr_timeout;
			ep.entry_timeout = gw->opts.entry_timeout;
			attr_to_stat(&e->attr, &ep.attr);
		} else {
			/* No node: the kernel takes just the name. */
			ep.attr.st_ino = e->ino;
			ep.attr.st_mode = DTTOIF(e->type);
		}
		if (plus)
			used += fuse_add_direntry_plus(req, out + used,
			                               size - used, e->name,
			                               &ep,
			                               (off_t)e->next_cookie);
		else
			used += fuse_add_direntry(req, out + used,
			                          size - used, e->name,
			                          &ep.attr,
			                          (off_t)e->next_cookie);
		cookie = e->next_cookie;
	}
	pthread_mutex_unlock(&d->lock);
	if (fuse_reply_buf(req, out, used) != 0) {
		for (size_t i = 0; i < nrefs; i++)
			nodes_forget(&gw->nodes, refs[i], 1);
	}
	free(out);
	free(e);
	free(refs);
	return;
fail:
	for (size_t i = 0; i < nrefs; i++)
		nodes_forget(&gw->nodes, refs[i], 1);
	pthread_mutex_unlock(&d->lock);
	free(out);
	free(e);
	free(refs);
	fuse_reply_err(req, err);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
	struct dirh *d;

	(void)ino;
	d = calloc(1, sizeof *d);
	if (d == NULL || (d->chunk = malloc(READDIR_CHUNK)) == NULL) {
		free(d);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_init(&d->lock, NULL);
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(req, fi) != 0) {
		pthread_mutex_destroy(&d->lock);
		free(d->chunk);
		free(d);
	}
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
                       off_t off, struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
                           off_t off, struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
                          struct fuse_file_info *fi)
{
	struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;

	(void)ino;
	pthread_mutex_destroy(&d->lock);
	free(d->chunk);
	free(d);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
                        struct fuse_file_info *fi)
{
	op_fsync(req, ino, datasync, fi);
}

/* ---- the file system -------------------------------------------------- */

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct gw *gw = gw_of(req);
	struct rump_fs_req rq = { 0 };
	struct rump_fs_statfs s;
	struct statvfs v = { 0 };
	size_t len;
	int err;

	if ((err = nodes_fh(&gw->nodes, ino, &rq.fh)) != 0 ||
	    (err = gw_call(gw, RUMP_FS_OP_STATFS, &rq, sizeof rq, &s,
	                   sizeof s, &len, NULL, NULL)) != 0) {
		fuse_reply_err(req, err);
		return;
	}
	if (len != sizeof s || s.bsize == 0) {
		fuse_reply_err(req, EIO);
		return;
	}
	v.f_bsize = v.f_frsize = s.bsize;
	v.f_blocks = s.blocks;
	v.f_bfree = s.bfree;
	v.f_bavail = s.bavail;
	v.f_files = s.files;
	v.f_ffree = v.f_favail = s.ffree;
	v.f_namemax = s.namemax;
	fuse_reply_statfs(req, &v);
}

/* ---- extended attributes ---------------------------------------------- */

/* Builds a rump_fs_xattr_req with name and value; *lenp gets its size. */
static void *xattr_req(struct gw *gw, fuse_ino_t ino, const char *name,
                       const void *value, size_t value_len, uint32_t flags,
                       size_t *lenp, int *errp)
{
	struct rump_fs_xattr_req rq = { .flags = flags };
	size_t name_len = strlen(name);
	unsigned char *buf;

	if (name_len == 0 || name_len > RUMP_FS_NAME_MAX) {
		*errp = name_len == 0 ? EINVAL : ERANGE;
		return NULL;
	}
	if (value_len > RUMP_FS_XATTR_MAX) {
		*errp = E2BIG;
		return NULL;
	}
	if ((*errp = nodes_fh(&gw->nodes, ino, &rq.fh)) != 0)
		return NULL;
	rq.name_len = (uint32_t)name_len;
	rq.value_len = (uint32_t)value_len;
	buf = malloc(sizeof rq + name_len + value_len);
	if (buf == NULL) {
		*errp = ENOMEM;
		return NULL;
	}
	memcpy(buf, &rq, sizeof rq);
	memcpy(buf + sizeof rq, name, name_len);
	if (value_len > 0)
		memcpy(buf + sizeof rq + name_len, value, value_len);
	*lenp = sizeof rq + name_len + value_len;
	return buf;
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                        const char *value, size_t size, int flags)
{
	struct gw *gw = gw_of(req);
	uint32_t rflags = 0;
	size_t len;
	void *rq;
	int err;

	if (flags & ~(XATTR_CREATE | XATTR_REPLACE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (flags & XATTR_CREATE)
		rflags |= RUMP_FS_XATTR_CREATE;
	if (flags & XATTR_REPLACE)
		rflags |= RUMP_FS_XATTR_REPLACE;
	rq = xattr_req(gw, ino, name, value, size, rflags, &len, &err);
	if (rq != NULL) {
		/* Before and after: a GETXATTR answered before this call
		 * may note "none" while it runs. */
		nodes_set_nocaps(&gw->nodes, ino, 0);
		err = gw_call(gw, RUMP_FS_OP_SETXATTR, rq, len, NULL, 0, NULL,
		              NULL, NULL);
		nodes_set_nocaps(&gw->nodes, ino, 0);
		free(rq);
	}
	fuse_reply_err(req, err);
}

/* GETXATTR and LISTXATTR replies: size 0 asks for the length only. */
static void reply_xattr_value(fuse_req_t req, const void *value, size_t len,
                              size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, value, len);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                        size_t size)
{
	struct gw *gw = gw_of(req);
	void *rq = NULL, *value = NULL;
	uint64_t now = mono_ns();
	bool caps = strcmp(name, CAPS_XATTR) == 0;
	size_t len, vlen;
	int err;

	if (caps && nodes_nocaps(&gw->nodes, ino, now)) {
		err = ENODATA;
		goto fail;
	}
	rq = xattr_req(gw, ino, name, NULL, 0, 0, &len, &err);
	if (rq == NULL)
		goto fail;
	value = malloc(RUMP_FS_XATTR_MAX);
	if (value == NULL) {
		err = ENOMEM;
		goto fail;
	}
	err = gw_call(gw, RUMP_FS_OP_GETXATTR, rq, len, value,
	              RUMP_FS_XATTR_MAX, &vlen, NULL, NULL);
	if (caps && err == ENODATA)
		nodes_set_nocaps(&gw->nodes, ino, cache_horizon(gw, now));
	if (err != 0)
		goto fail;
	reply_xattr_value(req, value, vlen, size);
	free(rq);
	free(value);
	return;
fail:
	free(rq);
	free(value);
	fuse_reply_err(req, err);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct gw *gw = gw_of(req);
	struct rump_fs_req rq = { 0 };
	char *names;
	size_t len;
	int err;

	names = malloc(RUMP_FS_XATTR_MAX);
	if (names == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if ((err = nodes_fh(&gw->nodes, ino, &rq.fh)) == 0)
		err = gw_call(gw, RUMP_FS_OP_LISTXATTR, &rq, sizeof rq, names,
		              RUMP_FS_XATTR_MAX, &len, NULL, NULL);
	/* NUL-separated names: a non-empty list ends with a NUL. */
	if (err == 0 && len > 0 && names[len - 1] != '\0')
		err = EIO;
	if (err != 0)
		fuse_reply_err(req, err);
	else
		reply_xattr_value(req, names, len, size);
	free(names);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct gw *gw = gw_of(req);
	size_t len;
	void *rq;
	int err;

	rq = xattr_req(gw, ino, name, NULL, 0, 0, &len, &err);
	if (rq != NULL) {
		nodes_set_nocaps(&gw->nodes, ino, 0);
		err = gw_call(gw, RUMP_FS_OP_REMOVEXATTR, rq, len, NULL, 0,
		              NULL, NULL, NULL);
		nodes_set_nocaps(&gw->nodes, ino, 0);
		free(rq);
	}
	fuse_reply_err(req, err);
}

/*
 * No .flush: libfuse answers ENOSYS and the kernel stops sending FLUSH,
 * a round trip per close that would do nothing here.  The kernel still
 * writes a file's dirty pages back on close; durability is fsync's
 * (COMMIT), and the log keeps what a restart of rumpfs would lose.
 */
const struct fuse_lowlevel_ops rumpfuse_ops = {
	.init = op_init,
	.destroy = op_destroy,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.create = op_create,
	.fallocate = op_fallocate,
};
