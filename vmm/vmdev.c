/*
 * A VM's devices, wired together and to the VM (contract in vmm/vmdev.h).
 * The device models themselves are vmm/dev/; this file only owns them.
 */
#include "vmm/vmdev.h"
#include "kernel/clock.h"
#include "kernel/heap.h"
#include "kernel/kernel.h"
#include "vmm/dev/devices.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "vmm/redo.h"
#include "kernel/sched.h"
#include "mgmt/cmd.h"

#define COM1_BASE 0x3F8
#define COM1_IRQ  4

/* Guest disks as firmware would have left them (there is no guest BIOS):
 * disk i is PCI device 3 + i, BAR0 at VDISK_IO_BASE + i * VBLK_BAR_BYTES,
 * Interrupt Line vdisk_irq[i] (ISA IRQs the PC leaves to PCI). */
#define VDISK_FIRST_SLOT 3
#define VDISK_IO_BASE    0xC000
static const uint8_t vdisk_irq[VM_MAX_DISKS] = { 11, 10, 9, 5 };
/* type=ide disks: drives of a PIIX3 (vmm/dev/vide.h) at 00:01, its bus
 * master registers at VIDE_BM_IO, present only in a VM that has one. */
#define VIDE_BM_IO       0xC100
/* NICs (net=, vmm/vnic.h): NIC i is PCI device VNIC_FIRST_SLOT + i, BAR0
 * at VNIC_IO_BASE + i * VNET_BAR_BYTES, Interrupt Line vnic_irq[i]: ISA
 * lines nothing of a VM uses (COM2, LPT1 and the floppy are absent), each
 * its own, since the PIC's inputs are edge-triggered and not shared. */
#define VNIC_FIRST_SLOT  (VDISK_FIRST_SLOT + VM_MAX_DISKS)
#define VNIC_IO_BASE     0xC200
static const uint8_t vnic_irq[VM_MAX_NICS] = { 7, 3, 6 };

struct vm_devices {
    struct iobus bus;
    struct vpic pic;
    struct vpit pit;
    struct vuart uart;
    struct vrtc rtc;
    struct vkbc kbc;
    struct vpci pci;
    struct vdbg dbg;
    struct vblk *blk[VM_MAX_DISKS];     /* type=virtio disks by disk index */
    struct vide *ide;                   /* type=ide disks */
    uint8_t ide_slot[VM_MAX_DISKS];     /* IDE drive of disk i (vide_add_drive slot) */
    struct vnet *net[VM_MAX_NICS];      /* NICs by index */
};

static uint64_t dev_clock(void *opaque) { return clock_ns(); }
static uint64_t dev_wall(void *opaque) { return clock_wall_seconds(); }
static void pic_intr(void *opaque, bool asserted) { }

/* DMA for the disk devices: reads straight from guest RAM, writes through
 * vcpu_dma_write, which keeps shadows and translations coherent. */
static int dma_read(void *opaque, uint32_t gpa, void *buf, uint32_t len)
{
    return gmem_read(&((struct vm *)opaque)->mem, gpa, buf, len);
}
static int dma_write(void *opaque, uint32_t gpa, const void *buf, uint32_t len)
{
    return vcpu_dma_write(opaque, gpa, buf, len);
}
/* Zero copy: the host frame of a guest page, and what a host device wrote
 * into guest pages behind the monitor's back (vcpu_dma_wrote). */
static int dma_frame(void *opaque, uint32_t gpa, bool for_write, uint32_t *hpa)
{
    return gmem_gpa_to_hpa(&((struct vm *)opaque)->mem, gpa, hpa);
}
static void dma_written(void *opaque, uint32_t gpa, uint32_t len)
{
    vcpu_dma_wrote(opaque, gpa, len);
}

/* What a device model sees of vm's disk i. */
static struct vdev_disk disk_backend(struct vm *vm, unsigned i)
{
    struct vdisk *vd = &vm->disks[i];
    struct vdev_disk be = { vdisk_read, vdisk_write, vdisk_flush, vd, vd->sectors, vd->mode == VDISK_RO, "",
                            vdisk_rw_sg };
    snprintf(be.serial, sizeof(be.serial), "hv86-%s", vd->spec);
    return be;
}

/* The device of vm's disk i: a virtio-blk function, or the next drive of
 * the PIIX3 (created with the first IDE disk). */
