/* Process-wide backend selection and thread count. */
#include "uakd/backend.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static uakd_backend current_backend = UAKD_BACKEND_FAST;

void uakd_set_backend(uakd_backend b) { current_backend = b; }
uakd_backend uakd_get_backend(void) { return current_backend; }

const char *uakd_backend_name(uakd_backend b) { return b == UAKD_BACKEND_REF ? "ref" : "fast"; }

uakd_status uakd_backend_parse(const char *name, uakd_backend *out) {
    if (name && !strcmp(name, "ref")) *out = UAKD_BACKEND_REF;
    else if (name && !strcmp(name, "fast")) *out = UAKD_BACKEND_FAST;
    else return uakd_fail(UAKD_EINVAL, "backend '%s': use 'ref' or 'fast'", name ? name : "");
    return UAKD_OK;
}

void uakd_set_num_threads(int n) {
#ifdef _OPENMP
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

int uakd_get_num_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
