/* Backend dispatch for 2D convolution: validates the descriptor, then runs the reference kernel
 * or the fast one (src/conv_fast.c) according to uakd_get_backend(). */
#include "uakd/backend.h"
#include "uakd/conv.h"
#include "conv_fast.h"

uakd_status uakd_conv2d_forward(const uakd_conv2d_desc *d, const float *x, const float *w, const float *b, float *y) {
    UAKD_TRY(uakd_conv2d_check(d));
    if (uakd_get_backend() == UAKD_BACKEND_FAST) return uakd_conv2d_forward_fast(d, x, w, b, y);
    uakd_conv2d_forward_ref(d, x, w, b, y);
    return UAKD_OK;
}

uakd_status uakd_conv2d_backward_data(const uakd_conv2d_desc *d, const float *dy, const float *w, float *dx) {
    UAKD_TRY(uakd_conv2d_check(d));
    if (uakd_get_backend() == UAKD_BACKEND_FAST) return uakd_conv2d_backward_data_fast(d, dy, w, dx);
    uakd_conv2d_backward_data_ref(d, dy, w, dx);
    return UAKD_OK;
}

uakd_status uakd_conv2d_backward_weights(const uakd_conv2d_desc *d, const float *x, const float *dy, float *dw,
                                         float *db) {
    UAKD_TRY(uakd_conv2d_check(d));
    if (uakd_get_backend() == UAKD_BACKEND_FAST) return uakd_conv2d_backward_weights_fast(d, x, dy, dw, db);
    uakd_conv2d_backward_weights_ref(d, x, dy, dw, db);
    return UAKD_OK;
}
