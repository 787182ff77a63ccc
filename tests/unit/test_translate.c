/*
 * Execution tests of the binary translator on the host: guest snippets are
 * run natively and translated, and registers, flags and memory compared;
 * sensitive instructions are checked against a reference model of the
 * virtual CPU (monitor_run below); plus a randomized program generator,
 * TC eviction, self-modifying code, chaining and the fault map.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <signal.h>
#include <x86intrin.h>
#include <ucontext.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <asm/ldt.h>
#include <cmocka.h>
#include "bt/decode.h"
#include "bt/translate.h"
#include "kernel/kernel.h"
#include "tests/unit/bt_harness.h"

#define GUEST_BYTES   (256u * 1024u)
#define DATA_OFF      (128u * 1024u)   /* guest data area offset in the guest region */
#define DATA_BYTES    256u
#define STACK_WINDOW  256u             /* bytes below the initial ESP compared */
#define EFLAGS_CMP    BT_FLAGS_REAL

static struct bt_harness H;

/* ------------------------------------------------------------ snippets */

/* A guest snippet assembled into .rodata; it must end with its HLT. */
#define SNIPPET(name, body)                                                              \
    extern const uint8_t name##_start[], name##_end[];                                   \
    __asm__(".pushsection .rodata\n" #name "_start:\n" body "\n" #name "_end:\n"          \
            ".popsection\n")

SNIPPET(sn_straight,
        "mov $0x12345678, %eax\n mov $0x9abcdef0, %ebx\n add %ebx, %eax\n adc $7, %eax\n"
        "imul %eax, %ebx\n lea 0x10(%eax,%ebx,4), %edx\n shl $3, %edx\n sar $1, %ebx\n"
        "xor %edx, %eax\n movzbl %al, %esi\n setc %cl\n cmovz %esi, %edi\n bswap %edx\n"
        "not %ebp\n neg %eax\n sbb %edx, %ebp\n rcl $5, %ebx\n bt $3, %eax\n hlt");
SNIPPET(sn_loops,
        "xor %eax, %eax\n mov $100, %ecx\n1: add %ecx, %eax\n loop 1b\n"
        "mov $50, %ebx\n2: add $3, %edx\n dec %ebx\n jnz 2b\n"
        "xor %ecx, %ecx\n jecxz 3f\n mov $1, %esi\n3: mov $5, %ecx\n"
        "4: inc %edi\n cmp $1, %ecx\n loopne 4b\n hlt");
SNIPPET(sn_calls,
        "mov $12, %eax\n call 1f\n mov %eax, %ebx\n jmp 9f\n"
        /* fib(eax) recursively, result in eax */
        "1: cmp $2, %eax\n jb 2f\n push %eax\n dec %eax\n call 1b\n"
        "xchg %eax, (%esp)\n sub $2, %eax\n call 1b\n pop %edx\n add %edx, %eax\n"
        "2: ret\n 9: push $0x55\n call 3f\n jmp 4f\n3: ret $0\n4: pop %ecx\n"
        "push $7\n push $9\n call 6f\n jmp 7f\n6: ret $8\n7: mov %esp, %esi\n hlt");
/* Indirect: esi -> table of 4 guest code addresses written by the test. */
SNIPPET(sn_indirect,
        "xor %ebx, %ebx\n mov $7, %ecx\n"
        "1: mov %ecx, %eax\n and $3, %eax\n jmp *(%esi,%eax,4)\n"
        "sn_indirect_t0: add $1, %ebx\n jmp 2f\n sn_indirect_t1: add $10, %ebx\n jmp 2f\n"
        "sn_indirect_t2: add $100, %ebx\n jmp 2f\n sn_indirect_t3: add $1000, %ebx\n"
        "2: mov 16(%esi), %edx\n call *%edx\n call *20(%esi)\n loop 1b\n hlt\n"
        "sn_indirect_f0: inc %edi\n ret\n sn_indirect_f1: add $2, %edi\n ret");
extern const uint8_t sn_indirect_t0[], sn_indirect_t1[], sn_indirect_t2[], sn_indirect_t3[],
    sn_indirect_f0[], sn_indirect_f1[];
/* Strings: esi = data, edi = data + 128. */
SNIPPET(sn_strings,
        "mov $16, %ecx\n rep movsb\n mov $0x41424344, %eax\n mov $4, %ecx\n rep stosl\n"
        "std\n lea 20(%esi), %esi\n lea 40(%edi), %edi\n mov $5, %ecx\n rep movsl\n cld\n"
        "lea -60(%edi), %edi\n mov $0x44, %al\n mov $32, %ecx\n repne scasb\n"
        "pushf\n pop %ebx\n mov %ecx, %edx\n hlt");
/* pushf/popf used for arithmetic flags only (same image natively). */
SNIPPET(sn_flags,
        "stc\n pushf\n pop %eax\n mov $0xad5, %ebx\n push %ebx\n popf\n pushf\n pop %ecx\n"
        "mov $0x200, %edx\n push %edx\n popf\n setz %dl\n cmc\n pushf\n pop %esi\n"
        "std\n pushf\n pop %ebp\n cld\n push $0x600\n popf\n pushf\n pop %edi\n cld\n hlt");
/* (IF stays set in the images: at CPL3 the native POPF cannot clear it.) */

/* Copy a snippet to the start of the guest region; returns its gva. Its
 * HLT is its last byte, or the first F4 byte found from the end when the
 * snippet ends in subroutines (snippets avoid other F4 bytes there). */
static uint32_t load_snippet(const uint8_t *start, const uint8_t *end, uint32_t *hlt_gva)
{
    uint32_t len = (uint32_t)(end - start), at = len - 1;
    memset(H.guest, 0xCC, DATA_OFF);
    memcpy(H.guest, start, len);
    while (at > 0 && H.guest[at] != 0xF4)
        at--;
    assert_int_equal(H.guest[at], 0xF4);
    *hlt_gva = (uint32_t)(uintptr_t)H.guest + at;
    tc_flush(&H.bt.tc);
    return (uint32_t)(uintptr_t)H.guest;
}

static uint32_t gva_of_label(const uint8_t *snippet_start, const uint8_t *label)
{
    return (uint32_t)(uintptr_t)H.guest + (uint32_t)(label - snippet_start);
}

static uint8_t *data_area(void) { return H.guest + DATA_OFF; }

struct snapshot {
    uint32_t gpr[8];
    uint32_t eflags;
    uint8_t data[DATA_BYTES];
    uint8_t stack[STACK_WINDOW];
};

static void snap(struct snapshot *s)
{
    memcpy(s->gpr, bt_host_vcpu.gpr, sizeof(s->gpr));
    s->eflags = bt_host_vcpu.eflags & EFLAGS_CMP;
    memcpy(s->data, data_area(), DATA_BYTES);
    memcpy(s->stack, H.stack + H.stack_size - 64 - STACK_WINDOW, STACK_WINDOW);
}

static void set_regs(const uint32_t init[8], const uint8_t *data)
{
    bt_harness_reset_vcpu(&H);
    for (int i = 0; i < 8; i++)
        if (i != 4)
            bt_host_vcpu.gpr[i] = init[i];
    memcpy(data_area(), data, DATA_BYTES);
    memset(H.stack + H.stack_size - 64 - STACK_WINDOW, 0, STACK_WINDOW);
}

/* Run natively then translated from the same state; compare. Returns the
 * translated snapshot in *out when non-NULL. */
static void run_both(uint32_t entry, uint32_t hlt, const uint32_t init[8], const uint8_t *data,
                     struct snapshot *out)
{
    struct snapshot nat, xl;
    set_regs(init, data);
    assert_int_equal(bt_harness_run_native(&H, entry, hlt), 0);
    snap(&nat);
    set_regs(init, data);
    bt_host_vcpu.eip = entry;
    int r = bt_harness_run(&H, 0);
    assert_int_equal(r, BT_EXIT_HLT);
    assert_int_equal(bt_host_vcpu.eip, hlt);
    snap(&xl);
    for (int i = 0; i < 8; i++)
        if (nat.gpr[i] != xl.gpr[i])
            fail_msg("gpr %d: native %08x translated %08x", i, nat.gpr[i], xl.gpr[i]);
    assert_int_equal(nat.eflags, xl.eflags);
    assert_memory_equal(nat.data, xl.data, DATA_BYTES);
    assert_memory_equal(nat.stack, xl.stack, STACK_WINDOW);
    if (out)
        *out = xl;
}

static void run_snippet(const uint8_t *start, const uint8_t *end, const uint32_t init[8],
                        const uint8_t *data)
{
    static const uint8_t zero[DATA_BYTES];
    static const uint32_t zregs[8];
    uint32_t hlt, entry = load_snippet(start, end, &hlt);
    run_both(entry, hlt, init ? init : zregs, data ? data : zero, NULL);
}

static void test_straight_line(void **state)
{
    uint32_t init[8] = { 1, 2, 3, 4, 0, 6, 7, 8 };
    run_snippet(sn_straight_start, sn_straight_end, init, NULL);
}

static void test_loops(void **state)
{
    run_snippet(sn_loops_start, sn_loops_end, NULL, NULL);
    assert_int_equal(bt_host_vcpu.gpr[0], 5050);
}

static void test_calls(void **state)
{
    run_snippet(sn_calls_start, sn_calls_end, NULL, NULL);
    assert_int_equal(bt_host_vcpu.gpr[3], 144); /* fib(12) */
}

static void test_indirect(void **state)
{
    uint8_t data[DATA_BYTES] = { 0 };
    uint32_t hlt, entry = load_snippet(sn_indirect_start, sn_indirect_end, &hlt);
    const uint8_t *labels[6] = { sn_indirect_t0, sn_indirect_t1, sn_indirect_t2,
                                 sn_indirect_t3, sn_indirect_f0, sn_indirect_f1 };
    for (int i = 0; i < 6; i++) {
        uint32_t gva = gva_of_label(sn_indirect_start, labels[i]);
        memcpy(data + 4 * i, &gva, 4);
    }
    uint32_t init[8] = { 0 };
    init[6] = (uint32_t)(uintptr_t)data_area();
    run_both(entry, hlt, init, data, NULL);
    assert_int_equal(bt_host_vcpu.gpr[7], 21);  /* 7 calls of each: 7*1 + 7*2 */
    /* Second run: the IBL table now holds the targets; few misses. */
    uint32_t misses = H.bt.stats.ibl_misses;
    run_both(entry, hlt, init, data, NULL);
    assert_true(H.bt.stats.ibl_misses - misses <= 2);
    /* Third run with every entry moved to its second slot (the one an eip
     * takes when another holds its first): the stub's second probe finds
     * them, so again few misses. */
    unsigned moved = 0;
    for (uint32_t i = 0; i < BT_IBL_ENTRIES; i++) {
        uint32_t *slot = bt_host_vcpu.ibl[i], eip = 0u - slot[0];
        uint32_t *alt = bt_host_vcpu.ibl[tc_ibl_slot2(eip)];
        if (slot[0] == bt_ibl_key(BT_IBL_EMPTY) || i != tc_ibl_slot(eip) || alt == slot ||
            alt[0] != bt_ibl_key(BT_IBL_EMPTY))
            continue;
        alt[0] = slot[0], alt[1] = slot[1];
        slot[0] = bt_ibl_key(BT_IBL_EMPTY), slot[1] = H.bt.tc.ibl_miss_tca;
        moved++;
    }
    assert_true(moved >= 6);
    misses = H.bt.stats.ibl_misses;
    run_both(entry, hlt, init, data, NULL);
    assert_true(H.bt.stats.ibl_misses - misses <= 2);
}

static void test_strings(void **state)
{
    uint8_t data[DATA_BYTES];
    for (unsigned i = 0; i < DATA_BYTES; i++)
        data[i] = (uint8_t)(i * 7 + 1);
    uint32_t init[8] = { 0 };
    init[6] = (uint32_t)(uintptr_t)data_area();
    init[7] = init[6] + 128;
    run_snippet(sn_strings_start, sn_strings_end, init, data);
}

static void test_flags(void **state)
{
    run_snippet(sn_flags_start, sn_flags_end, NULL, NULL);
}

/* ------------------------------------------------------------ reference monitor */

/* What the reference model of the virtual CPU saw and answered. */
struct model {
    uint32_t exits[BT_EXIT_COUNT];
    uint32_t io_out[16];     /* values written, in order */
    uint16_t io_out_port[16];
    uint32_t n_out;
    uint32_t io_in_value;    /* what every IN returns */
    uint32_t cr3_writes;
    uint32_t int_vector;
    uint32_t irq_windows;
    uint32_t irq_window_eip;
};

static struct model M;

static uint32_t *gpr(unsigned dec_reg) { return &bt_host_vcpu.gpr[dec_reg - DEC_REG_EAX]; }

static void emulate_io(const struct dec_insn *in)
{
    struct bt_vcpu *v = &bt_host_vcpu;
    bool imm = in->opcode <= 0xE7, out = (in->opcode & 2) != 0;
    const uint8_t *bytes = (const uint8_t *)(uintptr_t)v->eip;
    uint16_t port = imm ? bytes[in->imm_off] : (uint16_t)v->gpr[2];
    uint32_t mask = (in->opcode & 1) ? (in->opsize == 4 ? 0xFFFFFFFFu : 0xFFFFu) : 0xFFu;
    if (out) {
        M.io_out_port[M.n_out & 15] = port;
        M.io_out[M.n_out++ & 15] = v->gpr[0] & mask;
    } else {
        v->gpr[0] = (v->gpr[0] & ~mask) | (M.io_in_value & mask);
    }
}

static void emulate_desc(const struct dec_insn *in)
{
    struct bt_vcpu *v = &bt_host_vcpu;
    uint8_t *ea = (uint8_t *)(uintptr_t)v->exit_ea;
    struct bt_desc_table *t = (in->reg & 1) ? &v->idtr : &v->gdtr;
    uint16_t lim;
    if (in->map == DEC_MAP_0F && in->opcode == 0x00 && in->reg == 5) { /* VERW: only 0x2b is writable */
        uint32_t sel = in->mod == 3 ? v->gpr[in->rm] : *(uint16_t *)ea;
        v->eflags = (sel & 0xFFFF) == 0x2b ? v->eflags | 0x40u : v->eflags & ~0x40u; /* ZF */
        return;
    }
    if (in->map != DEC_MAP_0F || in->opcode != 0x01)
        fail_msg("desc exit for unexpected opcode %02x", in->opcode);
    if (in->reg >= 2) { /* LGDT/LIDT */
        memcpy(&lim, ea, 2);
        memcpy(&t->base, ea + 2, 4);
        t->limit = lim;
    } else { /* SGDT/SIDT */
        lim = (uint16_t)t->limit;
        memcpy(ea, &lim, 2);
        memcpy(ea + 2, &t->base, 4);
    }
}

/* Emulate one monitor exit the way the reference model says; false = stop. */
static bool emulate_exit(int reason)
{
    struct bt_vcpu *v = &bt_host_vcpu;
    const struct bt_exit *e = H.bt.exit;
    struct dec_insn in;
    M.exits[reason]++;
    if (reason == BT_EXIT_IRQ_WINDOW) {
        M.irq_windows++;
        M.irq_window_eip = v->eip;
        v->irq_pending = 0; /* "delivered" */
        return true;
    }
    if (reason == BT_EXIT_HLT || reason < 0)
        return false;
    assert_true(dec_decode((const uint8_t *)(uintptr_t)v->eip, 15, v->eip, DEC_MODE_32, &in) > 0);
    switch (reason) {
    case BT_EXIT_CPUID: v->gpr[0] = 0x11, v->gpr[3] = 0x22, v->gpr[1] = 0x33, v->gpr[2] = 0x44;
        break;
    case BT_EXIT_RDTSC: v->gpr[0] = 0x1000, v->gpr[2] = 0x2; break;
    case BT_EXIT_IO: emulate_io(&in); break;
    case BT_EXIT_CR3_WRITE: M.cr3_writes++; /* fall through */
    case BT_EXIT_MOV_CR: v->cr[e->aux] = *gpr(e->rm_reg); break;
    case BT_EXIT_DESC: emulate_desc(&in); break;
    case BT_EXIT_SEG: v->sel[e->aux] = *gpr(e->rm_reg) & 0xFFFF; break;
    case BT_EXIT_INT: M.int_vector = e->aux; break;
    default: fail_msg("unexpected exit %s", bt_exit_name((unsigned)reason));
    }
    v->eip += e->len;
    return true;
}

