#include "identity/admission.h"

#include <stdio.h>
#include <string.h>

#include "identity/authority.h"
#include "core/ids.h"
#include "pki/x509.h"

static int decide(struct onb_admission *out, bool allowed, enum onb_admit_reason reason,
		const char *detail)
{
	out->allowed = allowed;
	out->reason = onb_admit_reason_name(reason);
	snprintf(out->detail, sizeof(out->detail), "%s", detail);
	return ONB_OK;
}

/* Where the device records come from: Redis (rc) or a view (then a record
 * absent from it is a miss, not a refusal). */
struct source {
	redisContext *rc;
	const struct onb_admview *view;
	int64_t now_ms;
	const struct onb_admit_prefetch *pre; /* or the answer read by a worker */
};

static int prefetched(const struct onb_admit_prefetch *pre, struct onb_device *out, struct onb_err *err)
{
	if(pre->code == ONB_OK){
		*out = pre->dev;
		return ONB_OK;
	}
	return onb_fail(err, pre->code, "%s", pre->msg);
}

static int device_get(const struct source *src, const char *id, struct onb_device *out, struct onb_err *err)
{
	if(src->pre) return prefetched(src->pre, out, err);
	if(src->view) return onb_admview_by_id(src->view, id, out, err);
	return onb_registry_device_get(src->rc, id, out, err);
}

static int device_by_fp(const struct source *src, const char *fp, struct onb_device *out, struct onb_err *err)
{
	if(src->pre) return prefetched(src->pre, out, err);
	if(src->view) return onb_admview_by_fp(src->view, fp, src->now_ms, out, err);
	return onb_registry_device_by_fp(src->rc, fp, out, err);
}

/* Returns ONB_ENOTFOUND, out undecided, when a view has no record to decide by. */
static int admit(const struct source *src, const struct onb_ca_set *cas, X509 *cert,
		const char *client_id, struct onb_admission *out)
{
	redisContext *rc = src->rc;
	struct onb_err err;
	int r;

	memset(out, 0, sizeof(*out));
	if(!cert) return decide(out, false, ONB_AR_NO_CERTIFICATE, "no client certificate");
	if(onb_cert_fingerprint(cert, out->fp, &err) != ONB_OK){
		return decide(out, false, ONB_AR_BAD_CERTIFICATE, err.msg);
	}
	out->idclass = onb_identity_classify(cas, cert);
	if(out->idclass == ONB_ID_NONE){
		return decide(out, false, ONB_AR_UNKNOWN_CA, "certificate issued by no configured CA");
	}
	/* The client id becomes part of topics and keys: validate it before use. */
	if(!onb_id_valid(client_id)){
		return decide(out, false, ONB_AR_BAD_CLIENT_ID, "client id is not a valid device id");
	}
	if(onb_idclass_provisioning(out->idclass)){
		/* Shared or per-device provisioning identities: their policy confines
		 * them to the provisioning topics; claimsvc checks the rest. But the
		 * client id of a registered device is that device's alone: taking it
		 * would take over its persistent session (subscriptions, queued
		 * commands) while it is offline. Only the device's own birth
		 * certificate may use it: a factory-reset device provisioning again
		 * (a template's reprovision same-identity), connecting as the AWS
		 * demos do, with one client id for both connections. */
		if(!rc && !src->view && !src->pre) return decide(out, false, ONB_AR_REGISTRY_UNAVAILABLE, "registry unreachable");
		r = device_get(src, client_id, &out->dev, &err);
		if(r == ONB_ENOTFOUND && src->view) return ONB_ENOTFOUND;
		if(r == ONB_OK && onb_client_id_reserved(out->idclass, out->dev.cert_fp[0] != '\0',
				!strcmp(out->dev.birth_fp, out->fp))){
			return decide(out, false, ONB_AR_CLIENT_ID_RESERVED, "client id belongs to a registered device");
		}
		memset(&out->dev, 0, sizeof(out->dev));
		if(r != ONB_OK && r != ONB_ENOTFOUND){
			decide(out, false, ONB_AR_REGISTRY_UNAVAILABLE, err.msg);
			return ONB_EUNAVAIL;
		}
		return decide(out, true, ONB_AR_OK, onb_idclass_name(out->idclass));
	}
	if(out->idclass == ONB_ID_SERVICE){
		/* One service certificate, one client id: services cannot pose as
		 * each other. */
		char cn[ONB_ID_MAX + 1];
		if(onb_cert_subject_cn(cert, cn, sizeof(cn), &err) != ONB_OK || strcmp(cn, client_id) != 0){
			return decide(out, false, ONB_AR_CLIENT_ID_MISMATCH, "service client id differs from its certificate CN");
		}
		return decide(out, true, ONB_AR_OK, "service");
	}
	if(!rc && !src->view && !src->pre) return decide(out, false, ONB_AR_REGISTRY_UNAVAILABLE, "registry unreachable");

	r = device_by_fp(src, out->fp, &out->dev, &err);
	if(r == ONB_ENOTFOUND && src->view) return ONB_ENOTFOUND;
	if(r == ONB_ENOTFOUND){
		return decide(out, false, ONB_AR_NOT_REGISTERED, "certificate is not bound to a device");
	}
	if(r == ONB_EREFUSED){
		return decide(out, false, ONB_AR_CERTIFICATE_RETIRED, err.msg);
	}
	if(r != ONB_OK){
		decide(out, false, ONB_AR_REGISTRY_UNAVAILABLE, err.msg);
		return ONB_EUNAVAIL;
	}
	if(!onb_state_may_connect(out->dev.state)){
		char d[64];
		snprintf(d, sizeof(d), "device is %s", onb_state_name(out->dev.state));
		return decide(out, false, ONB_AR_DEVICE_STATE, d);
	}
	if(strcmp(client_id, out->dev.id) != 0){
		return decide(out, false, ONB_AR_CLIENT_ID_MISMATCH, "client id differs from the certificate's device id");
	}
	return decide(out, true, ONB_AR_OK, onb_state_name(out->dev.state));
}

