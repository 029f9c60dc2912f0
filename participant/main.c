// SPDX-License-Identifier: MIT
//
// dtx-participant: owns a shard of keys in a WAL + MVCC store, votes in
// 2PC/3PC, serves snapshot reads and resolves its in-doubt transactions.

#include "participant.h"

int
main(int argc, char **argv)
{
	part_cfg cfg = { 0 };
	proto_daemon *d = NULL;
	part *p = NULL;
	proto_daemon_hooks hooks;
	int code = 1;

	// Flags, environment, topology, clocks, signals.
	if (proto_daemon_open("dtx-participant", DTX_ROLE_PARTICIPANT, argc,
	        argv, part_cfg_table, part_cfg_count, &cfg, &d) != DTX_OK)
		return 64;
	if (d == NULL)
		return 0; // --help
	// The store: in-doubt transactions come back with their locks
	// before anything is served (rule 8).
	if (part_open(d, &cfg, &p) != DTX_OK)
		goto done;
	part_hooks(p, &hooks);
	if (proto_daemon_serve(d, &hooks) != DTX_OK)
		goto done;
	// Then ask about every in-doubt transaction.
	if (part_start(p) != DTX_OK)
		goto done;
	proto_daemon_wait(d);
	code = 0;
done:
	part_stop(p);
	proto_daemon_close(d);
	part_close(p);
	return code;
}
