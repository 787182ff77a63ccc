/*
 * The IDT and the one trap dispatcher (STYLE.md §3).
 *
 *   trap_dispatch -> IRQ vectors    -> irq_handle (kernel/irq.c)
 *                 -> exceptions     -> handler table, else fault_in_context
 *                 -> anything else  -> fault_in_context
 *
 * fault_in_context is the single fatal path: it prints the full register dump
 * and stops only the context that faulted -- the current kernel thread -- or
 * panics when the fault hit the hypervisor outside any thread (early boot,
 * an interrupt handler, the idle loop).
 * Source: Intel SDM Vol. 3A §6.10-6.15.
 */
#include "kernel/traps.h"
#include "kernel/kernel.h"
#include "kernel/layout.h"
#include "kernel/sched.h"
#include "kernel/x86.h"

#define IDT_ENTRIES   256
#define GATE_INT32    0x8E /* present, DPL 0, 32-bit interrupt gate (clears IF) */
#define GATE_TASK     0x85 /* present, DPL 0, task gate */
#define GATE_DPL1     0x20 /* DPL field = 1: reachable by `int` from ring 1 */

struct __attribute__((packed)) idt_gate {
    uint16_t off_lo, sel;
    uint8_t zero, type;
    uint16_t off_hi;
};

static struct idt_gate idt[IDT_ENTRIES] __attribute__((aligned(8)));
extern const uint32_t isr_stub_table[IDT_ENTRIES]; /* boot/isr.S */
volatile int irq_depth;

void irq_handle(struct trap_frame *tf); /* kernel/irq.c */

static const char *const exc_names[T_NEXC] = {
    [T_DE] = "#DE divide error",      [T_DB] = "#DB debug",
    [T_NMI] = "NMI",                   [T_BP] = "#BP breakpoint",
    [T_OF] = "#OF overflow",           [T_BR] = "#BR bound range",
    [T_UD] = "#UD invalid opcode",     [T_NM] = "#NM device not available",
    [T_DF] = "#DF double fault",       [T_CSO] = "coprocessor segment overrun",
    [T_TS] = "#TS invalid TSS",        [T_NP] = "#NP segment not present",
    [T_SS] = "#SS stack fault",        [T_GP] = "#GP general protection",
    [T_PF] = "#PF page fault",         [T_MF] = "#MF x87 error",
    [T_AC] = "#AC alignment check",    [T_MC] = "#MC machine check",
    [T_XM] = "#XM SIMD exception",
};

const char *trap_name(uint32_t vector)
{
    if (vector < T_NEXC)
        return exc_names[vector] ? exc_names[vector] : "reserved exception";
    if (vector >= IRQ_BASE_VECTOR && vector < IRQ_BASE_VECTOR + 16)
        return "IRQ";
    return "INT";
}

static void set_gate(int vec, uint32_t off, uint16_t sel, uint8_t type)
{
    idt[vec] = (struct idt_gate){ off & 0xFFFF, sel, 0, type, off >> 16 };
}

void idt_init(void)
{
    for (int v = 0; v < IDT_ENTRIES; v++)
        set_gate(v, isr_stub_table[v], SEL_KCODE, GATE_INT32);
    /* #DF goes through a task gate so it runs on a fresh stack (SDM Vol. 3A §6.14). */
    set_gate(T_DF, 0, SEL_DFTSS, GATE_TASK);
    /* Translated guest code (ring 1) leaves through `int HV_EXIT_VECTOR`; every
     * other gate keeps DPL 0, so a guest `int n` from ring 1 or 3 is a #GP the
     * monitor emulates (SDM Vol. 3A §6.12.1.1). */
    set_gate(HV_EXIT_VECTOR, isr_stub_table[HV_EXIT_VECTOR], SEL_KCODE, GATE_INT32 | GATE_DPL1);
    struct desc_ptr p = { sizeof(idt) - 1, (uint32_t)idt };
    lidt(&p);
}

static void dump_stack_words(uint32_t esp, int n)
{
    /* Only what lies on this thread's own stack: anything else (a guest's
     * ESP, a stack pointer gone astray) could fault again. */
    const uint32_t *sp = (const uint32_t *)esp;
    for (int i = 0; i < n && sched_on_stack(esp + 4u * (uint32_t)i, 16); i += 4)
        kprintf("  %08x: %08x %08x %08x %08x\n", esp + 4 * i, sp[i], sp[i + 1], sp[i + 2], sp[i + 3]);
}

