/* trap.c — one dispatcher for every vector; the probe recorder; the fatal path. */
#include "guest.h"

static trap_fn handlers[256];
volatile struct trap_record last_trap;
volatile uint32_t probe_resume;
volatile uint32_t probe_arg;
static volatile bool armed;

void trap_set_handler(int vec, trap_fn fn)
{
    handlers[vec] = fn;
}

void trap_expect(void)
{
    last_trap.vector = -1;
    armed = true;
}

void trap_disarm(void)
{
    armed = false;
}

/* A trap nobody expected: report it as a failed check and stop, because the
 * guest's state is no longer what its remaining checks assume. */
static void trap_fatal(struct trapframe *tf)
{
    check("unexpected-trap", false, "vector %u err 0x%x at %x:%x cr2 0x%x",
          tf->vector, tf->err, tf->cs, tf->eip, read_cr2());
    guest_exit();
}

void trap_dispatch(struct trapframe *tf);
void trap_dispatch(struct trapframe *tf)
{
    if (handlers[tf->vector]) {
        handlers[tf->vector](tf);
        return;
    }
    if (!armed)
        trap_fatal(tf);
    armed = false;
    last_trap.vector = (int)tf->vector;
    last_trap.err = tf->err;
    last_trap.eip = tf->eip;
    last_trap.cs = tf->cs;
    last_trap.cr2 = read_cr2();
    last_trap.eflags = tf->eflags;
    last_trap.ecx = tf->ecx;
    last_trap.esi = tf->esi;
    last_trap.edi = tf->edi;
    /* A single-step probe leaves TF set; resuming with it would trap again. */
    tf->eflags &= ~FL_TF;
    tf->eip = probe_resume;
}

void check_fault(const char *name, uint32_t start, uint32_t next, struct fault_want w)
{
    uint32_t want_eip = w.trap ? next : start;
    check(name, last_trap.vector == w.vector && last_trap.err == w.err && last_trap.eip == want_eip,
          "vector %d err 0x%x eip 0x%x; want vector %d err 0x%x eip 0x%x",
          last_trap.vector, last_trap.err, last_trap.eip, w.vector, w.err, want_eip);
}
