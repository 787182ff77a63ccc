/*
 * Host execution of guest data instructions (vmm/hostexec.c).
 *
 * 1. The trust property: from any bytes, the stub hostexec_build makes is
 *    one instruction that, decoded again by our decoder (itself checked
 *    against Zydis in test_decode), is the same whitelisted mnemonic with
 *    its memory operand at [disp32] = h->mem and nothing else: no base,
 *    index or segment override, no control flow, no stack, no ESP, no
 *    system or I/O attribute, then RET. Random byte strings, and strings
 *    built from every whitelisted opcode with random ModRM/SIB/prefixes.
 * 2. hostexec_div_faults against a model written from SDM Vol. 2A DIV and
 *    IDIV with plain 64-bit C division (the code under test avoids it).
 * 3. hostexec_run on the CPU running this test: DIV, IDIV, XADD, CMPXCHG8B,
 *    SHLD and SETcc through a stub against the same operation done in C,
 *    registers, flags and memory, with the guest's registers kept apart
 *    from ESP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "bt/decode.h"
#include "vmm/hostexec.h"

static uint64_t rng = 0x686f737465786563ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17; /* xorshift64 */
    return (uint32_t)(rng >> 16);
}

static struct hostexec *hx; /* in executable memory (mmap), as the monitor's stack is */

static void setup_exec(void)
{
    if (!hx) {
        hx = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        assert_true(hx != MAP_FAILED);
    }
}

/* ---------------------------------------------------------------- 1. the stub */

static unsigned long built, refused;

static void check_stub(const uint8_t *bytes, unsigned n)
{
    struct dec_insn in, out;
    if (dec_decode(bytes, n, 0x1000, DEC_MODE_32, &in) <= 0)
        return;
    memset(hx, 0xCC, sizeof(*hx));
    int size = hostexec_build(&in, bytes, hx);
    if (size < 0) {
        refused++;
        return;
    }
    built++;
    int len = dec_decode(hx->code, sizeof(hx->code), (uint32_t)(uintptr_t)hx->code, DEC_MODE_32, &out);
    if (len <= 0 || hx->code[len] != 0xC3)
        fail_msg("stub of %s does not decode, or lacks its RET", dec_mnemonic_name(in.mnemonic));
    assert_int_equal(out.mnemonic, in.mnemonic);
    assert_true(out.has_mem && out.mem.base == DEC_REG_NONE && out.mem.index == DEC_REG_NONE);
    assert_int_equal((uint32_t)out.mem.disp, (uint32_t)(uintptr_t)hx->mem);
    assert_int_equal(out.seg, DEC_REG_NONE);
    assert_int_equal(out.mem.seg, DEC_REG_DS);
    assert_int_equal(out.addrsize, 4);
    assert_int_equal(out.cf, DEC_CF_NONE);
    assert_int_equal(out.stack_slots, 0);
    assert_false(out.attr & (DEC_A_PRIV | DEC_A_IO | DEC_A_STRING));
    for (unsigned i = 0; i < out.num_ops; i++) {
        const struct dec_operand *op = &out.ops[i];
        if (op->kind == DEC_OP_MEM) {
            assert_int_equal(op->size, (unsigned)size);
            assert_true(size <= (int)sizeof(hx->mem));
        } else if (op->kind == DEC_OP_REG) {
            assert_true(op->reg != DEC_REG_ESP && op->reg != DEC_REG_SP);
            assert_true((op->reg >= DEC_REG_EAX && op->reg <= DEC_REG_EDI) ||
                        (op->reg >= DEC_REG_AX && op->reg <= DEC_REG_DI) ||
                        (op->reg >= DEC_REG_AL && op->reg <= DEC_REG_BH));
        } else {
            assert_int_equal(op->kind, DEC_OP_IMM);
        }
    }
}

static void test_stub_random(void **state)
{
    (void)state;
    setup_exec();
    uint8_t b[16];
    for (int i = 0; i < 1000000; i++) {
        for (unsigned j = 0; j < sizeof b; j++)
            b[j] = (uint8_t)rnd();
        check_stub(b, sizeof b);
    }
    printf("random: %lu stubs built, %lu refused\n", built, refused);
}

/* Every whitelisted opcode (and its neighbours), with random prefixes,
 * ModRM, SIB, displacement and immediates. */
