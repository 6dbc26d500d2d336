/* Broker links (issue 16): one libmosquitto client per configured broker,
 * each with its own reconnect back-off, all driven from main.c's one poll()
 * loop. A request is answered on the link it came from: the plugin that
 * stamped it holds the device's connection, and only that broker can
 * deliver the reply (docs/internal-topics.md).
 *
 * Connects are asynchronous (mosquitto_connect_bind_async): a broker whose
 * host does not answer must not stop the others from being served while the
 * kernel waits out its TCP connect. Only the name lookup (getaddrinfo) still
 * blocks; a numeric address or /etc/hosts name costs nothing. */
#include "claimsvc.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "provisioning/envelope.h"
#include "provisioning/provision.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* While a link's TLS handshake or CONNACK is pending, libmosquitto alone
 * knows whether it waits to read or to write (want_connect is internal), so
 * mosquitto_loop is called at least this often instead of polling for
 * writability, which would spin until the handshake ends. */
#define HANDSHAKE_TICK_MS 10
/* Flow control, so that whatever arrives claimsvc's memory stays bounded:
 * the broker keeps at most RECEIVE_MAX requests in flight to us on each
 * link (the rest wait in its queue, which max_queued_messages bounds). The
 * broker plugin sheds floods before they get here (docs/provisioning.md,
 * "Budgets").
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

/* ---------------------------------------------------------------- callbacks */

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags, const mosquitto_property *props)
{
	struct csvc_link *l = obj;
	int ret;

	(void)flags;
	(void)props;
	if(rc != 0){
		csvc_log(CSVC_ERROR, "broker %s refused the connection: %s", l->address, mosquitto_reason_string(rc));
		return;
	}
	csvc_log(CSVC_INFO, "connected to %s as %s", l->address, l->svc->cfg.client_id);
	l->connected = true;
	l->down_logged = false;
	l->backoff_ms = BACKOFF_MIN_MS;
	ret = mosquitto_subscribe_multiple(mosq, NULL, 2, (char *const *)shared_subs, 1, 0, NULL);
	if(ret != MOSQ_ERR_SUCCESS) csvc_log(CSVC_ERROR, "subscribe on %s: %s", l->address, mosquitto_strerror(ret));
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count,
		const int *granted, const mosquitto_property *props)
{
	struct csvc_link *l = obj;

	(void)mosq;
	(void)mid;
	(void)props;
	for(int i = 0; i < 2; i++){
		if(qos_count <= i || granted[i] >= 0x80){
			csvc_log(CSVC_ERROR, "broker %s refused the subscription to %s (reason 0x%02x): "
					"check this service's policy", l->address, shared_subs[i], qos_count <= i ? 0 : granted[i]);
			l->serving = false;
			return;
		}
	}
	l->serving = true;
	/* "info: serving" is the word tests and docker/test.sh wait for */
	csvc_log(CSVC_INFO, "serving %s and %s on %s", shared_subs[0], shared_subs[1], l->address);
}

static void on_unsubscribe(struct mosquitto *mosq, void *obj, int mid, const mosquitto_property *props)
{
	struct csvc_link *l = obj;

	(void)mosq;
	(void)props;
	if(l->unsub_mid != 0 && mid == l->unsub_mid) l->unsubscribed = true;
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc, const mosquitto_property *props)
{
	struct csvc_link *l = obj;

	(void)mosq;
	(void)props;
	if(l->connected && !l->unsub_mid) {
		csvc_log(CSVC_WARNING, "disconnected from %s: %s", l->address, mosquitto_reason_string(rc));
	}
	l->connected = false;
	l->serving = false;
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
		const mosquitto_property *props)
{
	struct csvc_link *l = obj;
	size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
	char *reply;
	int ret;

	(void)props;
	if(!msg->topic) return;
	if(!strcmp(msg->topic, ONB_TOPIC_PROV_REQUEST)) reply = csvc_handle(l->svc, msg->payload, len);
	else if(!strcmp(msg->topic, ONB_TOPIC_CLAIM_REQUEST)) reply = csvc_handle_claim(l->svc, msg->payload, len);
	else return;
	if(!reply) return;
	/* on this link: the broker the request came through holds the device */
	ret = mosquitto_publish_v5(mosq, NULL, ONB_TOPIC_PROV_REPLY, (int)strlen(reply), reply, 0, false, NULL);
	if(ret != MOSQ_ERR_SUCCESS) {
		csvc_log(CSVC_WARNING, "cannot publish a reply on %s: %s", l->address, mosquitto_strerror(ret));
	}
	onb_prov_free(reply);
}

