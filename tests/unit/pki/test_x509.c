/* Certificate helpers and the development PKI: onb_pki_init/onb_pki_issue
 * outputs checked with OpenSSL directly (fingerprints, extensions, chains). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pki/pki.h"
#include "pki/x509.h"

static char base[PATH_MAX]; /* mkdtemp under $ONB_TEST_TMP */
static char pki[PATH_MAX];  /* base/pki, made by onb_pki_init in the group setup */

static const char *const issuing[] = { "device-ca", "claim-ca", "manufacturer-ca", "service-ca" };

/* ---- helpers ---- */

/* snprintf into a PATH_MAX buffer; fails the test when it does not fit. */
static void pathf(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pathf(char *buf, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, PATH_MAX, fmt, ap);
	va_end(ap);
	if(n < 0 || n >= PATH_MAX) fail_msg("path too long");
}

static void rm_rf(const char *path)
{
	struct stat sb;
	DIR *d;
	struct dirent *de;
	char sub[PATH_MAX];

	if(lstat(path, &sb) != 0) return;
	if(S_ISDIR(sb.st_mode) && (d = opendir(path)) != NULL){
		while((de = readdir(d)) != NULL){
			if(!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
			pathf(sub, "%s/%s", path, de->d_name);
			rm_rf(sub);
		}
		closedir(d);
		rmdir(path);
	}else{
		unlink(path);
	}
}

static const char *in(const char *dir, const char *name)
{
	static char buf[4][PATH_MAX];
	static int slot;
	char *p = buf[slot++ % 4];
	pathf(p, "%s/%s", dir, name);
	return p;
}

static X509 *load(const char *dir, const char *name)
{
	struct onb_err err = { "" };
	X509 *c = onb_cert_load(in(dir, name), &err);
	if(!c) fail_msg("load %s/%s: %s", dir, name, err.msg);
	return c;
}

static EVP_PKEY *load_key(const char *dir, const char *name)
{
	struct onb_err err = { "" };
	EVP_PKEY *k = onb_key_load(in(dir, name), &err);
	if(!k) fail_msg("load key %s/%s: %s", dir, name, err.msg);
	return k;
}

static bool exists(const char *path)
{
	struct stat sb;
	return lstat(path, &sb) == 0;
}

static int mode_of(const char *path)
{
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	return (int)(sb.st_mode & 07777);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while((de = readdir(d)) != NULL){
		if(strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
	}
	closedir(d);
	return n;
}

/* Independent SHA-256 fingerprint: X509_digest + printf. */
static void fp_direct(X509 *c, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	assert_int_equal(X509_digest(c, EVP_sha256(), md, &n), 1);
	assert_int_equal(n, 32);
	for(unsigned int i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void fp_of(X509 *c, char out[65])
{
	struct onb_err err = { "" };
	assert_int_equal(onb_cert_fingerprint(c, out, &err), ONB_OK);
}

static int count_pem_certs(const char *path, X509 **out, int max)
{
	FILE *f = fopen(path, "r");
	X509 *c;
	int n = 0;

	assert_non_null(f);
	while((c = PEM_read_X509(f, NULL, NULL, NULL)) != NULL){
		if(out && n < max) out[n] = c;
		else X509_free(c);
		n++;
	}
	ERR_clear_error();
	fclose(f);
	return n;
}

static X509_STORE *bundle_store(const char *dir)
{
	X509_STORE *st = X509_STORE_new();
	assert_non_null(st);
	assert_int_equal(X509_STORE_load_file(st, in(dir, "ca-bundle.pem")), 1);
	return st;
}

/* X509_verify_cert of cert against store for purpose; chain length into *depth. */
static int verify(X509_STORE *st, X509 *cert, int purpose, unsigned long flags, X509 **chain, int *depth)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int rc;

	assert_non_null(ctx);
	assert_int_equal(X509_STORE_CTX_init(ctx, st, cert, NULL), 1);
	if(purpose) assert_int_equal(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
	if(flags) X509_STORE_CTX_set_flags(ctx, flags);
	rc = X509_verify_cert(ctx);
	if(rc == 1){
		STACK_OF(X509) *ch = X509_STORE_CTX_get0_chain(ctx);
		if(depth) *depth = sk_X509_num(ch);
		for(int i = 0; chain && i < sk_X509_num(ch) && i < 3; i++){
			chain[i] = X509_dup(sk_X509_value(ch, i));
		}
	}
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

static const ASN1_OCTET_STRING *aki_keyid(X509 *c, AUTHORITY_KEYID **hold)
{
	*hold = X509_get_ext_d2i(c, NID_authority_key_identifier, NULL, NULL);
	return *hold ? (*hold)->keyid : NULL;
}

static void issue_ok(const char *ca, const char *cn, const char *name, int days)
{
	struct onb_err err = { "" };
	int rc = onb_pki_issue(in(pki, ca), cn, in(base, name), days, &err);
	if(rc != ONB_OK) fail_msg("issue %s: %s", name, err.msg);
}

/* ---- group setup ---- */

static int setup(void **state)
{
	const char *parent = getenv("ONB_TEST_TMP");
	struct onb_err err = { "" };

	(void)state;
	if(!parent || !*parent) parent = getenv("TMPDIR");
	if(!parent || !*parent) parent = "/tmp";
	if(mkdir(parent, 0755) != 0 && errno != EEXIST) return -1;
	pathf(base, "%s/test_x509.XXXXXX", parent);
	if(!mkdtemp(base)) return -1;
	pathf(pki, "%s/pki", base);
	if(onb_pki_init(pki, false, &err) != ONB_OK){
		fprintf(stderr, "onb_pki_init: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if(base[0]) rm_rf(base);
	return 0;
}

/* ---- onb_pki_init ---- */

static void init_files_and_modes(void **state)
{
	(void)state;
	for(size_t i = 0; onb_pki_init_files[i]; i++){
		const char *p = in(pki, onb_pki_init_files[i]);
		assert_true(exists(p));
		if(strstr(p, ".key")) assert_int_equal(mode_of(p), 0600);
		else assert_int_equal(mode_of(p), 0644);
	}
	assert_int_equal(count_entries(pki), 13); /* no temp files left behind */
	for(size_t i = 0; i < 4; i++){
		char k[64], c[64];
		snprintf(c, sizeof(c), "%s.pem", issuing[i]);
		snprintf(k, sizeof(k), "%s.key", issuing[i]);
		X509 *cert = load(pki, c);
		EVP_PKEY *key = load_key(pki, k);
		assert_int_equal(X509_check_private_key(cert, key), 1);
		assert_true(EVP_PKEY_is_a(key, "EC"));
		assert_int_equal(EVP_PKEY_get_bits(key), 256);
		X509_free(cert);
		EVP_PKEY_free(key);
	}
}

static void bundle_is_root_and_issuing_cas(void **state)
{
	X509 *certs[5] = { 0 };
	const char *names[5] = { "root-ca.pem", "device-ca.pem", "claim-ca.pem",
		"manufacturer-ca.pem", "service-ca.pem" };
	(void)state;

	assert_int_equal(count_pem_certs(in(pki, "ca-bundle.pem"), certs, 5), 5);
	for(int i = 0; i < 5; i++){
		X509 *c = load(pki, names[i]);
		assert_int_equal(X509_cmp(c, certs[i]), 0);
		X509_free(c);
		X509_free(certs[i]);
	}
}

static void issuing_cas_chain_to_root(void **state)
{
	X509 *root = load(pki, "root-ca.pem");
	X509 *cas[4];
	char cn[128];
	struct onb_err err = { "" };
	int64_t na;
	AUTHORITY_KEYID *akid;
	(void)state;

	/* root: self-signed CA without path length limit */
	assert_true(onb_cert_issued_by(root, root));
	assert_int_equal(X509_check_ca(root), 1);
	assert_int_equal(X509_get_pathlen(root), -1);
	assert_int_equal(onb_cert_subject_cn(root, cn, sizeof(cn), &err), ONB_OK);
	assert_string_equal(cn, "mosquitto-onboard dev root CA");
	assert_int_equal(onb_cert_not_after(root, &na, &err), ONB_OK);
	assert_true(na > time(NULL) + (int64_t)20 * 365 * 86400 - 86400);
	assert_non_null(X509_get0_subject_key_id(root));
	assert_non_null(aki_keyid(root, &akid));
	assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid, X509_get0_subject_key_id(root)), 0);
	AUTHORITY_KEYID_free(akid);

	for(int i = 0; i < 4; i++){
		char file[64];
		pathf(file, "%s.pem", issuing[i]);
		cas[i] = load(pki, file);
		assert_true(onb_cert_issued_by(cas[i], root));
		assert_false(onb_cert_issued_by(root, cas[i]));
		assert_false(onb_cert_issued_by(cas[i], cas[i]));
		assert_int_equal(X509_check_ca(cas[i]), 1);
		assert_int_equal(X509_get_pathlen(cas[i]), 0);
		assert_true(X509_get_extension_flags(cas[i]) & EXFLAG_KUSAGE);
		assert_int_equal(X509_get_key_usage(cas[i]), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
		assert_false(X509_get_extension_flags(cas[i]) & EXFLAG_XKUSAGE);
		assert_non_null(X509_get0_subject_key_id(cas[i]));
		assert_non_null(aki_keyid(cas[i], &akid));
		assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid, X509_get0_subject_key_id(root)), 0);
		AUTHORITY_KEYID_free(akid);
		assert_int_equal(onb_cert_not_after(cas[i], &na, &err), ONB_OK);
		assert_true(na > time(NULL) + (int64_t)10 * 365 * 86400 - 86400);
		assert_true(na < time(NULL) + (int64_t)11 * 365 * 86400);
		assert_int_equal(onb_cert_subject_cn(cas[i], cn, sizeof(cn), &err), ONB_OK);
		assert_non_null(strstr(cn, "mosquitto-onboard dev"));
	}
	/* the issuing CAs are distinct identities */
	for(int i = 0; i < 4; i++){
		for(int j = 0; j < 4; j++){
			if(i != j) assert_false(onb_cert_issued_by(cas[i], cas[j]));
		}
	}
	for(int i = 0; i < 4; i++) X509_free(cas[i]);
	X509_free(root);
}

static void init_refuses_or_forces(void **state)
{
	struct onb_err err = { "" };
	char before[65], after[65], dir2[PATH_MAX], file[PATH_MAX], missing[PATH_MAX];
	X509 *root;
	FILE *f;
	(void)state;

	root = load(pki, "root-ca.pem");
	fp_of(root, before);
	X509_free(root);
	assert_int_equal(onb_pki_init(pki, false, &err), ONB_EEXIST);
	assert_true(strlen(err.msg) > 0);
	root = load(pki, "root-ca.pem");
	fp_of(root, after);
	X509_free(root);
	assert_string_equal(before, after);

	/* an empty existing directory is fine; then force replaces everything */
	pathf(dir2, "%s/second", base);
	assert_int_equal(mkdir(dir2, 0700), 0);
	assert_int_equal(onb_pki_init(dir2, false, &err), ONB_OK);
	root = load(dir2, "root-ca.pem");
	fp_of(root, before);
	X509_free(root);
	f = fopen(in(dir2, "unrelated.txt"), "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(onb_pki_init(dir2, false, &err), ONB_EEXIST);
	assert_int_equal(onb_pki_init(dir2, true, &err), ONB_OK);
	root = load(dir2, "root-ca.pem");
	fp_of(root, after);
	X509_free(root);
	assert_string_not_equal(before, after);
	assert_int_equal(count_entries(dir2), 14);
	assert_true(exists(in(dir2, "unrelated.txt")));
	assert_int_equal(mode_of(in(dir2, "device-ca.key")), 0600);
	rm_rf(dir2);

	/* force cannot replace a directory: refused before anything is written */
	pathf(dir2, "%s/third", base);
	assert_int_equal(mkdir(dir2, 0700), 0);
	assert_int_equal(mkdir(in(dir2, "server.key"), 0700), 0);
	assert_int_equal(onb_pki_init(dir2, true, &err), ONB_EEXIST);
	assert_int_equal(count_entries(dir2), 1);
	rm_rf(dir2);

	/* a regular file, a missing parent, an empty name */
	pathf(file, "%s/plainfile", base);
	f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(onb_pki_init(file, true, &err), ONB_EEXIST);
	unlink(file);
	pathf(missing, "%s/no/such/dir", base);
	assert_int_not_equal(onb_pki_init(missing, false, &err), ONB_OK);
	assert_false(exists(missing));
	assert_int_equal(onb_pki_init("", false, &err), ONB_EINVAL);
	assert_int_equal(onb_pki_init(NULL, false, &err), ONB_EINVAL);
}

/* ---- onb_pki_issue ---- */

static void issue_client_cert(void **state)
{
	struct onb_err err = { "" };
	X509 *cert, *dev_ca, *claim_ca;
	EVP_PKEY *key;
	char fp[ONB_FP_HEXLEN + 1], fp2[65], cn[65], serial[80];
	const ASN1_INTEGER *sn;
	unsigned char *der = NULL;
	int64_t na;
	(void)state;

	issue_ok("device-ca", "dev-0001", "dev-0001", 30);
	assert_int_equal(mode_of(in(base, "dev-0001.key")), 0600);
	assert_int_equal(mode_of(in(base, "dev-0001.pem")), 0644);
	assert_int_equal(count_pem_certs(in(base, "dev-0001.pem"), NULL, 0), 1); /* leaf only */

	cert = load(base, "dev-0001.pem");
	key = load_key(base, "dev-0001.key");
	dev_ca = load(pki, "device-ca.pem");
	claim_ca = load(pki, "claim-ca.pem");
	assert_int_equal(X509_check_private_key(cert, key), 1);

	/* issued by device-ca, not by the claim CA or the root */
	assert_true(onb_cert_issued_by(cert, dev_ca));
	assert_false(onb_cert_issued_by(cert, claim_ca));

	/* leaf profile */
	assert_int_equal(X509_check_ca(cert), 0);
	assert_true(X509_get_extension_flags(cert) & EXFLAG_XKUSAGE);
	assert_int_equal(X509_get_extended_key_usage(cert), XKU_SSL_CLIENT);
	assert_int_equal(X509_get_key_usage(cert), KU_DIGITAL_SIGNATURE);
	assert_non_null(X509_get0_subject_key_id(cert));
	assert_int_equal(X509_get_version(cert), X509_VERSION_3);

	/* 128-bit positive serial, no padding byte */
	sn = X509_get0_serialNumber(cert);
	assert_int_equal(ASN1_STRING_type(sn), V_ASN1_INTEGER);
	assert_int_equal(ASN1_STRING_length(sn), 16);
	assert_int_equal(i2d_ASN1_INTEGER(sn, &der), 18);
	assert_true(der[2] >= 0x40 && der[2] < 0x80);
	OPENSSL_free(der);
	assert_int_equal(onb_cert_serial_hex(cert, serial, sizeof(serial), &err), ONB_OK);
	assert_int_equal(strlen(serial), 32);
	assert_int_equal(strspn(serial, "0123456789abcdef"), 32);

	/* fingerprint: 64 lower-case hex, same as computed directly */
	fp_of(cert, fp);
	assert_int_equal(strlen(fp), 64);
	assert_int_equal(strspn(fp, "0123456789abcdef"), 64);
	fp_direct(cert, fp2);
	assert_string_equal(fp, fp2);

	assert_int_equal(onb_cert_subject_cn(cert, cn, sizeof(cn), &err), ONB_OK);
	assert_string_equal(cn, "dev-0001");
	assert_int_equal(onb_cert_not_after(cert, &na, &err), ONB_OK);
	assert_true(llabs((long long)(na - (time(NULL) + 30 * 86400))) < 120);
	assert_true(X509_cmp_time(X509_get0_notBefore(cert), NULL) < 0);

	/* two issues never share a serial or a key */
	issue_ok("device-ca", "dev-0001", "dev-0001b", 30);
	{
		X509 *other = load(base, "dev-0001b.pem");
		assert_int_not_equal(ASN1_INTEGER_cmp(sn, X509_get0_serialNumber(other)), 0);
		assert_int_not_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), X509_get0_pubkey(other)), 1);
		X509_free(other);
	}

	X509_free(cert);
	X509_free(dev_ca);
	X509_free(claim_ca);
	EVP_PKEY_free(key);
}

static void issue_refuses_existing(void **state)
{
	struct onb_err err = { "" };
	char before[65], after[65];
	X509 *c;
	FILE *f;
	(void)state;

	issue_ok("device-ca", "dev-0003", "dev-0003", 10);
	c = load(base, "dev-0003.pem");
	fp_of(c, before);
	X509_free(c);
	assert_int_equal(onb_pki_issue(in(pki, "device-ca"), "dev-0003", in(base, "dev-0003"), 10, &err),
			ONB_EEXIST);
	assert_non_null(strstr(err.msg, "exists"));
	c = load(base, "dev-0003.pem");
	fp_of(c, after);
	X509_free(c);
	assert_string_equal(before, after);

	/* only the key exists: still refused, no certificate appears, key untouched */
	f = fopen(in(base, "dev-0004.key"), "w");
	assert_non_null(f);
	fputs("keep me\n", f);
	fclose(f);
	assert_int_equal(onb_pki_issue(in(pki, "device-ca"), "dev-0004", in(base, "dev-0004"), 10, &err),
			ONB_EEXIST);
	assert_false(exists(in(base, "dev-0004.pem")));
	{
		char line[32] = "";
		f = fopen(in(base, "dev-0004.key"), "r");
		assert_non_null(f);
		assert_non_null(fgets(line, sizeof(line), f));
		fclose(f);
		assert_string_equal(line, "keep me\n");
	}
	unlink(in(base, "dev-0004.key"));
}

static void issue_rejects_bad_input(void **state)
{
	struct onb_err err = { "" };
	char longcn[70], outdir[PATH_MAX], ca_pre[PATH_MAX], out[PATH_MAX];
	const char *bad_cn[] = { "", longcn, "tab\there", "nl\n", "caf\xc3\xa9", NULL };
	const int bad_days[] = { 0, -1, -365, 36501, 1000000 };
	FILE *src, *dst;
	int ch;
	(void)state;

	pathf(outdir, "%s/bad", base);
	assert_int_equal(mkdir(outdir, 0700), 0);
	pathf(out, "%s/x", outdir);
	pathf(ca_pre, "%s/device-ca", pki);
	memset(longcn, 'a', 65);
	longcn[65] = '\0';

	for(size_t i = 0; i < sizeof(bad_days) / sizeof(bad_days[0]); i++){
		err.msg[0] = '\0';
		assert_int_equal(onb_pki_issue(ca_pre, "dev-x", out, bad_days[i], &err), ONB_EINVAL);
		assert_true(strlen(err.msg) > 0);
	}
	assert_int_equal(onb_pki_issue(ca_pre, NULL, out, 10, &err), ONB_EINVAL);
	for(size_t i = 0; i < 6; i++){
		if(!bad_cn[i]) continue;
		assert_int_equal(onb_pki_issue(ca_pre, bad_cn[i], out, 10, &err), ONB_EINVAL);
	}
	/* 64 bytes is the limit and fine */
	longcn[64] = '\0';
	assert_int_equal(onb_pki_issue(ca_pre, longcn, out, 10, &err), ONB_OK);
	unlink(in(outdir, "x.pem"));
	unlink(in(outdir, "x.key"));

	/* a CA that does not exist */
	assert_int_equal(onb_pki_issue(in(pki, "nope-ca"), "dev-x", out, 10, &err), ONB_ENOTFOUND);
	assert_non_null(strstr(err.msg, "nope-ca.pem"));

	/* a CA certificate with another CA's key */
	src = fopen(in(pki, "claim-ca.pem"), "r");
	dst = fopen(in(outdir, "mix.pem"), "w");
	assert_non_null(src);
	assert_non_null(dst);
	while((ch = fgetc(src)) != EOF) fputc(ch, dst);
	fclose(src);
	fclose(dst);
	src = fopen(in(pki, "device-ca.key"), "r");
	dst = fopen(in(outdir, "mix.key"), "w");
	assert_non_null(src);
	assert_non_null(dst);
	while((ch = fgetc(src)) != EOF) fputc(ch, dst);
	fclose(src);
	fclose(dst);
	assert_int_not_equal(onb_pki_issue(in(outdir, "mix"), "dev-x", out, 10, &err), ONB_OK);
	assert_non_null(strstr(err.msg, "does not match"));

	/* a leaf is no CA */
	issue_ok("device-ca", "leaf", "leaf", 10);
	assert_int_not_equal(onb_pki_issue(in(base, "leaf"), "dev-x", out, 10, &err), ONB_OK);
	assert_non_null(strstr(err.msg, "not a CA"));

	/* nothing was left behind by any failure */
	assert_int_equal(count_entries(outdir), 2); /* mix.pem, mix.key */

	/* validity never outlives the CA */
	{
		X509 *ca = load(pki, "device-ca.pem"), *c;
		issue_ok("device-ca", "long-lived", "long-lived", ONB_CERT_DAYS_MAX);
		c = load(base, "long-lived.pem");
		assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(c), X509_get0_notAfter(ca)), 0);
		X509_free(c);
		X509_free(ca);
	}
}

