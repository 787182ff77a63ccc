/*
 * Intel 82540EM gigabit Ethernet controller ("e1000"; QEMU's default NIC,
 * Bochs' `e1000:`), driven by hv86 itself as the uplink of a virtual
 * switch (docs/net.md).
 *
 *   drivers/e1000_ring.c  the descriptor rings: set up, take received
 *                         frames, post and reclaim transmits (no kernel
 *                         services: unit-tested on the host)
 *   drivers/e1000.c       PCI discovery, registers through BAR0 (MMIO),
 *                         reset, the station address, interrupts, link
 *                         status, the NIC's thread and the switch port
 *
 * One thread per NIC ("e1000") moves frames both ways: received frames from
 * the receive ring into the switch (vswitch_port_send), frames the switch
 * queued for the uplink port into the transmit ring (vswitch_port_recv).
 * The interrupt handler only reads ICR (which deasserts the PCI line) and
 * wakes the thread; so does the switch's kick. The thread works in turns of
 * at most E1000_BUDGET frames each way, so neither direction starves the
 * other and interrupts stay off for a bounded time.
 *
 * Trust: the wire is hostile. A received descriptor's length is checked
 * against the buffer and VSW_FRAME_MIN/MAX before the switch sees it; a
 * frame spread over several descriptors (no EOP), one with a receive error
 * or of bad length is counted and its buffers given back.
 *
 * Sources: Intel PCI/PCI-X Family of Gigabit Ethernet Controllers Software
 * Developer's Manual (8254x, rev. 4.0): §3.2 receive (§3.2.3 descriptor
 * format), §3.3 transmit (§3.3.3 legacy descriptor), §5.6 EEPROM map, §13
 * registers (§13.4 general and ring registers, §13.7 statistics), §14
 * initialisation (§14.4 receive, §14.5 transmit).
 */
#ifndef HV86_DRIVERS_E1000_H
#define HV86_DRIVERS_E1000_H
#include <stdbool.h>
#include <stdint.h>
#include "kernel/spinlock.h"

#define E1000_VENDOR_INTEL 0x8086
#define E1000_DEV_82540EM  0x100E

/* Registers (§13.4, §13.7): byte offsets in BAR0. */
#define E1000_CTRL   0x0000 /* device control */
#define E1000_STATUS 0x0008 /* device status */
#define E1000_EERD   0x0014 /* EEPROM read */
#define E1000_ICR    0x00C0 /* interrupt cause read (cleared by reading) */
#define E1000_IMS    0x00D0 /* interrupt mask set */
#define E1000_IMC    0x00D8 /* interrupt mask clear */
#define E1000_RCTL   0x0100 /* receive control */
#define E1000_TCTL   0x0400 /* transmit control */
#define E1000_TIPG   0x0410 /* transmit inter-packet gap */
#define E1000_RDBAL  0x2800 /* receive ring base, low 32 bits */
#define E1000_RDBAH  0x2804
#define E1000_RDLEN  0x2808 /* receive ring bytes (multiple of 128) */
#define E1000_RDH    0x2810 /* receive head (the NIC's) */
#define E1000_RDT    0x2818 /* receive tail (ours: one past the last free descriptor) */
#define E1000_TDBAL  0x3800
#define E1000_TDBAH  0x3804
#define E1000_TDLEN  0x3808
#define E1000_TDH    0x3810
#define E1000_TDT    0x3818
#define E1000_CRCERRS 0x4000 /* statistics, cleared by reading (§13.7) */
#define E1000_MPC    0x4010 /* missed packets: no room in the NIC's FIFO */
#define E1000_RNBC   0x40A0 /* receive no buffers: the ring was empty */
#define E1000_RUC    0x40A4 /* receive undersize */
#define E1000_ROC    0x40AC /* receive oversize */
#define E1000_MTA    0x5200 /* multicast table array, 128 words */
#define E1000_MTA_WORDS 128
#define E1000_RAL0   0x5400 /* receive address 0, low */
#define E1000_RAH0   0x5404 /* receive address 0, high (bit 31: valid) */
#define E1000_MMIO_PAGES 6  /* 4 KiB pages of BAR0 the registers above lie in */

#define E1000_CTRL_ASDE   (1u << 5)  /* auto speed detection */
#define E1000_CTRL_SLU    (1u << 6)  /* set link up */
#define E1000_CTRL_LRST   (1u << 3)  /* link reset */
#define E1000_CTRL_ILOS   (1u << 7)  /* invert loss of signal */
#define E1000_CTRL_RST    (1u << 26) /* device reset (self-clearing) */
#define E1000_CTRL_VME    (1u << 30) /* VLAN mode */
#define E1000_CTRL_PHY_RST (1u << 31)
#define E1000_STATUS_LU   (1u << 1)  /* link up */
#define E1000_STATUS_SPEED_SHIFT 6   /* bits 7:6: 10, 100, 1000 Mb/s */
#define E1000_EERD_START  (1u << 0)
#define E1000_EERD_DONE   (1u << 4)
#define E1000_EERD_ADDR_SHIFT 8
#define E1000_EERD_DATA_SHIFT 16
#define E1000_RAH_AV      (1u << 31)

