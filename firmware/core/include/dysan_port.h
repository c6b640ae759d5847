/*
 * dysan_port.h -- everything the portable core needs from a board.
 *
 * The core (firmware/core) never includes vendor or OS headers: each port (ports/host, ports/qemu-m4,
 * ports/nrf52840, ports/esp32) implements these functions and nothing else. Keep ports thin: any logic
 * that could be shared belongs in the core, where the host and the emulated builds test it.
 */
#ifndef DYSAN_PORT_H
#define DYSAN_PORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bring up clocks, the link (UART / BLE), timers and the IMU. Called once before anything else. */
void dysan_port_init(void);

/* Byte link to the host (UART, or BLE Nordic UART Service). Non-blocking: copies up to `max` received
 * bytes into `buf` and returns how many (0 when none are waiting). Bytes arriving while the core computes
 * must be buffered by the port (interrupt + ring buffer), not dropped. */
size_t dysan_port_link_read(uint8_t *buf, size_t max);

/* Sends all `n` bytes (blocking). Returns 0, or a negative value if the link is down. */
int dysan_port_link_write(const uint8_t *buf, size_t n);

/* Milliseconds since boot (wraps after ~49 days). */
uint32_t dysan_port_millis(void);

/* Monotonic counter for benchmarks: executed instructions under QEMU -icount shift=0, CPU cycles on
 * hardware (DWT), nanoseconds on the host build. Each port documents its unit. */
uint64_t dysan_port_cycles(void);

/* One IMU sample in contract counts (dysan_contract.h: channel order, counts per unit), if a new one is
 * ready at the contract rate. Returns 1 when `sample` was filled, 0 otherwise. Ports without an IMU
 * (host, QEMU) return 0: their samples come from the host in replay mode. */
int dysan_port_imu_read(int16_t sample[6]);

/* Samples the IMU path lost since boot (cumulative): its hardware FIFO overflowed, or the port's own
 * sampling fell behind. The core reads it between dysan_port_imu_read calls, counts the loss
 * (STATS.samples_missed) and flags the windows that span it. Optional: a port that cannot lose samples
 * leaves it out and the core's weak default says 0 (dysan_port_defaults.c). */
uint32_t dysan_port_imu_lost(void);

/* Link bytes the port dropped because its receive buffer was full (cumulative; STATS.rx_overflows).
 * Optional as above: ports that apply backpressure instead (QEMU's UART, the host build's TCP) lose none. */
uint32_t dysan_port_link_overflows(void);

/* Persistent regions (flash on boards, RAM-backed on QEMU, a file or RAM on the host build). */
typedef enum {
    DYSAN_REGION_BUNDLE = 0, /* the model bundle image */
    DYSAN_REGION_RF = 1,     /* the calibration random forest */
    DYSAN_REGION_STATE = 2,  /* small persistent state: auth counter, sensitive value, config */
    DYSAN_REGION_COUNT
} dysan_region_t;

/* Memory-mapped read access to a region; `*size` receives its capacity. NULL if the region is absent. */
const uint8_t *dysan_port_region(dysan_region_t region, size_t *size);

/* Erases a whole region (to 0xFF). Returns 0 or a negative error. */
int dysan_port_region_erase(dysan_region_t region);

/* The erase unit every port's regions are aligned to (nRF52840 flash pages, ESP32 sectors: 4 KB). */
#define DYSAN_PORT_PAGE 4096u

/* Erases [offset, offset + n) of a region to 0xFF; offset and n are multiples of DYSAN_PORT_PAGE. The
 * STATE region needs it: it alternates between two pages (dysan_state.h) and must keep one while it erases
 * the other. Returns 0 or a negative error (misaligned, out of bounds...). */
int dysan_port_region_erase_range(dysan_region_t region, size_t offset, size_t n);

/* Writes `n` bytes at `offset` of an erased region. Returns 0, or a negative error (out of bounds...). */
int dysan_port_region_write(dysan_region_t region, size_t offset, const uint8_t *data, size_t n);

/* The identity provisioned at flash time: an 8-byte device id and the 32-byte HMAC key. The key never
 * leaves the device. Returns 0, or a negative value when the device was never provisioned. */
int dysan_port_identity(uint8_t device_id[8], uint8_t key[32]);

/* Nothing to do: sleep until the next interrupt (or yield on the host build). */
void dysan_port_idle(void);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_PORT_H */
