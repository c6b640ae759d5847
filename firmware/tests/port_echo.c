/*
 * port_echo.c -- smoke application for a port, using nothing but dysan_port.h.
 *
 * Driven by tests/test_firmware_port.py over the link, on QEMU and on the host build. Commands are ASCII
 * lines ("\n"-terminated); every reply is one line. Numbers are decimal unless named hex.
 *
 *   ping                   -> pong <port> data=<an initialized static, to check .data was copied>
 *   echo N                 -> "echo N", then the next N raw bytes are echoed back as they arrive
 *   cyc N                  -> cyc N delta=<cycles around a 2N-instruction loop> empty=<cycles around nothing>
 *   busy N M               -> "busy start", busy-loops N iterations (2N instructions on Arm) without reading
 *                             the link, then "busy first=<bytes one link_read returned> total=<bytes, up
 *                             to M> fnv=<FNV-1a of them>" (M bytes expected within 10 s)
 *   region R               -> region R size=<capacity> null=<0|1>
 *   erase R                -> erase R rc=<rc>
 *   write R OFF N <N raw>  -> write R rc=<rc>            (N <= 1024)
 *   read R OFF N           -> read R rc=<0|-2> hex=<bytes> (N <= 256; -2: outside the region)
 *   sum R OFF N            -> sum R rc=<0|-2> fnv=<hex> ff=<1 if all bytes are 0xFF>
 *   id                     -> id rc=<rc> dev=<hex> keyfnv=<hex>   (a hash of the key, never the key)
 *   time                   -> time ms=<millis> cyc=<cycles>
 *   idlewait               -> idles until a byte arrives: idlewait calls=<idle calls> ms=<elapsed> byte=<b>
 *   imu                    -> imu rc=<rc>
 *   overflow N             -> recursion N levels deep (~264 B each) -> "overflow returned", unless the
 *                             port's stack guard stops it first (QEMU: a "!FAULT ... stack-overflow" line)
 *   wild                   -> stores through the BUNDLE region pointer (the port must refuse it)
 *   fpu                    -> fpu <int of a float computation> (faults if the FPU was not enabled)
 *   div D                  -> div <1000 / D> (D = 0: the port traps integer division by zero)
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dysan_port.h"

#ifndef DYSAN_PORT_NAME
#define DYSAN_PORT_NAME "unknown"
#endif

#define LINE_MAX_LEN 128u
#define WRITE_MAX 1024u
#define READ_MAX 256u
#define FLOOD_BUF 8192u

/* ---- output ------------------------------------------------------------------------------------------ */

static char s_out[2 * READ_MAX + 128];
static size_t s_out_len;

static void out_str(const char *s)
{
    while (*s && s_out_len < sizeof s_out) {
        s_out[s_out_len++] = *s++;
    }
}

static void out_u64(uint64_t v)
{
    char tmp[21];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0u && n < sizeof tmp);
    while (n > 0 && s_out_len < sizeof s_out) {
        s_out[s_out_len++] = tmp[--n];
    }
}

static void out_i32(int32_t v)
{
    if (v < 0) {
        out_str("-");
        out_u64((uint64_t)(-(int64_t)v));
    } else {
        out_u64((uint64_t)v);
    }
}

static void out_hex(const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n && s_out_len + 2 <= sizeof s_out; i++) {
        s_out[s_out_len++] = digits[p[i] >> 4];
        s_out[s_out_len++] = digits[p[i] & 15u];
    }
}

static void out_hex32(uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    out_hex(b, 4);
}

static void out_flush(void)
{
    out_str("\n");
    (void)dysan_port_link_write((const uint8_t *)s_out, s_out_len);
    s_out_len = 0;
}

/* ---- input ------------------------------------------------------------------------------------------- */

static uint8_t s_in[512];
static size_t s_in_len;
static size_t s_in_pos;

static int get_byte(void)
{
    if (s_in_pos == s_in_len) {
        s_in_len = dysan_port_link_read(s_in, sizeof s_in);
        s_in_pos = 0;
        if (s_in_len == 0) {
            return -1;
        }
    }
    return s_in[s_in_pos++];
}

static int get_byte_wait(void)
{
    int b;
    while ((b = get_byte()) < 0) {
        dysan_port_idle();
    }
    return b;
}

static uint32_t fnv1a(uint32_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 0x01000193u;
    }
    return h;
}
#define FNV_INIT 0x811C9DC5u

/* Parses up to `max` unsigned decimal arguments after the command word. Returns how many, -1 if malformed. */
static int parse_args(const char *s, uint32_t *args, int max)
{
    int n = 0;
    while (*s) {
        while (*s == ' ') {
            s++;
        }
        if (*s == '\0') {
            break;
        }
        if (n == max || *s < '0' || *s > '9') {
            return -1;
        }
        uint64_t v = 0;
        while (*s >= '0' && *s <= '9') {
            v = v * 10u + (uint64_t)(*s++ - '0');
            if (v > 0xFFFFFFFFu) {
                return -1;
            }
        }
        if (*s != ' ' && *s != '\0') {
            return -1;
        }
        args[n++] = (uint32_t)v;
    }
    return n;
}

