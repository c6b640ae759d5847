/*
 * startup.c -- minimal bare-metal start for the nn test runner on qemu-system-arm -M mps2-an386 (Cortex-M4F).
 *
 * Vector table, reset (copy .data, zero .bss, enable the FPU), SysTick as a free-running tick counter, the
 * command line from semihosting (SYS_GET_CMDLINE, set with -semihosting-config ...,arg=...), newlib's
 * semihosting stdio (librdimon), and a HardFault handler that reports over semihosting and stops QEMU with
 * a failure status instead of hanging. No crt0: rdimon's asks the debugger for a heap and stack layout, and
 * QEMU's answer does not fit this board.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../ports/qemu-m4/arm_semihost.h" /* dysan_semihost, shared with the QEMU port */
#include "nn_qemu.h"

extern uint32_t __data_start__, __data_end__, __data_load__, __bss_start__, __bss_end__, __stack_top__;
extern int main(int argc, char **argv);
extern void initialise_monitor_handles(void);

void nn_qemu_reset(void);
void nn_qemu_fault(void);
void nn_qemu_systick(void);

#define REG32(addr) (*(volatile uint32_t *)(addr))
#define SCB_CPACR REG32(0xE000ED88u)
#define SCB_ICSR REG32(0xE000ED04u)
#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)
#define SYST_RELOAD 0x00FFFFFFu
#define ICSR_PENDSTSET (1u << 26)


static volatile uint32_t g_wraps;

__attribute__((section(".vectors"), used)) static void (*const g_vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&__stack_top__,
    nn_qemu_reset,
    nn_qemu_fault, /* NMI */
    nn_qemu_fault, /* HardFault */
    nn_qemu_fault, /* MemManage */
    nn_qemu_fault, /* BusFault */
    nn_qemu_fault, /* UsageFault */
    0, 0, 0, 0,
    nn_qemu_fault, /* SVCall */
    nn_qemu_fault, /* DebugMonitor */
    0,
    nn_qemu_fault, /* PendSV */
    nn_qemu_systick,
};

void nn_qemu_fault(void) {
    dysan_semihost(SEMIHOST_SYS_WRITE0, "nn_qemu: fault\n");
    dysan_semihost(SEMIHOST_SYS_EXIT, (const void *)(uintptr_t)SEMIHOST_ADP_RUNTIME_ERROR);
    for (;;) {
    }
}

void nn_qemu_systick(void) { g_wraps++; }

uint64_t nn_qemu_ticks(void) {
    for (;;) {
        const uint32_t w = g_wraps;
        const uint32_t v = SYST_CVR;
        const int pending = (SCB_ICSR & ICSR_PENDSTSET) != 0;
        if (w != g_wraps) {
            continue; /* the wrap interrupt ran in between: read again */
        }
        /* A wrap whose interrupt has not run yet reloaded the counter: count it when v is past it. */
        const uint32_t wraps = w + (pending && v > SYST_RELOAD / 2 ? 1u : 0u);
        return (uint64_t)wraps * (SYST_RELOAD + 1u) + (SYST_RELOAD - v);
    }
}

uint64_t nn_qemu_calibrate(uint32_t iterations) {
    const uint64_t t0 = nn_qemu_ticks();
    __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(iterations) : : "cc");
    return nn_qemu_ticks() - t0;
}

static char g_cmdline[512];
static char *g_argv[16];

static int parse_cmdline(void) {
    struct {
        char *buf;
        int len;
    } block = {g_cmdline, (int)sizeof g_cmdline - 1};
    int argc = 0;
    if (dysan_semihost(SEMIHOST_SYS_GET_CMDLINE, &block) != 0) {
        g_argv[argc++] = "nn_runner";
        return argc;
    }
    g_cmdline[sizeof g_cmdline - 1] = '\0';
    for (char *p = g_cmdline; *p && argc < (int)(sizeof g_argv / sizeof g_argv[0]) - 1;) {
        while (*p == ' ') {
            *p++ = '\0';
        }
        if (*p) {
            g_argv[argc++] = p;
            while (*p && *p != ' ') {
                p++;
            }
        }
    }
    g_argv[argc] = NULL;
    return argc;
}

void nn_qemu_reset(void) {
    memcpy(&__data_start__, &__data_load__, (size_t)((char *)&__data_end__ - (char *)&__data_start__));
    memset(&__bss_start__, 0, (size_t)((char *)&__bss_end__ - (char *)&__bss_start__));
    SCB_CPACR |= 0xFu << 20; /* CP10, CP11: full access to the FPU */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    SYST_RVR = SYST_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* processor clock, interrupt on wrap, enabled */
    initialise_monitor_handles();
    const int argc = parse_cmdline();
    exit(main(argc, g_argv));
}
