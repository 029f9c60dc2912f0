// SPDX-License-Identifier: MIT
//
// Error codes: their names, their descriptions, and the one place errno
// values are turned into them.

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

static const struct {
	const char *name;
	const char *text;
} errs[DTX_ERR_COUNT] = {
	[DTX_OK] = { "DTX_OK", "success" },
	[DTX_ENOMEM] = { "DTX_ENOMEM", "out of memory" },
	[DTX_EINVAL] = { "DTX_EINVAL", "invalid argument" },
	[DTX_EIO] = { "DTX_EIO", "I/O error" },
	[DTX_ECORRUPT] = { "DTX_ECORRUPT", "data is corrupt" },
	[DTX_ECONFLICT] = { "DTX_ECONFLICT",
	    "conflict with another transaction" },
	[DTX_ETIMEDOUT] = { "DTX_ETIMEDOUT", "timed out (outcome unknown)" },
	[DTX_EPROTO] = { "DTX_EPROTO", "protocol error" },
	[DTX_ECLOSED] = { "DTX_ECLOSED", "closed" },
	[DTX_ENOENT] = { "DTX_ENOENT", "not found" },
	[DTX_EEXIST] = { "DTX_EEXIST", "already exists" },
	[DTX_EFAILED] = { "DTX_EFAILED",
	    "store failed after an I/O error and refuses writes" },
	[DTX_EUNREACH] = { "DTX_EUNREACH", "peer unreachable" },
	[DTX_EBUSY] = { "DTX_EBUSY", "busy" },
	[DTX_ECLOCK] = { "DTX_ECLOCK",
	    "timestamp too far ahead of this node's clock" },
	[DTX_ERANGE] = { "DTX_ERANGE", "value out of range" },
	[DTX_EAGAIN] = { "DTX_EAGAIN", "try again" },
	[DTX_EPERM] = { "DTX_EPERM", "not permitted" },
	[DTX_ENOSPC] = { "DTX_ENOSPC", "no space left on device" },
	[DTX_ECANCELED] = { "DTX_ECANCELED", "canceled" },
	[DTX_EREFUSED] = { "DTX_EREFUSED", "refused by peer" },
};

const char *
dtx_strerror(dtx_err err)
{
	if ((unsigned)err >= DTX_ERR_COUNT)
		return "unknown error";
	return errs[err].text;
}

const char *
dtx_errname(dtx_err err)
{
	if ((unsigned)err >= DTX_ERR_COUNT)
		return "DTX_E?";
	return errs[err].name;
}

dtx_err
dtx_from_errno(int e)
{
	switch (e) {
	case 0:
		return DTX_OK;
	case ENOMEM:
		return DTX_ENOMEM;
	case EINVAL:
	case ENAMETOOLONG:
	case ENOTDIR:
	case EISDIR:
		return DTX_EINVAL;
	case ENOENT:
		return DTX_ENOENT;
	case EEXIST:
		return DTX_EEXIST;
	case ENOSPC:
	case EDQUOT:
		return DTX_ENOSPC;
	case EACCES:
	case EPERM:
	case EROFS:
		return DTX_EPERM;
	case ETIMEDOUT:
		return DTX_ETIMEDOUT;
	case EAGAIN:
	case EINTR:
		return DTX_EAGAIN;
	case EBUSY:
		return DTX_EBUSY;
	case ECONNREFUSED:
	case ECONNRESET:
	case EHOSTUNREACH:
	case ENETUNREACH:
		return DTX_EUNREACH;
	default:
		return DTX_EIO;
	}
}

_Noreturn void
dtx_panic(const char *file, int line, const char *what)
{
	fprintf(
	    stderr, "dtx: assertion failed at %s:%d: %s\n", file, line, what);
	abort();
}

void
dtx_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
