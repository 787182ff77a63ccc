/*
 * Unit tests of the real-mode decisions (vmm/realmode.c): which engine
 * runs a real-mode register state, what a real-mode segment load leaves in
 * the descriptor cache, and the FLAGS images of PUSHF/POPF/IRET. The
 * states are data, one row each; expected engines follow from SDM Vol. 3A
 * §20.1.1 (base = selector * 16) and §20.2 (what virtual-8086 mode can
 * express: 64 KiB limits, 16-bit IP and SP).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "kernel/x86.h"
#include "vmm/realmode.h"

#define RW_DATA (DESC_P | DESC_S | DESC_WRITABLE | DESC_ACCESSED)

/* Every register real: selector 0x1234 etc., base = selector * 16, 64 KiB. */
static void real_state(struct vseg seg[SR_N])
{
    for (int sr = 0; sr < SR_N; sr++) {
        uint16_t sel = (uint16_t)(0x1000 + 0x111 * sr);
        seg[sr] = (struct vseg){ sel, (uint32_t)sel << 4, 0xFFFF, RW_DATA, 0 };
    }
}

enum change { NONE, BASE_OFF, BIG_LIMIT, SMALL_LIMIT, FLAG_D, FLAG_G_BIG };

struct engine_case {
    const char *what;
    int sr;            /* register changed, -1 none */
    enum change how;
    uint32_t eip;
    enum rm_engine want;
};

static const struct engine_case engine_cases[] = {
    { "all real", -1, NONE, 0x0100, RM_V86 },
    { "IP at the 64 KiB top", -1, NONE, 0xFFFF, RM_V86 },
    { "EIP past 64 KiB", -1, NONE, 0x10000, RM_EMULATE },
    { "DS base left from protected mode", SR_DS, BASE_OFF, 0x0100, RM_EMULATE },
    { "CS base left from protected mode", SR_CS, BASE_OFF, 0x0100, RM_EMULATE },
    { "SS base left from protected mode", SR_SS, BASE_OFF, 0x0100, RM_EMULATE },
    { "GS base left from protected mode", SR_GS, BASE_OFF, 0x0100, RM_EMULATE },
    { "unreal FS (4 GiB limit)", SR_FS, FLAG_G_BIG, 0x0100, RM_V86 },
    { "unreal DS (1 MiB limit)", SR_DS, BIG_LIMIT, 0x0100, RM_V86 },
    { "ES limit below 64 KiB", SR_ES, SMALL_LIMIT, 0x0100, RM_EMULATE },
    { "SS.B = 1 (32-bit stack pointer)", SR_SS, FLAG_D, 0x0100, RM_EMULATE },
    { "DS.B = 1 (means nothing for data)", SR_DS, FLAG_D, 0x0100, RM_V86 },
    { "CS.D = 1 (32-bit code)", SR_CS, FLAG_D, 0x0100, RM_STOP },
};

static void test_engine_table(void **state)
{
    for (size_t i = 0; i < sizeof(engine_cases) / sizeof(engine_cases[0]); i++) {
        const struct engine_case *e = &engine_cases[i];
        struct vseg seg[SR_N];
        const char *why = "unset";
        real_state(seg);
        if (e->sr >= 0) {
            struct vseg *s = &seg[e->sr];
            switch (e->how) {
            case BASE_OFF: s->base += 0x10; break;
            case BIG_LIMIT: s->limit = 0xFFFFF; break;
            case SMALL_LIMIT: s->limit = 0xFFFE; break;
            case FLAG_D: s->flags |= DESC_FLAG_D; break;
            case FLAG_G_BIG: s->limit = 0xFFFFFFFFu; s->flags |= DESC_FLAG_G | DESC_FLAG_D; break;
            default: break;
            }
        }
        enum rm_engine got = rm_engine_for(seg, e->eip, &why);
        if (got != e->want)
            fail_msg("%s: engine %d, want %d", e->what, got, e->want);
        if ((got == RM_STOP) != (why != NULL))
            fail_msg("%s: a reason exactly when stopped (%s)", e->what, why ? why : "none");
    }
}

/* A real-mode load after protected mode: base follows the selector, the
 * 4 GiB limit and its G/D flags stay (unreal mode), the type becomes
 * present read/write data whatever the protected-mode one was. */
static void test_seg_load(void **state)
{
    struct vseg s = { 0x18, 0, 0xFFFFFFFFu, DESC_P | DESC_S | DESC_CODE | 0x02, DESC_FLAG_G | DESC_FLAG_D };
    rm_seg_load(&s, 0xF000);
    assert_int_equal(s.sel, 0xF000);
    assert_int_equal(s.base, 0xF0000);
    assert_int_equal(s.limit, 0xFFFFFFFFu);
    assert_int_equal(s.flags, DESC_FLAG_G | DESC_FLAG_D);
    assert_int_equal(s.access, RW_DATA);
    rm_seg_load(&s, 0xFFFF);
    assert_int_equal(s.base, 0xFFFF0); /* + offset up to 10FFEFh: past 1 MiB, A20 decides */
    struct vseg seg[SR_N];
    const char *why;
    real_state(seg);
    seg[SR_DS].base = 0;                     /* a protected-mode base... */
    assert_int_equal(rm_engine_for(seg, 0, &why), RM_EMULATE);
    rm_seg_load(&seg[SR_DS], seg[SR_DS].sel); /* ...until the guest reloads it */
    assert_int_equal(rm_engine_for(seg, 0, &why), RM_V86);
}

/* FLAGS images: bit 1 always set, bits 3, 5, 15 clear; a 16-bit POPF keeps
 * EFLAGS 31:16; no pop changes VM, VIF, VIP or RF; IF and IOPL do change
 * (real mode is CPL 0). */
static void test_flags(void **state)
{
    assert_int_equal(rm_flags_image(0), 0x0002);
    assert_int_equal(rm_flags_image(0xFFFFFFFFu), 0x7FD7);
    assert_int_equal(rm_flags_image(EFLAGS_IF | EFLAGS_CF | EFLAGS_VM), 0x0203);
    uint32_t fl = EFLAGS_ID | EFLAGS_AC | 0x2;
    assert_int_equal(rm_flags_pop(fl, 0x3246, 2), EFLAGS_ID | EFLAGS_AC | 0x3246);
    assert_int_equal(rm_flags_pop(fl, 0xFFFF, 2), EFLAGS_ID | EFLAGS_AC | 0x7FD7);
    assert_int_equal(rm_flags_pop(fl | EFLAGS_VM | EFLAGS_RF, EFLAGS_VIF | 0x202, 4), EFLAGS_VM | EFLAGS_RF | 0x202);
    assert_int_equal(rm_flags_pop(0x202, 0x0002, 4), 0x0002);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_table),
        cmocka_unit_test(test_seg_load),
        cmocka_unit_test(test_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
