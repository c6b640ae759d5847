/*
 * nn_file_common.h -- the file reader of the model-image programs: tests/nn_runner.c (bit-exactness runner)
 * and bench/nn_cmsis_bench.c (our kernels against CMSIS-NN). Natively it is stdio; under QEMU the same
 * stdio calls go through newlib's semihosting (--specs=rdimon.specs), so both builds share it.
 */
#ifndef NN_FILE_COMMON_H
#define NN_FILE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Reads the whole of `path` into buf[0..cap). Returns its length, -1 when it cannot be opened, -2 when it
 * is longer than cap (a model image cut short would be refused later anyway, with a less clear error). */
static inline long nn_read_file(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return -1;
    }
    size_t n = 0, got;
    while (n < cap && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
    }
    const int more = n == cap && fgetc(f) != EOF;
    fclose(f);
    return more ? -2 : (long)n;
}

#endif /* NN_FILE_COMMON_H */
