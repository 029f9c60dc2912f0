// SPDX-License-Identifier: MIT
//
// The nemesis schedule is a pure function of its seed and settings: the
// same seed gives the same schedule, different seeds differ; partition
// shapes give Jepsen's grudges; targets select nodes by role; every fault
// that starts also ends before the workload does; holds and gaps follow
// their settings; disk faults strike participants and tear only bytes
// past the WAL's last complete record; a short run still plans every
// requested kind; overlapping faults stay within max_concurrent, never
// share a node and never overlap partitions; crash-point plans name only
// known points their node's role reaches, and cover them all.

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "harness.h"
#include "storage.h"

// Coordinator 0, participants 1..np, saga np+1 (when saga), client last.
static void
make_topo(dtx_topo *t, uint32_t np, bool saga)
{
	memset(t, 0, sizeof(*t));
	uint32_t n = np + 1 + (saga ? 1 : 0);
	for (uint32_t i = 0; i < n; i++) {
		t->nodes[i].id = i;
		t->nodes[i].role = i == 0 ? DTX_ROLE_COORDINATOR
		    : i <= np             ? DTX_ROLE_PARTICIPANT
		                          : DTX_ROLE_SAGA;
		snprintf(t->nodes[i].url, sizeof(t->nodes[i].url),
		    "tcp://127.0.0.1:%u", 7000 + i);
		if (t->nodes[i].role == DTX_ROLE_PARTICIPANT)
			t->parts[t->nparts++] = i;
	}
	t->nodes[n].id = n;
	t->nodes[n].role = DTX_ROLE_CLIENT;
	t->n = n + 1;
	t->max_id = n + 1;
}

static void
plan(const dtx_topo *t, uint64_t seed, unsigned kinds, hx_nem_target tg,
    hx_nem_event **ev, size_t *n)
{
	hx_nem_cfg c = { .kinds = kinds,
		.target = tg,
		.seed = seed,
		.interval_ms = 2000,
		.duration_ms = 60000,
		.max_offset_ms = 500,
		.topo = t };
	assert_int_equal(hx_nemesis_plan(&c, ev, n), DTX_OK);
}

// Plans the kinds against the coordinator with seed: some events, each
// aimed at node 0.
static void
expect_coordinator_only(const dtx_topo *t, uint64_t seed, unsigned kinds)
{
	hx_nem_event *ev;
	size_t n;
	plan(t, seed, kinds, HX_TARGET_COORDINATOR, &ev, &n);
	assert_true(n > 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ev[i].targets[0], 0);
	dtx_free(ev);
}

static const unsigned all_kinds =
    HX_NEM_KILL | HX_NEM_PAUSE | HX_NEM_PARTITION | HX_NEM_CLOCK | HX_NEM_DISK;

static void
test_same_seed_same_schedule(void **state)
{
	(void)state;
	dtx_topo t;
	make_topo(&t, 3, true);
	hx_nem_event *a, *b, *c;
	size_t na, nb, nc;
	plan(&t, 42, all_kinds, HX_TARGET_ANY, &a, &na);
	plan(&t, 42, all_kinds, HX_TARGET_ANY, &b, &nb);
	plan(&t, 43, all_kinds, HX_TARGET_ANY, &c, &nc);
	assert_true(na > 8);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na * sizeof(*a));
	assert_true(na != nc || memcmp(a, c, na * sizeof(*a)) != 0);
	// The recorded form is the same too.
	hx_sb s1 = { 0 }, s2 = { 0 };
	for (size_t i = 0; i < na; i++) {
		hx_nem_event_json(&a[i], &s1);
		hx_nem_event_json(&b[i], &s2);
	}
	char *j1 = hx_sb_take(&s1), *j2 = hx_sb_take(&s2);
	assert_string_equal(j1, j2);
	dtx_free(j1);
	dtx_free(j2);
	dtx_free(a);
	dtx_free(b);
	dtx_free(c);
}

// Every start is followed by its end on the same targets before the next
// fault starts, all within the duration; each kind appears.
static void
test_schedule_shape(void **state)
{
	(void)state;
	dtx_topo t;
	make_topo(&t, 3, false);
	for (uint64_t seed = 1; seed <= 20; seed++) {
		hx_nem_event *ev;
		size_t n;
		bool seen[HX_NEM_NKINDS] = { false };
		plan(&t, seed, all_kinds, HX_TARGET_ANY, &ev, &n);
		assert_true(n % 2 == 0);
		for (size_t i = 0; i < n; i += 2) {
			hx_nem_event *s = &ev[i], *e = &ev[i + 1];
			assert_true(hx_nem_action_starts(s->action));
			assert_false(hx_nem_action_starts(e->action));
			// A disk fault's node comes back with a restart.
			if (s->action == HX_NA_DISK)
				assert_int_equal(e->action, HX_NA_RESTART);
			else
				assert_string_equal(
				    hx_nem_action_kind(s->action),
				    hx_nem_action_kind(e->action));
			assert_true(s->at_ms < e->at_ms);
			assert_true(e->at_ms < 60000);
			if (i + 2 < n)
				assert_true(e->at_ms <= ev[i + 2].at_ms);
			if (s->action == HX_NA_KILL ||
			    s->action == HX_NA_PAUSE || s->action == HX_NA_DISK)
				assert_int_equal(s->targets[0], e->targets[0]);
			for (int k = 0; k < HX_NEM_NKINDS; k++) {
				if (strcmp(hx_nem_action_kind(s->action),
				        hx_nem_kind_name(k)) == 0)
					seen[k] = true;
			}
		}
		for (int k = 0; k < HX_NEM_NKINDS; k++)
			if (all_kinds & (1u << k))
				assert_true(seen[k]);
		dtx_free(ev);
	}
}

static uint32_t
bit(uint32_t id)
{
	return 1u << id;
}

