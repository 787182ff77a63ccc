/*
 * PIIX3 IDE controller and ATA disks (contract in vmm/dev/vide.h).
 * Sources: ATA/ATAPI-6 (T13/1410D rev 3b) §6 (registers), §8 (commands),
 * §9 (protocols); SFF-8038i rev 1.0 (bus master IDE); Intel 82371FB/SB
 * (PIIX/PIIX3) datasheet §2.4 (IDE configuration registers).
 */
#include "kernel/kernel.h"
#include "vmm/dev/vide.h"

#define VENDOR_INTEL   0x8086
#define DEVICE_ISA     0x7000           /* 82371SB function 0 */
#define DEVICE_IDE     0x7010           /* 82371SB function 1 */
#define CLASS_BRIDGE   0x06
#define SUBCLASS_ISA   0x01
#define CLASS_STORAGE  0x01
#define SUBCLASS_IDE   0x01
#define PROGIF_BM_COMPAT 0x80           /* bus master capable, both channels compatibility mode */
#define HEADER_MULTI   0x80
#define STATUS_MEDIUM_FBB 0x0280        /* medium DEVSEL, fast back-to-back */
#define ISA_CMD_RESET  0x0007
#define IDETIM         0x40             /* primary; secondary at 0x42 */
#define IDETIM_DECODE  0x8000
#define PIIX_TIMING_END 0x45            /* IDETIM x2, SIDETIM */
#define PIRQ_ROUTE     0x60             /* PIRQRC[A:D], 80h = disabled */
#define BMIBA_BAR      4                /* BMIBA is BAR4 */

static const uint16_t cmd_base[VIDE_CHANNELS] = { 0x1F0, 0x170 };
static const uint16_t ctl_port[VIDE_CHANNELS] = { 0x3F6, 0x376 };
static const uint8_t chan_irq[VIDE_CHANNELS] = { VIDE_PRIMARY_IRQ, VIDE_SECONDARY_IRQ };

/* Command block registers (ATA-6 §7). */
enum { REG_DATA, REG_ERROR, REG_COUNT, REG_LBA_LOW, REG_LBA_MID, REG_LBA_HIGH, REG_DEVICE, REG_STATUS };
#define REG_FEATURE REG_ERROR
#define REG_COMMAND REG_STATUS

#define ST_ERR  0x01
#define ST_DRQ  0x08
#define ST_DSC  0x10
#define ST_DRDY 0x40
#define ST_BSY  0x80
#define ST_READY (ST_DRDY | ST_DSC)

#define ERR_AMNF 0x01                   /* after diagnostics: device 0 passed */
#define ERR_ABRT 0x04
#define ERR_IDNF 0x10
#define ERR_UNC  0x40

#define CTL_NIEN 0x02
#define CTL_SRST 0x04
#define CTL_HOB  0x80

#define DEV_DEV  0x10
#define DEV_LBA  0x40

/* Bus master registers (SFF-8038i §2). */
#define BM_CMD     0
#define BM_STATUS  2
#define BM_PRD     4
#define BM_START   0x01
#define BM_TO_MEM  0x08                 /* the controller writes memory: a device read */
#define BM_ACTIVE  0x01
#define BM_ERROR   0x02
#define BM_INTR    0x04
#define BM_DMA0    0x20
#define BM_DMA1    0x40
#define PRD_EOT    0x80000000u
#define PRD_TABLE_SPAN 0x10000u         /* a table may not cross 64 KiB */

/* Commands (ATA-6 §8). */
enum {
    CMD_DEVICE_RESET = 0x08, CMD_READ_SECTORS = 0x20, CMD_READ_SECTORS_NR = 0x21,
    CMD_READ_SECTORS_EXT = 0x24, CMD_READ_DMA_EXT = 0x25, CMD_WRITE_SECTORS = 0x30,
    CMD_WRITE_SECTORS_NR = 0x31, CMD_WRITE_SECTORS_EXT = 0x34, CMD_WRITE_DMA_EXT = 0x35,
    CMD_VERIFY = 0x40, CMD_VERIFY_NR = 0x41, CMD_VERIFY_EXT = 0x42, CMD_DIAGNOSTIC = 0x90,
    CMD_INIT_PARAMS = 0x91, CMD_READ_DMA = 0xC8, CMD_READ_DMA_NR = 0xC9, CMD_WRITE_DMA = 0xCA,
    CMD_WRITE_DMA_NR = 0xCB, CMD_STANDBY_IMM = 0xE0, CMD_IDLE_IMM = 0xE1, CMD_STANDBY = 0xE2,
    CMD_IDLE = 0xE3, CMD_CHECK_POWER = 0xE5, CMD_SLEEP = 0xE6, CMD_FLUSH = 0xE7,
    CMD_FLUSH_EXT = 0xEA, CMD_IDENTIFY = 0xEC, CMD_SET_FEATURES = 0xEF,
};
#define CMD_RECALIBRATE 0x10            /* 10h-1Fh */
#define CMD_SEEK        0x70            /* 70h-7Fh */

