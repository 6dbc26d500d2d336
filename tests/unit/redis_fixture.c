/* The throwaway redis-server of the unit tests (see redis_fixture.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "redis_fixture.h"

redisContext *rc;
int server_port;
static pid_t server_pid = -1;
static char server_dir[512];

/* ------------------------------------------------------------ the server */

int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0
			&& getsockname(fd, (struct sockaddr *)&sa, &len) == 0){
		port = ntohs(sa.sin_port);
	}
	if(fd >= 0) close(fd);
	return port;
}

void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

struct onb_redis_cfg test_cfg(int timeout_ms)
{
	struct onb_redis_cfg cfg;

	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
	cfg.port = server_port;
	cfg.timeout_ms = timeout_ms;
	return cfg;
}

redisContext *connect_test(void)
{
	struct onb_redis_cfg cfg = test_cfg(2000);
	struct onb_err err;
	redisContext *c = onb_redis_connect(&cfg, &err);
	if(!c) fprintf(stderr, "connect: %s\n", err.msg);
	return c;
}

static bool server_ready(void)
{
	for(int i = 0; i < 100; i++){
		struct onb_redis_cfg cfg = test_cfg(200);
		struct onb_err err;
		redisContext *c = onb_redis_connect(&cfg, &err);
		if(c){
			redisReply *r = redisCommand(c, "PING");
			bool ok = r && r->type == REDIS_REPLY_STATUS;
			if(r) freeReplyObject(r);
			redisFree(c);
			if(ok) return true;
		}
		int status;
		if(waitpid(server_pid, &status, WNOHANG) == server_pid){
			server_pid = -1;
			return false;
		}
		sleep_ms(50);
	}
	return false;
}

int redis_fixture_start(void **state)
{
	const char *tmp = getenv("ONB_TEST_TMP");
	char templ[512], port[16], log[600];

	(void)state;
	if(!tmp || !*tmp) tmp = "/tmp";
	mkdir(tmp, 0700);
	snprintf(templ, sizeof(templ), "%s/registry-XXXXXX", tmp);
	if(!mkdtemp(templ)){
		fprintf(stderr, "mkdtemp %s: %s\n", templ, strerror(errno));
		return -1;
	}
	snprintf(server_dir, sizeof(server_dir), "%s", templ);
	snprintf(log, sizeof(log), "%s/redis.log", server_dir);

	for(int attempt = 0; attempt < 5; attempt++){
		server_port = free_port();
		if(server_port <= 0) return -1;
		snprintf(port, sizeof(port), "%d", server_port);
		server_pid = fork();
		if(server_pid < 0) return -1;
		if(server_pid == 0){
			int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
			if(fd >= 0){
				dup2(fd, 1);
				dup2(fd, 2);
				close(fd);
			}
			execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
					"--save", "", "--appendonly", "no", "--daemonize", "no",
					"--dir", server_dir, (char *)NULL);
			_exit(127);
		}
		if(server_ready()) return 0;
		if(server_pid > 0){
			kill(server_pid, SIGKILL);
			waitpid(server_pid, NULL, 0);
			server_pid = -1;
		}
	}
	fprintf(stderr, "could not start redis-server (see %s)\n", log);
	return -1;
}

int redis_fixture_stop(void **state)
{
	char log[600];

	(void)state;
	if(server_pid > 0){
		kill(server_pid, SIGTERM);
		waitpid(server_pid, NULL, 0);
		server_pid = -1;
	}
	snprintf(log, sizeof(log), "%s/redis.log", server_dir);
	unlink(log);
	rmdir(server_dir);
	return 0;
}

int redis_fixture_setup(void **state)
{
	(void)state;
	rc = connect_test();
	if(!rc) return -1;
	redisReply *r = redisCommand(rc, "FLUSHALL");
	if(r) freeReplyObject(r);
	return r ? 0 : -1;
}

int redis_fixture_teardown(void **state)
{
	(void)state;
	if(rc) redisFree(rc);
	rc = NULL;
	return 0;
}

/* --------------------------------------------------------------- helpers */

long long int_cmd(const char *cmd, const char *arg)
{
	redisReply *r = arg ? redisCommand(rc, "%s %s", cmd, arg) : redisCommand(rc, "%s", cmd);
	long long v;

	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	v = r->integer;
	freeReplyObject(r);
	return v;
}

long long dbsize(void) { return int_cmd("DBSIZE", NULL); }
long long xlen(const char *key) { return int_cmd("XLEN", key); }

void newest_field(const char *stream, const char *name, char *buf, size_t len)
{
	redisReply *r = redisCommand(rc, "XREVRANGE %s + - COUNT 1", stream);

	buf[0] = '\0';
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	assert_int_equal(r->elements, 1);
	redisReply *f = r->element[0]->element[1];
	for(size_t i = 0; i + 1 < f->elements; i += 2){
		if(!strcmp(f->element[i]->str, name)){
			snprintf(buf, len, "%s", f->element[i + 1]->str);
		}
	}
	freeReplyObject(r);
}

void assert_newest(const char *stream, const char *name, const char *want)
{
	char buf[512];
	newest_field(stream, name, buf, sizeof(buf));
	assert_string_equal(buf, want);
}
