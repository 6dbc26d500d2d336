/* devsim: a fleet of simulated devices that provision themselves by claim
 * (or with a birth certificate) over the AWS IoT fleet-provisioning MQTT API,
 * exactly as device code written for AWS would, then reconnect with the
 * issued certificate and publish telemetry.
 *
 * Files: devsim.c (options, threads, main), device.c (one device's state
 * machine and the poll loop over many libmosquitto clients), proto.c (the AWS
 * request and reply JSON, pure functions, and their CBOR form for --format cbor), tls.c (keys, CSRs, certificates,
 * the shared SSL_CTX), report.c (percentiles, text and JSON summary).
 *
 * devsim speaks only the public AWS wire format, never internal topics. */
#ifndef DEVSIM_H
#define DEVSIM_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <mosquitto.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/ids.h"

/* ===================================================================== */
/* Phases                                                                  */
/* ===================================================================== */

enum phase {
	PH_KEYGEN,          /* key pair + CSR on the device (local CPU only) */
	PH_CONNECT_CLAIM,   /* TCP + mTLS + CONNECT + SUBSCRIBE to the four reply topics */
	PH_CSR,             /* CreateCertificateFromCsr: publish until accepted */
	PH_REGISTER,        /* RegisterThing: publish until accepted */
	PH_CONNECT_OP,      /* reconnect with the issued certificate (+ SUBSCRIBE with --stay) */
	PH_TELEMETRY,       /* K QoS 1 publishes until the last PUBACK */
	PH_ROTATE,          /* --rotate: renewal over the operational connection until accepted */
	PH_TOTAL,           /* keygen start .. telemetry done (excludes --stay) */
	PH_COUNT,
};

extern const char *const devsim_phase_names[PH_COUNT];

/* ===================================================================== */
/* Configuration (read-only once the workers start)                        */
/* ===================================================================== */

#define DEVSIM_TEMPLATE_MAX 36
#define DEVSIM_TOPIC_MAX 128

struct devsim_cfg {
	const char *host;
	int port;
	const char *cafile;
	const char *claim_cert, *claim_key; /* shared claim certificate mode */
	const char *birth_dir;              /* per-device birth certificate mode */
	const char *template_name;
	const char *serial_prefix;
	const char *serial;                 /* single device, or NULL */
	const char *claim_id_prefix;        /* claim/birth client id = prefix + serial */
	long serial_start;
	int serial_width;
	int n, conc, threads;
	const char *out_dir;                /* NULL: issued credentials stay in memory */
	int telemetry;
	int stay_s;
	int timeout_ms;
	int register_retries;               /* RegisterThing sent again after a timeout, at most this often */
	int mqtt_version;                   /* 5 or 311 */
	int keepalive;
	bool json, quiet, verbose;
	bool cbor;                          /* --format cbor: the .../cbor topics, CBOR documents */
	bool progress;                      /* a progress line on a terminal's stderr */
	bool tls_per_conn;                  /* libmosquitto's own SSL_CTX per connection */
	bool rotate;                        /* renew the certificate, reconnect with the new one */
	const char *work_dir;               /* per-connection mode without --out: temp files */

	/* The AWS topics for cfg.template_name. */
	char t_csr[DEVSIM_TOPIC_MAX], t_csr_acc[DEVSIM_TOPIC_MAX], t_csr_rej[DEVSIM_TOPIC_MAX];
	char t_reg[DEVSIM_TOPIC_MAX], t_reg_acc[DEVSIM_TOPIC_MAX], t_reg_rej[DEVSIM_TOPIC_MAX];
};

/* ===================================================================== */
/* TLS and device crypto (tls.c)                                           */
/* ===================================================================== */

/* What a connection presents as its client certificate. */
struct devsim_cred {
	X509 *cert;
	STACK_OF(X509) *chain; /* may be NULL */
	EVP_PKEY *key;
};

void devsim_cred_clear(struct devsim_cred *c);

/* Loads a PEM file holding a certificate followed by its chain, and a key;
 * checks that they match. Returns 0, or -1 with err set. */
int devsim_cred_load(struct devsim_cred *c, const char *certfile, const char *keyfile,
		char *err, size_t errlen);

/* Parses certificatePem (leaf first, then chain) for key and checks that the
 * leaf certifies key's public half. key is up-referenced into c. Returns 0,
 * -1 when the PEM is unusable, -2 when it certifies another key (a reply
 * meant for another device). */
int devsim_cred_from_pem(struct devsim_cred *c, const char *pem, EVP_PKEY *key,
		char *err, size_t errlen);

/* The SSL_CTX shared by every connection of the run: verifies the server
 * against cafile and host, and presents, through a certificate callback, the
 * devsim_cred attached to each SSL with devsim_tls_attach. */
SSL_CTX *devsim_tls_ctx_new(const char *cafile, const char *host, char *err, size_t errlen);

/* Ties cred to the connection mosquitto_connect just opened for m. Also set
 * for the duration of mosquitto_connect through devsim_tls_current. */
void devsim_tls_attach(struct mosquitto *m, struct devsim_cred *cred);
void devsim_tls_current(struct devsim_cred *cred);

/* A new PEM CSR (subject CN=cn, signed by key, SHA-256), malloc'd. */
char *devsim_csr_pem(EVP_PKEY *key, const char *cn, char *err, size_t errlen);

/* Writes DIR/NAME.pem (cert_pem as received) and DIR/NAME.key (PKCS#8, 0600)
 * through temporary files and rename. */
int devsim_write_creds(const char *dir, const char *name, const char *cert_pem,
		EVP_PKEY *key, char *err, size_t errlen);

/* ===================================================================== */
/* The AWS fleet-provisioning JSON (proto.c, pure)                         */
/* ===================================================================== */

