/* PKCS#11 keys through OpenSSL's ENGINE API and libp11's "pkcs11" engine
 * (contract: pki/pkcs11.h). The only file of the tree compiled without
 * OPENSSL_NO_DEPRECATED (lib/CMakeLists.txt): Debian 12 has no PKCS#11
 * provider for OpenSSL 3, and the engine is reached through deprecated calls. */
#include "pki/pkcs11.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/engine.h>
#include <openssl/err.h>

#include "pki/x509.h"

static ENGINE *engine;       /* functional reference, or NULL */
static char engine_module[1024];

/* The engine, initialised once with module as its MODULE_PATH. */
static ENGINE *get_engine(const char *module, struct onb_err *err)
{
	ENGINE *e;
	char ebuf[160];

	if(!module) module = "";
	if(engine){
		if(strcmp(engine_module, module) != 0){
			onb_fail(err, ONB_EINVAL, "PKCS#11: only one module per process (%s is loaded)",
					engine_module[0] ? engine_module : "the default");
			return NULL;
		}
		return engine;
	}
	if(strlen(module) >= sizeof(engine_module)){
		onb_fail(err, ONB_EINVAL, "PKCS#11 module path too long");
		return NULL;
	}
	ERR_clear_error();
	/* Found in OpenSSL's engines directory (libengine-pkcs11-openssl). */
	e = ENGINE_by_id("pkcs11");
	if(!e){
		onb_fail(err, ONB_EUNAVAIL, "PKCS#11: the OpenSSL pkcs11 engine is not available "
				"(install libengine-pkcs11-openssl): %s", onb_ssl_errstr(ebuf, sizeof(ebuf)));
		return NULL;
	}
	if(*module && ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0) != 1){
		onb_fail(err, ONB_EINVAL, "PKCS#11: cannot set the module %s: %s", module,
				onb_ssl_errstr(ebuf, sizeof(ebuf)));
		ENGINE_free(e);
		return NULL;
	}
	if(ENGINE_init(e) != 1){
		onb_fail(err, ONB_EUNAVAIL, "PKCS#11: cannot initialise the engine with module %s: %s",
				*module ? module : "(default)", onb_ssl_errstr(ebuf, sizeof(ebuf)));
		ENGINE_free(e);
		return NULL;
	}
	ENGINE_free(e); /* the functional reference from ENGINE_init keeps it */
	engine = e;
	memcpy(engine_module, module, strlen(module) + 1);
	return engine;
}

static int hexval(char c)
{
	if(c >= '0' && c <= '9') return c - '0';
	if(c >= 'a' && c <= 'f') return c - 'a' + 10;
	if(c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* Splits uri into the URI without its pin-value attribute (rest) and the
 * percent-decoded PIN (pin, "" when absent). libp11 prints the URI it was
 * given in its own error messages: it must never hold the PIN. */
static bool split_pin(const char *uri, char *rest, size_t restlen, char *pin, size_t pinlen)
{
	size_t n = 0;

	pin[0] = '\0';
	if(restlen <= 7) return false;
	memcpy(rest, uri, 7); /* "pkcs11:" (checked by the caller): attributes follow */
	n = 7;
	uri += 7;
	while(*uri){
		size_t alen = strcspn(uri, ";?&");
		if(alen >= 10 && !strncmp(uri, "pin-value=", 10)){
			size_t k = 0;
			for(size_t i = 10; i < alen; i++){
				int c = (unsigned char)uri[i];
				if(c == '%'){
					int hi = i + 2 < alen ? hexval(uri[i + 1]) : -1, lo = i + 2 < alen ? hexval(uri[i + 2]) : -1;
					if(hi < 0 || lo < 0) return false;
					c = hi * 16 + lo;
					i += 2;
				}
				if(c == 0 || k + 1 >= pinlen) return false;
				pin[k++] = (char)c;
			}
			pin[k] = '\0';
			uri += alen;
			if(*uri) uri++; /* its separator goes with it */
			continue;
		}
		if(n + alen + 1 >= restlen) return false;
		memcpy(rest + n, uri, alen);
		n += alen;
		uri += alen;
		if(*uri) rest[n++] = *uri++;
	}
	while(n > 0 && (rest[n - 1] == ';' || rest[n - 1] == '?' || rest[n - 1] == '&')) n--;
	rest[n] = '\0';
	return true;
}

EVP_PKEY *onb_pkcs11_key_load(const char *uri, const char *module, struct onb_err *err)
{
	char shown[512], ebuf[160], rest[1024], pin[256];
	ENGINE *e;
	EVP_PKEY *key = NULL;

	if(!onb_key_is_pkcs11(uri)){
		onb_fail(err, ONB_EINVAL, "not a PKCS#11 URI");
		return NULL;
	}
	onb_key_spec_redact(uri, shown, sizeof(shown));
	if(!split_pin(uri, rest, sizeof(rest), pin, sizeof(pin))){
		onb_fail(err, ONB_EINVAL, "PKCS#11 URI %s is too long or has a malformed pin-value", shown);
		goto cleanup;
	}
	e = get_engine(module, err);
	if(!e) goto cleanup;
	ERR_clear_error();
	if(pin[0] && ENGINE_ctrl_cmd_string(e, "PIN", pin, 0) != 1){
		onb_fail(err, ONB_EINVAL, "PKCS#11: the engine refused the PIN: %s", onb_ssl_errstr(ebuf, sizeof(ebuf)));
		goto cleanup;
	}
	key = ENGINE_load_private_key(e, rest, NULL, NULL);
	if(!key){
		onb_fail(err, ONB_ENOTFOUND, "PKCS#11: no usable private key at %s: %s", shown,
				onb_ssl_errstr(ebuf, sizeof(ebuf)));
		goto cleanup;
	}
	ERR_clear_error();
cleanup:
	OPENSSL_cleanse(pin, sizeof(pin));
	return key;
}

void onb_pkcs11_shutdown(void)
{
	if(!engine) return;
	ENGINE_finish(engine);
	engine = NULL;
	engine_module[0] = '\0';
}
