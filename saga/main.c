// SPDX-License-Identifier: MIT
//
// dtx-saga: the saga orchestrator. Runs sagas submitted by clients step by
// step on the participants, compensates them on failure, and resumes every
// unfinished saga from its log after a restart.

#include "saga.h"

int
main(int argc, char **argv)
{
	saga_cfg cfg = { 0 };
	proto_daemon *d = NULL;
	saga *s = NULL;
	proto_daemon_hooks hooks;
	int code = 1;

	// Flags, environment, topology, clocks, signals.
	if (proto_daemon_open("dtx-saga", DTX_ROLE_SAGA, argc, argv,
	        saga_cfg_table, saga_cfg_count, &cfg, &d) != DTX_OK)
		return 64;
	if (d == NULL)
		return 0; // --help
	// The saga log: every unfinished saga is reloaded with the state of
	// each of its steps.
	if (saga_open(d, &cfg, &s) != DTX_OK)
		goto done;
	saga_hooks(s, &hooks);
	if (proto_daemon_serve(d, &hooks) != DTX_OK)
		goto done;
	// Then resume the unfinished sagas, each in its direction.
	if (saga_start(s) != DTX_OK)
		goto done;
	proto_daemon_wait(d);
	code = 0;
done:
	saga_stop(s);
	proto_daemon_close(d);
	saga_close(s);
	return code;
}
