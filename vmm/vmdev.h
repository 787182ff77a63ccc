/*
 * A VM's devices (vmm/vmdev.c): the I/O port bus and one instance each of
 * the 8259A pair, 8254 PIT, 16550 UART (the guest console), CMOS RTC,
 * i8042, PCI configuration mechanism #1 and the debug ports, wired together
 * (PIT -> IRQ 0, UART -> IRQ 4, RTC -> IRQ 8, all through the PIC) and to
 * the VM (console scrollback, reset line -> vm_request_reset, exit port ->
 * vm_kill); and the VM's disks (virtio-blk, PIIX3 IDE) and NICs
 * (virtio-net, each on a port of its switch: net/vswitch.h).
 */
#ifndef HV86_VMM_VMDEV_H
#define HV86_VMM_VMDEV_H
#include <stdbool.h>
#include <stdint.h>

struct vm;

/* vmdev_create - allocate vm->dev (heap; vmdev_destroy frees it) and wire
 * the devices at power-on state. Returns 0 or E_NOMEM. */
int vmdev_create(struct vm *vm);
/* vmdev_destroy - free vm->dev and set it NULL. The vCPU must not run. */
void vmdev_destroy(struct vm *vm);
/* One line of `vm info` about the VM's disk i (vmm/vdisk.h): backing,
 * mode, the device (virtio-blk function or IDE drive) and its statistics. */
struct cmd_out;
void vmdev_disk_info(struct vm *vm, unsigned i, struct cmd_out *out);
/* One line of `vm info` about the timer: IRQ0 pulses, those reinjected
 * from the backlog of ticks the guest was not run for, the backlog now,
 * and ticks dropped (vmm/dev/vpit.h). */
void vmdev_timer_info(struct vm *vm, struct cmd_out *out);
/* Two lines of `vm info` about the VM's NIC i (vmm/vnic.h): address,
 * switch and port, the virtio-net function, its counters. */
void vmdev_nic_info(struct vm *vm, unsigned i, struct cmd_out *out);
/* vmdev_reset - power-on state of every device (what `vm start` and a guest
 * reset do after loading the kernel). Called on the vCPU's thread or while
 * it does not run; never from inside a device callback. Cannot fail. */
void vmdev_reset(struct vm *vm);
/* Guest port I/O, size 1, 2 or 4 bytes. Unclaimed ports read as all-ones.
 * A write may leave vm->reset_req set (the i8042 reset pulse): the caller
 * completes the instruction and the run loop then reboots (vm_reboot). */
void vmdev_in(struct vm *vm, uint16_t port, unsigned size, uint32_t *val);
void vmdev_out(struct vm *vm, uint16_t port, unsigned size, uint32_t val);
/* Advance device time to now, move frames waiting at the VM's NICs'
 * switch ports into its receive buffers (vnet_poll) and finish the disk
 * reads its I/O threads are done with (vblk_poll): the VM's vCPU thread
 * only; returns the vector of the highest-priority pending interrupt at
 * the PIC, or -1. Does not acknowledge. */
/* vmdev_a20 - whether the VM's A20 gate is open (vkbc_a20: the i8042's
 * output port or port 0x92). */
bool vmdev_a20(struct vm *vm);
int vmdev_poll_irq(struct vm *vm);
/* Acknowledge (INTA): returns the vector to deliver. */
int vmdev_ack_irq(struct vm *vm);
/* Nanoseconds of host time until the next device event (timer tick; 0
 * while a frame waits for a NIC whose guest has buffers), or UINT64_MAX if
 * none is armed: how long a halted vCPU may sleep. Lock-free: also called
 * from interrupt handlers. */
uint64_t vmdev_next_event_ns(struct vm *vm);
/* True if an interrupt is requested (the local APIC's, or the 8259A's
 * through LINT0) without advancing any device's time: a line another
 * thread raised (the console's UART input) since the vCPU last polled.
 * Lock-free and read-only: called from the host's interrupt handlers. */
bool vmdev_irq_pending(struct vm *vm);
/* vmdev_quiet - true only if the devices have nothing for the run loop:
 * the last vmdev_poll_irq found no interrupt requested, no line, register
 * or request changed since (irq_epoch), its earliest timer deadline is
 * still ahead (clock_ns), and no NIC frame or finished disk read waits.
 * A cheaper, conservative !(vmdev_next_event_ns() == 0 ||
 * vmdev_irq_pending()): false whenever unsure (no poll yet). Lock-free,
 * read-only; the vCPU thread, interrupts off (vcpu.c's in-trap paths). */
bool vmdev_quiet(struct vm *vm);
/* vmdev_dma_busy - whether a device of vm has DMA into its RAM in flight
 * (a virtio-blk read started in the background, vblk_busy): until it ends,
 * the frames it names must stay this VM's and its own (no page sharing may
 * replace them). The vCPU thread's view; lock-free. */
bool vmdev_dma_busy(struct vm *vm);
/* vmdev_mmio - an emulated access of len bytes (within one page) at gpa,
 * which is not guest RAM: the local APIC's page (where IA32_APIC_BASE puts
 * it while enabled) or the I/O APIC's at 0xFEC00000, in a VM with APICs;
 * in a firmware=bios VM, the BIOS image's read-only alias in the last
 * VM_BIOS_BYTES (or its size) below 4 GiB. Returns true if a device took it (buf read or written), false if the
 * gpa is a hole. Sources: Intel SDM Vol. 3A §10.4.1; 82093AA datasheet §3. */
bool vmdev_mmio(struct vm *vm, uint32_t gpa, void *buf, uint32_t len, bool write);
/* vmdev_apic_msr - RDMSR/WRMSR of IA32_APIC_BASE (1Bh) or IA32_TSC_DEADLINE
 * (6E0h) into/from *val. Returns false if msr is not one of them in this VM
 * (the caller raises #GP(0): TSC_DEADLINE where the APIC does not offer
 * TSC-deadline mode, which hv86's VMs do not) or if the write
 * is refused (reserved bits; in a VM without APICs, setting the enable
 * bit: the base reads 0xFEE00100, disabled, and other writes are dropped). SDM Vol. 3A §10.4.4, §10.5.4.1. */
bool vmdev_apic_msr(struct vm *vm, uint32_t msr, bool write, uint64_t *val);
/* vmdev_has_apic - was the VM created with APICs (apic=1)? */
bool vmdev_has_apic(const struct vm *vm);
/* A byte typed by the attached administrator, for the guest's UART. */
void vmdev_console_input(struct vm *vm, uint8_t byte);

#endif
