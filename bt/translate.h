/*
 * Binary translator core: translates guest CPL0 code one basic block at a
 * time into the translation cache (bt/tc.h) and runs it (bt_run).
 *
 * The monitor owns a struct bt per vCPU. It gives:
 *   - a fetch callback reading guest code by gva (through the guest's page
 *     tables in the hypervisor; plain memory in the host tests);
 *   - an enter routine that loads struct bt_vcpu into the real registers
 *     and jumps to a tca, and whose counterpart at bt_vcpu.exit_entry saves
 *     them again and returns (hosted: tests/unit/bt_harness_asm.S; in the
 *     hypervisor: the ring-1 <-> ring-0 world switch, issue #4);
 *   - the place emitted code finds struct bt_vcpu (struct bt_config).
 * bt_run() then loops: look up or translate the block at vcpu->eip, chain
 * the exit that led here, enter; it returns only for exits the monitor must
 * handle (enum bt_exit_reason >= BT_EXIT_IRQ_WINDOW). Translation rules:
 * docs/bt.md "Translation rules".
 */
#ifndef HV86_BT_TRANSLATE_H
#define HV86_BT_TRANSLATE_H
#include <stdbool.h>
#include <stdint.h>
#include "bt/tc.h"
#include "bt/vcpu_state.h"

#define BT_SEG_NONE 0x00 /* state_seg_prefix: plain [disp32] (host tests) */
#define BT_SEG_FS   0x64 /* FS override prefix (SDM Vol. 2A §2.1.1); host test of the mode */
#define BT_SEG_GS   0x65 /* GS override prefix: the hypervisor's choice */

struct bt_config {
    uint8_t  state_seg_prefix; /* BT_SEG_NONE or BT_SEG_FS/GS; guest memory operands
                                  through that segment then exit (BT_EXIT_EMULATE) */
    bool     rewrite_cs_override; /* CS: data accesses become DS: (CS is the TC segment) */
    bool     guest_seg_alias;  /* a guest access through the state segment's register that
                                  would otherwise be copied runs with DS = bt_vcpu.seg_alias,
                                  one through CS (rewrite_cs_override) with DS =
                                  bt_vcpu.cs_alias (the world switch keeps both valid) */
    uint32_t state_base;       /* disp32 emitted code uses for offset 0 of struct bt_vcpu */
    uint32_t cs_base;          /* base of ring-1 CS: the TC arena's start when CS covers the TC
                                  alone (issue 11 (c)), 0 when flat; TC addresses that emitted
                                  code jumps through are stored relative to it */
    bool     native_seg_loads; /* MOV Sreg / POP Sreg into DS, ES, FS run at ring 1 from the
                                  shadow tables where bt_vcpu.seg_native allows the selector,
                                  storing it into bt_vcpu.sel[]; else they exit (SEG) */
    uint8_t  exit_vector;      /* nonzero: bt_init puts `int exit_vector; ud2` in the TC and
                                  points exit_entry at it (the exit routine must lie inside CS) */
    bool     inline_iret;      /* a 32-bit IRET at CPL 0 back to the same CS with IF, NT, TF, VM,
                                  RF, VIF and VIP unchanged or clear runs in translated code
                                  (h_iret; bt_vcpu.ss_flat, sel[CS]); any other exits (IRET) */
    bool     exit_sysenter;    /* with exit_vector: the routine is `mov %esp, exit_esp; sysenter;
                                  int exit_vector; ud2` instead -- SYSENTER (SDM Vol. 2B) keeps
                                  neither ESP nor EIP but reads no descriptor; its host target
                                  builds the trap frame the INT would have (vmm/switch.S), and the
                                  INT after it serves where the host's SYSENTER is disarmed:
                                  the #GP(0) it then raises is taken as the same exit */
    bool     inline_sysexit;   /* with exit_vector and a state segment at base 0: SYSEXIT at CPL 0
                                  goes to a shared stub that returns to ring 3 itself when the
                                  monitor allows it (bt_vcpu.r3_ok) and the guest's GDT is as the
                                  monitor shadowed it; else it exits (SYSENTER). docs/bt.md
                                  "Returning to ring 3" */
    bool     inline_iret3;     /* with inline_sysexit and inline_iret: a 32-bit IRET at CPL 0 to
                                  the CS and SS SYSEXIT would load (bt_vcpu.r3_cs, r3_ss), with
                                  IF set and TF, NT, VM, AC, VIF, VIP and IOPL clear in the
                                  popped EFLAGS (RF dropped) and its 20-byte frame in one page of a flat SS,
                                  goes to a second stub that returns to ring 3 the same way */
};