/* SET FEATURES subcommands (ATA-6 §8.37). */
#define SF_WCACHE_ON   0x02
#define SF_XFER_MODE   0x03
#define SF_LOOKAHEAD_OFF 0x55
#define SF_DEFAULTS_OFF 0x66
#define SF_WCACHE_OFF  0x82
#define SF_LOOKAHEAD_ON 0xAA
#define SF_DEFAULTS_ON 0xCC
#define XFER_PIO_DEFAULT 0x00
#define XFER_PIO_NO_IORDY 0x01
#define XFER_PIO       0x08             /* | mode 0-4 */
#define XFER_MWDMA     0x20             /* | mode 0-2 */
#define XFER_UDMA      0x40             /* | mode 0-2 */
#define PIO_MODES      5
#define MWDMA_MODES    3
#define UDMA_MODES     3

#define CHS_HEADS      16
#define CHS_SPT        63
#define CHS_MAX_CYL    16383
#define LBA28_MAX      0x0FFFFFFFu
#define WORDS          256

static struct vide_drive *selected(struct vide_channel *ch) { return &ch->drive[ch->device & DEV_DEV ? 1 : 0]; }
static bool has_drive(const struct vide_channel *ch) { return ch->drive[0].present || ch->drive[1].present; }

/* The channel's ports answer: I/O decode on and its IDETIM decode enable set. */
static bool decodes(const struct vide_channel *ch)
{
    const struct vide *ide = ch->ide;
    return (vpci_get(&ide->fn, VPCI_COMMAND, 2) & VPCI_CMD_IO) &&
           (vpci_get(&ide->fn, IDETIM + 2 * ch->index, 2) & IDETIM_DECODE);
}

/* ------------------------------------------------------------ interrupts */

static void update_line(struct vide_channel *ch)
{
    bool level = ch->intrq && !(ch->control & CTL_NIEN);
    if (level != ch->line) {
        ch->line = level;
        vdev_irq_set(&ch->ide->line, chan_irq[ch->index], level);
    }
}

/* The device asserts INTRQ; the PIIX latches it in the bus master status. */
static void raise_irq(struct vide_channel *ch)
{
    ch->intrq = true;
    ch->bm_status |= BM_INTR;
    update_line(ch);
}

static void lower_irq(struct vide_channel *ch)
{
    ch->intrq = false;
    update_line(ch);
}

/* ------------------------------------------------------------ command ends */

static void end_ok(struct vide_channel *ch)
{
    ch->xfer = VIDE_IDLE;
    ch->status = ST_READY;
    ch->error = 0;
    raise_irq(ch);
}

static void end_error(struct vide_channel *ch, uint8_t error)
{
    ch->xfer = VIDE_IDLE;
    ch->status = ST_READY | ST_ERR;
    ch->error = error;
    struct vide_drive *d = selected(ch);
    if (d->present)
        d->st.errors++;
    raise_irq(ch);
}

/* The ATA signature after a reset or diagnostics (ATA-6 §9.12). */
static void signature(struct vide_channel *ch)
{
    ch->count[0] = ch->lba_low[0] = 1;
    ch->lba_mid[0] = ch->lba_high[0] = 0;
    ch->device = 0;
    ch->error = ERR_AMNF;
    ch->status = ST_READY;
    ch->xfer = VIDE_IDLE;
}

/* ------------------------------------------------------------ IDENTIFY */

/* An ATA string: two characters per word, the first in the high byte,
 * padded with spaces (ATA-6 §3.3.10). */
static void put_string(uint16_t *id, unsigned word, unsigned words, const char *s)
{
    size_t n = strlen(s);
    for (unsigned i = 0; i < 2 * words; i++) {
        uint8_t c = i < n ? (uint8_t)s[i] : ' ';
        id[word + i / 2] |= (uint16_t)(i % 2 ? c : c << 8);
    }
}

