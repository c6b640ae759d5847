/* Stand-in for ArduinoBLE (type-checking only; see README.md). */
#pragma once
#include <stdint.h>
enum { BLERead = 0x02, BLEWriteWithoutResponse = 0x04, BLEWrite = 0x08, BLENotify = 0x10 };
enum BLECharacteristicEvent { BLESubscribed, BLEUnsubscribed, BLERead_, BLEWritten };
class BLEDevice {};
class BLECharacteristic {
public:
    BLECharacteristic(const char *uuid, uint8_t properties, int valueSize, bool fixedLength = false);
    const uint8_t *value() const;
    int valueLength() const;
    int writeValue(const uint8_t value[], int length);
    int subscribed(void);
    void setEventHandler(int event, void (*handler)(BLEDevice, BLECharacteristic));
};
class BLEService {
public:
    explicit BLEService(const char *uuid);
    void addCharacteristic(BLECharacteristic &c);
};
class BLELocalDevice {
public:
    int begin(void);
    bool setLocalName(const char *name);
    void setDeviceName(const char *name);
    bool setAdvertisedService(const BLEService &s);
    void addService(BLEService &s);
    int advertise(void);
    void poll(unsigned long timeout = 0);
    bool connected(void) const;
};
extern BLELocalDevice BLE;
