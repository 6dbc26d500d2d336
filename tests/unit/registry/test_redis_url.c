/* Production Redis connections (lib/registry/redis.c): the redis-sentinel:// URL, and
 * onb_redis_connect against a real redis-sentinel (discovery, list order,
 * unknown master, a "master" that ROLE says is a replica), a server that is
 * no sentinel, and an ACL user. (redis:// and unix:// parsing: test_registry.c.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "registry/redis.h"
#include "redis_fixture.h"

/* ------------------------------------------------------------ URL parsing */

static void sentinel_url_good(void **state)
{
	struct onb_redis_cfg cfg;
	struct onb_err err;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.timeout_ms = 33;
	assert_int_equal(onb_redis_parse_url("redis-sentinel://127.0.0.1:26380,sent-2.example,[::1]:7/mymaster",
			&cfg, &err), ONB_OK);
	assert_string_equal(cfg.master_name, "mymaster");
	assert_int_equal(cfg.nsentinels, 3);
	assert_string_equal(cfg.sentinel[0].host, "127.0.0.1");
	assert_int_equal(cfg.sentinel[0].port, 26380);
	assert_string_equal(cfg.sentinel[1].host, "sent-2.example");
	assert_int_equal(cfg.sentinel[1].port, ONB_REDIS_SENTINEL_PORT);
	assert_string_equal(cfg.sentinel[2].host, "::1");
	assert_int_equal(cfg.sentinel[2].port, 7);
	assert_int_equal(cfg.db, 0);
	assert_string_equal(cfg.host, "");
	assert_string_equal(cfg.unix_path, "");
	assert_string_equal(cfg.user, "");
	assert_int_equal(cfg.timeout_ms, 33);

	assert_int_equal(onb_redis_parse_url("redis-sentinel://onb:s3:cr/et@h/m.a_s-t3r?db=15", &cfg, &err), ONB_OK);
	assert_string_equal(cfg.user, "onb");
	assert_string_equal(cfg.password, "s3:cr/et");
	assert_int_equal(cfg.nsentinels, 1);
	assert_string_equal(cfg.sentinel[0].host, "h");
	assert_string_equal(cfg.master_name, "m.a_s-t3r");
	assert_int_equal(cfg.db, 15);

	/* eight sentinels is the limit */
	assert_int_equal(onb_redis_parse_url("redis-sentinel://a,b,c,d,e,f,g,h/m", &cfg, &err), ONB_OK);
	assert_int_equal(cfg.nsentinels, ONB_REDIS_SENTINELS_MAX);
	assert_string_equal(cfg.sentinel[7].host, "h");

	/* switching back to a plain URL clears the Sentinel fields */
	assert_int_equal(onb_redis_parse_url("redis://h:1/2", &cfg, &err), ONB_OK);
	assert_string_equal(cfg.master_name, "");
	assert_int_equal(cfg.nsentinels, 0);
	assert_string_equal(cfg.user, "");
	assert_int_equal(cfg.timeout_ms, 33);
}

static void sentinel_url_bad(void **state)
{
	static const char *const bad[] = {
		"redis-sentinel://", "redis-sentinel://h", "redis-sentinel://h/", "redis-sentinel:///m",
		"redis-sentinel://h,/m", "redis-sentinel://,h/m", "redis-sentinel://h:0/m",
		"redis-sentinel://h:70000/m", "redis-sentinel://h:x/m", "redis-sentinel://a,b,c,d,e,f,g,h,i/m",
		"redis-sentinel://h/m/1", "redis-sentinel://h/m?db=16", "redis-sentinel://h/m?x=1",
		"redis-sentinel://h/m?db=1&x=2", "redis-sentinel://h/m x", "redis-sentinel://h/m%20",
		"redis-sentinel://h/m#", "redis-sentinel://h/m{x}", "redis-sentinel://user@h/m",
		"redis-sentinel://h/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"redis-sentinel://[::1/m", "redis-sentinel://h;x/m", "rediss-sentinel://h/m",
		"sentinel://h/m",
	};
	struct onb_redis_cfg cfg;
	struct onb_err err;

	(void)state;
	for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++){
		memset(&cfg, 0x5a, sizeof(cfg));
		err.msg[0] = '\0';
		if(onb_redis_parse_url(bad[i], &cfg, &err) != ONB_EINVAL) fail_msg("accepted bad URL '%s'", bad[i]);
		assert_true(strlen(err.msg) > 0);
		assert_int_equal((unsigned char)cfg.master_name[0], 0x5a);
	}
	assert_int_equal(onb_redis_parse_url("redis-sentinel://:hunter2@h:0/m", &cfg, &err), ONB_EINVAL);
	assert_null(strstr(err.msg, "hunter2"));
}

