// SPDX-License-Identifier: MIT
//
// Allocation wrappers. Library code allocates through these so that the
// out-of-memory tests can fail the n-th allocation and check that every
// path returns DTX_ENOMEM without leaking.

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

// Allocations left before the hook starts failing; negative: disarmed.
static _Atomic long fail_after = -1;
static atomic_bool failed_once;

static bool
should_fail(void)
{
	long n = atomic_load_explicit(&fail_after, memory_order_relaxed);
	if (n < 0)
		return false;
	if (n == 0) {
		atomic_store(&failed_once, true);
		return true;
	}
	// Another thread may race us; a miss by one is harmless for tests,
	// which arm the hook from a single thread.
	atomic_fetch_sub(&fail_after, 1);
	return false;
}

void
dtx_alloc_fail_after(long n)
{
	atomic_store(&failed_once, false);
	atomic_store(&fail_after, n);
}

bool
dtx_alloc_failed(void)
{
	return atomic_load(&failed_once);
}

void *
dtx_alloc(size_t n)
{
	if (should_fail())
		return NULL;
	return malloc(n == 0 ? 1 : n);
}

void *
dtx_calloc(size_t count, size_t size)
{
	if (should_fail())
		return NULL;
	return calloc(count == 0 ? 1 : count, size == 0 ? 1 : size);
}

void *
dtx_realloc(void *p, size_t n)
{
	if (should_fail())
		return NULL;
	return realloc(p, n == 0 ? 1 : n);
}

void
dtx_free(void *p)
{
	free(p);
}

char *
dtx_strdup(const char *s)
{
	return s == NULL ? NULL : dtx_memdup(s, strlen(s) + 1);
}

void *
dtx_memdup(const void *p, size_t n)
{
	void *q = dtx_alloc(n);
	if (q != NULL && n > 0)
		memcpy(q, p, n);
	return q;
}

dtx_err
dtx_grow(void *arrp, size_t n, size_t *cap, size_t first, size_t size)
{
	void *p;
	if (n < *cap)
		return DTX_OK;
	size_t nc = *cap ? *cap * 2 : first;
	if (nc <= n)
		nc = n + 1;
	if (nc > SIZE_MAX / size)
		return DTX_ENOMEM;
	memcpy(&p, arrp, sizeof(p));
	p = dtx_realloc(p, nc * size);
	if (p == NULL)
		return DTX_ENOMEM;
	memcpy(arrp, &p, sizeof(p));
	*cap = nc;
	return DTX_OK;
}