/* IDENTIFY DEVICE data (ATA-6 §8.15, table 13) into ch->pio. */
static void identify(struct vide_channel *ch, const struct vide_drive *d)
{
    uint16_t id[WORDS] = { 0 };
    uint64_t sectors = d->be.sectors;
    uint32_t cyl = (uint32_t)MIN(sectors / (CHS_HEADS * CHS_SPT), (uint64_t)CHS_MAX_CYL);
    uint32_t cur_cyl = d->heads && d->spt ? (uint32_t)MIN(sectors / (d->heads * d->spt), (uint64_t)65535) : 0;
    uint32_t cur_cap = cur_cyl * d->heads * d->spt;
    uint32_t lba28 = (uint32_t)MIN(sectors, (uint64_t)LBA28_MAX);
    unsigned mode = d->xfer_mode & 7;

    id[0] = 0x0040;                                  /* fixed, not removable, ATA */
    id[1] = (uint16_t)cyl;
    id[3] = CHS_HEADS;
    id[6] = CHS_SPT;
    put_string(id, 10, 10, d->be.serial);
    put_string(id, 23, 4, "1.0");
    put_string(id, 27, 20, "hv86 HARDDISK");
    id[47] = 0x8000;                                 /* READ/WRITE MULTIPLE: none */
    id[49] = 0x0B00;                                 /* IORDY, LBA, DMA */
    id[50] = 0x4000;
    id[51] = 0x0200;
    id[53] = 0x0007;                                 /* words 54-58, 64-70, 88 valid */
    id[54] = (uint16_t)cur_cyl;
    id[55] = d->heads;
    id[56] = d->spt;
    id[57] = (uint16_t)cur_cap, id[58] = (uint16_t)(cur_cap >> 16);
    id[60] = (uint16_t)lba28, id[61] = (uint16_t)(lba28 >> 16);
    id[63] = (uint16_t)((1u << MWDMA_MODES) - 1);    /* multiword DMA 0-2 */
    if ((d->xfer_mode & 0xF8) == XFER_MWDMA)
        id[63] |= (uint16_t)(0x100 << mode);
    id[64] = 0x0003;                                 /* PIO 3 and 4 */
    id[65] = id[66] = id[67] = id[68] = 120;         /* cycle times, ns */
    id[80] = 0x007E;                                 /* ATA-1 to ATA-6 */
    id[82] = 0x0060;                                 /* look-ahead, write cache */
    id[83] = 0x7400;                                 /* FLUSH CACHE EXT, FLUSH CACHE, 48-bit */
    id[84] = 0x4000;
    id[85] = (uint16_t)(0x0040 | (d->write_cache ? 0x0020 : 0));
    id[86] = 0x3400;
    id[87] = 0x4000;
    id[88] = (uint16_t)((1u << UDMA_MODES) - 1);     /* Ultra DMA 0-2 */
    if ((d->xfer_mode & 0xF8) == XFER_UDMA)
        id[88] |= (uint16_t)(0x100 << mode);
    for (unsigned i = 0; i < 4; i++)
        id[100 + i] = (uint16_t)(sectors >> (16 * i));
    id[255] = 0x00A5;                                /* integrity word (§8.15.61) */
    uint8_t sum = 0;
    for (unsigned i = 0; i < 2 * WORDS - 1; i++)
        sum = (uint8_t)(sum + (uint8_t)(id[i / 2] >> (8 * (i % 2))));
    id[255] |= (uint16_t)((uint8_t)-sum << 8);
    for (unsigned i = 0; i < WORDS; i++)
        ch->pio[2 * i] = (uint8_t)id[i], ch->pio[2 * i + 1] = (uint8_t)(id[i] >> 8);
}

/* ------------------------------------------------------------ addressing */

static bool is_ext(uint8_t cmd)
{
    return cmd == CMD_READ_SECTORS_EXT || cmd == CMD_READ_DMA_EXT || cmd == CMD_WRITE_SECTORS_EXT ||
           cmd == CMD_WRITE_DMA_EXT || cmd == CMD_VERIFY_EXT;
}

/* The command's first sector and count from the task file (ATA-6 §6.2:
 * LBA, CHS, 48-bit). false: a CHS address that names no sector. */
static bool address(struct vide_channel *ch, const struct vide_drive *d, uint8_t cmd, uint64_t *lba, uint32_t *count)
{
    if (is_ext(cmd)) {
        *lba = (uint64_t)ch->lba_high[1] << 40 | (uint64_t)ch->lba_mid[1] << 32 | (uint64_t)ch->lba_low[1] << 24 |
               (uint64_t)ch->lba_high[0] << 16 | (uint64_t)ch->lba_mid[0] << 8 | ch->lba_low[0];
        *count = (uint32_t)ch->count[1] << 8 | ch->count[0];
        *count = *count ? *count : 65536;
        return true;
    }
    *count = ch->count[0] ? ch->count[0] : 256;
    if (ch->device & DEV_LBA) {
        *lba = (uint64_t)(ch->device & 0xF) << 24 | (uint32_t)ch->lba_high[0] << 16 | (uint32_t)ch->lba_mid[0] << 8 |
               ch->lba_low[0];
        return true;
    }
    uint32_t cyl = (uint32_t)ch->lba_high[0] << 8 | ch->lba_mid[0], head = ch->device & 0xF, sect = ch->lba_low[0];
    if (!d->heads || !d->spt || head >= d->heads || sect == 0 || sect > d->spt)
        return false;
    *lba = ((uint64_t)cyl * d->heads + head) * d->spt + sect - 1;
    return true;
}

/* ------------------------------------------------------------ PIO */

