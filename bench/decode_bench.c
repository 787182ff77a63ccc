/*
 * bench-decode: instructions decoded per second on the executable sections of
 * Debian's i386 vmlinux, hv86's decoder vs Zydis 4, in the same process.
 *
 * Method: each decoder sweeps the whole corpus linearly, advancing by its own
 * length (1 byte on error); both see the same instruction stream (the
 * differential test shows 0 length mismatches on this corpus). Each sweep is
 * repeated REPS times and the best time is reported (least disturbed by the
 * other jobs on the machine). Zydis is measured twice: DecodeFull (instruction
 * + operands, the same amount of information hv86 produces) and
 * DecodeInstruction (no operand decoding, Zydis' cheapest full-length path).
 *
 * usage: decode_bench [vmlinux]    (default build/debian/vmlinux)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <Zydis/Zydis.h>

#include "bt/decode.h"
#include "tests/unit/test_decode_elf.h"

#define REPS 5

enum which { OURS, ZYDIS_FULL, ZYDIS_INSN, WHICH_COUNT };
static const char *const which_name[WHICH_COUNT] = {
    [OURS] = "hv86 dec_decode", [ZYDIS_FULL] = "Zydis DecodeFull",
    [ZYDIS_INSN] = "Zydis DecodeInstruction (no operands)",
};

struct run {
    enum which which;
    ZydisDecoder zd;
    unsigned long insns;
    uint32_t checksum; /* keeps the compiler from dropping decode work */
};

static void sweep(const uint8_t *code, uint32_t size, void *ctx)
{
    struct run *r = ctx;
    struct dec_insn d;
    ZydisDecodedInstruction zi;
    ZydisDecodedOperand zops[ZYDIS_MAX_OPERAND_COUNT];
    ZydisDecoderContext zctx;
    for (uint32_t pos = 0; pos < size; r->insns++) {
        int len = 0;
        if (r->which == OURS) {
            len = dec_decode(code + pos, size - pos, pos, DEC_MODE_32, &d);
            if (len == DEC_ERR_UD)
                len = d.len; /* refused (e.g. VMCALL) but its length is known */
            r->checksum += d.mnemonic + d.attr;
        } else if (r->which == ZYDIS_FULL) {
            if (ZYAN_SUCCESS(ZydisDecoderDecodeFull(&r->zd, code + pos, size - pos, &zi, zops)))
                len = zi.length;
            r->checksum += zi.mnemonic + zops[0].type;
        } else {
            if (ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&r->zd, &zctx, code + pos, size - pos, &zi)))
                len = zi.length;
            r->checksum += zi.mnemonic;
        }
        pos += len > 0 ? (uint32_t)len : 1;
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "build/debian/vmlinux";
    size_t size = 0;
    uint8_t *f = elf_read_file(path, &size);
    if (!f) {
        fprintf(stderr, "decode_bench: cannot read %s (run scripts/fetch-debian.sh build/debian)\n", path);
        return 1;
    }
    double rate[WHICH_COUNT];
    unsigned long insns = 0, bytes = 0;
    for (int w = 0; w < WHICH_COUNT; w++) {
        double best = 1e9;
        for (int rep = 0; rep < REPS; rep++) {
            struct run r = { .which = (enum which)w };
            ZydisDecoderInit(&r.zd, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32);
            double t0 = now();
            bytes = elf_for_each_text(f, size, sweep, &r);
            double t = now() - t0;
            if (t < best)
                best = t;
            insns = r.insns;
            if (r.checksum == 0xFFFFFFFFu)
                printf(" ");
        }
        rate[w] = insns / best;
        printf("bench-decode: %-40s %9.2f M insn/s  (%lu insns, %lu bytes, best of %d: %.3f s)\n",
               which_name[w], rate[w] / 1e6, insns, bytes, REPS, best);
    }
    printf("bench-decode: hv86 / Zydis DecodeFull = %.2fx, hv86 / Zydis DecodeInstruction = %.2fx\n",
           rate[OURS] / rate[ZYDIS_FULL], rate[OURS] / rate[ZYDIS_INSN]);
    free(f);
    return 0;
}
