/*
 * The vCPU's private state, shared by the execution engine (vmm/vcpu.c) and
 * the instruction emulation it calls (vmm/emulate.c).
 */
#ifndef HV86_VMM_VCPU_PRIV_H
#define HV86_VMM_VCPU_PRIV_H
#include <stdbool.h>
#include <stdint.h>
#include "bt/decode.h"
#include "bt/translate.h"
#include "kernel/traps.h"
#include "kernel/vmwin.h"
#include "kernel/x86.h"
#include "vmm/segment.h"
#include "vmm/realmode.h"
#include "vmm/shadow.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"


/* Why vmm_enter returned. */
enum world_exit {
    WX_BT_EXIT = 1, /* translated code left through HV_EXIT_VECTOR */
    WX_TRAP,        /* exception or interrupt while in the guest: vcpu->tf, cr2 */
    WX_ENTRY_FAIL,  /* loading the guest's state faulted: the VM is being killed */
};

/* A host interrupt line (the 8259A's vectors), as opposed to an exception. */
static inline bool is_irq_vector(uint32_t vector)
{
    return vector >= IRQ_BASE_VECTOR && vector < IRQ_BASE_VECTOR + 16;
}

/* One row of the exit-site table: exits at guest EIP eip, at CPL cpl, for
 * one reason (why: EXIT_WHY_*). */
#define EXIT_SITES 512 /* a power of two */
struct exit_site {
    uint32_t eip, count;
    uint16_t why;
    uint8_t cpl;
};
/* What `why` holds: a translator exit reason (enum bt_exit_reason) below
 * EXIT_WHY_TRAP; EXIT_WHY_TRAP + vector for an exception, except page
 * faults, which are split by outcome. */
/* Guest GDT entries 1 to SYNC_GDT_LOW - 1 are read again before every
 * entry into ring 3 (vcpu.c sync_gdt_low): ring 3 loads them itself. */
#define SYNC_GDT_LOW 64u

/* Decoded instructions kept per vCPU (a power of two): the same few exit
 * sites (SYSEXIT, IRET, port I/O) are decoded again and again. */
#define DEC_MEMO 32u

#define DR6_BS 0x4000u /* DR6: the #DB is a single step (SDM Vol. 3B §17.2.3) */

#define EXIT_WHY_TRAP      0x100
#define EXIT_WHY_PF_HIDDEN 0x200 /* fixed by shadow paging, the guest never knew */
#define EXIT_WHY_PF_GUEST  0x201 /* reflected to the guest: its own page fault */
#define EXIT_WHY_PT_WRITE  0x202 /* a store into a traced guest page table, emulated */
#define EXIT_WHY_CODE_WRITE 0x203 /* a store into translated code: its translations dropped */
#define EXIT_WHY_PF_EMULATE 0x204 /* an access to the monitor range or to device memory, emulated */

/* Self-modifying code (vmm/vcpu.c smc_store): stores into one page of
 * translated code the monitor emulates, dropping only the translations they
 * meet, before the page goes back to native stores; slots of that count. */
#define SMC_FLOOD 12u
#define SMC_SLOTS 16u
/* The run loop empties the lookup (IBL) table this often (ticks, ms). */
#define IBL_AGE_TICKS 1000u

/* Shadow paging limits per VM: cached directories (2 frames each) and page
 * tables, all taken from the VM's window at creation. */
#define SH_MAX_PDS 8u
#define SH_MAX_PTS 256u
#define SH_POOL_PAGES (2 * SH_MAX_PDS + SH_MAX_PTS)

