/*
 * The guest CPUID policy (vmm/cpuid.c) against a synthetic host that sets
 * every bit and against the CPU this test runs on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <cpuid.h>

#include "vmm/cpuid.h"

/* A host with every feature bit set, basic leaves up to max_basic, extended
 * up to 80000008h; leaf 4 describes three caches (subleaves 0-2, then type 0). */
struct fake_host {
    uint32_t max_basic;
};

static void fake_cpuid(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
    const struct fake_host *h = ctx;
    out[0] = out[1] = out[2] = out[3] = 0xFFFFFFFFu;
    if (leaf == 0) {
        out[0] = h->max_basic;
        memcpy(&out[1], "Genu", 4), memcpy(&out[3], "ineI", 4), memcpy(&out[2], "ntel", 4);
    } else if (leaf == 0x80000000u) {
        out[0] = 0x80000008u;
    } else if (leaf == 4) {
        out[0] = subleaf < 3 ? (0x3Fu << 26) | (0xFFFu << 14) | (subleaf + 1) : 0;
        out[1] = 0x01C0003Fu + subleaf;
    }
}

#define HOST_TSC_HZ 2596144000ull /* what hv86 measured against the PIT, say */

static void guest(struct fake_host *h, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    cpuid_guest(fake_cpuid, h, HOST_TSC_HZ, leaf, sub, r);
}

static void test_basic_leaves(void **state)
{
    struct fake_host h = { 0x1F };
    uint32_t r[4];

    guest(&h, 0, 0, r);
    assert_int_equal(r[0], CPUID_GUEST_MAX_BASIC);
    assert_memory_equal(&r[1], "Genu", 4);
    assert_memory_equal(&r[2], "ntel", 4);
    assert_memory_equal(&r[3], "ineI", 4);

    guest(&h, 1, 0, r);
    assert_int_equal(r[0], 0xFFFFFFFFu);      /* signature passes */
    assert_int_equal(r[1], 0x0001FFFFu);      /* one logical CPU, APIC ID 0 */
    /* hidden: MONITOR, VMX, SMX, PCID, x2APIC, TSC-deadline, XSAVE, OSXSAVE, AVX, hypervisor */
    for (int bit = 0; bit < 32; bit++) {
        uint32_t m = 1u << bit;
        int hidden_ecx = bit == 3 || bit == 5 || bit == 6 || bit == 17 || bit == 21 || bit == 24 ||
                         bit == 26 || bit == 27 || bit == 28 || bit == 31;
        if (hidden_ecx)
            assert_int_equal(r[2] & m, 0);
    }
    assert_int_equal(r[2], 0x42D82203u);      /* exactly the whitelist */
    /* hidden in EDX: VME DE PAE MCE APIC MTRR MCA PAT PSE36 HTT */
    uint32_t edx_hidden = 1u << 1 | 1u << 2 | 1u << 6 | 1u << 7 | 1u << 9 | 1u << 12 | 1u << 14 |
                          1u << 16 | 1u << 17 | 1u << 28;
    assert_int_equal(r[3] & edx_hidden, 0);
    assert_int_equal(r[3], 0x0F88A939u);
    /* kept: FPU TSC MSR CX8 SEP PGE CMOV FXSR SSE SSE2 */
    uint32_t edx_kept = 1u << 0 | 1u << 4 | 1u << 5 | 1u << 8 | 1u << 11 | 1u << 13 | 1u << 15 |
                        1u << 24 | 1u << 25 | 1u << 26;
    assert_int_equal(r[3] & edx_kept, edx_kept);

    guest(&h, 7, 0, r);
    assert_int_equal(r[0], 0);                /* no further subleaves */
    assert_int_equal(r[1] & (1u << 7 | 1u << 20 | 1u << 10 | 1u << 11), 0); /* SMEP SMAP INVPCID RTM */
    assert_int_equal(r[2], 0);
    assert_int_equal(r[3], 0);
    guest(&h, 7, 1, r);
    assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);

    guest(&h, 6, 0, r);                       /* thermal: hidden */
    assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
    for (uint32_t leaf = 8; leaf < 0x15; leaf++) { /* perfmon, topology, XSAVE, ...: hidden */
        guest(&h, leaf, 0, r);
        assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
    }
    guest(&h, 0x17, 0, r);                    /* beyond the guest maximum */
    assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
    guest(&h, 0x40000000u, 0, r);             /* no hypervisor leaves */
    assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
}

/* The TSC frequency as Linux's native_calibrate_tsc and cpu_khz_from_cpuid
 * compute it from leaves 15h and 16h (arch/x86/kernel/tsc.c). */
