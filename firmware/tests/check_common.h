/*
 * check_common.h -- the check counter of the host unit-test programs (tests/test_*.c, tests/port_test_*.c):
 * every CHECK counts, a failing one prints "FAIL file:line: <condition or message>" (the first
 * CHECK_MAX_PRINTED of them: a loop of checks gone wrong does not flood the log) and the run goes on, and
 * check_summary() prints "ok <n> checks" (exit status 0) or "<name>: FAILED (<f> of <n> checks)" (1), the
 * lines the pytest drivers read. One program = one translation unit including this header.
 */
#ifndef CHECK_COMMON_H
#define CHECK_COMMON_H

#include <stdio.h>

#ifndef CHECK_MAX_PRINTED
#define CHECK_MAX_PRINTED 50
#endif

static int s_checks;
static int s_failures;

/* CHECK_MSG(cond, printf format, args...): the message instead of the condition's text. */
#define CHECK_MSG(cond, ...)                                                                                 \
    do {                                                                                                     \
        s_checks++;                                                                                          \
        if (!(cond)) {                                                                                       \
            if (++s_failures <= CHECK_MAX_PRINTED) {                                                         \
                printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                  \
                printf(__VA_ARGS__);                                                                         \
                printf("\n");                                                                                \
            }                                                                                                \
        }                                                                                                    \
    } while (0)

#define CHECK(cond) CHECK_MSG(cond, "%s", #cond)

/* The last line of the program's output; returns main's exit status. */
static inline int check_summary(const char *name)
{
    if (s_failures != 0) {
        printf("%s: FAILED (%d of %d checks)\n", name, s_failures, s_checks);
        return 1;
    }
    printf("ok %d checks\n", s_checks);
    return 0;
}

#endif /* CHECK_COMMON_H */
