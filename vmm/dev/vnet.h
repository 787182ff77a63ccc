/*
 * virtio-net, legacy PCI interface (1AF4:1000, subsystem 1, class 02/00):
 * a receive queue (0) and a transmit queue (1) of VIRTIO_QUEUE_SIZE
 * entries each, on an Ethernet port (struct vdev_net, vmm/dev/vdev.h;
 * in hv86 a port of a virtual switch, net/vswitch.h).
 *
 * Features offered: MAC (the configured address in the device
 * configuration) and STATUS (link always up). Nothing else: no checksum
 * offload, no GSO, no MRG_RXBUF, no control queue. So every buffer starts
 * with the 10-byte legacy struct virtio_net_hdr, which the device writes
 * as zeros on receive and ignores on transmit, and the device delivers
 * every frame the port gives it (no receive filter).
 *
 *   transmit  the guest's notify of queue 1, on its vCPU thread: every
 *             chain made available (at most a queue's worth per notify)
 *             is copied out, its header dropped, and the frame given to
 *             the port; then the used ring and one interrupt.
 *   receive   vnet_poll, on the vCPU thread of the VM that owns the
 *             device (the port only queues frames, from whatever thread
 *             sent them): while the port has a frame and the guest a
 *             buffer, the frame goes into the buffer behind a zero header.
 *
 * Bad input. A chain that breaks the ring's rules (vmm/dev/virtio.h), a
 * device-writable buffer on the transmit queue or a device-readable one
 * on the receive queue: the queue is refused and NEEDS_RESET set. A
 * transmitted frame shorter than VDEV_FRAME_MIN or longer than
 * VDEV_FRAME_MAX, or whose bytes lie outside guest RAM: counted
 * (tx_errors) and dropped, the chain completed. A receive buffer too small
 * for the frame waiting, or outside guest RAM: the frame is counted
 * (rx_dropped) and dropped, the buffer completed with length 0.
 * Source: OASIS virtio v1.2 §5.1 (network device), §5.1.6 (operation),
 * §5.1.6.1 (the legacy header), §4.1.4.10 (legacy interface).
 *
 * Trust: chains, headers and frames are guest memory reached through the
 * shared ring code (vmm/dev/virtio.c) into the device's own buffer; a
 * frame's length is checked before it is copied.
 */
#ifndef HV86_VMM_DEV_VNET_H
#define HV86_VMM_DEV_VNET_H
#include <stdbool.h>
#include <stdint.h>
#include "vmm/dev/virtio.h"

#define VNET_HDR_BYTES  10u   /* struct virtio_net_hdr without MRG_RXBUF (§5.1.6.1 legacy) */
#define VNET_BAR_BYTES  0x20  /* legacy registers + MAC + status, a power of two */
#define VNET_RXQ        0
#define VNET_TXQ        1
#define VNET_MAC_BYTES  6

/* What the device did, for `vm info`. */
struct vnet_stats {
    uint64_t rx_frames, rx_bytes, rx_dropped;   /* to the guest; dropped: its buffer too small or outside RAM */
    uint64_t tx_frames, tx_bytes, tx_errors;    /* from the guest; errors: runt, oversize, outside RAM */
};

struct vnet {
    struct virtio_pci vp;
    struct vdev_net port;
    uint8_t mac[VNET_MAC_BYTES];
    struct vnet_stats st;
    volatile bool rx_stalled;   /* a frame waited and the guest had no buffer: wait for its notify */
    bool link_up;               /* port.link told true */
    struct virtq_chain chain;   /* the chain being served */
    uint8_t buf[VNET_HDR_BYTES + VDEV_FRAME_MAX];
};

/*
 * vnet_init - a virtio-net function at devfn, BAR0 (VNET_BAR_BYTES) at
 * io_base, INTx on irq through line, guest RAM through mem, address mac,
 * frames to and from port (copied). Then vnet_attach and vnet_reset.
 * Allocates nothing; cannot fail.
 */
void vnet_init(struct vnet *n, uint8_t devfn, uint16_t io_base, uint8_t irq, struct vdev_irq line,
               struct vdev_mem mem, const uint8_t mac[VNET_MAC_BYTES], const struct vdev_net *port);
/* Put the function on pci and its BAR0 on bus: 0 or vpci_add's /
 * iobus_register's error. */
int vnet_attach(struct vnet *n, struct vpci *pci, struct iobus *bus);
/* Power-on state (virtio_pci_reset); the port is told the link is down. */
void vnet_reset(struct vnet *n);
/*
 * vnet_poll - move frames waiting at the port into the guest's receive
 * buffers, at most VIRTIO_QUEUE_SIZE per call (bounded work), then raise
 * the interrupt if any buffer was used. On the owning VM's vCPU thread
 * only (it writes guest RAM through mem). §5.1.6.3, §5.1.6.4.
 */
void vnet_poll(struct vnet *n);
/* vnet_rx_ready - whether vnet_poll has something to do now: a frame
 * waits and the guest's driver is up with buffers (as far as the device
 * knows: after a poll found none, not until the guest notifies queue 0).
 * Lock-free; any thread or interrupt handler. */
bool vnet_rx_ready(const struct vnet *n);

#endif
