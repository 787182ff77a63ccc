/*
 * Minimal i8042. Source: IBM PC/AT Technical Reference, "Keyboard
 * controller" (status register, commands); IBM PS/2 Hardware Interface
 * Technical Reference (AUX commands). See vkbc.h for what is modelled.
 *
 * Map: a queue of output bytes whose head is the output buffer (OBF) with its
 * status flags; update_irq() derives IRQ1/IRQ12 from the head; commands are a
 * flat switch, and commands that take a data byte park in pending_cmd.
 */
#include "kernel/kernel.h"
#include "vmm/dev/vkbc.h"

#define ST_OBF     0x01  /* output buffer full */
#define ST_IBF     0x02  /* input buffer full (never: we consume at once) */
#define ST_SYS     0x04  /* system flag, mirrors CTR bit 2 */
#define ST_A2      0x08  /* last write was a command */
#define ST_UNLOCK  0x10  /* keyboard not inhibited by the key lock */
#define ST_AUXDATA 0x20  /* output byte comes from the AUX port */
#define ST_TIMEOUT 0x40  /* device did not answer */

#define CTR_KBDINT 0x01
#define CTR_AUXINT 0x02
#define CTR_SYS    0x04
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE  0x40

#define OUTPORT_RESET 0x01  /* 0 = CPU reset asserted */
#define OUTPORT_A20   0x02

enum kbc_cmd {
    CMD_READ_CTR = 0x20, CMD_READ_RAM_LAST = 0x3F,
    CMD_WRITE_CTR = 0x60, CMD_WRITE_RAM_LAST = 0x7F,
    CMD_AUX_DISABLE = 0xA7, CMD_AUX_ENABLE = 0xA8, CMD_AUX_TEST = 0xA9,
    CMD_SELF_TEST = 0xAA, CMD_KBD_TEST = 0xAB,
    CMD_KBD_DISABLE = 0xAD, CMD_KBD_ENABLE = 0xAE,
    CMD_READ_INPUT = 0xC0, CMD_READ_OUTPORT = 0xD0, CMD_WRITE_OUTPORT = 0xD1,
    CMD_WRITE_KBD_OBUF = 0xD2, CMD_WRITE_AUX_OBUF = 0xD3, CMD_WRITE_AUX = 0xD4,
    CMD_A20_OFF = 0xDD, CMD_A20_ON = 0xDF, CMD_READ_TEST = 0xE0,
    CMD_PULSE_FIRST = 0xF0,  /* 0xF0-0xFF pulse output port bits 0-3 where clear */
};

#define SELF_TEST_OK   0x55
#define IFACE_TEST_OK  0x00
#define DEV_NO_ANSWER  0xFE  /* "resend": what the controller hands back on time-out */
#define INPUT_PORT     0xA0  /* key lock off, no manufacturing jumper */
#define RESET_CTR      (CTR_XLATE | CTR_AUXDIS | CTR_SYS | CTR_KBDINT)
#define RESET_OUTPORT  (OUTPORT_RESET | OUTPORT_A20)

/* ---------------------------------------------------------------- output buffer */

static void update_irq(struct vkbc *kbc)
{
    bool obf = kbc->qcount != 0;
    bool aux = obf && (kbc->qflags[kbc->qhead] & ST_AUXDATA);
    bool irq1 = obf && !aux && (kbc->ctr & CTR_KBDINT);
    bool irq12 = obf && aux && (kbc->ctr & CTR_AUXINT);

    if (irq1 != kbc->irq1)
        vdev_irq_set(&kbc->irq, VKBC_IRQ_KBD, irq1);
    if (irq12 != kbc->irq12)
        vdev_irq_set(&kbc->irq, VKBC_IRQ_AUX, irq12);
    kbc->irq1 = irq1;
    kbc->irq12 = irq12;
}

/* Queue a byte for the guest; a full queue drops the newest (the real
 * controller has room for one and would not accept the command at all). */
