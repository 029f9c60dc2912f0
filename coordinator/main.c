// SPDX-License-Identifier: MIT
//
// dtx-coordinator: runs 2PC and 3PC transactions for clients over the
// participants of its topology, with a durable decision log.

#include <stdlib.h>

#include "coordinator.h"

int
main(int argc, char **argv)
{
	proto_daemon *d = NULL;
	coord *c = NULL;
	coord_cfg cfg;
	proto_daemon_hooks hooks;
	dtx_err rv;

	// Flags, topology, logging and clocks.
	rv = proto_daemon_open("dtx-coordinator", DTX_ROLE_COORDINATOR, argc,
	    argv, coord_cfg_table, coord_cfg_count, &cfg, &d);
	if (rv != DTX_OK)
		return rv == DTX_EINVAL ? 64 : 1;
	if (d == NULL)
		return EXIT_SUCCESS; // --help

	// Decision log replay, channels, re-drive.
	if ((rv = coord_open(d, &cfg, &c)) != DTX_OK) {
		DTX_LOG(DTX_LOG_ERROR, "COORD_OPEN", "cannot start: %s",
		    dtx_strerror(rv));
		proto_daemon_close(d);
		return 1;
	}

	// Serve until SIGTERM / SIGINT.
	coord_hooks(c, &hooks);
	if ((rv = proto_daemon_serve(d, &hooks)) != DTX_OK) {
		DTX_LOG(DTX_LOG_ERROR, "COORD_SERVE", "cannot serve: %s",
		    dtx_strerror(rv));
	} else {
		DTX_LOG(DTX_LOG_INFO, "COORD_READY", "serving");
		proto_daemon_wait(d);
	}

	// Tear down: background threads, then the runtime, then the log.
	coord_stop(c);
	proto_daemon_close(d);
	coord_close(c);
	return rv == DTX_OK ? EXIT_SUCCESS : 1;
}
