// SPDX-License-Identifier: MIT
//
// The RPC client: a REQ socket dialed in the background, shared by any
// number of calling threads, each call on its own nng context. It keeps
// the outcome of a failed call honest: "not delivered" (DTX_EUNREACH) only
// when the request never left, "unknown" (DTX_ETIMEDOUT) once it might
// have.

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proto_int.h"

#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

// The in-flight lists of slots and of asynchronous calls are doubly
// linked through next and prev from a head pointer (NULL when empty).
// Macros because the two element types differ; the caller holds c->mu.
#define LIST_PUSH(head, x)                                                     \
	do {                                                                   \
		(x)->prev = NULL;                                              \
		(x)->next = (head);                                            \
		if ((head) != NULL)                                            \
			(head)->prev = (x);                                    \
		(head) = (x);                                                  \
	} while (0)
#define LIST_UNLINK(head, x)                                                   \
	do {                                                                   \
		if ((x)->prev != NULL)                                         \
			(x)->prev->next = (x)->next;                           \
		else                                                           \
			(head) = (x)->next;                                    \
		if ((x)->next != NULL)                                         \
			(x)->next->prev = (x)->prev;                           \
	} while (0)

// One context and aio, reused across calls. While a call runs, its slot
// sits on the client's in-flight list so that a lost connection can abort
// it at once instead of letting nng resend it on the next connection.
typedef struct slot {
	nng_ctx ctx;
	nng_aio *aio;
	struct slot *next, *prev;
} slot;

struct proto_client {
	proto_client_cfg cfg;
	proto_limits lim;
	char *url;
	nng_socket sock;
	bool sock_open;
	_Atomic uint64_t next_id;
	_Atomic int pipes; // 1 while the connection (pipe_id) is up, else 0
	pthread_mutex_t mu;
	slot *idle; // singly linked through next
	slot *busy; // doubly linked
	struct acall *abusy; // asynchronous calls in progress, doubly linked
	struct acall *aspare; // ended calls kept for reuse, through next
	uint32_t naspare;
	uint64_t rng; // guarded by mu

	// The hello (TLS only; see below). mu guards all but ready.
	atomic_bool ready; // the connection is bound: requests may go
	pthread_cond_t rcv; // broadcast when ready turns true
	bool closing;
	uint64_t gen; // connections seen so far
	uint64_t hgen; // gen the running hello is for
	uint64_t hid; // id of the hello's request in flight
	int hstate; // hello_state
	nng_ctx hctx;
	nng_aio *haio, *hsleep;
	_Atomic uint64_t hello_logged_ns;
	// Redialling (see redial_if_stuck); guarded by mu.
	uint64_t lost_ns; // when the last connection went (0: one is up)
	nng_pipe pipe; // the connection (see on_pipe)
	uint32_t pipe_id; // its nng id, 0 while there is none
	uint64_t unbound_ns; // since when it has no finished hello (0: none)
	uint64_t redial_ns; // when redial_if_stuck last looked
	int redials; // dialers started besides the first
	// When a call first timed out since the connection last brought
	// anything back (0: none did); see close_if_silent.
	_Atomic uint64_t quiet_ns;
	_Atomic uint64_t silent_logged_ns;
	struct proto_client *abandoned_next; // see proto_client_close
};

static void abort_async(proto_client *c);

// An aio timeout of ms: never one of nng's negative specials (a uint32_t
// over INT32_MAX cast as it is would read as NNG_DURATION_INFINITE or
// _DEFAULT, and the operation would wait for ever).
static nng_duration
aio_ms(uint32_t ms)
{
	return ms > (uint32_t)INT32_MAX ? (nng_duration)INT32_MAX
	                                : (nng_duration)ms;
}

// ---------------------------------------------------------------- hello
//
// Over TLS every new connection says hello (HELLO, CHALLENGE, AUTH, ACK:
// rpc.h) before any request goes out: calls wait until `ready`, as they
// wait for a connection. The hello runs on its own context and aio, one
// at a time; a connection that comes or goes meanwhile (gen changes)
// makes it start over. A client dials one URL, so it has at most one
// connection and the hello's messages go out on it.

typedef enum hello_state {
	H_IDLE,
	H_HELLO_SENT,
	H_HELLO_WAIT,
	H_AUTH_SENT,
	H_AUTH_WAIT,
	H_BACKOFF,
} hello_state;

static void hello_start(proto_client *c);

// Whether a hello message is on its way to or from the server. Called
// with c->mu held.
static bool
hello_in_flight(const proto_client *c)
{
	return c->hstate == H_HELLO_SENT || c->hstate == H_HELLO_WAIT ||
	    c->hstate == H_AUTH_SENT || c->hstate == H_AUTH_WAIT;
}

// The hello failed or its connection changed: start over after a pause
// while there is a connection, else rest until the next one. Called with
// c->mu held.
static void
hello_retry(proto_client *c, const char *why)
{
	if (why != NULL && proto__once_a_second(&c->hello_logged_ns))
		DTX_LOG(DTX_LOG_WARN, "HELLO_FAILED", "to %s: %s", c->url, why);
	if (c->closing || atomic_load(&c->pipes) == 0) {
		c->hstate = H_IDLE;
		pthread_cond_broadcast(&c->rcv); // settle
		return;
	}
	c->hstate = H_BACKOFF;
	nng_sleep_aio(why != NULL ? 100 : 0, c->hsleep);
}

// Sends m (consumed) on the hello's context.
static void
hello_send(proto_client *c, proto_msg *m, hello_state next)
{
	nng_msg *msg = NULL;
	m->hdr.version = PROTO_VERSION;
	m->hdr.from = c->cfg.node_id;
	m->hdr.id = c->hid = atomic_fetch_add(&c->next_id, 1);
	if (c->cfg.stamp != NULL)
		c->cfg.stamp(c->cfg.arg, &m->hdr);
	dtx_err err =
	    nng_msg_alloc(&msg, 0) == 0 ? proto_encode(m, msg) : DTX_ENOMEM;
	proto_msg_free(m);
	if (err != DTX_OK) {
		nng_msg_free(msg);
		hello_retry(c, "cannot encode the hello");
		return;
	}
	c->hstate = next;
	nng_aio_set_msg(c->haio, msg);
	nng_aio_set_timeout(c->haio, aio_ms(c->cfg.timeout_ms));
	nng_ctx_send(c->hctx, c->haio);
}

