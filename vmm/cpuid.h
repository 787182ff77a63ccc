/*
 * What a guest sees of the CPU: the CPUID policy and the MSR set.
 *
 * A guest gets the host processor's identity (vendor, family/model/stepping,
 * brand string, caches) and only the features hv86 virtualizes (the local
 * APIC only in a VM that has one: cpuid_add_apic); everything it would
 * have to trap and model (MTRRs, machine check, PAE, PAT, XSAVE/AVX state,
 * VMX, performance monitoring, ...) is hidden. The table
 * and the reasons are in docs/vmm.md "CPUID and MSR policy".
 * Sources: Intel SDM Vol. 2A CPUID (Tables 3-8, 3-10, 3-11), Vol. 4 (MSRs).
 */
#ifndef HV86_VMM_CPUID_H
#define HV86_VMM_CPUID_H
#include <stdbool.h>
#include <stdint.h>

/* Highest leaves a guest is told about (CPUID.0:EAX, CPUID.80000000h:EAX). */
#define CPUID_GUEST_MAX_BASIC 0x16u
#define CPUID_GUEST_MAX_EXT   0x80000008u
/* The core crystal clock of leaf 15h, Hz: the local APIC timer's input. */
#define CPUID_CRYSTAL_HZ      1000000u

/*
 * The host's answer for one leaf/subleaf: host(ctx, leaf, subleaf, out[4])
 * fills out[] = { EAX, EBX, ECX, EDX }. In hv86 this runs CPUID; the unit
 * tests give recorded answers.
 */
typedef void (*cpuid_host_fn)(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t out[4]);

/*
 * cpuid_guest - the guest's CPUID(leaf, subleaf) into out[4] = EAX EBX ECX
 * EDX: the host's values filtered by the policy. Leaves beyond the guest's
 * maxima and leaves the policy does not expose read as all zeros (never
 * the host's data for its highest leaf). tsc_hz, the TSC frequency hv86
 * measured against the PIT at boot (Hz; 0: unknown), is reported in leaves
 * 15h (as a 1 MHz crystal, the APIC timer's input, times a ratio: 2 kHz steps) and 16h (MHz)
 * when the host is an Intel CPU, whose Linux code reads them there instead
 * of timing the PIT. Never fails.
 */
void cpuid_guest(cpuid_host_fn host, void *ctx, uint64_t tsc_hz, uint32_t leaf, uint32_t subleaf,
                 uint32_t out[4]);

/*
 * cpuid_add_apic - for a VM with a local APIC (vmm/dev/vlapic.h): in out[]
 * (the answer for leaf), CPUID.1 EDX bit 9 (APIC on chip) and, with
 * tsc_deadline (`apic=deadline`), ECX bit 24 (TSC-deadline mode of the
 * APIC timer, IA32_TSC_DEADLINE; SDM Vol. 3A §10.5.4.1), both of which
 * vlapic models. Other leaves are left alone.
 */
void cpuid_add_apic(uint32_t leaf, uint32_t out[4], bool tsc_deadline);

/* MSRs a guest may read or write (SDM Vol. 4 Table 2-2). */
#define MSR_PLATFORM_ID    0x017u
#define MSR_APIC_BASE      0x01Bu
#define MSR_BIOS_SIGN_ID   0x08Bu
#define MSR_SYSENTER_CS    0x174u
#define MSR_SYSENTER_ESP   0x175u
#define MSR_SYSENTER_EIP   0x176u
#define MSR_MISC_ENABLE    0x1A0u
#define MSR_PAT            0x277u /* not offered: CPUID.1:EDX[16] clear, #GP */
#define MSR_TSC            0x010u
#define MSR_TSC_DEADLINE   0x6E0u

/* One MSR of the virtual CPU (docs/vmm.md "CPUID and MSR policy"). */
struct msr_policy {
    uint32_t msr;
    const char *name;
    bool writable;          /* false: WRMSR is #GP(0) (a read-only MSR) */
    uint64_t wr_reserved;   /* WRMSR with any of these bits set is #GP(0) */
    bool device;            /* the local APIC decides (vmdev_apic_msr): #GP without one */
};

/*
 * cpuid_msr_policy - the policy row of MSR msr, or NULL: every MSR not in
 * the table is #GP(0) on RDMSR and WRMSR, as on a CPU without it (SDM
 * Vol. 2B RDMSR/WRMSR: "If ECX specifies a reserved or unimplemented
 * MSR address"), which Linux's rdmsr_safe expects. The rows, their
 * values and why each is there: docs/vmm.md. cpuid_msr_count/cpuid_msr_at
 * walk the table (for its tests). Never fails.
 */
const struct msr_policy *cpuid_msr_policy(uint32_t msr);
unsigned cpuid_msr_count(void);
const struct msr_policy *cpuid_msr_at(unsigned i);

#endif
