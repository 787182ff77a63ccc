/*
 * The page-sharing scanner: a host thread that hashes guest pages at a
 * bounded rate and queues the likely duplicates to their VM's thread
 * (vmm/gmem.c gmem_scan_page, gmem_share_apply; docs/memory-layout.md
 * "Page sharing"). It reads guest RAM and never changes a VM: every share
 * is decided, compared and installed by the VM's own vCPU thread.
 */
#include "kernel/kernel.h"
#include "kernel/layout.h"
#include "kernel/sched.h"
#include "kernel/spinlock.h"
#include "mgmt/cmd.h"
#include "mgmt/format.h"
#include "vmm/gmem.h"
#include "vmm/pshare.h"
#include "vmm/vm.h"

static spinlock_t scan_lock = SPINLOCK_INIT("pshare scan");

static bool scannable(const struct vm *vm)
{
    return vm && (vm->state == VM_RUNNING || vm->state == VM_PAUSED);
}

/* Hash up to n pages of VM slot i, one page per interrupts-off section: a
 * VM cannot be destroyed (nor its RAM freed) in the middle of one. */
static void scan_vm(unsigned i, uint32_t n)
{
    uint32_t hashed = 0;
    for (; n; n--) {
        uint32_t fl = spin_lock_irqsave(&scan_lock);
        struct vm *vm = vms[i];
        bool ok = scannable(vm) && vm->mem.nreq < GMEM_SHARE_BATCH;
        if (ok)
            gmem_scan_page(&vm->mem, i);
        spin_unlock_irqrestore(&scan_lock, fl);
        if (!ok)
            break;
        hashed++;
    }
    pshare_scanned(hashed);
}

/* One pass every PSHARE_PERIOD_TICKS: the rate's worth of pages, split
 * evenly among the running VMs. */
static void scanner(void *arg)
{
    for (;;) {
        thread_sleep(PSHARE_PERIOD_TICKS);
        uint32_t budget = pshare_rate() * PSHARE_PERIOD_TICKS / TIMER_HZ, nrun = 0;
        if (!pshare_enabled() || !budget)
            continue;
        for (unsigned i = 0; i < VM_MAX; i++)
            nrun += scannable(vms[i]);
        for (unsigned i = 0; nrun && i < VM_MAX; i++)
            if (scannable(vms[i]))
                scan_vm(i, MAX(1u, budget / nrun));
    }
}

int pshare_start(void)
{
    int rc = pshare_init();
    if (rc)
        return rc;
    rc = thread_create("pshare", scanner, NULL);
    return rc < 0 ? rc : 0;
}

void pshare_print(struct cmd_out *out)
{
    struct pshare_stats st;
    pshare_get_stats(&st);
    char shared[24], saved[24];
    fmt_mib(shared, sizeof(shared), (uint64_t)st.refs * PAGE_SIZE);
    fmt_mib(saved, sizeof(saved), (uint64_t)(st.refs - st.frames) * PAGE_SIZE);
    cmd_printf(out, "page sharing: %s, %u pages/s; %u guest pages shared (%s) on %u frames, %u pages saved (%s)\n",
               pshare_enabled() ? "on" : "off", pshare_rate(), st.refs, shared, st.frames, st.refs - st.frames,
               saved);
    cmd_printf(out, "  %u pages hashed, %u merged, %u promoted, %u unshared by a write (%u the last reference), "
               "%u false matches, %u refused (table full)\n",
               st.scanned, st.merges, st.promotions, st.unshares + st.reclaimed, st.reclaimed, st.false_matches,
               st.table_full);
}

int pshare_command(int argc, char **argv, struct cmd_out *out)
{
    if (argc == 2 && !strcmp(argv[0], "share") && (!strcmp(argv[1], "on") || !strcmp(argv[1], "off"))) {
        pshare_set_enabled(!strcmp(argv[1], "on"));
        if (pshare_enabled() != !strcmp(argv[1], "on"))
        {
            cmd_error(out, "page sharing has no table (out of heap at boot)");
            return E_NOMEM;
        }
        return 0;
    }
    uint32_t rate;
    if (argc == 3 && !strcmp(argv[0], "share") && !strcmp(argv[1], "rate") && !cmd_parse_u32(argv[2], &rate) &&
        rate <= 1000000) {
        pshare_set_rate(rate);
        return 0;
    }
    cmd_error(out, "usage: mem [share on|off] [share rate PAGES_PER_SECOND]");
    return E_INVAL;
}
