/* Status codes, the thread-local last-error message and the logging callback.
 *
 * Every fallible library call returns a uakd_status. On failure it also leaves a message
 * (retrieved with uakd_last_error) naming the file, the field and the likely fix. The library
 * never prints, exits or aborts; it logs through a callback the caller installs. */
#ifndef UAKD_STATUS_H
#define UAKD_STATUS_H

#include <stdarg.h>

typedef enum uakd_status {
    UAKD_OK = 0,
    UAKD_EINVAL,       /* an argument or input value is out of range or inconsistent */
    UAKD_EIO,          /* a file could not be opened, read or written */
    UAKD_EFORMAT,      /* a file's content is malformed, truncated or of the wrong kind */
    UAKD_ENOMEM,       /* an allocation failed or a size overflowed */
    UAKD_EDEGENERATE,  /* numerically degenerate input (e.g. collinear points for PnP) */
    UAKD_EUNSUPPORTED, /* valid but not supported by this build or this version */
    UAKD_EINTERRUPTED, /* the caller asked the operation to stop */
} uakd_status;

/* Short name of a status ("invalid argument", ...). */
const char *uakd_status_name(uakd_status st);

/* Records a formatted message as the calling thread's last error and returns st.
 * Typical use: return uakd_fail(UAKD_EFORMAT, "%s: field \"cam_K\": expected 9 numbers", path); */
uakd_status uakd_fail(uakd_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Prepends context ("while loading model: ") to the current last-error message; returns st. */
uakd_status uakd_fail_context(uakd_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The calling thread's last error message ("" when none). */
const char *uakd_last_error(void);
void uakd_clear_error(void);

/* Propagates a failing status to the caller. */
#define UAKD_TRY(expr)                                  \
    do {                                                \
        uakd_status uakd_try_st_ = (expr);              \
        if (uakd_try_st_ != UAKD_OK) return uakd_try_st_; \
    } while (0)

typedef enum uakd_log_level {
    UAKD_LOG_ERROR = 0,
    UAKD_LOG_WARN = 1,
    UAKD_LOG_INFO = 2,
    UAKD_LOG_DEBUG = 3,
} uakd_log_level;

typedef void (*uakd_log_fn)(uakd_log_level level, const char *message, void *user);

/* Installs the log callback (NULL silences the library, the default) and the most verbose level
 * that is delivered. */
void uakd_set_log(uakd_log_fn fn, void *user, uakd_log_level max_level);

/* Sends a message to the log callback if one is installed. */
void uakd_log(uakd_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
