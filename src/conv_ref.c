/* Reference 2D convolution: direct loops over the definition in uakd/conv.h, forward,
 * backward-data (dx = sum over outputs of w * dy scattered back) and backward-weights
 * (dw += sum over batch and positions of x * dy, db += sum of dy). Slow and obviously right. */
#include <string.h>

#include "uakd/conv.h"

uakd_status uakd_conv2d_check(const uakd_conv2d_desc *d) {
    if (d->n <= 0 || d->c_in <= 0 || d->h_in <= 0 || d->w_in <= 0 || d->c_out <= 0 || d->kh <= 0 || d->kw <= 0 ||
        d->stride_h <= 0 || d->stride_w <= 0 || d->pad_h < 0 || d->pad_w < 0 || d->groups <= 0)
        return uakd_fail(UAKD_EINVAL, "conv2d: sizes, kernel, stride and groups must be positive and padding >= 0");
    if (d->c_in % d->groups || d->c_out % d->groups)
        return uakd_fail(UAKD_EINVAL, "conv2d: groups %d must divide input channels %d and output channels %d",
                         d->groups, d->c_in, d->c_out);
    if (d->h_in + 2 * d->pad_h < d->kh || d->w_in + 2 * d->pad_w < d->kw)
        return uakd_fail(UAKD_EINVAL, "conv2d: kernel %dx%d larger than the padded input %dx%d", d->kh, d->kw,
                         d->h_in + 2 * d->pad_h, d->w_in + 2 * d->pad_w);
    return UAKD_OK;
}

int uakd_conv2d_out_h(const uakd_conv2d_desc *d) { return (d->h_in + 2 * d->pad_h - d->kh) / d->stride_h + 1; }
int uakd_conv2d_out_w(const uakd_conv2d_desc *d) { return (d->w_in + 2 * d->pad_w - d->kw) / d->stride_w + 1; }

double uakd_conv2d_macs(const uakd_conv2d_desc *d) {
    return (double)d->n * d->c_out * uakd_conv2d_out_h(d) * uakd_conv2d_out_w(d) * (d->c_in / d->groups) * d->kh * d->kw;
}

void uakd_conv2d_forward_ref(const uakd_conv2d_desc *d, const float *x, const float *w, const float *b, float *y) {
    const int ho = uakd_conv2d_out_h(d), wo = uakd_conv2d_out_w(d);
    const int cg_in = d->c_in / d->groups, cg_out = d->c_out / d->groups;
    for (int n = 0; n < d->n; n++)
        for (int o = 0; o < d->c_out; o++) {
            const int g = o / cg_out;
            float *yo = y + ((size_t)n * d->c_out + o) * ho * wo;
            for (int i = 0; i < ho; i++)
                for (int j = 0; j < wo; j++) {
                    double acc = b ? b[o] : 0.0;
                    for (int c = 0; c < cg_in; c++) {
                        const float *xc = x + ((size_t)n * d->c_in + g * cg_in + c) * d->h_in * d->w_in;
                        const float *wc = w + ((size_t)o * cg_in + c) * d->kh * d->kw;
                        for (int p = 0; p < d->kh; p++) {
                            int yy = i * d->stride_h - d->pad_h + p;
                            if (yy < 0 || yy >= d->h_in) continue;
                            for (int q = 0; q < d->kw; q++) {
                                int xx = j * d->stride_w - d->pad_w + q;
                                if (xx < 0 || xx >= d->w_in) continue;
                                acc += (double)wc[p * d->kw + q] * xc[yy * d->w_in + xx];
                            }
                        }
                    }
                    yo[i * wo + j] = (float)acc;
                }
        }
}

void uakd_conv2d_backward_data_ref(const uakd_conv2d_desc *d, const float *dy, const float *w, float *dx) {
    const int ho = uakd_conv2d_out_h(d), wo = uakd_conv2d_out_w(d);
    const int cg_in = d->c_in / d->groups, cg_out = d->c_out / d->groups;
    memset(dx, 0, sizeof(float) * (size_t)d->n * d->c_in * d->h_in * d->w_in);
    for (int n = 0; n < d->n; n++)
        for (int o = 0; o < d->c_out; o++) {
            const int g = o / cg_out;
            const float *dyo = dy + ((size_t)n * d->c_out + o) * ho * wo;
            for (int c = 0; c < cg_in; c++) {
                float *dxc = dx + ((size_t)n * d->c_in + g * cg_in + c) * d->h_in * d->w_in;
                const float *wc = w + ((size_t)o * cg_in + c) * d->kh * d->kw;
                for (int i = 0; i < ho; i++)
                    for (int j = 0; j < wo; j++) {
                        float gy = dyo[i * wo + j];
                        for (int p = 0; p < d->kh; p++) {
                            int yy = i * d->stride_h - d->pad_h + p;
                            if (yy < 0 || yy >= d->h_in) continue;
                            for (int q = 0; q < d->kw; q++) {
                                int xx = j * d->stride_w - d->pad_w + q;
                                if (xx < 0 || xx >= d->w_in) continue;
                                dxc[yy * d->w_in + xx] += wc[p * d->kw + q] * gy;
                            }
                        }
                    }
            }
        }
}

void uakd_conv2d_backward_weights_ref(const uakd_conv2d_desc *d, const float *x, const float *dy, float *dw,
                                      float *db) {
    const int ho = uakd_conv2d_out_h(d), wo = uakd_conv2d_out_w(d);
    const int cg_in = d->c_in / d->groups, cg_out = d->c_out / d->groups;
    for (int o = 0; o < d->c_out; o++) {
        const int g = o / cg_out;
        if (db) {
            double s = 0;
            for (int n = 0; n < d->n; n++) {
                const float *dyo = dy + ((size_t)n * d->c_out + o) * ho * wo;
                for (int k = 0; k < ho * wo; k++) s += dyo[k];
            }
            db[o] += (float)s;
        }
        for (int c = 0; c < cg_in; c++)
            for (int p = 0; p < d->kh; p++)
                for (int q = 0; q < d->kw; q++) {
                    double s = 0;
                    for (int n = 0; n < d->n; n++) {
                        const float *dyo = dy + ((size_t)n * d->c_out + o) * ho * wo;
                        const float *xc = x + ((size_t)n * d->c_in + g * cg_in + c) * d->h_in * d->w_in;
                        for (int i = 0; i < ho; i++) {
                            int yy = i * d->stride_h - d->pad_h + p;
                            if (yy < 0 || yy >= d->h_in) continue;
                            for (int j = 0; j < wo; j++) {
                                int xx = j * d->stride_w - d->pad_w + q;
                                if (xx < 0 || xx >= d->w_in) continue;
                                s += (double)xc[yy * d->w_in + xx] * dyo[i * wo + j];
                            }
                        }
                    }
                    dw[(((size_t)o * cg_in + c) * d->kh + p) * d->kw + q] += (float)s;
                }
    }
}
