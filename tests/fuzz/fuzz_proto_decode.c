// SPDX-License-Identifier: MIT
//
// libFuzzer target for the proto decoder: any input must be rejected with
// DTX_EPROTO or decode into a message that encodes again, decodes again to
// the same bytes, and frees without leaks.

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	proto_msg m, again;
	char why[256];
	dtx_err err = proto_decode(data, size, NULL, &m, why, sizeof(why));
	if (err != DTX_OK) {
		if (err != DTX_EPROTO || why[0] == '\0')
			abort();
		return 0;
	}
	uint8_t *a, *b;
	size_t alen, blen;
	if (proto_encode_buf(&m, &a, &alen) != DTX_OK)
		abort();
	if (proto_decode(a, alen, NULL, &again, why, sizeof(why)) != DTX_OK)
		abort();
	if (proto_encode_buf(&again, &b, &blen) != DTX_OK)
		abort();
	if (alen != blen || memcmp(a, b, alen) != 0)
		abort();
	dtx_free(a);
	dtx_free(b);
	proto_msg_free(&again);
	proto_msg_free(&m);
	return 0;
}
