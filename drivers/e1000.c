/*
 * Intel 82540EM driver: the hardware, the thread, the switch port
 * (contract and sources: drivers/e1000.h; the rings: drivers/e1000_ring.c).
 *
 *   discovery  e1000_init: each 8086:100E function on the PCI list gets
 *              memory decoding and bus mastering, BAR0's register pages
 *              mapped (kmap), a reset, its station address (RAL0/RAH0,
 *              else the EEPROM), rings and buffers in frames of the direct
 *              map, its interrupt line and a thread
 *   thread     e1000_thread: turns of e1000_service (receive into the
 *              switch, transmit from it, reclaim, link) while there is
 *              work; else sleeps until an interrupt or a kick (thread_wake)
 *              or, without an interrupt line, for one tick (polling)
 *   switch     e1000_attach/detach: the uplink port (`net create NAME
 *              uplink=e1000`, `net destroy NAME`)
 *
 * Locking: e->lock (interrupts off) around the port pointer, the rings and
 * the counters; the thread holds it for one turn (at most E1000_BUDGET
 * frames each way). Lock order: e->lock, then the switch's. The interrupt
 * handler and the switch's kick take no lock: they read ICR / bump events
 * and wake the thread.
 *
 * Trust: the registers and the DMA'd frames are the NIC's (and the wire's):
 * frames are checked in e1000_ring.c; registers are only compared, never
 * used as an index.
 */
#include "drivers/e1000.h"
#include "drivers/pci.h"
#include "kernel/irq.h"
#include "kernel/kernel.h"
#include "kernel/layout.h"
#include "kernel/paging.h"
#include "kernel/pmm.h"
#include "kernel/sched.h"
#include "kernel/x86.h"
#include "net/vswitch.h"

#define E1000_MAX        2      /* NICs driven */
#define E1000_RESET_SPINS 100000 /* reads of CTRL while RST clears (~1 us each) */
#define E1000_EERD_SPINS 100000
#define E1000_IDLE_TICKS 20     /* sleep with nothing to do and an interrupt line (a safety net) */
#define E1000_POLL_TICKS 1      /* without one */
#define PCI_CMD_MEM      0x0002
#define PCI_CMD_MASTER   0x0004
#define PCI_BAR_IO       0x1
#define PCI_BAR_TYPE_64  0x4
#define PCI_BAR_MEM_MASK 0xFFFFFFF0u
#define EEPROM_MAC_WORDS 3      /* words 0-2: the Ethernet address (§5.6.1) */

static struct e1000 nics[E1000_MAX];
static unsigned nnics;

/* ---------------------------------------------------------------- hardware */

static bool e1000_reset(struct e1000 *e)
{
    e1000_reg_write(e, E1000_IMC, 0xFFFFFFFFu);
    e1000_reg_write(e, E1000_CTRL, e1000_reg_read(e, E1000_CTRL) | E1000_CTRL_RST);
    for (unsigned i = 0; i < E1000_RESET_SPINS; i++)
        if (!(e1000_reg_read(e, E1000_CTRL) & E1000_CTRL_RST)) {
            e1000_reg_write(e, E1000_IMC, 0xFFFFFFFFu); /* §14.3: masked again after the reset */
            (void)e1000_reg_read(e, E1000_ICR);
            return true;
        }
    return false;
}

static bool eeprom_word(struct e1000 *e, unsigned addr, uint16_t *w)
{
    e1000_reg_write(e, E1000_EERD, (addr << E1000_EERD_ADDR_SHIFT) | E1000_EERD_START);
    for (unsigned i = 0; i < E1000_EERD_SPINS; i++) {
        uint32_t v = e1000_reg_read(e, E1000_EERD);
        if (v & E1000_EERD_DONE) {
            *w = (uint16_t)(v >> E1000_EERD_DATA_SHIFT);
            return true;
        }
    }
    return false;
}

/* The station address: receive address 0 if the NIC loaded it (AV), else
 * EEPROM words 0-2 (§5.6.1), which are then written to RAL0/RAH0. */
