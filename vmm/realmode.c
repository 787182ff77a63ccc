/*
 * Real-address mode decisions (vmm/realmode.h). Pure functions of the
 * guest's register state: no guest memory, no monitor state.
 */
#include "vmm/realmode.h"
#include <stddef.h>
#include "kernel/x86.h"

enum rm_engine rm_engine_for(const struct vseg seg[SR_N], uint32_t eip, const char **why)
{
    *why = NULL;
    if (seg[SR_CS].flags & DESC_FLAG_D) {
        *why = "real mode with a 32-bit code segment (CS.D = 1 left from protected mode)";
        return RM_STOP;
    }
    if (eip > RM_OFFSET_MAX || (seg[SR_SS].flags & DESC_FLAG_D))
        return RM_EMULATE;
    for (int sr = 0; sr < SR_N; sr++)
        if (seg[sr].base != (uint32_t)seg[sr].sel << 4 || seg[sr].limit < RM_OFFSET_MAX)
            return RM_EMULATE;
    return RM_V86;
}

void rm_seg_load(struct vseg *s, uint16_t sel)
{
    s->sel = sel;
    s->base = (uint32_t)sel << 4;
    s->access = DESC_P | DESC_S | DESC_WRITABLE | DESC_ACCESSED;
}

#define FLAGS_FIXED1   0x0002u
#define FLAGS_ZERO16   0x8028u /* bits 3, 5 and 15 */
#define EFLAGS_POP_KEEP (EFLAGS_VM | EFLAGS_VIF | EFLAGS_VIP | EFLAGS_RF)

uint16_t rm_flags_image(uint32_t eflags)
{
    return (uint16_t)((eflags & ~FLAGS_ZERO16) | FLAGS_FIXED1);
}

uint32_t rm_flags_pop(uint32_t eflags, uint32_t img, unsigned os)
{
    uint32_t fl = os == 2 ? (eflags & 0xFFFF0000u) | (img & 0xFFFFu) : img;
    fl = (fl & ~EFLAGS_POP_KEEP) | (eflags & EFLAGS_POP_KEEP);
    return (fl & ~FLAGS_ZERO16) | FLAGS_FIXED1;
}
