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
#include "vmm/mptable.h"
#include "vmm/cpuid.h"
#include "vmm/gmem.h"
#include "vmm/vdiskio.h"
#include "kernel/x86.h"
#include "kernel/boot.h"

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
    struct vfwcfg fwcfg;                /* firmware=bios only */
    struct vblk *blk[VM_MAX_DISKS];     /* type=virtio disks by disk index */
    struct vide *ide;                   /* type=ide disks */
    uint8_t ide_slot[VM_MAX_DISKS];     /* IDE drive of disk i (vide_add_drive slot) */
    struct vnet *net[VM_MAX_NICS];      /* NICs by index */
    bool apic;                          /* vm->apic: the APICs below exist */
    struct vlapic lapic;
    struct vioapic ioapic;
    /* vmdev_poll_irq's last answer, kept while nothing it depends on can
     * have changed (irq_state_changed): the run loop asks at every exit. */
    volatile uint32_t irq_epoch;        /* bumped after every change of a line, register or request */
    uint32_t poll_epoch;                /* irq_epoch when poll_vec was computed */
    bool poll_valid;                    /* poll_vec, poll_due_ns hold an answer */
    int poll_vec;                       /* the vector pending then, or -1 */
    uint64_t poll_due_ns;               /* clock_ns() of the earliest timer event then */
    uint64_t poll_due_tsc;              /* ... as a TSC deadline (clock_tsc_before) for vmdev_quiet */
    uint64_t polls, polls_cached;       /* `vm info`: polls, and those answered from the cache */
};

/* Something an interrupt request depends on changed: a line (on any
 * thread: the console's UART input, a disk's completion polled on the
 * vCPU thread), a guest access to a device, an acknowledge or EOI, a
 * reset. Called after the change, so that a poll that read the old epoch
 * either saw the change or is answered again at its next call. One
 * instruction on the one host CPU: an interrupt cannot split it. */
static void irq_state_changed(struct vm_devices *d)
{
    __atomic_fetch_add(&d->irq_epoch, 1, __ATOMIC_SEQ_CST);
}

/* ISA IRQ n reaches I/O APIC input n, except IRQ 0 (the PIT), which a PC
 * wires to input 2 (input 0 carries the 8259A's INTR there; here it is
 * unconnected: the 8259A reaches the CPU through LINT0). The MP table says
 * so (mptable_config). */
_Static_assert(VLAPIC_TIMER_HZ == CPUID_CRYSTAL_HZ, "the APIC timer runs at the crystal CPUID 15h reports");

static int isa_pin(int irq) { return irq == 0 ? 2 : irq; }

/* Every device line goes to the 8259A pair and, in a VM with APICs, to the
 * I/O APIC as well, as on a PC: the guest chooses which one it listens to
 * by masking the other. */
static void irq_route(void *opaque, int irq, int level)
{
    struct vm_devices *d = opaque;
    vpic_set_irq(&d->pic, irq, level);
    if (d->apic)
        vioapic_set_irq(&d->ioapic, isa_pin(irq), level);
    irq_state_changed(d);
}

static void ioapic_deliver(void *opaque, uint8_t vector, bool level, uint8_t dest, bool logical)
{
    struct vm_devices *d = opaque;
    if (vlapic_dest_match(&d->lapic, dest, logical))
        vlapic_accept(&d->lapic, vector, level);
    irq_state_changed(d);
}

static void lapic_eoi(void *opaque, uint8_t vector)
{
    struct vm_devices *d = opaque;
    vioapic_eoi(&d->ioapic, vector);
    irq_state_changed(d);
}
static uint64_t lapic_tsc(void *opaque) { return rdtsc(); }

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
    struct gmem *m = &((struct vm *)opaque)->mem;
    if (for_write) /* the device writes the frame itself: it must be this VM's alone */
        return gmem_gpa_to_hpa_w(m, gpa, hpa);
    return gmem_gpa_to_hpa(m, gpa, hpa) < 0 ? E_RANGE : 0;
}
static void dma_written(void *opaque, uint32_t gpa, uint32_t len)
{
    vcpu_dma_wrote(opaque, gpa, len);
}

