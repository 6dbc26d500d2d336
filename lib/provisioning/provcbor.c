/* Fleet-provisioning documents in CBOR (contract: provisioning/provcbor.h). libcbor
 * decodes and encodes; what is ours is the strictness (a pre-scan with
 * libcbor's streaming decoder before anything is allocated) and the mapping
 * to the structures the JSON path uses. */
#include "provisioning/provcbor.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <openssl/crypto.h>

#include "pki/csr.h"

/* ------------------------------------------------------------ pre-scan */

/* What one cbor_stream_decode call saw. */
enum scan_event {
	EV_NONE, EV_LEAF, EV_BYTES, EV_ARRAY, EV_MAP, EV_IARRAY, EV_IMAP, EV_ISTRING, EV_IBYTES, EV_BREAK, EV_TAG,
};

struct scan_item {
	enum scan_event ev;
	uint64_t count; /* a definite array's items, a definite map's pairs */
};

#define SEEN(name, ...) static void name(void *ctx, __VA_ARGS__)
static void set_ev(void *ctx, enum scan_event ev, uint64_t count)
{
	struct scan_item *it = ctx;
	it->ev = ev;
	it->count = count;
}
SEEN(on_u8, uint8_t v) { (void)v; set_ev(ctx, EV_LEAF, 0); }
SEEN(on_u16, uint16_t v) { (void)v; set_ev(ctx, EV_LEAF, 0); }
SEEN(on_u32, uint32_t v) { (void)v; set_ev(ctx, EV_LEAF, 0); }
SEEN(on_u64, uint64_t v) { (void)v; set_ev(ctx, EV_LEAF, 0); }
SEEN(on_text, cbor_data d, size_t n) { (void)d; (void)n; set_ev(ctx, EV_LEAF, 0); }
SEEN(on_bytes, cbor_data d, size_t n) { (void)d; (void)n; set_ev(ctx, EV_BYTES, 0); }
SEEN(on_float, float v) { (void)v; set_ev(ctx, EV_LEAF, 0); }
SEEN(on_double, double v) { (void)v; set_ev(ctx, EV_LEAF, 0); }
SEEN(on_bool, bool v) { (void)v; set_ev(ctx, EV_LEAF, 0); }
SEEN(on_array, size_t n) { set_ev(ctx, EV_ARRAY, n); }
SEEN(on_map, size_t n) { set_ev(ctx, EV_MAP, n); }
SEEN(on_tag, uint64_t v) { (void)v; set_ev(ctx, EV_TAG, 0); }
#undef SEEN
static void on_simple(void *ctx) { set_ev(ctx, EV_LEAF, 0); }
static void on_iarray(void *ctx) { set_ev(ctx, EV_IARRAY, 0); }
static void on_imap(void *ctx) { set_ev(ctx, EV_IMAP, 0); }
static void on_istring(void *ctx) { set_ev(ctx, EV_ISTRING, 0); }
static void on_ibytes(void *ctx) { set_ev(ctx, EV_IBYTES, 0); }
static void on_break(void *ctx) { set_ev(ctx, EV_BREAK, 0); }

static const struct cbor_callbacks scan_callbacks = {
	.uint8 = on_u8, .uint16 = on_u16, .uint32 = on_u32, .uint64 = on_u64,
	.negint8 = on_u8, .negint16 = on_u16, .negint32 = on_u32, .negint64 = on_u64,
	.byte_string = on_bytes, .byte_string_start = on_ibytes,
	.string = on_text, .string_start = on_istring,
	.array_start = on_array, .indef_array_start = on_iarray,
	.map_start = on_map, .indef_map_start = on_imap,
	.tag = on_tag,
	.float2 = on_float, .float4 = on_float, .float8 = on_double,
	.undefined = on_simple, .null = on_simple, .boolean = on_bool,
	.indef_break = on_break,
};

/* An open container (or an indefinite text string and its chunks). */
struct frame {
	bool map, indefinite, string;
	uint64_t left; /* definite: items still to come; indefinite: items seen */
};

/* Walks buf[0..len) item by item without building anything: one item, the
 * top level a map unless any_top, containers at most max_depth deep, no
 * tags, byte strings only when bytes_ok, no count or length beyond what the
 * buffer holds, nothing after the item. libcbor's cbor_load then builds the
 * tree of a buffer that passed, and cbor_decref frees it recursively: the
 * depth bound keeps that recursion short. */
