/*
 * Binary translator: guest CPL0 basic blocks -> translation cache.
 *
 * Map of this file:
 *   emitter      e8/e32, e_state (an instruction with a [state] operand),
 *                e_stub (exit stub), e_flags_save/e_flags_restore
 *   rules        the opcode table: what each opcode becomes (enum rule)
 *   handlers     one per rule: ident, branches, indirect, cli/sti,
 *                pushf/popf, segment and CR reads, exits
 *   blocks       bt_translate: decode, pick a rule, emit, record imap
 *   shared stub  the indirect-branch lookup (emit_ibl_stub)
 *   dispatcher   bt_run
 *
 * Invariants every expansion keeps (docs/bt.md "Precise faults"):
 *   1. guest registers and guest arithmetic flags are live in the real ones
 *      between guest instructions; an expansion that needs a register saves
 *      it in struct bt_vcpu and restores it before the next guest insn;
 *   2. only ONE emitted instruction of an expansion touches guest memory,
 *      and it comes before any guest-visible change (so a fault there is a
 *      fault of the guest instruction with the registers untouched), or the
 *      guest memory it touches was just accessed by that instruction
 *      (PUSHF's read-modify-write of the slot it pushed);
 *   3. helper code changes real EFLAGS only between a save and a restore
 *      (LAHF/SETO ... ADD AL,7Fh/SAHF) or where the guest insn itself
 *      replaces them (POPF); DF is never touched except by POPF;
 *   4. every exit stub is [pfx] C7 05 <exit_desc> <desc>; [pfx] FF 25
 *      <exit_entry>: its first 5 bytes are patchable into JMP rel32.
 */
#include "bt/translate.h"
#include "bt/decode.h"
#include "kernel/kernel.h"
#include "kernel/layout.h"
#include "kernel/x86.h"

_Static_assert(offsetof(struct bt_vcpu, gpr) == BT_OFF_GPR, "BT_OFF_GPR");
_Static_assert(offsetof(struct bt_vcpu, eflags) == BT_OFF_EFLAGS, "BT_OFF_EFLAGS");
_Static_assert(offsetof(struct bt_vcpu, eip) == BT_OFF_EIP, "BT_OFF_EIP");
_Static_assert(offsetof(struct bt_vcpu, exit_entry) == BT_OFF_EXIT_ENTRY, "BT_OFF_EXIT_ENTRY");
_Static_assert(offsetof(struct bt_vcpu, exit_desc) == BT_OFF_EXIT_DESC, "BT_OFF_EXIT_DESC");
_Static_assert(offsetof(struct bt_vcpu, entry_tca) == BT_OFF_ENTRY_TCA, "BT_OFF_ENTRY_TCA");
_Static_assert(offsetof(struct bt_vcpu, host_esp) == BT_OFF_HOST_ESP, "BT_OFF_HOST_ESP");
_Static_assert(offsetof(struct bt_vcpu, exit_esp) == BT_OFF_EXIT_ESP, "BT_OFF_EXIT_ESP");

/* x86 encodings used by the emitter (SDM Vol. 2). */
enum {
    R_EAX = 0, R_ECX = 1, R_ESP = 4, R_AH = 4, /* ModRM.reg numbers */
    OP_ADD_AL_IMM8 = 0x04, OP_AND_EAX_IMM32 = 0x25, OP_TEST_EAX_IMM32 = 0xA9, OP_JCC8 = 0x70, OP_JNE8 = 0x75,
    OP_MOV_RM_R = 0x89, OP_MOV_R8_RM = 0x8A, OP_MOV_R_RM = 0x8B, OP_OR_R_RM = 0x0B,
    OP_CMP_R_RM = 0x3B, OP_TEST_R_RM = 0x85, OP_LEA = 0x8D, OP_POP_RM = 0x8F, OP_PUSHF = 0x9C, OP_SAHF = 0x9E,
    OP_LAHF = 0x9F, OP_MOV_RM_IMM32 = 0xC7, OP_JECXZ = 0xE3, OP_JMP32 = 0xE9,
    OP_JMP8 = 0xEB, OP_PUSH_IMM32 = 0x68, OP_GRP_FF = 0xFF, OP_GRP_F6 = 0xF6,
    OP_STD = 0xFD, OP_CLD = 0xFC, OP_2BYTE = 0x0F, OP_SETO = 0x90, OP_MOVZX8 = 0xB6,
    OP_MOVZX16 = 0xB7, OP_BSWAP_ECX = 0xC9, OP_SHIFT_IMM = 0xC1, OP_GRP1_IMM8 = 0x83, OP_GRP1_IMM32 = 0x81, OP_GRP1_IMM8_RM8 = 0x80, OP_OR_R8_RM = 0x0A, OP_MOV_RM_SREG = 0x8C, OP_MOV_SREG_RM = 0x8E,
    SREG_ES = 0, SREG_SS = 2, SREG_DS = 3, SREG_FS = 4, SREG_GS = 5,
    R_EDX = 2, R_ESI = 6, R_EDI = 7, GRP1_CMP = 7, F7_TEST = 0,
    OP_PUSH_EAX = 0x50, OP_POP_EAX = 0x58, OP_PUSH_ES = 0x06, OP_POP_ES = 0x07, OP_POPF = 0x9D,
    OP_MOV_ESP_IMM32 = 0xBC, OP_MOV_ESI_IMM32 = 0xBE, OP_XOR_R_RM = 0x31, OP_GRP_F7 = 0xF7,
    OP_CMPSD = 0xA7, OP_IRET = 0xCF, OP_JCC32 = 0x80, PFX_REP = 0xF3, PFX_SS = 0x36,
    CC_E = 0x4, CC_NE = 0x5, CC_A = 0x7,
    PFX_OPSIZE = 0x66, PFX_ADSIZE = 0x67, PFX_CS = 0x2E, PFX_DS = 0x3E, PFX_GS = 0x65,
    FF_PUSH = 6, FF_JMP = 4, MODRM_DISP32 = 0x05, SIB_NOBASE_X2_ECX = 0x4D, SIB_NOBASE_X4_ECX = 0x8D,
    SIB_NOBASE_X4_EAX = 0x85,
};

#define SF(field) ((uint32_t)offsetof(struct bt_vcpu, field))
#define BLOCK_CODE_SLACK 256u /* bytes kept free for the largest expansion */
#define BT_FETCH_CHUNK 128u  /* bytes of guest code fetched ahead at once (fetch_insn_bytes) */

/* ---------------------------------------------------------------- emitter */

struct emit {
    uint8_t *p;        /* next byte (in the scratch buffer while a block is built) */
    uint8_t *start;    /* where the code being emitted starts */
    uint8_t *tca;      /* where start will be executed from */
    const struct bt *bt;
};

/* The address p will have once the code is in place (for rel32 and stubs). */
static uint8_t *e_final(const struct emit *e, const uint8_t *p) { return e->tca + (p - e->start); }

static void e8(struct emit *e, uint8_t b) { *e->p++ = b; }
static void e32(struct emit *e, uint32_t v)
{
    memcpy(e->p, &v, sizeof(v));
    e->p += sizeof(v);
}

static void e_pfx(struct emit *e)
{
    if (e->bt->cfg.state_seg_prefix)
        e8(e, e->bt->cfg.state_seg_prefix);
}

/* [pfx] op modrm(00, reg, disp32) disp32 — one operand is a state field. */
static void e_state(struct emit *e, uint8_t op, uint8_t reg, uint32_t off)
{
    e_pfx(e);
    e8(e, op);
    e8(e, (uint8_t)(reg << 3 | MODRM_DISP32));
    e32(e, e->bt->cfg.state_base + off);
}

/* Same with a two-byte (0F xx) opcode. */
static void e_state0f(struct emit *e, uint8_t op, uint8_t reg, uint32_t off)
{
    e_pfx(e);
    e8(e, OP_2BYTE);
    e8(e, op);
    e8(e, (uint8_t)(reg << 3 | MODRM_DISP32));
    e32(e, e->bt->cfg.state_base + off);
}

static void e_store_imm(struct emit *e, uint32_t off, uint32_t imm)
{
    e_state(e, OP_MOV_RM_IMM32, 0, off);
    e32(e, imm);
}

/* Bytes of one exit stub (invariant 4). */
static uint32_t stub_len(const struct bt *bt)
{
    return 16u + (bt->cfg.state_seg_prefix ? 2u : 0u);
}

static void e_stub(struct emit *e, struct bt_exit *x)
{
    uint8_t *s = e->p;
    e_store_imm(e, SF(exit_desc), (uint32_t)(uintptr_t)x);
    e_state(e, OP_GRP_FF, FF_JMP, SF(exit_entry));
    x->stub_tca = e_final(e, s);
    /* Unchaining restores the head all stubs share (tc_set_stub_head in bt_init). */
    KASSERT(!memcmp(s, e->bt->tc.stub_head, sizeof(e->bt->tc.stub_head)));
}

/* Forward branches: the emitters return where the displacement goes, and
 * e_patch8/e_patch32 point it at the current position (the label). */
static uint8_t *e_jcc8(struct emit *e, uint8_t cc)
{
    e8(e, (uint8_t)(OP_JCC8 | cc));
    return e->p++;
}

static void e_patch8(struct emit *e, uint8_t *rel)
{
    KASSERT(e->p - (rel + 1) <= 127);
    *rel = (uint8_t)(e->p - (rel + 1));
}

static uint8_t *e_jmp32_fwd(struct emit *e)
{
    e8(e, OP_JMP32);
    uint8_t *rel = e->p;
    e->p += 4;
    return rel;
}

static void e_patch32(struct emit *e, uint8_t *rel)
{
    uint32_t d = (uint32_t)(e->p - (rel + 4));
    memcpy(rel, &d, 4);
}

static uint8_t *e_jcc32_fwd(struct emit *e, uint8_t cc)
{
    e8(e, OP_2BYTE), e8(e, (uint8_t)(OP_JCC32 | cc));
    uint8_t *rel = e->p;
    e->p += 4;
    return rel;
}

/* Save EAX and the arithmetic flags (AH <- SF ZF AF PF CF, AL <- OF). */
static void e_flags_save(struct emit *e)
{
    e_state(e, OP_MOV_RM_R, R_EAX, SF(save_eax));
    e8(e, OP_LAHF);
    e8(e, OP_2BYTE), e8(e, OP_SETO), e8(e, 0xC0); /* seto al */
    e_state(e, OP_MOV_RM_R, R_EAX, SF(save_flags));
}

/* Load the arithmetic flags from save_flags (OF: 1 + 7Fh overflows), then EAX. */
static void e_flags_restore(struct emit *e)
{
    e_state(e, OP_MOV_R_RM, R_EAX, SF(save_flags));
    e8(e, OP_ADD_AL_IMM8), e8(e, 0x7F);
    e8(e, OP_SAHF);
    e_state(e, OP_MOV_R_RM, R_EAX, SF(save_eax));
}

/* The DS swap of a guest access through a segment ring 1 cannot use as it
 * is (h_seg_alias): DS saved in ds_save, in_swap set, DS loaded from the
 * state field alias_off; e_ds_unswap undoes it. MOVs only: no flags. */
static void e_ds_swap(struct emit *e, uint32_t alias_off)
{
    e_state(e, OP_MOV_RM_SREG, SREG_DS, SF(ds_save));
    e_store_imm(e, SF(in_swap), 1);
    e_state(e, OP_MOV_SREG_RM, SREG_DS, alias_off);
}

static void e_ds_unswap(struct emit *e)
{
    e_state(e, OP_MOV_SREG_RM, SREG_DS, SF(ds_save));
    e_store_imm(e, SF(in_swap), 0);
}

static void e_jmp_to(struct emit *e, const uint8_t *target)
{
    e8(e, OP_JMP32);
    e32(e, (uint32_t)((uintptr_t)target - ((uintptr_t)e_final(e, e->p) + 4)));
}

/* ---------------------------------------------------------------- rules */

enum rule {
    RULE_IDENT = 0,   /* copy as is */
    RULE_JMP,         /* JMP rel */
    RULE_JCC,         /* Jcc rel */
    RULE_CALL,        /* CALL rel */
    RULE_LOOP,        /* LOOP/LOOPcc/JECXZ rel8 */
    RULE_RET,         /* RET / RET imm16 */
    RULE_GRP_FF,      /* FF /2 /3 /4 /5 indirect near/far, else ident */
    RULE_CLI,
    RULE_STI,
    RULE_PUSHF,
    RULE_POPF,
    RULE_PUSH_SREG,   /* PUSH Sreg: virtual selector */
    RULE_MOV_FROM_SREG, /* 8C: register form inline, memory form exits */
    RULE_MOV_FROM_CR, /* 0F 20: virtual CRn */
    RULE_MOV_TO_CR,   /* 0F 22: exit, CR3 with its own reason */
    RULE_GRP_0F01,    /* 0F 01 group */
    RULE_NATIVE,      /* sensitive, but what the CPU gives is what the guest gets: copied */
    RULE_SEG_LOAD,    /* MOV Sreg, r/m and POP Sreg: native for DS/ES/FS where allowed, else exit SEG */
    RULE_GRP6,        /* 0F 00: VERW inline where seg_verw knows the answer, the rest exit DESC */
    RULE_IRET,        /* IRET: inline back to the same CS (bt_config.inline_iret), else exit IRET */
    RULE_EXIT,        /* end the block, exit with the table's reason */
};

struct rule_entry {
    uint8_t rule;     /* enum rule */
    uint8_t reason;   /* enum bt_exit_reason for RULE_EXIT */
    uint8_t aux;      /* RULE_EXIT: bt_exit.aux (INT vector); sreg number */
};

#define EXIT(r) { RULE_EXIT, BT_EXIT_##r, 0 }

/* One-byte map (SDM Vol. 2D Table A-2). */
static const struct rule_entry rules_primary[256] = {
    [0x06] = { RULE_PUSH_SREG, 0, BT_ES }, [0x0E] = { RULE_PUSH_SREG, 0, BT_CS },
    [0x16] = { RULE_PUSH_SREG, 0, BT_SS }, [0x1E] = { RULE_PUSH_SREG, 0, BT_DS },
    [0x07] = { RULE_SEG_LOAD, BT_EXIT_SEG, BT_ES }, [0x17] = EXIT(SEG), /* POP ES, POP SS */
    [0x1F] = { RULE_SEG_LOAD, BT_EXIT_SEG, BT_DS },                     /* POP DS */
    [0x6C ... 0x6F] = EXIT(IO),                                           /* INS/OUTS */
    [0x70 ... 0x7F] = { RULE_JCC, 0, 0 },
    [0x8C] = { RULE_MOV_FROM_SREG, BT_EXIT_SEG, 0 }, [0x8E] = { RULE_SEG_LOAD, BT_EXIT_SEG, 0 },
    [0x9A] = EXIT(FAR), [0x9C] = { RULE_PUSHF, 0, 0 }, [0x9D] = { RULE_POPF, 0, 0 },
    [0xC2] = { RULE_RET, 0, 0 }, [0xC3] = { RULE_RET, 0, 0 },
    [0xC4] = EXIT(SEG), [0xC5] = EXIT(SEG),                              /* LES/LDS */
    [0xCA] = EXIT(FAR), [0xCB] = EXIT(FAR),                              /* RETF */
    [0xCC] = { RULE_EXIT, BT_EXIT_INT, 3 }, [0xCD] = EXIT(INT),
    [0xCE] = { RULE_EXIT, BT_EXIT_INT, 4 }, [0xF1] = { RULE_EXIT, BT_EXIT_INT, 1 },
    [0xCF] = { RULE_IRET, BT_EXIT_IRET, 0 },
    [0xE0 ... 0xE3] = { RULE_LOOP, 0, 0 },
    [0xE4 ... 0xE7] = EXIT(IO), [0xEC ... 0xEF] = EXIT(IO),
    [0xE8] = { RULE_CALL, 0, 0 }, [0xE9] = { RULE_JMP, 0, 0 }, [0xEA] = EXIT(FAR),
    [0xEB] = { RULE_JMP, 0, 0 },
    [0xF4] = EXIT(HLT), [0xFA] = { RULE_CLI, 0, 0 }, [0xFB] = { RULE_STI, 0, 0 },
    [0xFF] = { RULE_GRP_FF, 0, 0 },
};

