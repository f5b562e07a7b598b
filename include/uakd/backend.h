/* Run-time choice of compute backend and thread count.
 *
 * UAKD_BACKEND_REF runs the plain C reference kernels (the ground truth of every test).
 * UAKD_BACKEND_FAST runs the optimised kernels (oneDNN where the build has it). The same tests run
 * on both. The setting is process-wide; change it only between training steps. */
#ifndef UAKD_BACKEND_H
#define UAKD_BACKEND_H

#include "uakd/status.h"

typedef enum uakd_backend {
    UAKD_BACKEND_REF = 0,
    UAKD_BACKEND_FAST = 1,
} uakd_backend;

void uakd_set_backend(uakd_backend b);
uakd_backend uakd_get_backend(void);
/* "ref" or "fast" -> backend; UAKD_EINVAL otherwise. */
uakd_status uakd_backend_parse(const char *name, uakd_backend *out);
const char *uakd_backend_name(uakd_backend b);

/* Threads used by OpenMP regions and oneDNN (n <= 0: all cores). No-op without OpenMP. */
void uakd_set_num_threads(int n);
int uakd_get_num_threads(void);

/* Frees what the fast backend caches (oneDNN primitives per shape, scratch buffers, engine); they
 * are recreated on the next call. Also runs at exit. Not to be called while another thread runs a
 * convolution. */
void uakd_backend_release(void);

#endif