static int prescan(const unsigned char *buf, size_t len, int max_depth, bool any_top, bool bytes_ok,
		struct onb_err *err)
{
	struct frame st[ONB_PROVCBOR_TOOL_DEPTH_MAX + 2];
	int n = 0, depth = 0;
	size_t off = 0;

	if(max_depth > ONB_PROVCBOR_TOOL_DEPTH_MAX) max_depth = ONB_PROVCBOR_TOOL_DEPTH_MAX;
	if(len == 0) return onb_fail(err, ONB_EINVAL, "empty CBOR document");
	for(;;){
		struct scan_item it = { EV_NONE, 0 };
		struct cbor_decoder_result r;
		bool in_string = n > 0 && st[n - 1].string;

		if(off >= len) return onb_fail(err, ONB_EINVAL, "CBOR document is truncated");
		r = cbor_stream_decode(buf + off, len - off, &scan_callbacks, &it);
		if(r.status == CBOR_DECODER_NEDATA) return onb_fail(err, ONB_EINVAL, "CBOR document is truncated");
		if(r.status != CBOR_DECODER_FINISHED || it.ev == EV_NONE || r.read == 0){
			return onb_fail(err, ONB_EINVAL, "malformed CBOR at byte %zu", off);
		}
		if(off == 0 && !any_top && it.ev != EV_MAP && it.ev != EV_IMAP){
			return onb_fail(err, ONB_EINVAL, "CBOR document is not a map");
		}
		off += r.read;
		if(in_string && it.ev != EV_LEAF && it.ev != EV_BYTES && it.ev != EV_BREAK){
			/* (chunks of the wrong string type: cbor_load refuses them) */
			return onb_fail(err, ONB_EINVAL, "malformed CBOR: an indefinite string holds a non-string");
		}
		switch(it.ev){
		case EV_TAG:
			return onb_fail(err, ONB_EINVAL, "CBOR tags are not accepted");
		case EV_BYTES:
		case EV_IBYTES:
			if(!bytes_ok) return onb_fail(err, ONB_EINVAL, "CBOR byte strings are not accepted here");
			if(it.ev == EV_BYTES) break;
			st[n++] = (struct frame){ .indefinite = true, .string = true };
			continue;
		case EV_ARRAY:
		case EV_MAP:
			if(it.count == 0) break;
			if(depth >= max_depth) return onb_fail(err, ONB_EINVAL, "CBOR nested deeper than %d", max_depth);
			/* each item takes at least one byte: a longer count is a lie */
			if(it.count > (len - off) / (it.ev == EV_MAP ? 2 : 1)){
				return onb_fail(err, ONB_EINVAL, "CBOR %s claims more items than the document holds",
						it.ev == EV_MAP ? "map" : "array");
			}
			st[n++] = (struct frame){ .map = it.ev == EV_MAP, .left = it.count * (it.ev == EV_MAP ? 2 : 1) };
			depth++;
			continue;
		case EV_IARRAY:
		case EV_IMAP:
			if(depth >= max_depth) return onb_fail(err, ONB_EINVAL, "CBOR nested deeper than %d", max_depth);
			st[n++] = (struct frame){ .map = it.ev == EV_IMAP, .indefinite = true };
			depth++;
			continue;
		case EV_ISTRING:
			st[n++] = (struct frame){ .indefinite = true, .string = true };
			continue;
		case EV_BREAK:
			if(n == 0 || !st[n - 1].indefinite) return onb_fail(err, ONB_EINVAL, "malformed CBOR: stray break");
			if(st[n - 1].map && st[n - 1].left % 2){
				return onb_fail(err, ONB_EINVAL, "malformed CBOR: a map key without a value");
			}
			if(!st[n - 1].string) depth--;
			n--;
			break;
		case EV_LEAF:
		case EV_NONE:
			break;
		}
		/* one item is complete: it counts in its container, which may complete in turn */
		for(;;){
			struct frame *f;

			if(n == 0){
				if(off != len) return onb_fail(err, ONB_EINVAL, "data after the CBOR document");
				return ONB_OK;
			}
			f = &st[n - 1];
			if(f->indefinite){
				f->left++;
				break;
			}
			if(--f->left > 0) break;
			n--;
			depth--;
		}
	}
}

