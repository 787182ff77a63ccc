/*
 * Exception and interrupt vectors, selectors, and the trap frame.
 * Source: Intel SDM Vol. 3A §6.3.1 (vectors), §6.12 (exception/interrupt
 * handling), §3.4.2 (selectors), §7.2 (TSS).
 */
#ifndef HV86_KERNEL_TRAPS_H
#define HV86_KERNEL_TRAPS_H

#define T_DE   0   /* divide error */
#define T_DB   1   /* debug */
#define T_NMI  2   /* non-maskable interrupt */
#define T_BP   3   /* breakpoint (int3) */
#define T_OF   4   /* overflow (into) */
#define T_BR   5   /* bound range exceeded */
#define T_UD   6   /* invalid opcode */
#define T_NM   7   /* device not available */
#define T_DF   8   /* double fault */
#define T_CSO  9   /* coprocessor segment overrun */
#define T_TS   10  /* invalid TSS */
#define T_NP   11  /* segment not present */
#define T_SS   12  /* stack-segment fault */
#define T_GP   13  /* general protection */
#define T_PF   14  /* page fault */
#define T_MF   16  /* x87 floating-point error */
#define T_AC   17  /* alignment check */
#define T_MC   18  /* machine check */
#define T_XM   19  /* SIMD floating-point */
#define T_NEXC 32  /* vectors 0-31 are reserved for exceptions */

#define IRQ_BASE_VECTOR 0x20 /* PIC master remapped to 0x20-0x27, slave 0x28-0x2F */

/* Page-fault error code bits (SDM Vol. 3A §4.7) */
#define PFEC_P    0x1 /* 0: not present, 1: protection violation */
#define PFEC_W    0x2 /* write access */
#define PFEC_U    0x4 /* CPL 3 access */
#define PFEC_RSVD 0x8 /* reserved bit set in a paging structure */

/*
 * Monitor selectors. They sit in the last 8 slots of a full-size GDT so that
 * every VM's shadow GDT can hold the guest's own descriptors at the guest's
 * own indices (Linux uses 1-31) and the monitor's at the same selectors as
 * the host GDT: trap handlers never care which GDT is loaded.
 */
#define GDT_ENTRIES     8192   /* architectural maximum: 64 KiB */
#define GDT_MONITOR_FIRST 8176 /* first monitor slot; guests get 0..8175 */
#define SEL_KCODE  0xFFC0 /* 8184: ring-0 code, flat */
#define SEL_KDATA  0xFFC8 /* 8185: ring-0 data, flat */
#define SEL_TSS    0xFFD0 /* 8186: the main TSS */
#define SEL_DFTSS  0xFFD8 /* 8187: task gate target for #DF: runs on its own stack */
#define SEL_R1CODE 0xFFE1 /* 8188: ring-1 code for translated guest code (per-VM GDT), RPL 1 */
#define SEL_R1VCPU 0xFFE9 /* 8189: ring-1 data over the running vCPU's BT state (GS), RPL 1 */
#define SEL_R1STACK 0xFFF1 /* 8190: ring-1 alias of the guest's stack segment while translated */
#define SEL_GLDT   0xFFF8 /* 8191: the running VM's shadow LDT (system descriptor) */
/* 8180-8183: ring-1 aliases of the guest's cached DS, ES, FS, GS descriptors
 * while translated (the guest's GDT may have changed since it loaded them).
 * GS itself is the state segment there; its alias is loaded into DS around a
 * guest access through GS (bt/translate.c h_seg_alias). */
#define SEL_R1DS   0xFFA1
#define SEL_R1ES   0xFFA9
#define SEL_R1FS   0xFFB1
#define SEL_R1GS   0xFFB9
/* 8179: ring-1 data alias of the guest's cached CS (readable code), loaded
 * into DS around a guest CS-prefixed data access (h_seg_alias). */
