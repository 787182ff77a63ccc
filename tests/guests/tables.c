/*
 * tables — the guest installs its own GDT, LDT, IDT and TSS with
 * lgdt/lldt/lidt/ltr, reloads every segment register, far-jumps to new code
 * selectors and takes an interrupt through the new IDT; bad selector loads
 * fault with the selector as error code.
 *
 * Hazard: the monitor keeps shadow copies of the guest's descriptor tables;
 * it must notice each load, use the new tables for every later segment load
 * and gate, and raise the guest's faults (SDM 3A 3.4, 5.5-5.8, 6.10).
 */
#include "guest.h"

#define NEW_CODE  0x30              /* flat code, a selector the runtime does not use */
#define NEW_DATA  0x38              /* flat data */
#define BASED     0x40              /* data, base = based_area, 4 KiB limit */
#define NEW_TSS   0x48
#define NEW_LDT   0x50
#define NOT_PRES  0x58              /* data descriptor with P=0 */
#define READONLY  0x60              /* data without W: not a valid SS */
#define NEW_GDT_N 13
#define EMPTY_SEL 0x18              /* the runtime's user code, zeroed here */
#define LDT_DATA  (0x00 | SEL_TI)   /* LDT[0]: data at based_area + 0x100 */
#define LDT_CODE  (0x08 | SEL_TI)   /* LDT[1]: flat code */
#define LDT_BEYOND (0x10 | SEL_TI)
#define BASED_LDT_OFF 0x100
#define NEW_VEC   0x40              /* gate of the new IDT ... */
#define NEW_VEC_STUB 0x41           /* ... that enters the runtime's stub 0x41 */

static struct seg_desc new_gdt[NEW_GDT_N] ALIGNED(8);
static struct seg_desc new_ldt[2] ALIGNED(8);
static struct gate_desc new_idt[256] ALIGNED(8);
static struct tss32 new_tss;
static uint8_t based_area[PAGE_SIZE] ALIGNED(16);
extern uint8_t int_stack_top[];

static void build_tables(void)
{
    const uint8_t code = DA_P | DA_S | DA_CODE | DA_R | DA_A, data = DA_P | DA_S | DA_W | DA_A;
    /* 0x08 and 0x10 stay: the IDT gates and the runtime's trap entry use them. */
    new_gdt[SEL_KCODE >> 3] = seg_make(0, 0xFFFFF, code, DF_G | DF_DB);
    new_gdt[SEL_KDATA >> 3] = seg_make(0, 0xFFFFF, data, DF_G | DF_DB);
    new_gdt[NEW_CODE >> 3] = seg_make(0, 0xFFFFF, code, DF_G | DF_DB);
    new_gdt[NEW_DATA >> 3] = seg_make(0, 0xFFFFF, data, DF_G | DF_DB);
    new_gdt[BASED >> 3] = seg_make((uint32_t)based_area, PAGE_SIZE - 1, data, DF_DB);
    new_gdt[NEW_TSS >> 3] = seg_make((uint32_t)&new_tss, sizeof(new_tss) - 1, DA_P | DA_TSS32, 0);
    new_gdt[NEW_LDT >> 3] = seg_make((uint32_t)new_ldt, sizeof(new_ldt) - 1, DA_P | DA_LDT, 0);
    new_gdt[NOT_PRES >> 3] = seg_make(0, 0xFFFFF, data & ~DA_P, DF_G | DF_DB);
    new_gdt[READONLY >> 3] = seg_make(0, 0xFFFFF, DA_P | DA_S | DA_A, DF_G | DF_DB);
    new_ldt[0] = seg_make((uint32_t)based_area + BASED_LDT_OFF, 0xFF, data, DF_DB);
    new_ldt[1] = seg_make(0, 0xFFFFF, code, DF_G | DF_DB);
    new_tss.ss0 = SEL_KDATA;
    new_tss.esp0 = (uint32_t)int_stack_top;
    new_tss.iomap = sizeof(new_tss);
    for (int v = 0; v < 256; v++)
        new_idt[v] = idt[v];
    new_idt[NEW_VEC] = gate_make(NEW_CODE, stub_table[NEW_VEC_STUB], DA_INTGATE, 0);
    for (unsigned i = 0; i < sizeof(based_area); i++)
        based_area[i] = (uint8_t)(i * 7 + 1);
}

