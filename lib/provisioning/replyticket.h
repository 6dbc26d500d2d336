/* Who may receive a provisioning reply.
 *
 * claimsvc answers one connection. The plugin publishes that answer on its
 * reply topic like any other message, so the broker delivers it only where
 * a subscription matches, as AWS IoT does (a device that subscribed only to
 * .../accepted does not get .../rejected); a ticket issued before the
 * publish lets exactly the asking connection's READ check pass. Everyone
 * else subscribed to the same reply topic (other devices provisioning at the
 * same time, another tenant's back-end) is refused, and so is a look-alike
 * published by anyone but the plugin.
 *
 * A ticket names the client id, the reply topic and a SHA-256 digest of the
 * three with the payload; it lives ttl_ms (a reply queued for an offline
 * persistent session is checked again when the device returns) or until
 * capacity newer tickets push it out. Pure data structure: no I/O, no
 * Mosquitto, not thread-safe (the broker's thread owns it). */
#ifndef ONB_REPLYTICKET_H
#define ONB_REPLYTICKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct onb_reply_tickets;

/* A table of at most capacity live tickets (capacity >= 1), or NULL when
 * memory is short. The caller frees it with onb_reply_tickets_free. */
struct onb_reply_tickets *onb_reply_tickets_new(size_t capacity, int64_t ttl_ms);
void onb_reply_tickets_free(struct onb_reply_tickets *t);

/* Lets client_id receive payload[0..len) on topic until now_ms + ttl_ms.
 * When the table is full the oldest ticket goes. ONB_OK, or ONB_EINTERNAL
 * when the digest cannot be computed. */
int onb_reply_tickets_issue(struct onb_reply_tickets *t, const char *client_id, const char *topic,
		const void *payload, size_t len, int64_t now_ms);

/* True when a live ticket lets client_id receive exactly this message. */
bool onb_reply_tickets_admit(struct onb_reply_tickets *t, const char *client_id, const char *topic,
		const void *payload, size_t len, int64_t now_ms);

/* Drops the tickets older than ttl_ms; returns how many of them never
 * admitted anyone (the device was not subscribed to that reply topic). */
size_t onb_reply_tickets_expire(struct onb_reply_tickets *t, int64_t now_ms);

/* Live tickets. */
size_t onb_reply_tickets_count(const struct onb_reply_tickets *t);

#endif
