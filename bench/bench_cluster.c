// SPDX-License-Identifier: MIT
//
// What the cluster benchmarks (dtx bench saga, dtx bench 2pc) share: their
// client connections, HEALTH counters, latency arrays and the split of the
// bank accounts among the participants that own them.

#include <dirent.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "bench.h"
#include "coordinator.h"
#include "proto.h"

dtx_err
bench_open_client(
    const char *url, uint32_t id, proto_tls *tls, proto_client **out)
{
	proto_client_cfg cc;
	memset(&cc, 0, sizeof(cc));
	cc.url = url;
	cc.node_id = id;
	cc.tls = tls;
	cc.timeout_ms = 30000;
	cc.connect_wait_ms = 2000;
	return proto_client_open(&cc, out);
}

dtx_err
bench_call(
    proto_client *cl, proto_msg *req, proto_msg *rep, uint32_t timeout_ms)
{
	proto_call_opts o;
	memset(&o, 0, sizeof(o));
	o.timeout_ms = timeout_ms;
	memset(rep, 0, sizeof(*rep));
	dtx_err rv = proto_client_call(cl, req, rep, &o);
	if (rv == DTX_EREFUSED)
		proto_msg_free(rep);
	return rv;
}

// The answer of a's request: from the batcher, or from an embedded
// coordinator (a coord_txn_done).
static void
async_done(void *arg, dtx_err err, proto_msg *rep)
{
	bench_async *a = arg;
	proto_msg m;
	memset(&m, 0, sizeof(m));
	if (rep != NULL)
		m = *rep;
	if (err == DTX_EREFUSED)
		proto_msg_free(&m);
	a->count(a->owner, err, &m, dtx_mono_ns() - a->t0);
	if (err != DTX_OK) {
		atomic_fetch_add(a->finished, 1);
		return;
	}
	bench_async_send(a);
}

// Sends a's next request, or stops a: one step of bench_async_send.
static void
async_send_one(bench_async *a)
{
	if (dtx_mono_ns() >= atomic_load(a->deadline_ns)) {
		atomic_fetch_add(a->finished, 1);
		return;
	}
	proto_msg *req = a->next(a->owner);
	a->t0 = dtx_mono_ns();
	dtx_err rv = a->co != NULL
	    ? coord_txn_async(a->co, req, async_done, a)
	    : proto_batcher_call_async(a->b, req, a->timeout_ms, async_done, a);
	if (rv != DTX_OK) {
		proto_msg none;
		memset(&none, 0, sizeof(none));
		a->count(a->owner, rv, &none, 0);
		atomic_fetch_add(a->finished, 1);
	}
}

void
bench_async_send(bench_async *a)
{
	// An answer may come back before the call that sent it returns (an
	// embedded coordinator that cannot reach a participant answers at
	// once): its send then falls to the loop already running here, so
	// the stack does not grow with every such answer.
	if (atomic_fetch_add(&a->sends, 1) > 0)
		return;
	do
		async_send_one(a);
	while (atomic_fetch_sub(&a->sends, 1) > 1);
}

void
bench_sync_run(
    bench_async *a, proto_client *cl, atomic_int *ready, atomic_bool *go)
{
	atomic_fetch_add(ready, 1);
	while (!atomic_load(go))
		sched_yield();
	while (dtx_mono_ns() < atomic_load(a->deadline_ns)) {
		proto_msg *req = a->next(a->owner);
		proto_msg rep;
		a->t0 = dtx_mono_ns();
		dtx_err rv;
		if (a->co != NULL) {
			memset(&rep, 0, sizeof(rep));
			rv = coord_txn(a->co, req, &rep);
		} else {
			rv = bench_call(cl, req, &rep, a->timeout_ms);
		}
		a->count(a->owner, rv, &rep, dtx_mono_ns() - a->t0);
	}
}

bool
bench_tally_bad(bench_tally *t, dtx_err rv, proto_msg *rep, proto_type want)
{
	if (rv == DTX_OK && rep->hdr.type == want)
		return false;
	t->errors++;
	if (t->first_err == DTX_OK)
		t->first_err = rv == DTX_OK ? DTX_EPROTO : rv;
	if (rv == DTX_OK)
		proto_msg_free(rep);
	return true;
}

