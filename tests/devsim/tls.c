/* The device's cryptography: its key and CSR, the certificates it is given,
 * and the one SSL_CTX every simulated connection shares.
 *
 * libmosquitto builds a fresh SSL_CTX for every connection (about 0.2 ms of
 * SSL_CTX_new plus PEM decoding of three files on OpenSSL 3.0) unless it is
 * handed one with MOSQ_OPT_SSL_CTX. devsim hands it one shared context whose
 * certificate callback presents the credentials of the device that owns the
 * connection, so a connect costs the client only the handshake itself. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/core_names.h>
#include <openssl/x509v3.h>

#include "pki/x509.h"
#include "devsim.h"

static int ex_index = -1;
static _Thread_local struct devsim_cred *tl_current;

void devsim_cred_clear(struct devsim_cred *c)
{
	X509_free(c->cert);
	sk_X509_pop_free(c->chain, X509_free);
	EVP_PKEY_free(c->key);
	memset(c, 0, sizeof(*c));
}

/* Reads every certificate from bio: the first into *leaf, the rest into *chain. */
static int read_certs(BIO *bio, X509 **leaf, STACK_OF(X509) **chain, char *err, size_t errlen)
{
	X509 *x, *first = NULL;
	STACK_OF(X509) *rest = NULL;
	char ebuf[160];

	ERR_clear_error();
	while((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))){
		if(!first){
			first = x;
			continue;
		}
		if(!rest && !(rest = sk_X509_new_null())){
			X509_free(x);
			goto fail;
		}
		if(!sk_X509_push(rest, x)){
			X509_free(x);
			goto fail;
		}
	}
	if(!first){
		snprintf(err, errlen, "no PEM certificate: %s", onb_ssl_errstr(ebuf, sizeof(ebuf)));
		return -1;
	}
	ERR_clear_error(); /* the loop ends on "no start line" */
	*leaf = first;
	*chain = rest;
	return 0;
fail:
	snprintf(err, errlen, "out of memory reading certificates");
	X509_free(first);
	sk_X509_pop_free(rest, X509_free);
	return -1;
}

int devsim_cred_load(struct devsim_cred *c, const char *certfile, const char *keyfile,
		char *err, size_t errlen)
{
	struct devsim_cred n = { 0 };
	struct onb_err oerr;
	char sub[200];
	BIO *bio = BIO_new_file(certfile, "r");

	if(!bio){
		snprintf(err, errlen, "cannot read %s: %s", certfile, strerror(errno));
		ERR_clear_error();
		return -1;
	}
	if(read_certs(bio, &n.cert, &n.chain, sub, sizeof(sub)) != 0){
		BIO_free(bio);
		snprintf(err, errlen, "%s: %s", certfile, sub);
		return -1;
	}
	BIO_free(bio);
	if(!(n.key = onb_key_load(keyfile, &oerr))){
		snprintf(err, errlen, "%s", oerr.msg);
		devsim_cred_clear(&n);
		return -1;
	}
	if(X509_check_private_key(n.cert, n.key) != 1){
		ERR_clear_error();
		snprintf(err, errlen, "%s does not match %s", keyfile, certfile);
		devsim_cred_clear(&n);
		return -1;
	}
	*c = n;
	return 0;
}

