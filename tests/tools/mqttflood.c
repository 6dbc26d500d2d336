/* mqttflood: a bounded flood of one payload from N connections sharing one
 * certificate, as an attacker holding a leaked claim certificate would send
 * it. QoS 0, as fast as the sockets take it, until COUNT messages are out or
 * SECONDS have passed, whichever comes first. 127.0.0.1 only.
 *
 * usage: mqttflood PORT CAFILE CERT KEY CLIENT_PREFIX CONNECTIONS TOPIC PAYLOAD_FILE COUNT SECONDS [SPREAD]
 * With SPREAD (seconds), the COUNT messages are spread evenly over that
 * time instead of sent at once, so that the flood lasts while something
 * else is measured.
 * Client ids are CLIENT_PREFIX0, CLIENT_PREFIX1...; with one connection,
 * CLIENT_PREFIX itself.
 * Prints "sent N in S s"; exit 0 when every connection was accepted, 1
 * otherwise, 2 on bad usage. */
#include <mosquitto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CONNS 64
#define BURST 64

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_connect(struct mosquitto *m, void *arg, int rc)
{
	(void)m;
	*(int *)arg = rc == 0 ? 1 : -1;
}

int main(int argc, char **argv)
{
	struct mosquitto *conn[MAX_CONNS] = { 0 };
	int state[MAX_CONNS] = { 0 };
	char id[128], *payload = NULL;
	long n, count, sent = 0, len = 0;
	double until, start, spread;
	FILE *f;
	int ret = 1, port;

	if((argc != 11 && argc != 12) || (n = atol(argv[6])) < 1 || n > MAX_CONNS || (count = atol(argv[9])) < 1){
		fprintf(stderr, "usage: mqttflood PORT CAFILE CERT KEY CLIENT_PREFIX CONNECTIONS(1-%d) TOPIC "
				"PAYLOAD_FILE COUNT SECONDS [SPREAD]\n", MAX_CONNS);
		return 2;
	}
	port = atoi(argv[1]);
	if(!(f = fopen(argv[8], "rb"))){
		perror(argv[8]);
		return 2;
	}
	payload = malloc(1 << 16);
	if(payload) len = (long)fread(payload, 1, 1 << 16, f);
	fclose(f);
	if(!payload) return 2;
	mosquitto_lib_init();
	for(long i = 0; i < n; i++){
		/* one connection: the prefix is the client id (a service's must be its CN) */
		if(n == 1) snprintf(id, sizeof(id), "%s", argv[5]);
		else snprintf(id, sizeof(id), "%s%ld", argv[5], i);
		conn[i] = mosquitto_new(id, true, &state[i]);
		if(!conn[i] || mosquitto_tls_set(conn[i], argv[2], NULL, argv[3], argv[4], NULL) != MOSQ_ERR_SUCCESS) goto done;
		mosquitto_connect_callback_set(conn[i], on_connect);
		if(mosquitto_connect(conn[i], "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS) goto done;
	}
	until = now_s() + 10;
	for(bool waiting = true; waiting && now_s() < until;){
		waiting = false;
		for(long i = 0; i < n; i++){
			if(state[i] == 0){
				waiting = true;
				mosquitto_loop(conn[i], 10, 1);
			}
		}
	}
	for(long i = 0; i < n; i++) if(state[i] != 1) goto done;
	start = now_s();
	until = start + atof(argv[10]);
	spread = argc == 12 ? atof(argv[11]) : 0;
	while(sent < count && now_s() < until){
		/* with a spread, no more than its share of the time allows */
		long allowed = spread > 0 ? (long)((double)count * (now_s() - start) / spread) + 1 : count;
		if(allowed > count) allowed = count;
		for(long i = 0; i < n && sent < allowed; i++){
			for(int b = 0; b < BURST && sent < allowed; b++){
				if(mosquitto_publish(conn[i], NULL, argv[7], (int)len, payload, 0, false) != MOSQ_ERR_SUCCESS) break;
				sent++;
			}
			if(mosquitto_loop(conn[i], 0, 1) != MOSQ_ERR_SUCCESS) goto done;
		}
		if(sent >= allowed && sent < count){
			struct timespec pause = { 0, 200000 }; /* 0.2 ms */
			nanosleep(&pause, NULL);
		}
	}
	/* let the last bursts leave */
	for(int k = 0; k < 50; k++) for(long i = 0; i < n; i++) mosquitto_loop(conn[i], 1, 1);
	printf("sent %ld in %.1f s\n", sent, now_s() - start);
	ret = 0;
done:
	for(long i = 0; i < n; i++) if(conn[i]) mosquitto_destroy(conn[i]);
	mosquitto_lib_cleanup();
	free(payload);
	return ret;
}
