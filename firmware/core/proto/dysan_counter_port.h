/*
 * dysan_counter_port.h -- the auth counter log (dysan_counter.h) in a dysan_port region.
 *
 * The log occupies bytes [offset, offset + size) of a region (the STATE region in the firmware). The port
 * API erases whole regions only, so compacting the log erases the region's other contents too: once the
 * counter is rewritten, `restore` is called to let their owner (the state module) write them back from
 * RAM. Pass NULL when the log has the region to itself.
 */
#ifndef DYSAN_COUNTER_PORT_H
#define DYSAN_COUNTER_PORT_H

#include <stddef.h>

#include "dysan_counter.h"
#include "dysan_port.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    dysan_region_t region;
    size_t offset;
    int (*restore)(void *ctx);
    void *restore_ctx;
} dysan_counter_region_t;

/* Fills *where and opens *log on it. DYSAN_OK, or DYSAN_ERR_STORAGE when the region is absent or too
 * small for [offset, offset + size). `where` must outlive `log`. */
int dysan_counter_log_open_region(dysan_counter_log_t *log, dysan_counter_region_t *where,
                                  dysan_region_t region, size_t offset, size_t size,
                                  int (*restore)(void *ctx), void *restore_ctx);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_COUNTER_PORT_H */
