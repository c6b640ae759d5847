/*
 * port_qemu.c -- dysan_port.h on QEMU mps2-an386 (Cortex-M4F). See firmware/ports/README.md.
 *
 * Link: CMSDK UART0. TX polls TXFULL. RX is interrupt-driven into a ring buffer, so bytes that arrive while
 * the core computes are kept. When the ring is full the RX interrupt is masked and the byte stays in the
 * UART: QEMU's UART model then stops taking bytes from its chardev (can_receive = 0), so the host's socket
 * applies backpressure and nothing is lost; the mask is lifted as soon as dysan_port_link_read frees space.
 *
 * Time: all timers run from the 25 MHz SYSCLK, one tick = 40 virtual ns. Under `-icount shift=0` QEMU
 * advances virtual time by exactly 1 ns per instruction, so:
 *   dysan_port_cycles() = virtual nanoseconds = instructions executed (under -icount shift=0), resolution
 *   40 (one tick). TIMER0 is re-anchored (VALUE rewritten) at every call, so the sub-tick phase does not
 *   depend on how long the CPU slept before: the delta between two calls is a deterministic function of
 *   the instructions executed between them. Each call drops < 40 ns, which is why millis uses another timer.
 *   dysan_port_millis() = TIMER1 (free-running, never rewritten) / 25000 ticks; virtual ms (= 10^6
 *   instructions under -icount shift=0).
 * No timer interrupts during computation (TIMER0/1 wrap every 171.8 s; SysTick only runs inside
 * dysan_port_idle), so instruction counts of a computation do not depend on when it started -- unless the
 * emulated IMU below is running (a real-time run, where that is the point).
 *
 * IMU: an emulated sensor, when the host placed a recording at __dysan_imu_start (`-device loader`; layout
 * in host/dysan/device/imu_image.py: magic, rate, FIFO depth, sample count, then int16 samples in contract
 * counts). DUALTIMER timer 1 interrupts at the recording's rate (50 Hz of virtual time) and its handler
 * moves the next sample into the sensor's FIFO (depth from the image, 32 by default as the LSM9DS1's);
 * a full FIFO loses the sample and counts it (dysan_port_imu_lost), as a real FIFO's overrun would. The
 * sensor starts on the first dysan_port_imu_read (the application's first IMU-fed stream), so recording
 * sample 0 is that stream's sample 0, and stops at the recording's end. Run it with `-icount shift=4`:
 * 16 virtual ns per instruction, i.e. a 62.5 MHz core at one instruction per cycle.
 *
 * Regions: RAM-backed "flash" at the addresses of mps2_an386.ld. Erase fills 0xFF; write follows NOR rules
 * (1 -> 0 only, checked, bounds-checked). MPU region 1 makes the 1 MB of flash read-only to everything else:
 * a stray write through a region pointer faults here instead of silently working (it would not on a chip).
 * At boot a region whose bytes are all zero (QEMU RAM that nothing was loaded into) is "factory-erased" to
 * 0xFF; a region image loaded with `-device loader` is left as it is.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dysan_contract.h"
#include "dysan_port.h"
#include "dysan_provision.h"
#include "mps2_an386.h"
#include "flash_qemu.h"
#include "port_common.h"

#ifndef DYSAN_QEMU_RX_RING
#define DYSAN_QEMU_RX_RING 4096u
#endif
#ifndef DYSAN_QEMU_IDLE_WAKE_MS
#define DYSAN_QEMU_IDLE_WAKE_MS 10u /* dysan_port_idle sleeps at most this long (virtual ms) */
#endif
#ifndef DYSAN_QEMU_BAUD
#define DYSAN_QEMU_BAUD 115200u /* QEMU does not pace the socket by it; set for a valid BAUDDIV (>= 16) */
#endif

_Static_assert((DYSAN_QEMU_RX_RING & (DYSAN_QEMU_RX_RING - 1u)) == 0u, "RX ring size must be a power of 2");
_Static_assert(MPS2_TICKS_PER_MS * DYSAN_QEMU_IDLE_WAKE_MS - 1u <= 0xFFFFFFu, "SysTick reload is 24-bit");

/* Linker symbols (mps2_an386.ld): addresses, and sizes encoded as addresses. */
extern uint8_t __dysan_bundle_start[], __dysan_bundle_size[], __dysan_bundle_image_end[];
extern uint8_t __dysan_rf_start[], __dysan_rf_size[];
extern uint8_t __dysan_state_start[], __dysan_state_size[];
extern uint8_t __dysan_provision_start[], __dysan_provision_size[];

