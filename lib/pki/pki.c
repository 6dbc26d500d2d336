/* Development PKI: the CA hierarchy of DESIGN.md s.2 and client certificates.
 *
 * Files are written all-or-nothing: every output is first written to a
 * private temp file (mkstemp, 0600) in its final directory, then all are moved
 * into place (rename when overwriting is allowed, link + unlink when it is not,
 * so an existing file is never replaced by accident). On any failure the temp
 * files and whatever was already moved into place are removed. */
#include "pki/pki.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "pki/x509.h"

#define ORG "mosquitto-onboard dev"
#define ROOT_DAYS (20 * 365 + 5)
#define ISSUING_DAYS (10 * 365 + 2)
#define SERVER_DAYS 365
#define MODE_KEY 0600
#define MODE_CERT 0644
#define MAX_STAGED 16

struct ca_def {
	const char *name; /* file stem in DIR */
	const char *cn;
};

static const struct ca_def issuing_cas[] = {
	{ "device-ca", "mosquitto-onboard dev device CA" },
	{ "claim-ca", "mosquitto-onboard dev claim CA" },
	{ "manufacturer-ca", "mosquitto-onboard dev manufacturer CA" },
	{ "service-ca", "mosquitto-onboard dev service CA" },
};
#define N_ISSUING (sizeof(issuing_cas) / sizeof(issuing_cas[0]))
#define SERVER_ISSUER 3 /* service-ca signs the broker's certificate */

const char *const onb_pki_init_files[] = {
	"root-ca.pem", "root-ca.key",
	"device-ca.pem", "device-ca.key",
	"claim-ca.pem", "claim-ca.key",
	"manufacturer-ca.pem", "manufacturer-ca.key",
	"service-ca.pem", "service-ca.key",
	"server.pem", "server.key",
	"ca-bundle.pem",
	NULL,
};

/* ---- staged, all-or-nothing file output ---- */

struct staged_file {
	char *path;     /* final name */
	char *tmp;      /* temp name while staged, NULL once moved or removed */
	bool committed; /* now at path, created by us */
};

struct stage {
	struct staged_file f[MAX_STAGED];
	size_t n;
	bool replace; /* rename over existing files instead of refusing */
};

/* Writes the contents of mem into a new temp file next to path, with mode. */
static int stage_write(struct stage *st, const char *path, BIO *mem, mode_t mode,
		struct onb_err *err)
{
	int ret = ONB_EINTERNAL;
	struct staged_file *sf;
	char *data = NULL;
	long len;
	size_t tlen;
	bool created;

	if(st->n >= MAX_STAGED) return onb_fail(err, ONB_EINTERNAL, "too many output files");
	sf = &st->f[st->n];
	memset(sf, 0, sizeof(*sf));
	len = BIO_get_mem_data(mem, &data);
	if(len <= 0 || !data) return onb_fail(err, ONB_EINTERNAL, "nothing to write to %s", path);

	tlen = strlen(path) + sizeof(".tmpXXXXXX");
	if(tlen > PATH_MAX) return onb_fail(err, ONB_EINVAL, "path too long: %s", path);
	sf->path = strdup(path);
	sf->tmp = malloc(tlen);
	if(!sf->path || !sf->tmp){
		ret = onb_fail(err, ONB_EINTERNAL, "out of memory");
		goto cleanup;
	}
	snprintf(sf->tmp, tlen, "%s.tmpXXXXXX", path);
	if(!onb_write_temp(sf->tmp, mode, data, (size_t)len, &created)){
		ret = onb_fail(err, ONB_EUNAVAIL, created ? "cannot write %s: %s" : "cannot create %s: %s",
				path, strerror(errno));
		goto cleanup;
	}
	st->n++;
	ret = ONB_OK;
cleanup:
	if(ret != ONB_OK){
		free(sf->path);
		free(sf->tmp);
		memset(sf, 0, sizeof(*sf));
	}
	return ret;
}

/* Removes every temp file and every file moved into place; frees the stage. */
static void stage_abort(struct stage *st)
{
	for(size_t i = 0; i < st->n; i++){
		if(st->f[i].tmp) unlink(st->f[i].tmp);
		if(st->f[i].committed) unlink(st->f[i].path);
	}
}