static bool read_mac(struct e1000 *e)
{
    uint32_t lo = e1000_reg_read(e, E1000_RAL0), hi = e1000_reg_read(e, E1000_RAH0);
    if (!(hi & E1000_RAH_AV)) {
        uint16_t w[EEPROM_MAC_WORDS];
        for (unsigned i = 0; i < EEPROM_MAC_WORDS; i++)
            if (!eeprom_word(e, i, &w[i]))
                return false;
        lo = w[0] | (uint32_t)w[1] << 16;
        hi = w[2] | E1000_RAH_AV;
        e1000_reg_write(e, E1000_RAL0, lo);
        e1000_reg_write(e, E1000_RAH0, hi);
    }
    for (unsigned i = 0; i < 4; i++)
        e->mac[i] = (uint8_t)(lo >> (8 * i));
    e->mac[4] = (uint8_t)hi;
    e->mac[5] = (uint8_t)(hi >> 8);
    return true;
}

static void read_link(struct e1000 *e)
{
    static const unsigned speeds[4] = {10, 100, 1000, 1000};
    uint32_t st = e1000_reg_read(e, E1000_STATUS);
    e->link = st & E1000_STATUS_LU;
    e->speed = speeds[(st >> E1000_STATUS_SPEED_SHIFT) & 3];
}

/* Link up, no VLAN mode; receive filters: multicast table empty (MPE
 * promiscuity covers multicast); transmit on; receive on only when
 * attached (e1000_attach). §14.3-§14.5. */
static void e1000_setup(struct e1000 *e)
{
    uint32_t ctrl = e1000_reg_read(e, E1000_CTRL);
    ctrl &= ~(E1000_CTRL_LRST | E1000_CTRL_ILOS | E1000_CTRL_VME | E1000_CTRL_PHY_RST);
    e1000_reg_write(e, E1000_CTRL, ctrl | E1000_CTRL_SLU | E1000_CTRL_ASDE);
    for (unsigned i = 0; i < E1000_MTA_WORDS; i++)
        e1000_reg_write(e, E1000_MTA + 4 * i, 0);
    e1000_reg_write(e, E1000_RCTL, 0);
    e1000_reg_write(e, E1000_TIPG, E1000_TIPG_COPPER);
    e1000_reg_write(e, E1000_TCTL, E1000_TCTL_EN | E1000_TCTL_PSP | E1000_TCTL_CT | E1000_TCTL_COLD);
}

/* Descriptor rings (one frame: 64 x 16 bytes each) and 2 KiB buffers, two
 * a frame, all in the direct map (physical = linear - DIRECTMAP_BASE). */
static int alloc_rings(struct e1000 *e, uint32_t *ring_pa, uint32_t *rx_pa, uint32_t *tx_pa)
{
    enum { PER_FRAME = PAGE_SIZE / E1000_BUF_BYTES };
    uint32_t pa;
    if (frame_alloc(ZONE_DIRECT, 1, ring_pa))
        return E_NOMEM;
    e->rx = phys_to_virt(*ring_pa);
    e->tx = (struct e1000_tx_desc *)((uint8_t *)e->rx + PAGE_SIZE / 2);
    if (frame_alloc(ZONE_DIRECT, (E1000_RX_DESCS + E1000_TX_DESCS) / PER_FRAME, &pa))
        return E_NOMEM; /* the ring frame stays allocated: boot-time, and the NIC is then unused */
    for (unsigned i = 0; i < E1000_RX_DESCS; i++, pa += E1000_BUF_BYTES) {
        rx_pa[i] = pa;
        e->rx_buf[i] = phys_to_virt(pa);
    }
    for (unsigned i = 0; i < E1000_TX_DESCS; i++, pa += E1000_BUF_BYTES) {
        tx_pa[i] = pa;
        e->tx_buf[i] = phys_to_virt(pa);
    }
    return 0;
}

/* ---------------------------------------------------------------- thread */

