/*
 * Preemptive round-robin scheduler of kernel threads (one CPU).
 *
 * Map:
 *   - current runs until its slice (SCHED_SLICE_TICKS) ends, it blocks
 *     (wait queue, sleep) or it yields; the timer IRQ ends slices through
 *     sched_preempt_point(), called on the way out of every IRQ handler.
 *   - a thread woken from its sleep by thread_wake (an event it waited for:
 *     a disk interrupt, a frame, a finished read) goes to the head of the
 *     run queue, ahead of threads that used up their slices; one whose
 *     sleep simply ran out goes to the tail. thread_handoff runs a given
 *     thread and then the caller, ahead of everyone.
 *   - schedule() always runs with interrupts disabled; switch_context
 *     (boot/switch.S) saves callee-saved registers only, because every
 *     switch happens at a C call boundary.
 *   - The boot thread becomes the idle thread: never queued, chosen when the
 *     run queue is empty; it halts with interrupts enabled.
 *   - A dead thread cannot free the stack it is running on: the next thread
 *     does it in finish_switch(). Threads killed by a fault stay listed with
 *     their reason; threads that exit normally vanish.
 */
#include "kernel/sched.h"
#include "kernel/heap.h"
#include "kernel/kernel.h"
#include "kernel/runq.h"
#include "kernel/traps.h"
#include "kernel/x86.h"

#define STACK_CANARY 0x5AC4CA11u
#define MAX_DEAD_KEPT 16

struct thread {
    struct sched_node node;   /* run queue, sleep queue or wait queue link */
    uint32_t id;
    char name[THREAD_NAME_MAX];
    enum thread_state state;
    uint32_t sp;              /* saved ESP while switched out */
    uint32_t *stack;          /* heap block, NULL for the boot/idle thread */
    thread_fn fn;
    void *arg;
    uint64_t cpu_ticks;
    uint32_t switches;
    char fault[64];           /* why it was killed, "" if not */
    /* The world this thread runs in: a vCPU thread runs with its VM's shadow
     * page directory, shadow GDT and a ring-0 stack for traps from the guest. */
    uint32_t cr3;             /* host physical page directory */
    const struct desc_ptr *gdtr;
    uint32_t esp0;            /* TSS.esp0 while this thread runs */
    void *local;              /* owner's per-thread pointer (the vCPU of a vCPU thread) */
    struct thread *all_next;  /* every thread, for sched_list */
    bool wake_pending;        /* thread_wake came while it was not asleep: its next thread_sleep returns at once */
};

void switch_context(uint32_t *save_sp, uint32_t load_sp); /* boot/switch.S */

static struct thread boot_thread = { .id = 0, .name = "idle", .state = THREAD_RUNNING, .gdtr = &host_gdtr };
static struct thread *current = &boot_thread;
static struct thread *all_threads = &boot_thread;
static struct thread *zombie;          /* dead thread whose stack awaits freeing */
static struct runq runq, sleepq;
static uint32_t next_id = 1, dead_kept;
static uint32_t slice_left = SCHED_SLICE_TICKS;
static volatile uint64_t ticks;
static bool need_resched, started;

static struct thread *node_thread(struct sched_node *n) { return container_of(n, struct thread, node); }

uint64_t timer_ticks(void) { return ticks; }
uint32_t thread_current_id(void) { return current->id; }
const char *thread_current_name(void) { return current->name; }
bool sched_can_kill_current(void) { return started && current != &boot_thread; }

extern uint8_t boot_stack_bottom[], boot_stack_top[]; /* boot/entry.S */

bool sched_on_stack(uint32_t addr, uint32_t len)
{
    uint32_t lo = current->stack ? (uint32_t)(uintptr_t)current->stack : (uint32_t)(uintptr_t)boot_stack_bottom;
    uint32_t hi = current->stack ? lo + THREAD_STACK_SIZE : (uint32_t)(uintptr_t)boot_stack_top;
    return addr >= lo && addr < hi && len <= hi - addr;
}

void sched_init(void)
{
    boot_thread.cr3 = read_cr3();
    started = true;
}