static void stage_free(struct stage *st)
{
	for(size_t i = 0; i < st->n; i++){
		free(st->f[i].path);
		free(st->f[i].tmp);
	}
	st->n = 0;
}

/* Flushes a directory entry change to disk (best effort). */
static void sync_dir_of(const char *path)
{
	char *copy = strdup(path);
	char *slash;
	int fd;

	if(!copy) return;
	slash = strrchr(copy, '/');
	if(!slash){
		fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}else{
		if(slash == copy) slash[1] = '\0';
		else *slash = '\0';
		fd = open(copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if(fd >= 0){
		fsync(fd);
		close(fd);
	}
	free(copy);
}

/* Moves every staged file to its final name; on failure undoes all of it. */
static int stage_commit(struct stage *st, struct onb_err *err)
{
	for(size_t i = 0; i < st->n; i++){
		struct staged_file *sf = &st->f[i];
		int rc;

		if(st->replace){
			rc = rename(sf->tmp, sf->path);
		}else{
			rc = link(sf->tmp, sf->path); /* fails with EEXIST, never replaces */
			if(rc == 0) unlink(sf->tmp);
		}
		if(rc != 0){
			int e = errno;
			stage_abort(st);
			if(e == EEXIST) return onb_fail(err, ONB_EEXIST, "%s already exists", sf->path);
			return onb_fail(err, ONB_EUNAVAIL, "cannot create %s: %s", sf->path, strerror(e));
		}
		free(sf->tmp);
		sf->tmp = NULL;
		sf->committed = true;
	}
	if(st->n > 0) sync_dir_of(st->f[0].path);
	return ONB_OK;
}

/* The end of every staging: ret is how the writes went. Commits them all
 * when ret is ONB_OK, else removes them; returns the outcome. */
static int stage_finish(struct stage *st, int ret, struct onb_err *err)
{
	if(ret != ONB_OK){
		stage_abort(st);
		return ret;
	}
	return stage_commit(st, err);
}

/* ---- PEM helpers ---- */

static int pem_cert(BIO *mem, X509 *cert, struct onb_err *err)
{
	char ebuf[160];

	if(PEM_write_bio_X509(mem, cert) != 1){
		return onb_fail(err, ONB_EINTERNAL, "cannot encode certificate: %s",
				onb_ssl_errstr(ebuf, sizeof(ebuf)));
	}
	return ONB_OK;
}

/* Stages cert (plus an optional chain certificate) as PEM at path. */
static int stage_cert(struct stage *st, const char *path, X509 *cert, X509 *chain,
		struct onb_err *err)
{
	int ret = ONB_EINTERNAL;
	BIO *mem = BIO_new(BIO_s_mem());

	if(!mem) return onb_fail(err, ONB_EINTERNAL, "out of memory");
	ret = pem_cert(mem, cert, err);
	if(ret == ONB_OK && chain) ret = pem_cert(mem, chain, err);
	if(ret == ONB_OK) ret = stage_write(st, path, mem, MODE_CERT, err);
	BIO_free(mem);
	return ret;
}

/* Stages key as unencrypted PKCS#8 PEM at path, mode 0600. The encoding
 * lives in secure memory and is cleansed when freed. */
static int stage_key(struct stage *st, const char *path, EVP_PKEY *key, struct onb_err *err)
{
	int ret = ONB_EINTERNAL;
	BIO *mem = BIO_new(BIO_s_secmem());
	char ebuf[160];

	if(!mem) return onb_fail(err, ONB_EINTERNAL, "out of memory");
	if(PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL) != 1){
		ret = onb_fail(err, ONB_EINTERNAL, "cannot encode private key: %s",
				onb_ssl_errstr(ebuf, sizeof(ebuf)));
	}else{
		ret = stage_write(st, path, mem, MODE_KEY, err);
	}
	BIO_free(mem);
	return ret;
}

/* ---- onb_pki_init ---- */

/* dir + "/" + name into buf; false when it does not fit. */
static bool join(char *buf, size_t len, const char *dir, const char *name)
{
	size_t dl = strlen(dir);
	bool slash = dl > 0 && dir[dl - 1] == '/';
	int n = snprintf(buf, len, "%s%s%s", dir, slash ? "" : "/", name);
	return n > 0 && (size_t)n < len;
}

/* Whether dir has entries other than . and ..; -1 with err set when unreadable. */
static int dir_has_entries(const char *dir, struct onb_err *err)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int found = 0;

	if(!d){
		onb_fail(err, ONB_EUNAVAIL, "cannot read directory %s: %s", dir, strerror(errno));
		return -1;
	}
	while((de = readdir(d)) != NULL){
		if(strcmp(de->d_name, ".") && strcmp(de->d_name, "..")){
			found = 1;
			break;
		}
	}
	closedir(d);
	return found;
}