static void e1000_irq(int irq, void *ctx)
{
    struct e1000 *e = ctx;
    uint32_t icr = e1000_reg_read(e, E1000_ICR); /* clears the causes and deasserts the line */
    if (!icr)
        return; /* another function's interrupt on a shared line */
    e->st.irqs++;
    e->events++;
    thread_wake(e->tid);
}

/* The switch queued a frame for the uplink (switch lock held, interrupts off). */
static void e1000_kick(void *opaque)
{
    struct e1000 *e = opaque;
    e->events++;
    thread_wake(e->tid);
}

static int deliver(void *ctx, const uint8_t *frame, uint32_t len)
{
    return vswitch_port_send(ctx, frame, len);
}

/* One turn: link, reclaim, receive, transmit, each bounded. Returns true
 * if a budget ran out (more may wait). */
static bool e1000_service(struct e1000 *e)
{
    unsigned rx = 0, tx = 0;
    uint32_t fl = spin_lock_irqsave(&e->lock);
    bool was = e->link;
    read_link(e);
    if (e->port && was != e->link)
        vswitch_port_link(e->port, e->link);
    e1000_tx_reclaim(e);
    if (e->port) {
        rx = e1000_rx_poll(e, E1000_BUDGET, deliver, e->port);
        for (uint8_t *buf; tx < E1000_BUDGET && (buf = e1000_tx_slot(e)); tx++) {
            uint32_t len = vswitch_port_recv(e->port, buf, E1000_BUF_BYTES);
            if (!len)
                break;
            e1000_tx_post(e, len);
        }
    }
    spin_unlock_irqrestore(&e->lock, fl);
    return rx == E1000_BUDGET || tx == E1000_BUDGET;
}

static void e1000_thread(void *arg)
{
    struct e1000 *e = arg;
    for (;;) {
        uint32_t seen = e->events;
        if (e1000_service(e)) {
            thread_yield();
            continue;
        }
        /* Interrupts off from the test to the sleep: an event between them
         * cannot be lost (thread_sleep switches away atomically). */
        uint32_t fl = read_eflags();
        cpu_cli();
        if (e->events == seen)
            thread_sleep(e->irq_on ? E1000_IDLE_TICKS : E1000_POLL_TICKS);
        write_eflags(fl);
    }
}

/* ---------------------------------------------------------------- discovery */

static int map_bar0(struct e1000 *e)
{
    uint32_t bar = pci_config_read32(e->bus, e->dev, e->fn, PCI_CFG_BAR0);
    if ((bar & PCI_BAR_IO) || !(bar & PCI_BAR_MEM_MASK))
        return E_NODEV;
    if ((bar & PCI_BAR_TYPE_64) && pci_config_read32(e->bus, e->dev, e->fn, PCI_CFG_BAR0 + 4))
        return E_RANGE; /* above 4 GiB: out of a 32-bit monitor's reach */
    for (unsigned i = 0; i < E1000_MMIO_PAGES; i++)
        if (!(e->page[i] = kmap((bar & PCI_BAR_MEM_MASK) + i * PAGE_SIZE)))
            return E_NOMEM;
    uint32_t cmd = pci_config_read32(e->bus, e->dev, e->fn, PCI_CFG_COMMAND);
    pci_config_write32(e->bus, e->dev, e->fn, PCI_CFG_COMMAND, (cmd & 0xFFFF) | PCI_CMD_MEM | PCI_CMD_MASTER);
    return 0;
}

static int e1000_probe(struct e1000 *e)
{
    uint32_t ring_pa, rx_pa[E1000_RX_DESCS], tx_pa[E1000_TX_DESCS];
    int rc = map_bar0(e);
    if (rc)
        return rc;
    if (!e1000_reset(e))
        return E_TIMEOUT;
    if (!read_mac(e))
        return E_TIMEOUT;
    if ((rc = alloc_rings(e, &ring_pa, rx_pa, tx_pa)))
        return rc;
    e1000_setup(e);
    e1000_rings_init(e, ring_pa, ring_pa + PAGE_SIZE / 2, rx_pa, tx_pa);
    read_link(e);
    int tid = thread_create("e1000", e1000_thread, e);
    if (tid < 0)
        return tid;
    e->tid = (uint32_t)tid;
    if (e->irq > 0 && e->irq < NR_IRQS && irq_register(e->irq, e1000_irq, e) == 0) {
        e->irq_on = true;
        e1000_reg_write(e, E1000_IMS, E1000_INTS);
    }
    return 0;
}

