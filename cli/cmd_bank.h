// SPDX-License-Identifier: MIT
//
// dtx bank's printing, shared by cmd_bank.c and cmd_bank_report.c only.

#ifndef CMD_BANK_H
#define CMD_BANK_H

#include "cli.h"

// Prints the fault schedule's shapes and timing (text output).
void bank_print_schedule(const hx_bankrun_conf *c);

// Prints the finished run: one JSON object when json, else the
// summary lines and the verdict. Borrows c and o.
void bank_report(const hx_bankrun_conf *c, const hx_bankrun_out *o, bool json);

#endif // CMD_BANK_H
