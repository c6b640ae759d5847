/*
 * flash_nrf52.cpp -- the Arduino core's internal-flash API behind port_common's dysan_flash_hal_t
 * (NOT COMPILED IN CI: ../README.md). port_common does the bounds, the NOR rule, the word padding and the
 * read-back; this file only forwards whole words and pages.
 *
 *   mbed core: mbed::FlashIAP (NVMC; program unit 4 bytes, erase unit 4 KB). The CPU stalls during an
 *     erase (~85 ms per page): erasing the whole BUNDLE region takes seconds, long enough for a BLE link
 *     to time out -- erase over USB, or before connecting.
 *   Adafruit core: flash_nrf5x (through the SoftDevice while BLE runs). Its writes go through a 4 KB page
 *     cache, flushed once per region write (the HAL's flush) so the memory-mapped region then reads what
 *     was written; each flush rewrites the page, so the core should write in large chunks.
 */
#include <Arduino.h>

#include "board_nrf52840.h"
#include "nrf52_internal.h"

#if defined(DYSAN_NRF_CORE_MBED)

#include <FlashIAP.h>

static mbed::FlashIAP s_flash;

int nrf_flash_init(void)
{
    if (s_flash.init() != 0) {
        return -1;
    }
    /* The regions assume 4-byte programming and 4 KB sectors at their addresses. */
    if (s_flash.get_page_size() > 4u || s_flash.get_sector_size(DYSAN_NRF_BUNDLE_ADDR) != DYSAN_NRF_PAGE) {
        return -1;
    }
    return 0;
}

static int hal_program(void *ctx, uintptr_t addr, const uint8_t *data, size_t len)
{
    (void)ctx;
    return s_flash.program(data, (uint32_t)addr, (uint32_t)len) == 0 ? 0 : -1;
}

static int hal_erase(void *ctx, uintptr_t addr, size_t len)
{
    (void)ctx;
    return s_flash.erase((uint32_t)addr, (uint32_t)len) == 0 ? 0 : -1;
}
#define HAL_FLUSH NULL /* FlashIAP programs synchronously */

#elif defined(DYSAN_NRF_CORE_ADAFRUIT)

#include <InternalFileSystem.h> /* makes PlatformIO's LDF add the library that holds flash_nrf5x */
#include <flash/flash_nrf5x.h>

int nrf_flash_init(void)
{
    return 0;
}

static int hal_program(void *ctx, uintptr_t addr, const uint8_t *data, size_t len)
{
    (void)ctx;
    /* int or uint32_t depending on the core version: the byte count, or -1 */
    return (size_t)flash_nrf5x_write((uint32_t)addr, data, (uint32_t)len) == len ? 0 : -1;
}

static int hal_flush(void *ctx)
{
    (void)ctx;
    flash_nrf5x_flush();
    return 0;
}
#define HAL_FLUSH hal_flush

static int hal_erase(void *ctx, uintptr_t addr, size_t len)
{
    (void)ctx;
    flash_nrf5x_flush(); /* a cached page must not be written back over the erase */
    for (size_t off = 0; off < len; off += DYSAN_NRF_PAGE) {
        if (!flash_nrf5x_erase((uint32_t)(addr + off))) {
            return -1;
        }
    }
    return 0;
}

#endif

const dysan_flash_hal_t nrf_flash_hal = {hal_program, hal_erase, HAL_FLUSH, NULL, 4u, DYSAN_NRF_PAGE};
