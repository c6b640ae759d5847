/*
 * dysan_crc32.h -- CRC-32/ISO-HDLC (IEEE 802.3; zlib's crc32 on the host: reflected polynomial
 * 0xEDB88320, init and xorout 0xFFFFFFFF, check value 0xCBF43926), incremental. The one definition for
 * every C file in firmware/: protocol frames (core/proto/dysan_frame.c), the STATE log
 * (core/src/dysan_state.c) and the provisioning page (ports/common/port_common.c).
 *
 * Header-only (static inline) so that the port layer, which some programs link without the core library
 * (the port echo programs, the port template test), needs no core object. The table is per nibble
 * (64 bytes of flash per file that uses it, two lookups per byte).
 */
#ifndef DYSAN_CRC32_H
#define DYSAN_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* crc = dysan_crc32_update(0, data, n), then more updates to continue over further bytes. */
static inline uint32_t dysan_crc32_update(uint32_t crc, const uint8_t *data, size_t n)
{
    static const uint32_t nibble[16] = {
        0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu, 0x76dc4190u, 0x6b6b51f4u, 0x4db26158u, 0x5005713cu,
        0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu, 0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu,
    };
    crc = ~crc;
    for (size_t i = 0; i < n; ++i) {
        crc ^= data[i];
        crc = (crc >> 4) ^ nibble[crc & 0x0fu];
        crc = (crc >> 4) ^ nibble[crc & 0x0fu];
    }
    return ~crc;
}

#endif /* DYSAN_CRC32_H */
