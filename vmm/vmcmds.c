/*
 * Console commands for VMs: `vm create|start|stop|pause|resume|destroy|list|info`
 * and `console NAME` (attach to the guest's serial line; ^] detaches).
 */
#include "drivers/crc32.h"
#include "drivers/e1000.h"
#include "kernel/boot.h"
#include "kernel/kernel.h"
#include "kernel/layout.h"
#include "mgmt/cmd.h"
#include "mgmt/console.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "vmm/redo.h"
#include "vmm/vmdev.h"
#include "kernel/clock.h"

#define DEFAULT_MEM (16u << 20)
#define MAX_MEM     (1024u << 20)

static struct vm *need_vm(struct cmd_ctx *c, const char *name)
{
    struct vm *vm = vm_find(name);
    if (!vm)
        cmd_error(c->out, "no VM named '%s' (see `vm list`)", name);
    return vm;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= VM_NAME_MAX || strchr(s, '='))
        return false;
    if (!strcmp(s, "all")) /* `vm start all` */
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
            return false;
    return true;
}

static int cmd_vm_create(struct cmd_ctx *c)
{
    static const char *const keys[] = { "kernel", "initrd", "mem", "cmdline", "disk+", "net+", "apic", "firmware", NULL };
    const char *name = c->argv[0];
    if (!valid_name(name)) {
        cmd_error(c->out, "vm create: bad name '%s' (1-%d letters, digits, '-', '_'; not 'all')", name, VM_NAME_MAX - 1);
        return E_INVAL;
    }
    if (cmd_kv_check(c->argc - 1, c->argv + 1, keys, c->out))
        return E_INVAL;
    if (vm_find(name)) {
        cmd_error(c->out, "vm create: a VM named '%s' exists (pick another name or `vm destroy %s`)", name, name);
        return E_EXIST;
    }
    const char *kernel = cmd_kv_get(c->argc - 1, c->argv + 1, "kernel");
    const char *memstr = cmd_kv_get(c->argc - 1, c->argv + 1, "mem");
    const char *fw = cmd_kv_get(c->argc - 1, c->argv + 1, "firmware");
    if (fw && strcmp(fw, "bios")) {
        cmd_error(c->out, "vm create: firmware=%s is not bios", fw);
        return E_INVAL;
    }
    if (fw && (kernel || cmd_kv_get(c->argc - 1, c->argv + 1, "initrd") ||
               cmd_kv_get(c->argc - 1, c->argv + 1, "cmdline"))) {
        cmd_error(c->out, "vm create: firmware=bios boots from the first disk: no kernel=, initrd= or cmdline=");
        return E_INVAL;
    }
    if (fw && !cmd_kv_get(c->argc - 1, c->argv + 1, "disk")) {
        cmd_error(c->out, "vm create: firmware=bios needs a disk= to boot from");
        return E_INVAL;
    }
    if (!kernel && !fw) {
        cmd_error(c->out, "vm create: kernel=MODULE (see `modules`) or firmware=bios is required");
        return E_INVAL;
    }
    uint64_t mem = DEFAULT_MEM;
    if (memstr && (cmd_parse_size(memstr, &mem) || mem < GUEST_MIN_MEM || mem > MAX_MEM)) {
        cmd_error(c->out, "vm create: mem=%s is not a size from 2M to 1G (e.g. mem=64M)", memstr);
        return E_INVAL;
    }
    const char *apicstr = cmd_kv_get(c->argc - 1, c->argv + 1, "apic");
    if (apicstr && strcmp(apicstr, "0") && strcmp(apicstr, "1") && strcmp(apicstr, "deadline")) {
        cmd_error(c->out, "vm create: apic=%s is not 0, 1 or deadline", apicstr);
        return E_INVAL;
    }
    enum vm_apic apic = !apicstr || !strcmp(apicstr, "1") ? VM_APIC
                        : !strcmp(apicstr, "0")           ? VM_APIC_NONE
                                                          : VM_APIC_DEADLINE;
    char err[128] = "";
    struct vdisk disks[VM_MAX_DISKS];
    unsigned ndisks = 0;
    for (const char *d; (d = cmd_kv_get_nth(c->argc - 1, c->argv + 1, "disk", (int)ndisks));) {
        if (ndisks == VM_MAX_DISKS) {
            cmd_error(c->out, "vm create: at most %d disk= options", VM_MAX_DISKS);
            return E_INVAL;
        }
        int rc = vdisk_parse(d, &disks[ndisks++], err, sizeof err);
        if (rc) {
            cmd_error(c->out, "vm create %s: %s", name, err);
            return rc;
        }
    }
    struct vnic nics[VM_MAX_NICS];
    unsigned nnics = 0;
    for (const char *v; (v = cmd_kv_get_nth(c->argc - 1, c->argv + 1, "net", (int)nnics));) {
        if (nnics == VM_MAX_NICS) {
            cmd_error(c->out, "vm create: at most %d net= options", VM_MAX_NICS);
            return E_INVAL;
        }
        int rc = vnic_parse(v, name, nnics, &nics[nnics], err, sizeof err);
        nnics++;
        if (rc) {
            cmd_error(c->out, "vm create %s: %s", name, err);
            return rc;
        }
    }
    int rc = vm_create(name, kernel, cmd_kv_get(c->argc - 1, c->argv + 1, "initrd"), (uint32_t)mem,
                       cmd_kv_get(c->argc - 1, c->argv + 1, "cmdline"), disks, ndisks, nics, nnics, apic, fw != NULL,
                       err, sizeof err);
    if (rc) {
        cmd_error(c->out, "vm create %s: %s", name, err[0] ? err : err_name(rc));
        return rc;
    }
    cmd_printf(c->out, "created %s: %u MiB, %s %s\n", name, (uint32_t)(mem >> 20), fw ? "firmware" : "kernel",
               fw ? "bios (" VM_BIOS_MODULE ")" : kernel);
    return 0;
}

