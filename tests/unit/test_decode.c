/*
 * Hand-written decoder cases: the classification a VMM depends on (privileged,
 * sensitive, IOPL, I/O, memory access, control flow, #UD reasons), checked
 * encoding by encoding against Intel SDM Vol. 2 and Vol. 3 §2.8 / §25.1.
 * Tests are data: one line per encoding, one loop. No Zydis here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bt/decode.h"

/* Attribute bits this table pins down (others are free to evolve). */
#define CHECKED (DEC_A_PRIV | DEC_A_SENSITIVE | DEC_A_IOPL | DEC_A_IO | DEC_A_MEM_READ | \
                 DEC_A_MEM_WRITE | DEC_A_INDIRECT | DEC_A_STRING | DEC_A_SEGLOAD)
#define PRIV  DEC_A_PRIV
#define SENS  DEC_A_SENSITIVE
#define IOPL  DEC_A_IOPL
#define IO    DEC_A_IO
#define MR    DEC_A_MEM_READ
#define MW    DEC_A_MEM_WRITE
#define IND   DEC_A_INDIRECT
#define STR   DEC_A_STRING
#define SEG   DEC_A_SEGLOAD

struct tcase {
    const char *hex;   /* instruction bytes */
    uint8_t mode;      /* 16 or 32 */
    int rc;            /* dec_decode() result: length or DEC_ERR_* */
    unsigned mnemonic;
    uint32_t attr;     /* expected (attr & CHECKED) */
    uint8_t cf;
    uint8_t ud;        /* expected ud reason when rc == DEC_ERR_UD */
};

