/* Point-wise activations and their derivatives:
 *   relu(x) = max(x, 0)                  relu'(x) = [x > 0]
 *   leaky(x) = x > 0 ? x : a x           leaky'(x) = x > 0 ? 1 : a
 *   sigmoid(x) = 1 / (1 + e^-x)          sigmoid'(x) = y (1 - y)
 *   silu(x) = x sigmoid(x)               silu'(x) = s (1 + x (1 - s)), s = sigmoid(x)
 * sigmoid is evaluated in the form that never overflows exp. The range is cut into blocks run in
 * parallel; each block is a simple restrict-qualified loop the compiler vectorises. */
#include <math.h>

#include "layers_omp.h"
#include "uakd/layers.h"

static inline float sigm(float x) {
    if (x >= 0) return 1.0f / (1.0f + expf(-x));
    const float e = expf(x);
    return e / (1.0f + e);
}

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
        for (int i = 0; i < n; i++) y[i] = x[i] * sigm(x[i]);
        break;
    case UAKD_ACT_SIGMOID:
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