static void port_kick(void *opaque);

/* What a device model sees of vm's disk i. */
static struct vdev_disk disk_backend(struct vm *vm, unsigned i)
{
    struct vdisk *vd = &vm->disks[i];
    struct vdev_disk be = { vdisk_read, vdisk_write, vdisk_flush, vd, vd->sectors, vd->mode == VDISK_RO, "",
                            vdisk_rw_sg, NULL, NULL, 0 };
    if (vd->io)
        be.submit = vdiskio_submit, be.drain = vdiskio_drain, be.submit_min = VDISKIO_SUBMIT_MIN;
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
    struct vdisk *vd = &vm->disks[i];
    char name[THREAD_NAME_MAX];
    snprintf(name, sizeof(name), "%s.disk%u", vm->name, i);
    if ((vd->mode == VDISK_PERSISTENT || vd->mode == VDISK_RO) && vdiskio_start(vd, name, port_kick, vm) == 0)
        be = disk_backend(vm, i); /* reads go on while the guest runs; without the thread they wait */
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
/* The PIIX3's reset control register (0xCF9): SeaBIOS's reboot, Linux's reboot=pci. */
static void pci_reset_cpu(void *opaque) { vm_request_reset(opaque, "PCI reset control register"); }

int vmdev_create(struct vm *vm)
{
    struct vm_devices *d = kzalloc(sizeof(*d));
    if (!d)
        return E_NOMEM;
    vm->dev = d;
    struct vdev_irq line = { irq_route, d };
    d->apic = vm->apic;
    vlapic_init(&d->lapic, dev_clock, lapic_tsc, clock_tsc_hz(), lapic_eoi, d);
    d->lapic.has_deadline = vm->tsc_deadline; /* apic=deadline: CPUID.1:ECX[24] too (cpuid_add_apic) */
    vioapic_init(&d->ioapic, ioapic_deliver, d);
    iobus_init(&d->bus);
    vpic_init(&d->pic, pic_intr, vm);
    vpit_init(&d->pit, dev_clock, vm, line);
    vpit_set_pace(&d->pit, VPIT_PORT_B_PACE_NS);
    vuart_init(&d->uart, COM1_BASE, COM1_IRQ, uart_tx, vm, line);
    vrtc_init(&d->rtc, dev_clock, dev_wall, vm, line, vm->mem_bytes);
    vkbc_init(&d->kbc, kbc_reset, vm, line);
    vpci_init(&d->pci);
    d->pci.reset_cpu = pci_reset_cpu;
    d->pci.reset_opaque = vm;
    vdbg_init(&d->dbg, dbg_console, dbg_exit, vm);
    int rc = vpic_attach(&d->pic, &d->bus);
    rc = rc ? rc : vpit_attach(&d->pit, &d->bus);
    rc = rc ? rc : vuart_attach(&d->uart, &d->bus);
    rc = rc ? rc : vrtc_attach(&d->rtc, &d->bus);
    rc = rc ? rc : vkbc_attach(&d->kbc, &d->bus);
    rc = rc ? rc : vpci_attach(&d->pci, &d->bus);
    rc = rc ? rc : vdbg_attach(&d->dbg, &d->bus);
    if (vm->bios)
        rc = rc ? rc : vfwcfg_attach(&d->fwcfg, &d->bus);
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
    for (unsigned i = 0; i < VM_MAX_DISKS; i++) {
        if (i < vm->ndisks)
            vdiskio_stop(&vm->disks[i]); /* first: its disk writes no frame of vm once it is gone */
        kfree(vm->dev->blk[i]);
    }
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
    cmd_printf(out, "timer (8254 IRQ0): %llu ticks, %llu of them reinjected late, %llu waiting, %llu dropped "
               "(%llu gaps too long to catch up)\n",
               (unsigned long long)pit->ticks, (unsigned long long)pit->tick.reinjected,
               (unsigned long long)pit->tick.backlog, (unsigned long long)pit->tick.dropped,
               (unsigned long long)pit->tick.gave_up);
    const struct vm_devices *d = vm->dev;
    if (d->apic)
        cmd_printf(out, "APIC: %s, timer fired %llu times (%llu reinjected late, %llu waiting, %llu dropped, "
                   "%llu gaps too long to catch up); I/O APIC sent %llu messages; odd accesses %llu\n",
                   vlapic_enabled(&d->lapic) ? "enabled" : "disabled", (unsigned long long)d->lapic.timer_fires,
                   (unsigned long long)d->lapic.tick.reinjected, (unsigned long long)d->lapic.tick.backlog,
                   (unsigned long long)d->lapic.tick.dropped, (unsigned long long)d->lapic.tick.gave_up,
                   (unsigned long long)d->ioapic.messages,
                   (unsigned long long)(d->lapic.bad_accesses + d->ioapic.bad_accesses));
    cmd_printf(out, "interrupt polls: %llu, %llu of them answered from the last (no device change, no timer due)\n",
               (unsigned long long)d->polls, (unsigned long long)d->polls_cached);
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
    struct diskra_stats ra;
    uint32_t kib;
    if (vdiskio_ra_stats(vd, &ra, &kib))
        cmd_printf(out, "disk %u: read-ahead window %u KiB: %llu fills (%llu sectors), %llu reads served from it "
                   "(%llu sectors), %llu dropped by writes\n", i, kib, (unsigned long long)ra.fills,
                   (unsigned long long)ra.sectors_filled, (unsigned long long)ra.hits,
                   (unsigned long long)ra.sectors_hit, (unsigned long long)ra.stale);
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

/* The VM's devices as the MP table describes them (vmm/mptable.h). */
static void mptable_config(struct vm *vm, struct mp_config *cfg)
{
    struct vm_devices *d = vm->dev;
    uint32_t sig, ebx, ecx, edx;
    cpuid_count(1, 0, &sig, &ebx, &ecx, &edx);
    *cfg = (struct mp_config){ .apic_id = 0, .apic_version = vlapic_read(&d->lapic, APIC_VER, 4) & 0xFF,
                               .cpu_signature = sig, .cpu_features = edx, .lapic_addr = VLAPIC_DEFAULT_BASE,
                               .ioapic_id = 0, .ioapic_version = VIOAPIC_VERSION, .ioapic_addr = VIOAPIC_BASE };
    /* ISA IRQs except the cascade (2) and the lines PCI devices use. */
    cfg->isa_irqs = 0xFFFF & ~(1u << VPIC_CASCADE_IRQ);
    for (unsigned i = 0; i < 16; i++)
        cfg->isa_pin[i] = (uint8_t)isa_pin((int)i);
    for (unsigned i = 0; i < VM_MAX_DISKS; i++) {
        if (!d->blk[i])
            continue;
        cfg->isa_irqs &= ~(1u << vdisk_irq[i]);
        cfg->pci[cfg->npci].slot = (uint8_t)(VDISK_FIRST_SLOT + i);
        cfg->pci[cfg->npci++].pin = vdisk_irq[i];
    }
    for (unsigned i = 0; i < VM_MAX_NICS; i++) {
        if (!d->net[i])
            continue;
        cfg->isa_irqs &= ~(1u << vnic_irq[i]);
        cfg->pci[cfg->npci].slot = (uint8_t)(VNIC_FIRST_SLOT + i);
        cfg->pci[cfg->npci++].pin = vnic_irq[i];
    }
}

/* The MP floating pointer and configuration table in the BIOS area. */
static void write_mptable(struct vm *vm)
{
    uint8_t buf[MPTABLE_MAX];
    struct mp_config cfg;
    mptable_config(vm, &cfg);
    size_t n = mptable_build(&cfg, MPTABLE_GPA, buf, sizeof(buf));
    if (!n || gmem_write(&vm->mem, MPTABLE_GPA, buf, (uint32_t)n))
        panic("vmdev: the MP table does not fit"); /* fixed sizes: a build mistake */
}

bool vmdev_a20(struct vm *vm)
{
    return vkbc_a20(&((struct vm_devices *)vm->dev)->kbc);
}

void vmdev_reset(struct vm *vm)
{
    struct vm_devices *d = vm->dev;
    vpic_reset(&d->pic);
    vlapic_reset(&d->lapic);
    if (!d->apic)
        d->lapic.base_msr &= ~APIC_BASE_ENABLE; /* absent: reads as disabled, cannot be enabled */
    vioapic_reset(&d->ioapic);
    if (d->apic && !vm->bios)
        write_mptable(vm); /* SeaBIOS writes its own (from the PCI and APIC state it finds) */
    vpit_reset(&d->pit);
    vuart_reset(&d->uart);
    vrtc_reset(&d->rtc);
    vkbc_reset(&d->kbc);
    vpci_reset(&d->pci);
    vfwcfg_reset(&d->fwcfg);
    for (unsigned i = 0; i < VM_MAX_DISKS; i++)
        if (d->blk[i])
            vblk_reset(d->blk[i]);
    if (d->ide)
        vide_reset(d->ide);
    for (unsigned i = 0; i < VM_MAX_NICS; i++)
        if (d->net[i])
            vnet_reset(d->net[i]);
    d->poll_valid = false;
    irq_state_changed(d);
}

void vmdev_in(struct vm *vm, uint16_t port, unsigned size, uint32_t *val)
{
    iobus_in(&vm->dev->bus, port, size, val);
    irq_state_changed(vm->dev); /* a read can change state too (OCW3 poll, a latch, an ack) */
}

void vmdev_out(struct vm *vm, uint16_t port, unsigned size, uint32_t val)
{
    iobus_out(&vm->dev->bus, port, size, val);
    irq_state_changed(vm->dev);
}

/* Is the PIT's line free for a new tick: neither requested nor in service
 * where the guest takes it, the 8259A or, routed there, the I/O APIC? */
static bool pit_irq_idle(struct vm_devices *d)
{
    uint8_t vector;
    if (vpic_irq_idle(&d->pic, VPIT_IRQ))
        return true;
    return d->apic && vioapic_pin_routed(&d->ioapic, isa_pin(VPIT_IRQ), &vector) &&
           vlapic_vector_idle(&d->lapic, vector);
}

/* The vector the CPU would take now, or -1; *from_pic: it is the 8259A's.
 * The local APIC's own requests come first; the 8259A's INTR reaches the
 * CPU through LINT0 in ExtINT mode (not subject to the TPR, §10.5.1), or
 * directly when the APIC is disabled or absent. */
static int irq_pending(struct vm_devices *d, bool *from_pic)
{
    *from_pic = false;
    int v = vlapic_pending(&d->lapic);
    if (v >= 0 || !vlapic_extint_open(&d->lapic))
        return v;
    *from_pic = true;
    return vpic_pending(&d->pic);
}

/* The earliest clock_ns() at which vmdev_poll_irq has a timer to update:
 * the same deadlines it tests, no sooner than the state they depend on
 * (irq_epoch) changes. */
static uint64_t poll_deadline(struct vm_devices *d)
{
    uint64_t due = MIN(vpit_next_event_ns(&d->pit), vrtc_next_event_ns(&d->rtc));
    if (pit_irq_idle(d))
        due = MIN(due, vpit_reinject_ns(&d->pit));
    if (d->apic)
        due = MIN(due, vlapic_next_event_ns(&d->lapic));
    return due;
}

/* Is vmdev_poll_irq's last answer still the answer at clock_ns() now:
 * nothing it depends on changed (irq_epoch) and no timer is due? */
static bool poll_fresh(const struct vm_devices *d, uint64_t now)
{
    return d->poll_valid && d->poll_epoch == d->irq_epoch && now < d->poll_due_ns;
}

/*
 * The run loop polls at every exit, and most exits (a system call, an
 * IRET) touch no device: then the answer is the last one, unless a timer
 * is due or irq_epoch moved. The NICs and disks are polled every time all
 * the same: their frames and completions arrive from other threads
 * without a line change until polled.
 */
int vmdev_poll_irq(struct vm *vm)
{
    struct vm_devices *d = vm->dev;
    for (unsigned i = 0; i < VM_MAX_NICS; i++)
        if (d->net[i])
            vnet_poll(d->net[i]); /* frames the switch queued, into this guest's RAM, on its own thread */
    for (unsigned i = 0; i < VM_MAX_DISKS; i++)
        if (d->blk[i])
            vblk_poll(d->blk[i]); /* reads its disk's I/O thread finished */
    uint64_t now = clock_ns();
    d->polls++;
    if (poll_fresh(d, now)) {
        d->polls_cached++;
        return d->poll_vec;
    }
    if (vpit_next_event_ns(&d->pit) <= now)
        vpit_update(&d->pit, now);
    if (vpit_reinject_ns(&d->pit) <= now && pit_irq_idle(d))
        vpit_reinject(&d->pit, now); /* a tick coalesced earlier, now that the PIC took the last */
    if (vrtc_next_event_ns(&d->rtc) <= now)
        vrtc_update(&d->rtc, now);
    if (d->apic && vlapic_next_event_ns(&d->lapic) <= now) {
        vlapic_update(&d->lapic);
        vlapic_reinject(&d->lapic); /* a period the guest was not run for, now that it took the last */
    }
    /* Read before the state it stands for: a change from here on (another
     * thread's line) moves it again and the next poll looks afresh. */
    uint32_t epoch = d->irq_epoch;
    bool from_pic;
    int vec = irq_pending(d, &from_pic);
    d->poll_due_ns = poll_deadline(d);
    d->poll_due_tsc = clock_tsc_before(d->poll_due_ns);
    d->poll_vec = vec;
    d->poll_epoch = epoch;
    d->poll_valid = true;
    return vec;
}

bool vmdev_quiet(struct vm *vm)
{
    struct vm_devices *d = vm->dev;
    if (!d->poll_valid || d->poll_vec >= 0)
        return false;
    for (unsigned i = 0; i < VM_MAX_NICS; i++)
        if (d->net[i] && vnet_rx_ready(d->net[i]))
            return false;
    for (unsigned i = 0; i < VM_MAX_DISKS; i++)
        if (d->blk[i] && vblk_ready(d->blk[i]))
            return false;
    /* poll_fresh's test against the TSC: a system call's trap asks, and
     * converting the TSC to ns each time was a third of this. */
    return d->poll_epoch == d->irq_epoch && rdtsc() < d->poll_due_tsc;
}

bool vmdev_irq_pending(struct vm *vm)
{
    bool from_pic;
    return irq_pending(vm->dev, &from_pic) >= 0;
}

bool vmdev_dma_busy(struct vm *vm)
{
    struct vm_devices *d = vm->dev;
    for (unsigned i = 0; i < VM_MAX_DISKS; i++)
        if (d->blk[i] && vblk_busy(d->blk[i]))
            return true;
    return false;
}

int vmdev_ack_irq(struct vm *vm)
{
    struct vm_devices *d = vm->dev;
    bool from_pic;
    int vec;
    if (irq_pending(d, &from_pic) < 0 && d->apic && vlapic_enabled(&d->lapic))
        vec = vlapic_ack(&d->lapic); /* nothing left: the APIC's spurious vector */
    else
        vec = from_pic ? vpic_ack(&d->pic) : vlapic_ack(&d->lapic);
    irq_state_changed(d);
    return vec;
}

uint64_t vmdev_next_event_ns(struct vm *vm)
{
    struct vm_devices *d = vm->dev;
    for (unsigned i = 0; i < VM_MAX_NICS; i++)
        if (d->net[i] && vnet_rx_ready(d->net[i]))
            return 0; /* a frame waits for the guest (also read from interrupt handlers: lock-free) */
    for (unsigned i = 0; i < VM_MAX_DISKS; i++)
        if (d->blk[i] && vblk_ready(d->blk[i]))
            return 0; /* a read is done */
    uint64_t next = MIN(vpit_next_event_ns(&d->pit), vrtc_next_event_ns(&d->rtc));
    next = MIN(next, vlapic_next_event_ns(&d->lapic));
    if (pit_irq_idle(d))
        next = MIN(next, vpit_reinject_ns(&d->pit));
    if (next == VDEV_NEVER)
        return UINT64_MAX;
    uint64_t now = clock_ns();
    return next <= now ? 0 : next - now;
}

/* firmware=bios: the BIOS image's alias at the top of 4 GiB, where a PC's
 * chipset decodes its flash ROM (SeaBIOS reads its pristine copy there to
 * reboot, src/fw/shadow.c qemu_reboot). Read-only: writes are dropped, as
 * a ROM drops them. True if gpa lies in it. */
static bool bios_rom_alias(struct vm *vm, uint32_t gpa, void *buf, uint32_t len, bool write)
{
    const struct boot_module *m = vm->bios ? boot_module_find(VM_BIOS_MODULE) : NULL;
    if (!m || m->size > VM_BIOS_BYTES || gpa < 0u - m->size)
        return false;
    uint32_t off = gpa - (0u - m->size);
    if (!write && (len > m->size - off || boot_module_read(m, off, buf, len)))
        memset(buf, 0xFF, len);
    return true;
}

bool vmdev_mmio(struct vm *vm, uint32_t gpa, void *buf, uint32_t len, bool write)
{
    struct vm_devices *d = vm->dev;
    if (bios_rom_alias(vm, gpa, buf, len, write))
        return true;
    uint32_t page = gpa & ~(VLAPIC_PAGE_BYTES - 1);
    bool lapic = page == vlapic_page(&d->lapic);
    if (!d->apic || (!lapic && page != VIOAPIC_BASE))
        return false;
    uint8_t *p = buf;
    for (uint32_t off = gpa - page, end = MIN(off + len, VLAPIC_PAGE_BYTES); off < end;) {
        unsigned n = MIN(4 - (off & 3), end - off);
        uint32_t v = 0;
        if (write) {
            memcpy(&v, p, n);
            if (lapic)
                vlapic_write(&d->lapic, off, n, v);
            else
                vioapic_write(&d->ioapic, off, n, v);
        } else {
            v = lapic ? vlapic_read(&d->lapic, off, n) : vioapic_read(&d->ioapic, off, n);
            memcpy(p, &v, n);
        }
        p += n;
        off += n;
    }
    irq_state_changed(d); /* a store to the TPR, EOI, ICR, LVT or a redirection entry */
    return true;
}

bool vmdev_apic_msr(struct vm *vm, uint32_t msr, bool write, uint64_t *val)
{
    struct vm_devices *d = vm->dev;
    irq_state_changed(d); /* the APIC's base (enable) or its deadline */
    if (msr == MSR_APIC_BASE) {
        if (!write)
            *val = d->lapic.base_msr;
        else if (!d->apic)
            return !(*val & APIC_BASE_ENABLE); /* absent: stays disabled, other writes ignored */
        else if (vlapic_set_base(&d->lapic, *val))
            return false;
        return true;
    }
    if (msr != MSR_TSC_DEADLINE || !d->apic || !d->lapic.has_deadline)
        return false;
    vlapic_update(&d->lapic); /* a deadline the TSC has passed fires (and reads 0) before the access */
    if (write)
        vlapic_set_deadline(&d->lapic, *val);
    else
        *val = vlapic_get_deadline(&d->lapic);
    return true;
}

bool vmdev_has_apic(const struct vm *vm) { return vm->dev && vm->dev->apic; }

void vmdev_console_input(struct vm *vm, uint8_t byte)
{
    if (!vm->dev)
        return;
    vuart_feed(&vm->dev->uart, &byte, 1); /* paced: typed-ahead bytes wait for room */
    irq_state_changed(vm->dev);
}
