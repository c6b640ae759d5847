/* oversize_probe.c -- a deliberately oversized section for the XIAO link check (make -C firmware xiao-probe,
 * tests/test_board_xiao.py). Linked into the real image with --undefined=dysan_oversize_probe, each variant
 * must make the link fail at the BUNDLE ASSERT of boards/xiao/dysan_regions.ld.in:
 *   PROBE_rodata  PROBE_BYTES (default 300 KB) of constants: .text passes the bundle start (0x27000 + 256 KB);
 *   PROBE_data    PROBE_BYTES of initialised data, sized by the test to just pass the bundle start while RAM
 *                 still fits: its load image (after __etext) reaches the BUNDLE region -- a case the core's
 *                 FLASH region (to 0xED000) and its RAM checks do not catch. */
#include <stdint.h>

#ifndef PROBE_BYTES
#define PROBE_BYTES (300u * 1024u)
#endif

#if defined(PROBE_rodata)
__attribute__((used)) const uint8_t dysan_oversize_probe[PROBE_BYTES] = {1};
#elif defined(PROBE_data)
__attribute__((used)) uint8_t dysan_oversize_probe[PROBE_BYTES] = {1};
#else
#error "define PROBE_rodata or PROBE_data"
#endif