/* Start one VM; prints the error line if it cannot. */
static int start_one(struct cmd_ctx *c, struct vm *vm)
{
    char err[128] = "";
    int rc = vm_start(vm, err, sizeof err);
    if (rc)
        cmd_error(c->out, "vm start %s: %s", vm->name, err[0] ? err : err_name(rc));
    return rc;
}

/* `vm start NAME...` or `vm start all` (every created or stopped VM): each
 * VM that cannot start gets its own error line and the others start all
 * the same; returns the first error. */
static int cmd_vm_start(struct cmd_ctx *c)
{
    int first = 0, rc;
    if (c->argc == 1 && !strcmp(c->argv[0], "all")) {
        unsigned started = 0;
        for (int i = 0; i < VM_MAX; i++) {
            struct vm *vm = vms[i];
            if (!vm || (vm->state != VM_CREATED && vm->state != VM_STOPPED))
                continue;
            rc = start_one(c, vm);
            started += rc == 0;
            first = first ? first : rc;
        }
        cmd_printf(c->out, "started %u VMs\n", started);
        return first;
    }
    for (int i = 0; i < c->argc; i++) {
        struct vm *vm = need_vm(c, c->argv[i]);
        rc = vm ? start_one(c, vm) : E_NOENT;
        first = first ? first : rc;
    }
    return first;
}

static int cmd_vm_stop(struct cmd_ctx *c)
{
    struct vm *vm = need_vm(c, c->argv[0]);
    if (!vm)
        return E_NOENT;
    if (vm->state != VM_RUNNING && vm->state != VM_PAUSED) {
        cmd_error(c->out, "vm stop: %s is %s, not running", vm->name, vm_state_name(vm->state));
        return E_BUSY;
    }
    vm_stop(vm, "stopped by the administrator");
    return 0;
}

static int pause_resume(struct cmd_ctx *c, bool pause)
{
    struct vm *vm = need_vm(c, c->argv[0]);
    if (!vm)
        return E_NOENT;
    int rc = vm_pause(vm, pause);
    if (rc)
        cmd_error(c->out, "vm %s: %s is %s", pause ? "pause" : "resume", vm->name, vm_state_name(vm->state));
    return rc;
}

static int cmd_vm_pause(struct cmd_ctx *c) { return pause_resume(c, true); }
static int cmd_vm_resume(struct cmd_ctx *c) { return pause_resume(c, false); }

static int cmd_vm_destroy(struct cmd_ctx *c)
{
    struct vm *vm = need_vm(c, c->argv[0]);
    if (!vm)
        return E_NOENT;
    int rc = vm_destroy(vm);
    if (rc)
        cmd_error(c->out, "vm destroy: %s is %s (`vm stop` it first)", c->argv[0], vm_state_name(vm->state));
    return rc;
}

/* `vm commit` / `vm discard`: every undoable disk of a VM that is not
 * running (docs/storage.md "Guest disks"). */