/* Run the loaded snippet translated under the reference monitor until HLT. */
static void monitor_run(uint32_t entry)
{
    memset(&M, 0, sizeof(M));
    M.io_in_value = 0xA5A5A5A5;
    bt_host_vcpu.eip = entry;
    for (int guard = 0; guard < 1000; guard++) {
        int r = bt_harness_run(&H, 0);
        assert_true(r != BT_HARNESS_FAULT);
        if (!emulate_exit(r))
            return;
    }
    fail_msg("monitor loop did not reach HLT");
}

static void load_and_monitor(const uint8_t *start, const uint8_t *end)
{
    uint32_t hlt, entry = load_snippet(start, end, &hlt);
    monitor_run(entry);
    assert_int_equal(bt_host_vcpu.eip, hlt);
}

SNIPPET(sn_cli, "cli\n pushf\n pop %eax\n sti\n pushf\n pop %ebx\n cli\n hlt");

static void test_cli_sti_pushf(void **state)
{
    bt_harness_reset_vcpu(&H);
    load_and_monitor(sn_cli_start, sn_cli_end);
    assert_int_equal(bt_host_vcpu.gpr[0] & BT_FLAGS_IF, 0);
    assert_int_equal(bt_host_vcpu.gpr[3] & BT_FLAGS_IF, BT_FLAGS_IF);
    assert_int_equal(bt_host_vcpu.vflags_if, 0);
    /* The real IF stayed 1: we are still a normal host process. */
    uint32_t real;
    __asm__ volatile("pushf; pop %0" : "=r"(real));
    assert_true(real & BT_FLAGS_IF);
}

SNIPPET(sn_popf,
        "push $0x3201\n popf\n pushf\n pop %eax\n setc %cl\n"  /* IOPL=3 IF CF */
        "push $0x0\n popf\n pushf\n pop %ebx\n setc %dl\n hlt");

static void test_popf_virtual(void **state)
{
    bt_harness_reset_vcpu(&H);
    bt_host_vcpu.vflags_if = 0;
    load_and_monitor(sn_popf_start, sn_popf_end);
    struct bt_vcpu *v = &bt_host_vcpu;
    assert_int_equal(v->gpr[0] & 0x3201u, 0x3201u);
    assert_int_equal(v->gpr[1] & 0xFF, 1);
    assert_int_equal(v->gpr[3] & 0x3201u, 0);
    assert_int_equal(v->gpr[2] & 0xFF, 0);
    assert_int_equal(v->vflags_if, 0);
    assert_int_equal(M.irq_windows, 0);
}

/* PUSHF stores RF and VM clear whatever the vCPU holds (SDM Vol. 2B PUSHF):
 * an IRET's image may have left RF set in the virtual flags. */
SNIPPET(sn_pushf_rf, "pushf\n pop %eax\n hlt");

static void test_pushf_clears_rf(void **state)
{
    bt_harness_reset_vcpu(&H);
    bt_host_vcpu.vflags_sys = 0x10000u | 0x3000u; /* RF, IOPL 3 */
    load_and_monitor(sn_pushf_rf_start, sn_pushf_rf_end);
    assert_int_equal(bt_host_vcpu.gpr[0] & 0x30000u, 0);
    assert_int_equal(bt_host_vcpu.gpr[0] & 0x3000u, 0x3000u);
    bt_host_vcpu.vflags_sys = 0;
}

SNIPPET(sn_irq,
        "cli\n push $0x202\n popf\n mov $1, %eax\n"  /* popf sets IF: window after it */
        "cli\n sti\n mov $2, %ebx\n mov $3, %ecx\n hlt");   /* sti: window after the next insn */

static void test_pending_irq(void **state)
{
    bt_harness_reset_vcpu(&H);
    uint32_t hlt, entry = load_snippet(sn_irq_start, sn_irq_end, &hlt);
    bt_host_vcpu.irq_pending = 1;
    bt_host_vcpu.eip = entry;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_IRQ_WINDOW); /* IF=1 at entry */
    assert_int_equal(bt_host_vcpu.eip, entry);
    bt_host_vcpu.vflags_if = 0;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_IRQ_WINDOW);
    assert_int_equal(bt_host_vcpu.eip, entry + 1 + 5 + 1); /* right after popf */
    assert_int_equal(bt_host_vcpu.gpr[0], 0);
    bt_host_vcpu.irq_pending = 0; /* delivered; its handler's IRET left IF set */
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_HLT);
    assert_int_equal(bt_host_vcpu.gpr[0], 1);
    /* From the cli: sti's window opens after the next instruction. */
    bt_host_vcpu.eip = entry + 12;
    bt_host_vcpu.gpr[1] = bt_host_vcpu.gpr[3] = 0;
    bt_host_vcpu.irq_pending = 1;
    bt_host_vcpu.vflags_if = 0;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_IRQ_WINDOW);
    assert_int_equal(bt_host_vcpu.eip, entry + 12 + 1 + 1 + 5); /* after "mov $2,%ebx" */
    assert_int_equal(bt_host_vcpu.gpr[3], 2);
    assert_int_equal(bt_host_vcpu.gpr[1], 0);
    bt_host_vcpu.irq_pending = 0;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_HLT);
    assert_int_equal(bt_host_vcpu.gpr[1], 3);
}

/* STI followed by a branch: the window is checked before the branch. */
SNIPPET(sn_sti_jmp, "sti\n jmp 1f\n nop\n1: hlt");

static void test_sti_before_branch(void **state)
{
    bt_harness_reset_vcpu(&H);
    uint32_t hlt, entry = load_snippet(sn_sti_jmp_start, sn_sti_jmp_end, &hlt);
    bt_host_vcpu.vflags_if = 0;
    bt_host_vcpu.irq_pending = 1;
    bt_host_vcpu.eip = entry;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_IRQ_WINDOW);
    assert_int_equal(bt_host_vcpu.eip, entry + 1); /* at the jmp */
    bt_host_vcpu.irq_pending = 0;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_HLT);
}

/* POPF setting TF leaves the block at the next instruction, so the monitor
 * can single-step from there (SDM Vol. 3B §17.3.1.4). */
SNIPPET(sn_popf_tf, "pushf\n orl $0x100, (%esp)\n popf\n nop\n nop\n hlt");

static void test_popf_tf_exits(void **state)
{
    bt_harness_reset_vcpu(&H);
    uint32_t hlt, entry = load_snippet(sn_popf_tf_start, sn_popf_tf_end, &hlt);
    bt_host_vcpu.vflags_if = 0;
    bt_host_vcpu.irq_pending = 0;
    bt_host_vcpu.eip = entry;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_IRQ_WINDOW);
    assert_int_equal(bt_host_vcpu.eip, entry + 1 + 7 + 1); /* pushf, orl imm32, popf: at the first nop */
    assert_int_equal(bt_host_vcpu.vflags_sys & 0x100, 0x100);
    bt_host_vcpu.irq_pending = 0;
    bt_host_vcpu.vflags_sys = 0;
}

/* The snippets run from a copy: the EIP an IRET pops is pushed by a CALL
 * and moved to label 1 (its ADD takes an imm32: 7 + 1 + 1 bytes on); STC again, as ADD cleared CF. */
#define IRET_EIP "call 2f\n2: addl $(1f - 2b), (%esp)\n stc\n iret\n"

/* IRET back to the same CS (bt_config.inline_iret), as Linux's sync_core():
 * inline when the checks of h_iret pass, else an IRET exit with the guest's
 * state as it was at the IRET. */
SNIPPET(sn_iret_self, "mov $7, %eax\n stc\n pushf\n push %cs\n" IRET_EIP "1: mov %eax, %ebx\n hlt");
SNIPPET(sn_iret_other_cs, "mov $7, %eax\n stc\n pushf\n push $0x1234\n" IRET_EIP "1: mov %eax, %ebx\n hlt");
SNIPPET(sn_iret_if, "mov $7, %eax\n stc\n pushf\n orl $0x200, (%esp)\n push %cs\n" IRET_EIP "1: hlt");
SNIPPET(sn_iret_noif, "mov $7, %eax\n stc\n pushf\n andl $0xfffffdff, (%esp)\n push %cs\n" IRET_EIP "1: hlt");
SNIPPET(sn_iret_rf, "mov $7, %eax\n stc\n pushf\n orl $0x10000, (%esp)\n push %cs\n" IRET_EIP "1: hlt");
SNIPPET(sn_iret_stack, "mov %esi, %esp\n mov $7, %eax\n stc\n pushf\n push %cs\n" IRET_EIP "1: hlt");
SNIPPET(sn_iret_fault, "mov $0x55, %eax\n stc\n mov %esi, %esp\n iret\n hlt");

static uint8_t iret_stack[2 * 4096] __attribute__((aligned(4096)));
static void expect_fault(const uint8_t *start, const uint8_t *end, uint32_t fault_off, const uint32_t expect[8]);

/* Run the snippet with inline IRET on, the vCPU at virtual IF vif with
 * irq_pending pending, CS 60h, a flat SS; return the run's result with its
 * entry and HLT addresses. */
static int run_iret_at(const uint8_t *start, const uint8_t *end, uint32_t vif, uint32_t pending,
                       uint32_t *entry_out, uint32_t *hlt_out)
{
    bt_harness_reset_vcpu(&H);
    H.bt.cfg.inline_iret = true;
    uint32_t hlt, entry = load_snippet(start, end, &hlt);
    bt_host_vcpu.ss_flat = 1;
    bt_host_vcpu.vflags_if = vif;
    bt_host_vcpu.irq_pending = pending;
    bt_host_vcpu.vflags_sys = 0;
    bt_host_vcpu.sel[BT_CS] = 0x60;
    bt_host_vcpu.eip = entry;
    int r = bt_harness_run(&H, 0);
    H.bt.cfg.inline_iret = false;
    bt_host_vcpu.irq_pending = 0;
    *entry_out = entry;
    *hlt_out = hlt;
    return r;
}

/* The same at IF = 1, nothing pending. */
static int run_iret(const uint8_t *start, const uint8_t *end, uint32_t *entry_out, uint32_t *hlt_out)
{
    return run_iret_at(start, end, BT_FLAGS_IF, 0, entry_out, hlt_out);
}

/* The IRET exit: at the IRET, EAX and CF as before it, the frame still on the stack. */
static void expect_iret_exit(const uint8_t *start, const uint8_t *end, uint32_t iret_off)
{
    uint32_t entry, hlt;
    int r = run_iret(start, end, &entry, &hlt);
    assert_int_equal(r, BT_EXIT_IRET);
    assert_int_equal(bt_host_vcpu.eip, entry + iret_off);
    assert_int_equal(bt_host_vcpu.gpr[0], 7);
    assert_true(bt_host_vcpu.eflags & 1);
    assert_int_equal(*(uint32_t *)(uintptr_t)bt_host_vcpu.gpr[4], entry + iret_off + 1);
}

static void test_iret_inline(void **state)
{
    uint32_t entry, hlt;
    /* Same CS, IF unchanged, flat stack within a page: no exit; CF from the image. */
    assert_int_equal(run_iret(sn_iret_self_start, sn_iret_self_end, &entry, &hlt), BT_EXIT_HLT);
    uint32_t esp_start = bt_host_vcpu.gpr[4];
    assert_int_equal(bt_host_vcpu.eip, hlt);
    assert_int_equal(bt_host_vcpu.gpr[3], 7);
    assert_true(bt_host_vcpu.eflags & 1);
    assert_int_equal(bt_host_vcpu.vflags_if, BT_FLAGS_IF);
    bt_harness_reset_vcpu(&H);
    assert_int_equal(esp_start, bt_host_vcpu.gpr[4]); /* the three pops undid the three pushes */
    /* Another CS: exit at the IRET. */
    expect_iret_exit(sn_iret_other_cs_start, sn_iret_other_cs_end, 5 + 1 + 1 + 5 + 5 + 7 + 1);
    /* IF 0 in the vCPU, 1 in the image, nothing pending: the window opens
     * inline, IF is the image's. */
    assert_int_equal(run_iret_at(sn_iret_if_start, sn_iret_if_end, 0, 0, &entry, &hlt), BT_EXIT_HLT);
    assert_int_equal(bt_host_vcpu.eip, hlt);
    assert_int_equal(bt_host_vcpu.vflags_if, BT_FLAGS_IF);
    assert_true(bt_host_vcpu.eflags & 1);
    /* IF 1 in the vCPU, 0 in the image: inline, IF cleared. */
    assert_int_equal(run_iret(sn_iret_noif_start, sn_iret_noif_end, &entry, &hlt), BT_EXIT_HLT);
    assert_int_equal(bt_host_vcpu.eip, hlt);
    assert_int_equal(bt_host_vcpu.vflags_if, 0);
    /* RF in the image (a fault's frame, SDM Vol. 3A §17.3.1.1): inline, and
     * RF not kept, as after the one instruction it covers (translated code
     * never runs with an instruction breakpoint armed: run_step does). */
    assert_int_equal(run_iret(sn_iret_rf_start, sn_iret_rf_end, &entry, &hlt), BT_EXIT_HLT);
    assert_int_equal(bt_host_vcpu.eip, hlt);
    assert_int_equal(bt_host_vcpu.vflags_sys & 0x10000u, 0);
    assert_int_equal(bt_host_vcpu.vflags_if, BT_FLAGS_IF);
}

static void test_iret_refused(void **state)
{
    uint32_t entry, hlt;
    /* Not a flat SS: exit. */
    bt_harness_reset_vcpu(&H);
    H.bt.cfg.inline_iret = true;
    entry = load_snippet(sn_iret_self_start, sn_iret_self_end, &hlt);
    bt_host_vcpu.ss_flat = 0;
    bt_host_vcpu.vflags_if = BT_FLAGS_IF;
    bt_host_vcpu.sel[BT_CS] = 0x60;
    bt_host_vcpu.eip = entry;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_IRET);
    assert_int_equal(bt_host_vcpu.eip, entry + 5 + 1 + 1 + 1 + 5 + 7 + 1);
    assert_int_equal(bt_host_vcpu.gpr[0], 7);
    /* NT set now: a task return, exit. */
    bt_harness_reset_vcpu(&H);
    entry = load_snippet(sn_iret_self_start, sn_iret_self_end, &hlt);
    bt_host_vcpu.ss_flat = 1;
    bt_host_vcpu.vflags_if = BT_FLAGS_IF;
    bt_host_vcpu.vflags_sys = 0x4000;
    bt_host_vcpu.sel[BT_CS] = 0x60;
    bt_host_vcpu.eip = entry;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_IRET);
    assert_int_equal(bt_host_vcpu.eip, entry + 5 + 1 + 1 + 1 + 5 + 7 + 1);
    bt_host_vcpu.vflags_sys = 0;
    /* IF 0 in the vCPU, 1 in the image, an interrupt pending: the window
     * would open onto it, exit. */
    assert_int_equal(run_iret_at(sn_iret_if_start, sn_iret_if_end, 0, 1, &entry, &hlt), BT_EXIT_IRET);
    assert_int_equal(bt_host_vcpu.eip, entry + 5 + 1 + 1 + 7 + 1 + 5 + 7 + 1);
    assert_int_equal(bt_host_vcpu.gpr[0], 7);
    assert_true(bt_host_vcpu.eflags & 1);
    assert_int_equal(bt_host_vcpu.vflags_if, 0);
    H.bt.cfg.inline_iret = true;
    /* The frame's last byte in the next page: exit. */
    bt_harness_reset_vcpu(&H);
    entry = load_snippet(sn_iret_stack_start, sn_iret_stack_end, &hlt);
    bt_host_vcpu.gpr[6] = (uint32_t)(uintptr_t)iret_stack + 4096 + 4;
    bt_host_vcpu.ss_flat = 1;
    bt_host_vcpu.vflags_if = BT_FLAGS_IF;
    bt_host_vcpu.sel[BT_CS] = 0x60;
    bt_host_vcpu.eip = entry;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_IRET);
    assert_int_equal(bt_host_vcpu.eip, entry + 2 + 5 + 1 + 1 + 1 + 5 + 7 + 1);
    assert_int_equal(bt_host_vcpu.gpr[4], (uint32_t)(uintptr_t)iret_stack + 4096 - 8);
    H.bt.cfg.inline_iret = false;
}

/* The first stack read faults: at the IRET, EAX and CF untouched. */
static void test_iret_fault_precise(void **state)
{
    H.bt.cfg.inline_iret = true;
    uint32_t e[8] = { 0x55, 0, 0, 0, (uint32_t)(uintptr_t)H.hole, 0, (uint32_t)(uintptr_t)H.hole, 0 };
    expect_fault(sn_iret_fault_start, sn_iret_fault_end, 5 + 1 + 2, e);
    assert_true(bt_host_vcpu.eflags & 1);
    H.bt.cfg.inline_iret = false;
}