void
bench_tally_outcome(
    bench_tally *t, proto_outcome o, uint64_t ns, bool with_aborted)
{
	if (o == PROTO_COMMITTED) {
		t->committed++;
		bench_tally_lat(t, ns);
	} else if (o == PROTO_ABORTED) {
		t->aborted++;
		if (with_aborted)
			bench_tally_lat(t, ns);
	} else {
		t->unknown++;
	}
}

int64_t
bench_counter(proto_client *cl, const char *name)
{
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_HEALTH);
	if (bench_call(cl, &req, &rep, 5000) != DTX_OK)
		return -1;
	int64_t v = hx_health_counter(&rep, name);
	proto_msg_free(&rep);
	return v;
}

void
bench_tally_lat(bench_tally *t, uint64_t ns)
{
	if (DTX_GROW(t->lat, t->nlat, t->cap, 4096) != DTX_OK) {
		t->oom = true;
		return;
	}
	t->lat[t->nlat++] = ns;
}

dtx_err
bench_tally_merge(
    const void *workers, size_t stride, int n, bench_tally *sum, uint64_t **all)
{
	const char *base = workers;
	memset(sum, 0, sizeof(*sum));
	for (int i = 0; i < n; i++) {
		const bench_tally *t =
		    (const bench_tally *)(base + (size_t)i * stride);
		if (t->oom)
			return DTX_ENOMEM;
		sum->committed += t->committed;
		sum->aborted += t->aborted;
		sum->unknown += t->unknown;
		sum->errors += t->errors;
		sum->nlat += t->nlat;
		if (sum->first_err == DTX_OK)
			sum->first_err = t->first_err;
	}
	uint64_t *v = dtx_alloc((sum->nlat ? sum->nlat : 1) * sizeof(uint64_t));
	if (v == NULL)
		return DTX_ENOMEM;
	size_t at = 0;
	for (int i = 0; i < n; i++) {
		const bench_tally *t =
		    (const bench_tally *)(base + (size_t)i * stride);
		memcpy(v + at, t->lat, t->nlat * sizeof(uint64_t));
		at += t->nlat;
	}
	dtx_sort_u64(v, sum->nlat);
	*all = v;
	return DTX_OK;
}

static dtx_err
bench_split(const char *who, const dtx_topo *topo, uint32_t client_id,
    proto_tls *tls, int64_t accounts, proto_client **parts, int64_t ***owned,
    size_t **nowned)
{
	uint32_t nparts = topo->nparts;
	dtx_err rv;
	*owned = dtx_calloc(nparts, sizeof(int64_t *));
	*nowned = dtx_calloc(nparts, sizeof(size_t));
	if (*owned == NULL || *nowned == NULL)
		return DTX_ENOMEM;
	for (uint32_t k = 0; k < nparts; k++) {
		const dtx_node *nd = dtx_topo_find(topo, topo->parts[k]);
		if ((rv = bench_open_client(
		         nd->url, client_id, tls, &parts[k])) != DTX_OK)
			return rv;
		(*owned)[k] = dtx_calloc((size_t)accounts, sizeof(int64_t));
		if ((*owned)[k] == NULL)
			return DTX_ENOMEM;
	}
	for (int64_t a = 0; a < accounts; a++) {
		char k[32];
		hx_acct_key(k, sizeof(k), a);
		uint32_t id = dtx_topo_route(topo, k, strlen(k));
		for (uint32_t j = 0; j < nparts; j++)
			if (topo->parts[j] == id)
				(*owned)[j][(*nowned)[j]++] = a;
	}
	for (uint32_t k = 0; k < nparts; k++)
		if ((*nowned)[k] == 0) {
			fprintf(stderr,
			    "%s: participant %u owns no account: use more "
			    "--accounts\n",
			    who, topo->parts[k]);
			return DTX_ERANGE;
		}
	return DTX_OK;
}