static int redo_cmd(struct cmd_ctx *c, bool commit)
{
    struct vm *vm = need_vm(c, c->argv[0]);
    const char *what = commit ? "commit" : "discard";
    if (!vm)
        return E_NOENT;
    if (vm->state == VM_RUNNING || vm->state == VM_PAUSED) {
        cmd_error(c->out, "vm %s: %s is %s (`vm stop` it first)", what, vm->name, vm_state_name(vm->state));
        return E_BUSY;
    }
    unsigned done = 0;
    for (unsigned i = 0; i < vm->ndisks; i++) {
        struct vdisk *d = &vm->disks[i];
        if (d->mode != VDISK_UNDOABLE)
            continue;
        uint32_t kib = redo_kib(d->redo->used);
        int rc = commit ? vdisk_commit(d) : vdisk_discard(d);
        if (rc) {
            cmd_error(c->out, "vm %s %s: %s: %s (the redo log is kept)", what, vm->name, d->spec, err_name(rc));
            return rc;
        }
        cmd_printf(c->out, "%s: %u KiB of redo log %s\n", d->spec, kib, commit ? "written to the partition" : "dropped");
        done++;
    }
    if (!done) {
        cmd_error(c->out, "vm %s: %s has no undoable disk", what, vm->name);
        return E_INVAL;
    }
    return 0;
}

static int cmd_vm_commit(struct cmd_ctx *c) { return redo_cmd(c, true); }
static int cmd_vm_discard(struct cmd_ctx *c) { return redo_cmd(c, false); }

/* One row per VM in aligned columns (the reason last: it is the only long
 * one), then the totals by state and the guest RAM they hold. */
static int cmd_vm_list(struct cmd_ctx *c)
{
    unsigned by_state[VM_STATES] = { 0 }, n = 0;
    uint64_t ram = 0;
    cmd_printf(c->out, "%-15s %-8s %6s %10s %9s  %s\n", "name", "state", "mem", "cpu ms", "exits/s", "reason");
    uint64_t now = timer_ticks();
    for (int i = 0; i < VM_MAX; i++) {
        struct vm *vm = vms[i];
        if (!vm)
            continue;
        uint64_t dt = now - vm->ticks_at_last_list, dx = vm->exits - vm->exits_at_last_list;
        uint32_t rate = dt ? (uint32_t)(dx * TIMER_HZ / dt) : 0;
        vm->ticks_at_last_list = now;
        vm->exits_at_last_list = vm->exits;
        cmd_printf(c->out, "%-15s %-8s %5uM %10u %9u  %s\n", vm->name, vm_state_name(vm->state),
                   vm->mem_bytes >> 20, (uint32_t)(vm->cpu_ticks * 1000 / TIMER_HZ), rate,
                   vm->stop_reason[0] ? vm->stop_reason : "-");
        by_state[vm->state]++;
        ram += vm->mem_bytes;
        n++;
    }
    cmd_printf(c->out, "%u of %d VMs: %u running, %u paused, %u stopped, %u created; %llu MiB of guest RAM\n", n,
               VM_MAX, by_state[VM_RUNNING], by_state[VM_PAUSED], by_state[VM_STOPPED], by_state[VM_CREATED],
               (unsigned long long)(ram >> 20));
    return 0;
}