// Starts a hello for the current connection. Called with c->mu held.
static void
hello_start(proto_client *c)
{
	proto_msg m;
	c->hgen = c->gen;
	proto_msg_init(&m, PROTO_HELLO);
	hello_send(c, &m, H_HELLO_SENT);
}

// A reply of the hello arrived (consumed): the next step, or a retry.
static void
hello_reply(proto_client *c, nng_msg *reply)
{
	char why[256];
	proto_msg m;
	atomic_store(&c->quiet_ns, 0);
	dtx_err err = proto_decode_nng(reply, &c->lim, &m, why, sizeof(why));
	nng_msg_free(reply);
	if (err != DTX_OK) {
		hello_retry(c, why);
		return;
	}
	if (m.hdr.id != c->hid || m.hdr.type == PROTO_ERROR) {
		snprintf(why, sizeof(why), "refused: %s",
		    m.hdr.type == PROTO_ERROR && m.u.error.reason
		        ? m.u.error.reason
		        : "reply to another request");
		proto_msg_free(&m);
		hello_retry(c, why);
		return;
	}
	if (c->hstate == H_HELLO_WAIT && m.hdr.type == PROTO_CHALLENGE &&
	    (!c->cfg.check_server || m.hdr.from == c->cfg.server_node)) {
		proto_msg auth;
		err = proto_tls_hello(
		    c->cfg.tls, m.hdr.from, m.u.auth.nonce.p, &auth);
		proto_msg_free(&m);
		if (err != DTX_OK) {
			hello_retry(c, "cannot sign the hello");
			return;
		}
		hello_send(c, &auth, H_AUTH_SENT);
		return;
	}
	bool acked = c->hstate == H_AUTH_WAIT && m.hdr.type == PROTO_ACK;
	uint32_t from = m.hdr.from;
	proto_msg_free(&m);
	if (!acked) {
		snprintf(why, sizeof(why),
		    "unexpected answer from node %u (expected node %u)", from,
		    c->cfg.server_node);
		hello_retry(c, why);
		return;
	}
	if (c->hgen != c->gen) {
		hello_retry(c, NULL); // another connection since: again
		return;
	}
	c->hstate = H_IDLE;
	c->unbound_ns = 0;
	atomic_store(&c->ready, true);
	pthread_cond_broadcast(&c->rcv);
}

static void
hello_cb(void *arg)
{
	proto_client *c = arg;
	int rv = nng_aio_result(c->haio);
	pthread_mutex_lock(&c->mu);
	if (c->closing) {
		bool sent =
		    c->hstate == H_HELLO_SENT || c->hstate == H_AUTH_SENT;
		bool got =
		    c->hstate == H_HELLO_WAIT || c->hstate == H_AUTH_WAIT;
		if (sent && rv == 0) {
			// Its answer is on the way: it is let in before the
			// socket closes (see settle).
			c->hstate = c->hstate == H_HELLO_SENT ? H_HELLO_WAIT
			                                      : H_AUTH_WAIT;
			nng_aio_set_timeout(c->haio, aio_ms(c->cfg.timeout_ms));
			nng_ctx_recv(c->hctx, c->haio);
			pthread_mutex_unlock(&c->mu);
			return;
		}
		if ((rv != 0 && sent) || (rv == 0 && got))
			nng_msg_free(nng_aio_get_msg(c->haio));
		nng_aio_set_msg(c->haio, NULL);
		c->hstate = H_IDLE;
		pthread_cond_broadcast(&c->rcv);
		pthread_mutex_unlock(&c->mu);
		return;
	}
	switch (c->hstate) {
	case H_HELLO_SENT:
	case H_AUTH_SENT:
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(c->haio));
			nng_aio_set_msg(c->haio, NULL);
			hello_retry(c,
			    rv == NNG_ETIMEDOUT ? "send timed out"
			                        : nng_strerror(rv));
			break;
		}
		c->hstate =
		    c->hstate == H_HELLO_SENT ? H_HELLO_WAIT : H_AUTH_WAIT;
		nng_aio_set_timeout(c->haio, aio_ms(c->cfg.timeout_ms));
		nng_ctx_recv(c->hctx, c->haio);
		break;
	case H_HELLO_WAIT:
	case H_AUTH_WAIT: {
		nng_msg *reply = rv == 0 ? nng_aio_get_msg(c->haio) : NULL;
		nng_aio_set_msg(c->haio, NULL);
		if (reply == NULL)
			hello_retry(
			    c, rv == NNG_ECONNRESET ? NULL : "no answer");
		else
			hello_reply(c, reply);
		break;
	}
	default:
		break;
	}
	pthread_mutex_unlock(&c->mu);
}

// The pause after a failed hello is over.
static void
hello_wake(void *arg)
{
	proto_client *c = arg;
	pthread_mutex_lock(&c->mu);
	if (c->hstate == H_BACKOFF) {
		if (c->closing || atomic_load(&c->pipes) == 0)
			c->hstate = H_IDLE;
		else
			hello_start(c);
	}
	pthread_mutex_unlock(&c->mu);
}

// Waits until the connection is bound (or there is no TLS), at most ms.
// False when it is not by then.
static bool
wait_ready(proto_client *c, uint32_t ms)
{
	if (c->cfg.tls == NULL || atomic_load(&c->ready))
		return true;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)ms * 1000000ULL;
	ts.tv_sec += (time_t)(ns / 1000000000ULL);
	ts.tv_nsec = (long)(ns % 1000000000ULL);
	pthread_mutex_lock(&c->mu);
	while (!atomic_load(&c->ready) && !c->closing)
		if (pthread_cond_timedwait(&c->rcv, &c->mu, &ts) != 0)
			break;
	bool ok = atomic_load(&c->ready);
	pthread_mutex_unlock(&c->mu);
	return ok;
}

// nng 1.5.2 can stop tearing connections down in a process (README,
// "Known limit"); a dialer whose connection went then never dials again,
// and every call to that server fails for good. A client with TLS whose
// calls find no connection for REDIAL_AFTER_MS, while the server accepts
// TCP connections, starts one more dialer (REDIAL_MAX in all). A second
// live connection is refused as it comes (on_pipe, ADD_PRE): there is one
// hello per client. A connection whose hello has not finished after
// REDIAL_AFTER_MS (its messages lost with a server that went away
// unnoticed, or a server that never answers) is closed, so that the
// dialer connects again and a new hello runs.
#define REDIAL_AFTER_MS 5000u
#define REDIAL_MAX 4

