/*
 * port_host.h -- configuration of the host (POSIX) port, filled by host_main.c before the application
 * runs. See port_host.c for the behaviour.
 */
#ifndef DYSAN_PORT_HOST_H
#define DYSAN_PORT_HOST_H

typedef enum {
    DYSAN_HOST_LINK_STDIO = 0, /* link bytes on stdin / stdout (diagnostics on stderr) */
    DYSAN_HOST_LINK_TCP = 1,   /* a TCP server on 127.0.0.1:port, one client (port 0: ephemeral) */
} dysan_host_link_t;

typedef struct {
    dysan_host_link_t link;
    int tcp_port;               /* 0..65535 */
    const char *provision_path; /* provisioning page file (provision.py layout), or NULL: unprovisioned */
    const char *regions_path;   /* file persisting the regions, or NULL: RAM only */
} dysan_host_config_t;

/* Set before dysan_port_init() runs (host_main.c does it from argv / the environment). */
extern dysan_host_config_t dysan_host_config;

/* Parses argv and the environment into dysan_host_config. Returns 0, 1 after printing --help, or -1 after
 * printing an error to stderr. */
int dysan_host_parse_args(int argc, char **argv);

#endif /* DYSAN_PORT_HOST_H */
