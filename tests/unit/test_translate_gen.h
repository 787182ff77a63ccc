/*
 * Randomized generator of innocuous guest programs for test_translate.c:
 * integer, memory ([EDI + d8] only), flag and stack instructions; forward
 * conditional jumps; bounded backward loops (ECX counter); direct and
 * indirect calls of subroutines; indirect forward jumps through a table in
 * the data area; rep string instructions both ways. Registers: EAX EBX
 * EDX ESI EBP are data, ECX the loop/string counter, EDI the data base
 * (saved around string instructions), ESP the stack; so every program
 * terminates and touches only the data area and the stack.
 *
 * No result depends on a flag the SDM leaves undefined: the generator
 * tracks which status flags are undefined (AF after logic ops, OF after
 * multi-bit shifts, SF/ZF/AF/PF after MUL/IMUL, OF/SF/AF/PF after BT, ...;
 * SDM Vol. 2 per instruction, Vol. 1 App. A) and emits CMP r,imm8, which
 * defines all six, before anything reads one: a flag consumer, a branch,
 * call, return or join, and the final HLT. Real CPUs give undefined flags
 * fixed values, but QEMU's lazy flags give them values that depend on where
 * its own translation blocks start, which the translator changes; with
 * them in play the native and translated runs diverged in 14 of 10,000
 * programs under qemu-i386 with nothing wrong in the translator.
 */
#ifndef HV86_TESTS_TEST_TRANSLATE_GEN_H
#define HV86_TESTS_TEST_TRANSLATE_GEN_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GEN_MAX_LABELS 256
#define GEN_MAX_FIXUPS 256
#define GEN_SUBS 3
#define GEN_TABLE_SUBS 64   /* data offset of the subroutine table */
#define GEN_TABLE_JMPS 96   /* data offset of the indirect-jump table (8 slots) */

struct gen {
    uint32_t s;                      /* xorshift32 state */
    uint8_t *base, *p;
    uint32_t label[GEN_MAX_LABELS];  /* offset from base, ~0 = unset */
    int nlabels;
    struct { uint32_t at; uint8_t size; int label; } fix[GEN_MAX_FIXUPS];
    int nfix;
    int jslot;                       /* next indirect-jump table slot */
    int jlabel[8];
    uint32_t undef;                  /* EFLAGS status bits now undefined */
};

#define GEN_CF 0x001u
#define GEN_PF 0x004u
#define GEN_AF 0x010u
#define GEN_ZF 0x040u
#define GEN_SF 0x080u
#define GEN_OF 0x800u
#define GEN_STATUS (GEN_CF | GEN_PF | GEN_AF | GEN_ZF | GEN_SF | GEN_OF)

static const uint8_t gen_data_regs[5] = { 0, 3, 2, 6, 5 }; /* EAX EBX EDX ESI EBP */
static const uint8_t gen_byte_regs[3] = { 0, 3, 2 };       /* AL BL DL */

static uint32_t gen_rand(struct gen *g)
{
    g->s ^= g->s << 13;
    g->s ^= g->s >> 17;
    g->s ^= g->s << 5;
    return g->s;
}
static void gen_init(struct gen *g, unsigned seed) { g->s = seed ? seed : 1; }
static uint32_t gen_below(struct gen *g, uint32_t n) { return gen_rand(g) % n; }
static uint8_t gen_reg(struct gen *g) { return gen_data_regs[gen_below(g, 5)]; }
static void gb(struct gen *g, uint8_t b) { *g->p++ = b; }
static void gd(struct gen *g, uint32_t v) { memcpy(g->p, &v, 4); g->p += 4; }
static uint8_t gen_d8(struct gen *g) { return (uint8_t)(4 * gen_below(g, 16)); }

/* Before anything that reads flags or leaves straight-line code: if a
 * status flag is undefined, CMP r,imm8 (defines all six). */
static void gen_define_flags(struct gen *g)
{
    if (!g->undef)
        return;
    gb(g, 0x83), gb(g, (uint8_t)(0xF8 | gen_reg(g))), gb(g, (uint8_t)gen_rand(g));
    g->undef = 0;
}

/* An instruction that sets the flags in def to defined values and leaves
 * those in undef undefined (the rest keep their state). */
static void gen_flags(struct gen *g, uint32_t def, uint32_t undef)
{
    g->undef = (g->undef & ~def) | undef;
}

