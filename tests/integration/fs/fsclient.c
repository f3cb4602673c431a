/*
 * fsclient: a small client of rumpfs for the integration tests.
 *
 *   fsclient SOCKET < script
 *
 * Runs one command per line over one session (paths are absolute in the
 * served file system, words are separated by blanks).  The first failing
 * command ends it with status 1 and a line naming the command and the
 * error; "expect ERRNO CMD..." turns a command that must fail into one
 * that must fail with exactly that errno (ENOENT, ENOTEMPTY, ...).
 * Commands: see the table at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "rump/client.h"
#include "rump/proto_fs.h"

#define REQ_BUF (128u * 1024u)
#define DATA_BUF RUMP_FS_IO_MAX

struct ctx {
	struct rump_client *c;
	unsigned char *req;          /* request/reply buffer in the area */
	unsigned char *data;         /* READ/WRITE buffer in the area */
	struct rump_fs_mountinfo mi;
	uint64_t aux;                /* of the last operation */
};

/* ---- protocol helpers --------------------------------------------------- */

/* One non-data operation on the request buffer: result or -errno. */
static int64_t
fs_op(struct ctx *x, uint16_t opcode)
{
	struct rump_sqe sqe = {
		.opcode = opcode,
		.len = REQ_BUF,
		.buf = rump_client_buf_offset(x->c, x->req),
	};

	return rump_client_exec(x->c, &sqe, &x->aux);
}

/* rump_fs_req + name. */
static int64_t
fs_named(struct ctx *x, uint16_t opcode, const struct rump_fh *fh,
         const char *name)
{
	struct rump_fs_req r = { .fh = *fh };

	r.name_len = name ? (uint32_t)strlen(name) : 0;
	memcpy(x->req, &r, sizeof(r));
	if (name)
		memcpy(x->req + sizeof(r), name, r.name_len);
	return fs_op(x, opcode);
}

static int
lookup(struct ctx *x, const struct rump_fh *dir, const char *name,
       struct rump_fattr *a)
{
	int64_t r = fs_named(x, RUMP_FS_OP_LOOKUP, dir, name);

	if (r < 0)
		return (int)-r;
	memcpy(a, x->req, sizeof(*a));
	return 0;
}

static int
getattr(struct ctx *x, const struct rump_fh *fh, struct rump_fattr *a)
{
	int64_t r = fs_named(x, RUMP_FS_OP_GETATTR, fh, NULL);

	if (r < 0)
		return (int)-r;
	memcpy(a, x->req, sizeof(*a));
	return 0;
}

/* Walks path from the root. */
static int
resolve(struct ctx *x, const char *path, struct rump_fattr *a)
{
	char buf[RUMP_FS_PATH_MAX], *save = NULL, *part;
	struct rump_fh fh = x->mi.root;
	int error;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return ENAMETOOLONG;
	if ((error = getattr(x, &fh, a)) != 0)
		return error;
	for (part = strtok_r(buf, "/", &save); part != NULL;
	     part = strtok_r(NULL, "/", &save)) {
		if ((error = lookup(x, &fh, part, a)) != 0)
			return error;
		fh = a->fh;
	}
	return 0;
}

/* The parent's handle and the last name of path. */
static int
resolve_parent(struct ctx *x, const char *path, struct rump_fh *dir,
               const char **name)
{
	char buf[RUMP_FS_PATH_MAX];
	struct rump_fattr a;
	const char *slash = strrchr(path, '/');
	int error;

	if (slash == NULL || slash[1] == '\0')
		return EINVAL;
	if ((size_t)(slash - path) >= sizeof(buf))
		return ENAMETOOLONG;
	memcpy(buf, path, (size_t)(slash - path));
	buf[slash - path] = '\0';
	if ((error = resolve(x, buf, &a)) != 0)
		return error;
	*dir = a.fh;
	*name = slash + 1;
	return 0;
}

static int
create(struct ctx *x, uint16_t op, const char *path, uint32_t mode,
       uint64_t rdev, const char *target, uint32_t flags,
       struct rump_fattr *a)
{
	struct rump_fs_create_req r = { .mode = mode, .uid = getuid(),
	                                .gid = getgid(), .rdev = rdev,
	                                .flags = flags };
	const char *name;
	int64_t res;
	int error;

