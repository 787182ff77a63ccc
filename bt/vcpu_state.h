/*
 * The virtual-CPU state that translated guest code acts on, and the exit
 * reasons with which translated code returns to the monitor.
 *
 * Register convention while translated code runs (docs/bt.md "Interface"):
 *   - guest EAX..EDI, ESP are in the real registers;
 *   - guest CF PF AF ZF SF OF DF are in the real EFLAGS;
 *   - everything else the guest believes it owns (IF, IOPL, TF, AC, NT, ID,
 *     CR0/2/3/4, GDTR/IDTR/LDTR/TR, segment selectors) lives in struct bt_vcpu.
 *
 * Emitted code reaches struct bt_vcpu with absolute [disp32] operands,
 * optionally behind a segment-override prefix (struct bt_config):
 *   - host unit tests: no prefix, disp32 = linear address of a static struct;
 *   - hypervisor (issue #4): a GS-override with GS.base = the per-vCPU area in
 *     the monitor (above MONITOR_BASE, out of reach of the truncated guest
 *     segments), disp32 = offsetof(struct bt_vcpu, field).
 * Every field translated code touches is therefore at a fixed offset; the
 * BT_OFF_* numbers below are those offsets for assembly (checked by
 * _Static_assert in bt/translate.c).
 *
 * Sources: Intel SDM Vol. 1 §3.4.3 (EFLAGS), Vol. 3A §2.4-2.5 (system
 * registers), Vol. 3A §6.8.3 (STI interrupt shadow).
 */
#ifndef HV86_BT_VCPU_STATE_H
#define HV86_BT_VCPU_STATE_H

/* Offsets for assembly (asserted against offsetof in bt/translate.c). */
#define BT_OFF_GPR        0x00
#define BT_OFF_EFLAGS     0x20
#define BT_OFF_EIP        0x24
#define BT_OFF_EXIT_ENTRY 0x28
#define BT_OFF_EXIT_DESC  0x2C
#define BT_OFF_ENTRY_TCA  0x30
#define BT_OFF_HOST_ESP   0x34
#define BT_OFF_EXIT_ESP   0xC8

#ifndef __ASSEMBLER__
#include <stdint.h>

/* EFLAGS bits kept in the real EFLAGS while translated code runs. */
#define BT_FLAGS_REAL    0x00000CD5u /* CF PF AF ZF SF DF OF */
/* EFLAGS bits kept only in bt_vcpu.vflags_sys (never loaded into EFLAGS). */
#define BT_FLAGS_VIRT_SYS 0x003F7100u /* TF IOPL NT RF VM AC VIF VIP ID */
#define BT_FLAGS_IF      0x00000200u /* kept in bt_vcpu.vflags_if */
/* System bits POPF loads at CPL 0: TF IOPL NT AC ID. RF is cleared and VM,
 * VIF, VIP are left alone (SDM Vol. 2B POPF); hv86 guests never have VM,
 * VIF or VIP set, so the image is simply masked. */
#define BT_FLAGS_POPF_SYS 0x00247100u
#define BT_FLAGS_FIXED1  0x00000002u /* bit 1 always reads as 1 */