/* Logic ops (AND OR XOR TEST) leave AF undefined; the others define all. */
static void gen_alu_flags(struct gen *g, uint8_t op)
{
    bool logic = op == 1 << 3 || op == 4 << 3 || op == 6 << 3;
    gen_flags(g, GEN_STATUS, logic ? GEN_AF : 0);
}

static int gen_new_label(struct gen *g)
{
    g->label[g->nlabels] = ~0u;
    return g->nlabels++;
}
static void gen_place(struct gen *g, int l) { g->label[l] = (uint32_t)(g->p - g->base); }
static void gen_ref(struct gen *g, int l, uint8_t size)
{
    g->fix[g->nfix].at = (uint32_t)(g->p - g->base);
    g->fix[g->nfix].size = size;
    g->fix[g->nfix++].label = l;
    g->p += size;
}

/* One random innocuous instruction (never touches ECX, EDI, ESP). */
static void gen_insn(struct gen *g)
{
    uint8_t r = gen_reg(g), r2 = gen_reg(g), op = (uint8_t)(gen_below(g, 8) << 3);
    uint8_t rb = gen_byte_regs[gen_below(g, 3)], cc = (uint8_t)gen_below(g, 16);
    /* ADC and SBB read CF. */
    bool reads_cf = op == 2 << 3 || op == 3 << 3;
    uint32_t kind = gen_below(g, 26);
    bool alu = kind <= 4; /* kinds 0-4: ALU operation op */
    if (alu && reads_cf)
        gen_define_flags(g);
    switch (kind) {
    case 0: /* alu r,r */
        gb(g, op | 1), gb(g, (uint8_t)(0xC0 | r2 << 3 | r));
        break;
    case 1:
        gb(g, 0x83), gb(g, (uint8_t)(0xC0 | op | r)), gb(g, (uint8_t)gen_rand(g));
        break;
    case 2:
        gb(g, 0x81), gb(g, (uint8_t)(0xC0 | op | r)), gd(g, gen_rand(g));
        break;
    case 3:
        gb(g, op | 3), gb(g, (uint8_t)(0x47 | r << 3)), gb(g, gen_d8(g));
        break;
    case 4:
        gb(g, op | 1), gb(g, (uint8_t)(0x47 | r << 3)), gb(g, gen_d8(g));
        break;
    case 5: gb(g, (uint8_t)(0xB8 + r)), gd(g, gen_rand(g)); break;
    case 6: gb(g, 0x8B), gb(g, (uint8_t)(0x47 | r << 3)), gb(g, gen_d8(g)); break;
    case 7: gb(g, 0x89), gb(g, (uint8_t)(0x47 | r << 3)), gb(g, gen_d8(g)); break;
    case 8: /* inc/dec: CF unaffected */
        gb(g, (uint8_t)((gen_rand(g) & 1 ? 0x40 : 0x48) + r));
        gen_flags(g, GEN_STATUS & ~GEN_CF, 0);
        break;
    case 9: { /* not (no flags) / neg */
        uint8_t ext = (uint8_t)(2 + gen_below(g, 2));
        gb(g, 0xF7), gb(g, (uint8_t)(0xC0 | ext << 3 | r));
        if (ext == 3)
            gen_flags(g, GEN_STATUS, 0);
        break;
    }
    case 10: { /* rol ror rcl rcr shl shr sar by 1..31 */
        static const uint8_t sh[7] = { 0, 1, 2, 3, 4, 5, 7 };
        uint8_t ext = sh[gen_below(g, 7)], count = (uint8_t)(1 + gen_below(g, 31));
        if (ext == 2 || ext == 3) /* RCL/RCR rotate CF in */
            gen_define_flags(g);
        gb(g, 0xC1), gb(g, (uint8_t)(0xC0 | ext << 3 | r)), gb(g, count);
        uint32_t of = count == 1 ? 0 : GEN_OF;
        if (ext < 4) /* rotates: CF, and OF for a count of 1 */
            gen_flags(g, GEN_CF | (GEN_OF & ~of), of);
        else         /* shifts: CF SF ZF PF; AF undefined */
            gen_flags(g, GEN_CF | GEN_SF | GEN_ZF | GEN_PF | (GEN_OF & ~of), GEN_AF | of);
        break;
    }
    case 11: /* imul r,r: CF OF; SF ZF AF PF undefined */
        gb(g, 0x0F), gb(g, 0xAF), gb(g, (uint8_t)(0xC0 | r << 3 | r2));
        gen_flags(g, GEN_CF | GEN_OF, GEN_SF | GEN_ZF | GEN_AF | GEN_PF);
        break;
    case 12: /* lea r,[r2 + rb*scale + d8] */
        gb(g, 0x8D), gb(g, (uint8_t)(0x44 | r << 3));
        gb(g, (uint8_t)(gen_below(g, 4) << 6 | rb << 3 | r2)), gb(g, (uint8_t)gen_rand(g));
        break;
    case 13: /* setcc */
        gen_define_flags(g);
        gb(g, 0x0F), gb(g, 0x90 + cc), gb(g, (uint8_t)(0xC0 | rb));
        break;
    case 14: /* cmovcc */
        gen_define_flags(g);
        gb(g, 0x0F), gb(g, 0x40 + cc), gb(g, (uint8_t)(0xC0 | r << 3 | r2));
        break;
    case 15: gb(g, 0x0F), gb(g, gen_rand(g) & 1 ? 0xB6 : 0xBE), gb(g, (uint8_t)(0xC0 | r << 3 | rb));
        break;
    case 16: { /* test (AF undefined) / xchg */
        bool test = gen_rand(g) & 1;
        gb(g, test ? 0x85 : 0x87), gb(g, (uint8_t)(0xC0 | r2 << 3 | r));
        if (test)
            gen_flags(g, GEN_STATUS, GEN_AF);
        break;
    }
    case 17: /* bt: CF; ZF unaffected; OF SF AF PF undefined */
        gb(g, 0x0F), gb(g, 0xBA), gb(g, (uint8_t)(0xE0 | r)), gb(g, (uint8_t)gen_below(g, 32));
        gen_flags(g, GEN_CF, GEN_OF | GEN_SF | GEN_AF | GEN_PF);
        break;
    case 18: /* cmpxchg: as CMP */
        gb(g, 0x0F), gb(g, 0xB1), gb(g, (uint8_t)(0x47 | r << 3)), gb(g, gen_d8(g));
        gen_flags(g, GEN_STATUS, 0);
        break;
    case 19: /* lock alu [m],r (CMP becomes ADD) */
        if (reads_cf)
            gen_define_flags(g);
        gb(g, 0xF0), gb(g, op == 0x38 ? 0x01 : (uint8_t)(op | 1));
        gb(g, (uint8_t)(0x47 | r << 3)), gb(g, gen_d8(g));
        gen_alu_flags(g, op);
        break;
    case 20:
        if (reads_cf)
            gen_define_flags(g);
        gb(g, 0x66), gb(g, op | 1), gb(g, (uint8_t)(0xC0 | r2 << 3 | r));
        gen_alu_flags(g, op);
        break;
    case 21: gb(g, 0x0F), gb(g, (uint8_t)(0xC8 + r)); break;                /* bswap */
    case 22: gb(g, (uint8_t)(0x98 + gen_below(g, 2))); break;               /* cwde/cdq */
    case 23: /* mul r: as IMUL */
        gb(g, 0xF7), gb(g, (uint8_t)(0xE0 | r));
        gen_flags(g, GEN_CF | GEN_OF, GEN_SF | GEN_ZF | GEN_AF | GEN_PF);
        break;
    case 24: { /* shld/shrd by 0..31: count 0 changes nothing; else as SHL */
        bool left = gen_rand(g) & 1;
        uint8_t count = (uint8_t)0;
        gb(g, 0x0F), gb(g, left ? 0xA4 : 0xAC);
        gb(g, (uint8_t)(0xC0 | r2 << 3 | r)), gb(g, count = (uint8_t)gen_below(g, 32));
        uint32_t of = count == 1 ? 0 : GEN_OF;
        if (count)
            gen_flags(g, GEN_CF | GEN_SF | GEN_ZF | GEN_PF | (GEN_OF & ~of), GEN_AF | of);
        break;
    }
    default: {
        static const uint8_t one[5] = { 0xF8, 0xF9, 0xF5, 0x9E, 0x9F }; /* clc stc cmc sahf lahf */
        uint8_t b = one[gen_below(g, 5)];
        if (b == 0xF5 || b == 0x9F) /* CMC reads CF; LAHF reads SF ZF AF PF CF */
            gen_define_flags(g);
        gb(g, b);
        if (b == 0xF8 || b == 0xF9 || b == 0xF5)
            gen_flags(g, GEN_CF, 0);
        else if (b == 0x9E) /* SAHF: SF ZF AF PF CF from AH */
            gen_flags(g, GEN_STATUS & ~GEN_OF, 0);
        break;
    }
    }
    if (alu)
        gen_alu_flags(g, op);
}

