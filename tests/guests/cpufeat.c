/*
 * cpufeat — every CPUID feature bit the CPU shows is one it honours, and
 * the MSRs it accepts behave as the SDM says.
 *
 * For each feature hv86's policy decides (docs/vmm.md "CPUID and MSR
 * policy"), the check is written as "shown => it works, hidden => its MSR
 * is #GP" or "shown => its instruction runs (no #UD)", so the line printed
 * is the same on a CPU that has the feature and on one that hides it
 * properly: natively QEMU and Bochs show PAT and MTRRs, hv86 hides them,
 * and all three print PASS. A bit shown but not honoured (an instruction
 * the translator cannot run, an MSR that #GPs) prints FAIL. Instructions
 * run at CPL 0, where hv86 translates them. Intel SDM Vol. 2A CPUID
 * (Tables 3-10, 3-11), Vol. 4 (MSRs), Vol. 3A §11.12 (PAT).
 */
#include "guest.h"

#define MSR_TSC 0x10u
#define MSR_APIC_BASE 0x1Bu
#define MSR_MTRRCAP 0xFEu
#define MSR_PAT 0x277u
#define MSR_TSC_DEADLINE 0x6E0u
#define PAT_POWER_ON 0x0007040600070406ull  /* SDM Vol. 3A Table 11-12 */
#define CR4_OSFXSR (1u << 9)

static uint32_t leaf1[4], leaf7[4], ext1[4];
volatile uint32_t msr_lo, msr_hi;

/* RDMSR / WRMSR of msr under the trap recorder: the vector taken (-1: none). */
static int try_rdmsr(uint32_t msr, uint64_t *v)
{
    uint32_t s, n;
    probe_arg = msr;
    msr_lo = msr_hi = 0;
    PROBE(s, n, "movl probe_arg, %%ecx", "rdmsr\n\tmovl %%eax, msr_lo\n\tmovl %%edx, msr_hi", "eax", "ecx", "edx");
    (void)s, (void)n;
    *v = (uint64_t)msr_hi << 32 | msr_lo;
    return last_trap.vector;
}

static int try_wrmsr(uint32_t msr, uint64_t v)
{
    uint32_t s, n;
    probe_arg = msr;
    msr_lo = (uint32_t)v;
    msr_hi = (uint32_t)(v >> 32);
    PROBE(s, n, "movl probe_arg, %%ecx\n\tmovl msr_lo, %%eax\n\tmovl msr_hi, %%edx", "wrmsr", "eax", "ecx", "edx");
    (void)s, (void)n;
    return last_trap.vector;
}

static bool shown(const uint32_t *leaf, int reg, int bit) { return leaf[reg] >> bit & 1; }
enum { EAX, EBX, ECX, EDX };

/* An MSR a feature brings: shown => it reads without a fault; hidden =>
 * #GP. QEMU 7.2 TCG answers some MSRs of features its CPU hides (MTRRs):
 * on a CPU whose brand says QEMU the hidden case passes without a probe. */
static void msr_follows_cpuid(const char *name, bool has, uint32_t msr)
{
    uint64_t v;
    if (!has && cpu_is_qemu()) {
        check(name, true, "%s", "");
        return;
    }
    int vec = try_rdmsr(msr, &v);
    check(name, has ? vec == -1 : vec == T_GP, "feature %s, rdmsr %x: vector %d", has ? "shown" : "hidden", msr,
          vec);
}

