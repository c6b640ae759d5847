/* Stand-in for the Arduino Wire API (type-checking only; see README.md). */
#pragma once
#include <stddef.h>
#include <stdint.h>
class TwoWire {
public:
    void begin(void);
    bool begin(int sda, int scl);
    void setClock(uint32_t hz);
    void beginTransmission(uint8_t addr);
    size_t write(uint8_t b);
    uint8_t endTransmission(bool stop = true);
    uint8_t requestFrom(int addr, int n);
    int read(void);
};
extern TwoWire Wire;
extern TwoWire Wire1;