/* Stack and flag-image instructions (balanced). */
static void gen_stack(struct gen *g)
{
    uint8_t r = gen_reg(g), r2 = gen_reg(g);
    switch (gen_below(g, 3)) {
    case 0: gb(g, (uint8_t)(0x50 + r)), gb(g, (uint8_t)(0x58 + r2)); break;   /* push; pop */
    case 1: /* pushf; pop */
        gen_define_flags(g);
        gb(g, 0x9C), gb(g, (uint8_t)(0x58 + r));
        break;
    default: /* and r,0x8D5 (arithmetic flags, no DF/TF); or r,IF; push r; popf */
        gb(g, 0x81), gb(g, (uint8_t)(0xE0 | r)), gd(g, 0x8D5);
        gb(g, 0x81), gb(g, (uint8_t)(0xC8 | r)), gd(g, 0x200); /* native POPF keeps IF */
        gb(g, (uint8_t)(0x50 + r)), gb(g, 0x9D);
        gen_flags(g, GEN_STATUS, 0);
        break;
    }
}

/* jcc over the next few straight items. */
static void gen_fwd_jcc(struct gen *g)
{
    int l = gen_new_label(g);
    bool near = gen_rand(g) & 1;
    gen_define_flags(g);
    if (near) {
        gb(g, 0x0F), gb(g, (uint8_t)(0x80 + gen_below(g, 16)));
        gen_ref(g, l, 4);
    } else {
        gb(g, (uint8_t)(0x70 + gen_below(g, 16)));
        gen_ref(g, l, 1);
    }
    for (uint32_t k = 1 + gen_below(g, 3); k; k--)
        gen_insn(g);
    gen_define_flags(g);
    gen_place(g, l);
}

