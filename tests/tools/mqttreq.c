/* mqttreq: one request, one answer, on one MQTT v5 connection, for tests
 * that need payloads larger than a command line (mosquitto_rr takes -m only).
 *
 * usage: mqttreq PORT CAFILE CERT KEY CLIENTID REQUEST_TOPIC PAYLOAD_FILE TIMEOUT_MS
 *                FILTER...
 * Subscribes to every FILTER, publishes PAYLOAD_FILE to REQUEST_TOPIC (QoS 1)
 * and prints "<topic> <payload>" of the first message that arrives on a topic
 * matching a FILTER (a message the broker delivers unasked, such as a
 * rotation notice, is skipped). The payload is written as it came (a CBOR
 * answer is binary); with MQTTREQ_PAYLOAD_OUT=FILE it also goes, alone, to FILE.
 * Exit 0 with an answer, 1 without one, 2 on bad usage. 127.0.0.1 only. */
#include <errno.h>
#include <stdbool.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct state {
	int subscribed;
	int answered;
	char **filters;
	int nfilters;
};

static void on_subscribe(struct mosquitto *m, void *arg, int mid, int n, const int *granted)
{
	(void)m; (void)mid; (void)n; (void)granted;
	((struct state *)arg)->subscribed = 1;
}

static void on_message(struct mosquitto *m, void *arg, const struct mosquitto_message *msg)
{
	struct state *st = arg;
	const char *out = getenv("MQTTREQ_PAYLOAD_OUT");
	bool match = false;
	FILE *f;

	(void)m;
	for(int i = 0; i < st->nfilters && !match; i++){
		if(mosquitto_topic_matches_sub(st->filters[i], msg->topic, &match) != MOSQ_ERR_SUCCESS) match = false;
	}
	if(!match || st->answered) return;
	printf("%s ", msg->topic);
	fwrite(msg->payload, 1, (size_t)msg->payloadlen, stdout);
	printf("\n");
	if(out && (f = fopen(out, "wb"))){
		fwrite(msg->payload, 1, (size_t)msg->payloadlen, f);
		fclose(f);
	}
	st->answered = 1;
}

static char *read_all(const char *path, long *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;

	if(!f) return NULL;
	if(fseek(f, 0, SEEK_END) == 0 && (*len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0){
		buf = malloc((size_t)*len + 1);
		if(buf && fread(buf, 1, (size_t)*len, f) != (size_t)*len){
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

int main(int argc, char **argv)
{
	struct state st = { 0 };
	struct mosquitto *m;
	char *end, *payload;
	long port, timeout, len = 0;

	if(argc < 10){
		fprintf(stderr, "usage: mqttreq PORT CAFILE CERT KEY CLIENTID TOPIC FILE TIMEOUT_MS FILTER...\n");
		return 2;
	}
	st.filters = argv + 9;
	st.nfilters = argc - 9;
	errno = 0;
	port = strtol(argv[1], &end, 10);
	if(errno || *end || port < 1 || port > 65535) return 2;
	timeout = strtol(argv[8], &end, 10);
	if(errno || *end || timeout < 1 || timeout > 60000) return 2;
	if(!(payload = read_all(argv[7], &len))){
		fprintf(stderr, "mqttreq: cannot read %s\n", argv[7]);
		return 2;
	}
	mosquitto_lib_init();
	m = mosquitto_new(argv[5], true, &st);
	mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	mosquitto_subscribe_callback_set(m, on_subscribe);
	mosquitto_message_callback_set(m, on_message);
	if(mosquitto_tls_set(m, argv[2], NULL, argv[3], argv[4], NULL) != MOSQ_ERR_SUCCESS
			|| mosquitto_connect(m, "127.0.0.1", (int)port, 30) != MOSQ_ERR_SUCCESS){
		fprintf(stderr, "mqttreq: cannot connect\n");
		return 1;
	}
	for(int i = 9; i < argc; i++) mosquitto_subscribe(m, NULL, argv[i], 1);
	for(long waited = 0; waited < timeout && !st.subscribed; waited += 10) mosquitto_loop(m, 10, 1);
	mosquitto_publish(m, NULL, argv[6], (int)len, payload, 1, false);
	for(long waited = 0; waited < timeout && !st.answered; waited += 10){
		if(mosquitto_loop(m, 10, 1) != MOSQ_ERR_SUCCESS) break;
	}
	mosquitto_disconnect(m);
	mosquitto_destroy(m);
	mosquitto_lib_cleanup();
	free(payload);
	return st.answered ? 0 : 1;
}