	if ((error = resolve_parent(x, path, &r.dir, &name)) != 0)
		return error;
	r.name_len = (uint32_t)strlen(name);
	r.target_len = target ? (uint32_t)strlen(target) : 0;
	memcpy(x->req, &r, sizeof(r));
	memcpy(x->req + sizeof(r), name, r.name_len);
	if (target)
		memcpy(x->req + sizeof(r) + r.name_len, target, r.target_len);
	if ((res = fs_op(x, op)) < 0)
		return (int)-res;
	if (a != NULL)
		memcpy(a, x->req, sizeof(*a));
	return 0;
}

static int64_t
rw(struct ctx *x, uint16_t op, const struct rump_fh *fh, uint64_t off,
   uint32_t len, uint16_t flags)
{
	struct rump_sqe sqe = {
		.opcode = op,
		.flags = flags,
		.len = len,
		.handle = fh->ino,
		.arg = { fh->gen },
		.offset = off,
		.buf = rump_client_buf_offset(x->c, x->data),
	};

	return rump_client_exec(x->c, &sqe, &x->aux);
}

static int
setattr(struct ctx *x, const struct rump_fs_setattr_req *r)
{
	int64_t res;

	memcpy(x->req, r, sizeof(*r));
	res = fs_op(x, RUMP_FS_OP_SETATTR);
	return res < 0 ? (int)-res : 0;
}

static int
commit(struct ctx *x)
{
	struct rump_fh whole = { 0 };
	int64_t r = fs_named(x, RUMP_FS_OP_COMMIT, &whole, NULL);

	if (r < 0)
		return (int)-r;
	if (x->aux != x->mi.verifier)
		return ESTALE;
	return 0;
}

/* ---- commands ---------------------------------------------------------- */

typedef int (*cmd_fn)(struct ctx *x, int argc, char **argv);

static int
parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno || *end || end == s ? EINVAL : 0;
}

static int
cmd_put(struct ctx *x, int argc, char **argv)
{
	struct rump_fs_setattr_req sr = { .valid = RUMP_FS_SET_SIZE };
	struct rump_fattr a;
	uint64_t off = 0;
	ssize_t n;
	int fd, error;
	int64_t r;

	(void)argc;
	if ((fd = open(argv[1], O_RDONLY)) < 0)
		return errno;
	error = create(x, RUMP_FS_OP_CREATE, argv[2], 0644, 0, NULL, 0, &a);
	sr.fh = a.fh;
	if (error == 0)
		error = setattr(x, &sr);
	while (error == 0 && (n = read(fd, x->data, DATA_BUF)) > 0) {
		r = rw(x, RUMP_FS_OP_WRITE, &a.fh, off, (uint32_t)n, 0);
		if (r < 0)
			error = (int)-r;
		else if (r != n)
			error = EIO;
		off += (uint64_t)n;
	}
	close(fd);
	return error ? error : commit(x);
}

/* Reads the whole file into fd. */
static int
read_all(struct ctx *x, const struct rump_fh *fh, int fd, uint64_t *total)
{
	uint64_t off = 0;
	int64_t r;

	for (;;) {
		r = rw(x, RUMP_FS_OP_READ, fh, off, DATA_BUF, 0);
		if (r < 0)
			return (int)-r;
		if (fd >= 0 && r > 0 && write(fd, x->data, (size_t)r) != r)
			return EIO;
		off += (uint64_t)r;
		if (x->aux == 1 || r == 0)
			break;
	}
	if (total)
		*total = off;
	return 0;
}

