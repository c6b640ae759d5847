/*
 * startup.c -- vector table, reset and fault handlers of the QEMU mps2-an386 (Cortex-M4F) port.
 *
 * Reset: copy .data from flash, zero .bss, enable the FPU (CPACR) before any FP instruction, trap integer
 * division by zero, enable the MemManage/BusFault/UsageFault handlers, arm the MPU (stack guard + read-only
 * flash), then run the application in thread mode on its own stack (PSP) while exceptions use a separate
 * handler stack (MSP). That split is what makes a stack overflow reportable: the application stack starts
 * RAM, an overflowing store hits the MPU's no-access megabyte below RAM, and the fault handler still has a
 * valid stack (MSP) to print from.
 *
 * A fault prints one line "!FAULT <kind> ..." on UART0 and halts (interrupts off, WFI): the host sees the
 * reason instead of a silent hang.
 */
#include <stdint.h>

#include "mps2_an386.h"
#include "port_common.h"

extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_top[], __stack_limit[], __handler_stack_top[];

void Reset_Handler(void);
void dysan_qemu_early_init(void);
void dysan_qemu_run(void);
void Default_Handler(void);
void HardFault_Handler(void);
void MemManage_Handler(void);
void BusFault_Handler(void);
void UsageFault_Handler(void);

/* Drivers in port_qemu.c define the ones they use; the rest fall through to Default_Handler. */
void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UART0RX_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UART0TX_Handler(void) __attribute__((weak, alias("Default_Handler")));
void TIMER0_Handler(void) __attribute__((weak, alias("Default_Handler")));
void TIMER1_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DUALTIMER_Handler(void) __attribute__((weak, alias("Default_Handler")));

typedef void (*vector_t)(void);

/* 16 system exceptions + the 32 external interrupts QEMU gives mps2-an385/an386 (num-irq = 32). */
__attribute__((section(".vectors"), used)) const vector_t dysan_vectors[16 + 32] = {
    (vector_t)(uintptr_t)__handler_stack_top, /* initial MSP */
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0,
    0,
    0,
    0,
    SVC_Handler,
    DebugMon_Handler,
    0,
    PendSV_Handler,
    SysTick_Handler,
    [16 + UART0_RX_IRQn] = UART0RX_Handler,
    [16 + UART0_TX_IRQn] = UART0TX_Handler,
    [16 + 2] = Default_Handler,
    [16 + 3] = Default_Handler,
    [16 + 4] = Default_Handler,
    [16 + 5] = Default_Handler,
    [16 + 6] = Default_Handler,
    [16 + 7] = Default_Handler,
    [16 + TIMER0_IRQn] = TIMER0_Handler,
    [16 + TIMER1_IRQn] = TIMER1_Handler,
    [16 + DUALTIMER_IRQn] = DUALTIMER_Handler,
    [16 + 11] = Default_Handler,
    [16 + 12] = Default_Handler,
    [16 + 13] = Default_Handler,
    [16 + 14] = Default_Handler,
    [16 + 15] = Default_Handler,
    [16 + 16] = Default_Handler,
    [16 + 17] = Default_Handler,
    [16 + 18] = Default_Handler,
    [16 + 19] = Default_Handler,
    [16 + 20] = Default_Handler,
    [16 + 21] = Default_Handler,
    [16 + 22] = Default_Handler,
    [16 + 23] = Default_Handler,
    [16 + 24] = Default_Handler,
    [16 + 25] = Default_Handler,
    [16 + 26] = Default_Handler,
    [16 + 27] = Default_Handler,
    [16 + 28] = Default_Handler,
    [16 + 29] = Default_Handler,
    [16 + 30] = Default_Handler,
    [16 + 31] = Default_Handler,
};

/* Runs on the handler stack (MSP) before anything is initialized: no FP, no .data/.bss access. */
void dysan_qemu_early_init(void)
{
    /* Full access to CP10/CP11 (the FPU) before the first floating-point instruction. */
    SCB_CPACR |= (0xFu << 20);
    mps2_barrier();

    uint32_t *src = __data_load;
    for (uint32_t *dst = __data_start; dst < __data_end;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = __bss_start; dst < __bss_end;) {
        *dst++ = 0;
    }

    SCB_VTOR = (uint32_t)(uintptr_t)dysan_vectors;
    /* Integer division by zero is silently 0 on an M4 unless trapped: trap it, it is always a bug. */
    SCB_CCR |= SCB_CCR_DIV_0_TRP;
    SCB_SHCSR |= SCB_SHCSR_MEMFAULTENA | SCB_SHCSR_BUSFAULTENA | SCB_SHCSR_USGFAULTENA;
    dysan_qemu_mpu_init();
}