/* Far call target: returns the CS image the far call pushed. */
asm(".text\nfar_peek:\n\tmovl 4(%esp), %eax\n\tlret\n");

static void gdt_checks(void)
{
    struct dtr g = { sizeof(new_gdt) - 1, (uint32_t)new_gdt }, d;
    lgdt(&g);
    sgdt(&d);
    check_eq("sgdt-new-base", d.base, (uint32_t)new_gdt);
    check_eq("sgdt-new-limit", d.limit, sizeof(new_gdt) - 1);
    seg_reload(NEW_CODE, NEW_DATA);
    check_eq("far-cs", READ_SEG(cs), NEW_CODE);
    check_eq("reload-ds", READ_SEG(ds), NEW_DATA);
    check_eq("reload-ss", READ_SEG(ss), NEW_DATA);
    check_eq("reload-gs", READ_SEG(gs), NEW_DATA);
    uint32_t pushed;
    asm volatile("lcall %1, $far_peek" : "=a"(pushed) : "i"(NEW_CODE) : "memory");
    check_eq("lcall-pushes-cs", pushed & 0xFFFF, NEW_CODE);

    uint32_t v;
    asm volatile("movw %w1, %%fs\n\tmovzbl %%fs:0x20, %0" : "=r"(v) : "r"(BASED));
    check_eq("based-read", v, based_area[0x20]);
    asm volatile("movb $0xA5, %%fs:0x30" ::: "memory");
    check_eq("based-write", based_area[0x30], 0xA5);
    asm volatile("movw %w0, %%fs" : : "r"(NEW_DATA));
}

static void ldt_checks(void)
{
    lldt(NEW_LDT);
    check_eq("sldt-new", sldt(), NEW_LDT);
    uint32_t v, cs;
    asm volatile("movw %w1, %%gs\n\tmovzbl %%gs:0x10, %0" : "=r"(v) : "r"(LDT_DATA));
    check_eq("ldt-data-read", v, based_area[BASED_LDT_OFF + 0x10]);
    check_eq("ldt-gs-sel", READ_SEG(gs), LDT_DATA);
    asm volatile("movw %w0, %%gs" : : "r"(NEW_DATA));
    asm volatile("ljmp %1, $1f\n1:\tmovl %%cs, %0\n\tljmp %2, $2f\n2:"
                 : "=r"(cs) : "i"(LDT_CODE), "i"(NEW_CODE));
    check_eq("ldt-far-jmp-cs", cs & 0xFFFF, LDT_CODE);
    check_eq("back-to-new-cs", READ_SEG(cs), NEW_CODE);
    bool ok;
    uint32_t ar = lar(LDT_DATA, &ok) & LAR_MASK;
    check("lar-ldt-data", ok && ar == 0x00409300u, "ok %d ar 0x%x", ok, ar);
}

static void tss_checks(void)
{
    ltr(NEW_TSS);
    check_eq("str-new", str(), NEW_TSS);
    check_eq("ltr-sets-busy", (new_gdt[NEW_TSS >> 3].hi >> 8) & 0xF, DA_TSS32_BUSY);
    uint32_t start, next;
    probe_arg = NEW_TSS;
    PROBE(start, next, "movl probe_arg, %%eax", "ltr %%ax", "eax");
    check_fault("ltr-busy-gp", start, next, (struct fault_want){ T_GP, NEW_TSS, false });
}

static volatile uint32_t gate_vector, gate_cs, gate_from_cs;