static void on_log(struct mosquitto *mosq, void *obj, int level, const char *str)
{
	struct csvc_link *l = obj;

	(void)mosq;
	(void)level;
	csvc_log(CSVC_DEBUG, "mqtt %s: %s", l->address, str);
}

/* ------------------------------------------------------------ one link */

int csvc_link_open(struct csvc_link *l, struct csvc *svc, const struct csvc_broker *b)
{
	const struct csvc_config *cfg = &svc->cfg;
	int ret;

	memset(l, 0, sizeof(*l));
	l->broker = *b;
	l->svc = svc;
	l->backoff_ms = BACKOFF_MIN_MS;
	l->retry_at = 0; /* connect at the next turn */
	csvc_broker_format(b, l->address, sizeof(l->address));
	l->mosq = mosquitto_new(cfg->client_id, true, l);
	if(!l->mosq){
		csvc_log(CSVC_ERROR, "cannot create the MQTT client for %s: %s", l->address, strerror(errno));
		return -1;
	}
	ret = mosquitto_int_option(l->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	/* sent as the CONNECT's Receive Maximum on every (re)connect */
	if(ret == MOSQ_ERR_SUCCESS) ret = mosquitto_int_option(l->mosq, MOSQ_OPT_RECEIVE_MAXIMUM, RECEIVE_MAX);
	if(ret == MOSQ_ERR_SUCCESS) ret = mosquitto_tls_set(l->mosq, cfg->cafile, NULL, cfg->certfile, cfg->keyfile, NULL);
	if(ret == MOSQ_ERR_SUCCESS) ret = mosquitto_tls_opts_set(l->mosq, 1, NULL, NULL);
	if(ret != MOSQ_ERR_SUCCESS){
		csvc_log(CSVC_ERROR, "MQTT setup for %s: %s", l->address, mosquitto_strerror(ret));
		mosquitto_destroy(l->mosq);
		l->mosq = NULL;
		return -1;
	}
	mosquitto_connect_v5_callback_set(l->mosq, on_connect);
	mosquitto_subscribe_v5_callback_set(l->mosq, on_subscribe);
	mosquitto_unsubscribe_v5_callback_set(l->mosq, on_unsubscribe);
	mosquitto_disconnect_v5_callback_set(l->mosq, on_disconnect);
	mosquitto_message_v5_callback_set(l->mosq, on_message);
	mosquitto_log_callback_set(l->mosq, on_log);
	return 0;
}

void csvc_link_moved(struct csvc_link *l)
{
	if(l->mosq) mosquitto_user_data_set(l->mosq, l);
}

void csvc_link_close(struct csvc_link *l)
{
	if(l->mosq) mosquitto_destroy(l->mosq);
	l->mosq = NULL;
	l->connected = l->serving = false;
}

/* The connection failed or broke: try again after the back-off, doubled
 * each time up to BACKOFF_MAX_MS, reset by the next CONNACK. One warning per
 * outage; the retries log at debug. */
static void link_down(struct csvc_link *l, int ret)
{
	if(!l->down_logged){
		csvc_log(CSVC_WARNING, "broker %s: no connection (%s); retrying with back-off up to %d ms", l->address,
				ret == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(ret), BACKOFF_MAX_MS);
		l->down_logged = true;
	}else{
		csvc_log(CSVC_DEBUG, "broker %s: %s", l->address,
				ret == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(ret));
	}
	l->connected = l->serving = false;
	l->retry_at = onb_mono_ms() + l->backoff_ms;
	l->backoff_ms = l->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : l->backoff_ms * 2;
}

static void link_connect(struct csvc_link *l)
{
	const struct csvc_config *cfg = &l->svc->cfg;
	int ret;

	l->connected = l->serving = false;
	ret = mosquitto_connect_bind_async(l->mosq, l->broker.host, l->broker.port, cfg->keepalive, NULL);
	if(ret != MOSQ_ERR_SUCCESS || mosquitto_socket(l->mosq) < 0) link_down(l, ret);
}

/* Serves one link after poll(): reads what arrived (requests are answered
 * from on_message), writes the replies it queued, keeps the keepalive.
 * While the connection is being set up, mosquitto_loop (with no wait) does
 * the handshake steps only libmosquitto knows. */
static void link_step(struct csvc_link *l, short revents)
{
	int ret = MOSQ_ERR_SUCCESS;

	if(!l->connected){
		ret = mosquitto_loop(l->mosq, 0, 1);
	}else{
		if(revents & (POLLIN | POLLHUP | POLLERR)){
			/* reads every packet already decrypted, not only one (SSL_pending) */
			ret = mosquitto_loop_read(l->mosq, 1);
		}
		/* replies queued by on_message during the read go out now */
		if(ret == MOSQ_ERR_SUCCESS && mosquitto_socket(l->mosq) >= 0 && mosquitto_want_write(l->mosq)){
			ret = mosquitto_loop_write(l->mosq, 1);
		}
		if(ret == MOSQ_ERR_SUCCESS) ret = mosquitto_loop_misc(l->mosq);
	}
	if(ret != MOSQ_ERR_SUCCESS || mosquitto_socket(l->mosq) < 0) link_down(l, ret);
}

/* ------------------------------------------------------------ the set */

int csvc_links_poll_prepare(const struct csvc_link *links, size_t n, struct pollfd *fds, int timeout_ms)
{
	int64_t now = onb_mono_ms();

	for(size_t i = 0; i < n; i++){
		const struct csvc_link *l = &links[i];
		int sock = l->mosq ? mosquitto_socket(l->mosq) : -1;

		/* poll() skips a negative fd: fds[i] stays links[i] */
		fds[i] = (struct pollfd){ sock, 0, 0 };
		if(sock >= 0){
			fds[i].events = POLLIN;
			if(!l->connected){
				if(timeout_ms > HANDSHAKE_TICK_MS) timeout_ms = HANDSHAKE_TICK_MS;
			}else if(mosquitto_want_write(l->mosq)){
				fds[i].events |= POLLOUT;
			}
		}else if(l->mosq){
			int64_t wait = l->retry_at - now;
			if(wait < timeout_ms) timeout_ms = wait < 0 ? 0 : (int)wait;
		}
	}
	return timeout_ms;
}

void csvc_links_run(struct csvc_link *links, size_t n, const struct pollfd *fds)
{
	int64_t now = onb_mono_ms();

	for(size_t i = 0; i < n; i++){
		struct csvc_link *l = &links[i];

		if(!l->mosq) continue;
		if(fds[i].fd >= 0 && mosquitto_socket(l->mosq) == fds[i].fd) link_step(l, fds[i].revents);
		else if(mosquitto_socket(l->mosq) < 0 && now >= l->retry_at) link_connect(l);
	}
}

void csvc_links_publish(struct csvc_link *links, size_t n, const char *topic, const char *payload)
{
	for(size_t i = 0; i < n; i++){
		int ret;

		if(!links[i].serving) continue;
		ret = mosquitto_publish_v5(links[i].mosq, NULL, topic, (int)strlen(payload), payload, 0, false, NULL);
		if(ret != MOSQ_ERR_SUCCESS) {
			csvc_log(CSVC_DEBUG, "cannot publish on %s: %s", links[i].address, mosquitto_strerror(ret));
		}
	}
}

void csvc_links_drain(struct csvc_link *const *set, size_t n, int ms)
{
	int64_t deadline = onb_mono_ms() + ms;
	struct pollfd fds[CSVC_BROKERS_MAX];
	bool draining[CSVC_BROKERS_MAX];

	if(n > CSVC_BROKERS_MAX) n = CSVC_BROKERS_MAX;
	/* Stop taking requests: those the broker sent before our UNSUBSCRIBE
	 * arrive before its UNSUBACK on the same connection, and are answered. */
	for(size_t i = 0; i < n; i++){
		struct csvc_link *l = set[i];

		draining[i] = false;
		if(!l->mosq || !l->serving) continue;
		if(mosquitto_unsubscribe_multiple(l->mosq, &l->unsub_mid, 2, (char *const *)shared_subs, NULL)
				== MOSQ_ERR_SUCCESS){
			draining[i] = true;
		}
	}
	for(;;){
		bool pending = false;

		for(size_t i = 0; i < n; i++){
			struct csvc_link *l = set[i];
			int sock = draining[i] ? mosquitto_socket(l->mosq) : -1;

			if(draining[i] && (sock < 0 || (l->unsubscribed && !mosquitto_want_write(l->mosq)))){
				draining[i] = false;
				sock = -1;
			}
			fds[i] = (struct pollfd){ sock, (short)(POLLIN | (sock >= 0 && mosquitto_want_write(l->mosq)
					? POLLOUT : 0)), 0 };
			pending = pending || draining[i];
		}
		if(!pending || onb_mono_ms() >= deadline) break;
		if(poll(fds, (nfds_t)n, 50) < 0 && errno != EINTR) break;
		for(size_t i = 0; i < n; i++){
			if(draining[i]) link_step(set[i], fds[i].revents);
		}
	}
	/* the replies already made have left: say goodbye (written at once,
	 * outside a callback libmosquitto writes a packet as it is queued) */
	for(size_t i = 0; i < n; i++){
		struct csvc_link *l = set[i];

		bool was_up;

		if(!l->mosq || mosquitto_socket(l->mosq) < 0) continue;
		was_up = l->connected;
		/* libmosquitto 2.0 runs on_disconnect from inside this call, once the
		 * DISCONNECT is written */
		mosquitto_disconnect_v5(l->mosq, 0, NULL);
		mosquitto_loop_write(l->mosq, 1);
		if(was_up) csvc_log(CSVC_INFO, "closed the link to %s", l->address);
		l->connected = l->serving = false;
	}
}

static bool link_is(const struct csvc_link *l, const struct csvc_broker *b)
{
	return l->broker.port == b->port && !strcmp(l->broker.host, b->host);
}

size_t csvc_links_apply(struct csvc_link *links, size_t n, struct csvc *svc,
		const struct csvc_broker *brokers, size_t nbrokers, int drain_ms)
{
	struct csvc_link *gone[CSVC_BROKERS_MAX];
	size_t ngone = 0, kept = 0;

	for(size_t i = 0; i < n; i++){
		bool listed = false;

		for(size_t j = 0; j < nbrokers && !listed; j++) listed = link_is(&links[i], &brokers[j]);
		if(!listed) gone[ngone++] = &links[i];
	}
	if(ngone > 0){
		csvc_links_drain(gone, ngone, drain_ms);
		for(size_t i = 0; i < ngone; i++){
			csvc_log(CSVC_INFO, "broker %s is no longer listed: link removed", gone[i]->address);
			csvc_link_close(gone[i]);
		}
	}
	/* the links kept stay as they are (connection, back-off), moved up */
	for(size_t i = 0; i < n; i++){
		if(!links[i].mosq) continue;
		if(kept != i){
			links[kept] = links[i];
			csvc_link_moved(&links[kept]);
		}
		kept++;
	}
	for(size_t j = 0; j < nbrokers && kept < CSVC_BROKERS_MAX; j++){
		bool known = false;

		for(size_t i = 0; i < kept && !known; i++) known = link_is(&links[i], &brokers[j]);
		if(known) continue;
		if(csvc_link_open(&links[kept], svc, &brokers[j]) == 0){
			if(n > 0) csvc_log(CSVC_INFO, "broker %s is newly listed: link added", links[kept].address);
			kept++;
		}
	}
	return kept;
}
