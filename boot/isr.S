/*
 * Entry stubs for all 256 IDT vectors. Each pushes a dummy error code when
 * the CPU does not push one (SDM Vol. 3A §6.13: vectors 8, 10-14, 17, 21
 * push one), then the vector number, and joins trap_common, which saves the
 * rest of struct trap_frame (kernel/traps.h) and calls trap_dispatch.
 */
#include "kernel/traps.h"

    .text
    .globl isr_stub_table
    .section .rodata
    .align 4
isr_stub_table:
    .text

.macro ISR vec
    .text
    .align 8
isr_\vec:
    .if (\vec == 8) || (\vec >= 10 && \vec <= 14) || (\vec == 17) || (\vec == 21)
    .else
    pushl $0
    .endif
    pushl $\vec
    jmp trap_common
    .section .rodata
    .long isr_\vec
    .text
.endm

    .altmacro
.macro ISR_ALL from=0, to=255
    ISR \from
    .if \to-\from
    ISR_ALL %(\from+1),\to
    .endif
.endm
    ISR_ALL 0, 63
    ISR_ALL 64, 127
    ISR_ALL 128, 191
    ISR_ALL 192, 255

    .text
    .globl trap_common          /* also vmm/switch.S's vmm_sysenter_entry */
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
    push %esp                       /* struct trap_frame * */
    call trap_dispatch
    add $4, %esp
    .globl trap_return
trap_return:
    pop %gs
    pop %fs
    pop %es
    pop %ds
    popa
    add $8, %esp                    /* vector, error code */
    iret
    .globl trap_return_end
trap_return_end:

    .section .note.GNU-stack, "", @progbits
