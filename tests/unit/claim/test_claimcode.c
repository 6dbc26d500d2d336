/* Claim codes (lib/claim/claimcode.c): generation, the check symbol, forgiving
 * parsing, typo detection, the claim URI and the stored hash. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "claim/claimcode.h"

/* --------------------------------------------------------------- helpers */

static void gen(char code[ONB_CC_SYMBOLS + 1])
{
	struct onb_err err;
	if(onb_claimcode_generate(code, &err) != ONB_OK) fail_msg("generate: %s", err.msg);
}

static int value_of(char c)
{
	const char *p = strchr(onb_cc_alphabet, c);
	assert_non_null(p);
	return (int)(p - onb_cc_alphabet);
}

/* GF(32) product by schoolbook carry-less multiplication and reduction by
 * x^5 + x^2 + 1: independent of the library's shift-and-reduce. */
static unsigned gf_mul(unsigned a, unsigned b)
{
	unsigned p = 0;
	for(int i = 0; i < 5; i++){
		if(b & (1u << i)) p ^= a << i;
	}
	for(int bit = 9; bit >= 5; bit--){
		if(p & (1u << bit)) p ^= 0x25u << (bit - 5);
	}
	return p;
}

/* True when the weighted sum over all 24 symbols is zero (docs/claiming.md). */
static bool sum_is_zero(const char *canon)
{
	unsigned sum = 0;
	for(int i = 0; i < ONB_CC_SYMBOLS; i++){
		unsigned w = 1;
		for(int k = 0; k < ONB_CC_SYMBOLS - 1 - i; k++) w = gf_mul(w, 2);
		sum ^= gf_mul(w, (unsigned)value_of(canon[i]));
	}
	return sum == 0;
}

/* Expands a template: "%s" becomes code, "%%" a '%' (a printf format that
 * is not a literal would not pass -Wformat-nonliteral). */
static void expand(const char *tmpl, const char *code, char *out, size_t cap)
{
	size_t o = 0;

	for(const char *p = tmpl; *p && o + 1 < cap; p++){
		if(p[0] == '%' && p[1] == 's'){
			size_t n = strlen(code);
			if(o + n + 1 > cap) break;
			memcpy(out + o, code, n);
			o += n;
			p++;
		}else if(p[0] == '%' && p[1] == '%'){
			out[o++] = '%';
			p++;
		}else{
			out[o++] = *p;
		}
	}
	out[o] = '\0';
}

static int parse(const char *text, char out[ONB_CC_SYMBOLS + 1], struct onb_err *err)
{
	memset(err, 0, sizeof(*err));
	return onb_claimcode_parse(text, out, err);
}

/* ------------------------------------------------------------- generation */

static void generation_shape(void **state)
{
	enum { N = 4000 };
	static char codes[N][ONB_CC_SYMBOLS + 1];
	static int ones[ONB_CC_BITS];
	static int per_symbol[ONB_CC_DATA_SYMBOLS][32];
	(void)state;

	for(int i = 0; i < N; i++){
		gen(codes[i]);
		assert_int_equal(strlen(codes[i]), ONB_CC_SYMBOLS);
		assert_true(onb_claimcode_valid(codes[i]));
		assert_true(sum_is_zero(codes[i]));
		for(int s = 0; s < ONB_CC_DATA_SYMBOLS; s++){
			int v = value_of(codes[i][s]);
			per_symbol[s][v]++;
			for(int b = 0; b < 5; b++) ones[s * 5 + b] += (v >> (4 - b)) & 1;
		}
	}
	/* every data bit is a fair coin: 4000 draws, 50% +- 5% (> 6 sigma) */
	for(int b = 0; b < ONB_CC_BITS; b++){
		if(ones[b] < N * 45 / 100 || ones[b] > N * 55 / 100) fail_msg("bit %d set %d of %d times", b, ones[b], N);
	}
	/* every symbol appears at every data position (expected 125 each) */
	for(int s = 0; s < ONB_CC_DATA_SYMBOLS; s++){
		for(int v = 0; v < 32; v++){
			if(per_symbol[s][v] < 60) fail_msg("symbol %c at %d only %d times", onb_cc_alphabet[v], s, per_symbol[s][v]);
		}
	}
	/* no repeats */
	qsort(codes, N, sizeof(codes[0]), (int (*)(const void *, const void *))strcmp);
	for(int i = 1; i < N; i++) assert_string_not_equal(codes[i - 1], codes[i]);
}

