/* Debug ports: POST sink, Bochs console, test exit. See vdbg.h. */
#include "kernel/kernel.h"
#include "vmm/dev/vdbg.h"

void vdbg_init(struct vdbg *dbg, vdbg_console_fn console, vdbg_exit_fn exit, void *opaque)
{
    memset(dbg, 0, sizeof(*dbg));
    dbg->console = console;
    dbg->exit = exit;
    dbg->opaque = opaque;
}

static uint32_t post_in(void *opaque, uint16_t port, unsigned size)
{
    return ((struct vdbg *)opaque)->post_code;
}

static void post_out(void *opaque, uint16_t port, unsigned size, uint32_t val)
{
    struct vdbg *dbg = opaque;
    dbg->post_code = (uint8_t)val;
    dbg->post_writes++;
}

static uint32_t console_in(void *opaque, uint16_t port, unsigned size)
{
    return VDBG_CONSOLE_ID;
}

static void console_out(void *opaque, uint16_t port, unsigned size, uint32_t val)
{
    struct vdbg *dbg = opaque;
    if (dbg->console)
        dbg->console(dbg->opaque, (uint8_t)val);
}

static void exit_out(void *opaque, uint16_t port, unsigned size, uint32_t val)
{
    struct vdbg *dbg = opaque;
    if (port == VDBG_EXIT_PORT && dbg->exit)
        dbg->exit(dbg->opaque, val);  /* only a write starting at 0xF4 counts */
}

int vdbg_attach(struct vdbg *dbg, struct iobus *bus)
{
    int err = iobus_register(bus, VDBG_POST_PORT, 1, IOBUS_SZ_1, post_in, post_out, dbg, "post");
    if (!err)
        err = iobus_register(bus, VDBG_CONSOLE_PORT, 1, IOBUS_SZ_1, console_in, console_out, dbg, "dbgcon");
    if (!err)
        err = iobus_register(bus, VDBG_QEMU_CON_PORT, 1, IOBUS_SZ_1, console_in, console_out, dbg, "debugcon");
    if (!err)
        err = iobus_register(bus, VDBG_EXIT_PORT, VDBG_EXIT_PORTS, IOBUS_SZ_ALL, NULL, exit_out, dbg, "dbg-exit");
    return err;
}
