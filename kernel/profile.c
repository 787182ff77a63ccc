/* Sampling profile of the hypervisor (profile.h). */
#include "kernel/profile.h"
#include "kernel/kernel.h"
#include "kernel/layout.h"
#include "kernel/sched.h"

static struct profile_entry slots[PROFILE_SLOTS], callers[PROFILE_SLOTS], guest[PROFILE_SLOTS];
static uint32_t rings[4], dropped;

static void count(struct profile_entry *table, uint32_t eip)
{
    uint32_t h = (eip * 2654435761u) >> 20; /* 12 bits: PROFILE_SLOTS */
    for (uint32_t i = 0; i < 16; i++) {
        struct profile_entry *e = &table[(h + i) & (PROFILE_SLOTS - 1)];
        if (e->eip == eip || e->count == 0) {
            e->eip = eip;
            e->count++;
            return;
        }
    }
    dropped++;
}

void profile_sample(const struct trap_frame *tf)
{
    uint32_t ring = trap_ring(tf);
    rings[ring]++;
    uint32_t geip;
    if (ring == 1) /* a stub of the translation cache (no guest EIP): its own, a small offset */
        count(guest, vmm_ring1_guest_eip(tf->eip, &geip) == 0 ? geip : tf->eip);
    if (ring != 0)
        return;
    count(slots, tf->eip);
    /* The caller of the interrupted function, by its frame pointer (the
     * monitor keeps them): return address at [ebp+4]. Only an EBP on this
     * thread's stack is one: hostexec runs a guest instruction at ring 0
     * with the guest's EBP, which may name an unmapped page of the
     * monitor's range (a tick there once read it and took the host down). */
    if (sched_on_stack(tf->ebp, 8) && !(tf->ebp & 3))
        count(callers, *(const uint32_t *)(uintptr_t)(tf->ebp + 4));
}

uint32_t profile_top(struct profile_entry *out, uint32_t n, uint32_t ring_samples[4], enum profile_table which)
{
    const struct profile_entry *table = which == PROFILE_CALLERS ? callers : which == PROFILE_GUEST ? guest : slots;
    uint32_t got = 0;
    for (uint32_t i = 0; i < PROFILE_SLOTS; i++) {
        if (!table[i].count)
            continue;
        uint32_t j = got < n ? got++ : n;
        if (j == n && table[i].count <= out[n - 1].count)
            continue;
        if (j == n)
            j = n - 1;
        while (j > 0 && out[j - 1].count < table[i].count) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = table[i];
    }
    for (int r = 0; r < 4; r++)
        ring_samples[r] = rings[r];
    return got;
}

void profile_reset(void)
{
    memset(slots, 0, sizeof(slots));
    memset(callers, 0, sizeof(callers));
    memset(guest, 0, sizeof(guest));
    memset(rings, 0, sizeof(rings));
    dropped = 0;
}
