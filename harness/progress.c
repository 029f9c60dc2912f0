// SPDX-License-Identifier: MIT
//
// The live status of a running workload: on a terminal one line redrawn
// four times a second (elapsed/total, ok/fail/info, live throughput, the
// fault in force); otherwise a plain line every five seconds, so logs of
// unattended runs stay readable.

#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "harness_int.h"

struct hx_progress {
	FILE *out;
	bool tty;
	uint64_t total_ms;
	hx_progress_fn fn;
	void *arg;
	pthread_t th;
	atomic_bool stop;
	uint64_t t0;
};

static void
draw(hx_progress *p, uint64_t now, uint64_t *last_ok, uint64_t *last_t)
{
	hx_progress_sample s;
	memset(&s, 0, sizeof(s));
	snprintf(s.fault, sizeof(s.fault), "none");
	p->fn(p->arg, &s);
	double el = (double)(now - p->t0) / 1e9;
	double dt = (double)(now - *last_t) / 1e9;
	double rate = dt > 0 ? (double)(s.ok - *last_ok) / dt : 0;
	*last_ok = s.ok;
	*last_t = now;
	// A terminal gets one line redrawn in place, a log one line a sample.
	fprintf(p->out,
	    p->tty ? "\r\033[K%5.1fs/%.0fs  ok %llu  fail %llu  info %llu  "
	             "%.0f ok/s  fault: %s"
	           : "progress %.0fs/%.0fs ok=%llu fail=%llu info=%llu "
	             "rate=%.0f/s fault=%s\n",
	    el, (double)p->total_ms / 1e3, (unsigned long long)s.ok,
	    (unsigned long long)s.fail, (unsigned long long)s.info, rate,
	    s.fault);
	fflush(p->out);
}

static void *
run(void *arg)
{
	hx_progress *p = arg;
	uint64_t period_ms = p->tty ? 250 : 5000;
	uint64_t last_ok = 0, last_t = p->t0, next = p->t0;
	while (!atomic_load(&p->stop)) {
		next += period_ms * 1000000u;
		while (!atomic_load(&p->stop) && dtx_mono_ns() < next)
			dtx_sleep_ms(50);
		if (atomic_load(&p->stop))
			break;
		draw(p, dtx_mono_ns(), &last_ok, &last_t);
	}
	return NULL;
}

dtx_err
hx_progress_start(FILE *out, uint64_t total_ms, hx_progress_fn fn, void *arg,
    hx_progress **res)
{
	hx_progress *p = dtx_calloc(1, sizeof(*p));
	if (p == NULL)
		return DTX_ENOMEM;
	p->out = out;
	p->tty = isatty(fileno(out)) == 1;
	p->total_ms = total_ms;
	p->fn = fn;
	p->arg = arg;
	p->t0 = dtx_mono_ns();
	atomic_init(&p->stop, false);
	if (pthread_create(&p->th, NULL, run, p) != 0) {
		dtx_free(p);
		return DTX_ENOMEM;
	}
	*res = p;
	return DTX_OK;
}

void
hx_progress_stop(hx_progress *p)
{
	if (p == NULL)
		return;
	atomic_store(&p->stop, true);
	pthread_join(p->th, NULL);
	if (p->tty) {
		fputc('\n', p->out);
		fflush(p->out);
	}
	dtx_free(p);
}
