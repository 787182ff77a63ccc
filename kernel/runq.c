/* Run-queue and sleep-queue logic of the scheduler (see kernel/runq.h). */
#include "kernel/runq.h"
#include "kernel/kernel.h"

int runq_push(struct runq *q, struct sched_node *n)
{
    if (n->queued)
        return E_BUSY;
    n->next = NULL;
    n->queued = true;
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
    q->len++;
    return 0;
}

int runq_push_head(struct runq *q, struct sched_node *n)
{
    if (n->queued)
        return E_BUSY;
    n->next = q->head;
    n->queued = true;
    q->head = n;
    if (!q->tail)
        q->tail = n;
    q->len++;
    return 0;
}

struct sched_node *runq_pop(struct runq *q)
{
    struct sched_node *n = q->head;
    if (!n)
        return NULL;
    q->head = n->next;
    if (!q->head)
        q->tail = NULL;
    n->next = NULL;
    n->queued = false;
    q->len--;
    return n;
}

bool runq_remove(struct runq *q, struct sched_node *n)
{
    struct sched_node *prev = NULL;
    for (struct sched_node *c = q->head; c; prev = c, c = c->next) {
        if (c != n)
            continue;
        if (prev)
            prev->next = c->next;
        else
            q->head = c->next;
        if (q->tail == c)
            q->tail = prev;
        c->next = NULL;
        c->queued = false;
        q->len--;
        return true;
    }
    return false;
}

int sleepq_insert(struct runq *q, struct sched_node *n, uint64_t wake)
{
    if (n->queued)
        return E_BUSY;
    n->key = wake;
    n->queued = true;
    struct sched_node **link = &q->head;
    while (*link && (*link)->key <= wake)
        link = &(*link)->next;
    n->next = *link;
    *link = n;
    if (!n->next)
        q->tail = n;
    q->len++;
    return 0;
}

struct sched_node *sleepq_pop_expired(struct runq *q, uint64_t now)
{
    if (!q->head || q->head->key > now)
        return NULL;
    return runq_pop(q);
}