/* Pre-scans, then builds the tree with cbor_load. *out: release with cbor_decref. */
static int load(const void *buf, size_t len, int max_depth, bool any_top, bool bytes_ok, cbor_item_t **out,
		struct onb_err *err)
{
	struct cbor_load_result res;
	cbor_item_t *item;
	int ret = prescan(buf, len, max_depth, any_top, bytes_ok, err);

	if(ret != ONB_OK) return ret;
	item = cbor_load(buf, len, &res);
	if(!item || res.error.code != CBOR_ERR_NONE || res.read != len){
		if(item) cbor_decref(&item);
		if(res.error.code == CBOR_ERR_MEMERROR) return onb_fail(err, ONB_EINTERNAL, "out of memory");
		return onb_fail(err, ONB_EINVAL, "malformed CBOR (libcbor error %d at byte %zu)",
				(int)res.error.code, res.error.position);
	}
	*out = item;
	return ONB_OK;
}

/* ---------------------------------------------------------- text strings */

/* text_dup's result for a string over its limit: the callers answer that
 * with their own errorCode (CsrTooLarge, InvalidParameters, ...). */
enum { E_TOO_LONG = 1 };

/* The length of a text string, its chunks together. */
static size_t text_len(const cbor_item_t *it)
{
	size_t n = 0;

	if(cbor_string_is_definite(it)) return cbor_string_length(it);
	for(size_t i = 0; i < cbor_string_chunk_count(it); i++){
		n += cbor_string_length(cbor_string_chunks_handle(it)[i]);
	}
	return n;
}

/* Copies a text string's bytes (its chunks in order) to dst. */
static void text_copy(const cbor_item_t *it, char *dst)
{
	size_t off = 0;

	if(cbor_string_is_definite(it)){
		if(cbor_string_length(it)) memcpy(dst, cbor_string_handle(it), cbor_string_length(it));
		return;
	}
	for(size_t i = 0; i < cbor_string_chunk_count(it); i++){
		const cbor_item_t *c = cbor_string_chunks_handle(it)[i];
		if(cbor_string_length(c)) memcpy(dst + off, cbor_string_handle(c), cbor_string_length(c));
		off += cbor_string_length(c);
	}
}

static bool text_equals(const cbor_item_t *it, const char *s)
{
	size_t n = strlen(s), off = 0;

	if(!cbor_isa_string(it) || text_len(it) != n) return false;
	if(cbor_string_is_definite(it)) return n == 0 || !memcmp(cbor_string_handle(it), s, n);
	for(size_t i = 0; i < cbor_string_chunk_count(it); i++){
		const cbor_item_t *c = cbor_string_chunks_handle(it)[i];
		size_t cl = cbor_string_length(c);
		if(cl && memcmp(cbor_string_handle(c), s + off, cl)) return false;
		off += cl;
	}
	return true;
}

/* A new NUL-terminated copy of a text string of at most max bytes, free of
 * NUL bytes (they would cut the string short, as JSON's \u0000 would). */
static int text_dup(const cbor_item_t *it, const char *what, size_t max, char **out, size_t *out_len,
		struct onb_err *err)
{
	size_t n;
	char *s;

	if(!cbor_isa_string(it)) return onb_fail(err, ONB_EINVAL, "%s must be a text string", what);
	n = text_len(it);
	if(n > max) return onb_fail(err, E_TOO_LONG, "%s is longer than %zu bytes", what, max);
	if(!(s = malloc(n + 1))) return onb_fail(err, ONB_EINTERNAL, "out of memory");
	text_copy(it, s);
	s[n] = '\0';
	if(memchr(s, '\0', n)){
		free(s);
		return onb_fail(err, ONB_EINVAL, "%s holds a NUL byte", what);
	}
	*out = s;
	if(out_len) *out_len = n;
	return ONB_OK;
}

