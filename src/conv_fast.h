/* Internal: the fast convolution kernels behind uakd/conv.h's dispatch (same contracts).
 * _fast picks an implementation: the direct depthwise kernel (src/conv_dw.c) for depthwise layers;
 * otherwise oneDNN (src/conv_dnnl.c) when the build has it, else im2col + OpenBLAS (src/conv_im2col.c). */
#ifndef UAKD_CONV_FAST_H
#define UAKD_CONV_FAST_H

#include "uakd/conv.h"

/* UAKD_OMP(omp parallel for) expands to that pragma under OpenMP and to nothing without it. */
#ifdef _OPENMP
#define UAKD_OMP(directive) _Pragma(#directive)
#else
#define UAKD_OMP(directive)
#endif

uakd_status uakd_conv2d_forward_fast(const uakd_conv2d_desc *d, const float *x, const float *w, const float *b, float *y);
uakd_status uakd_conv2d_backward_data_fast(const uakd_conv2d_desc *d, const float *dy, const float *w, float *dx);
uakd_status uakd_conv2d_backward_weights_fast(const uakd_conv2d_desc *d, const float *x, const float *dy, float *dw,
                                              float *db);

uakd_status uakd_conv2d_forward_im2col(const uakd_conv2d_desc *d, const float *x, const float *w, const float *b,
                                       float *y);
uakd_status uakd_conv2d_backward_data_im2col(const uakd_conv2d_desc *d, const float *dy, const float *w, float *dx);
uakd_status uakd_conv2d_backward_weights_im2col(const uakd_conv2d_desc *d, const float *x, const float *dy, float *dw,
                                                float *db);

/* Depthwise (groups == c_in == c_out), direct on NCHW: src/conv_dw.c. */
int uakd_conv2d_is_depthwise(const uakd_conv2d_desc *d);
uakd_status uakd_conv2d_forward_dw(const uakd_conv2d_desc *d, const float *x, const float *w, const float *b, float *y);
uakd_status uakd_conv2d_backward_data_dw(const uakd_conv2d_desc *d, const float *dy, const float *w, float *dx);
uakd_status uakd_conv2d_backward_weights_dw(const uakd_conv2d_desc *d, const float *x, const float *dy, float *dw,
                                            float *db);

#ifdef UAKD_HAVE_DNNL
uakd_status uakd_conv2d_forward_dnnl(const uakd_conv2d_desc *d, const float *x, const float *w, const float *b,
                                     float *y);
uakd_status uakd_conv2d_backward_data_dnnl(const uakd_conv2d_desc *d, const float *dy, const float *w, float *dx);
uakd_status uakd_conv2d_backward_weights_dnnl(const uakd_conv2d_desc *d, const float *x, const float *dy, float *dw,
                                              float *db);
/* Frees the primitive cache, scratch buffers, stream and engine (recreated on next use). */
void uakd_conv2d_dnnl_release(void);
#endif

#endif
