/* devsim: options, set-up, worker threads, summary. See README.md. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devsim.h"

#define N_MAX 1000000
#define CONC_MAX 10000
#define THREADS_MAX 64

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: devsim --port P --cafile FILE (--claim-cert FILE --claim-key FILE | --birth-dir DIR)\n"
"              [options]\n"
"\n"
"Simulates devices that provision themselves over the AWS IoT fleet-provisioning\n"
"MQTT API (CreateCertificateFromCsr, RegisterThing), then reconnect with the\n"
"issued certificate and publish telemetry. Prints per-phase latency percentiles\n"
"and provisionings/s. Exits 0 only if every device succeeded.\n"
"\n"
"Broker and identity:\n"
"  --host HOST             broker address (default 127.0.0.1)\n"
"  --port P                broker TLS port (default 8883)\n"
"  --cafile FILE           CA bundle that verifies the broker's certificate\n"
"  --claim-cert FILE       shared claim certificate (PEM, may hold its chain)\n"
"  --claim-key FILE        its private key\n"
"  --birth-dir DIR         per-device birth certificates: DIR/<serial>.pem and .key\n"
"  --claim-id-prefix P     client id of the claim/birth connection = P<serial> (default \"\")\n"
"Devices:\n"
"  --template NAME         provisioning template (default \"default\")\n"
"  --serial-prefix S       serials S0000, S0001, ... (default \"SN\")\n"
"  --serial-start K        first serial number (default 0)\n"
"  --serial SERIAL         one device with this serial (implies -n 1)\n"
"  -n N                    number of devices (default 1)\n"
"  -c C                    devices in flight at once, each with its own connections (default 1)\n"
"  --threads T             event-loop threads sharing the C devices (default 1)\n"
"  --out DIR               write each provisioned device's <thingName>.pem and .key (0600)\n"
"  --telemetry K           QoS 1 messages to devices/<thingName>/telemetry (default 1)\n"
"  --stay S                stay connected S seconds subscribed to devices/<thingName>/commands/#,\n"
"                          printing what arrives (default 0)\n"
"  --rotate                after the telemetry, renew the certificate over the operational\n"
"                          connection (devices/<thingName>/certificates/renew, a fresh key),\n"
"                          reconnect with the new one and publish the telemetry again\n"
"Protocol:\n"
"  --format json|cbor      payload format of CreateCertificateFromCsr and RegisterThing: the\n"
"                          .../json topics, or the .../cbor ones with CBOR documents, as the\n"
"                          AWS IoT Device SDK for Embedded C sends them (default json;\n"
"                          --rotate's renewal is JSON either way)\n"
"  --timeout MS            limit of every phase (default 10000)\n"
"  --register-retries K    send RegisterThing again (same token and parameters) after a\n"
"                          timeout, at most K times, as device SDKs do (default 0)\n"
"  --mqtt-version 5|311    (default 5)\n"
"  --tls-per-connection    let libmosquitto build an SSL_CTX from files for every\n"
"                          connection, as most device code does (default: one shared SSL_CTX)\n"
"Output:\n"
"  --json                  print the summary as JSON\n"
"  --quiet                 no per-failure lines on stderr\n"
"  -v, --verbose           one line per provisioned device on stderr\n"
"  -h, --help              this text\n");
}

static long parse_num(const char *opt, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if(errno || end == s || *end || v < min || v > max){
		fprintf(stderr, "devsim: %s wants a number in %ld..%ld, not '%s'\n", opt, min, max, s);
		exit(2);
	}
	return v;
}

static bool template_valid(const char *s)
{
	size_t n = strlen(s);

	if(n < 1 || n > DEVSIM_TEMPLATE_MAX) return false;
	for(size_t i = 0; i < n; i++){
		char c = s[i];
		if(!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
				|| c == '_' || c == '-')) return false;
	}
	return true;
}

/* snprintf that says whether everything fitted. */
__attribute__((format(printf, 3, 4)))
static bool fmt(char *dst, size_t len, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(dst, len, f, ap);
	va_end(ap);
	return n >= 0 && (size_t)n < len;
}

static int digits(long v)
{
	int d = 1;

	while(v >= 10){
		v /= 10;
		d++;
	}
	return d;
}

