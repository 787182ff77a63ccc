/*
 * VM objects and their life cycle (contract in vmm/vm.h); the console
 * commands that drive them are in vmm/vmcmds.c.
 */
#include "vmm/vm.h"
#include "vmm/redo.h"
#include "kernel/boot.h"
#include "kernel/heap.h"
#include "kernel/kernel.h"
#include "kernel/pmm.h"
#include "kernel/layout.h"
#include "kernel/paging.h"
#include "kernel/sched.h"
#include "kernel/x86.h"
#include "vmm/vcpu.h"
#include "vmm/vmdev.h"

struct vm *vms[VM_MAX];
static spinlock_t vm_lock = SPINLOCK_INIT("vm");

const char *vm_state_name(enum vm_state s)
{
    static const char *const names[] = { "created", "running", "paused", "stopped" };
    return (unsigned)s < ARRAY_SIZE(names) ? names[s] : "?";
}

struct vm *vm_find(const char *name)
{
    for (int i = 0; i < VM_MAX; i++)
        if (vms[i] && !strcmp(vms[i]->name, name))
            return vms[i];
    return NULL;
}

void vm_kill(struct vm *vm, const char *fmt, ...)
{
    uint32_t fl = spin_lock_irqsave(&vm_lock);
    bool first = !vm->stop_reason[0];
    if (first) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(vm->stop_reason, sizeof(vm->stop_reason), fmt, ap);
        va_end(ap);
    }
    vm->stop_req = true;
    spin_unlock_irqrestore(&vm_lock, fl);
    if (first)
        log_warn("vm %s: stopped: %s", vm->name, vm->stop_reason);
    wait_queue_wake_all(&vm->state_wq);
}

/* ---------------------------------------------------------------- life cycle */

static const struct boot_module *module_find(const char *name, char *err, size_t errlen)
{
    const struct boot_module *m = boot_module_find(name);
    if (!m)
        snprintf(err, errlen, "no module named '%s' (see `modules`)", name);
    return m;
}

/* struct loader_image over a GRUB module, wherever boot put its bytes. */
static int module_read(void *ctx, uint32_t off, void *buf, uint32_t len) { return boot_module_read(ctx, off, buf, len); }
static struct loader_image module_image(const struct boot_module *m)
{
    return (struct loader_image){ m->size, module_read, (void *)m };
}

/* struct loader_ops over a VM's guest RAM. */
static int load_write(void *ctx, uint32_t gpa, const void *buf, uint32_t len) { return gmem_write(ctx, gpa, buf, len); }
static int load_zero(void *ctx, uint32_t gpa, uint32_t len) { return gmem_zero(ctx, gpa, len); }

/* One load at a time: the loader assembles boot information in static
 * buffers (too big for a thread stack), and a guest reset loads on its
 * vCPU thread while the console may be loading another VM. */
static volatile bool loader_busy;

static void loader_lock(void)
{
    for (;;) {
        uint32_t fl = read_eflags();
        cpu_cli();
        bool mine = !loader_busy;
        loader_busy = true;
        write_eflags(fl);
        if (mine)
            return;
        thread_sleep(1);
    }
}

/* The loader proper, under loader_lock. */
static int load_image(struct vm *vm, const struct boot_module *k, const struct boot_module *rd,
                      struct loader_entry *e, char *err, size_t errlen)
{
    struct loader_ops ops = { load_write, load_zero, &vm->mem };
    struct loader_image img = module_image(k), initrd = rd ? module_image(rd) : (struct loader_image){ 0 };
    if (loader_is_linux(&img))
        return loader_load_linux(&img, rd ? &initrd : NULL, vm->mem_bytes, vm->cmdline, &ops, e, err, errlen);
    if (rd) {
        snprintf(err, errlen, "initrd= is for Linux kernels; '%s' is not a bzImage", vm->kernel);
        return E_INVAL;
    }
    return loader_load_multiboot(&img, vm->mem_bytes, vm->cmdline, &ops, e, err, errlen);
}