/* Copy up to len bytes of guest code at gva into buf; return how many were
 * readable (fewer at the first unmapped byte). */
typedef uint32_t (*bt_fetch_fn)(void *ctx, uint32_t gva, uint8_t *buf, uint32_t len);
/* The page identity a block records for invalidation: e.g. the gpa page of
 * gva, so that a write through any alias finds the block. */
typedef uint32_t (*bt_page_fn)(void *ctx, uint32_t gva);
/* Does the guest's mapping of the code at gva outlive a CR3 write (a
 * global page, or paging off)? Then only a store into the page (caught:
 * self-modifying code) or an INVLPG can change what runs there. */
typedef bool (*bt_stable_fn)(void *ctx, uint32_t gva);
/* Run translated code at tca with v loaded; return when it exits. */
typedef void (*bt_enter_fn)(struct bt_vcpu *v, uint32_t tca);

struct bt_stats {
    uint32_t dispatches;    /* entries into translated code from bt_run */
    uint32_t translations;  /* blocks translated */
    uint32_t insns;         /* guest instructions translated */
    uint32_t ibl_misses;    /* indirect branches that reached the dispatcher */
    uint32_t branch_exits;  /* unchained direct-branch exits */
    uint32_t branch_found;  /* of them, to a block already translated */
    uint32_t ibl_found;     /* IBL misses to a block already translated */
    uint32_t successors;    /* blocks translated ahead of their first run (translate_successor) */
    uint32_t calls;         /* direct CALLs translated */
    uint32_t inlined;       /* of them, calls whose callee was translated into the caller's block */
    uint32_t inlined_insns; /* their callees' instructions, RETs included */
    uint32_t inline_scans;  /* callees scanned (inline_scan; the others' answers were memoized) */
};

/* The longest callee translated inline, in instructions, its RET included
 * (docs/bt.md "Short callees inline"). */
#define BT_INLINE_MAX_INSNS 8u

/* What translate.c's inline_scan found at a callee: the path to its RET. */
struct bt_inline_path {
    uint32_t ret_eip;  /* gva of the RET */
    uint32_t n;        /* instructions along the path, RET included */
    uint32_t taken;    /* bit i: the path takes the i-th Jcc along it */
    uint16_t lo, hi;   /* its bytes span [lo, hi) of the callee's page */
    bool stores_esp;   /* one of them stores through ESP */
};

/* inline_scan's answers by callee gva, for this TC generation: a callee is
 * called from many places (a Linux boot has some 36,000 call sites). Direct-mapped, at the start of the metadata arena (not
 * in struct bt: the vCPU's structures are in the monitor's direct map,
 * which must hold 64 VMs); a stale answer (the code changed since) costs a
 * block that ends early, never a wrong translation (translate_body ends
 * the block at any instruction off the path). At most BT_INLINE_MEMO
 * entries, a 64th of the arena at most; none under 64 entries (every callee
 * is scanned). */
#define BT_INLINE_MEMO 1024u
struct bt_inline_memo {
    uint32_t target;   /* callee gva */
    uint32_t gen;      /* tc.generation + 1 of the answer, 0: empty */
    bool ok;           /* inlinable, along path */
    struct bt_inline_path path;
};

