/* One worker thread: a poll loop over the libmosquitto clients of the devices
 * it has in flight, and the state machine of each device.
 *
 * libmosquitto is driven without its own threads: mosquitto_socket gives the
 * fd, poll says what is ready, mosquitto_loop_read/write/misc do the work and
 * fire the callbacks. Callbacks only record and queue (publish, subscribe);
 * anything that opens, closes or destroys a client happens in dev_step, after
 * the libmosquitto call has returned. Every waiting state has a deadline. */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <mqtt_protocol.h>

#include "pki/x509.h"
#include "devsim.h"

#define BYE_TIMEOUT_MS 1000      /* waiting for our DISCONNECT to be written */
#define MISC_INTERVAL_US 1000000 /* mosquitto_loop_misc (keepalive) */
#define MAX_PRINTED_FAILURES 20

enum dstate {
	ST_FREE,
	ST_CLAIM_CONNACK,  /* claim (or birth) connection: waiting for CONNACK */
	ST_CLAIM_SUBACK,   /* waiting for the SUBACK of the four reply topics */
	ST_CSR,            /* CreateCertificateFromCsr sent */
	ST_REG,            /* RegisterThing sent */
	ST_REG_DONE,       /* provisioned; dev_step leaves the claim connection */
	ST_CLAIM_BYE,      /* DISCONNECT queued on the claim connection */
	ST_OP_CONNACK,     /* operational connection: waiting for CONNACK */
	ST_OP_SUBACK,      /* --stay: waiting for the SUBACK of the commands filter */
	ST_TELEM,          /* telemetry sent, waiting for PUBACKs */
	ST_TELEM_DONE,     /* dev_step: rotate, stay, or leave */
	ST_ROT_SUBACK,     /* --rotate: waiting for the SUBACK of the renewal reply topics */
	ST_ROT,            /* renewal request sent */
	ST_ROT_DONE,       /* new certificate received; dev_step reconnects with it */
	ST_STAY,           /* --stay: connected until the deadline */
	ST_OP_BYE,         /* DISCONNECT queued on the operational connection */
	ST_FAILED,         /* dev_step records the failure and frees the slot */
};

struct dev {
	struct devsim_worker *w;
	int idx;
	enum dstate st;
	enum phase phase;                  /* the phase being timed */
	char serial[ONB_ID_MAX + 1];
	char client_id[ONB_ID_MAX + 1];
	char thing[ONB_ID_MAX + 1];
	char cmd_prefix[ONB_ID_MAX + 32];  /* devices/<thing>/commands/ */
	char t_renew[ONB_ID_MAX + 48];     /* devices/<thing>/certificates/renew */
	char t_renew_acc[ONB_ID_MAX + 64], t_renew_rej[ONB_ID_MAX + 64];
	EVP_PKEY *key_next;                /* --rotate: the key of the renewed certificate */
	bool rotated;
	struct mosquitto *m;
	EVP_PKEY *key;                     /* generated on the device */
	char *csr_req;                     /* CreateCertificateFromCsr payload */
	struct devsim_cred birth;          /* birth mode */
	struct devsim_cred op;             /* the issued certificate + key */
	struct devsim_csr_accepted acc;
	char certfile[4096], keyfile[4096];/* the issued credentials on disk, if any */
	bool tmp_files;                    /* in cfg->work_dir: removed at the end */
	int64_t t_start, t_phase, deadline;
	int req_mid;                       /* mid of the last provisioning request */
	int acked;                         /* telemetry PUBACKs */
	int resent;                        /* RegisterThing sent again after a timeout */
	int spins;                         /* reads before CONNACK on this connection */
	bool closed;                       /* on_disconnect seen for d->m */
	char log[DEVSIM_MSG_MAX];          /* last error logged by libmosquitto */
	char fkey[DEVSIM_REASON_KEY];
	char fdetail[DEVSIM_MSG_MAX];
};

int64_t devsim_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const struct devsim_cfg *cfg_of(const struct dev *d)
{
	return d->w->run->cfg;
}

/* ===================================================================== */
/* Phases and failures                                                    */
/* ===================================================================== */

static void phase_begin(struct dev *d, enum phase ph)
{
	d->phase = ph;
	d->t_phase = devsim_now_us();
	d->deadline = d->t_phase + (int64_t)cfg_of(d)->timeout_ms * 1000;
}

static void phase_done(struct dev *d)
{
	int64_t us = devsim_now_us() - d->t_phase;

	d->w->run->res.lat_us[d->phase][d->idx] = us > INT32_MAX ? INT32_MAX : (int32_t)us;
}

