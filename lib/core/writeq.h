/* A bounded first-in first-out queue from one producer that must never wait
 * (the broker's thread) to one consumer that may (a writer thread with its
 * own Redis connection). Items are opaque pointers: the queue never frees
 * one except in onb_writeq_free. A push into a full queue fails at once and
 * is counted: the producer decides what the loss means. */
#ifndef ONB_WRITEQ_H
#define ONB_WRITEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct onb_writeq;

/* A queue holding at most cap items (cap >= 1); NULL when out of memory. */
struct onb_writeq *onb_writeq_new(size_t cap);
/* Frees the queue and, with free_item non-NULL, every item still in it. */
void onb_writeq_free(struct onb_writeq *q, void (*free_item)(void *item));

/* Appends item without waiting; false (item not taken, one drop counted)
 * when the queue is full or closed. Safe from any thread. */
bool onb_writeq_push(struct onb_writeq *q, void *item);

/* Moves up to max items, oldest first, into out[], waiting up to wait_ms
 * (0: not at all, < 0: until an item comes or the queue is closed) for the
 * first. Returns how many were moved; 0 on timeout or once closed and empty. */
size_t onb_writeq_take(struct onb_writeq *q, void **out, size_t max, int wait_ms);

/* Wakes a waiting taker and refuses further pushes; what is queued can still
 * be taken. */
void onb_writeq_close(struct onb_writeq *q);

/* Items queued now. */
size_t onb_writeq_length(struct onb_writeq *q);
/* Pushes refused since the queue was made. */
uint64_t onb_writeq_dropped_total(struct onb_writeq *q);
/* Pushes refused since the last call (for one aggregated report of them),
 * and resets that count. */
uint64_t onb_writeq_take_dropped(struct onb_writeq *q);

#endif