/* Two-byte map 0F xx (SDM Vol. 2D Table A-3). */
static const struct rule_entry rules_0f[256] = {
    [0x00] = { RULE_GRP6, BT_EXIT_DESC, 0 }, [0x01] = { RULE_GRP_0F01, 0, 0 },
    [0x02] = EXIT(DESC), [0x03] = EXIT(DESC),                           /* LAR/LSL */
    [0x05] = EXIT(SYSENTER), [0x07] = EXIT(SYSENTER),                   /* SYSCALL/SYSRET */
    [0x06] = EXIT(MOV_CR),                                               /* CLTS */
    [0x08] = EXIT(EMULATE), [0x09] = EXIT(EMULATE),                     /* INVD/WBINVD */
    [0x20] = { RULE_MOV_FROM_CR, 0, 0 }, [0x22] = { RULE_MOV_TO_CR, 0, 0 },
    [0x21] = EXIT(EMULATE), [0x23] = EXIT(EMULATE),                     /* MOV DRn */
    [0x30] = EXIT(MSR), [0x31] = { RULE_NATIVE, 0, 0 } /* RDTSC: the guest's TSC is the host's */, [0x32] = EXIT(MSR), [0x33] = EXIT(RDTSC),
    [0x34] = EXIT(SYSENTER), [0x35] = EXIT(SYSENTER),
    [0x80 ... 0x8F] = { RULE_JCC, 0, 0 },
    [0xA0] = { RULE_PUSH_SREG, 0, BT_FS }, [0xA8] = { RULE_PUSH_SREG, 0, BT_GS },
    [0xA1] = { RULE_SEG_LOAD, BT_EXIT_SEG, BT_FS }, [0xA9] = { RULE_SEG_LOAD, BT_EXIT_SEG, BT_GS }, /* POP FS/GS */
    [0xA2] = EXIT(CPUID), [0xAA] = EXIT(EMULATE),                       /* RSM */
    [0xB2] = EXIT(SEG), [0xB4] = EXIT(SEG), [0xB5] = EXIT(SEG),         /* LSS/LFS/LGS */
};

/* 0F 01 by ModRM.reg, memory forms and SMSW/LMSW (SDM Vol. 2D Table A-6, group 7). */
static const struct rule_entry rules_grp7_mem[8] = {
    [0] = EXIT(DESC), [1] = EXIT(DESC), [2] = EXIT(DESC), [3] = EXIT(DESC),
    [4] = EXIT(MOV_CR), [5] = EXIT(EMULATE), [6] = EXIT(MOV_CR), [7] = EXIT(INVLPG),
};

#define INSN_NEEDS_MONITOR (DEC_A_PRIV | DEC_A_SENSITIVE | DEC_A_IO | DEC_A_SEGLOAD)

/* ---------------------------------------------------------------- handlers */

struct xlate {
    struct bt *bt;
    struct emit e;
    struct tc_block *b;
    struct dec_insn insn;
    const uint8_t *bytes;  /* the instruction's bytes */
    uint32_t eip;          /* gva of the instruction */
    uint32_t next;         /* gva of the following one */
    bool sti_shadow;       /* previous insn was STI: check interrupts after this one */
    uint32_t side_stubs;   /* Jcc stubs still to emit after the block's end (h_jcc) */
    bool fault;            /* first instruction not fetchable */
    /* Guest code fetched ahead (fetch_decode): chunk_len bytes at chunk_eip;
     * chunk_end: the fetch stopped short there (an unreadable byte or the
     * CS limit), so no instruction gets more bytes than the chunk has. */
    uint32_t chunk_eip, chunk_len;
    bool chunk_end;
    uint8_t chunk[BT_FETCH_CHUNK];
    /* A short callee being translated inline (h_call, docs/bt.md "Short
     * callees inline"): x->eip is in it until its RET at callee_ret, which
     * goes on with the caller's call_next. */
    bool in_callee;
    bool callee_stores_ret; /* it stores through ESP: its RET ends the block as a lookup */
    uint32_t callee_ret, call_next;
    uint32_t callee_left;   /* instructions of the path not yet translated */
    uint32_t callee_taken, callee_jcc; /* the path's Jcc's taken (inline_path.taken), and how
                                        * many of them were translated */
};

enum { CONTINUE = 0, END_BLOCK = 1 };

static struct bt_exit *new_exit(struct xlate *x, uint8_t reason, uint32_t eip)
{
    struct bt_exit *ex = tc_alloc_exit(&x->bt->tc);
    ex->reason = reason;
    ex->eip = eip;
    ex->from = x->b;
    return ex;
}

/* Exit stub to the dispatcher for a direct branch to target (chainable). */
static void e_branch_stub(struct xlate *x, uint32_t target)
{
    struct bt_exit *ex = new_exit(x, BT_EXIT_BRANCH, x->eip);
    ex->target = target;
    e_stub(&x->e, ex);
}

/* Copy the ModRM, SIB and displacement bytes with ModRM.reg replaced. */
static void e_modrm_copy(struct xlate *x, uint8_t reg)
{
    const struct dec_insn *in = &x->insn;
    e8(&x->e, (uint8_t)((in->modrm & 0xC7) | reg << 3));
    if (in->has_sib)
        e8(&x->e, in->sib);
    for (uint8_t i = 0; i < in->disp_size; i++)
        e8(&x->e, x->bytes[in->disp_off + i]);
}

/* Segment-override prefix bytes by Sreg number (SDM Vol. 2A §2.1.1). */
static const uint8_t seg_prefix_byte[BT_NSREG] = { 0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65 };

/* The guest's segment-override and address-size prefixes of its memory
 * operand, for an instruction re-encoded around that operand. */
static void e_mem_prefixes(struct xlate *x)
{
    const struct dec_insn *in = &x->insn;
    if (in->has_mem && (in->prefixes & DEC_PFX_SEG)) {
        uint8_t p = seg_prefix_byte[in->seg - DEC_REG_ES];
        e8(&x->e, p == PFX_CS && x->bt->cfg.rewrite_cs_override ? PFX_DS : p);
    }
    if (in->prefixes & DEC_PFX_ADSIZE)
        e8(&x->e, PFX_ADSIZE);
}

static int h_ident(struct xlate *x)
{
    const struct dec_insn *in = &x->insn;
    memcpy(x->e.p, x->bytes, in->len);
    /* CS is the TC segment in the monitor; the state segment is the
     * monitor's vCPU area. Neither prefix reaches a copied instruction: one
     * whose memory access goes through the state segment never gets here
     * (translate_insn), so a state prefix left is one a later override
     * replaced or one of an instruction that addresses nothing (LEA, NOP,
     * PREFETCH), and DS means the same to it. */
    uint8_t state_pfx = x->bt->cfg.state_seg_prefix;
    for (uint8_t i = 0; i < in->num_prefixes; i++)
        if ((x->e.p[i] == PFX_CS && x->bt->cfg.rewrite_cs_override) || (state_pfx && x->e.p[i] == state_pfx))
            x->e.p[i] = PFX_DS;
    x->e.p += in->len;
    return in->cf == DEC_CF_UD ? END_BLOCK : CONTINUE;
}

/*
 * CMPXCHG8B, copied, then its flags rewritten through LAHF/SETO ... SAHF.
 * QEMU 7.2's TCG leaves junk above the arithmetic flags in its lazy flags
 * state after CMPXCHG8B; the next EFLAGS image the CPU builds (the INT of
 * an exit stub, an interrupt frame) carries it, DF and TF included, and
 * the iret that resumes the guest then loads them: Linux's SLUB fast path
 * ran on with DF=1 and wiped its stack with a backwards memset. Reading
 * and reloading the flags normalizes that state (ZF, which CMPXCHG8B
 * defines, is kept; on hardware this is a no-op).
 */
static int h_cmpxchg8b(struct xlate *x)
{
    int r = h_ident(x);
    e_flags_save(&x->e);
    e_flags_restore(&x->e);
    return r;
}

uint32_t bt_insn_sum(const uint8_t *bytes, uint32_t len)
{
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < len; i++)
        h = (h ^ bytes[i]) * 16777619u;
    return h;
}

/* The exit descriptor of this instruction: the monitor emulates it. */
static struct bt_exit *insn_exit(struct xlate *x, uint8_t reason, uint8_t aux)
{
    const struct dec_insn *in = &x->insn;
    struct bt_exit *ex = new_exit(x, reason, x->eip);
    ex->len = in->len;
    ex->insn_sum = bt_insn_sum(x->bytes, in->len);
    ex->aux = aux;
    ex->rm_reg = (in->has_modrm && in->mod == 3) ? (uint8_t)(DEC_REG_EAX + in->rm) : DEC_REG_NONE;
    return ex;
}

/* Exit to the monitor at this instruction; computes its memory operand's
 * offset into exit_ea with LEA (never faults, changes no flags). */
static void e_exit_insn(struct xlate *x, uint8_t reason, uint8_t aux)
{
    const struct dec_insn *in = &x->insn;
    if (in->has_mem && in->has_modrm && in->mod != 3) { /* not XLAT, MASKMOVQ: no ModRM memory */
        e_state(&x->e, OP_MOV_RM_R, R_EAX, SF(save_eax));
        if (in->prefixes & DEC_PFX_ADSIZE)
            e8(&x->e, PFX_ADSIZE);
        e8(&x->e, OP_LEA);
        e_modrm_copy(x, R_EAX);
        e_state(&x->e, OP_MOV_RM_R, R_EAX, SF(exit_ea));
        e_state(&x->e, OP_MOV_R_RM, R_EAX, SF(save_eax));
    }
    e_stub(&x->e, insn_exit(x, reason, aux));
}

static int exit_insn(struct xlate *x, uint8_t reason, uint8_t aux)
{
    e_exit_insn(x, reason, aux);
    return END_BLOCK;
}

/* SYSEXIT at CPL 0 with the return stub: its exit descriptor in r3_desc,
 * then the stub (emit_r3_stub), which returns to ring 3 or takes that exit. */
static int h_sysexit(struct xlate *x, uint8_t aux)
{
    e_store_imm(&x->e, SF(r3_desc), (uint32_t)(uintptr_t)insn_exit(x, BT_EXIT_SYSENTER, aux));
    e_jmp_to(&x->e, x->bt->r3_stub);
    return END_BLOCK;
}

static int h_exit(struct xlate *x, const struct rule_entry *r)
{
    const struct dec_insn *in = &x->insn;
    uint8_t aux = r->aux;
    if (in->cf == DEC_CF_SYSEXIT && x->bt->r3_stub && !x->bt->cpl3)
        return h_sysexit(x, aux);
    if (in->has_modrm)
        aux = in->reg;                      /* group member, CR or Sreg number */
    else if (in->imm_size == 1)
        aux = x->bytes[in->imm_off];        /* INT n vector, IN/OUT port */
    return exit_insn(x, r->reason, aux);
}

/* Inside an inlined callee (on inline_scan's path: translate_body ends the
 * block where it is not) a JMP emits nothing, and the block goes on at the
 * target. */
static int h_jmp(struct xlate *x)
{
    uint32_t target;
    decode_branch_target(&x->insn, &target);
    if (x->in_callee && (target & PAGE_MASK) == x->b->inl_gva) {
        x->next = target;
        return CONTINUE;
    }
    e_branch_stub(x, target);
    return END_BLOCK;
}

/* jcc rel32 <its taken stub, after the block's end>; then the block goes
 * on with the fall-through (docs/bt.md "Conditional branches inside a
 * block"): the branch not taken runs on in the same block, and chaining
 * points the Jcc itself at the target's translation (tc_chain). */
static int h_jcc(struct xlate *x)
{
    uint32_t target;
    uint8_t cc = x->insn.opcode & 0x0F;
    decode_branch_target(&x->insn, &target);
    /* On an inlined callee's path through its taken side: the opposite
     * condition leaves for the fall-through, and the block goes on at the
     * target (SDM Vol. 2A Jcc: condition codes pair up by their low bit). */
    if (x->in_callee && (x->callee_taken >> x->callee_jcc++ & 1)) {
        uint32_t t = target;
        target = x->next, x->next = t;
        cc ^= 1;
    }
    struct bt_exit *ex = new_exit(x, BT_EXIT_BRANCH, x->eip);
    ex->target = target;
    ex->jcc_rel = e_final(&x->e, e_jcc32_fwd(&x->e, cc));
    x->side_stubs++;
    return CONTINUE;
}

/* The stubs of the block's Jcc's taken sides (h_jcc), after its end, each
 * Jcc's rel32 pointed at its stub. */
static void e_side_stubs(struct xlate *x)
{
    struct tc_block *b = x->b;
    for (uint8_t i = 0; i < b->nexits; i++) {
        struct bt_exit *ex = &b->exits[i];
        if (!ex->jcc_rel || ex->stub_tca)
            continue;
        uint8_t *rel = x->e.start + (ex->jcc_rel - x->e.tca);
        e_patch32(&x->e, rel);
        e_stub(&x->e, ex);
    }
    x->side_stubs = 0;
}

/* [67] loop/jecxz +2; jmp short +stub_len; <taken stub>; <fall-through stub> */
static int h_loop(struct xlate *x)
{
    uint32_t target;
    decode_branch_target(&x->insn, &target);
    if (x->insn.prefixes & DEC_PFX_ADSIZE)
        e8(&x->e, PFX_ADSIZE);
    e8(&x->e, x->insn.opcode);
    e8(&x->e, 2);
    e8(&x->e, OP_JMP8);
    e8(&x->e, (uint8_t)stub_len(x->bt));
    e_branch_stub(x, target);
    e_branch_stub(x, x->next);
    return END_BLOCK;
}

static int fetch_decode(struct xlate *x);
static const struct rule_entry *rule_of(const struct dec_insn *in);
static bool uses_state_seg(const struct xlate *x);
static bool copied_as_is(const struct xlate *x, const struct rule_entry *r);

/* A callee's instruction that may be translated inline: what the block
 * would copy as it is (no exit, no control flow, nothing privileged or
 * sensitive, nothing through the state segment or the guest's CS), or a
 * Jcc, whose taken side leaves the block by its exit stub like any other. */
static bool inline_ok(const struct xlate *s)
{
    const struct rule_entry *r = rule_of(&s->insn);
    if (r->rule == RULE_JCC)
        return true;
    if (s->insn.cf != DEC_CF_NONE || uses_state_seg(s) || (s->insn.has_mem && s->insn.mem.seg == DEC_REG_CS))
        return false;
    return copied_as_is(s, r);
}

#define INLINE_MAX_JCC 4u       /* Jcc's along a path (taken's bits) */
#define INLINE_SCAN_STEPS 48u   /* instructions decoded per scan, all paths tried */

/*
 * inline_scan - is the code at target a short leaf function: a path of at
 * most BT_INLINE_MAX_INSNS instructions to a near RET (C3, 32-bit
 * operand), each inline_ok, that goes on past a Jcc on either side (the
 * fall-through tried first) and past a direct JMP, all in the page of
 * target (the block records one page of callees: tc_block.inl_gva)?
 * Depth-first over the Jcc's, at most INLINE_MAX_JCC along a path and
 * INLINE_SCAN_STEPS decoded in all. Returns true with *p. p->stores_esp:
 * a retpoline thunk, "mov %eax,(%esp); ret", returns to where it stored,
 * never to its caller. Reads guest code through bt->fetch like the block.
 */
