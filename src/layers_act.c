/* Point-wise activations and their derivatives:
 *   relu(x) = max(x, 0)                  relu'(x) = [x > 0]
 *   leaky(x) = x > 0 ? x : a x           leaky'(x) = x > 0 ? 1 : a
 *   sigmoid(x) = 1 / (1 + e^-x)          sigmoid'(x) = y (1 - y)
 *   silu(x) = x sigmoid(x)               silu'(x) = s (1 + x (1 - s)), s = sigmoid(x)
 * sigmoid uses a clamped, vectorisable e^x (relative error about 2e-7, so sigmoid is within a few
 * float ulps of 1/(1 + expf(-x)); it saturates to exactly 0 and 1 beyond |x| > 88). The range is cut into blocks run in
 * parallel; each block is a simple restrict-qualified loop the compiler vectorises. */
#include <math.h>
#include <string.h>

#include "layers_omp.h"
#include "uakd/layers.h"

/* e^x for x clamped to [-87, 88] (infinite x gives NaN), vectorisable: x = n ln2 + r with n = round(x / ln2) by the
 * 1.5 * 2^23 trick (round to nearest), e^r by Cephes' degree-6 polynomial (relative error about
 * 2e-7), 2^n assembled in the exponent bits. */
static inline float exp_approx(float x) {
    /* clamp with quiet-compare masks (a ternary here keeps gcc -O2 from vectorising) */
    const float lo = (float)isless(x, -87.0f), hi = (float)isgreater(x, 88.0f);
    x = x + lo * (-87.0f - x) + hi * (88.0f - x);
    const float t = x * 1.44269504088896341f + 12582912.0f;
    const float n = t - 12582912.0f;
    const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - 0x4B400000 + 127) << 23; /* t's low mantissa bits hold n */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float sigm(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

static void fwd_block(uakd_act kind, float slope, int n, const float *restrict x, float *restrict y) {
    switch (kind) {
    case UAKD_ACT_RELU:
        UAKD_SIMD
        for (int i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0.0f;
        break;
    case UAKD_ACT_LEAKY:
        UAKD_SIMD
        for (int i = 0; i < n; i++) {
            const float v = x[i], pos = (float)isgreater(v, 0.0f); /* quiet compare as a mask: vectorises */
            y[i] = pos * v + (1.0f - pos) * (slope * v);
        }
        break;
    case UAKD_ACT_SILU:
        UAKD_SIMD
        for (int i = 0; i < n; i++) y[i] = x[i] * sigm(x[i]);
        break;
    case UAKD_ACT_SIGMOID:
        UAKD_SIMD
        for (int i = 0; i < n; i++) y[i] = sigm(x[i]);
        break;
    }
}

static void bwd_block(uakd_act kind, float slope, int n, const float *restrict x, const float *restrict y,
                      const float *restrict dy, float *restrict dx) {
    switch (kind) {
    case UAKD_ACT_RELU:
        UAKD_SIMD
        for (int i = 0; i < n; i++) dx[i] = (float)(x[i] > 0) * dy[i];
        break;
    case UAKD_ACT_LEAKY:
        UAKD_SIMD
        for (int i = 0; i < n; i++) {
            const float g = dy[i], pos = (float)isgreater(x[i], 0.0f);
            dx[i] = pos * g + (1.0f - pos) * (slope * g);
        }
        break;
    case UAKD_ACT_SILU:
        UAKD_SIMD
        for (int i = 0; i < n; i++) {
            const float s = sigm(x[i]);
            dx[i] = dy[i] * s * (1.0f + x[i] * (1.0f - s));
        }
        break;
    case UAKD_ACT_SIGMOID:
        UAKD_SIMD
        for (int i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
        break;
    }
}

void uakd_act_forward(uakd_act kind, float slope, int64_t count, const float *x, float *y) {
    const int64_t blocks = (count + UAKD_BLOCK - 1) / UAKD_BLOCK;
    UAKD_PARALLEL_FOR(count)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t at = b * UAKD_BLOCK;
        const int n = (int)(count - at < UAKD_BLOCK ? count - at : UAKD_BLOCK);
        fwd_block(kind, slope, n, x + at, y + at);
    }
}

void uakd_act_backward(uakd_act kind, float slope, int64_t count, const float *x, const float *y, const float *dy,
                       float *dx) {
    const int64_t blocks = (count + UAKD_BLOCK - 1) / UAKD_BLOCK;
    UAKD_PARALLEL_FOR(count)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t at = b * UAKD_BLOCK;
        const int n = (int)(count - at < UAKD_BLOCK ? count - at : UAKD_BLOCK);
        bwd_block(kind, slope, n, x + at, y ? y + at : NULL, dy + at, dx + at);
    }
}
