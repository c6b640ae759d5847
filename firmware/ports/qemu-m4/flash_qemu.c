/*
 * flash_qemu.c -- the STATE region survives a QEMU restart: every write and erase is mirrored to a host file.
 *
 * QEMU's RAM-backed "flash" is lost when QEMU exits, and with it the auth counter -- on a chip it is not. So
 * the host (host/dysan/device/qemu.py, `state_file=`) keeps the STATE region in a file:
 *   - at boot QEMU's generic loader places the file's bytes at __dysan_state_start (as a chip's flash would
 *     still hold them), and a small descriptor at __dysan_qemu_flashfile: u32 magic "DYQF", u32 path length,
 *     the file's absolute path (NUL-terminated);
 *   - with the descriptor present, this file opens the backing file through ARM semihosting (SYS_OPEN "r+b";
 *     QEMU runs with `-semihosting-config enable=on,target=native`) and, after each successful write or
 *     erase of STATE, writes the changed bytes at the same offset (SYS_SEEK + SYS_WRITE).
 * The file is written with plain write(2) by QEMU, so a SIGKILL of QEMU loses at most the operation in
 * progress -- a power cut in the middle of one flash operation, which the STATE format is built to survive.
 *
 * Without the descriptor nothing here issues a semihosting call: a BKPT 0xAB without semihosting enabled
 * would be a debug fault. The descriptor lives outside the nRF52840-sized memory map (above the 256 KB of RAM
 * the image uses, in QEMU's SSRAM), so it can never collide with the image or its data.
 */
#include "flash_qemu.h"

#include <stdint.h>
#include <string.h>

#include "arm_semihost.h"
#include "dysan_le.h"

extern uint8_t __dysan_qemu_flashfile[];

#define SYS_OPEN_MODE_RPLUSB 3 /* "r+b": the host created the file; never truncate it */

static int s_handle = -1;

void dysan_qemu_flash_init(void)
{
    const uint8_t *d = __dysan_qemu_flashfile;
    s_handle = -1;
    if (dysan_le_get_u32(d) != DYSAN_QEMU_FLASHFILE_MAGIC) {
        return;
    }
    const uint32_t len = dysan_le_get_u32(d + 4);
    const char *path = (const char *)(d + 8);
    if (len == 0u || len > DYSAN_QEMU_FLASHFILE_PATH_MAX || path[len] != '\0' || strlen(path) != len) {
        return;
    }
    const uintptr_t args[3] = {(uintptr_t)path, SYS_OPEN_MODE_RPLUSB, len};
    s_handle = dysan_semihost(SEMIHOST_SYS_OPEN, args);
}

int dysan_qemu_flash_persistent(void) { return s_handle >= 0; }

void dysan_qemu_flash_mirror(dysan_region_t region, const uint8_t *base, size_t offset, size_t n)
{
    if (s_handle < 0 || region != DYSAN_REGION_STATE || base == NULL || n == 0) {
        return;
    }
    const uintptr_t seek[2] = {(uintptr_t)s_handle, offset};
    if (dysan_semihost(SEMIHOST_SYS_SEEK, seek) != 0) {
        s_handle = -1; /* the file is gone: stop mirroring rather than write at a wrong offset */
        return;
    }
    const uintptr_t wr[3] = {(uintptr_t)s_handle, (uintptr_t)(base + offset), n};
    if (dysan_semihost(SEMIHOST_SYS_WRITE, wr) != 0) {
        s_handle = -1;
    }
}
