/*
 * hostile — a guest that goes after the monitor's linear range, the top
 * 64 MiB of every address space hv86 lives in (kernel/layout.h): it maps its
 * own RAM there and writes through flat segments, loads a segment based
 * inside it, maps its page directory over it recursively, and writes to the
 * same physical addresses with paging off. On hardware all of that is
 * ordinary; under hv86 every access must be emulated against the guest's
 * own memory, give the same results, and leave the monitor untouched (the
 * integration test compares a checksum of the monitor before and after).
 */
#include "guest.h"

#define MON_LO   0xFC000000u /* where the monitor starts in hv86 */
#define MON_TOP  0xFFFFF000u
#define MON_TEXT 0xFC103000u /* where hv86's own code is linked */
#define MON_WIN  0xFE400000u /* hv86's per-VM window: this VM's translation cache (its stubs first) */
#define MON_WIN_VCPU 0xFEF10000u /* ... and its struct bt_vcpu, after the cache and the shadow tables */
#define SEL_MONSEG (SEL_SPARE + 8) /* data segment based at MON_LO */
#define PATTERN  0x5EC0DE00u
#define SEL_MONTSS (SEL_SPARE + 16) /* a TSS at MON_TSS */
#define MON_TSS  (MON_LO + 0x3000u)  /* its page: frames[6] */
#define SEL_MONITOR_SLOT 0xFFF8u     /* a monitor descriptor in hv86's hardware GDT */

static uint8_t frames[7][PAGE_SIZE] __attribute__((aligned(4096)));

static volatile uint32_t *at(uint32_t va) { return (volatile uint32_t *)va; }

static void mapped_range(void)
{
    paging_map(MON_LO, (uint32_t)frames[0], PTE_P | PTE_W);
    paging_map(MON_LO + PAGE_SIZE, (uint32_t)frames[1], PTE_P | PTE_W);
    paging_map(MON_TOP, (uint32_t)frames[2], PTE_P | PTE_W);
    for (uint32_t i = 0; i < 8; i++)
        *at(MON_LO + i * 1020) = PATTERN + i; /* crosses into the second page */
    bool ok = true;
    for (uint32_t i = 0; i < 8; i++)
        ok = ok && *at(MON_LO + i * 1020) == PATTERN + i;
    check("monitor-range-roundtrip", ok, "mismatch");
    check_eq("monitor-range-hits-own-ram", *(volatile uint32_t *)(frames[1] + 1020 * 5 - PAGE_SIZE), PATTERN + 5);
    paging_map(MON_TEXT, (uint32_t)frames[3], PTE_P | PTE_W);
    for (uint32_t off = 0; off < PAGE_SIZE; off += 4)
        *at(MON_TEXT + off) = 0xCCCCCCCC; /* int3 all over hv86's code, were it reachable */
    check_eq("monitor-code-address-hits-own-ram", *(volatile uint32_t *)(frames[3] + 0x800), 0xCCCCCCCC);
    *at(0xFFFFFFF0u) = 0xC0FFEE;
    check_eq("top-of-memory", *(volatile uint32_t *)(frames[2] + 0xFF0), 0xC0FFEE);
    asm volatile("movl $0x12345678, %%eax\n\txchg %%eax, %0" : "+m"(*at(MON_LO + 64)) : : "eax");
    check_eq("xchg-in-monitor-range", *(volatile uint32_t *)(frames[0] + 64), 0x12345678);
    /* The per-VM window: hv86 keeps this very VM's translated code and the
     * state ring-1 code runs on there, so a store that reached it would
     * derail the guest itself, not only the monitor. */
    paging_map(MON_WIN, (uint32_t)frames[4], PTE_P | PTE_W);
    paging_map(MON_WIN_VCPU, (uint32_t)frames[5], PTE_P | PTE_W);
    for (uint32_t off = 0; off < PAGE_SIZE; off += 4) {
        *at(MON_WIN + off) = 0xCCCCCCCC;
        *at(MON_WIN_VCPU + off) = PATTERN + off;
    }
    check_eq("vm-window-code-hits-own-ram", *(volatile uint32_t *)(frames[4] + 0x10), 0xCCCCCCCC);
    check_eq("vm-window-vcpu-hits-own-ram", *(volatile uint32_t *)(frames[5] + 0x40), PATTERN + 0x40);
    check_eq("vm-window-readback", *at(MON_WIN_VCPU + 0xFFC), PATTERN + 0xFFC);
}

/* Arithmetic and string instructions on the monitor range: the monitor
 * emulates them; results and flags must be the hardware's. */