static void msrs(void)
{
    uint64_t a = 0, b = 0;
    bool read = shown(leaf1, EDX, 5) && try_rdmsr(MSR_TSC, &a) == -1;
    for (uint32_t i = 0; read && b <= a && i < 1000000; i++)
        read = try_rdmsr(MSR_TSC, &b) == -1;
    /* QEMU 7.2 TCG's RDMSR 10h returns the last value written, not the count. */
    check("msr-tsc-counts", read && (b > a || cpu_is_qemu()), "%s", "IA32_TIME_STAMP_COUNTER");
    /* SEP: the three SYSENTER MSRs keep what is written (CS: bits 15:0,
     * all that QEMU keeps). */
    bool sep = shown(leaf1, EDX, 11), ok = true;
    static const uint32_t sysenter[3] = { MSR_SYSENTER_CS, MSR_SYSENTER_ESP, MSR_SYSENTER_EIP };
    static const uint32_t val[3] = { 0x1238, 0x00ABCDE0, 0x00101234 };
    for (int i = 0; sep && i < 3; i++)
        ok = ok && try_wrmsr(sysenter[i], val[i]) == -1 && try_rdmsr(sysenter[i], &a) == -1 && (uint32_t)a == val[i];
    check("msr-sysenter-readback", sep && ok, "SEP %d", sep);
    for (int i = 0; sep && i < 3; i++)
        try_wrmsr(sysenter[i], 0);
    /* PAT (SDM Vol. 3A §11.12.2): the power-on value; a reserved memory
     * type (2) in an entry is #GP. Hidden: the MSR is #GP. */
    bool pat = shown(leaf1, EDX, 16);
    int vec = try_rdmsr(MSR_PAT, &a);
    if (pat && cpu_is_qemu())
        check("msr-pat-follows-cpuid", vec == -1 && a == PAT_POWER_ON, "%s", "QEMU: read only"); /* takes type 2 */
    else if (pat)
        check("msr-pat-follows-cpuid", vec == -1 && a == PAT_POWER_ON && try_wrmsr(MSR_PAT, PAT_POWER_ON) == -1 &&
              try_wrmsr(MSR_PAT, (PAT_POWER_ON & ~0xFFull) | 2) == T_GP, "PAT %08x%08x", (uint32_t)(a >> 32), (uint32_t)a);
    else
        check("msr-pat-follows-cpuid", vec == T_GP, "hidden, rdmsr vector %d", vec);
    try_wrmsr(MSR_PAT, PAT_POWER_ON);
    msr_follows_cpuid("msr-mtrrcap-follows-cpuid", shown(leaf1, EDX, 12), MSR_MTRRCAP);
    msr_follows_cpuid("msr-apic-base-follows-cpuid", shown(leaf1, EDX, 9), MSR_APIC_BASE);
    if (shown(leaf1, ECX, 24))
        msr_follows_cpuid("msr-tsc-deadline-follows-cpuid", true, MSR_TSC_DEADLINE);
    else
        check("msr-tsc-deadline-follows-cpuid", true, "%s", "");
}

/* CR4 bits of shown features take (SDM Vol. 3A §2.5). */
static void cr4_bits(void)
{
    uint32_t cr4 = read_cr4();
    static const struct { const char *name; int bit, cr4; } rows[] = {
        { "cr4-pse-follows-cpuid", 3, CR4_PSE }, { "cr4-pge-follows-cpuid", 13, CR4_PGE },
        { "cr4-osfxsr-follows-cpuid", 24, CR4_OSFXSR },
    };
    for (unsigned i = 0; i < ARRAY_SIZE(rows); i++) {
        if (!shown(leaf1, EDX, rows[i].bit)) {
            check(rows[i].name, true, "%s", "");
            continue;
        }
        write_cr4(cr4 | rows[i].cr4);
        check(rows[i].name, read_cr4() & rows[i].cr4, "cr4 %08x", read_cr4());
        write_cr4(cr4);
    }
}

/* Shown => the instruction runs at CPL 0 without #UD. */
struct insn_row { const char *name; const uint32_t *leaf; int reg, bit; void (*run)(void); };
#define INSN(fn, text)                                                         \
    static void fn(void)                                                       \
    {                                                                          \
        uint32_t s, n;                                                         \
        PROBE(s, n, "", text, "eax", "ecx", "edx", "ebx");                     \
        (void)s, (void)n;                                                      \
    }
