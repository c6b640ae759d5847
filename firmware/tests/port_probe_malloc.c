/*
 * port_probe_malloc.c -- must NOT link for the Cortex-M4 (`make check-no-malloc` expects the failure).
 * Proves that the firmware link refuses heap allocation instead of quietly pulling newlib's malloc in.
 */
#include <stdlib.h>

#include "dysan_port.h"

int main(void)
{
    dysan_port_init();
    void *p = malloc(16);
    free(p);
    return p != NULL;
}