static void push(struct vkbc *kbc, uint8_t byte, uint8_t flags)
{
    if (kbc->qcount == VKBC_QUEUE)
        return;
    unsigned tail = (kbc->qhead + kbc->qcount) % VKBC_QUEUE;
    kbc->queue[tail] = byte;
    kbc->qflags[tail] = flags;
    kbc->qcount++;
}

static uint8_t pop(struct vkbc *kbc)
{
    if (!kbc->qcount)
        return kbc->queue[kbc->qhead];  /* re-reading gives the last byte again */
    uint8_t b = kbc->queue[kbc->qhead];
    kbc->qhead = (kbc->qhead + 1) % VKBC_QUEUE;
    kbc->qcount--;
    return b;
}

static uint8_t status(const struct vkbc *kbc)
{
    uint8_t st = ST_UNLOCK | (kbc->ctr & CTR_SYS ? ST_SYS : 0) | (kbc->last_was_cmd ? ST_A2 : 0);
    if (kbc->qcount)
        st |= ST_OBF | kbc->qflags[kbc->qhead];
    return st;
}

/* ---------------------------------------------------------------- commands */

static void pulse_reset(struct vkbc *kbc)
{
    kbc->resets++;
    if (kbc->reset)
        kbc->reset(kbc->opaque);
}

static void write_outport(struct vkbc *kbc, uint8_t v)
{
    kbc->outport = v;
    kbc->a20 = v & OUTPORT_A20;
    if (!(v & OUTPORT_RESET))
        pulse_reset(kbc);
    kbc->outport |= OUTPORT_RESET;  /* the reset line is a pulse, not a state */
}

static void command(struct vkbc *kbc, uint8_t cmd)
{
    if (cmd >= CMD_READ_CTR && cmd <= CMD_READ_RAM_LAST) {
        push(kbc, cmd == CMD_READ_CTR ? kbc->ctr : 0, 0);
        return;
    }
    if (cmd >= CMD_PULSE_FIRST) {
        if (!(cmd & OUTPORT_RESET))
            pulse_reset(kbc);
        return;
    }
    switch (cmd) {
    case CMD_AUX_DISABLE:  kbc->ctr |= CTR_AUXDIS; break;
    case CMD_AUX_ENABLE:   kbc->ctr &= ~CTR_AUXDIS; break;
    case CMD_KBD_DISABLE:  kbc->ctr |= CTR_KBDDIS; break;
    case CMD_KBD_ENABLE:   kbc->ctr &= ~CTR_KBDDIS; break;
    case CMD_AUX_TEST:
    case CMD_KBD_TEST:     push(kbc, IFACE_TEST_OK, 0); break;
    case CMD_SELF_TEST:    push(kbc, SELF_TEST_OK, 0); break;
    case CMD_READ_INPUT:   push(kbc, INPUT_PORT, 0); break;
    case CMD_READ_OUTPORT: push(kbc, kbc->outport, 0); break;
    case CMD_READ_TEST:    push(kbc, 0, 0); break;
    case CMD_A20_OFF:      kbc->outport &= ~OUTPORT_A20; kbc->a20 = false; break;
    case CMD_A20_ON:       kbc->outport |= OUTPORT_A20; kbc->a20 = true; break;
    default:
        if ((cmd >= CMD_WRITE_CTR && cmd <= CMD_WRITE_RAM_LAST) ||
            (cmd >= CMD_WRITE_OUTPORT && cmd <= CMD_WRITE_AUX))
            kbc->pending_cmd = cmd;  /* wants a data byte */
        break;  /* anything else: ignored, as unknown commands are */
    }
}