static void
test_partition_shapes(void **state)
{
	(void)state;
	hx_grudge g;
	uint32_t nodes[5] = { 4, 2, 0, 1, 3 };

	// Halves: bisect puts floor(n/2) first.
	hx_partition_grudge(HX_SHAPE_HALVES, nodes, 5, &g);
	uint32_t a = bit(4) | bit(2), b = bit(0) | bit(1) | bit(3);
	assert_int_equal(g.drop[4], b);
	assert_int_equal(g.drop[2], b);
	assert_int_equal(g.drop[0], a);
	assert_int_equal(g.drop[1], a);
	assert_int_equal(g.drop[3], a);

	// One: nodes[0] alone.
	hx_partition_grudge(HX_SHAPE_ONE, nodes, 5, &g);
	assert_int_equal(g.drop[4], bit(0) | bit(1) | bit(2) | bit(3));
	for (int i = 0; i < 4; i++)
		assert_int_equal(g.drop[i], bit(4));

	// Bridge: halves {4,2} {0,1,3}; 0 talks to everyone.
	hx_partition_grudge(HX_SHAPE_BRIDGE, nodes, 5, &g);
	assert_int_equal(g.drop[0], 0);
	assert_int_equal(g.drop[4], bit(1) | bit(3));
	assert_int_equal(g.drop[2], bit(1) | bit(3));
	assert_int_equal(g.drop[1], a);
	assert_int_equal(g.drop[3], a);

	// Ring: each node sees a majority (3 of 5) starting at itself, and
	// no two nodes see the same majority.
	hx_partition_grudge(HX_SHAPE_RING, nodes, 5, &g);
	uint32_t all = bit(0) | bit(1) | bit(2) | bit(3) | bit(4);
	for (int i = 0; i < 5; i++) {
		uint32_t sees = all & ~g.drop[nodes[i]];
		assert_int_equal(__builtin_popcount(sees), 3);
		assert_true(sees & bit(nodes[i]));
		assert_true(sees & bit(nodes[(i + 1) % 5]));
		assert_true(sees & bit(nodes[(i + 2) % 5]));
		for (int j = 0; j < i; j++)
			assert_int_not_equal(sees, all & ~g.drop[nodes[j]]);
	}

	// Four nodes: halves 2|2, ring majorities of 3.
	uint32_t four[4] = { 0, 1, 2, 3 };
	hx_partition_grudge(HX_SHAPE_HALVES, four, 4, &g);
	assert_int_equal(g.drop[0], bit(2) | bit(3));
	assert_int_equal(g.drop[3], bit(0) | bit(1));
	hx_partition_grudge(HX_SHAPE_RING, four, 4, &g);
	assert_int_equal(g.drop[0], bit(3));
	assert_int_equal(g.drop[3], bit(2));
	// One node: no partition at all.
	hx_partition_grudge(HX_SHAPE_HALVES, four, 1, &g);
	assert_int_equal(g.drop[0], 0);
}

static void
test_targets_by_role(void **state)
{
	(void)state;
	dtx_topo t;
	uint32_t ids[DTX_TOPO_MAX], n;
	make_topo(&t, 3, true);
	assert_int_equal(hx_nem_targets(&t, HX_TARGET_ANY, ids, &n), DTX_OK);
	assert_int_equal(n, 5);
	assert_int_equal(
	    hx_nem_targets(&t, HX_TARGET_COORDINATOR, ids, &n), DTX_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], 0);
	assert_int_equal(
	    hx_nem_targets(&t, HX_TARGET_PARTICIPANTS, ids, &n), DTX_OK);
	assert_int_equal(n, 3);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[2], 3);
	assert_int_equal(hx_nem_targets(&t, HX_TARGET_SAGA, ids, &n), DTX_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], 4);
	make_topo(&t, 2, false);
	assert_int_equal(
	    hx_nem_targets(&t, HX_TARGET_SAGA, ids, &n), DTX_ENOENT);

	// Kills and pauses of a participants-only schedule hit only
	// participants; a partition isolates a participant first; clock
	// faults change only participants' clocks.
	make_topo(&t, 3, true);
	hx_nem_event *ev;
	size_t ne;
	plan(&t, 7, all_kinds, HX_TARGET_PARTICIPANTS, &ev, &ne);
	for (size_t i = 0; i < ne; i++) {
		if (ev[i].action == HX_NA_PARTITION) {
			assert_true(ev[i].targets[0] >= 1);
			assert_true(ev[i].targets[0] <= 3);
			continue;
		}
		if (ev[i].action == HX_NA_HEAL)
			continue;
		for (uint32_t k = 0; k < ev[i].ntargets; k++) {
			assert_true(ev[i].targets[k] >= 1);
			assert_true(ev[i].targets[k] <= 3);
		}
	}
	dtx_free(ev);
	expect_coordinator_only(&t, 7, HX_NEM_KILL);
}

static void
test_clock_offsets_bounded(void **state)
{
	(void)state;
	dtx_topo t;
	make_topo(&t, 3, false);
	hx_nem_event *ev;
	size_t n;
	plan(&t, 9, HX_NEM_CLOCK, HX_TARGET_ANY, &ev, &n);
	assert_true(n > 0);
	for (size_t i = 0; i < n; i++) {
		if (ev[i].action == HX_NA_CLOCK_BUMP)
			for (uint32_t k = 0; k < ev[i].ntargets; k++) {
				assert_true(ev[i].offset_ms[k] != 0);
				assert_true(ev[i].offset_ms[k] <= 1000);
				assert_true(ev[i].offset_ms[k] >= -1000);
			}
		if (ev[i].action == HX_NA_CLOCK_STROBE) {
			assert_true(ev[i].strobe_delta_ms != 0);
			assert_true(ev[i].strobe_period_ms >= 10);
			assert_true(ev[i].strobe_ms <= 3000);
		}
	}
	dtx_free(ev);
}

