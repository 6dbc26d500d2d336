/* Registry internals shared by the files that read or write the registry:
 * argument vectors, one command, the embedded Lua scripts (EVALSHA falling
 * back to EVAL), input checks and reply readers (registry.c); device-record
 * pointers (devicestore.c); streams (eventstream.c). Not installed, not part
 * of the public API. */
#ifndef ONB_REGISTRY_INT_H
#define ONB_REGISTRY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>

#include "core/common.h"
#include "registry/registry.h"
#include "registry/state.h"

/* ---------------------------------------------------------------- scripts */

/* The embedded scripts of lib/registry/lua/ (one entry per file that C runs). */
enum onb_script {
	ONB_SCRIPT_REGISTER,        /* register.lua */
	ONB_SCRIPT_SET_STATE,       /* set_state.lua */
	ONB_SCRIPT_TOKEN_ISSUE,     /* token_issue.lua */
	ONB_SCRIPT_REGISTER_THING,  /* register_thing.lua */
	ONB_SCRIPT_ALLOW_ADD,       /* allow_add.lua */
	ONB_SCRIPT_POLICY_WRITE,    /* policy_write.lua (policystore.c) */
	ONB_SCRIPT_SET_POLICY,      /* set_policy.lua (policystore.c) */
	ONB_SCRIPT_CLAIMCODE_ISSUE, /* claimcode_issue.lua (claimreg.c) */
	ONB_SCRIPT_CLAIMCODE_REVOKE, /* claimcode_revoke.lua (claimreg.c) */
	ONB_SCRIPT_CLAIM_REDEEM,    /* claim_redeem.lua (claimreg.c) */
	ONB_SCRIPT_DEVICE_RELEASE,  /* device_release.lua (claimreg.c) */
	ONB_SCRIPT_DEVICE_TRANSFER, /* device_transfer.lua (claimreg.c) */
	ONB_SCRIPT_ROTATE_RECORD,   /* rotate_record.lua (lifecycle.c) */
	ONB_SCRIPT_ROTATE_PROMOTE,  /* rotate_promote.lua (lifecycle.c) */
	ONB_SCRIPT_ROTATE_REQUIRE,  /* rotate_require.lua (lifecycle.c) */
	ONB_SCRIPT_DECOMMISSION,    /* decommission.lua (lifecycle.c) */
	ONB_SCRIPT_COUNT,
};

/* The script's text (static storage). */
const char *onb_reg_script_body(enum onb_script s);

/* The SHA-1 hex of the script's text, computed once per process; "" when
 * SHA-1 is unavailable (callers then always send EVAL). Static storage. */
const char *onb_reg_script_sha(enum onb_script s);

/* ------------------------------------------------------- argument vectors */

#define ONB_ARGS_MAX 40
#define ONB_ARG_VALUE_MAX 1024 /* audit values longer than this are cut */

/* One command's argv: pointers are borrowed (they must outlive the call that
 * sends it) except for numbers, which are formatted into num[]. Too many
 * arguments set overflow, and the command is then refused, not truncated. */
struct onb_args {
	int n;
	bool overflow;
	const char *v[ONB_ARGS_MAX];
	size_t len[ONB_ARGS_MAX];
	char num[8][24];
	int nnum;
};

/* Appends one argument of len bytes (borrowed). */
void onb_args_push_len(struct onb_args *a, const char *s, size_t len);
/* Puts a's command in rc's output buffer (sent by the next read: see
 * onb_reg_queued_reply in registry/registry.h). */
int onb_reg_queue(redisContext *rc, struct onb_args *a, const char *what, struct onb_err *err);
/* Appends one NUL-terminated argument (borrowed). */
void onb_args_push(struct onb_args *a, const char *s);
/* Appends each NUL-terminated argument up to a NULL (borrowed): a
 * script's KEYS, or a run of its ARGV, as one list. */
void onb_args_pushv(struct onb_args *a, ...)
#if defined(__GNUC__)
	__attribute__((sentinel))
#endif
	;
/* Appends a decimal integer (copied into a->num). */
void onb_args_push_i64(struct onb_args *a, int64_t v);
/* a (zeroed) becomes "XREAD [BLOCK block_ms] COUNT max STREAMS": the
 * caller pushes the stream keys, then their ids. */
void onb_args_xread(struct onb_args *a, int block_ms, int max);
/* Appends `name value` unless value is NULL; the value is cut at
 * ONB_ARG_VALUE_MAX bytes (for audit fields). */
void onb_args_push_field(struct onb_args *a, const char *name, const char *value);
/* The arguments every writing script takes after its own, in this order:
 * now (ms; scripts never read the clock), actor, source ('' none), the
 * onb:events cap when with_events, the onb:audit MINID (lib/registry/lua/ headers). */