static int disk_create(struct vm *vm, unsigned i, struct vdev_irq line)
{
    struct vm_devices *d = vm->dev;
    struct vdev_disk be = disk_backend(vm, i);
    struct vdev_mem mem = { dma_read, dma_write, vm, dma_frame, dma_written };
    if (vm->disks[i].type == VDISK_IDE) {
        if (!d->ide) {
            if (!(d->ide = kzalloc(sizeof(struct vide))))
                return E_NOMEM;
            vide_init(d->ide, VIDE_BM_IO, line, mem);
        }
        unsigned slot = 0;
        while (vide_drive(d->ide, slot))
            slot++;
        d->ide_slot[i] = (uint8_t)slot;
        return vide_add_drive(d->ide, slot, &be);
    }
    d->blk[i] = kzalloc(sizeof(struct vblk));
    if (!d->blk[i])
        return E_NOMEM;
    vblk_init(d->blk[i], (uint8_t)((VDISK_FIRST_SLOT + i) << 3), (uint16_t)(VDISK_IO_BASE + i * VBLK_BAR_BYTES),
              vdisk_irq[i], line, mem, &be);
    return vblk_attach(d->blk[i], &d->pci, &d->bus);
}

/* A NIC's port is a switch port (net/vswitch.h). */
static int port_send(void *o, const void *frame, uint32_t len) { return vswitch_port_send(o, frame, len); }
static uint32_t port_recv(void *o, void *buf, uint32_t cap) { return vswitch_port_recv(o, buf, cap); }
static bool port_pending(void *o) { return vswitch_port_pending(o); }
static void port_link(void *o, bool up) { vswitch_port_link(o, up); }

/* A frame landed in an empty queue of one of vm's ports, on the sender's
 * thread with the switch locked: wake vm's vCPU if it sleeps in HLT; it
 * moves the frame into its guest's RAM itself (vmdev_poll_irq). */
static void port_kick(void *opaque)
{
    struct vm *vm = opaque;
    int tid = vm->thread;
    if (tid > 0)
        thread_wake((uint32_t)tid);
}

/* NIC i of vm: a port on its switch, then the virtio-net function on it. */
static int nic_create(struct vm *vm, unsigned i, struct vdev_irq line)
{
    struct vm_devices *d = vm->dev;
    struct vnic *nic = &vm->nics[i];
    char name[VSW_PORT_NAME_MAX];
    snprintf(name, sizeof(name), "%s.%u", vm->name, i);
    int rc = vswitch_port_add(nic->sw, name, nic->mac, port_kick, vm, &nic->port);
    if (rc)
        return rc;
    if (!(d->net[i] = kzalloc(sizeof(struct vnet))))
        return E_NOMEM;
    struct vdev_net port = { port_send, port_recv, port_pending, port_link, nic->port };
    struct vdev_mem mem = { dma_read, dma_write, vm, dma_frame, dma_written };
    vnet_init(d->net[i], (uint8_t)((VNIC_FIRST_SLOT + i) << 3), (uint16_t)(VNIC_IO_BASE + i * VNET_BAR_BYTES),
              vnic_irq[i], line, mem, nic->mac, &port);
    return vnet_attach(d->net[i], &d->pci, &d->bus);
}

static void uart_tx(void *opaque, uint8_t byte) { vm_console_output(opaque, &byte, 1); }
static void dbg_console(void *opaque, uint8_t byte) { vm_console_output(opaque, &byte, 1); }

static void dbg_exit(void *opaque, uint32_t code)
{
    vm_kill(opaque, "guest exited with code %u (debug exit port)", code);
}

/* The i8042 pulsed the CPU reset line: Linux's `reboot` (BOOT_KBD) and
 * panic=N. The vCPU thread reboots the VM once this port access is done. */
static void kbc_reset(void *opaque) { vm_request_reset(opaque, "i8042 reset line"); }

