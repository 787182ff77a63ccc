/*
 * Legacy ATA driver, bus-master DMA or PIO (contract and sources:
 * drivers/ata.h).
 *
 * Map of this file:
 *   channel lock   - a sleeping lock per channel (spinlock + wait queue):
 *                    one command at a time on a channel, since both drives
 *                    share its registers; waiters queue in FIFO order.
 *   waiting        - ata_wait() and ata_dma_wait() read the status registers
 *                    until a condition holds, with a deadline in timer ticks;
 *                    between reads, once the channel's interrupt is on
 *                    (ata_irq), the thread halts or lends the CPU until the
 *                    next interrupt (ata_idle), else it spins, then yields.
 *   probe          - ata_probe_channel(): floating-bus test, software reset,
 *                    then ata_identify() per drive; ATAPI is skipped.
 *   transfers      - ata_rw() splits a request into commands (LBA28 when it
 *                    fits, else LBA48): DMA through the channel's bounce
 *                    buffer, or insw/outsw per sector.
 *
 * Every register access of a command happens with the channel lock held.
 */
#include "drivers/ata.h"
#include "drivers/ata_prd.h"
#include "drivers/disk.h"
#include "drivers/pci.h"
#include "kernel/heap.h"
#include "kernel/irq.h"
#include "kernel/kernel.h"
#include "kernel/layout.h"
#include "kernel/pmm.h"
#include "kernel/sched.h"
#include "kernel/spinlock.h"
#include "kernel/x86.h"

#define ATA_SPINS_PER_MS   1000u /* spin cap per ms if timer ticks stop (an inb is >= ~1 us on ISA) */
#define ATA_SPINS_BEFORE_YIELD 256u /* then give the CPU away between polls */
#define ATA_SELECT_DELAY_READS 4  /* 4 alternate-status reads >= 400 ns (§9.1) */
#define ATA_RESET_PULSE_US 5      /* SRST held >= 5 us (§9.2) */
#define ATA_RESET_SETTLE_US 2000  /* BSY may take 2 ms to appear after SRST */

struct ata_channel {
    uint16_t io, ctl;
    spinlock_t lock;
    struct wait_queue waiters;
    int busy;
    uint16_t bm;       /* bus-master registers (0: none, PIO only) */
    uint32_t *prd;     /* PRD table (one frame), physical prd_pa */
    uint32_t prd_pa;
    uint8_t *dma;      /* ATA_DMA_BYTES bounce buffer, physically contiguous at dma_pa */
    uint32_t dma_pa;
    int irq;                  /* the channel's ISA IRQ */
    bool irq_on;              /* ata_irq installed and nIEN clear: waits halt instead of polling */
    volatile uint32_t intr;   /* interrupts taken (ata_irq) */
    volatile uint32_t waiter; /* the thread asleep on the next interrupt, or 0 (thread_wait_interrupt) */
};

struct ata_drive {
    struct disk disk;
    struct ata_channel *chan;
    uint8_t drive;  /* 0 master, 1 slave */
    uint8_t lba48;  /* supports the 48-bit feature set */
    uint8_t dma;    /* bus-master DMA in use (IDENTIFY says DMA, the channel has a bus master) */
};

static struct ata_channel ata_channels[ATA_CHANNELS] = {
    {.io = ATA_PRIMARY_IO, .ctl = ATA_PRIMARY_CTL, .lock = SPINLOCK_INIT("ata0"), .waiters = WAIT_QUEUE_INIT,
     .irq = IRQ_ATA0},
    {.io = ATA_SECONDARY_IO, .ctl = ATA_SECONDARY_CTL, .lock = SPINLOCK_INIT("ata1"), .waiters = WAIT_QUEUE_INIT,
     .irq = IRQ_ATA1},
};

/* ---------------------------------------------------------------- channel lock */

static void chan_lock(struct ata_channel *c)
{
    uint32_t fl = spin_lock_irqsave(&c->lock);

    while (c->busy)
        wait_queue_sleep(&c->waiters, &c->lock, &fl);
    c->busy = 1;
    spin_unlock_irqrestore(&c->lock, fl);
}

static void chan_unlock(struct ata_channel *c)
{
    uint32_t fl = spin_lock_irqsave(&c->lock);

    c->busy = 0;
    wait_queue_wake_one(&c->waiters);
    spin_unlock_irqrestore(&c->lock, fl);
}