void
bench_pick_keys(const bench_env *e, uint64_t *seed, uint32_t *p, uint32_t *q,
    char *kf, char *kt, size_t klen)
{
	uint32_t a = (uint32_t)dtx_rand_below(seed, e->nparts);
	uint32_t b = (uint32_t)dtx_rand_below(seed, e->nparts - 1);
	if (b >= a)
		b++;
	hx_acct_key(kf, klen, e->owned[a][dtx_rand_below(seed, e->nowned[a])]);
	hx_acct_key(kt, klen, e->owned[b][dtx_rand_below(seed, e->nowned[b])]);
	*p = a;
	*q = b;
}

static void
bench_owned_free(int64_t **owned, size_t *nowned, uint32_t nparts)
{
	if (owned != NULL)
		for (uint32_t k = 0; k < nparts; k++)
			dtx_free(owned[k]);
	dtx_free(owned);
	dtx_free(nowned);
}

void
bench_json_counts(hx_json *j, int64_t participants, int64_t clients,
    int64_t accounts, double secs, const bench_tally *sum,
    const char *aborted_key)
{
	hx_json_int(j, "participants", participants);
	hx_json_int(j, "clients", clients);
	hx_json_int(j, "accounts", accounts);
	hx_json_num(j, "seconds", secs);
	hx_json_bool(j, "fsync", true);
	hx_json_int(j, "committed", (int64_t)sum->committed);
	hx_json_int(j, aborted_key, (int64_t)sum->aborted);
	hx_json_int(j, "unknown", (int64_t)sum->unknown);
	hx_json_int(j, "errors", (int64_t)sum->errors);
}

static void
bench_cluster_free(hx_cluster *cl, proto_client **parts, int64_t **owned,
    size_t *nowned, uint32_t nparts)
{
	for (uint32_t k = 0; k < DTX_TOPO_MAX; k++)
		proto_client_close(parts[k]);
	bench_owned_free(owned, nowned, nparts);
	if (cl != NULL) {
		hx_cluster_stop_all(cl, 5000);
		hx_cluster_free(cl);
	}
}

// CPU time (user + system) a process has used so far, in ms; -1 when it
// cannot be read.
static double
proc_cpu_ms(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	// Field 2 (comm) may hold spaces: parse after its closing paren.
	const char *p = strrchr(buf, ')');
	unsigned long long ut, st;
	if (p == NULL ||
	    sscanf(p + 2,
	        "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
	        &st) != 2)
		return -1;
	return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

// Context switches (voluntary and not) of every live thread of process
// pid so far; -1 when they cannot be read (pid 0: not running).
static double
proc_switches(int pid)
{
	char path[300];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (d == NULL)
		return -1;
	double n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.32s/status", pid,
		    e->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue; // the thread ended meanwhile
		char line[128];
		unsigned long long v;
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) ==
			        1 ||
			    sscanf(line, "nonvoluntary_ctxt_switches: %llu",
			        &v) == 1)
				n += (double)v;
		fclose(f);
	}
	closedir(d);
	return n;
}

// Adds v to *sum unless v is unknown (-1); *sum starts unknown.
static void
add_known(double *sum, double v)
{
	if (v >= 0)
		*sum = (*sum < 0 ? 0 : *sum) + v;
}

