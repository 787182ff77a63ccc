/*
 * Randomized generator of innocuous guest programs for test_translate.c:
 * integer, memory ([EDI + d8] only), flag and stack instructions; forward
 * conditional jumps; bounded backward loops (ECX counter); direct and
 * indirect calls of subroutines; indirect forward jumps through a table in
 * the data area; rep string instructions both ways. Registers: EAX EBX
 * EDX ESI EBP are data, ECX the loop/string counter, EDI the data base
 * (saved around string instructions), ESP the stack; so every program
 * terminates and touches only the data area and the stack.
 */
#ifndef HV86_TESTS_TEST_TRANSLATE_GEN_H
#define HV86_TESTS_TEST_TRANSLATE_GEN_H
#include <stdint.h>
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
};

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
    switch (gen_below(g, 26)) {
    case 0: gb(g, op | 1), gb(g, (uint8_t)(0xC0 | r2 << 3 | r)); break;      /* alu r,r */
    case 1: gb(g, 0x83), gb(g, (uint8_t)(0xC0 | op | r)), gb(g, (uint8_t)gen_rand(g)); break;
    case 2: gb(g, 0x81), gb(g, (uint8_t)(0xC0 | op | r)), gd(g, gen_rand(g)); break;
    case 3: gb(g, op | 3), gb(g, (uint8_t)(0x47 | r << 3)), gb(g, gen_d8(g)); break;
    case 4: gb(g, op | 1), gb(g, (uint8_t)(0x47 | r << 3)), gb(g, gen_d8(g)); break;
    case 5: gb(g, (uint8_t)(0xB8 + r)), gd(g, gen_rand(g)); break;
    case 6: gb(g, 0x8B), gb(g, (uint8_t)(0x47 | r << 3)), gb(g, gen_d8(g)); break;
    case 7: gb(g, 0x89), gb(g, (uint8_t)(0x47 | r << 3)), gb(g, gen_d8(g)); break;
    case 8: gb(g, (uint8_t)((gen_rand(g) & 1 ? 0x40 : 0x48) + r)); break;  /* inc/dec */
    case 9: gb(g, 0xF7), gb(g, (uint8_t)(0xC0 | (2 + gen_below(g, 2)) << 3 | r)); break;
    case 10: {
        static const uint8_t sh[7] = { 0, 1, 2, 3, 4, 5, 7 };
        gb(g, 0xC1), gb(g, (uint8_t)(0xC0 | sh[gen_below(g, 7)] << 3 | r));
        gb(g, (uint8_t)(1 + gen_below(g, 31)));
        break;
    }
    case 11: gb(g, 0x0F), gb(g, 0xAF), gb(g, (uint8_t)(0xC0 | r << 3 | r2)); break;
    case 12: /* lea r,[r2 + rb*scale + d8] */
        gb(g, 0x8D), gb(g, (uint8_t)(0x44 | r << 3));
        gb(g, (uint8_t)(gen_below(g, 4) << 6 | rb << 3 | r2)), gb(g, (uint8_t)gen_rand(g));
        break;
    case 13: gb(g, 0x0F), gb(g, 0x90 + cc), gb(g, (uint8_t)(0xC0 | rb)); break; /* setcc */
    case 14: gb(g, 0x0F), gb(g, 0x40 + cc), gb(g, (uint8_t)(0xC0 | r << 3 | r2)); break;
    case 15: gb(g, 0x0F), gb(g, gen_rand(g) & 1 ? 0xB6 : 0xBE), gb(g, (uint8_t)(0xC0 | r << 3 | rb));
        break;
    case 16: gb(g, gen_rand(g) & 1 ? 0x85 : 0x87), gb(g, (uint8_t)(0xC0 | r2 << 3 | r)); break;
    case 17: gb(g, 0x0F), gb(g, 0xBA), gb(g, (uint8_t)(0xE0 | r)), gb(g, (uint8_t)gen_below(g, 32));
        break;
    case 18: gb(g, 0x0F), gb(g, 0xB1), gb(g, (uint8_t)(0x47 | r << 3)), gb(g, gen_d8(g)); break;
    case 19: gb(g, 0xF0), gb(g, op == 0x38 ? 0x01 : (uint8_t)(op | 1)); /* lock alu [m],r */
        gb(g, (uint8_t)(0x47 | r << 3)), gb(g, gen_d8(g));
        break;
    case 20: gb(g, 0x66), gb(g, op | 1), gb(g, (uint8_t)(0xC0 | r2 << 3 | r)); break;
    case 21: gb(g, 0x0F), gb(g, (uint8_t)(0xC8 + r)); break;                /* bswap */
    case 22: gb(g, (uint8_t)(0x98 + gen_below(g, 2))); break;               /* cwde/cdq */
    case 23: gb(g, 0xF7), gb(g, (uint8_t)(0xE0 | r)); break;                 /* mul r */
    case 24: gb(g, 0x0F), gb(g, gen_rand(g) & 1 ? 0xA4 : 0xAC);              /* shld/shrd */
        gb(g, (uint8_t)(0xC0 | r2 << 3 | r)), gb(g, (uint8_t)gen_below(g, 32));
        break;
    default: {
        static const uint8_t one[5] = { 0xF8, 0xF9, 0xF5, 0x9E, 0x9F }; /* clc stc cmc sahf lahf */
        gb(g, one[gen_below(g, 5)]);
        break;
    }
    }
}

