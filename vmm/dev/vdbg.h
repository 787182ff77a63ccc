/*
 * Debug ports a guest (or a test guest) may use:
 *   0x80  POST code: kept in post_code, otherwise a sink (also the classic
 *         "slow down I/O" port Linux writes between PIC accesses)
 *   0xE9  Bochs/QEMU debug console: bytes written go to the owner's console
 *         callback; reads return 0xE9, the value that tells a guest it exists
 *   0x402 QEMU's isa-debugcon port as SeaBIOS's QEMU build uses it
 *         (CONFIG_DEBUG_IO): the same as 0xE9; SeaBIOS writes its debug log
 *         there once a read returns 0xE9
 *   0xF4  test exit, like QEMU's isa-debug-exit (iosize 4): a write of value N
 *         (any size) calls the owner's exit callback with N; QEMU would exit
 *         with status (N << 1) | 1, the owner decides what N means
 */
#ifndef HV86_VMM_DEV_VDBG_H
#define HV86_VMM_DEV_VDBG_H
#include <stdint.h>
#include "vmm/dev/iobus.h"

#define VDBG_POST_PORT    0x80
#define VDBG_CONSOLE_PORT 0xE9
#define VDBG_QEMU_CON_PORT 0x402
#define VDBG_EXIT_PORT    0xF4
#define VDBG_EXIT_PORTS   4     /* 0xF4-0xF7, dword writes at 0xF4 */
#define VDBG_CONSOLE_ID   0xE9  /* read back from the console port */

typedef void (*vdbg_console_fn)(void *opaque, uint8_t byte);
typedef void (*vdbg_exit_fn)(void *opaque, uint32_t code);

struct vdbg {
    uint8_t post_code;        /* last byte written to 0x80 */
    uint64_t post_writes;
    vdbg_console_fn console;
    vdbg_exit_fn exit;
    void *opaque;             /* passed to console and exit */
};

/* console and exit may be NULL (bytes / requests are then dropped). */
void vdbg_init(struct vdbg *dbg, vdbg_console_fn console, vdbg_exit_fn exit, void *opaque);

/* Claim 0x80, 0xE9, 0x402 and 0xF4-0xF7. Returns 0 or an iobus error. */
int vdbg_attach(struct vdbg *dbg, struct iobus *bus);

#endif