/* Records the first failure of the device: key "<phase>: what". */
__attribute__((format(printf, 3, 4)))
static void fail(struct dev *d, const char *what, const char *fmt, ...)
{
	va_list ap;

	if(d->st == ST_FAILED || d->st == ST_FREE) return;
	snprintf(d->fkey, sizeof(d->fkey), "%s: %s", devsim_phase_names[d->phase], what);
	va_start(ap, fmt);
	vsnprintf(d->fdetail, sizeof(d->fdetail), fmt, ap);
	va_end(ap);
	d->st = ST_FAILED;
}

/* The connection went away: a TLS error (logged by libmosquitto as "OpenSSL
 * Error") is counted apart from other losses. */
static void lost(struct dev *d, const char *detail)
{
	fail(d, strstr(d->log, "OpenSSL") ? "tls error" : "connection lost", "%s", detail);
}

/* A reason code from the broker as text, for either protocol version. */
static const char *rc_text(const struct dev *d, int rc)
{
	return cfg_of(d)->mqtt_version == 5 ? mosquitto_reason_string(rc) : mosquitto_connack_string(rc);
}

/* ===================================================================== */
/* libmosquitto callbacks                                                 */
/* ===================================================================== */

/* Publishes a request document (JSON text) in the topic's format: CBOR on
 * the $aws topics with --format cbor; renewals are JSON only. */
static void publish_request(struct dev *d, const char *topic, const char *payload)
{
	bool cbor = cfg_of(d)->cbor && !strncmp(topic, "$aws/", 5);
	unsigned char *wire = NULL;
	size_t len = 0;
	int rc;

	if(devsim_wire_request(payload, cbor, &wire, &len) != 0){
		fail(d, "out of memory", "encoding a request");
		return;
	}
	rc = mosquitto_publish(d->m, &d->req_mid, topic, (int)len, wire, 1, false);
	free(wire);
	if(rc != MOSQ_ERR_SUCCESS) fail(d, "publish", "%s", mosquitto_strerror(rc));
}

static void start_telemetry(struct dev *d)
{
	const struct devsim_cfg *cfg = cfg_of(d);
	char topic[ONB_ID_MAX + 32], payload[ONB_ID_MAX + 96];
	int rc;

	phase_begin(d, PH_TELEMETRY);
	d->acked = 0;
	d->st = ST_TELEM;
	if(cfg->telemetry == 0){
		phase_done(d);
		d->st = ST_TELEM_DONE;
		return;
	}
	snprintf(topic, sizeof(topic), "devices/%s/telemetry", d->thing);
	for(int i = 0; i < cfg->telemetry; i++){
		int len = snprintf(payload, sizeof(payload), "{\"seq\":%d,\"serial\":\"%s\",\"ts\":%" PRId64 "}",
				i, d->serial, (int64_t)time(NULL));
		rc = mosquitto_publish(d->m, NULL, topic, len, payload, 1, false);
		if(rc != MOSQ_ERR_SUCCESS){
			fail(d, "publish", "%s", mosquitto_strerror(rc));
			return;
		}
	}
}

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags, const mosquitto_property *props)
{
	struct dev *d = obj;
	char sub[sizeof(d->cmd_prefix) + 2];
	const struct devsim_cfg *cfg = cfg_of(d);

	(void)flags; (void)props;
	if(d->st != ST_CLAIM_CONNACK && d->st != ST_OP_CONNACK) return;
	if(rc != 0){
		fail(d, "refused", "CONNACK %d: %s", rc, rc_text(d, rc));
		return;
	}
	if(d->st == ST_CLAIM_CONNACK){
		char *const topics[4] = { (char *)cfg->t_csr_acc, (char *)cfg->t_csr_rej,
			(char *)cfg->t_reg_acc, (char *)cfg->t_reg_rej };
		rc = mosquitto_subscribe_multiple(m, NULL, 4, topics, 1, 0, NULL);
		if(rc != MOSQ_ERR_SUCCESS){
			fail(d, "subscribe", "%s", mosquitto_strerror(rc));
			return;
		}
		d->st = ST_CLAIM_SUBACK;
	}else if(cfg->stay_s > 0){
		snprintf(sub, sizeof(sub), "%s#", d->cmd_prefix);
		rc = mosquitto_subscribe(m, NULL, sub, 1);
		if(rc != MOSQ_ERR_SUCCESS){
			fail(d, "subscribe", "%s", mosquitto_strerror(rc));
			return;
		}
		d->st = ST_OP_SUBACK;
	}else{
		phase_done(d);
		start_telemetry(d);
	}
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int qos_count,
		const int *granted, const mosquitto_property *props)
{
	struct dev *d = obj;

	(void)m; (void)mid; (void)props;
	if(d->st != ST_CLAIM_SUBACK && d->st != ST_OP_SUBACK && d->st != ST_ROT_SUBACK) return;
	for(int i = 0; i < qos_count; i++){
		if(granted[i] >= 0x80){
			fail(d, "subscribe refused", "SUBACK %d: %s", granted[i],
					cfg_of(d)->mqtt_version == 5 ? mosquitto_reason_string(granted[i]) : "failure");
			return;
		}
	}
	if(d->st == ST_ROT_SUBACK){
		d->st = ST_ROT; /* the rotate phase runs on: SUBACK, request, reply */
		publish_request(d, d->t_renew, d->csr_req);
		return;
	}
	phase_done(d);
	if(d->st == ST_CLAIM_SUBACK){
		phase_begin(d, PH_CSR);
		d->st = ST_CSR;
		publish_request(d, cfg_of(d)->t_csr, d->csr_req);
	}else{
		start_telemetry(d);
	}
}

