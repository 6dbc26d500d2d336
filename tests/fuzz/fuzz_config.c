/* libFuzzer target for claimsvc's configuration parser (claimsvc/config.c,
 * csvc_config_read: the code csvc_config_load runs on an open file), fed
 * from memory with fmemopen. Invariants: a failure writes one message and
 * leaves the output untouched; a success has every required path set,
 * every number within its documented range, every string terminated
 * inside its buffer, a valid or empty client id, and a known log level;
 * an input holding a NUL byte never parses (a NUL would cut the value
 * short without a word: config.c refuses it). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "claimsvc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SENTINEL 0xa5

#define IN(v, lo, hi) ((v) >= (lo) && (v) <= (hi))
#define TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

static void check_config(const struct csvc_config *c)
{
	if(!TERMINATED(c->broker_host) || !TERMINATED(c->cafile) || !TERMINATED(c->certfile)
			|| !TERMINATED(c->keyfile) || !TERMINATED(c->client_id) || !TERMINATED(c->device_ca_cert)
			|| !TERMINATED(c->device_ca_key) || !TERMINATED(c->redis_url)
			|| !TERMINATED(c->templates_dir) || !TERMINATED(c->pkcs11_module)){
		abort();
	}
	/* required keys have non-empty values (an empty value is refused) */
	if(!c->cafile[0] || !c->certfile[0] || !c->keyfile[0] || !c->device_ca_cert[0]
			|| !c->device_ca_key[0] || !c->templates_dir[0]){
		abort();
	}
	if(c->client_id[0] && !onb_id_valid(c->client_id)) abort();
	/* the broker list: 1..CSVC_BROKERS_MAX brokers, each a non-empty host and a port */
	if(!IN(c->nbrokers, 1, CSVC_BROKERS_MAX)) abort();
	for(size_t i = 0; i < c->nbrokers; i++){
		if(!TERMINATED(c->brokers[i].host) || !c->brokers[i].host[0] || !IN(c->brokers[i].port, 1, 65535)) abort();
	}
	if(!IN(c->broker_port, 1, 65535) || !IN(c->keepalive, 5, 3600) || !IN(c->redis_timeout_ms, 10, 60000)
			|| !IN(c->token_ttl, 60, 604800) || !IN(c->cert_validity_days, 1, 36500)
			|| !IN(c->rate_window_ms, 100, 3600000) || !IN(c->rate_per_client, 0, 1000000000L)
			|| !IN(c->rate_per_requester, 0, 1000000000L) || !IN(c->rate_global, 0, 1000000000L)
			|| !IN(c->claim_max_failures, 1, 1000) || !IN(c->claim_window_ms, 1, 86400000L)
			|| !IN(c->claim_lockout_ms, 1, 7 * 86400000L) || !IN(c->rotation_grace, 60, 7776000)
			|| !IN(c->metrics_interval_s, 0, 3600) || !IN((int)c->log_level, CSVC_ERROR, CSVC_DEBUG)){
		abort();
	}
	/* http_listen: "off", or a numeric address of a known family and a port */
	if(!TERMINATED(c->http_listen.text)) abort();
	if(c->http_listen.enabled ? !IN(c->http_listen.port, 1, 65535)
			|| (c->http_listen.family != AF_INET && c->http_listen.family != AF_INET6)
			: strcmp(c->http_listen.text, "off") != 0){
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csvc_config *cfg = malloc(sizeof(*cfg));
	struct onb_err err = { "" };
	FILE *f;
	int rc;

	if(!cfg) return 0;
	/* fmemopen refuses a zero-sized buffer: the empty file is one byte of "\n" */
	f = size ? fmemopen((void *)data, size, "r") : fmemopen("\n", 1, "r");
	if(!f) abort();
	memset(cfg, SENTINEL, sizeof(*cfg));
	rc = csvc_config_read(f, "fuzz.conf", cfg, &err);
	fclose(f);
	if(rc == ONB_OK){
		if(memchr(data, '\0', size)) abort();
		check_config(cfg);
	}else{
		if(!err.msg[0] || strncmp(err.msg, "fuzz.conf", 9) != 0) abort();
		for(size_t i = 0; i < sizeof(*cfg); i++){
			if(((const unsigned char *)cfg)[i] != SENTINEL) abort();
		}
	}
	free(cfg);
	return 0;
}