// Starts a dialer of c's socket to its URL.
static int
dial(proto_client *c)
{
	nng_dialer dl;
	int rv = nng_dialer_create(&dl, c->sock, c->url);
	if (rv == 0 && c->cfg.tls != NULL)
		rv = nng_dialer_set_ptr(
		    dl, NNG_OPT_TLS_CONFIG, proto__tls_nng(c->cfg.tls, false));
	if (rv == 0)
		rv = nng_dialer_start(dl, NNG_FLAG_NONBLOCK);
	return rv;
}

// Whether a TCP connection to the host and port of url (tcp:// or
// tls+tcp://) opens within timeout_ms; it is closed at once.
static bool
tcp_accepts(const char *url, int timeout_ms)
{
	const char *p = strstr(url, "://");
	if (p == NULL || strstr(url, "tcp://") == NULL)
		return false;
	p += 3;
	const char *colon = strrchr(p, ':');
	char host[256], port[16];
	size_t hl = colon != NULL ? (size_t)(colon - p) : 0;
	if (colon == NULL || hl == 0 || hl >= sizeof(host) ||
	    strlen(colon + 1) >= sizeof(port))
		return false;
	if (hl >= 2 && p[0] == '[' && p[hl - 1] == ']') {
		p++;
		hl -= 2;
	}
	memcpy(host, p, hl);
	host[hl] = '\0';
	snprintf(port, sizeof(port), "%s", colon + 1);
	struct addrinfo hints, *ai = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL)
		return false;
	bool ok = false;
	int fd = socket(
	    ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			ok = true;
		} else if (errno == EINPROGRESS) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			int err = 0;
			socklen_t el = sizeof(err);
			ok = poll(&pfd, 1, timeout_ms) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) ==
			        0 &&
			    err == 0;
		}
		close(fd);
	}
	freeaddrinfo(ai);
	return ok;
}

// A connection up for REDIAL_AFTER_MS without a finished hello is
// closed, so that the dialer connects again. True when it was. Called
// with c->mu held; returns with it released when true.
static bool
close_if_unbound(proto_client *c, uint64_t now, uint64_t wait)
{
	uint64_t unbound = c->unbound_ns;
	if (c->cfg.tls == NULL || c->closing || atomic_load(&c->pipes) == 0 ||
	    atomic_load(&c->ready) || unbound == 0 || now - unbound < wait)
		return false;
	nng_pipe p = c->pipe;
	c->unbound_ns = now; // looked at again after another wait
	pthread_mutex_unlock(&c->mu);
	DTX_LOG(DTX_LOG_WARN, "HELLO_STUCK",
	    "connection to %s has no finished hello after %.1f s: closed, "
	    "to connect again",
	    c->url, (double)(now - unbound) / 1e9);
	nng_pipe_close(p);
	return true;
}

// Called when a call found no bound connection: closes a connection
// whose hello is stuck (close_if_unbound), or starts one more dialer once
// the connection has been gone REDIAL_AFTER_MS though the server accepts
// connections (it is up: a working dialer would have reconnected within
// NNG_OPT_RECONNMAXT). Looks at most once per REDIAL_AFTER_MS.
static void
redial_if_stuck(proto_client *c)
{
	uint64_t now = dtx_mono_ns(), wait = REDIAL_AFTER_MS * 1000000ULL;
	pthread_mutex_lock(&c->mu);
	if (close_if_unbound(c, now, wait))
		return;
	uint64_t lost = c->lost_ns;
	bool due = c->cfg.tls != NULL && !c->closing &&
	    atomic_load(&c->pipes) == 0 && lost != 0 && now - lost >= wait &&
	    now - c->redial_ns >= wait && c->redials < REDIAL_MAX;
	if (due)
		c->redial_ns = now;
	pthread_mutex_unlock(&c->mu);
	if (!due || !tcp_accepts(c->url, 300))
		return;
	int rv = dial(c);
	pthread_mutex_lock(&c->mu);
	if (rv == 0)
		c->redials++;
	pthread_mutex_unlock(&c->mu);
	DTX_LOGF(DTX_LOG_WARN, "REDIAL",
	    DTX_FIELDS(DTX_LF_S("why", rv == 0 ? NULL : nng_strerror(rv))),
	    "no connection to %s for %.1f s though it accepts connections "
	    "(nng did not dial again): %s",
	    c->url, (double)(now - lost) / 1e9,
	    rv == 0 ? "a new dialer started" : "no new dialer");
}

// A connection can look alive to nng and carry nothing: a server killed
// while a partition dropped its FIN leaves the client's TCP connection
// retransmitting into the void, with a backoff that reaches tens of
// seconds after the partition healed, while the server, restarted, would
// take a new connection at once. So when calls have been timing out for
// SILENT_MS on a connection that brought nothing back meanwhile (no
// reply to any call, no hello step), the client closes it and nng dials
// again (CONN_SILENT at warn level, at most once a second). Calls in
// flight on it end as they would have: their outcome is unknown.
#define SILENT_MS 5000u

// A call timed out.
static void
close_if_silent(proto_client *c)
{
	uint64_t now = dtx_mono_ns();
	uint64_t quiet = 0;
	if (atomic_compare_exchange_strong(&c->quiet_ns, &quiet, now) ||
	    now - quiet < SILENT_MS * 1000000ULL)
		return; // the first timeout since a reply, or not yet
	pthread_mutex_lock(&c->mu);
	bool due = !c->closing && atomic_load(&c->pipes) > 0 &&
	    atomic_compare_exchange_strong(&c->quiet_ns, &quiet, 0);
	nng_pipe p = c->pipe;
	pthread_mutex_unlock(&c->mu);
	if (!due)
		return;
	if (proto__once_a_second(&c->silent_logged_ns))
		DTX_LOG(DTX_LOG_WARN, "CONN_SILENT",
		    "calls to %s timed out for %.1f s and nothing came back: "
		    "connection closed, to connect again",
		    c->url, (double)(now - quiet) / 1e9);
	nng_pipe_close(p);
}