/* --rotate: a fresh key and CSR, then the renewal on the live operational
 * connection (subscribe to the two answers first). */
static void start_rotation(struct dev *d)
{
	char err[DEVSIM_MSG_MAX], *csr;
	char *const topics[2] = { d->t_renew_acc, d->t_renew_rej };
	struct onb_err oerr;
	int rc;

	phase_begin(d, PH_ROTATE);
	snprintf(d->t_renew, sizeof(d->t_renew), "devices/%s/certificates/renew", d->thing);
	snprintf(d->t_renew_acc, sizeof(d->t_renew_acc), "%s/accepted", d->t_renew);
	snprintf(d->t_renew_rej, sizeof(d->t_renew_rej), "%s/rejected", d->t_renew);
	if(!(d->key_next = onb_key_generate(&oerr))){
		fail(d, "keygen", "%s", oerr.msg);
		return;
	}
	if(!(csr = devsim_csr_pem(d->key_next, "renewal", err, sizeof(err)))){
		fail(d, "csr", "%s", err);
		return;
	}
	free(d->csr_req);
	d->csr_req = devsim_req_csr(csr);
	free(csr);
	if(!d->csr_req){
		fail(d, "csr", "out of memory");
		return;
	}
	d->st = ST_ROT_SUBACK;
	rc = mosquitto_subscribe_multiple(d->m, NULL, 2, topics, 1, 0, NULL);
	if(rc != MOSQ_ERR_SUCCESS) fail(d, "subscribe", "%s", mosquitto_strerror(rc));
}

/* The renewed certificate: it replaces the issued one and its key. */
static void on_renew_accepted(struct dev *d, const struct mosquitto_message *msg)
{
	struct devsim_cred cred = { 0 };
	char err[DEVSIM_MSG_MAX], *pem = NULL;
	int rc;

	if(devsim_parse_renew_accepted(msg->payload, (size_t)msg->payloadlen, &pem, err, sizeof(err)) != 0){
		fail(d, "malformed reply", "%s", err);
		return;
	}
	rc = devsim_cred_from_pem(&cred, pem, d->key_next, err, sizeof(err));
	if(rc != 0){
		free(pem);
		fail(d, rc == -2 ? "stray certificate" : "bad certificatePem", "%s", err);
		return;
	}
	devsim_cred_clear(&d->op);
	d->op = cred;
	EVP_PKEY_free(d->key);
	d->key = d->key_next;
	d->key_next = NULL;
	free(d->acc.certificate_pem);
	d->acc.certificate_pem = pem;
	d->rotated = true;
	phase_done(d);
	d->st = ST_ROT_DONE;
}

static void on_rejected(struct dev *d, const struct mosquitto_message *msg)
{
	struct devsim_rejected rej;

	devsim_parse_rejected(msg->payload, (size_t)msg->payloadlen, &rej);
	fail(d, rej.code, "statusCode %d: %s", rej.status, rej.message);
}

/* RegisterThing with the token of the CSR answer; sent again, unchanged,
 * after a timeout (--register-retries): if the first one was registered and
 * its answer lost, the service answers the same request again. */
static void send_register(struct dev *d)
{
	char *req = devsim_req_register(d->acc.token, d->serial);

	if(!req){
		fail(d, "out of memory", "building RegisterThing");
		return;
	}
	d->st = ST_REG;
	publish_request(d, cfg_of(d)->t_reg, req);
	free(req);
}

