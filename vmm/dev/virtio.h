/*
 * Virtio over PCI, legacy (transitional) interface, and split virtqueues:
 * the transport every virtio device model of vmm/dev/ shares (virtio-blk
 * now, virtio-net next).
 *
 * The device is a PCI function (vendor 1AF4, revision 0) whose I/O BAR0
 * holds the legacy register block, then the device's own configuration:
 *
 *   0x00 u32 device features   0x0C u16 queue size     0x12 u8 device status
 *   0x04 u32 driver features   0x0E u16 queue select   0x13 u8 ISR (read clears)
 *   0x08 u32 queue PFN         0x10 u16 queue notify   0x14 ... device config
 *
 * A queue lives at PFN * 4096: descriptor table (16 bytes each), available
 * ring right after it, used ring at the next 4096-byte boundary. Its
 * interrupt is INTx on the Interrupt Line firmware would have programmed:
 * the line is high while ISR bit 0 or 1 is set and drops when the driver
 * reads ISR.
 * Sources: OASIS virtio v1.2 §2.7 (split virtqueues), §4.1.4.10 and §4.1.5
 * (legacy PCI interface), §2.1 (device status), §2.7.5 (descriptor chains).
 *
 * Trust: rings, descriptors and buffers are guest memory, read through
 * vdev_mem into local copies and checked before use: an index beyond the
 * queue, a chain longer than the queue or than VIRTQ_CHAIN_MAX, a readable
 * descriptor after a writable one, or a ring outside guest RAM make the
 * chain malformed. The device then stops using the queue and sets
 * DEVICE_NEEDS_RESET (§2.1.2); nothing the guest writes is ever an index
 * into monitor memory.
 */
#ifndef HV86_VMM_DEV_VIRTIO_H
#define HV86_VMM_DEV_VIRTIO_H
#include <stdbool.h>
#include <stdint.h>
#include "vmm/dev/iobus.h"
#include "vmm/dev/vdev.h"
#include "vmm/dev/vpci.h"

#define VIRTIO_VENDOR        0x1AF4
#define VIRTIO_QUEUE_SIZE    128   /* entries of every queue we offer (a power of two) */
#define VIRTIO_MAX_QUEUES    2
#define VIRTQ_CHAIN_MAX      (VIRTIO_QUEUE_SIZE + 2) /* descriptors one request may use */
#define VIRTIO_LEGACY_CONFIG 0x14  /* device config offset in BAR0 without MSI-X */

/* Device status bits (§2.1). */
#define VIRTIO_STATUS_ACK         0x01
#define VIRTIO_STATUS_DRIVER      0x02
#define VIRTIO_STATUS_DRIVER_OK   0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED      0x80

/* One split virtqueue as the device tracks it. */
struct virtq {
    uint32_t pfn;        /* guest's queue address / 4096; 0 = not in use */
    uint16_t last_avail; /* next available-ring index to take */
    uint16_t used_idx;   /* used->idx as the device last wrote it */
    bool broken;         /* a malformed chain was seen: ignored until reset */
};

/* One buffer of a descriptor chain: guest physical, device-writable or not. */
struct virtq_seg {
    uint32_t gpa;
    uint32_t len;
    bool write;
};

/* A descriptor chain: segments in order, readable ones first (§2.7.4.2). */
struct virtq_chain {
    uint16_t head;
    unsigned n;
    uint64_t readable, writable; /* bytes of each kind */
    struct virtq_seg seg[VIRTQ_CHAIN_MAX];
};

/*
 * virtq_pop - the next chain the driver made available in q (size
 * VIRTIO_QUEUE_SIZE), into *c. Returns 1 (a chain), 0 (none available),
 * E_INVAL (malformed: index out of range, loop or chain too long, readable
 * after writable, the available index more than the queue size ahead,
 * indirect descriptors, which we do not offer) or E_RANGE (ring outside
 * guest RAM). §2.7.6 (available ring), §2.7.5 (descriptor table).
 */
int virtq_pop(struct virtq *q, const struct vdev_mem *m, struct virtq_chain *c);

