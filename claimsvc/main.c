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

#include "provisioning/envelope.h"
#include "provisioning/provision.h"
#include "registry/stats.h"

#define DRAIN_MS 2000           /* longest wait for a link's last replies when it closes */
#define TURN_MS 100             /* longest wait in poll(): the ticks below run at least this often */

static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t reload_signal;

struct app {
	struct csvc svc;
	const char *conf;                   /* the configuration file, re-read on SIGHUP */
	struct csvc_config file_cfg;        /* conf as read and applied: what a reload compares with
	                                       (svc.cfg differs: csvc_init fills in client_id) */
	/* The brokers served, one link each (links.c), in the order listed;
	 * /healthz and /metrics loop over them. */
	struct csvc_link links[CSVC_BROKERS_MAX];
	size_t nlinks;
	struct csvc_http *http;             /* NULL with http_listen off */
	struct csvc_brokerstats *bstats;    /* the brokers' counters for /metrics */
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
	"Connects over mTLS to every broker listed (\"broker HOST:PORT\" lines, or\n"
	"broker_host and broker_port for one) and serves, on each, the requests the\n"
	"broker plugin forwards on " ONB_PROV_SHARED_SUB "\n"
	"and $share/claimsvc/" ONB_TOPIC_CLAIM_REQUEST "; each request is answered on\n"
	"the broker it came from.\n"
	"Configuration: docs/provisioning.md and config/claimsvc.conf.\n"
	"Serves GET /healthz (readiness: Redis and at least one broker served) and\n"
	"GET /metrics (Prometheus) on http_listen.\n"
	"Signals: TERM/INT stop after the current request; HUP reloads the templates\n"
	"and the broker list (links to brokers still listed are left alone).\n"
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


/* SIGHUP: the templates, and the broker list from a fresh read of the
 * configuration file. Other settings are not applied while running (they
 * are held by the Redis connection, the CA, the TLS contexts): a change to
 * one is reported, and takes effect at the next start. */
static void handle_reload(struct app *app)
{
	struct csvc_config cfg, cur;
	struct onb_err err;
	struct csvc_config *run_cfg = &app->svc.cfg;

	reload_signal = 0;
	if(csvc_reload_templates(&app->svc, &err) == ONB_OK){
		csvc_log(CSVC_INFO, "templates reloaded: %zu", app->svc.templates->n);
	}else{
		csvc_log(CSVC_ERROR, "template reload failed, keeping the old ones: %s", err.msg);
	}
	if(csvc_config_load(app->conf, &cfg, &err) != ONB_OK){
		csvc_log(CSVC_ERROR, "configuration reload failed, keeping the brokers served: %s", err.msg);
		return;
	}
	/* both structs come from csvc_config_read, which zeroes before it fills:
	 * equal settings are equal bytes */
	cur = app->file_cfg;
	memcpy(cur.brokers, cfg.brokers, sizeof(cur.brokers));
	cur.nbrokers = cfg.nbrokers;
	memcpy(cur.broker_host, cfg.broker_host, sizeof(cur.broker_host));
	cur.broker_port = cfg.broker_port;
	if(memcmp(&cur, &cfg, sizeof(cfg)) != 0){
		csvc_log(CSVC_WARNING, "%s: settings other than the broker list changed; they take effect at a "
				"restart", app->conf);
	}
	app->nlinks = csvc_links_apply(app->links, app->nlinks, &app->svc, cfg.brokers, cfg.nbrokers, DRAIN_MS);
	app->file_cfg = cur;
	memcpy(run_cfg->brokers, cfg.brokers, sizeof(run_cfg->brokers));
	run_cfg->nbrokers = cfg.nbrokers;
	memcpy(run_cfg->broker_host, cfg.broker_host, sizeof(run_cfg->broker_host));
	run_cfg->broker_port = cfg.broker_port;
	csvc_log(CSVC_INFO, "broker list reloaded: %zu broker(s)", app->nlinks);
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

	if(cfg->metrics_interval_s <= 0 || onb_mono_ms() < app->metrics_at) return;
	app->metrics_at = onb_mono_ms() + (int64_t)cfg->metrics_interval_s * 1000;
	json = csvc_metrics_json(&app->svc);
	if(!json) return;
	/* to every broker: each republishes them under its own $SYS */
	csvc_links_publish(app->links, app->nlinks, ONB_TOPIC_STATS, json);
	if((rc = csvc_redis(&app->svc)) && onb_stats_put(rc, "claimsvc", cfg->client_id, json,
			(int64_t)cfg->metrics_interval_s * 3000 + 5000, &err) != ONB_OK){
		csvc_log(CSVC_DEBUG, "cannot store counters: %s", err.msg);
	}
	cJSON_free(json);
}

/* ------------------------------------------------------------ the loop */

/* One turn: waits up to TURN_MS for any broker link or the HTTP server,
 * then serves whichever is ready. This is mosquitto_loop taken apart
 * (libmosquitto's documented external-loop API) so that one poll() covers
 * every link and the HTTP server: none waits for another, and an HTTP
 * client that sends nothing never holds up a provisioning request. */
static void turn(struct app *app)
{
	struct pollfd fds[CSVC_BROKERS_MAX + 1];
	size_t n = app->nlinks;
	int timeout = csvc_links_poll_prepare(app->links, app->nlinks, fds, TURN_MS);

	if(app->http){
		fds[n++] = (struct pollfd){ csvc_http_fd(app->http), POLLIN, 0 };
		timeout = csvc_http_timeout_ms(app->http, timeout);
	}
	if(poll(fds, (nfds_t)n, timeout) < 0 && errno != EINTR){
		csvc_log(CSVC_ERROR, "poll: %s", strerror(errno));
		nanosleep(&(struct timespec){ 0, TURN_MS * 1000000L }, NULL); /* not a busy loop */
	}
	if(app->http) csvc_http_run(app->http); /* also times out idle connections */
	csvc_links_run(app->links, app->nlinks, fds);
}

/* Runs until a stop signal; each link reconnects with its own back-off. */
static void run(struct app *app)
{
	struct csvc_link *all[CSVC_BROKERS_MAX];

	while(!stop_signal){
		turn(app);
		if(reload_signal) handle_reload(app);
		publish_metrics(app);
		csvc_claim_tick(&app->svc);
	}
	/* Stop taking requests and let the replies already made leave: the broker
	 * reads them before the DISCONNECT that follows them on the connection. */
	for(size_t i = 0; i < app->nlinks; i++) all[i] = &app->links[i];
	csvc_links_drain(all, app->nlinks, DRAIN_MS);
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
	/* not "serving": tests and docker/test.sh wait for that word from links.c */
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
		char list[CSVC_BROKERS_MAX * 64] = "", one[300];
		size_t used = 0;

		for(size_t i = 0; i < cfg.nbrokers; i++){
			csvc_broker_format(&cfg.brokers[i], one, sizeof(one));
			/* a list too long for the line ends in "..." rather than cut mid-name */
			if(used + strlen(one) + 6 >= sizeof(list)){
				snprintf(list + used, sizeof(list) - used, "%s...", i ? ", " : "");
				break;
			}
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", one);
		}
		printf("claimsvc: configuration OK: client id %s, %zu template(s), %zu broker(s) %s, device CA key %s, "
				"http %s, certificatePem %s\n", app.svc.cfg.client_id, app.svc.templates->n, cfg.nbrokers,
				list, app.svc.ca_key_pkcs11 ? "in a PKCS#11 token" : "from a file",
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
	app.conf = conf;
	app.file_cfg = cfg;
	app.nlinks = csvc_links_apply(app.links, 0, &app.svc, cfg.brokers, cfg.nbrokers, 0);
	if(app.nlinks == cfg.nbrokers && http_setup(&app)){
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
	for(size_t i = 0; i < app.nlinks; i++) csvc_link_close(&app.links[i]);
	mosquitto_lib_cleanup();
cleanup:
	csvc_claim_free(&app.svc); /* writes the counts of open audit windows */
	csvc_free(&app.svc);
	return rc;
}
