// SPDX-License-Identifier: MIT
//
// The run report's trace pages: for an anomaly that names a transaction or
// saga, its causal history from the node logs the report directory holds
// (dir/logs), as dtx trace --run draws it, so that the report links each
// anomaly to how it came about on every node.

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "harness_int.h"

// A file name for the trace of a: trace-tx<txid>.html or
// trace-saga-<crc of gid>.html.
static void
page_name(const hx_anomaly *a, char *buf, size_t len)
{
	if (a->has_txid)
		snprintf(buf, len, "trace-tx%" PRIu64 ".html", a->txid);
	else
		snprintf(buf, len, "trace-saga-%08x.html",
		    dtx_crc32c(0, a->gid, strlen(a->gid)));
}

bool
hx__report_trace(const char *dir, int64_t run_id, const hx_anomaly *a,
    char *name, size_t len)
{
	if (!a->has_txid && a->gid == NULL)
		return false;
	page_name(a, name, len);
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *probe = fopen(path, "r");
	if (probe != NULL) {
		fclose(probe); // another anomaly of the same one wrote it
		return true;
	}
	hx_node_log *logs = NULL;
	size_t n = 0;
	if (hx_node_logs_in_dir(dir, &logs, &n) != DTX_OK)
		return false;
	const char **paths = dtx_calloc(n + 1, sizeof(*paths));
	hx_trace t;
	hx_trace_init(&t, a->has_txid ? a->txid : 0, a->gid);
	dtx_err rv = paths == NULL ? DTX_ENOMEM : DTX_OK;
	for (size_t i = 0; rv == DTX_OK && i < n; i++)
		paths[i] = logs[i].path;
	if (rv == DTX_OK)
		rv = hx_trace_add_logs(&t, paths, n);
	if (rv == DTX_OK)
		rv = hx_trace_order(&t);
	FILE *f = rv == DTX_OK ? fopen(path, "w") : NULL;
	if (f != NULL) {
		rv = hx_trace_html(&t, f);
		fprintf(f,
		    "<!-- from run %" PRId64 "'s node logs; dtx trace --run "
		    "%" PRId64 " prints it as text -->\n",
		    run_id, run_id);
		if (fclose(f) != 0)
			rv = DTX_EIO;
	} else {
		rv = DTX_EIO;
	}
	hx_trace_fini(&t);
	dtx_free(paths);
	hx_node_logs_free(logs, n);
	return rv == DTX_OK;
}
