/*
 * The scheduler's queue logic, kept free of kernel services so the unit tests
 * run it on the host: an intrusive FIFO run queue (round-robin order) and a
 * sleep queue ordered by wake-up tick (earliest first, FIFO among equals).
 */
#ifndef HV86_KERNEL_RUNQ_H
#define HV86_KERNEL_RUNQ_H
#include <stdbool.h>
#include <stdint.h>

struct sched_node {
    struct sched_node *next;
    uint64_t key;  /* sleep queue: wake-up tick */
    bool queued;   /* on some queue; guards against double insertion */
};

struct runq {
    struct sched_node *head, *tail;
    uint32_t len;
};

/* Append n at the tail. Returns 0, or E_BUSY if n is already queued. */
int runq_push(struct runq *q, struct sched_node *n);
/* Insert n at the head: it is popped next. Returns 0, or E_BUSY if queued. */
int runq_push_head(struct runq *q, struct sched_node *n);
/* Remove and return the head, or NULL if empty. */
struct sched_node *runq_pop(struct runq *q);
/* Remove n wherever it is; returns true if it was in q. */
bool runq_remove(struct runq *q, struct sched_node *n);

/* Insert n to wake at tick wake (ticks). Returns 0 or E_BUSY if queued. */
int sleepq_insert(struct runq *q, struct sched_node *n, uint64_t wake);
/* Remove and return the first node whose wake tick is <= now, or NULL. */
struct sched_node *sleepq_pop_expired(struct runq *q, uint64_t now);

#endif
