/*
 * board_nrf52840.h -- what differs between the two nRF52840 boards (NOT COMPILED IN CI: see ../README.md).
 *
 *   nano33ble       Arduino Nano 33 BLE Sense (Rev1: LSM9DS1, Rev2: BMI270), ArduinoCore-mbed, ArduinoBLE.
 *                   Bootloader at 0x00000-0x0FFFF, no SoftDevice (Cordio BLE runs in the application).
 *   xiao_ble_sense  Seeed XIAO nRF52840 Sense (LSM6DS3TR-C), Adafruit nRF52 core (Seeed variant), Bluefruit.
 *                   S140 v7 SoftDevice at 0x00000-0x26FFF, application 0x27000-0xECFFF, InternalFS
 *                   0xED000-0xF3FFF, bootloader from 0xF4000.
 *
 * The persistent regions are fixed 4 KB-aligned slices at the top of the application's flash. The XIAO link
 * fails when the image reaches them (make -C firmware xiao); the port also checks at boot, from linker
 * symbols, and refuses to use them if the image reaches into them.
 */
#ifndef DYSAN_BOARD_NRF52840_H
#define DYSAN_BOARD_NRF52840_H

#if defined(ARDUINO_ARCH_MBED)
#define DYSAN_NRF_CORE_MBED 1
#elif defined(ARDUINO_NRF52_ADAFRUIT)
#define DYSAN_NRF_CORE_ADAFRUIT 1
#else
#error "nrf52840 port: build with the Arduino mbed core (nano33ble) or the Adafruit nRF52 core (XIAO)"
#endif

/* DYSAN_NRF_{APP_START, BUNDLE_ADDR/SIZE, RF_ADDR/SIZE, STATE_ADDR/SIZE, PROVISION_ADDR/SIZE, FLASH_END, PAGE}
 * of the selected core, generated from host/dysan/boards.py (NRF_LAYOUTS), where `dysan flash` and the
 * XIAO link check (firmware/boards/xiao/dysan_regions.ld.in) read them too. */
#include "board_regions.h"

#ifndef DYSAN_LINKER_SCRIPT /* the rest is C only */
#ifndef DYSAN_BLE_NAME
#define DYSAN_BLE_NAME "DySan"
#endif
#ifndef DYSAN_LINK_RING
#define DYSAN_LINK_RING 4096u /* link RX ring (BLE writes land here) */
#endif

#endif /* DYSAN_LINKER_SCRIPT */

#endif /* DYSAN_BOARD_NRF52840_H */