static void
on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	proto_client *c = arg;
	uint32_t id = (uint32_t)nng_pipe_id(p);
	if (ev == NNG_PIPE_EV_ADD_PRE) {
		// One connection at a time, decided here, before nng lets a
		// request onto it: a second dialer (REDIAL) that connects as
		// the first reconnects would otherwise give the socket two,
		// and nng would send a hello's HELLO on one and its AUTH on
		// the other, refused for ever ("no HELLO before AUTH").
		pthread_mutex_lock(&c->mu);
		bool extra = c->pipe_id != 0;
		if (!extra) {
			c->pipe_id = id;
			c->pipe = p;
		}
		pthread_mutex_unlock(&c->mu);
		if (extra)
			nng_pipe_close(p);
		return;
	}
	if (ev == NNG_PIPE_EV_ADD_POST) {
		pthread_mutex_lock(&c->mu);
		if (id != c->pipe_id) {
			pthread_mutex_unlock(&c->mu);
			return;
		}
		atomic_store(&c->pipes, 1);
		atomic_store(&c->quiet_ns, 0);
		if (c->cfg.tls == NULL) {
			pthread_mutex_unlock(&c->mu);
			return;
		}
		c->lost_ns = 0;
		c->unbound_ns = dtx_mono_ns();
		c->gen++;
		atomic_store(&c->ready, false);
		if (c->hstate == H_IDLE && !c->closing)
			hello_start(c);
		pthread_mutex_unlock(&c->mu);
		return;
	}
	if (ev != NNG_PIPE_EV_REM_POST)
		return;
	pthread_mutex_lock(&c->mu);
	if (id != c->pipe_id) {
		// A connection refused as it came: nothing went on it.
		pthread_mutex_unlock(&c->mu);
		return;
	}
	c->pipe_id = 0;
	atomic_store(&c->pipes, 0);
	// nng would move the requests of this connection to the next one;
	// abort them instead: their outcome is unknown and the caller
	// decides whether resending is safe. The next connection needs a
	// hello of its own.
	atomic_store(&c->ready, false);
	c->gen++;
	c->lost_ns = dtx_mono_ns();
	c->unbound_ns = 0;
	if (c->haio != NULL && hello_in_flight(c))
		nng_aio_abort(c->haio, NNG_ECONNRESET);
	for (slot *s = c->busy; s != NULL; s = s->next)
		nng_aio_abort(s->aio, NNG_ECONNRESET);
	abort_async(c);
	pthread_mutex_unlock(&c->mu);
}

dtx_err
proto_client_open(const proto_client_cfg *cfg, proto_client **out)
{
	if (cfg == NULL || cfg->url == NULL || out == NULL ||
	    cfg->vc_nodes > CLK_VC_MAX)
		return DTX_EINVAL;
	proto_client *c = dtx_calloc(1, sizeof(*c));
	if (c == NULL)
		return DTX_ENOMEM;
	c->cfg = *cfg;
	c->cfg.url = NULL;
	if (c->cfg.timeout_ms == 0)
		c->cfg.timeout_ms = 5000;
	if (c->cfg.connect_wait_ms == 0)
		c->cfg.connect_wait_ms = 200;
	proto_limits in = { cfg->max_msg, cfg->vc_nodes };
	proto__limits(&in, &c->lim);
	c->rng = cfg->seed != 0 ? cfg->seed : dtx_mono_ns() ^ (uintptr_t)c;
	atomic_store(&c->next_id, 1);
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->rcv, &ca);
	pthread_condattr_destroy(&ca);
	dtx_err err;
	int rv;
	if (proto__url_check(cfg->url, cfg->tls) != DTX_OK) {
		err = DTX_EINVAL;
		goto fail;
	}
	if (cfg->tls != NULL) {
		proto_role role;
		proto_tls_self(cfg->tls, &c->cfg.node_id, &role);
	}
	if ((c->url = dtx_strdup(cfg->url)) == NULL) {
		err = DTX_ENOMEM;
		goto fail;
	}
	if ((rv = nng_req0_open(&c->sock)) != 0) {
		err = proto_from_nng(rv);
		goto fail;
	}
	c->sock_open = true;
	if ((err = proto__sock_limits(c->sock, c->lim.max_msg)) != DTX_OK)
		goto fail;
	// No timed resend (contexts copy this when they are opened), and
	// quick reconnects after a peer restarts.
	if ((rv = nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME,
	         NNG_DURATION_INFINITE)) != 0 ||
	    (rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 10)) != 0 ||
	    (rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 500)) != 0 ||
	    (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_PRE, on_pipe, c)) !=
	        0 ||
	    (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, on_pipe, c)) !=
	        0 ||
	    (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, on_pipe, c)) !=
	        0) {
		err = proto_from_nng(rv);
		goto fail;
	}
	if (cfg->tls != NULL &&
	    ((rv = nng_ctx_open(&c->hctx, c->sock)) != 0 ||
	        (rv = nng_aio_alloc(&c->haio, hello_cb, c)) != 0 ||
	        (rv = nng_aio_alloc(&c->hsleep, hello_wake, c)) != 0)) {
		err = proto_from_nng(rv);
		goto fail;
	}
	if ((rv = dial(c)) != 0) {
		err = proto_from_nng(rv);
		goto fail;
	}
	*out = c;
	return DTX_OK;
fail:
	proto_client_close(c);
	return err;
}

const char *
proto_client_url(const proto_client *c)
{
	return c->url;
}

bool
proto_client_connected(const proto_client *c)
{
	proto_client *m = (proto_client *)(uintptr_t)c;
	if (m->cfg.tls != NULL)
		return atomic_load(&m->ready);
	return atomic_load(&m->pipes) > 0;
}

static dtx_err
slot_get(proto_client *c, slot **out)
{
	pthread_mutex_lock(&c->mu);
	slot *s = c->idle;
	if (s != NULL)
		c->idle = s->next;
	pthread_mutex_unlock(&c->mu);
	if (s == NULL) {
		if ((s = dtx_calloc(1, sizeof(*s))) == NULL)
			return DTX_ENOMEM;
		int rv;
		if ((rv = nng_ctx_open(&s->ctx, c->sock)) != 0) {
			dtx_free(s);
			return proto_from_nng(rv);
		}
		if ((rv = nng_aio_alloc(&s->aio, NULL, NULL)) != 0) {
			nng_ctx_close(s->ctx);
			dtx_free(s);
			return proto_from_nng(rv);
		}
	}
	pthread_mutex_lock(&c->mu);
	LIST_PUSH(c->busy, s);
	pthread_mutex_unlock(&c->mu);
	*out = s;
	return DTX_OK;
}

static void
slot_put(proto_client *c, slot *s)
{
	pthread_mutex_lock(&c->mu);
	LIST_UNLINK(c->busy, s);
	s->prev = NULL;
	s->next = c->idle;
	c->idle = s;
	pthread_mutex_unlock(&c->mu);
}