/* Load the next sector of a PIO read into ch->pio; false if it failed. */
static bool pio_load(struct vide_channel *ch)
{
    struct vide_drive *d = ch->xfer_drive;
    if (d->be.read(d->be.opaque, ch->xfer_lba, 1, ch->pio)) {
        end_error(ch, ERR_UNC);
        return false;
    }
    d->st.sectors_read++;
    ch->pio_pos = 0;
    ch->pio_len = VDEV_SECTOR;
    ch->status = ST_READY | ST_DRQ;
    raise_irq(ch);                                   /* one interrupt per DRQ block (§9.7) */
    return true;
}

/* The guest took the last byte of ch->pio. */
static void pio_in_done(struct vide_channel *ch)
{
    if (ch->xfer_left > 1) {
        ch->xfer_left--;
        ch->xfer_lba++;
        pio_load(ch);
        return;
    }
    ch->xfer = VIDE_IDLE;                            /* no interrupt after the last block */
    ch->status = ST_READY;
}

/* The guest filled ch->pio of a PIO write: on to the disk. */
static void pio_out_done(struct vide_channel *ch)
{
    struct vide_drive *d = ch->xfer_drive;
    if (d->be.write(d->be.opaque, ch->xfer_lba, 1, ch->pio, d->write_cache)) {
        end_error(ch, ERR_ABRT);
        return;
    }
    d->st.sectors_written++;
    if (--ch->xfer_left == 0) {
        end_ok(ch);
        return;
    }
    ch->xfer_lba++;
    ch->pio_pos = 0;
    ch->status = ST_READY | ST_DRQ;
    raise_irq(ch);
}

static uint32_t data_in(struct vide_channel *ch, unsigned size)
{
    uint32_t v = 0;
    if (ch->xfer != VIDE_PIO_IN)
        return 0xFFFFFFFFu;
    for (unsigned i = 0; i < size && ch->pio_pos < ch->pio_len; i++)
        v |= (uint32_t)ch->pio[ch->pio_pos++] << (8 * i);
    if (ch->pio_pos == ch->pio_len)
        pio_in_done(ch);
    return v;
}

static void data_out(struct vide_channel *ch, unsigned size, uint32_t v)
{
    if (ch->xfer != VIDE_PIO_OUT)
        return;
    for (unsigned i = 0; i < size && ch->pio_pos < VDEV_SECTOR; i++)
        ch->pio[ch->pio_pos++] = (uint8_t)(v >> (8 * i));
    if (ch->pio_pos == VDEV_SECTOR)
        pio_out_done(ch);
}

/* ------------------------------------------------------------ bus master DMA */

/* A walk through the PRD table. */
struct prd_walk {
    uint32_t next;                       /* guest address of the next entry */
    uint32_t addr, left;                 /* the current region: where, bytes left */
    bool eot;                            /* the current entry was the last */
};

/* Move n bytes between buf and the regions. Returns 0, E_NOENT (the table
 * ended), E_RANGE (memory outside guest RAM) or E_INVAL (the table
 * crosses a 64 KiB boundary). */
static int prd_move(struct vide_channel *ch, struct prd_walk *w, uint8_t *buf, uint32_t n, bool to_guest)
{
    const struct vdev_mem *mem = &ch->ide->mem;
    while (n) {
        if (w->left == 0) {
            uint32_t e[2];
            if (w->eot)
                return E_NOENT;
            if ((w->next & (PRD_TABLE_SPAN - 1)) == 0 && w->next != ch->prd_addr)
                return E_INVAL;
            if (mem->read(mem->opaque, w->next, e, sizeof(e)))
                return E_RANGE;
            w->next += sizeof(e);
            w->addr = e[0] & ~1u;
            w->left = e[1] & 0xFFFF ? e[1] & 0xFFFE : 0x10000;
            w->eot = e[1] & PRD_EOT;
        }
        uint32_t k = MIN(n, w->left);
        int rc = to_guest ? mem->write(mem->opaque, w->addr, buf, k) : mem->read(mem->opaque, w->addr, buf, k);
        if (rc)
            return E_RANGE;
        w->addr += k, w->left -= k, buf += k, n -= k;
    }
    return 0;
}

/* The bus master could not move the data (a bad PRD table or region, the
 * engine set the wrong way): its error bit, and ABRT for the command. */
static void dma_fail(struct vide_channel *ch)
{
    ch->bm_status = (uint8_t)((ch->bm_status & ~BM_ACTIVE) | BM_ERROR);
    ch->ide->bad_prd++;
    end_error(ch, ERR_ABRT);
}

