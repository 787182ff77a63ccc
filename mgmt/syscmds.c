/*
 * Built-in console commands: each handler gathers numbers from one kernel
 * service and prints them; the text formats shared with the unit tests are
 * in mgmt/format.c. The table at the end is the list of commands; the
 * hidden ones (echo, debug attach) are hooks for the integration tests.
 */
#include "mgmt/syscmds.h"
#include "drivers/disk.h"
#include "drivers/pci.h"
#include "drivers/rtc.h"
#include "drivers/serial.h"
#include "kernel/heap.h"
#include "kernel/irq.h"
#include "kernel/kernel.h"
#include "kernel/profile.h"
#include "kernel/log.h"
#include "kernel/pmm.h"
#include "kernel/sched.h"
#include "kernel/version.h"
#include "mgmt/cmd.h"
#include "mgmt/console.h"
#include "mgmt/format.h"
#include "vmm/pshare.h"


#define PAGE_BYTES    4096u /* bytes per frame (kernel/layout.h PAGE_SIZE) */
#define MAX_THREADS   64    /* rows `threads` shows */
#define FAULT_WAIT_MS 100   /* how long `debug fault` waits to report the outcome */

/* ---------------------------------------------------------------- version, uptime, date */

static int cmd_version(struct cmd_ctx *c)
{
    cmd_printf(c->out, "hv86 %s (git %s), built %s %s with gcc %s\n", HV86_VERSION, HV86_GIT,
               __DATE__, __TIME__, __VERSION__);
    return 0;
}

static int cmd_uptime(struct cmd_ctx *c)
{
    uint64_t ticks = timer_ticks();
    char up[48];

    fmt_uptime(up, sizeof(up), ticks, TIMER_HZ);
    cmd_printf(c->out, "up %s (%llu ticks at %u Hz)\n", up, (unsigned long long)ticks, TIMER_HZ);
    return 0;
}

static int cmd_date(struct cmd_ctx *c)
{
    struct rtc_time t;
    char iso[32];
    int err = rtc_read(&t);

    if (err) {
        cmd_error(c->out, "date: the RTC did not finish its update cycle (%s); try again",
                  err_name(err));
        return err;
    }
    fmt_iso8601(iso, sizeof(iso), &t);
    cmd_printf(c->out, "%s\n", iso);
    return 0;
}

/* ---------------------------------------------------------------- mem */

/* One zone: "direct  total 13964 frames (54.5 MiB), free ..., used ...". */
static void mem_row(struct cmd_out *out, const char *zone, uint32_t total, uint32_t free)
{
    char t[24], f[24], u[24];

    fmt_mib(t, sizeof(t), (uint64_t)total * PAGE_BYTES);
    fmt_mib(f, sizeof(f), (uint64_t)free * PAGE_BYTES);
    fmt_mib(u, sizeof(u), (uint64_t)(total - free) * PAGE_BYTES);
    cmd_printf(out, "%-7s total %6u frames (%s), free %6u frames (%s), used %6u frames (%s)\n",
               zone, total, t, free, f, total - free, u);
}

static int cmd_mem(struct cmd_ctx *c)
{
    static const char *const zone_names[PMM_NZONES] = { [ZONE_DIRECT] = "direct",
                                                        [ZONE_HIGH] = "high" };
    struct pmm_stats ps;
    struct heap_stats hs;
    uint32_t total = 0, free = 0;
    char t[24];

    if (c->argc)
        return pshare_command(c->argc, c->argv, c->out);
    frame_stats(&ps);
    for (int z = 0; z < PMM_NZONES; z++) {
        mem_row(c->out, zone_names[z], ps.total[z], ps.free[z]);
        total += ps.total[z];
        free += ps.free[z];
    }
    fmt_mib(t, sizeof(t), (uint64_t)total * PAGE_BYTES);
    cmd_printf(c->out, "all     %u frames of 4 KiB (%s): %u free, %u used\n", total, t, free,
               total - free);
    kheap_stats(&hs);
    cmd_printf(c->out, "heap: %zu bytes in use, %zu KiB reserved, %zu live allocations, "
                       "%zu since boot, %zu failed\n",
               hs.bytes_in_use, hs.bytes_reserved / 1024, hs.allocs, hs.total_allocs,
               hs.failed_allocs);
    pshare_print(c->out);
    return 0;
}