static void
test_parse(void **state)
{
	(void)state;
	unsigned k;
	char err[128];
	hx_nem_target t;
	assert_int_equal(
	    hx_nem_kinds_parse("kill,clock", &k, err, sizeof(err)), DTX_OK);
	assert_int_equal(k, HX_NEM_KILL | HX_NEM_CLOCK);
	assert_int_equal(
	    hx_nem_kinds_parse("none", &k, err, sizeof(err)), DTX_OK);
	assert_int_equal(k, 0);
	assert_int_equal(
	    hx_nem_kinds_parse("kill,nuke", &k, err, sizeof(err)), DTX_EINVAL);
	assert_non_null(strstr(err, "nuke"));
	assert_int_equal(
	    hx_nem_shapes_parse("one,ring", &k, err, sizeof(err)), DTX_OK);
	assert_int_equal(k, (1u << HX_SHAPE_ONE) | (1u << HX_SHAPE_RING));
	assert_int_equal(hx_nem_target_parse("participants", &t), DTX_OK);
	assert_int_equal(t, HX_TARGET_PARTICIPANTS);
	assert_int_equal(hx_nem_target_parse("all", &t), DTX_EINVAL);
	assert_int_equal(
	    hx_nem_kinds_parse("kill,disk", &k, err, sizeof(err)), DTX_OK);
	assert_int_equal(k, HX_NEM_KILL | HX_NEM_DISK);
	assert_string_equal(hx_nem_action_name(HX_NA_DISK), "disk");
	assert_string_equal(hx_nem_action_kind(HX_NA_DISK), "disk");
}

// Holds and gaps follow hold_min_ms and gap_ms (the 3pc partition
// defaults of dtx bank); with neither set the old interval rule holds.
static void
test_hold_and_gap(void **state)
{
	(void)state;
	dtx_topo t;
	make_topo(&t, 3, false);
	for (uint64_t seed = 1; seed <= 20; seed++) {
		hx_nem_cfg c = { .kinds = HX_NEM_PARTITION,
			.seed = seed,
			.interval_ms = 2000,
			.hold_min_ms = 4000,
			.gap_ms = 1500,
			.duration_ms = 30000,
			.topo = &t };
		hx_nem_event *ev;
		size_t n;
		assert_int_equal(hx_nemesis_plan(&c, &ev, &n), DTX_OK);
		assert_true(n >= 6); // at least three partitions in 30 s
		assert_true(ev[0].at_ms >= 750 && ev[0].at_ms < 2250);
		for (size_t i = 0; i < n; i += 2) {
			uint64_t hold = ev[i + 1].at_ms - ev[i].at_ms;
			// The last may be cut short by the end of the run.
			if (ev[i + 1].at_ms + 500 < 30000)
				assert_true(hold >= 4000 && hold < 6000);
			assert_true(ev[i + 1].at_ms + 500 <= 30000);
			if (i + 2 < n) {
				uint64_t gap =
				    ev[i + 2].at_ms - ev[i + 1].at_ms;
				assert_true(gap >= 750 && gap < 2250);
			}
		}
		dtx_free(ev);
		c.hold_min_ms = 0;
		c.gap_ms = 0;
		c.interval_ms = 5000;
		assert_int_equal(hx_nemesis_plan(&c, &ev, &n), DTX_OK);
		for (size_t i = 0; i < n; i += 2) {
			uint64_t hold = ev[i + 1].at_ms - ev[i].at_ms;
			if (ev[i + 1].at_ms + 500 < 30000)
				assert_true(hold >= 2500 && hold < 7500);
		}
		dtx_free(ev);
	}
}

// Disk faults strike participants of the targets (the targets
// themselves when they include none) and tear at least one byte and
// less than the whole record.
static void
test_disk_plan(void **state)
{
	(void)state;
	dtx_topo t;
	make_topo(&t, 3, true);
	hx_nem_event *ev;
	size_t n;
	plan(&t, 5, HX_NEM_DISK, HX_TARGET_ANY, &ev, &n);
	assert_true(n > 0);
	for (size_t i = 0; i < n; i += 2) {
		assert_int_equal(ev[i].action, HX_NA_DISK);
		assert_int_equal(ev[i + 1].action, HX_NA_RESTART);
		assert_int_equal(ev[i].ntargets, 1);
		assert_true(ev[i].targets[0] >= 1 && ev[i].targets[0] <= 3);
		assert_int_equal(ev[i + 1].targets[0], ev[i].targets[0]);
		assert_true(ev[i].disk_keep >= 1);
		assert_true(ev[i].disk_keep < 20 + ev[i].disk_len + 4);
		hx_sb sb = { 0 };
		hx_nem_event_json(&ev[i], &sb);
		char *j = hx_sb_take(&sb);
		assert_true(hx_json_valid(j, strlen(j)));
		assert_non_null(strstr(j, "\"form\":"));
		dtx_free(j);
	}
	dtx_free(ev);
	expect_coordinator_only(&t, 5, HX_NEM_DISK);
}

// Writes, through the WAL itself, a log of nine records in two segments
// into dir: wal-0000000000000001.log (LSNs 1..5; the fifth record is big
// enough to pass the smallest segment size, so the WAL starts a new
// segment after it) and wal-0000000000000006.log (LSNs 6..9). No
// preallocation: each file ends with its last record.
static void
make_wal(const char *dir)
{
	static uint8_t p[4000];
	stor_wal_opts o;
	stor_wal *w;
	stor_wal_opts_init(&o);
	o.segment_bytes = 4096;
	o.preallocate = false;
	assert_int_equal(stor_wal_open(dir, &o, NULL, NULL, NULL, &w), DTX_OK);
	for (uint64_t lsn = 1; lsn <= 9; lsn++) {
		uint32_t r = (uint32_t)(lsn < 6 ? lsn - 1 : lsn - 6);
		uint32_t len = lsn == 5 ? (uint32_t)sizeof(p) : 10 + r * 7;
		uint64_t got = 0;
		for (uint32_t i = 0; i < len; i++)
			p[i] = (uint8_t)(r + i);
		assert_int_equal(
		    stor_wal_append(w, 1, p, len, true, &got), DTX_OK);
		assert_int_equal(got, lsn);
	}
	stor_wal_close(w);
	stor_wal_end end;
	assert_int_equal(stor_wal_scan(dir, NULL, NULL, &end), DTX_OK);
	assert_string_equal(end.segment, "wal-0000000000000006.log");
	assert_int_equal(end.next_lsn, 10);
}

