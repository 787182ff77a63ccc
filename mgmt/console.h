/*
 * The serial management console on COM1: one kernel thread ("console") that
 * reads bytes with serial_getc(), edits lines (mgmt/lineedit.h), runs
 * commands (mgmt/cmd.h) and writes their output with serial_write().
 *
 * Other modules add commands with cmd_register_table() (mgmt/cmd.h), before
 * console_start() or from a command handler.
 *
 * Attach: a module can take over the serial line for a while (`console NAME`
 * attaches the administrator to a VM's virtual serial port). While a client
 * is attached, every received byte goes to client->input instead of the line
 * editor, except CONSOLE_ESCAPE (^], as in telnet), which ends the attach and
 * brings the prompt back. The client writes its own output with
 * serial_write(). Sequence for the vmm's `console NAME` handler:
 *
 *     static const struct console_client c = { "lin", vuart_input, vuart_gone, vm };
 *     return console_attach(&c);     // prints "[attached to lin; ^] detaches]"
 *     ...                            // handler returns; bytes now reach vuart_input
 *     console_detach(&c);            // when the VM dies (any thread)
 */
#ifndef HV86_MGMT_CONSOLE_H
#define HV86_MGMT_CONSOLE_H
#include <stdint.h>

#define CONSOLE_PROMPT "hv86> "
#define CONSOLE_ESCAPE 0x1d /* ^] : leave an attached client */

struct console_client {
    const char *name; /* shown in the attach/detach notices; must outlive the attach */
    /* One received byte. Runs in the console thread; must not block for long
     * (the console does nothing else meanwhile). Required. */
    void (*input)(uint8_t byte, void *ctx);
    /* The administrator pressed CONSOLE_ESCAPE: the attach is over. Runs in
     * the console thread after the client is gone. May be NULL. */
    void (*detached)(void *ctx);
    void *ctx;
};

/*
 * console_start - register the built-in commands (version, uptime, date, mem,
 * threads, disks, pci, log, stats, debug fault, ...) and create the console
 * thread, which prints a banner and the prompt CONSOLE_PROMPT. Call once from
 * kernel main after sched_init(), serial_irq_init() and the drivers' init,
 * with interrupts on or about to be. Returns the thread id (> 0), E_BUSY on
 * any call after the first (even a failed one: the tables are registered
 * once), E_NOMEM if the thread could not be created, or the error of a
 * command table that failed to register (a build mistake: two tables claim
 * the same command). Commands of other modules may be registered before or
 * after.
 */
int console_start(void);

/*
 * console_attach - route received bytes to c until CONSOLE_ESCAPE or
 * console_detach(). *c is copied; c->name must stay valid. Prints
 * "[attached to NAME; press ^] to detach]". Call from a command handler (the
 * console thread) or any thread. Returns 0, E_INVAL without an input
 * function, E_BUSY if a client is already attached.
 */
int console_attach(const struct console_client *c);

/*
 * console_detach - end the attach of c (compared by input function and ctx)
 * from any thread, e.g. when the VM behind it is destroyed; c->detached is
 * not called. The console prints "[detached from NAME]" and the prompt: at
 * once from the console thread, otherwise when the next byte arrives.
 * Returns 0, or E_NOENT if c is not the attached client.
 */
int console_detach(const struct console_client *c);

#endif
