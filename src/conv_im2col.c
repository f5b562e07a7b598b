/* Fast convolution without oneDNN: im2col per image and group, then one OpenBLAS sgemm.
 *   forward:          Y_g (Cout_g x HoWo)      = W_g (Cout_g x K) * col (K x HoWo),  K = Cin_g*KH*KW
 *   backward data:    col = W_g^T * dY_g, scattered back by col2im
 *   backward weights: dW_g += dY_g * col^T,  db += row sums of dY
 * im2col/col2im run in parallel over channels (OpenMP; each channel owns its rows of col and its
 * plane of dx); OpenBLAS threads the sgemm itself. Used when the build has no oneDNN. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "conv_fast.h"

static void im2col(const uakd_conv2d_desc *d, const float *x, int cg, float *col) {
    const int ho = uakd_conv2d_out_h(d), wo = uakd_conv2d_out_w(d);
UAKD_OMP(omp parallel for schedule(static))
    for (int c = 0; c < cg; c++)
        for (int p = 0; p < d->kh; p++)
            for (int q = 0; q < d->kw; q++) {
                float *row = col + ((size_t)(c * d->kh + p) * d->kw + q) * ho * wo;
                const float *xc = x + (size_t)c * d->h_in * d->w_in;
                for (int i = 0; i < ho; i++) {
                    int yy = i * d->stride_h - d->pad_h + p;
                    float *r = row + (size_t)i * wo;
                    if (yy < 0 || yy >= d->h_in) {
                        memset(r, 0, sizeof(float) * wo);
                        continue;
                    }
                    for (int j = 0; j < wo; j++) {
                        int xx = j * d->stride_w - d->pad_w + q;
                        r[j] = (xx >= 0 && xx < d->w_in) ? xc[yy * d->w_in + xx] : 0.0f;
                    }
                }
            }
}

static void col2im(const uakd_conv2d_desc *d, const float *col, int cg, float *dx) {
    const int ho = uakd_conv2d_out_h(d), wo = uakd_conv2d_out_w(d);
UAKD_OMP(omp parallel for schedule(static))
    for (int c = 0; c < cg; c++)
        for (int p = 0; p < d->kh; p++)
            for (int q = 0; q < d->kw; q++) {
                const float *row = col + ((size_t)(c * d->kh + p) * d->kw + q) * ho * wo;
                float *dxc = dx + (size_t)c * d->h_in * d->w_in;
                for (int i = 0; i < ho; i++) {
                    int yy = i * d->stride_h - d->pad_h + p;
                    if (yy < 0 || yy >= d->h_in) continue;
                    for (int j = 0; j < wo; j++) {
                        int xx = j * d->stride_w - d->pad_w + q;
                        if (xx >= 0 && xx < d->w_in) dxc[yy * d->w_in + xx] += row[(size_t)i * wo + j];
                    }
                }
            }
}

static float *col_buffer(const uakd_conv2d_desc *d) {
    size_t k = (size_t)(d->c_in / d->groups) * d->kh * d->kw;
    return malloc(sizeof(float) * k * (size_t)uakd_conv2d_out_h(d) * uakd_conv2d_out_w(d));
}

uakd_status uakd_conv2d_forward_im2col(const uakd_conv2d_desc *d, const float *x, const float *w, const float *b, float *y) {
    const int ho = uakd_conv2d_out_h(d), wo = uakd_conv2d_out_w(d), hw = ho * wo;
    const int cgi = d->c_in / d->groups, cgo = d->c_out / d->groups, k = cgi * d->kh * d->kw;
    float *col = col_buffer(d);
    if (!col) return uakd_fail(UAKD_ENOMEM, "conv2d: out of memory for the im2col buffer");
    for (int n = 0; n < d->n; n++)
        for (int g = 0; g < d->groups; g++) {
            const float *xg = x + ((size_t)n * d->c_in + (size_t)g * cgi) * d->h_in * d->w_in;
            float *yg = y + ((size_t)n * d->c_out + (size_t)g * cgo) * hw;
            im2col(d, xg, cgi, col);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cgo, hw, k, 1.0f, w + (size_t)g * cgo * k, k, col,
                        hw, 0.0f, yg, hw);
            if (b)
                for (int o = 0; o < cgo; o++)
                    for (int s = 0; s < hw; s++) yg[(size_t)o * hw + s] += b[g * cgo + o];
        }
    free(col);
    return UAKD_OK;
}

uakd_status uakd_conv2d_backward_data_im2col(const uakd_conv2d_desc *d, const float *dy, const float *w, float *dx) {
    const int ho = uakd_conv2d_out_h(d), wo = uakd_conv2d_out_w(d), hw = ho * wo;
    const int cgi = d->c_in / d->groups, cgo = d->c_out / d->groups, k = cgi * d->kh * d->kw;
    float *col = col_buffer(d);
    if (!col) return uakd_fail(UAKD_ENOMEM, "conv2d: out of memory for the col2im buffer");
    memset(dx, 0, sizeof(float) * (size_t)d->n * d->c_in * d->h_in * d->w_in);
    for (int n = 0; n < d->n; n++)
        for (int g = 0; g < d->groups; g++) {
            const float *dyg = dy + ((size_t)n * d->c_out + (size_t)g * cgo) * hw;
            float *dxg = dx + ((size_t)n * d->c_in + (size_t)g * cgi) * d->h_in * d->w_in;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, hw, cgo, 1.0f, w + (size_t)g * cgo * k, k, dyg, hw,
                        0.0f, col, hw);
            col2im(d, col, cgi, dxg);
        }
    free(col);
    return UAKD_OK;
}

uakd_status uakd_conv2d_backward_weights_im2col(const uakd_conv2d_desc *d, const float *x, const float *dy, float *dw,
                                              float *db) {
    const int ho = uakd_conv2d_out_h(d), wo = uakd_conv2d_out_w(d), hw = ho * wo;
    const int cgi = d->c_in / d->groups, cgo = d->c_out / d->groups, k = cgi * d->kh * d->kw;
    float *col = col_buffer(d);
    if (!col) return uakd_fail(UAKD_ENOMEM, "conv2d: out of memory for the im2col buffer");
    for (int n = 0; n < d->n; n++)
        for (int g = 0; g < d->groups; g++) {
            const float *xg = x + ((size_t)n * d->c_in + (size_t)g * cgi) * d->h_in * d->w_in;
            const float *dyg = dy + ((size_t)n * d->c_out + (size_t)g * cgo) * hw;
            im2col(d, xg, cgi, col);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, cgo, k, hw, 1.0f, dyg, hw, col, hw, 1.0f,
                        dw + (size_t)g * cgo * k, k);
            if (db)
                for (int o = 0; o < cgo; o++) {
                    float s = 0;
                    for (int t = 0; t < hw; t++) s += dyg[(size_t)o * hw + t];
                    db[g * cgo + o] += s;
                }
        }
    free(col);
    return UAKD_OK;
}