void e1000_init(void)
{
    for (int i = 0; i < pci_count() && nnics < E1000_MAX; i++) {
        const struct pci_func *f = pci_get(i);
        if (f->vendor != E1000_VENDOR_INTEL || f->device != E1000_DEV_82540EM)
            continue;
        struct e1000 *e = &nics[nnics];
        snprintf(e->name, sizeof(e->name), nnics ? "e1000.%u" : "e1000", nnics);
        e->bus = f->bus, e->dev = f->dev, e->fn = f->fn, e->irq = f->irq_line;
        e->lock = (spinlock_t)SPINLOCK_INIT("e1000");
        int rc = e1000_probe(e);
        if (rc) {
            log_warn("e1000: %02x:%02x.%x not usable (%s)", f->bus, f->dev, f->fn, err_name(rc));
            memset(e, 0, sizeof(*e));
            continue;
        }
        nnics++;
        log_info("e1000: %s at %02x:%02x.%x, %02x:%02x:%02x:%02x:%02x:%02x, irq %u%s, link %s", e->name, f->bus,
                 f->dev, f->fn, e->mac[0], e->mac[1], e->mac[2], e->mac[3], e->mac[4], e->mac[5], e->irq,
                 e->irq_on ? "" : " (not usable: polling)", e->link ? "up" : "down");
    }
    if (!nnics)
        log_info("e1000: no 82540EM found (no uplink)");
}

unsigned e1000_count(void) { return nnics; }

struct e1000 *e1000_at(unsigned i) { return i < nnics ? &nics[i] : NULL; }

struct e1000 *e1000_find(const char *name)
{
    for (unsigned i = 0; i < nnics; i++)
        if (!strcmp(nics[i].name, name))
            return &nics[i];
    return NULL;
}

/* ---------------------------------------------------------------- switch */

int e1000_attach(struct e1000 *e, struct vswitch *sw)
{
    struct vsw_port *p;
    if (e->port)
        return E_BUSY;
    int rc = vswitch_port_add(sw, e->name, e->mac, e1000_kick, e, &p);
    if (rc)
        return rc;
    uint32_t fl = spin_lock_irqsave(&e->lock);
    e->port = p;
    e->sw = sw;
    read_link(e);
    vswitch_port_link(p, e->link);
    e1000_reg_write(e, E1000_RCTL,
                    E1000_RCTL_EN | E1000_RCTL_UPE | E1000_RCTL_MPE | E1000_RCTL_BAM | E1000_RCTL_SECRC);
    spin_unlock_irqrestore(&e->lock, fl);
    e->events++;
    thread_wake(e->tid);
    return 0;
}

void e1000_detach(struct e1000 *e)
{
    uint32_t fl = spin_lock_irqsave(&e->lock);
    struct vsw_port *p = e->port;
    e1000_reg_write(e, E1000_RCTL, 0);
    e->port = NULL;
    e->sw = NULL;
    spin_unlock_irqrestore(&e->lock, fl);
    if (p)
        vswitch_port_remove(p);
}

void e1000_stats(struct e1000 *e, struct e1000_stats *st)
{
    uint32_t fl = spin_lock_irqsave(&e->lock);
    e->st.mpc += e1000_reg_read(e, E1000_MPC);
    e->st.rnbc += e1000_reg_read(e, E1000_RNBC);
    e->st.crcerrs += e1000_reg_read(e, E1000_CRCERRS);
    e->st.ruc += e1000_reg_read(e, E1000_RUC);
    e->st.roc += e1000_reg_read(e, E1000_ROC);
    read_link(e);
    *st = e->st;
    spin_unlock_irqrestore(&e->lock, fl);
}
