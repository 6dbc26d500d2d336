/* A ring of pointers under one mutex; the consumer sleeps on a condition
 * variable. The producer holds the mutex only to copy one pointer, never
 * across I/O: the consumer takes a batch and releases the mutex before it
 * writes anything. */
#include "core/writeq.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct onb_writeq {
	pthread_mutex_t lock;
	pthread_cond_t nonempty;
	void **ring;
	size_t cap, head, len; /* items at ring[(head + i) % cap], i < len */
	bool closed;
	uint64_t dropped_total, dropped_unreported;
};

struct onb_writeq *onb_writeq_new(size_t cap)
{
	struct onb_writeq *q;
	pthread_condattr_t attr;

	if(cap == 0) return NULL;
	q = calloc(1, sizeof(*q));
	if(!q) return NULL;
	q->ring = calloc(cap, sizeof(*q->ring));
	if(!q->ring){
		free(q);
		return NULL;
	}
	q->cap = cap;
	pthread_mutex_init(&q->lock, NULL);
	/* timed waits on the monotonic clock: a wall-clock step must not stall the writer */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&q->nonempty, &attr);
	pthread_condattr_destroy(&attr);
	return q;
}

void onb_writeq_free(struct onb_writeq *q, void (*free_item)(void *item))
{
	if(!q) return;
	for(size_t i = 0; free_item && i < q->len; i++) free_item(q->ring[(q->head + i) % q->cap]);
	pthread_cond_destroy(&q->nonempty);
	pthread_mutex_destroy(&q->lock);
	free(q->ring);
	free(q);
}

bool onb_writeq_push(struct onb_writeq *q, void *item)
{
	bool taken = false;

	pthread_mutex_lock(&q->lock);
	if(!q->closed && q->len < q->cap){
		q->ring[(q->head + q->len) % q->cap] = item;
		q->len++;
		taken = true;
		pthread_cond_signal(&q->nonempty);
	}else{
		q->dropped_total++;
		q->dropped_unreported++;
	}
	pthread_mutex_unlock(&q->lock);
	return taken;
}

static void deadline_after(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if(ts->tv_nsec >= 1000000000L){
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

size_t onb_writeq_take(struct onb_writeq *q, void **out, size_t max, int wait_ms)
{
	struct timespec deadline;
	size_t n = 0;

	if(wait_ms > 0) deadline_after(&deadline, wait_ms);
	pthread_mutex_lock(&q->lock);
	while(q->len == 0 && !q->closed && wait_ms != 0){
		int r = wait_ms < 0 ? pthread_cond_wait(&q->nonempty, &q->lock)
			: pthread_cond_timedwait(&q->nonempty, &q->lock, &deadline);
		if(r == ETIMEDOUT) break;
	}
	while(n < max && q->len > 0){
		out[n++] = q->ring[q->head];
		q->head = (q->head + 1) % q->cap;
		q->len--;
	}
	pthread_mutex_unlock(&q->lock);
	return n;
}

void onb_writeq_close(struct onb_writeq *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->nonempty);
	pthread_mutex_unlock(&q->lock);
}

size_t onb_writeq_length(struct onb_writeq *q)
{
	size_t n;

	pthread_mutex_lock(&q->lock);
	n = q->len;
	pthread_mutex_unlock(&q->lock);
	return n;
}

/* A drop counter read under the lock, and zeroed when take. */
static uint64_t read_dropped(struct onb_writeq *q, uint64_t *counter, bool take)
{
	uint64_t n;

	pthread_mutex_lock(&q->lock);
	n = *counter;
	if(take) *counter = 0;
	pthread_mutex_unlock(&q->lock);
	return n;
}

uint64_t onb_writeq_dropped_total(struct onb_writeq *q)
{
	return read_dropped(q, &q->dropped_total, false);
}

uint64_t onb_writeq_take_dropped(struct onb_writeq *q)
{
	return read_dropped(q, &q->dropped_unreported, true);
}
