// SPDX-License-Identifier: MIT
//
// Helpers shared by the unit tests: temporary directories (and a test
// file's setup and teardown around one), whole-file reads and writes,
// capturing stderr, hiding PATH, counting substrings, and running a
// function on several threads.

#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

// Makes a fresh temporary directory under $TMPDIR (or /tmp) into buf.
static inline void
st_tmpdir(char *buf, size_t n, const char *tag)
{
	const char *base = getenv("TMPDIR");
	snprintf(
	    buf, n, "%s/dtx-%s-XXXXXX", base && *base ? base : "/tmp", tag);
	if (mkdtemp(buf) == NULL) {
		perror("mkdtemp");
		abort();
	}
}

// A test file's setup: a fresh temporary directory into dir (st_tmpdir)
// and, when path is not NULL, dir/rel into path. Returns 0 (cmocka's
// success).
static inline int
st_setup_tmp(char *dir, size_t dn, const char *tag, char *path, size_t pn,
    const char *rel)
{
	st_tmpdir(dir, dn, tag);
	if (path != NULL)
		snprintf(path, pn, "%s/%s", dir, rel);
	return 0;
}

// A test file's teardown: removes dir (st_setup_tmp's) and all in it.
// Returns 0.
static inline int
st_teardown_tmp(const char *dir)
{
	(void)dtx_rmtree(dir);
	return 0;
}

// Reads a whole file into a malloc'd buffer, with a NUL after its *len
// bytes so that text can be searched as a string. NULL when it cannot.
static inline unsigned char *
st_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *p = malloc(n > 0 ? (size_t)n + 1 : 1);
	if (p != NULL && n > 0 && fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(f);
	if (p != NULL)
		p[n > 0 ? n : 0] = '\0';
	*len = (size_t)n;
	return p;
}

static inline void
st_write_file(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (f == NULL || (len > 0 && fwrite(p, 1, len, f) != len)) {
		perror(path);
		abort();
	}
	fclose(f);
}

// Runs fn on n threads, the i-th with argument (char *)args + i * size,
// and joins them all. True when every thread returned NULL.
static inline bool
st_run_threads(int n, void *(*fn)(void *), void *args, size_t size)
{
	pthread_t *th = calloc((size_t)n, sizeof(*th));
	bool ok = th != NULL;
	for (int i = 0; ok && i < n; i++)
		pthread_create(
		    &th[i], NULL, fn, (char *)args + (size_t)i * size);
	for (int i = 0; ok && i < n; i++) {
		void *r;
		pthread_join(th[i], &r);
		if (r != NULL)
			ok = false;
	}
	free(th);
	return ok;
}

// Points stderr (fd 2) at a fresh file path until st_stderr_back; returns
// the saved descriptor, or -1 (and changes nothing) when path cannot be
// opened.
static inline int
st_stderr_to(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	int saved = dup(STDERR_FILENO);
	if (saved < 0 || dup2(fd, STDERR_FILENO) < 0) {
		if (saved >= 0)
			close(saved);
		close(fd);
		return -1;
	}
	close(fd);
	return saved;
}

// Restores stderr from saved (st_stderr_to's result) and returns what was
// written to path (free with free()), or NULL when it cannot be read.
static inline char *
st_stderr_back(int saved, const char *path)
{
	fflush(stderr);
	if (saved >= 0) {
		dup2(saved, STDERR_FILENO);
		close(saved);
	}
	size_t len;
	return (char *)st_read_file(path, &len);
}

// Points PATH at dir alone, so that no helper program (gnuplot, say) is
// found, until st_path_back. Returns the old PATH (malloc'd) for it.
static inline char *
st_path_to(const char *dir)
{
	char *old = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	setenv("PATH", dir, 1);
	return old;
}

// Restores PATH from old (st_path_to's result) and frees old.
static inline void
st_path_back(char *old)
{
	setenv("PATH", old, 1);
	free(old);
}

// How many times what occurs in text (occurrences may overlap).
static inline int
st_count(const char *text, const char *what)
{
	int n = 0;
	for (const char *p = text; (p = strstr(p, what)) != NULL; p++)
		n++;
	return n;
}

#endif // TEST_UTIL_H