/* Checks that dir may receive the PKI; sets *must_create when it is absent. */
static int check_init_dir(const char *dir, bool force, bool *must_create, struct onb_err *err)
{
	struct stat sb;
	char path[PATH_MAX];
	int has;

	*must_create = false;
	if(stat(dir, &sb) != 0){
		if(errno != ENOENT){
			return onb_fail(err, ONB_EUNAVAIL, "cannot access %s: %s", dir, strerror(errno));
		}
		*must_create = true;
		return ONB_OK;
	}
	if(!S_ISDIR(sb.st_mode)) return onb_fail(err, ONB_EEXIST, "%s exists and is not a directory", dir);
	has = dir_has_entries(dir, err);
	if(has < 0) return ONB_EUNAVAIL;
	if(has && !force){
		return onb_fail(err, ONB_EEXIST, "refusing to overwrite: %s is not empty", dir);
	}
	/* with force, refuse up front what rename could not replace */
	for(size_t i = 0; onb_pki_init_files[i]; i++){
		if(!join(path, sizeof(path), dir, onb_pki_init_files[i])){
			return onb_fail(err, ONB_EINVAL, "directory path too long: %s", dir);
		}
		if(lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode)){
			return onb_fail(err, ONB_EEXIST, "%s is a directory", path);
		}
	}
	return ONB_OK;
}

/* Generates a key and a certificate for one entry of the hierarchy. */
static int make_pair(const struct onb_cert_spec *spec, X509 *issuer, EVP_PKEY *issuer_key,
		X509 **cert, EVP_PKEY **key, struct onb_err *err)
{
	EVP_PKEY *k = onb_key_generate(err);
	X509 *c;

	if(!k) return ONB_EINTERNAL;
	c = onb_cert_sign(spec, k, issuer, issuer ? issuer_key : k, err);
	if(!c){
		EVP_PKEY_free(k);
		return ONB_EINTERNAL;
	}
	*cert = c;
	*key = k;
	return ONB_OK;
}

/* Stages NAME.pem and NAME.key in dir. */
static int stage_pair(struct stage *st, const char *dir, const char *name, X509 *cert,
		X509 *chain, EVP_PKEY *key, struct onb_err *err)
{
	char path[PATH_MAX], file[64];
	int ret;

	snprintf(file, sizeof(file), "%s.pem", name);
	if(!join(path, sizeof(path), dir, file)) return onb_fail(err, ONB_EINVAL, "path too long");
	ret = stage_cert(st, path, cert, chain, err);
	if(ret != ONB_OK) return ret;
	snprintf(file, sizeof(file), "%s.key", name);
	if(!join(path, sizeof(path), dir, file)) return onb_fail(err, ONB_EINVAL, "path too long");
	return stage_key(st, path, key, err);
}