/* ---- chains as mosquitto (cafile = ca-bundle.pem) will check them ---- */

static void server_cert_verifies(void **state)
{
	X509_STORE *st = bundle_store(pki);
	X509 *server = load(pki, "server.pem"), *svc = load(pki, "service-ca.pem");
	X509 *chain_file[2] = { 0 }, *chain[3] = { 0 };
	EVP_PKEY *key = load_key(pki, "server.key");
	GENERAL_NAMES *sans;
	bool dns = false, ip = false;
	int depth = 0;
	(void)state;

	assert_int_equal(X509_check_private_key(server, key), 1);
	assert_int_equal(verify(st, server, X509_PURPOSE_SSL_SERVER, X509_V_FLAG_X509_STRICT, chain, &depth), 1);
	assert_int_equal(depth, 3);
	assert_int_equal(X509_cmp(chain[1], svc), 0);
	for(int i = 0; i < 3; i++) X509_free(chain[i]);
	/* a server certificate is no client certificate */
	assert_int_not_equal(verify(st, server, X509_PURPOSE_SSL_CLIENT, 0, NULL, NULL), 1);

	assert_int_equal(X509_check_host(server, "localhost", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(server, "127.0.0.1", 0), 1);
	assert_int_not_equal(X509_check_host(server, "example.com", 0, 0, NULL), 1);
	sans = X509_get_ext_d2i(server, NID_subject_alt_name, NULL, NULL);
	assert_non_null(sans);
	for(int i = 0; i < sk_GENERAL_NAME_num(sans); i++){
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		int type;
		const ASN1_STRING *v = GENERAL_NAME_get0_value(gn, &type);
		if(type == GEN_DNS && ASN1_STRING_length(v) == 9
				&& !memcmp(ASN1_STRING_get0_data(v), "localhost", 9)) dns = true;
		if(type == GEN_IPADD && ASN1_STRING_length(v) == 4
				&& !memcmp(ASN1_STRING_get0_data(v), "\x7f\x00\x00\x01", 4)) ip = true;
	}
	GENERAL_NAMES_free(sans);
	assert_true(dns);
	assert_true(ip);
	assert_int_equal(X509_get_extended_key_usage(server), XKU_SSL_SERVER);

	/* server.pem carries its chain: leaf, then service-ca */
	assert_int_equal(count_pem_certs(in(pki, "server.pem"), chain_file, 2), 2);
	assert_int_equal(X509_cmp(chain_file[0], server), 0);
	assert_int_equal(X509_cmp(chain_file[1], svc), 0);
	X509_free(chain_file[0]);
	X509_free(chain_file[1]);

	EVP_PKEY_free(key);
	X509_free(server);
	X509_free(svc);
	X509_STORE_free(st);
}

static void device_chain_verifies(void **state)
{
	struct onb_err err = { "" };
	X509_STORE *st = bundle_store(pki), *other_st;
	X509 *dev, *dev_ca = load(pki, "device-ca.pem"), *root = load(pki, "root-ca.pem");
	X509 *chain[3] = { 0 };
	char other[PATH_MAX];
	int depth = 0;
	(void)state;

	issue_ok("device-ca", "dev-chain", "dev-chain", 365);
	dev = load(base, "dev-chain.pem");
	assert_int_equal(verify(st, dev, X509_PURPOSE_SSL_CLIENT, X509_V_FLAG_X509_STRICT, chain, &depth), 1);
	assert_int_equal(depth, 3);
	assert_int_equal(X509_cmp(chain[0], dev), 0);
	assert_int_equal(X509_cmp(chain[1], dev_ca), 0);
	assert_int_equal(X509_cmp(chain[2], root), 0);
	for(int i = 0; i < 3; i++) X509_free(chain[i]);
	/* a client certificate is no server certificate */
	assert_int_not_equal(verify(st, dev, X509_PURPOSE_SSL_SERVER, 0, NULL, NULL), 1);

	/* right issuer name and key id but a signature that no longer matches */
	{
		const ASN1_INTEGER *sn = X509_get0_serialNumber(dev);
		unsigned char *der = NULL, *hit = NULL;
		const unsigned char *p;
		int len = i2d_X509(dev, &der);
		X509 *tampered;

		assert_true(len > 0);
		for(int i = 0; i + ASN1_STRING_length(sn) <= len && !hit; i++){
			if(!memcmp(der + i, ASN1_STRING_get0_data(sn), (size_t)ASN1_STRING_length(sn))) hit = der + i;
		}
		assert_non_null(hit);
		hit[ASN1_STRING_length(sn) - 1] ^= 0x01; /* another serial, same signature */
		p = der;
		tampered = d2i_X509(NULL, &p, len);
		OPENSSL_free(der);
		assert_non_null(tampered);
		assert_int_equal(X509_check_issued(dev_ca, tampered), X509_V_OK);
		assert_false(onb_cert_issued_by(tampered, dev_ca));
		assert_int_not_equal(verify(st, tampered, X509_PURPOSE_SSL_CLIENT, 0, NULL, NULL), 1);
		X509_free(tampered);
	}

	/* the claim CA issues too, and is told apart from the device CA */
	issue_ok("claim-ca", "claim-shared", "claim-shared", 365);
	{
		X509 *claim = load(base, "claim-shared.pem"), *claim_ca = load(pki, "claim-ca.pem");
		assert_int_equal(verify(st, claim, X509_PURPOSE_SSL_CLIENT, 0, NULL, NULL), 1);
		assert_true(onb_cert_issued_by(claim, claim_ca));
		assert_false(onb_cert_issued_by(claim, dev_ca));
		assert_false(onb_cert_issued_by(dev, claim_ca));
		X509_free(claim);
		X509_free(claim_ca);
	}

	/* a certificate from another PKI (same names) does not verify here */
	pathf(other, "%s/other-pki", base);
	assert_int_equal(onb_pki_init(other, false, &err), ONB_OK);
	assert_int_equal(onb_pki_issue(in(other, "device-ca"), "dev-chain", in(base, "foreign"), 365, &err),
			ONB_OK);
	{
		X509 *foreign = load(base, "foreign.pem"), *other_ca = load(other, "device-ca.pem");
		assert_int_not_equal(verify(st, foreign, X509_PURPOSE_SSL_CLIENT, 0, NULL, NULL), 1);
		assert_false(onb_cert_issued_by(foreign, dev_ca));
		assert_false(onb_cert_issued_by(dev, other_ca));
		other_st = bundle_store(other);
		assert_int_equal(verify(other_st, foreign, X509_PURPOSE_SSL_CLIENT, 0, NULL, NULL), 1);
		X509_STORE_free(other_st);
		X509_free(foreign);
		X509_free(other_ca);
	}

	X509_free(dev);
	X509_free(dev_ca);
	X509_free(root);
	X509_STORE_free(st);
}

/* ---- the helpers' edges ---- */

static void helper_edges(void **state)
{
	struct onb_err err = { "" };
	X509 *c = load(pki, "device-ca.pem");
	X509_NAME *name;
	char buf[128], small[8], path[PATH_MAX];
	EVP_PKEY *k;
	FILE *f;
	(void)state;

	/* subject CN: too small a buffer, absent, embedded NUL, repeated */
	assert_int_equal(onb_cert_subject_cn(c, small, sizeof(small), &err), ONB_EINVAL);
	name = X509_NAME_new();
	assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_ASC,
			(const unsigned char *)"org", -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(c, name), 1);
	assert_int_equal(onb_cert_subject_cn(c, buf, sizeof(buf), &err), ONB_ENOTFOUND);
	assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING,
			(const unsigned char *)"ab\0cd", 5, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(c, name), 1);
	assert_int_equal(onb_cert_subject_cn(c, buf, sizeof(buf), &err), ONB_EINVAL);
	assert_non_null(strstr(err.msg, "NUL"));
	X509_NAME_free(name);
	name = X509_NAME_new();
	assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_ASC,
			(const unsigned char *)"one", -1, -1, 0), 1);
	assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_ASC,
			(const unsigned char *)"two", -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(c, name), 1);
	assert_int_equal(onb_cert_subject_cn(c, buf, sizeof(buf), &err), ONB_EINVAL);
	X509_NAME_free(name);
	assert_int_equal(onb_cert_serial_hex(c, small, sizeof(small), &err), ONB_EINVAL);
	X509_free(c);

	assert_false(onb_cert_issued_by(NULL, NULL));
	assert_int_equal(onb_cert_fingerprint(NULL, buf, &err), ONB_EINVAL);

	/* loading: missing file, not PEM, a certificate is not a key */
	assert_null(onb_cert_load(in(base, "missing.pem"), &err));
	assert_non_null(strstr(err.msg, "missing.pem"));
	assert_null(onb_key_load(in(base, "missing.key"), &err));
	assert_null(onb_cert_load(NULL, &err));
	pathf(path, "%s/garbage.pem", base);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("not a certificate\n", f);
	fclose(f);
	err.msg[0] = '\0';
	assert_null(onb_cert_load(path, &err));
	assert_true(strlen(err.msg) > 0);
	assert_null(onb_key_load(in(pki, "root-ca.pem"), &err));
	assert_null(onb_cert_load(in(pki, "root-ca.key"), &err));
	assert_int_equal(ERR_peek_error(), 0); /* the error queue is left clean */

	/* an encrypted key is refused without prompting */
	k = load_key(pki, "root-ca.key");
	pathf(path, "%s/enc.key", base);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, k, EVP_aes_256_cbc(),
			(const unsigned char *)"secret", 6, NULL, NULL), 1);
	fclose(f);
	EVP_PKEY_free(k);
	assert_null(onb_key_load(path, &err));
	assert_non_null(strstr(err.msg, "encrypted"));

	/* cn rules */
	assert_true(onb_cert_cn_valid("a"));
	assert_true(onb_cert_cn_valid("mosquitto-onboard dev root CA"));
	assert_false(onb_cert_cn_valid(""));
	assert_false(onb_cert_cn_valid(NULL));
	assert_false(onb_cert_cn_valid("\x7f"));
}

