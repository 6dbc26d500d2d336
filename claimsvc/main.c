/* claimsvc: command line, signals, and the main loop: the MQTT client and
 * the HTTP server (http.c) share one thread and one poll(). */
#include "claimsvc.h"
#include "http.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "onb/envelope.h"
#include "onb/provision.h"
#include "onb/stats.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define DRAIN_MS 2000
#define TURN_MS 100             /* longest wait in poll(): the ticks below run at least this often */
/* Flow control, so that whatever arrives claimsvc's memory stays bounded:
 * the broker keeps at most RECEIVE_MAX requests in flight to us (the rest
 * wait in its queue, which max_queued_messages bounds). The broker plugin
 * sheds floods before they get here (docs/provisioning.md, "Budgets").
 *
 * Replies go at QoS 0. At QoS 1, a flood left claimsvc silent until a
 * restart: libmosquitto (2.0.11) ended up holding its Receive Maximum of
 * replies unacknowledged and queued every later one behind them, for good.
 * QoS 1 bought nothing here: the session is clean, so a reply in flight when
 * the connection breaks is lost either way, and the device asks again after
 * its timeout. The plugin delivers the reply to the device at QoS 1. */
#define RECEIVE_MAX 64

/* Several instances share each subscription (no leading '$' in the topics:
 * Mosquitto 2.0 never delivers "$share/g/$..."). */
static const char *const shared_subs[2] = {
	ONB_PROV_SHARED_SUB,
	"$share/claimsvc/" ONB_TOPIC_CLAIM_REQUEST,
};

static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t reload_signal;

struct app {
	struct csvc svc;
	struct mosquitto *mosq;
	/* The brokers served: one today (broker_host, broker_port), several
	 * with issue 16; /healthz and /metrics already loop over them. */
	struct csvc_link links[1];
	size_t nlinks;
	struct csvc_http *http;             /* NULL with http_listen off */
	struct csvc_brokerstats *bstats;    /* the brokers' counters for /metrics */
	int backoff_ms;
	int64_t metrics_at;     /* monotonic ms of the next counters publication */
};

static const char usage_text[] =
	"usage: claimsvc -c FILE         run the claim service\n"
	"       claimsvc --check -c FILE validate the configuration and exit\n"
	"       claimsvc --help\n"
	"\n"
	"Fleet provisioning by claim (AWS IoT wire format): signs device CSRs with\n"
	"the device CA, issues ownership tokens, registers things from templates.\n"
	"Also redeems claim codes for tenant back-ends (docs/claiming.md).\n"
	"Connects to the broker over mTLS and serves the requests the broker plugin\n"
	"forwards on " ONB_PROV_SHARED_SUB "\n"
	"and $share/claimsvc/" ONB_TOPIC_CLAIM_REQUEST ".\n"
	"Configuration: docs/provisioning.md and config/claimsvc.conf.\n"
	"Serves GET /healthz (readiness) and GET /metrics (Prometheus) on http_listen.\n"
	"Signals: TERM/INT stop after the current request, HUP reloads the templates.\n"
	"Exit status: 0 clean stop or valid configuration, 1 error, 2 usage.\n";

static void on_signal(int sig)
{
	if(sig == SIGHUP) reload_signal = 1;
	else stop_signal = 1;
}

static int install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if(sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0
			|| sigaction(SIGHUP, &sa, NULL) != 0){
		return -1;
	}
	sa.sa_handler = SIG_IGN;
	return sigaction(SIGPIPE, &sa, NULL);
}


