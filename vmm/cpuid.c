/*
 * The guest CPUID policy: host values, feature bits whitelisted.
 *
 * A whitelist, not a blacklist: a feature bit a newer host CPU adds stays
 * hidden until someone decides hv86 virtualizes it. Bit numbers: Intel SDM
 * Vol. 2A, CPUID, Tables 3-10 (leaf 1 ECX), 3-11 (leaf 1 EDX), and the
 * leaf 7 / 80000001h descriptions.
 */
#include "vmm/cpuid.h"
#include "kernel/kernel.h"

#define BIT(n) (1u << (n))

/* Leaf 1 EDX bit 9 (APIC) is added by cpuid_add_apic for VMs with one. */
/* Leaf 1 ECX: SSE3 PCLMULQDQ SSSE3 CX16 SSE4.1 SSE4.2 MOVBE POPCNT AES RDRAND.
 * Hidden: MONITOR (MWAIT would halt the host thread), VMX/SMX, EST/TM2
 * (thermal MSRs), PDCM/PCID/x2APIC (not modelled), XSAVE,
 * OSXSAVE, AVX, FMA, F16C (XCR0 is not virtualized), hypervisor bit.
 * TSC-deadline (bit 24) is added with the local APIC by cpuid_add_apic
 * where the VM asks for it (apic=deadline). */
#define LEAF1_ECX (BIT(0) | BIT(1) | BIT(9) | BIT(13) | BIT(19) | BIT(20) | BIT(22) | BIT(23) | \
                   BIT(25) | BIT(30))
/* Leaf 1 EDX: FPU PSE TSC MSR CX8 SEP PGE CMOV CLFSH MMX FXSR SSE SSE2 SS.
 * Hidden: VME (no virtual-8086), DE, PAE/PSE36 (the shadow pager does 32-bit
 * paging only), MCE/MCA, APIC (interrupts come from the 8259A), MTRR, PAT,
 * PSN, DS, ACPI thermal control, HTT (one logical processor), TM, PBE. */
#define LEAF1_EDX (BIT(0) | BIT(3) | BIT(4) | BIT(5) | BIT(8) | BIT(11) | BIT(13) | BIT(15) | \
                   BIT(19) | BIT(23) | BIT(24) | BIT(25) | BIT(26) | BIT(27))
/* Leaf 7.0 EBX: BMI1 BMI2 ERMS RDSEED ADX CLFLUSHOPT CLWB SHA (user-level
 * instructions that need no monitor support). Hidden: SMEP/SMAP (CR4 bits
 * the shadow pager does not implement), INVPCID, RTM/HLE, MPX, AVX2/AVX-512
 * (XSAVE state), and every ECX/EDX bit (UMIP, PKU, speculation MSRs). */
#define LEAF7_EBX (BIT(3) | BIT(8) | BIT(9) | BIT(18) | BIT(19) | BIT(23) | BIT(24) | BIT(29))
/* 80000001h ECX: LAHF/SAHF in 64-bit mode, LZCNT, PREFETCHW. EDX: none of
 * SYSCALL, NX (needs PAE), 1 GiB pages, RDTSCP (IA32_TSC_AUX), LM. */
#define EXT1_ECX  (BIT(0) | BIT(5) | BIT(8))

/* Leaf 1 EBX: brand index and CLFLUSH line size (bits 15:0) kept; one
 * logical processor (23:16); initial APIC ID 0 (31:24). */
#define LEAF1_EBX_KEEP 0x0000FFFFu
#define LEAF1_EBX_ONE_CPU 0x00010000u

/* The TSC-frequency leaves, 15h and 16h, exist for Intel CPUs only; leaf0 is
 * the host's CPUID.0 (vendor in EBX EDX ECX). */
static bool intel_host(const uint32_t leaf0[4])
{
    return leaf0[1] == 0x756E6547u && leaf0[3] == 0x49656E69u && leaf0[2] == 0x6C65746Eu; /* "GenuineIntel" */
}

/* Highest basic leaf: the host's, capped; raised to 16h to report the TSC. */
static uint32_t guest_max_basic(const uint32_t leaf0[4], uint64_t tsc_hz)
{
    return tsc_hz && intel_host(leaf0) ? CPUID_GUEST_MAX_BASIC : MIN(leaf0[0], 7u);
}

/* Leaf 15h's core crystal clock, which is also the local APIC timer's input
 * (SDM Vol. 3A §10.5.4: "the core crystal clock frequency" when leaf 15h
 * enumerates it; vmm/dev/vlapic.h VLAPIC_TIMER_HZ). The TSC is reported as
 * crystal * EBX / EAX with EAX = TSC_RATIO_DEN: 2 kHz steps, and Linux's
 * 32-bit product crystal_khz * EBX (arch/x86/kernel/tsc.c) stays below
 * 2^32 for a TSC up to 8 GHz. */
#define TSC_RATIO_DEN 500u

void cpuid_add_apic(uint32_t leaf, uint32_t out[4], bool tsc_deadline)
{
    if (leaf == 1) {
        out[3] |= BIT(9);  /* APIC */
        if (tsc_deadline)
            out[2] |= BIT(24); /* TSC-deadline mode of its timer (vmm/dev/vlapic.c) */
    }
}