/* A VM with a local APIC: CPUID.1 EDX[9] (APIC) and ECX[24] (TSC-deadline),
 * both modelled by vmm/dev/vlapic.c; nothing else, no other leaf. */
static void test_apic_bits(void **state)
{
    uint32_t r[4] = { 0x11, 0x22, 0x33, 0x44 };
    cpuid_add_apic(1, r, false);                                 /* apic=1: no TSC-deadline */
    assert_int_equal(r[0], 0x11);
    assert_int_equal(r[1], 0x22);
    assert_int_equal(r[2], 0x33u);
    assert_int_equal(r[3], 0x44u | 1u << 9);
    cpuid_add_apic(1, r, true);                                  /* apic=deadline */
    assert_int_equal(r[2], 0x33u | 1u << 24);
    assert_int_equal(r[3], 0x44u | 1u << 9);
    uint32_t o[4] = { 0 };
    cpuid_add_apic(7, o, true);
    cpuid_add_apic(0x80000001u, o, true);
    assert_int_equal(o[0] | o[1] | o[2] | o[3], 0);
}

/* The MSR policy table: one row per MSR; none for a feature CPUID hides
 * (PAT, MTRRs, machine check, performance counters, EFER/SYSCALL,
 * TSC_AUX, TSC_ADJUST, x2APIC, speculation control), so all of those are
 * #GP; read-only and reserved-bit rules as docs/vmm.md has them. */
static void test_msr_policy(void **state)
{
    unsigned n = cpuid_msr_count();
    assert_true(n >= 9);
    for (unsigned i = 0; i < n; i++) {
        const struct msr_policy *p = cpuid_msr_at(i);
        assert_non_null(p->name);
        assert_ptr_equal(cpuid_msr_policy(p->msr), p); /* unique */
    }
    assert_null(cpuid_msr_at(n));
    static const uint32_t hidden[] = {
        0x277 /* PAT */, 0xFE /* MTRRCAP */, 0x200, 0x20F, 0x250, 0x2FF /* MTRRs */, 0x179, 0x17A,
        0x17B /* MCG */, 0x400 /* MC0_CTL */, 0xC1, 0x186, 0x38F /* perfmon */, 0xC0000080 /* EFER */,
        0xC0000081, 0xC0000103 /* TSC_AUX */, 0x3B /* TSC_ADJUST */, 0x48, 0x49, 0x10A /* speculation */,
        0x802, 0x830 /* x2APIC */, 0xE7, 0xE8 /* MPERF APERF */, 0x1B0 /* ENERGY_PERF_BIAS */,
    };
    for (unsigned i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++)
        assert_null(cpuid_msr_policy(hidden[i]));
    unsigned found = 0;
    for (uint32_t msr = 0; msr < 0x2000; msr++)
        found += cpuid_msr_policy(msr) != NULL;
    assert_int_equal(found, n); /* every row is in the architectural range, no other MSR answers */
    assert_false(cpuid_msr_policy(MSR_PLATFORM_ID)->writable);
    assert_int_equal(cpuid_msr_policy(MSR_MISC_ENABLE)->wr_reserved, ~0ull);
    assert_true(cpuid_msr_policy(MSR_APIC_BASE)->device);
    assert_true(cpuid_msr_policy(MSR_TSC_DEADLINE)->device);
    assert_false(cpuid_msr_policy(MSR_SYSENTER_CS)->device);
    assert_true(cpuid_msr_policy(MSR_SYSENTER_EIP)->writable);
}

static void test_tsc_leaves(void **state)
{
    struct fake_host h = { 0x1F };
    uint32_t r[4];
    guest(&h, 0, 0, r);
    assert_int_equal(r[0], 0x16);
    guest(&h, 0x15, 0, r);
    uint32_t crystal_khz = r[2] / 1000, tsc_khz = crystal_khz * r[1] / r[0];
    assert_true(tsc_khz >= HOST_TSC_HZ / 1000 - 10 && tsc_khz <= HOST_TSC_HZ / 1000 + 10);
    guest(&h, 0x16, 0, r);
    assert_int_equal(r[0], 2596);             /* base MHz: Linux's cpu_khz */
    assert_int_equal(r[2], 100);
    /* Unknown TSC frequency, or not an Intel host: no leaves 15h/16h. */
    uint32_t out[4];
    cpuid_guest(fake_cpuid, &h, 0, 0, 0, out);
    assert_int_equal(out[0], 7);
    cpuid_guest(fake_cpuid, &h, 0, 0x15, 0, out);
    assert_int_equal(out[0] | out[1] | out[2] | out[3], 0);
}