static void test_stub_structured(void **state)
{
    (void)state;
    setup_exec();
    static const uint8_t one[] = { 0xC0, 0xC1, 0xD0, 0xD1, 0xD2, 0xD3, 0xF6, 0xF7, 0xFE, 0xFF, 0x69, 0x6B, 0x8F };
    static const uint8_t two[] = { 0xA4, 0xA5, 0xAC, 0xAD, 0xAF, 0xB0, 0xB1, 0xBC, 0xBD, 0xC0, 0xC1, 0xC7 };
    static const uint8_t pfx[] = { 0x66, 0x67, 0xF0, 0xF2, 0xF3, 0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65 };
    built = refused = 0;
    for (int i = 0; i < 1000000; i++) {
        uint8_t b[16];
        unsigned n = 0;
        for (unsigned p = rnd() % 4; p; p--)
            b[n++] = pfx[rnd() % sizeof pfx];
        unsigned kind = rnd() % 4;
        if (kind == 0) {
            b[n++] = one[rnd() % sizeof one];
        } else {
            b[n++] = 0x0F;
            b[n++] = kind == 1 ? two[rnd() % sizeof two] : (uint8_t)(kind == 2 ? 0x40 + rnd() % 16 : 0x90 + rnd() % 16);
        }
        while (n < sizeof b)
            b[n++] = (uint8_t)rnd();
        check_stub(b, sizeof b);
    }
    printf("structured: %lu stubs built, %lu refused\n", built, refused);
    assert_true(built > 100000);
}

/* ---------------------------------------------------------------- 2. #DE */

/* SDM Vol. 2A DIV/IDIV: #DE if the divisor is 0 or the quotient does not
 * fit the destination (AL, AX or EAX), computed with 64-bit division. */
static bool model_div_faults(unsigned size, bool sgn, uint32_t eax, uint32_t edx, uint32_t dv)
{
    unsigned bits = 8 * size;
    uint64_t n = size == 1 ? eax & 0xFFFF : size == 2 ? (edx & 0xFFFF) << 16 | (eax & 0xFFFF)
                                                     : (uint64_t)edx << 32 | eax;
    uint64_t d = size == 4 ? dv : dv & ((1u << bits) - 1);
    if (d == 0)
        return true;
    if (!sgn)
        return n / d >> bits != 0;
    int64_t sn = size == 1 ? (int16_t)n : size == 2 ? (int32_t)n : (int64_t)n;
    int64_t sd = size == 1 ? (int8_t)d : size == 2 ? (int16_t)d : (int32_t)d;
    if (sn == INT64_MIN && sd == -1)
        return true;
    int64_t q = sn / sd, lo = -(1ll << (bits - 1)), hi = (1ll << (bits - 1)) - 1;
    return q < lo || q > hi;
}

static void test_div_faults(void **state)
{
    (void)state;
    static const uint32_t edges[] = { 0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF,
                                      0x80000000u, 0x80000001u, 0xFFFFFFFFu, 0xFFFFFFFEu };
    unsigned long faults = 0;
    for (int i = 0; i < 2000000; i++) {
        unsigned size = 1u << (rnd() % 3);
        bool sgn = rnd() & 1;
        uint32_t eax = rnd(), edx = rnd(), dv = rnd();
        if (i & 1)
            eax = edges[rnd() % 14], edx = edges[rnd() % 14], dv = edges[rnd() % 14];
        if (i & 2)
            dv >>= rnd() % 32;
        bool want = model_div_faults(size, sgn, eax, edx, dv);
        faults += want;
        if (hostexec_div_faults(size, sgn, eax, edx, dv) != want)
            fail_msg("%s size %u edx:eax %08x:%08x by %08x: want %d", sgn ? "idiv" : "div", size, edx, eax, dv, want);
    }
    assert_true(faults > 1000 && faults < 1900000);
}

/* ---------------------------------------------------------------- 3. running stubs */

/* Build the stub of bytes (the memory form, any addressing) and run it on
 * regs/flags/mem; ESP in regs must come back as it went in. */
static void run(const uint8_t *bytes, unsigned n, uint32_t regs[8], uint32_t *flags, void *mem, unsigned size)
{
    struct dec_insn in;
    assert_true(dec_decode(bytes, n, 0, DEC_MODE_32, &in) > 0);
    assert_int_equal(hostexec_build(&in, bytes, hx), (int)size);
    memcpy(hx->gpr, regs, 32);
    hx->eflags = *flags;
    memcpy(hx->mem, mem, size);
    hostexec_run(hx);
    assert_int_equal(hx->gpr[4], regs[4]); /* not loaded, not stored: as it went in */
    memcpy(regs, hx->gpr, 32);
    *flags = hx->eflags & HOSTEXEC_FLAGS;
    memcpy(mem, hx->mem, size);
}

