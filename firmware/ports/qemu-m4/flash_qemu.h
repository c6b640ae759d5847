/*
 * flash_qemu.h -- the qemu-m4 port's STATE region backed by a host file (see flash_qemu.c).
 */
#ifndef DYSAN_FLASH_QEMU_H
#define DYSAN_FLASH_QEMU_H

#include <stddef.h>

#include "dysan_port.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DYSAN_QEMU_FLASHFILE_MAGIC 0x46515944u /* "DYQF" in memory order */
#define DYSAN_QEMU_FLASHFILE_PATH_MAX 240u

/* Opens the backing file named by the descriptor the host placed at __dysan_qemu_flashfile, if any. */
void dysan_qemu_flash_init(void);

/* Copies bytes [offset, offset + n) of `region`, as they are now, to the backing file (no-op when there is
 * none or for another region than STATE). Called by the port after every successful write and erase. */
void dysan_qemu_flash_mirror(dysan_region_t region, const uint8_t *base, size_t offset, size_t n);

/* 1 when STATE writes reach a backing file. */
int dysan_qemu_flash_persistent(void);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_FLASH_QEMU_H */