struct vcpu {
    uint8_t fpu[512] __attribute__((aligned(16))); /* FXSAVE image while another vCPU owns the FPU */
    struct bt_vcpu *bv;         /* what translated code reaches through GS; canonical guest registers.
                                   In the VM's window (640 KiB, mostly the IBL table): vCPU thread,
                                   or a host thread between vmwin_enter and vmwin_leave */
    struct vm *vm;
    struct bt bt;
    uint32_t tc_code_bytes, tc_meta_bytes; /* sizes of the two translation-cache arenas */
    uint8_t *tc_code;           /* both arenas in the VM's window (kernel/vmwin.h) */
    void *tc_meta;
    struct vmwin win;           /* the VM's own monitor window: TC and shadow page tables */
    uint8_t *sh_pool;           /* SH_POOL_PAGES frames in the window for shadow tables */
    uint16_t sh_free[SH_POOL_PAGES]; /* pages of sh_pool not in use (a stack) */
    uint32_t sh_nfree;
    struct shadow sh;
    uint64_t *sgdt;             /* shadow GDT, GDT_ENTRIES descriptors */
    uint64_t *gdt_src;          /* the guest descriptor each guest entry of sgdt was made from
                                   (GDT_MONITOR_FIRST; 0: none): what a native load cached */
    uint32_t gdt_low_zero_from; /* sgdt entries [this, SYNC_GDT_LOW) are all 0 (sync_gdt_low may
                                   then skip them when the guest's limit ends at or above it) */
    struct desc_ptr sgdtr;
    struct vseg seg[SR_N];
    unsigned cpl;               /* guest CPL: 0 (translated) or 3 (direct) */
    bool halted;
    uint32_t sysenter_cs, sysenter_esp, sysenter_eip;
    /* World switch. */
    uint32_t host_esp;
    struct trap_frame tf;       /* guest state at the last WX_TRAP */
    struct v86_segs v86;        /* ... and its segment registers, if it came from virtual-8086 mode */
    bool a20;                   /* the A20 gate the shadow pager applies (vmdev_a20 is the device's) */
    uint16_t r1_sel[3];         /* DS, ES, FS as translated code left them (native loads) */
    uint32_t r1_entered[3];     /* DS, ES, FS translated code was last entered with (bt_frame) */
    uint32_t r1_esp_in;         /* ... and its ESP (stack16_fix_esp) */
    bool bt_world;              /* the world switch in progress is bt_enter's (sysenter_in_world) */
    bool fast_sysenter;         /* sysenter_in_world may run (FAST_SYSENTER) */
    uint32_t sysenter_in_world; /* SYSENTERs from ring 3 taken into translated code without an exit (vm info) */
    bool fast_pf;               /* pf_in_world may run (FAST_PF) */
    uint32_t pf_in_world;       /* hidden faults fixed from the trap, without an exit (vm info) */
    uint32_t pf_world_cr2, pf_world_eip, pf_world_repeats; /* the last one's address, EIP, repeats */
    bool fast_reflect;          /* reflect_in_world may run (FAST_REFLECT) */
    uint32_t pf_reflected_in_world; /* guest page faults from ring 3 given to the guest without an exit */
    bool world_handled;         /* the trap that left the world was handled there (reflect_in_world) */
    /* pf_in_world's shadow_handle_fault result when it was not a hidden
     * fault, for the monitor's path to use instead of a second call: valid
     * for the trap with this CR2, error code and EIP until the next entry. */
    bool pf_stashed;
    int pf_stash_r;
    uint32_t pf_stash_cr2, pf_stash_err, pf_stash_eip;
    struct shadow_fault pf_stash;
    uint32_t cr2;               /* real CR2 at that trap */
    /* The last #PF given to the guest, to prefault at its handler's IRET
     * (vcpu_prefault): address, access (PF_W, PF_U), guest CR3 then. */
    bool pf_pending;
    uint32_t pf_gva, pf_acc, pf_cr3;
    /* The page whose shadow entry that #PF's reflection dropped, for the
     * next run of translated code to skip the guest's INVLPG of it
     * (bt_vcpu.invlpg_skip), or BT_INVLPG_SKIP_NONE. */
    uint32_t invlpg_dropped;
    uint32_t invlpg_skipped;    /* ... published that many times (vm info) */
    struct bt_exit fault_desc;  /* handed to bt_run when a trap hit translated code */
    bool bt_trapped;            /* bt_run's return came from a trap, not an exit */
    /* Translated code's own return to ring 3 (r3_arm, bt_config.inline_sysexit). */
    bool r3_trapped;            /* bt_run's return came from a trap at ring 3 after one */
    bool r3_valid;              /* r3_ready and the bt_vcpu.r3_* fields below are current for... */
    uint32_t r3_key_cs, r3_key_gdt_base, r3_key_gdt_limit; /* ...this SYSENTER_CS and GDTR */
    bool r3_ready;              /* SYSEXIT's CS and SS are ones ring 3 can be entered with */
    uint16_t r3_cs, r3_ss;      /* ... these (the monitor's copies of bt_vcpu.r3_cs, r3_ss) */
    uint32_t r3_returns;        /* returns to ring 3 without an exit (vm info) */
    uint32_t r3_iret_returns;   /* ... of them by an IRET (bt_config.inline_iret3) */
    uint32_t prefault_calls;    /* the IRET stub's calls to fill a #PF's page (prefault_call) */
    void *gdtw;                 /* a window page (vmwin_reserve) the stub reads the guest's GDT through */
    uint32_t gdtw_hpa;          /* the frame it maps now (vmwin_alias), 0: none */
    uint32_t gdtw_gva;          /* ... for this guest page (GDTR.base's), walked while */
    uint32_t gdtw_gen;          /* ... shadow_tlb_gen had this value (gdtw_map) */
    uint32_t gdtw_walks;        /* gdtw_map's walks of the guest tables (vm info) */
    /* The walks of a delivery's IDT gate and TSS (ESP0, SS0) reads, kept
     * as a TLB entry would be (read_sys8): the guest page, the frame, and
     * shadow_tlb_gen and gdtw_walks when walked; hpa 0: none. */
    struct sys_tlb {
        uint32_t page, hpa, gen, walks;
    } sys_tlb[2];
    uint32_t sys_tlb_hits;      /* reads read_sys8 took from them (vm info) */
    uint32_t exit_req_boundary, exit_req_block, exit_req_lookup; /* how interrupts got translated code to exit */
    uint32_t irqs_resumed;      /* host interrupts from direct ring 3 that returned to it without an exit */
    uint32_t resumed_in_row;    /* of them since the last entry to ring 3 (RESUME_MAX_IN_ROW) */
    uint32_t exits_by_reason[BT_EXIT_COUNT]; /* translator exits by bt_exit reason ([0]: emulated traps) */
    struct vseg alias_src[SR_N]; /* the descriptor caches the ring-1 alias slots were built from */
    /* vcpu_load_seg's last GDT load into each register that passed its
     * checks: the same selector, descriptor (accessed bit set) and CPL pass
     * them again, to the same cache (a delivery from ring 3 loads the
     * kernel's SS and CS at every fault). */
    struct seg_memo {
        uint64_t d;
        uint16_t sel;
        uint8_t cpl;
        bool valid;
        struct vseg v;
    } seg_memo[SR_N];
    uint32_t alias_valid;       /* bit sr: alias_src[sr] and its slot are current */
    uint64_t enter_tsc, guest_tsc, entries; /* TSC spent from world switch in to out, and how often */
    /* The monitor's time per exit, by cause (vcpu_monitor_us): the TSC from
     * each world switch out (exit_tsc) to the next one in, charged to the
     * cause whose count (vm->exits_by_cause, seen at the last entry in
     * cause_seen) that exit raised; [EXIT_CAUSES]: none raised (the
     * dispatcher's exits: a branch, a lookup miss, translation). */
    uint64_t exit_tsc, cause_seen[EXIT_CAUSES], monitor_tsc[EXIT_CAUSES + 1];
    uint32_t run_ahead;         /* instructions emulated after a segment-load or VERW exit, in the same exit */
    bool ldt_stale;             /* the shadow LDT descriptor changed since LDTR was loaded */
    volatile bool sh_stale;     /* a host thread unshared guest pages: flush the shadows before running */
    uint32_t irq_geip;          /* guest EIP where a host interrupt stopped translated code (WX_TRAP) */
    int deliver_depth;          /* nesting of vcpu_deliver: a fault inside is a triple fault */
    uint64_t *sldt;             /* shadow LDT (GDT_ENTRIES slots), allocated at the first LLDT */
    uint32_t ldt_base, ldt_limit; /* the guest LDT (linear, bytes - 1); ldt_limit 0: none */
    uint32_t *code_bits;        /* guest RAM pages we translated from (1 bit per page): write-protected */
    /* Guest page tables that map translated code (code_watch): marked in
     * code_bits as well, so a store into one is caught like one into code,
     * and then the translations of the code frames it mapped are dropped. */
    struct code_watch { uint32_t table, code; } *watch; /* gpa pages */
    uint32_t nwatch, watch_full, watch_drops;
    uint32_t smc_writes;        /* stores into translated code caught */
    uint32_t code_write_gpa;    /* where the caught store went (vcpu_code_write_unprotect) */
    /* Emulated stores into a page of translated code since it was marked
     * (smc_store), by page: a page past SMC_FLOOD is written natively. */
    struct smc_slot { uint32_t page, stores; } smc[SMC_SLOTS];
    struct tceip_req *tceip;    /* vcpu_tc_guest_eips' request for the paused run loop */
    uint64_t ibl_aged_at;       /* timer_ticks() when the lookup table was last emptied (IBL_AGE_TICKS) */
    uint32_t ibl_ages;          /* times it was */
    uint32_t smc_ranged;        /* emulated stores that dropped only the translations they met */
    uint32_t smc_unprotects;    /* pages given back to native stores (SMC_FLOOD, a watched table) */
    bool plain_write;           /* the last vmem_write landed in guest RAM that is nothing more (no device,
                                 * traced page table or translated code): the CPU may do the next itself */
    uint32_t strings_resumed;   /* REP MOVS/STOS handed back to the CPU once their stores were plain */
    uint32_t stale_exits;       /* exits whose instruction had changed since translation (emu_bt_exit) */
    uint32_t dr[8];             /* debug registers (execute breakpoints are checked while stepping) */
    bool stepping;              /* one instruction per dispatch: guest TF or an armed DR7 */
    uint32_t tc_cs_base, tc_cs_limit; /* the guest CS the translation cache was made under */
    bool fpu_valid;             /* fpu[] holds state (else the first use starts from FNINIT) */
    /* Statistics. */
    struct exit_site sites[EXIT_SITES]; /* `vm exits`: where the guest exits most (vcpu_note_exit) */
    struct dec_memo {           /* emulate.c fetch_decode_bytes: the last decode at each slot */
        uint8_t bytes[16];      /* the instruction's bytes (in.len of them) */
        struct dec_insn in;     /* in.len 0: empty; in.addr and in.mode: where and how decoded */
    } dec_memo[DEC_MEMO];
    uint32_t sites_untracked;   /* exits not counted there: the table was full */
    uint64_t injected[256 / 64];
    uint32_t irqs_injected, guest_exceptions;
    uint32_t v86_entries;       /* real mode: stints in virtual-8086 mode */
    uint32_t rm_emulated;       /* real mode and 16-bit protected mode: instructions emulated */
};

