/*
 * The directory name index of fs_ext2 (fs_dindex.c), through the
 * component's operations: a long random sequence of creates, links,
 * renames and unlinks in large directories, checked step by step against
 * a model, then by a full readdir, a remount (the index starts empty:
 * what it wrote is what the disk holds), debugfs and e2fsck -fn.
 * Directories that must not be indexed (htree, made by e2fsck -D) get
 * the same treatment through libext2fs's paths.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fs_ext2.h"

#define NAMES 3000
#define STEPS 20000
#define NDIRS 2

struct fixture {
	char dir[64], img[96];
	struct fs_ext2_backend be;
	struct fs_ext2 *fs;
	struct rump_fs_mountinfo mi;
};

/* The model: which directory holds each name, and what it names. */
struct model {
	struct rump_fh dirs[NDIRS];
	int where[NAMES];               /* -1: nowhere */
	uint64_t ino[NAMES];
	unsigned count[NDIRS];
	uint64_t rng;
};

static int
sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void
mount_img(struct fixture *f)
{
	struct fs_ext2_mount_opts o = { .name = f->img };
	char why[256];

	assert_int_equal(fs_ext2_image_open(f->img, false, &f->be), 0);
	assert_int_equal(fs_ext2_mount(&f->be, &o, &f->fs, why, sizeof(why)),
	                 0);
	fs_ext2_mountinfo(f->fs, &f->mi);
}

static void
unmount_img(struct fixture *f)
{
	assert_int_equal(fs_ext2_unmount(f->fs), 0);
	fs_ext2_image_close(&f->be);
	f->fs = NULL;
}

static int
make_image(void **state, const char *extra)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/fs-dindex.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->img, sizeof(f->img), "%s/img", f->dir);
	if (sh("truncate -s 256M %s && mkfs.ext4 -q -F -N 20000 %s %s",
	       f->img, extra, f->img) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
setup(void **state)
{
	return make_image(state, "-O metadata_csum,64bit");
}

static int
setup_nocsum(void **state)
{
	return make_image(state, "-O ^metadata_csum -b 4096");
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	if (f->fs != NULL)
		unmount_img(f);
	if (getenv("KEEP") == NULL)
		sh("rm -rf %s", f->dir);
	free(f);
	return 0;
}

static uint64_t
next_rand(struct model *m)
{
	m->rng ^= m->rng << 13;
	m->rng ^= m->rng >> 7;
	m->rng ^= m->rng << 17;
	return m->rng;
}

/* Name i: a number, then filler up to a length that varies from 6 to
 * 255 bytes, so that records of every size come and go. */
static size_t
name_of(unsigned i, char out[256])
{
	size_t len = 6 + (i * 2654435761u) % 250, n;

	n = (size_t)snprintf(out, 256, "n%05u", i);
	memset(out + n, 'a' + (char)(i % 26), len - n);
	out[len] = '\0';
	return len;
}

static void
check_lookup(struct fixture *f, struct model *m, unsigned i)
{
	struct rump_fattr a;
	char name[256];
	size_t len = name_of(i, name);
	int d;

	for (d = 0; d < NDIRS; d++) {
		int error = fs_ext2_lookup(f->fs, &m->dirs[d], name, len, &a);

		if (m->where[i] == d) {
			assert_int_equal(error, 0);
			assert_int_equal(a.fh.ino, m->ino[i]);
		} else {
			assert_int_equal(error, ENOENT);
		}
	}
}

static void
step(struct fixture *f, struct model *m)
{
	unsigned i = (unsigned)(next_rand(m) % NAMES);
	unsigned j = (unsigned)(next_rand(m) % NAMES);
	int d = (int)(next_rand(m) % NDIRS), op = (int)(next_rand(m) % 10);
	char name[256], other[256];
	size_t len = name_of(i, name), olen = name_of(j, other);
	struct fs_ext2_create c = {
		.kind = FS_EXT2_FILE, .name = name, .name_len = len,
		.mode = 0644, .excl = true,
	};
	struct rump_fattr a;

	if (m->where[i] < 0) {
		/* Absent: create it, or hard-link j's file under its name. */
		c.dir = m->dirs[d];
		if (op < 2 && m->where[j] >= 0) {
			struct rump_fh fh;

			assert_int_equal(fs_ext2_lookup(f->fs,
			                 &m->dirs[m->where[j]], other, olen,
			                 &a), 0);
			fh = a.fh;
			assert_int_equal(fs_ext2_link(f->fs, &fh, &m->dirs[d],
			                              name, len, &a), 0);
			m->ino[i] = m->ino[j];
		} else {
			assert_int_equal(fs_ext2_create(f->fs, &c, &a), 0);
			m->ino[i] = a.fh.ino;
			/* O_EXCL on a name that is there now. */
			assert_int_equal(fs_ext2_create(f->fs, &c, &a), EEXIST);
		}
		m->where[i] = d;
		m->count[d]++;
	} else if (op < 4) {
		assert_int_equal(fs_ext2_unlink(f->fs, &m->dirs[m->where[i]],
		                                name, len), 0);
		m->count[m->where[i]]--;
		m->where[i] = -1;
	} else if (op < 7 || i == j) {
		/* Rename to a free name, maybe in the other directory. */
		if (m->where[j] >= 0 && i != j)
			return;
		assert_int_equal(fs_ext2_rename(f->fs, &m->dirs[m->where[i]],
		                                name, len, &m->dirs[d], other,
		                                olen, 0), 0);
		m->count[m->where[i]]--;
		m->count[d]++;
		m->ino[j] = m->ino[i];
		m->where[i] = -1;
		m->where[j] = d;
		j = i;
	} else if (m->where[j] >= 0 && m->ino[j] != m->ino[i]) {
		/* Rename over an existing name (of another file: two names
		 * of one file make it a no-op). */
		assert_int_equal(fs_ext2_rename(f->fs, &m->dirs[m->where[i]],
		                                name, len,
		                                &m->dirs[m->where[j]], other,
		                                olen, 0), 0);
		m->count[m->where[i]]--;
		m->ino[j] = m->ino[i];
		m->where[i] = -1;
	}
	check_lookup(f, m, i);
	check_lookup(f, m, j);
}

/* Every name readdir shows is in the model, in the right place, and
 * their number is the model's. */
static void
check_readdir(struct fixture *f, struct model *m, int d)
{
	static unsigned char buf[65536];
	uint64_t cookie = 0;
	unsigned seen = 0;
	size_t used, off;

	for (;;) {
		assert_int_equal(fs_ext2_readdir(f->fs, &m->dirs[d], cookie,
		                                 false, buf, sizeof(buf),
		                                 &used), 0);
		if (used == 0)
			break;
		for (off = 0; off < used;) {
			struct rump_fs_dirent de;
			const char *nm;
			unsigned i;

			memcpy(&de, buf + off, sizeof(de));
			nm = (const char *)buf + off + sizeof(de);
			cookie = de.next_cookie;
			off += (sizeof(de) + de.name_len + 7) & ~(size_t)7;
			if ((de.name_len == 1 && nm[0] == '.') ||
			    (de.name_len == 2 && nm[0] == '.' && nm[1] == '.'))
				continue;
			assert_true(de.name_len >= 6 && nm[0] == 'n');
			i = (unsigned)strtoul(nm + 1, NULL, 10);
			assert_true(i < NAMES);
			assert_int_equal(m->where[i], d);
			assert_int_equal(de.ino, m->ino[i]);
			seen++;
		}
	}
	assert_int_equal(seen, m->count[d]);
}

static void
run_model(struct fixture *f, struct model *m, unsigned steps)
{
	unsigned s, i;
	int d;

	for (s = 0; s < steps; s++)
		step(f, m);
	for (d = 0; d < NDIRS; d++)
		check_readdir(f, m, d);
	/* Again from a cold start: the index is rebuilt from the disk. */
	unmount_img(f);
	mount_img(f);
	for (i = 0; i < NAMES; i++)
		check_lookup(f, m, i);
	for (d = 0; d < NDIRS; d++)
		check_readdir(f, m, d);
}

static void
make_dirs(struct fixture *f, struct model *m)
{
	struct fs_ext2_create c = { .kind = FS_EXT2_DIR, .mode = 0755 };
	struct rump_fattr a;
	char name[8];
	int d;

	for (d = 0; d < NDIRS; d++) {
		snprintf(name, sizeof(name), "d%d", d);
		c.dir = f->mi.root;
		c.name = name;
		c.name_len = 2;
		assert_int_equal(fs_ext2_create(f->fs, &c, &a), 0);
		m->dirs[d] = a.fh;
	}
}

static void
fsck_clean(struct fixture *f)
{
	assert_int_equal(sh("e2fsck -fn %s >%s/fsck.log 2>&1 || "
	                    "{ cat %s/fsck.log; exit 1; }", f->img, f->dir,
	                    f->dir), 0);
}

/* debugfs counts the same names as the model. */
static void
debugfs_count(struct fixture *f, struct model *m, int d)
{
	char cmd[512];
	unsigned n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "debugfs -R 'ls -p /d%d' %s 2>/dev/null",
	         d, f->img);
	p = popen(cmd, "r");
	assert_non_null(p);
	/* "/ino/mode/uid/gid/name/size/"; inode 0 is a record left empty
	 * at the start of a block (its stale name stays). */
	while (fgets(cmd, sizeof(cmd), p) != NULL)
		if (cmd[0] == '/' && strncmp(cmd, "/0/", 3) != 0 &&
		    strstr(cmd, "/n") != NULL)
			n++;
	pclose(p);
	assert_int_equal(n, m->count[d]);
}