/* ---------------------------------------------------------------- registers */

static uint8_t ata_alt_status(const struct ata_channel *c) { return inb(c->ctl); }
static void ata_outb(const struct ata_channel *c, int reg, uint8_t v) { outb((uint16_t)(c->io + reg), v); }
static uint8_t ata_inb(const struct ata_channel *c, int reg) { return inb((uint16_t)(c->io + reg)); }

static void ata_delay_us(uint32_t us)
{
    while (us--)
        io_delay();
}

/* Select drive (with the high LBA28 nibble in dev_bits) and wait 400 ns. */
static void ata_select(const struct ata_channel *c, uint8_t drive, uint8_t dev_bits)
{
    ata_outb(c, ATA_REG_DEVICE, (uint8_t)(ATA_DEV_OBS | (drive ? ATA_DEV_SLAVE : 0) | dev_bits));
    for (int i = 0; i < ATA_SELECT_DELAY_READS; i++)
        (void)ata_alt_status(c);
}

/* Between two polls of a busy channel: with interrupts on, another thread
 * runs or the CPU halts until the next interrupt (the drive's or the
 * timer's) unless one came since seen; without, another thread runs. */
static void ata_idle(struct ata_channel *c, uint32_t seen)
{
    if (c->irq_on)
        thread_wait_interrupt(&c->intr, seen, &c->waiter);
    else
        thread_yield();
}

/*
 * The drive raised INTRQ (nIEN clear): acknowledge it at the bus master
 * (its Interrupt bit, write 1 to clear, keeping the drive-capable bits and
 * Error for the waiter) and at the drive (reading Status, ATA-6 §7.15),
 * and count it. Whoever holds the channel finds out what happened from the
 * registers; the count only ends its wait.
 */
static void ata_irq(int irq, void *ctx)
{
    struct ata_channel *c = ctx;
    if (c->bm) {
        uint8_t bs = inb((uint16_t)(c->bm + ATA_BM_STATUS));
        if (bs & ATA_BM_ST_IRQ)
            outb((uint16_t)(c->bm + ATA_BM_STATUS), (uint8_t)((bs & ATA_BM_ST_DRV_DMA) | ATA_BM_ST_IRQ));
    }
    (void)ata_inb(c, ATA_REG_STATUS);
    c->intr++;
    uint32_t w = c->waiter;
    if (w)
        thread_wake(w); /* its command's thread runs at the end of this interrupt */
}

/*
 * Poll until BSY is clear and (status & mask) == want, or ERR/DF is set.
 * Returns the status (>= 0), E_NODEV on a floating bus, E_TIMEOUT after
 * timeout_ms. may_yield: lend the CPU to other threads between polls.
 */
static int ata_wait(struct ata_channel *c, uint8_t mask, uint8_t want, uint32_t timeout_ms, int may_yield)
{
    uint64_t deadline = timer_ticks() + (uint64_t)timeout_ms * TIMER_HZ / 1000 + 1;
    uint32_t cap = timeout_ms * ATA_SPINS_PER_MS;

    for (uint32_t spins = 0;; spins++) {
        uint32_t seen = c->intr;
        uint8_t st = ata_alt_status(c);
        if (st == ATA_FLOATING_BUS)
            return E_NODEV;
        if (!(st & ATA_SR_BSY) && ((st & (ATA_SR_ERR | ATA_SR_DF)) || (st & mask) == want))
            return st;
        if (timer_ticks() > deadline || (spins >= cap && !c->irq_on))
            return E_TIMEOUT;
        if (may_yield && spins >= ATA_SPINS_BEFORE_YIELD)
            ata_idle(c, seen);
        else
            cpu_pause();
    }
}

/* ---------------------------------------------------------------- probe */

static int ata_is_atapi_signature(uint8_t mid, uint8_t hi)
{
    return (mid == ATA_SIG_ATAPI_MID && hi == ATA_SIG_ATAPI_HI) ||
           (mid == ATA_SIG_SATAPI_MID && hi == ATA_SIG_SATAPI_HI);
}

/*
 * Pulse SRST (both drives), leave nIEN set, and wait for device 0 to finish.
 * Device 0 is selected first: the firmware may have left an absent device 1
 * selected, whose status reads 0 and would end the wait at once (QEMU even
 * completes the reset later, asynchronously). Returns 0, E_NODEV, E_TIMEOUT.
 */
