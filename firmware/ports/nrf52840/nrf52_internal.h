/* nrf52_internal.h -- the pieces of the nRF52840 port, one per file (NOT COMPILED IN CI). */
#ifndef DYSAN_NRF52_INTERNAL_H
#define DYSAN_NRF52_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "port_common.h"

/* ble_nus_nrf52.cpp: Nordic UART Service. Received bytes are pushed into `rx`. */
int nrf_ble_begin(const char *name, dysan_ring_t *rx);
void nrf_ble_poll(void);
int nrf_ble_ready(void); /* a central is connected and subscribed to TX notifications */
int nrf_ble_write(const uint8_t *data, size_t n);

/* flash_nrf52.cpp: the core's flash API behind port_common's HAL. */
extern const dysan_flash_hal_t nrf_flash_hal;
int nrf_flash_init(void);

/* imu_nrf52.cpp: detects the board's IMU and delivers its 50 Hz samples in contract counts: 1 when one was
 * ready (from the IMU's hardware FIFO; `now_us` only dates overruns), else 0; losses are counted
 * (nrf_imu_lost, also dysan_port_imu_lost). */
const char *nrf_imu_begin(void); /* the IMU's name, or NULL when none answered */
int nrf_imu_read(int16_t sample[6], uint32_t now_us);
uint32_t nrf_imu_lost(void);

#endif /* DYSAN_NRF52_INTERNAL_H */
