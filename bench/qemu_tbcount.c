/*
 * qemu_tbcount - a QEMU TCG plugin that counts, for every translated block
 * (TB) QEMU runs, how often it ran, and so how many guest instructions
 * (bench/insn_count.py reads it). Built for the host (x86_64), loaded with
 * `qemu-system-i386 -plugin build/bench/qemu_tbcount.so,ctl=PATH`.
 *
 * Counting is an inline add per TB execution (QEMU's
 * qemu_plugin_register_vcpu_tb_exec_inline), so the guest runs at nearly
 * its usual speed. A dump is asked for by writing an output path into the
 * file PATH.req; a thread of the plugin writes "vaddr ninsns executions"
 * (hex, decimal, decimal) per TB translation that ran at least once since
 * QEMU started to that path, then deletes PATH.req. The difference of two
 * dumps is what ran between them. vaddr is the TB's linear address (CS
 * base + EIP on i386).
 *
 * With calls=LO-HI (hex, the monitor's code), the plugin also follows the
 * calls and returns of the code in [LO, HI) and counts, per function
 * entered by a CALL, its calls and its inclusive instructions (its own
 * and its callees', in that range only): a TB there that ends in CALL
 * pushes its return address and the callee (the next TB's address); a TB
 * at the return address on top pops it, and after a RET or an IRET a TB
 * at any return address deeper on the stack pops down to it (a longjmp,
 * the world switch's return). Recursion is counted once, from the
 * outermost call. The dump then also writes PATH.calls: "entry
 * instructions calls" (hex, decimal, decimal) per function that returned.
 *
 * The plugin API (QEMU docs, "QEMU TCG Plugins"; version 1, as QEMU 7.2
 * has it) is declared here, for the few calls used, rather than taken from
 * QEMU's header, which Debian does not ship.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_info_t;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr,
                                              uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn;
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

/* One per TB translation; QEMU may translate a vaddr again (flush,
 * invalidation, other flags): each keeps its own count. */
struct tb_count {
    uint64_t executions; /* added to by the TB's inline op */
    uint64_t vaddr;
    uint32_t ninsns;
    struct tb_count *next;
};

static struct tb_count *counts;
static pthread_mutex_t counts_lock = PTHREAD_MUTEX_INITIALIZER;
static char ctl[512];

/* ---- calls=LO-HI: inclusive counts per function */
enum tb_end { END_OTHER, END_CALL, END_RET, END_LEAVE };
struct tb_info {            /* one per TB translation in [calls_lo, calls_hi) */
    uint32_t vaddr, ninsns;
    uint32_t ret;           /* END_CALL: the return address */
    enum tb_end end;
};
#define FN_SLOTS (1u << 16) /* open addressing by entry address */
struct fn_count {
    uint32_t entry;         /* 0: free */
    uint32_t active;        /* frames of it on the stack */
    uint64_t insns, calls;
};
static struct fn_count fns[FN_SLOTS];
#define MAX_CPUS 8
#define MAX_DEPTH 256
struct frame {
    uint32_t ret;
    struct fn_count *fn;
    uint64_t start;         /* the CPU's count when it was called */
};
struct cpu_calls {
    struct frame stack[MAX_DEPTH];
    unsigned depth;
    uint64_t total;         /* instructions run in the range */
    enum tb_end prev_end;
    uint32_t prev_ret;
};
static struct cpu_calls cpus[MAX_CPUS];
static uint32_t calls_lo, calls_hi;

static struct fn_count *fn_of(uint32_t entry)
{
    for (uint32_t h = (entry * 2654435761u) >> 16, n = 0; n < FN_SLOTS; n++, h = (h + 1) & (FN_SLOTS - 1)) {
        if (fns[h].entry == entry)
            return &fns[h];
        if (!fns[h].entry) {
            fns[h].entry = entry;
            return &fns[h];
        }
    }
    return NULL; /* full: not counted */
}

static void pop(struct cpu_calls *c)
{
    struct frame *f = &c->stack[--c->depth];
    if (f->fn && --f->fn->active == 0)
        f->fn->insns += c->total - f->start;
}

static void on_exec(unsigned int vcpu, void *udata)
{
    const struct tb_info *t = udata;
    if (vcpu >= MAX_CPUS)
        return;
    struct cpu_calls *c = &cpus[vcpu];
    pthread_mutex_lock(&counts_lock); /* against dump() */
    if (c->prev_end == END_CALL) {
        if (c->depth == MAX_DEPTH)
            while (c->depth)
                pop(c);
        struct fn_count *fn = fn_of(t->vaddr);
        c->stack[c->depth++] = (struct frame){ c->prev_ret, fn, c->total };
        if (fn) {
            fn->active++;
            fn->calls++;
        }
    } else if (c->depth && t->vaddr == c->stack[c->depth - 1].ret) {
        pop(c);
    } else if (c->prev_end == END_RET || c->prev_end == END_LEAVE) {
        for (unsigned d = c->depth; d > 0; d--)
            if (c->stack[d - 1].ret == t->vaddr) {
                while (c->depth >= d)
                    pop(c);
                break;
            }
    }
    c->total += t->ninsns;
    c->prev_end = t->end;
    c->prev_ret = t->ret;
    pthread_mutex_unlock(&counts_lock);
}