/* Same, into buf[max + 1]. */
static int text_into(const cbor_item_t *it, const char *what, char *buf, size_t max, struct onb_err *err)
{
	char *s = NULL;
	size_t n = 0;
	int ret = text_dup(it, what, max, &s, &n, err);

	if(ret != ONB_OK) return ret;
	memcpy(buf, s, n + 1);
	OPENSSL_cleanse(s, n);
	free(s);
	return ONB_OK;
}

/* ----------------------------------------------------------------- maps */

/* Every key of map a text string. */
static int keys_are_text(const cbor_item_t *map, const char *what, struct onb_err *err)
{
	for(size_t i = 0; i < cbor_map_size(map); i++){
		if(!cbor_isa_string(cbor_map_handle(map)[i].key)){
			return onb_fail(err, ONB_EINVAL, "%s: map keys must be text strings", what);
		}
	}
	return ONB_OK;
}

/* The value of key name in map in *out (NULL when absent); ONB_EINVAL when
 * the key appears twice. */
static int map_get(const cbor_item_t *map, const char *name, cbor_item_t **out, struct onb_err *err)
{
	cbor_item_t *found = NULL;

	for(size_t i = 0; i < cbor_map_size(map); i++){
		if(!text_equals(cbor_map_handle(map)[i].key, name)) continue;
		if(found) return onb_fail(err, ONB_EINVAL, "field %s appears more than once", name);
		found = cbor_map_handle(map)[i].value;
	}
	*out = found;
	return ONB_OK;
}

static bool is_null(const cbor_item_t *it)
{
	return cbor_isa_float_ctrl(it) && cbor_float_ctrl_is_ctrl(it) && cbor_is_null(it);
}

static int set_code(const char **code, const char *c, int rc)
{
	if(code) *code = c;
	return rc;
}

/* Decodes a request: a map whose keys are all text. */
static int load_request(const void *buf, size_t len, cbor_item_t **root, const char **code, struct onb_err *err)
{
	int ret;

	if(len > ONB_PROV_PAYLOAD_MAX){
		return set_code(code, ONB_PE_PAYLOAD_TOO_LARGE, onb_fail(err, ONB_EINVAL,
				"request of %zu bytes is larger than the limit of %d bytes", len, ONB_PROV_PAYLOAD_MAX));
	}
	ret = load(buf, len, ONB_PROVCBOR_DEPTH_MAX, false, true, root, err);
	if(ret == ONB_OK && (ret = keys_are_text(*root, "request", err)) != ONB_OK) cbor_decref(root);
	if(ret != ONB_OK) return set_code(code, ret == ONB_EINTERNAL ? ONB_PE_INTERNAL : ONB_PE_INVALID_PAYLOAD, ret);
	return ONB_OK;
}

/* ------------------------------------------------------------- requests */

int onb_provcbor_csr_request_parse(const void *buf, size_t len, char **csr_out, size_t *csr_len,
		const char **code, struct onb_err *err)
{
	cbor_item_t *root = NULL, *item;
	int ret;

	if(!csr_out || !csr_len) return set_code(code, ONB_PE_INTERNAL, onb_fail(err, ONB_EINVAL, "no output"));
	if((ret = load_request(buf, len, &root, code, err)) != ONB_OK) return ret;
	ret = map_get(root, "certificateSigningRequest", &item, err);
	if(ret == ONB_OK && !item) ret = onb_fail(err, ONB_EINVAL, "certificateSigningRequest is missing");
	if(ret == ONB_OK) ret = text_dup(item, "certificateSigningRequest", ONB_CSR_MAX, csr_out, csr_len, err);
	if(ret == E_TOO_LONG){
		ret = set_code(code, ONB_CSR_E_TOO_LARGE, onb_fail(err, ONB_EINVAL,
				"CSR of %zu bytes is larger than the limit of %d bytes", text_len(item), ONB_CSR_MAX));
	}else if(ret != ONB_OK){
		set_code(code, ret == ONB_EINTERNAL ? ONB_PE_INTERNAL : ONB_PE_INVALID_PAYLOAD, ret);
	}
	cbor_decref(&root);
	return ret;
}

int onb_provcbor_keys_request_parse(const void *buf, size_t len, const char **code, struct onb_err *err)
{
	cbor_item_t *root = NULL;
	int ret;

	if(len == 0) return ONB_OK; /* AWS devices may send nothing */
	if((ret = load_request(buf, len, &root, code, err)) != ONB_OK) return ret;
	cbor_decref(&root);
	return ONB_OK;
}

