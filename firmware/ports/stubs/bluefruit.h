/* Stand-in for Adafruit Bluefruit (type-checking only; see README.md). */
#pragma once
#include <stddef.h>
#include <stdint.h>
#define BANDWIDTH_MAX 3
#define BLE_GAP_ADV_FLAGS_LE_ONLY_GENERAL_DISC_MODE 0x06
class BLEUart {
public:
    explicit BLEUart(uint16_t fifo_depth = 256);
    int begin(void);
    void setRxCallback(void (*fp)(uint16_t conn_hdl));
    int read(uint8_t *buf, size_t size);
    bool notifyEnabled(void);
    size_t write(const uint8_t *content, size_t len);
};
class BLEConnection { public: uint16_t getMtu(void); };
class BLEAdvertising {
public:
    bool addFlags(uint8_t flags);
    bool addTxPower(void);
    bool addService(BLEUart &service);
    void restartOnDisconnect(bool enable);
    void setInterval(uint16_t fast, uint16_t slow);
    void setFastTimeout(uint16_t sec);
    bool start(uint16_t timeout = 0);
};
class BLEScanResponse { public: bool addName(void); };
class AdafruitBluefruit {
public:
    void configPrphBandwidth(uint8_t bw);
    bool begin(uint8_t prph_count = 1, uint8_t central_count = 0);
    void setName(const char *name);
    bool connected(void);
    uint16_t connHandle(void);
    BLEConnection *Connection(uint16_t conn_hdl);
    BLEAdvertising Advertising;
    BLEScanResponse ScanResponse;
};
extern AdafruitBluefruit Bluefruit;
