/*
 * realmode — the guest drops from protected mode to real-address mode the
 * way SDM Vol. 3A §9.9.2 says (a 16-bit code segment, 16-bit data
 * segments, CR0.PE cleared, a far jump), runs checks there, and comes back
 * (§9.9.1). The real-mode part is the 16-bit blob below, copied to
 * RM_BASE (segment RM_SEG); it leaves its results in a table the C side
 * checks afterwards, and prints one line itself through COM1.
 *
 * Covered: real-mode arithmetic (16- and 32-bit operands), the 64 KiB
 * wrap of offsets, INT n / INT3 / IRET through the IVT (IF cleared in the
 * handler, restored by IRET), a PIT interrupt taken in real mode through
 * the IVT, CLI/STI/PUSHF/POPF, port I/O, protected mode and back from real
 * mode, unreal mode (FS loaded with a 4 GiB segment in protected mode,
 * then reloaded with 0 in real mode: reads and writes at 2 MiB), and the
 * A20 gate through port 0x92 and the i8042 output port (FFFF:xxxx above
 * 1 MiB wraps to 0 with the gate closed).
 *
 * Hostile (also run by test_vms.py isolation under Bochs): unreal-mode
 * stores, REP STOS and REP MOVS aimed at hv86's range (0xFC000000 up: its
 * code, a VM window) and the top of memory, which must not stick nor read
 * back anything but the bus's constant; with ivt=1 on the command line an
 * INT n through an IVT moved into that range; with d32=1 real mode
 * entered with a 32-bit code segment, and with pae=1 PAE paging: modes
 * hv86 stops the guest for, with the reason.
 *
 * Hazard: under hv86 real mode runs in virtual-8086 mode with every
 * sensitive instruction emulated, the mode switches and unreal accesses
 * emulated, and the A20 gate applied by the shadow pager.
 * Expected values come from the architecture (and from C computing the
 * same arithmetic), and every backend must print the same lines.
 */
#include "guest.h"
#include "pic.h"

#define RM_BASE   0x20000u          /* where the blob runs: segment RM_SEG */
#define RM_SEG    0x2000
#define SEL_CODE16 (SEL_SPARE + 0x00) /* base RM_BASE, 64 KiB, 16-bit code */
#define SEL_DATA16 (SEL_SPARE + 0x08) /* base RM_BASE, 64 KiB, 16-bit data */
#define SEL_FLAT4G (SEL_SPARE + 0x10) /* base 0, 4 GiB, for unreal mode */
#define UNREAL_AT 0x200000u          /* 2 MiB: beyond any real-mode segment */
#define PMTRIP_AT 0x30000u           /* written from protected mode entered from real mode */

/* The results table at the blob's end (offsets fixed in the asm below). */
struct rm_results {
    uint32_t mul, div_q, div_r, wrap, int_ax, int_if, iret_if, int3, ticks;
    uint32_t cli_if, sti_if, popf_if, flags_img, unreal_rd, a20off_low, a20on_low, a20on_high;
    uint32_t kbc_off_low, pmtrip, probe_lin;
    uint8_t mon_write_sticks, mon_string_sticks, top_write_sticks, hostile_ivt;
    uint16_t sysenter_gp, after_sysenter;
};

extern const uint8_t rm_blob_start[], rm_blob_end[], rm_results_at[];
void rm_call(void);

/* Linear address FFFF:xxxx reaches above 1 MiB; the C side tells the blob
 * which address (a word of this guest's own data, just above 1 MiB). */
static volatile uint32_t a20_probe[4] = { 0x11111111, 0x22222222, 0x33333333, 0x44444444 };