/* The parameters map, under the JSON path's rules (parse_params in provision.c). */
static int parse_params(const cbor_item_t *params, struct onb_prov_register_req *req, const char **code,
		struct onb_err *err)
{
	int ret = keys_are_text(params, "parameters", err);

	if(ret != ONB_OK) return set_code(code, ONB_PE_INVALID_PAYLOAD, ret);
	for(size_t i = 0; i < cbor_map_size(params); i++){
		const struct cbor_pair *pr = &cbor_map_handle(params)[i];
		char name[ONB_PROV_PARAM_NAME_MAX + 1];
		struct onb_prov_param *p;
		size_t nl;

		ret = text_into(pr->key, "parameter name", name, ONB_PROV_PARAM_NAME_MAX, err);
		if(ret == ONB_EINVAL) return set_code(code, ONB_PE_INVALID_PAYLOAD, ret); /* a NUL byte */
		nl = ret == ONB_OK ? strlen(name) : 0;
		if(nl == 0 || strspn(name, "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
				"abcdefghijklmnopqrstuvwxyz{|}~") != nl){
			return set_code(code, ONB_PE_INVALID_PARAMS, onb_fail(err, ONB_EINVAL,
					"parameter names must be 1..%d printable characters", ONB_PROV_PARAM_NAME_MAX));
		}
		if(onb_prov_param_get(req, name)){
			return set_code(code, ONB_PE_INVALID_PARAMS, onb_fail(err, ONB_EINVAL,
					"parameter %s appears more than once", name));
		}
		if(req->nparams >= ONB_PROV_PARAMS_MAX){
			return set_code(code, ONB_PE_INVALID_PARAMS, onb_fail(err, ONB_EINVAL,
					"more than %d parameters", ONB_PROV_PARAMS_MAX));
		}
		p = &req->params[req->nparams];
		ret = text_into(pr->value, "parameter value", p->value, ONB_PROV_PARAM_VALUE_MAX, err);
		if(ret != ONB_OK){
			bool nul = ret == ONB_EINVAL && cbor_isa_string(pr->value);
			return set_code(code, nul ? ONB_PE_INVALID_PAYLOAD : ONB_PE_INVALID_PARAMS, onb_fail(err, ONB_EINVAL,
					nul ? "parameter %s holds a NUL byte" : !cbor_isa_string(pr->value)
					? "parameter %s must be a string" : "parameter %s is too long", name));
		}
		memcpy(p->name, name, nl + 1);
		req->nparams++;
	}
	return ONB_OK;
}

int onb_provcbor_register_request_parse(const void *buf, size_t len, struct onb_prov_register_req *out,
		const char **code, struct onb_err *err)
{
	struct onb_prov_register_req *req = NULL; /* owned: wiped and freed below */
	cbor_item_t *root = NULL, *item;
	int ret;

	if(!out) return set_code(code, ONB_PE_INTERNAL, onb_fail(err, ONB_EINVAL, "no output"));
	if((ret = load_request(buf, len, &root, code, err)) != ONB_OK) return ret;
	if(!(req = calloc(1, sizeof(*req)))){
		ret = set_code(code, ONB_PE_INTERNAL, onb_fail(err, ONB_EINTERNAL, "out of memory"));
		goto cleanup;
	}
	ret = map_get(root, "certificateOwnershipToken", &item, err);
	if(ret == ONB_OK && (!item || !cbor_isa_string(item))){
		ret = onb_fail(err, ONB_EINVAL, "certificateOwnershipToken is missing or not a text string");
	}
	if(ret == ONB_OK){
		ret = text_into(item, "certificateOwnershipToken", req->token, ONB_PROV_TOKEN_MAX, err);
		if(ret == E_TOO_LONG || (ret == ONB_OK && !req->token[0])){
			ret = set_code(code, ONB_PE_TOKEN_INVALID, onb_fail(err, ONB_EINVAL,
					"certificateOwnershipToken is malformed"));
			goto cleanup;
		}
	}
	if(ret == ONB_OK) ret = map_get(root, "parameters", &item, err);
	if(ret != ONB_OK){
		set_code(code, ret == ONB_EINTERNAL ? ONB_PE_INTERNAL : ONB_PE_INVALID_PAYLOAD, ret);
		goto cleanup;
	}
	if(item && !is_null(item)){
		if(!cbor_isa_map(item)){
			ret = set_code(code, ONB_PE_INVALID_PAYLOAD, onb_fail(err, ONB_EINVAL, "parameters must be a map"));
			goto cleanup;
		}
		if((ret = parse_params(item, req, code, err)) != ONB_OK) goto cleanup;
	}
	*out = *req;
	ret = ONB_OK;
cleanup:
	if(req){
		OPENSSL_cleanse(req, sizeof(*req));
		free(req);
	}
	cbor_decref(&root);
	return ret;
}

