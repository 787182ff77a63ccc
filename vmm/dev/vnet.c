/*
 * virtio-net (vmm/dev/vnet.h): configuration space, transmit on the
 * guest's notify, receive from the port on the owner's poll.
 * Trust: see vnet.h; a frame's length is checked against VDEV_FRAME_MIN
 * and VDEV_FRAME_MAX before a byte of it is copied.
 * Source: OASIS virtio v1.2 §5.1.
 */
#include "kernel/kernel.h"
#include "vmm/dev/vnet.h"

#define VIRTIO_ID_NET    1      /* subsystem ID of a legacy network device (§5.1.1) */
#define DEVICE_ID_NET    0x1000 /* transitional PCI device ID (§4.1.2.1) */
#define CLASS_NETWORK    0x02
#define SUBCLASS_ETHER   0x00

/* Feature bits and the status field (§5.1.3, §5.1.4). */
#define VIRTIO_NET_F_MAC    (1u << 5)
#define VIRTIO_NET_F_STATUS (1u << 16)
#define VIRTIO_NET_S_LINK_UP 1u

/* struct virtio_net_config (§5.1.4) as far as the features offered go:
 * mac[6], le16 status. Later fields read as 0; writes are ignored (a
 * legacy driver may write mac, but the switch learns the address the
 * guest really sends from). */
static uint32_t cfg_read(void *dev, unsigned off, unsigned size)
{
    struct vnet *n = dev;
    uint8_t cfg[8] = { 0 };
    memcpy(cfg, n->mac, VNET_MAC_BYTES);
    cfg[6] = VIRTIO_NET_S_LINK_UP;
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint32_t)(off + i < sizeof(cfg) ? cfg[off + i] : 0) << (8 * i);
    return v;
}

static void cfg_write(void *dev, unsigned off, unsigned size, uint32_t v) { }

static void set_link(struct vnet *n, bool up)
{
    if (n->link_up != up && n->port.link)
        n->port.link(n->port.opaque, up);
    n->link_up = up;
}

static void broken(struct vnet *n, unsigned qi)
{
    virtio_queue_broken(&n->vp, qi);
    set_link(n, false); /* the switch stops queueing frames nobody will take */
}

/* One transmitted chain: header and frame, readable only. */
static void tx_one(struct vnet *n, const struct virtq_chain *c)
{
    uint64_t len = c->readable;
    if (len < VNET_HDR_BYTES + VDEV_FRAME_MIN || len > VNET_HDR_BYTES + VDEV_FRAME_MAX ||
        virtq_copy(c, &n->vp.mem, false, 0, n->buf, (uint32_t)len)) {
        n->st.tx_errors++;
        return;
    }
    uint32_t frame = (uint32_t)len - VNET_HDR_BYTES;
    n->st.tx_frames++;
    n->st.tx_bytes += frame;
    n->port.send(n->port.opaque, n->buf + VNET_HDR_BYTES, frame); /* a drop is the port's to count */
}

/* The guest kicked the transmit queue: send every chain, at most a
 * queue's worth per kick (one exit does bounded work), then interrupt. */
static void tx_notify(struct vnet *n)
{
    struct virtio_pci *v = &n->vp;
    bool pushed = false;
    for (unsigned i = 0; i < VIRTIO_QUEUE_SIZE; i++) {
        int rc = virtq_pop(&v->q[VNET_TXQ], &v->mem, &n->chain);
        if (rc == 0)
            break;
        if (rc < 0 || n->chain.writable) { /* malformed, or a buffer for the device to fill (§5.1.6.2) */
            broken(n, VNET_TXQ);
            break;
        }
        tx_one(n, &n->chain);
        if (virtq_push(&v->q[VNET_TXQ], &v->mem, n->chain.head, 0)) {
            broken(n, VNET_TXQ);
            break;
        }
        pushed = true;
    }
    if (pushed)
        virtio_interrupt(v, VNET_TXQ);
}

static void notify(void *dev, unsigned qi)
{
    struct vnet *n = dev;
    if (qi == VNET_TXQ)
        tx_notify(n);
    else
        n->rx_stalled = false; /* new receive buffers: vnet_poll tries again */
}

/* One received frame into chain c: the bytes written (0 if dropped). */
static uint32_t rx_one(struct vnet *n, const struct virtq_chain *c)
{
    uint32_t len = n->port.recv(n->port.opaque, n->buf + VNET_HDR_BYTES, VDEV_FRAME_MAX);
    if (!len)
        return 0;
    memset(n->buf, 0, VNET_HDR_BYTES); /* no flags, GSO_NONE (§5.1.6.4) */
    len += VNET_HDR_BYTES;
    if (c->writable < len || virtq_copy(c, &n->vp.mem, true, 0, n->buf, len)) {
        n->st.rx_dropped++;
        return 0;
    }
    n->st.rx_frames++;
    n->st.rx_bytes += len - VNET_HDR_BYTES;
    return len;
}

void vnet_poll(struct vnet *n)
{
    struct virtio_pci *v = &n->vp;
    struct virtq *q = &v->q[VNET_RXQ];
    bool pushed = false;
    if (!n->link_up || !q->pfn || q->broken)
        return;
    for (unsigned i = 0; i < VIRTIO_QUEUE_SIZE && n->port.pending(n->port.opaque); i++) {
        int rc = virtq_pop(q, &v->mem, &n->chain);
        if (rc == 0) {
            n->rx_stalled = true;
            break;
        }
        if (rc < 0 || n->chain.readable) { /* malformed, or a buffer for the device to read (§5.1.6.3) */
            broken(n, VNET_RXQ);
            break;
        }
        if (virtq_push(q, &v->mem, n->chain.head, rx_one(n, &n->chain))) {
            broken(n, VNET_RXQ);
            break;
        }
        pushed = true;
    }
    if (pushed)
        virtio_interrupt(v, VNET_RXQ);
}

bool vnet_rx_ready(const struct vnet *n)
{
    const struct virtq *q = &n->vp.q[VNET_RXQ];
    return n->link_up && !n->rx_stalled && q->pfn && !q->broken && n->port.pending(n->port.opaque);
}

static void dev_reset(void *dev)
{
    struct vnet *n = dev;
    n->rx_stalled = false;
    set_link(n, false);
}

/* DRIVER_OK: the guest is ready for frames (§3.1.1). */
static void dev_status(void *dev, uint8_t status)
{
    struct vnet *n = dev;
    set_link(n, (status & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_NEEDS_RESET));
}

static const struct virtio_ops vnet_ops = { cfg_read, cfg_write, notify, dev_reset, dev_status };

void vnet_init(struct vnet *n, uint8_t devfn, uint16_t io_base, uint8_t irq, struct vdev_irq line,
               struct vdev_mem mem, const uint8_t mac[VNET_MAC_BYTES], const struct vdev_net *port)
{
    memcpy(n->mac, mac, VNET_MAC_BYTES);
    n->port = *port;
    n->link_up = false;
    memset(&n->st, 0, sizeof(n->st));
    virtio_pci_init(&n->vp, devfn, DEVICE_ID_NET, VIRTIO_ID_NET, CLASS_NETWORK, SUBCLASS_ETHER, io_base,
                    VNET_BAR_BYTES, irq, 2, VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS, line, mem, &vnet_ops, n);
}

int vnet_attach(struct vnet *n, struct vpci *pci, struct iobus *bus)
{
    return virtio_pci_attach(&n->vp, pci, bus);
}

void vnet_reset(struct vnet *n)
{
    n->link_up = true; /* forces the port's link down in dev_reset */
    virtio_pci_reset(&n->vp);
}
