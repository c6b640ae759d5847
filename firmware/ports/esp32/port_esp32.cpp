/*
 * port_esp32.cpp -- dysan_port.h on an ESP32-DevKitC with an MPU-6050 on I2C (SDA GPIO21, SCL GPIO22).
 *
 * NOT COMPILED IN CI: PlatformIO fetches the ESP32 Arduino core and NimBLE-Arduino from the internet, which
 * CI has not; see firmware/ports/README.md. Logic shared with the other ports lives in ports/common
 * (host-tested); this file binds it to Arduino-ESP32 2.x (ESP-IDF 4.4) and NimBLE-Arduino 1.4.
 *
 * Link: UART0 through the board's USB bridge (4 KB RX buffer filled by the UART driver's interrupt) and
 *   BLE Nordic UART Service (NimBLE; writes are queued in a ring by the NimBLE host task). Replies go to the
 *   transport that delivered the last byte. TX notifications follow the negotiated ATT MTU and are retried
 *   while the controller is out of buffers, so none is dropped.
 * Time: dysan_port_cycles() = CPU cycles (240 MHz) from CCOUNT, extended to 64 bits in software (CCOUNT
 *   wraps every 17.9 s: link_read and idle refresh the extension; the core calls one of them every loop).
 * Regions: the data partitions of partitions.csv, memory-mapped for reading, written with esp_partition_*
 *   through port_common's writer. Erasing the BUNDLE partition takes seconds (SPI flash sector erases).
 * Identity: the dysan_prov partition; if blank, a copy linked into the image (dysan_provision_image).
 * IMU: MPU-6050 at 100 Hz output with a 21 Hz low-pass, into its 1 KB FIFO (850 ms), drained between
 *   pipeline slices and decimated to 50 Hz by ports/common/imu_fifo.c (overflows counted as lost samples).
 */
#include <Arduino.h>
#include <NimBLEDevice.h>
#include <Wire.h>
#include <esp_idf_version.h>
#include <esp_partition.h>
#include <string.h>

#if __has_include("nimble/nimble/host/include/host/ble_hs.h")
#include "nimble/nimble/host/include/host/ble_hs.h" /* NimBLE-Arduino's bundled NimBLE */
#else
#include "host/ble_hs.h"
#endif

#include "arduino_i2c.h"
#include "dysan_contract.h"
#include "dysan_port.h"
#include "dysan_provision.h"
#include "imu_defs.h"
#include "port_common.h"

#ifndef DYSAN_BLE_NAME
#define DYSAN_BLE_NAME "DySan"
#endif
#ifndef DYSAN_SERIAL_BAUD
#define DYSAN_SERIAL_BAUD 115200
#endif
#ifndef DYSAN_LINK_RING
#define DYSAN_LINK_RING 4096u
#endif
#ifndef DYSAN_ESP32_STACK
#define DYSAN_ESP32_STACK (32 * 1024) /* the application runs in Arduino's loop task */
#endif
#define IMU_SDA 21
#define IMU_SCL 22

#define NUS_SERVICE "6E400001-B5A3-F393-E0A9-E50E24DCCA9E"
#define NUS_RX "6E400002-B5A3-F393-E0A9-E50E24DCCA9E"
#define NUS_TX "6E400003-B5A3-F393-E0A9-E50E24DCCA9E"
#define NUS_VALUE_MAX 244u

extern "C" const uint8_t dysan_provision_image[] __attribute__((weak));

#ifdef SET_LOOP_TASK_STACK_SIZE
SET_LOOP_TASK_STACK_SIZE(DYSAN_ESP32_STACK);
#endif

static uint8_t s_ring_mem[DYSAN_LINK_RING];
static dysan_ring_t s_ring;
static volatile int s_from_ble; /* the last byte came over BLE */

/* ---- time ------------------------------------------------------------------------------------------------ */

static uint32_t s_cyc_last;
static uint64_t s_cyc_high;
static portMUX_TYPE s_cyc_mux = portMUX_INITIALIZER_UNLOCKED;

uint64_t dysan_port_cycles(void)
{
    portENTER_CRITICAL(&s_cyc_mux);
    uint32_t now = ESP.getCycleCount();
    if (now < s_cyc_last) {
        s_cyc_high += (uint64_t)1 << 32;
    }
    s_cyc_last = now;
    uint64_t t = s_cyc_high | now;
    portEXIT_CRITICAL(&s_cyc_mux);
    return t;
}

