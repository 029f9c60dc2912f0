// SPDX-License-Identifier: MIT
//
// The harness's side of the lost-unsynced-writes fault: finding the shim
// (libdtx-unsynced.so, unsynced.c), the environment that puts a daemon
// under it, and rolling a dead daemon's unsynced writes back before the
// harness itself touches its files (the disk fault tears a WAL).

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness_int.h"
#include "journal.h"

dtx_err
hx_unsynced_shim_path(char *buf, size_t len)
{
	char self[PATH_MAX];
	const char *env = getenv("DTX_BIN_DIR");
	if (env != NULL) {
		snprintf(buf, len, "%s/libdtx-unsynced.so", env);
		if (access(buf, R_OK) == 0)
			return DTX_OK;
	}
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return DTX_ENOENT;
	self[n] = '\0';
	// Installed: beside dtx or in ../lib*; in a build tree:
	// <build>/harness/unsynced/, the program one to three folders below
	// <build>.
	for (int up = 0; up < 4; up++) {
		char *slash = strrchr(self, '/');
		if (slash == NULL || slash == self)
			break;
		*slash = '\0';
		const char *sub[] = { "", "/harness/unsynced", "/lib",
			"/lib/x86_64-linux-gnu" };
		for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
			snprintf(
			    buf, len, "%s%s/libdtx-unsynced.so", self, sub[i]);
			if (access(buf, R_OK) == 0)
				return DTX_OK;
		}
	}
	return DTX_ENOENT;
}

dtx_err
hx_unsynced_rollback(const char *data, size_t *undone)
{
	char j[PATH_MAX + 16];
	snprintf(j, sizeof(j), "%s.unsynced", data);
	int e = dtxu_rollback(j, undone);
	return e == 0 || e == ENOENT ? DTX_OK : dtx_from_errno(e);
}

dtx_err
hx__unsynced_env(
    hx_cluster *cl, unsigned kinds, const char *extra, char *err, size_t errlen)
{
	char so[PATH_MAX], pre[PATH_MAX + 16];
	const char *env[3] = { extra, NULL, NULL };
	if (!(kinds & HX_NEM_LOSE_UNSYNCED))
		return hx_cluster_set_env(cl, extra != NULL ? env : NULL);
	if (hx_unsynced_shim_path(so, sizeof(so)) != DTX_OK) {
		snprintf(err, errlen,
		    "--nemesis lose-unsynced: cannot find libdtx-unsynced.so "
		    "(set DTX_BIN_DIR to the folder that holds it)");
		return DTX_ENOENT;
	}
	// ip netns exec hands its environment on to the daemon, so the
	// preload reaches it in namespace runs too (the shim does nothing in
	// ip itself but roll back a journal early).
	snprintf(pre, sizeof(pre), "LD_PRELOAD=%s", so);
	env[extra != NULL ? 1 : 0] = pre;
	return hx_cluster_set_env(cl, env);
}
