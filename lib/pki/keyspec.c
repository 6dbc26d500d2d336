/* Where a CA signing key comes from: a PEM file or a PKCS#11 URI
 * (contract: pki/pkcs11.h). The PKCS#11 side is lib/pki/pkcs11/engine.c. */
#include "pki/pkcs11.h"

#include <stdio.h>
#include <string.h>

#include "pki/x509.h"

bool onb_key_is_pkcs11(const char *spec)
{
	return spec && !strncmp(spec, "pkcs11:", 7);
}

void onb_key_spec_redact(const char *spec, char *buf, size_t len)
{
	size_t n = 0;

	if(!len) return;
	buf[0] = '\0';
	if(!spec) return;
	if(onb_key_is_pkcs11(spec) && len > 7){
		memcpy(buf, spec, 7); /* the scheme: attributes start after it */
		n = 7;
		spec += 7;
	}
	/* Copy attribute by attribute (';' or '?' or '&' separate them). */
	while(*spec && n + 1 < len){
		size_t alen = strcspn(spec, ";?&");
		const char *show = spec;
		size_t slen = alen;

		if(alen >= 10 && !strncmp(spec, "pin-value=", 10)){
			show = "pin-value=***";
			slen = strlen(show);
		}
		if(n + slen >= len) break;
		memcpy(buf + n, show, slen);
		n += slen;
		spec += alen;
		if(*spec && n + 1 < len) buf[n++] = *spec++;
	}
	buf[n] = '\0';
}

EVP_PKEY *onb_signing_key_load(const char *spec, const char *module, struct onb_err *err)
{
	if(onb_key_is_pkcs11(spec)) return onb_pkcs11_key_load(spec, module, err);
	return onb_key_load(spec, err);
}