struct bt {
    struct tc tc;
    struct bt_vcpu *vcpu;
    struct bt_config cfg;
    uint8_t state_dec_sreg;     /* cfg.state_seg_prefix as the decoder's DEC_REG_*, or DEC_REG_NONE */
    bt_fetch_fn fetch;
    void *fetch_ctx;
    bt_enter_fn enter;
    bt_page_fn page_of;         /* NULL: blocks record gva pages (bt_set_page_fn) */
    bt_stable_fn code_stable;   /* NULL: every code mapping is (bt_set_stable_fn) */
    bool chaining;              /* patch exits block to block (default true) */
    bool successors;            /* translate a missed block's unconditional successor with it
                                 * (default true; needs chaining) */
    bool inline_calls;          /* translate a CALL's short leaf callee into the caller's block
                                 * (default true; inline_callee) */
    bool one_insn;              /* the next dispatch, if it is at one_insn_eip and finds no block
                                   there, translates one instruction only (set by the monitor to
                                   re-run a store into code); cleared by the next dispatch */
    uint32_t one_insn_eip;
    bool cpl3;                  /* translating guest CPL 3 code (IOPL 3): POPF exits, since it must
                                   keep IOPL; the monitor flushes the TC when it changes this */
    uint32_t exit_sysenter_eip; /* exit_sysenter: offset in CS of the routine's SYSENTER, else 0 */
    uint8_t *r3_stub;           /* inline_sysexit: the return-to-ring-3 stub (in the TC), else NULL */
    uint8_t *r3_iret_stub;      /* inline_iret3: its IRET variant, else NULL */
    struct bt_exit prefault_call; /* its call to the monitor (bt_vcpu.r3_prefault): its address is
                                   the exit_desc the monitor takes as that call, never an exit */
    uint32_t prefault_ret;      /* ... and where in CS the stub goes on after it */
    uint32_t r3_stub_off, r3_stub_len; /* ... its offset in CS and length */
    uint8_t *ibl_stub;          /* shared inline-lookup stub (in the TC) */
    struct bt_ibl_labels {      /* its labels (emit_ibl_stub), offsets from ibl_stub, for bt_stop_at */
        uint8_t miss, miss_live, hit2, loaded, last, recover, end;
    } ibl_at;
    struct bt_exit ibl_miss_exit;   /* exit descriptor of its miss path */
    struct bt_exit fault_exit;  /* descriptor returned with BT_EXIT_CODE_FAULT */
    struct bt_exit irq_exit;    /* BT_EXIT_IRQ_WINDOW found by the dispatcher */
    const struct bt_exit *monitor_exit; /* the enter function's own descriptor (a trap in
                                   translated code), the only exit_desc bt_run accepts besides
                                   the TC's and ibl_miss_exit; NULL: none */
    struct bt_exit bad_exit;    /* BT_EXIT_BAD_DESC: exit_desc failed the check */
    struct bt_exit *chain_from; /* BRANCH exit that led to the dispatcher */
    uint32_t chain_gen;         /* tc.generation chain_from belongs to */
    bool ibl_insert;            /* enter the next block into the IBL table ... */
    uint32_t ibl_insert_eip;    /* ... if it is for this eip (the lookup's target) */
    const struct bt_exit *exit; /* the exit bt_run returned for */
    struct bt_stats stats;
    struct bt_inline_memo *inline_memo; /* inline_memo_n entries (a power of two), or NULL */
    uint32_t inline_memo_n;
    /* The block being translated is built here and copied into the code
     * arena whole, 4 bytes per store: under QEMU TCG every store into a
     * page that holds code QEMU has translated takes its self-modifying-code
     * path (about 600 host cycles, against 6 for ordinary RAM), and most
     * of a block's bytes used to be stored one at a time. */
    uint8_t scratch[TC_BLOCK_MAX_CODE] __attribute__((aligned(16)));
};

/*
 * bt_block_for - the block bt_run enters at guest eip: looked up, or
 * translated (with its unconditional successor, bt->successors), chained to by
 * the branch that led there (bt_run's state) and entered into the IBL
 * table after a miss. NULL if the code at eip is not fetchable.
 */
struct tc_block *bt_block_for(struct bt *bt, uint32_t eip);

/*
 * bt_init - set up a translator for one vCPU over caller memory (see
 * tc_init for the arenas; code must be executable). Emits the shared stubs.
 * Returns 0 or E_INVAL (arenas too small).
 */
int bt_init(struct bt *bt, const struct bt_config *cfg, struct bt_vcpu *vcpu, uint8_t *code,
            uint32_t code_size, void *meta, uint32_t meta_size, bt_fetch_fn fetch,
            void *fetch_ctx, bt_enter_fn enter);

/*
 * bt_set_page_fn - make blocks record page_of(fetch_ctx, gva) (4 KiB aligned,
 * e.g. the guest-physical page) instead of the gva page, so that
 * tc_invalidate_page() takes that identity. Set it before translating.
 */
void bt_set_page_fn(struct bt *bt, bt_page_fn page_of);

