/*
 * Differential test of bt/decode.c against Zydis 4 (the oracle).
 *
 * Inputs:
 *   - every executable section of Debian's i386 vmlinux and busybox-static,
 *     read with a small ELF32 section-header parser, decoded by linear sweep:
 *     at each offset both decoders see the same bytes; the sweep advances by
 *     Zydis' length (ours if Zydis fails, 1 byte if both fail). Data in .text
 *     (jump tables, padding) is simply decoded as the CPU would decode it.
 *   - random byte strings from a fixed-seed xorshift generator: uniform bytes,
 *     and "structured" strings (random legacy prefixes + an escape 0F/0F 38/
 *     0F 3A + random bytes) so the two- and three-byte maps get coverage, in
 *     32-bit and 16-bit default size.
 * For each instruction: status, length, mnemonic (our id -> Zydis by name),
 * explicit operands (registers, memory seg/base/index/scale/disp and size,
 * immediates, relative targets, far pointers), the byte offsets/sizes of the
 * displacement and immediate fields, and EFLAGS read/written.
 * Deliberate differences are the `accepted_diffs` table below (and in
 * docs/bt.md); anything else is a mismatch and fails the test.
 *
 * Corpus directory: $HV86_DEBIAN_DIR, default build/debian (make fetches it via
 * scripts/fetch-debian.sh). Missing corpus -> those tests are skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <Zydis/Zydis.h>

#include "bt/decode.h"
#include "tests/unit/test_decode_elf.h"

#define RANDOM_SEED        0x6876383621u  /* "hv86!" */
#define RANDOM_COUNT       1000000
#define STRUCTURED_COUNT   1000000
#define RANDOM16_COUNT     300000
#define TRUNCATED_COUNT    300000
#define MAX_REPORTS        25

/* ------------------------------------------------------------------ results */

/* Why a pair of decodes that differ is nonetheless correct. */
enum accept {
    ACC_NONE = 0,
    ACC_NOT_IN_MODEL,   /* Zydis decodes an ISA extension outside our CPU model */
    ACC_HINT_NOP,       /* 0F 18-1F hint space: MPX/CET/CLDEMOTE on Zydis, NOP for us */
    ACC_UNSUP_ROW,      /* same instruction and length, but refused by our CPU model */
    ACC_ATTR_MODEL,     /* identical decode; one attribute modelled differently on purpose */
    ACC_COUNT
};
static const char *const accept_names[ACC_COUNT] = {
    [ACC_NOT_IN_MODEL] = "ISA extension outside our CPU model (we #UD)",
    [ACC_HINT_NOP] = "hint-NOP space (MPX/CET/CLDEMOTE, NOP operand forms)",
    [ACC_UNSUP_ROW] = "decoded, then refused as outside our CPU model (unsup rows)",
    [ACC_ATTR_MODEL] = "attribute modelled differently (attr_exceptions table)",
};

struct stats {
    const char *name;
    unsigned long total, ok, both_invalid, mismatches;
    unsigned long accepted[ACC_COUNT];
    unsigned reports;
};

