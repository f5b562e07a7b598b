/* Internal: the fast convolution kernels behind uakd/conv.h's dispatch (same contracts). */
#ifndef UAKD_CONV_FAST_H
#define UAKD_CONV_FAST_H

#include "uakd/conv.h"

uakd_status uakd_conv2d_forward_fast(const uakd_conv2d_desc *d, const float *x, const float *w, const float *b, float *y);
uakd_status uakd_conv2d_backward_data_fast(const uakd_conv2d_desc *d, const float *dy, const float *w, float *dx);
uakd_status uakd_conv2d_backward_weights_fast(const uakd_conv2d_desc *d, const float *x, const float *dy, float *dw,
                                              float *db);

#endif