static int cmd_vm_info(struct cmd_ctx *c)
{
    static const char *const causes[EXIT_CAUSES] = {
        [EXIT_IO] = "io", [EXIT_HLT] = "hlt", [EXIT_IRQ] = "host-irq", [EXIT_PF_HIDDEN] = "pf-hidden",
        [EXIT_PF_GUEST] = "pf-guest", [EXIT_EXCEPTION] = "exception", [EXIT_INT] = "int",
        [EXIT_IRET] = "iret", [EXIT_PRIV] = "privileged", [EXIT_CR3] = "cr3", [EXIT_BT] = "bt-other",
    };
    struct vm *vm = need_vm(c, c->argv[0]);
    if (!vm)
        return E_NOENT;
    if (vm->bios)
        cmd_printf(c->out, "vm %s: %s, %u MiB, firmware bios (%s), boots disk 0\n", vm->name,
                   vm_state_name(vm->state), vm->mem_bytes >> 20, VM_BIOS_MODULE);
    else
        cmd_printf(c->out, "vm %s: %s, %u MiB, kernel %s%s%s, cmdline \"%s\"\n", vm->name,
                   vm_state_name(vm->state), vm->mem_bytes >> 20, vm->kernel, vm->initrd[0] ? ", initrd " : "",
                   vm->initrd, vm->cmdline);
    cmd_printf(c->out, "stop reason: %s\n", vm->stop_reason[0] ? vm->stop_reason : "-");
    cmd_printf(c->out, "memory: %u pages, %u shared copy-on-write (%u KiB), %u private\n", vm->mem.npages,
               vm->mem.nshared, vm->mem.nshared * 4, vm->mem.npages - vm->mem.nshared);
    for (unsigned i = 0; i < vm->ndisks; i++)
        vmdev_disk_info(vm, i, c->out);
    for (unsigned i = 0; i < vm->nnics; i++)
        vmdev_nic_info(vm, i, c->out);
    vmdev_timer_info(vm, c->out);
    cmd_printf(c->out, "console: %llu bytes of output, %llu lost while attached (the guest outran COM1)\n",
               (unsigned long long)vm->scroll_head, (unsigned long long)vm->scroll_lost);
    cmd_printf(c->out, "exits: %u total;", (uint32_t)vm->exits);
    for (int i = 0; i < EXIT_CAUSES; i++)
        if (vm->exits_by_cause[i])
            cmd_printf(c->out, " %s %u", causes[i], (uint32_t)vm->exits_by_cause[i]);
    cmd_printf(c->out, "\n");
    cmd_printf(c->out, "monitor time from exit to entry, ms (us per exit):");
    for (int i = 0; i <= EXIT_CAUSES; i++) {
        uint64_t us = vcpu_monitor_us(vm, (unsigned)i), n = i < EXIT_CAUSES ? vm->exits_by_cause[i] : 0;
        if (us && n)
            cmd_printf(c->out, " %s %llu (%llu)", causes[i], (unsigned long long)(us / 1000),
                       (unsigned long long)(us / n));
        else if (us)
            cmd_printf(c->out, " dispatch %llu", (unsigned long long)(us / 1000));
    }
    cmd_printf(c->out, "\n");
    vcpu_info(vm, c->out);
    return 0;
}

/* `vm exits NAME [reset]`: the guest instructions that exit most, the way
 * `perf kvm stat` shows a KVM guest's exits by reason and address. */
static int cmd_vm_exits(struct cmd_ctx *c)
{
    struct vm *vm = need_vm(c, c->argv[0]);
    if (!vm)
        return E_NOENT;
    bool reset = c->argc > 1;
    if (reset && strcmp(c->argv[1], "reset") != 0) {
        cmd_error(c->out, "vm exits: '%s' is not 'reset' (vm exits NAME [reset])", c->argv[1]);
        return E_INVAL;
    }
    if (!vm->vcpu) {
        cmd_error(c->out, "vm exits: %s has no vCPU", vm->name);
        return E_NOENT;
    }
    vcpu_exit_sites(vm, c->out, 24, reset);
    return 0;
}

/* ---------------------------------------------------------------- console attach */

static void attach_input(uint8_t byte, void *ctx) { vmdev_console_input(ctx, byte); }
static void attach_gone(void *ctx) { vm_console_unlive(ctx); }

/* Replay what the guest printed, attach, then let the forwarder carry on
 * from there (vm.h: vm_console_*): the notice is printed before any live
 * output can come between its bytes. */
static int cmd_console(struct cmd_ctx *c)
{
    struct vm *vm = need_vm(c, c->argv[0]);
    if (!vm)
        return E_NOENT;
    vm_console_replay(vm, c->out);
    struct console_client cl = { vm->name, attach_input, attach_gone, vm };
    int rc = console_attach(&cl);
    if (rc) {
        cmd_error(c->out, "console: cannot attach (%s)", err_name(rc));
        return rc;
    }
    if ((rc = vm_console_live(vm))) {
        console_detach(&cl);
        cmd_error(c->out, "console: cannot forward output (%s)", err_name(rc));
        return rc;
    }
    return 0;
}

static int cmd_modules(struct cmd_ctx *c)
{
    for (uint32_t i = 0; i < boot_info.nmodules; i++) {
        const struct boot_module *m = &boot_info.modules[i];
        cmd_printf(c->out, "%-16s %8u bytes  %s\n", m->name, m->size, m->args);
    }
    if (!boot_info.nmodules)
        cmd_printf(c->out, "no modules (add module2 lines to grub.cfg)\n");
    return 0;
}

/* Checksums of the monitor's code and read-only data, and of host physical
 * page 0 (at MONITOR_BASE through the direct map, so the first page a guest
 * segment overrunning the monitor would reach): tests run it before and
 * after hostile guests to show none of it was touched. */