#define DEVSIM_REPLY_MAX (64 * 1024)  /* larger replies are refused unparsed */
#define DEVSIM_CODE_MAX 64
#define DEVSIM_MSG_MAX 160

/* {"certificateSigningRequest": csr}, malloc'd. */
char *devsim_req_csr(const char *csr_pem);

/* {"certificateOwnershipToken": token, "parameters": {"SerialNumber": serial}}, malloc'd. */
char *devsim_req_register(const char *token, const char *serial);

struct devsim_csr_accepted {
	char *certificate_id, *certificate_pem, *token; /* malloc'd */
};
void devsim_csr_accepted_clear(struct devsim_csr_accepted *a);

struct devsim_reg_accepted {
	char thing_name[ONB_ID_MAX + 1];
	int config_keys; /* number of members of deviceConfiguration */
};

struct devsim_rejected {
	int status;                     /* statusCode, 0 when absent */
	char code[DEVSIM_CODE_MAX];     /* errorCode, printable ASCII, "?" when absent */
	char message[DEVSIM_MSG_MAX];   /* errorMessage, printable ASCII */
};

/* Each returns 0, or -1 with a short reason in err (the reply is malformed). */
int devsim_parse_csr_accepted(const void *buf, size_t len, struct devsim_csr_accepted *out,
		char *err, size_t errlen);
int devsim_parse_reg_accepted(const void *buf, size_t len, struct devsim_reg_accepted *out,
		char *err, size_t errlen);
int devsim_parse_rejected(const void *buf, size_t len, struct devsim_rejected *out);
/* A renewal's accepted reply {certificateId, certificatePem, ...}: *pem_out
 * is a malloc'd copy of certificatePem. */
int devsim_parse_renew_accepted(const void *buf, size_t len, char **pem_out, char *err, size_t errlen);

/* The request document json (our own JSON text) as it goes on the wire: a
 * copy of the text, or with cbor its CBOR form (lib/provisioning/provcbor.c). *out is
 * malloc'd, *len its length. Returns 0, or -1 when memory is short. */
int devsim_wire_request(const char *json, bool cbor, unsigned char **out, size_t *len);

/* A reply received in CBOR as JSON text (malloc'd) for the parsers above,
 * or NULL with a short reason in err (the reply is not a CBOR document). */
char *devsim_reply_json(const void *buf, size_t len, char *err, size_t errlen);

/* Copies at most len bytes of src into dst (size dstlen) replacing every
 * byte outside printable ASCII by '?'. */
void devsim_printable(char *dst, size_t dstlen, const void *src, size_t len);

/* ===================================================================== */
/* Results                                                                 */
/* ===================================================================== */

#define DEVSIM_REASON_KEY 96
#define DEVSIM_REASONS_MAX 64

/* One failure reason ("register: NotAllowlisted", "csr: timeout") with how
 * often it happened and one example. */
struct devsim_reason {
	char key[DEVSIM_REASON_KEY];
	long count;
	char ex_serial[ONB_ID_MAX + 1];
	char ex_detail[DEVSIM_MSG_MAX];
};

struct devsim_reasons {
	struct devsim_reason r[DEVSIM_REASONS_MAX];
	int n;
	long other; /* failures whose key did not fit the table */
};

void devsim_reasons_add(struct devsim_reasons *t, const char *key, const char *serial,
		const char *detail, long count);

enum dev_status { DS_NOT_RUN = 0, DS_OK, DS_FAILED };

/* Filled by the workers, each device index by the one worker that ran it. */
struct devsim_results {
	int32_t *lat_us[PH_COUNT]; /* per device; -1 when the phase was not completed */
	uint8_t *status;           /* enum dev_status per device */
};

/* ===================================================================== */
/* Workers (device.c)                                                      */
/* ===================================================================== */

struct devsim_run {
	const struct devsim_cfg *cfg;
	SSL_CTX *ctx;                 /* NULL in per-connection mode */
	struct devsim_cred claim;     /* claim mode only */
	struct devsim_results res;
	atomic_int next;              /* next device index to start */
	atomic_int printed_failures;  /* failure lines printed so far (capped) */
	atomic_int done;              /* devices finished (for progress) */
	volatile sig_atomic_t *stop;  /* set by SIGINT/SIGTERM */
	pthread_mutex_t out_lock;     /* stdout lines from several workers */
};

struct devsim_worker {
	struct devsim_run *run;
	int id;
	int nslots;
	struct dev *slots;
	struct devsim_reasons reasons;
	long stray;        /* replies that were not for this device or not expected now */
	long commands;     /* messages received on the commands topic (--stay) */
	long resent;       /* RegisterThing requests sent again after a timeout */
	long csr_reply_max, reg_reply_max; /* the largest accepted replies received, bytes as sent */
	pthread_t thread;
	int rc;            /* 0, or -1 when the worker could not run at all */
};

/* sizeof(struct dev): w->slots is calloc(nslots, devsim_dev_size()). */
size_t devsim_dev_size(void);

/* Runs devices until none is left; the pthread entry point. */
void *devsim_worker_main(void *arg);

/* ===================================================================== */
/* Report (report.c)                                                       */
/* ===================================================================== */

struct devsim_summary {
	double wall_s;
	double cpu_s;
	long ok, failed, not_run, stray, commands, resent;
	long csr_reply_max, reg_reply_max; /* bytes of the largest CreateCertificateFromCsr and RegisterThing answers */
	struct devsim_reasons reasons;
};

void devsim_report_text(const struct devsim_cfg *cfg, const struct devsim_results *res,
		const struct devsim_summary *s);
int devsim_report_json(const struct devsim_cfg *cfg, const struct devsim_results *res,
		const struct devsim_summary *s);

/* Monotonic microseconds. */
int64_t devsim_now_us(void);

#endif
