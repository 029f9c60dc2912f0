// SPDX-License-Identifier: MIT
//
// Running a command's entry point (cli_main, cli_cmd_results, ...) in the
// test process with its output captured: stdout, and stderr too when
// asked, go to a file for the call and are read back as a string. Also
// the argv of `PROG ARGS...` from a NULL-terminated list. Header-only
// (test code), for the unit and the integration tests.

#ifndef DTX_TEST_CAPTURE_H
#define DTX_TEST_CAPTURE_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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
	*out = NULL;
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return rc;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	*out = malloc(n > 0 ? (size_t)n + 1 : 1);
	size_t got = n > 0 ? fread(*out, 1, (size_t)n, f) : 0;
	(*out)[got] = '\0';
	fclose(f);
	return rc;
}

#endif // DTX_TEST_CAPTURE_H