static void alu_and_strings(void)
{
    volatile uint32_t *cell = at(MON_LO + 128);
    uint8_t zf, cf;
    *cell = 100;
    asm volatile("subl $30, %0" : "+m"(*cell));
    asm volatile("addl $0xFFFFFFF0, %0\n\tsetc %1" : "+m"(*cell), "=q"(cf));
    asm volatile("cmpl $54, %1\n\tsete %0" : "=q"(zf) : "m"(*cell));
    check_eq("alu-sub-add-in-monitor-range", *(volatile uint32_t *)(frames[0] + 128), 54);
    check_eq("alu-flags-carry", cf, 1);
    check_eq("alu-flags-zero", zf, 1);
    uint32_t dst = MON_LO + 512, n = 16;
    asm volatile("cld\n\trep stosl" : "+D"(dst), "+c"(n) : "a"(0xA5A5A5A5u) : "memory");
    static uint32_t copy[16];
    uint32_t src = MON_LO + 512, to = (uint32_t)copy;
    n = 16;
    asm volatile("cld\n\trep movsl" : "+S"(src), "+D"(to), "+c"(n) : : "memory");
    bool ok = true;
    for (int i = 0; i < 16; i++)
        ok = ok && copy[i] == 0xA5A5A5A5u && *(volatile uint32_t *)(frames[0] + 512 + 4 * i) == 0xA5A5A5A5u;
    check("rep-stos-movs-in-monitor-range", ok, "mismatch");
}

static void based_segment(void)
{
    gdt[SEL_MONSEG >> 3] = seg_make(MON_LO, 0xFFF, DA_P | DA_S | DA_W, DF_DB);
    uint32_t v = 0;
    asm volatile("push %%es\n\t"
                 "mov %w1, %%es\n\t"
                 "movl $0xB45ED, %%es:0x20\n\t"
                 "movl %%es:0x20, %0\n\t"
                 "pop %%es"
                 : "=r"(v) : "r"(SEL_MONSEG) : "memory");
    check_eq("segment-based-in-monitor", v, 0xB45ED);
    check_eq("segment-write-lands-in-ram", *(volatile uint32_t *)(frames[0] + 0x20), 0xB45ED);
}

/* The last 16 GDT indices hold the monitor's own descriptors in hv86's
 * hardware GDT, some of them loadable at ring 1 (the vCPU state segment
 * among them); translated kernel code loads DS, ES and FS natively
 * (bt/translate.c h_seg_load). Our GDT ends far below them, so on hardware
 * every one of these loads is #GP(selector), whatever the RPL. */
static void monitor_selectors(void)
{
    unsigned refused = 0, tried = 0;
    uint16_t ds, es, fs;
    asm volatile("mov %%ds, %0\n\tmov %%es, %1\n\tmov %%fs, %2" : "=r"(ds), "=r"(es), "=r"(fs));
    for (uint32_t sel = 0xFF80; sel <= 0xFFFF; sel++) {
        if (sel & 4)
            continue; /* LDT selectors: we have no LDT, the same #GP */
        for (int form = 0; form < 3; form++) {
            uint32_t start, next;
            probe_arg = sel;
            if (form == 0) {
                PROBE(start, next, "movl probe_arg, %%eax", "movw %%ax, %%ds", "eax");
            } else if (form == 1) {
                PROBE(start, next, "", "movw probe_arg, %%es");
            } else { /* POP FS; the stack is the same after a fault and after a load */
                trap_expect();
                asm volatile("movl $1f, %0\n\tmovl $2f, %1\n\tmovl $2f, probe_resume\n\tpushl probe_arg\n"
                             "1:\tpop %%fs\n\tsub $4, %%esp\n2:\tadd $4, %%esp"
                             : "=m"(start), "=m"(next) : : "memory", "cc");
                trap_disarm();
            }
            asm volatile("mov %0, %%ds\n\tmov %1, %%es\n\tmov %2, %%fs" : : "r"(ds), "r"(es), "r"(fs));
            tried++;
            if (last_trap.vector == T_GP && last_trap.err == (sel & ~3u) && last_trap.eip == start)
                refused++;
            else
                printf("selector %04x, %s: vector %d error %x\n", sel,
                       form == 0 ? "mov to ds" : form == 1 ? "mov m16 to es" : "pop fs", last_trap.vector,
                       last_trap.err);
        }
    }
    check_eq("monitor-selectors-refused", refused, tried);
}

