/*
 * IA-32 instruction decoder (see bt/decode.h for the contract).
 *
 * Map of this file, in decoding order (Intel SDM Vol. 2A §2.1 figure 2-1):
 *   1. legacy prefixes       read_prefixes()   groups 1-4, any order, repeats
 *   2. opcode escape         read_opcode()     0F, 0F 38, 0F 3A; VEX/EVEX/XOP
 *                                              and 3DNow! are refused here
 *   3. ModRM, SIB, disp      read_modrm()      16- and 32-bit addressing forms
 *   4. row selection         select_row()      first row of bt/opcodes.def whose
 *                                              prefix/reg/mod/rm/size predicates hold
 *   5. operands, immediates  fill_operands()   in the order the row lists them
 *   6. checks and attributes finish()          LOCK, Sreg/CR numbers, memory access
 *
 * Invariants: never reads buf[i] for i >= avail or i >= 15; no state outside
 * *insn; the only tables are const (generated build/bt/opcodes.c).
 */
#include "bt/decode.h"
#include "bt/decode_tables.h"

#ifdef HV86_HOSTED
#include <string.h>
#else
#include "kernel/kernel.h"
#endif

/* Legacy prefix bytes (SDM Vol. 2A §2.1.1). */
#define PFX_BYTE_LOCK  0xF0
#define PFX_BYTE_REPNE 0xF2
#define PFX_BYTE_REP   0xF3
#define PFX_BYTE_OSIZE 0x66
#define PFX_BYTE_ASIZE 0x67
#define PFX_BYTE_ES    0x26
#define PFX_BYTE_CS    0x2E
#define PFX_BYTE_SS    0x36
#define PFX_BYTE_DS    0x3E
#define PFX_BYTE_FS    0x64
#define PFX_BYTE_GS    0x65

/* Opcode escapes and encodings that are not legacy instructions here. */
#define OP_ESC_0F      0x0F
#define OP_ESC_0F38    0x38
#define OP_ESC_0F3A    0x3A
#define OP_3DNOW       0x0F  /* 0F 0F: AMD 3DNow! */
#define OP_VEX3        0xC4  /* LES in legacy form */
#define OP_VEX2        0xC5  /* LDS in legacy form */
#define OP_EVEX        0x62  /* BOUND in legacy form */
#define OP_XOP         0x8F  /* POP r/m in legacy form */

#define MODRM_MOD(b) ((b) >> 6)
#define MODRM_REG(b) (((b) >> 3) & 7)
#define MODRM_RM(b)  ((b) & 7)
#define MOD_REGISTER 3
#define RM_SIB       4        /* 32-bit: SIB follows */
#define RM_DISP32    5        /* 32-bit, mod 0: disp32, no base */
#define RM16_DISP16  6        /* 16-bit, mod 0: disp16, no base */
#define SIB_NO_INDEX 4
#define SIB_NO_BASE  5        /* with mod 0: disp32, no base */

/* Decoding cursor: bytes consumed so far, bounded by avail and 15. */
struct cursor {
    const uint8_t *buf;
    size_t avail;
    unsigned pos;
    int err;     /* first error hit while fetching, 0 if none */
};

static uint32_t fetch(struct cursor *c, unsigned size)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++) {
        if (c->pos >= DEC_MAX_LEN) {
            c->err = c->err ? c->err : DEC_ERR_TOO_LONG;
            return 0;
        }
        if (c->pos >= c->avail) {
            c->err = c->err ? c->err : DEC_ERR_TRUNCATED;
            return 0;
        }
        v |= (uint32_t)c->buf[c->pos++] << (8 * i);
    }
    return v;
}

static const uint8_t seg_of_prefix[256] = {
    [PFX_BYTE_ES] = DEC_REG_ES, [PFX_BYTE_CS] = DEC_REG_CS, [PFX_BYTE_SS] = DEC_REG_SS,
    [PFX_BYTE_DS] = DEC_REG_DS, [PFX_BYTE_FS] = DEC_REG_FS, [PFX_BYTE_GS] = DEC_REG_GS,
};