static int ata_reset_channel(struct ata_channel *c)
{
    int st;

    outb(c->ctl, ATA_DC_SRST | ATA_DC_NIEN);
    ata_delay_us(ATA_RESET_PULSE_US);
    outb(c->ctl, ATA_DC_NIEN);
    ata_delay_us(ATA_RESET_SETTLE_US);
    ata_select(c, 0, 0);
    st = ata_wait(c, 0, 0, ATA_RESET_TIMEOUT_MS, 0);
    if (c->irq_on)
        outb(c->ctl, 0); /* interrupts back on */
    return st < 0 ? st : 0;
}

/*
 * IDENTIFY DEVICE on drive of c into id (ATA_ID_WORDS words). Returns 0,
 * E_NODEV (nothing there, or not an ATA disk: why is logged when useful),
 * E_TIMEOUT, or E_IO.
 */
static int ata_identify(struct ata_channel *c, uint8_t drive, const char *name, uint16_t *id)
{
    int st;

    ata_select(c, drive, 0);
    st = ata_wait(c, 0, 0, ATA_IDENTIFY_TIMEOUT_MS, 0); /* registers are ignored while BSY */
    if (st < 0)
        return st;
    if (ata_is_atapi_signature(ata_inb(c, ATA_REG_LBA_MID), ata_inb(c, ATA_REG_LBA_HI))) {
        log_info("%s: ATAPI device, skipped", name);
        return E_NODEV;
    }
    ata_outb(c, ATA_REG_SECCOUNT, 0);
    ata_outb(c, ATA_REG_LBA_LO, 0);
    ata_outb(c, ATA_REG_LBA_MID, 0);
    ata_outb(c, ATA_REG_LBA_HI, 0);
    ata_outb(c, ATA_REG_COMMAND, ATA_CMD_IDENTIFY);
    if (ata_alt_status(c) == 0) {
        log_debug("%s: no drive", name);
        return E_NODEV;
    }
    st = ata_wait(c, ATA_SR_DRQ, ATA_SR_DRQ, ATA_IDENTIFY_TIMEOUT_MS, 0);
    if (st < 0)
        return st;
    if (ata_is_atapi_signature(ata_inb(c, ATA_REG_LBA_MID), ata_inb(c, ATA_REG_LBA_HI))) {
        log_info("%s: ATAPI device, skipped", name);
        return E_NODEV;
    }
    if (st & (ATA_SR_ERR | ATA_SR_DF))
        return E_IO;
    insw(c->io + ATA_REG_DATA, id, ATA_ID_WORDS);
    (void)ata_inb(c, ATA_REG_STATUS);
    return 0;
}

/* Model string: byte-swapped words, trailing blanks removed. */
static void ata_id_model(const uint16_t *id, char *out, size_t len)
{
    size_t n = 0;

    for (int w = 0; w < ATA_ID_MODEL_WORDS && n + 2 < len; w++) {
        out[n++] = (char)(id[ATA_ID_MODEL + w] >> 8);
        out[n++] = (char)(id[ATA_ID_MODEL + w] & 0xFF);
    }
    while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\0'))
        n--;
    out[n] = '\0';
}

static uint64_t ata_id_sectors(const uint16_t *id, int lba48)
{
    const uint16_t *w;

    if (!lba48) {
        w = id + ATA_ID_LBA28_SECTORS;
        return (uint32_t)w[0] | (uint32_t)w[1] << 16;
    }
    w = id + ATA_ID_LBA48_SECTORS;
    return (uint64_t)w[0] | (uint64_t)w[1] << 16 | (uint64_t)w[2] << 32 | (uint64_t)w[3] << 48;
}

/* A drive hv86 can use? NULL, or why not. */
static const char *ata_id_unusable(const uint16_t *id)
{
    uint16_t ss = id[ATA_ID_SECTOR_SIZE];
    uint32_t words = (uint32_t)id[ATA_ID_LOGICAL_SIZE] | (uint32_t)id[ATA_ID_LOGICAL_SIZE + 1] << 16;

    if (id[ATA_ID_CONFIG] & ATA_ID_CONFIG_NOT_ATA)
        return "not an ATA device";
    if (!(id[ATA_ID_CAPS] & ATA_ID_CAPS_LBA))
        return "no LBA support (CHS-only drives are not supported)";
    if ((ss & ATA_ID_SS_VALID_MASK) == ATA_ID_SS_VALID && (ss & ATA_ID_SS_LARGE) &&
        words != ATA_SECTOR_SIZE / 2)
        return "logical sector size is not 512 bytes";
    return NULL;
}

