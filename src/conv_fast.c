/* The fast convolution backend: chooses, per call, between oneDNN (when the build has it) and
 * im2col + OpenBLAS. Both compute exactly the math of uakd/conv.h. */
#include "conv_fast.h"
#include "uakd/backend.h"

uakd_status uakd_conv2d_forward_fast(const uakd_conv2d_desc *d, const float *x, const float *w, const float *b, float *y) {
#ifdef UAKD_HAVE_DNNL
    return uakd_conv2d_forward_dnnl(d, x, w, b, y);
#else
    return uakd_conv2d_forward_im2col(d, x, w, b, y);
#endif
}

uakd_status uakd_conv2d_backward_data_fast(const uakd_conv2d_desc *d, const float *dy, const float *w, float *dx) {
#ifdef UAKD_HAVE_DNNL
    return uakd_conv2d_backward_data_dnnl(d, dy, w, dx);
#else
    return uakd_conv2d_backward_data_im2col(d, dy, w, dx);
#endif
}

uakd_status uakd_conv2d_backward_weights_fast(const uakd_conv2d_desc *d, const float *x, const float *dy, float *dw,
                                              float *db) {
#ifdef UAKD_HAVE_DNNL
    return uakd_conv2d_backward_weights_dnnl(d, x, dy, dw, db);
#else
    return uakd_conv2d_backward_weights_im2col(d, x, dy, dw, db);
#endif
}

void uakd_backend_release(void) {
#ifdef UAKD_HAVE_DNNL
    uakd_conv2d_dnnl_release();
#endif
}