/* Consume legacy prefixes. Repeats are legal; within a group the last wins. */
static void read_prefixes(struct cursor *c, struct dec_insn *insn)
{
    for (;;) {
        if (c->pos >= c->avail || c->pos >= DEC_MAX_LEN)
            return;
        uint8_t b = c->buf[c->pos];
        if (seg_of_prefix[b]) {
            insn->seg = seg_of_prefix[b];
            insn->prefixes |= DEC_PFX_SEG;
        } else if (b == PFX_BYTE_LOCK) {
            insn->prefixes |= DEC_PFX_LOCK;
        } else if (b == PFX_BYTE_REPNE || b == PFX_BYTE_REP) {
            insn->rep = b;
            insn->prefixes |= b == PFX_BYTE_REP ? DEC_PFX_REP : DEC_PFX_REPNE;
        } else if (b == PFX_BYTE_OSIZE) {
            insn->prefixes |= DEC_PFX_OPSIZE;
        } else if (b == PFX_BYTE_ASIZE) {
            insn->prefixes |= DEC_PFX_ADSIZE;
        } else {
            return;
        }
        c->pos++;
        insn->num_prefixes++;
    }
}

static int skip_vex(struct cursor *c, struct dec_insn *insn, uint8_t first);
static int skip_3dnow(struct cursor *c, struct dec_insn *insn);
static void read_modrm(struct cursor *c, struct dec_insn *insn, bool reg_only);

/* C4/C5/62 with ModRM.mod == 11b, 8F with map bits >= 8: not LES/LDS/BOUND/POP
 * but a VEX/EVEX/XOP prefix (SDM Vol. 2A §2.3.5.6, AMD APM Vol. 3 §1.8). */
static bool is_vector_prefix(uint8_t b, uint8_t next)
{
    if (b == OP_XOP)
        return (next & 0x1F) >= 8;
    return (b == OP_VEX3 || b == OP_VEX2 || b == OP_EVEX) && MODRM_MOD(next) == MOD_REGISTER;
}

/* Read opcode bytes; sets insn->map/opcode. Returns 0 or DEC_ERR_*. */
static int read_opcode(struct cursor *c, struct dec_insn *insn)
{
    uint8_t b = (uint8_t)fetch(c, 1);
    if (c->err)
        return c->err;
    insn->map = DEC_MAP_PRIMARY;
    if (b == OP_VEX3 || b == OP_VEX2 || b == OP_EVEX || b == OP_XOP) {
        if (c->pos >= c->avail)
            return c->pos >= DEC_MAX_LEN ? DEC_ERR_TOO_LONG : DEC_ERR_TRUNCATED;
        if (is_vector_prefix(b, c->buf[c->pos])) {
            /* 66/F2/F3/LOCK before VEX/EVEX/XOP: #UD (SDM Vol. 2A §2.3.2). */
            if (insn->rep || (insn->prefixes & (DEC_PFX_OPSIZE | DEC_PFX_LOCK))) {
                insn->len = (uint8_t)c->pos;
                insn->ud = DEC_UD_RESERVED;
                return DEC_ERR_UD;
            }
            return skip_vex(c, insn, b);
        }
    }
    if (b == OP_ESC_0F) {
        b = (uint8_t)fetch(c, 1);
        insn->map = DEC_MAP_0F;
        if (b == OP_ESC_0F38 || b == OP_ESC_0F3A) {
            insn->map = b == OP_ESC_0F38 ? DEC_MAP_0F38 : DEC_MAP_0F3A;
            b = (uint8_t)fetch(c, 1);
        } else if (b == OP_3DNOW && !c->err) {
            return skip_3dnow(c, insn);
        }
        if (c->err)
            return c->err;
    }
    insn->opcode = b;
    insn->opcode_off = (uint8_t)(c->pos - 1);
    return 0;
}