int devsim_cred_from_pem(struct devsim_cred *c, const char *pem, EVP_PKEY *key,
		char *err, size_t errlen)
{
	struct devsim_cred n = { 0 };
	BIO *bio = BIO_new_mem_buf(pem, -1);

	if(!bio){
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if(read_certs(bio, &n.cert, &n.chain, err, errlen) != 0){
		BIO_free(bio);
		return -1;
	}
	BIO_free(bio);
	/* A certificate for someone else's key is not this device's certificate. */
	if(X509_check_private_key(n.cert, key) != 1){
		ERR_clear_error();
		snprintf(err, errlen, "certificatePem does not certify this device's key");
		devsim_cred_clear(&n);
		return -2;
	}
	if(EVP_PKEY_up_ref(key) != 1){
		snprintf(err, errlen, "out of memory");
		devsim_cred_clear(&n);
		return -1;
	}
	n.key = key;
	*c = n;
	return 0;
}

/* Presents the credentials of the device that owns this connection. */
static int cert_cb(SSL *ssl, void *arg)
{
	struct devsim_cred *c = SSL_get_ex_data(ssl, ex_index);

	(void)arg;
	if(!c) c = tl_current;
	if(!c || !c->cert || !c->key) return 0;
	if(SSL_use_certificate(ssl, c->cert) != 1 || SSL_use_PrivateKey(ssl, c->key) != 1){
		return 0;
	}
	if(c->chain && SSL_set1_chain(ssl, c->chain) != 1) return 0;
	return 1;
}

SSL_CTX *devsim_tls_ctx_new(const char *cafile, const char *host, char *err, size_t errlen)
{
	SSL_CTX *ctx = NULL;
	X509_VERIFY_PARAM *param;
	unsigned char ip[16];
	char ebuf[160];
	int ok;

	if(ex_index < 0){
		ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
		if(ex_index < 0) goto ssl_fail;
	}
	if(!(ctx = SSL_CTX_new(TLS_client_method()))) goto ssl_fail;
	if(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) goto ssl_fail;
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if(SSL_CTX_load_verify_file(ctx, cafile) != 1){
		snprintf(err, errlen, "cannot load CA file %s: %s", cafile, onb_ssl_errstr(ebuf, sizeof(ebuf)));
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* The server certificate must name the host we dialled. */
	param = SSL_CTX_get0_param(ctx);
	if(inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1){
		ok = X509_VERIFY_PARAM_set1_ip_asc(param, host);
	}else{
		ok = X509_VERIFY_PARAM_set1_host(param, host, 0);
	}
	if(ok != 1) goto ssl_fail;
	SSL_CTX_set_cert_cb(ctx, cert_cb, NULL);
	return ctx;
ssl_fail:
	snprintf(err, errlen, "TLS context: %s", onb_ssl_errstr(ebuf, sizeof(ebuf)));
	SSL_CTX_free(ctx);
	return NULL;
}

void devsim_tls_current(struct devsim_cred *cred)
{
	tl_current = cred;
}

void devsim_tls_attach(struct mosquitto *m, struct devsim_cred *cred)
{
	SSL *ssl = mosquitto_ssl_get(m);

	if(ssl) SSL_set_ex_data(ssl, ex_index, cred);
}

/* Puts key's public half into req. For EC keys the SubjectPublicKeyInfo is
 * filled in directly (algorithm, curve, encoded point): X509_REQ_set_pubkey
 * on OpenSSL 3.0 encodes the key and decodes it again through the provider
 * encoder/decoder machinery, about 0.4 ms, most of a CSR's cost. */
static int req_set_pubkey(X509_REQ *req, EVP_PKEY *key)
{
	char curve[64];
	unsigned char *point = NULL;
	size_t len = 0;
	int nid;
	X509_PUBKEY *pub = X509_REQ_get_X509_PUBKEY(req);

	if(!pub || !EVP_PKEY_is_a(key, "EC")
			|| EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve), NULL) != 1
			|| (nid = OBJ_txt2nid(curve)) == NID_undef
			|| EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0, &len) != 1
			|| !(point = OPENSSL_malloc(len))
			|| EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, len, &len) != 1){
		OPENSSL_free(point);
		ERR_clear_error();
		return X509_REQ_set_pubkey(req, key);
	}
	/* On success point belongs to pub. */
	if(X509_PUBKEY_set0_param(pub, OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
			OBJ_nid2obj(nid), point, (int)len) != 1){
		OPENSSL_free(point);
		return 0;
	}
	return 1;
}

char *devsim_csr_pem(EVP_PKEY *key, const char *cn, char *err, size_t errlen)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *out = NULL, ebuf[160];
	long len;

	if(!req || !name || !bio
			|| X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1
			|| X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				(const unsigned char *)cn, -1, -1, 0) != 1
			|| X509_REQ_set_subject_name(req, name) != 1
			|| req_set_pubkey(req, key) != 1
			|| X509_REQ_sign(req, key, EVP_sha256()) <= 0
			|| PEM_write_bio_X509_REQ(bio, req) != 1
			|| (len = BIO_get_mem_data(bio, &data)) <= 0){
		snprintf(err, errlen, "CSR: %s", onb_ssl_errstr(ebuf, sizeof(ebuf)));
	}else if((out = malloc((size_t)len + 1))){
		memcpy(out, data, (size_t)len);
		out[len] = '\0';
	}else{
		snprintf(err, errlen, "out of memory");
	}
	BIO_free(bio);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return out;
}

/* Writes len bytes to path through path.tmp and rename, with mode. */
static int write_file(const char *path, const void *buf, size_t len, mode_t mode,
		char *err, size_t errlen)
{
	char tmp[4200];
	const char *p = buf;
	int fd;

	if(snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)){
		snprintf(err, errlen, "path too long");
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if(fd < 0 || fchmod(fd, mode) != 0){
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		if(fd >= 0) close(fd);
		return -1;
	}
	while(len > 0){
		ssize_t w = write(fd, p, len);
		if(w < 0 && errno == EINTR) continue;
		if(w <= 0){
			snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
			close(fd);
			unlink(tmp);
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	if(close(fd) != 0 || rename(tmp, path) != 0){
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int devsim_write_creds(const char *dir, const char *name, const char *cert_pem,
		EVP_PKEY *key, char *err, size_t errlen)
{
	char path[4096], ebuf[160], *data;
	BIO *bio;
	long len;
	int rc;

	if(snprintf(path, sizeof(path), "%s/%s.pem", dir, name) >= (int)sizeof(path)){
		snprintf(err, errlen, "path too long");
		return -1;
	}
	if(write_file(path, cert_pem, strlen(cert_pem), 0644, err, errlen) != 0) return -1;

	if(!(bio = BIO_new(BIO_s_mem()))
			|| PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1
			|| (len = BIO_get_mem_data(bio, &data)) <= 0){
		snprintf(err, errlen, "key: %s", onb_ssl_errstr(ebuf, sizeof(ebuf)));
		BIO_free(bio);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s.key", dir, name);
	rc = write_file(path, data, (size_t)len, 0600, err, errlen);
	OPENSSL_cleanse(data, (size_t)len);
	BIO_free(bio);
	return rc;
}
