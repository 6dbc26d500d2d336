/* claimsvc: private header of the fleet-provisioning claim service.
 *
 * One process is one MQTT client (libmosquitto, mTLS with a service
 * certificate) in the shared subscription $share/claimsvc/onb/internal/prov/
 * request; several may run at once. Requests are handled one at a time on
 * the main thread: handler.c turns a request envelope into a reply envelope
 * using lib/ (csr, provision, template, provreg) and Redis (ratelimit.c). */
#ifndef CLAIMSVC_H
#define CLAIMSVC_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>

#include <hiredis/hiredis.h>
#include <openssl/x509.h>

#include "core/common.h"
#include "core/ids.h"
#include "registry/redis.h"
#include "registry/auditagg.h"
#include "claim/claimreg.h"
#include "provisioning/template.h"

/* ============================================================
 * Logging (log.c): one line per event on stderr
 * ============================================================ */
enum csvc_level { CSVC_ERROR = 0, CSVC_WARNING, CSVC_INFO, CSVC_DEBUG };

extern enum csvc_level csvc_log_level;

/* Writes "<UTC time> claimsvc[<pid>] <level>: <message>" if level is enabled. */
void csvc_log(enum csvc_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "error", "warning", "info", "debug" -> level; -1 when unknown. */
int csvc_level_parse(const char *name);

/* ============================================================
 * Configuration (config.c): config/claimsvc.conf
 * ============================================================ */
#define CSVC_PATH_MAX 1024
/* Off unless configured: an existing configuration opens no port, and
 * instances sharing a host never collide on one. The shipped
 * config/claimsvc.conf and the docker entrypoint turn it on at
 * 127.0.0.1:9884. */
#define CSVC_HTTP_DEFAULT_LISTEN "off"

/* Where the HTTP server (/healthz, /metrics) listens: a numeric address, so
 * that no name lookup happens at start; "off" disables it. */
struct csvc_listen {
	bool enabled;
	int family;                         /* AF_INET or AF_INET6 */
	unsigned char addr[16];             /* network byte order, 4 or 16 bytes used */
	int port;
	char text[64];                      /* as configured, for logs and --check */
};

/* One broker claimsvc serves: a "broker HOST:PORT" line, or the one-broker
 * form broker_host + broker_port. host is a name or an address, without the
 * brackets of an IPv6 address. */
#define CSVC_BROKERS_MAX 32
struct csvc_broker {
	char host[256];
	int port;
};

struct csvc_config {
	char broker_host[256];              /* the one-broker form; also brokers[0] when it is used */
	int broker_port;
	struct csvc_broker brokers[CSVC_BROKERS_MAX]; /* every broker served, in file order */
	size_t nbrokers;                    /* 1..CSVC_BROKERS_MAX after a successful read */
	int keepalive;
	char cafile[CSVC_PATH_MAX];
	char certfile[CSVC_PATH_MAX];
	char keyfile[CSVC_PATH_MAX];
	char client_id[ONB_ID_MAX + 1];     /* "" : the CN of certfile */
	char device_ca_cert[CSVC_PATH_MAX];
	char device_ca_key[CSVC_PATH_MAX];
	char redis_url[512];
	int redis_timeout_ms;
	char templates_dir[CSVC_PATH_MAX];
	int token_ttl;                      /* seconds */
	int cert_validity_days;
	bool create_keys_enabled;
	bool reply_chain;                   /* certificatePem = certificate + device CA (default: the certificate alone) */
	int rate_window_ms;
	long rate_per_client;               /* per requester fp + client id; 0 = off */
	long rate_per_requester;            /* per requester certificate fp; 0 = off */
	long rate_global;                   /* all requests; 0 = off */
	int claim_max_failures;             /* failed claims per window before a lockout */
	long claim_window_ms, claim_lockout_ms;
	int rotation_grace;                 /* s the old certificate keeps working after a renewal */
	char pkcs11_module[CSVC_PATH_MAX];  /* PKCS#11 module for a pkcs11: device_ca_key, "" default */
	int metrics_interval_s;             /* $SYS/onboard/claimsvc/<id> every N s; 0 off */
	int audit_window_s;                 /* repeated refusals: one audit entry per kind and window */
	int audit_retention_days;           /* onb:audit keeps this long (every writer trims) */
	struct csvc_listen http_listen;     /* /healthz and /metrics (http.c) */
	enum csvc_level log_level;
};

/* Reads a config file: "key value" lines, '#' comments. Unknown or repeated
 * keys, bad values and missing required keys are errors (one line in err). */
int csvc_config_load(const char *path, struct csvc_config *cfg, struct onb_err *err);

/* Parses a "broker" value, "HOST:PORT" or "[IPv6]:PORT", into out (host
 * without brackets). HOST: a name or address of letters, digits, '.', '-', '_'. */
int csvc_broker_parse(const char *spec, struct csvc_broker *out, struct onb_err *err);

/* Writes b as "host:port" ("[v6]:port" when host holds a ':'), as logs,
 * /healthz and the address label of /metrics show it. */
void csvc_broker_format(const struct csvc_broker *b, char *buf, size_t size);

/* Parses "ADDRESS:PORT" (IPv4 dotted quad, or [IPv6]) or "off" into out. */
int csvc_listen_parse(const char *spec, struct csvc_listen *out, struct onb_err *err);

/* The parser behind csvc_config_load: reads the open stream f (not closed
 * here) to its end; path only names the source in error lines. */
int csvc_config_read(FILE *f, const char *path, struct csvc_config *cfg, struct onb_err *err);

/* ============================================================
 * Rate limits (ratelimit.c): Redis fixed-window counters
 * ============================================================ */
enum csvc_rl { CSVC_RL_OK = 0, CSVC_RL_CLIENT, CSVC_RL_REQUESTER, CSVC_RL_GLOBAL };

/* Counts one request of (fp, client_id) in the current window of every
 * enabled limit (INCR + PEXPIRE, pipelined: one round trip) and says which
 * limit, if any, it exceeds. *first is true when this request is the first
 * over that limit in its window (so a flood is audited once per window). */
int csvc_ratelimit(redisContext *rc, const struct csvc_config *cfg, const char *fp,
		const char *client_id, enum csvc_rl *out, bool *first, struct onb_err *err);

/* ============================================================
 * Counters (metrics.c): $SYS/onboard/claimsvc/<client id>
 * ============================================================ */
#define CSVC_CODES_MAX 40

/* What a request asked for, as counted: the first four are enum
 * onb_prov_kind's values (handler.c), then claim redemption (claim.c), then
 * an envelope dropped before its topic was known. */
enum csvc_action {
	CSVC_ACT_CREATE_FROM_CSR, CSVC_ACT_CREATE_KEYS, CSVC_ACT_REGISTER_THING, CSVC_ACT_RENEW,
	CSVC_ACT_CLAIM, CSVC_ACT_UNKNOWN, CSVC_ACT_COUNT
};
enum csvc_result { CSVC_RES_ACCEPTED, CSVC_RES_REJECTED, CSVC_RES_DROPPED, CSVC_RES_COUNT };

struct csvc_metrics {
	uint64_t requests[CSVC_ACT_COUNT][CSVC_RES_COUNT]; /* by action and outcome */
	uint64_t renewed;                   /* renewals accepted */
	uint64_t register_replays;          /* RegisterThing answered again (the same request resent) */
	uint64_t redis_errors;              /* failed connects and dropped connections */
	struct { const char *code; uint64_t n; } rejected_by[CSVC_CODES_MAX]; /* by errorCode */
	int ncodes;
	uint64_t rejected_other;            /* errorCodes beyond the table */
	int64_t started_ms;
};

struct csvc;

/* The audit and metrics name of an action ("create-from-csr", ...). */
const char *csvc_action_name(enum csvc_action a);

/* Counts one request's outcome (and the handled/accepted/rejected/dropped
 * totals of struct csvc). */
void csvc_metrics_count(struct csvc *s, enum csvc_action a, enum csvc_result r);

/* Counts one rejection under its errorCode (code: a static string). */
void csvc_metrics_reject(struct csvc *s, const char *code);

/* The counters as one JSON object; caller frees with cJSON_free. */
char *csvc_metrics_json(const struct csvc *s);

struct csvc_text;
struct csvc_link;

/* claimsvc's own families in Prometheus text format (docs/operations.md,
 * "Prometheus"), with the readiness of Redis and of each link. */
void csvc_metrics_prom(struct csvc *s, const struct csvc_link *links, size_t nlinks, struct csvc_text *t);

/* ============================================================
 * Health (health.c): /healthz
 * ============================================================ */
struct mosquitto;

/* One broker connection this instance serves (links.c); health.c and
 * metrics.c read address, connected and serving. */
struct csvc_link {
	char address[300];                  /* "host:port" as configured */
	bool connected;                     /* CONNACK success and no disconnect since */
	bool serving;                       /* the broker granted both request subscriptions */
	/* links.c's own */
	struct csvc_broker broker;
	struct mosquitto *mosq;             /* owned: csvc_link_close destroys it; NULL when closed */
	struct csvc *svc;                   /* borrowed: answers the requests of this link */
	int backoff_ms;                     /* the wait before the next attempt after this one fails */
	int64_t retry_at;                   /* monotonic ms of the next connect attempt while down */
	bool down_logged;                   /* this outage was logged once already */
	int unsub_mid;                      /* a drain's UNSUBSCRIBE, 0 when none */
	bool unsubscribed;                  /* its UNSUBACK arrived */
};

/* ============================================================
 * Broker links (links.c): one MQTT client per broker served
 * ============================================================ */
struct pollfd;

/* Sets up l (a client with TLS, MQTT 5, callbacks) for broker b; it
 * connects at the next csvc_links_run. 0, or -1 logged (l left closed). */
int csvc_link_open(struct csvc_link *l, struct csvc *svc, const struct csvc_broker *b);

/* Tells libmosquitto where l lives after the struct was copied elsewhere. */
void csvc_link_moved(struct csvc_link *l);

/* Destroys l's client (drain it first to answer what is in flight). */
void csvc_link_close(struct csvc_link *l);

/* Fills fds[0..n) for poll(), fds[i] for links[i] (fd -1 for a link without
 * a connection), and returns timeout_ms lowered to the next thing a link
 * must do by itself (a reconnect attempt, a handshake step). */
int csvc_links_poll_prepare(const struct csvc_link *links, size_t n, struct pollfd *fds, int timeout_ms);

/* After poll(): serves the links that are ready (requests answered on the
 * link they came from) and starts the reconnects that are due. */
void csvc_links_run(struct csvc_link *links, size_t n, const struct pollfd *fds);

/* Publishes payload (QoS 0) on topic on every serving link. */
void csvc_links_publish(struct csvc_link *links, size_t n, const char *topic, const char *payload);

/* Unsubscribes the links of set, answers the requests that still arrive
 * until each UNSUBACK, lets the replies leave, and disconnects; waits at
 * most ms in all. The clients stay allocated (csvc_link_close). */
void csvc_links_drain(struct csvc_link *const *set, size_t n, int ms);

/* Makes links[0..n) serve exactly brokers[0..nbrokers): a link whose broker
 * is no longer listed is drained (up to drain_ms) and closed, a link still
 * listed is left alone, a new broker gets a new link. Returns the new
 * count (links has room for CSVC_BROKERS_MAX). */
size_t csvc_links_apply(struct csvc_link *links, size_t n, struct csvc *svc,
		const struct csvc_broker *brokers, size_t nbrokers, int drain_ms);

/* Readiness: writes one line per dependency into t and returns 200 when
 * Redis answers and at least one link serves, 503 otherwise. */
int csvc_health(struct csvc *s, const struct csvc_link *links, size_t nlinks, struct csvc_text *t);

/* ============================================================
 * Broker counters for /metrics (brokerstats.c)
 * ============================================================ */
struct csvc_brokerstats;

struct csvc_brokerstats *csvc_brokerstats_new(void);
void csvc_brokerstats_free(struct csvc_brokerstats *b);
/* Every broker's counters document (onb:stats:broker:<id>, written by each
 * plugin) as Prometheus families labelled broker="<id>". Reads Redis at
 * most once per second; between reads, and while Redis is away, serves the
 * documents it has until they would have expired in Redis. */
void csvc_brokerstats_prom(struct csvc_brokerstats *b, struct csvc *s, struct csvc_text *t);

/* ============================================================
 * The service (handler.c)
 * ============================================================ */
struct csvc {
	struct csvc_config cfg;
	char actor[ONB_ID_MAX + 16];        /* "claimsvc:<client id>" for the audit stream */
	X509 *ca;                           /* device CA certificate */
	EVP_PKEY *ca_key;                   /* its private key */
	X509_STORE *trust;                  /* cafile's CAs and the device CA: what an issued
	                                       certificate must verify under (issued_usable) */
	struct onb_template_set *templates;
	struct onb_redis_cfg redis_cfg;
	redisContext *rc;                   /* NULL while Redis is unreachable */
	int64_t redis_retry_at;             /* monotonic ms before which we do not reconnect */
	bool redis_down_logged;
	uint64_t handled, accepted, rejected, dropped;
	struct csvc_metrics metrics;
	struct { int64_t at; bool ok; const char *why; } redis_health; /* health.c's last PING */
	bool ca_key_pkcs11;                 /* the device CA key lives in a PKCS#11 token */
	struct onb_claim_limits claim_limits;
	/* claim.c: repeated claim refusals, one audit entry per kind and window,
	 * and lockouts remembered so that a locked-out back-end's flood costs
	 * no Redis write */
	struct onb_audit_agg *claim_refusals;
	struct csvc_lockout { char key[2 * ONB_ID_MAX + 64]; int64_t until_ms; } lockouts[64];
};

/* Sets up and tears down claim.c's state (after csvc_init, before csvc_free). */
int csvc_claim_init(struct csvc *s);
void csvc_claim_free(struct csvc *s);
/* Closes the audit windows that have ended (from the main loop). */
void csvc_claim_tick(struct csvc *s);

/* Loads everything the config names (CA certificate and key, templates,
 * Redis URL) into s; no network. */
int csvc_init(struct csvc *s, const struct csvc_config *cfg, struct onb_err *err);

/* Replaces the templates with a fresh load of templates_dir; keeps the old
 * ones when the new load fails. */
int csvc_reload_templates(struct csvc *s, struct onb_err *err);

/* Releases everything s holds. */
void csvc_free(struct csvc *s);

/* Handles one request envelope. Returns the reply envelope to publish on
 * onb/internal/prov/reply (free with onb_prov_free), or NULL when the
 * envelope is unusable and is dropped (logged). */
char *csvc_handle(struct csvc *s, const void *buf, size_t len);

/* Handles one claim envelope from onb/internal/claim/request (claim.c);
 * returns the reply envelope (free with onb_prov_free) or NULL to drop it. */
char *csvc_handle_claim(struct csvc *s, const void *buf, size_t len);

/* ============================================================
 * The Redis connection (redislink.c)
 * ============================================================ */
/* The Redis connection, (re)connecting at most every 250 ms; NULL when
 * Redis is unreachable. */
redisContext *csvc_redis(struct csvc *s);

/* Drops a connection that failed at the connection level (or, with force,
 * any connection whose reply stream may be out of step), counting it. */
void csvc_redis_settle(struct csvc *s, bool force);

/* Whether Redis answers PING, checked at most once per second (a probe
 * flood costs Redis one PING a second); why says what failed. */
bool csvc_redis_healthy(struct csvc *s, const char **why);

#endif
