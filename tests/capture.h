// SPDX-License-Identifier: MIT
//
// Running a command's entry point (cli_main, cli_cmd_results, ...) in the
// test process with its output captured: stdout, and stderr too when
// asked, go to a file for the call and are read back as a string; or the
// built dtx as a process of its own, as a user runs it. Also the argv of
// `PROG ARGS...` from a NULL-terminated list. Header-only (test code), for
// the unit and the integration tests.

#ifndef DTX_TEST_CAPTURE_H
#define DTX_TEST_CAPTURE_H

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unit/test_util.h"

extern char **environ;

// Fills argv with prog and then args (NULL-terminated), at most max - 1
// entries in all, and a NULL after them. Returns argc. argv borrows the
// strings.
static __attribute__((unused)) int
tc_argv(char **argv, int max, const char *prog, const char *const *args)
{
	int argc = 0;
	argv[argc++] = (char *)prog;
	while (args[argc - 1] != NULL && argc < max - 1) {
		argv[argc] = (char *)args[argc - 1];
		argc++;
	}
	argv[argc] = NULL;
	return argc;
}

// The whole of file path (malloc'd, NUL-terminated), NULL when it cannot
// be read.
static __attribute__((unused)) char *
tc_slurp(const char *path)
{
	size_t len;
	return (char *)st_read_file(path, &len);
}

// Runs fn(argc, argv) with stdout (and stderr when err_too) written to
// path, then restores them. Returns fn's result; *out gets what was
// written (malloc'd, NUL-terminated; NULL when path cannot be read back).
static __attribute__((unused)) int
tc_capture(const char *path, bool err_too, int (*fn)(int, char **), int argc,
    char **argv, char **out)
{
	fflush(stdout);
	fflush(stderr);
	int s1 = dup(1), s2 = err_too ? dup(2) : -1;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	dup2(fd, 1);
	if (err_too)
		dup2(fd, 2);
	close(fd);
	int rc = fn(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(s1, 1);
	close(s1);
	if (err_too) {
		dup2(s2, 2);
		close(s2);
	}
	*out = tc_slurp(path);
	return rc;
}

// How long tc_dtx lets a command run before it kills it.
#define TC_DTX_LIMIT_S 300

// Runs `dtx ARGS...` (args NULL-terminated) as a process of its own, the
// dtx of the build tree ($DTX_BUILD_ROOT/cli/dtx), with stdout and stderr
// written to dir/cli-out.txt, and prints the command line, its exit code
// and its output. Returns the exit code: 128 + N when signal N ended it,
// -1 when it could not start or ran past TC_DTX_LIMIT_S (it is killed).
// *out (may be NULL) gets the output (malloc'd).
static __attribute__((unused)) int
tc_dtx(const char *dir, char **out, const char *const *args)
{
	char *argv[48], bin[512], path[512];
	const char *root = getenv("DTX_BUILD_ROOT");
	snprintf(bin, sizeof(bin), "%s/cli/dtx", root != NULL ? root : ".");
	int argc = tc_argv(argv, 48, bin, args);
	snprintf(path, sizeof(path), "%s/cli-out.txt", dir);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(
	    &fa, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	pid_t pid;
	int rc = -1;
	fflush(stdout);
	if (posix_spawn(&pid, bin, &fa, NULL, argv, environ) == 0) {
		int st = 0;
		pid_t w = 0;
		for (int i = 0; i < TC_DTX_LIMIT_S * 100 &&
		     (w = waitpid(pid, &st, WNOHANG)) == 0;
		     i++)
			nanosleep(&(struct timespec) { 0, 10000000 }, NULL);
		if (w == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
		} else if (w == pid) {
			rc = WIFEXITED(st)    ? WEXITSTATUS(st)
			    : WIFSIGNALED(st) ? 128 + WTERMSIG(st)
			                      : -1;
		}
	}
	posix_spawn_file_actions_destroy(&fa);
	char *text = tc_slurp(path);
	printf("$ dtx");
	for (int i = 1; i < argc; i++)
		printf(" %s", argv[i]);
	printf("  -> %d\n%s", rc, text != NULL ? text : "(no output)\n");
	if (out != NULL)
		*out = text;
	else
		free(text);
	return rc;
}

#endif // DTX_TEST_CAPTURE_H