/* ISA extensions Zydis knows that our CPU model does not have. */
static const ZydisISAExt not_in_model[] = {
    ZYDIS_ISA_EXT_AMD3DNOW, ZYDIS_ISA_EXT_AVX, ZYDIS_ISA_EXT_AVX2, ZYDIS_ISA_EXT_AVX2GATHER,
    ZYDIS_ISA_EXT_AVX512EVEX, ZYDIS_ISA_EXT_AVX512VEX, ZYDIS_ISA_EXT_AVXAES,
    ZYDIS_ISA_EXT_AVX_VNNI, ZYDIS_ISA_EXT_BMI1, ZYDIS_ISA_EXT_BMI2, ZYDIS_ISA_EXT_F16C,
    ZYDIS_ISA_EXT_FMA, ZYDIS_ISA_EXT_FMA4, ZYDIS_ISA_EXT_GFNI, ZYDIS_ISA_EXT_VAES,
    ZYDIS_ISA_EXT_VPCLMULQDQ, ZYDIS_ISA_EXT_XOP, ZYDIS_ISA_EXT_TBM, ZYDIS_ISA_EXT_AMX_BF16,
    ZYDIS_ISA_EXT_AMX_INT8, ZYDIS_ISA_EXT_AMX_TILE, ZYDIS_ISA_EXT_VTX, ZYDIS_ISA_EXT_SVM,
    ZYDIS_ISA_EXT_SMX, ZYDIS_ISA_EXT_SGX, ZYDIS_ISA_EXT_SGX_ENCLV, ZYDIS_ISA_EXT_RTM,
    ZYDIS_ISA_EXT_SSE4A, ZYDIS_ISA_EXT_MPX, ZYDIS_ISA_EXT_CET, ZYDIS_ISA_EXT_CLDEMOTE,
    ZYDIS_ISA_EXT_CLZERO, ZYDIS_ISA_EXT_ENQCMD, ZYDIS_ISA_EXT_HRESET, ZYDIS_ISA_EXT_KEYLOCKER,
    ZYDIS_ISA_EXT_KEYLOCKER_WIDE, ZYDIS_ISA_EXT_MCOMMIT, ZYDIS_ISA_EXT_MONITORX,
    ZYDIS_ISA_EXT_MOVDIR, ZYDIS_ISA_EXT_PCONFIG, ZYDIS_ISA_EXT_PKU, ZYDIS_ISA_EXT_PT,
    ZYDIS_ISA_EXT_RDPRU, ZYDIS_ISA_EXT_RDWRFSGS, ZYDIS_ISA_EXT_SERIALIZE, ZYDIS_ISA_EXT_SNP,
    ZYDIS_ISA_EXT_TDX, ZYDIS_ISA_EXT_TSX_LDTRK, ZYDIS_ISA_EXT_UINTR, ZYDIS_ISA_EXT_VMFUNC,
    ZYDIS_ISA_EXT_WAITPKG, ZYDIS_ISA_EXT_PADLOCK,
    ZYDIS_ISA_EXT_PREFETCHWT1, ZYDIS_ISA_EXT_AMD_INVLPGB, ZYDIS_ISA_EXT_INVPCID,
    ZYDIS_ISA_EXT_KNC, ZYDIS_ISA_EXT_KNCE, ZYDIS_ISA_EXT_KNCV, ZYDIS_ISA_EXT_LONGMODE,
    ZYDIS_ISA_EXT_RDPID,
};

static bool isa_not_in_model(ZydisISAExt ext)
{
    for (size_t i = 0; i < sizeof(not_in_model) / sizeof(not_in_model[0]); i++)
        if (not_in_model[i] == ext)
            return true;
    return false;
}

/* ------------------------------------------------------------------ compare */

struct pair {
    const uint8_t *bytes;
    size_t avail;
    enum dec_mode mode;
    int our_rc;
    struct dec_insn ours;
    ZyanStatus zst;
    ZydisDecodedInstruction zi;
    ZydisDecodedOperand zops[ZYDIS_MAX_OPERAND_COUNT];
};

static char why[256];

static bool differ(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return false;
}

static const char *our_name_as_zydis(unsigned m)
{
    return m == DEC_M_RETF ? "ret" : dec_mnemonic_name(m);
}

static bool same_reg(unsigned ours, ZydisRegister z)
{
    if (z == ZYDIS_REGISTER_NONE || ours == DEC_REG_NONE)
        return z == ZYDIS_REGISTER_NONE && ours == DEC_REG_NONE;
    const char *zn = ZydisRegisterGetString(z);
    return strcmp(dec_reg_name(ours), zn ? zn : "") == 0;
}