asm(
    ".section .text.rm, \"ax\"\n"
    ".globl rm_blob_start, rm_blob_end, rm_results_at, rm_call\n"
    ".code16\n"
    "rm_blob_start:\n"
    /* 16-bit protected mode, CS = SEL_CODE16: 16-bit data segments, FS flat. */
    "    mov $" "0x40" ", %ax\n"
    "    mov %ax, %ds\n    mov %ax, %es\n    mov %ax, %ss\n    mov %ax, %gs\n"
    "    mov $0x48, %ax\n    mov %ax, %fs\n    mov %ax, %es\n"
    "    mov %cr0, %eax\n    and $0xFFFFFFFE, %eax\n    mov %eax, %cr0\n"
    "    ljmp $0x2000, $(rm_entry - rm_blob_start)\n"
    "rm_entry:\n"
    "    mov %cs, %ax\n    mov %ax, %ds\n    mov %ax, %ss\n    mov %ax, %gs\n"
    "    xor %ax, %ax\n    mov %ax, %fs\n    mov %ax, %es\n" /* base 0, the 4 GiB limits stay */
    /* hostile: unreal mode aimed at hv86's range (0xFC000000 up) and the top of memory */
    "    mov $0xFC000000, %esi\n    movl $0x5EC0DE01, %fs:(%esi)\n    cmpl $0x5EC0DE01, %fs:(%esi)\n"
    "    sete (R + 80 - rm_blob_start)\n"
    "    mov $0xFC103000, %edi\n    mov $0xCCCCCCCC, %eax\n    mov $64, %ecx\n    cld\n    addr32 rep stosl\n"
    "    mov $0xFE400000, %edi\n    mov $64, %ecx\n    addr32 rep stosl\n"
    "    mov $0xFE400000, %esi\n    cmpl $0xCCCCCCCC, %fs:(%esi)\n    sete (R + 81 - rm_blob_start)\n"
    "    mov $0xFFFFFFF0, %esi\n    movl $0x5EC0DE02, %fs:(%esi)\n    cmpl $0x5EC0DE02, %fs:(%esi)\n"
    "    sete (R + 82 - rm_blob_start)\n"
    "    mov $0xFC103000, %esi\n    mov $0x200100, %edi\n    mov $4, %ecx\n    addr32 rep movsl %fs:(%esi), %es:(%edi)\n"
    "    mov %cs, %ax\n    mov %ax, %es\n"
    "    mov $0xFFF0, %sp\n"
    "    lidt (rm_idtr - rm_blob_start)\n"
    "    cmpb $0, (R + 83 - rm_blob_start)\n    jne hostile_ivt\n"
    /* arithmetic */
    "    mov $1234, %ax\n    mov $56789, %bx\n    mul %bx\n"
    "    mov %ax, (R + 0 - rm_blob_start)\n    mov %dx, (R + 2 - rm_blob_start)\n"
    "    mov $0x12345678, %eax\n    mov $0x1234, %ecx\n    xor %edx, %edx\n    div %ecx\n"
    "    mov %eax, (R + 4 - rm_blob_start)\n    mov %edx, (R + 8 - rm_blob_start)\n"
    /* 64 KiB wrap of an offset: [0xFFF0 + 0x20] is [0x0010] */
    "    mov $0x3000, %ax\n    mov %ax, %es\n"       /* scratch at 0x30000, not the blob */
    "    movw $0xBEEF, %es:(0x0010)\n    mov $0xFFF0, %bx\n    mov $0x20, %si\n    mov %es:(%bx,%si), %ax\n"
    "    mov %ax, (R + 12 - rm_blob_start)\n"
    /* INT n, INT3 and IRET through the IVT */
    "    xor %ax, %ax\n    mov %ax, %es\n"
    "    movw $(isr81 - rm_blob_start), %es:(0x81*4)\n    movw %cs, %es:(0x81*4+2)\n"
    "    movw $(isr03 - rm_blob_start), %es:(3*4)\n    movw %cs, %es:(3*4+2)\n"
    "    movw $(isr_timer - rm_blob_start), %es:(0x20*4)\n    movw %cs, %es:(0x20*4+2)\n"
    "    mov %cs, %ax\n    mov %ax, %es\n"
    "    sti\n    mov $0x1000, %ax\n    int $0x81\n"
    "    mov %ax, (R + 16 - rm_blob_start)\n    and $0x200, %cx\n    mov %cx, (R + 20 - rm_blob_start)\n"
    "    pushf\n    pop %cx\n    and $0x200, %cx\n    mov %cx, (R + 24 - rm_blob_start)\n    cli\n"
    "    int3\n    int3\n"
    /* the PIT at ~1 kHz, IRQ 0 (vector 0x20 after the runtime's remap) in real mode */
    "    mov $0x34, %al\n    out %al, $0x43\n    mov $0xA9, %al\n    out %al, $0x40\n    mov $0x04, %al\n    out %al, $0x40\n"
    "    in $0x21, %al\n    and $0xFE, %al\n    out %al, $0x21\n"
    "    mov $200000000, %ecx\n    sti\n"
    "1:  cmpw $3, (R + 32 - rm_blob_start)\n    jae 2f\n    dec %ecx\n    jnz 1b\n"
    "2:  cli\n    in $0x21, %al\n    or $0x01, %al\n    out %al, $0x21\n"
    /* CLI/STI/PUSHF/POPF */
    "    cli\n    pushf\n    pop %ax\n    and $0x200, %ax\n    mov %ax, (R + 36 - rm_blob_start)\n"
    "    sti\n    pushf\n    pop %bx\n    cli\n    and $0x200, %bx\n    mov %bx, (R + 40 - rm_blob_start)\n"
    "    push $0x0202\n    popf\n    pushf\n    pop %ax\n    cli\n    and $0x200, %ax\n    mov %ax, (R + 44 - rm_blob_start)\n"
    "    xor %ax, %ax\n    pushf\n    pop %ax\n    mov %ax, (R + 48 - rm_blob_start)\n"
    /* port I/O from real mode: one line straight to COM1 */
    "    mov $(rm_line - rm_blob_start), %si\n"
    "3:  mov $0x3FD, %dx\n4:  in %dx, %al\n    test $0x20, %al\n    jz 4b\n"
    "    lodsb\n    test %al, %al\n    jz 5f\n    mov $0x3F8, %dx\n    out %al, %dx\n    jmp 3b\n"
    /* unreal mode: FS reaches 2 MiB */
    "5:  mov $0x200000, %esi\n    mov %fs:(%esi), %eax\n    mov %eax, (R + 52 - rm_blob_start)\n"
    "    movl $0xCAFEF00D, %fs:4(%esi)\n"
    /* A20: FFFF:off = probe (above 1 MiB); 0000:low = probe - 1 MiB */
    "    mov (R + 76 - rm_blob_start), %ebx\n    sub $0x100000, %ebx\n"   /* low alias, < 64 KiB */
    "    mov %bx, %di\n    add $0x10, %di\n"                             /* FFFF:di = probe */
    "    mov $0xFFFF, %ax\n    mov %ax, %es\n"
    "    in $0x92, %al\n    and $0xFD, %al\n    out %al, $0x92\n"           /* fast A20 off */
    "    movb $0x5A, %es:(%di)\n    movzbl %fs:(%ebx), %eax\n    mov %eax, (R + 56 - rm_blob_start)\n"
    "    in $0x92, %al\n    or $0x02, %al\n    out %al, $0x92\n"            /* fast A20 on */
    "    movb $0xA5, %es:(%di)\n    movzbl %fs:(%ebx), %eax\n    mov %eax, (R + 60 - rm_blob_start)\n"
    "    movzbl %es:(%di), %eax\n    mov %eax, (R + 64 - rm_blob_start)\n"
    "    call kbc_wait\n    mov $0xD1, %al\n    out %al, $0x64\n    call kbc_wait\n    mov $0xDD, %al\n    out %al, $0x60\n"
    "    call kbc_wait\n"
    "    movb $0x3C, %es:(%di)\n    movzbl %fs:(%ebx), %eax\n    mov %eax, (R + 68 - rm_blob_start)\n"
    "    mov $0xD1, %al\n    out %al, $0x64\n    call kbc_wait\n    mov $0xDF, %al\n    out %al, $0x60\n    call kbc_wait\n"
    "    mov %cs, %ax\n    mov %ax, %es\n"
    /* SYSENTER in real mode is #GP(0) whatever IA32_SYSENTER_CS holds
     * (SDM Vol. 2B SYSENTER: CR0.PE = 0); the handler steps over it. Under
     * hv86 this runs in virtual-8086 mode, where the host's SYSENTER would
     * work if the monitor had its MSRs armed. */
    "    xor %ax, %ax\n    mov %ax, %es\n"
    "    movw $(isr0d - rm_blob_start), %es:(0x0D*4)\n    movw %cs, %es:(0x0D*4+2)\n"
    "    mov %cs, %ax\n    mov %ax, %es\n"
    "    sysenter\n"
    "    movw $0x5E, %cs:(R + 86 - rm_blob_start)\n"
    /* protected mode and back, from real mode */
    "    mov %cr0, %eax\n    or $1, %al\n    mov %eax, %cr0\n"
    "    ljmp $0x38, $(pm16_trip - rm_blob_start)\n"
    "pm16_trip:\n"
    "    mov $0x48, %ax\n    mov %ax, %ds\n    mov $0x30000, %ebx\n    movw $0x1234, (%ebx)\n    movw (%ebx), %ax\n"
    "    mov %cr0, %ecx\n    and $0xFFFFFFFE, %ecx\n    mov %ecx, %cr0\n"
    "    ljmp $0x2000, $(rm_back - rm_blob_start)\n"
    "rm_back:\n"
    "    mov %cs, %cx\n    mov %cx, %ds\n"
    "    mov %ax, (R + 72 - rm_blob_start)\n"
    /* back to 32-bit protected mode for good */
    "    cli\n    mov %cr0, %eax\n    or $1, %al\n    mov %eax, %cr0\n"
    "    ljmp $0x38, $(pm16_exit - rm_blob_start)\n"
    "pm16_exit:\n"
    "    ljmpl $0x08, $pm32_return\n"
        "hostile_ivt:\n"      /* ivt=1: the IVT moved into hv86's range, then INT n */
    "    lidtl (bad_idtr - rm_blob_start)\n    int $0x81\n    hlt\n"
    "kbc_wait:\n    in $0x64, %al\n    test $0x02, %al\n    jnz kbc_wait\n    ret\n"
    "isr81:\n    add $0x1111, %ax\n    pushf\n    pop %cx\n    iret\n"
    "isr03:\n    incw %cs:(R + 28 - rm_blob_start)\n    iret\n"
    "isr0d:\n    push %bp\n    mov %sp, %bp\n    addw $2, 2(%bp)\n    incw %cs:(R + 84 - rm_blob_start)\n"
    "    pop %bp\n    iret\n"
    "isr_timer:\n    incw %cs:(R + 32 - rm_blob_start)\n    push %ax\n    mov $0x20, %al\n    out %al, $0x20\n"
    "    pop %ax\n    iret\n"
    "rm_idtr:\n    .word 0x3FF\n    .long 0\n"
    "bad_idtr:\n    .word 0x3FF\n    .long 0xFC000000\n"
    "rm_line:\n    .asciz \"PASS rm-serial-from-real-mode\\r\\n\"\n"
    "    .balign 4\n"
    "rm_results_at:\n"
    "R:\n    .fill 22, 4, 0\n"
    "rm_blob_end:\n"
    ".code32\n"
    "rm_call:\n"
    "    pushal\n    mov %esp, rm_saved_esp\n    sidt rm_saved_idtr\n    cli\n"
    "    ljmp $0x38, $0\n"
    "pm32_return:\n"
    "    mov $0x10, %ax\n    mov %ax, %ds\n    mov %ax, %es\n    mov %ax, %ss\n    mov %ax, %fs\n    mov %ax, %gs\n"
    "    mov rm_saved_esp, %esp\n    lidt rm_saved_idtr\n    popal\n    ret\n"
    ".data\n"
    "rm_saved_esp: .long 0\n"
    "rm_saved_idtr: .word 0\n .long 0\n"
    ".text\n");