/* firmware=bios: the BIOS image (Debian's 128 KiB SeaBIOS bios.bin, or a
 * 64 KiB one) into guest RAM below VM_BIOS_TOP, where a PC's chipset
 * shadows it (E0000h-FFFFFh), and the reset vector F000:FFF0 as the entry.
 * E_NOENT without the module, E_INVAL for an image of another size. */
static int load_bios(struct vm *vm, struct loader_entry *e, char *err, size_t errlen)
{
    const struct boot_module *m = module_find(VM_BIOS_MODULE, err, errlen);
    if (!m)
        return E_NOENT;
    if (m->size != VM_BIOS_BYTES && m->size != VM_BIOS_BYTES / 2) {
        snprintf(err, errlen, "module %s is %u bytes, not a 64 or 128 KiB BIOS image", VM_BIOS_MODULE, m->size);
        return E_INVAL;
    }
    uint8_t buf[512];
    for (uint32_t off = 0; off < m->size; off += sizeof(buf)) {
        int rc = boot_module_read(m, off, buf, sizeof(buf));
        rc = rc ? rc : gmem_write(&vm->mem, VM_BIOS_TOP - m->size + off, buf, sizeof(buf));
        if (rc)
            return rc;
    }
    *e = (struct loader_entry){ .eip = LOADER_RESET_IP, .cs = LOADER_RESET_CS, .version = LOADER_FIRMWARE,
                                .load_lo = VM_BIOS_TOP - m->size, .load_hi = VM_BIOS_TOP };
    return 0;
}

/* Load the kernel (Multiboot or Linux bzImage) or the BIOS into guest RAM
 * and reset vCPU and devices: what power-on does. */
static int vm_load(struct vm *vm, char *err, size_t errlen)
{
    const struct boot_module *k = NULL, *rd = NULL;
    if (!vm->bios && !(k = module_find(vm->kernel, err, errlen)))
        return E_NOENT;
    if (vm->initrd[0] && !(rd = module_find(vm->initrd, err, errlen)))
        return E_NOENT;
    int rc = gmem_zero(&vm->mem, 0, vm->mem_bytes);
    if (rc)
        return rc;
    struct loader_entry e;
    loader_lock();
    rc = vm->bios ? load_bios(vm, &e, err, errlen) : load_image(vm, k, rd, &e, err, errlen);
    loader_busy = false;
    if (rc)
        return rc;
    vcpu_reset(vm, &e);
    vmdev_reset(vm);
    for (unsigned i = 0; i < vm->ndisks; i++)
        vdisk_power_on(&vm->disks[i]); /* a nonpersistent disk is the partition again */
    return 0;
}

/* Whether nic i of vm may have its address: no other port of its switch
 * (nor an earlier NIC of vm on it) has it. */
static bool nic_mac_free(const struct vm *vm, const struct vnic *nic, unsigned i, char *err, size_t errlen)
{
    char mac[18];
    vnic_mac_text(nic->mac, mac);
    for (unsigned j = 0; j < VSW_PORTS; j++) {
        const struct vsw_port *p = nic->sw->ports[j];
        if (p && !memcmp(p->mac, nic->mac, VSW_MAC_BYTES)) {
            snprintf(err, errlen, "address %s is in use on switch %s by port %s", mac, nic->sw->name, p->name);
            return false;
        }
    }
    for (unsigned j = 0; j < i; j++) {
        if (vm->nics[j].sw == nic->sw && !memcmp(vm->nics[j].mac, nic->mac, VSW_MAC_BYTES)) {
            snprintf(err, errlen, "net= %u and %u have the same address %s on switch %s", j, i, mac, nic->sw->name);
            return false;
        }
    }
    return true;
}

