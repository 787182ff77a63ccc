/* start.c — from the boot loader's hand-off to guest_main. */
#include "guest.h"

#define MB1_BOOT_MAGIC 0x2BADB002   /* EAX after a Multiboot v1 loader */
#define MB2_BOOT_MAGIC 0x36D76289   /* EAX after a Multiboot2 loader */

void runtime_start(uint32_t magic, uint32_t info);
void user_install(void);

/* Contract: called once from _start with the loader's EAX and EBX, IF=0,
 * paging off, GDT unknown. Never returns. */
static uint32_t boot_magic, boot_info;

/* The command line the loader passed (Multiboot 0.6.96 §3.3 flags bit 2;
 * Multiboot2 §3.6.3 tag 1), or "" if none. */
const char *boot_cmdline(void)
{
    if (boot_magic == MB1_BOOT_MAGIC) {
        const uint32_t *mbi = (const uint32_t *)boot_info;
        return (mbi[0] & 4) && mbi[4] ? (const char *)mbi[4] : "";
    }
    if (boot_magic == MB2_BOOT_MAGIC) {
        const uint8_t *p = (const uint8_t *)boot_info, *end = p + *(const uint32_t *)p;
        for (p += 8; p + 8 <= end;) {
            uint32_t type = ((const uint32_t *)p)[0], size = ((const uint32_t *)p)[1];
            if (type == 0 || size < 8)
                break;
            if (type == 1)
                return (const char *)(p + 8);
            p += (size + 7) & ~7u;
        }
    }
    return "";
}

/* The number after "key=" on the command line, or def. */
uint32_t boot_arg(const char *key, uint32_t def)
{
    const char *s = boot_cmdline();
    for (; *s; s++) {
        const char *k = key, *p = s;
        while (*k && *p == *k)
            k++, p++;
        if (*k || *p != '=' || (s != boot_cmdline() && s[-1] != ' '))
            continue;
        uint32_t v = 0;
        for (p++; *p >= '0' && *p <= '9'; p++)
            v = v * 10 + (uint32_t)(*p - '0');
        return v;
    }
    return def;
}

void runtime_start(uint32_t magic, uint32_t info)
{
    boot_magic = magic;
    boot_info = info;
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
