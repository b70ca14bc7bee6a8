/*
 * scenario.c - step tables of the four scenarios (see scenario.h).
 */
#include "ttsmig/scenario.h"

#include <string.h>

static const struct step_def defs[STEP_KIND_COUNT] = {
	{ STEP_SOURCE_STOP_DOWNLINKS, "source_stop_downlinks", "source", REG_NS },
	{ STEP_SOURCE_REREAD, "source_reread", "source", -1 },
	{ STEP_SOURCE_DELETE_AS, "source_delete_as", "source", REG_AS },
	{ STEP_SOURCE_DELETE_NS, "source_delete_ns", "source", REG_NS },
	{ STEP_SOURCE_DELETE_JS, "source_delete_js", "source", REG_JS },
	{ STEP_SOURCE_DELETE_IS, "source_delete_is", "source", REG_IS },
	{ STEP_TARGET_NEW_SESSION, "target_new_session", "target", REG_NS },
	{ STEP_TARGET_CREATE_IS, "target_create_is", "target", REG_IS },
	{ STEP_TARGET_SET_JS, "target_set_js", "target", REG_JS },
	{ STEP_TARGET_SET_NS, "target_set_ns", "target", REG_NS },
	{ STEP_TARGET_SET_AS, "target_set_as", "target", REG_AS },
	{ STEP_VERIFY_TARGET, "verify_target", "target", -1 },
	{ STEP_AWAIT_JOIN, "await_join", "target", REG_NS },
	{ STEP_AWAIT_REFLASH, "await_reflash", NULL, -1 },
	{ STEP_TARGET_DELETE_AS, "target_delete_as", "target", REG_AS },
	{ STEP_TARGET_DELETE_NS, "target_delete_ns", "target", REG_NS },
	{ STEP_TARGET_DELETE_JS, "target_delete_js", "target", REG_JS },
	{ STEP_TARGET_DELETE_IS, "target_delete_is", "target", REG_IS },
	{ STEP_CONFIRM_TARGET_GONE, "confirm_target_gone", "target", -1 },
	{ STEP_SOURCE_RESTORE_IS, "source_restore_is", "source", REG_IS },
	{ STEP_SOURCE_RESTORE_JS, "source_restore_js", "source", REG_JS },
	{ STEP_SOURCE_RESTORE_NS, "source_restore_ns", "source", REG_NS },
	{ STEP_SOURCE_RESTORE_AS, "source_restore_as", "source", REG_AS },
	{ STEP_SOURCE_RESTORE_DOWNLINKS, "source_restore_downlinks", "source", REG_NS },
	{ STEP_TARGET_REREAD, "target_reread", "target", -1 },
};

const struct step_def *step_def_of(enum step_kind k)
{
	return (unsigned)k < STEP_KIND_COUNT ? &defs[k] : NULL;
}

int step_kind_parse(const char *name)
{
	for (int k = 0; k < STEP_KIND_COUNT; k++)
		if (strcmp(defs[k].name, name) == 0)
			return k;
	return -1;
}

bool scenario_needs_gateways(enum device_scenario scenario)
{
	return scenario == DEVICE_SC_KEEP_SESSION || scenario == DEVICE_SC_ABP_RESET;
}

int scenario_steps(enum device_scenario scenario, bool otaa, bool cleanup_delete,
                   enum step_kind *out, int cap)
{
	enum step_kind s[32];
	int n = 0;
#define ADD(k) (s[n++] = (k))
#define ADD_TARGET()                                                                               \
	do {                                                                                       \
		ADD(STEP_TARGET_CREATE_IS);                                                        \
		if (otaa)                                                                          \
			ADD(STEP_TARGET_SET_JS);                                                   \
		ADD(STEP_TARGET_SET_NS);                                                           \
		ADD(STEP_TARGET_SET_AS);                                                           \
	} while (0)
#define ADD_SOURCE_DELETE()                                                                        \
	do {                                                                                       \
		ADD(STEP_SOURCE_DELETE_AS);                                                        \
		ADD(STEP_SOURCE_DELETE_NS);                                                        \
		if (otaa)                                                                          \
			ADD(STEP_SOURCE_DELETE_JS);                                                \
		ADD(STEP_SOURCE_DELETE_IS);                                                        \
	} while (0)

	ADD(STEP_SOURCE_STOP_DOWNLINKS);
	switch (scenario) {
	case DEVICE_SC_REJOIN:
		ADD(STEP_SOURCE_REREAD);
		ADD_TARGET();
		ADD(STEP_VERIFY_TARGET);
		ADD(STEP_AWAIT_JOIN);
		if (cleanup_delete)
			ADD_SOURCE_DELETE();
		break;
	case DEVICE_SC_KEEP_SESSION:
		ADD(STEP_SOURCE_REREAD);
		ADD_SOURCE_DELETE();
		ADD_TARGET();
		ADD(STEP_VERIFY_TARGET);
		break;
	case DEVICE_SC_ABP_RESET:
		ADD_TARGET();
		ADD(STEP_VERIFY_TARGET);
		ADD_SOURCE_DELETE();
		break;
	case DEVICE_SC_ABP_NEW:
		ADD(STEP_TARGET_NEW_SESSION);
		ADD_TARGET();
		ADD(STEP_VERIFY_TARGET);
		ADD(STEP_AWAIT_REFLASH);
		ADD_SOURCE_DELETE();
		break;
	}
#undef ADD
#undef ADD_TARGET
#undef ADD_SOURCE_DELETE
	int copy = n < cap ? n : cap;
	memcpy(out, s, sizeof(s[0]) * (size_t)copy);
	return n;
}

int scenario_restore_steps(bool otaa, bool target_touched, bool source_deleted,
                           bool downlinks_stopped, enum step_kind *out, int cap)
{
	enum step_kind s[16];
	int n = 0;
	if (target_touched) {
		s[n++] = STEP_TARGET_DELETE_AS;
		s[n++] = STEP_TARGET_DELETE_NS;
		if (otaa)
			s[n++] = STEP_TARGET_DELETE_JS;
		s[n++] = STEP_TARGET_DELETE_IS;
		s[n++] = STEP_CONFIRM_TARGET_GONE;
	}
	if (source_deleted) {
		s[n++] = STEP_SOURCE_RESTORE_IS;
		if (otaa)
			s[n++] = STEP_SOURCE_RESTORE_JS;
		s[n++] = STEP_SOURCE_RESTORE_NS;
		s[n++] = STEP_SOURCE_RESTORE_AS;
	}
	if (downlinks_stopped)
		s[n++] = STEP_SOURCE_RESTORE_DOWNLINKS;
	int copy = n < cap ? n : cap;
	memcpy(out, s, sizeof(s[0]) * (size_t)copy);
	return n;
}

int scenario_rollback_steps(bool otaa, bool source_deleted, bool downlinks_stopped,
                            enum step_kind *out, int cap)
{
	enum step_kind s[16];
	enum step_kind rest[16];
	int n = 0;
	s[n++] = STEP_TARGET_REREAD;
	int m = scenario_restore_steps(otaa, true, source_deleted, downlinks_stopped, rest, 16);
	for (int i = 0; i < m; i++)
		s[n++] = rest[i];
	int copy = n < cap ? n : cap;
	memcpy(out, s, sizeof(s[0]) * (size_t)copy);
	return n;
}