/* A task whose TSS lies in the monitor's range, with DS based there and
 * ES naming one of hv86's own GDT slots: the TSS is guest
 * memory like any other, the segments are shadowed below the monitor, and
 * ES is #TS(selector) in the new task, since the guest's GDT ends far
 * below it (SDM Vol. 3A §7.3 Table 7-1). The #TS handler repairs ES and
 * the task goes on; everything it wrote lands in this guest's frames.
 * (Its stack is ordinary memory: a kernel stack in the monitor's range is
 * one of hv86's known differences, docs/vmm.md.)
 * QEMU 7.2 TCG delivers such a #TS with the old task's EIP (the JMP), so
 * on a CPU whose brand says QEMU the task gets a good ES and the #TS
 * check passes without a probe, as seglimit's do. */
uint32_t montask_pushed, montask_esp;
extern char montask_entry[], montask_back[];
asm(".text\nmontask_entry:\n"
    "movl $0xB45ED2, %ds:0x40\n pushl $0x5151\n popl %eax\n movl %eax, %es:montask_pushed\n"
    "movl %esp, %es:montask_esp\n ljmp $0x28, $0\nmontask_back:\n jmp montask_entry\n");
static volatile uint32_t montask_ts_err;
static uint8_t montask_stack[1024] __attribute__((aligned(16)));

static void montask_ts(struct trapframe *tf)
{
    montask_ts_err = tf->err;
    tf->es = SEL_KDATA;
}

static void task_in_monitor_range(uint32_t pd)
{
    paging_map(MON_TSS, (uint32_t)frames[6], PTE_P | PTE_W);
    struct tss32 *t = (struct tss32 *)frames[6]; /* the same page through the identity map */
    *t = (struct tss32){ .eip = (uint32_t)montask_entry, .eflags = 0x2, .esp = (uint32_t)(montask_stack + sizeof(montask_stack)), .cr3 = pd,
                         .cs = SEL_KCODE, .ss = SEL_KDATA, .ds = SEL_MONSEG, .es = SEL_MONITOR_SLOT,
                         .iomap = sizeof(*t) };
    gdt[SEL_MONTSS >> 3] = seg_make(MON_TSS, sizeof(*t) - 1, DA_P | DA_TSS32, 0);
    tss.cr3 = pd;
    if (cpu_is_qemu()) {
        t->es = SEL_KDATA;
        montask_ts_err = SEL_MONITOR_SLOT;
    }
    trap_set_handler(T_TS, montask_ts);
    asm volatile("ljmp %0, $0" : : "i"(SEL_MONTSS) : "memory");
    trap_set_handler(T_TS, 0);
    clts();
    check_eq("task-in-monitor-ts-monitor-selector", montask_ts_err, SEL_MONITOR_SLOT);
    check_eq("task-in-monitor-ds-write-lands-in-ram", *(volatile uint32_t *)(frames[0] + 0x40), 0xB45ED2);
    check_eq("task-in-monitor-stack", montask_pushed, 0x5151);
    check_eq("task-in-monitor-saved-gpr-in-ram", *(volatile uint32_t *)(frames[6] + 0x28), 0x5151); /* EAX */
    check_eq("task-in-monitor-esp", montask_esp, (uint32_t)(montask_stack + sizeof(montask_stack)));
    check_eq("task-in-monitor-saved-eip-in-ram", t->eip, (uint32_t)montask_back);
    check_eq("task-in-monitor-saved-es", t->es, SEL_KDATA);
}

static void recursive_directory(uint32_t pd)
{
    /* PDE 1023 -> the directory itself: the page tables appear at 0xFFC00000
     * and the directory at 0xFFFFF000 (replacing the top-of-memory page). */
    ((volatile uint32_t *)pd)[1023] = pd | PTE_P | PTE_W;
    write_cr3(pd);
    check_eq("recursive-pde0", *at(0xFFFFF000u) & ~0xFFFu, ((volatile uint32_t *)pd)[0] & ~0xFFFu);
    check_eq("recursive-pte-of-monlo", *at(0xFFC00000u + (MON_LO >> 10)) & ~0xFFFu, (uint32_t)frames[0]);
}

void guest_main(void)
{
    monitor_selectors(); /* paging off: hv86 runs these loads natively at ring 1 */
    uint32_t pd = paging_identity();
    paging_enable(pd);
    mapped_range();
    alu_and_strings();
    based_segment();
    task_in_monitor_range(pd);
    recursive_directory(pd);
    paging_disable();
    /* Paging off: these are physical addresses beyond RAM (nothing answers). */
    *at(0xFC102000u) = 0xDEADBEEF;
    *at(0xFFFFFFF0u) = 0xDEADBEEF;
    (void)*at(0xFC102000u);
    check("physical-high-survived", true, "%s", "unreachable");
}
