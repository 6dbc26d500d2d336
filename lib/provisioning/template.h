/* Provisioning templates (config/templates/NAME.json; format in
 * docs/provisioning.md): which parameters a RegisterThing request must carry,
 * how the thing name is made from them, and what the new device gets.
 *
 * Parsing is strict (an operator's file: unknown keys and bad values are
 * errors) and a pure function of a buffer; onb_template_set_load reads a
 * directory and fails as a whole when any file is bad. */
#ifndef ONB_TEMPLATE_H
#define ONB_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <regex.h>

#include <cJSON.h>

#include "core/common.h"
#include "core/ids.h"
#include "provisioning/provision.h"
#include "provisioning/provreg.h"
#include "registry/registry.h"
#include "registry/state.h"

#define ONB_TEMPLATE_FILE_MAX (64 * 1024)  /* bytes of one template file */
#define ONB_TEMPLATE_PARAMS_MAX 16
#define ONB_TEMPLATE_PATTERN_MAX 256
#define ONB_TEMPLATE_EXPR_MAX 256          /* thingName expression */
#define ONB_TEMPLATE_CONFIG_MAX 8192       /* printed deviceConfiguration */
#define ONB_TEMPLATE_SET_MAX 1024          /* templates in one directory */
#define ONB_TEMPLATE_DEFAULT_MAXLEN 128

struct onb_template_param {
	char name[ONB_PROV_PARAM_NAME_MAX + 1];   /* [A-Za-z0-9_]{1,64} */
	bool required;                            /* default true */
	bool has_default;                         /* only for optional parameters */
	char default_value[ONB_PROV_PARAM_VALUE_MAX + 1];
	size_t max_length;                        /* 1..ONB_PROV_PARAM_VALUE_MAX */
	bool has_pattern;
	regex_t re;                               /* POSIX ERE; must match the whole value */
};

/* A parsed template. Owned by whoever parsed it: free with onb_template_free. */
struct onb_template {
	char name[ONB_PROV_TEMPLATE_NAME_MAX + 1];
	size_t nparams;
	struct onb_template_param params[ONB_TEMPLATE_PARAMS_MAX];
	char thing_name[ONB_TEMPLATE_EXPR_MAX + 1]; /* expression, e.g. "sensor-${SerialNumber}" */
	char serial_param[ONB_PROV_PARAM_NAME_MAX + 1]; /* parameter passed as the serial, "" none */
	char policy[ONB_NAME_MAX + 1];            /* "" : the default policy for the state */
	enum onb_state state;                     /* unclaimed (default) or active */
	char tenant[ONB_ID_MAX + 1];              /* "" unless state is active */
	bool allowlist_required;                  /* "allowlist": "required" (default) | "optional" */
	enum onb_reprovision reprovision;         /* "reprovision": "never" (default) | "same-identity" | "replace" */
	cJSON *device_config;                     /* object returned to the device, never NULL */
};

/* Parses one template from json[0..len). name is the template's name (the
 * file name without .json); a "name" field in the document must equal it.
 * On success *out is a new template the caller frees with onb_template_free. */
int onb_template_parse(const char *json, size_t len, const char *name,
		struct onb_template **out, struct onb_err *err);

/* Frees t and everything it owns. NULL is fine. */
void onb_template_free(struct onb_template *t);

/* What a template makes of a RegisterThing request. */
struct onb_template_result {
	char thing_name[ONB_ID_MAX + 1];                 /* passes onb_id_valid */
	char serial[ONB_PROV_PARAM_VALUE_MAX + 1];       /* value of serial_param, "" none */
};

/* Checks req's parameters against t (required present, lengths, patterns;
 * parameters the template does not declare are ignored), fills in defaults
 * and evaluates the thing name. ONB_EINVAL (errorCode InvalidParameters) with
 * a message naming the parameter on refusal. */
int onb_template_apply(const struct onb_template *t, const struct onb_prov_register_req *req,
		struct onb_template_result *out, struct onb_err *err);

/* All templates of a directory. */
struct onb_template_set {
	size_t n;
	struct onb_template **v;   /* sorted by name */
};

/* Loads every DIR/NAME.json (regular files; other entries and dot-files are
 * skipped). NAME must pass onb_prov_template_name_valid. Fails when any file
 * is bad or there is none. *out is freed with onb_template_set_free. */
int onb_template_set_load(const char *dir, struct onb_template_set **out, struct onb_err *err);

/* The template called name, or NULL. */
const struct onb_template *onb_template_find(const struct onb_template_set *set, const char *name);

/* Frees the set and its templates. NULL is fine. */
void onb_template_set_free(struct onb_template_set *set);

#endif
