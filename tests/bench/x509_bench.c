/* Micro-benchmark of the certificate work on the hot paths (docs/performance.md):
 *   x509_bench sign N       claimsvc: onb_csr_issue for the key of a parsed
 *                           P-256 CSR (as handler.c does), N times
 *   x509_bench classify N D admission: onb_identity_classify of N freshly
 *                           parsed client certificates (as each mTLS connect
 *                           hands the plugin a new X509) drawn from D distinct
 *                           ones (D = N: every connect a new device; D small:
 *                           devices reconnecting)
 * Prints operations per second. For instruction counts run it under
 *   valgrind --tool=callgrind and read the inclusive cost of onb_csr_issue or
 *   onb_identity_classify divided by N. The PKI is made in memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "bench_util.h"
#include "pki/csr.h"
#include "identity/identity.h"
#include "pki/x509.h"

static EVP_PKEY *root_key, *ca_key[ONB_ID_COUNT];
static X509 *root;
static struct onb_ca_set cas;

static void die(const char *what, const struct onb_err *err)
{
	fprintf(stderr, "x509_bench: %s: %s\n", what, err ? err->msg : "failed");
	exit(1);
}

/* A root and one issuing CA per identity class, in a set made (with its
 * class cache) by onb_ca_set_load, as the plugin makes it. */
static void make_pki(void)
{
	static const char *const names[ONB_ID_COUNT] = { NULL, "device CA", "claim CA", "birth CA", "service CA" };
	static const char *const no_paths[ONB_ID_COUNT] = { NULL };
	struct onb_cert_spec rs = { .profile = ONB_CERT_ROOT_CA, .cn = "bench root", .days = 30 };
	struct onb_err err;

	if(onb_ca_set_load(&cas, no_paths, &err) != ONB_OK) die("CA set", &err);

	if(!(root_key = onb_key_generate(&err)) || !(root = onb_cert_sign(&rs, root_key, NULL, root_key, &err))){
		die("root", &err);
	}
	for(int c = ONB_ID_DEVICE; c < ONB_ID_COUNT; c++){
		struct onb_cert_spec cs = { .profile = ONB_CERT_ISSUING_CA, .cn = names[c], .days = 30 };
		if(!(ca_key[c] = onb_key_generate(&err)) || !(cas.ca[c] = onb_cert_sign(&cs, ca_key[c], root, root_key, &err))){
			die("issuing CA", &err);
		}
	}
}

/* The public key of a P-256 CSR, parsed the way claimsvc parses one. Caller
 * frees the request (the key is its get0). */
static X509_REQ *parsed_csr(void)
{
	EVP_PKEY *key = onb_key_generate(NULL);
	X509_REQ *mk = X509_REQ_new(), *req = NULL;
	BIO *b = BIO_new(BIO_s_mem());
	const char *code;
	struct onb_err err;
	char *pem;
	long n;

	if(!key || !mk || !b || X509_REQ_set_pubkey(mk, key) != 1 || X509_REQ_sign(mk, key, EVP_sha256()) <= 0
			|| PEM_write_bio_X509_REQ(b, mk) != 1){
		die("CSR", NULL);
	}
	n = BIO_get_mem_data(b, &pem);
	if(onb_csr_parse(pem, (size_t)n, &req, &code, &err) != ONB_OK) die("CSR parse", &err);
	BIO_free(b);
	X509_REQ_free(mk);
	EVP_PKEY_free(key);
	return req;
}

static void bench_sign(long n)
{
	X509_REQ *req = parsed_csr();
	struct onb_issued iss;
	struct onb_err err;
	int64_t t0 = bu_now_ns();

	for(long i = 0; i < n; i++){
		if(onb_csr_issue(X509_REQ_get0_pubkey(req), "bench-device", 30, cas.ca[ONB_ID_DEVICE],
				ca_key[ONB_ID_DEVICE], &iss, &err) != ONB_OK){
			die("issue", &err);
		}
		onb_issued_clear(&iss);
	}
	printf("sign: %ld certificates, %.0f/s\n", n, n / ((bu_now_ns() - t0) / 1e9));
	X509_REQ_free(req);
}

static void bench_classify(long n, long distinct)
{
	unsigned char **der = calloc((size_t)distinct, sizeof(*der));
	int *len = calloc((size_t)distinct, sizeof(*len));
	struct onb_cert_spec ls = { .profile = ONB_CERT_CLIENT, .cn = "bench-device", .days = 30 };
	EVP_PKEY *key = onb_key_generate(NULL);
	struct onb_err err;
	int64_t spent = 0;
	long devices = 0;

	if(!der || !len || !key) die("memory", NULL);
	for(long d = 0; d < distinct; d++){
		X509 *c = onb_cert_sign(&ls, key, cas.ca[ONB_ID_DEVICE], ca_key[ONB_ID_DEVICE], &err);
		if(!c || (len[d] = i2d_X509(c, &der[d])) <= 0) die("leaf", &err);
		X509_free(c);
	}
	for(long i = 0; i < n; i++){
		const unsigned char *p = der[i % distinct];
		X509 *c = d2i_X509(NULL, &p, len[i % distinct]);
		int64_t t0 = bu_now_ns();
		devices += onb_identity_classify(&cas, c) == ONB_ID_DEVICE;
		spent += bu_now_ns() - t0;
		X509_free(c);
	}
	if(devices != n) die("classification", NULL);
	printf("classify: %ld connects of %ld certificates, %.0f/s\n", n, distinct, n / (spent / 1e9));
	for(long d = 0; d < distinct; d++) OPENSSL_free(der[d]);
	free(der);
	free(len);
	EVP_PKEY_free(key);
}

int main(int argc, char **argv)
{
	long n;

	if(argc < 3 || (strcmp(argv[1], "sign") && strcmp(argv[1], "classify"))){
		fprintf(stderr, "usage: x509_bench sign N | classify N DISTINCT\n");
		return 2;
	}
	n = bu_num("x509_bench", "N", argv[2], 1, 100000000);
	make_pki();
	if(!strcmp(argv[1], "sign")) bench_sign(n);
	else bench_classify(n, argc > 3 ? bu_num("x509_bench", "DISTINCT", argv[3], 1, n) : n);
	onb_ca_set_clear(&cas);
	for(int c = 0; c < ONB_ID_COUNT; c++) EVP_PKEY_free(ca_key[c]);
	X509_free(root);
	EVP_PKEY_free(root_key);
	return 0;
}
