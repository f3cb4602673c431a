#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "confine.h"

/*
 * LeakSanitizer stops the world by ptrace-attaching to the process's
 * threads from a helper process that reads /proc: nothing a confined
 * process may do.  Sanitizer builds check for leaks at confinement
 * instead (of the set-up; the end-of-process check is then off), and keep
 * the same filter as every other build.
 */
#if defined(__SANITIZE_ADDRESS__)
#define CONFINE_FOR_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CONFINE_FOR_SANITIZER 1
#endif
#endif
#ifdef CONFINE_FOR_SANITIZER
#include <sanitizer/lsan_interface.h>
#define SANITIZER_NOTE " (sanitizer build: leaks checked at confinement)"
#else
#define SANITIZER_NOTE ""
#endif

/* Bits that tell a kind's extra needs. */
#define NEED_UNIX_CONNECT 0x1
#define NEED_BLOCK_IOCTL  0x2

static const struct {
	const char *name;
	unsigned needs;
} kinds[] = {
	[RUMP_CONFINE_NULL] = { "null", 0 },
	[RUMP_CONFINE_DISK] = { "disk", NEED_BLOCK_IOCTL },
	[RUMP_CONFINE_FS] = { "fs", NEED_UNIX_CONNECT },
	/* rumpnet sets its TAP devices (virtio-net header, offloads) and
	 * packet sockets up before confinement; after, it only reads and
	 * writes them, polls them and sleeps on the futexes of its buses:
	 * all in the base list. */
	[RUMP_CONFINE_NET] = { "net", 0 },
	[RUMP_CONFINE_NBD] = { "nbd", NEED_UNIX_CONNECT },
	[RUMP_CONFINE_FUSE] = { "fuse", NEED_UNIX_CONNECT },
};

/*
 * What every rump process's hypercalls and IPC use once set up: memory,
 * threads, time, signals to itself, I/O on descriptors it already holds,
 * io_uring, memfd and eventfd for rings, accepting and talking on sockets.
 * Opening files, making sockets, exec, fork, ptrace, mounts, namespaces
 * and the like are not here.  Calls with dangerous arguments (clone, mmap,
 * kill, ioctl, ...) are added below with argument checks instead.
 */
static const char *const base_calls[] = {
	/* memory (mmap/mprotect below) */
	"brk", "munmap", "mremap", "madvise", "msync", "mincore",
	"membarrier",
	/* threads (clone below) */
	"futex", "set_robust_list", "get_robust_list", "rseq",
	"set_tid_address", "exit", "exit_group", "sched_yield",
	"sched_getaffinity", "sched_getparam", "sched_getscheduler",
	"getpid", "gettid", "getppid", "getuid", "geteuid", "getgid",
	"getegid", "getresuid", "getresgid", "getgroups", "uname",
	"sysinfo",
	/* signals (kill/tgkill below) */
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait",
	"rt_sigsuspend", "rt_sigpending", "sigaltstack", "restart_syscall",
	"signalfd4",
	/* time */
	"clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep",
	"gettimeofday", "time", "timerfd_create", "timerfd_settime",
	"timerfd_gettime",
	/* descriptors it holds (newfstatat/statx below) */
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv",
	"pwritev", "preadv2", "pwritev2", "close", "close_range", "dup",
	"dup2", "dup3", "fcntl", "lseek", "fstat", "fstatfs", "fsync",
	"fdatasync", "sync_file_range", "fallocate", "ftruncate", "pipe2",
	"eventfd2", "memfd_create", "getrandom", "copy_file_range",
	"splice",
	/* waiting */
	"poll", "ppoll", "select", "pselect6", "epoll_create1", "epoll_ctl",
	"epoll_wait", "epoll_pwait", "epoll_pwait2",
	/* io_uring: block I/O */
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	/* sockets it holds: the control socket, the listening socket and
	 * the sessions accepted from it */
	"accept", "accept4", "recvmsg", "sendmsg", "recvfrom", "sendto",
	"recvmmsg", "sendmmsg", "shutdown", "getsockopt", "setsockopt",
	"getsockname", "getpeername",
};

/* Look-ups that glibc makes and whose failure it handles. */
static const unsigned long common_ioctls[] = {
	FIONREAD, FIONBIO, FIOCLEX, FIONCLEX,
};
static const unsigned long block_ioctls[] = {
	BLKGETSIZE64, BLKSSZGET, BLKPBSZGET, BLKDISCARD, BLKZEROOUT,
	BLKFLSBUF, BLKROGET, BLKIOMIN, BLKIOOPT,
};

const char *
rump_confine_kind_name(enum rump_confine_kind kind)
{
	if ((unsigned)kind >= sizeof(kinds) / sizeof(kinds[0]))
		return NULL;
	return kinds[kind].name;
}

/* 0 or a positive errno from a libseccomp return value. */
static int
scmp_error(int rc)
{
	return rc < 0 ? -rc : 0;
}

static int
allow_names(scmp_filter_ctx ctx, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]);
		int error;

		/* Not every call exists on every architecture. */
		if (nr == __NR_SCMP_ERROR || nr < 0)
			continue;
		if ((error = scmp_error(seccomp_rule_add(ctx, SCMP_ACT_ALLOW,
		                                         nr, 0))) != 0)
			return error;
	}
	return 0;
}

static int
allow_ioctls(scmp_filter_ctx ctx, const unsigned long *reqs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int error = scmp_error(seccomp_rule_add(ctx, SCMP_ACT_ALLOW,
		    SCMP_SYS(ioctl), 1,
		    SCMP_A1_32(SCMP_CMP_EQ, (uint32_t)reqs[i])));

		if (error)
			return error;
	}
	return 0;
}

