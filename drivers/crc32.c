/*
 * Table-driven CRC-32 (IEEE 802.3, reflected). The 256-entry table is built on
 * first use; building it twice is harmless, so no lock is needed.
 */
#include "drivers/crc32.h"

#define CRC32_POLY_REFLECTED 0xEDB88320u /* x^32+x^26+...+1, bit-reversed */
#define CRC32_XOR            0xFFFFFFFFu /* initial value and final inversion */

static uint32_t crc32_table[256];
static int crc32_table_ready;

static void crc32_build_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int bit = 0; bit < 8; bit++)
            c = (c & 1) ? (c >> 1) ^ CRC32_POLY_REFLECTED : c >> 1;
        crc32_table[i] = c;
    }
    crc32_table_ready = 1;
}

uint32_t crc32_update(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    if (!crc32_table_ready)
        crc32_build_table();
    crc ^= CRC32_XOR;
    while (len--)
        crc = crc32_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return crc ^ CRC32_XOR;
}

uint32_t crc32(const void *buf, size_t len)
{
    return crc32_update(CRC32_INIT, buf, len);
}
