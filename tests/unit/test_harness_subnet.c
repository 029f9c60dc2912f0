// SPDX-License-Identifier: MIT
//
// The subnet of a netns run (harness/subnet.c): --subnet is parsed and
// refused with a reason, the picker skips every used subnet, and runs
// that claim at the same time (processes sharing one lease directory)
// never get the same subnet; a forced subnet that is in use is refused,
// a released or dead lease frees its subnet.

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli.h"
#include "harness.h"
#include "test_util.h"

static char leases[256];

static int
setup(void **state)
{
	(void)state;
	st_tmpdir(leases, sizeof(leases), "subnet");
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	(void)dtx_rmtree(leases);
	return 0;
}

static hx_subnet
sn(const char *cidr)
{
	hx_subnet s;
	char err[256];
	assert_int_equal(hx_subnet_parse(cidr, &s, err, sizeof(err)), DTX_OK);
	return s;
}

static void
assert_cidr(const hx_subnet *s, const char *want)
{
	char got[32];
	hx_subnet_format(s, got, sizeof(got));
	assert_string_equal(got, want);
}

static void
test_parse(void **state)
{
	(void)state;
	hx_subnet s = sn("10.77.9.0/24");
	assert_int_equal(s.len, 24);
	assert_cidr(&s, "10.77.9.0/24");
	char a[32];
	hx_subnet_host(&s, 1, a, sizeof(a));
	assert_string_equal(a, "10.77.9.1");
	hx_subnet_host(&s, 27, a, sizeof(a));
	assert_string_equal(a, "10.77.9.27");
	s = sn("192.168.4.32/27");
	assert_cidr(&s, "192.168.4.32/27");
	s = sn("172.16.0.0/16");
	assert_cidr(&s, "172.16.0.0/16");

	// Each refusal names the problem.
	static const struct {
		const char *cidr, *why;
	} bad[] = {
		{ "10.77.9.1/24", "host bits" },
		{ "10.77.9.0", "not an IPv4 CIDR" },
		{ "10.77.9.0/", "not an IPv4 CIDR" },
		{ "10.77.9.0/24x", "not an IPv4 CIDR" },
		{ "300.1.1.0/24", "not an IPv4 CIDR" },
		{ "fd00::/64", "not an IPv4 CIDR" },
		{ "", "not an IPv4 CIDR" },
		{ "8.8.8.0/24", "private range" },
		{ "10.77.9.0/28", "prefix length" },
		{ "10.0.0.0/8", "prefix length" },
		{ "10.77.9.0/33", "not an IPv4 CIDR" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256] = "";
		hx_subnet out = { 7, 7 };
		assert_int_equal(
		    hx_subnet_parse(bad[i].cidr, &out, err, sizeof(err)),
		    DTX_EINVAL);
		if (strstr(err, bad[i].why) == NULL)
			fail_msg("%s: '%s' lacks '%s'", bad[i].cidr, err,
			    bad[i].why);
		assert_int_equal(out.net, 7); // untouched on failure
	}
	char err[256];
	assert_int_equal(
	    hx_subnet_parse(NULL, &s, err, sizeof(err)), DTX_EINVAL);
}

static void
test_overlaps(void **state)
{
	(void)state;
	hx_subnet a = sn("10.77.0.0/24"), b = sn("10.77.1.0/24");
	hx_subnet big = { 0x0a4d0000u, 16 }, host = { 0x0a4d0105u, 32 };
	assert_false(hx_subnet_overlaps(&a, &b));
	assert_true(hx_subnet_overlaps(&a, &big));
	assert_true(hx_subnet_overlaps(&big, &b));
	assert_true(hx_subnet_overlaps(&b, &host));
	assert_false(hx_subnet_overlaps(&a, &host));
}