uint32_t dysan_port_millis(void)
{
    return (uint32_t)millis();
}

/* ---- BLE Nordic UART Service (NimBLE) ------------------------------------------------------------------- */

static NimBLECharacteristic *s_tx;
static volatile uint16_t s_conn = BLE_HS_CONN_HANDLE_NONE;

class ServerCallbacks : public NimBLEServerCallbacks
{
    void onConnect(NimBLEServer *server, ble_gap_conn_desc *desc) override
    {
        (void)server;
        s_conn = desc->conn_handle;
    }
    void onDisconnect(NimBLEServer *server) override
    {
        (void)server;
        s_conn = BLE_HS_CONN_HANDLE_NONE; /* NimBLE restarts advertising by itself */
    }
};

class RxCallbacks : public NimBLECharacteristicCallbacks
{
    /* Runs in the NimBLE host task: only queue the bytes. */
    void onWrite(NimBLECharacteristic *characteristic) override
    {
        auto value = characteristic->getValue();
        (void)dysan_ring_push(&s_ring, (const uint8_t *)value.data(), (size_t)value.size());
    }
};

static ServerCallbacks s_server_cb;
static RxCallbacks s_rx_cb;

static void ble_begin(void)
{
    NimBLEDevice::init(DYSAN_BLE_NAME);
    NimBLEDevice::setMTU(247);
    NimBLEServer *server = NimBLEDevice::createServer();
    server->setCallbacks(&s_server_cb, false); /* static object: NimBLE must not delete it */
    NimBLEService *service = server->createService(NUS_SERVICE);
    NimBLECharacteristic *rx =
        service->createCharacteristic(NUS_RX, NIMBLE_PROPERTY::WRITE | NIMBLE_PROPERTY::WRITE_NR, NUS_VALUE_MAX);
    rx->setCallbacks(&s_rx_cb);
    s_tx = service->createCharacteristic(NUS_TX, NIMBLE_PROPERTY::NOTIFY, NUS_VALUE_MAX);
    service->start();
    NimBLEAdvertising *adv = NimBLEDevice::getAdvertising();
    adv->addServiceUUID(NUS_SERVICE);
    adv->setScanResponse(true);
    adv->start();
}

static int ble_ready(void)
{
    return s_conn != BLE_HS_CONN_HANDLE_NONE && s_tx != NULL && s_tx->getSubscribedCount() > 0;
}

static int ble_write(const uint8_t *data, size_t n)
{
    while (n > 0) {
        uint16_t conn = s_conn;
        if (!ble_ready()) {
            return -1;
        }
        size_t k = dysan_ble_chunk(ble_att_mtu(conn), NUS_VALUE_MAX);
        k = n < k ? n : k;
        int rc;
        do {
            struct os_mbuf *om = ble_hs_mbuf_from_flat(data, (uint16_t)k);
            rc = om == NULL ? BLE_HS_ENOMEM : ble_gattc_notify_custom(conn, s_tx->getHandle(), om);
            if (rc == BLE_HS_ENOMEM) {
                delay(1); /* controller buffers full: wait for a connection event to drain them */
            }
        } while (rc == BLE_HS_ENOMEM && ble_ready());
        if (rc != 0) {
            return -1;
        }
        data += k;
        n -= k;
    }
    return 0;
}

/* ---- link --------------------------------------------------------------------------------------------------- */

size_t dysan_port_link_read(uint8_t *buf, size_t max)
{
    if (buf == NULL || max == 0) {
        return 0;
    }
    (void)dysan_port_cycles(); /* keeps the 64-bit cycle extension current */
    size_t n = dysan_ring_pop(&s_ring, buf, max);
    if (n > 0) {
        s_from_ble = 1;
        return n;
    }
    int avail = Serial.available();
    if (avail > 0) {
        size_t want = (size_t)avail < max ? (size_t)avail : max;
        n = Serial.readBytes(buf, want);
        if (n > 0) {
            s_from_ble = 0;
        }
    }
    return n;
}

