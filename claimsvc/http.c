/* claimsvc's HTTP server (contract: http.h; docs/operations.md, "Health
 * and Prometheus metrics").
 *
 * A client must not be able to stall provisioning through it: MHD runs on
 * the main loop but never blocks there (non-blocking sockets, its own
 * epoll set); a connection that sends nothing costs a descriptor until
 * CONN_TIMEOUT_S; at most CONN_LIMIT connections (PER_IP_LIMIT per address)
 * exist at once, further ones are closed at accept; request headers are
 * capped by CONN_MEMORY; only GET and HEAD on the two paths are answered
 * with a page, and a page is at most RESPONSE_MAX bytes. */
#include "http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#define CONN_LIMIT 16
#define PER_IP_LIMIT 8
#define CONN_TIMEOUT_S 10
#define CONN_MEMORY (16 * 1024)
#define BACKLOG 16
#define RESPONSE_MAX (4 * 1024 * 1024)

#define CT_TEXT "text/plain; charset=utf-8"

/* *req_cls of a request whose headers were seen (on_request's first call) */
static int headers_seen;
#define CT_PROM "text/plain; version=0.0.4; charset=utf-8"

struct csvc_http {
	struct MHD_Daemon *d;
	struct csvc_http_routes routes;
	struct sockaddr_storage addr;
	int epoll_fd;
	bool started;              /* MHD's messages go to debug once serving */
};

/* MHD's own messages (bind failures at start; refused connections later,
 * which a flood would otherwise turn into a flood of log lines). */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	const struct csvc_http *h = cls;
	char line[512];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while(n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
	csvc_log(h->started ? CSVC_DEBUG : CSVC_ERROR, "http: %s", line);
}

/* Queues one answer; body is taken over (free()d by MHD) when owned, a
 * static string otherwise. */
static enum MHD_Result answer(struct MHD_Connection *c, unsigned int status, const char *type, char *body,
		size_t len, bool owned, bool allow)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body,
			owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if(!r){
		if(owned) free(body);
		return MHD_NO; /* MHD closes the connection */
	}
	if(MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES
			|| MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES
			|| (allow && MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES)){
		MHD_destroy_response(r);
		return MHD_NO;
	}
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

#define STATIC_ANSWER(c, status, text, allow) \
	answer(c, status, CT_TEXT, (char *)(text), sizeof(text) - 1, false, allow)

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
		const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls)
{
	struct csvc_http *h = cls;
	csvc_http_page page = NULL;
	const char *type = CT_TEXT;
	struct csvc_text t;
	char *body;
	size_t len = 0;
	int status;

	/* url is the path, already without its query string */
	if(!strcmp(url, "/healthz")){
		page = h->routes.healthz;
	}else if(!strcmp(url, "/metrics")){
		page = h->routes.metrics;
		type = CT_PROM;
	}
	if(!page) return STATIC_ANSWER(c, MHD_HTTP_NOT_FOUND, "not found: GET /healthz or /metrics\n", false);
	/* HEAD is GET without the body (MHD leaves it out): what wget --spider
	 * and some probes send. Anything else is answered at once, before a
	 * request body is read; MHD then closes the connection. */
	if(strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0){
		return STATIC_ANSWER(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: GET or HEAD\n", true);
	}
	/* A GET that sends a body is not a probe nor a scraper: MHD cannot
	 * answer in the middle of a body, and reading it to its end for a 400
	 * would let the client decide how long, so the connection is closed. */
	if(*upload_data_size != 0) return MHD_NO;
	/* The page waits for MHD's second call, when the whole request is in:
	 * a response queued earlier makes MHD close the connection (the client
	 * might still be sending), and a scraper's connection may stay open. */
	if(*req_cls != &headers_seen){
		*req_cls = &headers_seen;
		return MHD_YES;
	}
	csvc_text_init(&t, RESPONSE_MAX);
	status = page(h->routes.arg, &t);
	body = csvc_text_take(&t, &len);
	if(!body){
		csvc_log(CSVC_ERROR, "http: the %s page is over %d bytes or memory ran out", url, RESPONSE_MAX);
		return STATIC_ANSWER(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n", false);
	}
	return answer(c, (unsigned int)status, type, body, len, true, false);
}

struct csvc_http *csvc_http_start(const struct csvc_listen *l, const struct csvc_http_routes *routes,
		struct onb_err *err)
{
	struct csvc_http *h = NULL;
	const union MHD_DaemonInfo *info;
	unsigned int flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;

	if(!l->enabled) return NULL;
	if(MHD_is_feature_supported(MHD_FEATURE_EPOLL) != MHD_YES){
		onb_fail(err, ONB_EINTERNAL, "http: this libmicrohttpd has no epoll support");
		goto fail;
	}
	h = calloc(1, sizeof(*h));
	if(!h){
		onb_fail(err, ONB_EINTERNAL, "http: out of memory");
		goto fail;
	}
	h->routes = *routes;
	if(l->family == AF_INET6){
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&h->addr;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)l->port);
		memcpy(&a->sin6_addr, l->addr, 16);
		flags |= MHD_USE_IPv6;
	}else{
		struct sockaddr_in *a = (struct sockaddr_in *)&h->addr;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)l->port);
		memcpy(&a->sin_addr, l->addr, 4);
	}
	/* no thread flag: MHD runs only when csvc_http_run calls it */
	h->d = MHD_start_daemon(flags, (uint16_t)l->port, NULL, NULL, on_request, h,
			MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&h->addr,
			MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
			MHD_OPTION_CONNECTION_LIMIT, (unsigned int)CONN_LIMIT,
			MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)PER_IP_LIMIT,
			MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONN_TIMEOUT_S,
			MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
			MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)BACKLOG,
			/* no MHD_OPTION_LISTENING_ADDRESS_REUSE: 1 would set SO_REUSEPORT and let
			 * a second instance share the port; MHD's default SO_REUSEADDR alone
			 * allows a restart over TIME_WAIT but refuses a second listener */
			MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
			MHD_OPTION_END);
	if(!h->d){
		onb_fail(err, ONB_EUNAVAIL, "http: cannot listen on %s (http_listen; see the line above)", l->text);
		goto fail;
	}
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
	if(!info || info->epoll_fd < 0){
		onb_fail(err, ONB_EINTERNAL, "http: no epoll descriptor");
		goto fail;
	}
	h->epoll_fd = info->epoll_fd;
	h->started = true;
	return h;
fail:
	csvc_http_stop(h);
	return NULL;
}

int csvc_http_fd(const struct csvc_http *h)
{
	return h->epoll_fd;
}

int csvc_http_timeout_ms(struct csvc_http *h, int max_ms)
{
	MHD_UNSIGNED_LONG_LONG t = 0;

	if(MHD_get_timeout(h->d, &t) == MHD_YES && t < (MHD_UNSIGNED_LONG_LONG)max_ms) return (int)t;
	return max_ms;
}

void csvc_http_run(struct csvc_http *h)
{
	MHD_run(h->d);
}

void csvc_http_stop(struct csvc_http *h)
{
	if(!h) return;
	if(h->d) MHD_stop_daemon(h->d);
	free(h);
}