/* Run the pending DMA command now that it is issued and started. */
static void dma_run(struct vide_channel *ch)
{
    struct vide *ide = ch->ide;
    struct vide_drive *d = ch->xfer_drive;
    bool in = ch->xfer == VIDE_DMA_IN;
    struct prd_walk w = { ch->prd_addr, 0, 0, false };
    if (!(ch->bm_cmd & BM_TO_MEM) != !in) {
        dma_fail(ch);
        return;
    }
    while (ch->xfer_left) {
        uint32_t count = MIN(ch->xfer_left, VIDE_BUF_BYTES / VDEV_SECTOR), n = count * VDEV_SECTOR;
        int rc;
        if (in) {
            if (d->be.read(d->be.opaque, ch->xfer_lba, count, ide->buf)) {
                end_error(ch, ERR_UNC);
                return;
            }
            rc = prd_move(ch, &w, ide->buf, n, true);
        } else {
            rc = prd_move(ch, &w, ide->buf, n, false);
            if (!rc && d->be.write(d->be.opaque, ch->xfer_lba, count, ide->buf, d->write_cache)) {
                end_error(ch, ERR_ABRT);
                return;
            }
        }
        if (rc) {
            dma_fail(ch);
            return;
        }
        if (in)
            d->st.sectors_read += count;
        else
            d->st.sectors_written += count;
        ch->xfer_lba += count;
        ch->xfer_left -= count;
    }
    /* A table longer than the transfer leaves Active set (SFF-8038i §2.1.2). */
    if (w.left == 0 && w.eot)
        ch->bm_status &= (uint8_t)~BM_ACTIVE;
    end_ok(ch);
}

/* A DMA command moves its data once it is issued, the engine is started
 * and bus mastering is on, whichever comes last (SFF-8038i §3.1). */
static void dma_try(struct vide_channel *ch)
{
    if ((ch->xfer == VIDE_DMA_IN || ch->xfer == VIDE_DMA_OUT) && (ch->bm_cmd & BM_START) &&
        (vpci_get(&ch->ide->fn, VPCI_COMMAND, 2) & VPCI_CMD_MASTER))
        dma_run(ch);
}

/* ------------------------------------------------------------ commands */

/* A read, write or verify: checks, then the transfer's first step. */
static void rw_command(struct vide_channel *ch, struct vide_drive *d, uint8_t cmd, enum vide_xfer xfer)
{
    uint64_t lba;
    uint32_t count;
    if (!address(ch, d, cmd, &lba, &count) || lba > d->be.sectors || count > d->be.sectors - lba) {
        end_error(ch, ERR_IDNF);
        return;
    }
    if ((xfer == VIDE_PIO_OUT || xfer == VIDE_DMA_OUT) && d->be.read_only) {
        end_error(ch, ERR_ABRT);
        return;
    }
    if (xfer == VIDE_IDLE) {                          /* READ VERIFY: the range exists */
        end_ok(ch);
        return;
    }
    if (xfer == VIDE_PIO_IN || xfer == VIDE_DMA_IN)
        d->st.reads++;
    else
        d->st.writes++;
    ch->xfer = xfer;
    ch->xfer_drive = d;
    ch->xfer_lba = lba;
    ch->xfer_left = count;
    switch (xfer) {
    case VIDE_PIO_IN:
        pio_load(ch);
        break;
    case VIDE_PIO_OUT:
        ch->pio_pos = 0;
        ch->status = ST_READY | ST_DRQ;              /* the first block comes without an interrupt */
        break;
    default:
        ch->status = ST_READY | ST_DRQ;
        dma_try(ch);
        break;
    }
}

static void set_features(struct vide_channel *ch, struct vide_drive *d)
{
    uint8_t mode = ch->count[0];
    switch (ch->feature[0]) {
    case SF_WCACHE_ON:
    case SF_WCACHE_OFF:
        d->write_cache = ch->feature[0] == SF_WCACHE_ON;
        end_ok(ch);
        return;
    case SF_LOOKAHEAD_ON:
    case SF_LOOKAHEAD_OFF:
    case SF_DEFAULTS_ON:
    case SF_DEFAULTS_OFF:
        end_ok(ch);
        return;
    case SF_XFER_MODE:
        if (mode == XFER_PIO_DEFAULT || mode == XFER_PIO_NO_IORDY ||
            ((mode & 0xF8) == XFER_PIO && (mode & 7) < PIO_MODES) ||
            ((mode & 0xF8) == XFER_MWDMA && (mode & 7) < MWDMA_MODES) ||
            ((mode & 0xF8) == XFER_UDMA && (mode & 7) < UDMA_MODES)) {
            if ((mode & 0xF8) == XFER_MWDMA || (mode & 0xF8) == XFER_UDMA || (d->xfer_mode & 0xF8) <= XFER_PIO)
                d->xfer_mode = mode;                 /* a PIO mode keeps the DMA mode (§8.37.10) */
            end_ok(ch);
            return;
        }
        break;
    }
    end_error(ch, ERR_ABRT);
}