/* 16-bit ModRM base/index pairs, rm = 0..7 (SDM Vol. 2A Table 2-1). */
static const uint8_t rm16_base[8] = {
    DEC_REG_BX, DEC_REG_BX, DEC_REG_BP, DEC_REG_BP, DEC_REG_SI, DEC_REG_DI, DEC_REG_BP, DEC_REG_BX,
};
static const uint8_t rm16_index[8] = {
    DEC_REG_SI, DEC_REG_DI, DEC_REG_SI, DEC_REG_DI, 0, 0, 0, 0,
};

static void read_disp(struct cursor *c, struct dec_insn *insn, unsigned size)
{
    insn->disp_off = (uint8_t)c->pos;
    insn->disp_size = (uint8_t)size;
    uint32_t v = fetch(c, size);
    if (size == 1)
        insn->mem.disp = (int8_t)v;
    else if (size == 2)
        insn->mem.disp = (int16_t)v;
    else
        insn->mem.disp = (int32_t)v;
}

static void read_modrm16(struct cursor *c, struct dec_insn *insn)
{
    struct dec_mem *m = &insn->mem;
    if (insn->mod == 0 && insn->rm == RM16_DISP16) {
        read_disp(c, insn, 2);
        return;
    }
    m->base = rm16_base[insn->rm];
    m->index = rm16_index[insn->rm];
    if (insn->mod)
        read_disp(c, insn, insn->mod == 1 ? 1 : 2);
}

static void read_modrm32(struct cursor *c, struct dec_insn *insn)
{
    struct dec_mem *m = &insn->mem;
    uint8_t base = insn->rm;
    if (insn->rm == RM_SIB) {
        insn->has_sib = true;
        insn->sib = (uint8_t)fetch(c, 1);
        uint8_t index = (insn->sib >> 3) & 7;
        base = insn->sib & 7;
        if (index != SIB_NO_INDEX) {
            m->index = (uint8_t)(DEC_REG_GPR32 + index);
            m->scale = (uint8_t)(1u << (insn->sib >> 6));
        }
        if (insn->mod == 0 && base == SIB_NO_BASE) {
            read_disp(c, insn, 4);
            return;
        }
    } else if (insn->mod == 0 && insn->rm == RM_DISP32) {
        read_disp(c, insn, 4);
        return;
    }
    m->base = (uint8_t)(DEC_REG_GPR32 + base);
    if (insn->mod)
        read_disp(c, insn, insn->mod == 1 ? 1 : 4);
}

/* ModRM and, for memory forms, SIB and displacement. reg_only: the mod
 * field is ignored and no addressing bytes follow (MOV CRn/DRn). */
static void read_modrm(struct cursor *c, struct dec_insn *insn, bool reg_only)
{
    insn->modrm_off = (uint8_t)c->pos;
    insn->modrm = (uint8_t)fetch(c, 1);
    insn->has_modrm = true;
    insn->mod = MODRM_MOD(insn->modrm);
    insn->reg = MODRM_REG(insn->modrm);
    insn->rm = MODRM_RM(insn->modrm);
    if (c->err || insn->mod == MOD_REGISTER || reg_only)
        return;
    insn->mem.scale = 1;
    if (insn->addrsize == 2)
        read_modrm16(c, insn);
    else
        read_modrm32(c, insn);
}

/* VEX/EVEX map-1 opcodes that carry an imm8 (shifts by immediate, shuffles, CMPPS...). */
static const bool vex_0f_imm8[256] = {
    [0x70] = true, [0x71] = true, [0x72] = true, [0x73] = true,
    [0xC2] = true, [0xC4] = true, [0xC5] = true, [0xC6] = true,
};

/* XOP maps 8/9/A (AMD APM Vol. 6 §1.8): immediate bytes after the ModRM. */
#define XOP_MAP_IMM8  8
#define XOP_MAP_IMM32 0xA

/*
 * VEX/EVEX/XOP: outside our CPU model (#UD), but the length is computed so a
 * caller skipping the instruction stays in sync: prefix bytes, opcode, ModRM
 * with SIB/displacement, then the immediate the map implies.
 */
