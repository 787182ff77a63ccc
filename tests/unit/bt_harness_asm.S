/*
 * Hosted world switch for translated code (the host-test stand-in for the
 * ring-1 <-> ring-0 switch of issue #4).
 *
 * bt_host_enter(struct bt_vcpu *v, uint32_t tca): save the C callee-saved
 * registers and ESP in v, load guest EFLAGS (arithmetic part; at CPL3 POPF
 * leaves IF/IOPL alone) and GPRs from v, jump to tca.
 * bt_host_exit: reached by "jmp [v->exit_entry]" from an exit stub: store
 * the guest GPRs and EFLAGS back into v, switch to the saved host stack,
 * clear DF (the C ABI wants it clear) and return from bt_host_enter.
 * The current vcpu and entry tca are in globals because no register is free
 * at the moment of the switch.
 * ES and FS are the guest's while it runs (translated code loads them
 * natively, bt_config.native_seg_loads): bt_host_enter loads them from
 * bt_host_guest_es/fs after saving the host's, bt_host_exit stores them
 * there and loads the host's again. A real CPU faults C code's string
 * stores through an ES the guest left read-only (x86-64's compat CS, 0x23).
 */
#include "bt/vcpu_state.h"

    .bss
    .align 4
    .globl bt_host_cur
bt_host_cur:      .long 0   /* struct bt_vcpu * of the running guest */
bt_host_entry:    .long 0   /* tca to jump to */
bt_host_scratch:  .long 0   /* guest EAX during the exit */
bt_host_es:       .long 0   /* the host's ES and FS while the guest runs */
bt_host_fs:       .long 0
    .globl bt_host_guest_es, bt_host_guest_fs
bt_host_guest_es: .long 0   /* the guest's ES and FS (bt_harness_reset_vcpu: the host's) */
bt_host_guest_fs: .long 0

    .text
    .globl bt_host_enter
    .type bt_host_enter, @function
bt_host_enter:
    push %ebp
    push %ebx
    push %esi
    push %edi
    mov 20(%esp), %eax
    mov 24(%esp), %ecx
    mov %ecx, bt_host_entry
    mov %eax, bt_host_cur
    mov %esp, BT_OFF_HOST_ESP(%eax)
    movw %es, bt_host_es
    movw %fs, bt_host_fs
    movw bt_host_guest_es, %es
    movw bt_host_guest_fs, %fs
    pushl BT_OFF_EFLAGS(%eax)
    popfl
    mov BT_OFF_GPR + 4(%eax), %ecx
    mov BT_OFF_GPR + 8(%eax), %edx
    mov BT_OFF_GPR + 12(%eax), %ebx
    mov BT_OFF_GPR + 16(%eax), %esp
    mov BT_OFF_GPR + 20(%eax), %ebp
    mov BT_OFF_GPR + 24(%eax), %esi
    mov BT_OFF_GPR + 28(%eax), %edi
    mov BT_OFF_GPR + 0(%eax), %eax
    jmp *bt_host_entry
    .size bt_host_enter, . - bt_host_enter

    .globl bt_host_exit
    .type bt_host_exit, @function
bt_host_exit:
    mov %eax, bt_host_scratch
    mov bt_host_cur, %eax
    mov %ecx, BT_OFF_GPR + 4(%eax)
    mov %edx, BT_OFF_GPR + 8(%eax)
    mov %ebx, BT_OFF_GPR + 12(%eax)
    mov %esp, BT_OFF_GPR + 16(%eax)
    mov %ebp, BT_OFF_GPR + 20(%eax)
    mov %esi, BT_OFF_GPR + 24(%eax)
    mov %edi, BT_OFF_GPR + 28(%eax)
    mov bt_host_scratch, %ecx
    mov %ecx, BT_OFF_GPR + 0(%eax)
    movw %es, bt_host_guest_es
    movw %fs, bt_host_guest_fs
    movw bt_host_es, %es
    movw bt_host_fs, %fs
    mov BT_OFF_HOST_ESP(%eax), %esp
    pushfl
    popl BT_OFF_EFLAGS(%eax)
    cld
    pop %edi
    pop %esi
    pop %ebx
    pop %ebp
    ret
    .size bt_host_exit, . - bt_host_exit

    .section .note.GNU-stack, "", @progbits
