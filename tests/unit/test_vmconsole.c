/* Unit tests of a VM's console output path (vmm/vmconsole.c): the replay of
 * the scrollback, the forwarder, and output dropped oldest first with a
 * counted marker when the guest outruns the line. The kernel's scheduler and
 * COM1 are stubs: serial_write captures, and the forwarder thread runs in
 * the test until it would sleep (wait_queue_sleep jumps back here). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "drivers/serial.h"
#include "kernel/kernel.h"
#include "kernel/sched.h"
#include "mgmt/cmd.h"
#include "vmm/vm.h"

#define CAP (4 * VM_SCROLLBACK)

const char *err_name(int err) { return "E_OTHER"; }

static char *cap;
static size_t cap_len;
static thread_fn forwarder;
static jmp_buf idle;
static int wakes;

/* ---------------------------------------------------------------- stubs */

uint32_t spin_lock_irqsave(spinlock_t *l)
{
    assert_int_equal(l->locked, 0); /* a recursive acquisition */
    l->locked = 1;
    return 0;
}
void spin_unlock_irqrestore(spinlock_t *l, uint32_t fl) { l->locked = 0; }
void wait_queue_sleep(struct wait_queue *q, spinlock_t *l, uint32_t *fl)
{
    l->locked = 0;
    longjmp(idle, 1);
}
void wait_queue_wake_all(struct wait_queue *q) { wakes++; }
void thread_sleep(uint32_t ticks) { }
int thread_create(const char *name, thread_fn fn, void *arg)
{
    forwarder = fn;
    return 7;
}
void serial_write(const char *buf, size_t len)
{
    assert_true(cap_len + len <= CAP);
    memcpy(cap + cap_len, buf, len);
    cap_len += len;
}
static void capture(const char *buf, size_t len, void *ctx) { serial_write(buf, len); }
static struct cmd_out out = { capture, NULL, 0 };

/* Run the forwarder until it has nothing to send. */
static void forward(void)
{
    if (!setjmp(idle))
        forwarder(NULL);
}

static struct vm *vm_new(void)
{
    struct vm *vm = calloc(1, sizeof(*vm));
    assert_non_null(vm);
    cap_len = 0;
    return vm;
}

/* A VM just attached: empty scrollback replayed, output forwarded live. */
static struct vm *vm_new_live(void)
{
    struct vm *vm = vm_new();
    vm_console_replay(vm, &out);
    assert_int_equal(vm_console_live(vm), 0);
    return vm;
}

/* Guest output: n bytes of a pattern with no newline, from offset `from`. */
static void guest_prints(struct vm *vm, uint32_t from, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)('a' + (from + i) % 26);
        vm_console_output(vm, &b, 1);
    }
}

static void assert_pattern(const char *p, uint32_t from, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if ((uint8_t)p[i] != 'a' + (from + i) % 26)
            fail_msg("byte %u of %u: got 0x%02x", i, n, (uint8_t)p[i]);
}

/* ---------------------------------------------------------------- tests */

static void test_replay_short(void **state)
{
    struct vm *vm = vm_new();
    guest_prints(vm, 0, 1000);
    vm_console_replay(vm, &out);
    assert_int_equal(cap_len, 1000);
    assert_pattern(cap, 0, 1000);
    assert_int_equal(vm->scroll_sent, 1000);
    free(vm);
}

/* Three scrollbacks without a newline (the memory tester): the replay is
 * the last VM_SCROLLBACK bytes, in order, and reports nothing lost. */
static void test_replay_wrapped(void **state)
{
    struct vm *vm = vm_new();
    guest_prints(vm, 0, 3 * VM_SCROLLBACK + 123);
    vm_console_replay(vm, &out);
    assert_int_equal(cap_len, VM_SCROLLBACK);
    assert_pattern(cap, 2 * VM_SCROLLBACK + 123, VM_SCROLLBACK);
    assert_int_equal(vm->scroll_lost, 0);
    free(vm);
}

/* Live: what the guest prints after the replay reaches the line, and
 * nothing of it before vm_console_live. */
static void test_live_forwards(void **state)
{
    struct vm *vm = vm_new();
    guest_prints(vm, 0, 10);
    vm_console_replay(vm, &out);
    guest_prints(vm, 10, 500);
    assert_int_equal(cap_len, 10);
    assert_int_equal(vm_console_live(vm), 0);
    wakes = 0;
    guest_prints(vm, 510, 90);
    assert_int_equal(wakes, 90);
    forward();
    assert_int_equal(cap_len, 600);
    assert_pattern(cap, 0, 600);
    vm_console_unlive(vm);
    free(vm);
}

/* The guest outruns the line by two scrollbacks: the oldest unsent bytes
 * are dropped, one marker counts them, the newest VM_SCROLLBACK follow. */
static void test_outrun_drops_oldest(void **state)
{
    struct vm *vm = vm_new_live();
    guest_prints(vm, 0, 3 * VM_SCROLLBACK);
    forward();
    char marker[128];
    int mlen = snprintf(marker, sizeof(marker),
                        "\n[hv86: %u bytes of output lost: the guest outran the console line]\n",
                        2 * VM_SCROLLBACK);
    assert_int_equal(cap_len, (size_t)mlen + VM_SCROLLBACK);
    assert_memory_equal(cap, marker, (size_t)mlen);
    assert_pattern(cap + mlen, 2 * VM_SCROLLBACK, VM_SCROLLBACK);
    assert_int_equal(vm->scroll_lost, 2 * VM_SCROLLBACK);
    vm_console_unlive(vm);
    free(vm);
}

/* After unlive (^]) nothing more of the VM is forwarded or woken for, and
 * scroll_head keeps counting for the next replay. */
static void test_unlive_stops(void **state)
{
    struct vm *vm = vm_new_live();
    vm_console_unlive(vm);
    wakes = 0;
    guest_prints(vm, 0, 100);
    forward();
    assert_int_equal(wakes, 0);
    assert_int_equal(cap_len, 0);
    assert_int_equal(vm->scroll_head, 100);
    free(vm);
}

/* Past 4 GiB of output (an hour of a flood at 1 MB/s) the replay is still
 * one whole scrollback: the counters are 64-bit. */
static void test_past_4gib(void **state)
{
    struct vm *vm = vm_new();
    vm->scroll_head = 0xFFFFFF00u;
    guest_prints(vm, 0, VM_SCROLLBACK + 0x200);
    vm_console_replay(vm, &out);
    assert_int_equal(cap_len, VM_SCROLLBACK);
    assert_pattern(cap, 0x200, VM_SCROLLBACK);
    free(vm);
}

int main(void)
{
    cap = malloc(CAP);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_short),
        cmocka_unit_test(test_replay_wrapped),
        cmocka_unit_test(test_live_forwards),
        cmocka_unit_test(test_outrun_drops_oldest),
        cmocka_unit_test(test_unlive_stops),
        cmocka_unit_test(test_past_4gib),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