static int skip_vex(struct cursor *c, struct dec_insn *insn, uint8_t first)
{
    unsigned map = DEC_MAP_0F, imm = 0;
    if (first == OP_VEX2) {
        fetch(c, 1);
    } else {
        uint8_t p0 = (uint8_t)fetch(c, 1);
        fetch(c, first == OP_EVEX ? 2 : 1);
        map = first == OP_EVEX ? (p0 & 0x07u) : (p0 & 0x1Fu);
    }
    insn->opcode_off = (uint8_t)c->pos;
    insn->opcode = (uint8_t)fetch(c, 1);
    insn->map = map <= DEC_MAP_0F3A ? (uint8_t)map : DEC_MAP_0F;
    if (first == OP_XOP)
        imm = map == XOP_MAP_IMM8 ? 1 : map == XOP_MAP_IMM32 ? 4 : 0;
    else if (map == DEC_MAP_0F3A || (map == DEC_MAP_0F && vex_0f_imm8[insn->opcode]))
        imm = 1;
    bool no_modrm = first != OP_XOP && map == DEC_MAP_0F && insn->opcode == 0x77; /* VZEROUPPER/ALL */
    if (!no_modrm && !c->err) {
        read_modrm(c, insn, false);
        fetch(c, imm);
    }
    insn->len = (uint8_t)c->pos;
    insn->ud = DEC_UD_UNSUPPORTED;
    return c->err ? c->err : DEC_ERR_UD;
}

/* 3DNow!: 0F 0F ModRM [SIB] [disp] imm8, the imm8 being the real opcode
 * (AMD APM Vol. 3 §1.2.7). #UD for us, length computed. */
static int skip_3dnow(struct cursor *c, struct dec_insn *insn)
{
    insn->opcode = OP_3DNOW;
    insn->opcode_off = (uint8_t)(c->pos - 1);
    read_modrm(c, insn, false);
    fetch(c, 1);
    insn->len = (uint8_t)c->pos;
    insn->ud = DEC_UD_UNSUPPORTED;
    return c->err ? c->err : DEC_ERR_UD;
}

/* Mandatory-prefix class for SSE rows: last F2/F3, else 66, else none. */
static uint8_t prefix_class(const struct dec_insn *insn)
{
    if (insn->rep == DEC_REP_REP)
        return PFX_F3;
    if (insn->rep == DEC_REP_REPNE)
        return PFX_F2;
    return insn->prefixes & DEC_PFX_OPSIZE ? PFX_66 : PFX_NONE;
}

static bool row_matches(const struct dec_row *r, const struct dec_insn *insn, uint8_t pfx,
                        bool check_mod)
{
    if (!(r->pfx & pfx))
        return false;
    if (r->reg != MATCH_ANY && r->reg != insn->reg)
        return false;
    if (r->rm != MATCH_ANY && r->rm != insn->rm)
        return false;
    if (check_mod && r->mod != MOD_ANY &&
        (r->mod == MOD_REG) != (insn->mod == MOD_REGISTER))
        return false;
    if (r->osz && r->osz != insn->opsize)
        return false;
    if (r->asz && r->asz != insn->addrsize)
        return false;
    return true;
}

/* First matching row, or NULL with insn->ud set to the reason. */
static const struct dec_row *select_row(const struct dec_opinfo *oi, struct dec_insn *insn)
{
    const struct dec_row *rows = &dec_rows[oi->first];
    uint8_t pfx = prefix_class(insn);
    for (unsigned i = 0; i < oi->count; i++)
        if (row_matches(&rows[i], insn, pfx, true))
            return &rows[i];
    insn->ud = DEC_UD_RESERVED;
    for (unsigned i = 0; i < oi->count; i++)
        if (row_matches(&rows[i], insn, pfx, false))
            insn->ud = insn->mod == MOD_REGISTER ? DEC_UD_NEEDS_MEM : DEC_UD_NEEDS_REG;
    return NULL;
}