/* --------------------------------------------------------------- replies */

/* Writes CBOR heads with libcbor's encoders and string bytes with memcpy
 * into one buffer sized in advance: no stray copies of a private key. */
struct writer {
	unsigned char *buf;
	size_t cap, off;
	bool ok;
};

static void put_head(struct writer *w, size_t (*enc)(size_t, unsigned char *, size_t), size_t v)
{
	size_t k = w->ok ? enc(v, w->buf + w->off, w->cap - w->off) : 0;

	if(k == 0) w->ok = false;
	w->off += k;
}

static size_t enc_map(size_t n, unsigned char *b, size_t cap) { return cbor_encode_map_start(n, b, cap); }
static size_t enc_text(size_t n, unsigned char *b, size_t cap) { return cbor_encode_string_start(n, b, cap); }
static size_t enc_uint(size_t n, unsigned char *b, size_t cap) { return cbor_encode_uint(n, b, cap); }

static void put_text(struct writer *w, const char *s)
{
	size_t n = strlen(s);

	put_head(w, enc_text, n);
	if(!w->ok || w->cap - w->off < n){
		w->ok = false;
		return;
	}
	memcpy(w->buf + w->off, s, n);
	w->off += n;
}

static void put_raw(struct writer *w, const unsigned char *b, size_t n)
{
	if(!w->ok || w->cap - w->off < n){
		w->ok = false;
		return;
	}
	memcpy(w->buf + w->off, b, n);
	w->off += n;
}

static int writer_open(struct writer *w, size_t cap, struct onb_err *err)
{
	*w = (struct writer){ .buf = malloc(cap), .cap = cap, .ok = true };
	return w->buf ? ONB_OK : onb_fail(err, ONB_EINTERNAL, "out of memory");
}

static int writer_close(struct writer *w, struct onb_prov_doc *out, struct onb_err *err)
{
	if(!w->ok){
		OPENSSL_cleanse(w->buf, w->cap);
		free(w->buf);
		return onb_fail(err, ONB_EINTERNAL, "cannot encode the CBOR reply");
	}
	*out = (struct onb_prov_doc){ .data = w->buf, .len = w->off, .format = ONB_PROV_CBOR };
	return ONB_OK;
}

/* Room for a text string: its bytes and the longest head (9 bytes). */
static size_t text_room(const char *s) { return s ? strlen(s) + 9 : 0; }

int onb_provcbor_cert_accepted(const char *cert_id, const char *cert_pem, const char *private_key_pem,
		const char *token, struct onb_prov_doc *out, struct onb_err *err)
{
	struct writer w;
	int ret;

	if(!cert_id || !cert_pem || !token || !out) return onb_fail(err, ONB_EINVAL, "accepted document: missing field");
	ret = writer_open(&w, 128 + text_room(cert_id) + text_room(cert_pem) + text_room(private_key_pem)
			+ text_room(token), err);
	if(ret != ONB_OK) return ret;
	/* the JSON document's order */
	put_head(&w, enc_map, private_key_pem ? 4 : 3);
	put_text(&w, "certificateId");
	put_text(&w, cert_id);
	put_text(&w, "certificatePem");
	put_text(&w, cert_pem);
	if(private_key_pem){
		put_text(&w, "privateKey");
		put_text(&w, private_key_pem);
	}
	put_text(&w, "certificateOwnershipToken");
	put_text(&w, token);
	return writer_close(&w, out, err);
}