// Copies segment `first` of dir src to dst, followed by pad zero bytes;
// returns its length without them.
static size_t
put_segment(const char *src, const char *dst, uint64_t first, size_t pad)
{
	static uint8_t buf[8192];
	char name[STOR_WAL_SEG_NAME_LEN + 1], path[PATH_MAX + 32];
	stor_wal_seg_name(name, sizeof(name), first);
	snprintf(path, sizeof(path), "%s/%s", src, name);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf), f);
	assert_int_equal(fclose(f), 0);
	assert_true(n > 0 && n + pad <= sizeof(buf));
	memset(buf + n, 0, pad);
	snprintf(path, sizeof(path), "%s/%s", dst, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, n + pad, f), n + pad);
	assert_int_equal(fclose(f), 0);
	return n;
}

static size_t
file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (size_t)st.st_size;
}

// The tear lands after the last complete record of the newest segment,
// leaves every complete record's bytes alone, and is never a complete
// record itself.
static void
test_disk_tear(void **state)
{
	(void)state;
	char dir[] = "/tmp/dtx-nemtest-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char store[PATH_MAX], old[PATH_MAX + 32], seg[PATH_MAX + 32];
	char wal[PATH_MAX];
	snprintf(store, sizeof(store), "%s/store", dir);
	assert_int_equal(mkdir(store, 0755), 0);
	// The WAL is written beside data, not in it: the tears land on
	// copies of its segments.
	snprintf(wal, sizeof(wal), "%s-wal", dir);
	assert_int_equal(mkdir(wal, 0755), 0);
	make_wal(wal);
	snprintf(old, sizeof(old), "%s/wal-0000000000000001.log", store);
	snprintf(seg, sizeof(seg), "%s/wal-0000000000000006.log", store);
	hx_nem_event e;
	char extra[512];
	memset(&e, 0, sizeof(e));
	e.action = HX_NA_DISK;
	e.disk_len = 40;
	e.disk_seed = 77;

	for (int form = 0; form < 2; form++) {
		for (uint32_t keep = 1; keep < 20 + 40 + 4; keep += 9) {
			put_segment(wal, store, 1, 0);
			size_t end = put_segment(wal, store, 6, 1024);
			size_t old_size = file_size(old);
			uint8_t before[8192], after[8192];
			FILE *f = fopen(seg, "rb");
			assert_int_equal(fread(before, 1, end, f), end);
			fclose(f);
			e.disk_form = (hx_disk_form)form;
			e.disk_keep = keep;
			assert_int_equal(
			    hx_nem_tear_wal(dir, &e, extra, sizeof(extra)),
			    DTX_OK);
			char want[128];
			snprintf(want, sizeof(want),
			    "\"offset\":%zu,\"lsn\":10", end);
			assert_non_null(strstr(extra, want));
			assert_non_null(
			    strstr(extra, "wal-0000000000000006.log"));
			assert_int_equal(file_size(old), old_size);
			size_t sz = file_size(seg);
			if (form == HX_DISK_TRUNCATED)
				assert_int_equal(sz, end + keep);
			else
				assert_int_equal(sz, end + 1024);
			f = fopen(seg, "rb");
			assert_int_equal(fread(after, 1, sz, f), sz);
			fclose(f);
			assert_memory_equal(before, after, end);
			// The torn record's header, as far as it got, says
			// LSN 10 and 40 bytes.
			if (keep >= 4)
				assert_int_equal(after[end], 40);
			if (keep >= 16)
				assert_int_equal(after[end + 8], 10);
			// The bytes after the tear are still zero.
			for (size_t i = end + keep; i < sz; i++)
				assert_int_equal(after[i], 0);
		}
	}
	// A second tear on a torn segment lands at the same place.
	put_segment(wal, store, 6, 1024);
	e.disk_form = HX_DISK_TORN;
	e.disk_keep = 30;
	assert_int_equal(
	    hx_nem_tear_wal(dir, &e, extra, sizeof(extra)), DTX_OK);
	e.disk_keep = 10;
	assert_int_equal(
	    hx_nem_tear_wal(dir, &e, extra, sizeof(extra)), DTX_OK);
	assert_non_null(strstr(extra, "\"lsn\":10"));
	// No segment at all.
	unlink(old);
	unlink(seg);
	assert_int_equal(
	    hx_nem_tear_wal(dir, &e, extra, sizeof(extra)), DTX_ENOENT);
	rmdir(store);
	rmdir(dir);
	for (uint64_t first = 1; first <= 6; first += 5) {
		char name[STOR_WAL_SEG_NAME_LEN + 1];
		stor_wal_seg_name(name, sizeof(name), first);
		snprintf(seg, sizeof(seg), "%s/%s", wal, name);
		unlink(seg);
	}
	rmdir(wal);
}

// The kinds a plan starts, as bits.
static unsigned
started_kinds(const hx_nem_event *ev, size_t n)
{
	unsigned bits = 0;
	for (size_t i = 0; i < n; i++) {
		if (!hx_nem_action_starts(ev[i].action))
			continue;
		for (int k = 0; k < HX_NEM_NKINDS; k++)
			if (strcmp(hx_nem_action_kind(ev[i].action),
			        hx_nem_kind_name(k)) == 0)
				bits |= 1u << k;
	}
	return bits;
}