/* Does sel name a GDT entry below SYNC_GDT_LOW, with a guest descriptor cached in
 * gdt_src (what its shadow entry was made from)? */
static inline bool gdt_low_cached(const struct vcpu *c, uint16_t sel)
{
    uint32_t idx = sel >> 3u;
    return !(sel & 4) && idx && idx < SYNC_GDT_LOW && c->gdt_src[idx];
}

#define VCPU(vm) ((struct vcpu *)(vm)->vcpu)

/* Guest linear-memory access with the guest's paging (kind: PF_W for writes,
 * PF_U for user-privilege accesses). Returns 0, or 1 after injecting the
 * guest's #PF, or a negative E_* after vm_kill. */
int vmem_read(struct vcpu *c, uint32_t gva, void *buf, uint32_t len, uint32_t kind);
int vmem_write(struct vcpu *c, uint32_t gva, const void *buf, uint32_t len, uint32_t kind);

/* Exception/interrupt delivery through the guest's IDT (SDM Vol. 3A §6.12).
 * err < 0: no error code. soft: INT n (DPL checked, EIP = next insn).
 * Returns 0, or negative after vm_kill. */
int vcpu_deliver(struct vcpu *c, unsigned vector, int err, bool soft, uint32_t next_eip);
static inline int vcpu_exception(struct vcpu *c, unsigned vector, int err)
{
    return vcpu_deliver(c, vector, err, false, c->bv->eip);
}
/* Load a segment register from the guest GDT or LDT (protected-mode rules,
 * SDM Vol. 3A §5.5-5.8 simplified) and set the accessed bit of the guest's
 * descriptor in guest memory (§3.4.5.1). Returns 0, 1 (exception injected),
 * <0 (killed). */