static const struct tcase cases[] = {
    /* ---- privileged: #GP(0) at CPL > 0 (SDM Vol. 3 §5.9) */
    { "0f 01 15 00 10 00 00", 32, 7, DEC_M_LGDT, PRIV | MR, DEC_CF_NONE, 0 },
    { "0f 01 18",             32, 3, DEC_M_LIDT, PRIV | MR, DEC_CF_NONE, 0 },
    { "0f 00 d0",             32, 3, DEC_M_LLDT, PRIV, DEC_CF_NONE, 0 },
    { "0f 00 18",             32, 3, DEC_M_LTR, PRIV | MR, DEC_CF_NONE, 0 },
    { "0f 22 d8",             32, 3, DEC_M_MOV, PRIV, DEC_CF_NONE, 0 },          /* mov cr3, eax */
    { "0f 20 c0",             32, 3, DEC_M_MOV, PRIV, DEC_CF_NONE, 0 },          /* mov eax, cr0 */
    { "0f 20 00",             32, 3, DEC_M_MOV, PRIV, DEC_CF_NONE, 0 },          /* mod ignored */
    { "0f 23 f8",             32, 3, DEC_M_MOV, PRIV, DEC_CF_NONE, 0 },          /* mov dr7, eax */
    { "0f 21 c8",             32, 3, DEC_M_MOV, PRIV, DEC_CF_NONE, 0 },          /* mov eax, dr1 */
    { "f4",                   32, 1, DEC_M_HLT, PRIV, DEC_CF_HLT, 0 },
    { "0f 06",                32, 2, DEC_M_CLTS, PRIV, DEC_CF_NONE, 0 },
    { "0f 08",                32, 2, DEC_M_INVD, PRIV, DEC_CF_NONE, 0 },
    { "0f 09",                32, 2, DEC_M_WBINVD, PRIV, DEC_CF_NONE, 0 },
    { "0f 01 38",             32, 3, DEC_M_INVLPG, PRIV, DEC_CF_NONE, 0 },
    { "0f 32",                32, 2, DEC_M_RDMSR, PRIV, DEC_CF_NONE, 0 },
    { "0f 30",                32, 2, DEC_M_WRMSR, PRIV, DEC_CF_NONE, 0 },
    { "0f 01 f0",             32, 3, DEC_M_LMSW, PRIV, DEC_CF_NONE, 0 },
    { "0f 35",                32, 2, DEC_M_SYSEXIT, PRIV | SEG, DEC_CF_SYSEXIT, 0 },
    { "0f 01 d1",             32, 3, DEC_M_XSETBV, PRIV, DEC_CF_NONE, 0 },
    { "0f 01 c8",             32, 3, DEC_M_MONITOR, PRIV, DEC_CF_NONE, 0 },
    { "0f 01 c9",             32, 3, DEC_M_MWAIT, PRIV, DEC_CF_NONE, 0 },
    { "0f 01 cb",             32, 3, DEC_M_STAC, PRIV, DEC_CF_NONE, 0 },
    { "0f c7 2f",             32, 3, DEC_M_XSAVES, PRIV | MW, DEC_CF_NONE, 0 },
    /* ---- sensitive but unprivileged: the reasons x86 is not classically
     *      virtualizable (Robin & Irvine 2000; SDM Vol. 3 §2.8) */
    { "9c",                   32, 1, DEC_M_PUSHFD, SENS, DEC_CF_NONE, 0 },
    { "66 9c",                32, 2, DEC_M_PUSHF, SENS, DEC_CF_NONE, 0 },
    { "9d",                   32, 1, DEC_M_POPFD, SENS, DEC_CF_NONE, 0 },
    { "0f 01 00",             32, 3, DEC_M_SGDT, SENS | MW, DEC_CF_NONE, 0 },
    { "0f 01 08",             32, 3, DEC_M_SIDT, SENS | MW, DEC_CF_NONE, 0 },
    { "0f 00 c0",             32, 3, DEC_M_SLDT, SENS, DEC_CF_NONE, 0 },
    { "0f 00 08",             32, 3, DEC_M_STR, SENS | MW, DEC_CF_NONE, 0 },
    { "0f 01 e0",             32, 3, DEC_M_SMSW, SENS, DEC_CF_NONE, 0 },
    { "8c c8",                32, 2, DEC_M_MOV, SENS, DEC_CF_NONE, 0 },          /* mov eax, cs */
    { "8c 18",                32, 2, DEC_M_MOV, SENS | MW, DEC_CF_NONE, 0 },     /* mov [eax], ds */
    { "0e",                   32, 1, DEC_M_PUSH, SENS, DEC_CF_NONE, 0 },         /* push cs */
    { "16",                   32, 1, DEC_M_PUSH, SENS, DEC_CF_NONE, 0 },         /* push ss */
    { "17",                   32, 1, DEC_M_POP, SENS | SEG, DEC_CF_NONE, 0 },    /* pop ss */
    { "1f",                   32, 1, DEC_M_POP, SENS | SEG, DEC_CF_NONE, 0 },    /* pop ds */
    { "0f a1",                32, 2, DEC_M_POP, SENS | SEG, DEC_CF_NONE, 0 },    /* pop fs */
    { "8e d8",                32, 2, DEC_M_MOV, SENS | SEG, DEC_CF_NONE, 0 },    /* mov ds, eax */
    { "0f 02 c1",             32, 3, DEC_M_LAR, SENS, DEC_CF_NONE, 0 },
    { "0f 03 c1",             32, 3, DEC_M_LSL, SENS, DEC_CF_NONE, 0 },
    { "0f 00 e0",             32, 3, DEC_M_VERR, SENS, DEC_CF_NONE, 0 },
    { "0f 00 e8",             32, 3, DEC_M_VERW, SENS, DEC_CF_NONE, 0 },
    { "0f a2",                32, 2, DEC_M_CPUID, SENS, DEC_CF_NONE, 0 },
    { "0f 31",                32, 2, DEC_M_RDTSC, SENS, DEC_CF_NONE, 0 },
    { "0f 01 f9",             32, 3, DEC_M_RDTSCP, SENS, DEC_CF_NONE, 0 },
    { "0f 33",                32, 2, DEC_M_RDPMC, SENS, DEC_CF_NONE, 0 },
    { "0f 01 d0",             32, 3, DEC_M_XGETBV, SENS, DEC_CF_NONE, 0 },
    { "fa",                   32, 1, DEC_M_CLI, SENS | IOPL, DEC_CF_NONE, 0 },
    { "fb",                   32, 1, DEC_M_STI, SENS | IOPL, DEC_CF_NONE, 0 },
    { "e4 60",                32, 2, DEC_M_IN, SENS | IOPL | IO, DEC_CF_NONE, 0 },
    { "ec",                   32, 1, DEC_M_IN, SENS | IOPL | IO, DEC_CF_NONE, 0 },
    { "66 ef",                32, 2, DEC_M_OUT, SENS | IOPL | IO, DEC_CF_NONE, 0 },
    { "f3 6c",                32, 2, DEC_M_INSB, SENS | IOPL | IO | STR | MW, DEC_CF_NONE, 0 },
    { "f3 6f",                32, 2, DEC_M_OUTSD, SENS | IOPL | IO | STR | MR, DEC_CF_NONE, 0 },
    { "0f 34",                32, 2, DEC_M_SYSENTER, SENS | SEG, DEC_CF_SYSENTER, 0 },
    { "cf",                   32, 1, DEC_M_IRETD, SENS | SEG, DEC_CF_IRET, 0 },
    { "66 cf",                32, 2, DEC_M_IRET, SENS | SEG, DEC_CF_IRET, 0 },
    { "cd 80",                32, 2, DEC_M_INT, SENS, DEC_CF_INT, 0 },
    { "cc",                   32, 1, DEC_M_INT3, SENS, DEC_CF_INT3, 0 },         /* via the IDT too */
    { "ce",                   32, 1, DEC_M_INTO, SENS, DEC_CF_INTO, 0 },
    { "f1",                   32, 1, DEC_M_INT1, SENS, DEC_CF_INT1, 0 },
    { "c5 06",                32, 2, DEC_M_LDS, SENS | SEG | MR, DEC_CF_NONE, 0 }, /* segment loads */
    { "0f b2 06",             32, 3, DEC_M_LSS, SENS | SEG | MR, DEC_CF_NONE, 0 },
    { "06",                   32, 1, DEC_M_PUSH, 0, DEC_CF_NONE, 0 },            /* push es: plain */
    { "ea 00 00 10 00 08 00", 32, 7, DEC_M_JMP, SENS | SEG, DEC_CF_JMP_FAR, 0 },
    { "9a 00 00 10 00 08 00", 32, 7, DEC_M_CALL, SENS | SEG, DEC_CF_CALL_FAR, 0 },
    { "ff 2d 00 20 00 00",    32, 6, DEC_M_JMP, SENS | SEG | IND | MR, DEC_CF_JMP_FAR, 0 },
    { "ff 18",                32, 2, DEC_M_CALL, SENS | SEG | IND | MR, DEC_CF_CALL_FAR, 0 },
    { "cb",                   32, 1, DEC_M_RETF, SENS | SEG, DEC_CF_RETF, 0 },
    { "ca 08 00",             32, 3, DEC_M_RETF, SENS | SEG, DEC_CF_RETF, 0 },
    /* ---- ordinary control flow */
    { "eb fe",                32, 2, DEC_M_JMP, 0, DEC_CF_JMP, 0 },
    { "e9 00 00 00 00",       32, 5, DEC_M_JMP, 0, DEC_CF_JMP, 0 },
    { "66 e9 00 00",          32, 4, DEC_M_JMP, 0, DEC_CF_JMP, 0 },
    { "0f 84 10 00 00 00",    32, 6, DEC_M_JZ, 0, DEC_CF_JCC, 0 },
    { "e8 00 00 00 00",       32, 5, DEC_M_CALL, 0, DEC_CF_CALL, 0 },
    { "ff d0",                32, 2, DEC_M_CALL, IND, DEC_CF_CALL, 0 },
    { "ff 24 85 00 10 00 00", 32, 7, DEC_M_JMP, IND | MR, DEC_CF_JMP, 0 },
    { "c3",                   32, 1, DEC_M_RET, 0, DEC_CF_RET, 0 },
    { "c2 04 00",             32, 3, DEC_M_RET, 0, DEC_CF_RET, 0 },

    { "e2 fe",                32, 2, DEC_M_LOOP, 0, DEC_CF_LOOP, 0 },
    { "e1 fe",                32, 2, DEC_M_LOOPE, 0, DEC_CF_LOOPCC, 0 },
    { "e3 fe",                32, 2, DEC_M_JECXZ, 0, DEC_CF_JCXZ, 0 },
    { "67 e3 fe",             32, 3, DEC_M_JCXZ, 0, DEC_CF_JCXZ, 0 },
    { "e3 fe",                16, 2, DEC_M_JCXZ, 0, DEC_CF_JCXZ, 0 },
    { "0f 0b",                32, 2, DEC_M_UD2, 0, DEC_CF_UD, 0 },
    /* ---- ordinary instructions: not sensitive */
    { "89 c8",                32, 2, DEC_M_MOV, 0, DEC_CF_NONE, 0 },
    { "01 18",                32, 2, DEC_M_ADD, MR | MW, DEC_CF_NONE, 0 },
    { "f0 0f b1 0a",          32, 4, DEC_M_CMPXCHG, MR | MW, DEC_CF_NONE, 0 },
    { "8d 04 88",             32, 3, DEC_M_LEA, 0, DEC_CF_NONE, 0 },
    { "f3 a5",                32, 2, DEC_M_MOVSD, STR | MR | MW, DEC_CF_NONE, 0 },
    { "d7",                   32, 1, DEC_M_XLAT, MR, DEC_CF_NONE, 0 },
    { "0f 18 00",             32, 3, DEC_M_PREFETCHNTA, 0, DEC_CF_NONE, 0 },
    { "66 0f 6f 00",          32, 4, DEC_M_MOVDQA, MR, DEC_CF_NONE, 0 },
    { "0f 29 00",             32, 3, DEC_M_MOVAPS, MW, DEC_CF_NONE, 0 },
    { "d9 38",                32, 2, DEC_M_FNSTCW, MW, DEC_CF_NONE, 0 },
    /* ---- #UD encodings */
    { "f0 01 c0",             32, DEC_ERR_UD, DEC_M_INVALID, 0, 0, DEC_UD_LOCK },      /* lock add eax,eax */
    { "f0 89 00",             32, DEC_ERR_UD, DEC_M_INVALID, 0, 0, DEC_UD_LOCK },      /* lock mov */
    { "f0 90",                32, DEC_ERR_UD, DEC_M_INVALID, 0, 0, DEC_UD_LOCK },
    { "8d c0",                32, DEC_ERR_UD, DEC_M_INVALID, 0, 0, DEC_UD_NEEDS_MEM }, /* lea eax, eax */
    { "0f 01 fc",             32, DEC_ERR_UD, DEC_M_INVALID, 0, 0, DEC_UD_UNSUPPORTED }, /* clzero */
    { "0f 71 10 01",          32, DEC_ERR_UD, DEC_M_INVALID, 0, 0, DEC_UD_NEEDS_REG }, /* psrlw [eax], 1 */
    { "66 0f 58 00",          32, 4, DEC_M_ADDPD, MR, DEC_CF_NONE, 0 },
    { "f3 0f 54 c0",          32, DEC_ERR_UD, DEC_M_INVALID, 0, 0, DEC_UD_RESERVED },  /* andps + F3 */
    { "f0 0f c7 0e",          32, 3 + 1, DEC_M_CMPXCHG8B, MR | MW, DEC_CF_NONE, 0 },
    { "0f 01 d8",             32, DEC_ERR_UD, DEC_M_INVALID, 0, 0, DEC_UD_UNSUPPORTED }, /* vmrun */
    { "8e c8",                32, DEC_ERR_UD, DEC_M_INVALID, 0, 0, DEC_UD_BAD_REG },   /* mov cs, eax */
    { "8c f0",                32, DEC_ERR_UD, DEC_M_INVALID, 0, 0, DEC_UD_BAD_REG },   /* sreg 6 */
    { "0f 22 c8",             32, DEC_ERR_UD, DEC_M_INVALID, 0, 0, DEC_UD_BAD_REG },   /* mov cr1 */
    { "0f 0e",                32, DEC_ERR_UD, DEC_M_INVALID, 0, 0, DEC_UD_RESERVED },  /* femms */
    { "0f 04",                32, DEC_ERR_UD, DEC_M_INVALID, 0, 0, DEC_UD_RESERVED },
    { "fe 10",                32, DEC_ERR_UD, DEC_M_INVALID, 0, 0, DEC_UD_RESERVED },  /* FE /2 */
    { "0f 0f c0 b4",          32, DEC_ERR_UD, DEC_M_INVALID, 0, 0, DEC_UD_UNSUPPORTED }, /* 3DNow! */
    { "c5 f8 58 c1",          32, DEC_ERR_UD, DEC_M_INVALID, 0, 0, DEC_UD_UNSUPPORTED }, /* vaddps */
    { "62 f1 7c 48 58 c1",    32, DEC_ERR_UD, DEC_M_INVALID, 0, 0, DEC_UD_UNSUPPORTED }, /* EVEX */
    { "66 c5 f8 58 c1",       32, DEC_ERR_UD, DEC_M_INVALID, 0, 0, DEC_UD_RESERVED },  /* 66 + VEX */
    { "0f ae 38",             32, 3, DEC_M_CLFLUSH, MR, DEC_CF_NONE, 0 },          /* faults as a load */
    { "0f aa",                32, 2, DEC_M_RSM, PRIV, DEC_CF_UD, 0 },              /* #UD outside SMM */
    { "0f",                   32, DEC_ERR_TRUNCATED, DEC_M_INVALID, 0, 0, 0 },
    { "66 66 66 66 66 66 66 66 66 66 66 66 66 66 66 90", 32, DEC_ERR_TOO_LONG, DEC_M_INVALID, 0, 0, 0 },
};