#define SEL_R1CSD  0xFF99
/* 8178: ring-1 read-only data over one page of the VM's window onto the
 * frame holding the guest's GDT (vmm/vcpu.c r3_arm): ES while translated
 * code's return to ring 3 compares that GDT with its shadow
 * (bt/translate.c emit_r3_stub). */
#define SEL_R1GDTW 0xFF91
#define HV_EXIT_VECTOR 0xF0 /* int gate (DPL 1) translated code leaves through */
/* Not a gate: the vector of the trap frames vmm/switch.S builds when a
 * guest's SYSENTER from ring 3 enters the monitor through the host's
 * SYSENTER MSRs (vmm_sysenter_entry). Its IDT gate is DPL 0, so INT 0F1h
 * from a guest is a #GP, and no interrupt controller is given it. */
#define HV_SYSENTER_VECTOR 0xF1

#ifndef __ASSEMBLER__
#include <stdint.h>

/* What boot/isr.S pushes, lowest address first. esp/ss are only valid when
 * the trap came from a less privileged ring (cs & 3 != 0). */
struct trap_frame {
    uint32_t gs, fs, es, ds;
    uint32_t edi, esi, ebp, esp_at_pusha, ebx, edx, ecx, eax;
    uint32_t vector, error;
    uint32_t eip, cs, eflags;
    uint32_t esp, ss;
};

/* The trap frame extension the CPU pushes above ss when it leaves
 * virtual-8086 mode (SDM Vol. 3A §20.3.1.1, Figure 20-2): the guest's
 * real-mode segment registers, which it then loads with null. */
struct v86_segs {
    uint32_t es, ds, fs, gs;
};

/* What vmm/switch.S copies below TSS.esp0 and IRETs through: a trap frame,
 * and the segment registers an IRET to virtual-8086 mode pops after SS. */
struct guest_frame {
    struct trap_frame tf;
    struct v86_segs v86;
};

#define TRAP_EFLAGS_VM 0x00020000u /* EFLAGS.VM: the trap came from virtual-8086 mode */

/* The privilege level a trap came from: CS.RPL, or 3 from virtual-8086
 * mode, where CS holds a real-mode segment whose low bits mean nothing
 * (SDM Vol. 3A §20.2.1). */
static inline unsigned trap_ring(const struct trap_frame *tf)
{
    return (tf->eflags & TRAP_EFLAGS_VM) ? 3 : tf->cs & 3;
}

/* Set up the GDT, the TSS (and the #DF task), and load them. */
void gdt_init(void);
/* Build the IDT (all 256 vectors go to trap_dispatch) and load it. */
void idt_init(void);
/* The host GDT's GDT_ENTRIES - GDT_MONITOR_FIRST monitor descriptors, for
 * copying into shadow GDTs (after gdt_init: the TSS descriptor is busy). */
const uint64_t *gdt_monitor_entries(void);
/* A segment descriptor (SDM Vol. 3A §3.4.5): limit in bytes or 4 KiB units
 * (flags bit 3, G), access byte = P DPL S type, flags = G D/B L AVL. */
uint64_t gdt_make_desc(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags);
/* Ring-0 stack the CPU switches to on a trap from ring 1-3 (TSS.esp0). */
void tss_set_kernel_stack(uint32_t esp0);
uint32_t tss_kernel_stack(void);
/* The host GDT's descriptor-table register image (loaded by gdt_init). */
struct desc_ptr;
extern struct desc_ptr host_gdtr;
/* Called by boot/isr.S for every vector. */
void trap_dispatch(struct trap_frame *tf);
/* Print a full register dump of tf on COM1 (polled). */
void trap_dump(const struct trap_frame *tf);
/* Print return addresses by walking saved frame pointers from ebp, while
 * they stay inside the monitor region (at most 16 frames). */
void backtrace_print(uint32_t ebp);
/* Name of an exception vector ("#PF"...), "IRQ" or "INT". */
const char *trap_name(uint32_t vector);
/* Nesting depth of hardware-interrupt handlers (0 in thread context). */
extern volatile int irq_depth;
#endif

#endif
