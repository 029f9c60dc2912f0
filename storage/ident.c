// SPDX-License-Identifier: MIT
//
// The data directory's identity: the node and cluster a daemon's data
// directory belongs to, written on its first start and checked on every
// later one, so that a directory of another node or cluster stops the
// daemon instead of being served. The file format is in storage.h.

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage.h"

#define IDENT_LEN 32u
#define IDENT_TMP STOR_IDENT_NAME ".tmp"

uint64_t
stor_cluster_id(const dtx_topo *topo)
{
	// FNV-1a over (id, role) of every server node in id order.
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	for (uint32_t id = 0; id < DTX_TOPO_MAX; id++) {
		const dtx_node *n = dtx_topo_find(topo, id);
		if (n == NULL || n->role == DTX_ROLE_CLIENT)
			continue;
		uint8_t b[8];
		dtx_put_le32(b, id);
		dtx_put_le32(b + 4, (uint32_t)n->role);
		for (size_t i = 0; i < sizeof(b); i++) {
			h ^= b[i];
			h *= UINT64_C(0x100000001b3);
		}
	}
	return h;
}

// Writes the identity file of dir atomically and syncs it and dir.
static dtx_err
ident_write(int dirfd, uint32_t node, uint64_t cluster)
{
	uint8_t b[IDENT_LEN] = { 0 };
	memcpy(b, STOR_IDENT_MAGIC, 8);
	dtx_put_le32(b + 8, node);
	dtx_put_le64(b + 16, cluster);
	dtx_put_le32(b + 24, dtx_crc32c(0, b, 24));
	int fd = openat(
	    dirfd, IDENT_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return dtx_from_errno(errno);
	dtx_err err = DTX_OK;
	ssize_t w = write(fd, b, sizeof(b));
	if (w != (ssize_t)sizeof(b))
		err = w < 0 ? dtx_from_errno(errno) : DTX_EIO;
	else if (fsync(fd) != 0)
		err = dtx_from_errno(errno);
	close(fd);
	if (err == DTX_OK &&
	    renameat(dirfd, IDENT_TMP, dirfd, STOR_IDENT_NAME) != 0)
		err = dtx_from_errno(errno);
	if (err == DTX_OK && fsync(dirfd) != 0)
		err = dtx_from_errno(errno);
	if (err != DTX_OK)
		(void)unlinkat(dirfd, IDENT_TMP, 0);
	return err;
}

// Reads and checks the identity file (open as fd) of dir.
static dtx_err
ident_read(int fd, const char *dir, uint32_t *node, uint64_t *cluster)
{
	uint8_t b[IDENT_LEN + 1];
	ssize_t r = pread(fd, b, sizeof(b), 0);
	if (r < 0)
		return dtx_from_errno(errno);
	if (r != IDENT_LEN || memcmp(b, STOR_IDENT_MAGIC, 8) != 0 ||
	    dtx_get_le32(b + 24) != dtx_crc32c(0, b, 24) ||
	    dtx_get_le32(b + 12) != 0 || dtx_get_le32(b + 28) != 0) {
		DTX_LOG(DTX_LOG_ERROR, "DATAID",
		    "%s/%s: damaged identity file (%zd bytes)", dir,
		    STOR_IDENT_NAME, r);
		return DTX_ECORRUPT;
	}
	*node = dtx_get_le32(b + 8);
	*cluster = dtx_get_le64(b + 16);
	return DTX_OK;
}

dtx_err
stor_ident_check(const char *dir, uint32_t node, uint64_t cluster)
{
	if (dir == NULL || dir[0] == '\0')
		return DTX_EINVAL;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return dtx_from_errno(errno);
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return dtx_from_errno(errno);
	dtx_err err = DTX_OK;
	int fd = openat(dirfd, STOR_IDENT_NAME, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		err = dtx_from_errno(errno);
	} else if (fd < 0) {
		(void)unlinkat(dirfd, IDENT_TMP, 0);
		err = ident_write(dirfd, node, cluster);
		if (err == DTX_OK)
			DTX_LOG(DTX_LOG_INFO, "DATAID",
			    "%s/%s: written: node %" PRIu32
			    " of cluster %016" PRIx64,
			    dir, STOR_IDENT_NAME, node, cluster);
	} else {
		uint32_t n = 0;
		uint64_t c = 0;
		err = ident_read(fd, dir, &n, &c);
		close(fd);
		if (err == DTX_OK && (n != node || c != cluster)) {
			DTX_LOG(DTX_LOG_ERROR, "DATAID",
			    "%s/%s: this data directory belongs to node "
			    "%" PRIu32 " of cluster %016" PRIx64
			    ", not to node %" PRIu32 " of cluster %016" PRIx64
			    " (this daemon): refusing to start",
			    dir, STOR_IDENT_NAME, n, c, node, cluster);
			err = DTX_ECORRUPT;
		}
	}
	close(dirfd);
	return err;
}