static bool compare_mem(const struct pair *p, const struct dec_operand *o,
                        const ZydisDecodedOperand *z)
{
    const struct dec_mem *m = &p->ours.mem;
    if (z->type != ZYDIS_OPERAND_TYPE_MEMORY)
        return differ("operand kind: ours mem, zydis %d", z->type);
    if (!same_reg(m->base, z->mem.base) || !same_reg(m->index, z->mem.index))
        return differ("base/index %s/%s vs %s/%s", dec_reg_name(m->base), dec_reg_name(m->index),
                    ZydisRegisterGetString(z->mem.base), ZydisRegisterGetString(z->mem.index));
    unsigned zscale = z->mem.index == ZYDIS_REGISTER_NONE ? 1 : z->mem.scale;
    if (m->scale != zscale)
        return differ("scale %u vs %u", m->scale, zscale);
    uint32_t mask = p->ours.addrsize == 2 ? 0xFFFFu : 0xFFFFFFFFu;
    if (((uint32_t)m->disp & mask) != ((uint32_t)z->mem.disp.value & mask))
        return differ("disp %#x vs %#llx", (unsigned)m->disp, (long long)z->mem.disp.value);
    if (z->mem.type == ZYDIS_MEMOP_TYPE_MEM && !same_reg(m->seg, z->mem.segment))
        return differ("segment %s vs %s", dec_reg_name(m->seg), ZydisRegisterGetString(z->mem.segment));
    if (o->size && z->mem.type == ZYDIS_MEMOP_TYPE_MEM && z->size && o->size * 8u != z->size)
        return differ("memory size %u vs %u bits", o->size * 8u, z->size);
    return true;
}

static bool compare_operand(const struct pair *p, const struct dec_operand *o,
                            const ZydisDecodedOperand *z)
{
    switch (o->kind) {
    case DEC_OP_REG:
        if (z->type != ZYDIS_OPERAND_TYPE_REGISTER || !same_reg(o->reg, z->reg.value))
            return differ("register %s vs %s", dec_reg_name(o->reg),
                        z->type == ZYDIS_OPERAND_TYPE_REGISTER ? ZydisRegisterGetString(z->reg.value)
                                                               : "(not a register)");
        return true;
    case DEC_OP_MEM:
        return compare_mem(p, o, z);
    case DEC_OP_IMM: case DEC_OP_REL: {
        if (z->type != ZYDIS_OPERAND_TYPE_IMMEDIATE)
            return differ("operand kind: ours imm, zydis %d", z->type);
        if ((o->kind == DEC_OP_REL) != (bool)z->imm.is_relative)
            return differ("relative flag differs");
        uint32_t mask = o->size >= 4 || o->kind == DEC_OP_REL ? 0xFFFFFFFFu
                        : (1u << (8 * o->size)) - 1;
        if ((o->imm & mask) != ((uint32_t)z->imm.value.u & mask))
            return differ("immediate %#x vs %#llx", o->imm, (unsigned long long)z->imm.value.u);
        return true;
    }
    case DEC_OP_FAR:
        if (z->type != ZYDIS_OPERAND_TYPE_POINTER || z->ptr.segment != o->sel ||
            z->ptr.offset != o->imm)
            return differ("far pointer differs");
        return true;
    }
    return differ("bad operand kind %d", o->kind);
}

/* Byte fields the translator relocates: displacement and immediates. */
static bool compare_fields(const struct pair *p)
{
    const struct dec_insn *d = &p->ours;
    const ZydisDecodedInstruction *zi = &p->zi;
    if (d->disp_size * 8u != zi->raw.disp.size ||
        (d->disp_size && d->disp_off != zi->raw.disp.offset))
        return differ("disp field %u@%u vs %u@%u", d->disp_size, d->disp_off,
                    zi->raw.disp.size / 8, zi->raw.disp.offset);
    uint8_t off[3], size[3];
    unsigned n = 0;
    if (d->imm_size) { off[n] = d->imm_off; size[n++] = d->imm_size; }
    if (d->imm2_size) { off[n] = d->imm2_off; size[n++] = d->imm2_size; }
    if (d->rel_size) { off[n] = d->rel_off; size[n++] = d->rel_size; }
    if (n == 2 && off[1] < off[0]) {
        uint8_t t = off[0]; off[0] = off[1]; off[1] = t;
        t = size[0]; size[0] = size[1]; size[1] = t;
    }
    for (unsigned i = 0; i < 2; i++) {
        unsigned zs = zi->raw.imm[i].size / 8;
        unsigned os = i < n ? size[i] : 0;
        if (os != zs || (os && off[i] != zi->raw.imm[i].offset))
            return differ("imm field %u: %u@%u vs %u@%u", i, os, i < n ? off[i] : 0, zs,
                        zi->raw.imm[i].offset);
    }
    return true;
}

