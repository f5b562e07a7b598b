/* Point-wise activations and their derivatives:
 *   relu(x) = max(x, 0)                  relu'(x) = [x > 0]
 *   leaky(x) = x > 0 ? x : a x           leaky'(x) = x > 0 ? 1 : a
 *   sigmoid(x) = 1 / (1 + e^-x)          sigmoid'(x) = y (1 - y)
 *   silu(x) = x sigmoid(x)               silu'(x) = s (1 + x (1 - s)), s = sigmoid(x)
 * sigmoid is evaluated in the form that never overflows exp. */
#include <math.h>

#include "layers_omp.h"
#include "uakd/layers.h"

static inline float sigm(float x) {
    if (x >= 0) return 1.0f / (1.0f + expf(-x));
    const float e = expf(x);
    return e / (1.0f + e);
}

void uakd_act_forward(uakd_act kind, float slope, int64_t count, const float *x, float *y) {
    switch (kind) {
    case UAKD_ACT_RELU:
        UAKD_PARALLEL_FOR
        for (int64_t i = 0; i < count; i++) y[i] = x[i] > 0 ? x[i] : 0.0f;
        break;
    case UAKD_ACT_LEAKY:
        UAKD_PARALLEL_FOR
        for (int64_t i = 0; i < count; i++) y[i] = x[i] > 0 ? x[i] : slope * x[i];
        break;
    case UAKD_ACT_SILU:
        UAKD_PARALLEL_FOR
        for (int64_t i = 0; i < count; i++) y[i] = x[i] * sigm(x[i]);
        break;
    case UAKD_ACT_SIGMOID:
        UAKD_PARALLEL_FOR
        for (int64_t i = 0; i < count; i++) y[i] = sigm(x[i]);
        break;
    }
}

void uakd_act_backward(uakd_act kind, float slope, int64_t count, const float *x, const float *y, const float *dy,
                       float *dx) {
    switch (kind) {
    case UAKD_ACT_RELU:
        UAKD_PARALLEL_FOR
        for (int64_t i = 0; i < count; i++) dx[i] = x[i] > 0 ? dy[i] : 0.0f;
        break;
    case UAKD_ACT_LEAKY:
        UAKD_PARALLEL_FOR
        for (int64_t i = 0; i < count; i++) dx[i] = x[i] > 0 ? dy[i] : slope * dy[i];
        break;
    case UAKD_ACT_SILU:
        UAKD_PARALLEL_FOR
        for (int64_t i = 0; i < count; i++) {
            const float s = sigm(x[i]);
            dx[i] = dy[i] * s * (1.0f + x[i] * (1.0f - s));
        }
        break;
    case UAKD_ACT_SIGMOID:
        UAKD_PARALLEL_FOR
        for (int64_t i = 0; i < count; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
        break;
    }
}