/* The calls allowed only with some arguments. */
static int
allow_checked(scmp_filter_ctx ctx, unsigned needs)
{
	const pid_t self = getpid();
	int rc = 0;

	/* Threads, never new processes. */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
	    SCMP_A0_64(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	/* clone3's flags are in memory a filter cannot read: ENOSYS makes
	 * glibc fall back to clone, which is checked. */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3),
	                       0);
	/* No new executable memory: nothing to inject code into. */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
	    SCMP_A2_32(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
	    SCMP_A2_32(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* Signals to itself only (raise, abort, pthread_kill). */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
	    SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)self));
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
	    SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)self));
	/* fstat() is fstatat(fd, "", AT_EMPTY_PATH) in current glibc; a
	 * path look-up is not. */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 1,
	    SCMP_A3_32(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH));
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(statx), 1,
	    SCMP_A2_32(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH));
	/* Thread names, and nothing else prctl does. */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
	    SCMP_A0_32(SCMP_CMP_EQ, PR_SET_NAME));
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
	    SCMP_A0_32(SCMP_CMP_EQ, PR_GET_NAME));
	/* Reading limits (prlimit64 with no new limit), never raising. */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 2,
	    SCMP_A0_32(SCMP_CMP_EQ, 0), SCMP_A2_64(SCMP_CMP_EQ, 0));
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(getrlimit), 0);
	if (needs & NEED_UNIX_CONNECT) {
		/* Clients of other drivers reconnect by path after a
		 * restart; Unix sockets only, no network. */
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket),
		    1, SCMP_A0_32(SCMP_CMP_EQ, AF_UNIX));
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(connect),
		                       0);
	}
	/* libseccomp returns negative errnos; or-ing keeps "one failed". */
	return rc < 0 ? EINVAL : 0;
}

static int
load_filter(enum rump_confine_kind kind)
{
	unsigned needs = kinds[kind].needs;
	scmp_filter_ctx ctx;
	int error;

	ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	if (ctx == NULL)
		return ENOMEM;
	/* Every thread, or a thread made before confinement (the
	 * runtime's workers) would escape it. */
	if ((error = scmp_error(seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC,
	                                         1))) != 0 ||
	    (error = allow_names(ctx, base_calls, sizeof(base_calls) /
	                         sizeof(base_calls[0]))) != 0 ||
	    (error = allow_checked(ctx, needs)) != 0 ||
	    (error = allow_ioctls(ctx, common_ioctls, sizeof(common_ioctls) /
	                          sizeof(common_ioctls[0]))) != 0)
		goto out;
	if ((needs & NEED_BLOCK_IOCTL) &&
	    (error = allow_ioctls(ctx, block_ioctls, sizeof(block_ioctls) /
	                          sizeof(block_ioctls[0]))) != 0)
		goto out;
	error = scmp_error(seccomp_load(ctx));
out:
	seccomp_release(ctx);
	return error;
}

static int
switch_ids(uid_t uid, gid_t gid)
{
	uid_t r, e, s;

	/* Groups first: once the uid is not 0 they cannot be changed. */
	if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 ||
	    setresuid(uid, uid, uid) != 0)
		return errno;
	if (getresuid(&r, &e, &s) != 0)
		return errno;
	if (r != uid || e != uid || s != uid)
		return EPERM;
	/* A way back would make the switch worthless. */
	if (uid != 0 && setresuid(0, 0, 0) == 0)
		return EPERM;
	return 0;
}

static void *
cancel_me(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/*
 * glibc loads libgcc_s with dlopen() at the first pthread_cancel() or
 * pthread_exit() (they unwind the stack), and aborts the process if that
 * fails, as opening the file would once confined (libfuse cancels its
 * workers when it stops).  One cancelled thread now loads it.
 */
static int
load_unwinder(void)
{
	pthread_t t;
	int error;

	if ((error = pthread_create(&t, NULL, cancel_me, NULL)) != 0)
		return error;
	pthread_cancel(t);
	return pthread_join(t, NULL);
}

int
rump_confine(const struct rump_confine_opts *opts, char *desc, size_t cap)
{
	char head[48];
	int error, deathsig = 0;

	if (rump_confine_kind_name(opts->kind) == NULL)
		return EINVAL;
#ifdef CONFINE_FOR_SANITIZER
	__lsan_do_leak_check();
#endif
	/* A change of user clears the parent-death signal, and with it
	 * the promise that a driver does not outlive its supervisor. */
	if (prctl(PR_GET_PDEATHSIG, &deathsig, 0, 0, 0) != 0)
		return errno;
	if ((error = load_unwinder()) != 0)
		return error;
	if (opts->set_ids && (error = switch_ids(opts->uid, opts->gid)) != 0)
		return error;
	if (deathsig != 0 && prctl(PR_SET_PDEATHSIG, deathsig, 0, 0, 0) != 0)
		return errno;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return errno;
	/* Nobody of the same user may read its memory or attach to it. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return errno;
	if ((error = load_filter(opts->kind)) != 0)
		return error;
	if (opts->set_ids)
		snprintf(head, sizeof(head), "uid %u gid %u",
		         (unsigned)opts->uid, (unsigned)opts->gid);
	else
		snprintf(head, sizeof(head), "same user");
	snprintf(desc, cap, "%s, no new privileges, seccomp allow-list "
	         "\"%s\"%s", head, kinds[opts->kind].name, SANITIZER_NOTE);
	return 0;
}