static bool inline_scan(const struct xlate *x, uint32_t target, struct bt_inline_path *p)
{
    struct xlate s; /* a few hundred bytes of a 16 KiB stack; what fetch_decode uses is set */
    s.bt = x->bt, s.chunk_eip = s.chunk_len = 0, s.chunk_end = false;
    struct bt_inline_path cur = { .lo = 0xFFFF }, alt[INLINE_MAX_JCC]; /* alt: a Jcc's taken side, untried */
    uint32_t alt_eip[INLINE_MAX_JCC], alt_jcc[INLINE_MAX_JCC], nalt = 0;
    uint32_t jcc = 0, steps = 0, page = target & PAGE_MASK, eip = target;
    for (;;) {
        uint32_t t;
        bool ok = cur.n < BT_INLINE_MAX_INSNS && steps++ < INLINE_SCAN_STEPS && (eip & PAGE_MASK) == page;
        if (ok) {
            s.eip = eip;
            ok = fetch_decode(&s) == 1 && ((s.next - 1) & PAGE_MASK) == page;
        }
        if (ok) {
            const struct rule_entry *r = rule_of(&s.insn);
            cur.n++;
            cur.lo = MIN(cur.lo, (uint16_t)(eip - page));
            cur.hi = MAX(cur.hi, (uint16_t)(s.next - page));
            if (r->rule == RULE_RET) {
                if (s.insn.opcode == 0xC3 && s.insn.opsize == 4) {
                    cur.ret_eip = eip;
                    *p = cur;
                    return true;
                }
            } else if (r->rule == RULE_JMP) {
                if (decode_branch_target(&s.insn, &t) == 0) {
                    eip = t;
                    continue;
                }
            } else if (r->rule == RULE_JCC) {
                if (jcc < INLINE_MAX_JCC && decode_branch_target(&s.insn, &t) == 0) {
                    alt[nalt] = cur;
                    alt[nalt].taken |= 1u << jcc;
                    alt_eip[nalt] = t;
                    alt_jcc[nalt++] = ++jcc;
                    eip = s.next; /* the fall-through first */
                    continue;
                }
            } else if (inline_ok(&s)) {
                cur.stores_esp |= s.insn.has_mem && s.insn.mem.base == DEC_REG_ESP && (s.insn.attr & DEC_A_MEM_WRITE);
                eip = s.next;
                continue;
            }
        }
        /* This path fails: on to the taken side of its last Jcc not tried yet. */
        if (nalt == 0)
            return false;
        nalt--;
        cur = alt[nalt], eip = alt_eip[nalt], jcc = alt_jcc[nalt];
    }
}

/* Bytes one inlined instruction's translation may take at most (the
 * largest inline_ok expansion, CMPXCHG8B's, is under 40), and an inlined
 * RET's (h_ret_inline, 46 with a state-segment prefix). */
#define INLINE_INSN_BYTES 48u
#define INLINE_RET_BYTES 64u

/*
 * After a CALL's push: translate its callee into this block when it is a
 * short leaf (inline_scan) whose page is the block's one page of callees
 * (or the first), the block has room for it, and nothing asks for a
 * single instruction. Returns true with the translation moved to the
 * callee (x->next, x->in_callee); its RET comes back (h_ret_inline).
 */
static bool inline_callee(struct xlate *x, uint32_t target)
{
    struct tc_block *b = x->b;
    uint32_t page = target & PAGE_MASK;
    if (!x->bt->inline_calls || x->bt->one_insn || x->in_callee || (b->inl_hi && page != b->inl_gva) ||
        b->ninsns + 2u > TC_BLOCK_MAX_INSNS)
        return false;
    struct bt_inline_memo scratch = { 0 }, *m = &scratch;
    if (x->bt->inline_memo)
        m = &x->bt->inline_memo[(target ^ target >> 10) & (x->bt->inline_memo_n - 1)];
    if (m->target != target || m->gen != x->bt->tc.generation + 1) {
        m->target = target;
        m->gen = x->bt->tc.generation + 1;
        m->ok = inline_scan(x, target, &m->path);
        x->bt->stats.inline_scans++;
    }
    if (!m->ok)
        return false;
    struct bt_inline_path p = m->path;
    uint32_t n = p.n;
    /* Room for the callee, each of its instructions a Jcc with a stub at worst. */
    uint32_t code = (uint32_t)(x->e.p - x->e.start) + (x->side_stubs + n) * stub_len(x->bt) +
                    n * INLINE_INSN_BYTES + INLINE_RET_BYTES;
    if (b->ninsns + n + 1 > TC_BLOCK_MAX_INSNS || code > TC_BLOCK_MAX_CODE - BLOCK_CODE_SLACK)
        return false;
    if (!b->inl_hi) {
        b->inl_gva = page;
        b->inl_lo = p.lo, b->inl_hi = p.hi;
    }
    b->inl_lo = MIN(b->inl_lo, p.lo), b->inl_hi = MAX(b->inl_hi, p.hi);
    x->in_callee = true;
    x->callee_stores_ret = p.stores_esp;
    x->callee_ret = p.ret_eip;
    x->callee_left = n;
    x->callee_taken = p.taken;
    x->callee_jcc = 0;
    x->call_next = x->next;
    x->next = target;
    x->bt->stats.inlined++;
    x->bt->stats.inlined_insns += n;
    return true;
}

/* push imm32 <return gva>; then the callee inline (inline_callee), or a
 * stub to the target. PUSH is the only access. */
static int h_call(struct xlate *x)
{
    if (x->insn.opsize != 4)
        return exit_insn(x, BT_EXIT_EMULATE, 0);
    e8(&x->e, OP_PUSH_IMM32);
    e32(&x->e, x->next);
    uint32_t target;
    decode_branch_target(&x->insn, &target);
    x->bt->stats.calls++;
    if (inline_callee(x, target))
        return CONTINUE;
    e_branch_stub(x, target);
    return END_BLOCK;
}

/* The block's last instruction: jmp ibl_stub, with the target in EAX and
 * the guest's EAX in save_eax (emit_ibl_stub). Where its rel32 lies is
 * kept in the block: tc_stop_block_at points it at the stub's miss path. */
static int e_to_ibl(struct xlate *x)
{
    x->b->ibl_jmp = (uint16_t)(x->e.p - x->e.start + 1);
    e_jmp_to(&x->e, x->bt->ibl_stub);
    return END_BLOCK;
}

/*
 * The RET of a callee translated inline (inline_callee): it goes on with
 * the caller's next instruction in this block when the return address on
 * the stack is still the one the CALL pushed, with no lookup. Flag-free
 * (MOV, LEA, JECXZ):
 *     mov [save_ecx],ecx
 *     mov ecx,[esp]             ; the guest access: a fault leaves ECX as it was
 *     lea ecx,[ecx - call_next]
 *     jecxz match
 *     mov ecx,[save_ecx]        ; another address (the callee rewrote it):
 *     mov [save_eax],eax        ;   a plain RET into the lookup stub's miss
 *     pop eax                   ;   path (the slot just read: cannot fault),
 *     jmp <stub's miss_live>    ;   and the dispatcher finds the target
 * match:
 *     mov ecx,[save_ecx]
 *     lea esp,[esp+4]
 */
static int h_ret_inline(struct xlate *x)
{
    struct emit *e = &x->e;
    e_state(e, OP_MOV_RM_R, R_ECX, SF(save_ecx));
    e8(e, OP_MOV_R_RM), e8(e, 0x0C), e8(e, 0x24);        /* mov ecx,[esp] */
    e8(e, OP_LEA), e8(e, 0x89), e32(e, -x->call_next); /* lea ecx,[ecx+disp32] */
    e8(e, OP_JECXZ);
    uint8_t *match = e->p++;
    e_state(e, OP_MOV_R_RM, R_ECX, SF(save_ecx));
    e_state(e, OP_MOV_RM_R, R_EAX, SF(save_eax));
    e8(e, OP_POP_EAX);
    e_jmp_to(e, x->bt->ibl_stub + x->bt->ibl_at.miss_live);
    e_patch8(e, match);
    e_state(e, OP_MOV_R_RM, R_ECX, SF(save_ecx));
    e8(e, OP_LEA), e8(e, 0x64), e8(e, 0x24), e8(e, 4); /* lea esp,[esp+4] */
    x->in_callee = false;
    x->next = x->call_next;
    return CONTINUE;
}

/* mov [save_eax],eax; pop eax (the guest access: a fault leaves EAX as it
 * was); (lea esp,[esp+imm16]); jmp ibl_stub */
static int h_ret(struct xlate *x)
{
    if (x->in_callee && !x->callee_stores_ret && x->eip == x->callee_ret && x->insn.opcode == 0xC3 &&
        x->insn.opsize == 4)
        return h_ret_inline(x);
    if (x->insn.opsize != 4)
        return exit_insn(x, BT_EXIT_EMULATE, 0);
    e_state(&x->e, OP_MOV_RM_R, R_EAX, SF(save_eax));
    e8(&x->e, OP_POP_EAX);
    if (x->insn.opcode == 0xC2) {
        e8(&x->e, OP_LEA), e8(&x->e, 0xA4), e8(&x->e, 0x24); /* lea esp,[esp+disp32] */
        e32(&x->e, x->insn.ops[0].imm & 0xFFFF);
    }
    return e_to_ibl(x);
}

/*
 * JMP r/m32: mov [save_eax],eax; mov eax,r/m32 (the guest access: a fault
 * leaves EAX as it was); jmp ibl_stub.
 * CALL r/m32 pushes its return address after the load, with the guest's
 * EAX back (the push may fault too): ... mov [ibl_target],eax; mov
 * eax,[save_eax]; push imm32 <return>; mov eax,[ibl_target]; jmp ibl_stub.
 */
static int h_indirect(struct xlate *x, bool is_call)
{
    const struct dec_insn *in = &x->insn;
    if (in->opsize != 4)
        return exit_insn(x, BT_EXIT_EMULATE, 0);
    e_state(&x->e, OP_MOV_RM_R, R_EAX, SF(save_eax));
    e_mem_prefixes(x);
    e8(&x->e, OP_MOV_R_RM);
    e_modrm_copy(x, R_EAX);
    if (is_call) {
        e_state(&x->e, OP_MOV_RM_R, R_EAX, SF(ibl_target));
        e_state(&x->e, OP_MOV_R_RM, R_EAX, SF(save_eax));
        e8(&x->e, OP_PUSH_IMM32);
        e32(&x->e, x->next);
        e_state(&x->e, OP_MOV_R_RM, R_EAX, SF(ibl_target));
    }
    return e_to_ibl(x);
}

static int h_grp_ff(struct xlate *x)
{
    switch (x->insn.reg) {
    case 2: return h_indirect(x, true);
    case 4: return h_indirect(x, false);
    case 3:
    case 5: return exit_insn(x, BT_EXIT_FAR, 0);
    default: return h_ident(x);
    }
}

/*
 * INVLPG at CPL 0, its operand through DS:
 *   mov [save_ecx],ecx; lea ecx,[mem]; <e_flags_save>; and ecx,FFFFF000h
 *   cmp byte [invlpg_exit],0; je done
 *   cmp ecx,[invlpg_skip]; jne slow
 *   mov eax,[sel+4*DS]; cmp eax,[invlpg_skip_ds]; jne slow
 *   done: mov eax,[sel+4*DS]; cmp eax,[r3_gdt_ds]; jne clear
 *   cmp ecx,[r3_gdt_page]; jne kept
 *   clear: <e_invlpg_inline>
 *   kept: <e_flags_restore>; mov ecx,[save_ecx]; jmp end
 *   slow: <e_flags_restore>; mov ecx,[save_ecx]; <exit INVLPG at this insn>
 *   end:
 * (through another segment: movzx ecx,byte [invlpg_exit]; jecxz, the
 * exit, then <e_invlpg_inline>; flag-free).
 * While every shadow page table is in sync with the guest's (vmm/shadow.c
 * I2) there is no stale translation for INVLPG to drop, and it costs
 * nothing: Linux's early_memremap() runs it some 70,000 times while it
 * scans the BIOS area for an MP table. While some are out of sync (the
 * monitor sets invlpg_exit), it exits so the shadow drops that entry --
 * unless it is the page the monitor already dropped when it gave the guest
 * its #PF (invlpg_skip, an offset in the DS whose selector is
 * invlpg_skip_ds): nothing can map that page again until the next exit,
 * so the INVLPG Linux makes after changing the faulting PTE (a
 * copy-on-write break) has nothing to do (docs/vmm.md "INVLPG after a page
 * fault"). Operands through another segment always exit. One that does
 * not exit stops the return stubs until the monitor walks the GDT's page
 * again (e_invlpg_inline), unless it is through the DS r3_gdt_ds names
 * (base 0) and of another page than r3_gdt_page (GDTR.base's): then the
 * walk still holds, as a TLB entry of that page would (the #PF handler's
 * INVLPG before its IRET, which the IRET stub then takes).
 */
/* An INVLPG that does not exit: the monitor's walk of the GDT's page may
 * be what it invalidated (gdtw_map), so no return to ring 3 by the stub
 * until the monitor has walked it again. mov [invlpg_inline],1;
 * mov [r3_ok],0 (flag-free). */
static void e_invlpg_inline(struct emit *e)
{
    e_store_imm(e, SF(invlpg_inline), 1);
    e_store_imm(e, SF(r3_ok), 0);
}

static int h_invlpg(struct xlate *x)
{
    const struct dec_insn *in = &x->insn;
    struct emit *e = &x->e;
    e_state(e, OP_MOV_RM_R, R_ECX, SF(save_ecx));
    if (in->mem.seg != DEC_REG_DS) {
        e_state0f(e, OP_MOVZX8, R_ECX, SF(invlpg_exit));
        e8(e, OP_JECXZ);
        uint8_t *to_done = e->p++;
        e_state(e, OP_MOV_R_RM, R_ECX, SF(save_ecx));
        e_exit_insn(x, BT_EXIT_INVLPG, 0);
        e_patch8(e, to_done);
        e_invlpg_inline(e);
        e_state(e, OP_MOV_R_RM, R_ECX, SF(save_ecx));
        return CONTINUE;
    }
    if (in->prefixes & DEC_PFX_ADSIZE)
        e8(e, PFX_ADSIZE);
    e8(e, OP_LEA);
    e_modrm_copy(x, R_ECX);
    e_flags_save(e);
    e8(e, OP_GRP1_IMM32), e8(e, 0xE1), e32(e, PAGE_MASK); /* and ecx,FFFFF000h */
    e_state(e, OP_GRP1_IMM8_RM8, GRP1_CMP, SF(invlpg_exit)), e8(e, 0);
    uint8_t *to_done = e_jcc8(e, 0x4);                    /* je done */
    e_state(e, OP_CMP_R_RM, R_ECX, SF(invlpg_skip));
    uint8_t *slow1 = e_jcc8(e, 0x5);                      /* jne */
    e_state(e, OP_MOV_R_RM, R_EAX, SF(sel) + 4u * BT_DS);
    e_state(e, OP_CMP_R_RM, R_EAX, SF(invlpg_skip_ds));
    uint8_t *slow2 = e_jcc8(e, 0x5);                      /* jne */
    e_patch8(e, to_done);                                 /* done: */
    e_state(e, OP_MOV_R_RM, R_EAX, SF(sel) + 4u * BT_DS);
    e_state(e, OP_CMP_R_RM, R_EAX, SF(r3_gdt_ds));
    uint8_t *clear = e_jcc8(e, 0x5);                      /* jne clear: DS not the flat one */
    e_state(e, OP_CMP_R_RM, R_ECX, SF(r3_gdt_page));
    uint8_t *kept = e_jcc8(e, 0x5);                       /* jne kept: not the GDT's page */
    e_patch8(e, clear);
    e_invlpg_inline(e);
    e_patch8(e, kept);
    e_flags_restore(e);
    e_state(e, OP_MOV_R_RM, R_ECX, SF(save_ecx));
    uint8_t *to_end = e_jmp32_fwd(e);
    e_patch8(e, slow1);
    e_patch8(e, slow2);
    e_flags_restore(e);
    e_state(e, OP_MOV_R_RM, R_ECX, SF(save_ecx));
    e_exit_insn(x, BT_EXIT_INVLPG, 0);
    e_patch32(e, to_end);
    return CONTINUE;
}

static int h_grp_0f01(struct xlate *x)
{
    /* At CPL 3 INVLPG exits (#GP). */
    if (x->insn.mod != 3 && x->insn.reg == 7 && !x->bt->cpl3)
        return h_invlpg(x);
    if (x->insn.mod != 3 || x->insn.reg == 4 || x->insn.reg == 6) /* SMSW/LMSW have r forms */
        return h_exit(x, &rules_grp7_mem[x->insn.reg]);
    if (x->insn.modrm == 0xF9) /* RDTSCP */
        return exit_insn(x, BT_EXIT_RDTSC, 0);
    if (x->insn.attr & INSN_NEEDS_MONITOR)
        return exit_insn(x, BT_EXIT_EMULATE, 0);
    return h_ident(x);
}