/* An endless chained loop; a timer "interrupt" makes a virtual interrupt
 * pending and asks for an exit; the guest must leave at a boundary. */
SNIPPET(sn_spin, "1: inc %eax\n add $2, %ebx\n jmp 1b\n hlt");

static void on_alarm(int sig)
{
    bt_host_vcpu.irq_pending = 1;
    bt_request_exit(&H.bt);
}

static void test_async_interrupt(void **state)
{
    bt_harness_reset_vcpu(&H);
    uint32_t hlt, entry = load_snippet(sn_spin_start, sn_spin_end, &hlt);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGALRM, &sa, &old);
    struct itimerval it = { .it_value = { .tv_usec = 20000 } };
    setitimer(ITIMER_REAL, &it, NULL);
    bt_host_vcpu.eip = entry;
    int r = bt_harness_run(&H, 0);
    sigaction(SIGALRM, &old, NULL);
    assert_int_equal(r, BT_EXIT_IRQ_WINDOW);
    assert_int_equal(bt_host_vcpu.eip, entry);               /* the loop head */
    assert_int_equal(bt_host_vcpu.gpr[3], 2 * bt_host_vcpu.gpr[0]); /* whole iterations */
    assert_true(bt_host_vcpu.gpr[0] > 1000);                 /* it did run chained */
    print_message("async interrupt after %u chained iterations\n", bt_host_vcpu.gpr[0]);
    bt_host_vcpu.irq_pending = 0;
}

/* Regression: bt_request_exit from an interrupt handler empties the IBL
 * table; a lookup caught between its key compare and its target load must
 * reach the dispatcher, not address 0. A call/ret loop (ret goes through
 * the IBL) under a rapid timer that only requests exits.
 *
 * The storm paces itself: each signal re-arms a one-shot timer for
 * max(STORM_GAP_US, 2 x what the handler took), so the loop always gets at
 * least two thirds of the time. A fixed 50 us interval livelocked under
 * qemu-i386, where emptying the 64K-slot table takes longer than that. Under
 * emulation signals land only at block boundaries of QEMU's own translation,
 * and one of those falls between the stub's key compare (JECXZ) and its
 * target load, so the window is hit there too (docs/testing.md). */
SNIPPET(sn_ret_loop, "mov $4000000, %ecx\n 1: call 2f\n loop 1b\n hlt\n 2: inc %eax\n ret");

#define STORM_GAP_US 50
static volatile uint32_t storm_signals;
static volatile int storm_on;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void storm_arm(uint32_t us)
{
    struct itimerval it = { .it_value = { .tv_sec = us / 1000000u, .tv_usec = us % 1000000u } };
    setitimer(ITIMER_REAL, &it, NULL);
}

static void on_storm(int sig)
{
    uint64_t t0 = now_ns();
    storm_signals++;
    bt_request_exit(&H.bt);
    if (storm_on) {
        uint64_t took_us = (now_ns() - t0) / 1000u;
        storm_arm(took_us * 2 > STORM_GAP_US ? (uint32_t)(took_us * 2) : STORM_GAP_US);
    }
}

static void test_ibl_reset_race(void **state)
{
    bt_harness_reset_vcpu(&H);
    uint32_t hlt, entry = load_snippet(sn_ret_loop_start, sn_ret_loop_end, &hlt);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_storm;
    sa.sa_flags = SA_ONSTACK | SA_RESTART;
    sigaction(SIGALRM, &sa, &old);
    storm_signals = 0;
    storm_on = 1;
    storm_arm(STORM_GAP_US);
    /* The loop again until it has taken more than 100 exit requests: on a
     * busy host the timer's signals coalesce while the process waits for a
     * CPU, and one pass of the loop once took only 55. */
    unsigned rounds = 0;
    int r = BT_EXIT_HLT;
    bt_host_vcpu.gpr[0] = 0;
    while (storm_signals <= 100 && rounds < 50 && r == BT_EXIT_HLT && bt_host_vcpu.gpr[0] == 4000000 * rounds) {
        bt_host_vcpu.eip = entry;
        bt_host_vcpu.gpr[0] = 4000000 * rounds;
        r = bt_harness_run(&H, 0);
        rounds++;
    }
    storm_on = 0;
    storm_arm(0);
    sigaction(SIGALRM, &old, NULL);
    print_message("ibl race: %u exit requests during %u rounds of the loop\n", storm_signals, rounds);
    assert_int_equal(r, BT_EXIT_HLT);
    assert_int_equal(bt_host_vcpu.gpr[0], 4000000 * rounds);
    assert_true(storm_signals > 100);
}

/* bt_stop_at from an interrupt at whatever TC address it hit: the call/ret
 * loop (chained call, RET through the lookup stub) comes back to the
 * caller of bt_run well before its end, and then runs on unharmed. */
static volatile uint32_t stop_signals;
static volatile int stop_how[3];

static void on_stop(int sig, siginfo_t *si, void *uc)
{
    uint32_t eip = (uint32_t)((ucontext_t *)uc)->uc_mcontext.gregs[REG_EIP];
    stop_signals++;
    stop_how[bt_stop_at(&H.bt, &eip)]++;
    ((ucontext_t *)uc)->uc_mcontext.gregs[REG_EIP] = (greg_t)eip; /* a lookup goes on at its miss path */
}

static void test_stop_at(void **state)
{
    bt_harness_reset_vcpu(&H);
    uint32_t hlt, entry = load_snippet(sn_ret_loop_start, sn_ret_loop_end, &hlt);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_stop;
    sa.sa_flags = SA_ONSTACK | SA_RESTART | SA_SIGINFO;
    sigaction(SIGALRM, &sa, &old);
    bt_host_vcpu.eip = entry;
    bt_host_vcpu.gpr[0] = 0;
    int r, returns = 0;
    do {
        struct itimerval it = { .it_value = { .tv_usec = 2000 } };
        setitimer(ITIMER_REAL, &it, NULL);
        r = bt_harness_run(&H, 0);
        struct itimerval off = { 0 };
        setitimer(ITIMER_REAL, &off, NULL);
        if (r == BT_EXIT_NONE) { /* stopped anywhere up to the HLT: after the last iteration too */
            returns++;
            assert_true(bt_host_vcpu.gpr[0] <= 4000000);
        }
    } while (r == BT_EXIT_NONE);
    sigaction(SIGALRM, &old, NULL);
    print_message("stop_at: %d early returns; %d in a block, %d in the lookup stub, %d exiting\n", returns,
                  stop_how[BT_STOP_BLOCK], stop_how[BT_STOP_LOOKUP], stop_how[BT_STOP_EXITING]);
    assert_int_equal(r, BT_EXIT_HLT);
    assert_int_equal(bt_host_vcpu.gpr[0], 4000000);
    assert_true(returns >= 1);
}

/*
 * bt_stop_at at every instruction of a lookup, deterministically: an INT3
 * planted at one instruction boundary of the lookup stub, or of the RET's
 * block, stops a run of the call/ret loop there (the trap hook puts the
 * byte back and calls bt_stop_at as the monitor's interrupt handler
 * would); the run must come back early with the loop's state whole, and
 * run on to the right end; no block may keep its jump at the miss path.
 * Three tables: cold (the RET misses: the miss path), warm (first-slot
 * hits) and warm with the target in its second slot (another eip planted
 * in its first). Every label of the stub is reached by one of them.
 */
SNIPPET(sn_ret_short, "mov $50, %ecx\n 1: call 2f\n loop 1b\n hlt\n 2: inc %eax\n ret");
static uint8_t *probe_at, probe_byte;
static int probe_how;

static bool on_probe(ucontext_t *uc)
{
    uint32_t eip = (uint32_t)uc->uc_mcontext.gregs[REG_EIP] - 1;
    if (!probe_at || eip != (uint32_t)(uintptr_t)probe_at)
        return false;
    *probe_at = probe_byte;
    probe_at = NULL;
    probe_how = bt_stop_at(&H.bt, &eip);
    uc->uc_mcontext.gregs[REG_EIP] = (greg_t)eip;
    return true;
}

/* Every block's jump to the lookup stub at the start of the stub or of a
 * copy of it (none left at a miss path). */
static void assert_no_stopped_jmp(void)
{
    for (uint32_t i = 0; i < H.bt.tc.nblocks; i++) {
        const struct tc_block *b = &H.bt.tc.blocks[i];
        if (b->ibl_jmp)
            assert_ptr_equal(tc_ibl_stub_at(&H.bt.tc, (uint32_t)(uintptr_t)tc_ibl_jmp_target(b)), tc_ibl_jmp_target(b));
    }
}

enum { PROBE_COLD, PROBE_WARM, PROBE_SLOT2 };

/* The loop translated afresh (the same layout every time) and run once,
 * its table as mode wants it: cold, emptied after the run. */
static void probe_table(int mode, uint32_t entry)
{
    uint32_t target = entry + 5 + 5; /* after mov and call: the LOOP */
    tc_flush(&H.bt.tc);
    if (mode == PROBE_SLOT2) { /* an eip with the target's first slot, there first */
        uint32_t other = target + BT_IBL_ENTRIES;
        assert_int_equal(tc_ibl_slot(other), tc_ibl_slot(target));
        assert_int_not_equal(tc_ibl_slot2(target), tc_ibl_slot(target));
        bt_host_vcpu.ibl[tc_ibl_slot(other)][0] = bt_ibl_key(other);
    }
    bt_harness_reset_vcpu(&H);
    bt_host_vcpu.eip = entry;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_HLT);
    uint32_t *slot = tc_ibl_find(&H.bt.tc, target);
    assert_non_null(slot);
    assert_ptr_equal(slot, bt_host_vcpu.ibl[mode == PROBE_SLOT2 ? tc_ibl_slot2(target) : tc_ibl_slot(target)]);
    if (mode == PROBE_COLD)
        tc_ibl_reset(&H.bt.tc);
}

/* One armed run at code; returns whether the probe was hit (and the run
 * stopped early and finished right). */
static bool probe_run(int mode, uint32_t entry, uint8_t *code)
{
    probe_table(mode, entry);
    bt_harness_reset_vcpu(&H);
    bt_host_vcpu.eip = entry;
    probe_byte = *code;
    probe_at = code;
    *code = 0xCC;
    H.trap_hook = on_probe;
    int r = bt_harness_run(&H, 0);
    bool hit = probe_at == NULL;
    if (!hit)
        *code = probe_byte, probe_at = NULL;
    if (hit) {
        assert_int_equal(r, BT_EXIT_NONE); /* came back early, at a dispatch */
        assert_true(bt_host_vcpu.gpr[0] <= 50);
        /* Whole iterations: between the INC and the LOOP one more INC than LOOPs. */
        uint32_t sum = bt_host_vcpu.gpr[0] + bt_host_vcpu.gpr[1];
        assert_true(sum == 50 || sum == 51);
        assert_no_stopped_jmp();
        r = bt_harness_run(&H, 0);
    }
    H.trap_hook = NULL;
    assert_int_equal(r, BT_EXIT_HLT);
    assert_int_equal(bt_host_vcpu.gpr[0], 50);
    assert_int_equal(bt_host_vcpu.gpr[1], 0);
    assert_int_equal(bt_host_vcpu.gpr[4], (uint32_t)(uintptr_t)H.stack + H.stack_size - 64);
    assert_no_stopped_jmp();
    return hit;
}

static void test_stop_at_every_place(void **state)
{
    H.bt.inline_calls = false; /* the RET goes through the lookup stub */
    uint32_t hlt, entry = load_snippet(sn_ret_short_start, sn_ret_short_end, &hlt);
    const struct bt_ibl_labels *l = &H.bt.ibl_at;
    uint32_t hits[3] = { 0 }, where = 0;
    bool label_hit[7] = { false };
    const uint8_t labels[7] = { 0, l->miss, l->miss_live, l->hit2, l->loaded, l->last, l->recover };
    for (int mode = PROBE_COLD; mode <= PROBE_SLOT2; mode++) {
        /* Every instruction of the stub the RET's block jumps to (its copy
         * in the block's page: tc_ibl_place) ... */
        probe_table(mode, entry);
        struct tc_block *b = tc_lookup(&H.bt.tc, hlt + 1);
        assert_non_null(b);
        assert_true(b->ibl_jmp > 0);
        uint8_t *stub = tc_ibl_jmp_target(b);
        assert_ptr_equal(tc_ibl_stub_at(&H.bt.tc, (uint32_t)(uintptr_t)stub), stub);
        assert_memory_equal(stub, H.bt.ibl_stub, l->end);
        for (uint32_t off = 0; off < l->end;) {
            struct dec_insn in;
            assert_true(dec_decode(stub + off, l->end - off, 0, DEC_MODE_32, &in) > 0);
            if (probe_run(mode, entry, stub + off)) {
                hits[mode]++;
                for (int k = 0; k < 7; k++)
                    label_hit[k] |= labels[k] == off;
                where |= 1u << (probe_how + 1);
            }
            off += in.len;
        }
        /* ... and of the RET's block (2: inc; ret), the table warm. */
        if (mode == PROBE_COLD)
            continue;
        uint32_t end = b->ibl_jmp - 1 + 5, blocks_hit = 0;
        for (uint32_t off = 0; off < end;) {
            struct dec_insn in;
            assert_true(dec_decode(b->tca + off, end - off, 0, DEC_MODE_32, &in) > 0);
            if (probe_run(mode, entry, b->tca + off))
                blocks_hit++, assert_int_equal(probe_how, BT_STOP_BLOCK);
            off += in.len;
        }
        assert_int_equal(blocks_hit, 4); /* inc, the save, pop, jmp */
    }
    print_message("stop at every place: %u, %u and %u stub instructions reached (cold, warm, second slot)\n",
                  hits[0], hits[1], hits[2]);
    for (int k = 0; k < 6; k++) /* recover is only ever entered from bt_stop_at */
        assert_true(label_hit[k]);
    assert_true(where & (1u << (BT_STOP_LOOKUP + 1)));
    assert_true(where & (1u << (BT_STOP_EXITING + 1)));
    H.bt.inline_calls = true;
}

SNIPPET(sn_cr,
        "mov %cr0, %eax\n mov %cr4, %ebx\n or $0x10, %ebx\n mov %ebx, %cr4\n"
        "mov $0x5000, %ecx\n mov %ecx, %cr3\n mov %cr3, %edx\n mov %cr2, %esi\n hlt");

static void test_mov_cr(void **state)
{
    bt_harness_reset_vcpu(&H);
    bt_host_vcpu.cr[0] = 0x80000011;
    bt_host_vcpu.cr[2] = 0xdeadb000;
    bt_host_vcpu.cr[4] = 0x80;
    load_and_monitor(sn_cr_start, sn_cr_end);
    struct bt_vcpu *v = &bt_host_vcpu;
    assert_int_equal(v->gpr[0], 0x80000011);
    assert_int_equal(v->cr[4], 0x90);
    assert_int_equal(v->cr[3], 0x5000);
    assert_int_equal(v->gpr[2], 0x5000);
    assert_int_equal(v->gpr[6], 0xdeadb000);
    assert_int_equal(M.cr3_writes, 1);
    assert_int_equal(M.exits[BT_EXIT_MOV_CR], 1);
}

/* esi -> 6-byte GDT pseudo-descriptor, edi -> where SGDT/SIDT store. */
SNIPPET(sn_desc, "lgdt (%esi)\n lidt 6(%esi)\n sgdt (%edi)\n sidt 8(%edi)\n hlt");

static void test_desc_tables(void **state)
{
    bt_harness_reset_vcpu(&H);
    uint8_t *d = data_area();
    memset(d, 0, DATA_BYTES);
    const uint8_t pd[12] = { 0xff, 0x00, 0x00, 0x10, 0x20, 0x30, 0x7f, 0x01, 0x00, 0x40, 0x50, 0x60 };
    memcpy(d, pd, sizeof(pd));
    uint32_t hlt, entry = load_snippet(sn_desc_start, sn_desc_end, &hlt);
    bt_host_vcpu.gpr[6] = (uint32_t)(uintptr_t)d;
    bt_host_vcpu.gpr[7] = (uint32_t)(uintptr_t)d + 32;
    monitor_run(entry);
    assert_int_equal(bt_host_vcpu.gdtr.base, 0x30201000);
    assert_int_equal(bt_host_vcpu.gdtr.limit, 0xff);
    assert_int_equal(bt_host_vcpu.idtr.base, 0x60504000);
    assert_memory_equal(d + 32, pd, 6);
    assert_memory_equal(d + 40, pd + 6, 6);
    assert_int_equal(M.exits[BT_EXIT_DESC], 4);
}

