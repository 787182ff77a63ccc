/*
 * hostexec_run(struct hostexec *h): run the stub h->code with the guest's
 * general registers (ESP excepted) and arithmetic flags, and store what it
 * leaves back into h (vmm/hostexec.h). The stub ends in RET; it touches
 * only h->mem. The host's DF, TF and IOPL are kept throughout, and its IF
 * restored at the end: only CF PF AF ZF SF OF come from the guest.
 * Interrupts are off from the guest's registers in to their values out:
 * meanwhile EBP is the guest's, and an interrupt handler that took it for
 * a frame pointer (the profiler, a backtrace) would follow a guest value
 * into the monitor's range.
 * Source: Intel SDM Vol. 2B POPF (flags a CPL-0 POPF loads).
 */
#include "vmm/hostexec.h"

    .text
    .globl hostexec_run
hostexec_run:
    push %ebp
    push %ebx
    push %esi
    push %edi
    pushf                           /* the host's flags, IF with them, popped at the end */
    mov 24(%esp), %eax              /* h */
    push %eax                       /* 4(%esp) after the next push: h */
    lea HOSTEXEC_CODE(%eax), %ecx
    push %ecx                       /* (%esp): the stub */
    pushf
    andl $~(HOSTEXEC_FLAGS | 0x200), (%esp) /* the host's flags but IF, the guest's arithmetic ones */
    mov HOSTEXEC_EFLAGS(%eax), %ecx
    and $HOSTEXEC_FLAGS, %ecx
    or %ecx, (%esp)
    popf
    mov 4(%eax), %ecx
    mov 8(%eax), %edx
    mov 12(%eax), %ebx
    mov 20(%eax), %ebp
    mov 24(%eax), %esi
    mov 28(%eax), %edi
    mov 0(%eax), %eax
    call *(%esp)
    pushf                           /* (%esp) flags, 4 stub, 8 h */
    push %eax                       /* (%esp) eax, 4 flags, 8 stub, 12 h */
    mov 12(%esp), %eax
    mov %ecx, 4(%eax)
    mov %edx, 8(%eax)
    mov %ebx, 12(%eax)
    mov %ebp, 20(%eax)
    mov %esi, 24(%eax)
    mov %edi, 28(%eax)
    popl 0(%eax)
    popl HOSTEXEC_EFLAGS(%eax)
    add $8, %esp
    popf                            /* the host's IF again */
    pop %edi
    pop %esi
    pop %ebx
    pop %ebp
    ret

    .section .note.GNU-stack, "", @progbits
