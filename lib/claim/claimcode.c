/* Claim codes: generation, the check symbol, forgiving parsing, the claim
 * URI and the stored hash (contract: claim/claimcode.h; docs/claiming.md).
 *
 * The check symbol. Symbols are elements of GF(32) = GF(2)[x]/(x^5+x^2+1).
 * For the 24 symbols s[0..23] of a code, Horner's rule with the multiplier x
 *   r = 0; for each s: r = x*r + s
 * gives r = sum x^(23-i) * s[i]; the check symbol s[23] = x * r(s[0..22])
 * makes the sum over all 24 zero. A substitution at position i changes the
 * sum by x^(23-i) * e with e != 0: never zero in a field. Swapping two
 * adjacent different symbols u, v changes it by x^k * (x+1) * (u+v): never
 * zero either, as x^k and x+1 are non-zero. Unlike Crockford's mod-37 check
 * (which needs the five extra symbols *~$=U) the check symbol stays in the
 * 32-symbol alphabet, so a code is one plain token in a URI or on a label. */
#include "claim/claimcode.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

const char onb_cc_alphabet[33] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* x * v in GF(32) with the primitive polynomial x^5 + x^2 + 1. */
static unsigned gf_mul_x(unsigned v)
{
	v <<= 1;
	if(v & 0x20) v ^= 0x25;
	return v & 0x1f;
}

unsigned onb_claimcode_check_value(const unsigned char *values, size_t n)
{
	unsigned r = 0;

	for(size_t i = 0; i < n; i++) r = gf_mul_x(r) ^ (values[i] & 0x1f);
	return gf_mul_x(r);
}

/* The value of one input character: 0..31, -1 for a separator to skip,
 * -2 for a character that is not part of the alphabet. */
static int symbol_value(unsigned char c)
{
	if(c == '-' || c == ' ' || c == '\t') return -1;
	if(c >= 'a' && c <= 'z') c = (unsigned char)(c - 'a' + 'A');
	if(c == 'O') return 0;
	if(c == 'I' || c == 'L') return 1;
	for(int v = 0; v < 32; v++){
		if(onb_cc_alphabet[v] == (char)c) return v;
	}
	return -2;
}

int onb_claimcode_generate(char canon_out[ONB_CC_SYMBOLS + 1], struct onb_err *err)
{
	unsigned char raw[(ONB_CC_BITS + 7) / 8], v[ONB_CC_SYMBOLS];
	int ret = ONB_EINTERNAL;

	if(RAND_bytes(raw, sizeof(raw)) != 1){
		ret = onb_fail(err, ONB_EINTERNAL, "no random bytes for the claim code");
		goto cleanup;
	}
	/* 5 bits per symbol, most significant first */
	for(size_t i = 0; i < ONB_CC_DATA_SYMBOLS; i++){
		size_t bit = i * 5, byte = bit / 8, shift = bit % 8;
		unsigned w = (unsigned)raw[byte] << 8 | (byte + 1 < sizeof(raw) ? raw[byte + 1] : 0);
		v[i] = (unsigned char)((w >> (11 - shift)) & 0x1f);
	}
	v[ONB_CC_DATA_SYMBOLS] = (unsigned char)onb_claimcode_check_value(v, ONB_CC_DATA_SYMBOLS);
	for(size_t i = 0; i < ONB_CC_SYMBOLS; i++) canon_out[i] = onb_cc_alphabet[v[i]];
	canon_out[ONB_CC_SYMBOLS] = '\0';
	ret = ONB_OK;
cleanup:
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(v, sizeof(v));
	return ret;
}