/*
 * Pending-interrupt check after STI/POPF (flag-free: JECXZ):
 *   mov [save_ecx],ecx; movzx ecx,byte [irq_pending]; jecxz skip;
 *   mov ecx,[save_ecx]; <exit IRQ_WINDOW at resume_eip>; skip: mov ecx,[save_ecx]
 */
static void e_irq_check(struct xlate *x, uint32_t resume_eip)
{
    struct emit *e = &x->e;
    e_state(e, OP_MOV_RM_R, R_ECX, SF(save_ecx));
    e_state0f(e, OP_MOVZX8, R_ECX, SF(irq_pending));
    uint32_t skip = stub_len(x->bt) + 6u + (x->bt->cfg.state_seg_prefix ? 1u : 0u);
    e8(e, OP_JECXZ);
    e8(e, (uint8_t)skip);
    e_state(e, OP_MOV_R_RM, R_ECX, SF(save_ecx));
    e_stub(e, new_exit(x, BT_EXIT_IRQ_WINDOW, resume_eip));
    e_state(e, OP_MOV_R_RM, R_ECX, SF(save_ecx));
}

static int h_cli(struct xlate *x)
{
    e_store_imm(&x->e, SF(vflags_if), 0);
    return CONTINUE;
}

/* STI: IF=1; the interrupt window opens after the NEXT instruction
 * (SDM Vol. 3A §6.8.3), so the check is emitted after it (bt_translate). */
static int h_sti(struct xlate *x)
{
    e_store_imm(&x->e, SF(vflags_if), BT_FLAGS_IF);
    x->sti_shadow = true;
    return CONTINUE;
}

/*
 * PUSHF: pushf (the guest access); then, flags saved, rewrite the pushed
 * image in place: real CF PF AF ZF SF DF OF + virtual IF, IOPL, ..., with
 * RF and VM clear as PUSHF stores them (SDM Vol. 2B PUSHF: "the VM and RF
 * flags are not copied"; the virtual RF an IRET loaded stays set until the
 * monitor's next look, where hardware clears it after one instruction).
 */
static int h_pushf(struct xlate *x)
{
    struct emit *e = &x->e;
    if (x->insn.opsize != 4)
        return exit_insn(x, BT_EXIT_EMULATE, 0);
    e8(e, OP_PUSHF);
    e_flags_save(e);
    e8(e, OP_MOV_R_RM), e8(e, 0x04), e8(e, 0x24); /* mov eax,[esp] */
    e8(e, OP_AND_EAX_IMM32), e32(e, BT_FLAGS_REAL | BT_FLAGS_FIXED1);
    e_state(e, OP_OR_R_RM, R_EAX, SF(vflags_if));
    e_state(e, OP_OR_R_RM, R_EAX, SF(vflags_sys));
    e8(e, OP_AND_EAX_IMM32), e32(e, ~(EFLAGS_RF | EFLAGS_VM)); /* PUSHF clears them in the image */
    e8(e, OP_MOV_RM_R), e8(e, 0x04), e8(e, 0x24); /* mov [esp],eax */
    e_flags_restore(e);
    return CONTINUE;
}

/* The real DF, CF PF AF ZF SF and OF from the EFLAGS image in bt_vcpu.tmp
 * (POPF, IRET): STD/CLD, then SAHF, and OF from AL = OF through ADD AL,7Fh.
 * Clobbers EAX. */
static void e_flags_from_tmp(struct emit *e)
{
    e_state(e, OP_MOV_R_RM, R_EAX, SF(tmp));
    e8(e, OP_GRP_F6), e8(e, 0xC4), e8(e, 0x04);   /* test ah,4 (DF = bit 10) */
    e8(e, 0x74), e8(e, 3);                         /* jz +3 */
    e8(e, OP_STD), e8(e, OP_JMP8), e8(e, 1);       /* std; jmp +1 */
    e8(e, OP_CLD);
    e8(e, OP_SHIFT_IMM), e8(e, 0xE8), e8(e, 11);   /* shr eax,11 */
    e8(e, OP_GRP1_IMM8), e8(e, 0xE0), e8(e, 1);    /* and eax,1: AL = OF */
    e_state(e, OP_MOV_R8_RM, R_AH, SF(tmp));       /* AH = SF ZF AF PF CF */
    e8(e, OP_ADD_AL_IMM8), e8(e, 0x7F);
    e8(e, OP_SAHF);
}

/*
 * POPF: pop [tmp] (the guest access); virtual IF and system bits from the
 * image; DF with STD/CLD; CF PF AF ZF SF from AH via SAHF, OF via ADD.
 */
static int h_popf(struct xlate *x)
{
    struct emit *e = &x->e;
    if (x->insn.opsize != 4 || x->bt->cpl3)
        return exit_insn(x, BT_EXIT_EMULATE, 0);
    e_state(e, OP_POP_RM, 0, SF(tmp));
    e_state(e, OP_MOV_RM_R, R_EAX, SF(save_eax));
    e_state(e, OP_MOV_R_RM, R_EAX, SF(tmp));
    e8(e, OP_AND_EAX_IMM32), e32(e, BT_FLAGS_POPF_SYS);
    e_state(e, OP_MOV_RM_R, R_EAX, SF(vflags_sys));
    /* TF set: the monitor must single-step from the next instruction on
     * (SDM Vol. 3B §17.3.1.4): raise irq_pending so the check below leaves
     * the block there; the monitor recomputes irq_pending at every exit. */
    e8(e, OP_TEST_EAX_IMM32), e32(e, EFLAGS_TF);
    uint8_t *jz_rel = e_jcc8(e, 0x4);              /* jz over the store */
    e_store_imm(e, SF(irq_pending), 1);
    e_patch8(e, jz_rel);
    e_state(e, OP_MOV_R_RM, R_EAX, SF(tmp));
    e8(e, OP_AND_EAX_IMM32), e32(e, BT_FLAGS_IF);
    e_state(e, OP_MOV_RM_R, R_EAX, SF(vflags_if));
    e_flags_from_tmp(e);
    e_state(e, OP_MOV_R_RM, R_EAX, SF(save_eax));
    e_irq_check(x, x->next);
    return CONTINUE;
}

/*
 * The slow path of an inline IRET (h_iret), arithmetic flags in save_flags
 * and EAX in save_eax: an IRET to ring 3 that the IRET stub may take
 * (bt_config.inline_iret3) stores its frame's EIP, EFLAGS and ESP in
 * r3_eip, r3_fl and r3_uesp, its exit descriptor in r3_desc, and jumps to
 * the stub with every guest register and flag as the guest has them;
 * anything else falls through to the IRET exit. The frame's 20 bytes lie
 * in the page of [esp], which h_iret read first, of a flat SS: no read
 * here faults. Taken: popped CS = r3_cs and SS = r3_ss (the selectors
 * whose shadow descriptors r3_arm checked), the popped EFLAGS with IF set
 * and TF, NT, VM, AC, VIF, VIP and IOPL clear (no step, no task, no I/O
 * privilege, nothing of v86 to emulate). RF, which every fault handler's
 * frame has (vcpu_deliver), is dropped: it only holds off an instruction
 * breakpoint, and r3_ok is clear while the guest has one armed.
 *   mov eax,esp; and eax,FFFh; cmp eax,FECh; ja out
 *   cmp byte [ss_flat],0; je out
 *   mov eax,[esp+4]; cmp ax,[r3_cs]; jne out
 *   mov eax,[esp+16]; cmp ax,[r3_ss]; jne out
 *   mov eax,[esp+8]; test eax,bad; jnz out; test eax,IF; jz out
 *   mov [r3_fl],eax; mov eax,[esp]; mov [r3_eip],eax; mov eax,[esp+12]; mov [r3_uesp],eax
 *   <e_flags_restore>; mov [r3_desc],desc; jmp r3_iret_stub
 *   out:
 */
static void e_iret3(struct xlate *x, struct bt_exit *desc)
{
    struct emit *e = &x->e;
    const uint32_t img_bad = EFLAGS_TF | EFLAGS_NT | EFLAGS_VM | EFLAGS_AC | EFLAGS_VIF | EFLAGS_VIP | EFLAGS_IOPL;
    uint8_t *out[6];
    e8(e, OP_MOV_RM_R), e8(e, 0xE0);                              /* mov eax,esp */
    e8(e, OP_AND_EAX_IMM32), e32(e, PAGE_SIZE - 1);
    e8(e, 0x3D), e32(e, PAGE_SIZE - 20);                           /* cmp eax,FECh */
    out[0] = e_jcc32_fwd(e, CC_A);
    e_state(e, OP_GRP1_IMM8_RM8, GRP1_CMP, SF(ss_flat)), e8(e, 0);
    out[1] = e_jcc32_fwd(e, CC_E);
    e8(e, OP_MOV_R_RM), e8(e, 0x44), e8(e, 0x24), e8(e, 4);       /* mov eax,[esp+4] */
    e8(e, PFX_OPSIZE);
    e_state(e, OP_CMP_R_RM, R_EAX, SF(r3_cs));                      /* cmp ax,[r3_cs] */
    out[2] = e_jcc32_fwd(e, CC_NE);
    e8(e, OP_MOV_R_RM), e8(e, 0x44), e8(e, 0x24), e8(e, 16);      /* mov eax,[esp+16] */
    e8(e, PFX_OPSIZE);
    e_state(e, OP_CMP_R_RM, R_EAX, SF(r3_ss));                      /* cmp ax,[r3_ss] */
    out[3] = e_jcc32_fwd(e, CC_NE);
    e8(e, OP_MOV_R_RM), e8(e, 0x44), e8(e, 0x24), e8(e, 8);       /* mov eax,[esp+8] */
    e8(e, OP_TEST_EAX_IMM32), e32(e, img_bad);
    out[4] = e_jcc32_fwd(e, CC_NE);
    e8(e, OP_TEST_EAX_IMM32), e32(e, BT_FLAGS_IF);
    out[5] = e_jcc32_fwd(e, CC_E);
    e_state(e, OP_MOV_RM_R, R_EAX, SF(r3_fl));
    e8(e, OP_MOV_R_RM), e8(e, 0x04), e8(e, 0x24);                 /* mov eax,[esp] */
    e_state(e, OP_MOV_RM_R, R_EAX, SF(r3_eip));
    e8(e, OP_MOV_R_RM), e8(e, 0x44), e8(e, 0x24), e8(e, 12);      /* mov eax,[esp+12] */
    e_state(e, OP_MOV_RM_R, R_EAX, SF(r3_uesp));
    e_flags_restore(e);
    e_store_imm(e, SF(r3_desc), (uint32_t)(uintptr_t)desc);
    e_jmp_to(e, x->bt->r3_iret_stub);
    for (int i = 0; i < 6; i++)
        e_patch32(e, out[i]);
}

/*
 * IRET (32-bit, CPL 0) back to the code segment it runs in, as Linux's
 * sync_core() does some 38,000 times in a boot while it patches its own
 * code. Inline when, at run time, the stack's 12 bytes lie in one page of
 * a flat SS (ss_flat), the current EFLAGS has NT (a task return), VIF and
 * VIP clear, the popped CS is the current selector (same privilege: no
 * stack switch, SDM Vol. 2A IRET "RETURN-TO-SAME-PRIVILEGE-LEVEL"), and
 * the popped EFLAGS has VM, NT, TF, VIF and VIP clear (nothing to step),
 * and IF clear or no interrupt pending (irq_pending clear): then IRET is
 * "pop EIP, pop CS, POPF" and the rest of EFLAGS, IF included, is loaded
 * as POPF at CPL 0 loads it. RF (a fault handler's frame, SDM Vol. 3A
 * §17.3.1.1) is dropped: it only holds off an instruction breakpoint for
 * one instruction, and translated code never runs with one armed (the
 * monitor single-steps then, run_step). An IRET that opens the interrupt
 * window (a handler's return to kernel code with IF = 1) needs no exit
 * when nothing is pending: the monitor sets
 * irq_pending only between runs of translated code (inject_irq), and a
 * device event that comes due meanwhile stops the run (bt_stop_at),
 * whatever IF is. Anything else exits (BT_EXIT_IRET) with the guest's
 * state as it was.
 * The descriptor cache of CS is kept rather than reloaded from the GDT:
 * the same selector with the same base and limit (the TC is flushed when
 * they change, run_bt_n).
 *   mov [save_eax],eax; mov eax,[esp] (the first guest access: a fault
 *   there is the IRET's, nothing changed); mov [ibl_target],eax;
 *   mov eax,[save_eax]; <e_flags_save>
 *   mov eax,esp; and eax,FFFh; cmp eax,FF4h; ja slow      (one page)
 *   cmp byte [ss_flat],0; je slow
 *   mov eax,[vflags_sys]; test eax,NT|VIF|VIP; jnz slow
 *   mov eax,[esp+4]; cmp ax,[sel+4*CS]; jne slow           (cannot fault:
 *   mov eax,[esp+8]; test eax,VM|NT|TF|VIF|VIP; jnz slow     the page and
 *   and eax,IF; jz fast0                                    SS of [esp])
 *   cmp byte [irq_pending],0; jne slow
 *   fast0: jmp fast
 *   slow: <e_flags_restore>; <exit IRET>
 *   fast: mov eax,[esp+8]; mov [tmp],eax; and eax,POPF_SYS; mov [vflags_sys],eax
 *   mov eax,[tmp]; and eax,IF; mov [vflags_if],eax
 *   <DF, then CF PF AF ZF SF and OF from [tmp], as h_popf>
 *   mov eax,[ibl_target]; lea esp,[esp+12]; jmp ibl_stub (save_eax holds
 *   the guest's EAX, as the stub wants it)
 */