static size_t parse_hex(const char *s, uint8_t *out)
{
    size_t n = 0;
    while (*s) {
        if (*s == ' ') {
            s++;
            continue;
        }
        out[n++] = (uint8_t)strtoul((char[]){ s[0], s[1], 0 }, NULL, 16);
        s += 2;
    }
    return n;
}

static void test_classification_table(void **state)
{
    unsigned failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct tcase *t = &cases[i];
        uint8_t b[32];
        size_t n = parse_hex(t->hex, b);
        struct dec_insn d;
        int rc = dec_decode(b, n, 0x1000, (enum dec_mode)t->mode, &d);
        bool ok = rc == t->rc;
        if (ok && rc > 0)
            ok = d.mnemonic == t->mnemonic && (d.attr & CHECKED) == t->attr && d.cf == t->cf;
        if (ok && rc == DEC_ERR_UD)
            ok = d.ud == t->ud;
        if (!ok) {
            failures++;
            print_message("FAIL %-40s mode %u: rc %d (want %d) %s attr %#x (want %#x) cf %u (want %u) ud %u (want %u)\n",
                          t->hex, t->mode, rc, t->rc, dec_mnemonic_name(d.mnemonic),
                          d.attr & CHECKED, t->attr, d.cf, t->cf, d.ud, t->ud);
        }
    }
    print_message("%zu classification cases\n", sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(failures, 0);
}