static void sign_rules(void **state)
{
	struct onb_err err = { "" };
	X509 *ca = load(pki, "device-ca.pem"), *root = load(pki, "root-ca.pem"), *c;
	EVP_PKEY *ca_key = load_key(pki, "device-ca.key"), *key;
	const char *good_dns[] = { "broker.example.com", "*.example.com", NULL };
	const char *good_ip[] = { "10.0.0.1", "::1", NULL };
	const char *bad_dns[][2] = { { "a b", NULL }, { "x,IP:1.2.3.4", NULL }, { "", NULL },
		{ "a..b", NULL }, { "-.", NULL } };
	const char *bad_ip[][2] = { { "999.1.1.1", NULL }, { "1.2.3.4,DNS:x", NULL }, { "1.2.3.4x", NULL },
		{ "localhost", NULL } };
	struct onb_cert_spec spec = { .profile = ONB_CERT_SERVER, .cn = "broker", .days = 10,
		.san_dns = good_dns, .san_ip = good_ip };
	(void)state;

	key = onb_key_generate(&err);
	assert_non_null(key);
	c = onb_cert_sign(&spec, key, ca, ca_key, &err);
	assert_non_null(c);
	assert_int_equal(X509_check_host(c, "broker.example.com", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(c, "x.example.com", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(c, "::1", 0), 1);
	assert_int_equal(X509_check_ip_asc(c, "10.0.0.1", 0), 1);
	assert_true(onb_cert_issued_by(c, ca));
	X509_free(c);

	spec.san_ip = NULL;
	for(size_t i = 0; i < sizeof(bad_dns) / sizeof(bad_dns[0]); i++){
		spec.san_dns = bad_dns[i];
		assert_null(onb_cert_sign(&spec, key, ca, ca_key, &err));
	}
	spec.san_dns = NULL;
	for(size_t i = 0; i < sizeof(bad_ip) / sizeof(bad_ip[0]); i++){
		spec.san_ip = bad_ip[i];
		assert_null(onb_cert_sign(&spec, key, ca, ca_key, &err));
	}
	spec.san_ip = NULL;

	/* profile/issuer rules */
	spec.profile = ONB_CERT_ISSUING_CA; /* device-ca has pathlen:0 */
	assert_null(onb_cert_sign(&spec, key, ca, ca_key, &err));
	assert_non_null(strstr(err.msg, "pathlen"));
	spec.profile = ONB_CERT_ROOT_CA; /* a root has no issuer */
	assert_null(onb_cert_sign(&spec, key, ca, ca_key, &err));
	assert_null(onb_cert_sign(&spec, key, NULL, ca_key, &err)); /* nor another's key */
	c = onb_cert_sign(&spec, key, NULL, key, &err);
	assert_non_null(c);
	assert_true(onb_cert_issued_by(c, c));
	X509_free(c);
	spec.profile = ONB_CERT_CLIENT;
	assert_null(onb_cert_sign(&spec, key, ca, NULL, &err));
	assert_null(onb_cert_sign(&spec, key, NULL, ca_key, &err));
	assert_null(onb_cert_sign(&spec, key, root, ca_key, &err)); /* key/cert mismatch */
	spec.days = 0;
	assert_null(onb_cert_sign(&spec, key, ca, ca_key, &err));
	spec.days = 10;
	spec.org = "";
	assert_null(onb_cert_sign(&spec, key, ca, ca_key, &err));
	spec.org = NULL;
	c = onb_cert_sign(&spec, key, ca, ca_key, &err);
	assert_non_null(c);
	assert_int_equal(X509_get_extended_key_usage(c), XKU_SSL_CLIENT);
	X509_free(c);

	EVP_PKEY_free(key);
	EVP_PKEY_free(ca_key);
	X509_free(ca);
	X509_free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(init_files_and_modes),
		cmocka_unit_test(bundle_is_root_and_issuing_cas),
		cmocka_unit_test(issuing_cas_chain_to_root),
		cmocka_unit_test(init_refuses_or_forces),
		cmocka_unit_test(issue_client_cert),
		cmocka_unit_test(issue_refuses_existing),
		cmocka_unit_test(issue_rejects_bad_input),
		cmocka_unit_test(server_cert_verifies),
		cmocka_unit_test(device_chain_verifies),
		cmocka_unit_test(helper_edges),
		cmocka_unit_test(sign_rules),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