/* Zydis flag masks use the architectural EFLAGS positions, as ours do. */
static bool compare_flags(const struct pair *p)
{
    const ZydisAccessedFlags *f = p->zi.cpu_flags;
    if (!f || (p->ours.attr & (DEC_A_X87)))
        return true;
    uint32_t zr = f->tested;
    uint32_t zw = f->modified | f->set_0 | f->set_1 | f->undefined;
    /* We do not track RF/VIF/VIP/ID/VM/AC side effects of far transfers. */
    const uint32_t checked = DEC_FL_ARITH | DEC_FL_IF | DEC_FL_DF | DEC_FL_TF;
    if (p->ours.cf != DEC_CF_NONE && p->ours.cf != DEC_CF_JCC && p->ours.cf != DEC_CF_LOOPCC)
        return true; /* far/interrupt transfers: Zydis models IDT semantics differently */
    if ((p->ours.flags_read & checked) != (zr & checked))
        return differ("flags read %#x vs %#x", p->ours.flags_read & checked, zr & checked);
    if ((p->ours.flags_written & checked) != (zw & checked))
        return differ("flags written %#x vs %#x", p->ours.flags_written & checked, zw & checked);
    return true;
}

/* Zydis' instruction category for each of our control-flow kinds. */
static const ZydisInstructionCategory cf_category[] = {
    [DEC_CF_NONE] = ZYDIS_CATEGORY_INVALID, [DEC_CF_JMP] = ZYDIS_CATEGORY_UNCOND_BR,
    [DEC_CF_JCC] = ZYDIS_CATEGORY_COND_BR, [DEC_CF_CALL] = ZYDIS_CATEGORY_CALL,
    [DEC_CF_RET] = ZYDIS_CATEGORY_RET, [DEC_CF_RETF] = ZYDIS_CATEGORY_RET,
    [DEC_CF_IRET] = ZYDIS_CATEGORY_RET, [DEC_CF_INT] = ZYDIS_CATEGORY_INTERRUPT,
    [DEC_CF_INT3] = ZYDIS_CATEGORY_INTERRUPT, [DEC_CF_INT1] = ZYDIS_CATEGORY_INTERRUPT,
    [DEC_CF_INTO] = ZYDIS_CATEGORY_INTERRUPT, [DEC_CF_LOOP] = ZYDIS_CATEGORY_COND_BR,
    [DEC_CF_LOOPCC] = ZYDIS_CATEGORY_COND_BR, [DEC_CF_JCXZ] = ZYDIS_CATEGORY_COND_BR,
    [DEC_CF_JMP_FAR] = ZYDIS_CATEGORY_UNCOND_BR, [DEC_CF_CALL_FAR] = ZYDIS_CATEGORY_CALL,
    [DEC_CF_SYSENTER] = ZYDIS_CATEGORY_SYSCALL, [DEC_CF_SYSEXIT] = ZYDIS_CATEGORY_SYSRET,
    [DEC_CF_SYSCALL] = ZYDIS_CATEGORY_SYSCALL, [DEC_CF_SYSRET] = ZYDIS_CATEGORY_SYSRET,
    [DEC_CF_HLT] = ZYDIS_CATEGORY_SYSTEM, [DEC_CF_UD] = ZYDIS_CATEGORY_MISC,
};
static const ZydisInstructionCategory branch_categories[] = {
    ZYDIS_CATEGORY_UNCOND_BR, ZYDIS_CATEGORY_COND_BR, ZYDIS_CATEGORY_CALL, ZYDIS_CATEGORY_RET,
    ZYDIS_CATEGORY_INTERRUPT, ZYDIS_CATEGORY_SYSCALL, ZYDIS_CATEGORY_SYSRET,
};