/* Reads len bytes of s as a code. */
static int parse_len(const char *s, size_t len, char canon_out[ONB_CC_SYMBOLS + 1], struct onb_err *err)
{
	unsigned char v[ONB_CC_SYMBOLS];
	char canon[ONB_CC_SYMBOLS + 1];
	size_t n = 0;
	int ret = ONB_EINVAL;

	if(len > ONB_CC_INPUT_MAX){
		ret = onb_fail(err, ONB_EINVAL, "claim code: longer than %d characters", ONB_CC_INPUT_MAX);
		goto cleanup;
	}
	for(size_t i = 0; i < len; i++){
		int sv = symbol_value((unsigned char)s[i]);
		if(sv == -1) continue;
		if(sv == -2){
			ret = onb_fail(err, ONB_EINVAL, "claim code: character %zu is not one of 0-9 A-Z "
					"(without U), dash or blank", i + 1);
			goto cleanup;
		}
		if(n >= ONB_CC_SYMBOLS){
			ret = onb_fail(err, ONB_EINVAL, "claim code: more than %d symbols", ONB_CC_SYMBOLS);
			goto cleanup;
		}
		v[n++] = (unsigned char)sv;
	}
	if(n != ONB_CC_SYMBOLS){
		ret = onb_fail(err, ONB_EINVAL, "claim code: %zu symbols, expected %d", n, ONB_CC_SYMBOLS);
		goto cleanup;
	}
	if(onb_claimcode_check_value(v, ONB_CC_DATA_SYMBOLS) != v[ONB_CC_DATA_SYMBOLS]){
		ret = onb_fail(err, ONB_EINVAL, "claim code: typo (the check symbol does not match)");
		goto cleanup;
	}
	for(size_t i = 0; i < ONB_CC_SYMBOLS; i++) canon[i] = onb_cc_alphabet[v[i]];
	canon[ONB_CC_SYMBOLS] = '\0';
	memcpy(canon_out, canon, sizeof(canon));
	ret = ONB_OK;
cleanup:
	OPENSSL_cleanse(v, sizeof(v));
	OPENSSL_cleanse(canon, sizeof(canon));
	return ret;
}

int onb_claimcode_parse(const char *text, char canon_out[ONB_CC_SYMBOLS + 1], struct onb_err *err)
{
	if(!text) return onb_fail(err, ONB_EINVAL, "claim code: missing");
	return parse_len(text, strnlen(text, ONB_CC_INPUT_MAX + 1), canon_out, err);
}

bool onb_claimcode_valid(const char *canon)
{
	unsigned char v[ONB_CC_SYMBOLS];
	bool ok = false;

	if(!canon || strnlen(canon, ONB_CC_SYMBOLS + 1) != ONB_CC_SYMBOLS) return false;
	for(size_t i = 0; i < ONB_CC_SYMBOLS; i++){
		const char *p = memchr(onb_cc_alphabet, canon[i], 32);
		if(!p || !canon[i]) goto cleanup;
		v[i] = (unsigned char)(p - onb_cc_alphabet);
	}
	ok = onb_claimcode_check_value(v, ONB_CC_DATA_SYMBOLS) == v[ONB_CC_DATA_SYMBOLS];
cleanup:
	OPENSSL_cleanse(v, sizeof(v));
	return ok;
}

void onb_claimcode_human(const char *canon, char out[ONB_CC_HUMAN_LEN + 1])
{
	size_t o = 0;

	for(size_t i = 0; i < ONB_CC_SYMBOLS && canon[i]; i++){
		if(i && i % ONB_CC_GROUP == 0) out[o++] = '-';
		out[o++] = canon[i];
	}
	out[o] = '\0';
}

int onb_claimcode_hash(const char *canon, char hex_out[ONB_CC_HASH_HEXLEN + 1], struct onb_err *err)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if(!onb_claimcode_valid(canon)) return onb_fail(err, ONB_EINVAL, "claim code: not in canonical form");
	if(EVP_Digest(canon, ONB_CC_SYMBOLS, md, &mdlen, EVP_sha256(), NULL) != 1
			|| mdlen != ONB_CC_HASH_HEXLEN / 2){
		return onb_fail(err, ONB_EINTERNAL, "SHA-256 unavailable");
	}
	for(unsigned int i = 0; i < mdlen; i++){
		hex_out[2 * i] = hex[md[i] >> 4];
		hex_out[2 * i + 1] = hex[md[i] & 0x0f];
	}
	hex_out[2 * mdlen] = '\0';
	return ONB_OK;
}

bool onb_claimcode_hash_equal(const char *a, const char *b)
{
	if(!a || !b) return false;
	if(strnlen(a, ONB_CC_HASH_HEXLEN + 1) != ONB_CC_HASH_HEXLEN
			|| strnlen(b, ONB_CC_HASH_HEXLEN + 1) != ONB_CC_HASH_HEXLEN){
		return false;
	}
	return CRYPTO_memcmp(a, b, ONB_CC_HASH_HEXLEN) == 0;
}

