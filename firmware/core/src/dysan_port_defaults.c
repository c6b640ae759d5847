/* dysan_port_defaults.c -- weak defaults of the optional port functions (dysan_port.h): a port that can
 * lose IMU samples or link bytes defines its own and reports them; the others lose none. */
#include "dysan_port.h"

__attribute__((weak)) uint32_t dysan_port_imu_lost(void) { return 0u; }

__attribute__((weak)) uint32_t dysan_port_link_overflows(void) { return 0u; }