/* Attributes where we differ from Zydis on purpose (also in docs/bt.md). */
static const struct {
    unsigned mnemonic;
    const char *why;
} attr_exceptions[] = {
    { DEC_M_LGDT, "privileged: SDM LGDT #GP(0) if CPL != 0; Zydis 4.0 lacks the attribute" },
    { DEC_M_RSM, "cf=ud: #UD outside SMM; Zydis: category SYSRET" },
    { DEC_M_INVLPG, "no memory access: INVLPG does not read its operand" },
    { DEC_M_PREFETCH, "no memory access: prefetch hints never fault" },
    { DEC_M_PREFETCHW, "no memory access" }, { DEC_M_PREFETCHWT1, "no memory access" },
    { DEC_M_PREFETCHNTA, "no memory access" }, { DEC_M_PREFETCHT0, "no memory access" },
    { DEC_M_PREFETCHT1, "no memory access" }, { DEC_M_PREFETCHT2, "no memory access" },
};

static bool attr_exception(unsigned mnemonic)
{
    for (size_t i = 0; i < sizeof(attr_exceptions) / sizeof(attr_exceptions[0]); i++)
        if (attr_exceptions[i].mnemonic == mnemonic)
            return true;
    return false;
}

/* Control-flow kind, CPL0-only, and explicit memory read/write vs Zydis. */
static bool compare_attributes(const struct pair *p)
{
    const struct dec_insn *d = &p->ours;
    ZydisInstructionCategory zc = p->zi.meta.category;
    bool z_branch = false;
    for (size_t i = 0; i < sizeof(branch_categories) / sizeof(branch_categories[0]); i++)
        z_branch |= zc == branch_categories[i];
    bool o_branch = d->cf != DEC_CF_NONE && d->cf != DEC_CF_HLT && d->cf != DEC_CF_UD;
    if (o_branch != z_branch || (o_branch && cf_category[d->cf] != zc))
        return differ("control flow %u vs Zydis category %s", d->cf,
                      ZydisCategoryGetString(zc));
    bool z_priv = (p->zi.attributes & ZYDIS_ATTRIB_IS_PRIVILEGED) != 0;
    if (z_priv != ((d->attr & DEC_A_PRIV) != 0))
        return differ("privileged %d vs %d", (d->attr & DEC_A_PRIV) != 0, z_priv);
    bool zr = false, zw = false;
    for (unsigned i = 0; i < p->zi.operand_count_visible; i++) {
        const ZydisDecodedOperand *z = &p->zops[i];
        if (z->visibility != ZYDIS_OPERAND_VISIBILITY_EXPLICIT ||
            z->type != ZYDIS_OPERAND_TYPE_MEMORY || z->mem.type != ZYDIS_MEMOP_TYPE_MEM)
            continue;
        zr |= (z->actions & ZYDIS_OPERAND_ACTION_MASK_READ) != 0;
        zw |= (z->actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) != 0;
    }
    /* XLAT, MASKMOVQ, string ops: implicit memory, hidden operands in Zydis. */
    bool explicit_mem = false;
    for (unsigned i = 0; i < d->num_ops; i++)
        explicit_mem |= d->ops[i].kind == DEC_OP_MEM && !(d->ops[i].flags & DEC_OPF_IMPLICIT);
    bool implicit_mem = !explicit_mem && (d->attr & (DEC_A_MEM_READ | DEC_A_MEM_WRITE));
    if (!implicit_mem && (zr != ((d->attr & DEC_A_MEM_READ) != 0) ||
                          zw != ((d->attr & DEC_A_MEM_WRITE) != 0)))
        return differ("memory read/write %d/%d vs %d/%d", (d->attr & DEC_A_MEM_READ) != 0,
                      (d->attr & DEC_A_MEM_WRITE) != 0, zr, zw);
    return true;
}

