/* Layer kernels other than convolution (see uakd/conv.h): forward and backward side by side.
 *
 * All tensors are float32, NCHW, contiguous; "hw" is H*W. Conventions shared by every kernel:
 *   - forward writes (assigns) its output;
 *   - backward ASSIGNS the gradient of its input(s) (scatter kernels zero them first) and
 *     ACCUMULATES (+=) into parameter gradients (dgamma, dbeta, ...);
 *   - reductions accumulate in double, in a fixed order per output element, so results do not
 *     depend on the number of OpenMP threads (each thread owns whole channels / images).
 * These kernels are the same on both backends (they are memory-bound loops; OpenMP parallel over
 * channels or images); only convolution has a separate fast kernel. The graph (uakd/net.h) calls
 * them; they can also be used directly. */
#ifndef UAKD_LAYERS_H
#define UAKD_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* ---- batch norm over (N, H, W) per channel ----
 * train:  mean_c, var_c = biased batch statistics; y = gamma (x - mean) / sqrt(var + eps) + beta;
 *         running_mean = (1 - m) running_mean + m mean, running_var = (1 - m) running_var
 *         + m var * NHW/(NHW - 1) (unbiased, like PyTorch; m = momentum, 0.1 in PyTorch).
 *         Saves mean (C) and invstd = 1/sqrt(var + eps) (C) for backward.
 * infer:  y = gamma (x - running_mean) / sqrt(running_var + eps) + beta.
 * x, y: (N, C, HW). */
void uakd_bn_forward_train(int n, int c, int hw, const float *x, const float *gamma, const float *beta, float eps,
                           float momentum, float *running_mean, float *running_var, float *y, float *save_mean,
                           float *save_invstd);
void uakd_bn_forward_infer(int n, int c, int hw, const float *x, const float *gamma, const float *beta,
                           const float *running_mean, const float *running_var, float eps, float *y);
/* Backward of either mode. training != 0: batch-statistics backward using the saved mean/invstd,
 *   dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)), xhat = (x - mean) invstd;
 * training == 0: statistics are constants (mean, invstd from the running stats passed in the same
 * slots), dx = gamma invstd dy. Both: dgamma += sum dy xhat, dbeta += sum dy. */
void uakd_bn_backward(int n, int c, int hw, int training, const float *x, const float *gamma, const float *mean,
                      const float *invstd, const float *dy, float *dx, float *dgamma, float *dbeta);

/* ---- group norm: per image and group of C/G channels, statistics over (C/G, H, W) ----
 * y = gamma_c (x - mean_ng) invstd_ng + beta_c; saves mean, invstd: (N, G). */
void uakd_gn_forward(int n, int c, int hw, int groups, const float *x, const float *gamma, const float *beta,
                     float eps, float *y, float *save_mean, float *save_invstd);
void uakd_gn_backward(int n, int c, int hw, int groups, const float *x, const float *gamma, const float *mean,
                      const float *invstd, const float *dy, float *dx, float *dgamma, float *dbeta);

/* ---- point-wise activations over count elements ----
 * relu: max(x, 0); leaky: x > 0 ? x : slope x; silu: x sigmoid(x); sigmoid: 1/(1 + e^-x).
 * Backward reads x (and y for sigmoid); at x == 0 relu/leaky use the x <= 0 branch, like PyTorch. */
typedef enum uakd_act {
    UAKD_ACT_RELU = 0,
    UAKD_ACT_LEAKY,
    UAKD_ACT_SILU,
    UAKD_ACT_SIGMOID,
} uakd_act;
void uakd_act_forward(uakd_act kind, float slope, int64_t count, const float *x, float *y);
void uakd_act_backward(uakd_act kind, float slope, int64_t count, const float *x, const float *y, const float *dy,
                       float *dx);

/* ---- max pooling, k x k window, stride s, padding p (padding never wins: it is -inf) ----
 * out = (H + 2p - k)/s + 1 (floor, like PyTorch's default). Saves argmax (flat index into the
 * image plane H*W) per output: (N, C, HO, WO). Ties: the first maximum in row-major window order
 * wins and gets the whole gradient (PyTorch's CPU kernel does the same). argmax may be NULL
 * (inference). */
