/*
 * arm_semihost.h -- the ARM semihosting call (BKPT 0xAB on M-profile) and the operation numbers we use. The one
 * definition for the QEMU port (flash_qemu.c: the STATE file) and the bare-metal test harness
 * (tests/qemu/startup.c: command line, fault report, exit), which includes it by relative path. Issue a call
 * only when QEMU runs with semihosting enabled: otherwise the BKPT is a debug fault.
 */
#ifndef DYSAN_ARM_SEMIHOST_H
#define DYSAN_ARM_SEMIHOST_H

#include <stdint.h>

#define SEMIHOST_SYS_OPEN 0x01
#define SEMIHOST_SYS_WRITE0 0x04
#define SEMIHOST_SYS_WRITE 0x05
#define SEMIHOST_SYS_SEEK 0x0A
#define SEMIHOST_SYS_GET_CMDLINE 0x15
#define SEMIHOST_SYS_EXIT 0x18
#define SEMIHOST_ADP_RUNTIME_ERROR 0x20023

/* Operation `op` with its argument block (or value) `arg`; returns r0 (the operation's result). The
 * "memory" clobber covers operations that write through `arg` (SYS_GET_CMDLINE fills the caller's buffer). */
static inline int dysan_semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

#endif /* DYSAN_ARM_SEMIHOST_H */
