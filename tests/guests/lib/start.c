/* start.c — from the boot loader's hand-off to guest_main. */
#include "guest.h"

#define MB1_BOOT_MAGIC 0x2BADB002   /* EAX after a Multiboot v1 loader */
#define MB2_BOOT_MAGIC 0x36D76289   /* EAX after a Multiboot2 loader */

void runtime_start(uint32_t magic, uint32_t info);
void user_install(void);

/* Contract: called once from _start with the loader's EAX and EBX, IF=0,
 * paging off, GDT unknown. Never returns. */
void runtime_start(uint32_t magic, uint32_t info)
{
    serial_init();
    desc_init();
    pic_init();
    user_install();
    printf("\n");   /* the line may share the terminal with firmware output */
    /* One line whichever protocol loaded us, so QEMU (v1) and GRUB (v2)
     * outputs stay identical. */
    check("boot", (magic == MB1_BOOT_MAGIC || magic == MB2_BOOT_MAGIC) && info != 0,
          "magic 0x%x info 0x%x", magic, info);
    guest_main();
    guest_exit();
}