static void
test_pick(void **state)
{
	(void)state;
	hx_subnet got;
	assert_true(hx_subnet_pick(NULL, 0, &got));
	assert_cidr(&got, "10.77.0.0/24");

	// A /24 in use, a single address in the next, a /23 covering two
	// more: the first free one is 10.77.4.0/24.
	hx_subnet used[] = { sn("10.77.0.0/24"), { 0x0a4d0105u, 32 },
		sn("10.77.2.0/23"), sn("192.168.0.0/16") };
	assert_true(hx_subnet_pick(used, 4, &got));
	assert_cidr(&got, "10.77.4.0/24");
	for (size_t i = 0; i < 4; i++)
		assert_false(hx_subnet_overlaps(&got, &used[i]));

	// Holes are used: everything but 10.77.200.0/24.
	hx_subnet most[] = { sn("10.77.0.0/17"), sn("10.77.128.0/18"),
		sn("10.77.192.0/21"), sn("10.77.201.0/24"),
		sn("10.77.202.0/23"), sn("10.77.204.0/22"),
		sn("10.77.208.0/20"), sn("10.77.224.0/19") };
	assert_true(hx_subnet_pick(most, 8, &got));
	assert_cidr(&got, "10.77.200.0/24");

	// The whole pool in use, or a route over it: nothing.
	hx_subnet all = { 0x0a000000u, 8 };
	got.net = 1;
	assert_false(hx_subnet_pick(&all, 1, &got));
	assert_int_equal(got.net, 1);
}

// Waits until the parent closes the pipe's write end (EOF on fd).
static void
wait_eof(int fd)
{
	char c;
	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
}

// Claims want, whose lease this test just let go of, as prefix: no lease
// may still hold it. A netns run of another process (another test suite
// on this machine) may have brought it up on an interface meanwhile,
// since this test's leases live in a directory of its own: that is said
// and the claim skipped. True when it was claimed.
static bool
claim_freed(const char *prefix, const hx_subnet *want)
{
	hx_subnet out;
	char err[256] = "";
	dtx_err rv =
	    hx_netns_claim(prefix, want, leases, &out, err, sizeof(err));
	if (rv == DTX_EBUSY && strstr(err, HX_SUBNET_BY_MACHINE) != NULL) {
		print_message("another run took it meanwhile: %s\n", err);
		return false;
	}
	if (rv != DTX_OK)
		fail_msg("%s", err);
	assert_true(out.net == want->net && out.len == want->len);
	return true;
}

// Once the parent closes go (so that every claimer starts at once),
// claims a subnet as prefix in the lease directory and writes it to fd
// as "net len\n"; then waits (holding the lease: its process is alive)
// until the parent closes hold. Runs in a child process.
static void
claimer(const char *prefix, int go, int fd, int hold)
{
	hx_subnet got;
	char err[256], line[64];
	wait_eof(go);
	dtx_err rv =
	    hx_netns_claim(prefix, NULL, leases, &got, err, sizeof(err));
	int n = rv == DTX_OK
	    ? snprintf(line, sizeof(line), "%u %u\n", got.net, got.len)
	    : snprintf(line, sizeof(line), "error\n");
	if (write(fd, line, (size_t)n) != n)
		_exit(2);
	wait_eof(hold);
	_exit(rv == DTX_OK ? 0 : 1);
}

