/*
 * Multiboot2 constants and information structures.
 * Source: The Multiboot2 Specification, version 2.0, §3.1 (header) and §3.6 (boot information).
 */
#ifndef HV86_BOOT_MULTIBOOT2_H
#define HV86_BOOT_MULTIBOOT2_H
#include "kernel/layout.h" /* U32() */

#define MB2_HEADER_MAGIC      U32(0xE85250D6) /* in the OS image header */
#define MB2_BOOTLOADER_MAGIC  U32(0x36D76289) /* in EAX at entry */
#define MB2_ARCH_I386         U32(0)
#define MB2_HEADER_TAG_END    U32(0)
#define MB2_HEADER_TAG_MODALIGN U32(6)        /* ask for page-aligned modules */

/* Boot information tag types (§3.6) */
#define MB2_TAG_END         U32(0)
#define MB2_TAG_CMDLINE     U32(1)
#define MB2_TAG_LOADER_NAME U32(2)
#define MB2_TAG_MODULE      U32(3)
#define MB2_TAG_BASIC_MEM   U32(4)
#define MB2_TAG_BOOTDEV     U32(5)
#define MB2_TAG_MMAP        U32(6)

/* Memory map entry types (§3.6.8) */
#define MB2_MMAP_AVAILABLE  U32(1)
#define MB2_MMAP_RESERVED   U32(2)
#define MB2_MMAP_ACPI       U32(3)
#define MB2_MMAP_NVS        U32(4)
#define MB2_MMAP_BADRAM     U32(5)

#ifndef __ASSEMBLER__
#include <stdint.h>

struct mb2_info {
    uint32_t total_size; /* bytes, including this header */
    uint32_t reserved;
};
struct mb2_tag {
    uint32_t type;
    uint32_t size; /* bytes, including this header; tags are 8-byte aligned */
};
struct mb2_tag_string { /* CMDLINE, LOADER_NAME */
    uint32_t type, size;
    char string[];
};
struct mb2_tag_module {
    uint32_t type, size;
    uint32_t mod_start, mod_end; /* physical, end exclusive */
    char cmdline[];
};
struct mb2_tag_basic_mem {
    uint32_t type, size;
    uint32_t mem_lower, mem_upper; /* KiB */
};
struct mb2_mmap_entry {
    uint64_t base_addr, length; /* bytes */
    uint32_t type, reserved;
};
struct mb2_tag_mmap {
    uint32_t type, size;
    uint32_t entry_size, entry_version;
    struct mb2_mmap_entry entries[];
};
#endif

#endif
