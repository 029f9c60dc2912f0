// SPDX-License-Identifier: MIT
//
// The daemons' HTTP listener on nng's own HTTP server: GET /metrics (the
// Prometheus page), /livez (200 while the process serves) and /readyz
// (200 when ready, else 503 with one line saying why). nng parses the
// requests, answers malformed ones with 400, unknown paths with 404 and
// other methods with 405; the handlers here only read the daemon's state.

#include <stdio.h>
#include <string.h>

#include <nng/nng.h>
// nng's HTTP header needs nng.h first.
#include <nng/supplemental/http/http.h>

#include "proto_int.h"

struct proto__http {
	proto__http_cfg cfg;
	nng_url *url;
	nng_http_server *srv;
	bool started;
	char addr[96];
};

// Answers aio with status and body (copied).
static void
respond(nng_aio *aio, uint16_t status, const char *ctype, const char *body,
    size_t len)
{
	nng_http_res *res = NULL;
	int rv = nng_http_res_alloc(&res);
	if (rv == 0)
		rv = nng_http_res_set_status(res, status);
	if (rv == 0)
		rv = nng_http_res_set_header(res, "Content-Type", ctype);
	if (rv == 0)
		rv = nng_http_res_copy_data(res, body, len);
	if (rv != 0) {
		if (res != NULL)
			nng_http_res_free(res);
		nng_aio_finish(aio, rv);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static proto__http *
handler_owner(nng_aio *aio)
{
	nng_http_handler *hd = nng_aio_get_input(aio, 1);
	return nng_http_handler_get_data(hd);
}

static void
on_metrics(nng_aio *aio)
{
	proto__http *h = handler_owner(aio);
	proto__buf b = { 0 };
	dtx_err rv = h->cfg.metrics(h->cfg.arg, &b);
	if (rv == DTX_OK && b.oom)
		rv = DTX_ENOMEM;
	if (rv != DTX_OK) {
		char msg[128];
		int n = snprintf(
		    msg, sizeof(msg), "metrics: %s\n", dtx_strerror(rv));
		respond(aio, 500, "text/plain; charset=utf-8", msg, (size_t)n);
	} else {
		respond(aio, 200, "text/plain; version=0.0.4; charset=utf-8",
		    b.p ? b.p : "", b.len);
	}
	proto__buf_fini(&b);
}

static void
on_livez(nng_aio *aio)
{
	respond(aio, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

static void
on_readyz(nng_aio *aio)
{
	proto__http *h = handler_owner(aio);
	char why[256] = "ready";
	bool ok = h->cfg.ready(h->cfg.arg, why, sizeof(why) - 1);
	size_t n = strlen(why);
	why[n++] = '\n';
	respond(aio, ok ? 200 : 503, "text/plain; charset=utf-8", why, n);
}

static dtx_err
add(proto__http *h, const char *path, void (*cb)(nng_aio *))
{
	nng_http_handler *hd = NULL;
	int rv = nng_http_handler_alloc(&hd, path, cb);
	if (rv == 0)
		rv = nng_http_handler_set_method(hd, "GET");
	if (rv == 0)
		rv = nng_http_handler_set_data(hd, h, NULL);
	if (rv == 0)
		rv = nng_http_server_add_handler(h->srv, hd);
	if (rv != 0 && hd != NULL)
		nng_http_handler_free(hd);
	// nng hands out one server per address: a second listener on a
	// bound address of this process finds its paths taken.
	return rv == 0 ? DTX_OK : proto_from_nng(rv);
}

// Writes the bound address to path (through a temporary file, so that
// a reader never sees half of it).
static dtx_err
write_addr(const char *path, const char *addr)
{
	char tmp[4096 + 8];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (f == NULL)
		return DTX_EIO;
	bool ok = fprintf(f, "%s\n", addr) > 0;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		remove(tmp);
		return DTX_EIO;
	}
	return DTX_OK;
}

// The bound address as HOST:PORT.
static void
bound_addr(proto__http *h)
{
	nng_sockaddr sa;
	memset(&sa, 0, sizeof(sa));
	if (nng_http_server_get_addr(h->srv, &sa) == 0 &&
	    sa.s_family == NNG_AF_INET) {
		const uint8_t *a = (const uint8_t *)&sa.s_in.sa_addr;
		const uint8_t *p = (const uint8_t *)&sa.s_in.sa_port;
		snprintf(h->addr, sizeof(h->addr), "%u.%u.%u.%u:%u", a[0], a[1],
		    a[2], a[3], (unsigned)(p[0] << 8 | p[1]));
		return;
	}
	if (sa.s_family == NNG_AF_INET6) {
		const uint8_t *p = (const uint8_t *)&sa.s_in6.sa_port;
		snprintf(h->addr, sizeof(h->addr), "[%s]:%u",
		    h->url->u_hostname, (unsigned)(p[0] << 8 | p[1]));
		return;
	}
	snprintf(h->addr, sizeof(h->addr), "%s:%s", h->url->u_hostname,
	    h->url->u_port);
}

dtx_err
proto__http_open(
    const proto__http_cfg *cfg, proto__http **out, char *err, size_t errlen)
{
	char url[512];
	dtx_err rv = DTX_EINVAL;
	int nr;

	proto__http *h = dtx_calloc(1, sizeof(*h));
	if (h == NULL)
		return DTX_ENOMEM;
	h->cfg = *cfg;
	snprintf(url, sizeof(url), "%s%s",
	    strncmp(cfg->addr, "http://", 7) == 0 ? "" : "http://", cfg->addr);
	if ((nr = nng_url_parse(&h->url, url)) != 0 ||
	    strcmp(h->url->u_scheme, "http") != 0 ||
	    (strcmp(h->url->u_path, "") != 0 &&
	        strcmp(h->url->u_path, "/") != 0)) {
		snprintf(err, errlen, "--http %s: not HOST:PORT", cfg->addr);
		goto fail;
	}
	if ((nr = nng_http_server_hold(&h->srv, h->url)) != 0) {
		snprintf(
		    err, errlen, "--http %s: %s", cfg->addr, nng_strerror(nr));
		rv = proto_from_nng(nr);
		goto fail;
	}
	if ((rv = add(h, "/metrics", on_metrics)) != DTX_OK ||
	    (rv = add(h, "/livez", on_livez)) != DTX_OK ||
	    (rv = add(h, "/readyz", on_readyz)) != DTX_OK) {
		snprintf(
		    err, errlen, "--http %s: %s", cfg->addr, dtx_strerror(rv));
		goto fail;
	}
	if ((nr = nng_http_server_start(h->srv)) != 0) {
		rv = nr == NNG_EADDRINUSE ? DTX_EEXIST : proto_from_nng(nr);
		snprintf(
		    err, errlen, "--http %s: %s", cfg->addr, nng_strerror(nr));
		goto fail;
	}
	h->started = true;
	bound_addr(h);
	if (cfg->addr_file != NULL &&
	    (rv = write_addr(cfg->addr_file, h->addr)) != DTX_OK) {
		snprintf(err, errlen, "cannot write %s", cfg->addr_file);
		goto fail;
	}
	*out = h;
	return DTX_OK;
fail:
	proto__http_close(h);
	return rv;
}

const char *
proto__http_addr(const proto__http *h)
{
	return h->addr;
}

void
proto__http_close(proto__http *h)
{
	if (h == NULL)
		return;
	if (h->srv != NULL) {
		if (h->started)
			nng_http_server_stop(h->srv);
		nng_http_server_release(h->srv);
	}
	if (h->url != NULL)
		nng_url_free(h->url);
	dtx_free(h);
}
