/*
 * Hosted helper shared by the decoder test and benchmark: load an ELF32 file
 * and visit its executable PROGBITS sections (System V ABI, ELF header and
 * section header table, "Sections" chapter). Header-only, static functions.
 */
#ifndef HV86_TESTS_TEST_DECODE_ELF_H
#define HV86_TESTS_TEST_DECODE_ELF_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ELF_SHF_EXECINSTR 0x4
#define ELF_SHT_PROGBITS  1
#define ELF32_EHDR_SIZE   52

/* Read a whole file into a malloc'd buffer (caller frees); NULL if absent. */
static uint8_t *elf_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = buf ? (size_t)n : 0;
    return buf;
}

/* Call fn(code, size, ctx) for each executable section; returns bytes visited,
 * or 0 if the file is not a 32-bit ELF. */
static unsigned long elf_for_each_text(const uint8_t *f, size_t size,
                                       void (*fn)(const uint8_t *, uint32_t, void *), void *ctx)
{
    if (size < ELF32_EHDR_SIZE || memcmp(f, "\177ELF\001", 5) != 0)
        return 0;
    uint32_t shoff;
    memcpy(&shoff, f + 32, 4);
    uint32_t shentsize = (uint32_t)(f[46] | f[47] << 8);
    uint32_t shnum = (uint32_t)(f[48] | f[49] << 8);
    unsigned long bytes = 0;
    for (uint32_t i = 0; i < shnum; i++) {
        const uint8_t *sh = f + shoff + i * shentsize;
        uint32_t type, flags, off, sz;
        memcpy(&type, sh + 4, 4);
        memcpy(&flags, sh + 8, 4);
        memcpy(&off, sh + 16, 4);
        memcpy(&sz, sh + 20, 4);
        if (type != ELF_SHT_PROGBITS || !(flags & ELF_SHF_EXECINSTR) || (size_t)off + sz > size)
            continue;
        fn(f + off, sz, ctx);
        bytes += sz;
    }
    return bytes;
}

#endif /* HV86_TESTS_TEST_DECODE_ELF_H */
