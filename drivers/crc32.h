/*
 * CRC-32 as used by GPT headers and partition entry arrays: the IEEE 802.3
 * polynomial, reflected (0xEDB88320), initial value and final XOR 0xFFFFFFFF.
 * Source: UEFI 2.10 §5.3.2 (GPT header) and Appendix (CRC32 = ITU-T V.42/IEEE 802.3).
 * Pure: builds freestanding and hosted.
 */
#ifndef HV86_DRIVERS_CRC32_H
#define HV86_DRIVERS_CRC32_H
#include <stddef.h>
#include <stdint.h>

#define CRC32_INIT 0u /* value to start a running crc32_update() with */

/*
 * crc32_update - continue a CRC-32 over len more bytes of buf.
 * Start with CRC32_INIT; the running value after the last call is the final
 * CRC (the pre/post inversion is done inside, so calls can be chained on
 * arbitrary byte boundaries). crc32("123456789", 9) == 0xCBF43926.
 */
uint32_t crc32_update(uint32_t crc, const void *buf, size_t len);

/* crc32 - CRC-32 of len bytes at buf. */
uint32_t crc32(const void *buf, size_t len);

#endif