static void on_csr_accepted(struct dev *d, const struct mosquitto_message *msg)
{
	char err[DEVSIM_MSG_MAX];
	int rc;

	if(devsim_parse_csr_accepted(msg->payload, (size_t)msg->payloadlen, &d->acc, err, sizeof(err)) != 0){
		fail(d, "malformed reply", "%s", err);
		return;
	}
	rc = devsim_cred_from_pem(&d->op, d->acc.certificate_pem, d->key, err, sizeof(err));
	if(rc == -2){
		/* Another device's certificate: only possible where replies are
		 * broadcast on the shared topic. Keep waiting for ours. */
		d->w->stray++;
		devsim_csr_accepted_clear(&d->acc);
		return;
	}
	if(rc != 0){
		fail(d, "bad certificatePem", "%s", err);
		return;
	}
	phase_done(d);
	phase_begin(d, PH_REGISTER);
	send_register(d);
}

static void on_reg_accepted(struct dev *d, const struct mosquitto_message *msg)
{
	struct devsim_reg_accepted acc;
	char err[DEVSIM_MSG_MAX];

	if(devsim_parse_reg_accepted(msg->payload, (size_t)msg->payloadlen, &acc, err, sizeof(err)) != 0){
		fail(d, "malformed reply", "%s", err);
		return;
	}
	phase_done(d);
	snprintf(d->thing, sizeof(d->thing), "%s", acc.thing_name);
	snprintf(d->cmd_prefix, sizeof(d->cmd_prefix), "devices/%s/commands/", d->thing);
	d->st = ST_REG_DONE;
}

static void print_command(struct dev *d, const struct mosquitto_message *msg)
{
	struct devsim_run *run = d->w->run;
	char topic[256], payload[1024];

	devsim_printable(topic, sizeof(topic), msg->topic, strlen(msg->topic));
	devsim_printable(payload, sizeof(payload), msg->payload, (size_t)msg->payloadlen);
	pthread_mutex_lock(&run->out_lock);
	fprintf(run->cfg->json ? stderr : stdout, "%s: command on %s: %s\n", d->thing, topic, payload);
	fflush(run->cfg->json ? stderr : stdout);
	pthread_mutex_unlock(&run->out_lock);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg,
		const mosquitto_property *props)
{
	struct dev *d = obj;
	const struct devsim_cfg *cfg = cfg_of(d);
	const char *t = msg->topic;
	struct mosquitto_message conv;
	char err[DEVSIM_MSG_MAX], *text = NULL;

	(void)m; (void)props;
	/* the sizes a constrained device must buffer, as they arrived */
	if(!strcmp(t, cfg->t_csr_acc) && msg->payloadlen > d->w->csr_reply_max) d->w->csr_reply_max = msg->payloadlen;
	if(!strcmp(t, cfg->t_reg_acc) && msg->payloadlen > d->w->reg_reply_max) d->w->reg_reply_max = msg->payloadlen;
	if(cfg->cbor && !strncmp(t, "$aws/", 5)){
		/* read as JSON text by the same parsers; one that is not CBOR
		 * goes on as it came, and fails there as malformed */
		if((text = devsim_reply_json(msg->payload, (size_t)msg->payloadlen, err, sizeof(err)))){
			conv = *msg;
			conv.payload = text;
			conv.payloadlen = (int)strlen(text);
			msg = &conv;
		}
	}
	if(!strcmp(t, cfg->t_csr_acc) && d->st == ST_CSR){
		on_csr_accepted(d, msg);
	}else if(!strcmp(t, cfg->t_csr_rej) && d->st == ST_CSR){
		on_rejected(d, msg);
	}else if(!strcmp(t, cfg->t_reg_acc) && d->st == ST_REG){
		on_reg_accepted(d, msg);
	}else if(!strcmp(t, cfg->t_reg_rej) && d->st == ST_REG){
		on_rejected(d, msg);
	}else if(d->st == ST_ROT && !strcmp(t, d->t_renew_acc)){
		on_renew_accepted(d, msg);
	}else if(d->st == ST_ROT && !strcmp(t, d->t_renew_rej)){
		on_rejected(d, msg);
	}else if(d->thing[0] && !strncmp(t, d->cmd_prefix, strlen(d->cmd_prefix))){
		d->w->commands++;
		print_command(d, msg);
	}else{
		d->w->stray++;
	}
	free(text);
}

