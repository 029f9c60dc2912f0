// SPDX-License-Identifier: MIT
//
// Authorisation by role: the one table of which roles may send which
// message type to a daemon, checked once where a message enters (the
// daemon runtime's handler), before any daemon code sees it.

#include "daemon.h"

#define R(x) (1u << PROTO_ROLE_##x)
#define ANY                                                                    \
	(R(COORDINATOR) | R(PARTICIPANT) | R(SAGA) | R(CLIENT) | R(ADMIN) |    \
	    R(HARNESS))
#define EXTERNAL (R(CLIENT) | R(ADMIN) | R(HARNESS))

// Message type -> the roles that may send it as a request. Replies
// (ERROR, PONG, *_REPLY, VOTE, ACK, CHALLENGE) are never requests; HELLO
// and AUTH are answered by the server before this table is consulted,
// and refused anywhere else (inside a BATCH). A BATCH is checked element
// by element. Per-transaction rules (which coordinator, which peers) are
// the participant's, on top of this.
static const uint32_t allowed[PROTO_TYPE_COUNT] = {
	[PROTO_NONE] = 0,
	[PROTO_ERROR] = 0,
	[PROTO_BATCH] = ANY,
	[PROTO_PING] = ANY,
	[PROTO_PONG] = 0,
	[PROTO_HEALTH] = ANY,
	[PROTO_HEALTH_REPLY] = 0,
	// Also needs --enable-faults (proto_authz_check).
	[PROTO_FAULT] = R(HARNESS),
	[PROTO_TXN] = EXTERNAL,
	[PROTO_TXN_REPLY] = 0,
	[PROTO_PREPARE] = R(COORDINATOR),
	[PROTO_CAN_COMMIT] = R(COORDINATOR),
	[PROTO_VOTE] = 0,
	[PROTO_COMMIT] = R(COORDINATOR),
	// A participant leading 3PC termination tells its peers.
	[PROTO_ABORT] = R(COORDINATOR) | R(PARTICIPANT),
	[PROTO_PRE_COMMIT] = R(COORDINATOR) | R(PARTICIPANT),
	[PROTO_DO_COMMIT] = R(COORDINATOR) | R(PARTICIPANT),
	[PROTO_ACK] = 0,
	// Participants ask their coordinator and (cooperative termination)
	// each other; a recovering coordinator asks participants; admins
	// and the harness's checker ask anyone.
	[PROTO_STATUS] =
	    R(COORDINATOR) | R(PARTICIPANT) | R(ADMIN) | R(HARNESS),
	[PROTO_STATUS_REPLY] = 0,
	[PROTO_READ] = EXTERNAL | R(COORDINATOR) | R(SAGA),
	[PROTO_READ_REPLY] = 0,
	[PROTO_SAGA_SUBMIT] = EXTERNAL,
	[PROTO_SAGA_REPLY] = 0,
	[PROTO_STEP] = R(SAGA),
	[PROTO_STEP_REPLY] = 0,
	[PROTO_SAGA_STATUS] = EXTERNAL,
	[PROTO_SAGA_STATUS_REPLY] = 0,
	[PROTO_SAGA_FORGET] = R(SAGA),
	[PROTO_HELLO] = 0,
	[PROTO_CHALLENGE] = 0,
	[PROTO_AUTH] = 0,
	// Operators' view of transactions in doubt (the harness's checker
	// reads heuristic decisions too); deciding one by hand is the
	// admin's alone.
	[PROTO_TXN_LIST] = R(ADMIN) | R(HARNESS),
	[PROTO_TXN_LIST_REPLY] = 0,
	[PROTO_TXN_RESOLVE] = R(ADMIN),
	[PROTO_TXN_RESOLVE_REPLY] = 0,
	// A daemon's recent transaction events: operators and the harness.
	[PROTO_TRACE] = R(ADMIN) | R(HARNESS),
	[PROTO_TRACE_REPLY] = 0,
};

uint32_t
proto_authz_roles(proto_type type)
{
	return (unsigned)type < PROTO_TYPE_COUNT ? allowed[type] : 0;
}

uint32_t
proto_authz_any(void)
{
	return ANY;
}

uint32_t
proto_authz_external(void)
{
	return EXTERNAL;
}

proto_refusal
proto_authz_check(proto_type type, uint32_t roles, bool faults_enabled)
{
	if ((proto_authz_roles(type) & roles) == 0)
		return PROTO_REFUSED_ROLE;
	if (type == PROTO_FAULT && !faults_enabled)
		return PROTO_REFUSED_FAULTS_OFF;
	return PROTO_REFUSED_NONE;
}

static const char *const refusal_names[PROTO_REFUSED_COUNT] = {
	[PROTO_REFUSED_NONE] = "none",
	[PROTO_REFUSED_ROLE] = "refused_role",
	[PROTO_REFUSED_FAULTS_OFF] = "refused_faults_off",
	[PROTO_REFUSED_IDENTITY] = "refused_identity",
};

const char *
proto_refusal_name(proto_refusal r)
{
	return (unsigned)r < PROTO_REFUSED_COUNT ? refusal_names[r] : "?";
}