/* Load next's world where it differs from the loaded one (CR3, GDT of
 * prev_cr3/prev_gdtr). Interrupts disabled. */
static void switch_world(uint32_t prev_cr3, const struct desc_ptr *prev_gdtr, const struct thread *next)
{
    if (next->cr3 != prev_cr3)
        write_cr3(next->cr3);
    if (next->gdtr != prev_gdtr)
        lgdt(next->gdtr);
    if (next->esp0)
        tss_set_kernel_stack(next->esp0);
}

void thread_set_world_irqs_off(uint32_t cr3, const struct desc_ptr *gdtr, uint32_t esp0)
{
    uint32_t old_cr3 = current->cr3;
    const struct desc_ptr *old_gdtr = current->gdtr;
    current->cr3 = cr3;
    current->gdtr = gdtr;
    /* 0 leaves it as is, for every later switch back too: stored, a 0 made
     * switch_world keep the TSS.esp0 of whichever thread ran before, and a
     * vCPU thread that then went back to its guest from a trap (after
     * sched_preempt_point in a host interrupt) took its next trap on that
     * other thread's stack (docs/security.md F9). */
    if (esp0)
        current->esp0 = esp0;
    switch_world(old_cr3, old_gdtr, current);
}

void thread_set_world(uint32_t cr3, const struct desc_ptr *gdtr, uint32_t esp0)
{
    uint32_t fl = read_eflags();
    cpu_cli();
    thread_set_world_irqs_off(cr3, gdtr, esp0);
    write_eflags(fl);
}

uint32_t thread_set_cr3(uint32_t cr3)
{
    uint32_t fl = read_eflags();
    cpu_cli();
    uint32_t old = current->cr3;
    current->cr3 = cr3;
    if (cr3 != old)
        write_cr3(cr3);
    write_eflags(fl);
    return old;
}

static void unlink_from_all(struct thread *t)
{
    for (struct thread **p = &all_threads; *p; p = &(*p)->all_next) {
        if (*p == t) {
            *p = t->all_next;
            return;
        }
    }
}

/* Runs on the new thread right after every switch: free the previous thread's
 * stack if it died. */
static void finish_switch(void)
{
    struct thread *z = zombie;
    if (!z)
        return;
    zombie = NULL;
    kfree(z->stack);
    z->stack = NULL;
    if (!z->fault[0]) {
        unlink_from_all(z);
        kfree(z);
    }
}

static void check_stack(struct thread *t)
{
    if (t->stack && t->stack[0] != STACK_CANARY)
        panic("kernel stack overflow in thread %u '%s'", t->id, t->name);
}

/* Pick the next thread and switch to it. Interrupts must be disabled. */
static void schedule(void)
{
    struct thread *prev = current;
    check_stack(prev);
    if (prev->state == THREAD_RUNNING) {
        prev->state = THREAD_RUNNABLE;
        if (prev != &boot_thread)
            runq_push(&runq, &prev->node);
    }
    struct sched_node *n = runq_pop(&runq);
    struct thread *next = n ? node_thread(n) : &boot_thread;
    next->state = THREAD_RUNNING;
    slice_left = SCHED_SLICE_TICKS;
    need_resched = false;
    if (next == prev)
        return;
    if (prev->state == THREAD_DEAD)
        zombie = prev;
    next->switches++;
    switch_world(prev->cr3, prev->gdtr, next);
    current = next;
    switch_context(&prev->sp, next->sp);
    finish_switch();
}

static void make_runnable(struct thread *t)
{
    t->state = THREAD_RUNNABLE;
    runq_push(&runq, &t->node);
    if (current == &boot_thread)
        need_resched = true; /* leave the idle loop at the end of this IRQ */
}

void sched_tick(void)
{
    ticks++;
    current->cpu_ticks++;
    struct sched_node *n;
    while ((n = sleepq_pop_expired(&sleepq, ticks)))
        make_runnable(node_thread(n));
    if (slice_left && --slice_left == 0)
        need_resched = true;
}

