/* Certificate revocation lists (pki/crl.h, docs/crl.md): which serials the
 * registry says are dead, an X.509 v2 CRL built and signed with the OpenSSL 3
 * API, and the PEM file Mosquitto's crlfile reads. */
#include "pki/crl.h"
#include "registry/registry.h"
#include "registry/registry_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define CRL_FILE_MAX 64        /* CRLs in one PEM file we read back */
#define RECORD_VALUE_MAX 200   /* "ms reason device" */

/* ------------------------------------------------------------- the record */

/* Copies serial (registry form: lower-case hex) into out without leading
 * zeros, so that one serial is one field however it was written. */
static bool serial_normalise(const char *serial, size_t len, char out[ONB_CRL_SERIAL_HEX_MAX + 1])
{
	size_t i = 0;

	if(len == 0) return false;
	for(size_t k = 0; k < len; k++){
		char c = serial[k];
		if(!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
	}
	while(i + 1 < len && serial[i] == '0') i++;
	if(len - i > ONB_CRL_SERIAL_HEX_MAX) return false;
	if(len - i == 1 && serial[i] == '0') return false; /* zero is not a serial */
	memcpy(out, serial + i, len - i);
	out[len - i] = '\0';
	return true;
}

static bool reason_valid(int r)
{
	/* RFC 5280 s.5.3.1: 0..10 without 7 */
	return r >= 0 && r <= 10 && r != 7;
}

int onb_crl_record(redisContext *rc, const struct onb_crl_entry *e, struct onb_err *err)
{
	struct onb_args a = { 0 };
	char serial[ONB_CRL_SERIAL_HEX_MAX + 1], value[RECORD_VALUE_MAX];
	redisReply *r;
	int rcode;

	if(!e || !serial_normalise(e->serial, strlen(e->serial), serial)){
		return onb_fail(err, ONB_EINVAL, "crl record: serial must be 1..%d lower-case hex digits",
				ONB_CRL_SERIAL_HEX_MAX);
	}
	if(!reason_valid(e->reason) || e->revoked_ms < 0 || (e->device[0] && !onb_id_valid(e->device))){
		return onb_fail(err, ONB_EINVAL, "crl record: bad reason, date or device id");
	}
	snprintf(value, sizeof(value), "%lld %d %s", (long long)e->revoked_ms, e->reason,
			e->device[0] ? e->device : "-");
	onb_args_push(&a, "HSETNX");
	onb_args_push(&a, ONB_KEY_CRL_REVOKED);
	onb_args_push(&a, serial);
	onb_args_push(&a, value);
	r = onb_reg_command(rc, &a, "crl record", false, &rcode, err);
	if(!r) return rcode;
	freeReplyObject(r);
	return ONB_OK;
}

void onb_crl_list_free(struct onb_crl_list *l)
{
	if(!l) return;
	free(l->e);
	l->e = NULL;
	l->n = l->cap = 0;
}

static int list_push(struct onb_crl_list *l, const struct onb_crl_entry *e, struct onb_err *err)
{
	if(l->n == l->cap){
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct onb_crl_entry *p;

		if(cap > ONB_CRL_ENTRIES_MAX) return onb_fail(err, ONB_EINTERNAL, "more than %d revoked serials",
				ONB_CRL_ENTRIES_MAX);
		p = realloc(l->e, cap * sizeof(*p));
		if(!p) return onb_fail(err, ONB_EINTERNAL, "out of memory");
		l->e = p;
		l->cap = cap;
	}
	l->e[l->n++] = *e;
	return ONB_OK;
}

struct dead_devices {
	struct onb_crl_list list;
	int64_t now_ms;
	int rc;
	struct onb_err *err;
};

static int collect_device(const struct onb_device *dev, void *arg)
{
	struct dead_devices *d = arg;
	struct onb_crl_entry e;

	if(dev->state != ONB_STATE_REVOKED && dev->state != ONB_STATE_DECOMMISSIONED) return 0;
	if(!dev->cert_serial[0]) return 0;
	memset(&e, 0, sizeof(e));
	if(!serial_normalise(dev->cert_serial, strlen(dev->cert_serial), e.serial)){
		d->rc = onb_fail(d->err, ONB_EINTERNAL, "device %s: cert_serial is not a usable serial", dev->id);
		return 1;
	}
	e.revoked_ms = dev->updated_ms > 0 ? dev->updated_ms : d->now_ms;
	e.reason = dev->state == ONB_STATE_REVOKED ? ONB_CRL_REASON_KEY_COMPROMISE : ONB_CRL_REASON_CESSATION;
	snprintf(e.device, sizeof(e.device), "%s", dev->id);
	d->rc = list_push(&d->list, &e, d->err);
	return d->rc != ONB_OK;
}

/* "ms reason device" as written by onb_crl_record. */
static bool parse_value(const char *v, struct onb_crl_entry *e)
{
	char *end;
	long long ms;
	long reason;
	const char *dev;

	errno = 0;
	ms = strtoll(v, &end, 10);
	if(errno || end == v || *end != ' ' || ms < 0) return false;
	v = end + 1;
	reason = strtol(v, &end, 10);
	if(errno || end == v || *end != ' ' || !reason_valid((int)reason)) return false;
	dev = end + 1;
	if(strcmp(dev, "-") != 0 && !onb_id_valid(dev)) return false;
	e->revoked_ms = ms;
	e->reason = (int)reason;
	snprintf(e->device, sizeof(e->device), "%s", strcmp(dev, "-") ? dev : "");
	return true;
}

/* Appends every field of onb:crl:revoked to out (HSCAN, 1000 at a time). */
static int read_record(redisContext *rc, struct onb_crl_list *out, struct onb_err *err)
{
	char cursor[32] = "0";
	int rcode;

	do{
		struct onb_args a = { 0 };
		redisReply *r;
		const redisReply *items;

		onb_args_push(&a, "HSCAN");
		onb_args_push(&a, ONB_KEY_CRL_REVOKED);
		onb_args_push(&a, cursor);
		onb_args_push(&a, "COUNT");
		onb_args_push(&a, "1000");
		r = onb_reg_command(rc, &a, "crl list", false, &rcode, err);
		if(!r) return rcode;
		if(r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !onb_reg_reply_str(r->element[0], cursor, sizeof(cursor))
				|| r->element[1]->type != REDIS_REPLY_ARRAY || r->element[1]->elements % 2){
			freeReplyObject(r);
			return onb_fail(err, ONB_EUNAVAIL, "crl list: unexpected HSCAN reply");
		}
		items = r->element[1];
		for(size_t i = 0; i + 1 < items->elements; i += 2){
			const redisReply *f = items->element[i], *v = items->element[i + 1];
			char value[RECORD_VALUE_MAX];
			struct onb_crl_entry e;

			memset(&e, 0, sizeof(e));
			if(f->type != REDIS_REPLY_STRING || !serial_normalise(f->str, f->len, e.serial)
					|| strlen(e.serial) != f->len || !onb_reg_reply_str(v, value, sizeof(value))
					|| !parse_value(value, &e)){
				freeReplyObject(r);
				return onb_fail(err, ONB_EINTERNAL, "corrupt entry in " ONB_KEY_CRL_REVOKED
						" (HDEL it or fix it by hand)");
			}
			rcode = list_push(out, &e, err);
			if(rcode != ONB_OK){
				freeReplyObject(r);
				return rcode;
			}
		}
		freeReplyObject(r);
	}while(strcmp(cursor, "0") != 0);
	return ONB_OK;
}

int onb_crl_collect(redisContext *rc, struct onb_crl_list *out, struct onb_err *err)
{
	struct dead_devices d;
	struct onb_crl_list all = { 0 };
	int ret;

	memset(&d, 0, sizeof(d));
	d.now_ms = onb_now_ms();
	d.rc = ONB_OK;
	d.err = err;
	ret = onb_registry_list(rc, ONB_STATE_INVALID, collect_device, &d, err);
	if(ret >= 0 && d.rc != ONB_OK) ret = d.rc; /* the callback stopped the walk */
	if(ret != ONB_OK) goto cleanup;
	for(size_t i = 0; i < d.list.n; i++){
		ret = onb_crl_record(rc, &d.list.e[i], err);
		if(ret != ONB_OK) goto cleanup;
	}
	ret = read_record(rc, &all, err);
	if(ret != ONB_OK) goto cleanup;
	*out = all;
	all.e = NULL;
cleanup:
	onb_crl_list_free(&all);
	onb_crl_list_free(&d.list);
	return ret;
}

/* ------------------------------------------------------------ the CRL */

/* Orders serials as numbers (no leading zeros: longer is larger), then by
 * revocation date, so duplicates are adjacent and the earliest comes first. */
static int cmp_entry(const void *a, const void *b)
{
	const struct onb_crl_entry *x = *(const struct onb_crl_entry *const *)a;
	const struct onb_crl_entry *y = *(const struct onb_crl_entry *const *)b;
	size_t lx = strlen(x->serial), ly = strlen(y->serial);
	int c;

	if(lx != ly) return lx < ly ? -1 : 1;
	c = strcmp(x->serial, y->serial);
	if(c) return c;
	return (x->revoked_ms > y->revoked_ms) - (x->revoked_ms < y->revoked_ms);
}

/* The CA's subjectKeyIdentifier, else the SHA-1 of its public key bits. */
static AUTHORITY_KEYID *authority_key_id(X509 *ca)
{
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca);
	AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
	const unsigned char *pk = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int pklen = 0;

	if(!akid) return NULL;
	if(ski){
		akid->keyid = ASN1_OCTET_STRING_dup(ski);
	}else if(X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL, X509_get_X509_PUBKEY(ca)) == 1
			&& EVP_Digest(pk, (size_t)pklen, md, &mdlen, EVP_sha1(), NULL) == 1){
		akid->keyid = ASN1_OCTET_STRING_new();
		if(akid->keyid && ASN1_OCTET_STRING_set(akid->keyid, md, (int)mdlen) != 1){
			ASN1_OCTET_STRING_free(akid->keyid);
			akid->keyid = NULL;
		}
	}
	if(!akid->keyid){
		AUTHORITY_KEYID_free(akid);
		return NULL;
	}
	return akid;
}

