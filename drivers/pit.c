/* 8254 PIT driver. Source: Intel 8254 datasheet §"Control Word Format", mode 2. */
#include "drivers/pit.h"
#include "kernel/x86.h"

#define PIT_CH0  0x40
#define PIT_CTRL 0x43
#define PIT_SEL_CH0    0x00
#define PIT_RW_LOHI    0x30
#define PIT_MODE_RATE  0x04 /* mode 2 */

void pit_init(uint32_t hz)
{
    uint32_t div = (PIT_INPUT_HZ + hz / 2) / hz;
    if (div > 0xFFFF)
        div = 0; /* 0 means 65536 */
    outb(PIT_CTRL, PIT_SEL_CH0 | PIT_RW_LOHI | PIT_MODE_RATE);
    outb(PIT_CH0, div & 0xFF);
    outb(PIT_CH0, (div >> 8) & 0xFF);
}