static int ata_disk_read(struct disk *d, uint64_t lba, uint32_t count, void *buf);
static int ata_disk_write(struct disk *d, uint64_t lba, uint32_t count, const void *buf, bool flush);
static int ata_disk_flush(struct disk *d);
static int ata_disk_rw_sg(struct disk *d, uint64_t lba, uint32_t count, const struct dma_seg *sg, unsigned n,
                          bool write, bool flush);

/* Build, and register, the disk at channel ch drive drv from its IDENTIFY data. */
static int ata_add_drive(int ch, uint8_t drv, const char *name, const uint16_t *id)
{
    const char *why = ata_id_unusable(id);
    struct ata_drive *a;

    if (why) {
        log_warn("%s: %s, skipped", name, why);
        return E_NODEV;
    }
    a = kzalloc(sizeof(*a));
    if (!a) {
        log_err("%s: out of memory, skipped", name);
        return E_NOMEM;
    }
    a->chan = &ata_channels[ch];
    a->drive = drv;
    a->lba48 = (id[ATA_ID_CMDSET2] & ATA_ID_CMDSET2_LBA48) != 0;
    a->dma = a->chan->bm && (id[ATA_ID_CAPS] & ATA_ID_CAPS_DMA);
    snprintf(a->disk.name, sizeof(a->disk.name), "%s", name);
    ata_id_model(id, a->disk.model, sizeof(a->disk.model));
    a->disk.sectors = ata_id_sectors(id, a->lba48);
    a->disk.sector_size = ATA_SECTOR_SIZE;
    a->disk.read = ata_disk_read;
    a->disk.write = ata_disk_write;
    a->disk.flush = ata_disk_flush;
    a->disk.rw_sg = ata_disk_rw_sg;
    a->disk.priv = a;
    log_info("%s: \"%s\", %llu sectors, LBA%d, %s", name, a->disk.model, (unsigned long long)a->disk.sectors,
             a->lba48 ? 48 : 28, a->dma ? "bus-master DMA" : "PIO");
    disk_register(&a->disk); /* a bad table is recorded in the disk, not fatal */
    return 0;
}

/* Probe both drives of channel ch; returns how many disks were registered. */
static int ata_probe_channel(int ch)
{
    struct ata_channel *c = &ata_channels[ch];
    uint16_t id[ATA_ID_WORDS];
    char name[DISK_NAME_MAX];
    int found = 0, r;

    if (ata_inb(c, ATA_REG_STATUS) == ATA_FLOATING_BUS) {
        log_info("ata: channel %d (0x%x): floating bus, no drives", ch, c->io);
        return 0;
    }
    chan_lock(c);
    r = ata_reset_channel(c);
    for (uint8_t drv = 0; r == 0 && drv < ATA_DRIVES_PER_CHANNEL; drv++) {
        snprintf(name, sizeof(name), "ata%d", ch * ATA_DRIVES_PER_CHANNEL + drv);
        int st = ata_identify(c, drv, name, id);
        if (st == E_TIMEOUT || st == E_IO)
            log_warn("%s: IDENTIFY failed (%s), skipped", name, err_name(st));
        else if (st == E_NODEV)
            log_debug("%s: nothing usable", name);
        if (st < 0)
            continue;
        chan_unlock(c); /* disk_register() reads the partition table through us */
        found += ata_add_drive(ch, drv, name, id) == 0;
        chan_lock(c);
    }
    chan_unlock(c);
    if (r < 0)
        log_warn("ata: channel %d (0x%x): reset failed (%s), no drives", ch, c->io, err_name(r));
    return found;
}

/*
 * The PCI IDE controller's bus master (class 01/01, BAR4: SFF-8038i), if
 * there is one: bus mastering and I/O decoding enabled, and per channel a
 * PRD table and a 64 KiB bounce buffer in physically contiguous frames of
 * the direct map. Without it (or without memory) the channels stay PIO.
 */