static void check_symbol_math(void **state)
{
	unsigned char v[ONB_CC_DATA_SYMBOLS];
	(void)state;

	/* all zero: check zero; a single 1 at the end: check x */
	memset(v, 0, sizeof(v));
	assert_int_equal(onb_claimcode_check_value(v, sizeof(v)), 0);
	v[ONB_CC_DATA_SYMBOLS - 1] = 1;
	assert_int_equal(onb_claimcode_check_value(v, sizeof(v)), 2);
	/* random inputs against the independent weighted sum */
	for(int t = 0; t < 1000; t++){
		char code[ONB_CC_SYMBOLS + 1];
		gen(code);
		for(int i = 0; i < ONB_CC_DATA_SYMBOLS; i++) v[i] = (unsigned char)value_of(code[i]);
		assert_int_equal(onb_claimcode_check_value(v, sizeof(v)), value_of(code[ONB_CC_DATA_SYMBOLS]));
	}
}

/* ---------------------------------------------------------------- parsing */

static void human_round_trip(void **state)
{
	char code[ONB_CC_SYMBOLS + 1], human[ONB_CC_HUMAN_LEN + 1], back[ONB_CC_SYMBOLS + 1];
	struct onb_err err;
	(void)state;

	for(int t = 0; t < 200; t++){
		gen(code);
		onb_claimcode_human(code, human);
		assert_int_equal(strlen(human), ONB_CC_HUMAN_LEN);
		for(int i = 0; i < ONB_CC_HUMAN_LEN; i++) assert_true((i % 5 == 4) == (human[i] == '-'));
		assert_int_equal(parse(human, back, &err), ONB_OK);
		assert_string_equal(back, code);
		assert_int_equal(parse(code, back, &err), ONB_OK);
		assert_string_equal(back, code);
	}
}

static void crockford_aliases(void **state)
{
	char code[ONB_CC_SYMBOLS + 1], in[128], back[ONB_CC_SYMBOLS + 1];
	struct onb_err err;
	bool saw_one = false, saw_zero = false;
	(void)state;

	for(int t = 0; t < 200; t++){
		size_t o = 0;
		gen(code);
		/* lower case, I/i/L/l for 1, O/o for 0, blanks, tabs and stray dashes */
		for(int i = 0; i < ONB_CC_SYMBOLS; i++){
			char c = code[i];
			if(c == '1'){
				c = "IiLl"[i % 4];
				saw_one = true;
			}else if(c == '0'){
				c = "Oo"[i % 2];
				saw_zero = true;
			}else if(c >= 'A' && c <= 'Z' && i % 2){
				c = (char)(c - 'A' + 'a');
			}
			if(i % 3 == 0) in[o++] = i % 2 ? '\t' : ' ';
			if(i % 7 == 0) in[o++] = '-';
			in[o++] = c;
		}
		in[o++] = ' ';
		in[o] = '\0';
		assert_int_equal(parse(in, back, &err), ONB_OK);
		assert_string_equal(back, code);
	}
	assert_true(saw_one && saw_zero);
}

static void every_substitution_detected(void **state)
{
	(void)state;
	for(int t = 0; t < 100; t++){
		char code[ONB_CC_SYMBOLS + 1], typo[ONB_CC_SYMBOLS + 1], back[ONB_CC_SYMBOLS + 1];
		struct onb_err err;

		gen(code);
		for(int i = 0; i < ONB_CC_SYMBOLS; i++){
			for(int v = 0; v < 32; v++){
				if(onb_cc_alphabet[v] == code[i]) continue;
				memcpy(typo, code, sizeof(typo));
				typo[i] = onb_cc_alphabet[v];
				assert_false(onb_claimcode_valid(typo));
				assert_int_equal(parse(typo, back, &err), ONB_EINVAL);
				assert_non_null(strstr(err.msg, "typo"));
			}
		}
	}
}

