/*
 * board_nrf52840.h -- what differs between the two nRF52840 boards (NOT COMPILED IN CI: see ../README.md).
 *
 *   nano33ble       Arduino Nano 33 BLE Sense (Rev1: LSM9DS1, Rev2: BMI270), ArduinoCore-mbed, ArduinoBLE.
 *                   Bootloader at 0x00000-0x0FFFF, no SoftDevice (Cordio BLE runs in the application).
 *   xiao_ble_sense  Seeed XIAO nRF52840 Sense (LSM6DS3TR-C), Adafruit nRF52 core (Seeed variant), Bluefruit.
 *                   S140 v7 SoftDevice at 0x00000-0x26FFF, application 0x27000-0xECFFF, InternalFS
 *                   0xED000-0xF3FFF, bootloader from 0xF4000.
 *
 * The persistent regions are fixed 4 KB-aligned slices at the top of the application's flash; the port
 * refuses to use them if the firmware image reaches into them (checked at boot from linker symbols).
 */
#ifndef DYSAN_BOARD_NRF52840_H
#define DYSAN_BOARD_NRF52840_H

#if defined(ARDUINO_ARCH_MBED)
#define DYSAN_NRF_CORE_MBED 1
/*                                   code 0x10000-0x5FFFF (320 KB) */
#define DYSAN_NRF_BUNDLE_ADDR 0x00060000u /* 616 KB */
#define DYSAN_NRF_BUNDLE_SIZE 0x0009A000u
#define DYSAN_NRF_RF_ADDR 0x000FA000u /* 16 KB */
#define DYSAN_NRF_STATE_ADDR 0x000FE000u /* 4 KB */
#define DYSAN_NRF_PROVISION_ADDR 0x000FF000u /* 4 KB */
#elif defined(ARDUINO_NRF52_ADAFRUIT)
#define DYSAN_NRF_CORE_ADAFRUIT 1
/*                                   code 0x27000-0x66FFF (256 KB) */
#define DYSAN_NRF_BUNDLE_ADDR 0x00067000u /* 512 KB */
#define DYSAN_NRF_BUNDLE_SIZE 0x00080000u
#define DYSAN_NRF_RF_ADDR 0x000E7000u /* 16 KB */
#define DYSAN_NRF_STATE_ADDR 0x000EB000u /* 4 KB */
#define DYSAN_NRF_PROVISION_ADDR 0x000EC000u /* 4 KB, ends at InternalFS (0xED000) */
#else
#error "nrf52840 port: build with the Arduino mbed core (nano33ble) or the Adafruit nRF52 core (XIAO)"
#endif

#define DYSAN_NRF_RF_SIZE 0x4000u
#define DYSAN_NRF_STATE_SIZE 0x1000u
#define DYSAN_NRF_PROVISION_SIZE 0x1000u
#define DYSAN_NRF_PAGE 4096u

#ifndef DYSAN_BLE_NAME
#define DYSAN_BLE_NAME "DySan"
#endif
#ifndef DYSAN_LINK_RING
#define DYSAN_LINK_RING 4096u /* link RX ring (BLE writes land here) */
#endif

#endif /* DYSAN_BOARD_NRF52840_H */