/* VEX in 32-bit mode: refused, but the length is right so callers stay in sync. */
static void test_vex_lengths(void **state)
{
    static const struct { const char *hex; int len; } v[] = {
        { "c5 f8 77", 3 },                 /* vzeroupper */
        { "c5 f8 58 c1", 4 },              /* vaddps xmm0, xmm0, xmm1 */
        { "c4 e3 79 0f c1 08", 6 },        /* vpalignr ..., imm8 */
        { "c5 f9 70 c1 1b", 5 },           /* vpshufd imm8 */
        { "c4 e2 79 18 44 24 08", 7 },     /* vbroadcastss xmm0, [esp+8] */
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint8_t b[16];
        size_t n = parse_hex(v[i].hex, b);
        struct dec_insn d;
        assert_int_equal(dec_decode(b, n, 0, DEC_MODE_32, &d), DEC_ERR_UD);
        assert_int_equal(d.ud, DEC_UD_UNSUPPORTED);
        assert_int_equal(d.len, v[i].len);
    }
    /* C4 with mod != 3 is LES. */
    uint8_t les[] = { 0xC4, 0x06 };
    struct dec_insn d;
    assert_int_equal(dec_decode(les, 2, 0, DEC_MODE_32, &d), 2);
    assert_int_equal(d.mnemonic, DEC_M_LES);
}