// Sets the header fields the client owns, for req and each batch element.
static void
stamp_req(proto_client *c, proto_msg *req)
{
	req->hdr.version = PROTO_VERSION;
	req->hdr.from = c->cfg.node_id;
	req->hdr.id = atomic_fetch_add(&c->next_id, 1);
	if (req->hdr.type == PROTO_BATCH && req->u.batch.msgs != NULL) {
		for (uint32_t i = 0; i < req->u.batch.n; i++) {
			proto_hdr *h = &req->u.batch.msgs[i].hdr;
			h->version = PROTO_VERSION;
			h->from = c->cfg.node_id;
			if (h->id == 0)
				h->id = atomic_fetch_add(&c->next_id, 1);
			if (c->cfg.stamp != NULL)
				c->cfg.stamp(c->cfg.arg, h);
		}
	}
	if (c->cfg.stamp != NULL)
		c->cfg.stamp(c->cfg.arg, &req->hdr);
}

// How long a send may wait for a connection: the whole timeout when there
// is one, at most connect_wait_ms when there is none.
static uint32_t
send_ms(proto_client *c, uint32_t timeout_ms)
{
	if (!proto_client_connected(c) && c->cfg.connect_wait_ms < timeout_ms)
		return c->cfg.connect_wait_ms;
	return timeout_ms;
}

static uint32_t
rest_ms(uint64_t t0, uint32_t timeout_ms)
{
	uint64_t spent = (dtx_mono_ns() - t0) / 1000000;
	return spent >= timeout_ms ? 1 : timeout_ms - (uint32_t)spent;
}

// The send's timeout in an attempt started at t0: what a send may wait for
// a connection, but no more than is left of timeout_ms.
static nng_duration
send_timeout(proto_client *c, uint64_t t0, uint32_t timeout_ms)
{
	uint32_t wait_ms = send_ms(c, timeout_ms);
	uint32_t left = rest_ms(t0, timeout_ms);
	return aio_ms(wait_ms < left ? wait_ms : left);
}

static dtx_err
send_error(int rv)
{
	return rv == NNG_ECLOSED ? DTX_ECLOSED
	    : rv == NNG_ENOMEM   ? DTX_ENOMEM
	                         : DTX_EUNREACH;
}

// Decodes a reply (consumed) to the request with this id. On DTX_OK or
// DTX_EREFUSED *rep holds it.
static dtx_err
take_reply(proto_client *c, nng_msg *reply, uint64_t id, proto_msg *rep,
    char *why, size_t why_len)
{
	char reason[256];
	proto_msg m;
	atomic_store(&c->quiet_ns, 0);
	dtx_err err =
	    proto_decode_nng(reply, &c->lim, &m, reason, sizeof(reason));
	nng_msg_free(reply);
	if (err == DTX_OK && m.hdr.id != id &&
	    !(m.hdr.id == 0 && m.hdr.type == PROTO_ERROR)) {
		// A decode failure on the server is answered with id 0;
		// any other id answers another request.
		snprintf(reason, sizeof(reason),
		    "reply id %" PRIu64 " to request %" PRIu64, m.hdr.id, id);
		proto_msg_free(&m);
		err = DTX_EPROTO;
	}
	if (err != DTX_OK) {
		if (err == DTX_EPROTO)
			DTX_LOG(DTX_LOG_WARN, "PROTO_BADREPLY", "from %s: %s",
			    c->url, reason);
		if (why != NULL && why_len > 0)
			snprintf(why, why_len, "%s", reason);
		return err;
	}
	if (c->cfg.observe != NULL) {
		// Every element is observed (each may move the clocks) even
		// when one was refused; one refused drops the whole reply.
		dtx_err oe = c->cfg.observe(c->cfg.arg, &m.hdr);
		if (m.hdr.type == PROTO_BATCH)
			for (uint32_t i = 0; i < m.u.batch.n; i++) {
				dtx_err e = c->cfg.observe(
				    c->cfg.arg, &m.u.batch.msgs[i].hdr);
				if (oe == DTX_OK)
					oe = e;
			}
		if (oe != DTX_OK) {
			if (why != NULL && why_len > 0)
				snprintf(why, why_len,
				    "reply from %s dropped: %s", c->url,
				    dtx_strerror(oe));
			proto_msg_free(&m);
			return oe;
		}
	}
	if (m.hdr.type == PROTO_ERROR && m.u.error.code == DTX_EPERM &&
	    m.u.error.reason != NULL &&
	    strncmp(m.u.error.reason, "unauthenticated", 15) == 0) {
		// Sent on a new connection before its hello was through:
		// refused unread, so certainly not delivered.
		proto_msg_free(&m);
		return DTX_EUNREACH;
	}
	*rep = m;
	return m.hdr.type == PROTO_ERROR ? DTX_EREFUSED : DTX_OK;
}

// One attempt: msg is consumed. On DTX_OK or DTX_EREFUSED *rep is set.
// The wait for the hello, the send and the receive share timeout_ms from
// the start of the attempt: a send given the whole timeout again after a
// hello that took most of it would let one attempt last twice as long.
static dtx_err
attempt(proto_client *c, nng_msg *msg, uint64_t id, uint32_t timeout_ms,
    proto_msg *rep, char *why, size_t why_len)
{
	slot *s = NULL;
	uint64_t t0 = dtx_mono_ns();
	dtx_crash_gate();
	if (!wait_ready(c, send_ms(c, timeout_ms))) {
		nng_msg_free(msg);
		redial_if_stuck(c);
		return DTX_EUNREACH;
	}
	dtx_err err = slot_get(c, &s);
	if (err != DTX_OK) {
		nng_msg_free(msg);
		return err;
	}
	nng_aio_set_msg(s->aio, msg);
	nng_aio_set_timeout(s->aio, send_timeout(c, t0, timeout_ms));
	nng_ctx_send(s->ctx, s->aio);
	nng_aio_wait(s->aio);
	int rv = nng_aio_result(s->aio);
	if (rv != 0) {
		// The request was never handed to a connection.
		nng_msg_free(nng_aio_get_msg(s->aio));
		nng_aio_set_msg(s->aio, NULL);
		slot_put(c, s);
		return send_error(rv);
	}
	nng_aio_set_timeout(s->aio, aio_ms(rest_ms(t0, timeout_ms)));
	nng_ctx_recv(s->ctx, s->aio);
	nng_aio_wait(s->aio);
	rv = nng_aio_result(s->aio);
	nng_msg *reply = rv == 0 ? nng_aio_get_msg(s->aio) : NULL;
	nng_aio_set_msg(s->aio, NULL);
	slot_put(c, s);
	if (rv != 0 || reply == NULL) {
		if (rv == NNG_ETIMEDOUT)
			close_if_silent(c);
		return rv == NNG_ECLOSED ? DTX_ECLOSED : DTX_ETIMEDOUT;
	}
	return take_reply(c, reply, id, rep, why, why_len);
}

