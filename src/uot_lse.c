/* Row log-sum-exp kernels of the unbalanced Sinkhorn solver:
 *   LSE_j(h_j - ((px - qx_j)^2 + (py - qy_j)^2) * half_inv_eps) = M + log sum_j exp(t_j - M),
 * M = max_j t_j. The reference is plain C in float64. The AVX2 kernel computes t_j - M in float64
 * (t_j is a difference of numbers up to ~1/eps, so float32 would lose it), rounds it (<= 0) to
 * float32 for an 8-wide exp (Cody-Waite reduction, degree-6 polynomial, relative error ~1e-7; t -
 * M below -87 gives ~1e-38 instead of 0, negligible next to the max term's 1) and accumulates the
 * sum in float64. A relative error d of the sum moves the potentials by eps d, i.e. the plan by a
 * factor 1 + d. The kernel is chosen at run time from the CPU's features. */
#include <math.h>

#include "uakd/uot.h"
#include "uot_kernel.h"

double uakd_uot_lse_row_ref(double px, double py, int m, const double *qx, const double *qy,
                            const double *h, double half_inv_eps) {
    double mx = -INFINITY;
    for (int j = 0; j < m; j++) {
        double dx = px - qx[j], dy = py - qy[j];
        double t = h[j] - (dx * dx + dy * dy) * half_inv_eps;
        if (t > mx) mx = t;
    }
    if (mx == -INFINITY) return mx;
    double s = 0;
    for (int j = 0; j < m; j++) {
        double dx = px - qx[j], dy = py - qy[j];
        s += exp(h[j] - (dx * dx + dy * dy) * half_inv_eps - mx);
    }
    return mx + log(s);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_AVX2_KERNEL 1
#define AVX2 __attribute__((target("avx2,fma")))

/* exp(x) for x <= 0 (x >= -87.3 after clamping): x = n ln2 + r, exp(r) by Cephes' expf polynomial. */
AVX2 static inline __m256 exp_nonpos(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* t_j for 4 consecutive j. */
AVX2 static inline __m256d args4(__m256d px, __m256d py, __m256d k, const double *qx,
                                 const double *qy, const double *h) {
    __m256d dx = _mm256_sub_pd(px, _mm256_loadu_pd(qx));
    __m256d dy = _mm256_sub_pd(py, _mm256_loadu_pd(qy));
    __m256d d2 = _mm256_fmadd_pd(dy, dy, _mm256_mul_pd(dx, dx));
    return _mm256_fnmadd_pd(d2, k, _mm256_loadu_pd(h));
}

AVX2 static double lse_row_avx2(double px, double py, int m, const double *qx, const double *qy,
                                const double *h, double half_inv_eps) {
    const __m256d vpx = _mm256_set1_pd(px), vpy = _mm256_set1_pd(py), vk = _mm256_set1_pd(half_inv_eps);
    const int m8 = m & ~7;
    __m256d vmax = _mm256_set1_pd(-INFINITY);
    int j = 0;
    for (; j + 4 <= m; j += 4) vmax = _mm256_max_pd(vmax, args4(vpx, vpy, vk, qx + j, qy + j, h + j));
    double lanes[4];
    _mm256_storeu_pd(lanes, vmax);
    double mx = fmax(fmax(lanes[0], lanes[1]), fmax(lanes[2], lanes[3]));
    for (; j < m; j++) {
        double dx = px - qx[j], dy = py - qy[j];
        mx = fmax(mx, h[j] - (dx * dx + dy * dy) * half_inv_eps);
    }
    if (mx == -INFINITY) return mx;
    const __m256d vmx = _mm256_set1_pd(mx);
    __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
    for (j = 0; j < m8; j += 8) {
        __m128 lo = _mm256_cvtpd_ps(_mm256_sub_pd(args4(vpx, vpy, vk, qx + j, qy + j, h + j), vmx));
        __m128 hi = _mm256_cvtpd_ps(
            _mm256_sub_pd(args4(vpx, vpy, vk, qx + j + 4, qy + j + 4, h + j + 4), vmx));
        __m256 e = exp_nonpos(_mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1));
        acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    _mm256_storeu_pd(lanes, _mm256_add_pd(acc0, acc1));
    double s = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (; j < m; j++) {
        double dx = px - qx[j], dy = py - qy[j];
        s += exp(h[j] - (dx * dx + dy * dy) * half_inv_eps - mx);
    }
    return mx + log(s);
}
#endif

static int use_reference;

void uakd_uot_use_reference_kernel(int on) { use_reference = on != 0; }

uakd_lse_row_fn uakd_uot_lse_kernel(void) {
#ifdef HAVE_AVX2_KERNEL
    if (!use_reference && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return lse_row_avx2;
#endif
    return uakd_uot_lse_row_ref;
}