static int h_iret(struct xlate *x)
{
    struct emit *e = &x->e;
    if (!x->bt->cfg.inline_iret || x->insn.opsize != 4 || x->bt->cpl3)
        return exit_insn(x, BT_EXIT_IRET, 0);
    const uint32_t cur_bad = EFLAGS_NT | EFLAGS_VIF | EFLAGS_VIP;
    const uint32_t img_bad = EFLAGS_TF | EFLAGS_NT | EFLAGS_VM | EFLAGS_VIF | EFLAGS_VIP;
    uint8_t *slow[6];
    e_state(e, OP_MOV_RM_R, R_EAX, SF(save_eax));
    e8(e, OP_MOV_R_RM), e8(e, 0x04), e8(e, 0x24);                 /* mov eax,[esp] */
    e_state(e, OP_MOV_RM_R, R_EAX, SF(ibl_target));
    e_state(e, OP_MOV_R_RM, R_EAX, SF(save_eax));
    e_flags_save(e);
    e8(e, OP_MOV_RM_R), e8(e, 0xE0);                              /* mov eax,esp */
    e8(e, OP_AND_EAX_IMM32), e32(e, PAGE_SIZE - 1);
    e8(e, 0x3D), e32(e, PAGE_SIZE - 12);                           /* cmp eax,FF4h */
    slow[0] = e_jcc8(e, 0x7);                                      /* ja */
    e_state(e, OP_GRP1_IMM8_RM8, 7, SF(ss_flat)), e8(e, 0);        /* cmp byte [ss_flat],0 */
    slow[1] = e_jcc8(e, 0x4);                                      /* je */
    e_state(e, OP_MOV_R_RM, R_EAX, SF(vflags_sys));
    e8(e, OP_TEST_EAX_IMM32), e32(e, cur_bad);
    slow[2] = e_jcc8(e, 0x5);                                      /* jnz */
    e8(e, OP_MOV_R_RM), e8(e, 0x44), e8(e, 0x24), e8(e, 4);       /* mov eax,[esp+4] */
    e8(e, PFX_OPSIZE);
    e_state(e, OP_CMP_R_RM, R_EAX, SF(sel) + 4u * BT_CS);         /* cmp ax,[sel+4*CS] */
    slow[3] = e_jcc8(e, 0x5);                                      /* jne */
    e8(e, OP_MOV_R_RM), e8(e, 0x44), e8(e, 0x24), e8(e, 8);       /* mov eax,[esp+8] */
    e8(e, OP_TEST_EAX_IMM32), e32(e, img_bad);
    slow[4] = e_jcc8(e, 0x5);                                      /* jnz */
    e8(e, OP_AND_EAX_IMM32), e32(e, BT_FLAGS_IF);
    uint8_t *if_clear = e_jcc8(e, 0x4);                            /* jz: no window opens */
    e_state(e, OP_GRP1_IMM8_RM8, 7, SF(irq_pending)), e8(e, 0);    /* cmp byte [irq_pending],0 */
    slow[5] = e_jcc8(e, 0x5);                                      /* jne */
    e_patch8(e, if_clear);
    uint8_t *to_fast = e_jmp32_fwd(e);                             /* to the inline IRET */
    for (int i = 0; i < 6; i++)
        e_patch8(e, slow[i]);
    struct bt_exit *desc = insn_exit(x, BT_EXIT_IRET, 0);
    if (x->bt->r3_iret_stub)
        e_iret3(x, desc);
    e_flags_restore(e);
    e_stub(e, desc);
    e_patch32(e, to_fast);
    e8(e, OP_MOV_R_RM), e8(e, 0x44), e8(e, 0x24), e8(e, 8);       /* mov eax,[esp+8] */
    e_state(e, OP_MOV_RM_R, R_EAX, SF(tmp));
    e8(e, OP_AND_EAX_IMM32), e32(e, BT_FLAGS_POPF_SYS);
    e_state(e, OP_MOV_RM_R, R_EAX, SF(vflags_sys));
    e_state(e, OP_MOV_R_RM, R_EAX, SF(tmp));
    e8(e, OP_AND_EAX_IMM32), e32(e, BT_FLAGS_IF);
    e_state(e, OP_MOV_RM_R, R_EAX, SF(vflags_if));
    e_flags_from_tmp(e);
    e_state(e, OP_MOV_R_RM, R_EAX, SF(ibl_target));
    e8(e, OP_LEA), e8(e, 0x64), e8(e, 0x24), e8(e, 12);           /* lea esp,[esp+12] */
    return e_to_ibl(x);
}

/* PUSH Sreg: push [sel[n]] with the guest's operand size. */
static int h_push_sreg(struct xlate *x, uint8_t sreg)
{
    if (x->insn.opsize == 2)
        e8(&x->e, PFX_OPSIZE);
    e_state(&x->e, OP_GRP_FF, FF_PUSH, SF(sel) + 4u * sreg);
    return CONTINUE;
}

/* MOV r, Sreg: movzx r32,word [sel[n]] (or mov r16); memory form exits. */
static int h_mov_from_sreg(struct xlate *x)
{
    const struct dec_insn *in = &x->insn;
    if (in->mod != 3)
        return exit_insn(x, BT_EXIT_SEG, in->reg);
    if (in->opsize == 2) {
        e8(&x->e, PFX_OPSIZE);
        e_state(&x->e, OP_MOV_R_RM, in->rm, SF(sel) + 4u * in->reg);
    } else {
        e_state0f(&x->e, OP_MOVZX16, in->rm, SF(sel) + 4u * in->reg);
    }
    return CONTINUE;
}

static unsigned state_sreg(const struct bt *bt);

/* May the selector operand of this MOV Sreg, POP Sreg or VERW be handled
 * inline (h_seg_load, h_verw)? Not at CPL 3 (the tables describe CPL 0),
 * not for a source read through the state segment, nor through CS without
 * its alias, and only in code the monitor calls stable (bt_set_stable_fn). */
static bool seg_inline_ok(const struct xlate *x)
{
    const struct dec_insn *in = &x->insn;
    const struct bt *bt = x->bt;
    bool cs_alias = bt->cfg.guest_seg_alias && bt->cfg.rewrite_cs_override;
    bool source_ok = !in->has_mem || in->mnemonic == DEC_M_POP ||
                     (in->mem.seg != state_sreg(bt) && (in->mem.seg != DEC_REG_CS || cs_alias));
    bool stable = !bt->code_stable ||
                  (bt->code_stable(bt->fetch_ctx, x->eip) && bt->code_stable(bt->fetch_ctx, x->next - 1));
    return bt->cfg.native_seg_loads && !bt->cpl3 && source_ok && stable;
}

/* mov [state:save_ecx], ecx; ECX = the instruction's 16-bit selector
 * operand, zero-extended (the one guest access; through CS with DS swapped
 * for the guest CS's alias, as h_seg_alias does it: Linux's VERW reads
 * its selector with a CS prefix); mov [state:tmp], ecx. */
static void e_selector_to_ecx(struct xlate *x)
{
    const struct dec_insn *in = &x->insn;
    struct emit *e = &x->e;
    e_state(e, OP_MOV_RM_R, R_ECX, SF(save_ecx));
    if (in->mnemonic == DEC_M_POP && in->opsize == 4) {
        e8(e, OP_MOV_R_RM), e8(e, 0x0C), e8(e, 0x24);                 /* mov ecx,[esp] */
        e8(e, OP_2BYTE), e8(e, OP_MOVZX16), e8(e, 0xC9);              /* movzx ecx,cx */
    } else if (in->mnemonic == DEC_M_POP) {
        e8(e, OP_2BYTE), e8(e, OP_MOVZX16), e8(e, 0x0C), e8(e, 0x24); /* movzx ecx,word [esp] */
    } else {
        bool via_cs = in->has_mem && in->mem.seg == DEC_REG_CS;
        if (via_cs)
            e_ds_swap(e, SF(cs_alias));
        e_mem_prefixes(x); /* a CS prefix becomes DS (rewrite_cs_override) */
        e8(e, OP_2BYTE), e8(e, OP_MOVZX16);
        e_modrm_copy(x, R_ECX);
        if (via_cs)
            e_ds_unswap(e);
    }
    e_state(e, OP_MOV_RM_R, R_ECX, SF(tmp));
}

/* movzx ecx, byte [state:table + ecx]; jecxz slow. Returns where the
 * JECXZ displacement goes (e_slow_path fills it in). */
static uint8_t *e_lookup_ecx(struct emit *e, uint32_t table)
{
    e_pfx(e);
    e8(e, OP_2BYTE), e8(e, OP_MOVZX8), e8(e, 0x89);                   /* movzx ecx,byte [ecx+disp32] */
    e32(e, e->bt->cfg.state_base + table);
    e8(e, OP_JECXZ);
    e8(e, 0);
    return e->p - 1;
}

/* jmp done; slow: mov ecx,[state:save_ecx]; exit `reason` at this
 * instruction; done: -- the end of h_seg_load and h_verw. */
static void e_slow_path(struct xlate *x, uint8_t *to_slow, uint8_t reason, uint8_t aux)
{
    struct emit *e = &x->e;
    e8(e, OP_JMP8);
    uint8_t *to_done = e->p++;
    e_patch8(e, to_slow);
    e_state(e, OP_MOV_R_RM, R_ECX, SF(save_ecx));
    exit_insn(x, reason, aux);
    e_patch8(e, to_done);
}

/*
 * MOV Sreg, r/m16 and POP Sreg into DS, ES or FS (bt_config.native_seg_loads):
 *
 *     mov [state:save_ecx], ecx
 *     movzx ecx, word <r/m16>         ; POP: mov ecx,[esp]; movzx ecx,cx (the
 *                                     ;   operand size's bytes, as emu_seg reads)
 *     mov [state:tmp], ecx
 *     movzx ecx, byte [state:seg_native + ecx]
 *     jecxz slow
 *     mov ecx, [state:save_ecx]
 *     mov Sreg, [state:tmp]           ; from the shadow GDT, checked by the CPU
 *     mov [state:sel + 4*Sreg], Sreg  ; the guest's virtual selector
 *     lea esp, [esp + opsize]         ; POP only
 *     jmp done
 *   slow:
 *     mov ecx, [state:save_ecx]
 *     <exit SEG at this instruction>  ; the monitor emulates the load
 *   done:
 *
 * Everything is MOV, MOVZX, LEA and JECXZ: no flag changes (invariant 3).
 * The MOVZX of the source is the one guest access, made before anything
 * the guest can see changed (invariant 2); the selector then comes from
 * the state, so a device writing guest memory meanwhile cannot make the
 * checked value and the loaded one differ. seg_native is nonzero only where
 * the shadow descriptor is the guest's own, ring-compressed, and the
 * guest's load would succeed (vmm/vcpu.c), so the load does not fault; if
 * it did, ECX is already restored and the fault maps to this instruction.
 * GS is the state segment at ring 1: its inline load only records the
 * guest's selector in sel[GS] and in seg_alias, the selector a guest
 * access through GS then loads into DS (h_seg_alias) -- the shadow entry,
 * which seg_native vouches for; the monitor rebuilds its GS cache from
 * sel[GS] at the exit (native_seg_resync). SS (interrupt shadow, RPL = CPL
 * rules) and a source read through the state segment always exit.
 * Intel SDM Vol. 2B MOV and POP (segment register forms).
 */
static int h_seg_load(struct xlate *x, const struct rule_entry *r)
{
    const struct dec_insn *in = &x->insn;
    struct emit *e = &x->e;
    bool pop = in->mnemonic == DEC_M_POP;
    uint8_t sreg = pop ? r->aux : in->reg;
    bool gs = sreg == BT_GS && x->bt->cfg.guest_seg_alias && state_sreg(x->bt) == DEC_REG_GS;
    if ((sreg != BT_DS && sreg != BT_ES && sreg != BT_FS && !gs) || !seg_inline_ok(x))
        return exit_insn(x, BT_EXIT_SEG, sreg);
    e_selector_to_ecx(x);
    uint8_t *to_slow = e_lookup_ecx(e, SF(seg_native));
    if (gs) { /* GS is the state segment: the guest's GS is its selector and seg_alias */
        e_state(e, OP_MOV_R_RM, R_ECX, SF(tmp));
        e_state(e, OP_MOV_RM_R, R_ECX, SF(sel) + 4u * sreg);
        e_state(e, OP_MOV_RM_R, R_ECX, SF(seg_alias));
        e_state(e, OP_MOV_R_RM, R_ECX, SF(save_ecx));
    } else {
        e_state(e, OP_MOV_R_RM, R_ECX, SF(save_ecx));
        e_state(e, OP_MOV_SREG_RM, sreg, SF(tmp));
        e_state(e, OP_MOV_RM_SREG, sreg, SF(sel) + 4u * sreg);
    }
    if (pop)
        e8(e, OP_LEA), e8(e, 0x64), e8(e, 0x24), e8(e, (uint8_t)in->opsize); /* lea esp,[esp+n] */
    e_slow_path(x, to_slow, BT_EXIT_SEG, sreg);
    return CONTINUE;
}

/*
 * VERW r/m16 (0F 00 /5) where bt_vcpu.seg_verw knows the answer:
 *
 *     <ECX = selector, as h_seg_load>   ; the one guest access
 *     movzx ecx, byte [state:seg_verw + ecx]
 *     jecxz slow
 *     mov [state:tmp2], ecx
 *     mov ecx, [state:save_ecx]
 *     <e_flags_save>                    ; EAX saved; AH = flags, AL = OF
 *     verw [state:tmp]                  ; the CPU's own VERW of the guest's
 *                                       ;   selector, for what else it does
 *                                       ;   (MDS buffer clearing)
 *     and byte [state:tmp2], 40h
 *     and ah, 0BFh; or ah, [state:tmp2] ; ZF is the table's, the rest kept
 *     mov [state:save_flags], eax
 *     <e_flags_restore>                 ; OF and the others back, then EAX
 *     jmp done
 *   slow: mov ecx, [state:save_ecx]; <exit DESC>
 *   done:
 *
 * VERW changes ZF only (SDM Vol. 2B VERR/VERW). Linux runs it on every
 * return to user mode (CLEAR_CPU_BUFFERS) on CPUs with MDS. The rest of
 * group 6 (SLDT STR LLDT LTR VERR) exits.
 */
static int h_verw(struct xlate *x)
{
    struct emit *e = &x->e;
    e_selector_to_ecx(x);
    uint8_t *to_slow = e_lookup_ecx(e, SF(seg_verw));
    e_state(e, OP_MOV_RM_R, R_ECX, SF(tmp2));
    e_state(e, OP_MOV_R_RM, R_ECX, SF(save_ecx));
    e_flags_save(e);                                                   /* EAX: AH flags, AL OF */
    e_state0f(e, 0x00, 5, SF(tmp));                                    /* verw [tmp] */
    e_state(e, OP_GRP1_IMM8_RM8, 4, SF(tmp2)), e8(e, BT_VERW_ZF);      /* and byte [tmp2],40h */
    e8(e, OP_GRP1_IMM8_RM8), e8(e, 0xE4), e8(e, (uint8_t)~BT_VERW_ZF); /* and ah,0BFh */
    e_state(e, OP_OR_R8_RM, R_AH, SF(tmp2));                           /* or ah,[tmp2] */
    e_state(e, OP_MOV_RM_R, R_EAX, SF(save_flags));
    e_flags_restore(e);
    e_slow_path(x, to_slow, BT_EXIT_DESC, 5);
    return CONTINUE;
}

static int h_grp6(struct xlate *x, const struct rule_entry *r)
{
    if (x->insn.reg == 5 && seg_inline_ok(x))
        return h_verw(x);
    return h_exit(x, r);
}

/* MOV r32, CRn: mov r32,[cr[n]]. */
static int h_mov_from_cr(struct xlate *x)
{
    e_state(&x->e, OP_MOV_R_RM, x->insn.rm, SF(cr) + 4u * x->insn.reg);
    return CONTINUE;
}

static int h_mov_to_cr(struct xlate *x)
{
    return exit_insn(x, x->insn.reg == 3 ? BT_EXIT_CR3_WRITE : BT_EXIT_MOV_CR, x->insn.reg);
}

/* The segment register (enum dec_reg) emitted code reaches the state with,
 * or DEC_REG_NONE; guest memory operands through it must be emulated. */
/* The decoder's register for the state segment, or DEC_REG_NONE (asked of
 * every instruction translated: bt_init keeps it in bt->state_dec_sreg). */
static unsigned state_sreg(const struct bt *bt) { return bt->state_dec_sreg; }

static unsigned state_sreg_of(const struct bt_config *cfg)
{
    for (unsigned i = 0; i < BT_NSREG; i++)
        if (cfg->state_seg_prefix && seg_prefix_byte[i] == cfg->state_seg_prefix)
            return DEC_REG_ES + i;
    return DEC_REG_NONE;
}

static const struct rule_entry *rule_of(const struct dec_insn *in)
{
    static const struct rule_entry ident = { RULE_IDENT, 0, 0 };
    if (in->map == DEC_MAP_PRIMARY)
        return &rules_primary[in->opcode];
    if (in->map == DEC_MAP_0F)
        return &rules_0f[in->opcode];
    return &ident;
}

/*
 * Does the guest instruction access memory through the segment register
 * that emitted code uses for struct bt_vcpu? Explicitly (a GS prefix on a
 * ModRM operand, an indirect branch through memory, PUSH/POP m) or
 * implicitly (XLAT, MASKMOVQ/MASKMOVDQU, the source of a string
 * instruction: the decoder describes all of them in insn.mem). Such an
 * instruction must never run at ring 1: there GS is the monitor's vCPU
 * area, not the guest's segment (docs/bt.md "The state segment").
 */
static bool uses_state_seg(const struct xlate *x)
{
    const struct dec_insn *in = &x->insn;
    unsigned sreg = state_sreg(x->bt);
    if (sreg == DEC_REG_NONE || !in->has_mem || in->mem.seg != sreg)
        return false;
    return (in->attr & (DEC_A_MEM_READ | DEC_A_MEM_WRITE)) || in->cf != DEC_CF_NONE;
}

/* Does rule r only ever exit for this memory-operand instruction? Its
 * handler then emits nothing of the guest's but a prefix-less LEA of the
 * operand (exit_insn), and the monitor emulates it, reason and all, with
 * the guest's own segments: LGDT/SGDT.. (DESC), MOV m,Sreg / LDS.. (SEG),
 * SMSW/LMSW m (MOV_CR), far JMP/CALL m (FAR). */