/* ---- the known loop ---------------------------------------------------------------------------------- */

/* Exactly 2 instructions per iteration on Arm (subs + bne), n >= 1. */
__attribute__((noinline)) static void known_loop(uint32_t n)
{
#if defined(__arm__)
    __asm volatile("1:\n\tsubs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
#else
    volatile uint32_t i = n;
    while (i != 0u) {
        i = i - 1u;
    }
#endif
}

/* ---- commands ---------------------------------------------------------------------------------------- */

static uint8_t s_buf[FLOOD_BUF];

static void cmd_busy(uint32_t iters, uint32_t expect)
{
    out_str("busy start");
    out_flush();
    known_loop(iters > 0 ? iters : 1u);
    /* Whatever the port buffered while we were not reading, in one call. */
    size_t first = dysan_port_link_read(s_buf, sizeof s_buf);
    uint32_t h = fnv1a(FNV_INIT, s_buf, first);
    uint64_t total = first;
    uint32_t t0 = dysan_port_millis();
    while (total < expect && (uint32_t)(dysan_port_millis() - t0) < 10000u) {
        size_t want = expect - total < sizeof s_buf ? (size_t)(expect - total) : sizeof s_buf;
        size_t n = dysan_port_link_read(s_buf, want);
        if (n == 0) {
            dysan_port_idle();
            continue;
        }
        h = fnv1a(h, s_buf, n);
        total += n;
    }
    out_str("busy first=");
    out_u64(first);
    out_str(" total=");
    out_u64(total);
    out_str(" fnv=");
    out_hex32(h);
    out_flush();
}

static int region_span(uint32_t r, uint32_t off, uint32_t n, const uint8_t **p)
{
    size_t size = 0;
    const uint8_t *base = dysan_port_region((dysan_region_t)r, &size);
    if (base == NULL || off > size || n > size - off) {
        return -2;
    }
    *p = base + off;
    return 0;
}

static volatile uint32_t s_sink;
static uint32_t s_data_check = 0x5EED1234u; /* in .data: proves the startup copied it */
static volatile float s_fa = 1.5f;
static volatile float s_fb = 2.25f;

/* ~264 bytes of stack per level: `overflow 1000` needs ~260 KB, more than any port's stack. */
__attribute__((noinline)) static uint32_t recurse(uint32_t depth, uint32_t limit)
{
    volatile uint8_t frame[256];
    frame[0] = (uint8_t)depth;
    frame[255] = (uint8_t)(depth >> 8);
    if (depth >= limit) {
        return frame[0];
    }
    return recurse(depth + 1u, limit) + frame[0] + frame[255];
}

static void dispatch(char *line)
{
    char *sp = strchr(line, ' ');
    const char *rest = "";
    if (sp != NULL) {
        *sp = '\0';
        rest = sp + 1;
    }
    uint32_t a[3] = {0, 0, 0};
    int na = parse_args(rest, a, 3);
    if (na < 0) {
        out_str("err args");
        out_flush();
        return;
    }

    if (strcmp(line, "ping") == 0) {
        out_str("pong " DYSAN_PORT_NAME " data=");
        out_hex32(s_data_check);
        s_data_check++; /* writable, too */
        s_data_check--;
    } else if (strcmp(line, "echo") == 0 && na == 1) {
        out_str("echo ");
        out_u64(a[0]);
        out_flush();
        for (uint32_t i = 0; i < a[0]; i++) {
            uint8_t b = (uint8_t)get_byte_wait();
            (void)dysan_port_link_write(&b, 1);
        }
        return;
    } else if (strcmp(line, "cyc") == 0 && na == 1 && a[0] > 0) {
        uint64_t e0 = dysan_port_cycles();
        uint64_t e1 = dysan_port_cycles();
        uint64_t c0 = dysan_port_cycles();
        known_loop(a[0]);
        uint64_t c1 = dysan_port_cycles();
        out_str("cyc ");
        out_u64(a[0]);
        out_str(" delta=");
        out_u64(c1 - c0);
        out_str(" empty=");
        out_u64(e1 - e0);
    } else if (strcmp(line, "busy") == 0 && na == 2) {
        cmd_busy(a[0], a[1]);
        return;
    } else if (strcmp(line, "region") == 0 && na == 1) {
        size_t size = 0;
        const uint8_t *p = dysan_port_region((dysan_region_t)a[0], &size);
        out_str("region ");
        out_u64(a[0]);
        out_str(" size=");
        out_u64(size);
        out_str(p == NULL ? " null=1" : " null=0");
    } else if (strcmp(line, "erase") == 0 && na == 1) {
        out_str("erase ");
        out_u64(a[0]);
        out_str(" rc=");
        out_i32(dysan_port_region_erase((dysan_region_t)a[0]));
    } else if (strcmp(line, "write") == 0 && na == 3) {
        /* Always consume the N payload bytes, even when refusing them, to stay in sync. */
        uint32_t n = a[2];
        for (uint32_t i = 0; i < n; i++) {
            int b = get_byte_wait();
            if (i < WRITE_MAX) {
                s_buf[i] = (uint8_t)b;
            }
        }
        int rc = n > WRITE_MAX ? -100 : dysan_port_region_write((dysan_region_t)a[0], a[1], s_buf, n);
        out_str("write ");
        out_u64(a[0]);
        out_str(" rc=");
        out_i32(rc);
    } else if (strcmp(line, "read") == 0 && na == 3 && a[2] <= READ_MAX) {
        const uint8_t *p = NULL;
        int rc = region_span(a[0], a[1], a[2], &p);
        out_str("read ");
        out_u64(a[0]);
        out_str(" rc=");
        out_i32(rc);
        out_str(" hex=");
        if (rc == 0) {
            out_hex(p, a[2]);
        }
    } else if (strcmp(line, "sum") == 0 && na == 3) {
        const uint8_t *p = NULL;
        int rc = region_span(a[0], a[1], a[2], &p);
        uint32_t ff = 1;
        uint32_t h = FNV_INIT;
        if (rc == 0) {
            h = fnv1a(h, p, a[2]);
            for (uint32_t i = 0; i < a[2]; i++) {
                ff &= p[i] == 0xFFu;
            }
        }
        out_str("sum ");
        out_u64(a[0]);
        out_str(" rc=");
        out_i32(rc);
        out_str(" fnv=");
        out_hex32(h);
        out_str(ff ? " ff=1" : " ff=0");
    } else if (strcmp(line, "id") == 0) {
        uint8_t dev[8];
        uint8_t key[32];
        memset(dev, 0, sizeof dev);
        memset(key, 0, sizeof key);
        int rc = dysan_port_identity(dev, key);
        out_str("id rc=");
        out_i32(rc);
        out_str(" dev=");
        out_hex(dev, sizeof dev);
        out_str(" keyfnv=");
        out_hex32(fnv1a(FNV_INIT, key, sizeof key));
        memset(key, 0, sizeof key);
    } else if (strcmp(line, "time") == 0) {
        out_str("time ms=");
        out_u64(dysan_port_millis());
        out_str(" cyc=");
        out_u64(dysan_port_cycles());
    } else if (strcmp(line, "idlewait") == 0) {
        uint32_t t0 = dysan_port_millis();
        uint32_t calls = 0;
        int b;
        while ((b = get_byte()) < 0) {
            dysan_port_idle();
            calls++;
        }
        out_str("idlewait calls=");
        out_u64(calls);
        out_str(" ms=");
        out_u64(dysan_port_millis() - t0);
        out_str(" byte=");
        out_u64((uint32_t)b);
    } else if (strcmp(line, "fpu") == 0) {
        float x = s_fa * s_fb + s_fa / s_fb; /* 3.375 + 0.6667 */
        out_str("fpu ");
        out_u64((uint64_t)(x * 1000.0f));
    } else if (strcmp(line, "div") == 0 && na == 1) {
        volatile uint32_t d = a[0];
        out_str("div ");
        out_u64(1000u / d);
    } else if (strcmp(line, "imu") == 0) {
        int16_t s[6];
        out_str("imu rc=");
        out_i32(dysan_port_imu_read(s));
    } else if (strcmp(line, "overflow") == 0 && na == 1) {
        s_sink = recurse(0, a[0]);
        out_str("overflow returned");
    } else if (strcmp(line, "wild") == 0) {
        size_t size = 0;
        uint8_t *p = (uint8_t *)(uintptr_t)dysan_port_region(DYSAN_REGION_BUNDLE, &size);
        if (p != NULL && size > 0) {
            *(volatile uint8_t *)p = 0x00u;
        }
        out_str("wild stored");
    } else {
        out_str("err unknown ");
        out_str(line);
    }
    out_flush();
}

int main(void)
{
    dysan_port_init();
    out_str("port_echo ready " DYSAN_PORT_NAME);
    out_flush();

    char line[LINE_MAX_LEN + 1];
    size_t len = 0;
    int overlong = 0;
    for (;;) {
        int b = get_byte_wait();
        if (b == '\r') {
            continue;
        }
        if (b != '\n') {
            if (len < LINE_MAX_LEN) {
                line[len++] = (char)b;
            } else {
                overlong = 1;
            }
            continue;
        }
        line[len] = '\0';
        if (overlong) {
            out_str("err toolong");
            out_flush();
        } else if (len > 0) {
            dispatch(line);
        }
        len = 0;
        overlong = 0;
    }
}