static int
cmd_get(struct ctx *x, int argc, char **argv)
{
	struct rump_fattr a;
	int fd, error;

	(void)argc;
	if ((error = resolve(x, argv[1], &a)) != 0)
		return error;
	if ((fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
		return errno;
	error = read_all(x, &a.fh, fd, NULL);
	if (close(fd) != 0 && error == 0)
		error = errno;
	return error;
}

static int
cmd_cat(struct ctx *x, int argc, char **argv)
{
	struct rump_fattr a;
	int error;

	(void)argc;
	fflush(stdout);
	if ((error = resolve(x, argv[1], &a)) != 0)
		return error;
	return read_all(x, &a.fh, STDOUT_FILENO, NULL);
}

static int
cmd_write(struct ctx *x, int argc, char **argv)
{
	struct rump_fattr a;
	uint64_t off;
	size_t len = strlen(argv[3]);
	int64_t r;
	int error;

	(void)argc;
	if ((error = parse_u64(argv[2], &off)) != 0)
		return error;
	error = resolve(x, argv[1], &a);
	if (error == ENOENT)
		error = create(x, RUMP_FS_OP_CREATE, argv[1], 0644, 0, NULL, 0,
		               &a);
	if (error)
		return error;
	memcpy(x->data, argv[3], len);
	r = rw(x, RUMP_FS_OP_WRITE, &a.fh, off, (uint32_t)len, 0);
	if (r < 0)
		return (int)-r;
	return x->aux == x->mi.verifier ? 0 : EPROTO;
}

static int
cmd_create(struct ctx *x, int argc, char **argv)
{
	(void)argc;
	return create(x, RUMP_FS_OP_CREATE, argv[1], 0644, 0, NULL,
	              RUMP_FS_CREATE_EXCL, NULL);
}

static int
cmd_mkdir(struct ctx *x, int argc, char **argv)
{
	(void)argc;
	return create(x, RUMP_FS_OP_MKDIR, argv[1], 0755, 0, NULL, 0, NULL);
}

static int
cmd_symlink(struct ctx *x, int argc, char **argv)
{
	(void)argc;
	return create(x, RUMP_FS_OP_SYMLINK, argv[2], 0777, 0, argv[1], 0,
	              NULL);
}

static int
cmd_mknod(struct ctx *x, int argc, char **argv)
{
	uint64_t major = 0, minor = 0;
	uint32_t type;

	if (argc != 3 && argc != 5)
		return EINVAL;
	switch (argv[2][0]) {
	case 'c': type = S_IFCHR; break;
	case 'b': type = S_IFBLK; break;
	case 'p': type = S_IFIFO; break;
	case 's': type = S_IFSOCK; break;
	default: return EINVAL;
	}
	if (argc == 5 && (parse_u64(argv[3], &major) ||
	                  parse_u64(argv[4], &minor)))
		return EINVAL;
	return create(x, RUMP_FS_OP_MKNOD, argv[1], type | 0644,
	              makedev((unsigned)major, (unsigned)minor), NULL, 0, NULL);
}

static int
cmd_readlink(struct ctx *x, int argc, char **argv)
{
	struct rump_fattr a;
	int64_t r;
	int error;

	(void)argc;
	if ((error = resolve(x, argv[1], &a)) != 0)
		return error;
	if ((r = fs_named(x, RUMP_FS_OP_READLINK, &a.fh, NULL)) < 0)
		return (int)-r;
	printf("%.*s\n", (int)r, x->req);
	return 0;
}

static int
remove_op(struct ctx *x, uint16_t op, const char *path)
{
	struct rump_fh dir;
	const char *name;
	int64_t r;
	int error;

	if ((error = resolve_parent(x, path, &dir, &name)) != 0)
		return error;
	r = fs_named(x, op, &dir, name);
	return r < 0 ? (int)-r : 0;
}

static int
cmd_rm(struct ctx *x, int argc, char **argv)
{
	(void)argc;
	return remove_op(x, RUMP_FS_OP_UNLINK, argv[1]);
}

static int
cmd_rmdir(struct ctx *x, int argc, char **argv)
{
	(void)argc;
	return remove_op(x, RUMP_FS_OP_RMDIR, argv[1]);
}

static int
cmd_mv(struct ctx *x, int argc, char **argv)
{
	struct rump_fs_rename_req r = { 0 };
	const char *from, *to;
	int64_t res;
	int error;

	if (argc == 4 && strcmp(argv[3], "noreplace") == 0)
		r.flags = RUMP_FS_RENAME_NOREPLACE;
	else if (argc == 4 && strcmp(argv[3], "exchange") == 0)
		r.flags = RUMP_FS_RENAME_EXCHANGE;
	else if (argc != 3)
		return EINVAL;
	if ((error = resolve_parent(x, argv[1], &r.from_dir, &from)) != 0 ||
	    (error = resolve_parent(x, argv[2], &r.to_dir, &to)) != 0)
		return error;
	r.from_len = (uint32_t)strlen(from);
	r.to_len = (uint32_t)strlen(to);
	memcpy(x->req, &r, sizeof(r));
	memcpy(x->req + sizeof(r), from, r.from_len);
	memcpy(x->req + sizeof(r) + r.from_len, to, r.to_len);
	res = fs_op(x, RUMP_FS_OP_RENAME);
	return res < 0 ? (int)-res : 0;
}

static int
cmd_ln(struct ctx *x, int argc, char **argv)
{
	struct rump_fs_link_req r = { 0 };
	struct rump_fattr a;
	const char *name;
	int64_t res;
	int error;

	(void)argc;
	if ((error = resolve(x, argv[1], &a)) != 0 ||
	    (error = resolve_parent(x, argv[2], &r.dir, &name)) != 0)
		return error;
	r.fh = a.fh;
	r.name_len = (uint32_t)strlen(name);
	memcpy(x->req, &r, sizeof(r));
	memcpy(x->req + sizeof(r), name, r.name_len);
	res = fs_op(x, RUMP_FS_OP_LINK);
	return res < 0 ? (int)-res : 0;
}

static int
cmd_stat(struct ctx *x, int argc, char **argv)
{
	struct rump_fattr a;
	int error;

	(void)argc;
	if ((error = resolve(x, argv[1], &a)) != 0)
		return error;
	printf("mode=%o nlink=%u uid=%u gid=%u size=%" PRIu64
	       " blocks=%" PRIu64 " rdev=%u:%u mtime=%" PRId64 ".%09u\n",
	       a.mode, a.nlink, a.uid, a.gid, a.size, a.blocks,
	       major(a.rdev), minor(a.rdev), a.mtime.sec, a.mtime.nsec);
	return 0;
}

static int
cmd_setattr(struct ctx *x, int argc, char **argv)
{
	struct rump_fs_setattr_req r = { 0 };
	struct rump_fattr a;
	uint64_t v1, v2 = 0;
	int error;

	if ((error = resolve(x, argv[1], &a)) != 0)
		return error;
	r.fh = a.fh;
	if (parse_u64(argv[2], &v1) ||
	    (argc > 3 && parse_u64(argv[3], &v2)))
		return EINVAL;
	if (strcmp(argv[0], "chmod") == 0) {
		r.valid = RUMP_FS_SET_MODE;
		r.mode = (uint32_t)v1;
	} else if (strcmp(argv[0], "chown") == 0) {
		r.valid = RUMP_FS_SET_UID | RUMP_FS_SET_GID;
		r.uid = (uint32_t)v1;
		r.gid = (uint32_t)v2;
	} else if (strcmp(argv[0], "truncate") == 0) {
		r.valid = RUMP_FS_SET_SIZE;
		r.size = v1;
	} else {
		r.valid = RUMP_FS_SET_MTIME;
		r.mtime.sec = (int64_t)v1;
		r.mtime.nsec = (uint32_t)v2;
	}
	return setattr(x, &r);
}

/*
 * Lists dir with READDIR(PLUS) into small buffers (many cookies), calling
 * fn on each entry.  Checks that every entry of a plus listing that has
 * attributes agrees with the entry.
 */
static int
list_dir(struct ctx *x, const struct rump_fh *dir, bool plus, size_t bufsz,
         int (*fn)(struct ctx *x, const struct rump_fs_dirent *de,
                   const struct rump_fattr *a, const char *name, void *arg),
         void *arg)
{
	struct rump_fs_readdir_req r = { .dir = *dir, .plus = plus };
	unsigned char *chunk = malloc(bufsz);
	struct rump_sqe sqe;
	int64_t res;
	size_t off;
	int error = 0;

	if (chunk == NULL)
		return ENOMEM;
	for (;;) {
		memcpy(x->req, &r, sizeof(r));
		sqe = (struct rump_sqe){
			.opcode = RUMP_FS_OP_READDIR,
			.len = (uint32_t)bufsz,
			.buf = rump_client_buf_offset(x->c, x->req),
		};
		res = rump_client_exec(x->c, &sqe, NULL);
		if (res <= 0 || (size_t)res > bufsz) {
			error = res < 0 ? (int)-res : res ? EPROTO : 0;
			break;
		}
		memcpy(chunk, x->req, (size_t)res);
		for (off = 0; off < (size_t)res;) {
			struct rump_fs_dirent de;
			struct rump_fattr a;
			char name[RUMP_FS_NAME_MAX + 1];
			size_t at = off + sizeof(de), rec;

			memcpy(&de, chunk + off, sizeof(de));
			if (de.has_attr) {
				memcpy(&a, chunk + at, sizeof(a));
				at += sizeof(a);
				if (a.fh.ino != de.ino || a.fh.gen != de.gen)
					error = EPROTO;
			}
			if (de.name_len == 0 || de.name_len > RUMP_FS_NAME_MAX)
				error = EPROTO;
			if (error)
				break;
			memcpy(name, chunk + at, de.name_len);
			name[de.name_len] = '\0';
			rec = (at + de.name_len - off + 7) & ~(size_t)7;
			if ((error = fn(x, &de, de.has_attr ? &a : NULL, name,
			                arg)) != 0)
				break;
			r.cookie = de.next_cookie;
			off += rec;
		}
		if (error)
			break;
	}
	free(chunk);
	return error;
}

static int
print_entry(struct ctx *x, const struct rump_fs_dirent *de,
            const struct rump_fattr *a, const char *name, void *arg)
{
	(void)x;
	(void)de;
	(void)a;
	(void)arg;
	if (strcmp(name, ".") && strcmp(name, ".."))
		printf("%s\n", name);
	return 0;
}

static int
count_entry(struct ctx *x, const struct rump_fs_dirent *de,
            const struct rump_fattr *a, const char *name, void *arg)
{
	(void)x;
	(void)de;
	(void)a;
	if (strcmp(name, ".") && strcmp(name, ".."))
		(*(uint64_t *)arg)++;
	return 0;
}

static int
cmd_ls(struct ctx *x, int argc, char **argv)
{
	struct rump_fattr a;
	int error;

	(void)argc;
	fflush(stdout);
	if ((error = resolve(x, argv[1], &a)) != 0)
		return error;
	return list_dir(x, &a.fh, true, 4096, print_entry, NULL);
}

/* count DIR [N]: counts entries with small readdir buffers (many
 * cookies); with N, the count must be N. */
static int
cmd_count(struct ctx *x, int argc, char **argv)
{
	struct rump_fattr a;
	uint64_t n = 0, want;
	int error;

	if ((error = resolve(x, argv[1], &a)) != 0)
		return error;
	if ((error = list_dir(x, &a.fh, false, 512, count_entry, &n)) != 0)
		return error;
	printf("%" PRIu64 "\n", n);
	if (argc > 2) {
		if (parse_u64(argv[2], &want))
			return EINVAL;
		if (want != n)
			return EBADMSG;
	}
	return 0;
}

static int
cmd_fill(struct ctx *x, int argc, char **argv)
{
	char path[RUMP_FS_PATH_MAX];
	uint64_t n;
	int error;

	(void)argc;
	if (parse_u64(argv[2], &n))
		return EINVAL;
	for (uint64_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/entry-%06" PRIu64, argv[1], i);
		error = create(x, RUMP_FS_OP_CREATE, path, 0644, 0, NULL,
		               RUMP_FS_CREATE_EXCL, NULL);
		if (error)
			return error;
	}
	return commit(x);
}

static int
xattr_op(struct ctx *x, uint16_t op, const char *path, const char *name,
         const char *value, uint32_t flags)
{
	struct rump_fs_xattr_req r = { .flags = flags };
	struct rump_fattr a;
	int64_t res;
	int error;

	if ((error = resolve(x, path, &a)) != 0)
		return error;
	r.fh = a.fh;
	r.name_len = name ? (uint32_t)strlen(name) : 0;
	r.value_len = value ? (uint32_t)strlen(value) : 0;
	memcpy(x->req, &r, sizeof(r));
	if (name)
		memcpy(x->req + sizeof(r), name, r.name_len);
	if (value)
		memcpy(x->req + sizeof(r) + r.name_len, value, r.value_len);
	res = fs_op(x, op);
	if (res < 0)
		return (int)-res;
	if (op == RUMP_FS_OP_GETXATTR)
		printf("%.*s\n", (int)res, x->req);
	return 0;
}

static int
cmd_setxattr(struct ctx *x, int argc, char **argv)
{
	uint32_t flags = 0;

	if (argc > 4)
		flags = strcmp(argv[4], "create") == 0 ? RUMP_FS_XATTR_CREATE
		                                       : RUMP_FS_XATTR_REPLACE;
	return xattr_op(x, RUMP_FS_OP_SETXATTR, argv[1], argv[2], argv[3],
	                flags);
}

static int
cmd_getxattr(struct ctx *x, int argc, char **argv)
{
	(void)argc;
	return xattr_op(x, RUMP_FS_OP_GETXATTR, argv[1], argv[2], NULL, 0);
}

static int
cmd_rmxattr(struct ctx *x, int argc, char **argv)
{
	(void)argc;
	return xattr_op(x, RUMP_FS_OP_REMOVEXATTR, argv[1], argv[2], NULL, 0);
}

static int
cmd_listxattr(struct ctx *x, int argc, char **argv)
{
	struct rump_fattr a;
	int64_t r;
	int error;

	(void)argc;
	if ((error = resolve(x, argv[1], &a)) != 0)
		return error;
	if ((r = fs_named(x, RUMP_FS_OP_LISTXATTR, &a.fh, NULL)) < 0)
		return (int)-r;
	for (int64_t i = 0; i < r; i += (int64_t)strlen((char *)x->req + i) + 1)
		printf("%s\n", (char *)x->req + i);
	return 0;
}

static int
cmd_falloc(struct ctx *x, int argc, char **argv)
{
	struct rump_fs_fallocate_req r = { 0 };
	struct rump_fattr a;
	int64_t res;
	int error;

	if ((error = resolve(x, argv[1], &a)) != 0)
		return error;
	r.fh = a.fh;
	if (parse_u64(argv[2], &r.offset) || parse_u64(argv[3], &r.len))
		return EINVAL;
	if (argc > 4 && strcmp(argv[4], "keep") == 0)
		r.mode = RUMP_FS_FALLOC_KEEP_SIZE;
	else if (argc > 4 && strcmp(argv[4], "punch") == 0)
		r.mode = RUMP_FS_FALLOC_KEEP_SIZE | RUMP_FS_FALLOC_PUNCH_HOLE;
	memcpy(x->req, &r, sizeof(r));
	res = fs_op(x, RUMP_FS_OP_FALLOCATE);
	return res < 0 ? (int)-res : 0;
}

static int
cmd_commit(struct ctx *x, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return commit(x);
}

static int
cmd_statfs(struct ctx *x, int argc, char **argv)
{
	struct rump_fs_statfs st;
	int64_t r;

	(void)argc;
	(void)argv;
	if ((r = fs_op(x, RUMP_FS_OP_STATFS)) < 0)
		return (int)-r;
	memcpy(&st, x->req, sizeof(st));
	printf("bsize=%u blocks=%" PRIu64 " bfree=%" PRIu64 " files=%" PRIu64
	       " ffree=%" PRIu64 "\n", st.bsize, st.blocks, st.bfree,
	       st.files, st.ffree);
	return 0;
}

static int
cmd_mountinfo(struct ctx *x, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("type=%s block=%u ro=%u label=%.32s\n", x->mi.fs_type,
	       x->mi.block_size, x->mi.flags & RUMP_FS_MOUNT_READ_ONLY,
	       x->mi.label);
	return 0;
}

/* stale PATH: a handle taken before the file is removed must be stale
 * after, even once the inode is reused. */
static int
cmd_stale(struct ctx *x, int argc, char **argv)
{
	struct rump_fattr a, b;
	int error;

	(void)argc;
	if ((error = resolve(x, argv[1], &a)) != 0 ||
	    (error = remove_op(x, RUMP_FS_OP_UNLINK, argv[1])) != 0)
		return error;
	if ((error = create(x, RUMP_FS_OP_CREATE, argv[1], 0644, 0, NULL,
	                    RUMP_FS_CREATE_EXCL, &b)) != 0)
		return error;
	error = getattr(x, &a.fh, &b);
	if (error != ESTALE)
		return error ? error : EEXIST;
	return remove_op(x, RUMP_FS_OP_UNLINK, argv[1]);
}

struct walk {
	uint64_t entries, errors;
};

static void
walk_error(struct walk *w, const char *what, const char *name, int error)
{
	w->errors++;
	fprintf(stderr, "walk: %s %s: %s\n", what, name, strerror(error));
}

static int walk_entry(struct ctx *x, const struct rump_fs_dirent *de,
                      const struct rump_fattr *a, const char *name,
                      void *arg);

static void
walk_dir(struct ctx *x, const struct rump_fh *dir, struct walk *w,
         unsigned depth)
{
	int error;

	if (depth > 64)
		return;
	error = list_dir(x, dir, true, 8192, walk_entry, w);
	if (error)
		walk_error(w, "readdir", "", error);
}

/* Visits everything: attributes, file contents, link targets, xattrs.
 * Errors are counted (a damaged image has them), not fatal. */
static int
walk_entry(struct ctx *x, const struct rump_fs_dirent *de,
           const struct rump_fattr *a, const char *name, void *arg)
{
	struct walk *w = arg;
	struct rump_fh fh = { .ino = de->ino, .gen = de->gen };
	struct rump_fattr attr;
	int64_t r;
	int error;

	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	w->entries++;
	if (a == NULL) {
		if ((error = getattr(x, &fh, &attr)) != 0) {
			walk_error(w, "getattr", name, error);
			return 0;
		}
		a = &attr;
	} else {
		attr = *a;
		a = &attr;
	}
	if (S_ISREG(a->mode) && (error = read_all(x, &fh, -1, NULL)) != 0)
		walk_error(w, "read", name, error);
	if (S_ISLNK(a->mode) &&
	    (r = fs_named(x, RUMP_FS_OP_READLINK, &fh, NULL)) < 0)
		walk_error(w, "readlink", name, (int)-r);
	if ((r = fs_named(x, RUMP_FS_OP_LISTXATTR, &fh, NULL)) < 0)
		walk_error(w, "listxattr", name, (int)-r);
	if (S_ISDIR(a->mode)) {
		/* list_dir reuses the request buffer: recursion is safe
		 * because each level copies its chunk out first. */
		walk_dir(x, &fh, w, 1);
	}
	return 0;
}

static int
cmd_walk(struct ctx *x, int argc, char **argv)
{
	struct walk w = { 0 };
	struct rump_fattr a;
	int error;

	if ((error = resolve(x, argc > 1 ? argv[1] : "/", &a)) != 0)
		return error;
	walk_dir(x, &a.fh, &w, 0);
	printf("walked %" PRIu64 " entries, %" PRIu64 " errors\n", w.entries,
	       w.errors);
	return 0;
}

static const struct {
	const char *name;
	int min, max;                 /* words, the command included */
	cmd_fn fn;
} commands[] = {
	{ "put", 3, 3, cmd_put },           /* LOCAL PATH */
	{ "get", 3, 3, cmd_get },           /* PATH LOCAL */
	{ "cat", 2, 2, cmd_cat },
	{ "write", 4, 4, cmd_write },       /* PATH OFFSET TEXT */
	{ "create", 2, 2, cmd_create },     /* exclusive */
	{ "mkdir", 2, 2, cmd_mkdir },
	{ "symlink", 3, 3, cmd_symlink },   /* TARGET PATH */
	{ "readlink", 2, 2, cmd_readlink },
	{ "mknod", 3, 5, cmd_mknod },       /* PATH c|b|p|s [MAJOR MINOR] */
	{ "rm", 2, 2, cmd_rm },
	{ "rmdir", 2, 2, cmd_rmdir },
	{ "mv", 3, 4, cmd_mv },             /* FROM TO [noreplace|exchange] */
	{ "ln", 3, 3, cmd_ln },             /* EXISTING NEW */
	{ "stat", 2, 2, cmd_stat },
	{ "chmod", 3, 3, cmd_setattr },
	{ "chown", 4, 4, cmd_setattr },
	{ "truncate", 3, 3, cmd_setattr },
	{ "utime", 4, 4, cmd_setattr },     /* PATH SEC NSEC (mtime) */
	{ "ls", 2, 2, cmd_ls },
	{ "count", 2, 3, cmd_count },
	{ "fill", 3, 3, cmd_fill },         /* DIR N */
	{ "setxattr", 4, 5, cmd_setxattr }, /* PATH NAME VALUE [create|replace] */
	{ "getxattr", 3, 3, cmd_getxattr },
	{ "rmxattr", 3, 3, cmd_rmxattr },
	{ "listxattr", 2, 2, cmd_listxattr },
	{ "falloc", 4, 5, cmd_falloc },     /* PATH OFF LEN [keep|punch] */
	{ "commit", 1, 1, cmd_commit },
	{ "statfs", 1, 1, cmd_statfs },
	{ "mountinfo", 1, 1, cmd_mountinfo },
	{ "stale", 2, 2, cmd_stale },
	{ "walk", 1, 2, cmd_walk },
};

static int
errno_by_name(const char *name)
{
	static const struct { const char *n; int e; } names[] = {
		{ "ENOENT", ENOENT }, { "EEXIST", EEXIST },
		{ "ENOTEMPTY", ENOTEMPTY }, { "ENOTDIR", ENOTDIR },
		{ "EISDIR", EISDIR }, { "EINVAL", EINVAL },
		{ "ESTALE", ESTALE }, { "EROFS", EROFS }, { "EIO", EIO },
		{ "ENODATA", ENODATA }, { "ENAMETOOLONG", ENAMETOOLONG },
		{ "EPERM", EPERM }, { "EOPNOTSUPP", EOPNOTSUPP },
		{ "ERANGE", ERANGE }, { "EFBIG", EFBIG },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(names[i].n, name) == 0)
			return names[i].e;
	return -1;
}

static int
run(struct ctx *x, int argc, char **argv)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, argv[0]) == 0) {
			if (argc < commands[i].min || argc > commands[i].max)
				return EINVAL;
			return commands[i].fn(x, argc, argv);
		}
	return ENOSYS;
}