static int check_ca(X509 *ca, EVP_PKEY *ca_key, int64_t now_s, struct onb_err *err)
{
	time_t now = (time_t)now_s;

	if(!ca || !ca_key) return onb_fail(err, ONB_EINVAL, "crl: missing CA certificate or key");
	if(X509_check_private_key(ca, ca_key) != 1){
		ERR_clear_error();
		return onb_fail(err, ONB_EINVAL, "the CA private key does not match the CA certificate");
	}
	if(X509_check_ca(ca) == 0){
		return onb_fail(err, ONB_EREFUSED, "the certificate is not a CA (no CA:TRUE)");
	}
	if((X509_get_extension_flags(ca) & EXFLAG_KUSAGE) && !(X509_get_key_usage(ca) & KU_CRL_SIGN)){
		return onb_fail(err, ONB_EREFUSED, "the CA's keyUsage lacks cRLSign");
	}
	if(X509_cmp_time(X509_get0_notAfter(ca), &now) <= 0){
		return onb_fail(err, ONB_EREFUSED, "the CA certificate has expired");
	}
	return ONB_OK;
}

/* One revoked entry: serial, revocation date, reason (none for unspecified,
 * as RFC 5280 s.5.3.1 asks). Handed to crl on success. */
static bool add_entry(X509_CRL *crl, const struct onb_crl_entry *e, int64_t now_s)
{
	X509_REVOKED *rev = X509_REVOKED_new();
	BIGNUM *bn = NULL;
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *when = NULL;
	ASN1_ENUMERATED *reason = NULL;
	int64_t secs = e->revoked_ms / 1000;
	bool ok = false;

	if(secs <= 0 || secs > now_s) secs = now_s;
	if(!rev || BN_hex2bn(&bn, e->serial) != (int)strlen(e->serial)) goto cleanup;
	if(!(serial = BN_to_ASN1_INTEGER(bn, NULL)) || X509_REVOKED_set_serialNumber(rev, serial) != 1) goto cleanup;
	if(!(when = ASN1_TIME_set(NULL, (time_t)secs)) || X509_REVOKED_set_revocationDate(rev, when) != 1) goto cleanup;
	if(e->reason != 0){
		if(!(reason = ASN1_ENUMERATED_new()) || ASN1_ENUMERATED_set(reason, e->reason) != 1
				|| X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, 0) != 1){
			goto cleanup;
		}
	}
	if(X509_CRL_add0_revoked(crl, rev) != 1) goto cleanup;
	rev = NULL;
	ok = true;