static void gen_straight(struct gen *g, uint32_t n)
{
    while (n--) {
        uint32_t k = gen_below(g, 10);
        if (k < 6)
            gen_insn(g);
        else if (k < 8)
            gen_fwd_jcc(g);
        else
            gen_stack(g);
    }
}

/* mov $n,%ecx; L: body; loop L  (or dec %ecx; jnz L) */
static void gen_loop(struct gen *g, const int subs[GEN_SUBS])
{
    int l = gen_new_label(g);
    gb(g, 0xB9), gd(g, 1 + gen_below(g, 6));
    gen_define_flags(g);
    gen_place(g, l);
    gen_straight(g, 1 + gen_below(g, 3));
    gen_define_flags(g);
    if (gen_rand(g) & 1) { /* a call inside the loop */
        gb(g, 0xE8);
        gen_ref(g, subs[gen_below(g, GEN_SUBS)], 4);
    }
    /* LOOP rel8 while the loop head is in its reach. */
    bool short_loop = gen_rand(g) & 1;
    if (short_loop && (uint32_t)(g->p - g->base) + 2 - g->label[l] <= 128) {
        gb(g, 0xE2);
        gen_ref(g, l, 1);
    } else {
        gb(g, 0x49), gb(g, 0x0F), gb(g, 0x85); /* dec ecx; jnz rel32 */
        gen_ref(g, l, 4);
    }
}

static void gen_call(struct gen *g, const int subs[GEN_SUBS])
{
    uint32_t k = gen_below(g, GEN_SUBS);
    gen_define_flags(g);
    if (gen_rand(g) & 1) {
        gb(g, 0xE8);
        gen_ref(g, subs[k], 4);
    } else { /* call *GEN_TABLE_SUBS+4k(%edi) */
        gb(g, 0xFF), gb(g, 0x57), gb(g, (uint8_t)(GEN_TABLE_SUBS + 4 * k));
    }
}

/* jmp *slot(%edi) over a few items; the slot holds the label's address. */
static void gen_ind_jmp(struct gen *g)
{
    if (g->jslot == 8)
        return;
    int l = gen_new_label(g);
    g->jlabel[g->jslot] = l;
    gen_define_flags(g);
    gb(g, 0xFF), gb(g, 0x67), gb(g, (uint8_t)(GEN_TABLE_JMPS + 4 * g->jslot++));
    gen_straight(g, 1 + gen_below(g, 3));
    gen_define_flags(g);
    gen_place(g, l);
}

