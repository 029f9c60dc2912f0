// SPDX-License-Identifier: MIT
//
// libdtx-unsynced.so: an LD_PRELOAD interposer that makes a SIGKILL lose
// every write a daemon made to its data directory since the last fsync of
// that file, as Jepsen's lazyfs does. The kernel keeps the page cache of a
// killed process, so without it a WAL that acknowledges before fdatasync
// survives every kill the harness can deliver.
//
// Why LD_PRELOAD and not FUSE (lazyfs) or a device-mapper target: it needs
// no privilege, no kernel module and no /dev/fuse, so it works the same in
// a plain local run, inside `ip netns exec` (which passes the environment
// on to the daemon) and in a container; and it sees exactly one process's
// writes, so each daemon loses only its own.
//
// Mechanism: an undo journal rather than a write-back overlay. Before a
// write, pwrite, writev, pwritev, ftruncate or O_TRUNC open of a regular
// file under the guarded directory, the bytes it will overwrite and the
// file's size are appended to the journal (journal.h); the write then goes
// to the file, so reads, fstat, lseek and mmap see the process's own
// writes with no emulation. fsync, fdatasync and sync_file_range of a file
// append a record that voids the file's earlier entries (sync and syncfs
// void all), and the journal is emptied whenever nothing is pending. A
// clean exit empties it too (a clean exit loses nothing on a real
// system); a SIGKILL leaves it, and the next process started under the
// shim for that directory (or the harness, hx_unsynced_rollback) undoes
// every live entry, newest first, before anything reads the files. The
// file's state is then its state at its last fsync.
//
// Modelled: file contents and sizes. Not modelled: directory entries
// (creat, rename and unlink take effect at once, as if the directory had
// been fsynced: the WAL and the clock bound fsync their directory right
// after each of them anyway); writes through stdio buffers or mmap
// (storage uses neither: it writes with write/pwrite and reads with
// read/pread); truncate(2) by path. Files opened O_SYNC/O_DSYNC are not
// special-cased (none are).
//
// Environment: DTX_UNSYNCED_DIR names the guarded directory (default: the
// --data argument of the process's command line); DTX_UNSYNCED_JOURNAL the
// journal (default: <dir>.unsynced). Without a directory the shim does
// nothing.

// Both the plain and the *64 names are defined here, so the headers must
// not rename the plain ones to the *64 ones (meson builds with 64-bit
// off_t everywhere).
#undef _FILE_OFFSET_BITS
#define _LARGEFILE64_SOURCE 1

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "journal.h"

// The shim's exported names are the libc functions it replaces; their
// prototypes come from the system headers. Functions of its own are static.

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev64)(int, const struct iovec *, int, off64_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off64_t);
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_sync_file_range)(int, off64_t, off64_t, unsigned int);
static int (*real_syncfs)(int);
static void (*real_sync)(void);

// The pending state of one file: its newest journalled write and the
// sequence number its last completed fsync covers.
typedef struct pending {
	char path[PATH_MAX];
	uint64_t last_w, synced;
} pending;

#define MAX_PENDING 256

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char guard[PATH_MAX]; // "" when the shim is off
static size_t guard_len;
static int jfd = -1;
static uint64_t seq;
static pending pend[MAX_PENDING];
static size_t npend;

#define RESOLVE(name) real_##name = dlsym(RTLD_NEXT, #name)

static void
resolve(void)
{
	RESOLVE(write);
	RESOLVE(pwrite);
	RESOLVE(pwrite64);
	RESOLVE(writev);
	RESOLVE(pwritev);
	RESOLVE(pwritev64);
	RESOLVE(ftruncate);
	RESOLVE(ftruncate64);
	RESOLVE(open);
	RESOLVE(open64);
	RESOLVE(openat);
	RESOLVE(openat64);
	RESOLVE(fsync);
	RESOLVE(fdatasync);
	RESOLVE(sync_file_range);
	RESOLVE(syncfs);
	RESOLVE(sync);
}

// The value after --data (or --data=) in /proc/self/cmdline, into out.
static bool
data_from_cmdline(char *out, size_t len)
{
	char buf[8192];
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	for (char *p = buf; p < buf + n; p += strlen(p) + 1) {
		if (strncmp(p, "--data=", 7) == 0) {
			snprintf(out, len, "%s", p + 7);
			return true;
		}
		if (strcmp(p, "--data") == 0 && p + strlen(p) + 1 < buf + n) {
			snprintf(out, len, "%s", p + strlen(p) + 1);
			return true;
		}
	}
	return false;
}

