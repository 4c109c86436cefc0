// SPDX-License-Identifier: MIT
/*
 * Where an operation's time goes (qp_load_stats.phases, printed by
 * qpatch-load --timing): a phase is the time between two ld_phase() calls.
 * Cheap (one clock read), so it is always on.
 */
#include <string.h>

#include "ld.h"

void ld_phase(struct ld_ctx *c, const char *name)
{
	struct qp_load_stats *st = c->stats;
	double now = now_us();
	size_t i;

	if (!c->phase_t) {
		c->phase_t = now;
		return;
	}
	for (i = 0; i < st->nphases; i++)
		if (st->phases[i].name == name || !strcmp(st->phases[i].name, name))
			break;
	if (i == st->nphases) {
		if (st->nphases == QP_PHASES_MAX)
			i = QP_PHASES_MAX - 1;
		else
			st->phases[st->nphases++] = (struct qp_phase){ .name = name };
	}
	st->phases[i].us += now - c->phase_t;
	st->phases[i].count++;
	c->phase_t = now;
}
