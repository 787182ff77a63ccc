/*
 * The emulated PC devices of one VM, and how the VMM wires them.
 *
 *   struct iobus bus;  iobus_init(&bus);
 *   vpic_init(&pic, wake_vcpu, vm);                 vpic_attach(&pic, &bus);
 *   struct vdev_irq to_pic = { vpic_irq_sink, &pic };
 *   vpit_init(&pit, clock_ns, vm, to_pic);
 *   vuart_init(&com1, VUART_COM1_BASE, VUART_COM1_IRQ, console_put, vm, to_pic);
 *   vrtc_init(&rtc, clock_ns, wall_s, vm, to_pic, ram_bytes);
 *   vkbc_init(&kbc, reboot, vm, to_pic);  vpci_init(&pci);  vdbg_init(&dbg, con, exit, vm);
 *   ..._attach(&dev, &bus) for each.
 *
 * On an I/O exit: iobus_in/iobus_out. Before resuming or when deciding how
 * long a halted vCPU may sleep: vpit_update/vrtc_update(now) and
 * MIN(vpit_next_event_ns, vrtc_next_event_ns). To inject: vpic_pending, then
 * vpic_ack when the vector is actually delivered.
 */
#ifndef HV86_VMM_DEV_DEVICES_H
#define HV86_VMM_DEV_DEVICES_H
#include "vmm/dev/iobus.h"
#include "vmm/dev/vdbg.h"
#include "vmm/dev/vfwcfg.h"
#include "vmm/dev/vdev.h"
#include "vmm/dev/vkbc.h"
#include "vmm/dev/vpci.h"
#include "vmm/dev/vpic.h"
#include "vmm/dev/vpit.h"
#include "vmm/dev/vrtc.h"
#include "vmm/dev/vuart.h"
#include "vmm/dev/vblk.h"
#include "vmm/dev/vnet.h"
#include "vmm/dev/vide.h"
#include "vmm/dev/virtio.h"
#include "vmm/dev/vlapic.h"
#include "vmm/dev/vioapic.h"
#endif
