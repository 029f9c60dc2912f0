// SPDX-License-Identifier: MIT
//
// Helpers shared by the storage tests: temporary directories, file copies
// and the deterministic record payloads the WAL tests write and check.

#ifndef TEST_STORAGE_UTIL_H
#define TEST_STORAGE_UTIL_H

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage.h"

static int
st_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

// Removes dir and everything below it.
static inline void
st_rmrf(const char *dir)
{
	nftw(dir, st_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

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

// Reads a whole file into a malloc'd buffer.
static inline unsigned char *
st_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *p = malloc(n > 0 ? (size_t)n : 1);
	if (p != NULL && n > 0 && fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(f);
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

// The payload of test record lsn: its length and bytes follow from lsn.
static inline size_t
st_payload(uint64_t lsn, unsigned char *out)
{
	size_t n = 1 + (size_t)((lsn * 7) % 23);
	for (size_t i = 0; i < n; i++)
		out[i] = (unsigned char)(lsn * 31 + i * 13);
	return n;
}

static inline uint8_t
st_type(uint64_t lsn)
{
	return (uint8_t)(1 + lsn % 5);
}

// True when (type, payload) is exactly what test record lsn was.
static inline bool
st_payload_ok(uint64_t lsn, uint8_t type, const void *p, size_t len)
{
	unsigned char want[64];
	size_t n = st_payload(lsn, want);
	return type == st_type(lsn) && len == n && memcmp(p, want, n) == 0;
}

#endif // TEST_STORAGE_UTIL_H