/* A byte written to 0x60: a command's parameter, or for the keyboard. */
static void data(struct vkbc *kbc, uint8_t v)
{
    uint8_t cmd = kbc->pending_cmd;
    kbc->pending_cmd = 0;
    switch (cmd) {
    case CMD_WRITE_CTR:      kbc->ctr = v; break;
    case CMD_WRITE_OUTPORT:  write_outport(kbc, v); break;
    case CMD_WRITE_KBD_OBUF: push(kbc, v, 0); break;
    case CMD_WRITE_AUX_OBUF: push(kbc, v, ST_AUXDATA); break;
    case CMD_WRITE_AUX:      push(kbc, DEV_NO_ANSWER, ST_AUXDATA | ST_TIMEOUT); break;
    case 0:                  push(kbc, DEV_NO_ANSWER, ST_TIMEOUT); break;  /* no keyboard */
    default:                 break;  /* controller RAM 0x61-0x7F: not kept */
    }
}

/* ---------------------------------------------------------------- ports */

static uint32_t kbc_in(void *opaque, uint16_t port, unsigned size)
{
    struct vkbc *kbc = opaque;
    if (port == VKBC_CMD)
        return status(kbc);
    uint8_t b = pop(kbc);
    /* The line drops when the buffer is read, so the next byte is a new edge. */
    if (kbc->irq1)
        vdev_irq_set(&kbc->irq, VKBC_IRQ_KBD, 0);
    if (kbc->irq12)
        vdev_irq_set(&kbc->irq, VKBC_IRQ_AUX, 0);
    kbc->irq1 = kbc->irq12 = false;
    update_irq(kbc);
    return b;
}

static void kbc_out(void *opaque, uint16_t port, unsigned size, uint32_t val)
{
    struct vkbc *kbc = opaque;
    kbc->last_was_cmd = port == VKBC_CMD;
    if (port == VKBC_CMD) {
        kbc->pending_cmd = 0;
        command(kbc, (uint8_t)val);
    } else {
        data(kbc, (uint8_t)val);
    }
    update_irq(kbc);
}

#define PORT92_RESET 0x01 /* a 0 -> 1 write pulses the reset line */
#define PORT92_A20   0x02

static uint32_t port92_in(void *opaque, uint16_t port, unsigned size)
{
    const struct vkbc *kbc = opaque;
    return (kbc->port92 & PORT92_RESET) | (kbc->a20 ? PORT92_A20 : 0);
}

static void port92_out(void *opaque, uint16_t port, unsigned size, uint32_t val)
{
    struct vkbc *kbc = opaque;
    bool pulse = (val & PORT92_RESET) && !(kbc->port92 & PORT92_RESET);
    kbc->port92 = (uint8_t)(val & (PORT92_RESET | PORT92_A20));
    kbc->a20 = val & PORT92_A20;
    if (pulse)
        pulse_reset(kbc);
}

void vkbc_reset(struct vkbc *kbc)
{
    kbc->ctr = RESET_CTR;
    kbc->outport = RESET_OUTPORT;
    kbc->port92 = 0;
    kbc->a20 = true;
    kbc->pending_cmd = 0;
    kbc->last_was_cmd = false;
    kbc->qhead = kbc->qcount = 0;
    update_irq(kbc);
}

void vkbc_init(struct vkbc *kbc, vdev_reset_fn reset, void *opaque, struct vdev_irq irq)
{
    memset(kbc, 0, sizeof(*kbc));
    kbc->reset = reset;
    kbc->irq = irq;
    kbc->opaque = opaque;
    vkbc_reset(kbc);
}

int vkbc_attach(struct vkbc *kbc, struct iobus *bus)
{
    int err = iobus_register(bus, VKBC_DATA, 1, IOBUS_SZ_1, kbc_in, kbc_out, kbc, "kbc-data");
    if (!err)
        err = iobus_register(bus, VKBC_CMD, 1, IOBUS_SZ_1, kbc_in, kbc_out, kbc, "kbc-cmd");
    if (!err)
        err = iobus_register(bus, VKBC_PORT92, 1, IOBUS_SZ_1, port92_in, port92_out, kbc, "port92");
    return err;
}