static void ata_dma_init(void)
{
    for (int i = 0; i < pci_count(); i++) {
        const struct pci_func *f = pci_get(i);
        if (f->class_code != 0x01 || f->subclass != 0x01)
            continue;
        uint32_t bar4 = pci_config_read32(f->bus, f->dev, f->fn, 0x20);
        if (!(bar4 & 1) || !(bar4 & 0xFFFC))
            return;
        uint32_t cmd = pci_config_read32(f->bus, f->dev, f->fn, 0x04);
        pci_config_write32(f->bus, f->dev, f->fn, 0x04, (cmd & 0xFFFF) | 0x0005); /* I/O, bus master */
        for (int ch = 0; ch < ATA_CHANNELS; ch++) {
            struct ata_channel *c = &ata_channels[ch];
            if (frame_alloc(ZONE_DIRECT, 1, &c->prd_pa) ||
                frame_alloc(ZONE_DIRECT, ATA_DMA_BYTES / PAGE_SIZE, &c->dma_pa)) {
                log_warn("ata: no memory for DMA buffers: PIO");
                return;
            }
            c->prd = phys_to_virt(c->prd_pa);
            c->dma = phys_to_virt(c->dma_pa);
            c->bm = (uint16_t)((bar4 & 0xFFFC) + 8 * ch);
        }
        log_info("ata: bus master at %x (%02x:%02x.%x)", bar4 & 0xFFFC, f->bus, f->dev, f->fn);
        return;
    }
}

void ata_init(void)
{
    int found = 0;

    ata_dma_init();
    for (int ch = 0; ch < ATA_CHANNELS; ch++) {
        struct ata_channel *c = &ata_channels[ch];
        int n = ata_probe_channel(ch);
        found += n;
        /* Interrupt completion for a channel with disks: waits halt until
         * INTRQ instead of polling (and lend the CPU to other threads). */
        if (n && irq_register(c->irq, ata_irq, c) == 0) {
            chan_lock(c);
            c->irq_on = true;
            outb(c->ctl, 0);
            chan_unlock(c);
        }
    }
    log_info("ata: %d disk(s)", found);
}

/* ---------------------------------------------------------------- transfers */

/* Load the task file for one command of count sectors at lba and issue it. */
static void ata_issue(const struct ata_drive *a, uint64_t lba, uint32_t count, int ext, uint8_t cmd)
{
    const struct ata_channel *c = a->chan;

    if (ext) {
        ata_select(c, a->drive, ATA_DEV_LBA);
        ata_outb(c, ATA_REG_SECCOUNT, (uint8_t)(count >> 8)); /* high bytes first (§6.2) */
        ata_outb(c, ATA_REG_LBA_LO, (uint8_t)(lba >> 24));
        ata_outb(c, ATA_REG_LBA_MID, (uint8_t)(lba >> 32));
        ata_outb(c, ATA_REG_LBA_HI, (uint8_t)(lba >> 40));
    } else {
        ata_select(c, a->drive, (uint8_t)(ATA_DEV_LBA | ((lba >> 24) & 0x0F)));
    }
    ata_outb(c, ATA_REG_SECCOUNT, (uint8_t)count); /* 256 / 65536 are written as 0 */
    ata_outb(c, ATA_REG_LBA_LO, (uint8_t)lba);
    ata_outb(c, ATA_REG_LBA_MID, (uint8_t)(lba >> 8));
    ata_outb(c, ATA_REG_LBA_HI, (uint8_t)(lba >> 16));
    ata_outb(c, ATA_REG_COMMAND, cmd);
}

/* Log a failed command; returns st if it is an error code, else E_IO. */
static int ata_fail(const struct ata_drive *a, const char *what, uint64_t lba, int st)
{
    if (st < 0) {
        log_warn("%s: %s at LBA %llu: %s", a->disk.name, what, (unsigned long long)lba, err_name(st));
        return st;
    }
    log_warn("%s: %s at LBA %llu: status 0x%02x error 0x%02x", a->disk.name, what, (unsigned long long)lba,
             (unsigned)st, ata_inb(a->chan, ATA_REG_ERROR));
    return E_IO;
}

/* Wait for the drive to settle with the need bits set and no error. */
static int ata_expect(const struct ata_drive *a, uint8_t need, const char *what, uint64_t lba)
{
    int st = ata_wait(a->chan, need, need, ATA_IO_TIMEOUT_MS, 1);

    if (st >= 0 && !(st & (ATA_SR_ERR | ATA_SR_DF)) && (st & need) == need)
        return 0;
    return ata_fail(a, what, lba, st);
}