static void every_adjacent_swap_detected(void **state)
{
	int swaps = 0;
	(void)state;

	for(int t = 0; t < 500; t++){
		char code[ONB_CC_SYMBOLS + 1], typo[ONB_CC_SYMBOLS + 1], back[ONB_CC_SYMBOLS + 1];
		struct onb_err err;

		gen(code);
		for(int i = 0; i + 1 < ONB_CC_SYMBOLS; i++){
			if(code[i] == code[i + 1]) continue;
			memcpy(typo, code, sizeof(typo));
			typo[i] = code[i + 1];
			typo[i + 1] = code[i];
			assert_int_equal(parse(typo, back, &err), ONB_EINVAL);
			swaps++;
		}
	}
	/* and exhaustively over the symbol pairs at every position of one code */
	for(int i = 0; i + 1 < ONB_CC_SYMBOLS; i++){
		for(int u = 0; u < 32; u++){
			for(int w = 0; w < 32; w++){
				unsigned char v[ONB_CC_SYMBOLS] = { 0 }, s[ONB_CC_SYMBOLS];
				/* at i = 22 the second symbol is the check symbol itself */
				if(i + 1 == ONB_CC_DATA_SYMBOLS && w) break;
				v[i] = (unsigned char)u;
				v[i + 1] = (unsigned char)w;
				v[ONB_CC_DATA_SYMBOLS] = (unsigned char)onb_claimcode_check_value(v, ONB_CC_DATA_SYMBOLS);
				if(v[i] == v[i + 1]) continue;
				memcpy(s, v, sizeof(s));
				s[i] = v[i + 1];
				s[i + 1] = v[i];
				/* the swapped word fails the check (i+1 may be the check symbol) */
				assert_int_not_equal(onb_claimcode_check_value(s, ONB_CC_DATA_SYMBOLS), s[ONB_CC_DATA_SYMBOLS]);
				swaps++;
			}
		}
	}
	assert_true(swaps > 20000);
}

static void malformed_codes(void **state)
{
	char code[ONB_CC_SYMBOLS + 1], in[600], back[ONB_CC_SYMBOLS + 1];
	struct onb_err err;
	(void)state;

	gen(code);
	assert_int_equal(parse("", back, &err), ONB_EINVAL);
	assert_int_equal(parse(NULL, back, &err), ONB_EINVAL);
	/* one symbol short, one too many */
	snprintf(in, sizeof(in), "%.23s", code);
	assert_int_equal(parse(in, back, &err), ONB_EINVAL);
	assert_non_null(strstr(err.msg, "23 symbols"));
	snprintf(in, sizeof(in), "%s0", code);
	assert_int_equal(parse(in, back, &err), ONB_EINVAL);
	/* characters outside the alphabet: U, punctuation, non-ASCII, NUL-free */
	static const char *const bad[] = { "U", "u", "*", "~", "$", "=", "_", ".", "\xc3\xa9", "/", "+", "%" };
	for(size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++){
		snprintf(in, sizeof(in), "%.10s%s%s", code, bad[b], code + 11);
		assert_int_equal(parse(in, back, &err), ONB_EINVAL);
		assert_non_null(strstr(err.msg, "character 11"));
	}
	/* over-long input is refused unread */
	memset(in, '-', sizeof(in) - 1);
	in[sizeof(in) - 1] = '\0';
	memcpy(in + 500, code, ONB_CC_SYMBOLS);
	assert_int_equal(parse(in, back, &err), ONB_EINVAL);
	assert_non_null(strstr(err.msg, "longer"));
	/* no message ever repeats the code, in any form */
	snprintf(in, sizeof(in), "%.23s", code);
	parse(in, back, &err);
	assert_null(strstr(err.msg, in));
	assert_false(onb_claimcode_valid(NULL));
	assert_false(onb_claimcode_valid("7k2q"));
}

/* ------------------------------------------------------------------- hash */

static void hash_of_canonical(void **state)
{
	static const char hex[] = "0123456789abcdef";
	char code[ONB_CC_SYMBOLS + 1], h[ONB_CC_HASH_HEXLEN + 1], want[ONB_CC_HASH_HEXLEN + 1], human[ONB_CC_HUMAN_LEN + 1];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	struct onb_err err;
	(void)state;

	gen(code);
	assert_int_equal(onb_claimcode_hash(code, h, &err), ONB_OK);
	assert_int_equal(EVP_Digest(code, strlen(code), md, &n, EVP_sha256(), NULL), 1);
	for(unsigned i = 0; i < n; i++){
		want[2 * i] = hex[md[i] >> 4];
		want[2 * i + 1] = hex[md[i] & 15];
	}
	want[2 * n] = '\0';
	assert_string_equal(h, want);
	assert_true(onb_claimcode_hash_equal(h, want));
	want[63] = want[63] == '0' ? '1' : '0';
	assert_false(onb_claimcode_hash_equal(h, want));
	assert_false(onb_claimcode_hash_equal(h, "abc"));
	assert_false(onb_claimcode_hash_equal(NULL, h));
	/* only the canonical form is hashed: the human form is refused */
	onb_claimcode_human(code, human);
	assert_int_equal(onb_claimcode_hash(human, h, &err), ONB_EINVAL);
}

