/* Stand-in for the Adafruit core's flash_nrf5x API (type-checking only; see ../README.md). */
#pragma once
#include <stdint.h>
extern "C" {
void flash_nrf5x_flush(void);
bool flash_nrf5x_erase(uint32_t addr);
int flash_nrf5x_write(uint32_t dst, void const *src, uint32_t len);
}