int dysan_port_link_write(const uint8_t *buf, size_t n)
{
    if (buf == NULL && n > 0) {
        return DYSAN_PORT_EINVAL;
    }
    if (s_from_ble && ble_ready()) {
        return ble_write(buf, n) == 0 ? DYSAN_PORT_OK : DYSAN_PORT_ELINK;
    }
    return Serial.write(buf, n) == n ? DYSAN_PORT_OK : DYSAN_PORT_ELINK;
}

void dysan_port_idle(void)
{
    (void)dysan_port_cycles();
    delay(1); /* lets the idle task run (and feed the task watchdog) */
}

/* ---- IMU: MPU-6050 ------------------------------------------------------------------------------------------- */

static int s_imu_ok;
static dysan_imu_fifo_t s_fifo; /* ports/common/imu_fifo.h: the MPU-6050's FIFO onto the 50 Hz grid */

static int mpu6050_begin(void)
{
    Wire.begin(IMU_SDA, IMU_SCL);
    Wire.setClock(400000);
    const uint8_t a = MPU6050_ADDR;
    if (!dysan_i2c_probe(Wire, a, MPU6050_WHO_AM_I, MPU6050_WHO_AM_I_VALUE)) {
        return -1;
    }
    if (dysan_i2c_write_reg(Wire, a, MPU6050_PWR_MGMT_1, 0x80u) != 0) { /* device reset */
        return -1;
    }
    delay(100);
    if ((dysan_i2c_write_reg(Wire, a, MPU6050_PWR_MGMT_1, MPU6050_PWR_MGMT_1_VALUE) |
         dysan_i2c_write_reg(Wire, a, MPU6050_CONFIG, MPU6050_CONFIG_VALUE) |
         dysan_i2c_write_reg(Wire, a, MPU6050_SMPLRT_DIV, MPU6050_SMPLRT_DIV_VALUE) |
         dysan_i2c_write_reg(Wire, a, MPU6050_GYRO_CONFIG, MPU6050_GYRO_CONFIG_VALUE) |
         dysan_i2c_write_reg(Wire, a, MPU6050_ACCEL_CONFIG, MPU6050_ACCEL_CONFIG_VALUE)) != 0) {
        return -1;
    }
    const dysan_imu_bus_t bus = dysan_i2c_bus(Wire);
    return dysan_imu_fifo_start(&s_fifo, &dysan_imu_mpu6050, &bus, (uint32_t)micros());
}

/* Link bytes the RX ring had no room for (USB / UART and BLE share it): STATS.rx_overflows. */
extern "C" uint32_t dysan_port_link_overflows(void) { return s_ring.dropped; }

int dysan_port_imu_read(int16_t sample[6])
{
    if (!s_imu_ok || sample == NULL) {
        return 0;
    }
    return dysan_imu_fifo_read(&s_fifo, (uint32_t)micros(), sample);
}

/* Samples the FIFO lost (overflows, failed transfers): counted by the core (STATS.samples_missed). */
extern "C" uint32_t dysan_port_imu_lost(void) { return dysan_imu_fifo_lost(&s_fifo); }

/* ---- regions: data partitions ---------------------------------------------------------------------------------- */

typedef struct {
    const char *label;
    const esp_partition_t *part;
    dysan_flash_region_t region;
} esp_region_t;

static esp_region_t s_regions[DYSAN_REGION_COUNT] = {
    {"dysan_bundle", NULL, {0, 0, NULL}},
    {"dysan_rf", NULL, {0, 0, NULL}},
    {"dysan_state", NULL, {0, 0, NULL}},
};
static const esp_partition_t *s_prov;

static const esp_partition_t *part_of(uintptr_t addr)
{
    for (int i = 0; i < DYSAN_REGION_COUNT; i++) {
        const esp_partition_t *p = s_regions[i].part;
        if (p != NULL && addr >= p->address && addr < p->address + p->size) {
            return p;
        }
    }
    return NULL;
}

static int hal_program(void *ctx, uintptr_t addr, const uint8_t *data, size_t len)
{
    (void)ctx;
    const esp_partition_t *p = part_of(addr);
    return p != NULL && esp_partition_write(p, addr - p->address, data, len) == ESP_OK ? 0 : -1;
}