static void on_new_gate(struct trapframe *tf)
{
    gate_vector = tf->vector;
    gate_cs = READ_SEG(cs);
    gate_from_cs = tf->cs;
}

static void idt_checks(void)
{
    struct dtr old, i = { sizeof(new_idt) - 1, (uint32_t)new_idt }, d;
    sidt(&old);
    lidt(&i);
    sidt(&d);
    check_eq("sidt-new-base", d.base, (uint32_t)new_idt);
    trap_set_handler(NEW_VEC_STUB, on_new_gate);
    asm volatile("int %0" : : "i"(NEW_VEC) : "memory");
    check_eq("new-idt-vector", gate_vector, NEW_VEC_STUB);
    check_eq("new-idt-gate-cs", gate_cs, NEW_CODE);
    check_eq("new-idt-from-cs", gate_from_cs, NEW_CODE);
    lidt(&old);
}

/* Bad selector loads: the fault names the selector (SDM 3A 6.13). */
struct load_case { const char *name; uint16_t sel; bool ss; struct fault_want want; };
static const struct load_case load_cases[] = {
    { "load-empty-desc-gp",  EMPTY_SEL,  false, { T_GP, EMPTY_SEL, false } },
    { "load-not-present-np", NOT_PRES,   false, { T_NP, NOT_PRES, false } },
    { "load-beyond-gdt-gp",  NEW_GDT_N * 8, false, { T_GP, NEW_GDT_N * 8, false } },
    { "load-beyond-ldt-gp",  LDT_BEYOND, false, { T_GP, LDT_BEYOND, false } },
    { "load-ss-readonly-gp", READONLY,   true,  { T_GP, READONLY, false } },
    { "load-ss-null-gp",     0,          true,  { T_GP, 0, false } },
    { "load-ss-code-gp",     NEW_CODE,   true,  { T_GP, NEW_CODE, false } },
    { "load-ds-rpl3-dpl0-gp", NEW_DATA | 3, false, { T_GP, NEW_DATA, false } },
};

static void load_checks(void)
{
    for (unsigned i = 0; i < ARRAY_SIZE(load_cases); i++) {
        const struct load_case *c = &load_cases[i];
        uint32_t start, next;
        probe_arg = c->sel;
        if (c->ss)
            PROBE(start, next, "movl probe_arg, %%eax", "movw %%ax, %%ss", "eax");
        else
            PROBE(start, next, "movl probe_arg, %%eax", "movw %%ax, %%ds", "eax");
        check_fault(c->name, start, next, c->want);
    }
    check_eq("ds-unchanged", READ_SEG(ds), NEW_DATA);
    uint32_t start, next;
    PROBE(start, next, "", "ljmp $0x38, $2f");
    check_fault("ljmp-data-gp", start, next, (struct fault_want){ T_GP, NEW_DATA, false });
    /* Loading null into DS is fine; using it would #GP (Bochs checks that,
     * QEMU TCG does not), so DS is restored before anything touches memory. */
    uint32_t null_ds;
    asm volatile("movw %w1, %%ds\n\tmovl %%ds, %0\n\tmovw %w2, %%ds"
                 : "=r"(null_ds) : "r"(0), "r"(NEW_DATA));
    check_eq("load-ds-null-ok", null_ds & 0xFFFF, 0);
    /* Facts QEMU TCG does not model, so no native reference exists. */
    skip("use-null-ds-gp", "QEMU TCG does not fault on a null data segment");
    skip("data-limit-gp", "QEMU TCG does not check data segment limits");
}

void guest_main(void)
{
    struct dtr old_gdt;
    sgdt(&old_gdt);
    build_tables();
    gdt_checks();
    ldt_checks();
    tss_checks();
    idt_checks();
    load_checks();
    lldt(0);
    lgdt(&old_gdt);
    seg_reload(SEL_KCODE, SEL_KDATA);
    check_eq("back-to-runtime-cs", READ_SEG(cs), SEL_KCODE);
}
