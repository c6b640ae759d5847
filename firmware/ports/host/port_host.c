/*
 * port_host.c -- dysan_port.h as a POSIX process, so the whole firmware runs natively in fast tests.
 *
 * Link: TCP server on 127.0.0.1 (one client; the session ends when it disconnects) or stdin/stdout.
 *   The process exits(0) when the link reaches end-of-file, like a device being unplugged, so a test that
 *   closes its connection never leaves a process behind. Diagnostics go to stderr, never to the link.
 * Time: dysan_port_cycles() = CLOCK_MONOTONIC nanoseconds (unit: ns, resolution: the host clock's).
 *   dysan_port_millis() = milliseconds since dysan_port_init().
 * Regions: same capacities as the QEMU port, in RAM, or mapped from a file (--regions) so they survive a
 *   restart. Same NOR rules as QEMU (port_common.c): erase to 0xFF, writes 1 -> 0 only, bounds-checked.
 *   A new regions file starts erased, with the default bundle (section `dysan_bundle`, if linked) copied in.
 * Identity: a provisioning page file (--provision), the layout of host/dysan/device/provision.py.
 * Idle: waits up to DYSAN_HOST_IDLE_MS for link input (poll), instead of spinning.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dysan_port.h"
#include "dysan_provision.h"
#include "port_common.h"
#include "port_host.h"

/* Same capacities as firmware/ports/qemu-m4/mps2_an386.ld (a test checks they agree). */
#define HOST_BUNDLE_SIZE (676u * 1024u)
#define HOST_RF_SIZE (16u * 1024u)
#define HOST_STATE_SIZE (8u * 1024u) /* two pages (dysan_state.h) */
#define HOST_REGIONS_TOTAL (HOST_BUNDLE_SIZE + HOST_RF_SIZE + HOST_STATE_SIZE)

#ifndef DYSAN_HOST_IDLE_MS
#define DYSAN_HOST_IDLE_MS 10
#endif

/* The default bundle, when a generated source puts one in section `dysan_bundle` (GNU ld defines these
 * start/stop symbols for sections named like C identifiers; weak: NULL when there is none). */
extern const uint8_t __start_dysan_bundle[] __attribute__((weak));
extern const uint8_t __stop_dysan_bundle[] __attribute__((weak));

static int s_in_fd = -1;
static int s_out_fd = -1;
static int s_is_socket;
static uint8_t *s_regions;
static uint8_t s_regions_ram[HOST_REGIONS_TOTAL];
static uint8_t s_provision[DYSAN_PROVISION_PAGE_SIZE];
static size_t s_provision_len;
static struct timespec s_t0;

static void fatal(const char *what, const char *detail)
{
    fprintf(stderr, "dysan-host: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(2);
}

static void end_of_session(void)
{
    if (s_regions != NULL && s_regions != s_regions_ram) {
        (void)msync(s_regions, HOST_REGIONS_TOTAL, MS_SYNC);
    }
    exit(0);
}

/* ---- link --------------------------------------------------------------------------------------------- */

static void link_open_tcp(int port)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    if (ls < 0) {
        fatal("socket", strerror(errno));
    }
    int one = 1;
    (void)setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* loopback only */
    if (bind(ls, (struct sockaddr *)&addr, sizeof addr) != 0) {
        fatal("bind 127.0.0.1", strerror(errno));
    }
    if (listen(ls, 1) != 0) {
        fatal("listen", strerror(errno));
    }
    socklen_t len = sizeof addr;
    if (getsockname(ls, (struct sockaddr *)&addr, &len) != 0) {
        fatal("getsockname", strerror(errno));
    }
    fprintf(stderr, "dysan-host: listening on 127.0.0.1:%u\n", (unsigned)ntohs(addr.sin_port));
    fflush(stderr);
    int c;
    do {
        c = accept(ls, NULL, NULL);
    } while (c < 0 && errno == EINTR);
    if (c < 0) {
        fatal("accept", strerror(errno));
    }
    close(ls); /* one session per process */
    (void)setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    s_in_fd = c;
    s_out_fd = c;
    s_is_socket = 1;
}

size_t dysan_port_link_read(uint8_t *buf, size_t max)
{
    if (buf == NULL || max == 0 || s_in_fd < 0) {
        return 0;
    }
    struct pollfd p = {s_in_fd, POLLIN, 0};
    int r = poll(&p, 1, 0);
    if (r <= 0 || (p.revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
        return 0;
    }
    ssize_t n = read(s_in_fd, buf, max);
    if (n == 0) {
        end_of_session(); /* the host closed the link */
    }
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) {
            return 0;
        }
        end_of_session();
    }
    return (size_t)n;
}

int dysan_port_link_write(const uint8_t *buf, size_t n)
{
    if (buf == NULL && n > 0) {
        return DYSAN_PORT_EINVAL;
    }
    if (s_out_fd < 0) {
        return DYSAN_PORT_ELINK;
    }
    size_t done = 0;
    while (done < n) {
        ssize_t w = s_is_socket ? send(s_out_fd, buf + done, n - done, MSG_NOSIGNAL)
                                : write(s_out_fd, buf + done, n - done);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return DYSAN_PORT_ELINK;
        }
        done += (size_t)w;
    }
    return DYSAN_PORT_OK;
}