__attribute__((constructor)) static void
shim_init(void)
{
	char dir[PATH_MAX], cwd[PATH_MAX], jpath[PATH_MAX + 16];
	resolve();
	const char *d = getenv("DTX_UNSYNCED_DIR");
	if (d != NULL && *d != '\0')
		snprintf(dir, sizeof(dir), "%s", d);
	else if (!data_from_cmdline(dir, sizeof(dir)))
		return;
	// The directory may not exist yet: make the path absolute by hand
	// (the fd paths compared with it are the kernel's, absolute).
	if (dir[0] != '/' && getcwd(cwd, sizeof(cwd)) != NULL)
		snprintf(guard, sizeof(guard), "%s/%s", cwd, dir);
	else
		snprintf(guard, sizeof(guard), "%s", dir);
	guard_len = strlen(guard);
	while (guard_len > 1 && guard[guard_len - 1] == '/')
		guard[--guard_len] = '\0';
	const char *j = getenv("DTX_UNSYNCED_JOURNAL");
	if (j != NULL && *j != '\0')
		snprintf(jpath, sizeof(jpath), "%s", j);
	else
		snprintf(jpath, sizeof(jpath), "%s.unsynced", guard);
	// A predecessor killed with unsynced writes left its journal.
	size_t undone = 0;
	if (dtxu_rollback(jpath, &undone) == 0 && undone > 0)
		fprintf(stderr,
		    "dtx-unsynced: rolled back %zu unsynced write(s) in %s\n",
		    undone, guard);
	jfd = real_open(jpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (jfd < 0)
		guard[0] = '\0', guard_len = 0;
}

__attribute__((destructor)) static void
shim_fini(void)
{
	// A clean exit keeps the page cache: nothing is lost.
	if (jfd >= 0)
		(void)real_ftruncate(jfd, 0);
}

// Whether fd is a regular file under the guarded directory; its path into
// path.
static bool
guarded(int fd, char *path, size_t len)
{
	char link[64];
	struct stat st;
	if (guard_len == 0 || fd < 0)
		return false;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, len - 1);
	if (n <= 0)
		return false;
	path[n] = '\0';
	return (size_t)n > guard_len && strncmp(path, guard, guard_len) == 0 &&
	    path[guard_len] == '/' && fstat(fd, &st) == 0 &&
	    S_ISREG(st.st_mode);
}

static pending *
find_pending(const char *path, bool add)
{
	for (size_t i = 0; i < npend; i++)
		if (strcmp(pend[i].path, path) == 0)
			return &pend[i];
	if (!add)
		return NULL;
	if (npend == MAX_PENDING) {
		// Forget files whose writes are all synced to make room.
		size_t k = 0;
		for (size_t i = 0; i < npend; i++)
			if (pend[i].last_w > pend[i].synced)
				pend[k++] = pend[i];
		npend = k;
		if (npend == MAX_PENDING)
			return NULL;
	}
	pending *p = &pend[npend++];
	snprintf(p->path, sizeof(p->path), "%s", path);
	p->last_w = p->synced = 0;
	return p;
}