#define COMPILER_BARRIER() __asm volatile("" : : : "memory")

static int imu_pending(void); /* samples wait in the emulated IMU's FIFO (the IMU section below) */

/* ---- UART0 ---------------------------------------------------------------------------------------- */

static uint8_t s_rx_ring[DYSAN_QEMU_RX_RING];
static volatile uint32_t s_rx_head;      /* written by the ISR (and by link_read while IRQs are off) */
static volatile uint32_t s_rx_tail;      /* written by link_read */
static volatile uint32_t s_rx_throttled; /* RX interrupt masked because the ring was full */

void dysan_qemu_uart_putc(uint8_t c)
{
    while (UART_STATE(UART0_BASE) & UART_STATE_TXFULL) {
    }
    UART_DATA(UART0_BASE) = c;
}

/* Moves bytes from the UART into the ring while there is room. Caller: the ISR, or thread code with
 * interrupts off. Returns 0 when it stopped because the ring is full with a byte still waiting. */
static int rx_drain(void)
{
    while (UART_STATE(UART0_BASE) & UART_STATE_RXFULL) {
        uint32_t head = s_rx_head;
        if (head - s_rx_tail >= DYSAN_QEMU_RX_RING) {
            return 0;
        }
        s_rx_ring[head & (DYSAN_QEMU_RX_RING - 1u)] = (uint8_t)UART_DATA(UART0_BASE);
        COMPILER_BARRIER();
        s_rx_head = head + 1u;
    }
    return 1;
}

void UART0RX_Handler(void)
{
    /* Clear first, then drain: a byte landing after the last RXFULL check raises the interrupt again. */
    UART_INTSTATUS(UART0_BASE) = UART_INT_RX;
    if (!rx_drain()) {
        UART_CTRL(UART0_BASE) &= ~UART_CTRL_RX_INTEN;
        s_rx_throttled = 1u;
    }
}

size_t dysan_port_link_read(uint8_t *buf, size_t max)
{
    if (buf == NULL || max == 0) {
        return 0;
    }
    uint32_t head = s_rx_head;
    COMPILER_BARRIER();
    uint32_t tail = s_rx_tail;
    size_t n = 0;
    while (n < max && tail != head) {
        buf[n++] = s_rx_ring[tail & (DYSAN_QEMU_RX_RING - 1u)];
        tail++;
    }
    COMPILER_BARRIER();
    s_rx_tail = tail;

    if (s_rx_throttled && n > 0) {
        uint32_t pm = mps2_irq_save();
        /* Unmask first: a byte arriving after this raises the interrupt; then take the one waiting. */
        UART_CTRL(UART0_BASE) |= UART_CTRL_RX_INTEN;
        if (rx_drain()) {
            s_rx_throttled = 0u;
        } else {
            UART_CTRL(UART0_BASE) &= ~UART_CTRL_RX_INTEN;
        }
        mps2_irq_restore(pm);
    }
    return n;
}

int dysan_port_link_write(const uint8_t *buf, size_t n)
{
    if (buf == NULL && n > 0) {
        return DYSAN_PORT_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        dysan_qemu_uart_putc(buf[i]);
    }
    return DYSAN_PORT_OK;
}

/* ---- time ------------------------------------------------------------------------------------------ */

static volatile uint64_t s_cyc_ticks; /* TIMER0 ticks accumulated up to its last anchor */
static volatile uint32_t s_t1_wraps;  /* TIMER1 wraps (2^32 ticks each) */

void TIMER0_Handler(void)
{
    TIMER_INTSTATUS(TIMER0_BASE) = 1u;
    s_cyc_ticks += (uint64_t)1u << 32;
}

void TIMER1_Handler(void)
{
    TIMER_INTSTATUS(TIMER1_BASE) = 1u;
    s_t1_wraps++;
}

/* VALUE of a down-counting timer with the wrap flag read consistently around it. */
static uint32_t timer_sample(uint32_t base, uint32_t *wrapped)
{
    uint32_t s1;
    uint32_t v;
    uint32_t s2;
    do {
        s1 = TIMER_INTSTATUS(base) & 1u;
        v = TIMER_VALUE(base);
        s2 = TIMER_INTSTATUS(base) & 1u;
    } while (s1 != s2);
    if (s1) {
        TIMER_INTSTATUS(base) = 1u; /* account for the pending wrap here; the ISR will not see it */
    }
    *wrapped = s1;
    return v;
}