void sched_preempt_point(void)
{
    if (started && need_resched && irq_depth == 0)
        schedule();
}

static void thread_trampoline(void)
{
    finish_switch();
    cpu_sti();
    current->fn(current->arg);
    thread_exit();
}

int thread_create(const char *name, thread_fn fn, void *arg)
{
    struct thread *t = kzalloc(sizeof(*t));
    if (!t)
        return E_NOMEM;
    t->stack = kmalloc(THREAD_STACK_SIZE);
    if (!t->stack) {
        kfree(t);
        return E_NOMEM;
    }
    t->stack[0] = STACK_CANARY;
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->fn = fn;
    t->arg = arg;
    t->cr3 = boot_thread.cr3;
    t->gdtr = &host_gdtr;
    /* Initial stack as switch_context expects it: edi esi ebx ebp, return address. */
    uint32_t *sp = (uint32_t *)((uint8_t *)t->stack + THREAD_STACK_SIZE);
    *--sp = 0;                            /* fake return address of the trampoline */
    *--sp = (uint32_t)thread_trampoline;
    for (int i = 0; i < 4; i++)
        *--sp = 0;
    t->sp = (uint32_t)sp;
    uint32_t fl = read_eflags();
    cpu_cli();
    t->id = next_id++;
    t->all_next = all_threads;
    all_threads = t;
    make_runnable(t);
    write_eflags(fl);
    return (int)t->id;
}

/* Forget the oldest faulted threads beyond MAX_DEAD_KEPT. Interrupts off. */
static void trim_dead(void)
{
    if (++dead_kept <= MAX_DEAD_KEPT)
        return;
    struct thread *oldest = NULL;
    for (struct thread *t = all_threads; t; t = t->all_next)
        if (t->state == THREAD_DEAD && t->fault[0] && !t->stack && (!oldest || t->id < oldest->id))
            oldest = t;
    if (oldest) {
        unlink_from_all(oldest);
        kfree(oldest);
        dead_kept--;
    }
}

void thread_exit(void)
{
    cpu_cli();
    KASSERT(current != &boot_thread);
    current->state = THREAD_DEAD;
    schedule();
    panic("dead thread rescheduled");
}

void thread_kill_current(const char *reason)
{
    cpu_cli();
    snprintf(current->fault, sizeof(current->fault), "%s", reason);
    trim_dead();
    thread_exit();
}

void thread_yield(void)
{
    uint32_t fl = read_eflags();
    cpu_cli();
    schedule();
    write_eflags(fl);
}

void thread_wait_interrupt(const volatile uint32_t *count, uint32_t seen, volatile uint32_t *waiter)
{
    uint32_t fl = read_eflags();
    cpu_cli();
    if (*count == seen) {
        if (!runq.len) {
            cpu_sti_hlt(); /* sti's shadow: an interrupt pending now still ends the hlt */
        } else if (current->wake_pending) {
            current->wake_pending = false; /* a wake came since: the caller looks again */
        } else { /* asleep, so that the handler's thread_wake puts it first in the run queue */
            *waiter = current->id;
            current->state = THREAD_SLEEPING;
            sleepq_insert(&sleepq, &current->node, ticks + 1);
            schedule();
            *waiter = 0;
            current->wake_pending = false;
        }
    }
    write_eflags(fl);
}

void thread_sleep(uint32_t n)
{
    uint32_t fl = read_eflags();
    cpu_cli();
    KASSERT(current != &boot_thread);
    if (current->wake_pending) { /* woken between its last check and this sleep */
        current->wake_pending = false;
        write_eflags(fl);
        return;
    }
    current->state = THREAD_SLEEPING;
    sleepq_insert(&sleepq, &current->node, ticks + (n ? n : 1));
    schedule();
    current->wake_pending = false; /* the sleep is over: a wake during it is spent */
    write_eflags(fl);
}

/* The thread with id, or NULL. Interrupts disabled. */
static struct thread *find_thread(uint32_t id)
{
    for (struct thread *t = all_threads; t; t = t->all_next)
        if (t->id == id)
            return t;
    return NULL;
}

