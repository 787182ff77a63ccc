/*
 * A VM's devices, wired together and to the VM (contract in vmm/vmdev.h).
 * The device models themselves are vmm/dev/; this file only owns them.
 */
#include "vmm/vmdev.h"
#include "kernel/clock.h"
#include "kernel/heap.h"
#include "kernel/kernel.h"
#include "vmm/dev/devices.h"
#include "vmm/vm.h"

#define COM1_BASE 0x3F8
#define COM1_IRQ  4

struct vm_devices {
    struct iobus bus;
    struct vpic pic;
    struct vpit pit;
    struct vuart uart;
    struct vrtc rtc;
    struct vkbc kbc;
    struct vpci pci;
    struct vdbg dbg;
};

static uint64_t dev_clock(void *opaque) { return clock_ns(); }
static uint64_t dev_wall(void *opaque) { return clock_wall_seconds(); }
static void pic_intr(void *opaque, bool asserted) { }

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
    return 0;
}

void vmdev_destroy(struct vm *vm)
{
    kfree(vm->dev);
    vm->dev = NULL;
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
    if (vpit_next_event_ns(&d->pit) <= now)
        vpit_update(&d->pit, now);
    if (vrtc_next_event_ns(&d->rtc) <= now)
        vrtc_update(&d->rtc, now);
    return vpic_pending(&d->pic);
}

int vmdev_ack_irq(struct vm *vm) { return vpic_ack(&vm->dev->pic); }

uint64_t vmdev_next_event_ns(struct vm *vm)
{
    struct vm_devices *d = vm->dev;
    uint64_t next = MIN(vpit_next_event_ns(&d->pit), vrtc_next_event_ns(&d->rtc));
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