/* Fields a translator rewrites: offsets of displacement, immediate, rel. */
static void test_field_offsets(void **state)
{
    /* 66 81 84 88 44 33 22 11 34 12: add word [eax+ecx*4+0x11223344], 0x1234 */
    static const uint8_t add[] = { 0x66, 0x81, 0x84, 0x88, 0x44, 0x33, 0x22, 0x11, 0x34, 0x12 };
    struct dec_insn d;
    assert_int_equal(dec_decode(add, sizeof(add), 0, DEC_MODE_32, &d), 10);
    assert_int_equal(d.opsize, 2);
    assert_int_equal(d.disp_off, 4);
    assert_int_equal(d.disp_size, 4);
    assert_int_equal(d.imm_off, 8);
    assert_int_equal(d.imm_size, 2);
    assert_int_equal(d.mem.base, DEC_REG_EAX);
    assert_int_equal(d.mem.index, DEC_REG_ECX);
    assert_int_equal(d.mem.scale, 4);
    assert_int_equal(d.mem.disp, 0x11223344);
    assert_int_equal(d.mem.seg, DEC_REG_DS);
    assert_true(d.attr & DEC_A_MEM_READ);
    assert_true(d.attr & DEC_A_MEM_WRITE);

    /* jnz rel32 at 0x1000 -> 0x1000 + 6 - 2 */
    static const uint8_t jnz[] = { 0x0F, 0x85, 0xFE, 0xFF, 0xFF, 0xFF };
    uint32_t target;
    assert_int_equal(dec_decode(jnz, sizeof(jnz), 0x1000, DEC_MODE_32, &d), 6);
    assert_int_equal(d.rel_off, 2);
    assert_int_equal(d.rel_size, 4);
    assert_int_equal(decode_branch_target(&d, &target), 0);
    assert_int_equal(target, 0x1004);
    assert_int_equal(d.flags_read, DEC_FL_ZF);

    /* 16-bit jmp wraps within the 64 KiB segment. */
    static const uint8_t jmp16[] = { 0xE9, 0x00, 0x10 };
    assert_int_equal(dec_decode(jmp16, sizeof(jmp16), 0xFFF0, DEC_MODE_16, &d), 3);
    assert_int_equal(decode_branch_target(&d, &target), 0);
    assert_int_equal(target, (0xFFF0 + 3 + 0x1000) & 0xFFFF);

    /* [bp+si+8] in 16-bit mode defaults to SS; override to ES. */
    static const uint8_t bp16[] = { 0x26, 0x8B, 0x42, 0x08 };
    assert_int_equal(dec_decode(bp16 + 1, 3, 0, DEC_MODE_16, &d), 3);
    assert_int_equal(d.mem.seg, DEC_REG_SS);
    assert_int_equal(d.mem.base, DEC_REG_BP);
    assert_int_equal(d.mem.index, DEC_REG_SI);
    assert_int_equal(dec_decode(bp16, 4, 0, DEC_MODE_16, &d), 4);
    assert_int_equal(d.mem.seg, DEC_REG_ES);

    /* Repeated prefixes: last F2/F3 and last segment win. */
    static const uint8_t reps[] = { 0xF2, 0x2E, 0xF3, 0x64, 0xA4 };
    assert_int_equal(dec_decode(reps, sizeof(reps), 0, DEC_MODE_32, &d), 5);
    assert_int_equal(d.rep, DEC_REP_REP);
    assert_int_equal(d.seg, DEC_REG_FS);
    assert_int_equal(d.num_prefixes, 4);

    /* Far jump: offset and selector fields. */
    static const uint8_t jmpf[] = { 0xEA, 0x78, 0x56, 0x34, 0x12, 0x08, 0x00 };
    assert_int_equal(dec_decode(jmpf, sizeof(jmpf), 0, DEC_MODE_32, &d), 7);
    assert_int_equal(d.ops[0].kind, DEC_OP_FAR);
    assert_int_equal(d.ops[0].imm, 0x12345678);
    assert_int_equal(d.ops[0].sel, 8);
    assert_int_equal(d.imm_off, 1);
    assert_int_equal(d.imm2_off, 5);
}

