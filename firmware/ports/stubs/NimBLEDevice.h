/* Stand-in for NimBLE-Arduino 1.4 (type-checking only; see README.md). */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <string>
#include "host/ble_hs.h"
namespace NIMBLE_PROPERTY {
enum { READ = 0x0002, WRITE_NR = 0x0004, WRITE = 0x0008, NOTIFY = 0x0010 };
}
class NimBLEAttValue {
public:
    const uint8_t *data(void) const;
    uint16_t size(void) const;
};
class NimBLECharacteristic;
class NimBLECharacteristicCallbacks {
public:
    virtual ~NimBLECharacteristicCallbacks();
    virtual void onWrite(NimBLECharacteristic *pCharacteristic);
};
class NimBLECharacteristic {
public:
    NimBLEAttValue getValue(void);
    void setCallbacks(NimBLECharacteristicCallbacks *pCallbacks);
    size_t getSubscribedCount(void);
    uint16_t getHandle(void);
};
class NimBLEService {
public:
    NimBLECharacteristic *createCharacteristic(const char *uuid, uint32_t properties, uint16_t max_len = 512);
    bool start(void);
};
class NimBLEServer;
class NimBLEServerCallbacks {
public:
    virtual ~NimBLEServerCallbacks();
    virtual void onConnect(NimBLEServer *pServer, ble_gap_conn_desc *desc);
    virtual void onDisconnect(NimBLEServer *pServer);
};
class NimBLEServer {
public:
    void setCallbacks(NimBLEServerCallbacks *pCallbacks, bool deleteCallbacks = true);
    NimBLEService *createService(const char *uuid);
};
class NimBLEAdvertising {
public:
    void addServiceUUID(const char *uuid);
    void setScanResponse(bool enable);
    bool start(uint32_t duration = 0);
};
class NimBLEDevice {
public:
    static void init(const std::string &deviceName);
    static bool setMTU(uint16_t mtu);
    static NimBLEServer *createServer(void);
    static NimBLEAdvertising *getAdvertising(void);
};
