/*
 * mps2_an386.h -- the few registers of QEMU's `mps2-an386` (Cortex-M4F, ARM AN386 FPGA image) this port
 * touches. Addresses and interrupt numbers from QEMU's hw/arm/mps2.c (AN385/AN386 share the map) and the
 * Cortex-M System Design Kit TRM (CMSDK APB UART and timer), ARMv7-M ARM for the core peripherals.
 *
 *   0x00000000-0x003FFFFF  ZBT SSRAM1 (4 MB)  -> our 1 MB "flash" lives at its start
 *   0x20000000-0x203FFFFF  ZBT SSRAM2/3 (4 MB) -> our 256 KB RAM lives at its start
 *   0x40000000 TIMER0 (IRQ 8), 0x40001000 TIMER1 (IRQ 9), 0x40002000 DUALTIMER (IRQ 10),
 *   0x40004000 UART0 (RX IRQ 0, TX IRQ 1)
 *   All APB peripherals run from the 25 MHz SYSCLK; so does SysTick with CLKSOURCE = 1 (processor clock).
 */
#ifndef DYSAN_MPS2_AN386_H
#define DYSAN_MPS2_AN386_H

#include <stdint.h>

#define MPS2_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

#define MPS2_SYSCLK_HZ 25000000u
/* Virtual nanoseconds per SYSCLK tick (1e9 / 25e6). Under `-icount shift=0` QEMU advances virtual time by
 * exactly 1 ns per executed instruction, so one tick is 40 instructions there. */
#define MPS2_NS_PER_TICK 40u
#define MPS2_TICKS_PER_MS (MPS2_SYSCLK_HZ / 1000u)

/* CMSDK APB UART */
#define UART0_BASE 0x40004000u
#define UART_DATA(b) MPS2_REG((b) + 0x00u)
#define UART_STATE(b) MPS2_REG((b) + 0x04u)
#define UART_CTRL(b) MPS2_REG((b) + 0x08u)
#define UART_INTSTATUS(b) MPS2_REG((b) + 0x0Cu) /* read: status; write 1: clear */
#define UART_BAUDDIV(b) MPS2_REG((b) + 0x10u)
#define UART_STATE_TXFULL (1u << 0)
#define UART_STATE_RXFULL (1u << 1)
#define UART_STATE_TXOVR (1u << 2)
#define UART_STATE_RXOVR (1u << 3)
#define UART_CTRL_TX_EN (1u << 0)
#define UART_CTRL_RX_EN (1u << 1)
#define UART_CTRL_TX_INTEN (1u << 2)
#define UART_CTRL_RX_INTEN (1u << 3)
#define UART_INT_TX (1u << 0)
#define UART_INT_RX (1u << 1)
#define UART0_RX_IRQn 0
#define UART0_TX_IRQn 1

/* CMSDK APB timer: 32-bit down counter, interrupt on the 1 -> 0 transition, then reload */
#define TIMER0_BASE 0x40000000u
#define TIMER1_BASE 0x40001000u
#define TIMER_CTRL(b) MPS2_REG((b) + 0x00u)
#define TIMER_VALUE(b) MPS2_REG((b) + 0x04u)
#define TIMER_RELOAD(b) MPS2_REG((b) + 0x08u)
#define TIMER_INTSTATUS(b) MPS2_REG((b) + 0x0Cu)
#define TIMER_CTRL_EN (1u << 0)
#define TIMER_CTRL_IRQEN (1u << 3)
#define TIMER0_IRQn 8
#define TIMER1_IRQn 9

/* CMSDK APB dual timer (an ARM SP804): timer 1 of it drives the emulated IMU (port_qemu.c) */
#define DUALTIMER_BASE 0x40002000u
#define DUALTIMER1_LOAD MPS2_REG(DUALTIMER_BASE + 0x00u)
#define DUALTIMER1_VALUE MPS2_REG(DUALTIMER_BASE + 0x04u)
#define DUALTIMER1_CTRL MPS2_REG(DUALTIMER_BASE + 0x08u)
#define DUALTIMER1_INTCLR MPS2_REG(DUALTIMER_BASE + 0x0Cu)
#define DUALTIMER_CTRL_32BIT (1u << 1)
#define DUALTIMER_CTRL_INTEN (1u << 5)
#define DUALTIMER_CTRL_PERIODIC (1u << 6)
#define DUALTIMER_CTRL_EN (1u << 7)
#define DUALTIMER_IRQn 10

/* Cortex-M4 system control space */
#define SYST_CSR MPS2_REG(0xE000E010u)
#define SYST_RVR MPS2_REG(0xE000E014u)
#define SYST_CVR MPS2_REG(0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2)

#define NVIC_ISER0 MPS2_REG(0xE000E100u)
#define NVIC_ICER0 MPS2_REG(0xE000E180u)
#define NVIC_ICPR0 MPS2_REG(0xE000E280u)

#define SCB_ICSR MPS2_REG(0xE000ED04u)
#define SCB_VTOR MPS2_REG(0xE000ED08u)
#define SCB_CCR MPS2_REG(0xE000ED14u)
#define SCB_SHCSR MPS2_REG(0xE000ED24u)
#define SCB_CFSR MPS2_REG(0xE000ED28u)
#define SCB_HFSR MPS2_REG(0xE000ED2Cu)
#define SCB_MMFAR MPS2_REG(0xE000ED34u)
#define SCB_BFAR MPS2_REG(0xE000ED38u)
#define SCB_CPACR MPS2_REG(0xE000ED88u)
#define SCB_CCR_DIV_0_TRP (1u << 4)
#define SCB_SHCSR_MEMFAULTENA (1u << 16)
#define SCB_SHCSR_BUSFAULTENA (1u << 17)
#define SCB_SHCSR_USGFAULTENA (1u << 18)

/* PMSAv7 MPU */
#define MPU_CTRL MPS2_REG(0xE000ED94u)
#define MPU_RNR MPS2_REG(0xE000ED98u)
#define MPU_RBAR MPS2_REG(0xE000ED9Cu)
#define MPU_RASR MPS2_REG(0xE000EDA0u)
#define MPU_CTRL_ENABLE (1u << 0)
#define MPU_CTRL_PRIVDEFENA (1u << 2)
#define MPU_RASR_ENABLE (1u << 0)
#define MPU_RASR_SIZE(log2) ((uint32_t)((log2) - 1u) << 1) /* region of 2^log2 bytes */
#define MPU_RASR_AP_NONE (0u << 24)
#define MPU_RASR_AP_RO (6u << 24) /* read-only, privileged and unprivileged */
#define MPU_RASR_XN (1u << 28)
#define MPU_REGION_STACK_GUARD 0u
#define MPU_STACK_GUARD_BASE 0x1FF00000u /* [0x1FF00000, 0x20000000): just below RAM */
#define MPU_REGION_FLASH_RO 1u

static inline uint32_t mps2_irq_save(void)
{
    uint32_t primask;
    __asm volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask) : : "memory");
    return primask;
}

static inline void mps2_irq_restore(uint32_t primask)
{
    __asm volatile("msr primask, %0" : : "r"(primask) : "memory");
}

static inline void mps2_barrier(void)
{
    __asm volatile("dsb\n\tisb" : : : "memory");
}

/* Shared between startup.c and port_qemu.c. */
void dysan_qemu_uart_putc(uint8_t c);
void dysan_qemu_mpu_init(void);

#endif /* DYSAN_MPS2_AN386_H */
