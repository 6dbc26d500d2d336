/* claimsvc's configuration parser (claimsvc/config.c, csvc_config_read),
 * fed from memory; the shipped config/claimsvc.conf through csvc_config_load. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "claimsvc.h"

#define REQUIRED "cafile a\ncertfile b\nkeyfile c\ndevice_ca_cert d\ndevice_ca_key e\ntemplates_dir t\n"

/* Parses len bytes of text as a config file named "t.conf". */
static int parse(const char *text, size_t len, struct csvc_config *cfg, struct onb_err *err)
{
	FILE *f = fmemopen((void *)text, len, "r");
	int rc;

	assert_non_null(f);
	rc = csvc_config_read(f, "t.conf", cfg, err);
	fclose(f);
	return rc;
}

static void minimal_and_values(void **state)
{
	static const char text[] = REQUIRED "broker_port 1883\r\n  keepalive\t60 \n# comment\n\nlog_level debug";
	struct csvc_config cfg;
	struct onb_err err;

	(void)state;
	assert_int_equal(parse(text, sizeof(text) - 1, &cfg, &err), ONB_OK);
	assert_string_equal(cfg.cafile, "a");
	assert_string_equal(cfg.templates_dir, "t");
	assert_int_equal(cfg.broker_port, 1883);
	assert_int_equal(cfg.keepalive, 60);
	assert_int_equal(cfg.log_level, CSVC_DEBUG);
	assert_int_equal(cfg.token_ttl, 3600);   /* default */
	assert_false(cfg.reply_chain);           /* default: the certificate alone (docs/provisioning.md) */
}

/* reply_chain: the device CA after the certificate in certificatePem, opt-in. */
static void reply_chain_option(void **state)
{
	static const char on[] = REQUIRED "reply_chain true\n";
	static const char off[] = REQUIRED "reply_chain false\n";
	static const char bad[] = REQUIRED "reply_chain yes-please\n";
	static const char twice[] = REQUIRED "reply_chain true\nreply_chain true\n";
	struct csvc_config cfg;
	struct onb_err err;

	(void)state;
	assert_int_equal(parse(on, sizeof(on) - 1, &cfg, &err), ONB_OK);
	assert_true(cfg.reply_chain);
	assert_int_equal(parse(off, sizeof(off) - 1, &cfg, &err), ONB_OK);
	assert_false(cfg.reply_chain);
	assert_int_equal(parse(bad, sizeof(bad) - 1, &cfg, &err), ONB_EINVAL);
	assert_int_equal(parse(twice, sizeof(twice) - 1, &cfg, &err), ONB_EINVAL);
}

/* Regression (fuzz_config): a NUL on the last line, with no newline after
 * it, used to end the line there without a word, so "log_level debug\0junk"
 * read as "log_level debug" and a NUL-only last line as a blank one. */
static void nul_on_last_line_refused(void **state)
{
	static const char cut[] = REQUIRED "log_level debug\0junk";
	static const char blank[] = REQUIRED "\0\1";
	struct csvc_config cfg;
	struct onb_err err;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(parse(cut, sizeof(cut) - 1, &cfg, &err), ONB_EINVAL);
	assert_string_equal(err.msg, "t.conf:7: NUL byte");
	assert_string_equal(cfg.cafile, "");    /* nothing written on failure */
	assert_int_equal(parse(blank, sizeof(blank) - 1, &cfg, &err), ONB_EINVAL);
	assert_string_equal(err.msg, "t.conf:7: NUL byte");
}

/* A NUL inside an earlier line is named as such, not as an overlong line. */
static void nul_inside_line_named(void **state)
{
	static const char text[] = "cafile a\0b\n" REQUIRED;
	struct csvc_config cfg;
	struct onb_err err;

	(void)state;
	assert_int_equal(parse(text, sizeof(text) - 1, &cfg, &err), ONB_EINVAL);
	assert_string_equal(err.msg, "t.conf:1: NUL byte");
}