/* Checks and completes cfg; prints the reason and returns -1 when unusable. */
static int check_cfg(struct devsim_cfg *c)
{
	char probe[2 * ONB_ID_MAX + 2];

	if(!c->cafile){
		fprintf(stderr, "devsim: --cafile is required (try --help)\n");
		return -1;
	}
	if(!!c->birth_dir == !!(c->claim_cert || c->claim_key)){
		fprintf(stderr, "devsim: give either --claim-cert and --claim-key, or --birth-dir\n");
		return -1;
	}
	if(!c->birth_dir && (!c->claim_cert || !c->claim_key)){
		fprintf(stderr, "devsim: --claim-cert and --claim-key go together\n");
		return -1;
	}
	if(!template_valid(c->template_name)){
		fprintf(stderr, "devsim: template name must match [0-9A-Za-z_-]{1,36}\n");
		return -1;
	}
	if(c->serial){
		if(c->n != 1){
			fprintf(stderr, "devsim: --serial is one device; drop -n\n");
			return -1;
		}
		snprintf(probe, sizeof(probe), "%s", c->serial);
	}else{
		c->serial_width = digits(c->serial_start + c->n - 1);
		if(c->serial_width < 4) c->serial_width = 4;
		if(!fmt(probe, sizeof(probe), "%s%0*ld", c->serial_prefix, c->serial_width,
				c->serial_start + c->n - 1)){
			fprintf(stderr, "devsim: --serial-prefix is too long\n");
			return -1;
		}
	}
	if(!onb_id_valid(probe)){
		fprintf(stderr, "devsim: serial '%s' is not a valid device id ([A-Za-z0-9._:-]{1,128})\n", probe);
		return -1;
	}
	{
		char id[sizeof(probe) + ONB_ID_MAX];
		snprintf(id, sizeof(id), "%s%s", c->claim_id_prefix, probe);
		if(!onb_id_valid(id)){
			fprintf(stderr, "devsim: client id '%s' is not a valid device id\n", id);
			return -1;
		}
	}
	if(c->conc > c->n) c->conc = c->n;
	if(c->threads > c->conc) c->threads = c->conc;

	/* The template name is at most 36 bytes: every topic fits. */
	if(!fmt(c->t_csr, sizeof(c->t_csr), "$aws/certificates/create-from-csr/%s", c->cbor ? "cbor" : "json")
			|| !fmt(c->t_csr_acc, sizeof(c->t_csr_acc), "%s/accepted", c->t_csr)
			|| !fmt(c->t_csr_rej, sizeof(c->t_csr_rej), "%s/rejected", c->t_csr)
			|| !fmt(c->t_reg, sizeof(c->t_reg), "$aws/provisioning-templates/%s/provision/%s",
				c->template_name, c->cbor ? "cbor" : "json")
			|| !fmt(c->t_reg_acc, sizeof(c->t_reg_acc), "%s/accepted", c->t_reg)
			|| !fmt(c->t_reg_rej, sizeof(c->t_reg_rej), "%s/rejected", c->t_reg)){
		fprintf(stderr, "devsim: topic too long\n");
		return -1;
	}
	return 0;
}

static int prepare_out_dir(const char *dir)
{
	struct stat st;

	if(mkdir(dir, 0700) != 0 && errno != EEXIST){
		fprintf(stderr, "devsim: cannot create %s: %s\n", dir, strerror(errno));
		return -1;
	}
	if(stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)){
		fprintf(stderr, "devsim: %s is not a directory\n", dir);
		return -1;
	}
	return 0;
}

/* Each in-flight device holds a socket and libmosquitto's socket pair. */
static void raise_fd_limit(int conc)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)conc * 4 + 64;

	if(getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want) return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
	if(setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want){
		fprintf(stderr, "devsim: warning: open-file limit %lu is low for -c %d\n",
				(unsigned long)rl.rlim_cur, conc);
	}
}