static uint32_t
backoff_ms(proto_client *c, const proto_retry *r, uint32_t retry_no)
{
	uint64_t base = r->base_ms ? r->base_ms : 10;
	uint64_t cap = r->cap_ms ? r->cap_ms : 1000;
	uint64_t d = base;
	for (uint32_t i = 1; i < retry_no && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	pthread_mutex_lock(&c->mu);
	uint64_t j = dtx_rand_below(&c->rng, d / 2 + 1);
	pthread_mutex_unlock(&c->mu);
	return (uint32_t)(d - j);
}

// Stamps and encodes req into a new message (returned owned).
static dtx_err
encode_req(proto_client *c, proto_msg *req, nng_msg **out)
{
	stamp_req(c, req);
	nng_msg *msg;
	int rv = nng_msg_alloc(&msg, 0);
	if (rv != 0)
		return proto_from_nng(rv);
	if ((rv = nng_msg_reserve(msg, 256)) != 0) {
		nng_msg_free(msg);
		return proto_from_nng(rv);
	}
	dtx_err err = proto_encode(req, msg);
	if (err != DTX_OK) {
		nng_msg_free(msg);
		return err;
	}
	*out = msg;
	return DTX_OK;
}

static const proto_call_opts no_opts = { 0 };

static bool
retryable(dtx_err err, bool idempotent)
{
	return err == DTX_EUNREACH || (err == DTX_ETIMEDOUT && idempotent);
}

dtx_err
proto_client_call(proto_client *c, proto_msg *req, proto_msg *rep,
    const proto_call_opts *opts)
{
	if (c == NULL || req == NULL || rep == NULL)
		return DTX_EINVAL;
	if (opts == NULL)
		opts = &no_opts;
	const proto_retry *retry =
	    opts->retry != NULL ? opts->retry : &c->cfg.retry;
	uint32_t tries = retry->attempts > 1 ? retry->attempts : 1;
	uint32_t timeout_ms =
	    opts->timeout_ms != 0 ? opts->timeout_ms : c->cfg.timeout_ms;
	nng_msg *msg;
	dtx_err err = encode_req(c, req, &msg);
	if (err != DTX_OK)
		return err;
	for (uint32_t n = 1;; n++) {
		nng_msg *copy = NULL;
		int rv;
		if (n < tries && (rv = nng_msg_dup(&copy, msg)) != 0) {
			nng_msg_free(msg);
			return proto_from_nng(rv);
		}
		err = attempt(c, msg, req->hdr.id, timeout_ms, rep, opts->why,
		    opts->why_len);
		msg = copy;
		if (!retryable(err, opts->idempotent) || n >= tries)
			break;
		dtx_sleep_ms(backoff_ms(c, retry, n));
	}
	if (msg != NULL)
		nng_msg_free(msg);
	return err;
}

// ---------------------------------------------------------------- async

// An asynchronous call: its own context and an aio whose callback drives
// send -> receive (-> sleep -> send again on a retry).
typedef enum acall_state { A_SEND, A_RECV, A_SLEEP } acall_state;

typedef struct acall {
	proto_client *c;
	nng_ctx ctx;
	nng_aio *aio;
	// Backoff sleeps use their own aio: nng 1.5 lets a sleep's "expired
	// is success" mark leak into the next timed operation on the same
	// aio, which would turn a receive timeout into an empty success.
	nng_aio *sleep_aio;
	nng_msg *req; // the encoded request; each attempt sends a copy
	uint64_t id;
	uint64_t t0;
	uint64_t wait_until; // while waiting for a hello, 0 otherwise
	uint32_t timeout_ms, tries, n;
	bool idempotent;
	proto_retry retry;
	_Atomic int state; // acall_state
	proto_done_fn done;
	void *arg;
	struct acall *next, *prev;
} acall;

static void
abort_async(proto_client *c)
{
	// Called with c->mu held. A sleeping call is left alone.
	for (acall *a = c->abusy; a != NULL; a = a->next)
		if (a->state != A_SLEEP)
			nng_aio_abort(a->aio, NNG_ECONNRESET);
}

// Ended calls kept, with their context and aios, for the next calls: a
// context and two aios made and torn down per call cost nng's reaper
// thread a wake-up each, several per transaction.
#define ACALL_SPARE_MAX 64

static void acall_release(proto_client *c, acall *a, bool reusable, bool in_cb);

// Ends the call: unlinks it, releases everything (or, when its reply
// came back on its context, keeps it for the next call), then reports.
// A kept call can be taken by another thread before this returns: it is
// not touched after it was kept, and nng lets an aio start again while
// its callback still runs.
static void
acall_finish(acall *a, dtx_err err, proto_msg *rep, bool answered)
{
	proto_client *c = a->c;
	proto_done_fn done = a->done;
	void *arg = a->arg;
	nng_msg_free(a->req);
	pthread_mutex_lock(&c->mu);
	LIST_UNLINK(c->abusy, a);
	pthread_mutex_unlock(&c->mu);
	acall_release(c, a, answered, true);
	done(arg, err, rep);
}

static void acall_cb(void *arg);
static void acall_wake(void *arg);

// Keeps a call whose context and aios are idle (reusable) for the next
// call, or releases it: when it is not reusable, when enough are kept,
// when the client closes. Inside one of the call's own callbacks
// (in_cb) nng frees its aios once the callback returns. Called without
// c->mu.
static void
acall_release(proto_client *c, acall *a, bool reusable, bool in_cb)
{
	pthread_mutex_lock(&c->mu);
	bool keep = reusable && !c->closing && c->naspare < ACALL_SPARE_MAX;
	if (keep) {
		a->next = c->aspare;
		c->aspare = a;
		c->naspare++;
	}
	pthread_mutex_unlock(&c->mu);
	if (keep)
		return;
	nng_ctx_close(a->ctx);
	if (in_cb) {
		nng_aio_reap(a->aio);
		nng_aio_reap(a->sleep_aio);
	} else {
		nng_aio_free(a->aio);
		nng_aio_free(a->sleep_aio);
	}
	dtx_free(a);
}

// A call with its context and aios: a kept one, its fields cleared, or
// a new one.
static dtx_err
acall_new(proto_client *c, acall **out)
{
	pthread_mutex_lock(&c->mu);
	acall *a = c->aspare;
	if (a != NULL) {
		c->aspare = a->next;
		c->naspare--;
	}
	pthread_mutex_unlock(&c->mu);
	if (a != NULL) {
		acall kept = { .c = c,
			.ctx = a->ctx,
			.aio = a->aio,
			.sleep_aio = a->sleep_aio };
		*a = kept;
		*out = a;
		return DTX_OK;
	}
	if ((a = dtx_calloc(1, sizeof(*a))) == NULL)
		return DTX_ENOMEM;
	a->c = c;
	int rv;
	if ((rv = nng_ctx_open(&a->ctx, c->sock)) != 0) {
		dtx_free(a);
		return proto_from_nng(rv);
	}
	if ((rv = nng_aio_alloc(&a->aio, acall_cb, a)) != 0 ||
	    (rv = nng_aio_alloc(&a->sleep_aio, acall_wake, a)) != 0) {
		if (a->aio != NULL)
			nng_aio_free(a->aio);
		nng_ctx_close(a->ctx);
		dtx_free(a);
		return proto_from_nng(rv);
	}
	*out = a;
	return DTX_OK;
}

static void acall_failed(acall *a, dtx_err err);

// True when the call may go now; otherwise it waits (polling) for the
// connection's hello, or has failed with DTX_EUNREACH once it waited as
// long as a send may wait for a connection.
static bool
acall_ready(acall *a)
{
	proto_client *c = a->c;
	if (c->cfg.tls == NULL || atomic_load(&c->ready)) {
		a->wait_until = 0;
		return true;
	}
	uint64_t now = dtx_mono_ns();
	if (a->wait_until == 0)
		a->wait_until =
		    now + (uint64_t)send_ms(c, a->timeout_ms) * 1000000ULL;
	if (now < a->wait_until) {
		a->state = A_SLEEP;
		nng_sleep_aio(2, a->sleep_aio);
		return false;
	}
	a->wait_until = 0;
	redial_if_stuck(c);
	acall_failed(a, DTX_EUNREACH);
	return false;
}

// Starts an attempt, or goes on with one that waited for the hello: as in
// attempt(), the wait, the send and the receive share a->timeout_ms.
static void
acall_send(acall *a)
{
	nng_msg *msg;
	if (a->wait_until == 0)
		a->t0 = dtx_mono_ns();
	if (!acall_ready(a))
		return;
	if (nng_msg_dup(&msg, a->req) != 0) {
		acall_finish(a, DTX_ENOMEM, NULL, false);
		return;
	}
	dtx_crash_gate();
	a->state = A_SEND;
	nng_aio_set_msg(a->aio, msg);
	nng_aio_set_timeout(a->aio, send_timeout(a->c, a->t0, a->timeout_ms));
	nng_ctx_send(a->ctx, a->aio);
}

static void
acall_failed(acall *a, dtx_err err)
{
	if (!retryable(err, a->idempotent) || a->n >= a->tries ||
	    err == DTX_ECLOSED) {
		acall_finish(a, err, NULL, false);
		return;
	}
	a->n++;
	a->state = A_SLEEP;
	nng_sleep_aio(
	    (nng_duration)backoff_ms(a->c, &a->retry, a->n - 1), a->sleep_aio);
}

static void
acall_cb(void *arg)
{
	acall *a = arg;
	int rv = nng_aio_result(a->aio);
	switch (a->state) {
	case A_SEND:
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(a->aio));
			nng_aio_set_msg(a->aio, NULL);
			acall_failed(a, send_error(rv));
			return;
		}
		a->state = A_RECV;
		nng_aio_set_timeout(
		    a->aio, aio_ms(rest_ms(a->t0, a->timeout_ms)));
		nng_ctx_recv(a->ctx, a->aio);
		return;
	case A_RECV: {
		if (rv == NNG_ETIMEDOUT)
			close_if_silent(a->c);
		if (rv != 0) {
			acall_failed(
			    a, rv == NNG_ECLOSED ? DTX_ECLOSED : DTX_ETIMEDOUT);
			return;
		}
		nng_msg *reply = nng_aio_get_msg(a->aio);
		nng_aio_set_msg(a->aio, NULL);
		if (reply == NULL) {
			acall_failed(a, DTX_ETIMEDOUT);
			return;
		}
		proto_msg rep;
		dtx_err err = take_reply(a->c, reply, a->id, &rep, NULL, 0);
		bool have = err == DTX_OK || err == DTX_EREFUSED;
		acall_finish(a, err, have ? &rep : NULL, true);
		return;
	}
	case A_SLEEP:
		return;
	}
}

