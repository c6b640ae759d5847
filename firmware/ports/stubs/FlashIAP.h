/* Stand-in for mbed::FlashIAP (type-checking only; see README.md). */
#pragma once
#include <stdint.h>
namespace mbed {
class FlashIAP {
public:
    int init(void);
    int program(const void *buffer, uint32_t addr, uint32_t size);
    int erase(uint32_t addr, uint32_t size);
    uint32_t get_page_size(void) const;
    uint32_t get_sector_size(uint32_t addr) const;
};
} // namespace mbed