SNIPPET(sn_io,
        "mov $0x3f8, %edx\n mov $0x41, %al\n out %al, %dx\n mov $0x12345678, %eax\n"
        "out %eax, $0x80\n in $0x60, %al\n mov %eax, %esi\n in %dx, %eax\n"
        "cpuid\n rdtsc\n int $0x80\n hlt");

static void test_io_cpuid_int(void **state)
{
    bt_harness_reset_vcpu(&H);
    bt_host_vcpu.gpr[0] = 0xFFFFFF00;
    uint64_t t0 = __rdtsc();
    load_and_monitor(sn_io_start, sn_io_end);
    uint64_t t1 = __rdtsc(), tsc = (uint64_t)bt_host_vcpu.gpr[2] << 32 | bt_host_vcpu.gpr[0];
    assert_int_equal(M.n_out, 2);
    assert_int_equal(M.io_out_port[0], 0x3f8);
    assert_int_equal(M.io_out[0], 0x41);
    assert_int_equal(M.io_out_port[1], 0x80);
    assert_int_equal(M.io_out[1], 0x12345678);
    assert_int_equal(bt_host_vcpu.gpr[6], 0x123456A5);
    assert_true(tsc >= t0 && tsc <= t1);            /* rdtsc runs natively: the host's TSC */
    assert_int_equal(bt_host_vcpu.gpr[3], 0x22);
    assert_int_equal(bt_host_vcpu.gpr[1], 0x33);
    assert_int_equal(M.int_vector, 0x80);
    assert_int_equal(M.exits[BT_EXIT_IO], 4);
}

SNIPPET(sn_seg,
        "mov %ds, %eax\n mov %cs, %bx\n push %ss\n pop %ecx\n mov $0x2b, %edx\n"
        "mov %edx, %es\n mov %es, %esi\n hlt");

static void test_segments(void **state)
{
    bt_harness_reset_vcpu(&H);
    struct bt_vcpu *v = &bt_host_vcpu;
    v->sel[BT_CS] = 0x10, v->sel[BT_DS] = 0x18, v->sel[BT_SS] = 0x18, v->sel[BT_ES] = 0;
    v->gpr[3] = 0xAAAA0000;
    load_and_monitor(sn_seg_start, sn_seg_end);
    assert_int_equal(v->gpr[0], 0x18);
    assert_int_equal(v->gpr[3], 0xAAAA0010);
    assert_int_equal(v->gpr[1], 0x18);
    assert_int_equal(v->sel[BT_ES], 0x2b);
    assert_int_equal(v->gpr[6], 0x2b);
    assert_int_equal(M.exits[BT_EXIT_SEG], 1);
}

/* MOV/POP into DS, ES and FS with native_seg_loads: a selector that
 * seg_native allows is loaded by the CPU at once -- the real register and
 * the virtual selector both take it, the flags and the other registers are
 * untouched, the stack moves as for POP -- and one it refuses exits SEG at
 * that instruction. 0x23 and 0x2b are the user code and data selectors
 * an i386 program gets from x86-64 Linux (and from qemu-i386), which the
 * test process itself may load (code is readable; the harness gives C code
 * its own ES back, bt_harness_asm.S). */
SNIPPET(sn_native_seg,
        "mov %ds, %eax\n mov $0x23, %edx\n stc\n mov %edx, %es\n mov %es, %ebx\n setc %cl\n"
        "push %eax\n pop %fs\n mov %fs, %esi\n"
        "sub $4, %esp\n mov %eax, (%esp)\n mov (%esp), %ds\n add $4, %esp\n mov %ds, %edi\n hlt");

static void test_native_seg_loads(void **state)
{
    struct bt_vcpu *v = &bt_host_vcpu;
    uint16_t host_ds, host_es, host_fs, es_after, host_es_now, host_fs_now;
    __asm__ volatile("mov %%ds, %0\n mov %%es, %1\n mov %%fs, %2" : "=r"(host_ds), "=r"(host_es), "=r"(host_fs));
    assert_int_equal(host_ds, 0x2b);
    H.bt.cfg.native_seg_loads = true;
    for (int allowed = 1; allowed >= 0; allowed--) {
        tc_flush(&H.bt.tc);
        bt_harness_reset_vcpu(&H);
        memset(v->seg_native, 0, sizeof(v->seg_native));
        v->seg_native[0x2b] = 1;
        v->seg_native[0x23] = (uint8_t)allowed;
        v->sel[BT_DS] = 0x2b, v->sel[BT_ES] = v->sel[BT_FS] = 0;
        uint32_t esp = v->gpr[4];
        load_and_monitor(sn_native_seg_start, sn_native_seg_end);
        es_after = (uint16_t)bt_host_guest_es; /* the CPU's ES when the guest left */
        __asm__ volatile("mov %%es, %0\n mov %%fs, %1" : "=r"(host_es_now), "=r"(host_fs_now));
        assert_int_equal(host_es_now, host_es); /* the harness gave the host its own back */
        assert_int_equal(host_fs_now, host_fs);
        assert_int_equal(M.exits[BT_EXIT_SEG], allowed ? 0 : 1);
        if (allowed)
            assert_int_equal(es_after, 0x23); /* the CPU's ES, loaded by translated code */
        assert_int_equal(v->sel[BT_ES], 0x23);
        assert_int_equal(v->gpr[3], 0x23);
        assert_int_equal(v->gpr[1] & 0xFF, 1); /* CF survived */
        assert_int_equal(v->sel[BT_FS], 0x2b);
        assert_int_equal(v->gpr[6], 0x2b);
        assert_int_equal(v->gpr[7], 0x2b);
        assert_int_equal(v->gpr[4], esp);
        assert_int_equal(v->gpr[2], 0x23);
    }
    H.bt.cfg.native_seg_loads = false;
    tc_flush(&H.bt.tc);
}

/* VERW inline where seg_verw knows the answer: ZF from the table, every
 * other flag (CF, OF, SF here) and register kept; an unknown selector
 * exits DESC and the reference monitor answers. Run with every selector
 * known (no exit) and with none known (three exits): same results. */
SNIPPET(sn_verw,
        "mov $0x7f, %dl\n add $1, %dl\n stc\n"              /* OF SF CF set, ZF clear */
        "mov $0x2b, %eax\n verw %ax\n setz %bl\n setc %bh\n seto %cl\n sets %ch\n"
        "mov $0x23, %eax\n push %eax\n verw (%esp)\n pop %eax\n setz %dh\n"
        "mov $0, %eax\n verw %ax\n setz %al\n hlt");

static void test_inline_verw(void **state)
{
    struct bt_vcpu *v = &bt_host_vcpu;
    H.bt.cfg.native_seg_loads = true;
    for (int known = 1; known >= 0; known--) {
        tc_flush(&H.bt.tc);
        bt_harness_reset_vcpu(&H);
        memset(v->seg_verw, 0, sizeof(v->seg_verw));
        if (known) {
            v->seg_verw[0x2b] = BT_VERW_KNOWN | BT_VERW_ZF;
            v->seg_verw[0x23] = BT_VERW_KNOWN;
            v->seg_verw[0] = BT_VERW_KNOWN;
        }
        load_and_monitor(sn_verw_start, sn_verw_end);
        assert_int_equal(M.exits[BT_EXIT_DESC], known ? 0 : 3);
        assert_int_equal(v->gpr[3] & 0xFFFF, 0x0101); /* ZF set by VERW 0x2b, CF kept */
        assert_int_equal(v->gpr[1] & 0xFFFF, 0x0101); /* OF, SF kept */
        assert_int_equal((v->gpr[2] >> 8) & 0xFF, 0); /* VERW 0x23 (code): ZF clear */
        assert_int_equal(v->gpr[0], 0);               /* VERW null: ZF clear */
    }
    H.bt.cfg.native_seg_loads = false;
    tc_flush(&H.bt.tc);
}

/* ------------------------------------------------------------ exit table */

/* One line per sensitive encoding: it must end its block with this exit,
 * at its own EIP, with its length; aux checked unless -1. */
struct exit_case {
    const char *name;
    uint8_t bytes[8];
    uint8_t len;
    uint8_t reason;
    int aux;
};

#define X(name, reason, aux, len, ...) { name, { __VA_ARGS__ }, len, BT_EXIT_##reason, aux }
static const struct exit_case exit_cases[] = {
    X("hlt", HLT, -1, 1, 0xF4),
    X("int3", INT, 3, 1, 0xCC),
    X("int $0x80", INT, 0x80, 2, 0xCD, 0x80),
    X("into", INT, 4, 1, 0xCE),
    X("int1", INT, 1, 1, 0xF1),
    X("iret", IRET, -1, 1, 0xCF),
    X("lret", FAR, -1, 1, 0xCB),
    X("lret $8", FAR, -1, 3, 0xCA, 8, 0),
    X("ljmp $0x10,$0", FAR, -1, 7, 0xEA, 0, 0, 0, 0, 0x10, 0),
    X("lcall $0x10,$0", FAR, -1, 7, 0x9A, 0, 0, 0, 0, 0x10, 0),
    X("ljmp *(%eax)", FAR, -1, 2, 0xFF, 0x28),
    X("lcall *(%eax)", FAR, -1, 2, 0xFF, 0x18),
    X("sysenter", SYSENTER, -1, 2, 0x0F, 0x34),
    X("sysexit", SYSENTER, -1, 2, 0x0F, 0x35),
    X("in $0x60,%al", IO, 0x60, 2, 0xE4, 0x60),
    X("out %eax,(%dx)", IO, -1, 1, 0xEF),
    X("rep outsb", IO, -1, 2, 0xF3, 0x6E),
    X("insl", IO, -1, 1, 0x6D),
    X("cpuid", CPUID, -1, 2, 0x0F, 0xA2),
    X("rdtscp", RDTSC, -1, 3, 0x0F, 0x01, 0xF9),
    X("rdpmc", RDTSC, -1, 2, 0x0F, 0x33),
    X("rdmsr", MSR, -1, 2, 0x0F, 0x32),
    X("wrmsr", MSR, -1, 2, 0x0F, 0x30),
    X("mov %eax,%cr0", MOV_CR, 0, 3, 0x0F, 0x22, 0xC0),
    X("mov %eax,%cr3", CR3_WRITE, 3, 3, 0x0F, 0x22, 0xD8),
    X("mov %eax,%cr4", MOV_CR, 4, 3, 0x0F, 0x22, 0xE0),
    X("clts", MOV_CR, -1, 2, 0x0F, 0x06),
    X("lmsw %ax", MOV_CR, 6, 3, 0x0F, 0x01, 0xF0),
    X("smsw %eax", MOV_CR, 4, 3, 0x0F, 0x01, 0xE0),
    X("smsw (%eax)", MOV_CR, 4, 3, 0x0F, 0x01, 0x20),
    X("lgdt (%eax)", DESC, 2, 3, 0x0F, 0x01, 0x10),
    X("sidt (%eax)", DESC, 1, 3, 0x0F, 0x01, 0x08),
    X("lldt %ax", DESC, 2, 3, 0x0F, 0x00, 0xD0),
    X("ltr %ax", DESC, 3, 3, 0x0F, 0x00, 0xD8),
    X("str %eax", DESC, 1, 3, 0x0F, 0x00, 0xC8),
    X("sldt (%eax)", DESC, 0, 3, 0x0F, 0x00, 0x00),
    X("verr %ax", DESC, 4, 3, 0x0F, 0x00, 0xE0),
    X("verw (%eax)", DESC, 5, 3, 0x0F, 0x00, 0x28),
    X("lar %eax,%eax", DESC, -1, 3, 0x0F, 0x02, 0xC0),
    X("lsl %eax,%eax", DESC, -1, 3, 0x0F, 0x03, 0xC0),
    X("mov %eax,%ds", SEG, 3, 2, 0x8E, 0xD8),
    X("mov (%eax),%ss", SEG, 2, 2, 0x8E, 0x10),
    X("pop %ds", SEG, -1, 1, 0x1F),
    X("pop %fs", SEG, -1, 2, 0x0F, 0xA1),
    X("lds (%eax),%ebx", SEG, -1, 2, 0xC5, 0x18),
    X("lss (%eax),%ebx", SEG, -1, 3, 0x0F, 0xB2, 0x18),
    X("mov %ds,(%eax)", SEG, 3, 2, 0x8C, 0x18),
    X("mov %dr7,%eax", EMULATE, -1, 3, 0x0F, 0x21, 0xF8),
    X("wbinvd", EMULATE, -1, 2, 0x0F, 0x09),
    X("invd", EMULATE, -1, 2, 0x0F, 0x08),
    X("pushfw", EMULATE, -1, 2, 0x66, 0x9C),
    X("popfw", EMULATE, -1, 2, 0x66, 0x9D),
    X("callw *%ax", EMULATE, -1, 3, 0x66, 0xFF, 0xD0),
};
#undef X

static void test_exit_table(void **state)
{
    for (unsigned i = 0; i < ARRAY_SIZE(exit_cases); i++) {
        const struct exit_case *c = &exit_cases[i];
        uint8_t code[16];
        memcpy(code, c->bytes, c->len);
        code[c->len] = 0xF4;
        uint32_t hlt, entry = load_snippet(code, code + c->len + 1, &hlt);
        bt_harness_reset_vcpu(&H);
        bt_host_vcpu.gpr[0] = (uint32_t)(uintptr_t)data_area();
        bt_host_vcpu.eip = entry;
        int r = bt_harness_run(&H, 0);
        if (r != c->reason || bt_host_vcpu.eip != entry || H.bt.exit->len != c->len ||
            (c->aux >= 0 && H.bt.exit->aux != c->aux))
            fail_msg("%s: exit %s eip +%d len %u aux %u, expected %s len %u aux %d", c->name,
                     bt_exit_name((unsigned)r), (int)(bt_host_vcpu.eip - entry), H.bt.exit->len,
                     H.bt.exit->aux, bt_exit_name(c->reason), c->len, c->aux);
        struct dec_insn in;
        assert_true(dec_decode(c->bytes, c->len, 0, DEC_MODE_32, &in) > 0);
        if (in.has_mem && in.has_modrm)
            assert_int_equal(bt_host_vcpu.exit_ea, bt_host_vcpu.gpr[0]);
        if (in.has_modrm && in.mod == 3)
            assert_int_equal(H.bt.exit->rm_reg, DEC_REG_EAX + in.rm);
    }
}

/* INVLPG at CPL 0 is translated to nothing (the shadow tables keep no stale
 * entry, vmm/shadow.c I2); translated CPL 3 code (IOPL 3) exits with it, for
 * the monitor's #GP. */
static void test_invlpg(void **state)
{
    static const uint8_t code[] = { 0x0F, 0x01, 0x38, 0x40, 0xF4 }; /* invlpg (%eax); inc %eax; hlt */
    uint32_t hlt, entry = load_snippet(code, code + sizeof(code), &hlt);
    bt_harness_reset_vcpu(&H);
    bt_host_vcpu.gpr[0] = 41;
    bt_host_vcpu.eip = entry;
    bt_host_vcpu.r3_ok = 1;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_HLT);
    assert_int_equal(bt_host_vcpu.eip, entry + 4);
    assert_int_equal(bt_host_vcpu.gpr[0], 42);
    assert_int_equal(bt_host_vcpu.invlpg_inline, 1);
    assert_int_equal(bt_host_vcpu.r3_ok, 0);

    tc_flush(&H.bt.tc);
    H.bt.cpl3 = true;
    bt_harness_reset_vcpu(&H);
    bt_host_vcpu.gpr[0] = (uint32_t)(uintptr_t)data_area();
    bt_host_vcpu.eip = entry;
    int r = bt_harness_run(&H, 0);
    H.bt.cpl3 = false;
    tc_flush(&H.bt.tc);
    assert_int_equal(r, BT_EXIT_INVLPG);
    assert_int_equal(bt_host_vcpu.eip, entry);
    assert_int_equal(H.bt.exit->len, 3);
    assert_int_equal(bt_host_vcpu.exit_ea, bt_host_vcpu.gpr[0]);
}

/* Run one INVLPG snippet with the given skip state; the flags, EAX and ECX
 * must come back as they were whether it exits or not. Returns the exit. */
/* r3_gdt_page and r3_gdt_ds for run_invlpg: by default no DS is known flat,
 * so every INVLPG that does not exit stops the return stubs. */