static void
acall_wake(void *arg)
{
	acall *a = arg;
	if (nng_aio_result(a->sleep_aio) == NNG_ECLOSED) {
		acall_finish(a, DTX_ECLOSED, NULL, false);
		return;
	}
	acall_send(a);
}

dtx_err
proto_client_call_async(proto_client *c, proto_msg *req,
    const proto_call_opts *opts, proto_done_fn done, void *arg)
{
	if (c == NULL || req == NULL || done == NULL)
		return DTX_EINVAL;
	if (opts == NULL)
		opts = &no_opts;
	acall *a = NULL;
	dtx_err err = acall_new(c, &a);
	if (err != DTX_OK)
		return err;
	a->retry = opts->retry != NULL ? *opts->retry : c->cfg.retry;
	a->tries = a->retry.attempts > 1 ? a->retry.attempts : 1;
	a->n = 1;
	a->timeout_ms =
	    opts->timeout_ms != 0 ? opts->timeout_ms : c->cfg.timeout_ms;
	a->idempotent = opts->idempotent;
	a->done = done;
	a->arg = arg;
	if ((err = encode_req(c, req, &a->req)) != DTX_OK) {
		acall_release(c, a, true, false);
		return err;
	}
	a->id = req->hdr.id;
	pthread_mutex_lock(&c->mu);
	LIST_PUSH(c->abusy, a);
	pthread_mutex_unlock(&c->mu);
	acall_send(a);
	return DTX_OK;
}