/*
 * A (rep) string instruction over the data area [EDI+0, EDI+64), upward or
 * downward (STD ... CLD): push edi; push esi; lea esi,[edi+s];
 * lea edi,[edi+d]; mov ecx,n; (std) rep op; (cld) pop esi; pop edi.
 */
static void gen_string(struct gen *g)
{
    static const uint8_t ops[5] = { 0xA4, 0xAA, 0xAC, 0xA6, 0xAE }; /* movs stos lods cmps scas */
    bool down = gen_rand(g) & 1, dword = gen_rand(g) & 1;
    uint8_t op = ops[gen_below(g, 5)];
    gb(g, 0x57), gb(g, 0x56);
    gb(g, 0x8D), gb(g, 0x77), gb(g, (uint8_t)(down ? (dword ? 28 : 31) : 0));
    gb(g, 0x8D), gb(g, 0x7F), gb(g, (uint8_t)(down ? (dword ? 60 : 63) : 32));
    gb(g, 0xB9), gd(g, 1 + gen_below(g, dword ? 7 : 28));
    if (down)
        gb(g, 0xFD);
    if (gen_below(g, 4))
        gb(g, op >= 0xA6 && (gen_rand(g) & 1) ? 0xF2 : 0xF3);
    gb(g, (uint8_t)(op + dword));
    if (op == 0xA6 || op == 0xAE) /* CMPS/SCAS (ECX >= 1: at least one iteration) */
        gen_flags(g, GEN_STATUS, 0);
    if (down)
        gb(g, 0xFC);
    gb(g, 0x5E), gb(g, 0x5F);
}

static void gen_resolve(struct gen *g)
{
    for (int i = 0; i < g->nfix; i++) {
        uint32_t at = g->fix[i].at, target = g->label[g->fix[i].label];
        int32_t rel = (int32_t)(target - (at + g->fix[i].size));
        if (g->fix[i].size == 1 && (rel < -128 || rel > 127))
            abort(); /* a rel8 the generator let grow out of reach */
        if (g->fix[i].size == 1)
            g->base[at] = (uint8_t)(int8_t)rel;
        else
            memcpy(g->base + at, &rel, 4);
    }
}

/*
 * gen_program - write one random program at code (a few KiB at most);
 * *hlt_gva receives the gva of the final HLT; data (data_len >= 128 bytes,
 * the initial data area the program's EDI will point at) gets random
 * contents plus the call and jump tables. Returns the program length.
 */
static uint32_t gen_program(struct gen *g, uint8_t *code, uint32_t *hlt_gva, uint8_t *data,
                            uint32_t data_len)
{
    int subs[GEN_SUBS];
    g->base = g->p = code;
    g->nlabels = g->nfix = g->jslot = 0;
    g->undef = 0;
    for (uint32_t i = 0; i < data_len; i++)
        data[i] = (uint8_t)gen_rand(g);
    for (int k = 0; k < GEN_SUBS; k++)
        subs[k] = gen_new_label(g);
    for (uint32_t n = 4 + gen_below(g, 16); n; n--) {
        uint32_t k = gen_below(g, 10);
        if (k < 5)
            gen_straight(g, 1 + gen_below(g, 4));
        else if (k < 7)
            gen_loop(g, subs);
        else if (k < 8)
            gen_call(g, subs);
        else if (k < 9)
            gen_string(g);
        else
            gen_ind_jmp(g);
    }
    gen_define_flags(g);
    *hlt_gva = (uint32_t)(uintptr_t)g->p;
    gb(g, 0xF4);
    for (int k = 0; k < GEN_SUBS; k++) {
        gen_place(g, subs[k]);
        gen_straight(g, gen_below(g, 5));
        gen_define_flags(g);
        gb(g, 0xC3);
        uint32_t gva = (uint32_t)(uintptr_t)code + g->label[subs[k]];
        memcpy(data + GEN_TABLE_SUBS + 4 * k, &gva, 4);
    }
    for (int j = 0; j < g->jslot; j++) {
        uint32_t gva = (uint32_t)(uintptr_t)code + g->label[g->jlabel[j]];
        memcpy(data + GEN_TABLE_JMPS + 4 * j, &gva, 4);
    }
    gen_resolve(g);
    return (uint32_t)(g->p - code);
}

#endif