_Static_assert(SEL_CODE16 == 0x38 && SEL_DATA16 == 0x40 && SEL_FLAT4G == 0x48, "selectors in the asm");
_Static_assert(RM_SEG == 0x2000 && RM_BASE == RM_SEG * 16u, "segment in the asm");
_Static_assert(sizeof(struct rm_results) == 22 * 4, "table in the asm");

/* Real mode entered with a 32-bit code segment still loaded (CS.D = 1):
 * legal on hardware, and what hv86 stops the guest for (d32=1 on the
 * command line; test_vms.py isolation). */
static void real_mode_with_32bit_cs(void)
{
    asm volatile("cli\n\tmov %%cr0, %%eax\n\tand $0xFFFFFFFE, %%eax\n\tmov %%eax, %%cr0\n\t1: jmp 1b" ::: "eax");
}

/* What unreal mode read from hv86's range: natively nothing is there (the
 * bus gives one constant value throughout); a leak of the monitor would
 * not be uniform. */
static bool uniform(const volatile uint8_t *p, unsigned n)
{
    for (unsigned i = 1; i < n; i++)
        if (p[i] != p[0])
            return false;
    return true;
}

void guest_main(void)
{
    uint32_t len = (uint32_t)(rm_blob_end - rm_blob_start), probe = (uint32_t)&a20_probe[1];
    check("blob-fits", len < 0x8000, "blob %u bytes", len);
    check("probe-below-1m-64k", probe >= 0x100000 && probe + 0x10 < 0x10FFF0, "probe at %x", probe);
    gdt[SEL_CODE16 >> 3] = seg_make(RM_BASE, 0xFFFF, 0x9A, 0);
    gdt[SEL_DATA16 >> 3] = seg_make(RM_BASE, 0xFFFF, 0x92, 0);
    gdt[SEL_FLAT4G >> 3] = seg_make(0, 0xFFFFF, 0x92, 0xC);
    volatile uint32_t *unreal = (volatile uint32_t *)UNREAL_AT;
    unreal[0] = 0x600DF00D;
    unreal[1] = 0;
    volatile uint8_t *low = (volatile uint8_t *)(probe - 0x100000);
    uint8_t low_saved = *low;
    *low = 0x77;
    uint8_t *dst = (uint8_t *)RM_BASE;
    for (uint32_t i = 0; i < len; i++)
        dst[i] = rm_blob_start[i];
    struct rm_results *r = (struct rm_results *)(RM_BASE + (uint32_t)(rm_results_at - rm_blob_start));
    r->probe_lin = probe;

    wrmsr(MSR_SYSENTER_CS, SEL_KCODE); /* SYSENTER would work in protected mode */
    rm_call();
    wrmsr(MSR_SYSENTER_CS, 0);

    volatile uint32_t x = 1234, y = 56789, n = 0x12345678, d = 0x1234; /* C is the oracle */
    check_eq("rm-mul-16", r->mul, x * y);
    check_eq("rm-div-32-quotient", r->div_q, n / d);
    check_eq("rm-div-32-remainder", r->div_r, n % d);
    check_eq("rm-offset-wraps-at-64k", r->wrap & 0xFFFF, 0xBEEF);
    check_eq("rm-int-through-ivt", r->int_ax & 0xFFFF, 0x2111);
    check_eq("rm-int-clears-if", r->int_if & 0xFFFF, 0);
    check_eq("rm-iret-restores-if", r->iret_if & 0xFFFF, 0x200);
    check_eq("rm-int3-through-ivt", r->int3 & 0xFFFF, 2);
    check("rm-timer-irq-through-ivt", (r->ticks & 0xFFFF) >= 3, "ticks %u", r->ticks & 0xFFFF);
    check_eq("rm-cli-if", r->cli_if & 0xFFFF, 0);
    check_eq("rm-sti-if", r->sti_if & 0xFFFF, 0x200);
    check_eq("rm-popf-if", r->popf_if & 0xFFFF, 0x200);
    check_eq("rm-pushf-image", r->flags_img & 0xFFEF, 0x0046); /* ZF PF, bit 1; IF clear, IOPL 0; AF undefined */
    check_eq("rm-unreal-read-2m", r->unreal_rd, 0x600DF00D);
    check_eq("rm-unreal-write-2m", unreal[1], 0xCAFEF00D);
    check_eq("rm-a20-off-wraps", r->a20off_low, 0x5A);
    check_eq("rm-a20-on-low-untouched", r->a20on_low, 0x5A);
    check_eq("rm-a20-on-reaches-1m", r->a20on_high, 0xA5);
    check_eq("rm-a20-on-probe-in-memory", a20_probe[1] & 0xFF, 0xA5);
    check_eq("rm-kbc-a20-off-wraps", r->kbc_off_low, 0x3C);
    check_eq("rm-sysenter-gp", r->sysenter_gp, 1);
    check_eq("rm-sysenter-stepped-over", r->after_sysenter, 0x5E);
    check_eq("rm-pm-trip-from-real-mode", r->pmtrip & 0xFFFF, 0x1234);
    check_eq("rm-pm-trip-memory", *(volatile uint16_t *)PMTRIP_AT, 0x1234);
    check_eq("rm-unreal-monitor-write-does-not-stick", r->mon_write_sticks, 0);
    check_eq("rm-unreal-rep-stos-window-does-not-stick", r->mon_string_sticks, 0);
    check_eq("rm-unreal-top-of-memory-write-does-not-stick", r->top_write_sticks, 0);
    check("rm-unreal-movs-from-monitor-reads-nothing", uniform((volatile uint8_t *)(UNREAL_AT + 0x100), 16),
          "bytes differ");
    *low = low_saved;
    if (boot_arg("ivt", 0)) {
        /* Real mode with its IVT moved into hv86's range, then INT n. hv86
         * reads the vector from guest-physical 0xFC000204, which is no RAM
         * and no device: all ones, FFFF:FFFF (linear 10FFEFh), where this
         * HLT waits with IF clear: the guest powers itself off. Natively
         * the vector is whatever the bus gives (not compared). */
        printf("real-mode INT through an IVT at 0xFC000000 next\n");
        *(volatile uint8_t *)0x10FFEFu = 0xF4;
        r->hostile_ivt = 1;
        wrmsr(MSR_SYSENTER_CS, SEL_KCODE); /* SYSENTER would work in protected mode */
    rm_call();
    wrmsr(MSR_SYSENTER_CS, 0);
    }
    if (boot_arg("pae", 0)) {
        /* PAE paging, a mode hv86 does not run: stopped with that reason. */
        printf("PAE paging next\n");
        asm volatile("mov %%cr4, %%eax\n\tor $0x20, %%eax\n\tmov %%eax, %%cr4\n\tmov $0x40000, %%eax\n\t"
                     "mov %%eax, %%cr3\n\tmov %%cr0, %%eax\n\tor $0x80000000, %%eax\n\tmov %%eax, %%cr0\n\t"
                     "1: jmp 1b" ::: "eax");
    }
    if (boot_arg("d32", 0)) {
        printf("real mode with CS.D = 1 next\n");
        real_mode_with_32bit_cs();
    }
}
