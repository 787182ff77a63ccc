/*
 * The console thread: COM1 bytes -> line editor -> command dispatcher, and
 * the attach hook that lends the line to another module (console.h).
 *
 * Only the console thread touches the editor and runs commands. The attached
 * client can be changed from other threads (console_detach when a VM dies),
 * so `client`, `attached` and `detach_notice` are guarded by client_lock; the
 * client's callbacks are called from a copy, outside the lock, because they
 * may take locks of their own.
 */
#include "mgmt/console.h"
#include "drivers/serial.h"
#include "kernel/boot.h"
#include "kernel/kernel.h"
#include "kernel/sched.h"
#include "kernel/spinlock.h"
#include "mgmt/cmd.h"
#include "mgmt/lineedit.h"
#include "mgmt/syscmds.h"

static struct lineedit editor; /* 9 KiB: static, not on the 16 KiB thread stack */
static bool started;

static spinlock_t client_lock = SPINLOCK_INIT("console_client");
static struct console_client client;
static bool attached;
static bool detach_notice; /* a detach happened that the console has not announced */

/* ---------------------------------------------------------------- output */

static void term_raw(const char *buf, size_t len, void *ctx) { serial_write(buf, len); }

/* Command output says "\n"; a serial terminal wants "\r\n". */
static void term_lines(const char *buf, size_t len, void *ctx)
{
    size_t start = 0;

    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        serial_write(buf + start, i - start);
        serial_write("\r\n", 2);
        start = i + 1;
    }
    serial_write(buf + start, len - start);
}

static struct cmd_out term_out = { term_lines, NULL, 0 };

static void prompt(void) { serial_write(CONSOLE_PROMPT, sizeof(CONSOLE_PROMPT) - 1); }

/* TAB: complete command words; after listing choices, prompt again (the
 * editor then writes the line again). */
static bool complete(const char *line, size_t cursor, char *ins, size_t size, void *ctx)
{
    int n = cmd_complete(line, cursor, ins, size, &term_out);

    if (n < 2 || ins[0])
        return false;
    prompt();
    return true;
}

/* ---------------------------------------------------------------- attach */

int console_attach(const struct console_client *c)
{
    uint32_t fl;

    if (!c->input)
        return E_INVAL;
    fl = spin_lock_irqsave(&client_lock);
    if (attached) {
        spin_unlock_irqrestore(&client_lock, fl);
        return E_BUSY;
    }
    client = *c;
    attached = true;
    detach_notice = false;
    spin_unlock_irqrestore(&client_lock, fl);
    cmd_printf(&term_out, "[attached to %s; press ^] to detach]\n", c->name);
    return 0;
}

/* Take the client away; returns whether one was attached (copied to *was). */
static bool take_client(const struct console_client *match, struct console_client *was)
{
    uint32_t fl = spin_lock_irqsave(&client_lock);
    bool ok = attached && (!match || (match->input == client.input && match->ctx == client.ctx));

    if (ok) {
        *was = client;
        attached = false;
        detach_notice = true;
    }
    spin_unlock_irqrestore(&client_lock, fl);
    return ok;
}

int console_detach(const struct console_client *c)
{
    struct console_client was;

    return take_client(c, &was) ? 0 : E_NOENT;
}

/* If a detach is pending, say so and bring the prompt back. */
static void announce_detach(void)
{
    uint32_t fl = spin_lock_irqsave(&client_lock);
    bool notice = detach_notice;
    const char *name = client.name;

    detach_notice = false;
    spin_unlock_irqrestore(&client_lock, fl);
    if (!notice)
        return;
    cmd_printf(&term_out, "\n[detached from %s]\n", name ? name : "?");
    prompt();
    le_redraw(&editor);
}

/* Hand b to the attached client. Returns false if nobody is attached. */
static bool route_to_client(uint8_t b)
{
    struct console_client c;
    uint32_t fl = spin_lock_irqsave(&client_lock);
    bool on = attached;

    c = client;
    spin_unlock_irqrestore(&client_lock, fl);
    if (!on)
        return false;
    if (b != CONSOLE_ESCAPE) {
        c.input(b, c.ctx);
        return true;
    }
    if (take_client(&c, &c) && c.detached)
        c.detached(c.ctx); /* no lock held: it may take its own */
    return true;
}

/* ---------------------------------------------------------------- the thread */

static bool is_attached(void)
{
    uint32_t fl = spin_lock_irqsave(&client_lock);
    bool on = attached;

    spin_unlock_irqrestore(&client_lock, fl);
    return on;
}

static void edit_byte(uint8_t b)
{
    enum le_event ev = le_feed(&editor, b);

    if (ev == LE_PENDING)
        return;
    if (ev == LE_LINE)
        cmd_run(le_line(&editor), &term_out);
    if (!is_attached())
        prompt();
}

/*
 * The startup script: a GRUB module named "rc" (`module2 /boot/hv86.rc rc`)
 * holding console command lines, run in order at boot as if typed, each
 * echoed after "rc: " (not the prompt: scripts driving the console wait for
 * that); blank lines and lines starting with '#' are
 * skipped. A failing line prints its error and the script goes on.
 */
static void run_startup_script(void)
{
    const struct boot_module *m = boot_module_find("rc");
    if (!m)
        return;
    uint32_t off = 0;
    char line[CMD_LINE_MAX + 1];
    while (off < m->size) {
        size_t n = 0;
        bool too_long = false;
        char ch = 0;
        /* A byte at a time: scripts are a few KiB, and the module is not
         * contiguous anywhere (kernel/bootmod.c). */
        for (; off < m->size && !boot_module_read(m, off, &ch, 1) && ch != '\n'; off++) {
            if (ch == '\r')
                continue;
            if (n + 1 < sizeof(line))
                line[n++] = ch;
            else
                too_long = true;
        }
        off++;
        line[n] = 0;
        if (too_long) {
            cmd_printf(&term_out, "startup script: line over %u bytes skipped: %.40s...\n", CMD_LINE_MAX, line);
            continue;
        }
        size_t i = 0;
        while (line[i] == ' ' || line[i] == '\t')
            i++;
        if (!line[i] || line[i] == '#')
            continue;
        cmd_printf(&term_out, "rc: %s\n", line + i);
        cmd_run(line + i, &term_out);
    }
}

static void console_thread(void *arg)
{
    cmd_printf(&term_out, "\nhv86 management console; type 'help' for commands\n");
    run_startup_script();
    prompt();
    for (;;) {
        int c = serial_getc();

        announce_detach(); /* a client left, from another thread, while we slept */
        if (c >= 0 && !route_to_client((uint8_t)c))
            edit_byte((uint8_t)c);
        announce_detach();
    }
}

int console_start(void)
{
    int err;

    if (started)
        return E_BUSY;
    started = true;
    if ((err = syscmds_register()))
        return err;
    le_init(&editor, term_raw, NULL);
    le_set_completer(&editor, complete, NULL);
    return thread_create("console", console_thread, NULL);
}
