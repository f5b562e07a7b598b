/* CLI helpers: logging to stderr, status-to-exit-code mapping, strict number parsing. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void log_stderr(uakd_log_level level, const char *msg, void *user) {
    (void)user;
    static const char *names[] = {"error", "warning", "", "debug"};
    if (level == UAKD_LOG_INFO)
        fprintf(stderr, "uakd: %s\n", msg);
    else
        fprintf(stderr, "uakd: %s: %s\n", names[level], msg);
}

void uakd_cli_init_logging(void) {
    const char *env = getenv("UAKD_LOG");
    uakd_log_level max = UAKD_LOG_INFO;
    if (env && !strcmp(env, "debug")) max = UAKD_LOG_DEBUG;
    if (env && !strcmp(env, "quiet")) max = UAKD_LOG_WARN;
    uakd_set_log(log_stderr, NULL, max);
}

int uakd_cli_report(const char *cmd, uakd_status st) {
    if (st == UAKD_OK) return UAKD_EXIT_OK;
    fprintf(stderr, "uakd %s: %s: %s\n", cmd, uakd_status_name(st), uakd_last_error());
    switch (st) {
    case UAKD_EIO:
    case UAKD_EFORMAT: return UAKD_EXIT_INPUT;
    case UAKD_EINVAL: return UAKD_EXIT_USAGE;
    case UAKD_EINTERRUPTED: return UAKD_EXIT_INTERRUPTED;
    default: return UAKD_EXIT_FAILURE;
    }
}

int uakd_cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

int uakd_cli_find_sep(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--")) return i;
    return argc;
}

int uakd_cli_parse_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "uakd %s: %s expects an integer in [%ld, %ld], got '%s'\n", cmd, opt, lo, hi, s ? s : "");
        return 0;
    }
    *out = v;
    return 1;
}

int uakd_cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "uakd %s: %s expects a number in [%g, %g], got '%s'\n", cmd, opt, lo, hi, s ? s : "");
        return 0;
    }
    *out = v;
    return 1;
}