static uint32_t invlpg_gdt_page, invlpg_gdt_ds = 0xFFFFFFFFu;
static bool invlpg_keeps_walk; /* ... unless the test says this one keeps the GDT walk */

static int run_invlpg(const uint8_t *code, uint32_t len, uint32_t exit_on, uint32_t skip, uint32_t skip_ds,
                      uint32_t *entry)
{
    static const uint32_t flags = BT_FLAGS_REAL & ~0x400u; /* CF PF AF ZF SF OF set, DF clear */
    uint32_t hlt;
    tc_flush(&H.bt.tc);
    *entry = load_snippet(code, code + len, &hlt);
    bt_harness_reset_vcpu(&H);
    bt_host_vcpu.gpr[0] = 0xDEADBEEF;
    bt_host_vcpu.gpr[1] = 0x12345678;
    bt_host_vcpu.eflags = BT_FLAGS_FIXED1 | flags;
    bt_host_vcpu.sel[BT_DS] = 0x7B;
    bt_host_vcpu.invlpg_exit = exit_on;
    bt_host_vcpu.invlpg_skip = skip;
    bt_host_vcpu.invlpg_skip_ds = skip_ds;
    bt_host_vcpu.invlpg_inline = 0;
    bt_host_vcpu.r3_gdt_page = invlpg_gdt_page;
    bt_host_vcpu.r3_gdt_ds = invlpg_gdt_ds;
    bt_host_vcpu.r3_ok = 1;
    bt_host_vcpu.eip = *entry;
    int r = bt_harness_run(&H, 0);
    bt_host_vcpu.invlpg_exit = 0;
    /* One that does not exit tells the monitor and stops the return stub
     * (vmm/vcpu.c gdtw_map), unless it cannot be of the GDT's page; one
     * that exits leaves both alone. */
    bool stops = r != BT_EXIT_INVLPG && !invlpg_keeps_walk;
    assert_int_equal(bt_host_vcpu.invlpg_inline, stops ? 1 : 0);
    assert_int_equal(bt_host_vcpu.r3_ok, stops ? 0 : 1);
    bt_host_vcpu.r3_ok = 0;
    assert_int_equal(bt_host_vcpu.gpr[0], 0xDEADBEEF);
    assert_int_equal(bt_host_vcpu.gpr[1], 0x12345678);
    assert_int_equal(bt_host_vcpu.eflags & BT_FLAGS_REAL, flags);
    return r;
}

/* While shadow tables are out of sync INVLPG exits, except for the page the
 * monitor dropped at the #PF it gave (invlpg_skip, a DS offset while DS
 * holds invlpg_skip_ds): compared by page, through DS only, with the
 * guest's own ECX in the address and its flags, EAX and ECX kept. */
static void test_invlpg_skip(void **state)
{
    static const uint8_t ds[] = { 0x0F, 0x01, 0x39, 0xF4 };        /* invlpg (%ecx); hlt */
    static const uint8_t fs[] = { 0x64, 0x0F, 0x01, 0x39, 0xF4 };  /* invlpg %fs:(%ecx); hlt */
    static const uint8_t disp[] = { 0x0F, 0x01, 0xB9, 0x00, 0x10, 0x00, 0x00, 0xF4 }; /* invlpg 0x1000(%ecx) */
    uint32_t entry;
    /* Skipped: the same page, another offset in it. */
    assert_int_equal(run_invlpg(ds, sizeof(ds), 1, 0x12345000, 0x7B, &entry), BT_EXIT_HLT);
    assert_int_equal(bt_host_vcpu.eip, entry + 3);
    /* Another page, or the displacement moving it to the next one: exit. */
    assert_int_equal(run_invlpg(ds, sizeof(ds), 1, 0x12346000, 0x7B, &entry), BT_EXIT_INVLPG);
    assert_int_equal(bt_host_vcpu.eip, entry);
    assert_int_equal(bt_host_vcpu.exit_ea, 0x12345678);
    assert_int_equal(run_invlpg(disp, sizeof(disp), 1, 0x12345000, 0x7B, &entry), BT_EXIT_INVLPG);
    assert_int_equal(bt_host_vcpu.exit_ea, 0x12346678);
    assert_int_equal(run_invlpg(disp, sizeof(disp), 1, 0x12346000, 0x7B, &entry), BT_EXIT_HLT);
    /* DS holds another selector than the one the offset is for: exit. */
    assert_int_equal(run_invlpg(ds, sizeof(ds), 1, 0x12345000, 0x83, &entry), BT_EXIT_INVLPG);
    /* No page to skip (BT_INVLPG_SKIP_NONE is never a page): exit. */
    assert_int_equal(run_invlpg(ds, sizeof(ds), 1, BT_INVLPG_SKIP_NONE, 0x7B, &entry), BT_EXIT_INVLPG);
    /* Through FS: always exits, whatever the skip says. */
    assert_int_equal(run_invlpg(fs, sizeof(fs), 1, 0x12345000, 0x7B, &entry), BT_EXIT_INVLPG);
    assert_int_equal(bt_host_vcpu.eip, entry);
    /* All tables in sync: nothing to do, no exit. */
    assert_int_equal(run_invlpg(fs, sizeof(fs), 0, BT_INVLPG_SKIP_NONE, 0, &entry), BT_EXIT_HLT);
    tc_flush(&H.bt.tc);
}

/* An INVLPG that does not exit stops the return stubs (r3_ok = 0) and has
 * the monitor walk the GDT's page again (invlpg_inline), unless it is
 * through DS while DS holds r3_gdt_ds and of another page than
 * r3_gdt_page: the #PF handler's INVLPG of the faulting page, before the
 * IRET the IRET stub takes. Its page is compared whole; the state of the
 * skip (invlpg_exit, invlpg_skip) does not matter. */
static void test_invlpg_gdt_page(void **state)
{
    static const uint8_t ds[] = { 0x0F, 0x01, 0x39, 0xF4 };        /* invlpg (%ecx); hlt */
    static const uint8_t fs[] = { 0x64, 0x0F, 0x01, 0x39, 0xF4 };  /* invlpg %fs:(%ecx); hlt */
    uint32_t entry;
    invlpg_gdt_ds = 0x7B;
    invlpg_gdt_page = 0x0BAD0000; /* ECX is 0x12345678 */
    invlpg_keeps_walk = true;      /* another page, through the flat DS */
    assert_int_equal(run_invlpg(ds, sizeof(ds), 0, BT_INVLPG_SKIP_NONE, 0, &entry), BT_EXIT_HLT);
    assert_int_equal(run_invlpg(ds, sizeof(ds), 1, 0x12345000, 0x7B, &entry), BT_EXIT_HLT);
    invlpg_keeps_walk = false;     /* the GDT's page, at any offset in it */
    invlpg_gdt_page = 0x12345000;
    assert_int_equal(run_invlpg(ds, sizeof(ds), 0, BT_INVLPG_SKIP_NONE, 0, &entry), BT_EXIT_HLT);
    assert_int_equal(run_invlpg(ds, sizeof(ds), 1, 0x12345000, 0x7B, &entry), BT_EXIT_HLT);
    invlpg_gdt_page = 0x0BAD0000;  /* DS holds another selector than the flat one */
    invlpg_gdt_ds = 0x83;
    assert_int_equal(run_invlpg(ds, sizeof(ds), 0, BT_INVLPG_SKIP_NONE, 0, &entry), BT_EXIT_HLT);
    invlpg_gdt_ds = 0x7B;          /* through FS: its base is not known */
    assert_int_equal(run_invlpg(fs, sizeof(fs), 0, BT_INVLPG_SKIP_NONE, 0, &entry), BT_EXIT_HLT);
    invlpg_gdt_ds = 0xFFFFFFFFu;
    invlpg_gdt_page = 0;
    tc_flush(&H.bt.tc);
}

static void test_undefined_opcode(void **state)
{
    static const uint8_t code[] = { 0x90, 0x0F, 0x04, 0xF4 }; /* nop; (reserved 0F 04) */
    uint32_t hlt, entry = load_snippet(code, code + sizeof(code), &hlt);
    bt_harness_reset_vcpu(&H);
    bt_host_vcpu.eip = entry;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_UD);
    assert_int_equal(bt_host_vcpu.eip, entry + 1);
}

/* Hand the TC arena, which a test's own struct bt shared, back to the
 * harness's (flat, host-state) translator for the tests after it. */
static void restore_host_bt(void)
{
    struct bt_config cfg = { .state_base = (uint32_t)(uintptr_t)&bt_host_vcpu };
    bt_init(&H.bt, &cfg, &bt_host_vcpu, H.tc_code, H.tc_code_size, H.tc_meta, H.tc_meta_size,
            H.bt.fetch, H.bt.fetch_ctx, H.bt.enter);
}

/* Translate len bytes of code as the block at gva 0x1000 with b; returns
 * what bt_translate returns (the fetch context does not outlive the call). */
static int translate_bytes(struct bt *b, const uint8_t *code, uint32_t len, struct tc_block **blk)
{
    struct bt_elf_text t = { .bytes = code, .addr = 0x1000, .size = len };
    b->fetch_ctx = &t;
    int rc = bt_translate(b, 0x1000, blk);
    b->fetch_ctx = NULL;
    return rc;
}

/* ------------------------------------------------------------ kernel code */

/* Translate (the first 4 MiB of) the Debian kernel .text block by block;
 * every emitted body must decode back into whole instructions. */
static void test_kernel_text(void **state)
{
    struct bt_elf_text t;
    if (bt_harness_load_text("build/debian/vmlinux", &t) < 0)
        fail_msg("build/debian/vmlinux missing or not an ELF: `make test` fetches it "
                 "(scripts/fetch-debian.sh)");
    static struct bt kbt;
    static uint8_t meta[4u << 20];
    struct bt_config cfg = { .state_base = (uint32_t)(uintptr_t)&bt_host_vcpu };
    assert_int_equal(bt_init(&kbt, &cfg, &bt_host_vcpu, H.tc_code, H.tc_code_size, meta,
                             sizeof(meta), bt_harness_text_fetch, &t, bt_host_enter), 0);
    kbt.chaining = false; /* a chained stub is a JMP and dead bytes: read the emitted code only */
    uint32_t end = t.addr + MIN(t.size, 4u << 20), blocks = 0;
    for (uint32_t eip = t.addr; eip < end; blocks++) {
        struct tc_block *b;
        assert_int_equal(bt_translate(&kbt, eip, &b), 0);
        uint32_t off = 0;
        while (off < b->body_len) {
            struct dec_insn in;
            int n = dec_decode(b->tca + off, b->body_len - off, 0, DEC_MODE_32, &in);
            if (n <= 0)
                fail_msg("block %08x: emitted bytes at +%u do not decode (%d)", eip, off, n);
            off += (uint32_t)n;
        }
        assert_int_equal(off, b->body_len);
        eip += b->guest_len ? b->guest_len : 1;
    }
    print_message("kernel .text: %u blocks, %u instructions, %u TC bytes, %u flushes\n", blocks,
                  kbt.stats.insns, kbt.tc.stats.tc_bytes, kbt.tc.stats.flushes);
    free(t.file);
    restore_host_bt();
}

/* ------------------------------------------------------------ faults */

/* esi = unmapped page. */
SNIPPET(sn_fault_load, "mov $0x11, %eax\n mov $0x22, %ebx\n nop\n mov 8(%esi), %ecx\n hlt");
SNIPPET(sn_fault_ret, "mov $0x33, %eax\n mov %esi, %esp\n ret\n hlt");
SNIPPET(sn_fault_icall, "mov $0x44, %ecx\n call *4(%esi)\n hlt");
SNIPPET(sn_fault_popf, "mov $0x55, %eax\n stc\n mov %esi, %esp\n popf\n hlt");

static void expect_fault(const uint8_t *start, const uint8_t *end, uint32_t fault_off,
                         const uint32_t expect[8])
{
    bt_harness_reset_vcpu(&H);
    uint32_t hlt, entry = load_snippet(start, end, &hlt);
    uint32_t hole = (uint32_t)(uintptr_t)H.hole;
    bt_host_vcpu.gpr[6] = hole;
    bt_host_vcpu.eip = entry;
    assert_int_equal(bt_harness_run(&H, 0), BT_HARNESS_FAULT);
    assert_int_equal(H.fault_eip_ok, 0);
    assert_int_equal(bt_host_vcpu.eip, entry + fault_off);
    assert_true(H.fault_addr >= hole && H.fault_addr < hole + 4096);
    for (int i = 0; i < 8; i++)
        if (expect[i] != 0xFFFFFFFFu && bt_host_vcpu.gpr[i] != expect[i])
            fail_msg("gpr %d at fault: %08x, expected %08x", i, bt_host_vcpu.gpr[i], expect[i]);
}

static void test_precise_faults(void **state)
{
    const uint32_t any = 0xFFFFFFFFu, hole = (uint32_t)(uintptr_t)H.hole;
    uint32_t e1[8] = { 0x11, 0, 0, 0x22, any, 0, hole, 0 };
    expect_fault(sn_fault_load_start, sn_fault_load_end, 11, e1);
    uint32_t e2[8] = { 0x33, 0, 0, 0, hole, 0, hole, 0 };
    expect_fault(sn_fault_ret_start, sn_fault_ret_end, 7, e2);
    uint32_t e3[8] = { 0, 0x44, 0, 0, any, 0, hole, 0 };
    expect_fault(sn_fault_icall_start, sn_fault_icall_end, 5, e3);
    uint32_t e4[8] = { 0x55, 0, 0, 0, hole, 0, hole, 0 };
    expect_fault(sn_fault_popf_start, sn_fault_popf_end, 8, e4);
    assert_true(bt_host_vcpu.eflags & 1); /* CF from stc still there */
}

/* ------------------------------------------------------------ SMC, chaining, eviction */

/* The JMP before the second call: a block that stores into a callee and
 * then calls it would have the callee inline, translated before the store
 * ran; the monitor's write protection catches that store (the harness does
 * not protect pages again), test_inline_callee the invalidation. */
SNIPPET(sn_smc,
        "call 1f\n1: pop %esi\n call 2f\n mov %eax, %ebx\n movb $2, (2f + 1 - 1b)(%esi)\n"
        "jmp 3f\n3: call 2f\n hlt\n2: mov $1, %eax\n ret");

static void self_modifying(bool inline_calls)
{
    /* The harness does not write-protect a page again when it translates
     * from it, as the monitor does (bt_page_of): a successor translated
     * ahead from the page the snippet then writes would stay stale here,
     * where the monitor's protection would drop it. */
    H.bt.successors = false;
    H.bt.inline_calls = inline_calls;
    bt_harness_reset_vcpu(&H);
    uint32_t hlt, entry = load_snippet(sn_smc_start, sn_smc_end, &hlt);
    uint8_t *page = (uint8_t *)((uintptr_t)entry & ~0xFFFu);
    /* The monitor write-protects guest pages it translated from. */
    assert_int_equal(mprotect(page, 4096, PROT_READ | PROT_EXEC), 0);
    bt_host_vcpu.eip = entry;
    int r = bt_harness_run(&H, 0);
    assert_int_equal(r, BT_HARNESS_FAULT);
    assert_int_equal(H.fault_addr, entry + (uint32_t)(sn_smc_end - sn_smc_start) - 6 + 1);
    assert_int_equal(bt_host_vcpu.gpr[3], 1);
    assert_int_equal(mprotect(page, 4096, PROT_READ | PROT_WRITE | PROT_EXEC), 0);
    /* Inline, "2: mov $1,%eax; ret" is part of the block of the CALL. */
    uint32_t killed = tc_invalidate_page(&H.bt.tc, H.fault_addr);
    assert_true(killed >= (inline_calls ? 2u : 3u));
    assert_null(tc_lookup(&H.bt.tc, entry));
    r = bt_harness_run(&H, 0);
    assert_int_equal(r, BT_EXIT_HLT);
    assert_int_equal(bt_host_vcpu.gpr[0], 2); /* the patched immediate, not the stale one */
    assert_int_equal(bt_host_vcpu.gpr[3], 1);
    H.bt.successors = true;
    H.bt.inline_calls = true;
}

static void test_self_modifying(void **state)
{
    self_modifying(false);
    uint32_t inlined = H.bt.stats.inlined;
    self_modifying(true);
    assert_true(H.bt.stats.inlined > inlined);
}

/* ------------------------------------------------------------ short callees inline */

/*
 * Calls to short leaf functions (docs/bt.md "Short callees inline"): one
 * with a Jcc and a stack argument, one that rewrites its return address
 * (the inline RET's miss path), one too long, one that calls (not a leaf),
 * one with RET imm16, and one on the next page. Esi = the data area.
 */