/* -------------------------------------------------------------------- URI */

static void uri_round_trip(void **state)
{
	char code[ONB_CC_SYMBOLS + 1], uri[ONB_CC_URI_MAX], dev[ONB_ID_MAX + 1], back[ONB_CC_SYMBOLS + 1];
	char longid[ONB_ID_MAX + 1], human[ONB_CC_HUMAN_LEN + 1], in[400];
	struct onb_err err;
	(void)state;

	gen(code);
	assert_int_equal(onb_claimcode_link(NULL, "dev-1", code, uri, sizeof(uri), &err), ONB_OK);
	snprintf(in, sizeof(in), "mqtt-onboard://claim?d=dev-1&c=%s", code);
	assert_string_equal(uri, in);
	assert_int_equal(onb_claimcode_uri_parse(uri, dev, back, &err), ONB_OK);
	assert_string_equal(dev, "dev-1");
	assert_string_equal(back, code);

	/* the longest id fits ONB_CC_URI_MAX */
	memset(longid, 'a', ONB_ID_MAX);
	longid[ONB_ID_MAX] = '\0';
	memcpy(longid, "x.y:z_", 6);
	assert_int_equal(onb_claimcode_link(NULL, longid, code, uri, sizeof(uri), &err), ONB_OK);
	assert_int_equal(onb_claimcode_uri_parse(uri, dev, back, &err), ONB_OK);
	assert_string_equal(dev, longid);
	assert_int_equal(onb_claimcode_link(NULL, longid, code, uri, 100, &err), ONB_EINVAL);
	assert_int_equal(onb_claimcode_link(NULL, "a/b", code, uri, sizeof(uri), &err), ONB_EINVAL);
	assert_int_equal(onb_claimcode_link(NULL, "dev-1", "0000", uri, sizeof(uri), &err), ONB_EINVAL);

	/* tolerated: upper-case scheme, '/', human code, escapes, order, extra params */
	onb_claimcode_human(code, human);
	static const char *const forms[] = {
		"MQTT-ONBOARD://CLAIM?d=dev%%3A1&c=%s", "mqtt-onboard://claim/?c=%s&d=dev:1",
		"mqtt-onboard://claim?v=2&d=dev:1&c=%s&", "mqtt-onboard://claim?d=de%%76:1&c=%s&x=",
	};
	for(size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++){
		expand(forms[f], f % 2 ? code : human, in, sizeof(in));
		if(onb_claimcode_uri_parse(in, dev, back, &err) != ONB_OK) fail_msg("form %zu: %s", f, err.msg);
		assert_string_equal(dev, "dev:1");
		assert_string_equal(back, code);
	}

	/* input: either form */
	assert_int_equal(onb_claimcode_input(human, dev, back, &err), ONB_OK);
	assert_string_equal(dev, "");
	assert_string_equal(back, code);
	snprintf(in, sizeof(in), "Mqtt-Onboard://claim?d=d9&c=%s", code);
	assert_int_equal(onb_claimcode_input(in, dev, back, &err), ONB_OK);
	assert_string_equal(dev, "d9");
}

/* Link templates: what is accepted, what each renders, and that the
 * rendered links read back (the phone-friendly https forms included). */