void onb_args_push_common(struct onb_args *a, int64_t now, const struct onb_actor *actor, bool with_events);
/* a (zeroed) becomes "HMGET key fields..." (fields borrowed). */
void onb_args_hmget(struct onb_args *a, const char *key, const char *const *fields, size_t n);
/* a (zeroed) becomes "SCAN cursor MATCH pattern COUNT count" (borrowed). */
void onb_args_scan(struct onb_args *a, const char *cursor, const char *pattern, const char *count);
/* Starts `XADD onb:audit MINID ~ <retention> *`; push the fields next. */
void onb_args_push_audit_xadd(struct onb_args *a);
/* Appends the field/value pairs of an audit entry (then "ts", now), as
 * onb_audit_append writes them; for a script that writes the entry itself. */
void onb_args_push_audit_fields(struct onb_args *a, const struct onb_audit_entry *e);
/* Ends an audit entry: "ts", now (ms). */
void onb_args_push_audit_ts(struct onb_args *a);
/* Sends an entry built with onb_args_push_audit_xadd, its fields and
 * onb_args_push_audit_ts (audit.c). */
int onb_reg_audit_send(redisContext *rc, struct onb_args *a, const char *what, struct onb_err *err);
/* Starts an argument vector for onb_reg_script: it fills the first three
 * slots (EVALSHA sha numkeys) itself; push KEYS, then ARGV. */
void onb_args_script(struct onb_args *a);

#define ONB_REG_DEV_KEY_MAX (ONB_ID_MAX + 16) /* onb:dev:{ID} */
/* Starts a script on one device whose KEYS begin onb:dev:{id} (formatted
 * into devkey, which must outlive the call), onb:events, onb:audit: push
 * its other KEYS, then ARGV. */
void onb_args_device_script(struct onb_args *a, char devkey[ONB_REG_DEV_KEY_MAX], const char *id);

/* ------------------------------------------------------------- commands */

/* Sends one command and returns its reply (caller frees); NULL after writing
 * one line into err and *rcode (ONB_EUNAVAIL, ONB_EINTERNAL on overflow) on a
 * connection error or an error reply. With pass_errors, error replies are
 * returned to the caller instead. Refuses a context with rc->err set. */
redisReply *onb_reg_command(redisContext *rc, struct onb_args *a, const char *what,
		bool pass_errors, int *rcode, struct onb_err *err);

/* onb_reg_command of the NULL-terminated string arguments that follow err
 * (borrowed), for a command of fixed shape. Reply: caller frees. */
redisReply *onb_reg_commandv(redisContext *rc, const char *what, int *rcode, struct onb_err *err, ...)
#if defined(__GNUC__)
	__attribute__((sentinel))
#endif
	;

/* Runs a script (a from onb_args_script, then nkeys KEYS, then ARGV) with
 * EVALSHA, then EVAL on NOSCRIPT. Reply as onb_reg_command (caller frees). */
redisReply *onb_reg_script(redisContext *rc, enum onb_script script, struct onb_args *a,
		int nkeys, const char *what, int *rcode, struct onb_err *err);

/* ------------------------------------------------------------ validation */

/* 64 lower-case hex digits (a SHA-256). */
bool onb_reg_fp_valid(const char *fp);
/* Up to 64 lower-case hex digits, possibly none (a certificate serial). */
bool onb_reg_serial_valid(const char *s);
/* At most max bytes of printable text on one line. */
bool onb_reg_text_valid(const char *s, size_t max);
/* ONB_OK for a valid device or tenant id (what: "device", "tenant"), else
 * ONB_EINVAL with err set. */
int onb_reg_id_check(const char *id, const char *what, struct onb_err *err);
/* ONB_OK for no reason or one line of at most ONB_REASON_MAX printable bytes. */
int onb_reg_reason_check(const char *reason, struct onb_err *err);
/* The checks of a change to one device: its id, the reason (may be NULL),
 * the actor; the first failure's ONB_EINVAL. */
int onb_reg_change_check(const char *id, const char *reason, const struct onb_actor *actor, struct onb_err *err);
/* ONB_OK when actor names someone, else ONB_EINVAL with err set. */
int onb_reg_actor_check(const struct onb_actor *actor, struct onb_err *err);

/* -------------------------------------------- pointers in a device record */

/* Scripts whose keys are named by data in the device record read these
 * first and pass them; the script answers {'retry'} when they moved. */
#define ONB_KEY_FP_FMT_PREFIX "onb:fp:"   /* ONB_KEY_FP_FMT without its %s */
#define ONB_KEY_CC_PREFIX "onb:cc:"       /* ONB_KEY_CC_FMT without its %s */
#define ONB_REG_HASH_HEXLEN 64            /* a certificate fingerprint or claim-code hash */

/* The device's certificate and claim-code pointers ("" when absent). */
struct onb_reg_pointers {
	char fp[ONB_REG_HASH_HEXLEN + 1];
	char next[ONB_REG_HASH_HEXLEN + 1];
	char code[ONB_REG_HASH_HEXLEN + 1];
};

/* HMGET of cert_fp, cert_fp_next, claimcode of devkey (devicestore.c);
 * ONB_EINTERNAL when one is not empty nor 64 lower-case hex. */
int onb_reg_read_pointers(redisContext *rc, const char *devkey, const char *id, struct onb_reg_pointers *p,
		struct onb_err *err);