SNIPPET(sn_inline,
        "mov $20, %ecx\n"
        "1: push %ecx\n call 3f\n add $4, %esp\n add %eax, %ebx\n"
        "call 4f\n inc %edx\n add $3, %edx\n"
        "call 5f\n call 6f\n push $1\n call 7f\n sn_inline_after7: call 8f\n add %eax, %edi\n"
        "call 8f\n add %eax, %edi\n mov %ebx, (%esi)\n loop 1b\n hlt\n"
        "3: mov 4(%esp), %eax\n test $1, %al\n jz 31f\n neg %eax\n 31: ret\n"
        "4: mov %esp, %eax\n addl $1, (%eax)\n ret\n" /* over the INC */
        "5: .rept 30\n inc %ebp\n .endr\n ret\n"
        "6: call 3b\n ret\n"
        "7: add 4(%esp), %ebp\n ret $4\n"
        ".skip 4096 - ((. - sn_inline_start) & 4095), 0x90\n"
        "8: mov (%esi), %eax\n add $7, %eax\n ret");
extern const uint8_t sn_inline_after7[];

/*
 * Paths through a callee: the fall-through of its first Jcc calls (so the
 * path takes it), and a JMP forward to its RET; the calls alternate
 * between the two sides of each Jcc, so both run inline and as exits.
 * Ebp counts the slow calls.
 */
SNIPPET(sn_inline_path,
        "mov $40, %ecx\n 1: mov %ecx, %eax\n and $3, %eax\n call 3f\n add %eax, %ebx\n loop 1b\n hlt\n"
        "3: cmp $1, %eax\n jae 31f\n call 4f\n jmp 33f\n"
        "31: test $2, %al\n jz 32f\n add $7, %eax\n jmp 33f\n 32: shl $4, %eax\n 33: ret\n"
        "4: inc %ebp\n ret");

/* A retpoline thunk (Linux's __x86_indirect_thunk_eax): the callee stores
 * the target over its return address; inline, its RET is a lookup that
 * finds it (a compare with the CALL's return would miss every time). */
SNIPPET(sn_inline_thunk,
        "mov $20, %ecx\n 1: call 91f\n 91: pop %eax\n add $(93f - 91b), %eax\n"
        "call 9f\n inc %edx\n 93: loop 1b\n hlt\n"
        "9: mov %eax, (%esp)\n ret");

/* A fault inside an inlined callee on another page: its own EIP, with the
 * return address already pushed. Esi = the hole. */
SNIPPET(sn_inline_fault,
        "mov $0x66, %ecx\n call 2f\n hlt\n"
        ".skip 4096 - ((. - sn_inline_fault_start) & 4095), 0x90\n"
        "2: mov $0x77, %eax\n mov 8(%esi), %edx\n ret");

static void test_inline_callee(void **state)
{
    /* Natively and translated, the same state, with and without inlining. */
    for (int on = 0; on < 2; on++) {
        H.bt.inline_calls = on;
        uint32_t inlined = H.bt.stats.inlined;
        uint32_t init[8] = { 0, 0, 0, 0, 0, 0, (uint32_t)(uintptr_t)data_area(), 0 };
        run_snippet(sn_inline_start, sn_inline_end, init, NULL);
        /* 3f, 4f and the two 8f of the first block that runs them; 5f
         * (31 instructions), 6f (calls) and 7f (RET 4) never. */
        _Static_assert(BT_INLINE_MAX_INSNS < 31, "sn_inline's 5f must be too long to inline");
        if (on)
            assert_true(H.bt.stats.inlined - inlined >= 4);
        else
            assert_int_equal(H.bt.stats.inlined, inlined);
    }
    uint32_t hlt, entry = load_snippet(sn_inline_start, sn_inline_end, &hlt);
    uint32_t page2 = (entry + (uint32_t)(sn_inline_end - sn_inline_start) - 1) & ~0xFFFu;
    uint32_t init[8] = { 0, 0, 0, 0, 0, 0, (uint32_t)(uintptr_t)data_area(), 0 };
    set_regs(init, (const uint8_t[DATA_BYTES]){ 0 });
    bt_host_vcpu.eip = entry;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_HLT);
    /* The block after the call to 7f holds both calls of the callee on the
     * next page (2 + 3 + 1 bytes at its start). */
    uint32_t after7 = gva_of_label(sn_inline_start, sn_inline_after7);
    struct tc_block *b = tc_lookup(&H.bt.tc, after7);
    assert_non_null(b);
    assert_int_equal(b->inl_gva, page2);
    assert_int_equal(b->page[TC_PAGE_INLINE], page2);
    assert_int_equal(b->inl_lo, 0);
    assert_int_equal(b->inl_hi, 6);
    assert_true(b->page[0] != page2);
    /* A store past the callee (and the decoder's 15 bytes) leaves the
     * block; one into the callee kills it; so does its page going. */
    assert_int_equal(tc_invalidate_range(&H.bt.tc, page2, 6 + 15, 4, 0), 0);
    assert_non_null(tc_lookup(&H.bt.tc, after7));
    assert_true(tc_invalidate_range(&H.bt.tc, page2, 3, 1, 0) >= 1);
    assert_null(tc_lookup(&H.bt.tc, after7));
    set_regs(init, (const uint8_t[DATA_BYTES]){ 0 });
    bt_host_vcpu.eip = entry;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_HLT);
    assert_non_null(tc_lookup(&H.bt.tc, after7));
    assert_true(tc_invalidate_page(&H.bt.tc, page2) >= 1);
    assert_null(tc_lookup(&H.bt.tc, after7));

    /* Paths through the taken side of a Jcc and over a JMP: inline (the
     * block of the loop holds the callee), right either way. */
    for (int on = 0; on < 2; on++) {
        H.bt.inline_calls = on;
        uint32_t before = H.bt.stats.inlined;
        run_snippet(sn_inline_path_start, sn_inline_path_end, NULL, NULL);
        assert_int_equal(bt_host_vcpu.gpr[5], 10); /* the slow calls: ecx % 4 == 0 */
        assert_true(on ? H.bt.stats.inlined > before : H.bt.stats.inlined == before);
    }
    uint32_t path_entry = gva_of_label(sn_inline_path_start, sn_inline_path_start);
    struct tc_block *pb = tc_lookup(&H.bt.tc, path_entry + 5);
    assert_non_null(pb);
    /* mov, and, call; cmp, jae (taken), test, jz, add, jmp, ret; add, loop: 12 */
    assert_int_equal(pb->ninsns, 12);

    /* The thunk: inline, and warm, no lookup misses. */
    uint32_t thunk_inlined = H.bt.stats.inlined;
    run_snippet(sn_inline_thunk_start, sn_inline_thunk_end, NULL, NULL);
    assert_int_equal(bt_host_vcpu.gpr[2], 0);
    assert_true(H.bt.stats.inlined > thunk_inlined);
    uint32_t misses = H.bt.stats.ibl_misses;
    bt_host_vcpu.eip = gva_of_label(sn_inline_thunk_start, sn_inline_thunk_start);
    bt_host_vcpu.gpr[1] = 20;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_HLT);
    assert_int_equal(bt_host_vcpu.gpr[2], 0);
    assert_true(H.bt.stats.ibl_misses - misses <= 1);

    /* Precise fault in the callee: its EIP, ECX and EAX as the callee left them. */
    const uint32_t any = 0xFFFFFFFFu, hole = (uint32_t)(uintptr_t)H.hole;
    uint32_t callee = (uint32_t)(sn_inline_fault_end - sn_inline_fault_start) - 9; /* 5 + 3 + 1 bytes */
    uint32_t e[8] = { 0x77, 0x66, 0, 0, any, 0, hole, 0 };
    uint32_t inlined = H.bt.stats.inlined;
    expect_fault(sn_inline_fault_start, sn_inline_fault_end, callee + 5, e);
    assert_int_equal(H.bt.stats.inlined, inlined + 1);
    uint32_t ret_slot;
    memcpy(&ret_slot, (void *)(uintptr_t)bt_host_vcpu.gpr[4], 4);
    assert_int_equal(ret_slot, (uint32_t)(uintptr_t)H.guest + 10); /* the pushed return: the HLT */
}

/* Blocks keyed by a page identity other than the gva (a "gpa"). */
static uint32_t fake_gpa(void *ctx, uint32_t gva) { return gva ^ 0x40000000u; }

static void test_page_identity(void **state)
{
    static const uint8_t code[] = { 0x40, 0xF4 }; /* inc %eax; hlt */
    uint32_t hlt, entry = load_snippet(code, code + sizeof(code), &hlt);
    bt_set_page_fn(&H.bt, fake_gpa);
    bt_harness_reset_vcpu(&H);
    bt_host_vcpu.eip = entry;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_HLT);
    assert_int_equal(tc_invalidate_page(&H.bt.tc, entry), 0);
    assert_int_equal(tc_invalidate_page(&H.bt.tc, fake_gpa(NULL, entry)), 1);
    assert_null(tc_lookup(&H.bt.tc, entry));
    bt_set_page_fn(&H.bt, NULL);
}

SNIPPET(sn_chain, "xor %eax, %eax\n mov $2000, %ecx\n1: add %ecx, %eax\n dec %ecx\n jnz 1b\n hlt");

static void test_chaining(void **state)
{
    uint32_t hlt, entry = load_snippet(sn_chain_start, sn_chain_end, &hlt);
    H.bt.chaining = false;
    bt_harness_reset_vcpu(&H);
    bt_host_vcpu.eip = entry;
    assert_int_equal(bt_harness_run(&H, 10), BT_EXIT_NONE); /* budget of 10 dispatches */
    assert_int_equal(bt_host_vcpu.gpr[1], 2000 - 10); /* one iteration per block run */
    bt_harness_reset_vcpu(&H);
    bt_host_vcpu.eip = entry;
    uint32_t d0 = H.bt.stats.dispatches;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_HLT);
    uint32_t unchained = H.bt.stats.dispatches - d0;
    H.bt.chaining = true;
    tc_flush(&H.bt.tc);
    bt_harness_reset_vcpu(&H);
    bt_host_vcpu.eip = entry;
    d0 = H.bt.stats.dispatches;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_HLT);
    uint32_t chained = H.bt.stats.dispatches - d0;
    assert_int_equal(bt_host_vcpu.gpr[0], 2001000);
    print_message("dispatcher entries: %u unchained, %u chained\n", unchained, chained);
    assert_true(unchained >= 2000);
    assert_true(chained <= 5);
    /* The loop's JNZ (inside the block that starts at "1:") jumps to its
     * target's translation itself once chained, and to its stub again once
     * unchained. */
    struct tc_block *loop = tc_lookup(&H.bt.tc, entry + 7);
    assert_non_null(loop);
    struct bt_exit *jnz = &loop->exits[0];
    assert_non_null(jnz->jcc_rel);
    assert_int_equal(jnz->jcc_rel[-2], 0x0F);
    assert_int_equal(jnz->jcc_rel[-1], 0x85);
    assert_ptr_equal(jnz->to, loop);
    int32_t rel;
    memcpy(&rel, jnz->jcc_rel, 4);
    assert_ptr_equal(jnz->jcc_rel + 4 + rel, loop->tca);
    bt_request_exit(&H.bt);
    assert_null(jnz->to);
    memcpy(&rel, jnz->jcc_rel, 4);
    assert_ptr_equal(jnz->jcc_rel + 4 + rel, jnz->stub_tca);
    bt_harness_reset_vcpu(&H);
    bt_host_vcpu.eip = entry;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_HLT);
    assert_int_equal(bt_host_vcpu.gpr[0], 2001000);
}

static void test_eviction(void **state)
{
    /* 100 blocks of 60 x "add $1,%eax" + "jmp +1; nop": ~20 KiB of TC in a
     * 12 KiB code arena with 16 KiB of metadata. */
    enum { UNITS = 100, ADDS = 60, UNIT_BYTES = ADDS * 3 + 6 };
    static uint8_t prog[UNITS * UNIT_BYTES + 1];
    static uint8_t meta[16 * 1024];
    uint8_t *p = prog;
    for (int i = 0; i < UNITS; i++) {
        for (int k = 0; k < ADDS; k++)
            *p++ = 0x83, *p++ = 0xC0, *p++ = 1;
        const uint8_t tail[6] = { 0xE9, 1, 0, 0, 0, 0x90 };
        memcpy(p, tail, sizeof(tail));
        p += sizeof(tail);
    }
    *p++ = 0xF4;
    uint32_t hlt, entry = load_snippet(prog, p, &hlt);
    struct bt saved = H.bt;
    struct bt_config cfg = { .state_base = (uint32_t)(uintptr_t)&bt_host_vcpu };
    assert_int_equal(bt_init(&H.bt, &cfg, &bt_host_vcpu, H.tc_code, 3 * TC_BLOCK_MAX_CODE, meta,
                             sizeof(meta), saved.fetch, saved.fetch_ctx, saved.enter), 0);
    for (int run = 0; run < 2; run++) {
        bt_harness_reset_vcpu(&H);
        bt_host_vcpu.eip = entry;
        assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_HLT);
        assert_int_equal(bt_host_vcpu.gpr[0], UNITS * ADDS);
    }
    print_message("eviction: %u blocks translated, %u flushes, max %u blocks\n",
                  H.bt.tc.stats.blocks, H.bt.tc.stats.flushes, H.bt.tc.max_blocks);
    assert_true(H.bt.tc.stats.flushes >= 2);
    assert_true(H.bt.tc.nblocks <= H.bt.tc.max_blocks);
    H.bt = saved;
    tc_flush(&H.bt.tc); /* its arena was reused above */
}

/* ------------------------------------------------------------ random programs */

#include "tests/unit/test_translate_gen.h"

static void test_random_programs(void **state)
{
    unsigned seed = 20261121u, n = 10000;
    print_message("random programs: seed %u, %u programs\n", seed, n);
    struct gen g;
    gen_init(&g, seed);
    uint8_t data[DATA_BYTES];
    uint32_t insns = 0;
    for (unsigned i = 0; i < n; i++) {
        uint32_t hlt;
        uint8_t *code = H.guest;
        memset(H.guest, 0xCC, DATA_OFF);
        gen_program(&g, code, &hlt, data, sizeof(data));
        tc_flush(&H.bt.tc);
        uint32_t init[8];
        for (int r = 0; r < 8; r++)
            init[r] = gen_rand(&g);
        init[7] = (uint32_t)(uintptr_t)data_area(); /* EDI: data base */
        uint32_t before = H.bt.stats.insns;
        run_both((uint32_t)(uintptr_t)code, hlt, init, data, NULL);
        insns += H.bt.stats.insns - before;
    }
    print_message("random programs: %u guest instructions translated\n", insns);
}

/* ------------------------------------------------------------ segment mode */

/*
 * The hypervisor reaches struct bt_vcpu through a segment override (GS,
 * base = the per-vCPU monitor area, disp32 = field offset). Rehearse that
 * mode on the host with FS: an LDT data segment based at bt_host_vcpu,
 * state_base 0, and rerun snippets natively vs translated.
 */
static bool load_fs_at_vcpu(void)
{
    struct user_desc d = {
        .entry_number = 0, .base_addr = (unsigned)(uintptr_t)&bt_host_vcpu,
        .limit = (sizeof(bt_host_vcpu) + 4095) / 4096 - 1, /* the whole state, lookup table included */
        .seg_32bit = 1, .contents = 0, .read_exec_only = 0, .limit_in_pages = 1,
        .seg_not_present = 0, .useable = 1,
    };
    if (syscall(SYS_modify_ldt, 1, &d, sizeof(d)) != 0)
        return false;
    uint16_t sel = 0 << 3 | 4 | 3; /* LDT entry 0, RPL 3 */
    __asm__ volatile("mov %0, %%fs" : : "r"(sel));
    return true;
}