static const unsigned every_kind =
    all_kinds | HX_NEM_LOSE_UNSYNCED | HX_NEM_CRASHPOINT;

// A 20 s run asking for many kinds at the default 5 s interval used to
// hold two or three of them: the schedule is now compressed until every
// kind is planned, and a kind that cannot be is reported as unplanned.
static void
test_every_kind_planned(void **state)
{
	(void)state;
	dtx_topo t;
	make_topo(&t, 3, false);
	for (uint64_t seed = 1; seed <= 30; seed++) {
		hx_nem_cfg c = { .kinds = every_kind & ~(unsigned)HX_NEM_DISK,
			.seed = seed,
			.interval_ms = 5000,
			.duration_ms = 20000,
			.max_offset_ms = 500,
			.mode = "2pc",
			.topo = &t };
		hx_nem_event *ev;
		size_t n;
		assert_int_equal(hx_nemesis_plan(&c, &ev, &n), DTX_OK);
		assert_int_equal(started_kinds(ev, n), c.kinds);
		assert_int_equal(hx_nemesis_unplanned(&c, ev, n), 0);
		for (size_t i = 0; i < n; i++)
			assert_true(ev[i].at_ms < 20000);
		dtx_free(ev);
		// Four kinds at the old settings: all four now, and the plan
		// says it compressed the schedule to fit them.
		c.kinds = HX_NEM_KILL | HX_NEM_PAUSE | HX_NEM_PARTITION |
		    HX_NEM_CLOCK;
		uint64_t iv = 0, gv = 0;
		assert_int_equal(
		    hx_nemesis_plan_ex(&c, &ev, &n, &iv, &gv), DTX_OK);
		assert_int_equal(started_kinds(ev, n), c.kinds);
		assert_true(iv >= 200 && iv < 5000 && gv >= 100 && gv < 5000);
		dtx_free(ev);
		// A run long enough keeps the configured interval.
		c.duration_ms = 600000;
		assert_int_equal(
		    hx_nemesis_plan_ex(&c, &ev, &n, &iv, &gv), DTX_OK);
		assert_int_equal(iv, 5000);
		assert_int_equal(gv, 5000);
		dtx_free(ev);
		c.duration_ms = 20000;
	}
	// Saga crash points on a cluster without a saga node in 2pc mode:
	// nobody can take them, and the plan says so.
	hx_nem_cfg c = { .kinds = HX_NEM_CRASHPOINT | HX_NEM_KILL,
		.target = HX_TARGET_PARTICIPANTS,
		.seed = 3,
		.interval_ms = 1000,
		.duration_ms = 20000,
		.mode = "saga",
		.topo = &t };
	hx_nem_event *ev;
	size_t n;
	make_topo(&t, 3, false);
	c.target = HX_TARGET_COORDINATOR;
	assert_int_equal(hx_nemesis_plan(&c, &ev, &n), DTX_OK);
	// The coordinator reaches clk.bound.before_rename in any mode.
	assert_int_equal(hx_nemesis_unplanned(&c, ev, n), 0);
	dtx_free(ev);
	c.mode = "nomode";
	assert_int_equal(hx_nemesis_plan(&c, &ev, &n), DTX_OK);
	assert_int_equal(hx_nemesis_unplanned(&c, ev, n), HX_NEM_CRASHPOINT);
	dtx_free(ev);
}

// With max_concurrent N, at no moment are more than N faults in force,
// two in force never share a node, two partitions never overlap, the
// events come in time order, and faults do overlap (N > 1 is used).
static void
test_overlap_bounded(void **state)
{
	(void)state;
	dtx_topo t;
	make_topo(&t, 4, true);
	for (uint32_t N = 1; N <= 4; N++) {
		size_t most = 0;
		for (uint64_t seed = 1; seed <= 20; seed++) {
			hx_nem_cfg c = { .kinds = every_kind,
				.seed = seed,
				.interval_ms = 2000,
				.duration_ms = 60000,
				.max_offset_ms = 500,
				.max_concurrent = N,
				.mode = "saga",
				.topo = &t };
			hx_nem_event *ev;
			size_t n;
			assert_int_equal(hx_nemesis_plan(&c, &ev, &n), DTX_OK);
			assert_int_equal(started_kinds(ev, n), c.kinds);
			// Replay: in force = started and not yet ended.
			uint32_t node_busy = 0;
			size_t in_force = 0, parts = 0;
			for (size_t i = 0; i < n; i++) {
				hx_nem_event *e = &ev[i];
				if (i > 0)
					assert_true(
					    ev[i - 1].at_ms <= e->at_ms);
				bool part = e->action == HX_NA_PARTITION ||
				    e->action == HX_NA_HEAL;
				uint32_t m = 0;
				for (uint32_t j = 0; j < e->ntargets && !part;
				     j++)
					m |= 1u << e->targets[j];
				if (hx_nem_action_starts(e->action)) {
					in_force++;
					if (part) {
						assert_int_equal(parts, 0);
						parts++;
					} else {
						assert_int_equal(
						    node_busy & m, 0);
						node_busy |= m;
					}
				} else {
					assert_true(in_force > 0);
					in_force--;
					if (part)
						parts--;
					else
						node_busy &= ~m;
				}
				assert_true(in_force <= N);
				if (in_force > most)
					most = in_force;
			}
			assert_int_equal(in_force, 0);
			dtx_free(ev);
		}
		assert_int_equal(most, N);
	}
}