static bool compare_ok(const struct pair *p, bool attributes)
{
    const struct dec_insn *d = &p->ours;
    if (d->len != p->zi.length)
        return differ("length %u vs %u", d->len, p->zi.length);
    const char *zn = ZydisMnemonicGetString(p->zi.mnemonic);
    if (strcmp(our_name_as_zydis(d->mnemonic), zn))
        return differ("mnemonic %s vs %s", dec_mnemonic_name(d->mnemonic), zn);
    const struct dec_operand *ours[DEC_MAX_OPS];
    const ZydisDecodedOperand *theirs[ZYDIS_MAX_OPERAND_COUNT];
    unsigned no = 0, nz = 0;
    for (unsigned i = 0; i < d->num_ops; i++)
        if (!(d->ops[i].flags & DEC_OPF_IMPLICIT))
            ours[no++] = &d->ops[i];
    for (unsigned i = 0; i < p->zi.operand_count_visible; i++)
        if (p->zops[i].visibility == ZYDIS_OPERAND_VISIBILITY_EXPLICIT)
            theirs[nz++] = &p->zops[i];
    if (no != nz)
        return differ("explicit operand count %u vs %u", no, nz);
    for (unsigned i = 0; i < no; i++)
        if (!compare_operand(p, ours[i], theirs[i]))
            return false;
    return compare_fields(p) && compare_flags(p) && (!attributes || compare_attributes(p));
}

static enum accept accepted_difference(const struct pair *p)
{
    bool zok = ZYAN_SUCCESS(p->zst);
    const struct dec_insn *d = &p->ours;
    if (zok && p->our_rc > 0 && attr_exception(d->mnemonic) && compare_ok(p, false))
        return ACC_ATTR_MODEL;
    if (zok && p->our_rc == DEC_ERR_UD) {
        if (p->zi.encoding != ZYDIS_INSTRUCTION_ENCODING_LEGACY) {
            /* For VEX/EVEX/XOP/3DNow! we still promise the right length. */
            return d->len == p->zi.length ? ACC_NOT_IN_MODEL : ACC_NONE;
        }
        if (d->ud == DEC_UD_UNSUPPORTED && d->len == p->zi.length &&
            !strcmp(dec_mnemonic_name(d->mnemonic), ZydisMnemonicGetString(p->zi.mnemonic)))
            return ACC_UNSUP_ROW;
        if (isa_not_in_model(p->zi.meta.isa_ext))
            return ACC_NOT_IN_MODEL;
    }
    /* Hint NOPs: Zydis decodes MPX/CET/CLDEMOTE (or rejects bad MPX forms);
     * a CPU without those extensions executes them as NOP. */
    bool hint = p->our_rc > 0 && d->mnemonic == DEC_M_NOP && d->map == DEC_MAP_0F &&
                (d->opcode == 0x0D || (d->opcode >= 0x18 && d->opcode <= 0x1F));
    if (hint && zok && d->len == p->zi.length &&
        (isa_not_in_model(p->zi.meta.isa_ext) || p->zi.mnemonic == ZYDIS_MNEMONIC_NOP))
        return ACC_HINT_NOP; /* NOP either way; Zydis' operand choice varies here */
    if (hint && !zok && (d->opcode == 0x1A || d->opcode == 0x1B))
        return ACC_HINT_NOP;
    return ACC_NONE;
}

static void report(struct stats *st, const struct pair *p, const char *what)
{
    if (st->reports++ >= MAX_REPORTS && !getenv("HV86_DECODE_VERBOSE"))
        return;
    char hex[64] = "";
    size_t n = p->avail < 15 ? p->avail : 15;
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 3 * i, sizeof(hex) - 3 * i, "%02x ", p->bytes[i]);
    char text[96] = "(invalid)";
    if (ZYAN_SUCCESS(p->zst)) {
        ZydisFormatter fmt;
        ZydisFormatterInit(&fmt, ZYDIS_FORMATTER_STYLE_INTEL);
        ZydisFormatterFormatInstruction(&fmt, &p->zi, p->zops, p->zi.operand_count_visible,
                                        text, sizeof(text), 0, NULL);
    }
    print_message("  DIFF[%s] mode %d: %s| zydis: %s (len %u, isa %s) | ours: rc %d %s len %u ud %u | %s\n",
                  st->name, p->mode, hex, text, ZYAN_SUCCESS(p->zst) ? p->zi.length : 0,
                  ZYAN_SUCCESS(p->zst) ? ZydisISAExtGetString(p->zi.meta.isa_ext) : "-",
                  p->our_rc, dec_mnemonic_name(p->ours.mnemonic), p->ours.len, p->ours.ud, what);
}