/* FLUSH CACHE (EXT) to the selected drive, and its completion (§8.9,
 * §8.10); lba only names the request in a failure's log line. */
static int ata_flush_cache(const struct ata_drive *a, int ext, uint64_t lba)
{
    ata_outb(a->chan, ATA_REG_COMMAND, ext ? ATA_CMD_FLUSH_CACHE_EXT : ATA_CMD_FLUSH_CACHE);
    return ata_expect(a, 0, "flush", lba);
}

/* Write-back cache to the medium after a PIO write command. */
static int ata_flush(const struct ata_drive *a, int ext, uint64_t lba)
{
    int r = ata_expect(a, 0, "write", lba);

    return r < 0 ? r : ata_flush_cache(a, ext, lba);
}

/* One command of count sectors (count <= the command's limit); a write
 * ends with FLUSH CACHE when flush is set. */
static int ata_rw_command(struct ata_drive *a, uint64_t lba, uint32_t count, uint8_t *buf, int write, bool flush)
{
    static const uint8_t cmds[2][2] = {
        {ATA_CMD_READ_SECTORS, ATA_CMD_READ_SECTORS_EXT},
        {ATA_CMD_WRITE_SECTORS, ATA_CMD_WRITE_SECTORS_EXT},
    };
    int ext = lba + count > ATA_LBA28_LIMIT || count > ATA_LBA28_MAX_COUNT;
    uint16_t data = (uint16_t)(a->chan->io + ATA_REG_DATA);
    int r;

    r = ata_wait(a->chan, ATA_SR_DRQ, 0, ATA_IO_TIMEOUT_MS, 1); /* drives ignore registers while BSY/DRQ */
    if (r < 0)
        return ata_fail(a, write ? "write" : "read", lba, r);
    ata_issue(a, lba, count, ext, cmds[write][ext]);
    for (uint32_t i = 0; i < count; i++, buf += ATA_SECTOR_SIZE) {
        r = ata_expect(a, ATA_SR_DRQ, write ? "write" : "read", lba + i);
        if (r < 0)
            return r;
        if (write)
            outsw(data, buf, ATA_SECTOR_SIZE / 2);
        else
            insw(data, buf, ATA_SECTOR_SIZE / 2);
    }
    if (write && flush)
        return ata_flush(a, ext, lba);
    if (write)
        return ata_expect(a, 0, "write", lba);
    (void)ata_inb(a->chan, ATA_REG_STATUS); /* acknowledge the command */
    return 0;
}

/* Poll until the bus master stops and the drive is neither busy nor
 * requesting data. Returns the drive's status or an E_* code. */
static int ata_dma_wait(struct ata_channel *c)
{
    uint64_t deadline = timer_ticks() + (uint64_t)ATA_IO_TIMEOUT_MS * TIMER_HZ / 1000 + 1;
    for (uint32_t spins = 0;; spins++) {
        uint32_t seen = c->intr;
        uint8_t bs = inb((uint16_t)(c->bm + ATA_BM_STATUS)), st = ata_alt_status(c);
        if (st == ATA_FLOATING_BUS)
            return E_NODEV;
        if ((bs & ATA_BM_ST_ERROR) || (st & (ATA_SR_ERR | ATA_SR_DF)))
            return E_IO;
        if (!(bs & ATA_BM_ST_ACTIVE) && !(st & (ATA_SR_BSY | ATA_SR_DRQ)))
            return st;
        if (timer_ticks() > deadline)
            return E_TIMEOUT;
        if (c->irq_on || spins >= ATA_SPINS_BEFORE_YIELD)
            ata_idle(c, seen);
        else
            cpu_pause();
    }
}

/*
 * One READ/WRITE DMA (EXT) command of count sectors through the channel's
 * bus master, whose PRD table the caller has filled for count sectors
 * (SFF-8038i §3; ATA-8 ACS §7.21, §7.60). A write ends with FLUSH CACHE
 * when flush is set. Returns 0 or an E_* code (the caller resets the
 * channel).
 */