int vmdev_create(struct vm *vm)
{
    struct vm_devices *d = kzalloc(sizeof(*d));
    if (!d)
        return E_NOMEM;
    vm->dev = d;
    struct vdev_irq line = { vpic_irq_sink, &d->pic };
    iobus_init(&d->bus);
    vpic_init(&d->pic, pic_intr, vm);
    vpit_init(&d->pit, dev_clock, vm, line);
    vpit_set_pace(&d->pit, VPIT_PORT_B_PACE_NS);
    vuart_init(&d->uart, COM1_BASE, COM1_IRQ, uart_tx, vm, line);
    vrtc_init(&d->rtc, dev_clock, dev_wall, vm, line, vm->mem_bytes);
    vkbc_init(&d->kbc, kbc_reset, vm, line);
    vpci_init(&d->pci);
    vdbg_init(&d->dbg, dbg_console, dbg_exit, vm);
    int rc = vpic_attach(&d->pic, &d->bus);
    rc = rc ? rc : vpit_attach(&d->pit, &d->bus);
    rc = rc ? rc : vuart_attach(&d->uart, &d->bus);
    rc = rc ? rc : vrtc_attach(&d->rtc, &d->bus);
    rc = rc ? rc : vkbc_attach(&d->kbc, &d->bus);
    rc = rc ? rc : vpci_attach(&d->pci, &d->bus);
    rc = rc ? rc : vdbg_attach(&d->dbg, &d->bus);
    if (rc)
        panic("vmdev: device ports overlap (%s)", err_name(rc)); /* a build mistake, not guest input */
    for (unsigned i = 0; i < vm->ndisks && !rc; i++)
        rc = disk_create(vm, i, line);
    if (!rc && d->ide)
        rc = vide_attach(d->ide, &d->pci, &d->bus);
    for (unsigned i = 0; i < vm->nnics && !rc; i++)
        rc = nic_create(vm, i, line);
    if (rc)
        vmdev_destroy(vm);
    return rc;
}

void vmdev_destroy(struct vm *vm)
{
    if (!vm->dev)
        return;
    for (unsigned i = 0; i < VM_MAX_NICS; i++) {
        if (vm->nics[i].port) /* first: no sender reaches the device once the port is gone */
            vswitch_port_remove(vm->nics[i].port);
        vm->nics[i].port = NULL;
        kfree(vm->dev->net[i]);
    }
    for (unsigned i = 0; i < VM_MAX_DISKS; i++)
        kfree(vm->dev->blk[i]);
    kfree(vm->dev->ide);
    kfree(vm->dev);
    vm->dev = NULL;
}

/* "reads N (S sectors), writes ..., Z of them without a copy, flushes F, errors E" */
static void disk_stats(struct cmd_out *out, const struct vdev_disk_stats *st)
{
    cmd_printf(out, "reads %llu (%llu sectors), writes %llu (%llu sectors), %llu of them without a copy, "
               "flushes %llu, errors %llu",
               (unsigned long long)st->reads, (unsigned long long)st->sectors_read, (unsigned long long)st->writes,
               (unsigned long long)st->sectors_written, (unsigned long long)st->zero_copy,
               (unsigned long long)st->flushes, (unsigned long long)st->errors);
}

void vmdev_timer_info(struct vm *vm, struct cmd_out *out)
{
    const struct vpit *pit = &vm->dev->pit;
    cmd_printf(out, "timer (8254 IRQ0): %llu ticks, %llu of them reinjected late, %llu waiting, %llu dropped\n",
               (unsigned long long)pit->ticks, (unsigned long long)pit->reinjected,
               (unsigned long long)pit->backlog, (unsigned long long)pit->lost_ticks);
}

void vmdev_disk_info(struct vm *vm, unsigned i, struct cmd_out *out)
{
    static const char *const ide_names[] = { "primary master", "primary slave", "secondary master",
                                             "secondary slave" };
    struct vm_devices *d = vm->dev;
    const struct vdisk *vd = &vm->disks[i];
    if (!d)
        return;
    if (vd->redo)
        cmd_printf(out, "disk %u: redo log %u of %u KiB\n", i, redo_kib(vd->redo->used),
                   redo_kib(vd->redo->cap));
    cmd_printf(out, "disk %u: %s, %s, %llu sectors; ", i, vd->spec, vdisk_mode_name(vd->mode),
               (unsigned long long)vd->sectors);
    if (vd->type == VDISK_IDE) {
        const struct vide_drive *drv = d->ide ? vide_drive(d->ide, d->ide_slot[i]) : NULL;
        if (!drv)
            return;
        cmd_printf(out, "IDE %s (PIIX3 00:01.1) irq %u: ", ide_names[d->ide_slot[i]],
                   d->ide_slot[i] < VIDE_DRIVES ? VIDE_PRIMARY_IRQ : VIDE_SECONDARY_IRQ);
        disk_stats(out, &drv->st);
        cmd_printf(out, ", bad PRD tables %llu\n", (unsigned long long)d->ide->bad_prd);
        return;
    }
    const struct vblk *b = d->blk[i];
    if (!b)
        return;
    cmd_printf(out, "virtio-blk 00:%02x.0 io %04x irq %u: ", b->vp.fn.devfn >> 3, b->vp.bar0.base, b->vp.irq);
    disk_stats(out, &b->st);
    cmd_printf(out, ", bad chains %u\n", b->vp.bad_chains);
}