/* Bytes of an operand of size code sz (memory size for split codes). */
static uint16_t size_bytes(uint8_t sz, const struct dec_insn *insn)
{
    static const uint8_t fixed[] = {
        [SZ_0] = 0, [SZ_B] = 1, [SZ_W] = 2, [SZ_D] = 4, [SZ_Q] = 8, [SZ_X] = 16,
        [SZ_T] = 10, [SZ_S] = 6, [SZ_VW] = 2, [SZ_DW] = 2, [SZ_DB] = 1,
        [SZ_LINE] = 64, /* CLFLUSH & co. act on a cache line (CPUID.1:EBX[15:8]*8 = 64) */
    };
    switch (sz) {
    case SZ_V:  case SZ_Z: return insn->opsize;
    case SZ_P:  return (uint16_t)(2 + insn->opsize);
    case SZ_A:  return (uint16_t)(2 * insn->opsize);
    case SZ_E:  return insn->opsize == 2 ? 14 : 28;   /* FPU env, SDM Vol. 1 §8.1.10 */
    case SZ_F:  return insn->opsize == 2 ? 94 : 108;  /* FSAVE image, SDM Vol. 1 §8.1.10 */
    case SZ_FX: return 512;                           /* FXSAVE area */
    default:    return fixed[sz];
    }
}

/* Register size for split size codes (Ev/w: register form uses v). */
static uint16_t reg_size(uint8_t sz, const struct dec_insn *insn)
{
    if (sz == SZ_VW)
        return insn->opsize;
    if (sz == SZ_DW || sz == SZ_DB)
        return 4;
    return size_bytes(sz, insn);
}

static uint8_t gpr(unsigned n, uint16_t size)
{
    if (size == 1)
        return (uint8_t)(DEC_REG_GPR8 + n);
    return (uint8_t)((size == 2 ? DEC_REG_GPR16 : DEC_REG_GPR32) + n);
}

static void set_reg(struct dec_operand *op, uint8_t reg, uint16_t size)
{
    op->kind = DEC_OP_REG;
    op->reg = reg;
    op->size = size;
}

static void set_mem(struct dec_operand *op, struct dec_insn *insn, uint16_t size)
{
    op->kind = DEC_OP_MEM;
    op->size = size;
    insn->has_mem = true;
}

static void read_imm(struct cursor *c, struct dec_insn *insn, struct dec_operand *op,
                     unsigned size, bool sign)
{
    uint8_t off = (uint8_t)c->pos;
    uint32_t v = fetch(c, size);
    if (sign && size == 1)
        v = (uint32_t)(int32_t)(int8_t)v;
    if (sign && size == 2)
        v = (uint32_t)(int32_t)(int16_t)v;
    if (insn->imm_size == 0) {
        insn->imm_off = off;
        insn->imm_size = (uint8_t)size;
    } else {
        insn->imm2_off = off;
        insn->imm2_size = (uint8_t)size;
    }
    op->kind = DEC_OP_IMM;
    op->imm = v;
}

/* Operand from ModRM.rm: memory, or a register of the method's class. */
static void rm_operand(struct dec_insn *insn, struct dec_operand *op, uint8_t method,
                       uint8_t sz)
{
    bool is_reg = insn->mod == MOD_REGISTER || method == OPM_RF;
    if (!is_reg) {
        set_mem(op, insn, size_bytes(sz, insn));
        return;
    }
    switch (method) {
    case OPM_Q: case OPM_N: set_reg(op, (uint8_t)(DEC_REG_MM + insn->rm), 8); break;
    case OPM_W: case OPM_U: set_reg(op, (uint8_t)(DEC_REG_XMM + insn->rm), 16); break;
    case OPM_STI: set_reg(op, (uint8_t)(DEC_REG_ST + insn->rm), 10); break;
    default: {
        uint16_t s = reg_size(sz, insn);
        set_reg(op, gpr(insn->rm, s), s);
    }
    }
}