int onb_provcbor_rejected(const char *error_code, const char *message, struct onb_prov_doc *out,
		struct onb_err *err)
{
	struct writer w;
	int ret;

	char msg[ONB_ERRLEN];
	size_t i;

	if(!error_code || !message || !out) return onb_fail(err, ONB_EINVAL, "rejected document: missing field");
	/* printable ASCII: a CBOR text string must be UTF-8, and a message may
	 * quote what a device sent */
	for(i = 0; message[i] && i + 1 < sizeof(msg); i++){
		msg[i] = message[i] >= 0x20 && message[i] < 0x7f ? message[i] : '?';
	}
	msg[i] = '\0';
	if((ret = writer_open(&w, 96 + text_room(error_code) + text_room(msg), err)) != ONB_OK) return ret;
	put_head(&w, enc_map, 3);
	put_text(&w, "statusCode");
	put_head(&w, enc_uint, (size_t)onb_prov_status(error_code));
	put_text(&w, "errorCode");
	put_text(&w, error_code);
	put_text(&w, "errorMessage");
	put_text(&w, msg);
	return writer_close(&w, out, err);
}

/* ---------------------------------------------------- JSON <-> CBOR trees */

/* A whole number in the smallest CBOR integer, others as a double. */
static cbor_item_t *number_item(double v)
{
	uint64_t u;

	/* (-0.0 stays a float: as an integer it would come back as 0) */
	if(!isfinite(v) || v != floor(v) || fabs(v) > 9007199254740992.0 || (v == 0 && signbit(v))){
		return cbor_build_float8(v);
	}
	u = v >= 0 ? (uint64_t)v : (uint64_t)(-1.0 - v);
	if(u <= UINT8_MAX) return v >= 0 ? cbor_build_uint8((uint8_t)u) : cbor_build_negint8((uint8_t)u);
	if(u <= UINT16_MAX) return v >= 0 ? cbor_build_uint16((uint16_t)u) : cbor_build_negint16((uint16_t)u);
	if(u <= UINT32_MAX) return v >= 0 ? cbor_build_uint32((uint32_t)u) : cbor_build_negint32((uint32_t)u);
	return v >= 0 ? cbor_build_uint64(u) : cbor_build_negint64(u);
}

/* The CBOR item of a JSON value (a new reference), or NULL when memory is short. */
static cbor_item_t *from_json(const cJSON *j)
{
	cbor_item_t *it = NULL, *k = NULL, *v = NULL;
	const cJSON *c;

	if(cJSON_IsObject(j)){
		if(!(it = cbor_new_definite_map((size_t)cJSON_GetArraySize(j)))) return NULL;
		for(c = j->child; c; c = c->next){
			bool ok = (k = cbor_build_string(c->string ? c->string : "")) && (v = from_json(c))
				&& cbor_map_add(it, (struct cbor_pair){ .key = k, .value = v });
			if(k) cbor_decref(&k);
			if(v) cbor_decref(&v);
			if(!ok) goto fail;
		}
		return it;
	}
	if(cJSON_IsArray(j)){
		if(!(it = cbor_new_definite_array((size_t)cJSON_GetArraySize(j)))) return NULL;
		for(c = j->child; c; c = c->next){
			bool ok = (v = from_json(c)) && cbor_array_push(it, v);
			if(v) cbor_decref(&v);
			if(!ok) goto fail;
		}
		return it;
	}
	if(cJSON_IsString(j)) return cbor_build_string(j->valuestring ? j->valuestring : "");
	if(cJSON_IsNumber(j)) return number_item(j->valuedouble);
	if(cJSON_IsBool(j)) return cbor_build_bool(cJSON_IsTrue(j));
	return cbor_new_null();
fail:
	cbor_decref(&it);
	return NULL;
}

int onb_provcbor_from_json(const cJSON *json, struct onb_prov_doc *out, struct onb_err *err)
{
	cbor_item_t *it = json ? from_json(json) : NULL;
	unsigned char *buf = NULL;
	size_t cap = 0, n;

	if(!it) return onb_fail(err, ONB_EINTERNAL, "out of memory");
	n = cbor_serialize_alloc(it, &buf, &cap);
	cbor_decref(&it);
	if(n == 0){
		free(buf);
		return onb_fail(err, ONB_EINTERNAL, "out of memory");
	}
	*out = (struct onb_prov_doc){ .data = buf, .len = n, .format = ONB_PROV_CBOR };
	return ONB_OK;
}