static double cpu_seconds(void)
{
	struct rusage ru;

	if(getrusage(RUSAGE_SELF, &ru) != 0) return 0;
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
		+ (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	enum { O_HOST = 256, O_PORT, O_CAFILE, O_CLAIM_CERT, O_CLAIM_KEY, O_BIRTH_DIR, O_TEMPLATE,
		O_SERIAL_PREFIX, O_SERIAL_START, O_SERIAL, O_CLAIM_ID_PREFIX, O_THREADS, O_OUT,
		O_TELEMETRY, O_STAY, O_TIMEOUT, O_REGISTER_RETRIES, O_MQTT_VERSION, O_TLS_PER_CONN, O_JSON, O_QUIET, O_ROTATE,
		O_FORMAT };
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, O_HOST },
		{ "port", required_argument, NULL, O_PORT },
		{ "cafile", required_argument, NULL, O_CAFILE },
		{ "claim-cert", required_argument, NULL, O_CLAIM_CERT },
		{ "claim-key", required_argument, NULL, O_CLAIM_KEY },
		{ "birth-dir", required_argument, NULL, O_BIRTH_DIR },
		{ "template", required_argument, NULL, O_TEMPLATE },
		{ "serial-prefix", required_argument, NULL, O_SERIAL_PREFIX },
		{ "serial-start", required_argument, NULL, O_SERIAL_START },
		{ "serial", required_argument, NULL, O_SERIAL },
		{ "claim-id-prefix", required_argument, NULL, O_CLAIM_ID_PREFIX },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "out", required_argument, NULL, O_OUT },
		{ "telemetry", required_argument, NULL, O_TELEMETRY },
		{ "stay", required_argument, NULL, O_STAY },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "register-retries", required_argument, NULL, O_REGISTER_RETRIES },
		{ "mqtt-version", required_argument, NULL, O_MQTT_VERSION },
		{ "tls-per-connection", no_argument, NULL, O_TLS_PER_CONN },
		{ "json", no_argument, NULL, O_JSON },
		{ "quiet", no_argument, NULL, O_QUIET },
		{ "rotate", no_argument, NULL, O_ROTATE },
		{ "format", required_argument, NULL, O_FORMAT },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct devsim_cfg cfg = {
		.host = "127.0.0.1", .port = 8883, .template_name = "default", .serial_prefix = "SN",
		.claim_id_prefix = "", .n = 1, .conc = 1, .threads = 1, .telemetry = 1,
		.timeout_ms = 10000, .mqtt_version = 5, .keepalive = 60,
	};
	struct devsim_run run = { .cfg = &cfg, .stop = &stop_flag };
	struct devsim_summary sum = { 0 };
	struct devsim_worker *workers = NULL;
	struct sigaction sa;
	char err[512], work_dir[] = "/tmp/devsim.XXXXXX";
	bool have_work_dir = false;
	int opt, ret = 2, started = 0;
	int64_t t0;
	double cpu0;

	while((opt = getopt_long(argc, argv, "n:c:vh", longopts, NULL)) != -1){
		switch(opt){
		case O_HOST: cfg.host = optarg; break;
		case O_PORT: cfg.port = (int)parse_num("--port", optarg, 1, 65535); break;
		case O_CAFILE: cfg.cafile = optarg; break;
		case O_CLAIM_CERT: cfg.claim_cert = optarg; break;
		case O_CLAIM_KEY: cfg.claim_key = optarg; break;
		case O_BIRTH_DIR: cfg.birth_dir = optarg; break;
		case O_TEMPLATE: cfg.template_name = optarg; break;
		case O_SERIAL_PREFIX: cfg.serial_prefix = optarg; break;
		case O_SERIAL_START: cfg.serial_start = parse_num("--serial-start", optarg, 0, 1000000000L); break;
		case O_SERIAL: cfg.serial = optarg; break;
		case O_CLAIM_ID_PREFIX: cfg.claim_id_prefix = optarg; break;
		case 'n': cfg.n = (int)parse_num("-n", optarg, 1, N_MAX); break;
		case 'c': cfg.conc = (int)parse_num("-c", optarg, 1, CONC_MAX); break;
		case O_THREADS: cfg.threads = (int)parse_num("--threads", optarg, 1, THREADS_MAX); break;
		case O_OUT: cfg.out_dir = optarg; break;
		case O_TELEMETRY: cfg.telemetry = (int)parse_num("--telemetry", optarg, 0, 100000); break;
		case O_STAY: cfg.stay_s = (int)parse_num("--stay", optarg, 0, 86400); break;
		case O_TIMEOUT: cfg.timeout_ms = (int)parse_num("--timeout", optarg, 100, 600000); break;
		case O_REGISTER_RETRIES: cfg.register_retries = (int)parse_num("--register-retries", optarg, 0, 100); break;
		case O_MQTT_VERSION:
			cfg.mqtt_version = (int)parse_num("--mqtt-version", optarg, 5, 311);
			if(cfg.mqtt_version != 5 && cfg.mqtt_version != 311){
				fprintf(stderr, "devsim: --mqtt-version is 5 or 311\n");
				return 2;
			}
			break;
		case O_TLS_PER_CONN: cfg.tls_per_conn = true; break;
		case O_JSON: cfg.json = true; break;
		case O_QUIET: cfg.quiet = true; break;
		case O_ROTATE: cfg.rotate = true; break;
		case O_FORMAT:
			if(strcmp(optarg, "json") != 0 && strcmp(optarg, "cbor") != 0){
				fprintf(stderr, "devsim: --format is json or cbor, not '%s'\n", optarg);
				return 2;
			}
			cfg.cbor = !strcmp(optarg, "cbor");
			break;
		case 'v': cfg.verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if(optind < argc){
		fprintf(stderr, "devsim: unexpected argument '%s' (try --help)\n", argv[optind]);
		return 2;
	}
	if(check_cfg(&cfg) != 0) return 2;
	cfg.progress = isatty(STDERR_FILENO) && !cfg.quiet && !cfg.verbose && cfg.n > 1;
	if(cfg.out_dir && prepare_out_dir(cfg.out_dir) != 0) return 2;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit(cfg.conc);
	mosquitto_lib_init();
	pthread_mutex_init(&run.out_lock, NULL);

	if(!cfg.tls_per_conn){
		if(!(run.ctx = devsim_tls_ctx_new(cfg.cafile, cfg.host, err, sizeof(err)))){
			fprintf(stderr, "devsim: %s\n", err);
			goto done;
		}
		if(cfg.claim_cert && devsim_cred_load(&run.claim, cfg.claim_cert, cfg.claim_key, err, sizeof(err)) != 0){
			fprintf(stderr, "devsim: claim certificate: %s\n", err);
			goto done;
		}
	}else if(!cfg.out_dir){
		if(!mkdtemp(work_dir)){
			fprintf(stderr, "devsim: mkdtemp: %s\n", strerror(errno));
			goto done;
		}
		have_work_dir = true;
		cfg.work_dir = work_dir;
	}

	for(int ph = 0; ph < PH_COUNT; ph++){
		if(!(run.res.lat_us[ph] = malloc((size_t)cfg.n * sizeof(int32_t)))) goto oom;
		memset(run.res.lat_us[ph], 0xff, (size_t)cfg.n * sizeof(int32_t)); /* -1 */
	}
	if(!(run.res.status = calloc((size_t)cfg.n, 1))) goto oom;
	if(!(workers = calloc((size_t)cfg.threads, sizeof(*workers)))) goto oom;
	for(int i = 0; i < cfg.threads; i++){
		workers[i].run = &run;
		workers[i].id = i;
		workers[i].nslots = cfg.conc / cfg.threads + (i < cfg.conc % cfg.threads);
		if(!(workers[i].slots = calloc((size_t)workers[i].nslots, devsim_dev_size()))) goto oom;
	}

	cpu0 = cpu_seconds();
	t0 = devsim_now_us();
	for(; started < cfg.threads; started++){
		if(pthread_create(&workers[started].thread, NULL, devsim_worker_main, &workers[started]) != 0){
			fprintf(stderr, "devsim: cannot start thread %d\n", started);
			stop_flag = 1;
			break;
		}
	}
	for(int i = 0; i < started; i++) pthread_join(workers[i].thread, NULL);
	if(cfg.progress) fprintf(stderr, "\r\033[K");
	sum.wall_s = (double)(devsim_now_us() - t0) / 1e6;
	sum.cpu_s = cpu_seconds() - cpu0;

	for(int i = 0; i < cfg.n; i++){
		if(run.res.status[i] == DS_OK) sum.ok++;
		else if(run.res.status[i] == DS_FAILED) sum.failed++;
		else sum.not_run++;
	}
	for(int i = 0; i < started; i++){
		const struct devsim_reasons *r = &workers[i].reasons;
		for(int k = 0; k < r->n; k++){
			devsim_reasons_add(&sum.reasons, r->r[k].key, r->r[k].ex_serial, r->r[k].ex_detail, r->r[k].count);
		}
		sum.reasons.other += r->other;
		sum.stray += workers[i].stray;
		sum.commands += workers[i].commands;
		sum.resent += workers[i].resent;
		if(workers[i].csr_reply_max > sum.csr_reply_max) sum.csr_reply_max = workers[i].csr_reply_max;
		if(workers[i].reg_reply_max > sum.reg_reply_max) sum.reg_reply_max = workers[i].reg_reply_max;
	}
	if(cfg.json) devsim_report_json(&cfg, &run.res, &sum);
	else devsim_report_text(&cfg, &run.res, &sum);
	ret = (sum.ok == cfg.n) ? 0 : 1;
	goto done;
oom:
	fprintf(stderr, "devsim: out of memory for %d devices\n", cfg.n);
done:
	if(workers){
		for(int i = 0; i < cfg.threads; i++) free(workers[i].slots);
		free(workers);
	}
	for(int ph = 0; ph < PH_COUNT; ph++) free(run.res.lat_us[ph]);
	free(run.res.status);
	devsim_cred_clear(&run.claim);
	SSL_CTX_free(run.ctx);
	if(have_work_dir) rmdir(work_dir);
	pthread_mutex_destroy(&run.out_lock);
	mosquitto_lib_cleanup();
	return ret;
}
