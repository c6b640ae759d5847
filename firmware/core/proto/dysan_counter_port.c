/* dysan_counter_port.c -- dysan_counter_ops_t over dysan_port_region_write / _erase. */
#include "dysan_counter_port.h"

#include "dysan_msg.h"

static int region_write(void *ctx, size_t offset, const uint8_t *data, size_t n)
{
    const dysan_counter_region_t *w = (const dysan_counter_region_t *)ctx;
    return dysan_port_region_write(w->region, w->offset + offset, data, n);
}

static int region_erase(void *ctx)
{
    const dysan_counter_region_t *w = (const dysan_counter_region_t *)ctx;
    return dysan_port_region_erase(w->region) != 0 ? -1 : 0;
}

static int region_compacted(void *ctx)
{
    const dysan_counter_region_t *w = (const dysan_counter_region_t *)ctx;
    return w->restore != NULL ? w->restore(w->restore_ctx) : 0;
}

int dysan_counter_log_open_region(dysan_counter_log_t *log, dysan_counter_region_t *where,
                                  dysan_region_t region, size_t offset, size_t size,
                                  int (*restore)(void *ctx), void *restore_ctx)
{
    if (log == NULL || where == NULL) {
        return DYSAN_ERR_STORAGE;
    }
    size_t cap = 0;
    const uint8_t *base = dysan_port_region(region, &cap);
    if (base == NULL || offset > cap || size > cap - offset) {
        return DYSAN_ERR_STORAGE;
    }
    where->region = region;
    where->offset = offset;
    where->restore = restore;
    where->restore_ctx = restore_ctx;
    const dysan_counter_ops_t ops = {region_write, region_erase, region_compacted, where};
    return dysan_counter_log_open(log, base + offset, size, &ops);
}
