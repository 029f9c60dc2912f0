// SPDX-License-Identifier: MIT
//
// The lost-unsynced-writes shim (harness/unsynced/): a process run under
// libdtx-unsynced.so that writes to its guarded directory and is killed
// with SIGKILL loses every write it did not fsync, and keeps every one it
// did; a clean exit loses nothing; an O_TRUNC open is undone too; and the
// journal is rolled back both by the next process under the shim and by
// hx_unsynced_rollback. The child is this program itself, re-executed
// with "child DIR ACTION".

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "harness.h"
#include "test_util.h"

// ---------------------------------------------------------------- child

static void
put(int fd, const char *s)
{
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		_exit(3);
}

// Runs ACTION on DIR/f under the shim, tells the parent on stdout that it
// is done ('r'), then waits to be killed (or exits, for "exit").
static int
child(const char *dir, const char *action)
{
	char f[PATH_MAX];
	snprintf(f, sizeof(f), "%s/f", dir);
	if (strcmp(action, "noop") == 0)
		return 0;
	int fd = open(f,
	    O_CREAT | O_RDWR | (strcmp(action, "trunc") == 0 ? O_TRUNC : 0),
	    0644);
	if (fd < 0)
		return 2;
	if (strcmp(action, "write") == 0 || strcmp(action, "exit") == 0) {
		put(fd, "AAAA");
		if (pwrite(fd, "BB", 2, 2) != 2)
			return 3;
	} else if (strcmp(action, "sync") == 0) {
		put(fd, "AAAA");
		if (fdatasync(fd) != 0)
			return 4;
		// Overwrite inside, extend, then shrink a little: all lost.
		struct iovec iov[2] = { { "xy", 2 }, { "CCCCCC", 6 } };
		if (pwritev(fd, iov, 2, 1) != 8 || ftruncate(fd, 7) != 0)
			return 5;
	} else if (strcmp(action, "trunc") == 0) {
		put(fd, "ZZ");
	} else if (strcmp(action, "other") == 0) {
		// A file outside the guarded directory is not journalled.
		int o = open(getenv("OTHER_FILE"), O_CREAT | O_WRONLY, 0644);
		put(o, "OUT");
		close(o);
		put(fd, "Q");
	}
	// The process sees its own writes.
	char buf[16] = { 0 };
	if (pread(fd, buf, sizeof(buf) - 1, 0) < 0)
		return 6;
	put(1, buf[0] ? "r" : "e");
	if (strcmp(action, "exit") == 0)
		return 0;
	for (;;)
		pause();
}

// ---------------------------------------------------------------- parent

static char shim[PATH_MAX];
static char self[PATH_MAX];

// Runs the child with action under the shim guarding dir; with kill, waits
// for its 'r' and SIGKILLs it, else waits for it to exit.
static void
run_child(const char *dir, const char *action, bool kill_it)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("LD_PRELOAD", shim, 1);
		setenv("DTX_UNSYNCED_DIR", dir, 1);
		dup2(p[1], 1);
		close(p[0]);
		execl(self, self, "child", dir, action, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	char c = 0;
	ssize_t got = kill_it ? read(p[0], &c, 1) : 1;
	// Killed before any check, so that a failure leaves no child behind.
	if (kill_it)
		kill(pid, SIGKILL);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(got, 1);
	if (kill_it)
		assert_int_equal(c, 'r');
	if (!kill_it)
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(p[0]);
}

// The contents of dir/f ("" when empty), or "<none>".
static void
contents(const char *dir, char *buf, size_t len)
{
	char f[PATH_MAX];
	size_t n = 0;
	snprintf(f, sizeof(f), "%s/f", dir);
	unsigned char *d = st_read_file(f, &n);
	snprintf(buf, len, "%s", d ? (char *)d : "<none>");
	free(d);
}

static void
fresh(char *dir, size_t len)
{
	st_tmpdir(dir, len, "unsynced");
}

static void
test_unsynced_writes_are_lost(void **state)
{
	(void)state;
	char dir[PATH_MAX], got[64];
	fresh(dir, sizeof(dir));
	run_child(dir, "write", true);
	// Without a rollback the kernel still has the writes.
	contents(dir, got, sizeof(got));
	assert_string_equal(got, "AABB");
	// The next process under the shim rolls them back first.
	run_child(dir, "noop", false);
	contents(dir, got, sizeof(got));
	assert_string_equal(got, "");
}