int onb_pki_init(const char *dir, bool force, struct onb_err *err)
{
	int ret = ONB_EINTERNAL;
	struct stage st = { .n = 0, .replace = force };
	X509 *root = NULL, *ca[N_ISSUING] = { 0 }, *server = NULL;
	EVP_PKEY *root_key = NULL, *ca_key[N_ISSUING] = { 0 }, *server_key = NULL;
	BIO *bundle = NULL;
	bool must_create = false, created = false;
	char path[PATH_MAX];
	static const char *const server_dns[] = { "localhost", NULL };
	static const char *const server_ip[] = { "127.0.0.1", NULL };

	if(!dir || !*dir) return onb_fail(err, ONB_EINVAL, "no PKI directory given");
	if(strlen(dir) + 32 > PATH_MAX) return onb_fail(err, ONB_EINVAL, "directory path too long");
	ret = check_init_dir(dir, force, &must_create, err);
	if(ret != ONB_OK) return ret;

	/* everything in memory first */
	{
		struct onb_cert_spec spec = { .profile = ONB_CERT_ROOT_CA, .org = ORG,
			.cn = "mosquitto-onboard dev root CA", .days = ROOT_DAYS };
		ret = make_pair(&spec, NULL, NULL, &root, &root_key, err);
		if(ret != ONB_OK) goto cleanup;
	}
	for(size_t i = 0; i < N_ISSUING; i++){
		struct onb_cert_spec spec = { .profile = ONB_CERT_ISSUING_CA, .org = ORG,
			.cn = issuing_cas[i].cn, .days = ISSUING_DAYS };
		ret = make_pair(&spec, root, root_key, &ca[i], &ca_key[i], err);
		if(ret != ONB_OK) goto cleanup;
	}
	{
		struct onb_cert_spec spec = { .profile = ONB_CERT_SERVER, .org = ORG,
			.cn = "localhost", .days = SERVER_DAYS,
			.san_dns = server_dns, .san_ip = server_ip };
		ret = make_pair(&spec, ca[SERVER_ISSUER], ca_key[SERVER_ISSUER], &server, &server_key, err);
		if(ret != ONB_OK) goto cleanup;
	}
	bundle = BIO_new(BIO_s_mem());
	if(!bundle){
		ret = onb_fail(err, ONB_EINTERNAL, "out of memory");
		goto cleanup;
	}
	ret = pem_cert(bundle, root, err);
	for(size_t i = 0; ret == ONB_OK && i < N_ISSUING; i++) ret = pem_cert(bundle, ca[i], err);
	if(ret != ONB_OK) goto cleanup;

	/* then the files */
	if(must_create){
		if(mkdir(dir, 0755) != 0){
			ret = onb_fail(err, errno == EEXIST ? ONB_EEXIST : ONB_EUNAVAIL,
					"cannot create directory %s: %s", dir, strerror(errno));
			goto cleanup;
		}
		created = true;
	}
	ret = stage_pair(&st, dir, "root-ca", root, NULL, root_key, err);
	for(size_t i = 0; ret == ONB_OK && i < N_ISSUING; i++){
		ret = stage_pair(&st, dir, issuing_cas[i].name, ca[i], NULL, ca_key[i], err);
	}
	/* server.pem carries the service CA too, so that clients trusting only
	 * the root can build the chain */
	if(ret == ONB_OK) ret = stage_pair(&st, dir, "server", server, ca[SERVER_ISSUER], server_key, err);
	if(ret == ONB_OK){
		if(!join(path, sizeof(path), dir, "ca-bundle.pem")){
			ret = onb_fail(err, ONB_EINVAL, "directory path too long");
		}else{
			ret = stage_write(&st, path, bundle, MODE_CERT, err);
		}
	}
	ret = stage_finish(&st, ret, err);

cleanup:
	stage_free(&st);
	if(ret != ONB_OK && created) rmdir(dir);
	BIO_free(bundle);
	X509_free(root);
	X509_free(server);
	EVP_PKEY_free(root_key);
	EVP_PKEY_free(server_key);
	for(size_t i = 0; i < N_ISSUING; i++){
		X509_free(ca[i]);
		EVP_PKEY_free(ca_key[i]);
	}
	return ret;
}

/* ---- onb_pki_issue ---- */

static bool with_ext(char *buf, size_t len, const char *prefix, const char *ext)
{
	int n = snprintf(buf, len, "%s%s", prefix, ext);
	return n > 0 && (size_t)n < len;
}