cleanup:
	ASN1_ENUMERATED_free(reason);
	ASN1_TIME_free(when);
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	X509_REVOKED_free(rev);
	return ok;
}

X509_CRL *onb_crl_build(X509 *ca, EVP_PKEY *ca_key, const struct onb_crl_entry *entries,
		size_t n, int64_t now_s, int days, uint64_t number, struct onb_err *err)
{
	X509_CRL *crl = NULL;
	ASN1_TIME *last = NULL, *next = NULL;
	ASN1_INTEGER *num = NULL;
	AUTHORITY_KEYID *akid = NULL;
	const struct onb_crl_entry **sorted = NULL;
	const EVP_MD *md;
	char ebuf[160];
	int ret;

	if(days < 1 || days > ONB_CRL_DAYS_MAX){
		onb_fail(err, ONB_EINVAL, "CRL validity must be 1..%d days", ONB_CRL_DAYS_MAX);
		return NULL;
	}
	if(now_s <= 0 || (n && !entries) || number == 0){
		onb_fail(err, ONB_EINVAL, "crl: bad arguments");
		return NULL;
	}
	if(check_ca(ca, ca_key, now_s, err) != ONB_OK) return NULL;
	ret = ONB_EINTERNAL;
	for(size_t i = 0; i < n; i++){
		char norm[ONB_CRL_SERIAL_HEX_MAX + 1];
		if(!serial_normalise(entries[i].serial, strlen(entries[i].serial), norm)
				|| strcmp(norm, entries[i].serial) != 0 || !reason_valid(entries[i].reason)){
			onb_fail(err, ONB_EINVAL, "crl: entry %zu has a bad serial or reason", i);
			return NULL;
		}
	}
	if(n && !(sorted = malloc(n * sizeof(*sorted)))){
		onb_fail(err, ONB_EINTERNAL, "out of memory");
		return NULL;
	}
	for(size_t i = 0; i < n; i++) sorted[i] = &entries[i];
	if(n) qsort(sorted, n, sizeof(*sorted), cmp_entry);

	ERR_clear_error();
	if(!(crl = X509_CRL_new())) goto ssl_fail;
	if(X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1) goto ssl_fail;
	if(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) != 1) goto ssl_fail;
	if(!(last = ASN1_TIME_set(NULL, (time_t)now_s))
			|| !(next = ASN1_TIME_set(NULL, (time_t)(now_s + (int64_t)days * 86400)))){
		goto ssl_fail;
	}
	if(X509_CRL_set1_lastUpdate(crl, last) != 1 || X509_CRL_set1_nextUpdate(crl, next) != 1) goto ssl_fail;
	for(size_t i = 0; i < n; i++){
		if(i > 0 && !strcmp(sorted[i]->serial, sorted[i - 1]->serial)) continue; /* earliest kept */
		if(!add_entry(crl, sorted[i], now_s)) goto ssl_fail;
	}
	if(!(akid = authority_key_id(ca))
			|| X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, X509V3_ADD_REPLACE) != 1){
		goto ssl_fail;
	}
	if(!(num = ASN1_INTEGER_new()) || ASN1_INTEGER_set_uint64(num, number) != 1
			|| X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, X509V3_ADD_REPLACE) != 1){
		goto ssl_fail;
	}
	if(X509_CRL_sort(crl) != 1) goto ssl_fail;
	md = (EVP_PKEY_is_a(ca_key, "ED25519") || EVP_PKEY_is_a(ca_key, "ED448")) ? NULL : EVP_sha256();
	if(X509_CRL_sign(crl, ca_key, md) <= 0) goto ssl_fail;
	ret = ONB_OK;
	goto cleanup;

