/* libFuzzer target for the policy language: parse + compile + evaluate.
 * Input: a JSON document, optionally followed by a NUL byte and subjects
 * separated by '\n'. Every parsed document is compiled with several variable
 * sets and evaluated on fixed and input-derived subjects for every action.
 * Invariants: the decision agrees with the return value and names a real
 * statement; the answer is the same without a decision (live denies only)
 * and through onb_policy_allows_receive; a hostile variable value never allows what a good value of the
 * same variable would not (allow statements switch off, deny statements only
 * widen). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "policy/topic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SUBJECTS_MAX 16
#define SUBJECT_LEN 1024

static const char *const fixed[] = {
	"devices/dev-1/telemetry", "devices/dev-1/commands/#", "devices/dev-2/x", "#", "+/#", "$SYS/x",
	"$aws/certificates/create-from-csr/json", "$share/g/devices/dev-1/#", "dev-1", "a//b", "/", "+",
	"tenants/t1/devices/dev-1/status", "onb/internal/x", "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/0/1/2/3/4/5/6/7/8",
};

static const char *const hostile[] = {"+", "#", "a/b", "", NULL, "*", "x+y"};

static void check(const struct onb_policy *p, const struct onb_compiled *c, enum onb_action a,
	const char *s, bool *out)
{
	struct onb_decision d;
	char line[512];
	bool ok = onb_policy_allows(c, a, s, &d);

	if(ok != d.allowed) abort();
	if(d.why == ONB_WHY_MATCH && (d.stmt < 0 || (size_t)d.stmt >= onb_policy_statements(p) || d.res < 0)) abort();
	if(d.why != ONB_WHY_MATCH && (ok || d.stmt != -1)) abort();
	if(onb_policy_explain(p, c, a, &d, line, sizeof(line)) != ONB_OK || strlen(line) >= sizeof(line)) abort();
	/* without a decision only live denies are checked: the same answer */
	if(onb_policy_allows(c, a, s, NULL) != ok) abort();
	if(a == ONB_ACT_RECEIVE && onb_topic_name_valid(s)){
		/* a delivery's name: the same decision, the same statement */
		struct onb_decision e;
		if(onb_policy_allows_receive(c, s, &e) != ok || e.allowed != d.allowed || e.why != d.why
				|| e.stmt != d.stmt || e.res != d.res) abort();
		if(onb_policy_allows_receive(c, s, NULL) != ok) abort();
	}
	*out = ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char subj[SUBJECTS_MAX][SUBJECT_LEN + 1];
	const char *subjects[SUBJECTS_MAX + sizeof(fixed) / sizeof(fixed[0])];
	const uint8_t *z = memchr(data, 0, size);
	size_t jlen = z ? (size_t)(z - data) : size, ns = 0;
	struct onb_policy *p = NULL;
	struct onb_err err;

	err.msg[0] = '\0';
	if(onb_policy_parse((const char *)data, jlen, &p, &err) != ONB_OK){
		if(!memchr(err.msg, '\0', sizeof(err.msg)) || !err.msg[0] || p) abort();
		return 0;
	}
	for(size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) subjects[ns++] = fixed[i];
	if(z){
		size_t start = jlen + 1, k = 0;
		for(size_t i = start; i <= size && k < SUBJECTS_MAX; i++){
			if(i == size || data[i] == '\n'){
				size_t len = i - start < SUBJECT_LEN ? i - start : SUBJECT_LEN;
				memcpy(subj[k], data + start, len);
				subj[k][len] = '\0';
				subjects[ns++] = subj[k++];
				start = i + 1;
			}
		}
	}

	struct onb_policy_vars good = {"dev-1", "dev-1", "t1", "ab12cd", "active"};
	struct onb_compiled *cg = NULL;
	if(onb_policy_compile(p, &good, &cg, &err) != ONB_OK) abort();
	bool allowed_good[sizeof(subjects) / sizeof(subjects[0])][ONB_ACT_COUNT];
	for(size_t i = 0; i < ns; i++){
		for(int a = 0; a < ONB_ACT_COUNT; a++) check(p, cg, (enum onb_action)a, subjects[i], &allowed_good[i][a]);
	}
	/* one variable at a time turned hostile */
	for(int v = 0; v < 5; v++){
		struct onb_policy_vars bad = good;
		const char *h = hostile[(size + (size_t)v) % (sizeof(hostile) / sizeof(hostile[0]))];
		const char **slot[5] = {&bad.device_id, &bad.client_id, &bad.tenant_id, &bad.cert_fp, &bad.state};
		struct onb_compiled *cb = NULL;
		*slot[v] = h;
		if(onb_policy_compile(p, &bad, &cb, &err) != ONB_OK) abort();
		for(size_t i = 0; i < ns; i++){
			for(int a = 0; a < ONB_ACT_COUNT; a++){
				bool ok;
				check(p, cb, (enum onb_action)a, subjects[i], &ok);
				if(ok && !allowed_good[i][a]) abort();
			}
		}
		onb_compiled_free(cb);
	}
	onb_compiled_free(cg);
	onb_policy_free(p);
	return 0;
}