/* Exit reasons: why translated code returned to the dispatcher (bt_run). */
enum bt_exit_reason {
    BT_EXIT_NONE = 0,
    /* Handled inside bt_run(), never returned to the monitor: */
    BT_EXIT_BRANCH,      /* unchained direct branch; target in bt_exit.target */
    BT_EXIT_IBL_MISS,    /* indirect branch/ret not in the lookup table; target in vcpu.ibl_target */
    /* Returned to the monitor; vcpu.eip = the instruction (not executed) unless noted: */
    BT_EXIT_IRQ_WINDOW,  /* STI/POPF set IF with an interrupt pending; eip = next instruction */
    BT_EXIT_HLT,         /* HLT */
    BT_EXIT_INT,         /* INT n / INT3 / INTO / INT1; vector in bt_exit.aux */
    BT_EXIT_IRET,        /* IRET/IRETD */
    BT_EXIT_FAR,         /* far JMP/CALL/RET */
    BT_EXIT_SYSENTER,    /* SYSENTER, SYSEXIT, SYSCALL, SYSRET (bt_exit.aux = dec_cf) */
    BT_EXIT_IO,          /* IN/OUT/INS/OUTS: the I/O callout */
    BT_EXIT_CPUID,       /* CPUID */
    BT_EXIT_RDTSC,       /* RDTSC / RDTSCP / RDPMC */
    BT_EXIT_MSR,         /* RDMSR / WRMSR */
    BT_EXIT_MOV_CR,      /* MOV to CRn (read is inline), CLTS, LMSW, SMSW */
    BT_EXIT_CR3_WRITE,   /* MOV CR3, r32: switch shadow page tables */
    BT_EXIT_DESC,        /* LGDT/LIDT/SGDT/SIDT/LLDT/SLDT/LTR/STR/LAR/LSL/VERR/VERW */
    BT_EXIT_SEG,         /* MOV Sreg / POP Sreg / LDS.. / MOV r/m16,Sreg to memory */
    BT_EXIT_INVLPG,      /* INVLPG m */
    BT_EXIT_EMULATE,     /* other privileged/sensitive instruction: emulate it */
    BT_EXIT_UD,          /* decoder says #UD: inject #UD at eip */
    BT_EXIT_CODE_FAULT,  /* the first instruction of a block could not be fetched */
    BT_EXIT_BAD_DESC,    /* bt_vcpu.exit_desc is no descriptor of ours (ring-1 code forged it):
                            the monitor stops the VM; vcpu.eip unchanged */
    BT_EXIT_COUNT
};

/*
 * One exit of translated code (an "exit descriptor"): translated code stores
 * its address in bt_vcpu.exit_desc and jumps to bt_vcpu.exit_entry. Lives in
 * the TC metadata arena; valid until the next tc_flush().
 */
struct tc_block;
struct bt_exit {
    uint8_t  reason;      /* enum bt_exit_reason */
    uint8_t  len;         /* bytes of the guest instruction (0 for BRANCH) */
    uint8_t  aux;         /* reason-specific: INT vector, CR/Sreg number, ... */
    uint8_t  rm_reg;      /* register operand (enum dec_reg), 0 = memory (see exit_ea) or none */
    uint32_t eip;         /* gva of the instruction causing the exit */
    uint32_t insn_sum;    /* bt_insn_sum() of its len bytes when translated: the monitor
                             emulates only the instruction the translator classified */
    uint32_t target;      /* BRANCH: gva of the branch target */
    uint8_t *stub_tca;    /* BRANCH: first byte of the patchable exit stub */
    uint8_t *jcc_rel;     /* BRANCH, the taken side of a Jcc inside the block: the rel32 of that
                             Jcc, which jumps to the stub, or when chained to the target itself */
    struct tc_block *from;    /* block containing the stub */
    struct tc_block *to;      /* chained target block, or NULL */
    struct bt_exit *next_in;  /* next exit chained into the same target block */
};

/* The stub's stack (bt_vcpu.r3_stack): it pushes EFLAGS, EAX, ECX, ESI,
 * EDI and ES in that order from the top; a fault inside the stub finds the
 * guest's values at these indices. */
#define BT_R3_STACK_DWORDS 16u
#define BT_R3_SAVE_EFLAGS  15u
#define BT_R3_SAVE_EAX     14u
#define BT_R3_SAVE_ECX     13u
#define BT_R3_SAVE_ESI     12u
#define BT_R3_SAVE_EDI     11u
#define BT_R3_SAVE_ES      10u
/* Guest GDT entries the monitor resynchronizes before ring 3 runs (vmm/vcpu.c
 * sync_gdt_low), and bt_vcpu.gdt_low holds. */
#define BT_GDT_LOW 64u

#define BT_IBL_ENTRIES 16384u /* indirect-branch lookup table: indexed by 14 bits of the target
                                (MOVZX and LEA, which leave the flags alone: tc_ibl_slot) */
