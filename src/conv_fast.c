/* The fast convolution backend: picks, per call, one of three implementations of the math of
 * uakd/conv.h:
 *   - oneDNN (src/conv_dnnl.c) when the build has it;
 *   - the direct depthwise kernel on NCHW (src/conv_dw.c) for depthwise layers where it beats
 *     oneDNN (measured, 1 thread, batch 8: planes larger than 64x64, where oneDNN's reorders to and
 *     from its blocked layout cost more than the convolution; and backward-weights of kernels
 *     larger than 3x3, where oneDNN 2.6's depthwise kernel is 3x slower) and always without oneDNN;
 *   - im2col + OpenBLAS (src/conv_im2col.c) for everything else without oneDNN. */
#include "conv_fast.h"
#include "uakd/backend.h"

enum { FWD, BWD_DATA, BWD_WEIGHTS };

static int use_direct_dw(const uakd_conv2d_desc *d, int dir) {
    if (!uakd_conv2d_is_depthwise(d)) return 0;
#ifdef UAKD_HAVE_DNNL
    if (dir == BWD_WEIGHTS && d->kh * d->kw > 9) return 1;
    return uakd_conv2d_out_h(d) * uakd_conv2d_out_w(d) > 64 * 64;
#else
    (void)dir;
    return 1;
#endif
}

uakd_status uakd_conv2d_forward_fast(const uakd_conv2d_desc *d, const float *x, const float *w, const float *b, float *y) {
    if (use_direct_dw(d, FWD)) return uakd_conv2d_forward_dw(d, x, w, b, y);
#ifdef UAKD_HAVE_DNNL
    return uakd_conv2d_forward_dnnl(d, x, w, b, y);
#else
    return uakd_conv2d_forward_im2col(d, x, w, b, y);
#endif
}

uakd_status uakd_conv2d_backward_data_fast(const uakd_conv2d_desc *d, const float *dy, const float *w, float *dx) {
    if (use_direct_dw(d, BWD_DATA)) return uakd_conv2d_backward_data_dw(d, dy, w, dx);
#ifdef UAKD_HAVE_DNNL
    return uakd_conv2d_backward_data_dnnl(d, dy, w, dx);
#else
    return uakd_conv2d_backward_data_im2col(d, dy, w, dx);
#endif
}

uakd_status uakd_conv2d_backward_weights_fast(const uakd_conv2d_desc *d, const float *x, const float *dy, float *dw,
                                              float *db) {
    if (use_direct_dw(d, BWD_WEIGHTS)) return uakd_conv2d_backward_weights_dw(d, x, dy, dw, db);
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