static struct model *
new_model(void)
{
	struct model *m = calloc(1, sizeof(*m));
	unsigned i;

	assert_non_null(m);
	for (i = 0; i < NAMES; i++)
		m->where[i] = -1;
	m->rng = 0x9e3779b97f4a7c15ull;
	return m;
}

/* Random changes in two large linear directories. */
static void
test_random_linear(void **state)
{
	struct fixture *f = *state;
	struct model *m = new_model();
	int d;

	mount_img(f);
	make_dirs(f, m);
	run_model(f, m, STEPS);
	unmount_img(f);
	fsck_clean(f);
	for (d = 0; d < NDIRS; d++)
		debugfs_count(f, m, d);
	free(m);
}

/*
 * The same in directories e2fsck -D turned into htrees: the index stays
 * out of them, libext2fs keeps their trees, e2fsck stays clean.
 */
static void
test_random_htree(void **state)
{
	struct fixture *f = *state;
	struct model *m = new_model();
	int d;

	mount_img(f);
	make_dirs(f, m);
	run_model(f, m, STEPS / 4);
	unmount_img(f);
	assert_int_equal(sh("e2fsck -fyD %s >/dev/null 2>&1; "
	                    "debugfs -R 'htree_dump /d0' %s 2>/dev/null | "
	                    "grep -q 'Root node dump'", f->img, f->img), 0);
	mount_img(f);
	run_model(f, m, STEPS / 4);
	unmount_img(f);
	fsck_clean(f);
	for (d = 0; d < NDIRS; d++)
		debugfs_count(f, m, d);
	free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_random_linear, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_random_linear,
		                                setup_nocsum, teardown),
		cmocka_unit_test_setup_teardown(test_random_htree, setup,
		                                teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