#define E1000_ICR_TXDW    (1u << 0)  /* transmit descriptor written back */
#define E1000_ICR_LSC     (1u << 2)  /* link status change */
#define E1000_ICR_RXDMT0  (1u << 4)  /* receive ring below its threshold */
#define E1000_ICR_RXO     (1u << 6)  /* receiver overrun */
#define E1000_ICR_RXT0    (1u << 7)  /* receive timer: frames arrived */
#define E1000_INTS (E1000_ICR_TXDW | E1000_ICR_LSC | E1000_ICR_RXDMT0 | E1000_ICR_RXO | E1000_ICR_RXT0)

#define E1000_RCTL_EN     (1u << 1)
#define E1000_RCTL_UPE    (1u << 3)  /* unicast promiscuous */
#define E1000_RCTL_MPE    (1u << 4)  /* multicast promiscuous */
#define E1000_RCTL_BAM    (1u << 15) /* accept broadcast */
#define E1000_RCTL_SECRC  (1u << 26) /* strip the CRC */
/* BSIZE (bits 17:16) 00 with BSEX 0: 2048-byte buffers; LPE 0: frames up to 1522 bytes */
#define E1000_TCTL_EN     (1u << 1)
#define E1000_TCTL_PSP    (1u << 3)  /* pad short packets to 64 bytes */
#define E1000_TCTL_CT     (0x10u << 4)  /* collision threshold (§14.5) */
#define E1000_TCTL_COLD   (0x40u << 12) /* collision distance, full duplex (§14.5) */
#define E1000_TIPG_COPPER (10u | 8u << 10 | 6u << 20) /* IPGT, IPGR1, IPGR2 for copper (§13.4.34) */

/* Legacy receive descriptor (§3.2.3). The NIC writes length..special. */
struct e1000_rx_desc {
    uint64_t addr;
    uint16_t length;
    uint16_t csum;
    uint8_t status;
    uint8_t errors;
    uint16_t special;
} __attribute__((packed));
#define E1000_RXD_DD  0x01 /* descriptor done */
#define E1000_RXD_EOP 0x02 /* end of packet */

/* Legacy transmit descriptor (§3.3.3). The NIC writes status. */
struct e1000_tx_desc {
    uint64_t addr;
    uint16_t length;
    uint8_t cso;
    uint8_t cmd;
    uint8_t status;
    uint8_t css;
    uint16_t special;
} __attribute__((packed));
#define E1000_TXD_EOP  0x01 /* end of packet */
#define E1000_TXD_IFCS 0x02 /* insert the FCS */
#define E1000_TXD_RS   0x08 /* report status (DD) */
#define E1000_TXD_DD   0x01

#define E1000_RX_DESCS 64   /* ring entries (RDLEN a multiple of 128 bytes) */
#define E1000_TX_DESCS 64
#define E1000_BUF_BYTES 2048 /* per descriptor (RCTL.BSIZE 2048) */
#define E1000_BUDGET   32   /* frames each way per turn of the thread */
#define E1000_NAME_MAX 8

/* Counters (`net`). The NIC's own (mpc..roc) are accumulated from its
 * clear-on-read registers. */
struct e1000_stats {
    uint64_t rx_frames, rx_bytes;  /* good frames handed to the switch */
    uint64_t rx_runt, rx_oversize; /* shorter than 14 bytes; longer than 1518 or over several buffers */
    uint64_t rx_errors;            /* the descriptor's error bits were set */
    uint64_t rx_unbridged;         /* good frames the switch took nowhere (no port up or room) */
    uint64_t tx_frames, tx_bytes;  /* frames posted to the transmit ring */
    uint64_t tx_bad;               /* frames from the switch of bad length (not sent) */
    uint64_t irqs;
    uint64_t mpc, rnbc, crcerrs, ruc, roc;
};

struct vsw_port;
struct vswitch;