typedef struct uakd_pool_desc {
    int n, c, h, w, k, stride, pad;
} uakd_pool_desc;
int uakd_pool_out_h(const uakd_pool_desc *d);
int uakd_pool_out_w(const uakd_pool_desc *d);
void uakd_maxpool_forward(const uakd_pool_desc *d, const float *x, float *y, int32_t *argmax);
/* dx (N, C, H, W) = scatter-add of dy at argmax (assigned: zeroed first). */
void uakd_maxpool_backward(const uakd_pool_desc *d, const int32_t *argmax, const float *dy, float *dx);

/* ---- nearest-neighbour x2 upsampling: y[n,c,i,j] = x[n,c,i/2,j/2]; x: (N,C,H,W), y: (N,C,2H,2W) ----
 * backward: dx[i,j] = sum of the 2x2 block of dy. */
void uakd_upsample2_forward(int n, int c, int h, int w, const float *x, float *y);
void uakd_upsample2_backward(int n, int c, int h, int w, const float *dy, float *dx);

/* ---- global average pool: y[n,c] = mean_hw x[n,c,:]; x: (N,C,HW), y: (N,C) ---- */
void uakd_gap_forward(int n, int c, int hw, const float *x, float *y);
void uakd_gap_backward(int n, int c, int hw, const float *dy, float *dx);

/* ---- channel-wise multiply (squeeze-and-excitation): y[n,c,:] = x[n,c,:] s[n,c] ----
 * x: (N,C,HW), s: (N,C). backward: dx = dy s, ds[n,c] = sum_hw dy x (ds assigned). */
void uakd_cmul_forward(int n, int c, int hw, const float *x, const float *s, float *y);
void uakd_cmul_backward(int n, int c, int hw, const float *x, const float *s, const float *dy, float *dx, float *ds);

/* ---- bilinear sampling of K points per image from a feature map, zero outside ----
 * feat: (N, C, H, W); pts: (N, K, 2) as (x, y) in feature-grid coordinates where the centre of
 * cell (col, row) is (col, row): the value at (x, y) interpolates the four cells around it, and
 * a neighbour outside the map contributes zero. out: (N, C, K).
 * This equals torch.nn.functional.grid_sample(feat, g, mode='bilinear', padding_mode='zeros',
 * align_corners=False) with g = ((2x + 1)/W - 1, (2y + 1)/H - 1). A pixel u of an input image at
 * stride s (cell centres at u = s*col + (s-1)/2) maps to x = (u - (s-1)/2)/s.
 * backward: dfeat assigned (zeroed then scatter-added); dpts (N, K, 2) assigned: the derivative of
 * the bilinear interpolant, piecewise linear (at integer coordinates the one-sided derivative
 * of the cell containing the point, like PyTorch). Either output may be NULL to skip it. */
void uakd_sample_forward(int n, int c, int h, int w, int k, const float *feat, const float *pts, float *out);
void uakd_sample_backward(int n, int c, int h, int w, int k, const float *feat, const float *pts, const float *dout,
                          float *dfeat, float *dpts);

/* ---- fast normalised fusion (EfficientDet BiFPN) of m (2..UAKD_FUSE_MAX) same-shaped inputs ----
 * a_i = max(w_i, 0), s = eps + sum_j a_j, y = sum_i (a_i / s) x_i over count values per input.
 * backward_data (input i): dx_i = (a_i / s) dy (assigned);
 * backward_weights: dw_i += [w_i > 0] sum(dy (x_i - y)) / s (in double, thread-independent order). */
#define UAKD_FUSE_MAX 8
void uakd_fuse_forward(int m, int64_t count, const float *const *x, const float *w, float eps, float *y);
void uakd_fuse_backward_data(int m, int i, int64_t count, const float *w, float eps, const float *dy, float *dx);
void uakd_fuse_backward_weights(int m, int64_t count, const float *const *x, const float *y, const float *w, float eps,
                                const float *dy, float *dw);

#endif