/*
 * virtq_push - hand chain head back through the used ring, with len bytes
 * written into its device-writable buffers (§2.7.8). Returns 0 or E_RANGE.
 */
int virtq_push(struct virtq *q, const struct vdev_mem *m, uint16_t head, uint32_t len);

/*
 * virtq_copy - copy len bytes between buf and the chain's readable
 * (write = false: into buf) or writable (write = true: from buf) bytes,
 * starting off bytes into that kind. Returns 0, E_RANGE (guest memory) or
 * E_INVAL (the chain holds fewer bytes of that kind).
 */
int virtq_copy(const struct virtq_chain *c, const struct vdev_mem *m, bool write, uint64_t off, void *buf,
               uint32_t len);

struct virtio_pci;

/* What a device model plugs into the transport. */
struct virtio_ops {
    uint32_t (*cfg_read)(void *dev, unsigned off, unsigned size);          /* off from 0x14 */
    void (*cfg_write)(void *dev, unsigned off, unsigned size, uint32_t v);
    void (*notify)(void *dev, unsigned queue);                             /* the driver kicked it */
    void (*reset)(void *dev);
    void (*status)(void *dev, uint8_t status); /* after a nonzero status write; may be NULL */
};

struct virtio_pci {
    struct vpci_func fn;
    uint16_t io_base;        /* BAR0 as firmware programs it */
    uint32_t bar_size;       /* bytes, a power of two */
    uint8_t irq;             /* Interrupt Line */
    uint16_t device_id, subsys_id;
    uint8_t class_code, subclass;
    uint32_t features;       /* offered */
    uint32_t driver_features;
    uint16_t queue_sel;
    uint8_t status, isr;
    unsigned nqueues;
    struct virtq q[VIRTIO_MAX_QUEUES];
    struct vdev_irq line;
    struct vdev_mem mem;
    const struct virtio_ops *ops;
    void *dev;
    uint32_t bad_chains;     /* malformed chains seen (statistics) */
    struct vpci_io_decode bar0; /* where BAR0 decodes now */
    bool line_level;         /* the INTx line as last driven */
};

/*
 * virtio_pci_init - a legacy virtio PCI function at devfn on bus 0: IDs,
 * class, nqueues queues of VIRTIO_QUEUE_SIZE, BAR0 of bar_size bytes
 * (a power of two) at io_base, INTx pin A on Interrupt Line irq, features
 * offered. ops/dev are the device model's. Call virtio_pci_reset next.
 */
void virtio_pci_init(struct virtio_pci *v, uint8_t devfn, uint16_t device_id, uint16_t subsys_id,
                     uint8_t class_code, uint8_t subclass, uint16_t io_base, uint32_t bar_size, uint8_t irq,
                     unsigned nqueues, uint32_t features, struct vdev_irq line, struct vdev_mem mem,
                     const struct virtio_ops *ops, void *dev);

/* Put the function on pci and its BAR0 on bus. Returns 0 or an error of
 * vpci_add / iobus_register. */
int virtio_pci_attach(struct virtio_pci *v, struct vpci *pci, struct iobus *bus);

/* Power-on state: configuration space as firmware leaves it (BAR0, I/O
 * decode on, Interrupt Line), device status 0, queues unset, line low;
 * the device model's reset is called too. */
void virtio_pci_reset(struct virtio_pci *v);

/* After used buffers were added to queue qi: raise the used-buffer
 * interrupt (ISR bit 0), unless the driver set VIRTQ_AVAIL_F_NO_INTERRUPT
 * in that queue's available ring (virtio v1.2 §2.7.7.2 without EVENT_IDX:
 * flags 1, the device SHOULD NOT notify; 0, it MUST). */
void virtio_interrupt(struct virtio_pci *v, unsigned qi);

/* The driver broke queue q's rules: stop using it, set NEEDS_RESET and
 * raise the configuration-change interrupt (ISR bit 1), §2.1.2. */
void virtio_queue_broken(struct virtio_pci *v, unsigned q);

#endif