/* ---------------------------------------------- a real sentinel and replica */

static pid_t sentinel_pid = -1, replica_pid = -1;
static int sentinel_port, replica_port;
static char dir[512];

static pid_t spawn(char *const argv[], const char *log)
{
	pid_t pid = fork();

	if(pid == 0){
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if(fd >= 0){
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static redisContext *plain(int port)
{
	struct onb_redis_cfg cfg = test_cfg(300);
	cfg.port = port;
	return onb_redis_connect(&cfg, NULL);
}

/* Sends a command built from printf-style args to port; true on a non-error reply. */
static bool cmd_ok(int port, const char *fmt, ...)
{
	redisContext *c = plain(port);
	redisReply *r = NULL;
	va_list ap;
	bool ok;

	if(!c) return false;
	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	ok = r && r->type != REDIS_REPLY_ERROR;
	if(r) freeReplyObject(r);
	redisFree(c);
	return ok;
}

/* True when `INFO replication` of port contains want. */
static bool info_has(int port, const char *want)
{
	redisContext *c = plain(port);
	redisReply *r = c ? redisCommand(c, "INFO replication") : NULL;
	bool ok = r && r->type == REDIS_REPLY_STRING && strstr(r->str, want);

	if(r) freeReplyObject(r);
	if(c) redisFree(c);
	return ok;
}

static int group_start(void **state)
{
	const char *tmp = getenv("ONB_TEST_TMP");
	char conf[600], log[600], sport[16], rport[16], mport[16];
	FILE *f;

	if(redis_fixture_start(state) != 0) return -1;
	snprintf(dir, sizeof(dir), "%s/sentinel-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if(!mkdtemp(dir)) return -1;
	sentinel_port = free_port();
	replica_port = free_port();
	snprintf(sport, sizeof(sport), "%d", sentinel_port);
	snprintf(rport, sizeof(rport), "%d", replica_port);
	snprintf(mport, sizeof(mport), "%d", server_port);

	/* a replica of the fixture's server (which otherwise waits 5 s for more
	 * replicas before a diskless sync) */
	if(!cmd_ok(server_port, "CONFIG SET repl-diskless-sync-delay 0")) return -1;
	snprintf(log, sizeof(log), "%s/replica.log", dir);
	{
		char *argv[] = { "redis-server", "--port", rport, "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "no", "--dir", dir, "--replicaof", "127.0.0.1", mport, NULL };
		replica_pid = spawn(argv, log);
	}
	/* one sentinel watching it as "onbtest" */
	snprintf(conf, sizeof(conf), "%s/sentinel.conf", dir);
	f = fopen(conf, "w");
	if(!f) return -1;
	fprintf(f, "port %d\nbind 127.0.0.1\ndir %s\n"
			"sentinel monitor onbtest 127.0.0.1 %d 1\n"
			"sentinel down-after-milliseconds onbtest 60000\n", sentinel_port, dir, server_port);
	fclose(f);
	snprintf(log, sizeof(log), "%s/sentinel.log", dir);
	{
		char *argv[] = { "redis-server", conf, "--sentinel", NULL };
		sentinel_pid = spawn(argv, log);
	}
	for(int i = 0; i < 100; i++){
		if(cmd_ok(sentinel_port, "PING") && info_has(replica_port, "master_link_status:up")) return 0;
		sleep_ms(50);
	}
	fprintf(stderr, "sentinel or replica did not start (see %s)\n", dir);
	return -1;
}

static void stop(pid_t *pid)
{
	if(*pid > 0){
		kill(*pid, SIGTERM);
		waitpid(*pid, NULL, 0);
		*pid = -1;
	}
}

static int group_stop(void **state)
{
	char cmd[600];

	stop(&sentinel_pid);
	stop(&replica_pid);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if(dir[0] && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
	return redis_fixture_stop(state);
}

static struct onb_redis_cfg sentinel_cfg(const char *name)
{
	struct onb_redis_cfg cfg = test_cfg(500);

	cfg.host[0] = '\0';
	cfg.port = 0;
	snprintf(cfg.master_name, sizeof(cfg.master_name), "%s", name);
	cfg.nsentinels = 1;
	snprintf(cfg.sentinel[0].host, sizeof(cfg.sentinel[0].host), "127.0.0.1");
	cfg.sentinel[0].port = sentinel_port;
	return cfg;
}

/* The connection's server port, from CLIENT INFO's laddr. */
static int server_port_of(redisContext *c)
{
	redisReply *r = redisCommand(c, "CLIENT INFO");
	const char *p;
	int port = -1;

	if(r && r->type == REDIS_REPLY_STRING && (p = strstr(r->str, "laddr=127.0.0.1:")) != NULL){
		port = (int)strtol(p + 16, NULL, 10);
	}
	if(r) freeReplyObject(r);
	return port;
}

static void sentinel_finds_master(void **state)
{
	struct onb_redis_cfg cfg = sentinel_cfg("onbtest");
	struct onb_err err;
	redisContext *c;
	redisReply *r;

	(void)state;
	cfg.db = 3;
	c = onb_redis_connect(&cfg, &err);
	if(!c) fail_msg("%s", err.msg);
	assert_int_equal(server_port_of(c), server_port);
	r = redisCommand(c, "CLIENT INFO");
	assert_non_null(strstr(r->str, " db=3 "));
	freeReplyObject(r);
	redisFree(c);

	/* a dead sentinel first in the list: the next one answers */
	cfg.nsentinels = 2;
	cfg.sentinel[1] = cfg.sentinel[0];
	cfg.sentinel[0].port = free_port();
	c = onb_redis_connect(&cfg, &err);
	if(!c) fail_msg("%s", err.msg);
	assert_int_equal(server_port_of(c), server_port);
	redisFree(c);
}

static void sentinel_failures_fail_closed(void **state)
{
	struct onb_redis_cfg cfg = sentinel_cfg("nosuchmaster");
	struct onb_err err;
	char port[16];

	(void)state;
	assert_null(onb_redis_connect(&cfg, &err));
	assert_non_null(strstr(err.msg, "does not know master nosuchmaster"));

	/* every sentinel dead */
	cfg = sentinel_cfg("onbtest");
	cfg.sentinel[0].port = free_port();
	assert_null(onb_redis_connect(&cfg, &err));
	assert_non_null(strstr(err.msg, "no sentinel named the master"));

	/* a plain Redis is no sentinel */
	cfg = sentinel_cfg("onbtest");
	cfg.sentinel[0].port = server_port;
	assert_null(onb_redis_connect(&cfg, &err));
	assert_non_null(strstr(err.msg, "refused"));

	/* a sentinel whose "master" is a replica (a stale answer during a
	 * failover looks like this): ROLE refuses it */
	snprintf(port, sizeof(port), "%d", replica_port);
	assert_true(cmd_ok(sentinel_port, "SENTINEL MONITOR onbstale 127.0.0.1 %s 1", port));
	cfg = sentinel_cfg("onbstale");
	assert_null(onb_redis_connect(&cfg, &err));
	assert_non_null(strstr(err.msg, "not the master"));
	assert_true(cmd_ok(sentinel_port, "SENTINEL REMOVE onbstale"));
}

/* An ACL user limited to the registry's keys and commands (docs/operations.md)
 * authenticates through Sentinel; ROLE needs +role, and without it the
 * connect fails closed with a hint. */
static void sentinel_with_acl_user(void **state)
{
	struct onb_redis_cfg cfg = sentinel_cfg("onbtest");
	struct onb_err err;
	redisContext *c;
	redisReply *r;

	(void)state;
	assert_true(cmd_ok(server_port, "ACL SETUSER onbt on >pw resetkeys ~onb:* -@all +get +role +select"));
	snprintf(cfg.user, sizeof(cfg.user), "onbt");
	snprintf(cfg.password, sizeof(cfg.password), "pw");
	c = onb_redis_connect(&cfg, &err);
	if(!c) fail_msg("%s", err.msg);
	r = redisCommand(c, "GET other:key");
	assert_int_equal(r->type, REDIS_REPLY_ERROR); /* NOPERM: outside ~onb:* */
	freeReplyObject(r);
	redisFree(c);

	assert_true(cmd_ok(server_port, "ACL SETUSER onbt -role"));
	assert_null(onb_redis_connect(&cfg, &err));
	assert_non_null(strstr(err.msg, "+role"));

	snprintf(cfg.password, sizeof(cfg.password), "wrong-secret");
	assert_null(onb_redis_connect(&cfg, &err));
	assert_non_null(strstr(err.msg, "AUTH"));
	assert_null(strstr(err.msg, "wrong-secret"));
	assert_true(cmd_ok(server_port, "ACL DELUSER onbt"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sentinel_url_good),
		cmocka_unit_test(sentinel_url_bad),
		cmocka_unit_test(sentinel_finds_master),
		cmocka_unit_test(sentinel_failures_fail_closed),
		cmocka_unit_test(sentinel_with_acl_user),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_start, group_stop);
}