void thread_wake(uint32_t id)
{
    uint32_t fl = read_eflags();
    cpu_cli();
    struct thread *t = find_thread(id);
    if (t && t->state == THREAD_SLEEPING && runq_remove(&sleepq, &t->node)) {
        t->state = THREAD_RUNNABLE; /* it waited for this: first in line, ahead of threads that used their slice */
        runq_push_head(&runq, &t->node);
    } else if (t && (t->state == THREAD_RUNNING || t->state == THREAD_RUNNABLE)) {
        t->wake_pending = true; /* not asleep yet: it may be between its check and its sleep */
    }
    if (t && t->state == THREAD_RUNNABLE)
        need_resched = true; /* it runs at the end of the next interrupt, not of the waker's slice */
    write_eflags(fl);
}

void thread_handoff(uint32_t id)
{
    uint32_t fl = read_eflags();
    cpu_cli();
    struct thread *t = find_thread(id);
    if (t && t != current && current != &boot_thread && t->state == THREAD_RUNNABLE &&
        runq_remove(&runq, &t->node)) {
        current->state = THREAD_RUNNABLE;
        runq_push_head(&runq, &current->node);
        runq_push_head(&runq, &t->node);
        schedule();
    }
    write_eflags(fl);
}

void wait_queue_sleep(struct wait_queue *q, spinlock_t *l, uint32_t *fl)
{
    uint32_t own = read_eflags();
    cpu_cli();
    KASSERT(current != &boot_thread);
    current->state = THREAD_BLOCKED;
    current->node.next = NULL;
    current->node.queued = true;
    if (q->tail)
        q->tail->node.next = &current->node;
    else
        q->head = current;
    q->tail = current;
    if (l)
        l->locked = 0; /* release without enabling interrupts: no lost wakeup */
    schedule();
    if (l)
        l->locked = 1;
    else
        write_eflags(own);
    (void)fl;
}

static struct thread *wait_queue_pop(struct wait_queue *q)
{
    struct thread *t = q->head;
    if (!t)
        return NULL;
    q->head = t->node.next ? node_thread(t->node.next) : NULL;
    if (!q->head)
        q->tail = NULL;
    t->node.next = NULL;
    t->node.queued = false;
    return t;
}

void wait_queue_wake_one(struct wait_queue *q)
{
    uint32_t fl = read_eflags();
    cpu_cli();
    struct thread *t = wait_queue_pop(q);
    if (t)
        make_runnable(t);
    write_eflags(fl);
}

void wait_queue_wake_all(struct wait_queue *q)
{
    uint32_t fl = read_eflags();
    cpu_cli();
    struct thread *t;
    while ((t = wait_queue_pop(q)))
        make_runnable(t);
    write_eflags(fl);
}

void thread_set_esp0(uint32_t esp0)
{
    current->esp0 = esp0;
    tss_set_kernel_stack(esp0);
}

void thread_set_local(void *p) { current->local = p; }
uint64_t thread_cpu_ticks(void) { return current->cpu_ticks; }
void *thread_local(void) { return current->local; }

int sched_list(struct thread_info *out, int max)
{
    int n = 0;
    uint32_t fl = read_eflags();
    cpu_cli();
    for (struct thread *t = all_threads; t && n < max; t = t->all_next, n++) {
        out[n] = (struct thread_info){ .id = t->id, .state = t->state, .cpu_ticks = t->cpu_ticks,
                                       .switches = t->switches };
        memcpy(out[n].name, t->name, THREAD_NAME_MAX);
        memcpy(out[n].fault_buf, t->fault, sizeof(out[n].fault_buf));
        out[n].fault = t->fault[0] ? out[n].fault_buf : NULL;
    }
    write_eflags(fl);
    return n;
}

/* The boot thread's last job: halt until there is work, forever. */
void sched_idle_loop(void)
{
    for (;;) {
        cpu_cli();
        if (runq.head)
            schedule();
        else
            cpu_sti_hlt();
        cpu_sti();
    }
}
