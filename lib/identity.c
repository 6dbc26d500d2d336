#include "onb/identity.h"

#include "onb/x509.h"

static const char *const class_names[ONB_ID_COUNT] = {
	[ONB_ID_NONE] = "none",
	[ONB_ID_DEVICE] = "device",
	[ONB_ID_CLAIM] = "claim",
	[ONB_ID_BIRTH] = "birth",
	[ONB_ID_SERVICE] = "service",
};

int onb_ca_set_load(struct onb_ca_set *set, const char *const paths[ONB_ID_COUNT],
		struct onb_err *err)
{
	struct onb_ca_set loaded = { { NULL } };

	for(int c = ONB_ID_DEVICE; c < ONB_ID_COUNT; c++){
		if(!paths[c]) continue;
		loaded.ca[c] = onb_cert_load(paths[c], err);
		if(!loaded.ca[c]){
			onb_ca_set_clear(&loaded);
			return ONB_EINVAL;
		}
	}
	*set = loaded;
	return ONB_OK;
}

void onb_ca_set_clear(struct onb_ca_set *set)
{
	for(int c = 0; c < ONB_ID_COUNT; c++){
		X509_free(set->ca[c]);
		set->ca[c] = NULL;
	}
}

enum onb_idclass onb_identity_classify(const struct onb_ca_set *set, X509 *cert)
{
	if(!cert) return ONB_ID_NONE;
	for(int c = ONB_ID_DEVICE; c < ONB_ID_COUNT; c++){
		if(set->ca[c] && onb_cert_issued_by(cert, set->ca[c])) return (enum onb_idclass)c;
	}
	return ONB_ID_NONE;
}

const char *onb_idclass_name(enum onb_idclass c)
{
	if((int)c < 0 || c >= ONB_ID_COUNT) return "none";
	return class_names[c];
}
