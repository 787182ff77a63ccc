/*
 * Emulated MC146818A RTC + PC CMOS. Source: Motorola MC146818A datasheet;
 * IBM PC/AT Technical Reference (CMOS map).
 *
 * Map:
 *   calendar   Unix seconds <-> broken-down time (proleptic Gregorian, UTC)
 *   encoding   register bytes <-> binary per register B (BCD/binary, 12/24 h)
 *   clock      current time, halting (SET, divider reset), flag catch-up
 *   registers  index/data ports
 * Invariant: while not halted the time is origin_s + whole seconds since
 * origin_ns; while halted it is `held`, which the guest may edit field by field.
 */
#include "kernel/kernel.h"
#include "vmm/dev/vrtc.h"

/* Register indices (MC146818A datasheet, Figure "Address map"). */
enum {
    RTC_SEC = 0x00, RTC_SEC_ALARM = 0x01, RTC_MIN = 0x02, RTC_MIN_ALARM = 0x03,
    RTC_HOUR = 0x04, RTC_HOUR_ALARM = 0x05, RTC_DOW = 0x06, RTC_MDAY = 0x07,
    RTC_MON = 0x08, RTC_YEAR = 0x09, RTC_REG_A = 0x0A, RTC_REG_B = 0x0B,
    RTC_REG_C = 0x0C, RTC_REG_D = 0x0D,
};
/* PC/AT CMOS bytes. */
enum {
    CMOS_SHUTDOWN = 0x0F, CMOS_FLOPPY = 0x10, CMOS_DISK = 0x12, CMOS_EQUIPMENT = 0x14,
    CMOS_BASE_LO = 0x15, CMOS_BASE_HI = 0x16, CMOS_EXT_LO = 0x17, CMOS_EXT_HI = 0x18,
    CMOS_CSUM_FIRST = 0x10, CMOS_CSUM_LAST = 0x2D, CMOS_CSUM_HI = 0x2E, CMOS_CSUM_LO = 0x2F,
    CMOS_EXT2_LO = 0x30, CMOS_EXT2_HI = 0x31, CMOS_CENTURY = 0x32,
    CMOS_HIGH_LO = 0x34, CMOS_HIGH_HI = 0x35,
};

#define INDEX_MASK  0x7F
#define INDEX_NMI   0x80
#define A_UIP       0x80
#define A_DV_SHIFT  4
#define A_DV_MASK   0x7
#define A_DV_RESET  0x6   /* DV2-DV1 = 11: divider chain held in reset */
#define A_RS_MASK   0x0F
#define A_WRITABLE  0x7F
#define B_SET       0x80
#define B_PIE       0x40
#define B_AIE       0x20
#define B_UIE       0x10
#define B_DM_BINARY 0x04
#define B_24H       0x02
#define C_IRQF      0x80
#define C_PF        0x40
#define C_AF        0x20
#define C_UF        0x10
#define D_VRT       0x80
#define HOUR_PM     0x80
#define ALARM_DONT_CARE 0xC0

#define RESET_REG_A 0x26  /* 32.768 kHz time base, 1024 Hz periodic rate */
#define RESET_REG_B B_24H
#define TIMEBASE_HZ 32768ull
#define UIP_NS      244000ull  /* t_BUC: UIP rises this long before an update */
#define DV_FIRST_UPDATE_NS 500000000ull  /* divider out of reset -> first update */
#define EQUIP_FPU   0x02       /* equipment byte: math coprocessor present */
#define BASE_MEM_KIB 640u
#define KIB_1M      1024u
#define KIB_16M     16384u
#define KIB_PER_64K 64u
#define CMOS_WORD_MAX 0xFFFFu

#define SECS_PER_DAY 86400
#define DAYS_1970_FROM_0000_03_01 719468  /* civil-day origin shift */
#define DAYS_PER_ERA 146097               /* 400 Gregorian years */
#define SECS_PER_HOUR 3600
#define SECS_PER_MIN  60

/* ---------------------------------------------------------------- calendar */

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const uint8_t days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && leap(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of y-m-d (months counted from March so the leap
 * day ends the year). */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t yy = y - (m <= 2);
    int64_t era = floor_div(yy, 400), yoe = yy - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * DAYS_PER_ERA + doe - DAYS_1970_FROM_0000_03_01;
}