/* String operand: DS(overridable):[eSI] or ES:[eDI] (SDM Vol. 1 §7.3.9). */
static void string_operand(struct dec_insn *insn, struct dec_operand *op, uint8_t method,
                           uint8_t sz)
{
    op->kind = DEC_OP_MEM;
    op->size = size_bytes(sz, insn);
    if (insn->has_mem && method == OPM_Y)
        return; /* keep the source in insn->mem (MOVS/CMPS) */
    insn->has_mem = true;
    bool a16 = insn->addrsize == 2;
    insn->mem.scale = 1;
    if (method == OPM_X) {
        insn->mem.base = a16 ? DEC_REG_SI : DEC_REG_ESI;
        insn->mem.seg = insn->seg ? insn->seg : DEC_REG_DS;
    } else {
        insn->mem.base = a16 ? DEC_REG_DI : DEC_REG_EDI;
        insn->mem.seg = DEC_REG_ES;
    }
}

static void fill_operand(struct cursor *c, struct dec_insn *insn, const struct dec_opspec *s,
                         struct dec_operand *op)
{
    uint8_t sz = s->size;
    op->flags = s->flags & (DEC_OPF_READ | DEC_OPF_WRITE | DEC_OPF_IMPLICIT);
    switch (s->method) {
    case OPM_E: case OPM_M: case OPM_R: case OPM_RF:
    case OPM_Q: case OPM_N: case OPM_W: case OPM_U: case OPM_STI:
        rm_operand(insn, op, s->method, sz);
        if (s->flags & SPEC_NOACCESS)
            op->size = 0;
        break;
    case OPM_G:   set_reg(op, gpr(insn->reg, reg_size(sz, insn)), reg_size(sz, insn)); break;
    case OPM_Z:   set_reg(op, gpr(insn->opcode & 7, reg_size(sz, insn)), reg_size(sz, insn)); break;
    case OPM_S:   set_reg(op, (uint8_t)(DEC_REG_SEG + insn->reg), 2); break;
    case OPM_C:   set_reg(op, (uint8_t)(DEC_REG_CR + insn->reg), 4); break;
    case OPM_D:   set_reg(op, (uint8_t)(DEC_REG_DR + insn->reg), 4); break;
    case OPM_P:   set_reg(op, (uint8_t)(DEC_REG_MM + insn->reg), 8); break;
    case OPM_V:   set_reg(op, (uint8_t)(DEC_REG_XMM + insn->reg), 16); break;
    case OPM_FIXED:   set_reg(op, s->reg, size_bytes(sz, insn)); break;
    case OPM_FIXED_V: set_reg(op, gpr(0, insn->opsize), insn->opsize); break;
    case OPM_ONE:
        op->kind = DEC_OP_IMM;
        op->imm = 1;
        op->size = 1;
        break;
    case OPM_I:
        op->size = size_bytes(sz, insn);
        read_imm(c, insn, op, op->size, false);
        break;
    case OPM_IS: /* imm8 sign-extended to the operand size (SDM Vol. 2A §3.1.1.1 "ib") */
        op->size = insn->opsize;
        read_imm(c, insn, op, size_bytes(sz, insn), true);
        if (op->size == 2)
            op->imm &= 0xFFFFu;
        break;
    case OPM_J: {
        unsigned size = sz == SZ_B ? 1 : insn->opsize;
        insn->rel_off = (uint8_t)c->pos;
        insn->rel_size = (uint8_t)size;
        uint32_t v = fetch(c, size);
        op->kind = DEC_OP_REL;
        op->imm = size == 1 ? (uint32_t)(int32_t)(int8_t)v
                  : size == 2 ? (uint32_t)(int32_t)(int16_t)v : v;
        op->size = (uint16_t)size;
        break;
    }
    case OPM_A:
        insn->imm_off = (uint8_t)c->pos;
        insn->imm_size = insn->opsize;
        op->imm = fetch(c, insn->opsize);
        insn->imm2_off = (uint8_t)c->pos;
        insn->imm2_size = 2;
        op->sel = (uint16_t)fetch(c, 2);
        op->kind = DEC_OP_FAR;
        op->size = size_bytes(SZ_P, insn);
        break;
    case OPM_O:
        insn->disp_off = (uint8_t)c->pos;
        insn->disp_size = insn->addrsize;
        insn->mem.disp = (int32_t)fetch(c, insn->addrsize);
        insn->mem.scale = 1;
        set_mem(op, insn, size_bytes(sz, insn));
        break;
    case OPM_X: case OPM_Y:
        string_operand(insn, op, s->method, sz);
        break;
    }
}