static void link_templates(void **state)
{
	char code[ONB_CC_SYMBOLS + 1], typo[ONB_CC_SYMBOLS + 1], link[ONB_CC_URI_MAX], want[400];
	char dev[ONB_ID_MAX + 1], back[ONB_CC_SYMBOLS + 1], longid[ONB_ID_MAX + 1], tmpl[ONB_CC_LINK_TEMPLATE_MAX + 2];
	struct onb_err err;
	(void)state;

	gen(code);
	static const struct { const char *tmpl, *want; bool reads_back; } good[] = {
		{ ONB_CC_LINK_DEFAULT, "mqtt-onboard://claim?d=dev-1&c=%s", true },
		{ "https://claim.example.com/c?d={device}&c={code}", "https://claim.example.com/c?d=dev-1&c=%s", true },
		{ "https://claim.example.com/c?c={code}&d={device}&src=qr", "https://claim.example.com/c?c=%s&d=dev-1&src=qr", true },
		{ "HTTPS://Example.com:8443/x#d={device}&c={code}", "HTTPS://Example.com:8443/x#d=dev-1&c=%s", true },
		{ "https://example.com/c?lang=en#d={device}&c={code}", "https://example.com/c?lang=en#d=dev-1&c=%s", true },
		{ "https://example.com/{device}/{code}", "https://example.com/dev-1/%s", false },
	};
	for(size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++){
		if(onb_claimcode_link(good[i].tmpl, "dev-1", code, link, sizeof(link), &err) != ONB_OK){
			fail_msg("template %zu refused: %s", i, err.msg);
		}
		expand(good[i].want, code, want, sizeof(want));
		assert_string_equal(link, want);
		if(good[i].reads_back){
			assert_int_equal(onb_claimcode_input(link, dev, back, &err), ONB_OK);
			assert_string_equal(dev, "dev-1");
			assert_string_equal(back, code);
		}else{
			assert_int_equal(onb_claimcode_input(link, dev, back, &err), ONB_EINVAL);
		}
	}
	/* the check symbol still catches a typo in a phone link */
	memcpy(typo, code, sizeof(typo));
	typo[5] = typo[5] == 'A' ? 'B' : 'A';
	snprintf(link, sizeof(link), "https://claim.example.com/c?d=dev-1&c=%s", typo);
	assert_int_equal(onb_claimcode_input(link, dev, back, &err), ONB_EINVAL);
	assert_non_null(strstr(err.msg, "typo"));

	static const char *const bad[] = {
		"http://claim.example.com/c?d={device}&c={code}",   /* the code in clear */
		"claim.example.com/c?d={device}&c={code}",
		"https:///c?d={device}&c={code}",                   /* no host */
		"https://{device}.example.com/?c={code}",           /* ... nor a placeholder for one */
		"https://example.com/c?d={device}",                 /* no code */
		"https://example.com/c?c={code}",                   /* no device */
		"https://example.com/c?d={device}&c={code}&e={code}",
		"https://example.com/c?d={device}&d={device}&c={code}",
		"https://example.com/c?d={dev}&c={code}",
		"https://example.com/c?d={device}&c={code}}",
		"https://example.com/c?d={device}&c={code} ",
		"https://exam ple.com/c?d={device}&c={code}",
		"https://example.com/c?d={device}&c={code}&q=\"x\"",
		"https://example.com/c?d={device}&c={code}&q=<x>",
		"https://example.com/\xc3\xa9?d={device}&c={code}",
		"",
	};
	for(size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++){
		if(onb_claimcode_link_check(bad[b], &err) != ONB_EINVAL) fail_msg("accepted template %zu: %s", b, bad[b]);
		if(onb_claimcode_link(bad[b], "dev-1", code, link, sizeof(link), &err) != ONB_EINVAL) fail_msg("rendered %zu", b);
	}
	assert_int_equal(onb_claimcode_link_check(NULL, &err), ONB_EINVAL);

	/* the longest template with the longest id fits ONB_CC_URI_MAX */
	memset(longid, 'a', ONB_ID_MAX);
	longid[ONB_ID_MAX] = '\0';
	memset(tmpl, 'x', sizeof(tmpl));
	memcpy(tmpl, "https://h/?d={device}&c={code}&p=", 33);
	tmpl[ONB_CC_LINK_TEMPLATE_MAX] = '\0';
	assert_int_equal(onb_claimcode_link(tmpl, longid, code, link, sizeof(link), &err), ONB_OK);
	assert_int_equal(onb_claimcode_input(link, dev, back, &err), ONB_OK);
	assert_string_equal(dev, longid);
	tmpl[ONB_CC_LINK_TEMPLATE_MAX] = 'x';
	tmpl[ONB_CC_LINK_TEMPLATE_MAX + 1] = '\0';
	assert_int_equal(onb_claimcode_link_check(tmpl, &err), ONB_EINVAL);
	/* a buffer too small is an error, not a cut link */
	assert_int_equal(onb_claimcode_link(NULL, "dev-1", code, link, 30, &err), ONB_EINVAL);
	assert_string_equal(link, "");
}