/* ---- time ---------------------------------------------------------------------------------------------- */

uint64_t dysan_port_cycles(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint32_t dysan_port_millis(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ms = ((int64_t)ts.tv_sec - (int64_t)s_t0.tv_sec) * 1000 + (ts.tv_nsec - s_t0.tv_nsec) / 1000000;
    return (uint32_t)ms;
}

void dysan_port_idle(void)
{
    if (s_in_fd < 0) {
        return;
    }
    struct pollfd p = {s_in_fd, POLLIN, 0};
    (void)poll(&p, 1, DYSAN_HOST_IDLE_MS);
}

int dysan_port_imu_read(int16_t sample[6])
{
    (void)sample;
    return 0;
}

/* ---- regions ------------------------------------------------------------------------------------------- */

static uint8_t *region_base(dysan_region_t region, size_t *size)
{
    size_t off = 0;
    size_t cap = 0;
    switch (region) {
    case DYSAN_REGION_BUNDLE:
        off = 0;
        cap = HOST_BUNDLE_SIZE;
        break;
    case DYSAN_REGION_RF:
        off = HOST_BUNDLE_SIZE;
        cap = HOST_RF_SIZE;
        break;
    case DYSAN_REGION_STATE:
        off = HOST_BUNDLE_SIZE + HOST_RF_SIZE;
        cap = HOST_STATE_SIZE;
        break;
    default:
        *size = 0;
        return NULL;
    }
    *size = cap;
    return s_regions != NULL ? s_regions + off : NULL;
}

const uint8_t *dysan_port_region(dysan_region_t region, size_t *size)
{
    size_t cap = 0;
    uint8_t *base = region_base(region, &cap);
    if (size != NULL) {
        *size = base != NULL ? cap : 0;
    }
    return base;
}

int dysan_port_region_erase(dysan_region_t region)
{
    size_t cap = 0;
    uint8_t *base = region_base(region, &cap);
    return base == NULL ? DYSAN_PORT_EINVAL : dysan_ramflash_erase(base, cap);
}

int dysan_port_region_erase_range(dysan_region_t region, size_t offset, size_t n)
{
    size_t cap = 0;
    uint8_t *base = region_base(region, &cap);
    return base == NULL ? DYSAN_PORT_EINVAL : dysan_ramflash_erase_range(base, cap, offset, n);
}

int dysan_port_region_write(dysan_region_t region, size_t offset, const uint8_t *data, size_t n)
{
    size_t cap = 0;
    uint8_t *base = region_base(region, &cap);
    return base == NULL ? DYSAN_PORT_EINVAL : dysan_ramflash_write(base, cap, offset, data, n);
}

static void regions_fresh(uint8_t *mem)
{
    memset(mem, 0xFF, HOST_REGIONS_TOTAL);
    if (__start_dysan_bundle != NULL && __stop_dysan_bundle != NULL) {
        size_t n = (size_t)(__stop_dysan_bundle - __start_dysan_bundle);
        if (n > HOST_BUNDLE_SIZE) {
            fatal("default bundle larger than the BUNDLE region", NULL);
        }
        memcpy(mem, __start_dysan_bundle, n);
    }
}

static void regions_open(const char *path)
{
    if (path == NULL) {
        s_regions = s_regions_ram;
        regions_fresh(s_regions);
        return;
    }
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0) {
        fatal(path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        fatal(path, strerror(errno));
    }
    int fresh = st.st_size == 0;
    if (!fresh && (size_t)st.st_size != HOST_REGIONS_TOTAL) {
        fatal(path, "regions file has the wrong size (not made by this build?)");
    }
    if (fresh && ftruncate(fd, (off_t)HOST_REGIONS_TOTAL) != 0) {
        fatal(path, strerror(errno));
    }
    void *m = mmap(NULL, HOST_REGIONS_TOTAL, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        fatal(path, strerror(errno));
    }
    close(fd);
    s_regions = (uint8_t *)m;
    if (fresh) {
        regions_fresh(s_regions);
    }
}

/* ---- identity ---------------------------------------------------------------------------------------- */

static void provision_load(const char *path)
{
    s_provision_len = 0;
    if (path == NULL) {
        return;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fatal(path, strerror(errno));
    }
    s_provision_len = fread(s_provision, 1, sizeof s_provision, f);
    fclose(f);
}

int dysan_port_identity(uint8_t device_id[8], uint8_t key[32])
{
    if (s_provision_len < DYSAN_PROVISION_HEADER_LEN) {
        return DYSAN_PORT_ENOID;
    }
    return dysan_provision_parse(s_provision, s_provision_len, device_id, key);
}

/* ---- init ---------------------------------------------------------------------------------------------- */

void dysan_port_init(void)
{
    clock_gettime(CLOCK_MONOTONIC, &s_t0);
    signal(SIGPIPE, SIG_IGN);
    provision_load(dysan_host_config.provision_path);
    regions_open(dysan_host_config.regions_path);
    if (dysan_host_config.link == DYSAN_HOST_LINK_TCP) {
        link_open_tcp(dysan_host_config.tcp_port);
    } else {
        s_in_fd = STDIN_FILENO;
        s_out_fd = STDOUT_FILENO;
        s_is_socket = 0;
    }
}