/* Default segment of a ModRM memory operand: SS when based on eBP/eSP. */
static uint8_t default_segment(const struct dec_mem *m)
{
    switch (m->base) {
    case DEC_REG_EBP: case DEC_REG_ESP: case DEC_REG_BP: return DEC_REG_SS;
    default: return DEC_REG_DS;
    }
}

/* #UD checks that depend on operand values (SDM Vol. 2B MOV, Vol. 2A LOCK). */
static int check_operands(struct dec_insn *insn, const struct dec_row *row)
{
    for (unsigned i = 0; i < row->nops; i++) {
        const struct dec_operand *op = &insn->ops[i];
        uint8_t m = row->ops[i].method;
        if (m == OPM_S && (op->reg >= DEC_REG_SEG6_ ||
                           (op->reg == DEC_REG_CS && (op->flags & DEC_OPF_WRITE))))
            return DEC_UD_BAD_REG;
        if (m == OPM_C && op->reg != DEC_REG_CR0 && op->reg != DEC_REG_CR2 &&
            op->reg != DEC_REG_CR3 && op->reg != DEC_REG_CR4)
            return DEC_UD_BAD_REG;
    }
    if ((insn->prefixes & DEC_PFX_LOCK) &&
        (!(row->attr & DEC_A_LOCKABLE) || insn->ops[0].kind != DEC_OP_MEM))
        return DEC_UD_LOCK;
    return DEC_UD_NONE;
}

/* XLAT reads DS:[eBX + unsigned AL] and MASKMOVQ/MASKMOVDQU write DS:[eDI]
 * (SDM Vol. 2B XLAT, MASKMOVQ, MASKMOVDQU), both segment-overridable, with
 * no memory operand in their encoding. They are described in insn->mem like
 * a string source, so that a user of has_mem and mem.seg (the translator's
 * "GS belongs to the monitor" test, the monitor's emulation) sees them. */
static void implicit_mem(struct dec_insn *insn, const struct dec_row *row)
{
    if (insn->has_mem || !(row->attr & (DEC_A_MEM_READ | DEC_A_MEM_WRITE)))
        return;
    bool a16 = insn->addrsize == 2;
    insn->has_mem = true;
    insn->mem.scale = 1;
    if (row->mnemonic == DEC_M_XLAT) {
        insn->mem.base = a16 ? DEC_REG_BX : DEC_REG_EBX;
        insn->mem.index = DEC_REG_AL;
    } else {
        insn->mem.base = a16 ? DEC_REG_DI : DEC_REG_EDI;
    }
    insn->mem.seg = insn->seg ? insn->seg : DEC_REG_DS;
}

static void finish(struct dec_insn *insn, const struct dec_row *row)
{
    implicit_mem(insn, row);
    insn->mnemonic = row->mnemonic;
    insn->cf = row->cf;
    insn->stack_slots = row->stack;
    insn->attr = row->attr;
    insn->flags_read = row->fr;
    insn->flags_written = row->fw;
    if (insn->has_mem && !insn->mem.seg)
        insn->mem.seg = insn->seg ? insn->seg : default_segment(&insn->mem);
    for (unsigned i = 0; i < insn->num_ops; i++) {
        const struct dec_operand *op = &insn->ops[i];
        if (op->kind != DEC_OP_MEM || (row->ops[i].flags & SPEC_NOACCESS))
            continue;
        if (op->flags & DEC_OPF_READ)
            insn->attr |= DEC_A_MEM_READ;
        if (op->flags & DEC_OPF_WRITE)
            insn->attr |= DEC_A_MEM_WRITE;
    }
    /* REPE/REPNE CMPS/SCAS also test ZF to stop (SDM Vol. 2B REP). */
    if ((row->attr & DEC_A_STRING) && insn->rep && (row->fw & DEC_FL_ZF))
        insn->flags_read |= DEC_FL_ZF;
    if (insn->cf == DEC_CF_RET || insn->cf == DEC_CF_RETF)
        insn->stack_extra = insn->imm_size ? (uint16_t)insn->ops[0].imm : 0;
}