/* Stack effect and EFLAGS facts. */
/* Implicit memory operands are described in insn.mem with the segment that
 * applies, overrides included (issue 11: the translator keys on has_mem and
 * mem.seg to keep guest accesses out of its state segment). One line per
 * encoding: bytes, length, segment, base, index. */
static void test_implicit_memory(void **state)
{
    static const struct { const char *hex; int len; uint8_t seg, base, index; } cases[] = {
        { "d7",          1, DEC_REG_DS, DEC_REG_EBX, DEC_REG_AL }, /* xlat */
        { "65 d7",       2, DEC_REG_GS, DEC_REG_EBX, DEC_REG_AL },
        { "67 64 d7",    3, DEC_REG_FS, DEC_REG_BX, DEC_REG_AL },
        { "65 0f f7 c1", 4, DEC_REG_GS, DEC_REG_EDI, DEC_REG_NONE },  /* maskmovq */
        { "66 65 0f f7 c1", 5, DEC_REG_GS, DEC_REG_EDI, DEC_REG_NONE }, /* maskmovdqu */
        { "0f f7 c1",    3, DEC_REG_DS, DEC_REG_EDI, DEC_REG_NONE },
        { "65 ac",       2, DEC_REG_GS, DEC_REG_ESI, DEC_REG_NONE },  /* lodsb */
        { "65 a4",       2, DEC_REG_GS, DEC_REG_ESI, DEC_REG_NONE },  /* movsb: source */
        { "65 ff 30",    3, DEC_REG_GS, DEC_REG_EAX, DEC_REG_NONE },  /* push m */
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t b[16];
        size_t n = parse_hex(cases[i].hex, b);
        struct dec_insn d;
        if (dec_decode(b, (uint32_t)n, 0, DEC_MODE_32, &d) != cases[i].len || !d.has_mem ||
            d.mem.seg != cases[i].seg || d.mem.base != cases[i].base || d.mem.index != cases[i].index ||
            !(d.attr & (DEC_A_MEM_READ | DEC_A_MEM_WRITE)))
            fail_msg("%s: has_mem %d seg %u base %u index %u", cases[i].hex, d.has_mem, d.mem.seg,
                     d.mem.base, d.mem.index);
    }
}