/* ---------------------------------------------------------------- threads */

static const char *const thread_states[] = {
    [THREAD_RUNNABLE] = "runnable", [THREAD_RUNNING] = "running", [THREAD_BLOCKED] = "blocked",
    [THREAD_SLEEPING] = "sleeping", [THREAD_DEAD] = "dead",
};

static const char *state_name(enum thread_state s)
{
    return (unsigned)s < ARRAY_SIZE(thread_states) ? thread_states[s] : "?";
}

static uint32_t ticks_to_ms(uint64_t ticks) { return (uint32_t)(ticks * 1000u / TIMER_HZ); }

static int cmd_threads(struct cmd_ctx *c)
{
    static struct thread_info ti[MAX_THREADS]; /* console thread only */
    int n = sched_list(ti, MAX_THREADS);

    cmd_printf(c->out, "%4s %-16s %-9s %10s %9s  %s\n", "id", "name", "state", "cpu ms",
               "switches", "fault");
    for (int i = 0; i < n; i++)
        cmd_printf(c->out, "%4u %-16.16s %-9s %10u %9u  %s\n", ti[i].id, ti[i].name,
                   state_name(ti[i].state), ticks_to_ms(ti[i].cpu_ticks), ti[i].switches,
                   ti[i].fault ? ti[i].fault : "-");
    if (n == MAX_THREADS)
        cmd_printf(c->out, "(only the first %d threads are shown)\n", MAX_THREADS);
    return 0;
}

/* ---------------------------------------------------------------- disks, pci, log */

static void emit_line(const char *line, void *ctx) { cmd_printf(ctx, "%s\n", line); }

static int cmd_disks(struct cmd_ctx *c)
{
    if (disk_format_lines(emit_line, c->out) == 0)
        cmd_printf(c->out, "no disks found (the ATA probe logs why: try 'log')\n");
    return 0;
}

static int cmd_pci(struct cmd_ctx *c)
{
    if (pci_format_lines(emit_line, c->out) == 0)
        cmd_printf(c->out, "no PCI functions found (see 'log' for the probe)\n");
    return 0;
}