ssl_fail:
	ret = onb_fail(err, ONB_EINTERNAL, "cannot build the CRL: %s", onb_ssl_errstr(ebuf, sizeof(ebuf)));
cleanup:
	free(sorted);
	ASN1_INTEGER_free(num);
	AUTHORITY_KEYID_free(akid);
	ASN1_TIME_free(next);
	ASN1_TIME_free(last);
	if(ret != ONB_OK){
		X509_CRL_free(crl);
		crl = NULL;
	}
	return crl;
}

/* ------------------------------------------------------------ PEM files */

int onb_crl_read_file(const char *path, STACK_OF(X509_CRL) **out, struct onb_err *err)
{
	STACK_OF(X509_CRL) *crls = NULL;
	X509_CRL *crl;
	BIO *in;
	char ebuf[160];
	int ret = ONB_EINVAL;
	unsigned long e;

	if(!path || !*path) return onb_fail(err, ONB_EINVAL, "no CRL file given");
	errno = 0;
	ERR_clear_error();
	in = BIO_new_file(path, "r");
	if(!in){
		int saved = errno;
		ERR_clear_error();
		return onb_fail(err, saved == ENOENT ? ONB_ENOTFOUND : ONB_EUNAVAIL,
				"cannot open %s: %s", path, saved ? strerror(saved) : "unknown error");
	}
	if(!(crls = sk_X509_CRL_new_null())){
		ret = onb_fail(err, ONB_EINTERNAL, "out of memory");
		goto cleanup;
	}
	while((crl = PEM_read_bio_X509_CRL(in, NULL, NULL, NULL)) != NULL){
		if(sk_X509_CRL_num(crls) >= CRL_FILE_MAX || !sk_X509_CRL_push(crls, crl)){
			X509_CRL_free(crl);
			ret = onb_fail(err, ONB_EINVAL, "%s: more than %d CRLs", path, CRL_FILE_MAX);
			goto cleanup;
		}
	}
	e = ERR_peek_last_error();
	if(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE){
		ERR_clear_error(); /* the normal end of the file */
	}else if(e){
		ret = onb_fail(err, ONB_EINVAL, "%s: unreadable CRL: %s", path, onb_ssl_errstr(ebuf, sizeof(ebuf)));
		goto cleanup;
	}
	if(sk_X509_CRL_num(crls) == 0){
		ret = onb_fail(err, ONB_EINVAL, "%s holds no PEM CRL", path);
		goto cleanup;
	}
	*out = crls;
	crls = NULL;
	ret = ONB_OK;
cleanup:
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	BIO_free(in);
	return ret;
}

