// SPDX-License-Identifier: MIT
//
// A raw HTTP/1.1 client for the tests of the daemons' HTTP endpoints: one
// request on a fresh TCP connection to HOST:PORT, the status and body of
// the reply (read up to its Content-Length or the connection's end), with
// a 5 s timeout. Sends exactly the bytes given, so malformed requests can
// be tried too. Header-only (test code).

#ifndef DTX_TEST_HTTP_GET_H
#define DTX_TEST_HTTP_GET_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

// Sends req to addr ("A.B.C.D:PORT") and reads the reply. Returns the
// status code (0 when the server closed without one, -1 when it could not
// connect) and copies the body (NUL-terminated) into body.
static __attribute__((unused)) int
hg_raw(const char *addr, const char *req, char *body, size_t blen)
{
	char host[64];
	unsigned port = 0;
	if (body != NULL && blen > 0)
		body[0] = '\0';
	if (sscanf(addr, "%63[^:]:%u", host, &port) != 2)
		return -1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct sockaddr_in sa = { .sin_family = AF_INET,
		.sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, host, &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	size_t len = strlen(req);
	for (size_t off = 0; off < len;) {
		ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	size_t cap = 1 << 20, got = 0;
	char *buf = malloc(cap + 1);
	if (buf == NULL) {
		close(fd);
		return -1;
	}
	for (;;) {
		ssize_t n = recv(fd, buf + got, cap - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
		const char *hdr_end = strstr(buf, "\r\n\r\n");
		const char *cl = strstr(buf, "Content-Length:");
		if (hdr_end != NULL && cl != NULL && cl < hdr_end &&
		    got >= (size_t)(hdr_end + 4 - buf) +
		            strtoul(cl + 15, NULL, 10))
			break;
		if (got == cap)
			break;
	}
	buf[got] = '\0';
	close(fd);
	int status = 0;
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		status = 0;
	const char *b = strstr(buf, "\r\n\r\n");
	if (body != NULL && blen > 0 && b != NULL)
		snprintf(body, blen, "%s", b + 4);
	free(buf);
	return status;
}

// GET path on addr; as hg_raw.
static __attribute__((unused)) int
hg_get(const char *addr, const char *path, char *body, size_t blen)
{
	char req[512];
	snprintf(req, sizeof(req),
	    "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path,
	    addr);
	return hg_raw(addr, req, body, blen);
}

#endif // DTX_TEST_HTTP_GET_H
