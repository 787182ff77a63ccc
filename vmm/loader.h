/*
 * Guest kernel loader: Multiboot v1 and v2 kernels (ELF32 or the a.out
 * address kludge), with the Multiboot information structure and memory map
 * the guest expects, written into guest-physical memory.
 *
 * Pure code: the image is read and guest memory written through callbacks,
 * so the loader is unit-tested on the host against real and hostile images,
 * and in the hypervisor reads GRUB modules that are not contiguous in any
 * address space (kernel/boot.h boot_module_read).
 * Sources: Multiboot Specification 0.6.96 §3.1 (header), §3.2 (machine
 * state), §3.3 (boot information); Multiboot2 Specification 2.0 §3.1, §3.3,
 * §3.6; System V ABI / ELF32 (TIS ELF 1.2) for program headers.
 */
#ifndef HV86_VMM_LOADER_H
#define HV86_VMM_LOADER_H
#include <stddef.h>
#include <stdint.h>

#define MB1_HEADER_MAGIC 0x1BADB002u
#define MB1_BOOT_MAGIC   0x2BADB002u /* EAX at guest entry, Multiboot v1 */
#define MB2_BOOT_MAGIC   0x36D76289u /* EAX at guest entry, Multiboot2 */

/* Guest-physical layout the loader gives every guest (bytes). */
#define GUEST_LOWMEM_END 0x0009FC00u /* conventional memory ends (EBDA above) */
#define GUEST_HIGHMEM    0x00100000u /* extended memory starts at 1 MiB */
#define GUEST_MBI_GPA    0x00010000u /* where the boot information goes */
#define GUEST_MBI_MAX    0x00008000u /* bytes reserved for it */
#define GUEST_MIN_MEM    0x00200000u /* smallest guest RAM accepted: 2 MiB */

struct loader_ops {
    /* Copy len bytes to guest-physical gpa; returns 0 or E_RANGE if any byte
     * falls outside guest RAM. */
    int (*write)(void *ctx, uint32_t gpa, const void *buf, uint32_t len);
    /* Fill len bytes at gpa with zeros; same errors. */
    int (*zero)(void *ctx, uint32_t gpa, uint32_t len);
    void *ctx;
};

/*
 * An image to load (kernel or initrd), read through a callback: headers are
 * read into small buffers, bulk data (segments, the protected-mode kernel,
 * the initrd) a chunk at a time on its way into guest RAM.
 */
struct loader_image {
    size_t size; /* bytes */
    /* Copy image bytes [off, off+len) into buf; returns 0 or an E_* code,
     * which the load then fails with. The loader only asks for 0 < len and
     * off + len <= size. */
    int (*read)(void *ctx, uint32_t off, void *buf, uint32_t len);
    void *ctx;
};

/* What the guest's vCPU starts with (Multiboot §3.2 machine state, or the
 * Linux 32-bit boot protocol). */
struct loader_entry {
    uint32_t eip;       /* entry point, guest-physical (paging is off) */
    uint32_t eax;       /* MB1_BOOT_MAGIC or MB2_BOOT_MAGIC (Linux: 0) */
    uint32_t ebx;       /* gpa of the boot information (Linux: 0) */
    uint32_t esi;       /* Linux: gpa of struct boot_params */
    int version;        /* Multiboot 1 or 2; LOADER_LINUX for a bzImage */
    uint32_t load_lo, load_hi; /* gpa range the image occupies (end exclusive) */
    /* Linux: a GDT the loader wrote into guest memory, and the selectors to
     * load from it (boot.rst: __BOOT_CS 0x10, __BOOT_DS 0x18). 0: none. */
    uint32_t gdt_base, gdt_limit;
    uint16_t cs, ds;
};

#define LOADER_LINUX 100    /* loader_entry.version for a Linux bzImage */
/* loader_entry.version for firmware (vm->bios): the vCPU starts in real
 * mode at cs:eip = F000:FFF0 with CS.base = F0000h. A CPU's reset state
 * has CS.base = FFFF0000h (SDM Vol. 3A §9.1.4), which lies in the
 * monitor's linear range; the F-segment alias is the same bytes. */
#define LOADER_FIRMWARE 101
#define LOADER_RESET_CS 0xF000u
#define LOADER_RESET_IP 0xFFF0u
#define LINUX_BOOT_PARAMS_GPA 0x00010000u /* the zero page */
#define LINUX_CMDLINE_GPA     0x00011000u
#define LINUX_GDT_GPA         0x00012000u
#define LINUX_CMDLINE_MAX     2048u

/*
 * loader_load_multiboot - load the kernel image img into a guest with
 * mem_bytes of RAM and write its boot information (command line cmdline,
 * loader name "hv86", memory map) at GUEST_MBI_GPA.
 * Prefers a Multiboot2 header when the image has both.
 * Returns 0 and fills *entry; on error returns a negative E_* code and, if
 * err is not NULL, a one-line reason in err[0..errlen) ("no Multiboot header
 * in the first 8192 bytes", "segment 2 [0x100000, 0x5000000) outside guest
 * RAM (16 MiB)", "cannot read the image at byte 4096 (error -3)", ...).
 * Nothing is assumed about the image: every offset and size is checked.
 * Not reentrant (one static 32 KiB assembly buffer): call from one thread at
 * a time -- the console thread, in `vm create`/`vm start`.
 */
int loader_load_multiboot(const struct loader_image *img, uint32_t mem_bytes, const char *cmdline,
                          const struct loader_ops *ops, struct loader_entry *entry, char *err,
                          size_t errlen);

/*
 * loader_load_linux - load a bzImage img and optionally an initrd (NULL or
 * size 0 for none) into a guest with mem_bytes of RAM, per the Linux x86
 * boot protocol, 32-bit entry (Documentation/arch/x86/boot.rst, "32-bit Boot
 * Protocol"): the protected-mode kernel at 1 MiB, boot_params at
 * LINUX_BOOT_PARAMS_GPA with the setup header copied, an e820 map, the
 * command line, the initrd at the top of RAM below the kernel's
 * initrd_addr_max, and a GDT with __BOOT_CS/__BOOT_DS.
 * Returns 0 and *entry, or E_INVAL/E_RANGE/E_TOOBIG (or a read callback's
 * code) with a one-line reason in err ("not a bzImage: no HdrS signature",
 * "boot protocol 2.02 is older than 2.04", "initrd of 90 MiB does not fit
 * ..."). Not reentrant (one static 4 KiB zero page), like the above.
 */
int loader_load_linux(const struct loader_image *img, const struct loader_image *initrd, uint32_t mem_bytes,
                      const char *cmdline, const struct loader_ops *ops, struct loader_entry *entry, char *err,
                      size_t errlen);
/* True if img looks like a Linux bzImage (setup header signature "HdrS" at
 * 0x202); reads only the setup header. False if that read fails. */
int loader_is_linux(const struct loader_image *img);

#endif