/* The keys a script is handed for p's pointers: onb:fp:<hash> or
 * onb:cc:<hash>, or the device key itself when the pointer is absent (which
 * the script then does not treat as that key). */
#define ONB_REG_PTR_KEY_MAX (ONB_ID_MAX + 16) /* a device key, or a prefix and 64 hex */
struct onb_reg_pointer_keys {
	char fp[ONB_REG_PTR_KEY_MAX], next[ONB_REG_PTR_KEY_MAX], code[ONB_REG_PTR_KEY_MAX];
};
void onb_reg_pointer_keys(const struct onb_reg_pointers *p, const char *devkey, struct onb_reg_pointer_keys *k);

/* HMGET of n fields of device id's record (ONB_EINVAL for an invalid id):
 * the reply (caller frees), or NULL with *rcode and err set. */
redisReply *onb_reg_device_fields(redisContext *rc, const char *id, const char *const *fields, size_t n,
		int *rcode, struct onb_err *err);
/* The device id in a key "onb:dev:{ID}" (a SCAN reply element), or false. */
bool onb_reg_device_id_of_key(const redisReply *k, char id[ONB_ID_MAX + 1]);

/* ---------------------------------------------------------------- replies */

/* Copies a string reply into dst (capacity cap); false when it does not fit
 * or holds a NUL. A NIL reply yields "". */
bool onb_reg_reply_str(const redisReply *r, char *dst, size_t cap);
/* The state named by a reply element; ONB_STATE_INVALID for anything else. */
enum onb_state onb_reg_reply_state(const redisReply *r);
/* True when r is the string or status s. */
bool onb_reg_reply_is(const redisReply *r, const char *s);
/* A non-negative decimal integer, or NIL (0). */
bool onb_reg_reply_i64(const redisReply *r, int64_t *out);

#define ONB_SCAN_CURSOR_MAX 32
/* A SCAN reply: the next cursor into cursor and its page of keys (borrowed
 * from r); false when r is not one. */
bool onb_reg_scan_reply(const redisReply *r, char cursor[ONB_SCAN_CURSOR_MAX], const redisReply **keys);


/* ------------------------------------------------------------ streams */

/* "<ms>-<seq>" or "<ms>", shorter than ONB_STREAM_ID_MAX. */
bool onb_reg_stream_id_valid(const char *s);
/* Writes the id of the newest entry of stream key into last_id ("0-0" when
 * it is empty): where a new reader starts. */
int onb_reg_stream_tail(redisContext *rc, const char *key, char last_id[ONB_STREAM_ID_MAX], struct onb_err *err);
/* onb_reg_command for an XREAD with BLOCK block_ms (0: none): the socket
 * timeout is extended past the BLOCK for this one call. */
redisReply *onb_reg_blocking_command(redisContext *rc, struct onb_args *a, int block_ms, const char *what,
		int *rcode, struct onb_err *err);

/* One entry of a stream, to a reader's callback: its id and its
 * field/value array (both borrowed for the call). True when the entry was
 * delivered, false when it was skipped as malformed. */
typedef bool (*onb_reg_entry_cb)(const char *id, const redisReply *fields, void *arg);

/* A string field of a stream entry and where its value goes (cap bytes). */
struct onb_reg_str_field {
	const char *name;
	char *dst;
	size_t cap;
};
/* Reads the [field, value, ...] array of one entry: the value of each field
 * named in t into its buffer, any other field to other (may be NULL; false
 * for a bad value). False when fields is not pairs with string values or a
 * value does not fit; fields not named stay as they were. */
bool onb_reg_entry_fields(const redisReply *fields, const struct onb_reg_str_field *t, size_t n,
		bool (*other)(const redisReply *k, const redisReply *v, void *arg), void *arg);

/* Hands each [id, fields] entry of an XREAD or XRANGE page to cb, advancing
 * last_id first. The number delivered, or -1 at an entry that is not one
 * (the rest of the page is not read). */
int onb_reg_stream_entries(const redisReply *entries, char last_id[ONB_STREAM_ID_MAX], onb_reg_entry_cb cb,
		void *arg);

/* An onb_reg_entry_cb for onb:events entries: parses each (a malformed
 * one is skipped) and hands it to the sink's cb. */
struct onb_reg_event_sink {
	void (*cb)(const struct onb_event *ev, void *arg);
	void *arg;
};
bool onb_reg_event_entry(const char *id, const redisReply *fields, void *arg);

/* The one reader of a single stream (onb:events, onb:audit): XREAD of up to
 * max entries of key after last_id, waiting at most block_ms (0: not at all)
 * for the first. last_id advances past each entry before cb sees it, so a
 * malformed entry is skipped, never read again. Returns the number of
 * entries delivered, or a negative ONB_E* code with err set. */
int onb_reg_stream_read(redisContext *rc, const char *key, char last_id[ONB_STREAM_ID_MAX], int block_ms,
		int max, const char *what, onb_reg_entry_cb cb, void *arg, struct onb_err *err);

#endif