static struct vrtc_tm tm_from_seconds(int64_t s)
{
    struct vrtc_tm t;
    int64_t days = floor_div(s, SECS_PER_DAY), rem = s - days * SECS_PER_DAY;
    int64_t z = days + DAYS_1970_FROM_0000_03_01;
    int64_t era = floor_div(z, DAYS_PER_ERA), doe = z - era * DAYS_PER_ERA;
    /* Year of era: remove the leap days before doe (one per 1460 days,
     * none per 36524, one per 146096), then whole 365-day years. */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;

    t.sec = (int)(rem % SECS_PER_MIN);
    t.min = (int)(rem / SECS_PER_MIN % 60);
    t.hour = (int)(rem / SECS_PER_HOUR);
    t.mday = (int)(doy - (153 * mp + 2) / 5 + 1);
    t.mon = (int)(mp < 10 ? mp + 3 : mp - 9);
    t.year = (int)(yoe + era * 400 + (t.mon <= 2));
    return t;
}

static int clamp(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Seconds of t after forcing every field into range (a guest may store
 * nonsense while SET=1; the real chip would count on from it). */
static int64_t tm_to_seconds(struct vrtc_tm t)
{
    t.year = clamp(t.year, 0, 9999);
    t.mon = clamp(t.mon, 1, 12);
    t.mday = clamp(t.mday, 1, days_in_month(t.year, t.mon));
    return days_from_civil(t.year, t.mon, t.mday) * SECS_PER_DAY +
           clamp(t.hour, 0, 23) * SECS_PER_HOUR + clamp(t.min, 0, 59) * SECS_PER_MIN + clamp(t.sec, 0, 59);
}

/* Register 6: 1 = Sunday. 1970-01-01 was a Thursday. */
static int day_of_week(const struct vrtc_tm *t)
{
    return (int)((days_from_civil(t->year, t->mon, t->mday) % 7 + 7 + 4) % 7) + 1;
}

/* ---------------------------------------------------------------- encoding */

static bool binary_mode(const struct vrtc *rtc)
{
    return rtc->cmos[RTC_REG_B] & B_DM_BINARY;
}

static uint8_t enc(const struct vrtc *rtc, int v)
{
    v = clamp(v, 0, 99);
    return (uint8_t)(binary_mode(rtc) ? v : (v / 10) << 4 | v % 10);
}

static int dec(const struct vrtc *rtc, uint8_t v)
{
    return binary_mode(rtc) ? v : (v >> 4) * 10 + (v & 0xF);
}

static uint8_t enc_hour(const struct vrtc *rtc, int h)
{
    if (rtc->cmos[RTC_REG_B] & B_24H)
        return enc(rtc, h);
    return (uint8_t)(enc(rtc, h % 12 ? h % 12 : 12) | (h >= 12 ? HOUR_PM : 0));
}

static int dec_hour(const struct vrtc *rtc, uint8_t v)
{
    if (rtc->cmos[RTC_REG_B] & B_24H)
        return dec(rtc, v);
    return dec(rtc, v & ~HOUR_PM) % 12 + (v & HOUR_PM ? 12 : 0);
}

/* ---------------------------------------------------------------- clock */

static bool divider_reset(const struct vrtc *rtc)
{
    return ((rtc->cmos[RTC_REG_A] >> A_DV_SHIFT & A_DV_MASK) & A_DV_RESET) == A_DV_RESET;
}

static bool halted(const struct vrtc *rtc)
{
    return (rtc->cmos[RTC_REG_B] & B_SET) || divider_reset(rtc);
}

static uint64_t since(uint64_t now, uint64_t origin)
{
    return now > origin ? now - origin : 0;
}

static struct vrtc_tm current_tm(const struct vrtc *rtc, uint64_t now)
{
    if (halted(rtc))
        return rtc->held;
    return tm_from_seconds(rtc->origin_s + (int64_t)(since(now, rtc->origin_ns) / NS_PER_SEC));
}

struct vrtc_tm vrtc_time(const struct vrtc *rtc, uint64_t now_ns)
{
    return current_tm(rtc, now_ns);
}

/* Periodic interrupt period in 32.768 kHz cycles (datasheet Table 5), 0 = off. */
static uint64_t pf_cycles(const struct vrtc *rtc)
{
    unsigned rs = rtc->cmos[RTC_REG_A] & A_RS_MASK;
    if (rs == 0)
        return 0;
    return rs <= 2 ? 1ull << (rs + 6) : 1ull << (rs - 1);
}

static uint64_t ns_to_cycles(uint64_t ns)
{
    return ns / NS_PER_SEC * TIMEBASE_HZ + ns % NS_PER_SEC * TIMEBASE_HZ / NS_PER_SEC;
}

static uint64_t cycles_to_ns_ceil(uint64_t c)
{
    return c / TIMEBASE_HZ * NS_PER_SEC + (c % TIMEBASE_HZ * NS_PER_SEC + TIMEBASE_HZ - 1) / TIMEBASE_HZ;
}

static bool alarm_matches(const struct vrtc *rtc, const struct vrtc_tm *t)
{
    const uint8_t want[3] = { rtc->cmos[RTC_SEC_ALARM], rtc->cmos[RTC_MIN_ALARM], rtc->cmos[RTC_HOUR_ALARM] };
    const uint8_t have[3] = { enc(rtc, t->sec), enc(rtc, t->min), enc_hour(rtc, t->hour) };
    for (int i = 0; i < 3; i++)
        if ((want[i] & ALARM_DONT_CARE) != ALARM_DONT_CARE && want[i] != have[i])
            return false;
    return true;
}

static void update_irq(struct vrtc *rtc)
{
    uint8_t enabled = rtc->cmos[RTC_REG_B] & (B_PIE | B_AIE | B_UIE);
    /* C_PF/AF/UF sit at the same bit positions as B_PIE/AIE/UIE. */
    if (rtc->reg_c & enabled)
        rtc->reg_c |= C_IRQF;
    bool level = rtc->reg_c & C_IRQF;
    if (level != rtc->irq_level) {
        rtc->irq_level = level;
        vdev_irq_set(&rtc->irq, VRTC_IRQ, level);
    }
}

/* Raise the flags of the updates and periods passed by now. */
static void catch_up(struct vrtc *rtc, uint64_t now)
{
    if (!halted(rtc)) {
        uint64_t n = since(now, rtc->origin_ns) / NS_PER_SEC;
        if (n > rtc->updates_seen) {
            struct vrtc_tm t = current_tm(rtc, now);
            rtc->updates_seen = n;
            rtc->reg_c |= C_UF | (alarm_matches(rtc, &t) ? C_AF : 0);
        }
    }
    uint64_t cycles = pf_cycles(rtc);
    if (cycles && !divider_reset(rtc)) {
        uint64_t p = ns_to_cycles(since(now, rtc->pf_origin_ns)) / cycles;
        if (p > rtc->pf_seen) {
            rtc->pf_seen = p;
            rtc->reg_c |= C_PF;
        }
    }
    update_irq(rtc);
}

void vrtc_update(struct vrtc *rtc, uint64_t now_ns)
{
    catch_up(rtc, now_ns);
}

uint64_t vrtc_next_event_ns(const struct vrtc *rtc)
{
    uint64_t next = VDEV_NEVER;
    uint8_t b = rtc->cmos[RTC_REG_B];
    if (rtc->irq_level)
        return VDEV_NEVER;  /* IRQF stays set until register C is read */
    if ((b & (B_UIE | B_AIE)) && !halted(rtc))
        next = rtc->origin_ns + (rtc->updates_seen + 1) * NS_PER_SEC;
    uint64_t cycles = pf_cycles(rtc);
    if ((b & B_PIE) && cycles && !divider_reset(rtc))
        next = MIN(next, rtc->pf_origin_ns + cycles_to_ns_ceil((rtc->pf_seen + 1) * cycles));
    return next;
}

/*
 * Restart counting from the held registers when SET / divider reset ends.
 * Leaving divider reset, the first update comes 500 ms later (datasheet,
 * "Divider control"; Linux times its RTC writes for it). Leaving SET alone,
 * the divider kept running, so the update phase is unchanged.
 */
static void resume(struct vrtc *rtc, uint64_t now, bool divider_restarted)
{
    if (divider_restarted)
        rtc->origin_ns = now > DV_FIRST_UPDATE_NS ? now - DV_FIRST_UPDATE_NS : 0;
    else
        rtc->origin_ns += since(now, rtc->origin_ns) / NS_PER_SEC * NS_PER_SEC;
    rtc->origin_s = tm_to_seconds(rtc->held);
    rtc->updates_seen = 0;
}

/* ---------------------------------------------------------------- registers */

static uint8_t read_reg(struct vrtc *rtc, uint8_t i, uint64_t now)
{
    struct vrtc_tm t = current_tm(rtc, now);
    uint8_t v;
    switch (i) {
    case RTC_SEC:      return enc(rtc, t.sec);
    case RTC_MIN:      return enc(rtc, t.min);
    case RTC_HOUR:     return enc_hour(rtc, t.hour);
    case RTC_DOW:      return enc(rtc, day_of_week(&t));
    case RTC_MDAY:     return enc(rtc, t.mday);
    case RTC_MON:      return enc(rtc, t.mon);
    case RTC_YEAR:     return enc(rtc, t.year % 100);
    case CMOS_CENTURY: return enc(rtc, t.year / 100);
    case RTC_REG_A: {
        bool uip = !halted(rtc) && since(now, rtc->origin_ns) % NS_PER_SEC >= NS_PER_SEC - UIP_NS;
        return (uint8_t)(rtc->cmos[RTC_REG_A] | (uip ? A_UIP : 0));
    }
    case RTC_REG_C:
        v = rtc->reg_c;
        rtc->reg_c = 0;
        update_irq(rtc);
        return v;
    case RTC_REG_D:    return D_VRT;
    default:           return rtc->cmos[i];
    }
}

/* A time field written: into the held registers, or by moving the origin. */
static void write_time(struct vrtc *rtc, uint8_t i, uint8_t v, uint64_t now)
{
    struct vrtc_tm t = current_tm(rtc, now);
    switch (i) {
    case RTC_SEC:      t.sec = dec(rtc, v); break;
    case RTC_MIN:      t.min = dec(rtc, v); break;
    case RTC_HOUR:     t.hour = dec_hour(rtc, v); break;
    case RTC_MDAY:     t.mday = dec(rtc, v); break;
    case RTC_MON:      t.mon = dec(rtc, v); break;
    case RTC_YEAR:     t.year = t.year / 100 * 100 + dec(rtc, v) % 100; break;
    case CMOS_CENTURY: t.year = dec(rtc, v) % 100 * 100 + t.year % 100; break;
    default:           return;  /* day of week is derived from the date */
    }
    if (halted(rtc)) {
        rtc->held = t;
        return;
    }
    int64_t elapsed = (int64_t)(since(now, rtc->origin_ns) / NS_PER_SEC);
    rtc->origin_s = tm_to_seconds(t) - elapsed;
}

/* Register A or B written: handle entering and leaving the halted state. */
static void write_control(struct vrtc *rtc, uint8_t i, uint8_t v, uint64_t now)
{
    bool was = halted(rtc), was_dv_reset = divider_reset(rtc);
    uint8_t old_a = rtc->cmos[RTC_REG_A];
    struct vrtc_tm t = current_tm(rtc, now);

    if (i == RTC_REG_A)
        rtc->cmos[i] = v & A_WRITABLE;
    else
        rtc->cmos[i] = v & B_SET ? v & ~B_UIE : v;  /* SET clears UIE */
    if (rtc->cmos[RTC_REG_A] != old_a) {
        rtc->pf_origin_ns = now;  /* new rate or divider restarted */
        rtc->pf_seen = 0;
    }
    if (!was && halted(rtc))
        rtc->held = t;
    else if (was && !halted(rtc))
        resume(rtc, now, was_dv_reset);
}

static void write_reg(struct vrtc *rtc, uint8_t i, uint8_t v, uint64_t now)
{
    switch (i) {
    case RTC_SEC: case RTC_MIN: case RTC_HOUR: case RTC_DOW:
    case RTC_MDAY: case RTC_MON: case RTC_YEAR: case CMOS_CENTURY:
        write_time(rtc, i, v, now);
        break;
    case RTC_REG_A:
    case RTC_REG_B:
        write_control(rtc, i, v, now);
        break;
    case RTC_REG_C:
    case RTC_REG_D:
        break;  /* read-only */
    default:
        rtc->cmos[i] = v;
        break;
    }
}

static uint32_t rtc_in(void *opaque, uint16_t port, unsigned size)
{
    struct vrtc *rtc = opaque;
    if (port == VRTC_BASE)
        return 0xFF;  /* the index register is write-only */
    uint64_t now = rtc->clock(rtc->opaque);
    catch_up(rtc, now);
    return read_reg(rtc, rtc->index, now);
}

static void rtc_out(void *opaque, uint16_t port, unsigned size, uint32_t val)
{
    struct vrtc *rtc = opaque;
    if (port == VRTC_BASE) {
        rtc->index = val & INDEX_MASK;
        rtc->nmi_disabled = val & INDEX_NMI;
        return;
    }
    uint64_t now = rtc->clock(rtc->opaque);
    catch_up(rtc, now);
    write_reg(rtc, rtc->index, (uint8_t)val, now);
    update_irq(rtc);
}

/* ---------------------------------------------------------------- setup */

static void put_word(uint8_t *cmos, int lo, uint32_t v)
{
    v = MIN(v, CMOS_WORD_MAX);
    cmos[lo] = (uint8_t)v;
    cmos[lo + 1] = (uint8_t)(v >> 8);
}

static void fill_cmos(struct vrtc *rtc)
{
    uint8_t *c = rtc->cmos;
    uint32_t kib = rtc->ram_kib;
    uint16_t sum = 0;

    memset(c, 0, VRTC_BYTES);
    c[RTC_REG_A] = RESET_REG_A;
    c[RTC_REG_B] = RESET_REG_B;
    c[CMOS_EQUIPMENT] = EQUIP_FPU;
    put_word(c, CMOS_BASE_LO, MIN(kib, BASE_MEM_KIB));
    put_word(c, CMOS_EXT_LO, kib > KIB_1M ? kib - KIB_1M : 0);
    put_word(c, CMOS_EXT2_LO, kib > KIB_1M ? kib - KIB_1M : 0);
    put_word(c, CMOS_HIGH_LO, kib > KIB_16M ? (kib - KIB_16M) / KIB_PER_64K : 0);
    for (int i = CMOS_CSUM_FIRST; i <= CMOS_CSUM_LAST; i++)
        sum = (uint16_t)(sum + c[i]);
    c[CMOS_CSUM_HI] = (uint8_t)(sum >> 8);
    c[CMOS_CSUM_LO] = (uint8_t)sum;
}

void vrtc_reset(struct vrtc *rtc)
{
    uint64_t now = rtc->clock(rtc->opaque);
    fill_cmos(rtc);
    rtc->index = 0;
    rtc->nmi_disabled = false;
    rtc->reg_c = 0;
    rtc->origin_s = (int64_t)rtc->wall(rtc->opaque);
    rtc->origin_ns = rtc->pf_origin_ns = now;
    rtc->updates_seen = rtc->pf_seen = 0;
    update_irq(rtc);
}

void vrtc_init(struct vrtc *rtc, vdev_clock_fn clock, vrtc_wall_fn wall, void *opaque,
               struct vdev_irq irq, uint64_t ram_bytes)
{
    memset(rtc, 0, sizeof(*rtc));
    rtc->clock = clock;
    rtc->wall = wall;
    rtc->irq = irq;
    rtc->opaque = opaque;
    rtc->ram_kib = (uint32_t)MIN(ram_bytes / 1024, (uint64_t)UINT32_MAX);
    vrtc_reset(rtc);
}

int vrtc_attach(struct vrtc *rtc, struct iobus *bus)
{
    return iobus_register(bus, VRTC_BASE, 2, IOBUS_SZ_1, rtc_in, rtc_out, rtc, "rtc");
}