static void
test_synced_writes_survive(void **state)
{
	(void)state;
	char dir[PATH_MAX], got[64];
	size_t undone = 0;
	fresh(dir, sizeof(dir));
	run_child(dir, "sync", true);
	contents(dir, got, sizeof(got));
	assert_string_equal(got, "AxyCCCC");
	// The harness's rollback does the same as a restart under the shim.
	assert_int_equal(hx_unsynced_rollback(dir, &undone), DTX_OK);
	assert_int_equal(undone, 2);
	contents(dir, got, sizeof(got));
	assert_string_equal(got, "AAAA");
	// A second rollback finds nothing to do.
	assert_int_equal(hx_unsynced_rollback(dir, &undone), DTX_OK);
	assert_int_equal(undone, 0);
}

static void
test_truncating_open_is_undone(void **state)
{
	(void)state;
	char dir[PATH_MAX], got[64];
	fresh(dir, sizeof(dir));
	run_child(dir, "sync", true);
	assert_int_equal(hx_unsynced_rollback(dir, NULL), DTX_OK);
	run_child(dir, "trunc", true);
	contents(dir, got, sizeof(got));
	assert_string_equal(got, "ZZ");
	assert_int_equal(hx_unsynced_rollback(dir, NULL), DTX_OK);
	contents(dir, got, sizeof(got));
	assert_string_equal(got, "AAAA");
}

static void
test_clean_exit_keeps_writes(void **state)
{
	(void)state;
	char dir[PATH_MAX], got[64];
	size_t undone = 9;
	fresh(dir, sizeof(dir));
	run_child(dir, "exit", false);
	assert_int_equal(hx_unsynced_rollback(dir, &undone), DTX_OK);
	assert_int_equal(undone, 0);
	contents(dir, got, sizeof(got));
	assert_string_equal(got, "AABB");
}

static void
test_other_files_untouched(void **state)
{
	(void)state;
	char dir[PATH_MAX], other[PATH_MAX + 16], got[64];
	fresh(dir, sizeof(dir));
	// A sibling of the guarded directory whose name it prefixes.
	snprintf(other, sizeof(other), "%s-out", dir);
	setenv("OTHER_FILE", other, 1);
	run_child(dir, "other", true);
	assert_int_equal(hx_unsynced_rollback(dir, NULL), DTX_OK);
	size_t n = 0;
	unsigned char *d = st_read_file(other, &n);
	assert_non_null(d);
	assert_string_equal((char *)d, "OUT");
	free(d);
	contents(dir, got, sizeof(got));
	assert_string_equal(got, "");
	unlink(other);
}

// The harness puts a real daemon under the shim: hx_cluster_set_env's
// LD_PRELOAD reaches the participant (the library is mapped in it) and
// the shim guards its --data (the journal beside it exists).
static void
test_participant_under_shim(void **state)
{
	(void)state;
	char dir[PATH_MAX], err[256], pre[PATH_MAX + 16], j[PATH_MAX + 64];
	hx_cluster *c;
	st_tmpdir(dir, sizeof(dir), "unsynced-cl");
	hx_cluster_opts o = { .dir = dir, .participants = 1 };
	assert_int_equal(hx_cluster_create(&o, &c, err, sizeof(err)), DTX_OK);
	snprintf(pre, sizeof(pre), "LD_PRELOAD=%s", shim);
	const char *env[] = { pre, NULL };
	assert_int_equal(hx_cluster_set_env(c, env), DTX_OK);
	assert_int_equal(hx_cluster_start(c, 1, NULL), DTX_OK);
	dtx_err ready = hx_cluster_wait_ready(c, 1, 15000);
	int pid = hx_cluster_pid(c, 1);
	snprintf(j, sizeof(j), "/proc/%d/maps", pid);
	// /proc files have no size: read until the end.
	char *maps = calloc(1, 1 << 20);
	int fd = open(j, O_RDONLY);
	for (size_t got = 0; fd >= 0 && got < (1 << 20) - 1;) {
		ssize_t r = read(fd, maps + got, (1 << 20) - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (fd >= 0)
		close(fd);
	snprintf(j, sizeof(j), "%s.unsynced", hx_cluster_data(c, 1));
	struct stat st;
	bool journal = stat(j, &st) == 0;
	hx_cluster_stop_all(c, 3000);
	hx_cluster_free(c);
	assert_int_equal(ready, DTX_OK);
	assert_non_null(maps);
	assert_non_null(strstr(maps, "libdtx-unsynced.so"));
	assert_true(journal);
	free(maps);
}

int
main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "child") == 0)
		return child(argv[2], argv[3]);
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0 || hx_unsynced_shim_path(shim, sizeof(shim)) != DTX_OK) {
		fprintf(stderr, "cannot find the shim\n");
		return 1;
	}
	self[n] = '\0';
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unsynced_writes_are_lost),
		cmocka_unit_test(test_synced_writes_survive),
		cmocka_unit_test(test_truncating_open_is_undone),
		cmocka_unit_test(test_clean_exit_keeps_writes),
		cmocka_unit_test(test_other_files_untouched),
		cmocka_unit_test(test_participant_under_shim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
