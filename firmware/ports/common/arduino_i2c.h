/*
 * arduino_i2c.h -- register access over an Arduino TwoWire bus, for the board ports (C++ only).
 *
 * NOT COMPILED IN CI (no Arduino core here): see firmware/ports/README.md. Arguments are passed as int to
 * requestFrom() on purpose: the nRF52 (mbed, Adafruit) and ESP32 cores overload it differently, and
 * (int, int) is the one call that resolves unambiguously on all three.
 */
#ifndef DYSAN_ARDUINO_I2C_H
#define DYSAN_ARDUINO_I2C_H

#include <Arduino.h>
#include <Wire.h>
#include <stddef.h>
#include <stdint.h>

#include "imu_fifo.h"

static inline int dysan_i2c_write(TwoWire &bus, uint8_t addr, uint8_t reg, const uint8_t *data, size_t n)
{
    bus.beginTransmission(addr);
    bus.write(reg);
    for (size_t i = 0; i < n; i++) {
        bus.write(data[i]);
    }
    return bus.endTransmission() == 0 ? 0 : -1;
}

static inline int dysan_i2c_write_reg(TwoWire &bus, uint8_t addr, uint8_t reg, uint8_t value)
{
    return dysan_i2c_write(bus, addr, reg, &value, 1);
}

/* Reads `n` consecutive registers from `reg` (the IMUs auto-increment); n <= 32 (Wire buffers). */
static inline int dysan_i2c_read(TwoWire &bus, uint8_t addr, uint8_t reg, uint8_t *out, size_t n)
{
    if (n == 0 || n > 32) {
        return -1;
    }
    bus.beginTransmission(addr);
    bus.write(reg);
    if (bus.endTransmission(false) != 0) {
        return -1;
    }
    if (bus.requestFrom((int)addr, (int)n) != (int)n) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int b = bus.read();
        if (b < 0) {
            return -1;
        }
        out[i] = (uint8_t)b;
    }
    return 0;
}

/* 1 when register `reg` of the device at `addr` reads `value` (WHO_AM_I / CHIP_ID probes). */
static inline int dysan_i2c_probe(TwoWire &bus, uint8_t addr, uint8_t reg, uint8_t value)
{
    uint8_t got = 0;
    return dysan_i2c_read(bus, addr, reg, &got, 1) == 0 && got == value;
}

/* The IMU FIFO drivers' register access (ports/common/imu_fifo.h) on a TwoWire bus: reads up to 32 bytes. */
static inline int dysan_i2c_bus_read(void *ctx, uint8_t addr, uint8_t reg, uint8_t *out, size_t n)
{
    return dysan_i2c_read(*static_cast<TwoWire *>(ctx), addr, reg, out, n);
}

static inline int dysan_i2c_bus_write(void *ctx, uint8_t addr, uint8_t reg, uint8_t value)
{
    return dysan_i2c_write_reg(*static_cast<TwoWire *>(ctx), addr, reg, value);
}

static inline dysan_imu_bus_t dysan_i2c_bus(TwoWire &bus)
{
    const dysan_imu_bus_t b = {dysan_i2c_bus_read, dysan_i2c_bus_write, &bus, 32u};
    return b;
}

#endif /* DYSAN_ARDUINO_I2C_H */
