/*
 * CMOS RTC reader. A read is taken twice with the update-in-progress flag
 * clear and accepted when both agree, so that a read across the once-a-second
 * update never mixes old and new fields.
 * Source: Motorola MC146818A datasheet (registers 0x00-0x0B, UIP, DM, 24/12).
 */
#include "drivers/rtc.h"
#include "kernel/kernel.h"
#include "kernel/x86.h"

#define CMOS_INDEX 0x70
#define CMOS_DATA  0x71
#define CMOS_NMI_OFF 0x80  /* keep NMIs masked while the index is set */
#define RTC_SEC   0x00
#define RTC_MIN   0x02
#define RTC_HOUR  0x04
#define RTC_DAY   0x07
#define RTC_MONTH 0x08
#define RTC_YEAR  0x09
#define RTC_CENTURY 0x32   /* PC/AT convention (ACPI FADT may say otherwise) */
#define RTC_REG_A 0x0A
#define RTC_REG_B 0x0B
#define REGA_UIP  0x80
#define REGB_24H  0x02
#define REGB_BINARY 0x04
#define HOUR_PM   0x80
#define UIP_SPINS 100000

static uint8_t cmos_read(uint8_t reg)
{
    outb(CMOS_INDEX, CMOS_NMI_OFF | reg);
    return inb(CMOS_DATA);
}

static uint8_t bcd(uint8_t v) { return (uint8_t)((v >> 4) * 10 + (v & 0xF)); }

static int wait_not_updating(void)
{
    for (int i = 0; i < UIP_SPINS; i++)
        if (!(cmos_read(RTC_REG_A) & REGA_UIP))
            return 0;
    return E_TIMEOUT;
}

static void read_raw(uint8_t r[7])
{
    static const uint8_t regs[7] = { RTC_SEC, RTC_MIN, RTC_HOUR, RTC_DAY, RTC_MONTH, RTC_YEAR, RTC_CENTURY };
    for (int i = 0; i < 7; i++)
        r[i] = cmos_read(regs[i]);
}

int rtc_read(struct rtc_time *t)
{
    uint8_t a[7], b[7];
    int tries = 0;
    do {
        if (wait_not_updating() || ++tries > 10)
            return E_TIMEOUT;
        read_raw(a);
        if (wait_not_updating())
            return E_TIMEOUT;
        read_raw(b);
    } while (memcmp(a, b, sizeof(a)));

    uint8_t regb = cmos_read(RTC_REG_B);
    bool pm = a[2] & HOUR_PM;
    a[2] &= (uint8_t)~HOUR_PM;
    if (!(regb & REGB_BINARY))
        for (int i = 0; i < 7; i++)
            a[i] = bcd(a[i]);
    if (!(regb & REGB_24H))
        a[2] = (uint8_t)((a[2] % 12) + (pm ? 12 : 0));
    uint16_t century = (a[6] >= 19 && a[6] <= 30) ? a[6] : 20;
    *t = (struct rtc_time){ (uint16_t)(century * 100 + a[5]), a[4], a[3], a[2], a[1], a[0] };
    return 0;
}
