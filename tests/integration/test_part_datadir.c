// SPDX-License-Identifier: MIT
//
// Rule 24 with a real dtx-participant: after committed transfers and a
// stop, a deleted WAL segment, a newest segment cut to its header, a
// damaged or poisoned clock bound or another node's data directory makes
// the restart fail (non-zero exit, a
// log line naming the file) instead of coming back empty; the untouched
// directory restarts with its data.

#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "storage.h"
#include "test_part_harness.h"

#define P1 1u
#define P2 2u

static int
setup2(void **state)
{
	return h_setup(state, 2, 2, NULL);
}

// acct:1 = acct:2 = 100 on node id, then three committed transfers of 10
// from acct:1 to acct:2 (txids base+1 ..).
static void
transfers(harness *h, uint32_t id, uint64_t base)
{
	assert_true(h_put(h, id, base + 1, "acct:1", 100));
	assert_true(h_put(h, id, base + 2, "acct:2", 100));
	for (uint64_t i = 0; i < 3; i++) {
		proto_op ops[2] = { op_add("acct:1", -10, 0),
			op_add("acct:2", 10, 0) };
		uint64_t tx = base + 10 + i;
		clk_ts pts =
		    h_prepare_yes(h, id, tx, PROTO_MODE_2PC, NULL, 0, ops, 2);
		assert_true(pts != 0);
		assert_int_equal(
		    h_txid(h, id, PROTO_COMMIT, tx, pts, NULL), PROTO_ACK);
	}
	h_expect(h, id, 0, "acct:1", 70);
	h_expect(h, id, 0, "acct:2", 130);
}

// Stops node id with SIGTERM and waits for a clean exit.
static void
stop(harness *h, uint32_t id)
{
	int st = 0;
	assert_int_equal(hx_cluster_signal(h->c, id, SIGTERM), DTX_OK);
	assert_int_equal(hx_cluster_wait_exit(h->c, id, 10000, &st), DTX_OK);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

// Starts node id and expects it to refuse: a non-zero exit, a line with
// both what and what2 in its log, and no "serving on" since.
static void
refuses(harness *h, uint32_t id, const char *what, const char *what2)
{
	int served = h_log_count(h, id, "serving on");
	assert_int_equal(hx_cluster_start(h->c, id, NULL), DTX_OK);
	int st = 0;
	assert_int_equal(hx_cluster_wait_exit(h->c, id, 20000, &st), DTX_OK);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
	assert_int_equal(h_log_count(h, id, "serving on"), served);
	char line[4096];
	bool found = false;
	FILE *f = fopen(hx_cluster_log(h->c, id), "r");
	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, what) != NULL && strstr(line, what2);
	fclose(f);
	if (!found)
		fail_msg("no log line of node %u with \"%s\" and \"%s\"", id,
		    what, what2);
}

// The name of the newest WAL segment in dir into out.
static void
newest_segment(const char *dir, char *out, size_t n)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	uint64_t best = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		uint64_t f;
		if (stor_wal_seg_parse(de->d_name, &f) && f > best)
			best = f;
	}
	closedir(d);
	assert_true(best > 0);
	stor_wal_seg_name(out, n, best);
}

static void
test_deleted_segment(void **state)
{
	harness *h = *state;
	transfers(h, P1, 100);
	stop(h, P1);
	char store[4200], name[64], path[4300];
	snprintf(store, sizeof(store), "%s/store", hx_cluster_data(h->c, P1));
	newest_segment(store, name, sizeof(name));
	// The untouched directory restarts with its data.
	assert_int_equal(h_start(h, P1, NULL), DTX_OK);
	h_expect(h, P1, 0, "acct:1", 70);
	h_expect(h, P1, 0, "acct:2", 130);
	stop(h, P1);
	snprintf(path, sizeof(path), "%s/%s", store, name);
	assert_int_equal(unlink(path), 0);
	refuses(h, P1, name, "missing");
	// Again: it never comes back empty.
	refuses(h, P1, name, "missing");
}

