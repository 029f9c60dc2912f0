// SPDX-License-Identifier: MIT
//
// dtx bank's report of a finished run: one JSON object with --json, else
// a few summary lines and the checkers' verdicts.

#include <inttypes.h>
#include <string.h>

#include "cmd_bank.h"

static void
print_anomalies(hx_json *j, const hx_verdict *v, size_t *count)
{
	hx_json_arr_begin(j, "anomalies");
	*count = 0;
	for (size_t i = 0; i < hx_verdict_count(v); i++) {
		const hx_check *c = hx_verdict_check(v, i);
		for (size_t k = 0; k < c->nanoms; k++) {
			const hx_anomaly *a = &c->anoms[k];
			hx_json_obj_begin(j, NULL);
			hx_json_str(j, "checker", a->checker);
			hx_json_str(j, "kind", a->kind);
			if (a->has_txid)
				hx_json_u64(j, "txid", a->txid);
			if (a->gid != NULL)
				hx_json_str(j, "gid", a->gid);
			hx_json_int(j, "op_index", a->op_index);
			if (a->detail != NULL) {
				hx_json_key(j, "detail");
				fputs(a->detail, j->out);
			}
			hx_json_obj_end(j);
			(*count)++;
		}
	}
	hx_json_arr_end(j);
}

void
bank_print_schedule(const hx_bankrun_conf *c)
{
	uint64_t lo, hi, glo, ghi;
	hx_bankrun_ranges(&c->sched, &lo, &hi, &glo, &ghi);
	printf("dtx bank: nemesis schedule:");
	if (c->kinds & HX_NEM_PARTITION)
		printf(" partition shapes %s (one-way onset up to %" PRId64
		       " ms),",
		    c->sched.shapes, c->onset_ms);
	printf(" faults held %.2f-%.2f s, %.2f-%.2f s apart%s\n",
	    (double)lo / 1e3, (double)hi / 1e3, (double)glo / 1e3,
	    (double)ghi / 1e3,
	    c->sched.defaults_3pc
	        ? " (3pc partition defaults; --partition-shapes and "
	          "--nemesis-interval override them)"
	        : "");
}

static const hx_stats_f *
stats_f(const hx_verdict *v, const char *f)
{
	for (size_t i = 0; i < v->stats.nfs; i++)
		if (strcmp(v->stats.fs[i].f, f) == 0)
			return &v->stats.fs[i];
	return NULL;
}

// The transfers' counts and rate, as both forms of the report show them.
typedef struct xfer_stats {
	const hx_stats_f *tf; // the transfers' stats, or NULL
	uint64_t ok;
	size_t fail, info;
	double per_s; // ok transfers per second
} xfer_stats;

static void
report_json(
    const hx_bankrun_conf *c, const hx_bankrun_out *o, const xfer_stats *x)
{
	const hx_verdict *v = &o->verdict;
	const hx_stats_f *tf = x->tf;
	hx_json j;
	size_t na;
	hx_json_begin(&j, stdout);
	hx_json_verdict(&j, "valid", v->valid);
	hx_json_int(&j, "run_id", o->run_id);
	hx_json_str(&j, "mode", c->mode);
	hx_json_u64(&j, "seed", c->seed);
	hx_json_int(&j, "ops", (int64_t)v->stats.client_ops);
	hx_json_int(&j, "ok_transfers", (int64_t)x->ok);
	hx_json_int(&j, "fail_transfers", (int64_t)x->fail);
	hx_json_int(&j, "info_transfers", (int64_t)x->info);
	hx_json_num(&j, "throughput", x->per_s);
	if (tf != NULL) {
		hx_json_obj_begin(&j, "latency_ms");
		hx_json_num(&j, "p50", (double)tf->p50 / 1e6);
		hx_json_num(&j, "p90", (double)tf->p90 / 1e6);
		hx_json_num(&j, "p99", (double)tf->p99 / 1e6);
		hx_json_num(&j, "max", (double)tf->max / 1e6);
		hx_json_obj_end(&j);
	}
	if (c->kinds != 0) {
		uint64_t lo, hi, glo, ghi;
		hx_bankrun_ranges(&c->sched, &lo, &hi, &glo, &ghi);
		hx_json_obj_begin(&j, "nemesis_schedule");
		if (c->kinds & HX_NEM_PARTITION) {
			hx_json_str(&j, "partition_shapes", c->sched.shapes);
			hx_json_int(&j, "partition_onset_max_ms", c->onset_ms);
		}
		hx_json_int(&j, "hold_min_ms", (int64_t)lo);
		hx_json_int(&j, "hold_max_ms", (int64_t)hi);
		hx_json_int(&j, "gap_min_ms", (int64_t)glo);
		hx_json_int(&j, "gap_max_ms", (int64_t)ghi);
		hx_json_str(&j, "defaults",
		    c->sched.defaults_3pc ? "3pc partition" : "plain");
		hx_json_int(
		    &j, "planned_interval_ms", (int64_t)o->plan_interval_ms);
		hx_json_int(&j, "planned_gap_ms", (int64_t)o->plan_gap_ms);
		hx_json_obj_end(&j);
	}
	hx_json_obj_begin(&j, "faults");
	for (int k = 0; k < HX_NEM_NKINDS; k++)
		hx_json_int(&j, hx_nem_kind_name(k), (int64_t)o->started[k]);
	hx_json_obj_end(&j);
	hx_json_int(&j, "fault_errors", (int64_t)o->nem_errors);
	hx_json_obj_begin(&j, "faults_not_run");
	for (int k = 0; k < HX_NEM_NKINDS; k++)
		if (o->not_run & (1u << k))
			hx_json_bool(&j, hx_nem_kind_name(k), true);
	hx_json_obj_end(&j);
	hx_json_str(&j, "faults_not_run_why", o->not_run_why);
	hx_json_bool(&j, "partitions_simulated", o->simulated);
	hx_json_int(&j, "in_doubt_after_recovery", (int64_t)o->in_doubt);
	hx_json_arr_begin(&j, "down_forever");
	for (uint32_t i = 0; i < 32; i++)
		if (o->gone & (1u << i))
			hx_json_int(&j, NULL, i);
	hx_json_arr_end(&j);
	hx_json_arr_begin(&j, "unanswered_after_recovery");
	for (uint32_t i = 0; i < 32; i++)
		if (o->unanswered & (1u << i))
			hx_json_int(&j, NULL, i);
	hx_json_arr_end(&j);
	hx_json_int(
	    &j, "harness_clients_left_open", (int64_t)proto_client_left_open());
	print_anomalies(&j, v, &na);
	hx_json_str(&j, "results", c->results);
	hx_json_str(&j, "report_dir", o->report_dir);
	hx_verdict_json(&j, "verdict", v);
	hx_json_end(&j);
}

