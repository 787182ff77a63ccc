/*
 * Lost-tick policy of the periodic timers (contract and sources in
 * vmm/dev/vtick.h).
 */
#include "vmm/dev/vtick.h"

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

void vtick_reset(struct vtick *t)
{
    *t = (struct vtick){ .backlog = 0, .reinjected = 0, .dropped = 0, .gave_up = 0 };
}

void vtick_missed(struct vtick *t, uint64_t missed, uint64_t cap, uint64_t period_ns)
{
    if (!missed)
        return;
    if (missed * period_ns > VTICK_GAP_FULL_NS) {
        cap = min_u64(cap, t->backlog + VTICK_GAP_KEEP); /* too long to pay for every tick */
        t->gave_up++;
    }
    uint64_t keep = min_u64(missed, cap > t->backlog ? cap - t->backlog : 0);
    t->backlog += keep;
    t->dropped += missed - keep;
}

bool vtick_take(struct vtick *t)
{
    if (!t->backlog)
        return false;
    t->backlog--;
    t->reinjected++;
    return true;
}

void vtick_forget(struct vtick *t)
{
    t->backlog = 0;
}