static void test_run(void **state)
{
    (void)state;
    setup_exec();
    for (int i = 0; i < 20000; i++) {
        uint32_t r[8], fl = rnd() & HOSTEXEC_FLAGS, m32 = rnd(), a = rnd(), d = rnd();
        for (int j = 0; j < 8; j++)
            r[j] = rnd();
        r[4] = 0x5A5A5A5A;
        /* div dword es:[ebx+esi*4+0x12345678] (F7 /6, SIB): unsigned 64/32 */
        if (!hostexec_div_faults(4, false, r[0], r[2], m32)) {
            uint64_t n = (uint64_t)r[2] << 32 | r[0];
            uint32_t q = (uint32_t)(n / m32), rem = (uint32_t)(n % m32), m = m32;
            static const uint8_t div[] = { 0x26, 0xF7, 0xB4, 0xB3, 0x78, 0x56, 0x34, 0x12 };
            run(div, sizeof div, r, &fl, &m, 4);
            assert_int_equal(r[0], q);
            assert_int_equal(r[2], rem);
        }
        /* lock xadd [eax], ecx */
        uint32_t m = m32, ecx = r[1];
        static const uint8_t xadd[] = { 0xF0, 0x0F, 0xC1, 0x08 };
        run(xadd, sizeof xadd, r, &fl, &m, 4);
        assert_int_equal(m, m32 + ecx);
        assert_int_equal(r[1], m32);
        assert_int_equal(!!(fl & 1), m32 + ecx < m32); /* CF of the addition */
        /* cmpxchg8b [edi]: equal half the time */
        uint64_t m64 = (uint64_t)a << 32 | d, old = m64;
        if (i & 1)
            r[0] = d, r[2] = a;
        uint64_t want_eq = (uint64_t)r[2] << 32 | r[0], nv = (uint64_t)r[1] << 32 | r[3];
        static const uint8_t c8b[] = { 0x0F, 0xC7, 0x0F };
        run(c8b, sizeof c8b, r, &fl, &m64, 8);
        if (old == want_eq) {
            assert_true(m64 == nv && (fl & 0x40));
        } else {
            assert_true(m64 == old && !(fl & 0x40) && r[0] == (uint32_t)old && r[2] == (uint32_t)(old >> 32));
        }
        /* shld word [ebp-4], dx, 5 (0x66 0F A4 /r ib) */
        uint16_t w = (uint16_t)m32, dx = (uint16_t)r[2];
        static const uint8_t shld[] = { 0x66, 0x0F, 0xA4, 0x55, 0xFC, 0x05 };
        run(shld, sizeof shld, r, &fl, &w, 2);
        assert_int_equal(w, (uint16_t)((uint16_t)m32 << 5 | dx >> 11));
        /* setnz byte [0x1000] after the guest's ZF */
        uint8_t b = 0x77;
        uint32_t zf = fl & 0x40;
        static const uint8_t setnz[] = { 0x0F, 0x95, 0x05, 0x00, 0x10, 0x00, 0x00 };
        run(setnz, sizeof setnz, r, &fl, &b, 1);
        assert_int_equal(b, zf ? 0 : 1);
    }
}

/* ESP and non-general registers are refused; so are register forms. */
static void test_refused(void **state)
{
    (void)state;
    setup_exec();
    static const uint8_t cases[][8] = {
        { 4, 0x0F, 0xAF, 0x20 },             /* imul esp, [eax] */
        { 4, 0x0F, 0x44, 0x20 },             /* cmovz esp, [eax] */
        { 4, 0x0F, 0xC1, 0x20 },             /* xadd [eax], esp */
        { 3, 0xFF, 0x10 },                   /* call [eax] */
        { 3, 0xFF, 0x30 },                   /* push [eax] */
        { 3, 0xF7, 0xF0 },                   /* div eax: no memory */
        { 3, 0x8E, 0x00 },                   /* mov es, [eax] */
        { 3, 0x62, 0x00 },                   /* bound eax, [eax] */
        { 3, 0xD9, 0x00 },                   /* fld dword [eax] */
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct dec_insn in;
        uint8_t b[16] = { 0 };
        memcpy(b, cases[i] + 1, cases[i][0] - 1);
        assert_true(dec_decode(b, sizeof b, 0, DEC_MODE_32, &in) > 0);
        assert_int_equal(hostexec_build(&in, b, hx), -2 /* E_INVAL */);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stub_random),
        cmocka_unit_test(test_stub_structured),
        cmocka_unit_test(test_div_faults),
        cmocka_unit_test(test_run),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