static void
report_text(
    const hx_bankrun_conf *c, const hx_bankrun_out *o, const xfer_stats *x)
{
	const hx_verdict *v = &o->verdict;
	const hx_stats_f *tf = x->tf;
	printf("dtx bank: run %" PRId64 ", mode %s, seed %" PRIu64
	       ", %zu accounts, total %" PRId64 "\n",
	    o->run_id, c->mode, c->seed, o->nacct, o->total);
	printf("ops: %zu client ops in %.1f s; transfers ok %" PRIu64
	       ", fail %zu, info %zu; %.1f ok transfers/s\n",
	    v->stats.client_ops, o->secs, x->ok, x->fail, x->info, x->per_s);
	if (tf != NULL)
		printf("transfer latency: p50 %.1f ms, p90 %.1f ms, p99 %.1f "
		       "ms, max %.1f ms\n",
		    (double)tf->p50 / 1e6, (double)tf->p90 / 1e6,
		    (double)tf->p99 / 1e6, (double)tf->max / 1e6);
	printf("faults:");
	for (int k = 0; k < HX_NEM_NKINDS; k++)
		printf(" %s %zu", hx_nem_kind_name(k), o->started[k]);
	printf(" (%zu failed actions)\n", o->nem_errors);
	if (o->not_run != 0)
		printf("faults NOT run: %s\n", o->not_run_why);
	if (o->simulated && o->started[2] > 0)
		printf("note: partitions were simulated in-process (the "
		       "daemons' FAULT \"partition\"); use --netns for real "
		       "packet drops\n");
	if (o->in_doubt > 0 || o->gone != 0)
		printf("recovery: %" PRIu64
		       " transaction(s) still in doubt at the deadline\n",
		    o->in_doubt);
	for (uint32_t i = 0; i < 32; i++)
		if (o->gone & (1u << i))
			printf("kill-forever: node %u was down for the rest of "
			       "the run (never restarted)\n",
			    i);
	for (uint32_t i = 0; i < 32; i++)
		if (o->unanswered & (1u << i))
			printf("recovery: node %u did not answer after the "
			       "faults were healed (see its log); its answers "
			       "are unknown\n",
			    i);
	size_t left = proto_client_left_open();
	if (left > 0)
		printf(
		    "harness: %zu of this run's clients could not be closed: "
		    "nng stopped tearing connections down in this process "
		    "(README, \"Known limit\"), so from then on its "
		    "clients could not reconnect and the load it measured "
		    "fell; the checks still hold for what it saw\n",
		    left);
	hx_verdict_print(stdout, v);
	printf("results: %s (run %" PRId64 ")\nreport: %s/index.html\n",
	    c->results, o->run_id, o->report_dir);
}

void
bank_report(const hx_bankrun_conf *c, const hx_bankrun_out *o, bool json)
{
	// The list-append workload's transactions are its "txn" ops.
	xfer_stats x = { .tf = stats_f(&o->verdict,
		             c->workload != NULL ? "txn" : "transfer"),
		.ok = o->ok_transfers };
	x.fail = x.tf ? x.tf->counts[HX_OP_FAIL] : 0;
	x.info = x.tf ? x.tf->counts[HX_OP_INFO] : 0;
	x.per_s = o->secs > 0 ? (double)x.ok / o->secs : 0;
	if (json)
		report_json(c, o, &x);
	else
		report_text(c, o, &x);
}