int vm_create(const char *name, const char *kernel, const char *initrd, uint32_t mem_bytes,
              const char *cmdline, const struct vdisk *disks, unsigned ndisks, const struct vnic *nics,
              unsigned nnics, enum vm_apic apic, bool bios, char *err, size_t errlen)
{
    int slot = -1;
    for (int i = 0; i < VM_MAX && slot < 0; i++)
        if (!vms[i])
            slot = i;
    if (slot < 0) {
        snprintf(err, errlen, "all %d VM slots in use (destroy one first)", VM_MAX);
        return E_BUSY;
    }
    if (bios && !ndisks) {
        snprintf(err, errlen, "firmware=bios needs a disk= to boot from");
        return E_INVAL;
    }
    struct vm *vm = kzalloc(sizeof(*vm));
    int rc;
    if (!vm)
        return E_NOMEM;
    snprintf(vm->name, sizeof(vm->name), "%s", name);
    snprintf(vm->kernel, sizeof(vm->kernel), "%s", kernel ? kernel : "");
    vm->bios = bios;
    snprintf(vm->initrd, sizeof(vm->initrd), "%s", initrd ? initrd : "");
    snprintf(vm->cmdline, sizeof(vm->cmdline), "%s", cmdline ? cmdline : "");
    vm->id = slot;
    vm->apic = apic != VM_APIC_NONE;
    vm->tsc_deadline = apic == VM_APIC_DEADLINE;
    for (unsigned i = 0; i < ndisks && i < VM_MAX_DISKS; i++) {
        const char *holder = vdisk_conflict(vm, &disks[i], i);
        vm->disks[i] = disks[i];
        if (holder) {
            snprintf(err, errlen, "%s is in use by VM %s (one writer, or readers only)", disks[i].spec, holder);
            rc = E_BUSY;
            goto err_free_vm;
        }
    }
    vm->ndisks = MIN(ndisks, (unsigned)VM_MAX_DISKS);
    for (unsigned i = 0; i < nnics && i < VM_MAX_NICS; i++) {
        vm->nics[i] = nics[i];
        if (!nic_mac_free(vm, &nics[i], i, err, errlen)) {
            rc = E_EXIST;
            goto err_free_vm;
        }
    }
    vm->nnics = MIN(nnics, (unsigned)VM_MAX_NICS);
    for (unsigned i = 0; i < vm->ndisks; i++) {
        if ((rc = vdisk_open(&vm->disks[i]))) {
            snprintf(err, errlen, "out of hypervisor memory for the redo log of %s", vm->disks[i].spec);
            goto err_close_disks;
        }
    }
    vm->mem_bytes = ALIGN_UP(mem_bytes, PAGE_SIZE);
    rc = gmem_init(&vm->mem, vm->mem_bytes);
    if (rc) {
        struct pmm_stats st;
        frame_stats(&st);
        snprintf(err, errlen, "out of high memory for %u MiB of guest RAM (%u MiB free)", vm->mem_bytes >> 20,
                 st.free[ZONE_HIGH] >> 8);
        goto err_close_disks;
    }
    if ((rc = vcpu_create(vm, err, errlen)))
        goto err_free_vcpu;
    if ((rc = vmdev_create(vm))) {
        if (rc == E_BUSY)
            snprintf(err, errlen, "the switch of a net= has all its %d ports in use", VSW_PORTS);
        else
            snprintf(err, errlen, "out of direct-map memory for the devices");
        goto err_free_vcpu;
    }
    if ((rc = vm_load(vm, err, errlen)))
        goto err_free_vcpu;
    vm->state = VM_CREATED;
    vms[slot] = vm;
    log_info("vm %s: created, %u MiB, %s '%s'", vm->name, vm->mem_bytes >> 20, bios ? "firmware" : "kernel",
             bios ? VM_BIOS_MODULE : vm->kernel);
    return 0;

err_free_vcpu:
    vmdev_destroy(vm);
    vcpu_destroy(vm);
    gmem_free(&vm->mem);
err_close_disks:
    for (unsigned i = 0; i < vm->ndisks; i++)
        vdisk_close(&vm->disks[i]);
err_free_vm:
    kfree(vm);
    return rc;
}