void vmdev_nic_info(struct vm *vm, unsigned i, struct cmd_out *out)
{
    const struct vnet *n = vm->dev ? vm->dev->net[i] : NULL;
    char mac[18];
    if (!n)
        return;
    vnic_mac_text(n->mac, mac);
    cmd_printf(out, "nic %u: %s on switch %s (port %s); virtio-net 00:%02x.0 io %04x irq %u\n", i, mac,
               vm->nics[i].sw->name, vm->nics[i].port->name, n->vp.fn.devfn >> 3, n->vp.bar0.base, n->vp.irq);
    cmd_printf(out, "nic %u: rx %llu frames %llu bytes, %llu dropped; tx %llu frames %llu bytes, %llu errors; "
               "bad chains %u\n", i, (unsigned long long)n->st.rx_frames, (unsigned long long)n->st.rx_bytes,
               (unsigned long long)n->st.rx_dropped, (unsigned long long)n->st.tx_frames,
               (unsigned long long)n->st.tx_bytes, (unsigned long long)n->st.tx_errors, n->vp.bad_chains);
}

void vmdev_reset(struct vm *vm)
{
    struct vm_devices *d = vm->dev;
    vpic_reset(&d->pic);
    vpit_reset(&d->pit);
    vuart_reset(&d->uart);
    vrtc_reset(&d->rtc);
    vkbc_reset(&d->kbc);
    vpci_reset(&d->pci);
    for (unsigned i = 0; i < VM_MAX_DISKS; i++)
        if (d->blk[i])
            vblk_reset(d->blk[i]);
    if (d->ide)
        vide_reset(d->ide);
    for (unsigned i = 0; i < VM_MAX_NICS; i++)
        if (d->net[i])
            vnet_reset(d->net[i]);
}

void vmdev_in(struct vm *vm, uint16_t port, unsigned size, uint32_t *val)
{
    iobus_in(&vm->dev->bus, port, size, val);
}

void vmdev_out(struct vm *vm, uint16_t port, unsigned size, uint32_t val)
{
    iobus_out(&vm->dev->bus, port, size, val);
}

int vmdev_poll_irq(struct vm *vm)
{
    struct vm_devices *d = vm->dev;
    uint64_t now = clock_ns();
    for (unsigned i = 0; i < VM_MAX_NICS; i++)
        if (d->net[i])
            vnet_poll(d->net[i]); /* frames the switch queued, into this guest's RAM, on its own thread */
    if (vpit_next_event_ns(&d->pit) <= now)
        vpit_update(&d->pit, now);
    if (vpit_reinject_ns(&d->pit) <= now && vpic_irq_idle(&d->pic, VPIT_IRQ))
        vpit_reinject(&d->pit, now); /* a tick coalesced earlier, now that the PIC took the last */
    if (vrtc_next_event_ns(&d->rtc) <= now)
        vrtc_update(&d->rtc, now);
    return vpic_pending(&d->pic);
}

int vmdev_ack_irq(struct vm *vm) { return vpic_ack(&vm->dev->pic); }

uint64_t vmdev_next_event_ns(struct vm *vm)
{
    struct vm_devices *d = vm->dev;
    for (unsigned i = 0; i < VM_MAX_NICS; i++)
        if (d->net[i] && vnet_rx_ready(d->net[i]))
            return 0; /* a frame waits for the guest (also read from interrupt handlers: lock-free) */
    uint64_t next = MIN(vpit_next_event_ns(&d->pit), vrtc_next_event_ns(&d->rtc));
    if (vpic_irq_idle(&d->pic, VPIT_IRQ))
        next = MIN(next, vpit_reinject_ns(&d->pit));
    if (next == VDEV_NEVER)
        return UINT64_MAX;
    uint64_t now = clock_ns();
    return next <= now ? 0 : next - now;
}

void vmdev_console_input(struct vm *vm, uint8_t byte)
{
    if (vm->dev)
        vuart_feed(&vm->dev->uart, &byte, 1); /* paced: typed-ahead bytes wait for room */
}