uint64_t onb_crl_last_number(STACK_OF(X509_CRL) *crls, X509 *ca)
{
	uint64_t best = 0;

	for(int i = 0; crls && ca && i < sk_X509_CRL_num(crls); i++){
		X509_CRL *crl = sk_X509_CRL_value(crls, i);
		EVP_PKEY *pub = X509_get0_pubkey(ca);
		ASN1_INTEGER *num;
		uint64_t v = 0;

		if(!pub || X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0) continue;
		if(X509_CRL_verify(crl, pub) != 1){
			ERR_clear_error();
			continue;
		}
		num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
		if(num && ASN1_INTEGER_get_uint64(&v, num) == 1 && v > best) best = v;
		ASN1_INTEGER_free(num);
		ERR_clear_error();
	}
	return best;
}

int onb_crl_write(const char *path, STACK_OF(X509_CRL) *crls, struct onb_err *err)
{
	char tmp[PATH_MAX];
	BIO *mem = NULL;
	char *data;
	long len;
	int ret = ONB_EINTERNAL, n;
	char ebuf[160];
	bool created, tmp_made = false;

	if(!path || !*path || !crls || sk_X509_CRL_num(crls) == 0){
		return onb_fail(err, ONB_EINVAL, "crl write: nothing to write");
	}
	n = snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
	if(n < 0 || (size_t)n >= sizeof(tmp)) return onb_fail(err, ONB_EINVAL, "output path too long");
	if(!(mem = BIO_new(BIO_s_mem()))) return onb_fail(err, ONB_EINTERNAL, "out of memory");
	for(int i = 0; i < sk_X509_CRL_num(crls); i++){
		if(PEM_write_bio_X509_CRL(mem, sk_X509_CRL_value(crls, i)) != 1){
			ret = onb_fail(err, ONB_EINTERNAL, "cannot encode the CRL: %s", onb_ssl_errstr(ebuf, sizeof(ebuf)));
			goto cleanup;
		}
	}
	len = BIO_get_mem_data(mem, &data);
	/* A CRL is public: the broker's user must read it. */
	if(!onb_write_temp(tmp, 0644, data, (size_t)len, &created)){
		if(created) ret = onb_fail(err, ONB_EUNAVAIL, "cannot write %s: %s", tmp, strerror(errno));
		else ret = onb_fail(err, ONB_EUNAVAIL, "cannot create a file next to %s: %s", path, strerror(errno));
		goto cleanup;
	}
	tmp_made = true;
	if(rename(tmp, path) != 0){
		ret = onb_fail(err, ONB_EUNAVAIL, "cannot rename to %s: %s", path, strerror(errno));
		goto cleanup;
	}
	tmp_made = false;
	ret = ONB_OK;
cleanup:
	if(tmp_made) unlink(tmp);
	BIO_free(mem);
	return ret;
}
