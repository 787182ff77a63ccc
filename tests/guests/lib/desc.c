/* desc.c — the runtime's GDT, TSS and IDT (SDM 3A 3.4.5, 6.11, 7.2). */
#include "guest.h"

struct seg_desc gdt[GDT_ENTRIES] ALIGNED(8);
struct gate_desc idt[256] ALIGNED(8);
struct tss32 tss ALIGNED(128);
extern uint8_t int_stack_top[];

struct seg_desc seg_make(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags)
{
    struct seg_desc d;
    d.lo = (limit & 0xFFFF) | (base << 16);
    d.hi = ((base >> 16) & 0xFF) | ((uint32_t)access << 8) | (limit & 0xF0000) |
           ((uint32_t)(flags & 0xF) << 20) | (base & 0xFF000000);
    return d;
}

struct gate_desc gate_make(uint16_t sel, uint32_t offset, uint8_t type, int dpl)
{
    struct gate_desc g;
    g.lo = (offset & 0xFFFF) | ((uint32_t)sel << 16);
    g.hi = (offset & 0xFFFF0000) | ((uint32_t)(DA_P | DA_DPL(dpl) | type) << 8);
    return g;
}

void idt_set_dpl(int vec, int dpl)
{
    idt[vec] = gate_make(SEL_KCODE, stub_table[vec], DA_INTGATE, dpl);
}

/* Contract: loads the flat GDT of x86.h (SEL_*), a TSS whose ESP0 is the
 * interrupt stack (so ring-3 traps never land on the kernel stack that
 * user_run returns to), and an IDT of interrupt gates, DPL 0 except the
 * ones ring 3 may reach with int3, into and int 0x80. */
void desc_init(void)
{
    gdt[SEL_KCODE >> 3] = seg_make(0, 0xFFFFF, DA_P | DA_S | DA_CODE | DA_R | DA_A, DF_G | DF_DB);
    gdt[SEL_KDATA >> 3] = seg_make(0, 0xFFFFF, DA_P | DA_S | DA_W | DA_A, DF_G | DF_DB);
    gdt[SEL_UCODE >> 3] = seg_make(0, 0xFFFFF, DA_P | DA_DPL(3) | DA_S | DA_CODE | DA_R | DA_A, DF_G | DF_DB);
    gdt[SEL_UDATA >> 3] = seg_make(0, 0xFFFFF, DA_P | DA_DPL(3) | DA_S | DA_W | DA_A, DF_G | DF_DB);
    gdt[SEL_TSS >> 3] = seg_make((uint32_t)&tss, sizeof(tss) - 1, DA_P | DA_TSS32, 0);
    tss.ss0 = SEL_KDATA;
    tss.esp0 = (uint32_t)int_stack_top;
    tss.iomap = sizeof(tss);        /* no I/O bitmap: IOPL alone decides */
    struct dtr g = { sizeof(gdt) - 1, (uint32_t)gdt };
    lgdt(&g);
    seg_reload(SEL_KCODE, SEL_KDATA);
    ltr(SEL_TSS);

    for (int v = 0; v < 256; v++)
        idt_set_dpl(v, 0);
    idt_set_dpl(T_BP, 3);
    idt_set_dpl(T_OF, 3);
    idt_set_dpl(T_SYSCALL, 3);
    struct dtr i = { sizeof(idt) - 1, (uint32_t)idt };
    lidt(&i);
}