static ZydisDecoder zdec32, zdec16;

/* Decode bytes with both decoders, classify; returns bytes to advance by. */
static unsigned check_one(struct stats *st, const uint8_t *bytes, size_t avail, enum dec_mode mode)
{
    static struct pair p;
    p.bytes = bytes;
    p.avail = avail;
    p.mode = mode;
    p.our_rc = dec_decode(bytes, avail, 0x1000, mode, &p.ours);
    p.zst = ZydisDecoderDecodeFull(mode == DEC_MODE_32 ? &zdec32 : &zdec16, bytes, avail,
                                   &p.zi, p.zops);
    st->total++;
    bool zok = ZYAN_SUCCESS(p.zst), ook = p.our_rc > 0;
    if (zok && ook && compare_ok(&p, true)) {
        st->ok++;
    } else if (!zok && !ook && (p.zst == ZYDIS_STATUS_INSTRUCTION_TOO_LONG) ==
                                   (p.our_rc == DEC_ERR_TOO_LONG)) {
        st->both_invalid++;
    } else {
        enum accept a = accepted_difference(&p);
        if (a != ACC_NONE) {
            st->accepted[a]++;
            if (getenv("HV86_DECODE_VERBOSE"))
                report(st, &p, accept_names[a]);
        } else {
            st->mismatches++;
            report(st, &p, zok && ook ? why : zok ? "we reject, Zydis accepts"
                           : ook ? "we accept, Zydis rejects" : "too long on one side only");
        }
    }
    if (zok)
        return p.zi.length;
    return ook ? (unsigned)p.our_rc : 1;
}

static void print_stats(const struct stats *st)
{
    print_message("%s: %lu decoded, %lu identical, %lu invalid in both, %lu mismatches\n",
                  st->name, st->total, st->ok, st->both_invalid, st->mismatches);
    for (int a = 1; a < ACC_COUNT; a++)
        if (st->accepted[a])
            print_message("  accepted difference: %lu x %s\n", st->accepted[a], accept_names[a]);
}

/* ------------------------------------------------------------------ corpus */

static const char *corpus_dir(void)
{
    const char *d = getenv("HV86_DEBIAN_DIR");
    return d && *d ? d : "build/debian";
}

static void sweep_section(const uint8_t *code, uint32_t size, void *ctx)
{
    for (uint32_t pos = 0; pos < size;)
        pos += check_one(ctx, code + pos, size - pos, DEC_MODE_32);
}

/* Linear sweep of every executable section of one corpus file. */
static void sweep_elf(const char *name, struct stats *st)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", corpus_dir(), name);
    size_t size = 0;
    uint8_t *f = elf_read_file(path, &size);
    if (!f)
        fail_msg("corpus file %s missing: `make test` fetches it (scripts/fetch-debian.sh)", path);
    unsigned long bytes = elf_for_each_text(f, size, sweep_section, st);
    print_message("%s: %lu bytes of executable sections\n", path, bytes);
    free(f);
    assert_true(bytes > 0);
}

static void corpus_test(const char *file, unsigned long min_insns)
{
    struct stats st = { .name = file };
    sweep_elf(file, &st);
    print_stats(&st);
    assert_true(st.total > min_insns);
    assert_int_equal(st.mismatches, 0);
}

static void test_corpus_vmlinux(void **state)
{
    corpus_test("vmlinux", 1000000);
}

static void test_corpus_busybox(void **state)
{
    corpus_test("busybox", 100000);
}

/* ------------------------------------------------------------------ random */

static uint64_t rng = RANDOM_SEED;