int
main(int argc, char **argv)
{
	struct rump_client_opts opts = {
		.version = RUMP_CLIENT_OPTS_VERSION,
		.service_kind = RUMP_SERVICE_FS,
		.client_name = "fsclient",
		.buf_size = 4u << 20,
	};
	char line[8192], *words[16], *save;
	struct ctx x = { 0 };
	size_t len = 0;
	int n, error, want, lineno = 0, status = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: fsclient SOCKET < script\n");
		return 2;
	}
	if ((error = rump_client_connect(argv[1], &opts, &x.c)) != 0) {
		fprintf(stderr, "fsclient: connect %s: %s\n", argv[1],
		        strerror(error));
		return 1;
	}
	error = rump_client_call(x.c, RUMP_FS_MSG_MOUNTINFO, NULL, 0, &x.mi,
	                         sizeof(x.mi), &len);
	if (error || len != sizeof(x.mi)) {
		fprintf(stderr, "fsclient: MOUNTINFO: %s\n",
		        strerror(error ? error : EPROTO));
		rump_client_close(x.c);
		return 1;
	}
	x.req = rump_client_buf_alloc(x.c, REQ_BUF);
	x.data = rump_client_buf_alloc(x.c, DATA_BUF);
	if (x.req == NULL || x.data == NULL) {
		fprintf(stderr, "fsclient: no buffers\n");
		rump_client_close(x.c);
		return 1;
	}
	while (status == 0 && fgets(line, sizeof(line), stdin) != NULL) {
		lineno++;
		n = 0;
		for (char *w = strtok_r(line, " \t\n", &save); w && n < 16;
		     w = strtok_r(NULL, " \t\n", &save))
			words[n++] = w;
		if (n == 0 || words[0][0] == '#')
			continue;
		if (strcmp(words[0], "expect") == 0) {
			if (n < 3 || (want = errno_by_name(words[1])) < 0) {
				fprintf(stderr, "fsclient: line %d: bad expect\n",
				        lineno);
				status = 1;
				break;
			}
			error = run(&x, n - 2, words + 2);
			if (error != want) {
				fprintf(stderr, "fsclient: line %d: %s: want "
				        "%s, got %s\n", lineno, words[2],
				        words[1], error ? strerror(error)
				                        : "success");
				status = 1;
			}
			continue;
		}
		if ((error = run(&x, n, words)) != 0) {
			fprintf(stderr, "fsclient: line %d: %s: %s\n", lineno,
			        words[0], strerror(error));
			status = 1;
		}
		fflush(stdout);
	}
	rump_client_close(x.c);
	return status;
}