/* How the last instruction of a TB ends it (i386, legacy prefixes skipped). */
static enum tb_end tb_end_of(const uint8_t *p, size_t n, uint32_t vaddr, uint32_t *ret)
{
    size_t i = 0;
    while (i < n && (p[i] == 0x66 || p[i] == 0x67 || p[i] == 0xF2 || p[i] == 0xF3 || p[i] == 0x2E ||
                     p[i] == 0x3E || p[i] == 0x26 || p[i] == 0x36 || p[i] == 0x64 || p[i] == 0x65))
        i++;
    if (i >= n)
        return END_OTHER;
    *ret = vaddr + (uint32_t)n;
    if (p[i] == 0xE8 || (p[i] == 0xFF && i + 1 < n && ((p[i + 1] >> 3) & 7) == 2))
        return END_CALL;
    if (p[i] == 0xC3 || p[i] == 0xC2)
        return END_RET;
    if (p[i] == 0xCF || (p[i] == 0x0F && i + 1 < n && (p[i + 1] == 0x35 || p[i + 1] == 0x07)))
        return END_LEAVE; /* IRET, SYSEXIT, SYSRET: into a guest */
    return END_OTHER;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    struct tb_count *c = calloc(1, sizeof(*c));
    if (!c)
        return; /* out of memory: this TB goes uncounted */
    c->vaddr = qemu_plugin_tb_vaddr(tb);
    c->ninsns = (uint32_t)qemu_plugin_tb_n_insns(tb);
    pthread_mutex_lock(&counts_lock);
    c->next = counts;
    counts = c;
    pthread_mutex_unlock(&counts_lock);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &c->executions, 1);
    if (c->vaddr < calls_lo || c->vaddr >= calls_hi || !c->ninsns)
        return;
    struct tb_info *t = calloc(1, sizeof(*t));
    if (!t)
        return;
    const struct qemu_plugin_insn *last = qemu_plugin_tb_get_insn(tb, c->ninsns - 1);
    t->vaddr = (uint32_t)c->vaddr;
    t->ninsns = c->ninsns;
    t->end = tb_end_of(qemu_plugin_insn_data(last), qemu_plugin_insn_size(last),
                       (uint32_t)qemu_plugin_insn_vaddr(last), &t->ret);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, QEMU_PLUGIN_CB_NO_REGS, t);
}

/* Write every count to path (the counters race with the vCPU: a dump is
 * exact to within the TBs that run while it is written). */
static void dump(const char *path)
{
    FILE *out = fopen(path, "w");
    if (!out)
        return;
    pthread_mutex_lock(&counts_lock);
    for (const struct tb_count *c = counts; c; c = c->next)
        if (c->executions)
            fprintf(out, "%" PRIx64 " %u %" PRIu64 "\n", c->vaddr, c->ninsns, c->executions);
    fclose(out);
    if (calls_hi) {
        char cpath[600];
        snprintf(cpath, sizeof(cpath), "%s.calls", path);
        FILE *cf = fopen(cpath, "w");
        for (uint32_t i = 0; cf && i < FN_SLOTS; i++)
            if (fns[i].entry && fns[i].calls)
                fprintf(cf, "%x %" PRIu64 " %" PRIu64 "\n", fns[i].entry, fns[i].insns, fns[i].calls);
        if (cf)
            fclose(cf);
    }
    pthread_mutex_unlock(&counts_lock);
}

static void *dump_thread(void *arg)
{
    char req[sizeof(ctl) + 8], path[512];
    snprintf(req, sizeof(req), "%s.req", ctl);
    for (;;) {
        usleep(20000);
        FILE *f = fopen(req, "r");
        if (!f)
            continue;
        char *got = fgets(path, sizeof(path), f);
        fclose(f);
        if (!got)
            continue;
        path[strcspn(path, "\n")] = 0;
        dump(path);
        unlink(req);
    }
    return NULL;
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info_t *info,
                                                               int argc, char **argv)
{
    if (argc < 1 || strncmp(argv[0], "ctl=", 4) != 0) {
        fprintf(stderr, "qemu_tbcount: needs ctl=PATH\n");
        return -1;
    }
    snprintf(ctl, sizeof(ctl), "%s", argv[0] + 4);
    if (argc > 1 && sscanf(argv[1], "calls=%x-%x", &calls_lo, &calls_hi) != 2) {
        fprintf(stderr, "qemu_tbcount: calls=LO-HI (hex)\n");
        return -1;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, dump_thread, NULL) != 0)
        return -1;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    return 0;
}
