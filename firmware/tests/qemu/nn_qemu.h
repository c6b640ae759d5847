/*
 * nn_qemu.h -- the bits of the bare-metal QEMU harness (startup.c) the test runner uses.
 *
 * Self-contained on purpose: this harness only exists to run firmware/tests/nn_runner.c on a Cortex-M4F
 * (qemu-system-arm -M mps2-an386 -semihosting), with stdio over semihosting; the firmware's real QEMU port
 * lives in firmware/ports/qemu-m4.
 */
#ifndef NN_QEMU_H
#define NN_QEMU_H

#include <stdint.h>

/* SysTick ticks since boot (the processor clock, 25 MHz on mps2-an386). Under `-icount shift=0` QEMU
 * advances virtual time by 1 ns per instruction, so ticks are a deterministic instruction count divided by
 * a constant that the runner's calibration measures (nn_qemu_calibrate). */
uint64_t nn_qemu_ticks(void);

/* Runs a loop of exactly `iterations` x 2 instructions (SUBS, BNE) and returns the ticks it took. */
uint64_t nn_qemu_calibrate(uint32_t iterations);

#endif /* NN_QEMU_H */
