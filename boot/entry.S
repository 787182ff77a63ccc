/*
 * Multiboot2 header and 32-bit entry.
 *
 * GRUB enters _start in protected mode, paging off, EAX = MB2_BOOTLOADER_MAGIC,
 * EBX = physical address of the boot information (Multiboot2 spec §3.3).
 * We build boot_pd: identity 0-8 MiB (only while we jump) and the 56 MiB
 * direct map at MONITOR_BASE, both as 4 MiB PSE pages; turn on paging; jump
 * to the linked (high) addresses and call kmain(magic, mbi_phys).
 * kmain then drops the identity PDEs (kernel/paging.c).
 */
#include "boot/multiboot2.h"
#include "kernel/layout.h"

#define PDE_P   0x001
#define PDE_RW  0x002
#define PDE_PS  0x080
#define PDE_G   0x100
#define CR0_PG_WP 0x80010000
#define CR4_PSE_PGE 0x00000090

    .section .multiboot, "a"
    .align 8
mb2_header:
    .long MB2_HEADER_MAGIC
    .long MB2_ARCH_I386
    .long mb2_header_end - mb2_header
    .long -(MB2_HEADER_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header))
    /* module alignment tag: modules start on page boundaries */
    .align 8
    .short MB2_HEADER_TAG_MODALIGN, 0
    .long 8
    .align 8
    .short MB2_HEADER_TAG_END, 0
    .long 8
mb2_header_end:

    .section .boot.text, "ax"
    .code32
    .globl _start
_start:
    cli
    cld
    mov %eax, %esi                  /* keep magic and MBI across the setup */
    mov %ebx, %edi

    /* Clear boot_pd (1024 entries). */
    mov $boot_pd, %ebx
    xor %eax, %eax
    mov $1024, %ecx
1:  movl $0, (%ebx,%eax,4)
    inc %eax
    loop 1b

    /* Identity 0-8 MiB: PDE 0 and 1. */
    movl $(0x000000 | PDE_P | PDE_RW | PDE_PS), 0(%ebx)
    movl $(0x400000 | PDE_P | PDE_RW | PDE_PS), 4(%ebx)

    /* Direct map: PDE (MONITOR_PDE_FIRST + i) -> i * 4 MiB, i < DIRECTMAP_SIZE / 4 MiB. */
    xor %ecx, %ecx
    mov $(PDE_P | PDE_RW | PDE_PS | PDE_G), %eax
2:  mov %eax, (MONITOR_PDE_FIRST * 4)(%ebx,%ecx,4)
    add $LARGE_PAGE_SIZE, %eax
    inc %ecx
    cmp $(DIRECTMAP_SIZE / LARGE_PAGE_SIZE), %ecx
    jb 2b

    mov %cr4, %eax
    or $CR4_PSE_PGE, %eax
    mov %eax, %cr4
    mov %ebx, %cr3
    mov %cr0, %eax
    or $CR0_PG_WP, %eax
    mov %eax, %cr0

    /* Jump to the high (linked) address of the rest of the kernel. */
    mov $high_entry, %eax
    jmp *%eax

    .section .boot.data, "aw"
    .align 4096
    .globl boot_pd
boot_pd:
    .fill 1024, 4, 0

    .text
high_entry:
    mov $boot_stack_top, %esp
    xor %ebp, %ebp                  /* terminates frame-pointer backtraces */
    push %edi                       /* mbi_phys */
    push %esi                       /* magic */
    call kmain
3:  cli
    hlt
    jmp 3b

    .bss
    .align 16
    .globl boot_stack_bottom, boot_stack_top /* kernel/sched.c: the boot/idle thread's stack */
boot_stack_bottom:
    .skip 16384
boot_stack_top:

    .section .note.GNU-stack, "", @progbits