static uint32_t next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static void fill_random(uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)next_random();
}

static const uint8_t legacy_prefixes[] = { 0x66, 0x67, 0xF2, 0xF3, 0xF0, 0x2E, 0x26, 0x64 };

/* Random prefixes (usually none or one), an escape, then random bytes. */
static size_t structured_random(uint8_t *b)
{
    fill_random(b, 16);
    size_t n = 0;
    unsigned r = next_random();
    unsigned npfx = (r & 3) == 3 ? 1 + ((r >> 2) & 1) : (r & 1);
    for (unsigned i = 0; i < npfx; i++)
        b[n++] = legacy_prefixes[next_random() % sizeof(legacy_prefixes)];
    switch ((r >> 4) % 4) {
    case 0: break;
    case 1: b[n++] = 0x0F; break;
    case 2: b[n++] = 0x0F; b[n++] = 0x38; break;
    case 3: b[n++] = 0x0F; b[n++] = 0x3A; break;
    }
    return 15;
}

/* truncate: hand the decoders only 1..15 of the bytes (fetch at a buffer end). */
static void random_run(const char *name, unsigned long count, enum dec_mode mode, bool structured,
                       bool truncate)
{
    struct stats st = { .name = name };
    uint8_t b[16];
    print_message("%s: %lu strings, seed %#llx\n", name, count, (unsigned long long)rng);
    for (unsigned long i = 0; i < count; i++) {
        size_t n = 15;
        if (structured)
            n = structured_random(b);
        else
            fill_random(b, 15);
        if (truncate)
            n = 1 + next_random() % 15;
        check_one(&st, b, n, mode);
    }
    print_stats(&st);
    assert_int_equal(st.mismatches, 0);
}

static void test_random32(void **state)
{
    random_run("random32", RANDOM_COUNT, DEC_MODE_32, false, false);
}

static void test_structured32(void **state)
{
    random_run("structured32", STRUCTURED_COUNT, DEC_MODE_32, true, false);
}

static void test_random16(void **state)
{
    random_run("random16", RANDOM16_COUNT, DEC_MODE_16, false, false);
    random_run("structured16", RANDOM16_COUNT, DEC_MODE_16, true, false);
}

static void test_random_truncated(void **state)
{
    random_run("truncated32", TRUNCATED_COUNT, DEC_MODE_32, true, true);
}

/* Truncation: every proper prefix of a valid instruction is an error. */
static void test_truncation(void **state)
{
    static const uint8_t insn[] = { 0x66, 0x81, 0x84, 0x88, 0x44, 0x33, 0x22, 0x11, 0x34, 0x12 };
    struct dec_insn d;
    assert_int_equal(dec_decode(insn, sizeof(insn), 0, DEC_MODE_32, &d), (int)sizeof(insn));
    for (size_t n = 0; n < sizeof(insn); n++)
        assert_int_equal(dec_decode(insn, n, 0, DEC_MODE_32, &d), DEC_ERR_TRUNCATED);
    /* 14 prefixes + 2-byte instruction = 16 bytes: too long. */
    uint8_t longi[20];
    memset(longi, 0x66, 14);
    longi[14] = 0x89;
    longi[15] = 0xC0;
    assert_int_equal(dec_decode(longi, 16, 0, DEC_MODE_32, &d), DEC_ERR_TOO_LONG);
    assert_int_equal(dec_decode(longi + 1, 15, 0, DEC_MODE_32, &d), 15);
}

int main(void)
{
    ZydisDecoderInit(&zdec32, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32);
    ZydisDecoderInit(&zdec16, ZYDIS_MACHINE_MODE_LEGACY_16, ZYDIS_STACK_WIDTH_16);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_random32),
        cmocka_unit_test(test_structured32),
        cmocka_unit_test(test_random16),
        cmocka_unit_test(test_random_truncated),
        cmocka_unit_test(test_corpus_vmlinux),
        cmocka_unit_test(test_corpus_busybox),
    };
    return cmocka_run_group_tests_name("decode_zydis", tests, NULL, NULL);
}