extern const uint8_t _text_start[], _text_end[], _rodata_start[], _rodata_end[];
static int cmd_monsum(struct cmd_ctx *c)
{
    uint32_t t = crc32(_text_start, (size_t)(_text_end - _text_start));
    uint32_t r = crc32(_rodata_start, (size_t)(_rodata_end - _rodata_start));
    uint32_t p0 = crc32(phys_to_virt(0), PAGE_SIZE);
    cmd_printf(c->out, "monitor text %08x rodata %08x host-page0 %08x (%u + %u bytes)\n", t, r, p0,
               (uint32_t)(_text_end - _text_start), (uint32_t)(_rodata_end - _rodata_start));
    return 0;
}

/* The host NIC that is sw's uplink, or NULL. */
static struct e1000 *uplink_of(const struct vswitch *sw)
{
    for (unsigned i = 0; i < e1000_count(); i++)
        if (e1000_at(i)->sw == sw)
            return e1000_at(i);
    return NULL;
}

/* `net create NAME [uplink=NIC]`: the switch, then its uplink port (the
 * switch is destroyed again if the NIC cannot be attached). */
static int net_create(struct cmd_ctx *c, const char *name, const char *opt)
{
    struct vswitch *sw;
    struct e1000 *nic = NULL;
    if (opt) {
        if (strncmp(opt, "uplink=", 7)) {
            cmd_error(c->out, "net create: unknown option '%s' (uplink=NIC)", opt);
            return E_INVAL;
        }
        if (!(nic = e1000_find(opt + 7))) {
            cmd_error(c->out, "net create: no host NIC '%s' (%u found; the first is e1000)", opt + 7, e1000_count());
            return E_NOENT;
        }
        if (nic->port) {
            cmd_error(c->out, "net create: %s is already the uplink of switch %s", nic->name, nic->sw->name);
            return E_BUSY;
        }
    }
    int rc = vswitch_create(name, &sw);
    if (rc == E_INVAL)
        cmd_error(c->out, "net create: bad name '%s' (1-%d letters, digits, '-', '_')", name, VSW_NAME_MAX - 1);
    else if (rc == E_EXIST)
        cmd_error(c->out, "net create: a switch named '%s' exists", name);
    else if (rc == E_BUSY)
        cmd_error(c->out, "net create: all %d switches in use (`net destroy` one first)", VSW_MAX);
    else if (rc)
        cmd_error(c->out, "net create: %s", err_name(rc));
    if (rc)
        return rc;
    if (nic && (rc = e1000_attach(nic, sw))) {
        vswitch_destroy(sw);
        cmd_error(c->out, "net create: cannot attach %s: %s", nic->name, err_name(rc));
        return rc;
    }
    if (nic)
        cmd_printf(c->out, "created switch %s (uplink %s)\n", name, nic->name);
    else
        cmd_printf(c->out, "created switch %s (internal)\n", name);
    return 0;
}

/* `net`, `net create NAME [uplink=NIC]`, `net destroy NAME` (docs/net.md):
 * one row, since `net` alone lists. */
static int cmd_net(struct cmd_ctx *c)
{
    struct vswitch *sw;
    if (c->argc == 0) {
        vnic_list(c->out);
        return 0;
    }
    const char *verb = c->argv[0], *name = c->argc > 1 ? c->argv[1] : NULL;
    bool create = !strcmp(verb, "create");
    if ((!create && strcmp(verb, "destroy")) || !name || (!create && c->argc > 2)) {
        cmd_error(c->out, "net: '%s%s%s' is not `net`, `net create NAME [uplink=NIC]` or `net destroy NAME`", verb,
                  name ? " " : "", name ? name : "");
        return E_INVAL;
    }
    if (create)
        return net_create(c, name, c->argc > 2 ? c->argv[2] : NULL);
    if (!(sw = vswitch_find(name))) {
        cmd_error(c->out, "net destroy: no switch named '%s' (see `net`)", name);
        return E_NOENT;
    }
    struct e1000 *nic = uplink_of(sw);
    if (sw->nports > (nic ? 1u : 0u)) {
        cmd_error(c->out, "net destroy: switch %s has ports (`vm destroy` their VMs first)", name);
        return E_BUSY;
    }
    if (nic)
        e1000_detach(nic);
    vswitch_destroy(sw);
    return 0;
}

/* `vm tceip NAME TCA...`: the guest EIP of each translation cache address
 * (hex), or "-" where it is in no translated block, one "TCA EIP" line
 * each (vcpu_tc_guest_eips); the VM must be paused. For
 * bench/insn_count.py --by-function. */
