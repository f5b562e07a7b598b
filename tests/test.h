/* Minimal test harness shared by every tests/test_*.c program.
 *
 * A test is a void function; CHECK* macros record failures with file:line and keep going.
 * RUN(fn) runs one test and counts it as passed when none of its checks failed. TEST_END()
 * prints "N passed, N failed" and returns the exit code. Test programs run from the repository
 * root; test_shared() builds paths into ../shared (override with UAKD_SHARED). */
#ifndef UAKD_TEST_H
#define UAKD_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failed_checks_, test_passed_, test_failed_, test_skipped_;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);    \
            test_failed_checks_++;                                               \
        }                                                                        \
    } while (0)

#define CHECK_MSG(cond, ...)                                                     \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                        \
            fprintf(stderr, "\n");                                               \
            test_failed_checks_++;                                               \
        }                                                                        \
    } while (0)

/* |a - b| <= tol, and both finite. */
#define CHECK_NEAR(a, b, tol)                                                           \
    do {                                                                                \
        double ca_ = (double)(a), cb_ = (double)(b), ct_ = (double)(tol);               \
        if (!(isfinite(ca_) && isfinite(cb_) && fabs(ca_ - cb_) <= ct_)) {              \
            fprintf(stderr, "  FAIL %s:%d: %s = %.9g vs %s = %.9g (tol %.3g)\n", __FILE__, \
                    __LINE__, #a, ca_, #b, cb_, ct_);                                   \
            test_failed_checks_++;                                                      \
        }                                                                               \
    } while (0)

/* A call returning uakd_status must succeed; prints the library's message otherwise. */
#define CHECK_OK(expr)                                                                   \
    do {                                                                                 \
        uakd_status cs_ = (expr);                                                        \
        if (cs_ != UAKD_OK) {                                                            \
            fprintf(stderr, "  FAIL %s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #expr,   \
                    uakd_status_name(cs_), uakd_last_error());                           \
            test_failed_checks_++;                                                       \
        }                                                                                \
    } while (0)

/* A call must fail with the given status (and leave a message). */
#define CHECK_FAILS(expr, status)                                                        \
    do {                                                                                 \
        uakd_clear_error();                                                              \
        uakd_status cs_ = (expr);                                                        \
        if (cs_ != (status) || uakd_last_error()[0] == '\0') {                           \
            fprintf(stderr, "  FAIL %s:%d: %s -> %s (expected %s, message \"%s\")\n",    \
                    __FILE__, __LINE__, #expr, uakd_status_name(cs_),                    \
                    uakd_status_name(status), uakd_last_error());                        \
            test_failed_checks_++;                                                       \
        }                                                                                \
    } while (0)

#define RUN(fn)                                                           \
    do {                                                                  \
        int before_ = test_failed_checks_;                                \
        fn();                                                             \
        if (test_failed_checks_ == before_) {                             \
            test_passed_++;                                               \
            fprintf(stderr, "ok   %s\n", #fn);                            \
        } else {                                                          \
            test_failed_++;                                               \
            fprintf(stderr, "FAIL %s\n", #fn);                            \
        }                                                                 \
    } while (0)

/* Declares a test skipped (e.g. optional backend absent); says why, loudly. */
#define SKIP(fn, why)                                                     \
    do {                                                                  \
        test_skipped_++;                                                  \
        fprintf(stderr, "skip %s: %s\n", #fn, why);                       \
    } while (0)

#define TEST_END()                                                                        \
    (printf("%d passed, %d failed, %d skipped\n", test_passed_, test_failed_, test_skipped_), \
     test_failed_ ? 1 : 0)

/* Path inside the shared fixtures directory (static buffer, one per call site is enough). */
static inline const char *test_shared(const char *rel) {
    static char buf[8][1024];
    static int next;
    const char *root = getenv("UAKD_SHARED");
    if (!root || !*root) root = "../shared";
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", root, rel);
    return b;
}

/* A scratch directory for files a test writes (created by the test runner). */
static inline const char *test_tmp(const char *rel) {
    static char buf[8][1024];
    static int next;
    const char *root = getenv("UAKD_TEST_TMP");
    if (!root || !*root) root = "/tmp";
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", root, rel);
    return b;
}

#endif