static void command(struct vide_channel *ch, uint8_t cmd)
{
    struct vide_drive *d = selected(ch);
    if (!d->present)
        return;                                      /* nobody listens (ATA-6 §9.16) */
    lower_irq(ch);
    ch->xfer = VIDE_IDLE;
    switch (cmd) {
    case CMD_IDENTIFY:
        identify(ch, d);
        ch->xfer = VIDE_PIO_IN;
        ch->xfer_drive = d;
        ch->xfer_left = 1;
        ch->pio_pos = 0;
        ch->pio_len = VDEV_SECTOR;
        ch->status = ST_READY | ST_DRQ;
        raise_irq(ch);
        return;
    case CMD_READ_SECTORS: case CMD_READ_SECTORS_NR: case CMD_READ_SECTORS_EXT:
        rw_command(ch, d, cmd, VIDE_PIO_IN);
        return;
    case CMD_WRITE_SECTORS: case CMD_WRITE_SECTORS_NR: case CMD_WRITE_SECTORS_EXT:
        rw_command(ch, d, cmd, VIDE_PIO_OUT);
        return;
    case CMD_READ_DMA: case CMD_READ_DMA_NR: case CMD_READ_DMA_EXT:
        rw_command(ch, d, cmd, VIDE_DMA_IN);
        return;
    case CMD_WRITE_DMA: case CMD_WRITE_DMA_NR: case CMD_WRITE_DMA_EXT:
        rw_command(ch, d, cmd, VIDE_DMA_OUT);
        return;
    case CMD_VERIFY: case CMD_VERIFY_NR: case CMD_VERIFY_EXT:
        rw_command(ch, d, cmd, VIDE_IDLE);
        return;
    case CMD_FLUSH:
    case CMD_FLUSH_EXT:
        d->st.flushes++;
        if (d->be.flush(d->be.opaque))
            end_error(ch, ERR_ABRT);
        else
            end_ok(ch);
        return;
    case CMD_SET_FEATURES:
        set_features(ch, d);
        return;
    case CMD_INIT_PARAMS:
        if (ch->count[0] == 0) {
            end_error(ch, ERR_ABRT);
            return;
        }
        d->heads = (uint16_t)((ch->device & 0xF) + 1);
        d->spt = ch->count[0];
        end_ok(ch);
        return;
    case CMD_DIAGNOSTIC:
        signature(ch);
        raise_irq(ch);
        return;
    case CMD_CHECK_POWER:
        ch->count[0] = 0xFF;                         /* active or idle */
        end_ok(ch);
        return;
    case CMD_STANDBY_IMM: case CMD_IDLE_IMM: case CMD_STANDBY: case CMD_IDLE: case CMD_SLEEP:
        end_ok(ch);
        return;
    default:
        if ((cmd & 0xF0) == CMD_RECALIBRATE || (cmd & 0xF0) == CMD_SEEK) {
            end_ok(ch);
            return;
        }
        end_error(ch, ERR_ABRT);                     /* DEVICE RESET and PACKET included: no ATAPI */
        return;
    }
}

/* ------------------------------------------------------------ ports */

/* A write to a command block register other than data and command: both
 * drives take it, and the previous value moves to [1] (ATA-6 §6.2). */
static void put_reg(uint8_t r[2], uint8_t v)
{
    r[1] = r[0];
    r[0] = v;
}

static uint8_t reg_read(struct vide_channel *ch, unsigned reg)
{
    if (!has_drive(ch))
        return 0xFF;                                 /* nothing on the cable: floating */
    if (!selected(ch)->present)
        return 0;                                    /* device 1 absent: device 0 answers 0 */
    unsigned h = ch->control & CTL_HOB ? 1 : 0;
    switch (reg) {
    case REG_ERROR: return ch->error;
    case REG_COUNT: return ch->count[h];
    case REG_LBA_LOW: return ch->lba_low[h];
    case REG_LBA_MID: return ch->lba_mid[h];
    case REG_LBA_HIGH: return ch->lba_high[h];
    case REG_DEVICE: return (uint8_t)(ch->device | 0xA0); /* obsolete bits 7 and 5 read 1 */
    default:
        lower_irq(ch);                               /* reading Status clears INTRQ (§7.15) */
        return ch->status;
    }
}

static void reg_write(struct vide_channel *ch, unsigned reg, uint8_t v)
{
    ch->control &= (uint8_t)~CTL_HOB;                /* any write clears HOB (§7.9) */
    switch (reg) {
    case REG_FEATURE: put_reg(ch->feature, v); break;
    case REG_COUNT: put_reg(ch->count, v); break;
    case REG_LBA_LOW: put_reg(ch->lba_low, v); break;
    case REG_LBA_MID: put_reg(ch->lba_mid, v); break;
    case REG_LBA_HIGH: put_reg(ch->lba_high, v); break;
    case REG_DEVICE:
        ch->device = v & 0x5F;
        break;
    default:
        command(ch, v);
        break;
    }
}