static int hexval(char c)
{
	if(c >= '0' && c <= '9') return c - '0';
	if(c >= 'a' && c <= 'f') return c - 'a' + 10;
	if(c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* Percent-decodes len bytes of s into out (cap bytes, NUL-terminated).
 * False for a malformed escape, a NUL, or output that does not fit. */
static bool pct_decode(const char *s, size_t len, char *out, size_t cap)
{
	size_t o = 0;

	for(size_t i = 0; i < len; i++){
		char c = s[i];
		if(c == '%'){
			int hi, lo;
			if(i + 2 >= len) return false;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if(hi < 0 || lo < 0) return false;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if(c == '\0' || o + 1 >= cap) return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return true;
}

/* Case-insensitive prefix match; returns the length matched or 0. */
static size_t prefix_ci(const char *s, const char *prefix)
{
	size_t i = 0;

	for(; prefix[i]; i++){
		char a = s[i], b = prefix[i];
		if(a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
		if(a != b) return 0;
	}
	return i;
}

/* The template's scheme: its length, or 0 if neither https:// nor
 * mqtt-onboard://. */
static size_t link_scheme(const char *s)
{
	size_t n = prefix_ci(s, "https://");

	return n ? n : prefix_ci(s, "mqtt-onboard://");
}

int onb_claimcode_link_check(const char *tmpl, struct onb_err *err)
{
	static const char dev[] = "{device}", code[] = "{code}";
	size_t len, scheme, ndev = 0, ncode = 0;

	if(!tmpl) return onb_fail(err, ONB_EINVAL, "claim link template: missing");
	len = strnlen(tmpl, ONB_CC_LINK_TEMPLATE_MAX + 1);
	if(len > ONB_CC_LINK_TEMPLATE_MAX){
		return onb_fail(err, ONB_EINVAL, "claim link template: longer than %d bytes", ONB_CC_LINK_TEMPLATE_MAX);
	}
	scheme = link_scheme(tmpl);
	if(!scheme){
		return onb_fail(err, ONB_EINVAL, "claim link template: must start with https:// (or mqtt-onboard://)");
	}
	if(!tmpl[scheme] || strchr("/?#{", tmpl[scheme])){
		return onb_fail(err, ONB_EINVAL, "claim link template: no host after the scheme");
	}
	for(size_t i = 0; i < len; i++){
		unsigned char c = (unsigned char)tmpl[i];
		if(c <= 0x20 || c >= 0x7f){
			return onb_fail(err, ONB_EINVAL, "claim link template: blank or non-ASCII character");
		}
		if(!strncmp(tmpl + i, dev, sizeof(dev) - 1)){
			ndev++;
			i += sizeof(dev) - 2;
		}else if(!strncmp(tmpl + i, code, sizeof(code) - 1)){
			ncode++;
			i += sizeof(code) - 2;
		}else if(c == '{' || c == '}'){
			return onb_fail(err, ONB_EINVAL, "claim link template: a brace outside {device} and {code}");
		}else if(strchr("\"<>\\^`|", c)){
			return onb_fail(err, ONB_EINVAL, "claim link template: '%c' is not allowed in a URI", c);
		}
	}
	if(ndev != 1 || ncode != 1){
		return onb_fail(err, ONB_EINVAL, "claim link template: needs {device} and {code} exactly once each");
	}
	return ONB_OK;
}

int onb_claimcode_link(const char *tmpl, const char *device, const char *canon, char *out, size_t cap,
		struct onb_err *err)
{
	size_t o = 0;

	if(!tmpl) tmpl = ONB_CC_LINK_DEFAULT;
	if(onb_claimcode_link_check(tmpl, err) != ONB_OK) return ONB_EINVAL;
	if(!onb_id_valid(device)) return onb_fail(err, ONB_EINVAL, "claim link: invalid device id");
	if(!onb_claimcode_valid(canon)) return onb_fail(err, ONB_EINVAL, "claim link: invalid code");
	if(!out) return onb_fail(err, ONB_EINVAL, "claim link: no buffer");
	/* every character of an id and a code is unreserved in a URI */
	for(const char *p = tmpl; *p; ){
		const char *part = p;
		size_t n = 1, skip = 1;

		if(!strncmp(p, "{device}", 8)){
			part = device;
			n = strlen(device);
			skip = 8;
		}else if(!strncmp(p, "{code}", 6)){
			part = canon;
			n = ONB_CC_SYMBOLS;
			skip = 6;
		}
		if(o + n + 1 > cap){
			if(cap) out[0] = '\0';
			return onb_fail(err, ONB_EINVAL, "claim link: buffer too small");
		}
		memcpy(out + o, part, n);
		o += n;
		p += skip;
	}
	out[o] = '\0';
	return ONB_OK;
}

int onb_claimcode_uri_parse(const char *uri, char device_out[ONB_ID_MAX + 1],
		char canon_out[ONB_CC_SYMBOLS + 1], struct onb_err *err)
{
	char device[ONB_ID_MAX + 1], code[ONB_CC_INPUT_MAX + 1], canon[ONB_CC_SYMBOLS + 1];
	bool have_d = false, have_c = false;
	const char *p;
	size_t n, len;
	int ret = ONB_EINVAL;

	if(!uri) return onb_fail(err, ONB_EINVAL, "claim URI: missing");
	len = strnlen(uri, ONB_CC_INPUT_MAX + 1);
	if(len > ONB_CC_INPUT_MAX) return onb_fail(err, ONB_EINVAL, "claim URI: longer than %d bytes", ONB_CC_INPUT_MAX);
	if((n = prefix_ci(uri, "mqtt-onboard://claim"))){
		p = uri + n;
		if(*p == '/') p++;
		if(*p != '?') return onb_fail(err, ONB_EINVAL, "claim URI: expected '?' after mqtt-onboard://claim");
		p++;
		if(strchr(p, '#')) return onb_fail(err, ONB_EINVAL, "claim URI: a fragment is not allowed");
	}else if((n = prefix_ci(uri, "https://"))){
		for(size_t i = n; i < len; i++){
			if((unsigned char)uri[i] <= 0x20 || (unsigned char)uri[i] >= 0x7f){
				return onb_fail(err, ONB_EINVAL, "claim URI: blank or non-ASCII character");
			}
		}
		p = uri + n + strcspn(uri + n, "?#");
		if(p == uri + n) return onb_fail(err, ONB_EINVAL, "claim URI: no host after https://");
		if(!*p) return onb_fail(err, ONB_EINVAL, "claim URI: no query or fragment with d and c");
		p++;
	}else{
		return onb_fail(err, ONB_EINVAL, "claim URI: does not start with mqtt-onboard://claim or https://");
	}
	while(*p){
		const char *eq;
		size_t plen = strcspn(p, "&#");

		for(size_t i = 0; i < plen; i++){
			unsigned char c = (unsigned char)p[i];
			if(c <= 0x20 || c >= 0x7f){
				ret = onb_fail(err, ONB_EINVAL, "claim URI: blank or non-ASCII character in the query");
				goto cleanup;
			}
		}
		eq = memchr(p, '=', plen);
		if(eq && eq - p == 1 && p[0] == 'd'){
			if(have_d){
				ret = onb_fail(err, ONB_EINVAL, "claim URI: parameter d given twice");
				goto cleanup;
			}
			if(!pct_decode(eq + 1, plen - 2, device, sizeof(device)) || !onb_id_valid(device)){
				ret = onb_fail(err, ONB_EINVAL, "claim URI: d is not a valid device id");
				goto cleanup;
			}
			have_d = true;
		}else if(eq && eq - p == 1 && p[0] == 'c'){
			if(have_c){
				ret = onb_fail(err, ONB_EINVAL, "claim URI: parameter c given twice");
				goto cleanup;
			}
			if(!pct_decode(eq + 1, plen - 2, code, sizeof(code))){
				ret = onb_fail(err, ONB_EINVAL, "claim URI: c is malformed");
				goto cleanup;
			}
			ret = onb_claimcode_parse(code, canon, err);
			if(ret != ONB_OK) goto cleanup;
			ret = ONB_EINVAL;
			have_c = true;
		}else if(!eq || eq == p){
			ret = onb_fail(err, ONB_EINVAL, "claim URI: malformed parameter");
			goto cleanup;
		}
		/* other parameters: for later versions */
		p += plen;
		if(*p) p++;
	}
	if(!have_d || !have_c){
		ret = onb_fail(err, ONB_EINVAL, "claim URI: needs both d (device) and c (code)");
		goto cleanup;
	}
	memcpy(device_out, device, strlen(device) + 1);
	memcpy(canon_out, canon, sizeof(canon));
	ret = ONB_OK;
cleanup:
	OPENSSL_cleanse(code, sizeof(code));
	OPENSSL_cleanse(canon, sizeof(canon));
	return ret;
}

int onb_claimcode_input(const char *text, char device_out[ONB_ID_MAX + 1],
		char canon_out[ONB_CC_SYMBOLS + 1], struct onb_err *err)
{
	if(!text) return onb_fail(err, ONB_EINVAL, "claim code: missing");
	if(prefix_ci(text, "mqtt-onboard:") || prefix_ci(text, "https:")){
		return onb_claimcode_uri_parse(text, device_out, canon_out, err);
	}
	if(onb_claimcode_parse(text, canon_out, err) != ONB_OK) return ONB_EINVAL;
	device_out[0] = '\0';
	return ONB_OK;
}
