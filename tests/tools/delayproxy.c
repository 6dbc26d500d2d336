/* delayproxy: a TCP proxy on 127.0.0.1 that holds every chunk it forwards
 * for a fixed one-way delay, in each direction, so that a client talking to
 * a server on the same host sees the round trip of a network (netem is not
 * available here). Used to put Redis "on another host" for the benchmarks.
 *
 * One thread, one ppoll() loop. Each direction of each connection is a FIFO
 * of chunks stamped with the time they may leave (read time + delay); since
 * the delay is the same for every chunk the FIFO is also the timer queue, and
 * order is preserved. A direction stops reading once BUFFER bytes wait in it,
 * so memory is bounded by CONNECTIONS x 2 x BUFFER.
 *
 * Not modelled: the TCP handshake (the client's connect is answered at once,
 * the proxy's connect to the target is made on loopback), loss, jitter,
 * bandwidth. A reset or error on either side closes both sides at once,
 * dropping what was still held. */
#define _GNU_SOURCE /* ppoll: poll() only waits in whole milliseconds */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK 65536

static const char usage_text[] =
	"usage: delayproxy --listen PORT --target PORT (--delay-ms MS | --rtt-ms MS)\n"
	"                  [--max-conns N] [--buffer-bytes B]\n"
	"\n"
	"Listens on 127.0.0.1:PORT and connects each accepted connection to\n"
	"127.0.0.1:TARGET. Every chunk read from either side is written to the other\n"
	"side MS milliseconds later (--delay-ms: one way, so the round trip grows by\n"
	"2 x MS; --rtt-ms: the round trip to add, halved for each direction).\n"
	"MS may be fractional (0.5) and 0; resolution is 1 microsecond, accuracy\n"
	"is the scheduler's. Order is kept in each direction.\n"
	"\n"
	"  --listen PORT       port to listen on; 0 picks a free one\n"
	"  --target PORT       port on 127.0.0.1 to forward to\n"
	"  --max-conns N       connections held at once (default 256); more are\n"
	"                      accepted and closed at once\n"
	"  --buffer-bytes B    bytes held per direction before the proxy stops\n"
	"                      reading that side (default 1048576)\n"
	"\n"
	"Prints the listening port on stdout (one line, flushed) once it accepts\n"
	"connections. Exits 0 on SIGTERM or SIGINT, closing every connection;\n"
	"2 on bad usage, 1 on a set-up error. The TCP handshake itself is not\n"
	"delayed, nor are resets; loss, jitter and bandwidth are not modelled.\n";

struct chunk {
	struct chunk *next;
	int64_t due_us; /* monotonic time this chunk may be written */
	size_t len, off; /* len 0: the reading side closed; shut the writing side */
	unsigned char data[]; /* len bytes, owned by the chunk */
};

/* bytes read from one socket, waiting to be written to the other */
struct direction {
	struct chunk *head, *tail; /* owned: freed as they are written */
	size_t held; /* bytes in the queue, bounded by buffer_bytes */
	bool read_closed; /* EOF read from the source: nothing more to queue */
	bool write_closed; /* EOF passed on (shutdown of the destination) */
	bool blocked; /* the destination took less than was due: wait for POLLOUT */
};

struct pair {
	int fd[2]; /* 0: the accepted client, 1: the connection to the target */
	bool connecting; /* fd[1]'s non-blocking connect has not completed */
	int poll_slot; /* index of fd[0] in this round's pollfd array (fd[1]: +1); 0: not polled */
	struct direction dir[2]; /* dir[i] carries fd[i] -> fd[1 - i] */
};

static volatile sig_atomic_t stop_requested;
static int64_t one_way_us;
static size_t buffer_bytes = 1048576;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int parse_port(const char *s, bool zero_ok)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if(errno || end == s || *end || v < (zero_ok ? 0 : 1) || v > 65535) return -1;
	return (int)v;
}

/* milliseconds (fractional, 0 to 10 s) -> microseconds; -1 when invalid */
static int64_t parse_ms(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if(errno || end == s || *end || !(v >= 0 && v <= 10000)) return -1;
	return (int64_t)(v * 1000 + 0.5);
}

static long parse_count(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if(errno || end == s || *end || v < min || v > max) return -1;
	return v;
}