int vcpu_load_seg(struct vcpu *c, int sr, uint16_t sel);
/* Read the guest descriptor a selector names (GDT or LDT by its TI bit).
 * Returns 0, or E_RANGE (null, beyond the table's limit, unreadable). */
int vcpu_read_desc(struct vcpu *c, uint16_t sel, uint64_t *d);
/* LLDT: the guest LDT becomes the one a GDT selector names (0: none).
 * Returns 0, 1 (exception injected), <0 (killed). */
int vcpu_load_ldt(struct vcpu *c, uint16_t sel);
/* Re-read guest descriptor idx (or all the guest's GDT limit covers) into the shadow GDT. */
void vcpu_sync_gdt_entry(struct vcpu *c, uint32_t idx);
void vcpu_sync_gdt_all(struct vcpu *c);
/* vcpu_note_exit - count one exit at the guest's current EIP and CPL for
 * why (EXIT_WHY_*) in c->sites, a bounded open-addressed table: an exit
 * that finds no row within 16 probes adds to sites_untracked. Costs a
 * hash and a few compares; vCPU thread only. */
void vcpu_note_exit(struct vcpu *c, unsigned why);
/* Guest EFLAGS image (arithmetic + virtual IF/IOPL/...) and its setter. */
uint32_t vcpu_eflags(const struct vcpu *c);
void vcpu_set_eflags(struct vcpu *c, uint32_t fl, bool cpl0);
/* Switch the guest to CPL 0 or 3 (which engine runs it). */
void vcpu_set_cpl(struct vcpu *c, unsigned cpl);