static void long_lines(void **state)
{
	size_t cap = strlen(REQUIRED) + 4200;
	char *text = malloc(cap);
	struct csvc_config cfg;
	struct onb_err err;
	size_t n;

	(void)state;
	assert_non_null(text);
	/* 4096 bytes before the newline is the longest line */
	n = (size_t)snprintf(text, cap, "%s#", REQUIRED);
	memset(text + n, 'x', 4095);
	text[n + 4095] = '\n';
	assert_int_equal(parse(text, n + 4096, &cfg, &err), ONB_OK);
	memset(text + n, 'x', 4096);
	text[n + 4096] = '\n';
	assert_int_equal(parse(text, n + 4097, &cfg, &err), ONB_EINVAL);
	assert_string_equal(err.msg, "t.conf:7: line longer than 4096 bytes");
	free(text);
}

static void shipped_example(void **state)
{
	char path[1024];
	const char *src = getenv("ONB_SOURCE_DIR");
	struct csvc_config cfg;
	struct onb_err err;

	(void)state;
	assert_non_null(src);
	snprintf(path, sizeof(path), "%s/config/claimsvc.conf", src);
	assert_int_equal(csvc_config_load(path, &cfg, &err), ONB_OK);
	assert_string_equal(cfg.device_ca_cert, "/etc/mosquitto-onboard/pki/device-ca.pem");
	assert_int_equal(cfg.broker_port, 8883);
	assert_int_equal(csvc_config_load("/nonexistent/claimsvc.conf", &cfg, &err), ONB_EUNAVAIL);
}

/* http_listen: numeric addresses only, a port in range, or off. */
static void http_listen(void **state)
{
	static const char *const good[] = { "127.0.0.1:9884", "0.0.0.0:1", "[::1]:65535", "[::]:9884", "off" };
	static const char *const bad[] = { "localhost:80", "127.0.0.1:0", "127.0.0.1", "[::1]80", "[::1:80",
		"1.2.3.4:65536", "1.2.3.4:-1", "1.2.3.4: 80", ":80", "[]:80", "::1:80", "256.1.1.1:80",
		"1.2.3.4:80x", "" };
	struct csvc_listen l;
	struct csvc_config cfg;
	struct onb_err err;

	(void)state;
	for(size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++){
		assert_int_equal(csvc_listen_parse(good[i], &l, &err), ONB_OK);
		assert_string_equal(l.text, good[i]);
	}
	assert_int_equal(csvc_listen_parse("[::1]:443", &l, &err), ONB_OK);
	assert_true(l.enabled);
	assert_int_equal(l.port, 443);
	assert_int_equal(l.addr[15], 1);
	assert_int_equal(csvc_listen_parse("off", &l, &err), ONB_OK);
	assert_false(l.enabled);
	for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++){
		assert_int_not_equal(csvc_listen_parse(bad[i], &l, &err), ONB_OK);
	}
	/* the default, and the key in a file */
	assert_int_equal(parse(REQUIRED, sizeof(REQUIRED) - 1, &cfg, &err), ONB_OK);
	assert_false(cfg.http_listen.enabled);
	assert_string_equal(cfg.http_listen.text, "off");
	{
		static const char text[] = REQUIRED "http_listen off\n";
		assert_int_equal(parse(text, sizeof(text) - 1, &cfg, &err), ONB_OK);
		assert_false(cfg.http_listen.enabled);
	}
	{
		static const char text[] = REQUIRED "http_listen example.com:80\n";
		assert_int_not_equal(parse(text, sizeof(text) - 1, &cfg, &err), ONB_OK);
		assert_non_null(strstr(err.msg, "http_listen"));
	}
}

/* "broker HOST:PORT" lines (issue 16): repeatable, in file order; the
 * one-broker form broker_host + broker_port still works, and both forms in
 * one file are refused. */
