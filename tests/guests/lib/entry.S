/*
 * entry.S — boot headers, entry point, the 256 trap entry stubs and the
 * ring-3 round trip. Everything else of the runtime is C.
 *
 * Map:
 *   .multiboot   Multiboot v1 header (QEMU -kernel, GRUB `multiboot`) and a
 *                Multiboot2 header (GRUB `multiboot2`); hv86 accepts either.
 *   _start       stack, then runtime_start(magic, info) in start.c
 *   stub_N       push a zero error code unless the CPU pushes one, push N,
 *                then trap_common: save registers, trap_dispatch(tf), iret
 *   user_run     iret to ring 3; user_resume comes back to its caller
 */
#include "x86.h"

#define MB1_MAGIC 0x1BADB002        /* Multiboot 0.6.96, 3.1.1 */
#define MB1_FLAGS 0x00000003        /* bit 0: page-align modules; bit 1: memory info */
#define MB2_MAGIC 0xE85250D6        /* Multiboot2 1.0, 3.1.1 */
#define MB2_ARCH_I386 0
#define MB2_TAG_END 0

    .section .multiboot, "a"
    .align 4
mb1_header:                         /* must sit in the image's first 8 KiB */
    .long MB1_MAGIC, MB1_FLAGS, -(MB1_MAGIC + MB1_FLAGS)

    .align 8
mb2_header:                         /* must sit in the image's first 32 KiB */
    .long MB2_MAGIC, MB2_ARCH_I386, mb2_end - mb2_header
    .long -(MB2_MAGIC + MB2_ARCH_I386 + (mb2_end - mb2_header))
    .short MB2_TAG_END, 0
    .long 8
mb2_end:

    .text
    .globl _start
_start:
    cli
    cld
    mov $stack_top, %esp
    push %ebx                       /* Multiboot information */
    push %eax                       /* boot magic */
    call runtime_start
1:  cli
    hlt
    jmp 1b

/* ------------------------------------------------------------------ traps */
/* Vectors for which the CPU pushes an error code (SDM 3A 6.13, table 6-1). */
.macro STUB n
stub_\n:
    .if (\n == 8) || ((\n >= 10) && (\n <= 14)) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
    .else
    pushl $0
    .endif
    pushl $\n
    jmp trap_common
.endm

    .altmacro
.set i, 0
.rept 256
    STUB %i
    .set i, i + 1
.endr

.macro STUB_ADDR n
    .long stub_\n
.endm
    .section .rodata
    .align 4
    .globl stub_table
stub_table:
.set i, 0
.rept 256
    STUB_ADDR %i
    .set i, i + 1
.endr
    .noaltmacro

    .text
/* Layout pushed here is struct trapframe in guest.h. */
trap_common:
    pusha
    push %ds
    push %es
    push %fs
    push %gs
    mov $SEL_KDATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %fs
    mov %ax, %gs
    cld
    push %esp
    call trap_dispatch
    add $4, %esp
    pop %gs
    pop %fs
    pop %es
    pop %ds
    popa
    add $8, %esp                    /* vector and error code */
    iret

/* ------------------------------------------------------------------ ring 3 */
/* void user_run(void (*fn)(void), uint32_t eflags) */
    .globl user_run
user_run:
    push %ebp
    push %ebx
    push %esi
    push %edi
    pushf
    mov %esp, user_saved_esp
    mov 24(%esp), %eax              /* fn */
    mov 28(%esp), %ecx              /* eflags for ring 3 */
    movl $user_exit_stub, user_stack_top - 4
    push $(SEL_UDATA | 3)
    push $(user_stack_top - 4)
    push %ecx
    push $(SEL_UCODE | 3)
    push %eax
    mov $(SEL_UDATA | 3), %dx
    mov %dx, %ds
    mov %dx, %es
    mov %dx, %fs
    mov %dx, %gs
    iret

/* fn returns here, still at CPL 3 */
    .globl user_exit_stub
user_exit_stub:
    mov $0, %eax                    /* SYS_EXIT */
    int $0x80
    ud2

/* Called at CPL 0 (from the int 0x80 handler or a fault handler): drop the
 * trap frames on the interrupt stack and return from user_run. */
    .globl user_resume
user_resume:
    mov $SEL_KDATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %fs
    mov %ax, %gs
    mov %ax, %ss
    mov user_saved_esp, %esp
    popf
    pop %edi
    pop %esi
    pop %ebx
    pop %ebp
    ret

/* void seg_reload(uint16_t cs, uint16_t ds): far return into the new CS. */
    .globl seg_reload
seg_reload:
    mov 8(%esp), %eax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %fs
    mov %ax, %gs
    mov %ax, %ss
    mov 4(%esp), %eax
    pop %ecx                        /* return address */
    push %eax
    push %ecx
    lret

    .bss
    .align 16
    .globl user_saved_esp
user_saved_esp:
    .long 0
    .align 4096
    .space 16384
stack_top:
    .globl int_stack_top
    .space 8192
int_stack_top:
    .globl user_stack_top
    .space 8192
user_stack_top:
    .section .note.GNU-stack, "", @progbits
