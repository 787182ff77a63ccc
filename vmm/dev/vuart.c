/*
 * Emulated 16550A. Source: TI PC16550D datasheet, Table 2 (register
 * summary), Table 4 (interrupt control functions), §8.6 (FIFO operation).
 *
 * Map: interrupt identification (iir_now) is computed from state on demand,
 * never stored, and update_irq() re-derives the IRQ line after every change;
 * the register handlers below only change state.
 */
#include "kernel/kernel.h"
#include "vmm/dev/vuart.h"

/* Register offsets from the base port. */
enum uart_reg { REG_RBR_THR, REG_IER, REG_IIR_FCR, REG_LCR, REG_MCR, REG_LSR, REG_MSR, REG_SCR };
#define REG_DLL REG_RBR_THR   /* with LCR.DLAB */
#define REG_DLM REG_IER

#define IER_ERBFI 0x01  /* received data available */
#define IER_ETBEI 0x02  /* transmitter holding register empty */
#define IER_ELSI  0x04  /* receiver line status */
#define IER_EDSSI 0x08  /* modem status */
#define IER_MASK  0x0F  /* bits 4-7 read 0 on the 16550A */

#define IIR_NO_INT  0x01
#define IIR_MSR     0x00
#define IIR_THRE    0x02
#define IIR_RDA     0x04
#define IIR_RLS     0x06
#define IIR_CTI     0x0C
#define IIR_FIFO_ON 0xC0  /* both FCR0 mirrors */

#define FCR_ENABLE    0x01
#define FCR_CLEAR_RX  0x02
#define FCR_CLEAR_TX  0x04
#define FCR_DMA_MODE  0x08
#define FCR_TRIGGER_SHIFT 6
#define FCR_KEPT      (FCR_ENABLE | FCR_DMA_MODE | 0xC0) /* bits 4-5 reserved */

#define LCR_DLAB 0x80

#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1F