static int ata_dma_run(struct ata_drive *a, uint64_t lba, uint32_t count, int write, bool flush)
{
    static const uint8_t cmds[2][2] = {
        {ATA_CMD_READ_DMA, ATA_CMD_READ_DMA_EXT},
        {ATA_CMD_WRITE_DMA, ATA_CMD_WRITE_DMA_EXT},
    };
    struct ata_channel *c = a->chan;
    int ext = lba + count > ATA_LBA28_LIMIT || count > ATA_LBA28_MAX_COUNT;
    uint8_t dir = write ? 0 : ATA_BM_CMD_TO_MEM;
    int r = ata_wait(c, ATA_SR_DRQ, 0, ATA_IO_TIMEOUT_MS, 1);
    if (r < 0)
        return ata_fail(a, write ? "write" : "read", lba, r);
    outb((uint16_t)(c->bm + ATA_BM_CMD), dir); /* stopped */
    outb((uint16_t)(c->bm + ATA_BM_STATUS),
         (uint8_t)(inb((uint16_t)(c->bm + ATA_BM_STATUS)) | ATA_BM_ST_ERROR | ATA_BM_ST_IRQ));
    outl((uint16_t)(c->bm + ATA_BM_PRD), c->prd_pa);
    ata_issue(a, lba, count, ext, cmds[write][ext]);
    outb((uint16_t)(c->bm + ATA_BM_CMD), dir | ATA_BM_CMD_START);
    r = ata_dma_wait(c);
    outb((uint16_t)(c->bm + ATA_BM_CMD), dir); /* stop the bus master */
    (void)ata_inb(c, ATA_REG_STATUS);         /* acknowledge the command */
    if (r < 0)
        return ata_fail(a, write ? "write DMA" : "read DMA", lba, r);
    return write && flush ? ata_flush_cache(a, ext, lba) : 0;
}

/* One DMA command of count sectors (at most the bounce buffer) through the
 * channel's bounce buffer. As ata_dma_run. */
static int ata_dma_command(struct ata_drive *a, uint64_t lba, uint32_t count, uint8_t *buf, int write, bool flush)
{
    struct ata_channel *c = a->chan;
    uint32_t bytes = count * ATA_SECTOR_SIZE;
    struct dma_seg bounce = { c->dma_pa, bytes };
    if (write)
        memcpy(c->dma, buf, bytes);
    ata_prd_fill(c->prd, ATA_PRD_ENTRIES, &bounce, 1, 0, bytes, ATA_SECTOR_SIZE);
    int r = ata_dma_run(a, lba, count, write, flush);
    if (r == 0 && !write)
        memcpy(buf, c->dma, bytes);
    return r;
}

/* Split [lba, lba+count) into commands; holds the channel throughout. */
static int ata_rw(struct disk *d, uint64_t lba, uint32_t count, uint8_t *buf, int write, bool flush)
{
    struct ata_drive *a = d->priv;
    int r = 0;

    if (lba > d->sectors || count > d->sectors - lba)
        return E_RANGE;
    chan_lock(a->chan);
    while (count && r == 0) {
        uint32_t n = MIN(count, a->lba48 ? ATA_LBA48_MAX_COUNT : ATA_LBA28_MAX_COUNT);
        if (a->dma)
            n = MIN(n, ATA_DMA_BYTES / ATA_SECTOR_SIZE);
        if (!a->lba48 && lba + n > ATA_LBA28_LIMIT) {
            r = E_RANGE;
            break;
        }
        if (a->dma) {
            r = ata_dma_command(a, lba, n, buf, write, flush && count == n);
            if (r < 0 && r != E_RANGE) { /* the bus master failed us: PIO from now on */
                log_warn("%s: DMA failed (%s): PIO from now on", d->name, err_name(r));
                a->dma = 0;
                if (ata_reset_channel(a->chan) == 0)
                    r = ata_rw_command(a, lba, n, buf, write, flush && count == n);
            }
        } else {
            r = ata_rw_command(a, lba, n, buf, write, flush && count == n); /* one flush, after the last */
        }
        lba += n, count -= n, buf += (size_t)n * ATA_SECTOR_SIZE;
    }
    /* A failed command may leave the drive mid-transfer (DRQ set), and it
     * would ignore the next command: start the channel afresh. */
    if (r < 0 && r != E_RANGE && ata_reset_channel(a->chan) < 0)
        log_warn("%s: channel reset after an error failed", d->name);
    chan_unlock(a->chan);
    return r;
}