/* vmm/emulate.c: handle one translated-code exit; 0 to go on, <0 stops. */
int emu_bt_exit(struct vcpu *c, int reason);
/* vmm/emulate.c: a #GP / #SS from direct-executed (ring 3) guest code;
 * 0 to go on, <0 stops. */
int emu_ring3_gp(struct vcpu *c);
/* emu_sysenter - SYSENTER or SYSEXIT (in->cf; SYSCALL/SYSRET: #UD) from
 * the guest's IA32_SYSENTER_* MSRs, SDM Vol. 2B: 0, or 1 after injecting
 * #GP(0) (IA32_SYSENTER_CS = 0, SYSEXIT at CPL > 0), <0 after vm_kill. */
int emu_sysenter(struct vcpu *c, const struct dec_insn *in);
int emu_ring3_ss(struct vcpu *c);
/* vmm/vcpu.c: the store emu_bt_exit was asked to emulate into translated
 * code (-100 - SHADOW_CODE_WRITE) is one the emulator does not do: drop the
 * page's translations and let the store run natively. 0. */
int vcpu_code_write_unprotect(struct vcpu *c);
/* vmm/vcpu.c: a #NM from guest code: lazy FPU switch or the guest's own #NM. */
int vcpu_fpu_trap(struct vcpu *c);
/* vmm/emulate.c: length of the WAIT/FWAIT at the guest EIP, or 0 if it is something else. */
int emu_fwait_len(struct vcpu *c);
/* vmm/emulate.c: emulate the one instruction at the guest's CS:EIP in
 * 16-bit code -- real mode the CPU cannot run in virtual-8086 mode, 16-bit
 * protected-mode code at CPL 0, an instruction that faulted in virtual-8086
 * mode (vmm/realmode.h). 0 to go on (EIP advanced, or an exception
 * delivered), <0 after vm_kill: an instruction it does not emulate stops
 * the guest with its name. */
int emu_step16(struct vcpu *c);
/* vmm/emulate.c: IRET at CPL 0 from the guest stack. */
int emu_iret(struct vcpu *c);
/* Fill the shadow entry of the access a returning #PF handler's code will
 * retry (pf_gva, pf_acc), if the guest's tables allow it now and CR3 is
 * the one it faulted under; clears pf_pending. vmm/emulate.c. */
void vcpu_prefault(struct vcpu *c);

#endif