int onb_admit(redisContext *rc, const struct onb_ca_set *cas, X509 *cert,
		const char *client_id, struct onb_admission *out)
{
	struct source src = { .rc = rc };
	return admit(&src, cas, cert, client_id, out);
}

int onb_admit_view(const struct onb_admview *view, int64_t now_ms, const struct onb_ca_set *cas,
		X509 *cert, const char *client_id, struct onb_admission *out)
{
	struct source src = { .view = view, .now_ms = now_ms };
	return admit(&src, cas, cert, client_id, out);
}

void onb_admit_prefetch(redisContext *rc, enum onb_idclass idclass, const char *fp,
		const char *client_id, struct onb_admit_prefetch *out)
{
	struct onb_err err;

	memset(out, 0, sizeof(*out));
	if(!rc){
		out->code = onb_fail(&err, ONB_EUNAVAIL, "registry unreachable");
	}else if(idclass == ONB_ID_DEVICE){
		out->code = onb_registry_device_by_fp(rc, fp, &out->dev, &err);
	}else if(idclass == ONB_ID_CLAIM || idclass == ONB_ID_BIRTH){
		out->code = onb_registry_device_get(rc, client_id, &out->dev, &err);
	}else{
		out->code = onb_fail(&err, ONB_ENOTFOUND, "no registry record for this identity class");
	}
	if(out->code != ONB_OK) snprintf(out->msg, sizeof(out->msg), "%s", err.msg);
}

int onb_admit_prefetched(const struct onb_admit_prefetch *pre, const struct onb_ca_set *cas,
		X509 *cert, const char *client_id, struct onb_admission *out)
{
	struct source src = { .pre = pre };
	return admit(&src, cas, cert, client_id, out);
}