/* ---------------------------------------------------------------- callbacks */

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags, const mosquitto_property *props)
{
	struct app *app = obj;
	int ret;

	if(rc != 0){
		csvc_log(CSVC_ERROR, "broker refused the connection: %s", mosquitto_reason_string(rc));
		return;
	}
	csvc_log(CSVC_INFO, "connected to %s:%d as %s", app->svc.cfg.broker_host, app->svc.cfg.broker_port,
			app->svc.cfg.client_id);
	app->links[0].connected = true;
	app->backoff_ms = BACKOFF_MIN_MS;
	ret = mosquitto_subscribe_multiple(mosq, NULL, 2, (char *const *)shared_subs, 1, 0, NULL);
	if(ret != MOSQ_ERR_SUCCESS) csvc_log(CSVC_ERROR, "subscribe: %s", mosquitto_strerror(ret));
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count,
		const int *granted, const mosquitto_property *props)
{
	struct app *app = obj;

	for(int i = 0; i < 2; i++){
		if(qos_count <= i || granted[i] >= 0x80){
			csvc_log(CSVC_ERROR, "the broker refused the subscription to %s (reason 0x%02x): "
					"check this service's policy", shared_subs[i], qos_count <= i ? 0 : granted[i]);
			app->links[0].serving = false;
			return;
		}
	}
	app->links[0].serving = true;
	csvc_log(CSVC_INFO, "serving %s and %s", shared_subs[0], shared_subs[1]);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc, const mosquitto_property *props)
{
	struct app *app = obj;

	app->links[0].connected = false;
	app->links[0].serving = false;
	if(!stop_signal) csvc_log(CSVC_WARNING, "disconnected from the broker: %s", mosquitto_reason_string(rc));
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
		const mosquitto_property *props)
{
	struct app *app = obj;
	char *reply;
	int ret;

	size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;

	if(!msg->topic) return;
	if(!strcmp(msg->topic, ONB_TOPIC_PROV_REQUEST)) reply = csvc_handle(&app->svc, msg->payload, len);
	else if(!strcmp(msg->topic, ONB_TOPIC_CLAIM_REQUEST)) reply = csvc_handle_claim(&app->svc, msg->payload, len);
	else return;
	if(!reply) return;
	ret = mosquitto_publish_v5(mosq, NULL, ONB_TOPIC_PROV_REPLY, (int)strlen(reply), reply, 0, false, NULL);
	if(ret != MOSQ_ERR_SUCCESS) csvc_log(CSVC_WARNING, "cannot publish a reply: %s", mosquitto_strerror(ret));
	onb_prov_free(reply);
}

static void on_log(struct mosquitto *mosq, void *obj, int level, const char *str)
{
	csvc_log(CSVC_DEBUG, "mqtt: %s", str);
}

/* ------------------------------------------------------------------ client */