static int set_nonblocking_nodelay(int fd)
{
	int one = 1, flags = fcntl(fd, F_GETFL);

	if(flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return -1;
	/* Nagle would add its own delay on top of ours */
	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sa;
}

static void pair_close(struct pair *p)
{
	for(int i = 0; i < 2; i++){
		struct chunk *c = p->dir[i].head;
		while(c){
			struct chunk *next = c->next;
			free(c);
			c = next;
		}
		if(p->fd[i] >= 0) close(p->fd[i]);
	}
	memset(p, 0, sizeof(*p));
	p->fd[0] = p->fd[1] = -1;
}

/* 0 when the chunk was queued, -1 when out of memory */
static int queue_chunk(struct direction *d, const unsigned char *data, size_t len)
{
	struct chunk *c = malloc(sizeof(*c) + len);

	if(!c) return -1;
	c->next = NULL;
	c->due_us = now_us() + one_way_us;
	c->len = len;
	c->off = 0;
	if(len) memcpy(c->data, data, len);
	if(d->tail) d->tail->next = c;
	else d->head = c;
	d->tail = c;
	d->held += len;
	return 0;
}

/* Reads what fd[i] has into dir[i]. 0 when the pair lives on, -1 to close it. */
static int pair_read(struct pair *p, int i)
{
	static unsigned char buf[READ_CHUNK];
	struct direction *d = &p->dir[i];
	size_t room = buffer_bytes - d->held;
	ssize_t n = read(p->fd[i], buf, room < sizeof(buf) ? room : sizeof(buf));

	if(n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
	if(n == 0) d->read_closed = true;
	return queue_chunk(d, buf, (size_t)n);
}

/* Writes the chunks of dir[i] that are due to fd[1 - i]. 0 or -1 as above. */
static int pair_write_due(struct pair *p, int i, int64_t now)
{
	struct direction *d = &p->dir[i];
	int out = p->fd[1 - i];

	d->blocked = false;
	while(d->head && d->head->due_us <= now){
		struct chunk *c = d->head;
		if(c->len == 0){
			if(shutdown(out, SHUT_WR) != 0) return -1;
			d->write_closed = true;
		}else{
			ssize_t n = write(out, c->data + c->off, c->len - c->off);
			if(n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
			if(n > 0) c->off += (size_t)n;
			if(c->off < c->len){
				d->blocked = true; /* the socket is full */
				return 0;
			}
			d->held -= c->len;
		}
		d->head = c->next;
		if(!d->head) d->tail = NULL;
		free(c);
	}
	return 0;
}

static bool pair_finished(const struct pair *p)
{
	return p->dir[0].write_closed && p->dir[1].write_closed;
}

static int accept_one(int lfd, struct pair *pairs, long max_conns, int target)
{
	struct sockaddr_in sa = loopback(target);
	int cfd = accept(lfd, NULL, NULL), ufd = -1;
	long slot;

	if(cfd < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
			|| errno == ECONNABORTED) ? 0 : -1;
	for(slot = 0; slot < max_conns && pairs[slot].fd[0] >= 0; slot++);
	if(slot == max_conns){
		fprintf(stderr, "delayproxy: %ld connections held, closing a new one\n", max_conns);
		close(cfd);
		return 0;
	}
	if(set_nonblocking_nodelay(cfd) != 0 || (ufd = socket(AF_INET, SOCK_STREAM, 0)) < 0
			|| set_nonblocking_nodelay(ufd) != 0){
		perror("delayproxy: socket");
		goto fail;
	}
	if(connect(ufd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS){
		perror("delayproxy: connect to target");
		goto fail;
	}
	pairs[slot].fd[0] = cfd;
	pairs[slot].fd[1] = ufd;
	pairs[slot].connecting = true;
	pairs[slot].poll_slot = 0;
	return 0;
fail:
	close(cfd);
	if(ufd >= 0) close(ufd);
	return 0; /* one failed connection does not stop the proxy */
}

/* the poll events fd[i] of a live pair waits for */
static short pair_events(const struct pair *p, int i)
{
	const struct direction *in = &p->dir[i], *out = &p->dir[1 - i];
	short ev = 0;

	if(p->connecting) return i == 1 ? POLLOUT : 0;
	if(!in->read_closed && in->held < buffer_bytes) ev |= POLLIN;
	/* a due chunk the socket did not take: wait until it takes more */
	if(out->blocked) ev |= POLLOUT;
	return ev;
}

static int run(int lfd, int target, long max_conns)
{
	struct pair *pairs = calloc((size_t)max_conns, sizeof(*pairs));
	struct pollfd *pfd = calloc((size_t)max_conns * 2 + 1, sizeof(*pfd));
	int ret = 1;

	if(!pairs || !pfd){
		fprintf(stderr, "delayproxy: out of memory\n");
		goto cleanup;
	}
	for(long k = 0; k < max_conns; k++) pairs[k].fd[0] = pairs[k].fd[1] = -1;

	while(!stop_requested){
		int64_t now = now_us(), next_due = INT64_MAX;
		struct timespec timeout, *tp = NULL;
		nfds_t n = 1;

		pfd[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for(long k = 0; k < max_conns; k++){
			struct pair *p = &pairs[k];
			if(p->fd[0] < 0) continue;
			p->poll_slot = (int)n;
			for(int i = 0; i < 2; i++){
				pfd[n++] = (struct pollfd){ .fd = p->fd[i], .events = pair_events(p, i) };
				/* a blocked head waits on the socket, the others on the clock */
				if(!p->connecting && p->dir[i].head && !p->dir[i].blocked
						&& p->dir[i].head->due_us < next_due){
					next_due = p->dir[i].head->due_us;
				}
			}
		}
		if(next_due != INT64_MAX){
			int64_t wait = next_due > now ? next_due - now : 0;
			timeout.tv_sec = (time_t)(wait / 1000000);
			timeout.tv_nsec = (long)(wait % 1000000) * 1000;
			tp = &timeout;
		}
		if(ppoll(pfd, n, tp, NULL) < 0){
			if(errno == EINTR) continue;
			perror("delayproxy: ppoll");
			goto cleanup;
		}
		if((pfd[0].revents & POLLIN) && accept_one(lfd, pairs, max_conns, target) != 0){
			perror("delayproxy: accept");
			goto cleanup;
		}

		now = now_us();
		for(long k = 0; k < max_conns; k++){
			struct pair *p = &pairs[k];
			int err = 0;
			socklen_t len = sizeof(err);

			if(p->fd[0] < 0 || p->poll_slot == 0) continue; /* 0: accepted this round */
			if(p->connecting){
				if(!pfd[p->poll_slot + 1].revents) continue;
				if(getsockopt(p->fd[1], SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0){
					pair_close(p);
					continue;
				}
				p->connecting = false;
			}
			for(int i = 0; i < 2; i++){
				const struct pollfd *q = &pfd[p->poll_slot + i];
				/* read only when asked: a full queue would read 0 bytes, taken for EOF */
				if((q->events & POLLIN) && (q->revents & (POLLIN | POLLHUP | POLLERR))
						&& pair_read(p, i) != 0){
					goto close_pair;
				}
			}
			for(int i = 0; i < 2; i++){
				if(pair_write_due(p, i, now) != 0) goto close_pair;
			}
			if(pair_finished(p)) pair_close(p);
			continue;
close_pair:
			pair_close(p);
		}
	}
	ret = 0;
cleanup:
	if(pairs){
		for(long k = 0; k < max_conns; k++){
			if(pairs[k].fd[0] >= 0) pair_close(&pairs[k]);
		}
	}
	free(pairs);
	free(pfd);
	return ret;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };
	struct sockaddr_in addr;
	socklen_t alen = sizeof(addr);
	int listen_port = -1, target = -1, lfd = -1, one = 1, ret = 2;
	long max_conns = 256, v;
	bool have_delay = false;

	for(int i = 1; i < argc; i++){
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		if(!strcmp(opt, "--help") || !strcmp(opt, "-h")){
			fputs(usage_text, stdout);
			return 0;
		}
		if(!val) goto usage;
		i++;
		if(!strcmp(opt, "--listen")){
			if((listen_port = parse_port(val, true)) < 0) goto usage;
		}else if(!strcmp(opt, "--target")){
			if((target = parse_port(val, false)) < 0) goto usage;
		}else if(!strcmp(opt, "--delay-ms") || !strcmp(opt, "--rtt-ms")){
			int64_t us = parse_ms(val);
			if(us < 0 || have_delay) goto usage;
			one_way_us = !strcmp(opt, "--rtt-ms") ? us / 2 : us;
			have_delay = true;
		}else if(!strcmp(opt, "--max-conns")){
			if((max_conns = parse_count(val, 1, 4096)) < 0) goto usage;
		}else if(!strcmp(opt, "--buffer-bytes")){
			if((v = parse_count(val, 1, 1L << 30)) < 0) goto usage;
			buffer_bytes = (size_t)v;
		}else{
			goto usage;
		}
	}
	if(listen_port < 0 || target < 0 || !have_delay) goto usage;

	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: ppoll must return EINTR so the loop sees the flag */
	if(sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) return 1;
	signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an EPIPE, not a death */

	addr = loopback(listen_port);
	ret = 1;
	if((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0
			|| setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0
			|| bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) != 0
			|| listen(lfd, 128) != 0
			|| fcntl(lfd, F_SETFL, O_NONBLOCK) != 0
			|| getsockname(lfd, (struct sockaddr *)&addr, &alen) != 0){
		perror("delayproxy: listen");
		goto cleanup;
	}
	fprintf(stderr, "delayproxy: 127.0.0.1:%u -> 127.0.0.1:%d, %lld us each way\n",
			(unsigned)ntohs(addr.sin_port), target, (long long)one_way_us);
	printf("%u\n", (unsigned)ntohs(addr.sin_port));
	fflush(stdout);
	ret = run(lfd, target, max_conns);
cleanup:
	if(lfd >= 0) close(lfd);
	return ret;
usage:
	fputs(usage_text, stderr);
	return 2;
}
