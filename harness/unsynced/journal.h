// SPDX-License-Identifier: MIT
//
// The undo journal of the lost-unsynced-writes fault (unsynced.c): its
// record format and its rollback. libc only, so that both the LD_PRELOAD
// shim and the harness (which rolls a dead daemon's files back before it
// tears or inspects them) can link it.
//
// The journal is one append-only file per guarded data directory,
// <data>.unsynced beside it (never inside it: a daemon refuses foreign
// files in its data dir). Each record is a fixed header, then the path,
// then saved bytes, in host byte order (the journal never leaves the
// machine):
//
//     u32 magic "DTXU"   u8 type   u8[3] zero   u32 path_len
//     u64 seq   u64 off   u64 old_size   u64 nbytes
//     path_len bytes of absolute path (no NUL)   nbytes saved bytes
//
//   'W' before a write or truncation of path: the file was old_size bytes
//       long and held the saved bytes at [off, off + nbytes); undoing it
//       writes them back and truncates the file to old_size.
//   'S' path was fsynced: every 'W' of path with a smaller seq is void.
//   'A' everything was synced (sync, syncfs): every earlier 'W' is void.
//
// A record cut short at the tail (the process died while appending it)
// is ignored: the write it announced had not started.

#ifndef DTX_UNSYNCED_JOURNAL_H
#define DTX_UNSYNCED_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#define DTXU_MAGIC 0x55585444u // "DTXU" little-endian
#define DTXU_HDR 44

typedef struct dtxu_hdr {
	uint32_t magic;
	uint8_t type;
	uint32_t path_len;
	uint64_t seq, off, old_size, nbytes;
} dtxu_hdr;

// Encodes h into buf (DTXU_HDR bytes).
void dtxu_hdr_put(unsigned char *buf, const dtxu_hdr *h);

// Undoes every live 'W' record of the journal at path, newest first, then
// empties the journal. *undone (may be NULL) gets the number of records
// undone. Returns 0, or an errno value (ENOENT: no journal, which is not
// an error for callers that start a daemon). A file named by a record
// that no longer exists is skipped.
int dtxu_rollback(const char *path, size_t *undone);

#endif