// Crash points: only known names, each on a node of a role that reaches
// it in the mode, every point of the mode armed in a long run, each arm
// ended on the same node with the same point.
static void
test_crashpoint_plan(void **state)
{
	(void)state;
	dtx_topo t;
	make_topo(&t, 3, true);
	const char *modes[] = { "2pc", "3pc", "saga" };
	for (size_t m = 0; m < 3; m++) {
		const char *known[64];
		size_t nk = 0;
		for (dtx_role r = DTX_ROLE_COORDINATOR; r <= DTX_ROLE_SAGA;
		     r++) {
			const char *pts[32];
			size_t np = hx_nem_crashpoints(modes[m], r, pts, 32);
			assert_true(np > 0 && np <= 32);
			for (size_t i = 0; i < np; i++) {
				size_t j = 0;
				while (j < nk && strcmp(known[j], pts[i]) != 0)
					j++;
				if (j == nk)
					known[nk++] = pts[i];
			}
		}
		hx_nem_cfg c = { .kinds = HX_NEM_CRASHPOINT,
			.seed = 7 + m,
			.interval_ms = 1000,
			.duration_ms = 120000,
			.mode = modes[m],
			.topo = &t };
		hx_nem_event *ev;
		size_t n;
		bool armed[64] = { false };
		assert_int_equal(hx_nemesis_plan(&c, &ev, &n), DTX_OK);
		for (size_t i = 0; i < n; i += 2) {
			assert_int_equal(ev[i].action, HX_NA_CRASH_ARM);
			assert_int_equal(ev[i + 1].action, HX_NA_CRASH_END);
			assert_int_equal(
			    ev[i].targets[0], ev[i + 1].targets[0]);
			assert_string_equal(ev[i].point, ev[i + 1].point);
			const dtx_node *nd =
			    dtx_topo_find(&t, ev[i].targets[0]);
			const char *pts[32];
			size_t np =
			    hx_nem_crashpoints(modes[m], nd->role, pts, 32);
			bool ok = false;
			for (size_t j = 0; j < np; j++)
				ok = ok || strcmp(pts[j], ev[i].point) == 0;
			assert_true(ok);
			for (size_t j = 0; j < nk; j++)
				if (strcmp(known[j], ev[i].point) == 0)
					armed[j] = true;
		}
		for (size_t j = 0; j < nk; j++)
			assert_true(armed[j]);
		// The recorded op names the point.
		hx_sb sb = { 0 };
		hx_nem_event_json(&ev[0], &sb);
		char *js = hx_sb_take(&sb);
		assert_non_null(strstr(js, "\"point\":\""));
		dtx_free(js);
		dtx_free(ev);
	}
	const char *pts[32];
	assert_int_equal(hx_nem_crashpoints("2pc", DTX_ROLE_SAGA, pts, 32), 1);
	assert_string_equal(pts[0], "clk.bound.before_rename");
	unsigned k;
	char err[64];
	assert_int_equal(hx_nem_kinds_parse("lose-unsynced,crashpoint,kill", &k,
	                     err, sizeof(err)),
	    DTX_OK);
	assert_int_equal(
	    k, HX_NEM_LOSE_UNSYNCED | HX_NEM_CRASHPOINT | HX_NEM_KILL);
}

// Aimed crash points (--crashpoints): every arm is one of the listed
// points, on a node that reaches it; a list of names is checked against
// the table.
static void
test_aimed_crashpoints(void **state)
{
	(void)state;
	dtx_topo t;
	make_topo(&t, 3, true);
	hx_nem_cfg c = { .kinds = HX_NEM_CRASHPOINT,
		.seed = 11,
		.interval_ms = 1000,
		.duration_ms = 60000,
		.mode = "2pc",
		.topo = &t,
		.crashpoints =
		    "rpc.after_reply.commit,coord.after_commit_log" };
	hx_nem_event *ev;
	size_t n, seen[2] = { 0, 0 };
	assert_int_equal(hx_nemesis_plan(&c, &ev, &n), DTX_OK);
	assert_true(n >= 20);
	for (size_t i = 0; i < n; i += 2) {
		assert_int_equal(ev[i].action, HX_NA_CRASH_ARM);
		const dtx_node *nd = dtx_topo_find(&t, ev[i].targets[0]);
		bool commit =
		    strcmp(ev[i].point, "rpc.after_reply.commit") == 0;
		assert_true(commit ||
		    strcmp(ev[i].point, "coord.after_commit_log") == 0);
		assert_int_equal(nd->role,
		    commit ? DTX_ROLE_PARTICIPANT : DTX_ROLE_COORDINATOR);
		seen[commit]++;
	}
	assert_true(seen[0] > 0 && seen[1] > 0);
	dtx_free(ev);
	char err[1024];
	assert_int_equal(hx_nem_crashpoints_check(
	                     "rpc.after_reply.commit,part.after_commit_log",
	                     err, sizeof(err)),
	    DTX_OK);
	assert_int_equal(hx_nem_crashpoints_check(
	                     "rpc.after_reply.commit,bogus", err, sizeof(err)),
	    DTX_EINVAL);
	assert_non_null(strstr(err, "'bogus'"));
	assert_non_null(strstr(err, "part.after_commit_log"));
	assert_int_equal(
	    hx_nem_crashpoints_check("rpc.after_reply", err, sizeof(err)),
	    DTX_EINVAL);
}