/*
 * bt_set_stable_fn - native segment loads (bt_config.native_seg_loads) are
 * emitted only for an instruction whose bytes lie in code that stable(
 * fetch_ctx, gva) calls stable. Blocks are found by EIP: an instruction
 * that exits is re-checked against its bytes (bt_insn_sum), one that runs
 * natively is not, so after a CR3 write that maps other code at that EIP
 * it would run as translated from the old code. For a global page the
 * architecture allows exactly that until an INVLPG (SDM Vol. 3A §4.10.4.1);
 * for any other page it does not. Set it before translating.
 */
void bt_set_stable_fn(struct bt *bt, bt_stable_fn stable);

/*
 * bt_insn_sum - FNV-1a checksum of len bytes of guest instruction (len <=
 * 15). exit_insn() records it in the exit descriptor; the monitor compares
 * it with the bytes it re-fetches before it emulates, since the guest can
 * change the bytes, or their mapping, behind a translation (a stale
 * translation's exit reason says nothing about the new instruction).
 */
uint32_t bt_insn_sum(const uint8_t *bytes, uint32_t len);

/*
 * bt_translate - translate the basic block starting at guest_eip (32-bit
 * code) and commit it to the TC (may flush the TC first: eviction).
 * Returns 0 and *out, or E_NOENT if not one byte of code could be fetched.
 * A block ends at any control transfer or monitor exit, at a page crossing,
 * or after TC_BLOCK_MAX_INSNS instructions.
 */
int bt_translate(struct bt *bt, uint32_t guest_eip, struct tc_block **out);

/*
 * bt_run - run the guest from vcpu->eip until an exit the monitor must
 * handle, or until max_dispatch entries into translated code (0: no limit).
 * Every dispatch first checks vcpu->irq_pending with the virtual IF set
 * (BT_EXIT_IRQ_WINDOW at vcpu->eip): the monitor clears irq_pending when
 * it delivers the interrupt.
 * Returns the enum bt_exit_reason (BT_EXIT_NONE when the budget ran out);
 * vcpu->gpr/eflags hold the guest registers, vcpu->eip the guest EIP the
 * reason is about (see enum bt_exit_reason), bt->exit the descriptor
 * (reason, len, aux, rm_reg; valid until the next bt_run or tc_flush),
 * vcpu->exit_ea the memory operand's offset.
 * Chains direct-branch exits and fills the IBL table on the way.
 * vcpu->exit_desc is checked before use (ring-1 code can write bt_vcpu):
 * anything but a descriptor of the current TC generation, ibl_miss_exit or
 * bt->monitor_exit returns BT_EXIT_BAD_DESC (the forged value in
 * bt->exit->target), a guest fault for the monitor to stop the VM with.
 * Other bt_vcpu fields it reads are guest values (eip, ibl_target: guest
 * addresses to translate) or monitor requests (exit_req, irq_pending).
 */
int bt_run(struct bt *bt, uint32_t max_dispatch);

/*
 * bt_request_exit - make running translated code come back to bt_run at
 * its next block end (unchains everything, empties the IBL table). For the
 * monitor's interrupt handler when it makes a virtual interrupt pending
 * while translated code runs: bt_run then returns BT_EXIT_IRQ_WINDOW at a
 * guest instruction boundary if the virtual IF is set. Chains come back
 * lazily as blocks are dispatched again.
 */
void bt_request_exit(struct bt *bt);

/*
 * bt_stop_at - an interrupt stopped translated code at *tca (a linear TC
 * address, where it resumes), not at a guest instruction boundary
 * (tc_insn_boundary), and the monitor wants it back: arrange for it to
 * leave soon without unchaining the whole cache, and set exit_req, which
 * bt_run takes at its next dispatch. The code at *tca is a block's body or
 * stubs (BT_STOP_BLOCK: that block exits at its end: its chained exits
 * are unchained and its jump to the lookup stub goes to the stub's miss
 * path, until bt_run takes exit_req), the shared lookup stub
 * (BT_STOP_LOOKUP: *tca is moved to its miss path, or at its last jump the
 * block it jumps to is stopped) or on its way out already
 * (BT_STOP_EXITING: the miss exit, the exit routine). Call with the
 * translated code interrupted, never running; resume it at *tca.
 */
enum { BT_STOP_BLOCK, BT_STOP_LOOKUP, BT_STOP_EXITING };
int bt_stop_at(struct bt *bt, uint32_t *tca);

/* bt_exit_name - "hlt", "io", ...; "?" if out of range. */
const char *bt_exit_name(unsigned reason);

#endif