/* Stack and flag-image instructions (balanced). */
static void gen_stack(struct gen *g)
{
    uint8_t r = gen_reg(g), r2 = gen_reg(g);
    switch (gen_below(g, 3)) {
    case 0: gb(g, (uint8_t)(0x50 + r)), gb(g, (uint8_t)(0x58 + r2)); break;   /* push; pop */
    case 1: gb(g, 0x9C), gb(g, (uint8_t)(0x58 + r)); break;                   /* pushf; pop */
    default: /* and r,0x8D5 (arithmetic flags, no DF/TF); or r,IF; push r; popf */
        gb(g, 0x81), gb(g, (uint8_t)(0xE0 | r)), gd(g, 0x8D5);
        gb(g, 0x81), gb(g, (uint8_t)(0xC8 | r)), gd(g, 0x200); /* native POPF keeps IF */
        gb(g, (uint8_t)(0x50 + r)), gb(g, 0x9D);
        break;
    }
}

/* jcc over the next few straight items. */
static void gen_fwd_jcc(struct gen *g)
{
    int l = gen_new_label(g);
    bool near = gen_rand(g) & 1;
    if (near) {
        gb(g, 0x0F), gb(g, (uint8_t)(0x80 + gen_below(g, 16)));
        gen_ref(g, l, 4);
    } else {
        gb(g, (uint8_t)(0x70 + gen_below(g, 16)));
        gen_ref(g, l, 1);
    }
    for (uint32_t k = 1 + gen_below(g, 3); k; k--)
        gen_insn(g);
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
    gen_place(g, l);
    gen_straight(g, 1 + gen_below(g, 3)); /* rel8 reach */
    if (gen_rand(g) & 1) { /* a call inside the loop */
        gb(g, 0xE8);
        gen_ref(g, subs[gen_below(g, GEN_SUBS)], 4);
    }
    if (gen_rand(g) & 1) {
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
    gb(g, 0xFF), gb(g, 0x67), gb(g, (uint8_t)(GEN_TABLE_JMPS + 4 * g->jslot++));
    gen_straight(g, 1 + gen_below(g, 3));
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
    if (down)
        gb(g, 0xFC);
    gb(g, 0x5E), gb(g, 0x5F);
}

static void gen_resolve(struct gen *g)
{
    for (int i = 0; i < g->nfix; i++) {
        uint32_t at = g->fix[i].at, target = g->label[g->fix[i].label];
        int32_t rel = (int32_t)(target - (at + g->fix[i].size));
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
    *hlt_gva = (uint32_t)(uintptr_t)g->p;
    gb(g, 0xF4);
    for (int k = 0; k < GEN_SUBS; k++) {
        gen_place(g, subs[k]);
        gen_straight(g, gen_below(g, 5));
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
