// SPDX-License-Identifier: MIT
//
// dtx: the command line. The commands live in cli/ (cli_main in dtx.c
// lists them), so that the tests can run them in-process.

#include "cli.h"

int
main(int argc, char **argv)
{
	dtx_log_init("dtx", DTX_LOG_WARN);
	return cli_main(argc, argv);
}
