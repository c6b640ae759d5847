/* Stand-in for the NimBLE host API subset (type-checking only; see ../README.md). */
#pragma once
#include <stdint.h>
#define BLE_HS_ENOMEM 6
#define BLE_HS_CONN_HANDLE_NONE 0xffff
struct os_mbuf;
struct ble_gap_conn_desc { uint16_t conn_handle; };
extern "C" {
struct os_mbuf *ble_hs_mbuf_from_flat(const void *buf, uint16_t len);
int ble_gattc_notify_custom(uint16_t conn_handle, uint16_t att_handle, struct os_mbuf *om);
uint16_t ble_att_mtu(uint16_t conn_handle);
}