/* Thread mode, on the application stack (PSP). */
void dysan_qemu_run(void)
{
    (void)dysan_app_main();
    /* The application returned: nothing left to do. Sleep forever (the host sees silence, not a crash). */
    for (;;) {
        __asm volatile("wfi");
    }
}

__attribute__((naked, noreturn)) void Reset_Handler(void)
{
    __asm volatile(
        "bl   dysan_qemu_early_init\n\t"
        "ldr  r0, =__stack_top\n\t"
        "msr  psp, r0\n\t"
        "movs r0, #2\n\t" /* CONTROL.SPSEL = 1: thread mode uses PSP */
        "msr  control, r0\n\t"
        "isb\n\t"
        "bl   dysan_qemu_run\n\t"
        "b    .\n\t");
}

/* ---- faults ------------------------------------------------------------------------------------- */

static void fault_puts(const char *s)
{
    while (*s) {
        dysan_qemu_uart_putc((uint8_t)*s++);
    }
}

static void fault_hex(const char *label, uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    fault_puts(label);
    fault_puts("0x");
    for (int shift = 28; shift >= 0; shift -= 4) {
        dysan_qemu_uart_putc((uint8_t)digits[(v >> shift) & 0xFu]);
    }
}

/* `frame` is the exception frame (r0-r3, r12, lr, pc, xpsr) on the stack the fault was taken from, when
 * that stack is readable; the MPU may have refused the frame of a stack overflow. */
__attribute__((noreturn, used)) void dysan_qemu_fault(const char *kind, const uint32_t *frame)
{
    (void)mps2_irq_save();
    uint32_t psp;
    uint32_t msp;
    __asm volatile("mrs %0, psp" : "=r"(psp));
    __asm volatile("mrs %0, msp" : "=r"(msp));
    uint32_t cfsr = SCB_CFSR;
    int stack_overflow = psp <= (uint32_t)(uintptr_t)__stack_limit;

    fault_puts("\r\n!FAULT ");
    fault_puts(kind);
    if (stack_overflow) {
        fault_puts(" stack-overflow");
    }
    fault_hex(" cfsr=", cfsr);
    fault_hex(" hfsr=", SCB_HFSR);
    fault_hex(" mmfar=", SCB_MMFAR);
    fault_hex(" bfar=", SCB_BFAR);
    fault_hex(" psp=", psp);
    fault_hex(" msp=", msp);
    uint32_t lo = (uint32_t)(uintptr_t)__stack_limit;
    uint32_t f = (uint32_t)(uintptr_t)frame;
    if (f >= lo && f + 32u <= 0x20040000u) {
        fault_hex(" pc=", frame[6]);
        fault_hex(" lr=", frame[5]);
    }
    fault_puts("\r\n");
    NVIC_ICER0 = 0xFFFFFFFFu;
    for (;;) {
        __asm volatile("wfi");
    }
}

/* Each handler passes the active stack pointer of the faulting context (EXC_RETURN bit 2). */
#define FAULT_ENTRY(name, kind)                                                                              \
    __attribute__((naked)) void name(void)                                                                   \
    {                                                                                                        \
        __asm volatile("ldr   r0, =" #kind "\n\t"                                                            \
                       "tst   lr, #4\n\t"                                                                    \
                       "ite   eq\n\t"                                                                        \
                       "mrseq r1, msp\n\t"                                                                   \
                       "mrsne r1, psp\n\t"                                                                   \
                       "b     dysan_qemu_fault\n\t");                                                        \
    }

const char dysan_fault_hard[] = "hardfault";
const char dysan_fault_mem[] = "memmanage";
const char dysan_fault_bus[] = "busfault";
const char dysan_fault_usage[] = "usagefault";
const char dysan_fault_default[] = "unexpected-irq";

FAULT_ENTRY(HardFault_Handler, dysan_fault_hard)
FAULT_ENTRY(MemManage_Handler, dysan_fault_mem)
FAULT_ENTRY(BusFault_Handler, dysan_fault_bus)
FAULT_ENTRY(UsageFault_Handler, dysan_fault_usage)
FAULT_ENTRY(Default_Handler, dysan_fault_default)