static void on_publish(struct mosquitto *m, void *obj, int mid, int reason, const mosquitto_property *props)
{
	struct dev *d = obj;

	(void)m; (void)props;
	if(reason >= 0x80){
		fail(d, "publish refused", "PUBACK %d: %s", reason, mosquitto_reason_string(reason));
		return;
	}
	if(d->st == ST_TELEM && mid != d->req_mid && ++d->acked >= cfg_of(d)->telemetry){
		phase_done(d);
		d->st = ST_TELEM_DONE;
	}
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *props)
{
	struct dev *d = obj;

	(void)m; (void)props;
	d->closed = true;
	if(d->st == ST_CLAIM_BYE || d->st == ST_OP_BYE) return;
	if(rc >= 0x80){
		fail(d, "disconnected by broker", "DISCONNECT %d: %s", rc, mosquitto_reason_string(rc));
	}else{
		lost(d, d->log[0] ? d->log : mosquitto_strerror(rc));
	}
}

static void on_log(struct mosquitto *m, void *obj, int level, const char *str)
{
	struct dev *d = obj;

	(void)m;
	if(level & MOSQ_LOG_ERR) devsim_printable(d->log, sizeof(d->log), str, strlen(str));
}

/* ===================================================================== */
/* Connections                                                            */
/* ===================================================================== */

static void drop_client(struct dev *d)
{
	if(d->m){
		mosquitto_destroy(d->m);
		d->m = NULL;
	}
}

/* Opens a connection as client_id presenting cred (shared SSL_CTX) or
 * certfile/keyfile (per-connection mode). Blocking only for the loopback TCP
 * connect; the TLS handshake continues in the poll loop. */
