// SPDX-License-Identifier: MIT
//
// What both RPC ends share: messages into and out of nng message bodies,
// translating nng errors into dtx_err (once, where nng returns them) and
// the receive-size limit every socket gets.

#include <stdatomic.h>
#include <string.h>

#include "proto_int.h"

// The message is packed into a buffer first and appended to the nng
// message in one piece: msgpack writes a few bytes at a time, and nng 1.5
// grows a message body to exactly the size each append needs, zeroing
// and copying the whole body every time (a BATCH of a few dozen elements
// spent most of the coordinator's instructions there).
dtx_err
proto_encode(const proto_msg *m, nng_msg *out)
{
	if (m == NULL || out == NULL)
		return DTX_EINVAL;
	uint8_t stack[4096], *p;
	size_t len;
	dtx_err err = proto__encode_scratch(m, stack, sizeof(stack), &p, &len);
	if (err != DTX_OK)
		return err;
	if (nng_msg_append(out, p, len) != 0)
		err = DTX_ENOMEM;
	if (p != stack)
		dtx_free(p);
	return err;
}

dtx_err
proto_decode_nng(const nng_msg *msg, const proto_limits *lim, proto_msg *out,
    char *why, size_t why_len)
{
	nng_msg *mm = (nng_msg *)(uintptr_t)msg;
	return proto_decode(
	    nng_msg_body(mm), nng_msg_len(mm), lim, out, why, why_len);
}

dtx_err
proto_from_nng(int rv)
{
	switch (rv) {
	case 0:
		return DTX_OK;
	case NNG_ENOMEM:
		return DTX_ENOMEM;
	case NNG_ETIMEDOUT:
		return DTX_ETIMEDOUT;
	case NNG_ECLOSED:
		return DTX_ECLOSED;
	case NNG_ECANCELED:
		return DTX_ECANCELED;
	case NNG_ECONNREFUSED:
	case NNG_EUNREACHABLE:
	case NNG_ECONNSHUT:
	case NNG_ECONNRESET:
	case NNG_ECONNABORTED:
	case NNG_EPEERAUTH:
		return DTX_EUNREACH;
	case NNG_EADDRINUSE:
		return DTX_EEXIST;
	case NNG_EADDRINVAL:
	case NNG_EINVAL:
	case NNG_ENOTSUP:
	case NNG_ENOENT:
		return DTX_EINVAL;
	case NNG_EPERM:
		return DTX_EPERM;
	case NNG_EAGAIN:
		return DTX_EAGAIN;
	case NNG_EBUSY:
		return DTX_EBUSY;
	case NNG_EPROTO:
	case NNG_EMSGSIZE:
		return DTX_EPROTO;
	case NNG_ENOSPC:
		return DTX_ENOSPC;
	default:
		return DTX_EIO;
	}
}

dtx_err
proto__sock_limits(nng_socket sock, size_t max_msg)
{
	return proto_from_nng(nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ,
	    (max_msg == 0 ? PROTO_MAX_MSG_DEFAULT : max_msg) +
	        PROTO__NNG_SLACK));
}

bool
proto__url_tls(const char *url)
{
	return strncmp(url, "tls+tcp://", 10) == 0;
}

dtx_err
proto__url_check(const char *url, const proto_tls *tls)
{
	return proto__url_tls(url) == (tls != NULL) ? DTX_OK : DTX_EINVAL;
}

bool
proto__once_a_second(_Atomic uint64_t *last)
{
	uint64_t now = dtx_mono_ns(), prev = atomic_load(last);
	if (prev != 0 && now - prev < 1000000000ULL)
		return false;
	return atomic_compare_exchange_strong(last, &prev, now);
}