uint64_t dysan_port_cycles(void)
{
    uint32_t pm = mps2_irq_save();
    uint32_t wrapped;
    uint32_t v = timer_sample(TIMER0_BASE, &wrapped);
    TIMER_VALUE(TIMER0_BASE) = 0xFFFFFFFFu; /* re-anchor: tick phase restarts at this instruction */
    uint64_t t = s_cyc_ticks + (uint32_t)(0xFFFFFFFFu - v) + ((uint64_t)wrapped << 32);
    s_cyc_ticks = t;
    mps2_irq_restore(pm);
    return t * MPS2_NS_PER_TICK;
}

uint32_t dysan_port_millis(void)
{
    uint32_t pm = mps2_irq_save();
    uint32_t wrapped;
    uint32_t v = timer_sample(TIMER1_BASE, &wrapped);
    if (wrapped) {
        s_t1_wraps++;
    }
    uint64_t ticks = ((uint64_t)s_t1_wraps << 32) + (uint32_t)(0u - v);
    mps2_irq_restore(pm);
    return (uint32_t)(ticks / MPS2_TICKS_PER_MS);
}

void SysTick_Handler(void)
{
    /* Only armed inside dysan_port_idle, to bound the sleep; waking up is all it is for. */
}

void dysan_port_idle(void)
{
    uint32_t pm = mps2_irq_save();
    /* With interrupts off, a byte that arrived since the caller last looked is still visible here, and a
     * pending interrupt ends WFI even while masked: no lost wake-up. */
    if (s_rx_head == s_rx_tail && !s_rx_throttled && !imu_pending()) {
        SYST_CSR = 0u;
        SYST_RVR = MPS2_TICKS_PER_MS * DYSAN_QEMU_IDLE_WAKE_MS - 1u;
        SYST_CVR = 0u;
        SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
        __asm volatile("dsb\n\twfi" : : : "memory");
        SYST_CSR = 0u;
    }
    mps2_irq_restore(pm);
}

/* ---- IMU: a recording played by a timer interrupt into an emulated FIFO --------------------------- */

#define DYSAN_QEMU_IMU_MAGIC 0x554D4944u /* "DIMU" little-endian; host/dysan/device/imu_image.py */
#define DYSAN_QEMU_IMU_HEADER 16u
#define DYSAN_QEMU_IMU_FIFO_MAX 64u

extern uint8_t __dysan_imu_start[], __dysan_imu_size[];

typedef struct {
    uint32_t magic;
    uint16_t rate_hz;
    uint16_t fifo_depth; /* 0: the default (32) */
    uint32_t n_samples;
    uint32_t reserved;
} imu_header_t;

static const int16_t *s_imu_samples; /* NULL: no recording (no IMU) */
static uint32_t s_imu_count, s_imu_depth, s_imu_period_ticks;
static volatile uint32_t s_imu_pos;  /* next recording sample (ISR) */
static volatile uint32_t s_imu_lost; /* overruns (ISR) */
static volatile uint32_t s_fifo_head, s_fifo_tail;
static int16_t s_fifo[DYSAN_QEMU_IMU_FIFO_MAX][DYSAN_N_CHANNELS];
static uint8_t s_imu_started;

static void imu_probe(void)
{
    imu_header_t h;
    memcpy(&h, __dysan_imu_start, sizeof h);
    const uint32_t cap = ((uint32_t)(uintptr_t)__dysan_imu_size - DYSAN_QEMU_IMU_HEADER) / (2u * DYSAN_N_CHANNELS);
    s_imu_samples = NULL;
    if (h.magic != DYSAN_QEMU_IMU_MAGIC || h.rate_hz == 0u || h.n_samples == 0u || h.n_samples > cap ||
        h.fifo_depth > DYSAN_QEMU_IMU_FIFO_MAX) {
        return; /* nothing loaded (zero RAM) or not a recording: no IMU, as before */
    }
    s_imu_samples = (const int16_t *)(const void *)(__dysan_imu_start + DYSAN_QEMU_IMU_HEADER);
    s_imu_count = h.n_samples;
    s_imu_depth = h.fifo_depth == 0u ? 32u : h.fifo_depth;
    s_imu_period_ticks = MPS2_SYSCLK_HZ / h.rate_hz;
}

void DUALTIMER_Handler(void)
{
    DUALTIMER1_INTCLR = 1u;
    const uint32_t pos = s_imu_pos;
    if (pos >= s_imu_count) {
        DUALTIMER1_CTRL = 0u; /* end of the recording: the sensor stops */
        return;
    }
    s_imu_pos = pos + 1u;
    const uint32_t head = s_fifo_head;
    if (head - s_fifo_tail >= s_imu_depth) {
        s_imu_lost = s_imu_lost + 1u; /* FIFO overrun: this sample is lost */
        return;
    }
    memcpy(s_fifo[head % DYSAN_QEMU_IMU_FIFO_MAX], &s_imu_samples[(size_t)pos * DYSAN_N_CHANNELS],
           sizeof s_fifo[0]);
    COMPILER_BARRIER();
    s_fifo_head = head + 1u;
}