int dec_decode(const uint8_t *buf, size_t avail, uint32_t addr, enum dec_mode mode,
               struct dec_insn *insn)
{
    struct cursor c = { .buf = buf, .avail = avail, .pos = 0, .err = 0 };
    memset(insn, 0, sizeof(*insn));
    insn->addr = addr;
    insn->mode = (uint8_t)mode;
    read_prefixes(&c, insn);
    unsigned dflt = mode == DEC_MODE_16 ? 2 : 4;
    insn->opsize = (uint8_t)(insn->prefixes & DEC_PFX_OPSIZE ? 6 - dflt : dflt);
    insn->addrsize = (uint8_t)(insn->prefixes & DEC_PFX_ADSIZE ? 6 - dflt : dflt);

    int err = read_opcode(&c, insn);
    if (err)
        return err;
    const struct dec_opinfo *oi = &dec_opinfo[insn->map][insn->opcode];
    if (oi->flags & OPI_MODRM)
        read_modrm(&c, insn, oi->flags & OPI_MODRM_REG);
    if (c.err)
        return c.err;
    insn->len = (uint8_t)c.pos;
    const struct dec_row *row = oi->count ? select_row(oi, insn) : NULL;
    if (!row) {
        insn->ud = oi->count ? insn->ud : DEC_UD_RESERVED;
        return DEC_ERR_UD;
    }
    insn->num_ops = row->nops;
    for (unsigned i = 0; i < row->nops; i++)
        fill_operand(&c, insn, &row->ops[i], &insn->ops[i]);
    if (c.err)
        return c.err;
    insn->len = (uint8_t)c.pos;
    finish(insn, row);
    insn->ud = row->ud ? row->ud : (uint8_t)check_operands(insn, row);
    if (insn->ud) {
        insn->mnemonic = row->ud ? row->mnemonic : DEC_M_INVALID;
        return DEC_ERR_UD;
    }
    return insn->len;
}

int decode_branch_target(const struct dec_insn *insn, uint32_t *target)
{
    if (!insn->rel_size)
        return -1;
    const struct dec_operand *op = &insn->ops[0];
    uint32_t t = insn->addr + insn->len + op->imm;
    if (insn->opsize == 2)
        t &= 0xFFFFu;
    *target = t;
    return 0;
}

int32_t dec_stack_bytes(const struct dec_insn *insn)
{
    if (insn->attr & DEC_A_STACK_VAR)
        return 0;
    return insn->stack_slots * (int32_t)insn->opsize + insn->stack_extra;
}

const char *dec_mnemonic_name(unsigned mnemonic)
{
    return mnemonic < DEC_M_COUNT ? dec_mnemonic_names[mnemonic] : "?";
}

static const char *const reg_names[DEC_REG_COUNT] = {
    "", "eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi",
    "ax", "cx", "dx", "bx", "sp", "bp", "si", "di",
    "al", "cl", "dl", "bl", "ah", "ch", "dh", "bh",
    "es", "cs", "ss", "ds", "fs", "gs", "seg6", "seg7",
    "cr0", "cr1", "cr2", "cr3", "cr4", "cr5", "cr6", "cr7",
    "dr0", "dr1", "dr2", "dr3", "dr4", "dr5", "dr6", "dr7",
    "st0", "st1", "st2", "st3", "st4", "st5", "st6", "st7",
    "mm0", "mm1", "mm2", "mm3", "mm4", "mm5", "mm6", "mm7",
    "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
};

const char *dec_reg_name(unsigned reg)
{
    return reg < DEC_REG_COUNT ? reg_names[reg] : "?";
}