static void test_segment_mode(void **state)
{
    if (!load_fs_at_vcpu())
        fail_msg("modify_ldt(2) refused an LDT entry: %s", strerror(errno));
    struct bt saved = H.bt;
    struct bt_config cfg = { .state_seg_prefix = BT_SEG_FS, .state_base = 0 };
    assert_int_equal(bt_init(&H.bt, &cfg, &bt_host_vcpu, H.tc_code, H.tc_code_size, H.tc_meta,
                             H.tc_meta_size, saved.fetch, saved.fetch_ctx, saved.enter), 0);
    assert_int_equal(H.bt.ibl_stub[0], BT_SEG_FS); /* state accesses carry the prefix */
    test_straight_line(state);
    test_loops(state);
    test_calls(state);
    test_indirect(state);
    test_strings(state);
    test_flags(state);
    test_cli_sti_pushf(state);
    test_popf_virtual(state);
    test_pending_irq(state);
    test_mov_cr(state);
    test_segments(state);
    test_precise_faults(state);
    /* A guest memory operand through FS is the monitor's now. */
    static const uint8_t fsload[] = { 0x64, 0x8B, 0x00, 0xF4 }; /* mov %fs:(%eax),%eax */
    uint32_t hlt, entry = load_snippet(fsload, fsload + sizeof(fsload), &hlt);
    bt_harness_reset_vcpu(&H);
    bt_host_vcpu.eip = entry;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_EMULATE);
    /* ... and so is every form the per-opcode rules used to copy or
     * re-encode with the guest's prefix (issue 11): inc/dec/push m,
     * call/jmp m, pop m, xlat, maskmovq, a string source. */
    static const uint8_t forms[][6] = {
        { 3, 0x64, 0xFF, 0x00 }, { 3, 0x64, 0xFF, 0x08 }, { 3, 0x64, 0xFF, 0x30 }, { 3, 0x64, 0xFF, 0x10 },
        { 3, 0x64, 0xFF, 0x20 }, { 3, 0x64, 0x8F, 0x00 }, { 2, 0x64, 0xD7 }, { 4, 0x64, 0x0F, 0xF7, 0xC1 },
        { 2, 0x64, 0xAC },
    };
    for (unsigned i = 0; i < ARRAY_SIZE(forms); i++) {
        uint8_t code[8];
        memcpy(code, forms[i] + 1, forms[i][0]);
        code[forms[i][0]] = 0xF4;
        entry = load_snippet(code, code + forms[i][0] + 1, &hlt);
        bt_harness_reset_vcpu(&H);
        struct bt_vcpu before = bt_host_vcpu;
        bt_host_vcpu.eip = entry;
        int r = bt_harness_run(&H, 0);
        if (r != BT_EXIT_EMULATE || bt_host_vcpu.eip != entry)
            fail_msg("form %u (%02x %02x): exit %s at +%d, expected emulate at +0", i, forms[i][1], forms[i][2],
                     bt_exit_name((unsigned)r), (int)(bt_host_vcpu.eip - entry));
        assert_int_equal(bt_host_vcpu.vflags_if, before.vflags_if);
        assert_int_equal(bt_host_vcpu.gpr[4], before.gpr[4]);
    }
    H.bt = saved;
    tc_flush(&H.bt.tc);
    __asm__ volatile("mov %0, %%fs" : : "r"(0));
}

/* ------------------------------------------------------------ the state segment (issue 11) */

#define STATE_MARK 0x5A5A0000u /* state_base of the property tests: no guest disp comes near it */

/* Is the emitted instruction at p a legal use of the state segment (GS)?
 * Only the translator's own [disp32] operands inside struct bt_vcpu may go
 * through it; a guest memory access through GS, or a GS prefix left on a
 * guest instruction, is the issue 11 escape. */
/* Does emitted instruction in write ECX (or a part of it)? */
static bool writes_ecx(const struct dec_insn *in)
{
    for (unsigned i = 0; i < in->num_ops; i++) {
        const struct dec_operand *o = &in->ops[i];
        if (o->kind == DEC_OP_REG && (o->flags & DEC_OPF_WRITE) &&
            (o->reg == DEC_REG_ECX || o->reg == DEC_REG_CX || o->reg == DEC_REG_CL || o->reg == DEC_REG_CH))
            return true;
    }
    return false;
}

static bool state_use_ok(const struct dec_insn *in, bool ecx_is_selector)
{
    bool gs_pfx = (in->prefixes & DEC_PFX_SEG) && in->seg == DEC_REG_GS;
    if (!gs_pfx && !(in->has_mem && in->mem.seg == DEC_REG_GS))
        return true;
    /* The lookup of h_seg_load and h_verw, movzx ecx,byte [state:table+ecx]:
     * allowed only while ECX holds what a MOVZX from 16 bits left there
     * (nothing emitted since wrote ECX), so it stays inside the 64 KiB table. */
    if (in->mnemonic == DEC_M_MOVZX && in->ops[0].reg == DEC_REG_ECX && in->mem.base == DEC_REG_ECX &&
        in->mem.index == DEC_REG_NONE && in->ops[1].size == 1 &&
        ((uint32_t)in->mem.disp == STATE_MARK + offsetof(struct bt_vcpu, seg_native) ||
         (uint32_t)in->mem.disp == STATE_MARK + offsetof(struct bt_vcpu, seg_verw)))
        return ecx_is_selector;
    return in->has_mem && in->mem.base == DEC_REG_NONE && in->mem.index == DEC_REG_NONE &&
           (uint32_t)in->mem.disp - STATE_MARK < sizeof(struct bt_vcpu);
}

/* Translate the block at code (as gva 0x1000) with GS as the state segment
 * and check every emitted instruction; returns false with a message. */
static bool translate_checked(struct bt *b, const uint8_t *code, uint32_t len)
{
    struct tc_block *blk;
    if (translate_bytes(b, code, len, &blk) < 0)
        return true; /* nothing translated, nothing emitted */
    bool ecx_is_selector = false;
    for (uint32_t off = 0; off < blk->body_len;) {
        struct dec_insn in;
        int n = dec_decode(blk->tca + off, blk->body_len - off, 0, DEC_MODE_32, &in);
        if (n <= 0) {
            print_message("emitted bytes at +%u do not decode\n", off);
            return false;
        }
        if (!state_use_ok(&in, ecx_is_selector)) {
            char hex[64] = "";
            for (uint32_t i = 0; i < len && i < 12; i++)
                sprintf(hex + 3 * i, "%02x ", code[i]);
            print_message("guest %s: emitted %s at +%u reaches GS\n", hex, dec_mnemonic_name(in.mnemonic), off);
            return false;
        }
        if (writes_ecx(&in))
            ecx_is_selector = in.mnemonic == DEC_M_MOVZX && in.ops[0].reg == DEC_REG_ECX && in.ops[1].size == 2;
        off += (uint32_t)n;
    }
    return true;
}

static void init_state_bt(struct bt *b, void *meta, uint32_t meta_size)
{
    struct bt_config cfg = { .state_seg_prefix = BT_SEG_GS, .rewrite_cs_override = true, .guest_seg_alias = true,
                             .native_seg_loads = true, .state_base = STATE_MARK };
    assert_int_equal(bt_init(b, &cfg, &bt_host_vcpu, H.tc_code, H.tc_code_size, meta, meta_size,
                             bt_harness_text_fetch, NULL, bt_host_enter), 0);
    b->chaining = false; /* a chained stub is a JMP and dead bytes: read the emitted code only */
}

/* A missed block that ends in an unconditional branch has its target
 * translated with it and chained to it; a conditional branch's targets
 * wait for their misses: its taken side inside a block (the block goes on
 * with its fall-through), and both sides of a LOOP that ends a block; as
 * does anything on another page or the successor's own successor. Only
 * translates (the dispatcher's lookup). */
static void test_successors(void **state)
{
    /* 0x1000: jz 0x1010; 0x1002: jmp 0x1030; 0x1020: loop 0x1010;
     * 0x1030: call 0x1040; 0x1FFE: jmp 0x2000 (the next page)
     * hlt everywhere else */
    static uint8_t code[0x1010];
    memset(code, 0xF4, sizeof(code));
    code[0x000] = 0x74, code[0x001] = 0x0E;
    code[0x002] = 0xEB, code[0x003] = 0x2C;
    code[0x020] = 0xE2, code[0x021] = 0xEE;
    code[0x030] = 0xE8, code[0x031] = 0x0B, code[0x032] = 0, code[0x033] = 0, code[0x034] = 0;
    code[0xFFE] = 0xEB, code[0xFFF] = 0x00;
    static struct bt kbt;
    static uint8_t meta[1u << 16];
    struct bt_config cfg = { .state_base = (uint32_t)(uintptr_t)&bt_host_vcpu };
    struct bt_elf_text t = { .bytes = code, .addr = 0x1000, .size = sizeof(code) };
    assert_int_equal(bt_init(&kbt, &cfg, &bt_host_vcpu, H.tc_code, H.tc_code_size, meta, sizeof(meta),
                             bt_harness_text_fetch, &t, bt_host_enter), 0);
    struct tc_block *a = bt_block_for(&kbt, 0x1000);
    assert_non_null(a);
    assert_int_equal(a->ninsns, 2);                         /* the JZ's fall-through, in the block */
    assert_int_equal(a->guest_len, 4);
    assert_int_equal(a->nexits, 2);
    assert_int_equal(a->exits[0].target, 0x1010);
    assert_null(a->exits[0].to);
    assert_null(tc_lookup(&kbt.tc, 0x1010));                /* the taken side: nothing ahead */
    assert_null(tc_lookup(&kbt.tc, 0x1002));                /* no block of its own */
    struct tc_block *target = tc_lookup(&kbt.tc, 0x1030);  /* the JMP that ends it: its target */
    assert_non_null(target);
    assert_ptr_equal(a->exits[1].to, target);
    assert_int_equal(kbt.stats.successors, 1);
    assert_null(tc_lookup(&kbt.tc, 0x1040));                /* not the successor's successor */
    assert_ptr_equal(bt_block_for(&kbt, 0x1030), target);   /* found: nothing translated */
    assert_null(tc_lookup(&kbt.tc, 0x1040));
    struct tc_block *l = bt_block_for(&kbt, 0x1020);        /* a LOOP ends its block: nothing ahead */
    assert_int_equal(l->nexits, 2);
    assert_null(tc_lookup(&kbt.tc, 0x1022));
    assert_null(tc_lookup(&kbt.tc, 0x1010));
    assert_int_equal(kbt.stats.successors, 1);
    struct tc_block *j = bt_block_for(&kbt, 0x1FFE);
    assert_non_null(j);
    assert_null(tc_lookup(&kbt.tc, 0x2000));                /* never on another page */
    assert_null(j->exits[0].to);
    kbt.successors = false;                                 /* and not when switched off */
    tc_invalidate_page(&kbt.tc, 0x1000);
    j = bt_block_for(&kbt, 0x1000);
    assert_null(tc_lookup(&kbt.tc, 0x1030));
    assert_int_equal(kbt.stats.successors, 1);
    restore_host_bt();
}

/* A block's branch to a block already translated is chained when the block
 * is translated (no dispatcher exit the first time it is taken); one to a
 * block not yet translated is left for the dispatcher. Only translates. */
static void test_eager_chain(void **state)
{
    static struct bt kbt;
    static uint8_t meta[1u << 16];
    struct bt_config cfg = { .state_base = (uint32_t)(uintptr_t)&bt_host_vcpu };
    /* 0x1000: nop; jmp short 0x1010    0x1010: nop; jmp short 0x1000 */
    uint8_t code[32];
    memset(code, 0xF4, sizeof(code));
    code[0x00] = 0x90, code[0x01] = 0xEB, code[0x02] = 0x0D;
    code[0x10] = 0x90, code[0x11] = 0xEB, code[0x12] = 0xED;
    struct bt_elf_text t = { .bytes = code, .addr = 0x1000, .size = sizeof(code) };
    assert_int_equal(bt_init(&kbt, &cfg, &bt_host_vcpu, H.tc_code, H.tc_code_size, meta, sizeof(meta),
                             bt_harness_text_fetch, &t, bt_host_enter), 0);
    struct tc_block *a, *b;
    assert_int_equal(bt_translate(&kbt, 0x1000, &a), 0);
    assert_int_equal(a->nexits, 1);
    assert_int_equal(a->exits[0].reason, BT_EXIT_BRANCH);
    assert_int_equal(a->exits[0].target, 0x1010);
    assert_null(a->exits[0].to);                           /* 0x1010 not translated yet */
    assert_int_equal(bt_translate(&kbt, 0x1010, &b), 0);
    assert_ptr_equal(b->exits[0].to, a);                   /* back to 0x1000: chained at once */
    assert_int_equal(b->exits[0].stub_tca[0], 0xE9);
    int32_t rel;
    memcpy(&rel, b->exits[0].stub_tca + 1, 4);
    assert_ptr_equal(b->exits[0].stub_tca + 5 + rel, a->tca);
    assert_null(a->exits[0].to);                           /* the dispatcher chains that one */
    /* Not with chaining off. */
    assert_int_equal(bt_init(&kbt, &cfg, &bt_host_vcpu, H.tc_code, H.tc_code_size, meta, sizeof(meta),
                             bt_harness_text_fetch, &t, bt_host_enter), 0);
    kbt.chaining = false;
    assert_int_equal(bt_translate(&kbt, 0x1000, &a), 0);
    assert_int_equal(bt_translate(&kbt, 0x1010, &b), 0);
    assert_null(b->exits[0].to);
    restore_host_bt();
}

/* Every GS-prefixed form the review used, and every opcode of both maps
 * behind a GS prefix with several ModRM shapes: no emitted block may keep a
 * guest access through GS (FF /0 /1 /2 /4 /6, XLAT, MASKMOVQ/MASKMOVDQU,
 * string sources, PUSH/POP m, ALU, MOV, ...). Only translates; nothing runs. */
static void test_state_segment_never_guest(void **state)
{
    static struct bt kbt;
    static uint8_t meta[1u << 20];
    init_state_bt(&kbt, meta, sizeof(meta));
    static const uint8_t named[][8] = {
        { 3, 0x65, 0xFF, 0x00 }, { 3, 0x65, 0xFF, 0x08 }, { 3, 0x65, 0xFF, 0x30 },          /* inc dec push m */
        { 3, 0x65, 0xFF, 0x10 }, { 3, 0x65, 0xFF, 0x20 }, { 3, 0x65, 0x8F, 0x00 },          /* call jmp pop m */
        { 2, 0x65, 0xD7 }, { 4, 0x65, 0x0F, 0xF7, 0xC1 }, { 5, 0x66, 0x65, 0x0F, 0xF7, 0xC1 }, /* xlat maskmov */
        { 2, 0x65, 0xA4 }, { 3, 0xF3, 0x65, 0xA5 }, { 2, 0x65, 0xAC }, { 2, 0x65, 0xA6 },     /* strings */
        { 7, 0x65, 0xFF, 0x05, 0x2C, 0x00, 0x00, 0x00 },                                    /* inc gs:[exit_desc] */
        { 2, 0x8E, 0xD8 }, { 2, 0x8E, 0x00 }, { 1, 0x1F }, { 2, 0x0F, 0xA1 }, { 2, 0x66, 0x1F },   /* native loads */
        { 3, 0x0F, 0x00, 0xE8 }, { 3, 0x0F, 0x00, 0x28 }, { 4, 0x2E, 0x0F, 0x00, 0x28 },          /* verw */
        { 4, 0x65, 0x0F, 0x00, 0x28 }, { 3, 0x65, 0x8E, 0x00 },                                   /* through GS */
    };
    unsigned bad = 0, blocks = 0;
    for (unsigned i = 0; i < ARRAY_SIZE(named); i++) {
        uint8_t code[32];
        memset(code, 0xF4, sizeof(code));
        memcpy(code, named[i] + 1, named[i][0]);
        bad += !translate_checked(&kbt, code, sizeof(code));
        blocks++;
    }
    static const uint8_t modrms[] = { 0x00, 0x05, 0x44, 0x80, 0xC0, 0x0C, 0x14, 0x34 };
    static const uint8_t pfx2[] = { 0x00, 0x66, 0xF3, 0xF2, 0x67 };
    for (unsigned map = 0; map < 2; map++)
        for (unsigned op = 0; op < 256; op++)
            for (unsigned m = 0; m < ARRAY_SIZE(modrms); m++)
                for (unsigned p = 0; p < ARRAY_SIZE(pfx2); p++) {
                    uint8_t code[32], *q = code;
                    memset(code, 0x01, sizeof(code)); /* disp/imm bytes, then more guest code */
                    if (pfx2[p])
                        *q++ = pfx2[p];
                    *q++ = 0x65;
                    if (map)
                        *q++ = 0x0F;
                    *q++ = (uint8_t)op;
                    *q++ = modrms[m];
                    code[24] = 0xF4;
                    bad += !translate_checked(&kbt, code, sizeof(code));
                    blocks++;
                }
    /* Random byte strings with GS prefixes sprinkled in (seed printed). */
    unsigned seed = 20261202;
    srand(seed);
    for (unsigned i = 0; i < 20000; i++) {
        uint8_t code[48];
        for (unsigned k = 0; k < sizeof(code); k++)
            code[k] = (rand() % 6 == 0) ? 0x65 : (uint8_t)rand();
        bad += !translate_checked(&kbt, code, sizeof(code));
        blocks++;
    }
    print_message("state segment: %u blocks checked (random seed %u), %u bad\n", blocks, seed, bad);
    assert_int_equal(bad, 0);
    restore_host_bt();
}