static void imu_start(void)
{
    s_imu_started = 1u;
    s_imu_pos = 0u;
    DUALTIMER1_CTRL = 0u;
    DUALTIMER1_LOAD = s_imu_period_ticks - 1u; /* SP804: one period is LOAD + 1 ticks */
    DUALTIMER1_INTCLR = 1u;
    NVIC_ICPR0 = 1u << DUALTIMER_IRQn;
    NVIC_ISER0 = 1u << DUALTIMER_IRQn;
    DUALTIMER1_CTRL = DUALTIMER_CTRL_EN | DUALTIMER_CTRL_PERIODIC | DUALTIMER_CTRL_INTEN | DUALTIMER_CTRL_32BIT;
}

int dysan_port_imu_read(int16_t sample[6])
{
    if (s_imu_samples == NULL || sample == NULL) {
        return 0;
    }
    if (!s_imu_started) {
        imu_start();
        return 0;
    }
    const uint32_t tail = s_fifo_tail;
    if (tail == s_fifo_head) {
        return 0;
    }
    COMPILER_BARRIER();
    memcpy(sample, s_fifo[tail % DYSAN_QEMU_IMU_FIFO_MAX], sizeof s_fifo[0]);
    COMPILER_BARRIER();
    s_fifo_tail = tail + 1u;
    return 1;
}

uint32_t dysan_port_imu_lost(void) { return s_imu_lost; }

static int imu_pending(void) { return s_fifo_head != s_fifo_tail; }

/* ---- regions ----------------------------------------------------------------------------------------- */

typedef struct {
    uint8_t *base;
    size_t size;
} region_t;

static region_t region_get(dysan_region_t region)
{
    region_t r = {NULL, 0};
    switch (region) {
    case DYSAN_REGION_BUNDLE:
        r.base = __dysan_bundle_start;
        r.size = (size_t)(uintptr_t)__dysan_bundle_size;
        break;
    case DYSAN_REGION_RF:
        r.base = __dysan_rf_start;
        r.size = (size_t)(uintptr_t)__dysan_rf_size;
        break;
    case DYSAN_REGION_STATE:
        r.base = __dysan_state_start;
        r.size = (size_t)(uintptr_t)__dysan_state_size;
        break;
    default:
        break;
    }
    return r;
}

void dysan_qemu_mpu_init(void)
{
    /* Region 0: the megabyte below RAM is no-access. The application stack starts RAM and grows down into
     * it, so an overflow faults on its first store whatever the frame size (a small in-RAM guard can be
     * jumped over by a large frame; and QEMU silently ignores stores to this unimplemented range). */
    MPU_RNR = MPU_REGION_STACK_GUARD;
    MPU_RBAR = MPU_STACK_GUARD_BASE;
    MPU_RASR = MPU_RASR_ENABLE | MPU_RASR_SIZE(20u) | MPU_RASR_AP_NONE | MPU_RASR_XN;
    /* Region 1: the 1 MB "flash" is read-only (and executable), as on a chip. */
    MPU_RNR = MPU_REGION_FLASH_RO;
    MPU_RBAR = 0x00000000u;
    MPU_RASR = MPU_RASR_ENABLE | MPU_RASR_SIZE(20u) | MPU_RASR_AP_RO;
    /* Everything else keeps the default memory map (PRIVDEFENA). */
    MPU_CTRL = MPU_CTRL_ENABLE | MPU_CTRL_PRIVDEFENA;
    mps2_barrier();
}

/* The flash controller: write access to the flash only inside these, with interrupts off. */
static uint32_t flash_unlock(void)
{
    uint32_t pm = mps2_irq_save();
    MPU_RNR = MPU_REGION_FLASH_RO;
    MPU_RASR &= ~MPU_RASR_ENABLE;
    mps2_barrier();
    return pm;
}

static void flash_lock(uint32_t pm)
{
    MPU_RNR = MPU_REGION_FLASH_RO;
    MPU_RASR |= MPU_RASR_ENABLE;
    mps2_barrier();
    mps2_irq_restore(pm);
}

const uint8_t *dysan_port_region(dysan_region_t region, size_t *size)
{
    region_t r = region_get(region);
    if (size != NULL) {
        *size = r.size;
    }
    return r.base;
}

