/* pic.h — 8259A and 8254 ports and commands. Sources: Intel 8259A and 8254 data sheets. */
#ifndef GUEST_PIC_H
#define GUEST_PIC_H

#define PIC1_CMD  0x20
#define PIC1_DATA 0x21
#define PIC2_CMD  0xA0
#define PIC2_DATA 0xA1
#define ICW1_INIT 0x11          /* edge triggered, cascade, ICW4 follows */
#define ICW3_MASTER 0x04        /* slave on IR2 */
#define ICW3_SLAVE  0x02        /* slave's cascade identity */
#define ICW4_8086 0x01
#define OCW2_EOI  0x20          /* non-specific end of interrupt */
#define OCW3_READ_IRR 0x0A
#define OCW3_READ_ISR 0x0B
#define IRQ_CASCADE 2

#define PIT_CH0   0x40
#define PIT_CMD   0x43
#define PIT_CH0_LOHI_MODE2 0x34 /* channel 0, lobyte/hibyte, rate generator, binary */
#define PIT_CH0_LOHI_MODE0 0x30 /* channel 0, lobyte/hibyte, interrupt on terminal count */
#define PIT_LATCH_CH0 0x00      /* counter latch command, channel 0 */
#define PIT_READBACK_STATUS_CH0 0xE2 /* read-back: status only (no count latch), channel 0 */
#define PIT_STATUS_PROGRAM 0x3F /* read-back status: access mode, operating mode, BCD */

#endif