void vm_thread_died(struct vm *vm)
{
    uint32_t fl = spin_lock_irqsave(&vm_lock);
    vm->state = VM_STOPPED;
    vm->thread = 0;
    spin_unlock_irqrestore(&vm_lock, fl);
    wait_queue_wake_all(&vm->state_wq);
}

static void vm_thread_main(void *arg)
{
    struct vm *vm = arg;
    vcpu_thread(vm);
    vm_thread_died(vm);
}

int vm_start(struct vm *vm, char *err, size_t errlen)
{
    if (vm->state == VM_RUNNING || vm->state == VM_PAUSED) {
        snprintf(err, errlen, "%s is already %s", vm->name, vm_state_name(vm->state));
        return E_BUSY;
    }
    if (vm->state == VM_STOPPED) {
        int rc = vm_load(vm, err, errlen); /* a fresh boot, as after a reset */
        if (rc)
            return rc;
    }
    vm->stop_reason[0] = '\0';
    vm->stop_req = vm->pause_req = vm->reset_req = false;
    vm->state = VM_RUNNING;
    int tid = thread_create(vm->name, vm_thread_main, vm);
    if (tid < 0) {
        vm->state = VM_STOPPED;
        snprintf(err, errlen, "cannot create the vCPU thread");
        return tid;
    }
    vm->thread = tid;
    return 0;
}

void vm_request_reset(struct vm *vm, const char *why)
{
    vm->reset_why = why;
    vm->reset_req = true;
}

void vm_reboot(struct vm *vm)
{
    char err[VM_REASON_MAX] = "";
    vm->reset_req = false;
    vm->resets++;
    if (!(vm->resets & (vm->resets - 1))) /* #1, 2, 4, 8...: a reset loop cannot flood the log */
        log_info("vm %s: guest reset #%u (%s), booting again", vm->name, vm->resets, vm->reset_why ? vm->reset_why : "?");
    int rc = vm_load(vm, err, sizeof(err));
    if (rc)
        vm_kill(vm, "reboot failed: %s", err[0] ? err : err_name(rc));
}

/* Ask the vCPU to leave and wait until its thread has ended. */
void vm_stop(struct vm *vm, const char *reason)
{
    if (vm->state != VM_RUNNING && vm->state != VM_PAUSED)
        return;
    vm_kill(vm, "%s", reason);
    while (vm->thread)
        thread_sleep(1);
}

int vm_pause(struct vm *vm, bool pause)
{
    if (pause && vm->state != VM_RUNNING)
        return E_BUSY;
    if (!pause && vm->state != VM_PAUSED)
        return E_BUSY;
    vm->pause_req = pause;
    vm->state = pause ? VM_PAUSED : VM_RUNNING;
    wait_queue_wake_all(&vm->state_wq);
    return 0;
}

int vm_destroy(struct vm *vm)
{
    if (vm->state == VM_RUNNING || vm->state == VM_PAUSED)
        return E_BUSY;
    vm_console_unlive(vm); /* the console detaches first; this only makes sure */
    vms[vm->id] = NULL;
    vmdev_destroy(vm);
    vcpu_destroy(vm);
    gmem_free(&vm->mem);
    for (unsigned i = 0; i < vm->ndisks; i++) {
        if (vm->disks[i].mode == VDISK_UNDOABLE && vm->disks[i].redo->used)
            log_warn("vm %s: undoable %s: %u KiB of redo log discarded with the VM", vm->name, vm->disks[i].spec,
                     redo_kib(vm->disks[i].redo->used));
        vdisk_close(&vm->disks[i]);
    }
    log_info("vm %s: destroyed", vm->name);
    kfree(vm);
    return 0;
}
