/* What the plugin refuses, in the audit trail without letting a flood erase
 * it: one aggregated entry per kind and window (registry/auditagg.h). A kind is
 * who (a device or service by its client id, a claim or birth certificate by
 * its fingerprint and address: their client ids are the sender's to vary),
 * what and why. */
#include <stdio.h>
#include <string.h>

#include "onboard.h"
#include "registry/auditagg.h"
#include "identity/authority.h"

#define REFUSAL_KINDS 1024

static struct onb_audit_agg *agg;

/* The writer thread writes it: refusals come from the message path,
 * where the broker's thread never waits on Redis (DESIGN.md s.1). */
static void write_entry(const struct onb_audit_entry *e, void *arg)
{
	(void)arg;
	writer_audit(e);
}

int refusals_init(const struct onboard_config *cfg)
{
	agg = onb_audit_agg_new(REFUSAL_KINDS, (int64_t)cfg->audit_window_s * 1000, write_entry, NULL);
	return agg ? ONB_OK : ONB_EINTERNAL;
}

void refusals_free(void)
{
	onb_audit_agg_free(agg);
	agg = NULL;
}

void refusals_tick(void)
{
	if(agg) onb_audit_agg_tick(agg, onb_now_ms());
}

void refusals_write(const struct onb_audit_entry *e, bool shared_identity)
{
	char key[ONB_AUDITAGG_KEY_MAX];

	if(!agg){
		write_entry(e, NULL);
		return;
	}
	snprintf(key, sizeof(key), "%s|%s|%s|%s|%s", e->action, e->result,
			e->idclass ? e->idclass : "-",
			shared_identity ? (e->fp ? e->fp : "-") : (e->client ? e->client : "-"),
			e->source ? e->source : "-");
	/* the reason's token (up to ':') is part of the kind; its detail is the sample's */
	snprintf(key + strlen(key), sizeof(key) - strlen(key), "|%.*s",
			e->reason ? (int)strcspn(e->reason, ":") : 1, e->reason ? e->reason : "-");
	onb_audit_agg_note(agg, key, e, onb_now_ms());
}

void refusals_note(const struct session *s, const struct mosquitto *client, const char *action,
		const char *reason)
{
	struct onb_audit_entry e = {
		.actor = "plugin",
		.source = mosquitto_client_address((struct mosquitto *)client),
		.action = action,
		.device = s->idclass == ONB_ID_DEVICE ? s->id : NULL,
		.result = "deny",
		.reason = reason,
		.client = s->id,
		.idclass = onb_idclass_name(s->idclass),
		.fp = s->fp,
	};

	refusals_write(&e, onb_idclass_provisioning(s->idclass));
}