void cpuid_guest(cpuid_host_fn host, void *ctx, uint64_t tsc_hz, uint32_t leaf, uint32_t subleaf,
                 uint32_t out[4])
{
    uint32_t h[4] = { 0 }, max[4];
    out[0] = out[1] = out[2] = out[3] = 0;
    bool ext = leaf >= 0x80000000u;
    host(ctx, ext ? 0x80000000u : 0, 0, max);
    uint32_t gmax = ext ? MIN(max[0], CPUID_GUEST_MAX_EXT) : guest_max_basic(max, tsc_hz);
    if (leaf > gmax || (ext && max[0] < 0x80000000u))
        return;
    if (leaf == 0x15) { /* TSC = crystal * EBX / EAX (SDM Vol. 2A CPUID, leaf 15h) */
        uint64_t step = CPUID_CRYSTAL_HZ / TSC_RATIO_DEN;
        out[0] = TSC_RATIO_DEN;
        out[1] = (uint32_t)((tsc_hz + step / 2) / step);
        out[2] = CPUID_CRYSTAL_HZ;
        return;
    }
    if (leaf == 0x16) { /* base, maximum and bus frequencies, MHz */
        out[0] = out[1] = (uint32_t)((tsc_hz + 500000) / 1000000);
        out[2] = 100;
        return;
    }
    if (!ext && (leaf > 7 || leaf > max[0]))
        return; /* 8-14h (perfmon, topology, XSAVE, trace...) hidden; none the host lacks */
    host(ctx, leaf, subleaf, h);
    switch (leaf) {
    case 0: /* max leaf, vendor string in EBX EDX ECX */
        out[0] = gmax; out[1] = h[1]; out[2] = h[2]; out[3] = h[3];
        break;
    case 1: /* signature, features */
        out[0] = h[0];
        out[1] = (h[1] & LEAF1_EBX_KEEP) | LEAF1_EBX_ONE_CPU;
        out[2] = h[2] & LEAF1_ECX;
        out[3] = h[3] & LEAF1_EDX;
        break;
    case 2: /* cache and TLB descriptors */
        memcpy(out, h, sizeof(h));
        break;
    case 4: /* deterministic cache parameters, per subleaf: one core, one thread */
        out[0] = h[0] & ~(0x3Fu << 26 | 0xFFFu << 14);
        out[1] = h[1]; out[2] = h[2]; out[3] = h[3];
        break;
    case 7: /* structured extended features: subleaf 0 only, no further subleaves */
        if (subleaf == 0)
            out[1] = h[1] & LEAF7_EBX;
        break;
    case 0x80000000u:
        out[0] = gmax;
        break;
    case 0x80000001u:
        out[2] = h[2] & EXT1_ECX;
        break;
    case 0x80000002u: case 0x80000003u: case 0x80000004u: /* brand string */
    case 0x80000005u: case 0x80000006u:                   /* caches */
        memcpy(out, h, sizeof(h));
        break;
    case 0x80000008u: /* physical/linear address sizes */
        out[0] = h[0] & 0xFFFFu;
        break;
    default: /* 3 (serial number), 5 (MONITOR), 6 (thermal), 80000007h (power): hidden */
        break;
    }
}

/* The MSRs of the virtual CPU. A guest reads or writes these and nothing
 * else; what each does is emu_msr's (vmm/emulate.c) and vmdev_apic_msr's.
 * PAT is not here: CPUID hides PAT, and the shadow pager never sets the
 * PAT bit (memory types are the host's), so IA32_PAT is #GP like any MSR
 * of a feature the CPU lacks. Sources: SDM Vol. 4 Table 2-2. */
static const struct msr_policy msrs[] = {
    { MSR_TSC, "IA32_TIME_STAMP_COUNTER", true, 0, false },   /* reads the host's; writes ignored (docs) */
    { MSR_PLATFORM_ID, "IA32_PLATFORM_ID", false, 0, false }, /* read-only: reads 0 */
    { MSR_APIC_BASE, "IA32_APIC_BASE", true, 0, true },       /* vlapic_set_base: reserved bits #GP */
    { MSR_BIOS_SIGN_ID, "IA32_BIOS_SIGN_ID", true, 0, false },/* no microcode: reads 0, writes are the
                                                                 "clear before CPUID" idiom */
    { MSR_SYSENTER_CS, "IA32_SYSENTER_CS", true, 0, false },
    { MSR_SYSENTER_ESP, "IA32_SYSENTER_ESP", true, 0, false },
    { MSR_SYSENTER_EIP, "IA32_SYSENTER_EIP", true, 0, false },
    { MSR_MISC_ENABLE, "IA32_MISC_ENABLE", true, ~0ull, false }, /* reads 0: none of its model-specific
                                                                    features; setting a bit is #GP */
    { MSR_TSC_DEADLINE, "IA32_TSC_DEADLINE", true, 0, true },  /* vlapic: TSC-deadline mode */
};

const struct msr_policy *cpuid_msr_policy(uint32_t msr)
{
    for (unsigned i = 0; i < ARRAY_SIZE(msrs); i++)
        if (msrs[i].msr == msr)
            return &msrs[i];
    return NULL;
}

unsigned cpuid_msr_count(void) { return ARRAY_SIZE(msrs); }

const struct msr_policy *cpuid_msr_at(unsigned i) { return i < ARRAY_SIZE(msrs) ? &msrs[i] : NULL; }