#define BT_IBL_EMPTY   0xFFFFFFFFu /* guest eip an empty slot stands for (never a code gva) */
/* What a slot holds as its key: the negated guest eip, so that the lookup
 * stub tests for a hit with LEA and JECXZ instead of a flag-setting CMP. */
static inline uint32_t bt_ibl_key(uint32_t eip) { return 0u - eip; }

#define BT_SEG_NATIVE_SELECTORS 65536u /* bt_vcpu.seg_native, seg_verw: one byte per selector value */
#define BT_VERW_KNOWN 0x01u /* seg_verw: the answer is known (zero: exit) */
#define BT_VERW_ZF    0x40u /* seg_verw: VERW sets ZF (its bit in EFLAGS and in AH after LAHF) */

/* Segment register order = Sreg encoding (SDM Vol. 2A Table 3-6 / ModRM.reg). */
enum bt_sreg { BT_ES, BT_CS, BT_SS, BT_DS, BT_FS, BT_GS, BT_NSREG };

struct bt_desc_table {
    uint32_t base;        /* linear address */
    uint32_t limit;       /* bytes - 1 */
};

/*
 * Trust audit (issue 11). struct bt_vcpu is mapped writable at ring 1 (GS =
 * SEL_R1VCPU), so the monitor must treat every field as something ring-1
 * code could have written. Two defences: (1) the translator lets no guest
 * instruction reach GS (bt/translate.c uses_state_seg, checked before any
 * rule), so ring-1 code only ever performs the stores the translator
 * emitted, at fixed offsets; (2) fields that ring 0 acts on are either
 * plain guest state or validated before use:
 *
 *   field             ring-1 stores (emitted)    ring-0 readers          trust / check
 *   gpr, eflags       - (world switch saves)     emulate, vcpu, bt_run   guest values only
 *   eip               -                          bt_run, emulate         guest address: fetched through guest tables
 *   exit_entry        -                          none (ring 1 jumps)     bt_init writes it (an offset in CS)
 *   exit_desc         every exit stub            bt_run                  exit_of/tc_exit_valid: one of the TC's
 *                                                                        descriptors, ibl_miss_exit or the monitor's
 *                                                                        trap descriptor, else BT_EXIT_BAD_DESC
 *   entry_tca, host_esp -                        hosted harness only     not used by the hypervisor
 *   save_*, tmp       inline sequences           none                    scratch
 *   ibl_target        lookup stub's miss path,   bt_run (IBL miss)       guest address: translated like any eip
 *                     CALL r/m, IRET
 *   ibl_tca           lookup stub                bt_stop_at (the block   ring 1 jumps through it: an offset in CS,
 *                                                to stop: any address    which covers the TC alone (#GP outside)
 *                                                only stops a block)
 *   exit_ea           exit_insn's LEA            (emulate recomputes)    guest offset: guest segment + guest tables
 *   vflags_if         CLI/STI/POPF               vcpu, emulate           guest virtual IF
 *   vflags_sys        POPF (BT_FLAGS_POPF_SYS)   vcpu, emulate           guest virtual bits; ring-3 entry loads only
 *                                                                        TF and AC into EFLAGS, never IOPL
 *   irq_pending       POPF setting TF (1)        bt_run, vcpu            a lie only costs an IRQ-window exit
 *   exit_req          -                          bt_run                  a lie only costs an early return
 *   seg_alias         inline GS loads (a         none (monitor writes    ring 1 loads it into DS: the CPU checks it
 *                     selector seg_native        it at every entry)      against the shadow GDT (DPL 1 data only)
 *                     allows)
 *   ds_save           the DS swap                none                    scratch; ring 1 reloads DS from it
 *   cs_alias          -                          none (as seg_alias)     as seg_alias
 *   sel               native DS/ES/FS/GS loads   vcpu, emulate           guest virtual state; after a native load the
 *                                                                        monitor takes DS/ES/FS from the CPU's
 *                                                                        registers, not from sel[]; sel[GS] only
 *                                                                        where seg_native allows it
 *   cr, gdtr..tr      -                          vcpu, emulate           guest virtual state (the shadow keeps its own
 *                                                                        CR3/CR0/CR4 and descriptor caches)
 *   tmp2              inline VERW                none                    scratch
 *   in_swap           the DS swap (1, then 0)    native_seg_resync       a lie only makes the monitor take ds_save
 *                                                                        as the guest's DS, which it accepts only
 *                                                                        where seg_native allows that selector
 *   seg_verw[]        -                          none (monitor writes)   as seg_native; ring 1 copies its ZF bit
 *                                                                        into the guest's flags, nothing more
 *   seg_native[]      -                          none (monitor writes)   ring 1 indexes it with a zero-extended
 *                                                                        16-bit selector (always inside) and loads
 *                                                                        that selector from the shadow tables: the
 *                                                                        CPU checks it; a nonzero byte only where the
 *                                                                        shadow entry is the guest's own descriptor
 *   invlpg_exit       -                          none (vcpu writes it    a ring-1 store is never emitted; its
 *                                                before every bt_run)    value only chooses between an exit
 *                                                                        and none for the guest's own INVLPG
 *   exit_esp          the exit routine           vmm/switch.S's          guest ESP: becomes gpr[4] like any
 *                     (SYSENTER variant)         SYSENTER stub           guest register value
 *   ss_flat           -                          none (bt_enter writes   a lie only lets an inline IRET's second
 *                                                it at every entry)      or third stack read fault after its
 *                                                                        first succeeded: the guest's own state
 *   invlpg_skip,      -                          none (vcpu writes them  as invlpg_exit: a lie could only skip
 *   invlpg_skip_ds                               around every bt_run)    the guest's own INVLPG, leaving a stale
 *                                                                        entry of its own RAM (shadow.c I2)
 *   ibl[]             -                          none (tc.c writes)      ring 1 jumps through it (as ibl_tca)
 *   r3_ok .. r3_gdtw, -                          none (vcpu writes them  the return stub's checks; the CPU checks
 *   gdt_low[]                                    in r3_arm, sgdt_set)    its IRET and loads against the shadow GDT
 *   r3_desc           a SYSEXIT or IRET site     bt_run (as exit_desc)   validated like any exit descriptor
 *   r3_eip, r3_fl,    an IRET site (to ring 3)   none (the IRET stub     the frame of an IRET to ring 3: EIP
 *   r3_uesp                                      reads them)             checked against r3_cs_limit, EFLAGS
 *                                                                        masked to the arithmetic bits, DF
 *                                                                        and IF; any ESP is ring 3's own;
 *                                                                        vflags_sys <- EFLAGS & POPF_SYS, as
 *                                                                        POPF at ring 1 may write it
 *   r3_via_iret       the return stubs           vm info                 a lie only miscounts
 *   r3_prefault       -                          none (r3_arm writes it; a lie only makes the stub call the
 *                                                the stub reads it)      monitor, which fills only what the
 *                                                                        guest's tables allow (shadow_prefault)
 *   r3_esp, r3_ss_save, the return stub          none                    scratch: guest values, and the SS ring 1
 *   r3_stack[]                                                           held a moment before
 *   invlpg_inline,    an INVLPG without an exit  none (gdtw_map reads     a lie only makes the monitor walk the
 *   r3_ok (set to 0)  (h_invlpg)                 and clears it)          GDT's page again and the stub exit
 *   r3_gdt_page,      -                          none (vcpu writes them  a lie only lets an INVLPG of the GDT's
 *   r3_gdt_ds                                    in r3_arm)              page keep the stub's walk: the guest's
 *                                                                        own GDT read through a stale entry
 */