uint8_t buf[512] ALIGNED(64);
INSN(i_cmov, "xorl %%eax, %%eax\n\tcmovzl %%ecx, %%eax")
INSN(i_cx8, "xorl %%eax, %%eax\n\txorl %%edx, %%edx\n\tcmpxchg8b buf")
INSN(i_fxsave, "fxsave buf")
INSN(i_clflush, "clflush buf")
INSN(i_sse2, "pxor %%xmm0, %%xmm0\n\tpaddd %%xmm0, %%xmm0")
INSN(i_sse3, "haddps %%xmm0, %%xmm0")
INSN(i_ssse3, "pshufb %%xmm0, %%xmm0")
INSN(i_sse41, "pminsd %%xmm0, %%xmm0")
INSN(i_sse42, "crc32l %%eax, %%eax")
INSN(i_popcnt, "popcntl %%eax, %%eax")
INSN(i_movbe, "movbel buf, %%eax")
INSN(i_aes, "aesenc %%xmm0, %%xmm0")
INSN(i_pclmul, "pclmulqdq $0, %%xmm0, %%xmm0")
INSN(i_rdrand, "rdrand %%eax")
INSN(i_bmi1, "andnl %%eax, %%eax, %%eax")
INSN(i_bmi2, "pdepl %%eax, %%eax, %%eax")
INSN(i_adx, "adcxl %%eax, %%eax")
INSN(i_rdseed, "rdseed %%eax")
INSN(i_lzcnt, "lzcntl %%eax, %%eax")
INSN(i_prefetchw, "prefetchw buf")

static void instructions(void)
{
    static const struct insn_row rows[] = {
        { "insn-cmov", leaf1, EDX, 15, i_cmov },       { "insn-cmpxchg8b", leaf1, EDX, 8, i_cx8 },
        { "insn-fxsave", leaf1, EDX, 24, i_fxsave },   { "insn-clflush", leaf1, EDX, 19, i_clflush },
        { "insn-sse2", leaf1, EDX, 26, i_sse2 },       { "insn-sse3", leaf1, ECX, 0, i_sse3 },
        { "insn-ssse3", leaf1, ECX, 9, i_ssse3 },      { "insn-sse41", leaf1, ECX, 19, i_sse41 },
        { "insn-sse42", leaf1, ECX, 20, i_sse42 },     { "insn-popcnt", leaf1, ECX, 23, i_popcnt },
        { "insn-movbe", leaf1, ECX, 22, i_movbe },     { "insn-aes", leaf1, ECX, 25, i_aes },
        { "insn-pclmulqdq", leaf1, ECX, 1, i_pclmul }, { "insn-rdrand", leaf1, ECX, 30, i_rdrand },
        { "insn-bmi1", leaf7, EBX, 3, i_bmi1 },        { "insn-bmi2", leaf7, EBX, 8, i_bmi2 },
        { "insn-adx", leaf7, EBX, 19, i_adx },         { "insn-rdseed", leaf7, EBX, 18, i_rdseed },
        { "insn-lzcnt", ext1, ECX, 5, i_lzcnt },       { "insn-prefetchw", ext1, ECX, 8, i_prefetchw },
    };
    uint32_t cr4 = read_cr4();
    if (shown(leaf1, EDX, 24))
        write_cr4(cr4 | CR4_OSFXSR); /* SSE instructions #UD without it */
    for (unsigned i = 0; i < ARRAY_SIZE(rows); i++) {
        if (!shown(rows[i].leaf, rows[i].reg, rows[i].bit)) {
            check(rows[i].name, true, "%s", "");
            continue;
        }
        rows[i].run();
        check(rows[i].name, last_trap.vector == -1, "shown, but vector %d", last_trap.vector);
    }
    write_cr4(cr4);
}

void guest_main(void)
{
    uint32_t r[4];
    cpuid(0, r);
    uint32_t max = r[0];
    cpuid(1, leaf1);
    if (max >= 7)
        asm volatile("cpuid" : "=a"(leaf7[0]), "=b"(leaf7[1]), "=c"(leaf7[2]), "=d"(leaf7[3]) : "a"(7), "c"(0));
    cpuid(0x80000000u, r);
    if (r[0] >= 0x80000001u)
        cpuid(0x80000001u, ext1);
    msrs();
    cr4_bits();
    instructions();
}
