/*
 * What the boot loader told us: memory map, modules, command line.
 * Parsed once from the Multiboot2 information (boot/multiboot2.h) by
 * boot_info_parse() and copied into hypervisor memory, so that nothing later
 * depends on GRUB's buffers; the modules' bytes are moved by
 * boot_modules_move() (kernel/bootmod.c).
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

/*
 * A GRUB module. GRUB loads them low, inside the direct map; boot copies each
 * into ZONE_HIGH frames (boot_modules_move) and the direct-map frames go back
 * to the allocator. Read the bytes with boot_module_read, wherever they are.
 */
struct boot_module {
    uint32_t size;                /* bytes */
    uint32_t grub_pa;             /* host physical address GRUB loaded it at; the
                                     bytes are still there only while frames is NULL */
    uint32_t *frames;             /* host physical address of each 4 KiB piece
                                     (size / 4096 rounded up of them, kmalloc'd,
                                     kept for good), or NULL: not moved */
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

/*
 * boot_modules_move - copy every module that lies (even partly) in the
 * direct map into ZONE_HIGH frames (ZONE_DIRECT when high memory runs out,
 * as frame_alloc does) and set its frames. Call once at boot, with the heap
 * up and interrupts off, before anything reads a module. Does not free the
 * old frames: the caller gives them back (frame_unreserve) once no module it
 * still reserves shares them. A module that cannot be copied (no frames, no
 * heap) is logged as an error and stays where GRUB put it, still readable.
 * Returns the number of modules moved. Source: Multiboot2 spec §3.6.6.
 */
uint32_t boot_modules_move(void);

/*
 * boot_module_read - copy len bytes at byte offset off of module m into buf,
 * wherever the module lives (direct map or kmap windows). Returns 0, or
 * E_RANGE if [off, off+len) is not inside the module's size bytes (nothing is
 * copied then). Safe from any thread; a call with interrupts on may be
 * preempted between pages.
 */
int boot_module_read(const struct boot_module *m, uint32_t off, void *buf, uint32_t len);

#endif
