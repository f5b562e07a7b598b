/* 2D convolution (cross-correlation, as in PyTorch) with stride, zero padding and groups:
 *
 *   y[n, o, i, j] = b[o] + sum_{c in group(o), p, q} w[o, c', p, q] * x[n, c, i*sh - ph + p, j*sw - pw + q]
 *
 * x: (N, C_in, H, W), w: (C_out, C_in/groups, KH, KW), b: (C_out) or NULL, y: (N, C_out, HO, WO),
 * HO = (H + 2 ph - KH) / sh + 1. All NCHW float32, contiguous.
 * Forward and backward-data assign their output; backward-weights accumulates into dw and db
 * (parameter gradients accumulate across uses, activation gradients are assigned).
 * The _ref functions are the plain reference; the undecorated ones dispatch on uakd_get_backend(). */
#ifndef UAKD_CONV_H
#define UAKD_CONV_H

#include "uakd/status.h"

typedef struct uakd_conv2d_desc {
    int n, c_in, h_in, w_in;
    int c_out, kh, kw;
    int stride_h, stride_w, pad_h, pad_w;
    int groups;
} uakd_conv2d_desc;

/* Checks that every field is positive (pads >= 0), groups divide both channel counts, and the
 * output is non-empty. */
uakd_status uakd_conv2d_check(const uakd_conv2d_desc *d);
int uakd_conv2d_out_h(const uakd_conv2d_desc *d);
int uakd_conv2d_out_w(const uakd_conv2d_desc *d);
/* Multiply-adds of one forward pass (for FLOP reports: FLOPs = 2 * macs). */
double uakd_conv2d_macs(const uakd_conv2d_desc *d);

void uakd_conv2d_forward_ref(const uakd_conv2d_desc *d, const float *x, const float *w, const float *b, float *y);
void uakd_conv2d_backward_data_ref(const uakd_conv2d_desc *d, const float *dy, const float *w, float *dx);
void uakd_conv2d_backward_weights_ref(const uakd_conv2d_desc *d, const float *x, const float *dy, float *dw, float *db);

uakd_status uakd_conv2d_forward(const uakd_conv2d_desc *d, const float *x, const float *w, const float *b, float *y);
uakd_status uakd_conv2d_backward_data(const uakd_conv2d_desc *d, const float *dy, const float *w, float *dx);
uakd_status uakd_conv2d_backward_weights(const uakd_conv2d_desc *d, const float *x, const float *dy, float *dw,
                                         float *db);

#endif