static int hal_erase(void *ctx, uintptr_t addr, size_t len)
{
    (void)ctx;
    const esp_partition_t *p = part_of(addr);
    return p != NULL && esp_partition_erase_range(p, addr - p->address, len) == ESP_OK ? 0 : -1;
}

static const dysan_flash_hal_t s_hal = {hal_program, hal_erase, NULL, NULL, 4u, 4096u}; /* 4 KB sectors */

static void regions_begin(void)
{
    for (int i = 0; i < DYSAN_REGION_COUNT; i++) {
        esp_region_t *r = &s_regions[i];
        r->part = esp_partition_find_first(ESP_PARTITION_TYPE_DATA, ESP_PARTITION_SUBTYPE_ANY, r->label);
        if (r->part == NULL) {
            continue;
        }
        const void *ptr = NULL;
#if ESP_IDF_VERSION_MAJOR >= 5
        esp_partition_mmap_handle_t handle;
        esp_err_t err = esp_partition_mmap(r->part, 0, r->part->size, ESP_PARTITION_MMAP_DATA, &ptr, &handle);
#else
        spi_flash_mmap_handle_t handle;
        esp_err_t err = esp_partition_mmap(r->part, 0, r->part->size, SPI_FLASH_MMAP_DATA, &ptr, &handle);
#endif
        if (err != ESP_OK) {
            r->part = NULL; /* the region reads as absent */
            continue;
        }
        r->region.addr = r->part->address;
        r->region.size = r->part->size;
        r->region.mapped = (const uint8_t *)ptr;
    }
    s_prov = esp_partition_find_first(ESP_PARTITION_TYPE_DATA, ESP_PARTITION_SUBTYPE_ANY, "dysan_prov");
}

static const dysan_flash_region_t *region_get(dysan_region_t region)
{
    if ((int)region < 0 || (int)region >= DYSAN_REGION_COUNT || s_regions[region].part == NULL) {
        return NULL;
    }
    return &s_regions[region].region;
}

const uint8_t *dysan_port_region(dysan_region_t region, size_t *size)
{
    const dysan_flash_region_t *r = region_get(region);
    if (size != NULL) {
        *size = r != NULL ? r->size : 0;
    }
    return r != NULL ? r->mapped : NULL;
}

int dysan_port_region_erase(dysan_region_t region)
{
    const dysan_flash_region_t *r = region_get(region);
    return r == NULL ? DYSAN_PORT_EINVAL : dysan_flash_region_erase(&s_hal, r);
}

int dysan_port_region_erase_range(dysan_region_t region, size_t offset, size_t n)
{
    const dysan_flash_region_t *r = region_get(region);
    return r == NULL ? DYSAN_PORT_EINVAL : dysan_flash_region_erase_range(&s_hal, r, offset, n);
}

int dysan_port_region_write(dysan_region_t region, size_t offset, const uint8_t *data, size_t n)
{
    const dysan_flash_region_t *r = region_get(region);
    return r == NULL ? DYSAN_PORT_EINVAL : dysan_flash_region_write(&s_hal, r, offset, data, n);
}

int dysan_port_identity(uint8_t device_id[8], uint8_t key[32])
{
    uint8_t head[DYSAN_PROVISION_HEADER_LEN];
    int rc = DYSAN_PORT_ENOID;
    if (s_prov != NULL && esp_partition_read(s_prov, 0, head, sizeof head) == ESP_OK) {
        rc = dysan_provision_parse(head, sizeof head, device_id, key);
        memset(head, 0, sizeof head);
    }
    if (rc != DYSAN_PORT_OK && dysan_provision_image != NULL) {
        rc = dysan_provision_parse(dysan_provision_image, DYSAN_PROVISION_HEADER_LEN, device_id, key);
    }
    return rc;
}

/* ---- init and Arduino entry ---------------------------------------------------------------------------------------- */

void dysan_port_init(void)
{
    (void)dysan_ring_init(&s_ring, s_ring_mem, DYSAN_LINK_RING);
    Serial.setRxBufferSize(DYSAN_LINK_RING); /* before begin(): the UART driver's own buffer */
    Serial.begin(DYSAN_SERIAL_BAUD);
    regions_begin();
    s_imu_ok = mpu6050_begin() == 0;
    ble_begin();
}

void setup()
{
    (void)dysan_app_main(); /* the application's main loop; does not return */
}

void loop()
{
}