// Packet, corrupt and kill-forever plans: one kill-forever, between a
// quarter and a half of the run, on a target that no other fault touches
// and that nothing restarts; packet faults with their parameters in range
// and a PACKET_END; corrupt faults on participants ended by a RESTART;
// the start and the end of every fault share one fault id, and no two
// faults share one.
static void
test_packet_corrupt_forever_plan(void **state)
{
	(void)state;
	dtx_topo t;
	make_topo(&t, 3, false);
	unsigned kinds =
	    HX_NEM_PACKET | HX_NEM_CORRUPT | HX_NEM_KILL_FOREVER | HX_NEM_KILL;
	for (uint64_t seed = 1; seed <= 20; seed++) {
		hx_nem_event *ev;
		size_t n, forever = 0;
		uint32_t victim = 99;
		plan(&t, seed, kinds, HX_TARGET_PARTICIPANTS, &ev, &n);
		assert_int_equal(hx_nemesis_unplanned(
		                     &(hx_nem_cfg) { .kinds = kinds }, ev, n),
		    0);
		for (size_t i = 0; i < n; i++)
			if (ev[i].action == HX_NA_KILL_FOREVER) {
				forever++;
				victim = ev[i].targets[0];
				assert_true(ev[i].at_ms >= 15000);
				assert_true(ev[i].at_ms <= 30000);
				assert_true(ev[i].fault_id > 0);
			}
		assert_int_equal(forever, 1);
		assert_true(victim >= 1 && victim <= 3);
		for (size_t i = 0; i < n; i++) {
			const hx_nem_event *e = &ev[i];
			if (i > 0)
				assert_true(ev[i - 1].at_ms <= e->at_ms);
			if (e->action == HX_NA_KILL_FOREVER)
				continue;
			assert_int_not_equal(e->targets[0], victim);
			assert_true(e->fault_id > 0);
			if (!hx_nem_action_starts(e->action))
				continue;
			// Exactly one end with its id, later, same target.
			size_t ends = 0;
			for (size_t j = 0; j < n; j++)
				if (j != i && ev[j].fault_id == e->fault_id) {
					assert_false(
					    hx_nem_action_starts(ev[j].action));
					assert_true(ev[j].at_ms > e->at_ms);
					assert_int_equal(
					    ev[j].targets[0], e->targets[0]);
					assert_int_equal(ev[j].action,
					    e->action == HX_NA_PACKET
					        ? HX_NA_PACKET_END
					        : HX_NA_RESTART);
					ends++;
				}
			assert_int_equal(ends, 1);
			if (e->action == HX_NA_PACKET) {
				assert_true(
				    e->loss_pct >= 1 && e->loss_pct <= 10);
				assert_true(
				    e->dup_pct >= 1 && e->dup_pct <= 10);
				assert_true(
				    e->delay_ms >= 10 && e->delay_ms <= 100);
				assert_int_equal(e->jitter_ms, e->delay_ms / 2);
				assert_true(e->reorder_pct >= 10 &&
				    e->reorder_pct <= 40);
				hx_sb sb = { 0 };
				hx_nem_event_json(e, &sb);
				char *j = hx_sb_take(&sb);
				assert_non_null(strstr(j, "\"loss_pct\":"));
				assert_non_null(strstr(j, "\"fault\":"));
				dtx_free(j);
			}
			if (e->action == HX_NA_CORRUPT)
				assert_true(
				    e->targets[0] >= 1 && e->targets[0] <= 3);
		}
		dtx_free(ev);
	}
	// Kill-forever alone plans just that; aimed at the coordinator it
	// takes node 0.
	hx_nem_event *ev;
	size_t n;
	plan(&t, 7, HX_NEM_KILL_FOREVER, HX_TARGET_COORDINATOR, &ev, &n);
	assert_int_equal(n, 1);
	assert_int_equal(ev[0].action, HX_NA_KILL_FOREVER);
	assert_int_equal(ev[0].targets[0], 0);
	dtx_free(ev);
	unsigned k;
	char err[64];
	assert_int_equal(hx_nem_kinds_parse("packet,corrupt,kill-forever", &k,
	                     err, sizeof(err)),
	    DTX_OK);
	assert_int_equal(
	    k, HX_NEM_PACKET | HX_NEM_CORRUPT | HX_NEM_KILL_FOREVER);
}