static int cmd_vm_tceip(struct cmd_ctx *c)
{
    struct vm *vm = need_vm(c, c->argv[0]);
    if (!vm)
        return E_NOENT;
    if (vm->state != VM_PAUSED) {
        cmd_error(c->out, "vm tceip: %s is %s, not paused (vm pause %s)", vm->name, vm_state_name(vm->state),
                  vm->name);
        return E_BUSY;
    }
    uint32_t tca[VCPU_TCEIP_MAX], eip[VCPU_TCEIP_MAX];
    int rcs[VCPU_TCEIP_MAX];
    unsigned n = 0;
    for (int i = 1; i < c->argc && n < VCPU_TCEIP_MAX; i++, n++) {
        if (cmd_parse_u32(c->argv[i], &tca[n])) {
            cmd_error(c->out, "vm tceip: '%s' is not an address", c->argv[i]);
            return E_INVAL;
        }
    }
    int rc = vcpu_tc_guest_eips(vm, tca, eip, rcs, n);
    if (rc) {
        cmd_error(c->out, "vm tceip: %s's vCPU did not answer (%s)", vm->name, rc == E_TIMEOUT ? "timed out" : "busy");
        return rc;
    }
    for (unsigned i = 0; i < n; i++) {
        if (rcs[i])
            cmd_printf(c->out, "%08x -\n", tca[i]);
        else
            cmd_printf(c->out, "%08x %08x\n", tca[i], eip[i]);
    }
    return 0;
}

static const struct cmd_def vm_cmds[] = {
    { "vm", "create", "NAME kernel=MODULE [initrd=MODULE] [mem=SIZE] [cmdline=\"...\"] [disk=DISK[,mode=M][,redo=SIZE]]... [net=SWITCH[,mac=M]]... [apic=0|1|deadline]; or NAME firmware=bios disk=DISK... (boots the first disk through SeaBIOS)",
      "create a VM from a Multiboot kernel or a Linux bzImage module", 1, 5 + VM_MAX_DISKS + VM_MAX_NICS, cmd_vm_create, 0 },
    { "vm", "start", "NAME... | all", "boot created or stopped VMs (all: every one)", 1, CMD_ARGS_ANY, cmd_vm_start, 0 },
    { "vm", "stop", "NAME", "stop a running VM", 1, 1, cmd_vm_stop, 0 },
    { "vm", "pause", "NAME", "freeze a running VM", 1, 1, cmd_vm_pause, 0 },
    { "vm", "resume", "NAME", "continue a paused VM", 1, 1, cmd_vm_resume, 0 },
    { "vm", "destroy", "NAME", "free a stopped VM", 1, 1, cmd_vm_destroy, 0 },
    { "vm", "commit", "NAME", "write a stopped VM's undoable disks' redo logs to their partitions", 1, 1,
      cmd_vm_commit, 0 },
    { "vm", "discard", "NAME", "drop a stopped VM's undoable disks' redo logs", 1, 1, cmd_vm_discard, 0 },
    { "vm", "list", "", "VMs: state, memory, CPU time, exits per second, stop reason", 0, 0, cmd_vm_list, 0 },
    { "vm", "info", "NAME", "registers, exits by cause, translation cache, why it stopped", 1, 1, cmd_vm_info, 0 },
    { "vm", "exits", "NAME [reset]", "the guest instructions that exit most, by reason (reset: start counting anew)",
      1, 2, cmd_vm_exits, 0 },
    { "console", NULL, "NAME", "attach to a VM's serial line (^] detaches)", 1, 1, cmd_console, 0 },
    { "net", NULL, "[create NAME [uplink=NIC] | destroy NAME]",
      "virtual switches: ports, addresses, counters, uplinks; make or remove one", 0, 3, cmd_net, 0 },
    { "modules", NULL, "", "guest images GRUB loaded (module2)", 0, 0, cmd_modules, 0 },
    { "vm", "tceip", "NAME TCA...", "guest EIPs of translation cache addresses (bench)", 2, CMD_ARGS_ANY,
      cmd_vm_tceip, CMD_HIDDEN },
    { "monsum", NULL, "", "checksum of the monitor's code and read-only data (tests)", 0, 0, cmd_monsum, CMD_HIDDEN },
};
static struct cmd_table vm_table = CMD_TABLE("vm", vm_cmds);

int vm_commands_init(void)
{
    disk_set_holder_fn(vdisk_holders); /* `disks` says which VM holds what */
    vswitch_init(clock_ns);
    return cmd_register_table(&vm_table);
}