struct bt_vcpu {
    /* Saved at every exit, loaded at every entry (harness/world switch). */
    uint32_t gpr[8];          /* 0x00: EAX ECX EDX EBX ESP EBP ESI EDI */
    uint32_t eflags;          /* 0x20: real part (BT_FLAGS_REAL) of guest EFLAGS */
    uint32_t eip;             /* 0x24: guest EIP where execution resumes */
    /* Entry/exit linkage used by emitted code. */
    uint32_t exit_entry;      /* 0x28: tca of the exit routine (harness / world switch) */
    uint32_t exit_desc;       /* 0x2C: struct bt_exit * of the last exit (checked by bt_run) */
    uint32_t entry_tca;       /* 0x30: tca the entry routine jumps to */
    uint32_t host_esp;        /* 0x34: hosted harness: host ESP across guest runs */
    /* Scratch slots of the inline sequences (never live across guest insns). */
    uint32_t save_eax;        /* 0x38 */
    uint32_t save_ecx;        /* 0x3C */
    uint32_t save_flags;      /* 0x40: LAHF/SETO image (AH = flags, AL = OF) */
    uint32_t tmp;             /* 0x44: POPF image, PUSHF real image */
    uint32_t ibl_target;      /* 0x48: gva of an indirect branch target */
    uint32_t ibl_tca;         /* 0x4C: its tca on a lookup hit */
    uint32_t exit_ea;         /* 0x50: effective address (offset) of the exiting insn's memory operand */
    /* Virtual system state. */
    uint32_t vflags_if;       /* 0x54: 0 or BT_FLAGS_IF */
    uint32_t vflags_sys;      /* 0x58: virtual TF IOPL NT RF VM AC VIF VIP ID */
    uint32_t irq_pending;     /* 0x5C: nonzero: monitor has an interrupt to inject (byte 0 read) */
    uint32_t cr[5];           /* 0x60: CR0..CR4 (CR1 unused) */
    uint32_t sel[8];          /* 0x74: ES CS SS DS FS GS selectors, zero-extended */
    struct bt_desc_table gdtr, idtr;
    uint32_t ldtr, tr;        /* selectors */
    uint32_t exit_req;        /* nonzero: the monitor wants control back soon (bt_stop_at; bt_run
                                 returns before dispatching); translated code never reads it */
    /* A guest memory access through the state segment's register (the
     * guest's own GS) runs with DS swapped (bt_config.guest_seg_alias). */
    uint32_t seg_alias;       /* selector loaded into DS for it: a ring-1 alias of the guest's
                                 cached GS descriptor, or 0 (null GS: the access faults) */
    uint32_t ds_save;         /* DS across that access (16 bits stored) */
    uint32_t cs_alias;        /* the same for a guest CS-prefixed access: a ring-1 data alias of
                                 the guest's cached CS descriptor, or 0 (execute-only CS) */
    uint32_t tmp2;            /* scratch of the inline VERW */
    uint32_t in_swap;         /* 1 while a DS swap runs (h_seg_alias, a selector read through CS):
                                 a fault there leaves DS = the alias, the guest's DS in ds_save */
    uint32_t invlpg_exit;     /* nonzero: INVLPG at CPL 0 exits (BT_EXIT_INVLPG) instead of being
                                 dropped: the shadow has out-of-sync page tables (byte 0 read) */
    uint32_t exit_esp;        /* 0xC8: ESP stored by an exit routine that leaves through SYSENTER
                                 (bt_config.exit_sysenter), which keeps none */
    uint32_t ss_flat;         /* nonzero: the guest's SS is flat (base 0, 4 GiB, expand-up, B = 1),
                                 so 12 bytes of stack within one page fault together or not at
                                 all (bt_config.inline_iret); the monitor sets it at every entry */
    uint32_t invlpg_skip;     /* no INVLPG exit for this page even with invlpg_exit (a DS offset, page-aligned; any
                                 other value matches none) while DS holds invlpg_skip_ds: the
                                 monitor dropped its shadow entry and nothing refills it before
                                 the next exit (BT_INVLPG_SKIP_NONE: no such page) */
    uint32_t invlpg_skip_ds;
    /* The inline return to ring 3 (bt_config.inline_sysexit, docs/bt.md
     * "Returning to ring 3"). Written by the monitor, read by the stub: */
    uint32_t r3_ok;           /* nonzero: the stub may try; zero: it always takes the exit */
    uint32_t r3_cs, r3_ss;    /* the selectors SYSEXIT loads (RPL 3), checked by the monitor */
    uint32_t r3_cs_limit;     /* CS's limit in the shadow GDT: a return EIP above it exits */
    uint32_t r3_gdt_off;      /* offset of the guest's GDT entry 1 in r3_gdtw's page */
    uint32_t r3_gdt_dwords;   /* dwords from there that must equal gdt_low[1..] */
    uint32_t r3_priv_ss;      /* SEL_R1VCPU: SS of the stub's own stack (r3_stack) */
    uint32_t r3_gdtw;         /* SEL_R1GDTW: ES while it compares the guest's GDT, read through
                                 a window onto its frame (the guest's own GDT may lie in the
                                 monitor's range, as Linux's read-only fixmap alias does) */
    /* Written by ring 1 (the SYSEXIT's site, then the stub): */
    uint32_t r3_desc;         /* exit descriptor of the SYSEXIT (the stub's way out when it may not) */
    uint32_t r3_esp;          /* the guest's ESP at the stub's entry */
    uint32_t r3_ss_save;      /* the ring-1 SS at the stub's entry (16 bits stored) */
    /* Written by ring 1 at an INVLPG that does not exit (h_invlpg), with r3_ok = 0: the
     * translation of the GDT's page the monitor walked may be one the guest has just
     * invalidated, so the stub must not use it and the monitor walks again (gdtw_map). */
    uint32_t invlpg_inline;
    /* Written by the monitor (r3_arm): an INVLPG through DS while DS holds r3_gdt_ds, of
     * another page than r3_gdt_page (GDTR.base's, a DS offset: that DS has base 0), leaves
     * the walk of the GDT's page standing (r3_gdt_ds 0xFFFFFFFF: no DS is known flat). */
    uint32_t r3_gdt_page, r3_gdt_ds;
    /* Written by an IRET's site before it jumps to the IRET stub
     * (bt_config.inline_iret3): the return frame's EIP, EFLAGS and ESP. */
    uint32_t r3_eip, r3_fl, r3_uesp;
    uint32_t r3_via_iret;     /* written by the stubs as they return: 1 by the IRET stub, 0 by
                                 SYSEXIT's (vm info's counts) */
    uint32_t r3_prefault;     /* written by the monitor: nonzero while a #PF it gave the guest
                                 awaits its handler's IRET, whose stub then calls the monitor
                                 (struct bt prefault_call) to fill the faulting page's shadow
                                 entry before ring 3 retries the access */
    uint32_t r3_stack[BT_R3_STACK_DWORDS]; /* the stub's stack: the saved guest state at the top
                                 (BT_R3_SAVE_*), the IRET frame below it */
    uint64_t gdt_low[BT_GDT_LOW]; /* guest GDT entries 0..BT_GDT_LOW-1 as the monitor shadowed them
                                 (its gdt_src); the stub compares the guest's GDT with them */
    uint32_t ibl[BT_IBL_ENTRIES][2]; /* {bt_ibl_key(guest eip), tca} indirect-branch lookup table */
    /* Segment loads run natively (bt_config.native_seg_loads): nonzero at a
     * selector that MOV/POP DS, ES or FS may load at ring 1 as it is, from
     * the shadow descriptor tables, with the effect the guest's own load
     * would have; zero sends the load to the monitor (BT_EXIT_SEG). */
    uint8_t seg_native[BT_SEG_NATIVE_SELECTORS];
    /* What VERW of each selector answers at CPL 0, for translated VERW:
     * 0 = ask the monitor (BT_EXIT_DESC), else BT_VERW_KNOWN with
     * BT_VERW_ZF set if the segment is writable there. */
    uint8_t seg_verw[BT_SEG_NATIVE_SELECTORS];
};

/* bt_vcpu.invlpg_skip when no page may be skipped: not page-aligned. */
#define BT_INVLPG_SKIP_NONE 1u

/* Full guest-visible EFLAGS image: real arithmetic part + virtual parts. */
static inline uint32_t bt_vcpu_eflags(const struct bt_vcpu *v)
{
    return (v->eflags & BT_FLAGS_REAL) | v->vflags_if | v->vflags_sys | BT_FLAGS_FIXED1;
}

#endif /* __ASSEMBLER__ */
#endif
