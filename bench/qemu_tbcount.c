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
    pthread_mutex_unlock(&counts_lock);
    fclose(out);
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
    pthread_t t;
    if (pthread_create(&t, NULL, dump_thread, NULL) != 0)
        return -1;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    return 0;
}