// Slow-link plans: aimed at the participants, the coordinator's calls to
// one of them are held 2-5 s (another role's sender first), the end
// names the same link and id, and the op's value says from where; with
// a kill-forever of a participant, links never start from or lead to
// the victim; aimed at the coordinator, a participant sends.
static void
test_slow_link_plan(void **state)
{
	(void)state;
	dtx_topo t;
	make_topo(&t, 3, false);
	for (uint64_t seed = 1; seed <= 20; seed++) {
		hx_nem_event *ev;
		size_t n, starts = 0;
		uint32_t victim = 99;
		plan(&t, seed, HX_NEM_SLOW_LINK | HX_NEM_KILL_FOREVER,
		    HX_TARGET_PARTICIPANTS, &ev, &n);
		for (size_t i = 0; i < n; i++)
			if (ev[i].action == HX_NA_KILL_FOREVER)
				victim = ev[i].targets[0];
		assert_true(victim >= 1 && victim <= 3);
		for (size_t i = 0; i < n; i++) {
			const hx_nem_event *e = &ev[i];
			if (e->action != HX_NA_SLOW_LINK)
				continue;
			starts++;
			assert_true(e->targets[0] >= 1 && e->targets[0] <= 3);
			assert_int_not_equal(e->targets[0], victim);
			assert_int_equal(e->link_from, 0);
			assert_true(e->delay_ms >= 2000 && e->delay_ms <= 5000);
			size_t ends = 0;
			for (size_t j = 0; j < n; j++)
				if (j != i && ev[j].fault_id == e->fault_id) {
					assert_int_equal(
					    ev[j].action, HX_NA_SLOW_LINK_END);
					assert_true(ev[j].at_ms > e->at_ms);
					assert_int_equal(
					    ev[j].targets[0], e->targets[0]);
					assert_int_equal(
					    ev[j].link_from, e->link_from);
					ends++;
				}
			assert_int_equal(ends, 1);
			hx_sb sb = { 0 };
			hx_nem_event_json(e, &sb);
			char *j = hx_sb_take(&sb);
			assert_non_null(strstr(j, "\"from\":0,\"delay_ms\":"));
			dtx_free(j);
		}
		assert_true(starts > 5);
		dtx_free(ev);
	}
	hx_nem_event *ev;
	size_t n;
	// Overlapping faults leave both ends of a slow link alone.
	for (uint64_t seed = 1; seed <= 20; seed++) {
		hx_nem_cfg c = { .kinds = HX_NEM_SLOW_LINK | HX_NEM_KILL |
			    HX_NEM_PAUSE,
			.target = HX_TARGET_ANY,
			.seed = seed,
			.interval_ms = 2000,
			.duration_ms = 60000,
			.max_offset_ms = 500,
			.max_concurrent = 3,
			.topo = &t };
		assert_int_equal(hx_nemesis_plan(&c, &ev, &n), DTX_OK);
		for (size_t i = 0; i < n; i++) {
			if (ev[i].action != HX_NA_SLOW_LINK)
				continue;
			uint32_t ends =
			    1u << ev[i].targets[0] | 1u << ev[i].link_from;
			uint64_t until = 0;
			for (size_t j = 0; j < n; j++)
				if (ev[j].fault_id == ev[i].fault_id &&
				    ev[j].action == HX_NA_SLOW_LINK_END)
					until = ev[j].at_ms;
			for (size_t j = 0; j < n; j++)
				if (j != i &&
				    hx_nem_action_starts(ev[j].action) &&
				    ev[j].at_ms >= ev[i].at_ms &&
				    ev[j].at_ms < until)
					assert_false(
					    ends & (1u << ev[j].targets[0]));
		}
		dtx_free(ev);
	}
	plan(&t, 3, HX_NEM_SLOW_LINK, HX_TARGET_COORDINATOR, &ev, &n);
	assert_true(n >= 2);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(ev[i].targets[0], 0);
		assert_true(ev[i].link_from >= 1 && ev[i].link_from <= 3);
	}
	dtx_free(ev);
	unsigned k;
	char err[64];
	assert_int_equal(
	    hx_nem_kinds_parse("slow-link", &k, err, sizeof(err)), DTX_OK);
	assert_int_equal(k, HX_NEM_SLOW_LINK);
	assert_string_equal(
	    hx_nem_action_name(HX_NA_SLOW_LINK_END), "slow-link-end");
	assert_string_equal(
	    hx_nem_action_kind(HX_NA_SLOW_LINK_END), "slow-link");
	assert_true(hx_nem_action_starts(HX_NA_SLOW_LINK));
	assert_false(hx_nem_action_starts(HX_NA_SLOW_LINK_END));
}

// Opens the WAL in dir and returns what open says (the log is closed).
static dtx_err
open_wal(const char *dir)
{
	stor_wal_opts o;
	stor_wal *w = NULL;
	stor_wal_opts_init(&o);
	o.preallocate = false;
	dtx_err rv = stor_wal_open(dir, &o, NULL, NULL, NULL, &w);
	stor_wal_close(w);
	return rv;
}

// The corrupt fault's damage: over many seeds, each form lands on an
// acknowledged record (never the newest segment's last one, which would
// be a torn tail) and the WAL then refuses to open (ECORRUPT); a cut is
// aimed at the older segment. The copy taken first restores a WAL that
// opens with every record.
static void
test_corrupt_store(void **state)
{
	(void)state;
	char dir[] = "/tmp/dtx-corrupt-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char data[PATH_MAX], store[PATH_MAX + 16], saved[PATH_MAX + 16];
	char extra[1024];
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(store, sizeof(store), "%s/store", data);
	snprintf(saved, sizeof(saved), "%s.pre", data);
	for (uint64_t seed = 1; seed <= 8; seed++) {
		bool cut = seed % 2 == 0;
		const char *rm[] = { "rm", "-rf", data, saved, NULL };
		assert_int_equal(hx_run(rm, NULL, 0, true), 0);
		assert_int_equal(mkdir(data, 0755), 0);
		assert_int_equal(mkdir(store, 0755), 0);
		make_wal(store);
		assert_int_equal(hx_dir_copy(data, saved), DTX_OK);
		assert_int_equal(
		    hx_corrupt_store(data, cut, seed, extra, sizeof(extra)),
		    DTX_OK);
		assert_non_null(strstr(extra, "\"file\":\"store/wal-"));
		assert_null(strstr(extra, "\"lsn\":9,"));
		if (cut) {
			assert_non_null(strstr(extra, "\"done\":\"truncate\""));
			assert_non_null(strstr(extra, "wal-0000000000000001"));
		} else {
			assert_non_null(strstr(extra, "\"bit\":"));
		}
		assert_int_equal(open_wal(store), DTX_ECORRUPT);
		assert_int_equal(hx_dir_restore(saved, data), DTX_OK);
		assert_int_equal(open_wal(store), DTX_OK);
	}
	// Nothing to damage: a data dir without a WAL.
	const char *rm[] = { "rm", "-rf", dir, NULL };
	assert_int_equal(hx_run(rm, NULL, 0, true), 0);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(
	    hx_corrupt_store(dir, false, 1, extra, sizeof(extra)), DTX_ENOENT);
	assert_int_equal(hx_run(rm, NULL, 0, true), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_seed_same_schedule),
		cmocka_unit_test(test_schedule_shape),
		cmocka_unit_test(test_partition_shapes),
		cmocka_unit_test(test_targets_by_role),
		cmocka_unit_test(test_clock_offsets_bounded),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_hold_and_gap),
		cmocka_unit_test(test_disk_plan),
		cmocka_unit_test(test_disk_tear),
		cmocka_unit_test(test_every_kind_planned),
		cmocka_unit_test(test_overlap_bounded),
		cmocka_unit_test(test_crashpoint_plan),
		cmocka_unit_test(test_aimed_crashpoints),
		cmocka_unit_test(test_packet_corrupt_forever_plan),
		cmocka_unit_test(test_slow_link_plan),
		cmocka_unit_test(test_corrupt_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
