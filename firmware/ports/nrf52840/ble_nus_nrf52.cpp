/*
 * ble_nus_nrf52.cpp -- Nordic UART Service for the nRF52840 boards (NOT COMPILED IN CI: ../README.md).
 *
 *   mbed core (nano33ble): ArduinoBLE. Its public API does not expose the negotiated ATT MTU and it
 *     silently truncates a notification to MTU - 3, so TX chunks are 20 bytes (the default MTU's payload),
 *     which is correct for every MTU. RX: every write is queued by the BLEWritten handler (polling
 *     written() would see only the last of two writes between polls); handlers run from BLE.poll(), so the
 *     host should use write-with-response to get backpressure while the core computes.
 *   Adafruit core (XIAO): Bluefruit's BLEUart (the same service), with its own RX FIFO; TX chunks follow
 *     the connection's negotiated MTU (dysan_ble_chunk).
 */
#include <Arduino.h>

#include "board_nrf52840.h"
#include "nrf52_internal.h"
#include "port_common.h"

#define NUS_SERVICE "6E400001-B5A3-F393-E0A9-E50E24DCCA9E"
#define NUS_RX "6E400002-B5A3-F393-E0A9-E50E24DCCA9E" /* central -> device (write) */
#define NUS_TX "6E400003-B5A3-F393-E0A9-E50E24DCCA9E" /* device -> central (notify) */
#define NUS_VALUE_MAX 244u                            /* attribute size: DLE payload (251) - L2CAP/ATT */

#if defined(DYSAN_NRF_CORE_MBED)

#include <ArduinoBLE.h>

static BLEService s_service(NUS_SERVICE);
static BLECharacteristic s_rx(NUS_RX, BLEWrite | BLEWriteWithoutResponse, NUS_VALUE_MAX);
static BLECharacteristic s_tx(NUS_TX, BLENotify, NUS_VALUE_MAX);
static dysan_ring_t *s_ring;

static void on_written(BLEDevice central, BLECharacteristic characteristic)
{
    (void)central;
    (void)dysan_ring_push(s_ring, characteristic.value(), (size_t)characteristic.valueLength());
}

int nrf_ble_begin(const char *name, dysan_ring_t *rx)
{
    s_ring = rx;
    if (!BLE.begin()) {
        return -1;
    }
    BLE.setLocalName(name);
    BLE.setDeviceName(name);
    BLE.setAdvertisedService(s_service);
    s_service.addCharacteristic(s_rx);
    s_service.addCharacteristic(s_tx);
    BLE.addService(s_service);
    s_rx.setEventHandler(BLEWritten, on_written);
    BLE.advertise();
    return 0;
}

void nrf_ble_poll(void)
{
    BLE.poll();
}

int nrf_ble_ready(void)
{
    return BLE.connected() && s_tx.subscribed();
}

int nrf_ble_write(const uint8_t *data, size_t n)
{
    const size_t chunk = dysan_ble_chunk(23, NUS_VALUE_MAX); /* MTU not exposed: see the header */
    while (n > 0) {
        size_t k = n < chunk ? n : chunk;
        if (!nrf_ble_ready() || !s_tx.writeValue(data, (int)k)) {
            return -1;
        }
        data += k;
        n -= k;
        BLE.poll();
    }
    return 0;
}

#elif defined(DYSAN_NRF_CORE_ADAFRUIT)

#include <bluefruit.h>

static BLEUart s_uart(1024); /* its own RX FIFO; on_rx moves the bytes on into the link ring */
static dysan_ring_t *s_ring;

/* Bluefruit calls this from its BLE task when NUS data arrived: move it into the link ring. */
static void on_rx(uint16_t conn_handle)
{
    (void)conn_handle;
    uint8_t buf[64];
    int n;
    while ((n = s_uart.read(buf, sizeof buf)) > 0) {
        (void)dysan_ring_push(s_ring, buf, (size_t)n);
    }
}

int nrf_ble_begin(const char *name, dysan_ring_t *rx)
{
    s_ring = rx;
    Bluefruit.configPrphBandwidth(BANDWIDTH_MAX); /* larger MTU and data length */
    if (!Bluefruit.begin()) {
        return -1;
    }
    Bluefruit.setName(name);
    s_uart.begin();
    s_uart.setRxCallback(on_rx);
    Bluefruit.Advertising.addFlags(BLE_GAP_ADV_FLAGS_LE_ONLY_GENERAL_DISC_MODE);
    Bluefruit.Advertising.addTxPower();
    Bluefruit.Advertising.addService(s_uart);
    Bluefruit.ScanResponse.addName();
    Bluefruit.Advertising.restartOnDisconnect(true);
    Bluefruit.Advertising.setInterval(32, 244);
    Bluefruit.Advertising.setFastTimeout(30);
    Bluefruit.Advertising.start(0);
    return 0;
}

void nrf_ble_poll(void)
{
    /* Bluefruit runs in its own FreeRTOS tasks: nothing to pump. */
}

int nrf_ble_ready(void)
{
    return Bluefruit.connected() && s_uart.notifyEnabled();
}

int nrf_ble_write(const uint8_t *data, size_t n)
{
    BLEConnection *conn = Bluefruit.Connection(Bluefruit.connHandle());
    const size_t chunk = dysan_ble_chunk(conn != NULL ? conn->getMtu() : 23, NUS_VALUE_MAX);
    while (n > 0) {
        size_t k = n < chunk ? n : chunk;
        if (!nrf_ble_ready() || s_uart.write(data, k) != k) {
            return -1;
        }
        data += k;
        n -= k;
    }
    return 0;
}

#endif