static uint32_t cmd_in(void *opaque, uint16_t port, unsigned size)
{
    struct vide_channel *ch = opaque;
    unsigned reg = (unsigned)(port - cmd_base[ch->index]);
    if (!decodes(ch))
        return 0xFFFFFFFFu;
    if (reg == REG_DATA)
        return data_in(ch, size);
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint32_t)reg_read(ch, reg + i) << (8 * i);
    return v;
}

static void cmd_out(void *opaque, uint16_t port, unsigned size, uint32_t v)
{
    struct vide_channel *ch = opaque;
    unsigned reg = (unsigned)(port - cmd_base[ch->index]);
    if (!decodes(ch))
        return;
    if (reg == REG_DATA) {
        data_out(ch, size, v);
        return;
    }
    for (unsigned i = 0; i < size; i++)
        reg_write(ch, reg + i, (uint8_t)(v >> (8 * i)));
}

/* Alternate Status (does not clear INTRQ) and Device Control. */
static uint32_t ctl_in(void *opaque, uint16_t port, unsigned size)
{
    struct vide_channel *ch = opaque;
    if (!decodes(ch) || !has_drive(ch))
        return 0xFF;
    return selected(ch)->present ? ch->status : 0;
}

static void ctl_out(void *opaque, uint16_t port, unsigned size, uint32_t v)
{
    struct vide_channel *ch = opaque;
    if (!decodes(ch))
        return;
    bool was_reset = ch->control & CTL_SRST;
    ch->control = (uint8_t)v;
    if (v & CTL_SRST) {                              /* held in reset (§9.2) */
        ch->xfer = VIDE_IDLE;
        ch->status = ST_BSY;
        ch->intrq = false;
    } else if (was_reset) {
        signature(ch);
    }
    update_line(ch);
}

/* Bus master registers: byte i of an access is register off + i. */
static uint8_t bm_read(struct vide_channel *ch, unsigned off)
{
    switch (off) {
    case BM_CMD: return ch->bm_cmd;
    case BM_STATUS: return ch->bm_status;
    case BM_PRD: case BM_PRD + 1: case BM_PRD + 2: case BM_PRD + 3:
        return (uint8_t)(ch->prd_addr >> (8 * (off - BM_PRD)));
    default: return 0;
    }
}

static void bm_write(struct vide_channel *ch, unsigned off, uint8_t v)
{
    switch (off) {
    case BM_CMD: {
        bool start = !(ch->bm_cmd & BM_START) && (v & BM_START);
        ch->bm_cmd = v & (BM_START | BM_TO_MEM);
        if (!(v & BM_START))
            ch->bm_status &= (uint8_t)~BM_ACTIVE;    /* stopped (§2.1.1) */
        if (start) {
            ch->bm_status |= BM_ACTIVE;
            dma_try(ch);
        }
        break;
    }
    case BM_STATUS:                                  /* error and interrupt: write 1 to clear */
        ch->bm_status = (uint8_t)((ch->bm_status & BM_ACTIVE) | (ch->bm_status & ~v & (BM_ERROR | BM_INTR)) |
                                  (v & (BM_DMA0 | BM_DMA1)));
        break;
    case BM_PRD: case BM_PRD + 1: case BM_PRD + 2: case BM_PRD + 3: {
        unsigned sh = 8 * (off - BM_PRD);
        ch->prd_addr = (ch->prd_addr & ~(0xFFu << sh)) | (uint32_t)v << sh;
        ch->prd_addr &= ~3u;                         /* dword aligned */
        break;
    }
    }
}

static uint32_t bmio_in(void *opaque, uint16_t port, unsigned size)
{
    struct vide *ide = opaque;
    unsigned off = (unsigned)(port - ide->bm.base);
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++, off++)
        v |= (uint32_t)bm_read(&ide->ch[off / 8 % VIDE_CHANNELS], off % 8) << (8 * i);
    return v;
}

static void bmio_out(void *opaque, uint16_t port, unsigned size, uint32_t v)
{
    struct vide *ide = opaque;
    unsigned off = (unsigned)(port - ide->bm.base);
    for (unsigned i = 0; i < size; i++, off++)
        bm_write(&ide->ch[off / 8 % VIDE_CHANNELS], off % 8, (uint8_t)(v >> (8 * i)));
}

/* After a configuration write: BAR4 decodes where the guest put it while
 * I/O decoding is on (PCI 3.0 §6.2.5.1). */
static void cfg_written(void *opaque)
{
    struct vide *ide = opaque;
    vpci_decode_follow(&ide->bm, &ide->fn);
}

/* ------------------------------------------------------------ setup */

void vide_init(struct vide *ide, uint16_t bm_base, struct vdev_irq line, struct vdev_mem mem)
{
    memset(ide, 0, offsetof(struct vide, buf));
    ide->isa.devfn = VIDE_DEVFN;
    ide->fn.devfn = VIDE_DEVFN | 1;
    ide->fn.written = cfg_written;
    ide->fn.opaque = ide;
    ide->bm_base = bm_base;
    ide->bm = (struct vpci_io_decode){ .opaque = ide, .bar = BMIBA_BAR, .size = VIDE_BM_BYTES };
    ide->line = line;
    ide->mem = mem;
    for (unsigned c = 0; c < VIDE_CHANNELS; c++)
        ide->ch[c].ide = ide, ide->ch[c].index = c;
}