static bool rule_only_exits(const struct xlate *x, const struct rule_entry *r)
{
    switch (r->rule) {
    case RULE_EXIT:
    case RULE_SEG_LOAD:      /* h_seg_load exits for such a source */
    case RULE_GRP6:          /* so does h_verw; the rest of group 6 always exits */
    case RULE_MOV_FROM_SREG: /* memory form: BT_EXIT_SEG */
    case RULE_GRP_0F01:      /* memory forms: exits, INVLPG: nothing */
        return true;
    case RULE_GRP_FF:
        return x->insn.reg == 3 || x->insn.reg == 5;
    default:
        return false;
    }
}

/* Would rule r copy this instruction as it is (h_ident), with no exit and
 * no rewriting of its operands? Then it may run with DS swapped for the
 * guest's segment (h_seg_alias). Control flow, privileged, sensitive and
 * I/O instructions are not copied: they exit and the monitor emulates them. */
static bool copied_as_is(const struct xlate *x, const struct rule_entry *r)
{
    const struct dec_insn *in = &x->insn;
    bool copy = r->rule == RULE_IDENT || r->rule == RULE_NATIVE ||
                (r->rule == RULE_GRP_FF && in->reg != 2 && in->reg != 3 && in->reg != 4 && in->reg != 5);
    return copy && !(in->attr & INSN_NEEDS_MONITOR) && (in->cf == DEC_CF_NONE || in->cf == DEC_CF_UD);
}

/*
 * A guest access through its own GS, which at ring 1 is the state segment:
 *
 *     mov %ds, [state:ds_save]
 *     mov dword [state:in_swap], 1
 *     mov [state:seg_alias], %ds      ; ring-1 alias of the guest's GS cache
 *     <the instruction, GS prefix rewritten to DS by h_ident>
 *     mov [state:ds_save], %ds
 *     mov dword [state:in_swap], 0
 *
 * MOV Sreg leaves the flags alone, and neither load can fault (seg_alias is
 * a descriptor the monitor built, a guest selector seg_native allows (after
 * an inline GS load), or null; ds_save was just valid), so a
 * fault can only be the instruction's own, before it changed anything: the
 * whole expansion maps back to it (precise faults), and the world switch
 * loads DS afresh at the next entry (in_swap tells native_seg_resync that
 * DS then holds the alias and the guest's own DS is in ds_save). The
 * access is checked by the CPU against the alias, which seg_shadow_desc
 * keeps below MONITOR_BASE; what
 * the alias refuses faults into the monitor and is emulated with the
 * guest's own GS base and limit. Intel SDM Vol. 2B MOV (Sreg forms).
 * A CS-prefixed data access is the same with the guest's CS: at ring 1 CS
 * is the translation cache's, and DS (what h_ident makes of the prefix)
 * may have another base and limit than the guest's CS.
 */
static int h_seg_alias(struct xlate *x, uint32_t alias)
{
    e_ds_swap(&x->e, alias);
    bool cmpxchg8b = x->insn.map == DEC_MAP_0F && x->insn.opcode == 0xC7 && x->insn.reg == 1;
    int rc = cmpxchg8b ? h_cmpxchg8b(x) : h_ident(x);
    e_ds_unswap(&x->e);
    return rc;
}

static int translate_insn(struct xlate *x)
{
    const struct rule_entry *r = rule_of(&x->insn);
    /* Before any rule runs: a rule that copies or re-encodes the guest's
     * memory operand would carry the guest's GS prefix into the monitor's
     * segment. Only rules that always exit for it may see it; one that
     * would copy it runs it with DS swapped for the guest's GS (where the
     * world switch provides the alias); every other one is emulated. */
    if (uses_state_seg(x) && !rule_only_exits(x, r)) {
        if (x->bt->cfg.guest_seg_alias && copied_as_is(x, r))
            return h_seg_alias(x, SF(seg_alias));
        return exit_insn(x, BT_EXIT_EMULATE, 0);
    }
    /* Through the guest's CS: copied forms swap DS for its alias; the
     * rules that re-encode an operand (indirect CALL/JMP) keep the DS
     * rewrite, right wherever DS and CS share a base and limit, as in
     * every flat-model OS. */
    if (x->bt->cfg.guest_seg_alias && x->bt->cfg.rewrite_cs_override && x->insn.has_mem &&
        x->insn.mem.seg == DEC_REG_CS && (x->insn.attr & (DEC_A_MEM_READ | DEC_A_MEM_WRITE)) &&
        copied_as_is(x, r))
        return h_seg_alias(x, SF(cs_alias));
    switch (r->rule) {
    case RULE_JMP: return h_jmp(x);
    case RULE_JCC: return h_jcc(x);
    case RULE_CALL: return h_call(x);
    case RULE_LOOP: return h_loop(x);
    case RULE_RET: return h_ret(x);
    case RULE_GRP_FF: return h_grp_ff(x);
    case RULE_CLI: return h_cli(x);
    case RULE_STI: return h_sti(x);
    case RULE_PUSHF: return h_pushf(x);
    case RULE_POPF: return h_popf(x);
    case RULE_IRET: return h_iret(x);
    case RULE_PUSH_SREG: return h_push_sreg(x, r->aux);
    case RULE_MOV_FROM_SREG: return h_mov_from_sreg(x);
    case RULE_MOV_FROM_CR: return h_mov_from_cr(x);
    case RULE_MOV_TO_CR: return h_mov_to_cr(x);
    case RULE_GRP_0F01: return h_grp_0f01(x);
    case RULE_NATIVE: return h_ident(x);
    case RULE_SEG_LOAD: return h_seg_load(x, r);
    case RULE_GRP6: return h_grp6(x, r);
    case RULE_EXIT: return h_exit(x, r);
    default: break;
    }
    /* Safety net: anything the table calls innocuous but the decoder marks
     * privileged, sensitive or control flow is left to the monitor. */
    if ((x->insn.attr & INSN_NEEDS_MONITOR) ||
        (x->insn.cf != DEC_CF_NONE && x->insn.cf != DEC_CF_UD))
        return exit_insn(x, BT_EXIT_EMULATE, 0);
    if (x->insn.map == DEC_MAP_0F && x->insn.opcode == 0xC7 && x->insn.reg == 1)
        return h_cmpxchg8b(x);
    return h_ident(x);
}

/* ---------------------------------------------------------------- blocks */

/* Up to DEC_MAX_LEN bytes of guest code at x->eip, as bt->fetch(x->eip,
 * DEC_MAX_LEN) would give them, from the chunk; the chunk is fetched again
 * from x->eip when it does not hold them. A chunk ends at its page (an
 * instruction that crosses into the next page is fetched on its own, as
 * before), so fetching ahead walks no page the block does not run. One
 * fetch (a guest page walk and a copy) per block instead of per
 * instruction: bt_fetch was 3% of a Linux boot's time. */
static uint32_t fetch_insn_bytes(struct xlate *x, const uint8_t **bytes)
{
    uint32_t off = x->eip - x->chunk_eip;
    if (x->eip < x->chunk_eip || off >= x->chunk_len || (x->chunk_len - off < DEC_MAX_LEN && !x->chunk_end)) {
        uint32_t n = MIN(BT_FETCH_CHUNK, PAGE_SIZE - (x->eip & (PAGE_SIZE - 1)));
        n = MAX(n, DEC_MAX_LEN);
        x->chunk_eip = x->eip;
        x->chunk_len = x->bt->fetch(x->bt->fetch_ctx, x->eip, x->chunk, n);
        x->chunk_end = x->chunk_len < n;
        off = 0;
    }
    *bytes = x->chunk + off;
    return MIN(x->chunk_len - off, DEC_MAX_LEN);
}

/* Decode the instruction at x->eip. Returns 1 ok, 0 not fetchable/decodable
 * as a whole (the block must end before it), -1 #UD-like (exit). */
static int fetch_decode(struct xlate *x)
{
    const uint8_t *buf;
    uint32_t got = fetch_insn_bytes(x, &buf);
    if (got == 0)
        return 0;
    int r = dec_decode(buf, got, x->eip, DEC_MODE_32, &x->insn);
    if (r == DEC_ERR_TRUNCATED)
        return got == DEC_MAX_LEN ? -1 : 0;
    if (r < 0)
        return -1;
    x->bytes = buf;
    x->next = x->eip + x->insn.len;
    return 1;
}

static void record_insn(struct xlate *x)
{
    struct tc_block *b = x->b;
    KASSERT(b->ninsns < TC_BLOCK_MAX_INSNS);
    b->imap[b->ninsns].tca_off = (uint16_t)(x->e.p - x->e.start);
    b->imap[b->ninsns].eip_off = (uint16_t)(x->eip - (x->in_callee ? b->inl_gva : b->guest_eip));
    b->imap[b->ninsns].callee = x->in_callee;
    if (x->in_callee)
        x->callee_left--; /* > 0: translate_body checked */
    b->imap[b->ninsns].flags = x->sti_shadow ? TC_IMAP_IRQ_SHADOW : 0;
    b->ninsns++;
}

/* Translate instructions until one ends the block; returns with x->eip at
 * the first guest byte not translated. */
static void translate_body(struct xlate *x)
{
    uint32_t page0 = x->b->guest_eip & PAGE_MASK;
    for (;;) {
        /* A callee inline had its room checked and lies in one page
         * (inline_callee), so neither check ends the block inside it on
         * the path inline_scan saw. An instruction off that path (its
         * bytes changed since, or a stale memo) ends the block: the
         * block's record of its callees' bytes would not cover it. */
        uint32_t inl_off = x->eip - x->b->inl_gva;
        bool off_path = x->in_callee && (x->callee_left == 0 || inl_off < x->b->inl_lo || inl_off >= x->b->inl_hi);
        bool full = x->b->ninsns == TC_BLOCK_MAX_INSNS || (x->bt->one_insn && x->b->ninsns == 1) ||
                    (uint32_t)(x->e.p - x->e.start) + x->side_stubs * stub_len(x->bt) >
                        TC_BLOCK_MAX_CODE - BLOCK_CODE_SLACK;
        bool new_page = off_path || (!x->in_callee && x->b->ninsns > 0 && (x->eip & PAGE_MASK) != page0);
        int d = (full || new_page) ? 0 : fetch_decode(x);
        if (d == 0 && x->b->ninsns == 0) {
            x->fault = true; /* the block's first instruction is not readable */
            return;
        }
        if (d == 0) {
            if (x->sti_shadow)
                e_irq_check(x, x->eip);
            e_branch_stub(x, x->eip);
            return;
        }
        record_insn(x);
        if (d < 0) {
            x->insn.len = 0, x->insn.has_mem = false, x->insn.has_modrm = false;
            exit_insn(x, BT_EXIT_UD, 0);
            return;
        }
        bool shadow = x->sti_shadow;
        x->sti_shadow = false;
        if (shadow && x->insn.cf != DEC_CF_NONE && rule_of(&x->insn)->rule != RULE_EXIT) {
            e_irq_check(x, x->eip); /* one insn early: chained branches skip the dispatcher */
            shadow = false;
        }
        int r = translate_insn(x);
        x->eip = x->next;
        if (r == END_BLOCK)
            return;
        if (shadow)
            e_irq_check(x, x->eip);
    }
}

void bt_set_stable_fn(struct bt *bt, bt_stable_fn stable) { bt->code_stable = stable; }

void bt_set_page_fn(struct bt *bt, bt_page_fn page_of)
{
    bt->page_of = page_of;
}

static uint32_t page_id(const struct bt *bt, uint32_t gva)
{
    return (bt->page_of ? bt->page_of(bt->fetch_ctx, gva) : gva) & PAGE_MASK;
}

int bt_translate(struct bt *bt, uint32_t guest_eip, struct tc_block **out)
{
    struct xlate x = { .bt = bt, .eip = guest_eip };
    const uint8_t *first;
    if (fetch_insn_bytes(&x, &first) == 0)
        return E_NOENT;
    x.b = tc_begin_block(&bt->tc, guest_eip);
    uint32_t meta_mark = bt->tc.meta_used;
    x.e = (struct emit){ .p = bt->scratch, .start = bt->scratch, .tca = x.b->tca, .bt = bt };
    translate_body(&x);
    if (x.fault) {
        bt->one_insn = false;
        bt->tc.meta_used = meta_mark; /* block not committed: drop its exits */
        return E_NOENT;
    }
    e_side_stubs(&x);
    struct tc_block *b = x.b;
    /* A block may end inside a callee (an instruction there that is not
     * what inline_scan saw): its own code then ends with the CALL. */
    b->guest_len = (x.in_callee ? x.call_next : x.eip) - guest_eip;
    b->page[0] = page_id(bt, guest_eip);
    b->page[1] = page_id(bt, guest_eip + (b->guest_len ? b->guest_len - 1 : 0));
    b->page[TC_PAGE_INLINE] = b->inl_hi ? page_id(bt, b->inl_gva + b->inl_lo) : b->page[0];
    bt->one_insn = false; /* after page_id: the monitor's page_of sees which block it serves */
    b->body_len = (uint32_t)(x.e.p - x.e.start);
    /* Branches to blocks already translated are chained now, as the
     * dispatcher would chain them the first time each is taken: that
     * first exit is saved (18,000 of a Linux boot's 60,000 branch exits).
     * The jumps go into the scratch copy, which is copied next. */
    for (uint8_t i = 0; bt->chaining && i < b->nexits; i++) {
        struct tc_block *to = b->exits[i].reason == BT_EXIT_BRANCH ? tc_lookup(&bt->tc, b->exits[i].target) : NULL;
        if (to)
            tc_chain_into(&bt->tc, &b->exits[i], to, bt->scratch + (b->exits[i].stub_tca - b->tca));
    }
    /* Whole words (the arena keeps blocks 16-byte aligned, so the padding
     * stays inside this block's space). */
    memcpy(b->tca, bt->scratch, ALIGN_UP((uint32_t)b->body_len, 4u));
    tc_commit_block(&bt->tc, b);
    tc_ibl_place(&bt->tc, b); /* its jump to the lookup stub to a copy in its own page */
    bt->stats.translations++;
    bt->stats.insns += b->ninsns;
    *out = b;
    return 0;
}

/* ---------------------------------------------------------------- shared stub */

/*
 * Indirect-branch lookup, entered by JMP with the target gva in EAX, the
 * guest's EAX in save_eax and every other register and flag the guest's
 * (the sites: h_ret, h_indirect, h_iret). No instruction in it touches
 * the flags (MOV, MOVZX, LEA, BSWAP, NOT, JECXZ, JMP), so there is nothing
 * to save and restore:
 *   start:  save ecx
 *           ecx = [ibl + slot(eax)*8] + eax  (the key is the negated eip: 0
 *           on a hit; the slot's 4 times, by LEA and MOVZX r32,r16, is
 *           scaled by 2); jecxz hit; the same with slot2(eax): jecxz hit2
 *   miss:   restore ecx
 *   miss_live: [ibl_target] = eax; restore eax; exit IBL_MISS (the
 *           dispatcher reads ibl_target)
 *   hit2:   ecx = slot2(eax)*4; jmp go;  hit: ecx = slot(eax)*4
 *   go:     eax = [ibl + ecx*2 + 4]
 *   loaded: [ibl_tca] = eax; restore eax, ecx
 *   last:   jmp [ibl_tca]
 *   recover: eax = NOT [ibl + ecx*2] + 1 (the target again); jmp miss
 * slot and slot2 are tc_ibl_slot and tc_ibl_slot2 (bt/tc.h). A hit is 13
 * instructions. Nothing in it looks at exit_req: bt_stop_at moves an
 * interrupted lookup to the miss path (or, at `last`, stops the block it
 * jumps to) by the labels kept in bt->ibl_at, and tc_stop_block_at points
 * a stopped block's own jmp to the stub at miss_live.
 */