#define LSR_DR   0x01
#define LSR_OE   0x02
#define LSR_PE   0x04
#define LSR_FE   0x08
#define LSR_BI   0x10
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LSR_ERRORS (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS  0x10
#define MSR_DSR  0x20
#define MSR_RI   0x40
#define MSR_DCD  0x80
#define MSR_DELTAS 0x0F
#define MSR_TERMINAL (MSR_CTS | MSR_DSR | MSR_DCD) /* a terminal is attached */

#define RESET_DIVISOR 12  /* 9600 baud from 1.8432 MHz; the datasheet leaves it undefined */

/* RX FIFO trigger level per FCR bits 7-6, bytes. */
static const uint8_t rx_trigger[4] = { 1, 4, 8, 14 };

/* ---------------------------------------------------------------- state */

static bool fifo_on(const struct vuart *u)
{
    return u->fcr & FCR_ENABLE;
}

static unsigned rx_capacity(const struct vuart *u)
{
    return fifo_on(u) ? VUART_FIFO_SIZE : 1;
}

/* Interrupt identification by priority: RLS > RDA/CTI > THRE > MSR. */
static uint8_t iir_now(const struct vuart *u)
{
    uint8_t id = IIR_NO_INT;
    if ((u->ier & IER_ELSI) && (u->lsr & LSR_ERRORS))
        id = IIR_RLS;
    else if ((u->ier & IER_ERBFI) && u->rx_count)
        id = fifo_on(u) && u->rx_count < rx_trigger[u->fcr >> FCR_TRIGGER_SHIFT] ? IIR_CTI : IIR_RDA;
    else if ((u->ier & IER_ETBEI) && u->thre_pending)
        id = IIR_THRE;
    else if ((u->ier & IER_EDSSI) && (u->msr & MSR_DELTAS))
        id = IIR_MSR;
    return (uint8_t)(id | (fifo_on(u) ? IIR_FIFO_ON : 0));
}

static void update_irq(struct vuart *u)
{
    bool level = !(iir_now(u) & IIR_NO_INT) && (u->mcr & MCR_OUT2) && !(u->mcr & MCR_LOOP);
    if (level != u->irq_level) {
        u->irq_level = level;
        vdev_irq_set(&u->irq, u->irq_no, level);
    }
}

/* One byte into the receiver; false if it was lost to overrun. */
static bool rx_push(struct vuart *u, uint8_t b)
{
    if (u->rx_count >= rx_capacity(u)) {
        u->lsr |= LSR_OE;
        u->rx_overruns++;
        if (fifo_on(u))
            return false;  /* FIFO kept, shift-register character lost */
        u->rx_count = 0;   /* 16450 mode: the new character overwrites RBR */
    }
    u->rx[(u->rx_head + u->rx_count) % VUART_FIFO_SIZE] = b;
    u->rx_count++;
    u->rx_bytes++;
    return true;
}

/* Move type-ahead from the line queue into the receiver while it has room. */
static void line_drain(struct vuart *u)
{
    while (u->line_count && u->rx_count < rx_capacity(u)) {
        rx_push(u, u->line[u->line_head]);
        u->line_head = (u->line_head + 1) & (VUART_LINE_QUEUE - 1);
        u->line_count--;
    }
}

static uint8_t rx_pop(struct vuart *u)
{
    if (!u->rx_count)
        return 0;
    uint8_t b = u->rx[u->rx_head];
    u->rx_head = (u->rx_head + 1) % VUART_FIFO_SIZE;
    u->rx_count--;
    line_drain(u);
    return b;
}

static void rx_clear(struct vuart *u)
{
    u->rx_head = u->rx_count = 0;
}

/* Modem status inputs: the terminal, or in loopback the MCR outputs. */
static uint8_t msr_lines(const struct vuart *u)
{
    if (!(u->mcr & MCR_LOOP))
        return MSR_TERMINAL;
    return (uint8_t)((u->mcr & MCR_RTS ? MSR_CTS : 0) | (u->mcr & MCR_DTR ? MSR_DSR : 0) |
                     (u->mcr & MCR_OUT1 ? MSR_RI : 0) | (u->mcr & MCR_OUT2 ? MSR_DCD : 0));
}

static void set_msr_lines(struct vuart *u, uint8_t lines)
{
    uint8_t old = u->msr, changed = old ^ lines;
    uint8_t delta = (changed & MSR_CTS ? MSR_DCTS : 0) | (changed & MSR_DSR ? MSR_DDSR : 0) |
                    (changed & MSR_DCD ? MSR_DDCD : 0) |
                    ((old & MSR_RI) && !(lines & MSR_RI) ? MSR_TERI : 0);
    u->msr = (uint8_t)(lines | ((old | delta) & MSR_DELTAS));
}

/* ---------------------------------------------------------------- registers */

static void write_thr(struct vuart *u, uint8_t b)
{
    u->tx_bytes++;
    if (u->mcr & MCR_LOOP)
        rx_push(u, b);
    else if (u->tx)
        u->tx(u->opaque, b);
    u->thre_pending = true;  /* written and at once empty again */
}

static void write_ier(struct vuart *u, uint8_t v)
{
    uint8_t old = u->ier;
    u->ier = v & IER_MASK;
    if ((u->ier & IER_ETBEI) && !(old & IER_ETBEI))
        u->thre_pending = true;  /* enabling ETBEI with THR empty raises THRE */
}

static void write_fcr(struct vuart *u, uint8_t v)
{
    if ((v ^ u->fcr) & FCR_ENABLE)
        rx_clear(u);  /* changing FCR0 resets both FIFOs */
    if (v & FCR_CLEAR_RX)
        rx_clear(u);
    /* FCR_CLEAR_TX: the transmitter is always empty. Other bits need FCR0. */
    u->fcr = v & FCR_ENABLE ? v & FCR_KEPT : 0;
    line_drain(u); /* room again (or more of it): type-ahead moves in */
}

static void write_mcr(struct vuart *u, uint8_t v)
{
    u->mcr = v & MCR_MASK;
    set_msr_lines(u, msr_lines(u));
}

static uint8_t read_iir(struct vuart *u)
{
    uint8_t iir = iir_now(u);
    if ((iir & ~IIR_FIFO_ON) == IIR_THRE)
        u->thre_pending = false;  /* reading IIR with THRE as source clears it */
    return iir;
}

static uint8_t read_lsr(struct vuart *u)
{
    uint8_t v = (uint8_t)(u->lsr | LSR_THRE | LSR_TEMT | (u->rx_count ? LSR_DR : 0));
    u->lsr &= (uint8_t)~LSR_ERRORS;
    return v;
}

static uint8_t read_msr(struct vuart *u)
{
    uint8_t v = u->msr;
    u->msr &= (uint8_t)~MSR_DELTAS;
    return v;
}

static uint8_t uart_read(struct vuart *u, unsigned reg)
{
    bool dlab = u->lcr & LCR_DLAB;
    switch (reg) {
    case REG_RBR_THR: return dlab ? (uint8_t)u->divisor : rx_pop(u);
    case REG_IER:     return dlab ? (uint8_t)(u->divisor >> 8) : u->ier;
    case REG_IIR_FCR: return read_iir(u);
    case REG_LCR:     return u->lcr;
    case REG_MCR:     return u->mcr;
    case REG_LSR:     return read_lsr(u);
    case REG_MSR:     return read_msr(u);
    default:          return u->scr;
    }
}

static void uart_write(struct vuart *u, unsigned reg, uint8_t v)
{
    bool dlab = u->lcr & LCR_DLAB;
    switch (reg) {
    case REG_RBR_THR:
        if (dlab)
            u->divisor = (uint16_t)((u->divisor & 0xFF00) | v);
        else
            write_thr(u, v);
        break;
    case REG_IER:
        if (dlab)
            u->divisor = (uint16_t)((u->divisor & 0x00FF) | v << 8);
        else
            write_ier(u, v);
        break;
    case REG_IIR_FCR: write_fcr(u, v); break;
    case REG_LCR:     u->lcr = v; break;
    case REG_MCR:     write_mcr(u, v); break;
    case REG_LSR:     break;  /* LSR writes are for factory test only */
    case REG_MSR:     break;
    default:          u->scr = v; break;
    }
}

static uint32_t uart_in(void *opaque, uint16_t port, unsigned size)
{
    struct vuart *u = opaque;
    uint8_t v = uart_read(u, (uint16_t)(port - u->base) % VUART_PORTS);
    update_irq(u);
    return v;
}

static void uart_out(void *opaque, uint16_t port, unsigned size, uint32_t val)
{
    struct vuart *u = opaque;
    uart_write(u, (uint16_t)(port - u->base) % VUART_PORTS, (uint8_t)val);
    update_irq(u);
}

/* ---------------------------------------------------------------- public */

void vuart_reset(struct vuart *u)
{
    u->ier = u->lcr = u->mcr = u->scr = u->fcr = 0;
    u->lsr = 0;
    u->msr = MSR_TERMINAL;
    u->divisor = RESET_DIVISOR;
    rx_clear(u);
    u->line_head = u->line_count = 0;
    u->thre_pending = false;
    u->tx_bytes = u->rx_bytes = u->rx_overruns = 0;
    update_irq(u);
}

void vuart_init(struct vuart *u, uint16_t base, int irq_no, vuart_tx_fn tx, void *opaque,
                struct vdev_irq irq)
{
    memset(u, 0, sizeof(*u));
    u->base = base;
    u->irq_no = irq_no;
    u->tx = tx;
    u->irq = irq;
    u->opaque = opaque;
    vuart_reset(u);
}

int vuart_attach(struct vuart *u, struct iobus *bus)
{
    return iobus_register(bus, u->base, VUART_PORTS, IOBUS_SZ_1, uart_in, uart_out, u, "uart");
}

size_t vuart_receive(struct vuart *u, const uint8_t *buf, size_t len)
{
    size_t stored = 0;
    for (size_t i = 0; i < len; i++)
        stored += rx_push(u, buf[i]);
    update_irq(u);
    return stored;
}

size_t vuart_feed(struct vuart *u, const uint8_t *buf, size_t len)
{
    size_t n = 0;
    for (; n < len && u->line_count < VUART_LINE_QUEUE; n++) {
        u->line[(u->line_head + u->line_count) & (VUART_LINE_QUEUE - 1)] = buf[n];
        u->line_count++;
    }
    line_drain(u);
    update_irq(u);
    return n;
}

size_t vuart_rx_space(const struct vuart *u)
{
    return rx_capacity(u) - u->rx_count;
}