int vide_add_drive(struct vide *ide, unsigned slot, const struct vdev_disk *disk)
{
    if (slot >= VIDE_CHANNELS * VIDE_DRIVES)
        return E_INVAL;
    struct vide_drive *d = &ide->ch[slot / VIDE_DRIVES].drive[slot % VIDE_DRIVES];
    if (d->present)
        return E_EXIST;
    memset(d, 0, sizeof(*d));
    d->present = true;
    d->be = *disk;
    return 0;
}

const struct vide_drive *vide_drive(const struct vide *ide, unsigned slot)
{
    if (slot >= VIDE_CHANNELS * VIDE_DRIVES)
        return NULL;
    const struct vide_drive *d = &ide->ch[slot / VIDE_DRIVES].drive[slot % VIDE_DRIVES];
    return d->present ? d : NULL;
}

int vide_attach(struct vide *ide, struct vpci *pci, struct iobus *bus)
{
    int rc = vpci_add(pci, &ide->isa);
    rc = rc ? rc : vpci_add(pci, &ide->fn);
    rc = rc ? rc : iobus_register(bus, ide->bm_base, VIDE_BM_BYTES, IOBUS_SZ_ALL, bmio_in, bmio_out, ide, "ide-bm");
    for (unsigned c = 0; c < VIDE_CHANNELS && !rc; c++) {
        struct vide_channel *ch = &ide->ch[c];
        rc = iobus_register(bus, cmd_base[c], 8, IOBUS_SZ_ALL, cmd_in, cmd_out, ch, c ? "ide1" : "ide0");
        rc = rc ? rc : iobus_register(bus, ctl_port[c], 1, IOBUS_SZ_1, ctl_in, ctl_out, ch, c ? "ide1-ctl" : "ide0-ctl");
    }
    if (!rc) {
        ide->bm.bus = bus;
        vpci_decode_at(&ide->bm, ide->bm_base);
    }
    return rc;
}

void vide_reset(struct vide *ide)
{
    struct vpci_func *f = &ide->isa;
    vpci_header(f, VENDOR_INTEL, DEVICE_ISA, CLASS_BRIDGE, SUBCLASS_ISA, 0, ISA_CMD_RESET, STATUS_MEDIUM_FBB);
    f->cfg[VPCI_HEADER_TYPE] = HEADER_MULTI;
    vpci_put(f, PIRQ_ROUTE, 4, 0x80808080u);         /* no PCI interrupt routed */

    f = &ide->fn;
    vpci_header(f, VENDOR_INTEL, DEVICE_IDE, CLASS_STORAGE, SUBCLASS_IDE, PROGIF_BM_COMPAT,
                VPCI_CMD_IO | VPCI_CMD_MASTER, STATUS_MEDIUM_FBB);
    f->wmask[VPCI_COMMAND] = VPCI_CMD_IO | VPCI_CMD_MASTER;
    f->wmask[VPCI_LATENCY] = 0xF0;
    vpci_io_bar(f, BMIBA_BAR, ide->bm_base, VIDE_BM_BYTES);
    for (unsigned o = IDETIM; o < PIIX_TIMING_END; o++)
        f->wmask[o] = 0xFF;
    vpci_put(f, IDETIM, 2, IDETIM_DECODE);
    vpci_put(f, IDETIM + 2, 2, IDETIM_DECODE);
    vpci_decode_at(&ide->bm, ide->bm_base);

    for (unsigned c = 0; c < VIDE_CHANNELS; c++) {
        struct vide_channel *ch = &ide->ch[c];
        memset(ch->feature, 0, sizeof(ch->feature));
        memset(ch->count, 0, sizeof(ch->count));
        memset(ch->lba_low, 0, sizeof(ch->lba_low));
        memset(ch->lba_mid, 0, sizeof(ch->lba_mid));
        memset(ch->lba_high, 0, sizeof(ch->lba_high));
        ch->control = 0;
        signature(ch);
        ch->bm_cmd = 0;
        ch->bm_status = (uint8_t)((ch->drive[0].present ? BM_DMA0 : 0) | (ch->drive[1].present ? BM_DMA1 : 0));
        ch->prd_addr = 0;
        for (unsigned i = 0; i < VIDE_DRIVES; i++) {
            struct vide_drive *d = &ch->drive[i];
            d->write_cache = true;
            d->xfer_mode = XFER_PIO_DEFAULT;
            d->heads = CHS_HEADS;
            d->spt = CHS_SPT;
        }
        ch->intrq = false;
        ch->line = true;                             /* forces the line low */
        update_line(ch);
    }
}