_Static_assert(BT_IBL_ENTRIES == 16384u, "the lookup stub's slot is 14 bits: MOVZX r32,r16 of 4 times it");
#define IBL_STUB_BYTES 256u  /* bytes reserved for it (KASSERTed) */
/* [pfx] op reg, [ibl + ecx*2 + extra] (ecx: e_ibl_slot's) */
static void e_ibl_table_op(struct emit *e, uint8_t op, uint8_t reg, uint32_t extra)
{
    e_pfx(e);
    e8(e, op);
    e8(e, (uint8_t)(reg << 3 | 0x04)); /* SIB follows */
    e8(e, SIB_NOBASE_X2_ECX);           /* [disp32 + ecx*2] */
    e32(e, e->bt->cfg.state_base + SF(ibl) + extra);
}

/* ecx = 4 * tc_ibl_slot(eax), or 4 * tc_ibl_slot2(eax) when second: half
 * the slot's byte offset in the table (e_ibl_table_op scales it by 2) */
static void e_ibl_slot(struct emit *e, bool second)
{
    if (second) {
        e8(e, OP_MOV_R_RM), e8(e, 0xC8);                    /* mov ecx,eax */
        e8(e, OP_2BYTE), e8(e, OP_BSWAP_ECX);               /* bswap ecx */
        e8(e, OP_LEA), e8(e, 0x0C), e8(e, 0x01);            /* lea ecx,[ecx+eax] */
        e8(e, OP_LEA), e8(e, 0x0C), e8(e, SIB_NOBASE_X4_ECX), e32(e, 0); /* lea ecx,[ecx*4] */
    } else {
        e8(e, OP_LEA), e8(e, 0x0C), e8(e, SIB_NOBASE_X4_EAX), e32(e, 0); /* lea ecx,[eax*4] */
    }
    e8(e, OP_2BYTE), e8(e, OP_MOVZX16), e8(e, 0xC9);        /* movzx ecx,cx */
}

/* ecx = key of slot + eax (0 on a hit); jecxz to a rel8 patched later */
static uint8_t *e_ibl_probe(struct emit *e, bool second)
{
    e_ibl_slot(e, second);
    e_ibl_table_op(e, OP_MOV_R_RM, R_ECX, 0);                /* ecx = -key */
    e8(e, OP_LEA), e8(e, 0x0C), e8(e, 0x01);                /* lea ecx,[ecx+eax] */
    e8(e, OP_JECXZ);
    e8(e, 0);
    return e->p - 1;
}

static void patch_rel8(uint8_t *rel, const uint8_t *to)
{
    KASSERT(to - (rel + 1) >= -128 && to - (rel + 1) <= 127);
    *rel = (uint8_t)(to - (rel + 1));
}

static uint8_t ibl_off(const uint8_t *at, const uint8_t *p) { return (uint8_t)(p - at); }

static void emit_ibl_stub(struct bt *bt, uint8_t *at)
{
    struct emit e = { .p = at, .start = at, .tca = at, .bt = bt };
    struct bt_ibl_labels *l = &bt->ibl_at;
    e_state(&e, OP_MOV_RM_R, R_ECX, SF(save_ecx));
    uint8_t *hit_rel = e_ibl_probe(&e, false);
    uint8_t *hit2_rel = e_ibl_probe(&e, true);
    uint8_t *miss = e.p;
    l->miss = ibl_off(at, e.p);
    e_state(&e, OP_MOV_R_RM, R_ECX, SF(save_ecx));
    l->miss_live = ibl_off(at, e.p);
    e_state(&e, OP_MOV_RM_R, R_EAX, SF(ibl_target));
    e_state(&e, OP_MOV_R_RM, R_EAX, SF(save_eax));
    e_stub(&e, &bt->ibl_miss_exit);
    l->hit2 = ibl_off(at, e.p);
    patch_rel8(hit2_rel, e.p);
    e_ibl_slot(&e, true);
    e8(&e, OP_JMP8);
    uint8_t *go_rel = e.p;
    e8(&e, 0);
    patch_rel8(hit_rel, e.p);
    e_ibl_slot(&e, false);
    patch_rel8(go_rel, e.p);
    e_ibl_table_op(&e, OP_MOV_R_RM, R_EAX, 4);              /* go: */
    l->loaded = ibl_off(at, e.p);
    e_state(&e, OP_MOV_RM_R, R_EAX, SF(ibl_tca));
    e_state(&e, OP_MOV_R_RM, R_EAX, SF(save_eax));
    e_state(&e, OP_MOV_R_RM, R_ECX, SF(save_ecx));
    l->last = ibl_off(at, e.p);
    e_state(&e, OP_GRP_FF, FF_JMP, SF(ibl_tca));
    l->recover = ibl_off(at, e.p);
    e_ibl_table_op(&e, OP_MOV_R_RM, R_EAX, 0);              /* eax = -target */
    e8(&e, OP_GRP_F7), e8(&e, 0xD0);                        /* not eax */
    e8(&e, OP_LEA), e8(&e, 0x40), e8(&e, 1);                /* lea eax,[eax+1] */
    e8(&e, OP_JMP8), e8(&e, 0);
    patch_rel8(e.p - 1, miss);
    l->end = ibl_off(at, e.p);
    KASSERT((uint32_t)(e.p - at) <= IBL_STUB_BYTES && IBL_STUB_BYTES <= 256u);
}

/* ---------------------------------------------------------------- return to ring 3 */

/* Bytes reserved for the stub: it is 376 (KASSERTed in emit_r3_stub). */
#define R3_STUB_BYTES 448u

/* r3_stack offsets within the state segment, and of the guest's saved
 * values relative to ESP once the stub has pushed them (BT_R3_SAVE_*). */
#define R3_TOP (SF(r3_stack) + 4u * BT_R3_STACK_DWORDS)
#define R3_AT(i) (SF(r3_stack) + 4u * (i))

/* [esp+disp8] forms: op modrm(01, reg, 100) sib(none, esp) disp8. */
static void e_esp8(struct emit *e, uint8_t op, uint8_t reg, uint8_t disp)
{
    e8(e, op), e8(e, (uint8_t)(0x44 | reg << 3)), e8(e, 0x24), e8(e, disp);
}

/*
 * The shared return-to-ring-3 stub (bt_config.inline_sysexit). A SYSEXIT
 * site stores its exit descriptor in r3_desc and jumps here, with every
 * guest register and flag as the guest has them. The stub:
 *   1. moves to its own stack (SS = r3_priv_ss, the state segment; ESP in
 *      r3_stack) and pushes EFLAGS, EAX, ECX, ESI, EDI and ES there;
 *   2. takes the exit unless: r3_ok; no interrupt pending; virtual IF set
 *      (the STI before SYSEXIT) and TF, NT, RF, VM, AC, VIF, VIP, IOPL all
 *      clear; EDX (the return EIP) within r3_cs_limit; the guest's DS, ES,
 *      FS and GS selectors ones seg_native lets ring 1 load; and the
 *      guest's GDT entries 1.. (r3_gdt_dwords, read through ES = r3_gdtw,
 *      the monitor's window onto the GDT's frame) equal to gdt_low, i.e.
 *      the shadow GDT is current for ring 3;
 *   3. else builds an IRET frame to r3_cs:EDX, r3_ss:ECX with the guest's
 *      arithmetic flags, DF and IF set (SYSEXIT's effect, SDM Vol. 2B),
 *      restores the registers, loads DS, ES, FS and GS with the guest's
 *      selectors (the IRET nulls those ring 3 may not use, as it would for
 *      the guest, SDM Vol. 2A IRET) and runs IRET to ring 3.
 * The IRET variant (inline_iret3, e_iret3) checks the current NT and the
 * saved EIP instead of IF, TF... and EDX, builds the frame from r3_eip,
 * r3_uesp and r3_fl, stores the popped system flags and IF as the
 * guest's, and, while r3_prefault says a #PF handler is returning, first
 * calls the monitor to fill the faulting page (prefault_call) so that ring
 * 3's retry does not fault again.
 * The exit path restores everything and leaves through exit_entry with
 * exit_desc = r3_desc, as the site's own stub would have. Nothing in it
 * can fault: the monitor checked what its loads and the IRET take and
 * mapped the page the compare reads (vmm/vcpu.c r3_arm); a fault there
 * would be a monitor bug, which stops the VM as any fault at a TC address
 * outside a guest instruction does. The monitor learns of the return when
 * ring 3 next traps: the trap frame says CPL 3.
 */
static void emit_r3_stub(struct bt *bt, uint8_t *code, bool iret)
{
    struct emit r = { .p = code, .start = code, .tca = code, .bt = bt };
    struct emit *e = &r;
    uint8_t *slow[10];
    unsigned n = 0;
    const uint32_t sys_bad = EFLAGS_TF | EFLAGS_NT | EFLAGS_RF | EFLAGS_VM | EFLAGS_AC | EFLAGS_VIF | EFLAGS_VIP |
                             EFLAGS_IOPL;
    e_state(e, OP_MOV_RM_R, R_ESP, SF(r3_esp));
    e_state(e, OP_MOV_RM_SREG, SREG_SS, SF(r3_ss_save));
    e_state(e, OP_MOV_SREG_RM, SREG_SS, SF(r3_priv_ss));
    e8(e, OP_MOV_ESP_IMM32), e32(e, R3_TOP); /* in MOV SS's interrupt shadow */
    e8(e, OP_PUSHF);
    e8(e, OP_PUSH_EAX + R_EAX), e8(e, OP_PUSH_EAX + R_ECX), e8(e, OP_PUSH_EAX + R_ESI);
    e8(e, OP_PUSH_EAX + R_EDI), e8(e, OP_PUSH_ES);
    e_state(e, OP_GRP1_IMM8, GRP1_CMP, SF(r3_ok)), e8(e, 0);
    slow[n++] = e_jcc32_fwd(e, CC_E);
    e_state(e, OP_GRP1_IMM8_RM8, GRP1_CMP, SF(irq_pending)), e8(e, 0);
    slow[n++] = e_jcc32_fwd(e, CC_NE);
    if (iret) { /* the IRET's own EFLAGS were checked at its site; a task return exits */
        e_state(e, OP_GRP_F7, F7_TEST, SF(vflags_sys)), e32(e, EFLAGS_NT);
        slow[n++] = e_jcc32_fwd(e, CC_NE);
        e_state(e, OP_MOV_R_RM, R_EAX, SF(r3_eip));
        e_state(e, OP_CMP_R_RM, R_EAX, SF(r3_cs_limit));
        slow[n++] = e_jcc32_fwd(e, CC_A);
    } else {
        e_state(e, OP_GRP1_IMM32, GRP1_CMP, SF(vflags_if)), e32(e, BT_FLAGS_IF);
        slow[n++] = e_jcc32_fwd(e, CC_NE);
        e_state(e, OP_GRP_F7, F7_TEST, SF(vflags_sys)), e32(e, sys_bad);
        slow[n++] = e_jcc32_fwd(e, CC_NE);
        e_state(e, OP_CMP_R_RM, R_EDX, SF(r3_cs_limit));
        slow[n++] = e_jcc32_fwd(e, CC_A);
    }
    static const uint8_t data_sregs[4] = { BT_DS, BT_ES, BT_FS, BT_GS };
    for (unsigned i = 0; i < 4; i++) {
        e_state0f(e, OP_MOVZX16, R_EAX, SF(sel) + 4u * data_sregs[i]);
        e_pfx(e);
        e8(e, OP_GRP1_IMM8_RM8), e8(e, 0x80 | GRP1_CMP << 3 | R_EAX), e32(e, SF(seg_native)), e8(e, 0);
        slow[n++] = e_jcc32_fwd(e, CC_E); /* cmp byte [gs:eax+seg_native],0; je */
    }
    e_state(e, OP_MOV_SREG_RM, SREG_ES, SF(r3_gdtw));
    e_state(e, OP_MOV_R_RM, R_EDI, SF(r3_gdt_off));
    e8(e, OP_MOV_ESI_IMM32), e32(e, SF(gdt_low) + 8u);
    e_state(e, OP_MOV_R_RM, R_ECX, SF(r3_gdt_dwords));
    e8(e, OP_CLD);
    e8(e, OP_XOR_R_RM), e8(e, 0xC0); /* xor eax,eax: ZF = 1 if nothing is compared */
    e_pfx(e);
    e8(e, PFX_REP), e8(e, OP_CMPSD); /* repe cmpsd: gs:[esi] against es:[edi] */
    slow[n++] = e_jcc32_fwd(e, CC_NE);
    KASSERT(n <= sizeof(slow) / sizeof(slow[0]));
    if (iret) {
        /* A #PF handler's return: the monitor fills the faulting page's
         * shadow entry first (vmm/vcpu.c prefault_call), through the exit
         * routine with exit_desc = &prefault_call, and resumes here. */
        e_state(e, OP_GRP1_IMM8_RM8, GRP1_CMP, SF(r3_prefault)), e8(e, 0);
        uint8_t *go = e_jcc8(e, 0x4);                            /* je go */
        e_store_imm(e, SF(exit_desc), (uint32_t)(uintptr_t)&bt->prefault_call);
        e_state(e, OP_GRP_FF, FF_JMP, SF(exit_entry));
        bt->prefault_ret = (uint32_t)(uintptr_t)e->p - bt->cfg.cs_base;
        e_patch8(e, go);
    }
    /* The IRET frame below the saved registers: SS, ESP, EFLAGS, CS, EIP. */
    e_state(e, OP_GRP_FF, FF_PUSH, SF(r3_ss));
    if (iret) {
        e_state(e, OP_GRP_FF, FF_PUSH, SF(r3_uesp));
        e_state(e, OP_MOV_R_RM, R_EAX, SF(r3_fl));
    } else {
        e_esp8(e, OP_GRP_FF, FF_PUSH, 4u * (BT_R3_SAVE_ECX - BT_R3_SAVE_ES) + 4u);   /* the guest's ECX */
        e_esp8(e, OP_MOV_R_RM, R_EAX, 4u * (BT_R3_SAVE_EFLAGS - BT_R3_SAVE_ES) + 8u);
    }
    e8(e, OP_AND_EAX_IMM32), e32(e, BT_FLAGS_REAL);
    e8(e, 0x0D), e32(e, BT_FLAGS_IF | BT_FLAGS_FIXED1); /* or eax,imm32 */
    e8(e, OP_PUSH_EAX + R_EAX);
    e_state(e, OP_GRP_FF, FF_PUSH, SF(r3_cs));
    if (iret) {
        e_state(e, OP_GRP_FF, FF_PUSH, SF(r3_eip));
        /* The guest's virtual flags become the popped ones, as POPF at
         * CPL 0 would load them (IF set: checked at the site). */
        e_state(e, OP_MOV_R_RM, R_EAX, SF(r3_fl));
        e8(e, OP_AND_EAX_IMM32), e32(e, BT_FLAGS_POPF_SYS);
        e_state(e, OP_MOV_RM_R, R_EAX, SF(vflags_sys));
        e_store_imm(e, SF(vflags_if), BT_FLAGS_IF);
    } else {
        e8(e, OP_PUSH_EAX + R_EDX);
    }
    e_store_imm(e, SF(r3_via_iret), iret);
    const uint8_t frame = 20; /* bytes of the frame: the saves are above it */
    e_esp8(e, OP_MOV_R_RM, R_EDI, (uint8_t)(frame + 4u * (BT_R3_SAVE_EDI - BT_R3_SAVE_ES)));
    e_esp8(e, OP_MOV_R_RM, R_ESI, (uint8_t)(frame + 4u * (BT_R3_SAVE_ESI - BT_R3_SAVE_ES)));
    e_esp8(e, OP_MOV_R_RM, R_ECX, (uint8_t)(frame + 4u * (BT_R3_SAVE_ECX - BT_R3_SAVE_ES)));
    e_esp8(e, OP_MOV_R_RM, R_EAX, (uint8_t)(frame + 4u * (BT_R3_SAVE_EAX - BT_R3_SAVE_ES)));
    e_state(e, OP_MOV_SREG_RM, SREG_DS, SF(sel) + 4u * BT_DS);
    e_state(e, OP_MOV_SREG_RM, SREG_ES, SF(sel) + 4u * BT_ES);
    e_state(e, OP_MOV_SREG_RM, SREG_FS, SF(sel) + 4u * BT_FS);
    /* GS last, read through SS (the same segment): it was the state segment. */
    e8(e, PFX_SS), e8(e, OP_MOV_SREG_RM), e8(e, (uint8_t)(SREG_GS << 3 | MODRM_DISP32)), e32(e, SF(sel) + 4u * BT_GS);
    e8(e, OP_IRET);
    /* The exit: exit_desc = r3_desc, the guest's state back, exit_entry. */
    for (unsigned i = 0; i < n; i++)
        e_patch32(e, slow[i]);
    e_state(e, OP_GRP_FF, FF_PUSH, SF(r3_desc));
    e_state(e, OP_POP_RM, 0, SF(exit_desc));
    e8(e, OP_POP_ES), e8(e, OP_POP_EAX + R_EDI), e8(e, OP_POP_EAX + R_ESI), e8(e, OP_POP_EAX + R_ECX);
    e8(e, OP_POP_EAX + R_EAX), e8(e, OP_POPF);
    e_state(e, OP_MOV_SREG_RM, SREG_SS, SF(r3_ss_save));
    e_state(e, OP_MOV_R_RM, R_ESP, SF(r3_esp)); /* in MOV SS's interrupt shadow */
    e_state(e, OP_GRP_FF, FF_JMP, SF(exit_entry));
    KASSERT((uint32_t)(e->p - code) <= R3_STUB_BYTES);
    if (iret) {
        bt->r3_iret_stub = code;
        return;
    }
    bt->r3_stub = code;
    bt->r3_stub_off = (uint32_t)(uintptr_t)code - bt->cfg.cs_base;
    bt->r3_stub_len = (uint32_t)(e->p - code);
}

