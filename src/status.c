/* Status names, the thread-local last-error message, and the logging callback. */
#include "uakd/status.h"

#include <stdio.h>
#include <string.h>

#define UAKD_ERRMSG_CAP 1024

static _Thread_local char last_error[UAKD_ERRMSG_CAP];

static uakd_log_fn log_fn;
static void *log_user;
static uakd_log_level log_max = UAKD_LOG_INFO;

const char *uakd_status_name(uakd_status st) {
    switch (st) {
    case UAKD_OK: return "ok";
    case UAKD_EINVAL: return "invalid argument";
    case UAKD_EIO: return "i/o error";
    case UAKD_EFORMAT: return "malformed input";
    case UAKD_ENOMEM: return "out of memory";
    case UAKD_EDEGENERATE: return "degenerate input";
    case UAKD_EUNSUPPORTED: return "unsupported";
    case UAKD_EINTERRUPTED: return "interrupted";
    }
    return "unknown status";
}

uakd_status uakd_fail(uakd_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return st;
}

uakd_status uakd_fail_context(uakd_status st, const char *fmt, ...) {
    char old[UAKD_ERRMSG_CAP];
    memcpy(old, last_error, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof last_error) {
        size_t room = sizeof last_error - (size_t)n - 1, len = strlen(old);
        memcpy(last_error + n, old, len < room ? len : room);
        last_error[n + (len < room ? len : room)] = '\0';
    }
    return st;
}

const char *uakd_last_error(void) { return last_error; }

void uakd_clear_error(void) { last_error[0] = '\0'; }

void uakd_set_log(uakd_log_fn fn, void *user, uakd_log_level max_level) {
    log_fn = fn;
    log_user = user;
    log_max = max_level;
}

void uakd_log(uakd_log_level level, const char *fmt, ...) {
    if (!log_fn || level > log_max) return;
    char msg[UAKD_ERRMSG_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_fn(level, msg, log_user);
}