void backtrace_print(uint32_t ebp)
{
    kprintf("backtrace:");
    for (int depth = 0; depth < 16 && sched_on_stack(ebp, 8) && !(ebp & 3); depth++) {
        const uint32_t *frame = (const uint32_t *)ebp;
        kprintf(" %08x", frame[1]);
        ebp = frame[0];
    }
    kprintf("\n");
}

void trap_dump(const struct trap_frame *tf)
{
    int from_outer = trap_ring(tf) != 0;
    uint32_t esp = from_outer ? tf->esp : (uint32_t)&tf->esp; /* no esp/ss pushed at same CPL */
    uint32_t ss = from_outer ? tf->ss : SEL_KDATA;
    kprintf("\n*** %s (vector %u) in thread %u '%s'\n", trap_name(tf->vector), tf->vector,
            thread_current_id(), thread_current_name());
    kprintf("EIP=%08x  CS=%04x  EFLAGS=%08x  error=%08x  CR2=%08x\n", tf->eip, tf->cs & 0xFFFF,
            tf->eflags, tf->error, read_cr2());
    kprintf("EAX=%08x  EBX=%08x  ECX=%08x  EDX=%08x\n", tf->eax, tf->ebx, tf->ecx, tf->edx);
    kprintf("ESI=%08x  EDI=%08x  EBP=%08x  ESP=%08x\n", tf->esi, tf->edi, tf->ebp, esp);
    kprintf("DS=%04x ES=%04x FS=%04x GS=%04x SS=%04x  CR0=%08x CR3=%08x CR4=%08x\n", tf->ds & 0xFFFF,
            tf->es & 0xFFFF, tf->fs & 0xFFFF, tf->gs & 0xFFFF, ss & 0xFFFF, read_cr0(), read_cr3(), read_cr4());
    kprintf("stack:\n");
    dump_stack_words(esp, 16);
    backtrace_print(tf->ebp);
}

void vmm_guest_trap(struct trap_frame *tf);      /* vmm/vcpu.c */
bool vmm_sysenter_debug(struct trap_frame *tf);   /* vmm/vcpu.c */
bool vmm_entry_fault(const struct trap_frame *tf); /* vmm/vcpu.c */
void vmm_thread_faulted(const char *reason);       /* vmm/vcpu.c */

/* The single fatal path for an unhandled exception. */
static void fault_in_context(struct trap_frame *tf)
{
    trap_dump(tf);
    if (irq_depth > 0 || !sched_can_kill_current())
        panic("%s in the hypervisor outside a killable thread", trap_name(tf->vector));
    static char reason[64];
    snprintf(reason, sizeof(reason), "%s at eip %08x", trap_name(tf->vector), tf->eip);
    kprintf("*** thread %u stopped; the hypervisor continues\n", thread_current_id());
    vmm_thread_faulted(reason);
    thread_kill_current(reason);
}


void trap_dispatch(struct trap_frame *tf)
{
    /* The monitor itself only runs at ring 0: anything from rings 1-3 or
     * from virtual-8086 mode is a guest's. */
    if (trap_ring(tf)) {
        vmm_guest_trap(tf);
        return;
    }
    /* A fault while loading a guest's state on the way into it is the
     * guest's problem: that VM stops, the monitor goes on. */
    if (tf->vector < T_NEXC && vmm_entry_fault(tf))
        return;
    /* A guest's SYSENTER with TF set steps into the monitor's entry stub. */
    if (vmm_sysenter_debug(tf))
        return;
    if (tf->vector >= IRQ_BASE_VECTOR && tf->vector < IRQ_BASE_VECTOR + 16) {
        irq_depth++;
        irq_handle(tf);
        irq_depth--;
        sched_preempt_point();
        return;
    }
    fault_in_context(tf);
}

/* Entered by the #DF task switch on its own stack: the faulting context's
 * registers are in the main TSS. A double fault is always fatal. */
void tss_main_regs(uint32_t *eip, uint32_t *esp, uint32_t *ebp, uint32_t *cr3);
void double_fault_task(void)
{
    uint32_t eip, esp, ebp, cr3;
    tss_main_regs(&eip, &esp, &ebp, &cr3);
    kprintf("\n*** #DF double fault in thread %u '%s': EIP=%08x ESP=%08x EBP=%08x CR3=%08x CR2=%08x\n",
            thread_current_id(), thread_current_name(), eip, esp, ebp, cr3, read_cr2());
    panic("double fault (kernel stack overflow?)");
}