#define IBL_MISS_BYTES 48u

int bt_init(struct bt *bt, const struct bt_config *cfg, struct bt_vcpu *vcpu, uint8_t *code,
            uint32_t code_size, void *meta, uint32_t meta_size, bt_fetch_fn fetch,
            void *fetch_ctx, bt_enter_fn enter)
{
    memset(bt, 0, sizeof(*bt));
    uint32_t memo_n = BT_INLINE_MEMO;
    while (memo_n >= 64u && memo_n * (uint32_t)sizeof(struct bt_inline_memo) * 64u > meta_size)
        memo_n /= 2;
    if (memo_n >= 64u) { /* else a small arena (a test's): no memo */
        bt->inline_memo = meta;
        bt->inline_memo_n = memo_n;
        memset(meta, 0, memo_n * sizeof(struct bt_inline_memo));
        meta = (uint8_t *)meta + memo_n * sizeof(struct bt_inline_memo);
        meta_size -= memo_n * (uint32_t)sizeof(struct bt_inline_memo);
    }
    int r = tc_init(&bt->tc, code, code_size, meta, meta_size, vcpu);
    if (r < 0)
        return r;
    bt->vcpu = vcpu;
    bt->cfg = *cfg;
    bt->state_dec_sreg = (uint8_t)state_sreg_of(cfg);
    bt->tc.cs_base = cfg->cs_base;
    bt->fetch = fetch;
    bt->fetch_ctx = fetch_ctx;
    bt->enter = enter;
    bt->chaining = true;
    bt->successors = true;
    bt->inline_calls = true;
    bt->ibl_miss_exit.reason = BT_EXIT_IBL_MISS;
    bt->fault_exit.reason = BT_EXIT_CODE_FAULT;
    bt->irq_exit.reason = BT_EXIT_IRQ_WINDOW;
    /* Every stub starts with the same store to exit_desc; its first bytes
     * are what unchaining puts back. */
    struct emit head = { .p = bt->scratch, .start = bt->scratch, .tca = bt->scratch, .bt = bt };
    e_store_imm(&head, SF(exit_desc), 0);
    tc_set_stub_head(&bt->tc, bt->scratch);
    bt->ibl_stub = tc_reserve_code(&bt->tc, IBL_STUB_BYTES);
    if (!bt->ibl_stub)
        return E_INVAL;
    emit_ibl_stub(bt, bt->ibl_stub);
    /* Target of empty IBL slots, which only a lookup of BT_IBL_EMPTY
     * itself finds (their key is its; the monitor empties slots only while
     * no lookup runs, or leaves their targets, tc_unchain_all): the miss
     * exit with that target (registers and flags are already the guest's
     * when the stub jumps through a slot). */
    uint8_t *miss = tc_reserve_code(&bt->tc, IBL_MISS_BYTES);
    if (!miss)
        return E_INVAL;
    struct emit e = { .p = miss, .start = miss, .tca = miss, .bt = bt };
    e_store_imm(&e, SF(ibl_target), BT_IBL_EMPTY);
    e_stub(&e, &bt->ibl_miss_exit);
    KASSERT((uint32_t)(e.p - miss) <= IBL_MISS_BYTES);
    tc_set_ibl_miss(&bt->tc, (uint32_t)(uintptr_t)miss);
    tc_set_ibl_stop(&bt->tc, bt->ibl_stub, bt->ibl_at.end, bt->ibl_at.miss_live);
    if (cfg->exit_vector) {
        /* The routine exit stubs jump to through exit_entry: a software
         * interrupt through the one gate ring 1 may use (SDM Vol. 3A
         * §6.12.1.1); UD2 after it, never resumed. With exit_sysenter,
         * SYSENTER first, which under QEMU TCG costs far less than an
         * interrupt gate's IDT, TSS and descriptor reads; ESP is stored
         * before, as SYSENTER loads its own. */
        uint8_t *x = tc_reserve_code(&bt->tc, 32);
        if (!x)
            return E_INVAL;
        struct emit r = { .p = x, .start = x, .tca = x, .bt = bt };
        if (cfg->exit_sysenter) {
            e_state(&r, OP_MOV_RM_R, R_ESP, SF(exit_esp));
            bt->exit_sysenter_eip = (uint32_t)(uintptr_t)r.p - cfg->cs_base;
            e8(&r, OP_2BYTE), e8(&r, 0x34); /* SYSENTER */
        }
        e8(&r, 0xCD), e8(&r, cfg->exit_vector);
        e8(&r, OP_2BYTE), e8(&r, 0x0B); /* UD2 */
        vcpu->exit_entry = (uint32_t)(uintptr_t)x - cfg->cs_base;
    }
    bt->r3_stub = NULL;
    bt->r3_iret_stub = NULL;
    if (cfg->inline_sysexit) {
        if (!cfg->exit_vector || !cfg->state_seg_prefix || cfg->state_base != 0)
            return E_INVAL; /* the stub addresses bt_vcpu through SS as well as GS */
        uint8_t *stub = tc_reserve_code(&bt->tc, R3_STUB_BYTES);
        if (!stub)
            return E_INVAL;
        emit_r3_stub(bt, stub, false);
        if (cfg->inline_iret3 && cfg->inline_iret) {
            if (!(stub = tc_reserve_code(&bt->tc, R3_STUB_BYTES)))
                return E_INVAL;
            emit_r3_stub(bt, stub, true);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- dispatcher */

/*
 * After a miss translated b: when b ends in an unconditional direct branch
 * (JMP, CALL, or the next block after a full one), translate its target
 * too, while nothing of b has run yet, and chain b to it. Only on b's
 * first page (no page becomes code that was not), only while a block fits
 * without a flush. Saves a dispatcher round trip, and under QEMU TCG part
 * of the cost of writing a block's code: a store into a page QEMU has
 * translated code on walks that code until ten stores build a bitmap,
 * which the next block QEMU translates there drops; two blocks written
 * before QEMU runs either pay once. A conditional branch's fall-through
 * too was tried: a Linux boot then translated 80,000 blocks instead of
 * 60,500, 28,000 of them ahead, and the cache flushed once more.
 */
static void translate_successor(struct bt *bt, struct tc_block *b)
{
    /* The block's last exit, if it is a direct branch and no other exit
     * belongs to its instruction (a LOOP's two); a taken conditional branch
     * earlier in the block leaves by its own exit, at another eip. */
    struct bt_exit *e = b->nexits ? &b->exits[b->nexits - 1] : NULL;
    if (!e || e->reason != BT_EXIT_BRANCH)
        return;
    for (uint8_t i = 0; i + 1 < b->nexits; i++)
        if (b->exits[i].eip == e->eip)
            return;
    struct tc_block *t;
    if (e->to || !bt->chaining || !bt->successors || ((e->target ^ b->guest_eip) & PAGE_MASK) ||
        tc_lookup(&bt->tc, e->target) || !tc_block_fits(&bt->tc))
        return;
    uint32_t gen = bt->tc.generation;
    if (bt_translate(bt, e->target, &t) < 0 || bt->tc.generation != gen)
        return;
    bt->stats.successors++;
    tc_chain(&bt->tc, e, t);
}

struct tc_block *bt_block_for(struct bt *bt, uint32_t eip)
{
    struct tc_block *b = tc_lookup(&bt->tc, eip);
    /* one_insn serves this dispatch only, and only the instruction it was
     * armed for: left armed past a block that already existed there, it
     * once made the next block translated anywhere -- a fuzz program's
     * first, on a page the guest rewrote for the next program -- a
     * one-instruction block whose page was never write-protected, which
     * then ran as stale code after the rewrite. */
    if (b && bt->chain_from)
        bt->stats.branch_found++;
    /* Only the target of the lookup that missed: bt_run may have returned
     * in between (exit_req) and the monitor moved EIP (an interrupt
     * delivered), and a block entered for an eip no lookup wants takes a
     * slot a target may need (its holder moves to its second). */
    bt->ibl_insert = bt->ibl_insert && eip == bt->ibl_insert_eip;
    if (b && bt->ibl_insert)
        bt->stats.ibl_found++;
    bt->one_insn = bt->one_insn && !b && eip == bt->one_insn_eip;
    if (!b) {
        bool one = bt->one_insn;
        if (bt_translate(bt, eip, &b) < 0)
            return NULL;
        if (!one)
            translate_successor(bt, b);
    }
    /* Chain only the branch whose target this really is: between the exit
     * and this dispatch the monitor may have moved EIP (an interrupt
     * delivered after bt_run returned for its budget or an IRQ window). */
    if (bt->chain_from && bt->chain_from->target == eip && bt->chain_gen == bt->tc.generation && bt->chaining)
        tc_chain(&bt->tc, bt->chain_from, b);
    if (bt->ibl_insert)
        tc_ibl_insert(&bt->tc, b);
    bt->chain_from = NULL;
    bt->ibl_insert = false;
    return b;
}

void bt_request_exit(struct bt *bt)
{
    tc_unchain_all(&bt->tc);
}

int bt_stop_at(struct bt *bt, uint32_t *tca)
{
    bt->vcpu->exit_req = 1; /* bt_run returns at its next dispatch */
    if (tc_stop_block_at(&bt->tc, *tca) == 0)
        return BT_STOP_BLOCK;
    uint8_t *base = tc_ibl_stub_at(&bt->tc, *tca); /* the stub or its copy in this page */
    if (!base)
        return BT_STOP_EXITING; /* on its way out: an exit routine, a trampoline */
    uint32_t stub = (uint32_t)(uintptr_t)base, off = *tca - stub;
    const struct bt_ibl_labels *l = &bt->ibl_at;
    if ((off >= l->miss && off < l->hit2) || off >= l->recover)
        return BT_STOP_EXITING; /* on its miss path already */
    if (off == 0)
        *tca = stub + l->miss_live; /* EAX the target, ECX not saved yet */
    else if (off < l->loaded)
        *tca = stub + l->miss;      /* EAX the target, ECX saved */
    else if (off < l->last)
        *tca = stub + l->recover;   /* ECX the slot (4 times its index) */
    else                            /* jmp [ibl_tca]: the target block exits at its end */
        tc_stop_block_at(&bt->tc, bt->vcpu->ibl_tca + bt->tc.cs_base);
    return BT_STOP_LOOKUP;
}

/*
 * The exit descriptor ring-1 code left in exit_desc, or NULL. bt_vcpu is
 * writable from ring 1 (GS), so exit_desc is a claim, not a fact: it must
 * be one of the descriptors this translator made in the current TC
 * generation (tc_exit_valid), the lookup stub's miss exit, or the enter
 * function's trap descriptor. A forged one would make tc_chain patch a
 * "stub" anywhere the guest likes, at ring 0 (issue 11).
 */
static struct bt_exit *exit_of(struct bt *bt, uint32_t desc)
{
    struct bt_exit *e = (struct bt_exit *)(uintptr_t)desc;
    if (e == &bt->ibl_miss_exit || (bt->monitor_exit && e == bt->monitor_exit) || tc_exit_valid(&bt->tc, e))
        return e;
    return NULL;
}

int bt_run(struct bt *bt, uint32_t max_dispatch)
{
    struct bt_vcpu *v = bt->vcpu;
    for (uint32_t n = 0; max_dispatch == 0 || n < max_dispatch; n++) {
        if (v->exit_req) { /* bt_stop_at: the monitor has something to do */
            v->exit_req = 0;
            tc_restore_stopped(&bt->tc);
            return BT_EXIT_NONE;
        }
        if (v->irq_pending && v->vflags_if) { /* a block boundary is an insn boundary */
            /* The monitor will move EIP (to the interrupt handler): the
             * branch that led here must not be chained to whatever block
             * runs next. */
            bt->chain_from = NULL;
            bt->ibl_insert = false;
            bt->irq_exit.eip = v->eip;
            bt->exit = &bt->irq_exit;
            return BT_EXIT_IRQ_WINDOW;
        }
        struct tc_block *b = bt_block_for(bt, v->eip);
        if (!b) {
            bt->fault_exit.eip = v->eip;
            bt->exit = &bt->fault_exit;
            return BT_EXIT_CODE_FAULT;
        }
        bt->stats.dispatches++;
        bt->enter(v, (uint32_t)(uintptr_t)b->tca);
        struct bt_exit *e = exit_of(bt, v->exit_desc);
        if (!e) {
            bt->chain_from = NULL;
            bt->ibl_insert = false;
            bt->bad_exit.eip = v->eip;
            bt->bad_exit.target = v->exit_desc;
            bt->exit = &bt->bad_exit;
            return BT_EXIT_BAD_DESC;
        }
        if (e->reason == BT_EXIT_BRANCH) {
            v->eip = e->target;
            bt->chain_from = e;
            bt->chain_gen = bt->tc.generation;
            bt->stats.branch_exits++;
        } else if (e->reason == BT_EXIT_IBL_MISS) {
            v->eip = v->ibl_target;
            bt->ibl_insert = true;
            bt->ibl_insert_eip = v->eip;
            bt->stats.ibl_misses++;
        } else {
            v->eip = e->eip;
            bt->exit = e;
            return e->reason;
        }
    }
    return BT_EXIT_NONE;
}

static const char *const exit_names[BT_EXIT_COUNT] = {
    [BT_EXIT_NONE] = "none", [BT_EXIT_BRANCH] = "branch", [BT_EXIT_IBL_MISS] = "ibl-miss",
    [BT_EXIT_IRQ_WINDOW] = "irq-window", [BT_EXIT_HLT] = "hlt", [BT_EXIT_INT] = "int",
    [BT_EXIT_IRET] = "iret", [BT_EXIT_FAR] = "far", [BT_EXIT_SYSENTER] = "sysenter",
    [BT_EXIT_IO] = "io", [BT_EXIT_CPUID] = "cpuid", [BT_EXIT_RDTSC] = "rdtsc",
    [BT_EXIT_MSR] = "msr", [BT_EXIT_MOV_CR] = "mov-cr", [BT_EXIT_CR3_WRITE] = "cr3-write",
    [BT_EXIT_DESC] = "desc", [BT_EXIT_SEG] = "seg", [BT_EXIT_INVLPG] = "invlpg",
    [BT_EXIT_EMULATE] = "emulate", [BT_EXIT_UD] = "ud", [BT_EXIT_CODE_FAULT] = "code-fault",
    [BT_EXIT_BAD_DESC] = "bad-exit-desc",
};

const char *bt_exit_name(unsigned reason)
{
    return reason < BT_EXIT_COUNT && exit_names[reason] ? exit_names[reason] : "?";
}
