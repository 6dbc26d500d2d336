/* A real, throwaway redis-server for unit tests: started on a free loopback
 * port in a temp dir by the group setup, killed by the group teardown; each
 * test gets a fresh connection to an empty database (FLUSHALL).
 *
 *   cmocka_run_group_tests(tests, redis_fixture_start, redis_fixture_stop)
 *   cmocka_unit_test_setup_teardown(t, redis_fixture_setup, redis_fixture_teardown)
 */
#ifndef ONB_TEST_REDIS_FIXTURE_H
#define ONB_TEST_REDIS_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <hiredis/hiredis.h>

#include "registry/redis.h"

/* The connection of the running test (NULL outside a test). */
extern redisContext *rc;
/* The port of the running server. */
extern int server_port;

int redis_fixture_start(void **state);
int redis_fixture_stop(void **state);
int redis_fixture_setup(void **state);
int redis_fixture_teardown(void **state);

/* A configuration for the test server with the given command timeout. */
struct onb_redis_cfg test_cfg(int timeout_ms);
/* A new connection to the test server (2 s timeout); NULL on failure. */
redisContext *connect_test(void);

/* A free loopback TCP port (bound and released), or -1. */
int free_port(void);
void sleep_ms(int ms);

/* Integer reply of `cmd [arg]` on rc (asserts it is one). */
long long int_cmd(const char *cmd, const char *arg);
long long dbsize(void);
long long xlen(const char *key);

/* Field `name` of the newest entry of a stream, into buf ("" if absent). */
void newest_field(const char *stream, const char *name, char *buf, size_t len);
/* Asserts that field `name` of the newest entry of stream equals want. */
void assert_newest(const char *stream, const char *name, const char *want);

#endif