// One round: N processes claim at once and must get N subnets.
static void
claim_round(void)
{
	enum { N = 16 };
	int res[2], hold[2], go[2];
	pid_t pids[N];
	assert_int_equal(pipe(res), 0);
	assert_int_equal(pipe(hold), 0);
	assert_int_equal(pipe(go), 0);
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			char prefix[16];
			close(res[0]);
			close(hold[1]);
			close(go[1]);
			snprintf(prefix, sizeof(prefix), "dxtest%02d", i);
			claimer(prefix, go[0], res[1], hold[0]);
		}
	}
	close(res[1]);
	close(hold[0]);
	close(go[0]);
	close(go[1]); // all claim at once
	hx_subnet got[N];
	FILE *f = fdopen(res[0], "r");
	assert_non_null(f);
	for (int i = 0; i < N; i++)
		assert_int_equal(
		    fscanf(f, "%u %u", &got[i].net, &got[i].len), 2);
	fclose(f);
	// Every claimer got its own subnet of the pool.
	hx_subnet pool = { 0x0a4d0000u, 16 };
	for (int i = 0; i < N; i++) {
		assert_int_equal(got[i].len, HX_NETNS_POOL_LEN);
		assert_true(hx_subnet_overlaps(&got[i], &pool));
		for (int j = 0; j < i; j++)
			assert_false(hx_subnet_overlaps(&got[i], &got[j]));
	}
	// While they live, a forced claim of one of theirs is refused.
	hx_subnet out;
	char err[256] = "";
	assert_int_equal(
	    hx_netns_claim("dxforce0", &got[0], leases, &out, err, sizeof(err)),
	    DTX_EBUSY);
	assert_non_null(strstr(err, "in use"));
	close(hold[1]);
	for (int i = 0; i < N; i++) {
		int st;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	// Their processes are gone and they made no bridge: the leases are
	// dead, so the subnet is free again.
	if (claim_freed("dxforce0", &got[0])) {
		hx_netns_release("dxforce0", leases);
	}
}

static void
test_concurrent_claims(void **state)
{
	(void)state;
	// A lost race shows in most rounds, not all: three of them.
	for (int i = 0; i < 3; i++)
		claim_round();
}

static void
test_release_and_forced(void **state)
{
	(void)state;
	hx_subnet a, b, out;
	char err[256];
	// This process is alive, so its leases hold until released.
	assert_int_equal(
	    hx_netns_claim("dxrel001", NULL, leases, &a, err, sizeof(err)),
	    DTX_OK);
	assert_int_equal(
	    hx_netns_claim("dxrel002", NULL, leases, &b, err, sizeof(err)),
	    DTX_OK);
	assert_false(hx_subnet_overlaps(&a, &b));
	assert_int_equal(
	    hx_netns_claim("dxrel003", &a, leases, &out, err, sizeof(err)),
	    DTX_EBUSY);
	hx_netns_release("dxrel001", leases);
	claim_freed("dxrel003", &a);
	hx_netns_release("dxrel002", leases);
	hx_netns_release("dxrel003", leases);
	hx_netns_release("dxrel003", leases); // idempotent

	// A subnet the machine's own interfaces use (loopback) is in use;
	// that is read with ip(8), which a build machine may lack.
	const char *ipv[] = { "ip", "-o", "-4", "addr", "show", NULL };
	if (hx_run(ipv, NULL, 0, true) != 0) {
		print_message("no ip command: interface subnets untested\n");
		return;
	}
	hx_subnet lo = { 0x7f000000u, 8 };
	assert_int_equal(
	    hx_netns_claim("dxrel004", &lo, leases, &out, err, sizeof(err)),
	    DTX_EBUSY);
	assert_non_null(strstr(err, "127.0.0.0/8"));
}

// dtx bank refuses a bad --subnet, or one without --netns, as a usage
// error before it starts anything.
static void
test_bank_subnet_flag(void **state)
{
	(void)state;
	char *no_netns[] = { "--mode", "2pc", "--subnet", "10.77.9.0/24" };
	assert_int_equal(cli_cmd_bank(4, no_netns), HX_EXIT_USAGE);
	char *host_bits[] = { "--mode", "2pc", "--netns", "--subnet",
		"10.77.9.1/24" };
	assert_int_equal(cli_cmd_bank(5, host_bits), HX_EXIT_USAGE);
	char *public[] = { "--mode", "2pc", "--netns", "--subnet",
		"8.8.8.0/24" };
	assert_int_equal(cli_cmd_bank(5, public), HX_EXIT_USAGE);
	char *junk[] = { "--mode", "2pc", "--netns", "--subnet", "lan" };
	assert_int_equal(cli_cmd_bank(5, junk), HX_EXIT_USAGE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_overlaps),
		cmocka_unit_test(test_pick),
		cmocka_unit_test(test_bank_subnet_flag),
		cmocka_unit_test_setup_teardown(
		    test_concurrent_claims, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_release_and_forced, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