int dysan_port_region_erase(dysan_region_t region)
{
    region_t r = region_get(region);
    if (r.base == NULL) {
        return DYSAN_PORT_EINVAL;
    }
    uint32_t pm = flash_unlock();
    int rc = dysan_ramflash_erase(r.base, r.size);
    flash_lock(pm);
    if (rc == DYSAN_PORT_OK) {
        dysan_qemu_flash_mirror(region, r.base, 0, r.size);
    }
    return rc;
}

int dysan_port_region_erase_range(dysan_region_t region, size_t offset, size_t n)
{
    region_t r = region_get(region);
    if (r.base == NULL) {
        return DYSAN_PORT_EINVAL;
    }
    uint32_t pm = flash_unlock();
    int rc = dysan_ramflash_erase_range(r.base, r.size, offset, n);
    flash_lock(pm);
    if (rc == DYSAN_PORT_OK) {
        dysan_qemu_flash_mirror(region, r.base, offset, n);
    }
    return rc;
}

int dysan_port_region_write(dysan_region_t region, size_t offset, const uint8_t *data, size_t n)
{
    region_t r = region_get(region);
    if (r.base == NULL) {
        return DYSAN_PORT_EINVAL;
    }
    uint32_t pm = flash_unlock();
    int rc = dysan_ramflash_write(r.base, r.size, offset, data, n);
    flash_lock(pm);
    if (rc == DYSAN_PORT_OK) {
        dysan_qemu_flash_mirror(region, r.base, offset, n);
    }
    return rc;
}

int dysan_port_identity(uint8_t device_id[8], uint8_t key[32])
{
    return dysan_provision_parse(__dysan_provision_start, (size_t)(uintptr_t)__dysan_provision_size,
                                 device_id, key);
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0u) {
            return 0;
        }
    }
    return 1;
}

/* Fresh QEMU RAM is zero, fresh flash is 0xFF: erase what nothing was loaded into. */
static void factory_erase_blank(uint8_t *start, size_t n)
{
    if (n > 0 && all_zero(start, n)) {
        uint32_t pm = flash_unlock();
        (void)dysan_ramflash_erase(start, n);
        flash_lock(pm);
    }
}

/* ---- init ---------------------------------------------------------------------------------------------- */

void dysan_port_init(void)
{
    /* Regions: the BUNDLE tail after a linked default image, and RF / STATE. */
    uint8_t *bundle_end = __dysan_bundle_start + (size_t)(uintptr_t)__dysan_bundle_size;
    factory_erase_blank(__dysan_bundle_image_end, (size_t)(bundle_end - __dysan_bundle_image_end));
    factory_erase_blank(__dysan_rf_start, (size_t)(uintptr_t)__dysan_rf_size);
    factory_erase_blank(__dysan_state_start, (size_t)(uintptr_t)__dysan_state_size);
    dysan_qemu_flash_init(); /* STATE mirrored to a host file when qemu.py asked for it (flash_qemu.c) */

    /* Timers: free-running 32-bit down counters from 0xFFFFFFFF, interrupt only on wrap. */
    const uint32_t timers[2] = {TIMER0_BASE, TIMER1_BASE};
    for (unsigned i = 0; i < 2u; i++) {
        TIMER_CTRL(timers[i]) = 0u;
        TIMER_RELOAD(timers[i]) = 0xFFFFFFFFu;
        TIMER_INTSTATUS(timers[i]) = 1u;
        TIMER_CTRL(timers[i]) = TIMER_CTRL_EN | TIMER_CTRL_IRQEN;
    }
    s_cyc_ticks = 0u;
    s_t1_wraps = 0u;
    imu_probe();

    /* UART0: 8N1, TX polled, RX interrupt. */
    s_rx_head = 0u;
    s_rx_tail = 0u;
    s_rx_throttled = 0u;
    UART_CTRL(UART0_BASE) = 0u;
    UART_BAUDDIV(UART0_BASE) = MPS2_SYSCLK_HZ / DYSAN_QEMU_BAUD;
    UART_INTSTATUS(UART0_BASE) = UART_INT_RX | UART_INT_TX;
    UART_CTRL(UART0_BASE) = UART_CTRL_TX_EN | UART_CTRL_RX_EN | UART_CTRL_RX_INTEN;

    NVIC_ICPR0 = (1u << UART0_RX_IRQn) | (1u << TIMER0_IRQn) | (1u << TIMER1_IRQn);
    NVIC_ISER0 = (1u << UART0_RX_IRQn) | (1u << TIMER0_IRQn) | (1u << TIMER1_IRQn);
    __asm volatile("cpsie i" : : : "memory");
}