static const char *const level_names[] = {
    [LOG_ERR] = "err", [LOG_WARN] = "warn", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

static int cmd_log(struct cmd_ctx *c)
{
    enum log_level min = LOG_DEBUG;
    uint32_t written, lost;
    size_t i;

    if (c->argc) {
        for (i = 0; i < ARRAY_SIZE(level_names) && strcmp(c->argv[0], level_names[i]); i++)
            ;
        if (i == ARRAY_SIZE(level_names)) {
            cmd_error(c->out, "log: unknown level '%s' (one of: err, warn, info, debug)",
                      c->argv[0]);
            return E_INVAL;
        }
        min = (enum log_level)i;
    }
    int n = log_dump(min, emit_line, c->out);
    log_counters(&written, &lost);
    cmd_printf(c->out,
               "-- %d lines shown (%s and more severe); %u written since boot, %u overwritten\n",
               n, level_names[min], written, lost);
    return 0;
}

/* ---------------------------------------------------------------- stats */

static int cmd_stats(struct cmd_ctx *c)
{
    uint32_t rx, dropped, tx;

    serial_counters(&rx, &dropped, &tx);
    cmd_printf(c->out, "com1: %u bytes received, %u dropped on overrun, %u sent\n", rx, dropped,
               tx);
    cmd_printf(c->out, "irqs:");
    for (int irq = 0; irq < NR_IRQS; irq++) {
        uint64_t n = irq_count(irq);
        if (n)
            cmd_printf(c->out, " %d:%llu", irq, (unsigned long long)n);
    }
    cmd_printf(c->out, "\n");
    return 0;
}

/* ---------------------------------------------------------------- debug fault */

/*
 * Instructions that fault on purpose, to show that an exception in a kernel
 * thread kills that thread only. They live here rather than in kernel/x86.h
 * because nothing else may ever run them.
 */
static void fault_pf(void)
{
    volatile uint32_t *p = NULL;

    __asm__ volatile("" : "+r"(p)); /* hide the NULL from the optimiser: a real store */
    *p = 0xdead;
}

static void fault_gp(void)
{
    /* Selector 0xFFF8: GDT entry 8191, past the limit of any GDT hv86 has ->
     * #GP(0xFFF8), SDM Vol. 3A §6.15 "Interrupt 13". (A TI=1 selector such
     * as 0x1234 would read the LDT that LDTR still describes after boot.) */
    __asm__ volatile("mov $0xfff8, %%ax\n\tmov %%ax, %%ds" ::: "eax", "memory");
}

static void fault_ud(void) { __asm__ volatile("ud2"); }

static void fault_de(void)
{
    __asm__ volatile("xor %%edx, %%edx\n\tmov $1, %%eax\n\txor %%ecx, %%ecx\n\tdiv %%ecx" ::: "eax",
                     "ecx", "edx");
}

static const struct fault_kind {
    const char *name;   /* argument of `debug fault` */
    const char *thread; /* name of the thread that faults */
    const char *what;   /* the exception, for the notice */
    void (*fn)(void);
} fault_kinds[] = {
    { "pf", "fault-pf", "#PF (write to the NULL page)", fault_pf },
    { "gp", "fault-gp", "#GP (load of selector 0xFFF8 into DS)", fault_gp },
    { "ud", "fault-ud", "#UD (ud2)", fault_ud },
    { "de", "fault-de", "#DE (divide by zero)", fault_de },
};

static void fault_thread(void *arg)
{
    const struct fault_kind *k = arg;

    k->fn();
    log_err("debug fault %s: the instruction did not fault", k->name);
}

/* Print what became of thread id after it had time to fault. */
static void fault_outcome(struct cmd_out *out, int id)
{
    static struct thread_info ti[MAX_THREADS];
    int n = sched_list(ti, MAX_THREADS);

    for (int i = 0; i < n; i++) {
        if ((int)ti[i].id == id) {
            cmd_printf(out, "thread %d '%s' is %s, fault: %s\n", id, ti[i].name,
                       state_name(ti[i].state), ti[i].fault ? ti[i].fault : "none");
            return;
        }
    }
    cmd_printf(out, "thread %d is gone\n", id);
}

static int cmd_debug_fault(struct cmd_ctx *c)
{
    const struct fault_kind *k = NULL;

    for (size_t i = 0; i < ARRAY_SIZE(fault_kinds); i++) {
        if (!strcmp(c->argv[0], fault_kinds[i].name))
            k = &fault_kinds[i];
    }
    if (!k) {
        cmd_error(c->out, "debug fault: unknown kind '%s' (one of: pf, gp, ud, de)", c->argv[0]);
        return E_INVAL;
    }
    int id = thread_create(k->thread, fault_thread, (void *)k);
    if (id < 0) {
        cmd_error(c->out, "debug fault: cannot start a thread (%s)", err_name(id));
        return id;
    }
    cmd_printf(c->out, "started thread %d '%s': expect a %s register dump\n", id, k->thread,
               k->what);
    thread_sleep(FAULT_WAIT_MS * TIMER_HZ / 1000);
    fault_outcome(c->out, id);
    return 0;
}

/* ---------------------------------------------------------------- debug attach */

/* A loop-back client for the attach hook (console.h): every byte typed comes
 * back, CR as CRLF, until ^] or the optional timer detaches it. */
static void loop_input(uint8_t b, void *ctx)
{
    char ch = (char)b;

    if (b == '\r')
        serial_write("\r\n", 2);
    else
        serial_write(&ch, 1);
}

static const struct console_client loop_client = { "loopback", loop_input, NULL, NULL };

/* Detach loop_client from another thread after arg milliseconds. */
static void loop_timer(void *arg)
{
    thread_sleep((uint32_t)(uintptr_t)arg * TIMER_HZ / 1000);
    console_detach(&loop_client);
}

static int cmd_debug_attach(struct cmd_ctx *c)
{
    uint32_t ms = 0;
    int err;

    if (c->argc && cmd_parse_u32(c->argv[0], &ms)) {
        cmd_error(c->out, "debug attach: '%s' is not a number of milliseconds", c->argv[0]);
        return E_INVAL;
    }
    if ((err = console_attach(&loop_client)))
        return err;
    if (ms && (err = thread_create("detach-timer", loop_timer, (void *)(uintptr_t)ms)) < 0) {
        console_detach(&loop_client);
        return err;
    }
    return 0;
}

/* ---------------------------------------------------------------- debug profile */

/* Where the timer interrupts found the CPU since boot or the last reset. */
static int cmd_debug_profile(struct cmd_ctx *c)
{
    static struct profile_entry top[30], guest[200];
    uint32_t rings[4];
    if (c->argc && strcmp(c->argv[0], "reset") == 0) {
        profile_reset();
        cmd_printf(c->out, "profile reset\n");
        return 0;
    }
    if (c->argc) {
        cmd_error(c->out, "debug profile: '%s' is not 'reset'", c->argv[0]);
        return E_INVAL;
    }
    uint32_t n = profile_top(top, ARRAY_SIZE(top), rings, PROFILE_MONITOR);
    uint32_t all = rings[0] + rings[1] + rings[2] + rings[3];
    cmd_printf(c->out, "%u timer samples: monitor %u, translated guest code (ring 1) %u, guest user code %u\n",
               all, rings[0], rings[1], rings[3]);
    for (uint32_t i = 0; i < n; i++)
        cmd_printf(c->out, "  %08x %6u\n", top[i].eip, top[i].count);
    n = profile_top(top, ARRAY_SIZE(top), rings, PROFILE_CALLERS);
    cmd_printf(c->out, "callers of the interrupted functions:\n");
    for (uint32_t i = 0; i < n; i++)
        cmd_printf(c->out, "  %08x %6u\n", top[i].eip, top[i].count);
    n = profile_top(guest, ARRAY_SIZE(guest), rings, PROFILE_GUEST);
    cmd_printf(c->out, "translated guest code, by the guest EIP it was translated from:\n");
    for (uint32_t i = 0; i < n; i++)
        cmd_printf(c->out, "  %08x %6u\n", guest[i].eip, guest[i].count);
    return 0;
}

/* ---------------------------------------------------------------- echo (test hook) */

/* Each argument in brackets, as the tokenizer saw it: for integration tests. */
static int cmd_echo(struct cmd_ctx *c)
{
    for (int i = 0; i < c->argc; i++)
        cmd_printf(c->out, "[%s]", c->argv[i]);
    cmd_printf(c->out, "\n");
    return 0;
}

/* ---------------------------------------------------------------- the table */

static const struct cmd_def sys_defs[] = {
    { "version", NULL, "", "name, version, git revision and build time", 0, 0, cmd_version, 0 },
    { "uptime", NULL, "", "time since boot: days, h:mm:ss.mmm", 0, 0, cmd_uptime, 0 },
    { "date", NULL, "", "wall-clock time from the RTC, ISO 8601", 0, 0, cmd_date, 0 },
    { "mem", NULL, "[share on|off|rate N]", "physical frames per zone, kernel heap, page sharing; "
      "turn sharing on/off, pages hashed per second", 0, 3, cmd_mem, 0 },
    { "threads", NULL, "", "kernel threads: state, CPU time, switches, fault", 0, 0, cmd_threads,
      0 },
    { "disks", NULL, "", "disks and their partitions", 0, 0, cmd_disks, 0 },
    { "pci", NULL, "", "PCI functions found at boot", 0, 0, cmd_pci, 0 },
    { "log", NULL, "[err|warn|info|debug]", "kernel log lines this severe or worse (default: all)",
      0, 1, cmd_log, 0 },
    { "stats", NULL, "", "serial and interrupt counters", 0, 0, cmd_stats, 0 },
    { "debug", "fault", "pf|gp|ud|de", "start a thread that takes this exception", 1, 1,
      cmd_debug_fault, 0 },
    { "debug", "attach", "[MS]", "attach a loop-back client; ^] or MS ms detach it", 0, 1,
      cmd_debug_attach, CMD_HIDDEN },
    { "debug", "profile", "[reset]", "monitor and translated guest EIPs the timer interrupted most", 0,
      1, cmd_debug_profile, CMD_HIDDEN },
    { "echo", NULL, "[ARG...]", "print the arguments in brackets", 0, CMD_ARGS_ANY, cmd_echo,
      CMD_HIDDEN },
};
static struct cmd_table sys_table = CMD_TABLE("system", sys_defs);

int syscmds_register(void) { return cmd_register_table(&sys_table); }