int onb_provcbor_register_accepted(const cJSON *device_config, const char *thing_name,
		struct onb_prov_doc *out, struct onb_err *err)
{
	static const unsigned char empty_map = 0xa0;
	struct onb_prov_doc cfg = { 0 };
	struct writer w;
	int ret;

	if(!thing_name || !out || (device_config && !cJSON_IsObject(device_config))){
		return onb_fail(err, ONB_EINVAL, "accepted document: bad arguments");
	}
	if(device_config && (ret = onb_provcbor_from_json(device_config, &cfg, err)) != ONB_OK) return ret;
	ret = writer_open(&w, 96 + cfg.len + text_room(thing_name), err);
	if(ret == ONB_OK){
		put_head(&w, enc_map, 2);
		put_text(&w, "deviceConfiguration");
		put_raw(&w, cfg.data ? cfg.data : &empty_map, cfg.data ? cfg.len : 1);
		put_text(&w, "thingName");
		put_text(&w, thing_name);
		ret = writer_close(&w, out, err);
	}
	onb_prov_doc_clear(&cfg);
	return ret;
}

/* The JSON value of a CBOR item that passed prescan (depth bounded). */
static cJSON *to_json(const cbor_item_t *it, struct onb_err *err)
{
	cJSON *j = NULL, *v;
	char *s = NULL;

	switch(cbor_typeof(it)){
	case CBOR_TYPE_UINT: return cJSON_CreateNumber((double)cbor_get_int(it));
	case CBOR_TYPE_NEGINT: return cJSON_CreateNumber(-1.0 - (double)cbor_get_int(it));
	case CBOR_TYPE_STRING:
		if(text_dup(it, "text string", ONB_PROV_REPLY_MAX, &s, NULL, err) != ONB_OK) return NULL;
		j = cJSON_CreateString(s);
		free(s);
		return j;
	case CBOR_TYPE_ARRAY:
		if(!(j = cJSON_CreateArray())) return NULL;
		for(size_t i = 0; i < cbor_array_size(it); i++){
			if(!(v = to_json(cbor_array_handle(it)[i], err)) || !cJSON_AddItemToArray(j, v)) goto fail;
		}
		return j;
	case CBOR_TYPE_MAP:
		if(keys_are_text(it, "document", err) != ONB_OK || !(j = cJSON_CreateObject())) return NULL;
		for(size_t i = 0; i < cbor_map_size(it); i++){
			const struct cbor_pair *p = &cbor_map_handle(it)[i];
			if(text_dup(p->key, "map key", ONB_PROV_REPLY_MAX, &s, NULL, err) != ONB_OK) goto fail;
			if(cJSON_GetObjectItemCaseSensitive(j, s)){
				onb_fail(err, ONB_EINVAL, "field %s appears more than once", s);
				goto fail;
			}
			v = to_json(p->value, err);
			if(!v || !cJSON_AddItemToObject(j, s, v)) goto fail;
			free(s);
			s = NULL;
		}
		return j;
	case CBOR_TYPE_FLOAT_CTRL:
		if(!cbor_float_ctrl_is_ctrl(it)) return cJSON_CreateNumber(cbor_float_get_float(it));
		if(cbor_is_bool(it)) return cJSON_CreateBool(cbor_get_bool(it));
		return cJSON_CreateNull();
	default:
		onb_fail(err, ONB_EINVAL, "CBOR item of type %d has no JSON equivalent", (int)cbor_typeof(it));
		return NULL;
	}
fail:
	free(s);
	cJSON_Delete(j);
	return NULL;
}

cJSON *onb_provcbor_to_json(const void *buf, size_t len, int max_depth, struct onb_err *err)
{
	cbor_item_t *root = NULL;
	cJSON *j;

	if(err) err->msg[0] = '\0';
	if(load(buf, len, max_depth, true, false, &root, err) != ONB_OK) return NULL;
	j = to_json(root, err);
	if(!j && err && !err->msg[0]) onb_fail(err, ONB_EINTERNAL, "out of memory");
	cbor_decref(&root);
	return j;
}