void
bench_cpu_read(
    hx_cluster *cl, const dtx_topo *topo, dtx_role head, bench_cpu *out)
{
	// Every running node of role head, summed.
	out->head = out->head_cs = -1;
	for (uint32_t i = 0; i < topo->n; i++) {
		if (topo->nodes[i].role != head)
			continue;
		int p = hx_cluster_pid(cl, topo->nodes[i].id);
		add_known(&out->head, proc_cpu_ms(p));
		add_known(&out->head_cs, proc_switches(p));
	}
	out->parts = out->parts_cs = 0;
	for (uint32_t k = 0; k < topo->nparts; k++) {
		int p = hx_cluster_pid(cl, topo->parts[k]);
		double v = proc_cpu_ms(p);
		if (v >= 0)
			out->parts += v;
		if ((v = proc_switches(p)) >= 0)
			out->parts_cs += v;
	}
	struct rusage ru;
	out->self = getrusage(RUSAGE_SELF, &ru) != 0
	    ? -1
	    : (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
	        (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
	out->self_cs = proc_switches((int)getpid());
}

// The CPU microseconds (and the context switches) from a to b per one of
// n operations: head, the participants and this process.
static void
cpu_per(const bench_cpu *a, const bench_cpu *b, uint64_t n, double us[3],
    double cs[3])
{
	double per = n > 0 ? 1.0 / (double)n : 0;
	// A head this process runs (embedded) has no figures of its own:
	// its CPU and switches are the clients'. -1 says so.
	bool head = a->head >= 0 && b->head >= 0;
	us[0] = head ? (b->head - a->head) * 1000.0 * per : -1;
	us[1] = (b->parts - a->parts) * 1000.0 * per;
	us[2] = (b->self - a->self) * 1000.0 * per;
	cs[0] = head ? (b->head_cs - a->head_cs) * per : -1;
	cs[1] = (b->parts_cs - a->parts_cs) * per;
	cs[2] = (b->self_cs - a->self_cs) * per;
}

void
bench_cpu_print(const char *unit, const char *head_name, const bench_cpu *a,
    const bench_cpu *b, uint64_t n)
{
	double us[3], cs[3];
	cpu_per(a, b, n, us, cs);
	char h[2][64];
	snprintf(h[0], sizeof(h[0]), "%.1f", us[0]);
	snprintf(h[1], sizeof(h[1]), "%.1f", cs[0]);
	for (int k = 0; k < 2 && us[0] < 0; k++)
		snprintf(h[k], sizeof(h[k]), "in the clients'");
	printf("  CPU us per %s: %s %s, participants %.1f, bench clients "
	       "%.1f\n",
	    unit, head_name, h[0], us[1], us[2]);
	printf("  context switches per %s: %s %s, participants %.1f, bench "
	       "clients %.1f\n",
	    unit, head_name, h[1], cs[1], cs[2]);
}

void
bench_cpu_json(hx_json *j, const char *unit, const char *head_name,
    const bench_cpu *a, const bench_cpu *b, uint64_t n)
{
	double v[2][3];
	cpu_per(a, b, n, v[0], v[1]);
	static const char *const what[2] = { "cpu_us", "switches" };
	char key[64];
	for (int k = 0; k < 2; k++) {
		snprintf(
		    key, sizeof(key), "%s_per_%s_%s", what[k], unit, head_name);
		hx_json_num(j, key, v[k][0]);
		snprintf(
		    key, sizeof(key), "%s_per_%s_participants", what[k], unit);
		hx_json_num(j, key, v[k][1]);
		snprintf(key, sizeof(key), "%s_per_%s_client", what[k], unit);
		hx_json_num(j, key, v[k][2]);
	}
}

static void *
fleet_thread(void *arg)
{
	bench_client *c = arg;
	bench_sync_run(&c->as, c->cl, &c->fleet->ready, &c->fleet->go);
	return NULL;
}

static bench_client *
fleet_client(const bench_fleet *f, int i)
{
	return (bench_client *)((char *)f->workers + (size_t)i * f->stride);
}

dtx_err
bench_fleet_open(bench_fleet *f, size_t stride, int n, void *ctx,
    proto_client *shared, const char *url, uint32_t client_id, proto_tls *tls,
    int64_t batch, int64_t inflight, uint32_t timeout_ms,
    proto_msg *(*next)(void *owner),
    void (*count)(void *owner, dtx_err rv, proto_msg *rep, uint64_t ns))
{
	return bench_fleet_open_heads(f, stride, n, ctx, &shared, &url, 1, NULL,
	    client_id, tls, batch, inflight, timeout_ms, next, count);
}

dtx_err
bench_fleet_open_heads(bench_fleet *f, size_t stride, int n, void *ctx,
    proto_client *const *shared, const char *const *urls, uint32_t nheads,
    struct coord *co, uint32_t client_id, proto_tls *tls, int64_t batch,
    int64_t inflight, uint32_t timeout_ms, proto_msg *(*next)(void *owner),
    void (*count)(void *owner, dtx_err rv, proto_msg *rep, uint64_t ns))
{
	memset(f, 0, sizeof(*f));
	if (nheads < 1 || nheads > HX_COORDINATORS_MAX)
		return DTX_EINVAL;
	if ((f->workers = dtx_calloc((size_t)n, stride)) == NULL)
		return DTX_ENOMEM;
	f->stride = stride;
	f->n = n;
	f->deadline_ns = UINT64_MAX;
	dtx_err rv = DTX_OK;
	f->async = batch > 1;
	for (uint32_t k = 0;
	     batch > 1 && co == NULL && k < nheads && rv == DTX_OK; k++) {
		rv = proto_batcher_open(shared[k], (uint32_t)batch,
		    (uint32_t)inflight, &f->batchers[k]);
		if (rv == DTX_OK)
			f->nbatchers++;
	}
	for (int i = 0; i < n; i++) {
		bench_client *c = fleet_client(f, i);
		// splitmix64 states that differ by multiples of its increment
		// give the same sequence shifted: start each client at an
		// output of the generator instead, so the streams are
		// unrelated.
		uint64_t s0 = (uint64_t)i + 1;
		c->seed = dtx_rand_next(&s0);
		c->fleet = f;
		c->ctx = ctx;
		c->id = i;
		c->as = (bench_async) { .owner = c,
			.co = co,
			.b = f->nbatchers
			    ? f->batchers[(uint32_t)i % f->nbatchers]
			    : NULL,
			.deadline_ns = &f->deadline_ns,
			.finished = &f->finished,
			.timeout_ms = timeout_ms,
			.next = next,
			.count = count };
		if (rv == DTX_OK && batch <= 1 && co == NULL)
			rv = bench_open_client(
			    urls[(uint32_t)i % nheads], client_id, tls, &c->cl);
	}
	return rv;
}

double
bench_fleet_run(bench_fleet *f, const char *what, int64_t seconds,
    hx_cluster *cl, dtx_role head, bench_cpu *cpu0, bench_cpu *cpu1)
{
	const dtx_topo *topo = hx_cluster_topo(cl);
	int n = f->n;
	for (; !f->async && f->started < n; f->started++) {
		bench_client *c = fleet_client(f, f->started);
		if (pthread_create(&c->th, NULL, fleet_thread, c) != 0) {
			fprintf(stderr, "%s: cannot start a thread\n", what);
			return -1;
		}
	}
	while (!f->async && atomic_load(&f->ready) < n)
		sched_yield();
	bench_cpu_read(cl, topo, head, cpu0);
	uint64_t t0 = dtx_mono_ns();
	atomic_store(&f->deadline_ns, t0 + (uint64_t)seconds * 1000000000u);
	atomic_store(&f->go, true);
	for (int i = 0; i < f->started; i++)
		pthread_join(fleet_client(f, i)->th, NULL);
	f->started = 0;
	if (f->async) {
		for (int i = 0; i < n; i++)
			bench_async_send(&fleet_client(f, i)->as);
		// Each client ends with its first answer after the deadline
		// (at the latest its call's timeout later).
		while (atomic_load(&f->finished) < n)
			dtx_sleep_ms(5);
	}
	double secs = (double)(dtx_mono_ns() - t0) / 1e9;
	bench_cpu_read(cl, topo, head, cpu1);
	return secs;
}

void
bench_fleet_close(bench_fleet *f)
{
	if (f->workers == NULL)
		return;
	atomic_store(&f->deadline_ns, 0);
	atomic_store(&f->go, true);
	for (int i = 0; i < f->started; i++)
		pthread_join(fleet_client(f, i)->th, NULL);
	f->started = 0;
	for (int i = 0; i < f->n; i++) {
		bench_client *c = fleet_client(f, i);
		proto_client_close(c->cl);
		c->cl = NULL;
		dtx_free(c->t.lat);
		c->t.lat = NULL;
	}
	for (uint32_t k = 0; k < f->nbatchers; k++)
		proto_batcher_close(f->batchers[k]);
	f->nbatchers = 0;
	dtx_free(f->workers);
	f->workers = NULL;
}

int
bench_main(const char *what, const dtx_cfg_opt *table, size_t n, void *cfg,
    size_t size, int argc, char **argv, int (*run)(const void *cfg))
{
	memset(cfg, 0, size);
	char *pos[1];
	int npos = 0;
	int rc = hx_parse_flags(what, table, n, cfg, argc, argv, pos, 1, &npos);
	if (rc == 0 && npos > 0) {
		fprintf(stderr, "%s: unexpected argument %s\n", what, pos[0]);
		rc = HX_EXIT_USAGE;
	}
	if (rc == 0)
		rc = run(cfg);
	else if (rc < 0)
		rc = HX_EXIT_OK;
	dtx_cfg_fini(table, n, cfg);
	return rc;
}

// Starts the participants and the nodes of role head but skip (NULL:
// none), then waits for them to be ready.
static dtx_err
start_head_and_parts(
    hx_cluster *cl, const dtx_topo *topo, dtx_role head, const dtx_node *skip)
{
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t i = 0; i < topo->n; i++) {
			const dtx_node *nd = &topo->nodes[i];
			if ((nd->role != DTX_ROLE_PARTICIPANT &&
			        nd->role != head) ||
			    nd == skip)
				continue;
			dtx_err rv = pass == 0
			    ? hx_cluster_start(cl, nd->id, NULL)
			    : hx_cluster_wait_ready(cl, nd->id, 30000);
			if (rv != DTX_OK)
				return rv;
		}
	return DTX_OK;
}

// Runs the topology's first coordinator in this process, as its daemon
// would run (the same command line, so the same identity, data directory
// and certificate), serving its URL.
static dtx_err
embed_open(bench_env *e, const char *what)
{
	const dtx_node *hn = dtx_topo_first(e->topo, DTX_ROLE_COORDINATOR);
	hx_daemon_args *a = dtx_alloc(sizeof(*a));
	e->co_cfg = dtx_calloc(1, sizeof(coord_cfg));
	if (a == NULL || e->co_cfg == NULL) {
		dtx_free(a);
		return DTX_ENOMEM;
	}
	dtx_err rv =
	    hn == NULL ? DTX_EINVAL : hx_cluster_daemon_args(e->cl, hn->id, a);
	if (rv == DTX_OK) {
		// The runtime blocks SIGINT and SIGTERM for a daemon's
		// sigwait; this process keeps taking them as before.
		sigset_t old;
		pthread_sigmask(SIG_SETMASK, NULL, &old);
		rv = proto_daemon_open("dtx-coordinator", DTX_ROLE_COORDINATOR,
		    a->argc, a->argv, coord_cfg_table, coord_cfg_count,
		    e->co_cfg, &e->co_d);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		dtx_log_init("dtx", DTX_LOG_WARN);
	}
	dtx_free(a);
	if (rv == DTX_OK)
		rv = coord_open(e->co_d, e->co_cfg, &e->co);
	if (rv == DTX_OK) {
		proto_daemon_hooks hooks;
		coord_hooks(e->co, &hooks);
		rv = proto_daemon_serve(e->co_d, &hooks);
	}
	if (rv != DTX_OK)
		fprintf(stderr, "%s: cannot run the coordinator here: %s\n",
		    what, dtx_strerror(rv));
	return rv;
}

static void
embed_close(bench_env *e)
{
	coord_stop(e->co);
	proto_daemon_close(e->co_d);
	coord_close(e->co);
	e->co = NULL;
	e->co_d = NULL;
	dtx_free(e->co_cfg); // its strings went with the runtime
	e->co_cfg = NULL;
}

// Opens a client to every node of role head after the first (e->head).
static dtx_err
open_more_heads(bench_env *e, dtx_role head)
{
	e->heads[0] = e->head;
	e->head_urls[0] = e->head_url;
	e->nheads = 1;
	bool first = true;
	for (uint32_t i = 0; i < e->topo->n; i++) {
		const dtx_node *nd = &e->topo->nodes[i];
		if (nd->role != head)
			continue;
		if (first) {
			first = false;
			continue;
		}
		if (e->nheads == HX_COORDINATORS_MAX)
			return DTX_ERANGE;
		e->head_urls[e->nheads] = nd->url;
		dtx_err rv = bench_open_client(
		    nd->url, e->client_id, e->tls, &e->heads[e->nheads]);
		if (rv != DTX_OK)
			return rv;
		e->nheads++;
	}
	return DTX_OK;
}

int
bench_env_open_heads(bench_env *e, const char *what, const char *dir,
    int64_t participants, dtx_role head, uint32_t nheads, const char *log_level,
    int64_t accounts, bool insecure, bool embed)
{
	char err[256];
	memset(e, 0, sizeof(*e));
	if (embed && (head != DTX_ROLE_COORDINATOR || nheads != 1)) {
		fprintf(stderr,
		    "%s: an embedded coordinator runs alone (one "
		    "coordinator, no other head)\n",
		    what);
		return HX_EXIT_USAGE;
	}
	struct statfs sfs;
	if (statfs(dir, &sfs) != 0) {
		fprintf(stderr, "%s: cannot stat %s\n", what, dir);
		return HX_EXIT_FAILURE;
	}
	if (sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC) {
		fprintf(stderr,
		    "%s: %s is in memory (tmpfs): pick a real disk with "
		    "--dir\n",
		    what, dir);
		return HX_EXIT_USAGE;
	}
	snprintf(e->dir, sizeof(e->dir), "%s/.dtx-bench-XXXXXX", dir);
	if (mkdtemp(e->dir) == NULL) {
		fprintf(
		    stderr, "%s: cannot create a directory in %s\n", what, dir);
		e->dir[0] = '\0';
		return HX_EXIT_FAILURE;
	}
	hx_cluster_opts co;
	memset(&co, 0, sizeof(co));
	co.dir = e->dir;
	co.participants = (uint32_t)participants;
	co.saga = head == DTX_ROLE_SAGA;
	if (head == DTX_ROLE_SAGA)
		co.sagas = nheads;
	else
		co.coordinators = nheads;
	co.log_level = log_level;
	co.insecure = insecure;
	dtx_err rv = hx_cluster_create(&co, &e->cl, err, sizeof(err));
	if (rv != DTX_OK) {
		fprintf(stderr, "%s: %s\n", what, err);
		return HX_EXIT_FAILURE;
	}
	e->topo = hx_cluster_topo(e->cl);
	e->nparts = e->topo->nparts;
	const dtx_node *cn = dtx_topo_first(e->topo, DTX_ROLE_CLIENT);
	e->client_id = cn != NULL ? cn->id : 0;
	char certs[sizeof(e->dir) + 8];
	snprintf(certs, sizeof(certs), "%s/certs", e->dir);
	if (!insecure &&
	    hx_certs_open(certs, PROTO_ROLE_CLIENT, e->client_id, &e->tls, err,
	        sizeof(err)) != DTX_OK) {
		fprintf(stderr, "%s: %s\n", what, err);
		return HX_EXIT_FAILURE;
	}
	if (embed) // all but the first coordinator, which runs here
		rv = start_head_and_parts(e->cl, e->topo, head,
		    dtx_topo_first(e->topo, DTX_ROLE_COORDINATOR));
	else if (head == DTX_ROLE_SAGA)
		rv = start_head_and_parts(e->cl, e->topo, head, NULL);
	else
		rv = hx_cluster_start_all(e->cl, 30000);
	if (rv != DTX_OK) {
		fprintf(stderr,
		    "%s: cannot start the cluster: %s (logs in %s/logs)\n",
		    what, dtx_strerror(rv), e->dir);
		return HX_EXIT_FAILURE;
	}
	if (embed && embed_open(e, what) != DTX_OK)
		return HX_EXIT_FAILURE; // embed_open said why
	const dtx_node *hn = dtx_topo_first(e->topo, head);
	e->head_url = hn != NULL ? hn->url : NULL;
	if (hn == NULL)
		rv = DTX_EINVAL;
	else
		rv = bench_open_client(hn->url, e->client_id, e->tls, &e->head);
	if (rv == DTX_OK)
		rv = open_more_heads(e, head);
	if (rv == DTX_OK)
		rv = bench_split(what, e->topo, e->client_id, e->tls, accounts,
		    e->parts, &e->owned, &e->nowned);
	if (rv == DTX_ERANGE)
		return HX_EXIT_USAGE; // bench_split said why
	if (rv != DTX_OK) {
		fprintf(stderr, "%s: %s\n", what, dtx_strerror(rv));
		return HX_EXIT_FAILURE;
	}
	return HX_EXIT_OK;
}

int64_t
bench_heads_counter(const bench_env *e, const char *name)
{
	int64_t sum = 0;
	for (uint32_t k = 0; k < e->nheads; k++) {
		int64_t v = bench_counter(e->heads[k], name);
		if (v > 0)
			sum += v;
	}
	return sum;
}

void
bench_env_close(bench_env *e, const char *what, bool keep)
{
	for (uint32_t k = 1; k < e->nheads; k++)
		proto_client_close(e->heads[k]);
	memset(e->heads, 0, sizeof(e->heads));
	e->nheads = 0;
	proto_client_close(e->head);
	e->head = NULL;
	embed_close(e);
	bench_cluster_free(e->cl, e->parts, e->owned, e->nowned, e->nparts);
	memset(e->parts, 0, sizeof(e->parts));
	e->cl = NULL;
	e->owned = NULL;
	e->nowned = NULL;
	proto_tls_close(e->tls);
	e->tls = NULL;
	if (e->dir[0] == '\0')
		return;
	if (keep)
		fprintf(stderr, "%s: cluster kept in %s\n", what, e->dir);
	else
		(void)dtx_rmtree(e->dir);
	e->dir[0] = '\0';
}

int
bench_run_open_heads(bench_run *br, const char *what, const char *dir,
    int64_t participants, dtx_role head, uint32_t nheads, const char *log_level,
    int64_t accounts, bool insecure, bool embed, dtx_err (*init)(void *ctx),
    void *ctx)
{
	memset(br, 0, sizeof(*br));
	br->what = what;
	br->head = head;
	int rc = bench_env_open_heads(&br->env, what, dir, participants, head,
	    nheads, log_level, accounts, insecure, embed);
	if (rc != HX_EXIT_OK)
		return rc;
	dtx_err rv = init(ctx);
	if (rv != DTX_OK) {
		fprintf(stderr, "%s: cannot create the accounts: %s\n", what,
		    dtx_strerror(rv));
		return HX_EXIT_FAILURE;
	}
	return HX_EXIT_OK;
}

int
bench_run_clients(bench_run *br, size_t stride, int n, void *ctx,
    int64_t seconds, int64_t batch, int64_t inflight, uint32_t timeout_ms,
    proto_msg *(*next)(void *owner),
    void (*count)(void *owner, dtx_err rv, proto_msg *rep, uint64_t ns))
{
	const bench_env *e = &br->env;
	dtx_err rv = bench_fleet_open_heads(&br->fleet, stride, n, ctx,
	    e->heads, e->head_urls, e->nheads, e->co, e->client_id, e->tls,
	    batch, inflight, timeout_ms, next, count);
	if (rv != DTX_OK) {
		fprintf(stderr, "%s: %s\n", br->what, dtx_strerror(rv));
		return HX_EXIT_FAILURE;
	}
	br->secs = bench_fleet_run(&br->fleet, br->what, seconds, e->cl,
	    br->head, &br->cpu0, &br->cpu1);
	if (br->secs < 0)
		return HX_EXIT_FAILURE; // bench_fleet_run said why
	if (bench_tally_merge(
	        br->fleet.workers, stride, n, &br->sum, &br->all) != DTX_OK) {
		fprintf(stderr, "%s: out of memory\n", br->what);
		return HX_EXIT_FAILURE;
	}
	br->p50_ms = (double)hx_quantile(br->all, br->sum.nlat, 0.50) / 1e6;
	br->p99_ms = (double)hx_quantile(br->all, br->sum.nlat, 0.99) / 1e6;
	return HX_EXIT_OK;
}

void
bench_run_close(bench_run *br, bool keep)
{
	bench_fleet_close(&br->fleet);
	dtx_free(br->all);
	br->all = NULL;
	bench_env_close(&br->env, br->what, keep);
}

void
bench_say_errors(const char *what, uint64_t errors, dtx_err first)
{
	if (errors > 0)
		fprintf(stderr, "%s: %" PRIu64 " calls failed (first: %s)\n",
		    what, errors, dtx_strerror(first));
}
