/* The admission view: an in-memory copy of the registry entries a CONNECT
 * decision reads (certificate fingerprint -> device id, state, tenant,
 * policy, next certificate, birth certificate, rotation deadline and flag),
 * so that a broker admits a known device without a Redis round trip
 * (docs/registry.md, "The admission view").
 *
 * Knows nothing of Mosquitto or of threads: one owner at a time. The plugin
 * builds a view on a loader thread (onb_admview_load), hands it to the
 * broker's thread, and from then on only that thread reads and changes it. */
#ifndef ONB_ADMVIEW_H
#define ONB_ADMVIEW_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <hiredis/hiredis.h>

#include "registry/registry.h"

struct onb_admview;

/* A new, empty view with room for about `hint` devices (0: a small
 * default); NULL when out of memory. Free with onb_admview_free. */
struct onb_admview *onb_admview_new(size_t hint);
void onb_admview_free(struct onb_admview *v);

/* Inserts or replaces the entry of device d->id from the admission fields of
 * d. A device without an operational certificate (cert_fp empty) has nothing
 * to admit: its entry is removed instead. ONB_EINVAL for a field that does
 * not fit (an id, fingerprint or name the registry would refuse),
 * ONB_EINTERNAL when out of memory (the view then no longer holds d->id: a
 * lookup misses and goes to Redis). */
int onb_admview_put(struct onb_admview *v, const struct onb_device *d);

/* Removes the entry of device id, if any. */
void onb_admview_remove(struct onb_admview *v, const char *id);

/* Looks a certificate fingerprint up as onb_registry_device_by_fp does, at
 * time now_ms: ONB_OK with the admission fields of *out filled (the others
 * zero); ONB_EREFUSED when fp is the device's current certificate and its
 * rotation deadline has passed; ONB_ENOTFOUND when the view has no device
 * bound to fp (the caller asks Redis: a view is never the last word on
 * absence). */
int onb_admview_by_fp(const struct onb_admview *v, const char *fp, int64_t now_ms,
		struct onb_device *out, struct onb_err *err);

/* Looks a device up by id: ONB_OK with *out filled, ONB_ENOTFOUND if the
 * view has no entry for it (ask Redis). */
int onb_admview_by_id(const struct onb_admview *v, const char *id,
		struct onb_device *out, struct onb_err *err);

/* Number of devices held. */
size_t onb_admview_count(const struct onb_admview *v);
/* Bytes the view asked malloc for (entries and tables; not malloc's own
 * per-block overhead, see the benchmark for resident memory). */
size_t onb_admview_bytes(const struct onb_admview *v);

/* ------------------------------------------------------------ from Redis */

/* Reads one device's admission fields (one HMGET) into *out. ONB_ENOTFOUND
 * when the device does not exist (the caller removes it from its view),
 * ONB_EUNAVAIL on Redis errors (drop rc). */
int onb_admview_read_device(redisContext *rc, const char *id, struct onb_device *out,
		struct onb_err *err);

/* Fills an empty view with every device that has an operational
 * certificate: SCAN over onb:dev:* with pipelined HMGETs, `batch` keys per
 * SCAN step (0: 1000). Stops early, with ONB_EUNAVAIL, when *stop becomes
 * true. A record that does not fit is skipped and counted in *skipped (may
 * be NULL). ONB_EUNAVAIL on Redis errors (drop rc and start again with a new
 * view: a partial view is not coherent), ONB_EINTERNAL when out of memory. */
int onb_admview_load(redisContext *rc, struct onb_admview *v, int batch,
		const atomic_bool *stop, size_t *skipped, struct onb_err *err);

#endif
