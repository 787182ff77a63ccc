/*
 * translate_bench VMLINUX - binary translator throughput and overhead.
 *
 *  1. Translation speed: linear sweep of the kernel's .text, one block after
 *     another (bt_translate), into a 16 MiB TC that is flushed when full.
 *     Reports guest bytes and instructions translated per second and the
 *     TC expansion (TC bytes per guest byte).
 *  2. Run-time ratio translated/native of a compute loop (arithmetic,
 *     memory, a call/ret per iteration, a jump table), best of 5 runs.
 *
 * Used by `make bench-translate` (bt/translate.mk).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bt/translate.h"
#include "kernel/kernel.h"
#include "tests/unit/bt_harness.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void bench_translation(struct bt_elf_text *t, uint8_t *code, void *meta, uint32_t arena)
{
    static struct bt bt;
    struct bt_config cfg = { .state_base = (uint32_t)(uintptr_t)&bt_host_vcpu };
    if (bt_init(&bt, &cfg, &bt_host_vcpu, code, arena, meta, arena, bt_harness_text_fetch, t, bt_host_enter)) {
        fprintf(stderr, "bt_init failed\n");
        exit(1);
    }
    double t0 = now();
    for (uint32_t eip = t->addr; eip < t->addr + t->size;) {
        struct tc_block *b;
        if (bt_translate(&bt, eip, &b) < 0)
            break;
        eip += b->guest_len ? b->guest_len : 1;
    }
    double dt = now() - t0;
    printf("translate: kernel .text %u bytes, %u instructions, %u blocks in %.3f s\n", t->size,
           bt.stats.insns, bt.stats.translations, dt);
    printf("translate: %.1f MB/s guest code, %.2f M instructions/s, %.0f ns/block\n",
           t->size / dt / 1e6, bt.stats.insns / dt / 1e6, dt * 1e9 / bt.stats.translations);
    printf("translate: TC expansion %.2f TC bytes per guest byte, %u flushes of a %u MiB TC\n",
           (double)bt.tc.stats.tc_bytes / bt.tc.stats.guest_bytes, bt.tc.stats.flushes,
           arena >> 20);
}

/* Pure compute: no indirect branch; esi = data, ecx = iterations. */
extern const uint8_t alu_start[], alu_end[];
__asm__(".pushsection .rodata\nalu_start:\n"
        " xor %eax, %eax\n xor %ebx, %ebx\n"
        "1: mov %ecx, %edx\n and $255, %edx\n add (%esi,%edx,4), %eax\n"
        " imul $31, %eax, %eax\n xor %ecx, %ebx\n rol $3, %ebx\n"
        " mov %eax, (%esi,%edx,4)\n lea 7(%eax,%ebx,2), %edi\n test $1, %ecx\n jz 2f\n"
        " add %edi, %ebx\n2: dec %ecx\n jnz 1b\n hlt\n"
        "alu_end:\n.popsection\n");

/* esi = data (1 KiB), ecx = iterations. */
extern const uint8_t loop_start[], loop_end[];
__asm__(".pushsection .rodata\nloop_start:\n"
        " xor %eax, %eax\n xor %ebx, %ebx\n"
        "1: mov %ecx, %edx\n and $255, %edx\n add (%esi,%edx,4), %eax\n"
        " imul $31, %eax, %eax\n xor %ecx, %ebx\n rol $3, %ebx\n"
        " mov %eax, (%esi,%edx,4)\n call 2f\n mov %ecx, %edx\n and $1, %edx\n"
        " jmp *1024(%esi,%edx,4)\n"
        "loop_l3: add $1, %ebx\n jmp 5f\nloop_l4: sub $1, %ebx\n"
        "5: dec %ecx\n jnz 1b\n hlt\n"
        "2: lea 7(%eax,%ebx,2), %edi\n ret\n"
        "loop_end:\n.popsection\n");
extern const uint8_t loop_l3[], loop_l4[];

static double run_once(struct bt_harness *h, uint32_t entry, uint32_t hlt, bool native,
                       uint32_t iters)
{
    bt_harness_reset_vcpu(h);
    bt_host_vcpu.gpr[1] = iters;
    bt_host_vcpu.gpr[6] = (uint32_t)(uintptr_t)h->guest + 64 * 1024;
    bt_host_vcpu.eip = entry;
    double t0 = now();
    int r = native ? bt_harness_run_native(h, entry, hlt) : bt_harness_run(h, 0);
    double dt = now() - t0;
    if (r != (native ? 0 : BT_EXIT_HLT)) {
        fprintf(stderr, "compute loop: run failed (%d)\n", r);
        exit(1);
    }
    return dt;
}

/* Best-of-5 native and translated times of one loop snippet. */
static void ratio_of(struct bt_harness *h, const char *name, const uint8_t *start,
                     const uint8_t *end, const uint8_t *const labels[2])
{
    uint32_t len = (uint32_t)(end - start);
    memset(h->guest, 0xCC, 64 * 1024);
    memcpy(h->guest, start, len);
    tc_flush(&h->bt.tc);
    uint32_t entry = (uint32_t)(uintptr_t)h->guest, hlt = entry + len - 1;
    while (h->guest[hlt - entry] != 0xF4)
        hlt--;
    for (int i = 0; labels && i < 2; i++) {
        uint32_t gva = entry + (uint32_t)(labels[i] - start);
        memcpy(h->guest + 64 * 1024 + 1024 + 4 * i, &gva, 4);
    }
    const uint32_t iters = 20u * 1000 * 1000;
    uint32_t d0 = h->bt.stats.dispatches, m0 = h->bt.stats.ibl_misses;
    double best_nat = 1e9, best_bt = 1e9;
    for (int i = 0; i < 5; i++) {
        best_nat = MIN(best_nat, run_once(h, entry, hlt, true, iters));
        best_bt = MIN(best_bt, run_once(h, entry, hlt, false, iters));
    }
    printf("run: %s, %u iterations: native %.3f s, translated %.3f s, ratio %.2f "
           "(%u dispatcher entries, %u IBL misses)\n", name, iters, best_nat, best_bt,
           best_bt / best_nat, h->bt.stats.dispatches - d0, h->bt.stats.ibl_misses - m0);
}

static void bench_ratio(void)
{
    static struct bt_harness h;
    if (bt_harness_init(&h, 4u << 20, 4u << 20, 128 * 1024) < 0) {
        fprintf(stderr, "harness init failed\n");
        exit(1);
    }
    ratio_of(&h, "ALU+memory loop (direct branches only)", alu_start, alu_end, NULL);
    const uint8_t *const labels[2] = { loop_l3, loop_l4 };
    ratio_of(&h, "loop with call/ret + jump table", loop_start, loop_end, labels);
}

int main(int argc, char **argv)
{
    struct bt_elf_text t;
    if (argc < 2 || bt_harness_load_text(argv[1], &t) < 0) {
        fprintf(stderr, "translate_bench: no kernel ELF at %s (scripts/fetch-debian.sh)\n",
                argc > 1 ? argv[1] : "(none given)");
        return 1;
    }
    static struct bt_harness arena_owner; /* for an RWX TC of 16 MiB */
    if (bt_harness_init(&arena_owner, 16u << 20, 16u << 20, 4096) < 0)
        return 1;
    bench_translation(&t, arena_owner.tc_code, arena_owner.tc_meta, 16u << 20);
    bench_ratio();
    return 0;
}
