/* user.c — the int 0x80 gate that brings ring-3 code back (see entry.S). */
#include "guest.h"

static trap_fn syscall_fn;

void user_set_syscall(trap_fn fn)
{
    syscall_fn = fn;
}

static void syscall_dispatch(struct trapframe *tf)
{
    if (tf->eax == SYS_EXIT && (tf->cs & SEL_RPL_MASK) == 3)
        user_resume();
    if (syscall_fn) {
        syscall_fn(tf);
        return;
    }
    check("unexpected-syscall", false, "eax 0x%x from %x:%x", tf->eax, tf->cs, tf->eip);
    guest_exit();
}

void user_install(void);
void user_install(void)
{
    trap_set_handler(T_SYSCALL, syscall_dispatch);
}
