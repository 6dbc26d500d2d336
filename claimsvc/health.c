/* Readiness for /healthz (docs/operations.md, "Health"): claimsvc is ready
 * when Redis answers and at least one of its broker links is up and
 * subscribed. Not "every link": a broker that is down (or being replaced)
 * would make every claimsvc instance unready at once, though each still
 * serves the other brokers; a link that is down shows on its own line and
 * as onboard_claimsvc_broker_up 0, which is what to alert on. With one
 * broker, at least one is every one.
 * Liveness is not a separate check: the HTTP server runs on the main loop,
 * so any answer at all (200 or 503) shows that loop turning. */
#include "claimsvc.h"
#include "prom.h"

#include <string.h>

int csvc_health(struct csvc *s, const struct csvc_link *links, size_t nlinks, struct csvc_text *t)
{
	const char *why = NULL;
	bool ready = csvc_redis_healthy(s, &why);
	struct csvc_text lines;
	size_t serving = 0;

	/* the verdict comes first, so the details go to a second buffer */
	csvc_text_init(&lines, 16 * 1024);
	if(ready) csvc_text_printf(&lines, "redis ok\n");
	else csvc_text_printf(&lines, "redis down: %s\n", why ? why : "unknown");
	for(size_t i = 0; i < nlinks; i++){
		const struct csvc_link *l = &links[i];
		const char *state = l->serving && l->connected ? "ok" : l->connected
			? "down: connected, but the broker refused the request subscriptions" : "down: not connected";
		csvc_text_printf(&lines, "broker %s %s\n", l->address, state);
		if(l->connected && l->serving) serving++;
	}
	csvc_text_printf(&lines, "brokers serving: %zu of %zu\n", serving, nlinks);
	if(serving == 0) ready = false; /* nothing served (or nothing to serve) is not ready */
	csvc_text_printf(t, "%s\n%s", ready ? "ready" : "not ready", lines.buf ? lines.buf : "");
	csvc_text_free(&lines);
	return ready ? 200 : 503;
}