static void amd_cpuid(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
    fake_cpuid(ctx, leaf, subleaf, out);
    if (leaf == 0)
        memcpy(&out[1], "Auth", 4), memcpy(&out[3], "enti", 4), memcpy(&out[2], "cAMD", 4);
}

static void test_tsc_leaves_intel_only(void **state)
{
    struct fake_host h = { 0x1F };
    uint32_t r[4];
    cpuid_guest(amd_cpuid, &h, HOST_TSC_HZ, 0, 0, r);
    assert_int_equal(r[0], 7);
    cpuid_guest(amd_cpuid, &h, HOST_TSC_HZ, 0x16, 0, r);
    assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
}

static void test_leaf4_subleaves(void **state)
{
    struct fake_host h = { 0x1F };
    uint32_t r[4];
    for (uint32_t sub = 0; sub < 3; sub++) {
        guest(&h, 4, sub, r);
        assert_int_equal(r[0], sub + 1);      /* type kept, core/thread counts zeroed */
        assert_int_equal(r[1], 0x01C0003Fu + sub);
    }
    guest(&h, 4, 3, r);
    assert_int_equal(r[0] & 0x1F, 0);         /* the enumeration ends where the host's does */
}

static void test_low_host_maximum(void **state)
{
    struct fake_host h = { 4 };
    uint32_t r[4];
    cpuid_guest(fake_cpuid, &h, 0, 0, 0, r);
    assert_int_equal(r[0], 4);
    guest(&h, 7, 0, r);
    assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
}

static void test_extended_leaves(void **state)
{
    struct fake_host h = { 0x1F };
    uint32_t r[4];
    guest(&h, 0x80000000u, 0, r);
    assert_int_equal(r[0], 0x80000008u);
    guest(&h, 0x80000001u, 0, r);
    assert_int_equal(r[3], 0);                /* no SYSCALL, NX, RDTSCP, LM */
    assert_int_equal(r[2], 1u << 0 | 1u << 5 | 1u << 8);
    guest(&h, 0x80000002u, 0, r);
    assert_int_equal(r[0] & r[1] & r[2] & r[3], 0xFFFFFFFFu); /* brand string passes */
    guest(&h, 0x80000007u, 0, r);
    assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
    guest(&h, 0x80000008u, 0, r);
    assert_int_equal(r[0], 0xFFFFu);
    guest(&h, 0x80000009u, 0, r);
    assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
}

/* ------------------------------------------------------------ the real CPU */

static void real_cpuid(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
    __cpuid_count(leaf, subleaf, out[0], out[1], out[2], out[3]);
}

static void test_this_cpu(void **state)
{
    uint32_t r[4], hst[4];
    cpuid_guest(real_cpuid, NULL, 0, 0, 0, r);
    real_cpuid(NULL, 0, 0, hst);
    assert_int_equal(r[0], hst[0] < 7 ? hst[0] : 7);
    assert_memory_equal(&r[1], &hst[1], 12);  /* the vendor is the host's */

    cpuid_guest(real_cpuid, NULL, 0, 1, 0, r);
    real_cpuid(NULL, 1, 0, hst);
    assert_int_equal(r[0], hst[0]);
    assert_int_equal(r[2] & ~hst[2], 0);      /* never more than the host has */
    assert_int_equal(r[3] & ~hst[3], 0);
    assert_int_equal(r[2] & (1u << 31 | 1u << 5 | 1u << 21), 0);
    assert_int_equal(r[3] & (1u << 9 | 1u << 12 | 1u << 6), 0);
    /* what Linux needs of the host is still there (i686 kernels: CMOV, FXSR, TSC, CX8) */
    uint32_t need = 1u << 4 | 1u << 8 | 1u << 15 | 1u << 24;
    assert_int_equal(r[3] & need, hst[3] & need);
    printf("this CPU: leaf 1 ECX %08x -> %08x, EDX %08x -> %08x\n", hst[2], r[2], hst[3], r[3]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_leaves),
        cmocka_unit_test(test_apic_bits),
        cmocka_unit_test(test_msr_policy),
        cmocka_unit_test(test_tsc_leaves),
        cmocka_unit_test(test_tsc_leaves_intel_only),
        cmocka_unit_test(test_leaf4_subleaves),
        cmocka_unit_test(test_low_host_maximum),
        cmocka_unit_test(test_extended_leaves),
        cmocka_unit_test(test_this_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
