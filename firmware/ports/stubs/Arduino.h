/* Stand-in for the Arduino core API subset the board ports use (type-checking only; see README.md). */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HIGH 1
#define LOW 0
#define OUTPUT 1
unsigned long millis(void);
unsigned long micros(void);
void delay(unsigned long ms);
void yield(void);
void noInterrupts(void);
void interrupts(void);
void pinMode(uint8_t pin, uint8_t mode);
void digitalWrite(uint8_t pin, uint8_t value);

class StubSerial {
public:
    void begin(unsigned long baud);
    int available(void);
    int read(void);
    size_t write(const uint8_t *buf, size_t n);
    size_t println(const char *s);
    size_t readBytes(uint8_t *buf, size_t n);
    size_t setRxBufferSize(size_t n);
    explicit operator bool() const;
};
extern StubSerial Serial;

#if defined(ARDUINO_ARCH_MBED) || defined(ARDUINO_NRF52_ADAFRUIT)
/* CMSIS core_cm4.h subset */
typedef struct { volatile uint32_t CTRL; volatile uint32_t CYCCNT; } DWT_Type;
typedef struct { volatile uint32_t DEMCR; } CoreDebug_Type;
#define DWT ((DWT_Type *)0xE0001000UL)
#define CoreDebug ((CoreDebug_Type *)0xE000EDF0UL)
#define DWT_CTRL_CYCCNTENA_Msk (1UL)
#define CoreDebug_DEMCR_TRCENA_Msk (1UL << 24)
#endif
#if defined(ARDUINO_NRF52_ADAFRUIT)
#define PIN_LSM6DS3TR_C_POWER 15
#endif
#if defined(ESP32)
class EspClass { public: uint32_t getCycleCount(void); };
extern EspClass ESP;
typedef struct { int owner; } portMUX_TYPE;
#define portMUX_INITIALIZER_UNLOCKED {0}
void portENTER_CRITICAL(portMUX_TYPE *m);
void portEXIT_CRITICAL(portMUX_TYPE *m);
#define SET_LOOP_TASK_STACK_SIZE(sz) size_t getArduinoLoopTaskStackSize(void) { return sz; }
#endif