/* A guest access through GS that would be copied (CMPXCHG, XADD, SETcc,
 * CMOVcc, DIV, BTR, INC: what per-CPU code does) runs with DS swapped for
 * the guest's GS alias: save DS, mark the swap, load seg_alias, the
 * instruction with a DS prefix, reload DS, unmark, and nothing else;
 * control flow through GS still exits. */
static void test_gs_alias_swap(void **state)
{
    static struct bt kbt;
    static uint8_t meta[1u << 16];
    init_state_bt(&kbt, meta, sizeof(meta));
    static const uint8_t forms[][8] = {
        { 4, 0x65, 0x0F, 0xB1, 0x08 }, { 4, 0x65, 0x0F, 0xC1, 0x08 }, { 4, 0x65, 0x0F, 0x9F, 0x00 },
        { 4, 0x65, 0x0F, 0x4F, 0x00 }, { 3, 0x65, 0xF7, 0x30 }, { 5, 0x65, 0x0F, 0xBA, 0x30, 0x05 },
        { 3, 0x65, 0xFF, 0x00 }, { 5, 0xF0, 0x65, 0x0F, 0xC1, 0x08 },
    };
    for (unsigned i = 0; i < ARRAY_SIZE(forms); i++) {
        uint8_t code[32];
        memset(code, 0xF4, sizeof(code));
        memcpy(code, forms[i] + 1, forms[i][0]);
        struct tc_block *blk;
        assert_int_equal(translate_bytes(&kbt, code, sizeof(code), &blk), 0);
        struct dec_insn in[6];
        uint32_t off = 0, at[6];
        for (int k = 0; k < 6; k++) {
            int n = dec_decode(blk->tca + off, blk->body_len - off, 0, DEC_MODE_32, &in[k]);
            assert_true(n > 0);
            at[k] = off;
            off += (uint32_t)n;
        }
        assert_int_equal(in[0].mnemonic, DEC_M_MOV);       /* mov [state:ds_save], ds */
        assert_int_equal(in[0].mem.disp, STATE_MARK + offsetof(struct bt_vcpu, ds_save));
        assert_int_equal(in[1].mem.disp, STATE_MARK + offsetof(struct bt_vcpu, in_swap));
        assert_int_equal(in[1].ops[1].imm, 1);             /* mov dword [state:in_swap], 1 */
        assert_int_equal(in[2].mnemonic, DEC_M_MOV);       /* mov ds, [state:seg_alias] */
        assert_int_equal(in[2].mem.disp, STATE_MARK + offsetof(struct bt_vcpu, seg_alias));
        assert_int_equal(in[3].mem.seg, DEC_REG_DS);       /* the guest's instruction */
        uint8_t want[8];                                   /* ... copied, GS prefix now DS */
        memcpy(want, forms[i] + 1, forms[i][0]);
        for (unsigned k = 0; k < forms[i][0]; k++)
            want[k] = want[k] == 0x65 ? 0x3E : want[k];
        assert_int_equal(in[3].len, forms[i][0]);
        assert_memory_equal(blk->tca + at[3], want, forms[i][0]);
        assert_int_equal(in[4].mnemonic, DEC_M_MOV);       /* mov ds, [state:ds_save] */
        assert_int_equal(in[4].mem.disp, STATE_MARK + offsetof(struct bt_vcpu, ds_save));
        assert_int_equal(in[5].mem.disp, STATE_MARK + offsetof(struct bt_vcpu, in_swap));
        assert_int_equal(in[5].ops[1].imm, 0);             /* mov dword [state:in_swap], 0 */
    }
    /* MOV GS, r and POP GS never load the real GS (the state segment): the
     * inline load stores the selector into sel[GS] and seg_alias. */
    static const uint8_t gs_loads[][4] = { { 2, 0x8E, 0xE8 }, { 2, 0x0F, 0xA9 }, { 2, 0x8E, 0x28 } };
    for (unsigned i = 0; i < ARRAY_SIZE(gs_loads); i++) {
        uint8_t code[32];
        memset(code, 0xF4, sizeof(code));
        memcpy(code, gs_loads[i] + 1, gs_loads[i][0]);
        struct tc_block *blk;
        assert_int_equal(translate_bytes(&kbt, code, sizeof(code), &blk), 0);
        bool to_sel = false, to_alias = false;
        for (uint32_t off = 0; off < blk->body_len;) {
            struct dec_insn d;
            int n = dec_decode(blk->tca + off, blk->body_len - off, 0, DEC_MODE_32, &d);
            assert_true(n > 0);
            assert_false(d.mnemonic == DEC_M_MOV && d.ops[0].kind == DEC_OP_REG && d.ops[0].reg == DEC_REG_GS);
            assert_false(d.mnemonic == DEC_M_POP && d.ops[0].kind == DEC_OP_REG && d.ops[0].reg == DEC_REG_GS);
            if (d.has_mem && d.mem.seg == DEC_REG_GS && d.ops[0].kind == DEC_OP_MEM) {
                to_sel |= (uint32_t)d.mem.disp == STATE_MARK + offsetof(struct bt_vcpu, sel) + 4u * BT_GS;
                to_alias |= (uint32_t)d.mem.disp == STATE_MARK + offsetof(struct bt_vcpu, seg_alias);
            }
            off += (uint32_t)n;
        }
        assert_true(to_sel && to_alias);
    }
    /* CALL/JMP through GS (FF /2 /4) still leave the block for the monitor. */
    uint8_t call[32];
    memset(call, 0xF4, sizeof(call));
    memcpy(call, (const uint8_t[]){ 0x65, 0xFF, 0x10 }, 3);
    struct tc_block *blk;
    assert_int_equal(translate_bytes(&kbt, call, sizeof(call), &blk), 0);
    struct dec_insn in;
    assert_true(dec_decode(blk->tca, blk->body_len, 0, DEC_MODE_32, &in) > 0);
    assert_int_not_equal(in.mem.disp, STATE_MARK + offsetof(struct bt_vcpu, seg_alias));
    restore_host_bt();
}

/* Ring-1 CS covering the TC alone (issue 11 (c)): with cs_base set, every
 * TC address ring-1 code jumps through is an offset from it -- exit_entry
 * (the exit routine bt_init puts in the TC: INT exit_vector; UD2), empty
 * IBL slots (the miss trampoline) and filled ones -- and lies inside the
 * arena, so a CS with that base and the arena's size reaches it all. */
static void test_cs_relative(void **state)
{
    static struct bt kbt;
    static uint8_t meta[1u << 16];
    static struct bt_vcpu v;
    uint32_t base = (uint32_t)(uintptr_t)H.tc_code, size = H.tc_code_size;
    struct bt_config cfg = { .state_seg_prefix = BT_SEG_GS, .rewrite_cs_override = true, .guest_seg_alias = true,
                             .state_base = STATE_MARK, .cs_base = base, .exit_vector = 0xF0 };
    assert_int_equal(bt_init(&kbt, &cfg, &v, H.tc_code, size, meta, sizeof(meta), bt_harness_text_fetch, NULL,
                             bt_host_enter), 0);
    assert_true(v.exit_entry < size - 4);
    assert_memory_equal(H.tc_code + v.exit_entry, ((const uint8_t[]){ 0xCD, 0xF0, 0x0F, 0x0B }), 4);
    for (uint32_t i = 0; i < BT_IBL_ENTRIES; i += 4099)
        assert_true(v.ibl[i][1] < size);
    uint8_t code[32];
    memset(code, 0xF4, sizeof(code));
    code[0] = 0xC3; /* ret: a block whose exit goes through the lookup stub */
    struct tc_block *blk;
    assert_int_equal(translate_bytes(&kbt, code, sizeof(code), &blk), 0);
    tc_ibl_insert(&kbt.tc, blk);
    int hits = 0;
    for (uint32_t i = 0; i < BT_IBL_ENTRIES; i++)
        if (v.ibl[i][0] == bt_ibl_key(0x1000)) {
            assert_int_equal(v.ibl[i][1], (uint32_t)(uintptr_t)blk->tca - base);
            hits++;
        }
    assert_int_equal(hits, 1);
    restore_host_bt();
}

/* The exit routine that leaves through SYSENTER (bt_config.exit_sysenter):
 * ESP into bt_vcpu.exit_esp through the state segment, SYSENTER, then the
 * INT the monitor falls back on where SYSENTER faults, and UD2; the
 * SYSENTER's offset in CS is what the monitor matches a #GP(0) against. */
static void test_exit_sysenter_routine(void **state)
{
    static struct bt kbt;
    static uint8_t meta[1u << 16];
    static struct bt_vcpu v;
    uint32_t base = (uint32_t)(uintptr_t)H.tc_code, size = H.tc_code_size;
    struct bt_config cfg = { .state_seg_prefix = BT_SEG_GS, .rewrite_cs_override = true, .guest_seg_alias = true,
                             .state_base = STATE_MARK, .cs_base = base, .exit_vector = 0xF0,
                             .exit_sysenter = true };
    assert_int_equal(bt_init(&kbt, &cfg, &v, H.tc_code, size, meta, sizeof(meta), bt_harness_text_fetch, NULL,
                             bt_host_enter), 0);
    uint32_t esp_slot = STATE_MARK + BT_OFF_EXIT_ESP;
    const uint8_t want[] = { 0x65, 0x89, 0x25, (uint8_t)esp_slot, (uint8_t)(esp_slot >> 8), (uint8_t)(esp_slot >> 16),
                             (uint8_t)(esp_slot >> 24), 0x0F, 0x34, 0xCD, 0xF0, 0x0F, 0x0B };
    assert_true(v.exit_entry + sizeof(want) <= size);
    assert_memory_equal(H.tc_code + v.exit_entry, want, sizeof(want));
    assert_int_equal(kbt.exit_sysenter_eip, v.exit_entry + 7);
    struct dec_insn in;
    assert_int_equal(dec_decode(H.tc_code + v.exit_entry, 16, 0, DEC_MODE_32, &in), 7);
    assert_int_equal(in.mem.seg, DEC_REG_GS);
    restore_host_bt();
}

/*
 * The review's last step: code that can write bt_vcpu (here: the guest, as
 * gva == host address and no state segment) plants an IBL entry that sends
 * an indirect jump to its own untranslated code, which stores a forged
 * exit descriptor in exit_desc and jumps to exit_entry. The forged
 * descriptor asks bt_run to chain a "stub" at victim[]: without the check
 * tc_chain writes a JMP there. bt_run must refuse it (BT_EXIT_BAD_DESC).
 */
static void test_forged_exit_desc(void **state)
{
    static uint8_t victim[16];
    static struct tc_block fake_from; /* not dead: tc_chain would go ahead */
    static struct bt_exit forged;
    memset(victim, 0xCC, sizeof(victim));
    /* Guest: mov $0x77770000, %eax; jmp *%eax; and a HLT block at +8 as the
     * forged branch target. */
    static const uint8_t code[] = { 0xB8, 0x00, 0x00, 0x77, 0x77, 0xFF, 0xE0, 0x90, 0xF4 };
    uint32_t hlt, entry = load_snippet(code, code + sizeof(code), &hlt);
    /* Untranslated "guest" code: movl $forged, exit_desc; jmp *exit_entry. */
    uint8_t *raw = (uint8_t *)data_area() + 128;
    raw[0] = 0xC7, raw[1] = 0x05;
    uint32_t a = (uint32_t)(uintptr_t)&bt_host_vcpu.exit_desc, f = (uint32_t)(uintptr_t)&forged;
    uint32_t x = (uint32_t)(uintptr_t)&bt_host_vcpu.exit_entry;
    memcpy(raw + 2, &a, 4), memcpy(raw + 6, &f, 4);
    raw[10] = 0xFF, raw[11] = 0x25;
    memcpy(raw + 12, &x, 4);
    forged = (struct bt_exit){ .reason = BT_EXIT_BRANCH, .eip = entry, .target = entry + 8,
                               .stub_tca = victim, .from = &fake_from };
    tc_flush(&H.bt.tc);
    bt_harness_reset_vcpu(&H);
    bt_host_vcpu.ibl[0][0] = bt_ibl_key(0x77770000u); /* the planted entry */
    bt_host_vcpu.ibl[0][1] = (uint32_t)(uintptr_t)raw;
    bt_host_vcpu.eip = entry;
    int r = bt_harness_run(&H, 0);
    tc_flush(&H.bt.tc);
    for (unsigned i = 0; i < sizeof(victim); i++)
        if (victim[i] != 0xCC)
            fail_msg("the forged descriptor made the dispatcher write victim[%u] = %02x", i, victim[i]);
    assert_int_equal(r, BT_EXIT_BAD_DESC);
    assert_int_equal(H.bt.exit->target, f);

    /* tc_exit_valid by itself: an exit of a committed block, nothing else. */
    bt_harness_reset_vcpu(&H);
    bt_host_vcpu.eip = entry + 7;
    assert_int_equal(bt_harness_run(&H, 0), BT_EXIT_HLT);
    const struct bt_exit *e = H.bt.exit;
    assert_true(tc_exit_valid(&H.bt.tc, e));
    assert_false(tc_exit_valid(&H.bt.tc, (const struct bt_exit *)((const uint8_t *)e + 4)));
    assert_false(tc_exit_valid(&H.bt.tc, (const struct bt_exit *)(const void *)H.bt.tc.blocks[0].imap));
    assert_false(tc_exit_valid(&H.bt.tc, (const struct bt_exit *)(const void *)&H.bt.tc.blocks[0]));
    assert_false(tc_exit_valid(&H.bt.tc, &forged));
    assert_false(tc_exit_valid(&H.bt.tc, NULL));
    tc_flush(&H.bt.tc);
    assert_false(tc_exit_valid(&H.bt.tc, e)); /* an earlier generation's */
}

int main(void)
{
    if (bt_harness_init(&H, 4u << 20, 4u << 20, GUEST_BYTES) < 0) {
        fprintf(stderr, "harness init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_straight_line), cmocka_unit_test(test_loops),
        cmocka_unit_test(test_calls),         cmocka_unit_test(test_indirect),
        cmocka_unit_test(test_strings),       cmocka_unit_test(test_flags),
        cmocka_unit_test(test_cli_sti_pushf), cmocka_unit_test(test_popf_virtual),
        cmocka_unit_test(test_pushf_clears_rf),
        cmocka_unit_test(test_pending_irq),   cmocka_unit_test(test_sti_before_branch),
        cmocka_unit_test(test_async_interrupt),
        cmocka_unit_test(test_popf_tf_exits),
        cmocka_unit_test(test_ibl_reset_race),
        cmocka_unit_test(test_eager_chain),
        cmocka_unit_test(test_successors),
        cmocka_unit_test(test_stop_at),
        cmocka_unit_test(test_stop_at_every_place),
        cmocka_unit_test(test_mov_cr),
        cmocka_unit_test(test_desc_tables),   cmocka_unit_test(test_io_cpuid_int),
        cmocka_unit_test(test_segments),      cmocka_unit_test(test_native_seg_loads),
        cmocka_unit_test(test_inline_verw),
        cmocka_unit_test(test_precise_faults),
        cmocka_unit_test(test_self_modifying), cmocka_unit_test(test_page_identity),
        cmocka_unit_test(test_inline_callee),
        cmocka_unit_test(test_chaining),
        cmocka_unit_test(test_eviction),      cmocka_unit_test(test_random_programs),
        cmocka_unit_test(test_exit_table),
        cmocka_unit_test(test_invlpg),
        cmocka_unit_test(test_invlpg_skip),
        cmocka_unit_test(test_invlpg_gdt_page),
        cmocka_unit_test(test_undefined_opcode),
        cmocka_unit_test(test_kernel_text),   cmocka_unit_test(test_segment_mode),
        cmocka_unit_test(test_state_segment_never_guest),
        cmocka_unit_test(test_gs_alias_swap),
        cmocka_unit_test(test_cs_relative),
        cmocka_unit_test(test_exit_sysenter_routine),
        cmocka_unit_test(test_iret_inline),
        cmocka_unit_test(test_iret_refused),
        cmocka_unit_test(test_iret_fault_precise),
        cmocka_unit_test(test_forged_exit_desc),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    bt_harness_free(&H);
    return failed;
}