/* disk->read: count 512-byte sectors at lba into buf. Returns 0, E_RANGE,
 * E_IO (device error, logged), E_TIMEOUT or E_NODEV. Thread context only. */
static int ata_disk_read(struct disk *d, uint64_t lba, uint32_t count, void *buf)
{
    return ata_rw(d, lba, count, buf, 0, false);
}

/* disk->write: as ata_disk_read; with flush the drive's write cache is
 * flushed before returning, so 0 means the data is on the medium. */
static int ata_disk_write(struct disk *d, uint64_t lba, uint32_t count, const void *buf, bool flush)
{
    return ata_rw(d, lba, count, (uint8_t *)buf, 1, flush);
}

/* disk->flush: FLUSH CACHE (EXT on LBA48 drives), ATA-8 ACS §7.10, §7.14. */
static int ata_disk_flush(struct disk *d)
{
    struct ata_drive *a = d->priv;
    chan_lock(a->chan);
    int r = ata_wait(a->chan, ATA_SR_DRQ, 0, ATA_IO_TIMEOUT_MS, 1);
    if (r < 0) {
        r = ata_fail(a, "flush", 0, r);
    } else {
        ata_select(a->chan, a->drive, ATA_DEV_LBA);
        r = ata_flush_cache(a, a->lba48, 0);
    }
    if (r < 0 && ata_reset_channel(a->chan) < 0)
        log_warn("%s: channel reset after an error failed", d->name);
    chan_unlock(a->chan);
    return r;
}

/*
 * disk->rw_sg: count sectors at lba straight between the drive and the
 * host-physical pieces sg[0..n) (their lengths summing to count * 512, each
 * at an even address with an even length: the bus master moves words), as
 * few DMA commands as the PRD table and the command's sector count allow
 * (SFF-8038i §3.2; ATA-8 ACS §7.21, §7.60). With write and flush the
 * drive's write cache is flushed after the last command. Returns 0,
 * E_RANGE, E_INVAL (a piece breaks the rules above), E_NOTSUP (the drive
 * does no DMA, or stopped doing it when a command failed: nothing of the
 * request is promised, and the caller does it again through ->read or
 * ->write, which fall back to PIO), or E_TIMEOUT / E_NODEV. Thread context.
 */
static int ata_disk_rw_sg(struct disk *d, uint64_t lba, uint32_t count, const struct dma_seg *sg, unsigned n,
                          bool write, bool flush)
{
    struct ata_drive *a = d->priv;
    uint64_t bytes = 0;
    int r = 0;

    if (lba > d->sectors || count > d->sectors - lba)
        return E_RANGE;
    for (unsigned i = 0; i < n; i++) {
        if ((sg[i].hpa | sg[i].len) & 1)
            return E_INVAL;
        bytes += sg[i].len;
    }
    if (bytes != (uint64_t)count * ATA_SECTOR_SIZE)
        return E_INVAL;
    chan_lock(a->chan);
    for (uint64_t pos = 0; count && r == 0 && a->dma;) {
        uint32_t max = MIN(count, a->lba48 ? ATA_LBA48_MAX_COUNT : ATA_LBA28_MAX_COUNT);
        uint32_t got = ata_prd_fill(a->chan->prd, ATA_PRD_ENTRIES, sg, n, pos, max * ATA_SECTOR_SIZE,
                                    ATA_SECTOR_SIZE);
        uint32_t k = got / ATA_SECTOR_SIZE;
        if (!a->lba48 && lba + k > ATA_LBA28_LIMIT) {
            r = E_RANGE;
            break;
        }
        if (k == 0) { /* one sector in more pieces than a PRD table holds */
            r = E_NOTSUP;
            break;
        }
        r = ata_dma_run(a, lba, k, write, flush && k == count);
        if (r < 0 && r != E_RANGE) { /* the bus master failed us: PIO from now on */
            log_warn("%s: DMA failed (%s): PIO from now on", d->name, err_name(r));
            a->dma = 0;
            if (ata_reset_channel(a->chan) < 0)
                log_warn("%s: channel reset after an error failed", d->name);
            r = E_NOTSUP;
        }
        lba += k, count -= k, pos += got;
    }
    if (r == 0 && count)
        r = E_NOTSUP; /* no DMA on this drive */
    chan_unlock(a->chan);
    return r;
}
