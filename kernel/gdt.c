/*
 * Host GDT and TSS. Flat 4 GiB ring-0 code/data for the monitor, ring-3
 * code/data, the main TSS (esp0 for traps from outer rings) and a second TSS
 * that the #DF task gate switches to, so that a double fault caused by a
 * blown kernel stack still gets a good stack to print its dump on.
 * Source: Intel SDM Vol. 3A §3.4.5 (segment descriptors), §7.2 (TSS), §6.14 (#DF).
 */
#include "kernel/desc.h"
#include "kernel/kernel.h"
#include "kernel/traps.h"
#include "kernel/x86.h"

#define SEG_P       0x80  /* present */
#define SEG_S       0x10  /* code/data (not system) */
#define SEG_CODE_RX 0x0A  /* execute/read */
#define SEG_CODE_X  0x08  /* execute-only: reads through CS #GP (SDM Vol. 3A §3.4.5.1) */
#define SEG_DATA_RW 0x02  /* read/write */
#define SEG_TSS32   0x09  /* available 32-bit TSS */
#define SEG_DPL(n)  ((n) << 5)
#define FLAG_G      0x8   /* limit in 4 KiB units */
#define FLAG_D      0x4   /* 32-bit default size */

struct __attribute__((packed)) tss {
    uint16_t link, r0;
    uint32_t esp0; uint16_t ss0, r1;
    uint32_t esp1; uint16_t ss1, r2;
    uint32_t esp2; uint16_t ss2, r3;
    uint32_t cr3, eip, eflags, eax, ecx, edx, ebx, esp, ebp, esi, edi;
    uint16_t es, r4, cs, r5, ss, r6, ds, r7, fs, r8, gs, r9, ldt, r10;
    uint16_t trap, iomap_base;
};

static uint64_t gdt[GDT_ENTRIES] __attribute__((aligned(8)));
struct tss tss_main; /* not static: vmm/switch.S reads esp0 (offset 4) at a guest's SYSENTER */
static struct tss tss_df;
static uint8_t df_stack[8192] __attribute__((aligned(16)));
struct desc_ptr host_gdtr;

void double_fault_task(void); /* kernel/traps.c */
void fpu_host_init(void);

void gdt_init(void)
{
    gdt[0] = 0;
    gdt[SEL_KCODE >> 3] = desc_make(0, 0xFFFFF, SEG_P | SEG_S | SEG_CODE_RX | SEG_DPL(0), FLAG_G | FLAG_D);
    gdt[SEL_KDATA >> 3] = desc_make(0, 0xFFFFF, SEG_P | SEG_S | SEG_DATA_RW | SEG_DPL(0), FLAG_G | FLAG_D);
    /* Translated guest code runs at ring 1 from the translation cache, which
     * lies in the monitor: its CS must reach it. Guest data segments are the
     * ones truncated below MONITOR_BASE; this one is used for fetches only,
     * so it is execute-only: a read through CS (a guest cs: prefix the
     * translator missed, untranslated code) cannot see the monitor's image
     * (issue 11). Each vCPU's shadow GDT narrows it to its own translation
     * cache (vmm/vcpu.c init_sgdt); this flat one is never loaded. */
    gdt[SEL_R1CODE >> 3] = desc_make(0, 0xFFFFF, SEG_P | SEG_S | SEG_CODE_X | SEG_DPL(1), FLAG_G | FLAG_D);

    tss_main.ss0 = SEL_KDATA;
    tss_main.iomap_base = sizeof(struct tss); /* no I/O bitmap: all ports fault outside ring 0 */
    gdt[SEL_TSS >> 3] = desc_make((uint32_t)&tss_main, sizeof(tss_main) - 1, SEG_P | SEG_TSS32, 0);

    /* The #DF task runs double_fault_task on df_stack with the kernel's CR3. */
    tss_df.esp0 = tss_df.esp = (uint32_t)(df_stack + sizeof(df_stack));
    tss_df.ss0 = tss_df.ss = tss_df.ds = tss_df.es = tss_df.fs = tss_df.gs = SEL_KDATA;
    tss_df.cs = SEL_KCODE;
    tss_df.eip = (uint32_t)double_fault_task;
    tss_df.eflags = EFLAGS_FIXED;
    tss_df.cr3 = read_cr3();
    tss_df.iomap_base = sizeof(struct tss);
    gdt[SEL_DFTSS >> 3] = desc_make((uint32_t)&tss_df, sizeof(tss_df) - 1, SEG_P | SEG_TSS32, 0);

    host_gdtr = (struct desc_ptr){ sizeof(gdt) - 1, (uint32_t)gdt };
    lgdt(&host_gdtr);
    __asm__ volatile("ljmp %0, $1f\n1:\n"
                     "mov %1, %%ds\nmov %1, %%es\nmov %1, %%fs\nmov %1, %%gs\nmov %1, %%ss\n"
                     : : "i"(SEL_KCODE), "r"(SEL_KDATA) : "memory");
    ltr(SEL_TSS);
    /* GRUB leaves LDTR undefined (Multiboot2 §3.3): without this, an LDT
     * selector would index whatever table its stale LDTR points to. */
    lldt(0);
    /* Guest user code runs directly at ring 3 and may execute SYSENTER: with
     * SYSENTER_CS = 0 the CPU raises #GP instead of jumping into whatever
     * the firmware left there, and the monitor emulates the guest's own
     * SYSENTER (SDM Vol. 2B SYSENTER: "IF IA32_SYSENTER_CS = 0 THEN #GP(0)"). */
    wrmsr(MSR_IA32_SYSENTER_CS, 0);
    fpu_host_init();
}

/*
 * The FPU belongs to the guests (the hypervisor is built -mgeneral-regs-only):
 * native error reporting (NE), WAIT honours TS (MP), no emulation (EM), and
 * TS set so that the first FPU instruction of any vCPU traps (#NM) and the
 * monitor can switch the FPU state lazily. FXSAVE and SSE are enabled for the
 * guests when the CPU has them. SDM Vol. 3A §2.5, §13.1.
 */
void fpu_host_init(void)
{
    uint32_t a, b, c, d;
    cpuid(1, &a, &b, &c, &d);
    write_cr0((read_cr0() | CR0_MP | CR0_NE | CR0_TS) & ~CR0_EM);
    if ((d & CPUID1_EDX_FXSR) && (d & CPUID1_EDX_SSE))
        write_cr4(read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT);
    /* Ring-3 SGDT/SIDT/SLDT/STR/SMSW would show the monitor's own registers
     * to directly executed guest code; with UMIP they fault and are emulated. */
    cpuid(0, &a, &b, &c, &d);
    if (a >= 7) {
        cpuid(7, &a, &b, &c, &d);
        if (c & CPUID7_ECX_UMIP)
            write_cr4(read_cr4() | CR4_UMIP);
    }
}

void tss_set_kernel_stack(uint32_t esp0) { tss_main.esp0 = esp0; }
uint32_t tss_kernel_stack(void) { return tss_main.esp0; }

const uint64_t *gdt_monitor_entries(void) { return &gdt[GDT_MONITOR_FIRST]; }

uint64_t gdt_make_desc(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags)
{
    return desc_make(base, limit, access, flags);
}

/* Registers of the task that double-faulted, saved in tss_main by the task switch. */
void tss_main_regs(uint32_t *eip, uint32_t *esp, uint32_t *ebp, uint32_t *cr3)
{
    *eip = tss_main.eip;
    *esp = tss_main.esp;
    *ebp = tss_main.ebp;
    *cr3 = tss_main.cr3;
}