static int dev_connect(struct dev *d, const char *client_id, struct devsim_cred *cred,
		const char *certfile, const char *keyfile)
{
	struct devsim_run *run = d->w->run;
	const struct devsim_cfg *cfg = run->cfg;
	struct mosquitto *m;
	int rc;

	d->closed = false;
	d->log[0] = '\0';
	d->req_mid = -1; /* message ids start again on every client */
	d->spins = 0;
	if(!(m = mosquitto_new(client_id, true, d))){
		fail(d, "client", "mosquitto_new: %s", strerror(errno));
		return -1;
	}
	d->m = m;
	mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION,
			cfg->mqtt_version == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
	/* Without it Nagle holds the second write of a TLS flight for the
	 * peer's delayed ACK: 40 ms per connect on loopback. */
	mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_connect_v5_callback_set(m, on_connect);
	mosquitto_subscribe_v5_callback_set(m, on_subscribe);
	mosquitto_message_v5_callback_set(m, on_message);
	mosquitto_publish_v5_callback_set(m, on_publish);
	mosquitto_disconnect_v5_callback_set(m, on_disconnect);
	mosquitto_log_callback_set(m, on_log);
	if(run->ctx){
		mosquitto_void_option(m, MOSQ_OPT_SSL_CTX, run->ctx);
		mosquitto_int_option(m, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
	}else if((rc = mosquitto_tls_set(m, cfg->cafile, NULL, certfile, keyfile, NULL)) != MOSQ_ERR_SUCCESS){
		fail(d, "tls", "mosquitto_tls_set: %s", mosquitto_strerror(rc));
		return -1;
	}
	devsim_tls_current(cred);
	rc = mosquitto_connect(m, cfg->host, cfg->port, cfg->keepalive);
	devsim_tls_current(NULL);
	if(rc != MOSQ_ERR_SUCCESS){
		fail(d, "connect failed", "%s", rc == MOSQ_ERR_ERRNO ? strerror(errno)
				: d->log[0] ? d->log : mosquitto_strerror(rc));
		return -1;
	}
	if(run->ctx) devsim_tls_attach(m, cred);
	return 0;
}

/* Sends DISCONNECT; the state then waits for it to be written (or 1 s). */
static void dev_leave(struct dev *d, enum dstate bye)
{
	d->st = bye;
	d->deadline = devsim_now_us() + BYE_TIMEOUT_MS * 1000;
	if(mosquitto_disconnect(d->m) != MOSQ_ERR_SUCCESS) d->closed = true;
}

static void connect_operational(struct dev *d)
{
	const struct devsim_cfg *cfg = cfg_of(d);
	const char *dir = cfg->out_dir ? cfg->out_dir : cfg->tls_per_conn ? cfg->work_dir : NULL;
	char err[DEVSIM_MSG_MAX];

	drop_client(d);
	phase_begin(d, PH_CONNECT_OP);
	if(dir){
		if(devsim_write_creds(dir, d->thing, d->acc.certificate_pem, d->key, err, sizeof(err)) != 0){
			fail(d, "writing credentials", "%s", err);
			return;
		}
		snprintf(d->certfile, sizeof(d->certfile), "%s/%s.pem", dir, d->thing);
		snprintf(d->keyfile, sizeof(d->keyfile), "%s/%s.key", dir, d->thing);
		d->tmp_files = !cfg->out_dir;
	}
	if(dev_connect(d, d->thing, &d->op, d->certfile, d->keyfile) == 0) d->st = ST_OP_CONNACK;
}

/* ===================================================================== */
/* Device lifecycle                                                       */
/* ===================================================================== */

static void dev_finish(struct dev *d, bool ok)
{
	struct devsim_run *run = d->w->run;
	const struct devsim_cfg *cfg = run->cfg;

	drop_client(d);
	run->res.status[d->idx] = ok ? DS_OK : DS_FAILED;
	if(!ok){
		devsim_reasons_add(&d->w->reasons, d->fkey, d->serial, d->fdetail, 1);
		if(!cfg->quiet){
			int k = atomic_fetch_add(&run->printed_failures, 1);
			if(k < MAX_PRINTED_FAILURES){
				fprintf(stderr, "devsim: %s failed in %s (%s)\n", d->serial, d->fkey, d->fdetail);
			}else if(k == MAX_PRINTED_FAILURES){
				fprintf(stderr, "devsim: further failures are only counted\n");
			}
		}
	}else if(cfg->verbose){
		pthread_mutex_lock(&run->out_lock);
		fprintf(stderr, "devsim: %s provisioned as %s (certificateId %.16s), %d telemetry acked\n",
				d->serial, d->thing, d->acc.certificate_id ? d->acc.certificate_id : "?", d->acked);
		pthread_mutex_unlock(&run->out_lock);
	}
	if(d->tmp_files){
		unlink(d->certfile);
		unlink(d->keyfile);
	}
	EVP_PKEY_free(d->key);
	EVP_PKEY_free(d->key_next);
	free(d->csr_req);
	devsim_cred_clear(&d->birth);
	devsim_cred_clear(&d->op);
	devsim_csr_accepted_clear(&d->acc);
	atomic_fetch_add(&run->done, 1);
	{
		struct devsim_worker *w = d->w;
		memset(d, 0, sizeof(*d)); /* st = ST_FREE */
		d->w = w;
		d->idx = -1;
	}
}

static void dev_start(struct dev *d, int idx)
{
	struct devsim_run *run = d->w->run;
	const struct devsim_cfg *cfg = run->cfg;
	struct devsim_cred *cred = &run->claim;
	char err[DEVSIM_MSG_MAX], cf[4096], kf[4096], cn[ONB_CERT_CN_MAX + 1], *csr;
	struct onb_err oerr;

	d->idx = idx;
	d->t_start = devsim_now_us();
	d->st = ST_CLAIM_CONNACK; /* so that fail() records; the phase says where */
	phase_begin(d, PH_KEYGEN);
	if(cfg->serial){
		snprintf(d->serial, sizeof(d->serial), "%s", cfg->serial);
	}else{
		snprintf(d->serial, sizeof(d->serial), "%s%0*ld", cfg->serial_prefix, cfg->serial_width,
				cfg->serial_start + idx);
	}
	snprintf(d->client_id, sizeof(d->client_id), "%s%s", cfg->claim_id_prefix, d->serial);

	if(!(d->key = onb_key_generate(&oerr))){
		fail(d, "keygen", "%s", oerr.msg);
		return;
	}
	/* The subject is ignored by the service; CN is capped at 64 by X.509. */
	snprintf(cn, sizeof(cn), "%.*s", ONB_CERT_CN_MAX, d->serial);
	if(!(csr = devsim_csr_pem(d->key, cn, err, sizeof(err)))){
		fail(d, "csr", "%s", err);
		return;
	}
	d->csr_req = devsim_req_csr(csr);
	free(csr);
	if(!d->csr_req){
		fail(d, "csr", "out of memory");
		return;
	}
	cf[0] = kf[0] = '\0';
	if(cfg->birth_dir){
		snprintf(cf, sizeof(cf), "%s/%s.pem", cfg->birth_dir, d->serial);
		snprintf(kf, sizeof(kf), "%s/%s.key", cfg->birth_dir, d->serial);
		if(!run->ctx){
			/* per-connection mode: libmosquitto reads the files itself */
		}else if(devsim_cred_load(&d->birth, cf, kf, err, sizeof(err)) != 0){
			fail(d, "birth certificate", "%s", err);
			return;
		}
		cred = &d->birth;
	}else{
		snprintf(cf, sizeof(cf), "%s", cfg->claim_cert);
		snprintf(kf, sizeof(kf), "%s", cfg->claim_key);
	}
	phase_done(d);

	phase_begin(d, PH_CONNECT_CLAIM);
	d->st = ST_CLAIM_CONNACK;
	dev_connect(d, d->client_id, cred, cf, kf);
}

/* Acts on the state the callbacks left, until nothing more is to be done now. */
static void dev_step(struct dev *d)
{
	for(;;){
		switch(d->st){
		case ST_REG_DONE:
			dev_leave(d, ST_CLAIM_BYE);
			continue;
		case ST_CLAIM_BYE:
			if(!d->closed && mosquitto_socket(d->m) >= 0 && devsim_now_us() < d->deadline) return;
			connect_operational(d);
			continue;
		case ST_TELEM_DONE:
			if(d->w->run->res.lat_us[PH_TOTAL][d->idx] < 0){
				int64_t us = devsim_now_us() - d->t_start;
				d->w->run->res.lat_us[PH_TOTAL][d->idx] = us > INT32_MAX ? INT32_MAX : (int32_t)us;
			}
			if(cfg_of(d)->rotate && !d->rotated){
				start_rotation(d);
				continue;
			}
			if(cfg_of(d)->stay_s > 0){
				d->st = ST_STAY;
				d->deadline = devsim_now_us() + (int64_t)cfg_of(d)->stay_s * 1000000;
				return;
			}
			dev_leave(d, ST_OP_BYE);
			continue;
		case ST_OP_BYE:
			if(!d->closed && mosquitto_socket(d->m) >= 0 && devsim_now_us() < d->deadline) return;
			dev_finish(d, true);
			return;
		case ST_ROT_DONE:
			/* leave, then reconnect with the new certificate (connect_operational) */
			dev_leave(d, ST_CLAIM_BYE);
			continue;
		case ST_FAILED:
			dev_finish(d, false);
			return;
		case ST_FREE:
			return;
		default:
			/* Waiting on the broker: a closed socket with no callback is a
			 * failed TLS handshake (libmosquitto closes it silently). */
			if(d->m && mosquitto_socket(d->m) < 0){
				lost(d, d->log[0] ? d->log : "socket closed");
				continue;
			}
			return;
		}
	}
}

/* Deadline passed in state st. */
static void dev_expire(struct dev *d)
{
	static const char *const waiting_for[] = {
		[ST_CLAIM_CONNACK] = "CONNACK", [ST_CLAIM_SUBACK] = "SUBACK",
		[ST_CSR] = "a create-from-csr reply", [ST_REG] = "a provision reply",
		[ST_OP_CONNACK] = "CONNACK", [ST_OP_SUBACK] = "SUBACK", [ST_TELEM] = "PUBACKs",
		[ST_ROT_SUBACK] = "SUBACK", [ST_ROT] = "a renewal reply",
	};

	if(d->st == ST_REG && d->resent < cfg_of(d)->register_retries){
		/* the phase's latency still counts from the first send */
		d->resent++;
		d->w->resent++;
		d->deadline = devsim_now_us() + (int64_t)cfg_of(d)->timeout_ms * 1000;
		send_register(d);
		dev_step(d);
		return;
	}
	switch(d->st){
	case ST_STAY:
		dev_leave(d, ST_OP_BYE);
		break;
	case ST_CLAIM_BYE:
	case ST_OP_BYE:
		d->closed = true;
		break;
	case ST_CLAIM_CONNACK: case ST_CLAIM_SUBACK: case ST_CSR: case ST_REG:
	case ST_OP_CONNACK: case ST_OP_SUBACK: case ST_TELEM: case ST_ROT_SUBACK: case ST_ROT:
		fail(d, "timeout", "no %s within %d ms%s%s", waiting_for[d->st], cfg_of(d)->timeout_ms,
				d->log[0] ? "; " : "", d->log);
		break;
	default:
		break;
	}
	dev_step(d);
}

/* ===================================================================== */
/* The worker loop                                                        */
/* ===================================================================== */

static bool awaiting_connack(const struct dev *d)
{
	return d->st == ST_CLAIM_CONNACK || d->st == ST_OP_CONNACK;
}

/* More reads than any handshake and CONNACK need: the peer is gone without
 * a TLS alert and libmosquitto keeps retrying SSL_connect on EOF. */
#define MAX_SPINS 1000

static void service(struct dev *d, short revents)
{
	int rc = MOSQ_ERR_SUCCESS;

	if(awaiting_connack(d) && ++d->spins > MAX_SPINS){
		lost(d, d->log[0] ? d->log : "peer closed during the TLS handshake");
		dev_step(d);
		return;
	}

	/* During the handshake a writable socket also goes to loop_read: it is
	 * what resumes SSL_connect in libmosquitto. */
	if((revents & (POLLIN | POLLERR | POLLHUP)) || ((revents & POLLOUT) && awaiting_connack(d))){
		rc = mosquitto_loop_read(d->m, 1);
	}
	if(rc == MOSQ_ERR_SUCCESS && (revents & POLLOUT) && d->m && mosquitto_socket(d->m) >= 0){
		rc = mosquitto_loop_write(d->m, 1);
	}
	if(rc != MOSQ_ERR_SUCCESS && d->st != ST_CLAIM_BYE && d->st != ST_OP_BYE){
		lost(d, d->log[0] ? d->log : mosquitto_strerror(rc));
	}
	dev_step(d);
}

void *devsim_worker_main(void *arg)
{
	struct devsim_worker *w = arg;
	struct devsim_run *run = w->run;
	const struct devsim_cfg *cfg = run->cfg;
	struct pollfd *pfd = calloc((size_t)w->nslots, sizeof(*pfd));
	int *map = calloc((size_t)w->nslots, sizeof(*map));
	bool more = true;
	int64_t next_misc = devsim_now_us() + MISC_INTERVAL_US;

	if(!pfd || !map){
		fprintf(stderr, "devsim: out of memory\n");
		w->rc = -1;
		free(pfd);
		free(map);
		return NULL;
	}
	for(int i = 0; i < w->nslots; i++){
		w->slots[i].w = w;
		w->slots[i].idx = -1;
	}
	for(;;){
		int active = 0, np = 0, timeout_ms;
		int64_t now, soonest;

		if(*run->stop){
			more = false;
			for(int i = 0; i < w->nslots; i++){
				struct dev *d = &w->slots[i];
				if(d->st != ST_FREE){
					fail(d, "interrupted", "stopped by signal");
					dev_step(d);
				}
			}
		}
		for(int i = 0; more && i < w->nslots; i++){
			struct dev *d = &w->slots[i];
			if(d->st != ST_FREE) continue;
			int idx = atomic_fetch_add(&run->next, 1);
			if(idx >= cfg->n){
				more = false;
				break;
			}
			dev_start(d, idx);
			dev_step(d);
		}

		now = devsim_now_us();
		soonest = now + 200000;
		for(int i = 0; i < w->nslots; i++){
			struct dev *d = &w->slots[i];
			int fd;
			if(d->st == ST_FREE) continue;
			active++;
			if(d->deadline < soonest) soonest = d->deadline;
			if(!d->m || (fd = mosquitto_socket(d->m)) < 0) continue;
			pfd[np].fd = fd;
			pfd[np].events = POLLIN | (mosquitto_want_write(d->m) ? POLLOUT : 0);
			pfd[np].revents = 0;
			map[np++] = i;
		}
		if(!active && !more) break;
		if(!active) continue;

		timeout_ms = soonest <= now ? 0 : (int)((soonest - now + 999) / 1000);
		if(poll(pfd, (nfds_t)np, timeout_ms) < 0 && errno != EINTR){
			fprintf(stderr, "devsim: poll: %s\n", strerror(errno));
			*run->stop = 1;
			continue;
		}
		for(int k = 0; k < np; k++){
			struct dev *d = &w->slots[map[k]];
			if(pfd[k].revents && d->m && mosquitto_socket(d->m) == pfd[k].fd) service(d, pfd[k].revents);
		}

		now = devsim_now_us();
		for(int i = 0; i < w->nslots; i++){
			struct dev *d = &w->slots[i];
			if(d->st != ST_FREE && now >= d->deadline) dev_expire(d);
		}
		if(now >= next_misc){
			next_misc = now + MISC_INTERVAL_US;
			if(w->id == 0 && cfg->progress){
				fprintf(stderr, "\rdevsim: %d/%d devices done", atomic_load(&run->done), cfg->n);
			}
			for(int i = 0; i < w->nslots; i++){
				struct dev *d = &w->slots[i];
				if(d->st != ST_FREE && d->m && mosquitto_socket(d->m) >= 0){
					mosquitto_loop_misc(d->m);
					dev_step(d);
				}
			}
		}
	}
	free(pfd);
	free(map);
	return NULL;
}

size_t devsim_dev_size(void)
{
	return sizeof(struct dev);
}
