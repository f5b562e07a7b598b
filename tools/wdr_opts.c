/* Shared option helpers of the WDRNet commands (wdr_opts.h). */
#include "wdr_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "uakd/backend.h"

int wdr_parse_numbers(const char *cmd, const char *opt, const char *s, int n, double *out) {
    char buf[512];
    if (!s || snprintf(buf, sizeof buf, "%s", s) >= (int)sizeof buf) {
        fprintf(stderr, "uakd %s: %s expects %d comma-separated numbers\n", cmd, opt, n);
        return 0;
    }
    int k = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save), k++)
        if (k >= n || !uakd_cli_parse_double(cmd, opt, tok, -1e300, 1e300, &out[k])) break;
    if (k != n) {
        fprintf(stderr, "uakd %s: %s expects exactly %d comma-separated numbers, got '%s'\n", cmd, opt, n, s);
        return 0;
    }
    return 1;
}

int wdr_parse_ints(const char *cmd, const char *opt, const char *s, int max, long lo, long hi, int *out, int *n) {
    char buf[512];
    if (!s || snprintf(buf, sizeof buf, "%s", s) >= (int)sizeof buf) return 0;
    *n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long v;
        if (*n >= max) {
            fprintf(stderr, "uakd %s: %s takes at most %d values\n", cmd, opt, max);
            return 0;
        }
        if (!uakd_cli_parse_long(cmd, opt, tok, lo, hi, &v)) return 0;
        out[(*n)++] = (int)v;
    }
    if (*n == 0) fprintf(stderr, "uakd %s: %s needs at least one value\n", cmd, opt);
    return *n > 0;
}

int wdr_set_threads(const char *cmd, const char *s) {
    long t;
    if (!uakd_cli_parse_long(cmd, "--threads", s, 0, 1024, &t)) return 0;
    uakd_set_num_threads((int)t);
    return 1;
}

int wdr_set_backend(const char *cmd, const char *s) {
    uakd_backend b;
    if (uakd_backend_parse(s, &b) != UAKD_OK) {
        uakd_cli_report(cmd, UAKD_EINVAL);
        return 0;
    }
    uakd_set_backend(b);
    return 1;
}

volatile sig_atomic_t wdr_interrupted = 0;

static void on_sigint(int sig) {
    (void)sig;
    wdr_interrupted = 1;
    signal(SIGINT, SIG_DFL); /* a second Ctrl-C stops at once */
}

void wdr_catch_sigint(void) {
    wdr_interrupted = 0;
    signal(SIGINT, on_sigint);
}