static void broker_list(void **state)
{
	static const char *const good[] = { "127.0.0.1:8883", "broker-2.example.com:1", "[::1]:65535",
		"[fe80::1]:8883", "b_3:1883" };
	static const char *const bad[] = { "127.0.0.1", ":8883", "host:", "host:0", "host:65536", "host:8883x",
		"ho st:8883", "host/x:8883", "[::1]8883", "[::1:8883", "[]:8883", "[::g]:8883", "::1:8883",
		"host:-1", "" };
	static const char three[] = REQUIRED "broker 127.0.0.1:1884\nbroker [::1]:1885\nbroker b.example:1886\n";
	static const char one[] = REQUIRED "broker_host 10.0.0.7\nbroker_port 1999\n";
	static const char mixed[] = REQUIRED "broker 127.0.0.1:1884\nbroker_port 1885\n";
	static const char mixed_host[] = REQUIRED "broker_host 127.0.0.1\nbroker 127.0.0.1:1884\n";
	static const char twice[] = REQUIRED "broker 127.0.0.1:1884\nbroker 127.0.0.1:1885\nbroker 127.0.0.1:1884\n";
	static const char badline[] = REQUIRED "broker 127.0.0.1:1884\nbroker 127.0.0.1\n";
	struct csvc_broker b;
	struct csvc_config cfg;
	struct onb_err err;
	char text[64 * (CSVC_BROKERS_MAX + 2) + sizeof(REQUIRED)], addr[300];
	size_t n;

	(void)state;
	for(size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++){
		assert_int_equal(csvc_broker_parse(good[i], &b, &err), ONB_OK);
		csvc_broker_format(&b, addr, sizeof(addr));
		assert_string_equal(addr, good[i]);  /* shown as written */
	}
	assert_int_equal(csvc_broker_parse("[::1]:8883", &b, &err), ONB_OK);
	assert_string_equal(b.host, "::1");      /* libmosquitto gets it without brackets */
	assert_int_equal(b.port, 8883);
	for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++){
		assert_int_not_equal(csvc_broker_parse(bad[i], &b, &err), ONB_OK);
	}

	assert_int_equal(parse(three, sizeof(three) - 1, &cfg, &err), ONB_OK);
	assert_int_equal(cfg.nbrokers, 3);
	assert_string_equal(cfg.brokers[0].host, "127.0.0.1");
	assert_int_equal(cfg.brokers[0].port, 1884);
	assert_string_equal(cfg.brokers[1].host, "::1");
	assert_string_equal(cfg.brokers[2].host, "b.example");
	assert_int_equal(cfg.brokers[2].port, 1886);

	/* the one-broker form, and its defaults when nothing is said */
	assert_int_equal(parse(one, sizeof(one) - 1, &cfg, &err), ONB_OK);
	assert_int_equal(cfg.nbrokers, 1);
	assert_string_equal(cfg.brokers[0].host, "10.0.0.7");
	assert_int_equal(cfg.brokers[0].port, 1999);
	assert_int_equal(parse(REQUIRED, sizeof(REQUIRED) - 1, &cfg, &err), ONB_OK);
	assert_int_equal(cfg.nbrokers, 1);
	assert_string_equal(cfg.brokers[0].host, "127.0.0.1");
	assert_int_equal(cfg.brokers[0].port, 8883);

	assert_int_equal(parse(mixed, sizeof(mixed) - 1, &cfg, &err), ONB_EINVAL);
	assert_non_null(strstr(err.msg, "broker lines and broker_host/broker_port"));
	assert_int_equal(parse(mixed_host, sizeof(mixed_host) - 1, &cfg, &err), ONB_EINVAL);
	assert_non_null(strstr(err.msg, "broker lines and broker_host/broker_port"));
	assert_int_equal(parse(twice, sizeof(twice) - 1, &cfg, &err), ONB_EINVAL);
	assert_string_equal(err.msg, "t.conf:9: broker 127.0.0.1:1884 is listed twice");
	assert_int_equal(parse(badline, sizeof(badline) - 1, &cfg, &err), ONB_EINVAL);
	assert_string_equal(err.msg, "t.conf:8: broker: expected HOST:PORT");

	/* at most CSVC_BROKERS_MAX lines */
	n = (size_t)snprintf(text, sizeof(text), "%s", REQUIRED);
	for(int i = 0; i < CSVC_BROKERS_MAX; i++) n += (size_t)snprintf(text + n, sizeof(text) - n, "broker h:%d\n", 1000 + i);
	assert_int_equal(parse(text, n, &cfg, &err), ONB_OK);
	assert_int_equal(cfg.nbrokers, CSVC_BROKERS_MAX);
	n += (size_t)snprintf(text + n, sizeof(text) - n, "broker h:999\n");
	assert_int_equal(parse(text, n, &cfg, &err), ONB_EINVAL);
	assert_non_null(strstr(err.msg, "more than"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(minimal_and_values),
		cmocka_unit_test(reply_chain_option),
		cmocka_unit_test(nul_on_last_line_refused),
		cmocka_unit_test(nul_inside_line_named),
		cmocka_unit_test(long_lines),
		cmocka_unit_test(shipped_example),
		cmocka_unit_test(http_listen),
		cmocka_unit_test(broker_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
