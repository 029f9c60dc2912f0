// SPDX-License-Identifier: MIT
//
// The orchestrator killed (SIGKILL, through its crash points) at every step
// boundary: after logging a saga, after logging a step's start, after a
// participant applied a step but before its outcome was logged, and in the
// middle of compensation. After a restart each saga ends committed or
// fully compensated, in the direction its log says, a resubmission gets
// that outcome, and the total is conserved. Then the same under load with
// a kill at an arbitrary moment.

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_saga_util.h"

#define NACCT 8
#define INIT 1000

static tsaga T;

static int
setup(void **state)
{
	*state = &T;
	if (ts_create(&T, 2) != 0 || ts_start_all(&T) != 0)
		return -1;
	return ts_init_accounts(&T, NACCT, INIT);
}

// Submits once, without retrying: the orchestrator dies on the way.
static dtx_err
submit_once(const char *gid, proto_saga_step *st, uint32_t n)
{
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_SAGA_SUBMIT);
	proto_msg_init(&rep, PROTO_NONE);
	req.u.saga_submit = (proto_saga_submit) {
		.gid = (char *)gid, .n_steps = n, .steps = st
	};
	proto_retry once = { .attempts = 1 };
	proto_call_opts o = { .timeout_ms = 10000, .retry = &once };
	dtx_err rv =
	    proto_client_call(ts_client(&T, T.saga_id), &req, &rep, &o);
	proto_msg_free(&rep);
	return rv;
}

typedef struct crash_case {
	const char *point;
	long nth;
	bool failing; // step 1 fails: the saga must compensate
	proto_saga_state want;
} crash_case;

static void
run_case(const crash_case *cc, int idx)
{
	int64_t before[NACCT], after[NACCT];
	char gid[64], k0[32], k1[32], why[300];
	int from = idx % NACCT, to = (idx + 3) % NACCT;
	int64_t amt = 10 + idx;
	ts_total(&T, NACCT, before);
	proto_saga_step st[2];
	ts_add_step(&T, &st[0], k0, from, -amt, 0);
	ts_add_step(&T, &st[1], k1, to, cc->failing ? -(before[to] + 1) : amt,
	    cc->failing ? 0 : INT64_MIN);
	snprintf(gid, sizeof(gid), "crash-%d-%s-%ld", idx, cc->point, cc->nth);

	assert_int_equal(ts_fault(&T, T.saga_id, "crash_at",
	                     (int64_t[]) { cc->nth }, 1, cc->point),
	    0);
	dtx_err rv = submit_once(gid, st, 2);
	assert_int_not_equal(rv, DTX_OK); // it died before answering
	int status = 0;
	assert_int_equal(
	    hx_cluster_wait_exit(T.c, T.saga_id, 10000, &status), DTX_OK);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	ts_drop_client(&T, T.saga_id);
	assert_int_equal(ts_start(&T, T.saga_id, NULL), 0);

	// Recovery finishes it in the direction its log says.
	assert_int_equal(ts_wait_final(&T, gid, 20000), (int)cc->want);
	int32_t failed = 9;
	int out = ts_submit(&T, gid, st, 2, &failed, why, sizeof(why));
	assert_int_equal(out,
	    cc->want == PROTO_SAGA_COMMITTED ? PROTO_COMMITTED : PROTO_ABORTED);
	assert_int_equal(failed, cc->failing ? 1 : -1);
	assert_int_equal(ts_total(&T, NACCT, after), NACCT * INIT);
	if (cc->want == PROTO_SAGA_COMMITTED) {
		assert_int_equal(after[from], before[from] - amt);
		assert_int_equal(after[to], before[to] + amt);
	} else {
		assert_memory_equal(after, before, sizeof(before));
	}
	int64_t recovered = 0;
	assert_int_equal(
	    ts_health(&T, T.saga_id, NULL, 0, "recovered", &recovered), 0);
	assert_int_equal(recovered, 1);
}

