/*
 * session_judge.c - judging a session's device again under the rules now
 * in force ([gateway] rejudge; see rejudge.h for when).
 */
#include <stdio.h>
#include <string.h>

#include "certfacts.h"
#include "clock.h"
#include "gen.h"
#include "metrics.h"
#include "refusals.h"
#include "runtime.h"
#include "session_int.h"
#include "trust.h"

void
session_note_refusal(struct session *s, enum reason why, const char *detail)
{
	char device[sizeof(((struct refusal *)NULL)->device)] = "";
	const struct trust_chain *chain = &s->verdict.chain;

	if (s->rt->refusals == NULL) {
		return;
	}
	if (s->verdict.id.len > 0) {
		judge_identity_display(&s->verdict.id, device, sizeof(device));
	} else if (chain->count > 0) {
		/* A resumed session refused before its identity was read
		 * (a refused full handshake has it, trust.c): the name the
		 * identity rule gives, or the first CN (judge.h). */
		struct certfacts leaf;
		struct judge_identity id;
		char why_not[CERTFACTS_WHY_LEN];

		if (certfacts_parse(chain->der, chain->len[0], &leaf,
		    why_not)) {
			judge_identity(&leaf, s->gen->cfg->mqtt.identity, &id);
			judge_identity_display(&id, device, sizeof(device));
		}
	}
	refusals_add(s->rt->refusals, clock_wall_s(), s->peer, device, why,
	    detail);
}

/*
 * A device whose handshake began under an older generation was judged by
 * that generation's rules; a reload since then may have removed its CA or
 * revoked it. It is judged by the rules now in force before it is admitted
 * ([gateway] rejudge), as the sessions already open were at the reload.
 */
bool
session_judged_current(struct session *s)
{
	struct gen *now = s->rt->gen;
	struct judge_verdict j;

	if (now == s->gen || !now->cfg->gateway.rejudge) {
		return true;
	}
	trust_rejudge(now->trust, &s->verdict.chain, clock_wall_s(), &j);
	if (j.admitted) {
		return true;
	}
	/* The CA index of j is into the newer generation's sections. */
	s->verdict.j.admitted = false;
	s->verdict.j.reason = j.reason;
	memcpy(s->verdict.j.detail, j.detail, sizeof(j.detail));
	intake_handshake_failed(s);
	return false;
}

/* A session refused as unknown-ca because the reload removed the section
 * that admitted it: said so, as "add the CA" would undo the removal the
 * operator just made (docs/rotation.md, step 7). */
static void
session_removed_ca_detail(const struct session *s, const struct gen *cur,
    struct judge_verdict *j)
{
	const struct cfg *was = s->gen->cfg;
	const char *name;
	char device[4 * JUDGE_IDENTITY_MAX + 1];

	if (j->reason != REASON_UNKNOWN_CA || s->verdict.j.ca_index < 0
	    || (size_t)s->verdict.j.ca_index >= was->ca_count) {
		return;
	}
	name = was->cas[s->verdict.j.ca_index].name;
	for (size_t i = 0; i < cur->cfg->ca_count; i++) {
		if (strcmp(cur->cfg->cas[i].name, name) == 0) {
			return;
		}
	}
	judge_identity_display(&s->verdict.id, device, sizeof(device));
	snprintf(j->detail, sizeof(j->detail), "the device%s%s was admitted "
	    "by [ca.%s], which the configuration no longer has (removed at "
	    "this reload); it needs a certificate of a CA still configured",
	    device[0] != '\0' ? " " : "", device, name);
}

bool
session_rejudge(struct session *s, int64_t now)
{
	struct gen *cur = s->rt->gen;
	struct judge_verdict j;

	/* A handshake in progress is judged under the current rules when
	 * it completes (session_judged_current); a session without a
	 * device certificate has nothing to judge. */
	if (s->state == SESSION_HANDSHAKE || s->state == SESSION_DRAINING
	    || s->state == SESSION_LINGER || s->state == SESSION_CLOSED
	    || !s->has_cert
	    || s->verdict.chain.count == 0) {
		return false;
	}
	trust_rejudge(cur->trust, &s->verdict.chain, now, &j);
	if (j.admitted) {
		return false;
	}
	session_removed_ca_detail(s, cur, &j);
	/* The broker sees the connection drop without DISCONNECT, so it
	 * publishes the device's will as for any lost device. */
	metrics_revoked(s->rt->metrics, j.reason);
	session_log_end(s, "session-revoked", j.reason, j.detail);
	session_note_refusal(s, j.reason, j.detail);
	s->quiet_close = true;
	session_end(s, j.reason, j.detail);
	return true;
}
