/* dysan_main.c -- the firmware's entry (compiled as dysan_app_main; each port's own entry calls it). */
#include "dysan_app.h"
#include "dysan_port.h"

int main(void)
{
    dysan_port_init();
    dysan_app_init();
    for (;;) {
        dysan_app_poll();
    }
}