struct e1000 {
    char name[E1000_NAME_MAX];     /* "e1000", "e1000.1", ... */
    volatile uint8_t *page[E1000_MMIO_PAGES]; /* BAR0's first pages, mapped */
    uint8_t bus, dev, fn, irq;
    bool irq_on;                   /* the handler is installed: the thread sleeps instead of polling */
    uint8_t mac[6];
    /* rings: descriptors and 2 KiB buffers in frames of the direct map */
    struct e1000_rx_desc *rx;
    struct e1000_tx_desc *tx;
    uint8_t *rx_buf[E1000_RX_DESCS];
    uint8_t *tx_buf[E1000_TX_DESCS];
    unsigned rx_next;              /* next descriptor the NIC fills */
    bool rx_skip;                  /* inside a frame spread over several buffers: drop to its EOP */
    unsigned tx_tail, tx_clean;    /* next free descriptor; oldest not yet reclaimed */
    /* the thread and the switch port */
    spinlock_t lock;               /* port, rings, counters (the thread, the console) */
    struct vsw_port *port;         /* NULL until `net create ... uplink=` */
    struct vswitch *sw;
    uint32_t tid;
    volatile uint32_t events;      /* interrupts and kicks since boot */
    bool link;                     /* STATUS.LU as last seen */
    unsigned speed;                /* Mb/s */
    struct e1000_stats st;
};

/* ---- drivers/e1000_ring.c: rings (no kernel services) */

/* e1000_reg_read/write - 32-bit register reg (offset in BAR0, below
 * E1000_MMIO_PAGES pages) through e->page. */
uint32_t e1000_reg_read(const struct e1000 *e, uint32_t reg);
void e1000_reg_write(struct e1000 *e, uint32_t reg, uint32_t v);
/*
 * e1000_rings_init - point every descriptor at its buffer (rx_pa[i],
 * tx_pa[i]: physical addresses of rx_buf[i], tx_buf[i]) and program the
 * ring registers (§14.4, §14.5): base rx_ring_pa / tx_ring_pa, lengths,
 * heads 0, receive tail E1000_RX_DESCS - 1 (every descriptor but one is the
 * NIC's: head == tail means empty), transmit tail 0. Enables neither
 * direction.
 */
void e1000_rings_init(struct e1000 *e, uint32_t rx_ring_pa, uint32_t tx_ring_pa, const uint32_t *rx_pa,
                      const uint32_t *tx_pa);
/*
 * e1000_rx_poll - take up to budget received descriptors (DD set) in ring
 * order: a good frame (EOP, no error bits, VSW_FRAME_MIN..VSW_FRAME_MAX
 * bytes) goes to deliver(ctx, frame, len), which returns 0 or a negative
 * error (rx_unbridged); the rest are counted (rx_runt, rx_oversize,
 * rx_errors) and dropped. Each descriptor is given back (RDT). Returns the
 * descriptors taken. Caller holds e->lock.
 */
unsigned e1000_rx_poll(struct e1000 *e, unsigned budget,
                       int (*deliver)(void *ctx, const uint8_t *frame, uint32_t len), void *ctx);
/* e1000_tx_reclaim - free the transmitted descriptors (DD); returns how many. */
unsigned e1000_tx_reclaim(struct e1000 *e);
/* e1000_tx_slot - the buffer (E1000_BUF_BYTES) of the next free transmit
 * descriptor, or NULL if the ring is full (one entry stays empty). */
uint8_t *e1000_tx_slot(struct e1000 *e);
/*
 * e1000_tx_post - hand the frame of len bytes (no FCS: the NIC adds it and
 * pads short frames) in e1000_tx_slot's buffer to the NIC (TDT). Returns 0,
 * E_INVAL (len outside VSW_FRAME_MIN..VSW_FRAME_MAX: tx_bad, not sent) or
 * E_NOSPC (no slot).
 */
int e1000_tx_post(struct e1000 *e, uint32_t len);

/* ---- drivers/e1000.c: the hardware, the thread, the switch */

/* e1000_init - find every 82540EM on the PCI list (pci_init first), reset
 * it, read its address, set up its rings, interrupt and thread; log one
 * line each. A NIC whose setup fails is logged and left alone. Init thread. */
void e1000_init(void);
/* e1000_find - the NIC named name ("e1000" is the first), or NULL. */
struct e1000 *e1000_find(const char *name);
/* e1000_count - NICs found; e1000_at(i) the i-th (or NULL). */
unsigned e1000_count(void);
struct e1000 *e1000_at(unsigned i);
/*
 * e1000_attach - make e the uplink port of sw: a port named after the NIC,
 * receive on (promiscuous: every unicast and multicast frame, broadcast),
 * up while the link is. Returns 0, E_BUSY (e is already some switch's
 * uplink) or the error of vswitch_port_add. Console thread.
 */
int e1000_attach(struct e1000 *e, struct vswitch *sw);
/* e1000_detach - receive off, the port removed. After it returns the
 * thread no longer touches the switch. Console thread. */
void e1000_detach(struct e1000 *e);
/* e1000_stats - a copy of e's counters, the NIC's own brought up to date. */
void e1000_stats(struct e1000 *e, struct e1000_stats *st);

#endif
