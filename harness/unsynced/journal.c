// SPDX-License-Identifier: MIT
//
// The undo journal's encoding and its rollback (format in journal.h).
// libc only: the LD_PRELOAD shim links it, so it must not call into the
// dtx libraries (their allocator hooks and logging are not set up in a
// preloaded constructor).

#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void
dtxu_hdr_put(unsigned char *buf, const dtxu_hdr *h)
{
	memset(buf, 0, DTXU_HDR);
	memcpy(buf, &h->magic, 4);
	buf[4] = h->type;
	memcpy(buf + 8, &h->path_len, 4);
	memcpy(buf + 12, &h->seq, 8);
	memcpy(buf + 20, &h->off, 8);
	memcpy(buf + 28, &h->old_size, 8);
	memcpy(buf + 36, &h->nbytes, 8);
}

static void
hdr_get(const unsigned char *buf, dtxu_hdr *h)
{
	memcpy(&h->magic, buf, 4);
	h->type = buf[4];
	memcpy(&h->path_len, buf + 8, 4);
	memcpy(&h->seq, buf + 12, 8);
	memcpy(&h->off, buf + 20, 8);
	memcpy(&h->old_size, buf + 28, 8);
	memcpy(&h->nbytes, buf + 36, 8);
}

// Reads the whole file at fd into *out (malloc'd); errno value or 0.
static int
slurp(int fd, unsigned char **out, size_t *len)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return errno;
	size_t n = (size_t)st.st_size, got = 0;
	unsigned char *p = malloc(n ? n : 1);
	if (p == NULL)
		return ENOMEM;
	while (got < n) {
		ssize_t r = pread(fd, p + got, n - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	*out = p;
	*len = got;
	return 0;
}

// Writes the saved bytes back and restores the size.
static void
undo_one(const dtxu_hdr *h, const char *path, const unsigned char *saved)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	size_t done = 0;
	while (done < h->nbytes) {
		ssize_t w = pwrite(
		    fd, saved + done, h->nbytes - done, (off_t)(h->off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	(void)ftruncate(fd, (off_t)h->old_size);
	close(fd);
}

// Whether a 'W' of path with sequence seq is made void by a later 'S' or
// 'A' among the records at offs[i+1..n).
static int
voided(const unsigned char *buf, const size_t *offs, size_t i, size_t n,
    const char *path, uint32_t plen, uint64_t seq)
{
	for (size_t j = i + 1; j < n; j++) {
		dtxu_hdr s;
		hdr_get(buf + offs[j], &s);
		if (s.type == 'A' && s.seq > seq)
			return 1;
		if (s.type == 'S' && s.seq > seq && s.path_len == plen &&
		    memcmp(buf + offs[j] + DTXU_HDR, path, plen) == 0)
			return 1;
	}
	return 0;
}

int
dtxu_rollback(const char *path, size_t *undone)
{
	unsigned char *buf = NULL;
	size_t len = 0, n = 0, cap = 0, *offs = NULL, count = 0;
	int fd = open(path, O_RDWR | O_CLOEXEC), rv;
	if (undone != NULL)
		*undone = 0;
	if (fd < 0)
		return errno;
	if ((rv = slurp(fd, &buf, &len)) != 0)
		goto fail;
	// Index the complete records.
	for (size_t at = 0; at + DTXU_HDR <= len;) {
		dtxu_hdr h;
		hdr_get(buf + at, &h);
		size_t whole = DTXU_HDR + (size_t)h.path_len + (size_t)h.nbytes;
		if (h.magic != DTXU_MAGIC || h.path_len >= 4096 ||
		    h.nbytes > len || whole > len - at)
			break;
		if (n == cap) {
			size_t *o =
			    realloc(offs, (cap ? cap * 2 : 64) * sizeof(*o));
			if (o == NULL) {
				rv = ENOMEM;
				goto fail;
			}
			offs = o;
			cap = cap ? cap * 2 : 64;
		}
		offs[n++] = at;
		at += whole;
	}
	// Newest first, so that each undo sees the state its write left.
	for (size_t i = n; i-- > 0;) {
		dtxu_hdr h;
		char p[4097];
		hdr_get(buf + offs[i], &h);
		if (h.type != 'W')
			continue;
		memcpy(p, buf + offs[i] + DTXU_HDR, h.path_len);
		p[h.path_len] = '\0';
		if (voided(buf, offs, i, n, p, h.path_len, h.seq))
			continue;
		undo_one(&h, p, buf + offs[i] + DTXU_HDR + h.path_len);
		count++;
	}
	rv = ftruncate(fd, 0) == 0 ? 0 : errno;
	if (undone != NULL)
		*undone = count;
fail:
	free(offs);
	free(buf);
	close(fd);
	return rv;
}