static void test_stack_and_flags(void **state)
{
    static const struct { const char *hex; int32_t bytes; uint32_t fr, fw; } s[] = {
        { "50", -4, 0, 0 },
        { "66 50", -2, 0, 0 },
        { "60", -32, 0, 0 },
        { "c2 08 00", 12, 0, 0 },
        { "ca 08 00", 16, 0, 0 },
        { "e8 00 00 00 00", -4, 0, 0 },
        { "9c", -4, DEC_FL_ALL, 0 },
        { "9d", 4, DEC_FL_IOPL, DEC_FL_ALL },
        { "fa", 0, DEC_FL_IOPL, DEC_FL_IF },
        { "ec", 0, DEC_FL_IOPL, 0 },
        { "cd 80", 0, 0, DEC_FL_TF | DEC_FL_NT | DEC_FL_IF | DEC_FL_RF | DEC_FL_VM },
        { "fd", 0, 0, DEC_FL_DF },
        { "11 c0", 0, DEC_FL_CF, DEC_FL_ARITH },
        { "f3 a6", 0, DEC_FL_DF | DEC_FL_ZF, DEC_FL_ARITH },
    };
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        uint8_t b[16];
        size_t n = parse_hex(s[i].hex, b);
        struct dec_insn d;
        assert_true(dec_decode(b, n, 0, DEC_MODE_32, &d) > 0);
        assert_int_equal(dec_stack_bytes(&d), s[i].bytes);
        assert_int_equal(d.flags_read, s[i].fr);
        assert_int_equal(d.flags_written, s[i].fw);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classification_table),
        cmocka_unit_test(test_vex_lengths),
        cmocka_unit_test(test_field_offsets),
        cmocka_unit_test(test_stack_and_flags),
        cmocka_unit_test(test_implicit_memory),
    };
    return cmocka_run_group_tests_name("decode", tests, NULL, NULL);
}
