// SPDX-License-Identifier: MIT
//
// What both RPC ends share: translating nng errors into dtx_err (once, where
// nng returns them) and the receive-size limit every socket gets.

#include "proto_int.h"

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
	    max_msg == 0 ? PROTO_MAX_MSG_DEFAULT : max_msg));
}
