/* Certificate rotation on live sessions (docs/provisioning.md, "Certificate
 * rotation"). The registry decides at CONNECT (a retired certificate is
 * refused, a next certificate is promoted: auth.c); here the broker follows
 * on sessions that are already open:
 *
 * - a session on a certificate whose rotation deadline passes is
 *   disconnected (checked from the tick at most once a second, and only
 *   while some session has a deadline);
 * - a `cert` event that leaves a session's certificate bound to nothing
 *   (the device connected elsewhere with its new one) disconnects it;
 * - a device an operator asked to renew (`onboardctl device rotate`) is told
 *   so on devices/<id>/certificates/renew/required, on its live session or
 *   just after its next CONNECT. */
#include <stdio.h>
#include <string.h>

#include "onboard.h"
#include "provisioning/envelope.h"

#define CHECK_EVERY_MS 1000
#define KICKS_PER_PASS 64

static bool deadlines_present, notices_pending;
static int64_t next_check_mono;

void rotation_session_init(struct session *s, const struct onb_device *dev)
{
	s->cert_deadline_ms = 0;
	s->notify_rotate = false;
	if(s->idclass != ONB_ID_DEVICE || strcmp(s->fp, dev->cert_fp) != 0) return;
	if(dev->rotate_deadline_ms > 0){
		s->cert_deadline_ms = dev->rotate_deadline_ms;
		deadlines_present = true;
	}
	/* asked to renew and still on its current certificate: tell it (again) */
	if(dev->rotate_required){
		s->notify_rotate = true;
		notices_pending = true;
	}
}

static void kick_retired(const char *id, const char *why)
{
	char copy[ONB_ID_MAX + 1];

	/* the kick runs the disconnect callback, which ends the session */
	snprintf(copy, sizeof(copy), "%s", id);
	mosquitto_log_printf(MOSQ_LOG_NOTICE, ONB_LOG_PREFIX "disconnecting %s: %s", copy, why);
	metrics.rotation_kicked++;
	mosquitto_kick_client_by_clientid(copy, false);
}

void rotation_apply_event(struct session *s, const struct onb_event *ev)
{
	if(!s || s->idclass != ONB_ID_DEVICE) return;
	if(!strcmp(s->fp, ev->cert_fp)){
		s->cert_deadline_ms = ev->deadline_ms > 0 ? ev->deadline_ms : 0;
		if(s->cert_deadline_ms) deadlines_present = true;
		if(ev->rotate_required){
			s->notify_rotate = true;
			notices_pending = true;
		}
	}else if(!strcmp(s->fp, ev->cert_fp_next)){
		s->cert_deadline_ms = 0;
	}else{
		fleet_note_replaced(s); /* the newer session's announcement may follow */
		kick_retired(s->id, "its certificate was replaced (rotation or re-provisioning)");
	}
}

/* Tells the device to renew: a small JSON document (numbers only) delivered
 * to its connection alone. */
static void send_notice(struct session *s)
{
	char topic[ONB_ID_MAX + 64], body[128];
	void *payload;
	int len;

	s->notify_rotate = false;
	snprintf(topic, sizeof(topic), ONB_TOPIC_RENEW_PREFIX "%s" ONB_TOPIC_RENEW_SUFFIX "/required", s->id);
	len = snprintf(body, sizeof(body), "{\"reason\":\"operator\",\"currentCertificateValidUntil\":%lld}",
			(long long)(s->cert_deadline_ms / 1000));
	if(len <= 0 || (size_t)len >= sizeof(body)) return;
	payload = mosquitto_malloc((size_t)len);
	if(!payload) return;
	memcpy(payload, body, (size_t)len);
	if(mosquitto_broker_publish(s->id, topic, len, payload, 1, false, NULL) != MOSQ_ERR_SUCCESS){
		mosquitto_free(payload);
		return;
	}
	metrics.rotation_notices++;
	mosquitto_log_printf(MOSQ_LOG_INFO, ONB_LOG_PREFIX "%s: asked to renew its certificate", s->id);
}

struct pass {
	int64_t now;
	bool check_deadlines;
	bool deadlines_left;
	int nkick;
	char kick[KICKS_PER_PASS][ONB_ID_MAX + 1];
};

static void visit(struct session *s, void *arg)
{
	struct pass *p = arg;

	if(s->notify_rotate) send_notice(s);
	if(!p->check_deadlines || !s->cert_deadline_ms) return;
	if(p->now < s->cert_deadline_ms || p->nkick >= KICKS_PER_PASS){
		p->deadlines_left = true;
		return;
	}
	memcpy(p->kick[p->nkick++], s->id, sizeof(s->id));
}

void rotation_tick(void)
{
	static struct pass p; /* 8 KiB of ids: not on the broker's stack */
	int64_t mono = onb_mono_ms();

	p.check_deadlines = deadlines_present && mono >= next_check_mono;
	if(!p.check_deadlines && !notices_pending) return;
	if(p.check_deadlines) next_check_mono = mono + CHECK_EVERY_MS;
	p.now = onb_now_ms();
	p.deadlines_left = false;
	p.nkick = 0;
	notices_pending = false;
	/* kicks free sessions: collect first, kick after the walk */
	sessions_each(visit, &p);
	if(p.check_deadlines) deadlines_present = p.deadlines_left;
	for(int i = 0; i < p.nkick; i++){
		kick_retired(p.kick[i], "the grace period of its rotated certificate is over");
	}
}