static void
journal_put(const dtxu_hdr *h, const char *path, const unsigned char *bytes)
{
	unsigned char hb[DTXU_HDR];
	size_t plen = path ? strlen(path) : 0;
	size_t n = DTXU_HDR + plen + h->nbytes;
	unsigned char *rec = malloc(n);
	if (rec == NULL)
		return;
	dtxu_hdr_put(hb, h);
	memcpy(rec, hb, DTXU_HDR);
	memcpy(rec + DTXU_HDR, path, plen);
	if (h->nbytes > 0)
		memcpy(rec + DTXU_HDR + plen, bytes, h->nbytes);
	// One write, so a record is whole or cut short at the tail only.
	for (size_t done = 0; done < n;) {
		ssize_t w = real_write(jfd, rec + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	free(rec);
}

// Journals the bytes [off, off + len) of path (open as fd) and its size
// before they change. Called with mu held.
static void
before_change(int fd, const char *path, uint64_t off, uint64_t len)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return;
	uint64_t size = (uint64_t)st.st_size;
	uint64_t keep = off >= size ? 0 : (off + len > size ? size - off : len);
	unsigned char *old = keep ? malloc(keep) : NULL;
	if (keep && old == NULL)
		return;
	int rfd = real_open(path, O_RDONLY | O_CLOEXEC);
	uint64_t got = 0;
	while (rfd >= 0 && got < keep) {
		ssize_t r =
		    pread(rfd, old + got, keep - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (uint64_t)r;
	}
	if (rfd >= 0)
		close(rfd);
	pending *p = find_pending(path, true);
	dtxu_hdr h = { .magic = DTXU_MAGIC,
		.type = 'W',
		.path_len = (uint32_t)strlen(path),
		.seq = ++seq,
		.off = off,
		.old_size = size,
		.nbytes = got };
	journal_put(&h, path, old);
	if (p != NULL)
		p->last_w = h.seq;
	free(old);
}

// Before a write of len bytes at off (-1: the fd's position, or its end
// with O_APPEND). Takes mu when fd is guarded; *locked says so.
static void
pre_write(int fd, off64_t off, uint64_t len, bool *locked)
{
	char path[PATH_MAX];
	*locked = false;
	if (!guarded(fd, path, sizeof(path)))
		return;
	pthread_mutex_lock(&mu);
	*locked = true;
	if (off < 0) {
		struct stat st;
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0 && (fl & O_APPEND) && fstat(fd, &st) == 0)
			off = st.st_size;
		else
			off = lseek(fd, 0, SEEK_CUR);
	}
	if (off >= 0)
		before_change(fd, path, (uint64_t)off, len);
}

static void
post(bool locked)
{
	if (locked)
		pthread_mutex_unlock(&mu);
}

// After a successful sync of fd (all: of everything) started when the
// sequence was at from: voids the entries it covers; empties the journal
// when nothing is left pending.
static void
synced(const char *path, uint64_t from, bool all)
{
	pending *p = all ? NULL : find_pending(path, false);
	if (!all && (p == NULL || p->last_w <= p->synced))
		return;
	if (p != NULL && from > p->synced)
		p->synced = from;
	bool any = false;
	for (size_t i = 0; i < npend; i++) {
		if (all && pend[i].synced < from)
			pend[i].synced = from;
		any = any || pend[i].last_w > pend[i].synced;
	}
	if (!any) {
		(void)real_ftruncate(jfd, 0);
		return;
	}
	dtxu_hdr h = { .magic = DTXU_MAGIC,
		.type = all ? 'A' : 'S',
		.path_len = all ? 0 : (uint32_t)strlen(path),
		.seq = from + 1 };
	journal_put(&h, all ? NULL : path, NULL);
}

// Runs a sync call: the entries up to now are covered once it succeeds.
#define SYNC_BODY(fd, call, all)                                               \
	do {                                                                   \
		char path_[PATH_MAX];                                          \
		bool g_ =                                                      \
		    (all) ? guard_len > 0 : guarded(fd, path_, sizeof(path_)); \
		uint64_t from_ = 0;                                            \
		if (g_) {                                                      \
			pthread_mutex_lock(&mu);                               \
			from_ = seq;                                           \
			pthread_mutex_unlock(&mu);                             \
		}                                                              \
		int rv_ = (call);                                              \
		if (g_ && rv_ == 0) {                                          \
			int e_ = errno;                                        \
			pthread_mutex_lock(&mu);                               \
			synced(path_, from_, all);                             \
			pthread_mutex_unlock(&mu);                             \
			errno = e_;                                            \
		}                                                              \
		return rv_;                                                    \
	} while (0)

ssize_t
write(int fd, const void *buf, size_t n)
{
	bool l;
	pre_write(fd, -1, n, &l);
	ssize_t r = real_write(fd, buf, n);
	post(l);
	return r;
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	bool l;
	pre_write(fd, off, n, &l);
	ssize_t r = real_pwrite(fd, buf, n, off);
	post(l);
	return r;
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	bool l;
	pre_write(fd, off, n, &l);
	ssize_t r = real_pwrite64(fd, buf, n, off);
	post(l);
	return r;
}

static uint64_t
iov_len(const struct iovec *iov, int cnt)
{
	uint64_t n = 0;
	for (int i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	return n;
}

ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
	bool l;
	pre_write(fd, -1, iov_len(iov, cnt), &l);
	ssize_t r = real_writev(fd, iov, cnt);
	post(l);
	return r;
}

ssize_t
pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	bool l;
	pre_write(fd, off, iov_len(iov, cnt), &l);
	ssize_t r = real_pwritev(fd, iov, cnt, off);
	post(l);
	return r;
}