static int client_setup(struct app *app)
{
	const struct csvc_config *cfg = &app->svc.cfg;
	int ret;

	app->mosq = mosquitto_new(cfg->client_id, true, app);
	if(!app->mosq){
		csvc_log(CSVC_ERROR, "cannot create the MQTT client: %s", strerror(errno));
		return -1;
	}
	ret = mosquitto_int_option(app->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	if(ret == MOSQ_ERR_SUCCESS) ret = mosquitto_tls_set(app->mosq, cfg->cafile, NULL, cfg->certfile, cfg->keyfile, NULL);
	if(ret == MOSQ_ERR_SUCCESS) ret = mosquitto_tls_opts_set(app->mosq, 1, NULL, NULL);
	if(ret != MOSQ_ERR_SUCCESS){
		csvc_log(CSVC_ERROR, "MQTT TLS setup: %s", mosquitto_strerror(ret));
		return -1;
	}
	mosquitto_connect_v5_callback_set(app->mosq, on_connect);
	mosquitto_subscribe_v5_callback_set(app->mosq, on_subscribe);
	mosquitto_disconnect_v5_callback_set(app->mosq, on_disconnect);
	mosquitto_message_v5_callback_set(app->mosq, on_message);
	mosquitto_log_callback_set(app->mosq, on_log);
	return 0;
}

static void handle_reload(struct app *app)
{
	struct onb_err err;

	reload_signal = 0;
	if(csvc_reload_templates(&app->svc, &err) == ONB_OK){
		csvc_log(CSVC_INFO, "templates reloaded: %zu", app->svc.templates->n);
	}else{
		csvc_log(CSVC_ERROR, "template reload failed, keeping the old ones: %s", err.msg);
	}
}

/* Publishes the counters and stores them in Redis for `onboardctl stats`,
 * every metrics_interval_s. Mosquitto refuses client publishes under $SYS:
 * they go to onb/internal/stats, which the broker plugin republishes,
 * retained, as $SYS/onboard/claimsvc/<client id>. */
static void publish_metrics(struct app *app)
{
	const struct csvc_config *cfg = &app->svc.cfg;
	struct onb_err err;
	redisContext *rc;
	char *json;
	int ret;

	if(cfg->metrics_interval_s <= 0 || onb_mono_ms() < app->metrics_at) return;
	app->metrics_at = onb_mono_ms() + (int64_t)cfg->metrics_interval_s * 1000;
	json = csvc_metrics_json(&app->svc);
	if(!json) return;
	if(app->links[0].serving){
		ret = mosquitto_publish_v5(app->mosq, NULL, ONB_TOPIC_STATS, (int)strlen(json), json, 0, false, NULL);
		if(ret != MOSQ_ERR_SUCCESS) csvc_log(CSVC_DEBUG, "cannot publish counters: %s", mosquitto_strerror(ret));
	}
	if((rc = csvc_redis(&app->svc)) && onb_stats_put(rc, "claimsvc", cfg->client_id, json,
			(int64_t)cfg->metrics_interval_s * 3000 + 5000, &err) != ONB_OK){
		csvc_log(CSVC_DEBUG, "cannot store counters: %s", err.msg);
	}
	cJSON_free(json);
}

/* ------------------------------------------------------------ the loop */

/* One turn: waits up to TURN_MS for the broker connection (when mqtt) or
 * the HTTP server, then serves whichever is ready. This is mosquitto_loop
 * taken apart (libmosquitto's documented external-loop API) so that one
 * poll() covers both: neither side waits for the other, and an HTTP client
 * that sends nothing never holds up a provisioning request. Returns the
 * MQTT status (MOSQ_ERR_SUCCESS while the connection is up). */
static int turn(struct app *app, bool mqtt)
{
	struct pollfd fds[2];
	int n = 0, m = -1, timeout = TURN_MS, sock = mqtt ? mosquitto_socket(app->mosq) : -1, ret;

	if(sock >= 0){
		m = n;
		fds[n++] = (struct pollfd){ sock, (short)(POLLIN | (mosquitto_want_write(app->mosq) ? POLLOUT : 0)), 0 };
	}
	if(app->http){
		fds[n++] = (struct pollfd){ csvc_http_fd(app->http), POLLIN, 0 };
		timeout = csvc_http_timeout_ms(app->http, timeout);
	}
	if(poll(fds, (nfds_t)n, timeout) < 0 && errno != EINTR){
		csvc_log(CSVC_ERROR, "poll: %s", strerror(errno));
		nanosleep(&(struct timespec){ 0, TURN_MS * 1000000L }, NULL); /* not a busy loop */
	}
	if(app->http) csvc_http_run(app->http); /* also times out idle connections */
	if(!mqtt) return MOSQ_ERR_SUCCESS;
	if(sock < 0) return MOSQ_ERR_NO_CONN;
	if(fds[m].revents & (POLLIN | POLLHUP | POLLERR)){
		/* reads every packet already decrypted, not only one (SSL_pending) */
		ret = mosquitto_loop_read(app->mosq, 1);
		if(ret != MOSQ_ERR_SUCCESS) return ret;
	}
	/* replies queued by on_message during the read go out now */
	if(mosquitto_socket(app->mosq) >= 0 && mosquitto_want_write(app->mosq)){
		ret = mosquitto_loop_write(app->mosq, 1);
		if(ret != MOSQ_ERR_SUCCESS) return ret;
	}
	return mosquitto_loop_misc(app->mosq);
}

/* Waits ms milliseconds (the reconnect back-off) unless a signal arrives,
 * serving HTTP meanwhile: /healthz says 503 while the broker is away. */
static void wait_serving(struct app *app, int ms)
{
	int64_t until = onb_mono_ms() + ms;

	while(!stop_signal && !reload_signal && onb_mono_ms() < until) turn(app, false);
}

/* Runs until a stop signal; reconnects with exponential back-off. */
static void run(struct app *app)
{
	const struct csvc_config *cfg = &app->svc.cfg;
	int ret;

	mosquitto_property *props = NULL;

	app->backoff_ms = BACKOFF_MIN_MS;
	/* kept by libmosquitto for every reconnect */
	if(mosquitto_property_add_int16(&props, MQTT_PROP_RECEIVE_MAXIMUM, RECEIVE_MAX) != MOSQ_ERR_SUCCESS){
		csvc_log(CSVC_ERROR, "out of memory");
		return;
	}
	ret = mosquitto_connect_bind_v5(app->mosq, cfg->broker_host, cfg->broker_port, cfg->keepalive, NULL, props);
	mosquitto_property_free_all(&props);
	if(ret != MOSQ_ERR_SUCCESS){
		csvc_log(CSVC_WARNING, "cannot connect to %s:%d: %s", cfg->broker_host, cfg->broker_port,
				ret == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(ret));
	}
	while(!stop_signal){
		if(ret == MOSQ_ERR_SUCCESS) ret = turn(app, true);
		if(reload_signal) handle_reload(app);
		publish_metrics(app);
		csvc_claim_tick(&app->svc);
		if(ret == MOSQ_ERR_SUCCESS || stop_signal) continue;
		wait_serving(app, app->backoff_ms);
		app->backoff_ms = app->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : app->backoff_ms * 2;
		if(stop_signal) break;
		ret = mosquitto_reconnect(app->mosq);
		if(ret != MOSQ_ERR_SUCCESS){
			csvc_log(CSVC_DEBUG, "reconnect to %s:%d: %s", cfg->broker_host, cfg->broker_port,
					ret == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(ret));
		}
	}
	/* Stop taking requests and let the replies already made leave: the broker
	 * reads them before the DISCONNECT that follows them on the connection. */
	if(ret == MOSQ_ERR_SUCCESS){
		int64_t deadline = onb_mono_ms() + DRAIN_MS;
		mosquitto_unsubscribe_multiple(app->mosq, NULL, 2, (char *const *)shared_subs, NULL);
		while(onb_mono_ms() < deadline && mosquitto_loop(app->mosq, 50, 1) == MOSQ_ERR_SUCCESS
				&& mosquitto_want_write(app->mosq)){
		}
		mosquitto_disconnect_v5(app->mosq, 0, NULL);
		mosquitto_loop(app->mosq, 50, 1);
	}
}

/* ------------------------------------------------------------------ pages */

static int healthz_page(void *arg, struct csvc_text *t)
{
	struct app *app = arg;

	return csvc_health(&app->svc, app->links, app->nlinks, t);
}

static int metrics_page(void *arg, struct csvc_text *t)
{
	struct app *app = arg;

	csvc_metrics_prom(&app->svc, app->links, app->nlinks, t);
	csvc_brokerstats_prom(app->bstats, &app->svc, t);
	return 200;
}

/* Starts the HTTP server unless http_listen is off; false when it cannot
 * (a port in use must stop claimsvc, not leave it unprobed). */
static bool http_setup(struct app *app)
{
	const struct csvc_listen *l = &app->svc.cfg.http_listen;
	struct csvc_http_routes routes = { healthz_page, metrics_page, app };
	struct onb_err err;

	if(!l->enabled) return true;
	if(!(app->bstats = csvc_brokerstats_new())){
		csvc_log(CSVC_ERROR, "out of memory");
		return false;
	}
	if(!(app->http = csvc_http_start(l, &routes, &err))){
		csvc_log(CSVC_ERROR, "%s", err.msg);
		return false;
	}
	/* not "serving": tests and docker/test.sh wait for that word from on_subscribe */
	csvc_log(CSVC_INFO, "http: listening on %s for /healthz and /metrics", l->text);
	return true;
}

/* ------------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	const char *conf = NULL;
	bool check = false;
	struct csvc_config cfg;
	struct onb_err err;
	struct app app;
	int rc = 1;

	for(int i = 1; i < argc; i++){
		if(!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")){
			fputs(usage_text, stdout);
			return 0;
		}else if(!strcmp(argv[i], "--check")){
			check = true;
		}else if(!strcmp(argv[i], "-c") && i + 1 < argc){
			conf = argv[++i];
		}else{
			fprintf(stderr, "claimsvc: unexpected argument '%s' (see --help)\n", argv[i]);
			return 2;
		}
	}
	if(!conf){
		fputs("claimsvc: -c FILE is required (see --help)\n", stderr);
		return 2;
	}
	if(csvc_config_load(conf, &cfg, &err) != ONB_OK){
		fprintf(stderr, "claimsvc: %s\n", err.msg);
		return 1;
	}
	csvc_log_level = cfg.log_level;
	memset(&app, 0, sizeof(app));
	if(csvc_init(&app.svc, &cfg, &err) != ONB_OK){
		fprintf(stderr, "claimsvc: %s\n", err.msg);
		return 1;
	}
	if(csvc_claim_init(&app.svc) != ONB_OK){
		fprintf(stderr, "claimsvc: out of memory\n");
		csvc_free(&app.svc);
		return 1;
	}
	if(check){
		printf("claimsvc: configuration OK: client id %s, %zu template(s), broker %s:%d, device CA key %s, "
				"http %s, certificatePem %s\n", app.svc.cfg.client_id, app.svc.templates->n, cfg.broker_host,
				cfg.broker_port, app.svc.ca_key_pkcs11 ? "in a PKCS#11 token" : "from a file",
				cfg.http_listen.text, cfg.reply_chain ? "with the device CA (reply_chain)" : "the certificate alone");
		csvc_claim_free(&app.svc);
		csvc_free(&app.svc);
		return 0;
	}
	if(install_signals() != 0){
		fprintf(stderr, "claimsvc: cannot install signal handlers: %s\n", strerror(errno));
		goto cleanup;
	}
	mosquitto_lib_init();
	snprintf(app.links[0].address, sizeof(app.links[0].address), "%s:%d", cfg.broker_host, cfg.broker_port);
	app.nlinks = 1;
	if(client_setup(&app) == 0 && http_setup(&app)){
		csvc_log(CSVC_INFO, "starting: client id %s, %zu template(s), create_keys %s, device CA key %s",
				app.svc.cfg.client_id, app.svc.templates->n, cfg.create_keys_enabled ? "enabled" : "disabled",
				app.svc.ca_key_pkcs11 ? "in a PKCS#11 token" : "from a file");
		if(!csvc_redis(&app.svc)) csvc_log(CSVC_WARNING, "starting without the registry; will retry");
		run(&app);
		csvc_log(CSVC_INFO, "stopped: %llu handled, %llu accepted, %llu rejected, %llu dropped",
				(unsigned long long)app.svc.handled, (unsigned long long)app.svc.accepted,
				(unsigned long long)app.svc.rejected, (unsigned long long)app.svc.dropped);
		rc = 0;
	}
	csvc_http_stop(app.http);
	csvc_brokerstats_free(app.bstats);
	mosquitto_destroy(app.mosq);
	mosquitto_lib_cleanup();
cleanup:
	csvc_claim_free(&app.svc); /* writes the counts of open audit windows */
	csvc_free(&app.svc);
	return rc;
}
