/*
 * host_main.c -- entry point of the host (POSIX) build: options, then the application.
 *
 *   dysan [--listen PORT | --stdio] [--provision FILE] [--regions FILE]
 *
 * The environment gives the same settings (DYSAN_LINK=stdio|tcp:PORT, DYSAN_PROVISION, DYSAN_REGIONS);
 * options win. The application's `main` is compiled as dysan_app_main (see port_common.h).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "port_common.h"
#include "port_host.h"

dysan_host_config_t dysan_host_config = {DYSAN_HOST_LINK_STDIO, 0, NULL, NULL};

static const char USAGE[] =
    "usage: %s [--listen PORT | --stdio] [--provision FILE] [--regions FILE]\n"
    "  --listen PORT     serve the link on TCP 127.0.0.1:PORT (0: pick a free port; the chosen one is\n"
    "                    printed to stderr as 'dysan-host: listening on 127.0.0.1:PORT')\n"
    "  --stdio           link on stdin/stdout (default)\n"
    "  --provision FILE  identity page (host/dysan/device/provision.py layout)\n"
    "  --regions FILE    persist the flash regions in FILE (created erased if missing)\n"
    "environment: DYSAN_LINK=stdio|tcp:PORT, DYSAN_PROVISION=FILE, DYSAN_REGIONS=FILE\n";

static int parse_port(const char *s, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0 || v > 65535) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_link(const char *s)
{
    if (strcmp(s, "stdio") == 0) {
        dysan_host_config.link = DYSAN_HOST_LINK_STDIO;
        return 0;
    }
    if (strncmp(s, "tcp:", 4) == 0 && parse_port(s + 4, &dysan_host_config.tcp_port) == 0) {
        dysan_host_config.link = DYSAN_HOST_LINK_TCP;
        return 0;
    }
    return -1;
}

int dysan_host_parse_args(int argc, char **argv)
{
    const char *prog = argc > 0 ? argv[0] : "dysan";
    const char *env = getenv("DYSAN_LINK");
    if (env != NULL && env[0] != '\0' && parse_link(env) != 0) {
        fprintf(stderr, "%s: bad DYSAN_LINK '%s' (want stdio or tcp:PORT)\n", prog, env);
        return -1;
    }
    env = getenv("DYSAN_PROVISION");
    if (env != NULL && env[0] != '\0') {
        dysan_host_config.provision_path = env;
    }
    env = getenv("DYSAN_REGIONS");
    if (env != NULL && env[0] != '\0') {
        dysan_host_config.regions_path = env;
    }

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf(USAGE, prog);
            return 1;
        } else if (strcmp(a, "--stdio") == 0) {
            dysan_host_config.link = DYSAN_HOST_LINK_STDIO;
        } else if (strcmp(a, "--listen") == 0 && val != NULL) {
            if (parse_port(val, &dysan_host_config.tcp_port) != 0) {
                fprintf(stderr, "%s: bad port '%s'\n", prog, val);
                return -1;
            }
            dysan_host_config.link = DYSAN_HOST_LINK_TCP;
            i++;
        } else if (strcmp(a, "--provision") == 0 && val != NULL) {
            dysan_host_config.provision_path = val;
            i++;
        } else if (strcmp(a, "--regions") == 0 && val != NULL) {
            dysan_host_config.regions_path = val;
            i++;
        } else {
            fprintf(stderr, "%s: unknown or incomplete option '%s'\n", prog, a);
            fprintf(stderr, USAGE, prog);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    int rc = dysan_host_parse_args(argc, argv);
    if (rc != 0) {
        return rc > 0 ? 0 : 2;
    }
    return dysan_app_main();
}
