/*
 * Emulated MC146818A real-time clock and CMOS RAM at 0x70 (index, bit 7 =
 * NMI disable) / 0x71 (data), IRQ8. Source: Motorola MC146818A datasheet
 * (registers 0-0x0D, update cycle, interrupts); IBM PC/AT Technical
 * Reference for the CMOS layout (0x10-0x35, checksum at 0x2E/0x2F, century 0x32).
 *
 * Time: the host wall clock (UTC seconds) read once at init/reset, advanced
 * by the host's monotonic clock. Update cycles happen at whole seconds from
 * that origin; UIP is set for the 244 us before each (t_BUC), and the update
 * itself is instantaneous, so a read while UIP=1 still sees consistent time.
 * A guest that sets the clock (SET bit, or direct register writes) moves the
 * origin; while SET=1 (or the divider is held in reset) the time registers
 * are plain storage and nothing updates. Out of SET the update phase is
 * kept; out of divider reset the first update comes 500 ms later.
 *
 * Interrupts: UF (update ended), AF (alarm, with "don't care" 0xC0-0xFF
 * alarm bytes) and PF (periodic, rate from register A) set register C flags;
 * IRQF and IRQ8 follow the enabled ones, and reading C clears them. Flags are
 * computed lazily: on every access and in vrtc_update(); vrtc_next_event_ns()
 * says when an enabled flag will next rise. If several periods passed between
 * two looks, they count once (as the hardware does: C is a flag, not a counter);
 * an alarm is only compared against the time of the last update passed.
 */
#ifndef HV86_VMM_DEV_VRTC_H
#define HV86_VMM_DEV_VRTC_H
#include <stdbool.h>
#include <stdint.h>
#include "vmm/dev/iobus.h"
#include "vmm/dev/vdev.h"

#define VRTC_BASE    0x70  /* index; data at +1 */
#define VRTC_IRQ     8
#define VRTC_BYTES   128   /* registers and CMOS RAM, bytes */

/* Host wall clock: seconds since 1970-01-01 00:00:00 UTC. */
typedef uint64_t (*vrtc_wall_fn)(void *opaque);

/* Broken-down RTC time, as the registers hold it (decoded to binary). */
struct vrtc_tm {
    int sec, min, hour, mday, mon, year;  /* mon 1-12, year full (e.g. 2026) */
};

struct vrtc {
    uint8_t cmos[VRTC_BYTES];  /* A, B, alarms and RAM; time registers unused */
    uint8_t index;
    bool nmi_disabled;         /* bit 7 of the last index write */
    uint8_t reg_c;
    bool irq_level;
    int64_t origin_s;          /* RTC time (Unix s) at origin_ns */
    uint64_t origin_ns;        /* monotonic time of the last update phase */
    uint64_t updates_seen;     /* update cycles since origin already flagged */
    uint64_t pf_origin_ns;     /* periodic rate's phase origin */
    uint64_t pf_seen;          /* periods since pf_origin_ns already flagged */
    struct vrtc_tm held;       /* registers while halted (SET or divider reset) */
    vdev_clock_fn clock;
    vrtc_wall_fn wall;
    struct vdev_irq irq;       /* IRQ8 */
    void *opaque;              /* passed to clock and wall */
    uint32_t ram_kib;          /* guest RAM, KiB (for the CMOS size bytes) */
};

/* Reset state of a PC after its BIOS: register A 0x26 (32.768 kHz, 1024 Hz
 * rate), B 0x02 (24 h, BCD, no interrupts), D 0x80 (valid RAM), memory size
 * bytes from ram_bytes, checksum. clock and wall are required. */
void vrtc_init(struct vrtc *rtc, vdev_clock_fn clock, vrtc_wall_fn wall, void *opaque,
               struct vdev_irq irq, uint64_t ram_bytes);
void vrtc_reset(struct vrtc *rtc);

/* Claim 0x70-0x71. Returns 0 or an iobus error. */
int vrtc_attach(struct vrtc *rtc, struct iobus *bus);

/* Raise the register C flags due by now_ns and drive IRQ8. */
void vrtc_update(struct vrtc *rtc, uint64_t now_ns);

/* Host time (ns) at which an enabled interrupt flag will next rise, or
 * VDEV_NEVER (none enabled, or IRQF already set and unread). */
uint64_t vrtc_next_event_ns(const struct vrtc *rtc);

/* Current RTC time (for `vm info` and tests). */
struct vrtc_tm vrtc_time(const struct vrtc *rtc, uint64_t now_ns);

#endif