static void hostile_uris(void **state)
{
	char code[ONB_CC_SYMBOLS + 1], typo[ONB_CC_SYMBOLS + 1], dev[ONB_ID_MAX + 1], back[ONB_CC_SYMBOLS + 1];
	char in[800], longid[ONB_ID_MAX + 2];
	struct onb_err err;
	(void)state;

	gen(code);
	memcpy(typo, code, sizeof(typo));
	typo[3] = typo[3] == 'A' ? 'B' : 'A';
	memset(longid, 'a', ONB_ID_MAX + 1);
	longid[ONB_ID_MAX + 1] = '\0';
	const char *const bad[] = {
		"http://claim?d=dev-1&c=%s",             /* another scheme */
		"ftp://claim?d=dev-1&c=%s",
		"https://?d=dev-1&c=%s",                  /* no host */
		"https://claim.example.com/c/dev-1/%s",   /* no query or fragment */
		"https://claim.example.com/c?d=dev-1&c=%s#frag", /* a parameter without '=' */
		"https://claim.example.com/c?d=dev-1#d=dev-2&c=%s",
		"https://claim example.com/c?d=dev-1&c=%s", /* blank before the query */
		"mqtt-onboard://claimx?d=dev-1&c=%s",     /* another host */
		"mqtt-onboard://evil/claim?d=dev-1&c=%s",
		"mqtt-onboard://claim#?d=dev-1&c=%s",
		"mqtt-onboard://claim?d=dev-1&c=%s#frag",
		"mqtt-onboard://claim?c=%s",              /* no device */
		"mqtt-onboard://claim?d=dev-1",           /* no code */
		"mqtt-onboard://claim?d=dev-1&d=dev-2&c=%s",
		"mqtt-onboard://claim?d=dev-1&c=%s&c=%s",
		"mqtt-onboard://claim?d=a/b&c=%s",         /* '/' in an id */
		"mqtt-onboard://claim?d=a%%2Fb&c=%s",      /* ... also escaped */
		"mqtt-onboard://claim?d=a%%00b&c=%s",      /* NUL */
		"mqtt-onboard://claim?d=%%2B&c=%s",        /* '+' */
		"mqtt-onboard://claim?d=%%23&c=%s",        /* '#' */
		"mqtt-onboard://claim?d=&c=%s",
		"mqtt-onboard://claim?d=dev-1&c=%s%%",     /* truncated escape */
		"mqtt-onboard://claim?d=dev%%4&c=%s",
		"mqtt-onboard://claim?d=dev%%zz&c=%s",
		"mqtt-onboard://claim?d=dev 1&c=%s",       /* blank */
		"mqtt-onboard://claim?d=dev\xc3\xa9&c=%s", /* non-ASCII */
		"mqtt-onboard://claim?d=dev-1&&c=%s",      /* empty parameter */
		"mqtt-onboard://claim?d=dev-1&=x&c=%s",
		"mqtt-onboard://claim?d=dev-1&c",
		"mqtt-onboard://claim?ddev-1&c=%s",
		"mqtt-onboard://claim",
		"mqtt-onboard://claim?",
		"",
	};
	for(size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++){
		expand(bad[b], code, in, sizeof(in));
		memset(dev, 'X', sizeof(dev));
		if(onb_claimcode_uri_parse(in, dev, back, &err) != ONB_EINVAL) fail_msg("accepted hostile URI %zu: %s", b, in);
		assert_int_equal(dev[0], 'X'); /* outputs untouched */
		assert_null(strstr(err.msg, code));
	}
	/* a typo in the code is caught by the check symbol */
	snprintf(in, sizeof(in), "mqtt-onboard://claim?d=dev-1&c=%s", typo);
	assert_int_equal(onb_claimcode_uri_parse(in, dev, back, &err), ONB_EINVAL);
	assert_non_null(strstr(err.msg, "typo"));
	/* an id one byte too long */
	snprintf(in, sizeof(in), "mqtt-onboard://claim?d=%s&c=%s", longid, code);
	assert_int_equal(onb_claimcode_uri_parse(in, dev, back, &err), ONB_EINVAL);
	/* over-long URIs */
	memset(in, 'a', sizeof(in) - 1);
	in[sizeof(in) - 1] = '\0';
	memcpy(in, "mqtt-onboard://claim?x=", 23);
	assert_int_equal(onb_claimcode_uri_parse(in, dev, back, &err), ONB_EINVAL);
	assert_int_equal(onb_claimcode_uri_parse(NULL, dev, back, &err), ONB_EINVAL);
	assert_int_equal(onb_claimcode_input("mqtt-onboard:nope", dev, back, &err), ONB_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(generation_shape),
		cmocka_unit_test(check_symbol_math),
		cmocka_unit_test(human_round_trip),
		cmocka_unit_test(crockford_aliases),
		cmocka_unit_test(every_substitution_detected),
		cmocka_unit_test(every_adjacent_swap_detected),
		cmocka_unit_test(malformed_codes),
		cmocka_unit_test(hash_of_canonical),
		cmocka_unit_test(uri_round_trip),
		cmocka_unit_test(link_templates),
		cmocka_unit_test(hostile_uris),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
