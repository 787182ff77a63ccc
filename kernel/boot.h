/*
 * What the boot loader told us: memory map, modules, command line.
 * Parsed once from the Multiboot2 information (boot/multiboot2.h) by
 * boot_info_parse() and copied into hypervisor memory, so that nothing later
 * depends on GRUB's buffers.
 */
#ifndef HV86_KERNEL_BOOT_H
#define HV86_KERNEL_BOOT_H
#include <stdbool.h>
#include <stdint.h>
#include "kernel/pmm.h"

#define BOOT_MAX_MMAP    64
#define BOOT_MAX_MODULES 64
#define BOOT_CMDLINE_MAX 256
#define BOOT_MODNAME_MAX 64

struct boot_module {
    uint32_t start, end;          /* host physical, end exclusive (bytes) */
    char name[BOOT_MODNAME_MAX];  /* the module2 command line's first word */
    char args[BOOT_CMDLINE_MAX];  /* the rest of the module2 command line */
};

struct boot_info {
    char cmdline[BOOT_CMDLINE_MAX];
    char loader[64];
    uint32_t nmmap;
    struct mem_range avail[BOOT_MAX_MMAP];   /* type-1 (available) entries */
    uint32_t nreserved_mmap;
    struct mem_range reserved_mmap[BOOT_MAX_MMAP]; /* every other type */
    uint32_t nmodules;
    struct boot_module modules[BOOT_MAX_MODULES];
    uint32_t mbi_phys, mbi_size;  /* where GRUB left the information (bytes) */
};

extern struct boot_info boot_info;

/*
 * boot_info_parse - copy the Multiboot2 information at host physical mbi_phys
 * (which must lie in the direct map) into boot_info. Returns 0, or E_INVAL if
 * magic is wrong or the structure is malformed (sizes out of range); unknown
 * tags are skipped. Source: Multiboot2 spec §3.6.
 */
int boot_info_parse(uint32_t magic, uint32_t mbi_phys);
/* True if the hypervisor command line contains the word opt (e.g. "panic=exit"). */
bool boot_option(const char *opt);
/* Find a module by name; NULL if absent. */
const struct boot_module *boot_module_find(const char *name);

#endif
