/*
 * The world switch between the monitor (ring 0) and a guest (ring 1 for
 * translated guest kernel code, ring 3 for directly executed guest user code).
 *
 * vmm_enter(const struct guest_frame *guest, uint32_t *host_esp)
 *   Saves the monitor's callee-saved registers, stores ESP in *host_esp and
 *   in TSS.esp0 (so every trap out of the guest lands just below this frame
 *   on the vCPU thread's stack), copies *guest below and leaves through the
 *   common trap_return path: segment registers, pusha image, iret. The
 *   frame always has room for the four segment registers an IRET into
 *   virtual-8086 mode pops after SS (SDM Vol. 3A §20.3.1.1); other IRETs
 *   stop below them.
 *   Returns, with the value given to vmm_leave, when the monitor decides a
 *   trap ends this stint in the guest.
 *
 * vmm_leave(uint32_t host_esp, int code)
 *   Called from a trap handler running below the saved frame: drops the
 *   trap frame and everything after it, returns from vmm_enter with code.
 *
 * Translated code leaves through a routine bt_init puts inside the TC
 *   (ring-1 CS covers the TC alone): SYSENTER into vmm_sysenter_entry,
 *   or `int HV_EXIT_VECTOR` (the one gate with DPL 1) after it where
 *   SYSENTER faults (bt_config.exit_vector, exit_sysenter).
 * Source: Intel SDM Vol. 3A §6.12.1 (stack switch on privilege change), §7.2.1 (TSS.esp0).
 */
#include "kernel/traps.h"
#include "bt/vcpu_state.h"

#define GF_SIZE 92 /* sizeof(struct guest_frame), checked in vmm/vcpu.c */

    .text
    .globl vmm_enter
vmm_enter:
    push %ebp
    push %ebx
    push %esi
    push %edi
    mov 20(%esp), %esi          /* guest frame */
    mov 24(%esp), %eax          /* host_esp slot */
    mov %esp, (%eax)
    push %esp
    call thread_set_esp0        /* TSS.esp0 and the thread's record of it = this ESP (one call: every entry) */
    add $4, %esp
    sub $GF_SIZE, %esp
    /* Copy the frame with plain moves: a REP MOVS costs a translated-block
     * trip per iteration under QEMU TCG, and this runs on every entry. */
    .irp off, 0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60, 64, 68, 72, 76, 80, 84, 88
    mov \off(%esi), %eax
    mov %eax, \off(%esp)
    .endr
    jmp trap_return

    .globl vmm_leave
vmm_leave:
    mov 8(%esp), %eax
    mov 4(%esp), %esp
    pop %edi
    pop %esi
    pop %ebx
    pop %ebp
    ret

/*
 * vmm_sysenter_entry - where the CPU goes on SYSENTER while the monitor has
 * armed the host's SYSENTER MSRs (vcpu.c sysenter_arm). SYSENTER (SDM Vol.
 * 2B) loaded CS = SEL_KCODE, SS = SEL_KDATA, ESP = the top of
 * sysenter_stack, cleared IF, VM and RF, and kept neither EIP nor ESP;
 * DS/ES/FS/GS and the other flags are still the guest's. Two callers, told
 * apart by GS:
 *   - directly executed guest user code (ring 3; armed only for a
 *     protected-mode guest whose own IA32_SYSENTER_CS is not 0): the stub
 *     builds the trap frame a ring-3 exception would have left at
 *     TSS.esp0, vector HV_SYSENTER_VECTOR, no EIP/ESP (0), CS with RPL 3,
 *     and the monitor emulates the guest's SYSENTER without the #GP and
 *     the instruction fetch the disarmed path costs (docs/vmm.md);
 *   - translated code's exit routine (ring 1, GS = SEL_R1VCPU, which ring
 *     3 cannot hold: its DPL is 1, and an IRET to ring 3 nulls it): the
 *     frame INT HV_EXIT_VECTOR would have made, with the ESP the routine
 *     stored in bt_vcpu.exit_esp (bt/translate.c bt_init).
 * Both join trap_common; interrupts stay off until the world switch is
 * over. A single-step trap after a ring-3 SYSENTER (guest TF) lands at
 * the first instruction on sysenter_stack; kernel/traps.c takes it
 * (vmm_sysenter_debug). Ring-1 code never runs with TF.
 */
    .globl vmm_sysenter_entry
vmm_sysenter_entry:
    mov %ss:tss_main+4, %esp    /* TSS.esp0: where a trap from ring 1 or 3 lands; DS is the guest's */
    lea -8(%esp), %esp          /* SS and ESP, filled below (LEA: the flags are still the guest's) */
    pushfl                      /* EFLAGS: the guest's, IF/VM/RF cleared */
    push %eax
    mov %gs, %eax
    and $0xFFFC, %eax
    cmp $(SEL_R1VCPU & 0xFFFC), %eax
    pop %eax
    je 1f
    movl $3, 8(%esp)            /* SS: RPL 3; the guest's is in its vCPU */
    movl $0, 4(%esp)            /* ESP: SYSENTER keeps none */
    pushl $3                    /* CS: RPL 3, from ring 3 */
    pushl $0                    /* EIP: SYSENTER keeps none */
    pushl $0                    /* error code */
    pushl $HV_SYSENTER_VECTOR
    jmp trap_common
1:  movl $SEL_R1STACK, 8(%esp)  /* SS: translated code's stack alias, RPL 1 */
    push %eax
    mov %gs:BT_OFF_EXIT_ESP, %eax
    mov %eax, 8(%esp)           /* ESP: as the exit routine stored it */
    pop %eax
    pushl $SEL_R1CODE           /* CS: RPL 1, from ring 1 */
    pushl $0                    /* EIP: unused for this exit */
    pushl $0                    /* error code */
    pushl $HV_EXIT_VECTOR
    jmp trap_common

    .bss
    .align 16
    .globl sysenter_stack_top
sysenter_stack:
    .skip 2048                  /* the #DB (or NMI) taken at the stub's first instruction */
sysenter_stack_top:

    .section .note.GNU-stack, "", @progbits
