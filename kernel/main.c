/*
 * kmain: the hypervisor's boot sequence, in dependency order. Entered from
 * boot/entry.S on the boot stack with paging on and interrupts off.
 * docs/boot.md tells the same story in prose.
 */
#include "drivers/ata.h"
#include "drivers/e1000.h"
#include "drivers/pic.h"
#include "drivers/pit.h"
#include "drivers/serial.h"
#include "kernel/boot.h"
#include "kernel/clock.h"
#include "kernel/heap.h"
#include "kernel/irq.h"
#include "kernel/kernel.h"
#include "kernel/layout.h"
#include "kernel/paging.h"
#include "kernel/pmm.h"
#include "kernel/sched.h"
#include "kernel/traps.h"
#include "kernel/version.h"
#include "kernel/x86.h"
#include "mgmt/console.h"
#include "vmm/pshare.h"
#include "vmm/vm.h"

extern char _kernel_phys_start[], _kernel_phys_end[]; /* linker.ld */

/* PCI enumeration; weak until drivers/pci.c provides it. */
void pci_init(void) __attribute__((weak));

#define LOW_MEMORY_END 0x100000u /* real-mode IVT, BDA, EBDA, VGA, BIOS: never ours */
#define MAX_RESERVED (BOOT_MAX_MMAP + BOOT_MAX_MODULES + 3)

static struct mem_range reserved[MAX_RESERVED];

/*
 * Fill reserved[] with what the frame allocator must never hand out: the
 * first MiB, the hypervisor image, the Multiboot2 information, every module
 * still where GRUB put it, every non-available map entry. Returns the count.
 */
static size_t reserved_ranges(void)
{
    size_t n = 0;
    reserved[n++] = (struct mem_range){ 0, LOW_MEMORY_END };
    reserved[n++] = (struct mem_range){ (uint32_t)_kernel_phys_start,
                                        (uint32_t)_kernel_phys_end - (uint32_t)_kernel_phys_start };
    reserved[n++] = (struct mem_range){ boot_info.mbi_phys, boot_info.mbi_size };
    for (uint32_t i = 0; i < boot_info.nmodules; i++)
        if (!boot_info.modules[i].frames)
            reserved[n++] = (struct mem_range){ boot_info.modules[i].grub_pa, boot_info.modules[i].size };
    /* Some firmware lists overlapping available and reserved entries: reserved wins. */
    for (uint32_t i = 0; i < boot_info.nreserved_mmap; i++)
        reserved[n++] = boot_info.reserved_mmap[i];
    return n;
}

static void memory_init(void)
{
    pmm_boot_init(boot_info.avail, boot_info.nmmap, reserved, reserved_ranges());
    kheap_init();

    struct pmm_stats st;
    frame_stats(&st);
    log_info("memory: %u KiB free direct-mapped, %u KiB free high, kernel image %u KiB",
             st.free[ZONE_DIRECT] * 4, st.free[ZONE_HIGH] * 4,
             ((uint32_t)_kernel_phys_end - (uint32_t)_kernel_phys_start) / 1024);
}

/*
 * Move the modules out of the direct map (kernel/bootmod.c), then give back
 * the frames GRUB had put them in. The allocator's rule is run again against
 * everything still reserved, so a frame a moved module shares with the
 * Multiboot information or a module that stayed is kept out.
 */
static void modules_init(void)
{
    uint32_t moved = boot_modules_move(), given = 0;
    if (!moved)
        return;
    size_t n = reserved_ranges();
    for (uint32_t i = 0; i < boot_info.nmodules; i++) {
        const struct boot_module *m = &boot_info.modules[i];
        struct mem_range r = { m->grub_pa, m->size };
        if (m->frames)
            given += frame_unreserve(&r, boot_info.avail, boot_info.nmmap, reserved, n);
    }
    struct pmm_stats st;
    frame_stats(&st);
    log_info("memory: %u of %u modules copied out of GRUB's frames, %u KiB given back; %u KiB free direct-mapped",
             moved, boot_info.nmodules, given * 4, st.free[ZONE_DIRECT] * 4);
}

static void timer_irq(int irq, void *ctx) { sched_tick(); }

static void interrupts_init(void)
{
    pic_init(IRQ_BASE_VECTOR);
    pit_init(TIMER_HZ);
    int err = irq_register(IRQ_TIMER, timer_irq, NULL);
    if (err)
        panic("cannot register the timer IRQ: %s", err_name(err));
    sched_init();
    serial_irq_init();
    cpu_sti();
}

static void log_modules(void)
{
    for (uint32_t i = 0; i < boot_info.nmodules; i++) {
        const struct boot_module *m = &boot_info.modules[i];
        if (m->frames)
            log_info("module %u: '%s', %u bytes, moved from %08x to frames from %08x%s%s", i, m->name,
                     m->size, m->grub_pa, m->frames[0], m->args[0] ? ", args: " : "", m->args);
        else
            log_info("module %u: '%s', %u bytes at %08x%s%s", i, m->name, m->size, m->grub_pa,
                     m->args[0] ? ", args: " : "", m->args);
    }
}

/* Second half of the boot, in a thread: drivers may sleep on timeouts. */
static void init_thread(void *arg)
{
    if (pci_init)
        pci_init();
    ata_init();
    e1000_init(); /* host NICs: switch uplinks (docs/net.md) */
    clock_init();
    int err = vm_commands_init();
    if (err)
        panic("cannot register the vm commands: %s", err_name(err));
    if ((err = pshare_start())) /* page sharing (docs/memory-layout.md); the host runs without */
        log_err("page sharing: cannot start: %s", err_name(err));
    err = console_start(); /* the console thread's id, or an E_* code */
    if (err < 0)
        panic("cannot start the management console: %s", err_name(err));
}

void kmain(uint32_t magic, uint32_t mbi_phys)
{
    serial_early_init();
    kprintf("\nhv86 %s starting\n", HV86_VERSION);
    gdt_init();
    idt_init();
    paging_init();
    int err = boot_info_parse(magic, mbi_phys);
    if (err)
        panic("bad Multiboot2 information (magic %08x, at %08x): %s", magic, mbi_phys, err_name(err));
    memory_init();
    modules_init();
    interrupts_init();
    log_info("boot: loader '%s', command line '%s'", boot_info.loader, boot_info.cmdline);
    log_modules();
    if (thread_create("init", init_thread, NULL) < 0)
        panic("cannot create the init thread");
    sched_idle_loop();
}