/* ONB_EEXIST when path exists (even as a dangling symlink). */
static int must_not_exist(const char *path, struct onb_err *err)
{
	struct stat sb;

	if(lstat(path, &sb) == 0) return onb_fail(err, ONB_EEXIST, "%s already exists", path);
	if(errno != ENOENT) return onb_fail(err, ONB_EUNAVAIL, "cannot access %s: %s", path, strerror(errno));
	return ONB_OK;
}

/* The rc that goes with a failed onb_cert_load/onb_key_load of path. */
static int load_rc(const char *path)
{
	if(access(path, F_OK) != 0) return errno == ENOENT ? ONB_ENOTFOUND : ONB_EUNAVAIL;
	if(access(path, R_OK) != 0) return ONB_EUNAVAIL;
	return ONB_EINVAL;
}

int onb_pki_issue(const char *ca_prefix, const char *cn, const char *out_prefix,
		int days, struct onb_err *err)
{
	return onb_pki_issue_org(ca_prefix, cn, NULL, out_prefix, days, err);
}

int onb_pki_issue_org(const char *ca_prefix, const char *cn, const char *org,
		const char *out_prefix, int days, struct onb_err *err)
{
	int ret = ONB_EINTERNAL;
	struct stage st = { .n = 0, .replace = false };
	char ca_pem[PATH_MAX], ca_keyf[PATH_MAX], out_pem[PATH_MAX], out_key[PATH_MAX];
	X509 *ca = NULL, *cert = NULL;
	EVP_PKEY *ca_key = NULL, *key = NULL;
	struct onb_cert_spec spec = { .profile = ONB_CERT_CLIENT, .org = org ? org : ORG, .cn = cn, .days = days };

	if(org && !onb_cert_cn_valid(org)){
		return onb_fail(err, ONB_EINVAL, "organization must be 1..%d printable ASCII characters",
				ONB_CERT_CN_MAX);
	}
	if(!ca_prefix || !*ca_prefix) return onb_fail(err, ONB_EINVAL, "no CA given");
	if(!out_prefix || !*out_prefix) return onb_fail(err, ONB_EINVAL, "no output prefix given");
	if(!onb_cert_cn_valid(cn)){
		return onb_fail(err, ONB_EINVAL, "common name must be 1..%d printable ASCII characters",
				ONB_CERT_CN_MAX);
	}
	if(days < 1 || days > ONB_CERT_DAYS_MAX){
		return onb_fail(err, ONB_EINVAL, "validity must be 1..%d days, not %d", ONB_CERT_DAYS_MAX, days);
	}
	if(!with_ext(ca_pem, sizeof(ca_pem), ca_prefix, ".pem")
			|| !with_ext(ca_keyf, sizeof(ca_keyf), ca_prefix, ".key")
			|| !with_ext(out_pem, sizeof(out_pem), out_prefix, ".pem")
			|| !with_ext(out_key, sizeof(out_key), out_prefix, ".key")){
		return onb_fail(err, ONB_EINVAL, "path too long");
	}
	if((ret = must_not_exist(out_pem, err)) != ONB_OK) return ret;
	if((ret = must_not_exist(out_key, err)) != ONB_OK) return ret;

	ca = onb_cert_load(ca_pem, err);
	if(!ca){
		ret = load_rc(ca_pem);
		goto cleanup;
	}
	ca_key = onb_key_load(ca_keyf, err);
	if(!ca_key){
		ret = load_rc(ca_keyf);
		goto cleanup;
	}
	if(!(key = onb_key_generate(err))){
		ret = ONB_EINTERNAL;
		goto cleanup;
	}
	cert = onb_cert_sign(&spec, key, ca, ca_key, err);
	if(!cert){
		ret = ONB_EINVAL;
		goto cleanup;
	}
	if(!onb_cert_issued_by(cert, ca)){
		ret = onb_fail(err, ONB_EINTERNAL, "the new certificate does not verify against %s", ca_pem);
		goto cleanup;
	}

	ret = stage_cert(&st, out_pem, cert, NULL, err);
	if(ret == ONB_OK) ret = stage_key(&st, out_key, key, err);
	ret = stage_finish(&st, ret, err);

cleanup:
	stage_free(&st);
	X509_free(ca);
	X509_free(cert);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(key);
	return ret;
}
