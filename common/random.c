// SPDX-License-Identifier: MIT
//
// Random bytes nobody can predict, from the kernel's CSPRNG through
// getrandom(2): for transaction ids, nonces and anything else a peer must
// not be able to guess (the seeded dtx_rand_next is for reproducible runs).

#include <errno.h>
#include <sys/random.h>

#include "common.h"

dtx_err
dtx_random_bytes(void *buf, size_t n)
{
	if (buf == NULL && n > 0)
		return DTX_EINVAL;
	unsigned char *p = buf;
	while (n > 0) {
		// Without flags getrandom blocks only until the pool is first
		// initialised after boot; a large request may come back short
		// (or be cut by a signal), so loop until it is filled.
		ssize_t r = getrandom(p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return dtx_from_errno(errno);
		if (r == 0)
			return DTX_EIO;
		p += r;
		n -= (size_t)r;
	}
	return DTX_OK;
}

dtx_err
dtx_random_u64(uint64_t *out)
{
	if (out == NULL)
		return DTX_EINVAL;
	unsigned char b[8];
	dtx_err err = dtx_random_bytes(b, sizeof(b));
	if (err != DTX_OK)
		return err;
	*out = dtx_get_le64(b);
	return DTX_OK;
}