ssize_t
pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	bool l;
	pre_write(fd, off, iov_len(iov, cnt), &l);
	ssize_t r = real_pwritev64(fd, iov, cnt, off);
	post(l);
	return r;
}

// A truncation to len: the bytes beyond len (if it shrinks) and the size.
static void
pre_truncate(int fd, off64_t len, bool *locked)
{
	char path[PATH_MAX];
	struct stat st;
	*locked = false;
	if (!guarded(fd, path, sizeof(path)) || fstat(fd, &st) != 0)
		return;
	pthread_mutex_lock(&mu);
	*locked = true;
	uint64_t size = (uint64_t)st.st_size, at = (uint64_t)len;
	before_change(
	    fd, path, at < size ? at : size, at < size ? size - at : 0);
}

int
ftruncate(int fd, off_t len)
{
	bool l;
	pre_truncate(fd, len, &l);
	int r = real_ftruncate(fd, len);
	post(l);
	return r;
}

int
ftruncate64(int fd, off64_t len)
{
	bool l;
	pre_truncate(fd, len, &l);
	int r = real_ftruncate64(fd, len);
	post(l);
	return r;
}

// O_TRUNC is applied after the open, through ftruncate, so that the
// contents it drops are journalled first.
static int
after_open(int fd, int flags)
{
	if (fd < 0 || !(flags & O_TRUNC) || (flags & O_ACCMODE) == O_RDONLY)
		return fd;
	if (ftruncate(fd, 0) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int
strip(int flags)
{
	return guard_len > 0 ? flags & ~O_TRUNC : flags;
}

#define OPEN_MODE(flags, mode)                                                 \
	do {                                                                   \
		if ((flags) & (O_CREAT | O_TMPFILE)) {                         \
			va_list ap_;                                           \
			va_start(ap_, flags);                                  \
			mode = va_arg(ap_, mode_t);                            \
			va_end(ap_);                                           \
		}                                                              \
	} while (0)

int
open(const char *p, int flags, ...)
{
	mode_t mode = 0;
	OPEN_MODE(flags, mode);
	int trunc = guard_len > 0 ? flags : 0;
	return after_open(real_open(p, strip(flags), mode), trunc);
}

int
open64(const char *p, int flags, ...)
{
	mode_t mode = 0;
	OPEN_MODE(flags, mode);
	int trunc = guard_len > 0 ? flags : 0;
	return after_open(real_open64(p, strip(flags), mode), trunc);
}

int
openat(int dfd, const char *p, int flags, ...)
{
	mode_t mode = 0;
	OPEN_MODE(flags, mode);
	int trunc = guard_len > 0 ? flags : 0;
	return after_open(real_openat(dfd, p, strip(flags), mode), trunc);
}

int
openat64(int dfd, const char *p, int flags, ...)
{
	mode_t mode = 0;
	OPEN_MODE(flags, mode);
	int trunc = guard_len > 0 ? flags : 0;
	return after_open(real_openat64(dfd, p, strip(flags), mode), trunc);
}

int
fsync(int fd)
{
	SYNC_BODY(fd, real_fsync(fd), false);
}

int
fdatasync(int fd)
{
	SYNC_BODY(fd, real_fdatasync(fd), false);
}

int
sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags)
{
	// Treated as a sync of the whole file: storage does not use it, and
	// a range sync that is followed by fdatasync loses nothing here.
	SYNC_BODY(fd, real_sync_file_range(fd, off, n, flags), false);
}

int
syncfs(int fd)
{
	SYNC_BODY(fd, real_syncfs(fd), true);
}

void
sync(void)
{
	uint64_t from = 0;
	if (guard_len > 0) {
		pthread_mutex_lock(&mu);
		from = seq;
		pthread_mutex_unlock(&mu);
	}
	real_sync();
	if (guard_len > 0) {
		pthread_mutex_lock(&mu);
		synced(NULL, from, true);
		pthread_mutex_unlock(&mu);
	}
}
