// SPDX-License-Identifier: MIT
//
// Helpers shared by the unit tests: temporary directories, whole-file
// reads and writes, and running a function on several threads.

#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

#endif // TEST_UTIL_H