// nng 1.5.2 can wait for ever to close a socket when a message arrived as
// it closed, and then for every later close of the process (README,
// "Known limit"; settle avoids the case of the hello): a connection's
// teardown waits on a read that never ends. So the close runs on a
// thread of its own and is waited for CLOSE_WAIT_MS at most; past that
// the socket (and what it refers to) is left to the process, which is
// said once, and the caller goes on. A process that exits loses nothing
// by it.
#define CLOSE_WAIT_MS 3000
// Once one close did not end, nng's reaper is stuck and no later close
// of the process can end either: each later close is waited for only
// CLOSE_WAIT_STUCK_MS (it still starts, which stops its dialer), and
// said at most once a second. A harness run that met the stall spent
// 72 s on 24 closes of 3 s each before this.
#define CLOSE_WAIT_STUCK_MS 200
static atomic_bool close_stuck;
static _Atomic uint64_t close_stuck_logged_ns;

// The clients whose close did not end (proto_client_close).
static pthread_mutex_t abandoned_mu = PTHREAD_MUTEX_INITIALIZER;
static proto_client *abandoned;

size_t
proto_client_left_open(void)
{
	size_t n = 0;
	pthread_mutex_lock(&abandoned_mu);
	for (const proto_client *c = abandoned; c != NULL;
	     c = c->abandoned_next)
		n++;
	pthread_mutex_unlock(&abandoned_mu);
	return n;
}

typedef struct closer {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	nng_socket sock;
	bool done;
	int refs; // the closing thread and the waiter
} closer;

static void
closer_unref(closer *k)
{
	pthread_mutex_lock(&k->mu);
	bool last = --k->refs == 0;
	pthread_mutex_unlock(&k->mu);
	if (last) {
		pthread_cond_destroy(&k->cv);
		pthread_mutex_destroy(&k->mu);
		dtx_free(k);
	}
}

static void *
closer_main(void *arg)
{
	closer *k = arg;
	nng_close(k->sock);
	pthread_mutex_lock(&k->mu);
	k->done = true;
	pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->mu);
	closer_unref(k);
	return NULL;
}

// Closes sock; false when the close did not end within CLOSE_WAIT_MS.
static bool
close_bounded(nng_socket sock, const char *url)
{
	closer *k = dtx_calloc(1, sizeof(*k));
	pthread_t th;
	pthread_attr_t at;
	if (k == NULL || pthread_attr_init(&at) != 0) {
		dtx_free(k);
		nng_close(sock);
		return true;
	}
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cv, NULL);
	k->sock = sock;
	k->refs = 2;
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&th, &at, closer_main, k);
	pthread_attr_destroy(&at);
	if (rc != 0) {
		k->refs = 1;
		closer_unref(k);
		nng_close(sock);
		return true;
	}
	bool stuck = atomic_load(&close_stuck);
	uint64_t wait_ms = stuck ? CLOSE_WAIT_STUCK_MS : CLOSE_WAIT_MS;
	struct timespec end =
	    dtx_time_after(CLOCK_REALTIME, wait_ms * 1000000u);
	pthread_mutex_lock(&k->mu);
	while (!k->done &&
	    pthread_cond_timedwait(&k->cv, &k->mu, &end) != ETIMEDOUT)
		;
	bool done = k->done;
	pthread_mutex_unlock(&k->mu);
	closer_unref(k);
	if (done)
		return true;
	atomic_store(&close_stuck, true);
	if (!stuck || proto__once_a_second(&close_stuck_logged_ns))
		DTX_LOG(DTX_LOG_WARN, "PROTO_CLOSE_STUCK",
		    "closing the client of %s did not end in %" PRIu64
		    " ms (nng cannot tear its connection down%s); it is "
		    "left to the process",
		    url, wait_ms, stuck ? ", as for an earlier close" : "");
	return false;
}

// How long a closing client waits for the answer of a hello in flight.
#define SETTLE_MS 1000

// Waits, at most SETTLE_MS, until no hello message is on its way to or
// from the server. A message that arrives while the socket closes can
// stop nng 1.5.2 for good: its transport re-arms a read on an aio the
// close has just stopped, which never completes, and the reaper thread,
// shared by every socket of the process, waits on that read for ever
// (after which no connection of the process is torn down or redialled).
// A short command closes its clients at once, often while the hello of a
// client it did not use is still going on. Called with c->mu held and
// c->closing set.
static void
settle(proto_client *c)
{
	struct timespec end =
	    dtx_time_after(CLOCK_MONOTONIC, (uint64_t)SETTLE_MS * 1000000u);
	while (hello_in_flight(c) &&
	    pthread_cond_timedwait(&c->rcv, &c->mu, &end) != ETIMEDOUT)
		;
}

void
proto_client_close(proto_client *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->closing = true;
	pthread_cond_broadcast(&c->rcv);
	settle(c);
	pthread_mutex_unlock(&c->mu);
	// Idle slots' aios go before the socket: nng 1.5's expire thread
	// may still hold one whose send timed out just as it completed, and
	// call its cancel routine, which locks the socket, later. Freeing
	// the aio waits for that; closing the socket does not.
	for (slot *s = c->idle; s != NULL; s = s->next) {
		nng_aio_free(s->aio);
		s->aio = NULL;
	}
	// The same for kept asynchronous calls (a callback that kept its
	// call may still be running: freeing waits for it).
	for (acall *a = c->aspare; a != NULL; a = a->next) {
		nng_aio_free(a->aio);
		nng_aio_free(a->sleep_aio);
		a->aio = a->sleep_aio = NULL;
	}
	if (c->sock_open) {
		nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, NULL, NULL);
		nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, NULL, NULL);
		if (!close_bounded(c->sock, c->url)) {
			// nng still owns everything the socket touches: the
			// client is left to the process rather than freed
			// under it, on a list, so that it stays reachable
			// (a leak checker reports what is lost, not this).
			pthread_mutex_lock(&abandoned_mu);
			c->abandoned_next = abandoned;
			abandoned = c;
			pthread_mutex_unlock(&abandoned_mu);
			return;
		}
	}
	// The hello's callbacks see closing and start nothing new.
	if (c->hsleep != NULL) {
		nng_aio_stop(c->hsleep);
		nng_aio_free(c->hsleep);
	}
	if (c->haio != NULL) {
		nng_aio_stop(c->haio);
		nng_aio_free(c->haio);
	}
	for (slot *s = c->idle; s != NULL;) {
		slot *next = s->next;
		dtx_free(s);
		s = next;
	}
	for (acall *a = c->aspare; a != NULL;) {
		acall *next = a->next;
		dtx_free(a);
		a = next;
	}
	pthread_cond_destroy(&c->rcv);
	pthread_mutex_destroy(&c->mu);
	dtx_free(c->url);
	dtx_free(c);
}
