/*
 * switch_context(uint32_t *save_sp, uint32_t load_sp)
 * Save the callee-saved registers (System V i386 ABI: ebx, esi, edi, ebp) on
 * the current stack, store ESP in *save_sp, load load_sp, restore the same
 * registers from the new stack and return on it. EFLAGS is not switched: the
 * scheduler always runs with interrupts disabled.
 */
    .text
    .globl switch_context
switch_context:
    mov 4(%esp), %eax
    mov 8(%esp), %edx
    push %ebp
    push %ebx
    push %esi
    push %edi
    mov %esp, (%eax)
    mov %edx, %esp
    pop %edi
    pop %esi
    pop %ebx
    pop %ebp
    ret

    .section .note.GNU-stack, "", @progbits