static void
test_crash_at_every_boundary(void **state)
{
	(void)state;
	static const crash_case cases[] = {
		{ "saga.after_begin_log", 1, false, PROTO_SAGA_COMMITTED },
		{ "saga.after_step_start_log", 1, false, PROTO_SAGA_COMMITTED },
		{ "saga.after_step_applied", 1, false, PROTO_SAGA_COMMITTED },
		{ "saga.after_step_applied", 2, false, PROTO_SAGA_COMMITTED },
		{ "saga.after_begin_log", 1, true, PROTO_SAGA_ABORTED },
		{ "saga.after_step_applied", 2, true, PROTO_SAGA_ABORTED },
		{ "saga.during_compensation", 1, true, PROTO_SAGA_ABORTED },
		{ "saga.during_compensation", 2, true, PROTO_SAGA_ABORTED },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fprintf(stderr, "# %s:%ld %s\n", cases[i].point, cases[i].nth,
		    cases[i].failing ? "(failing saga)" : "");
		run_case(&cases[i], (int)i);
	}
}

typedef struct load_arg {
	int id;
	_Atomic bool *stop;
	int n;
	char gids[400][32];
	int out[400];
} load_arg;

static void *
load(void *p)
{
	load_arg *w = p;
	uint64_t seed = 99 + (uint64_t)w->id;
	while (!atomic_load(w->stop) && w->n < 400) {
		char *gid = w->gids[w->n];
		snprintf(gid, 32, "load-%d-%d", w->id, w->n);
		int from, to;
		ts_pick_pair(&seed, NACCT, &from, &to);
		int64_t amt = 1 + (int64_t)dtx_rand_below(&seed, 400);
		// ts_call retries through the restart; resubmitting a gid
		// is idempotent.
		w->out[w->n] =
		    ts_transfer(&T, gid, from, to, amt, NULL, NULL, 0);
		w->n++;
	}
	return NULL;
}

static void
test_kill_under_load(void **state)
{
	(void)state;
	enum { NW = 8 };
	pthread_t th[NW];
	static load_arg w[NW];
	_Atomic bool stop = false;
	assert_non_null(ts_client(&T, T.saga_id));
	for (int i = 0; i < NW; i++) {
		w[i] = (load_arg) { .id = i, .stop = &stop };
		assert_int_equal(pthread_create(&th[i], NULL, load, &w[i]), 0);
	}
	dtx_sleep_ms(1500);
	assert_int_equal(hx_cluster_signal(T.c, T.saga_id, SIGKILL), DTX_OK);
	dtx_sleep_ms(300);
	assert_int_equal(ts_start(&T, T.saga_id, NULL), 0);
	dtx_sleep_ms(1500);
	atomic_store(&stop, true);
	int n = 0, unknown = 0;
	for (int i = 0; i < NW; i++) {
		pthread_join(th[i], NULL);
		for (int k = 0; k < w[i].n; k++) {
			n++;
			int st = ts_wait_final(&T, w[i].gids[k], 20000);
			assert_true(st == PROTO_SAGA_COMMITTED ||
			    st == PROTO_SAGA_ABORTED);
			if (w[i].out[k] != PROTO_COMMITTED &&
			    w[i].out[k] != PROTO_ABORTED)
				unknown++;
			// An answer the client got must match the end.
			if (w[i].out[k] == PROTO_COMMITTED)
				assert_int_equal(st, PROTO_SAGA_COMMITTED);
			if (w[i].out[k] == PROTO_ABORTED)
				assert_int_equal(st, PROTO_SAGA_ABORTED);
		}
	}
	fprintf(
	    stderr, "# %d sagas, %d answered unknown or failed\n", n, unknown);
	assert_true(n > NW);
	int64_t bal[NACCT];
	ts_expect_conserved(&T, NACCT, INIT, bal);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_at_every_boundary),
		cmocka_unit_test(test_kill_under_load),
	};
	return cmocka_run_group_tests(tests, setup, ts_group_teardown);
}