// The newest segment cut to its header after acknowledged commits went
// into it: the restart fails naming the file, twice, and the file is left
// as it was; a participant that never wrote (its segment only a header)
// restarts.
static void
test_segment_cut_to_header(void **state)
{
	harness *h = *state;
	char store[4200], name[64], path[4300];
	// Node 2 never wrote a record: header-only segment, restarts.
	stop(h, P2);
	assert_int_equal(h_start(h, P2, NULL), DTX_OK);
	transfers(h, P1, 100);
	stop(h, P1);
	snprintf(store, sizeof(store), "%s/store", hx_cluster_data(h->c, P1));
	newest_segment(store, name, sizeof(name));
	snprintf(path, sizeof(path), "%s/%s", store, name);
	assert_int_equal(truncate(path, STOR_WAL_SEG_HDR), 0);
	refuses(h, P1, name, "held durable");
	refuses(h, P1, name, "held durable");
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, STOR_WAL_SEG_HDR);
	// Node 2 serves and writes after its restart.
	assert_true(h_put(h, P2, 500, "acct:9", 5));
	h_expect(h, P2, 0, "acct:9", 5);
}

// Writes a well-formed clock bound file (magic, l, CRC32C) to path.
static void
write_bound(const char *path, uint64_t l)
{
	uint8_t b[20];
	memcpy(b, "DTXHLCB1", 8);
	dtx_put_le64(b + 8, l);
	dtx_put_le32(b + 16, dtx_crc32c(0, b, 16));
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, sizeof(b), f), sizeof(b));
	assert_int_equal(fclose(f), 0);
}

// A damaged clock bound file, one poisoned far ahead of this machine's
// clock and one in the reserved top of the HLC range each stop the
// restart (non-zero exit, never "serving on") with a line naming the file
// and the fix; with the file removed, as the message says, it restarts
// with its data.
static void
test_bad_clock_bound(void **state)
{
	harness *h = *state;
	transfers(h, P1, 100);
	stop(h, P1);
	char path[4300];
	snprintf(
	    path, sizeof(path), "%s/clock.bound", hx_cluster_data(h->c, P1));
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fputs("DTXHLCB1 garbage, not a bound", f);
	assert_int_equal(fclose(f), 0);
	refuses(h, P1, path, "remove the file");
	uint64_t now_ms = dtx_wall_ns() / 1000000u;
	write_bound(path, now_ms + 10ull * 365 * 24 * 3600 * 1000);
	refuses(h, P1, path, "ahead of this machine's clock");
	write_bound(path, CLK_L_MAX);
	refuses(h, P1, path, "reserved top");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(h_start(h, P1, NULL), DTX_OK);
	h_expect(h, P1, 0, "acct:1", 70);
	h_expect(h, P1, 0, "acct:2", 130);
}

static void
test_foreign_data_dir(void **state)
{
	harness *h = *state;
	transfers(h, P1, 100);
	transfers(h, P2, 200);
	stop(h, P1);
	stop(h, P2);
	// Node 2's data directory in node 1's place.
	char d1[4200], d2[4200], cmd[9000];
	snprintf(d1, sizeof(d1), "%s", hx_cluster_data(h->c, P1));
	snprintf(d2, sizeof(d2), "%s", hx_cluster_data(h->c, P2));
	snprintf(
	    cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'", d1, d2, d1);
	assert_int_equal(system(cmd), 0);
	refuses(h, P1, STOR_IDENT_NAME, "belongs to node 2");
	// Node 2 still starts on its own directory.
	assert_int_equal(h_start(h, P2, NULL), DTX_OK);
	h_expect(h, P2, 0, "acct:1", 70);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_deleted_segment, setup2, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_foreign_data_dir, setup2, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_segment_cut_to_header, setup2, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_bad_clock_bound, setup2, h_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
