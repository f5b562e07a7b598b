/* Row log-sum-exp kernels of the unbalanced Sinkhorn solver:
 *   LSE_j(h_j - ((px - qx_j)^2 + (py - qy_j)^2) * half_inv_eps) = M + log sum_j exp(t_j - M),
 * M = max_j t_j. The reference is plain C in float64 (direct form). The AVX2 kernel computes
 * t_j - M in float64 from the expanded form of uot_kernel.h (t_j is a difference of numbers up
 * to ~1/eps, so float32 would lose it), rounds it (<= 0) to
 * float32 for an 8-wide exp (Cody-Waite reduction, degree-6 polynomial, relative error ~1e-7; t -
 * M below -87 gives ~1e-38 instead of 0, negligible next to the max term's 1) and accumulates the
 * sum in float64. The AVX-512 kernel does the same 8 / 16 wide (the same terms and exponentials;
 * only the order of the float64 sum differs). A relative error d of the sum moves the potentials
 * by eps d, i.e. the plan by a factor 1 + d. The kernel is chosen at run time from the CPU's
 * features. */
#include <math.h>
#include <stdint.h>

#include "uakd/uot.h"
#include "uot_kernel.h"

double uakd_uot_lse_row_ref(double px, double py, const uakd_lse_side *s) {
    double mx = -INFINITY;
    for (int j = 0; j < s->m; j++) {
        double dx = px - s->qx[j], dy = py - s->qy[j];
        double t = s->h[j] - (dx * dx + dy * dy) * s->k;
        if (t > mx) mx = t;
    }
    if (mx == -INFINITY) return mx;
    double sum = 0;
    for (int j = 0; j < s->m; j++) {
        double dx = px - s->qx[j], dy = py - s->qy[j];
        sum += exp(s->h[j] - (dx * dx + dy * dy) * s->k - mx);
    }
    return mx + log(sum);
}

void uakd_uot_plan_row_ref(double c, double px, double py, const uakd_lse_side *s, float *plan) {
    for (int j = 0; j < s->m; j++) {
        double e = c + s->w[j] + px * s->sx[j] + py * s->sy[j];
        plan[j] = e < -87.0 ? 0.0f : (float)exp(e);
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_AVX2_KERNEL 1
#define AVX2 __attribute__((target("avx2,fma")))

/* exp(x) for x <= 88 (x >= -87.3 after clamping): x = n ln2 + r, exp(r) by Cephes' expf polynomial. */
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

/* Terms are handled in chunks of CHUNK: pass 1 stores t_j = w_j + p . s_j (4-wide float64) and
 * its maximum, pass 2 sums exp(t_j - M) 8-wide; chunks combine as S <- S exp(M_old - M_new). */
#define CHUNK 256

/* tail_mask + 4 - r: r leading lanes set (r = 1..4). */
static const int64_t tail_mask[8] = {-1, -1, -1, -1, 0, 0, 0, 0};

/* Row i's shift M and sum S = sum_j exp(t_j - M) (S >= 1 unless M = -inf). */
AVX2 static void row_sum_avx2(double px, double py, const uakd_lse_side *s, double *Mo, double *So) {
    double t[CHUNK] __attribute__((aligned(32)));
    const __m256d vpx = _mm256_set1_pd(px), vpy = _mm256_set1_pd(py);
    double M = -INFINITY, S = 0;
    for (int j0 = 0; j0 < s->m; j0 += CHUNK) {
        const int len = s->m - j0 < CHUNK ? s->m - j0 : CHUNK, len8 = (len + 7) & ~7;
        const double *w = s->w + j0, *sx = s->sx + j0, *sy = s->sy + j0;
        __m256d vmax = _mm256_set1_pd(-INFINITY);
        int j = 0;
        for (; j < len; j += 4) {
            /* the last group may be partial: masked loads, then -inf in the unused lanes */
            __m256i mask = _mm256_loadu_si256((const __m256i *)(tail_mask + 4 - (len - j < 4 ? len - j : 4)));
            __m256d v = _mm256_fmadd_pd(vpy, _mm256_maskload_pd(sy + j, mask),
                                        _mm256_fmadd_pd(vpx, _mm256_maskload_pd(sx + j, mask),
                                                        _mm256_maskload_pd(w + j, mask)));
            v = _mm256_blendv_pd(_mm256_set1_pd(-INFINITY), v, _mm256_castsi256_pd(mask));
            _mm256_store_pd(t + j, v);
            vmax = _mm256_max_pd(vmax, v);
        }
        double lanes[4];
        _mm256_storeu_pd(lanes, vmax);
        double cm = lanes[0] > lanes[1] ? lanes[0] : lanes[1];
        cm = cm > lanes[2] ? cm : lanes[2];
        cm = cm > lanes[3] ? cm : lanes[3];
        for (; j < len8; j++) t[j] = -INFINITY;
        if (cm == -INFINITY) continue;
        if (cm > M) {
            S = M == -INFINITY ? 0.0 : S * exp(M - cm);
            M = cm;
        }
        const __m256d vm = _mm256_set1_pd(M);
        __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
        for (j = 0; j < len8; j += 8) {
            __m128 lo = _mm256_cvtpd_ps(_mm256_sub_pd(_mm256_load_pd(t + j), vm));
            __m128 hi = _mm256_cvtpd_ps(_mm256_sub_pd(_mm256_load_pd(t + j + 4), vm));
            __m256 e = exp_nonpos(_mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1));
            acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
            acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
        }
        _mm256_storeu_pd(lanes, _mm256_add_pd(acc0, acc1));
        S += (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    }
    *Mo = M;
    *So = S;
}

/* log(S) for S in [1, 2^1022): S = 2^e m with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(z),
 * z = (m - 1)/(m + 1), |z| < 0.172, series to z^13 (error < 1e-11). */
AVX2 static inline __m256d log4(__m256d S) {
    __m256i bits = _mm256_castpd_si256(S);
    __m256i e = _mm256_sub_epi64(_mm256_srli_epi64(bits, 52), _mm256_set1_epi64x(1023));
    __m256d m = _mm256_castsi256_pd(_mm256_or_si256(
        _mm256_and_si256(bits, _mm256_set1_epi64x(0x000FFFFFFFFFFFFFLL)), _mm256_set1_epi64x(0x3FF0000000000000LL)));
    __m256d big = _mm256_cmp_pd(m, _mm256_set1_pd(1.4142135623730951), _CMP_GT_OQ);
    m = _mm256_blendv_pd(m, _mm256_mul_pd(m, _mm256_set1_pd(0.5)), big);
    e = _mm256_sub_epi64(e, _mm256_castpd_si256(big)); /* big lanes are all ones = -1 */
    /* e fits in 32 bits: take the low halves to convert */
    __m128i e32 = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(e, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)));
    __m256d ed = _mm256_cvtepi32_pd(e32);
    __m256d z = _mm256_div_pd(_mm256_sub_pd(m, _mm256_set1_pd(1.0)), _mm256_add_pd(m, _mm256_set1_pd(1.0)));
    __m256d z2 = _mm256_mul_pd(z, z);
    __m256d p = _mm256_set1_pd(1.0 / 13);
    p = _mm256_fmadd_pd(p, z2, _mm256_set1_pd(1.0 / 11));
    p = _mm256_fmadd_pd(p, z2, _mm256_set1_pd(1.0 / 9));
    p = _mm256_fmadd_pd(p, z2, _mm256_set1_pd(1.0 / 7));
    p = _mm256_fmadd_pd(p, z2, _mm256_set1_pd(1.0 / 5));
    p = _mm256_fmadd_pd(p, z2, _mm256_set1_pd(1.0 / 3));
    p = _mm256_fmadd_pd(p, z2, _mm256_set1_pd(1.0));
    __m256d lm = _mm256_mul_pd(_mm256_mul_pd(p, z), _mm256_set1_pd(2.0));
    return _mm256_fmadd_pd(ed, _mm256_set1_pd(0.69314718055994531), lm);
}

typedef void (*row_sum_fn)(double px, double py, const uakd_lse_side *s, double *Mo, double *So);

/* out_i = scale * LSE_i for n rows from row_sum's (M, S); logs four rows at a time. */
AVX2 static void lse_rows(row_sum_fn row_sum, int n, const double *px, const double *py, const uakd_lse_side *s,
                          double scale, double *out) {
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        double M[4], S[4];
        int finite = 1;
        for (int r = 0; r < 4; r++) {
            row_sum(px[i + r], py[i + r], s, &M[r], &S[r]);
            finite &= M[r] != -INFINITY;
        }
        if (!finite) {
            for (int r = 0; r < 4; r++)
                out[i + r] = M[r] == -INFINITY ? -scale * INFINITY
                                               : scale * (M[r] + log(S[r]) - s->k * (px[i + r] * px[i + r] + py[i + r] * py[i + r]));
            continue;
        }
        __m256d vx = _mm256_loadu_pd(px + i), vy = _mm256_loadu_pd(py + i);
        __m256d p2 = _mm256_fmadd_pd(vy, vy, _mm256_mul_pd(vx, vx));
        __m256d v = _mm256_fnmadd_pd(p2, _mm256_set1_pd(s->k), _mm256_add_pd(_mm256_loadu_pd(M), log4(_mm256_loadu_pd(S))));
        _mm256_storeu_pd(out + i, _mm256_mul_pd(v, _mm256_set1_pd(scale)));
    }
    for (; i < n; i++) {
        double M, S;
        row_sum(px[i], py[i], s, &M, &S);
        out[i] = M == -INFINITY ? -scale * INFINITY : scale * (M + log(S) - s->k * (px[i] * px[i] + py[i] * py[i]));
    }
}

AVX2 static void plan_row_avx2(double c, double px, double py, const uakd_lse_side *s, float *plan) {
    const __m256d vpx = _mm256_set1_pd(px), vpy = _mm256_set1_pd(py), vc = _mm256_set1_pd(c);
    const __m256 lo_lim = _mm256_set1_ps(-87.0f), hi_lim = _mm256_set1_ps(88.0f);
    int j = 0;
    for (; j + 8 <= s->m; j += 8) {
        __m128 h[2];
        for (int q = 0; q < 2; q++) {
            int o = j + 4 * q;
            __m256d v = _mm256_fmadd_pd(vpy, _mm256_loadu_pd(s->sy + o),
                                        _mm256_fmadd_pd(vpx, _mm256_loadu_pd(s->sx + o),
                                                        _mm256_add_pd(vc, _mm256_loadu_pd(s->w + o))));
            h[q] = _mm256_cvtpd_ps(v);
        }
        __m256 x = _mm256_insertf128_ps(_mm256_castps128_ps256(h[0]), h[1], 1);
        __m256 keep = _mm256_cmp_ps(x, lo_lim, _CMP_GE_OQ);
        __m256 e = exp_nonpos(_mm256_min_ps(x, hi_lim));
        _mm256_storeu_ps(plan + j, _mm256_and_ps(e, keep));
    }
    for (; j < s->m; j++) {
        double e = c + s->w[j] + px * s->sx[j] + py * s->sy[j];
        plan[j] = e < -87.0 ? 0.0f : (float)exp(e);
    }
}

/* The same with AVX-512: pass 1 eight float64 terms per vector, pass 2 sixteen float32
 * exponentials per vector (the same polynomial; only the order of the float64 sum differs). */
#define AVX512 __attribute__((target("avx512f,avx512dq")))

AVX512 static inline __m512 exp_nonpos16(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

AVX512 static void row_sum_avx512(double px, double py, const uakd_lse_side *s, double *Mo, double *So) {
    double t[CHUNK] __attribute__((aligned(64)));
    const __m512d vpx = _mm512_set1_pd(px), vpy = _mm512_set1_pd(py), ninf = _mm512_set1_pd(-INFINITY);
    double M = -INFINITY, S = 0;
    for (int j0 = 0; j0 < s->m; j0 += CHUNK) {
        const int len = s->m - j0 < CHUNK ? s->m - j0 : CHUNK, len16 = (len + 15) & ~15;
        const double *w = s->w + j0, *sx = s->sx + j0, *sy = s->sy + j0;
        __m512d vmax = ninf;
        for (int j = 0; j < len16; j += 8) {
            /* partial or empty last groups: masked loads, -inf in the unused lanes */
            const __mmask8 k = len - j >= 8 ? 0xFF : len - j > 0 ? (__mmask8)((1u << (len - j)) - 1) : 0;
            __m512d v = _mm512_fmadd_pd(vpy, _mm512_maskz_loadu_pd(k, sy + j),
                                        _mm512_fmadd_pd(vpx, _mm512_maskz_loadu_pd(k, sx + j),
                                                        _mm512_maskz_loadu_pd(k, w + j)));
            v = _mm512_mask_blend_pd(k, ninf, v);
            _mm512_store_pd(t + j, v);
            vmax = _mm512_max_pd(vmax, v);
        }
        const double cm = _mm512_reduce_max_pd(vmax);
        if (cm == -INFINITY) continue;
        if (cm > M) {
            S = M == -INFINITY ? 0.0 : S * exp(M - cm);
            M = cm;
        }
        const __m512d vm = _mm512_set1_pd(M);
        __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
        for (int j = 0; j < len16; j += 16) {
            __m256 lo = _mm512_cvtpd_ps(_mm512_sub_pd(_mm512_load_pd(t + j), vm));
            __m256 hi = _mm512_cvtpd_ps(_mm512_sub_pd(_mm512_load_pd(t + j + 8), vm));
            __m512 e = exp_nonpos16(_mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1));
            acc0 = _mm512_add_pd(acc0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
            acc1 = _mm512_add_pd(acc1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)));
        }
        S += _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
    }
    *Mo = M;
    *So = S;
}

static void lse_rows_avx2(int n, const double *px, const double *py, const uakd_lse_side *s, double scale,
                          double *out) {
    lse_rows(row_sum_avx2, n, px, py, s, scale, out);
}

static void lse_rows_avx512(int n, const double *px, const double *py, const uakd_lse_side *s, double scale,
                            double *out) {
    lse_rows(row_sum_avx512, n, px, py, s, scale, out);
}
#endif

static uakd_uot_kernel chosen = UAKD_UOT_KERNEL_BEST;

void uakd_uot_select_kernel(uakd_uot_kernel k) { chosen = k; }

void uakd_uot_lse_rows_ref(int n, const double *px, const double *py, const uakd_lse_side *s,
                           double scale, double *out) {
    for (int i = 0; i < n; i++) out[i] = scale * uakd_uot_lse_row_ref(px[i], py[i], s);
}

/* The kernel solves use: the chosen one, or the next slower one this CPU runs. */
static uakd_uot_kernel active(void) {
#ifdef HAVE_AVX2_KERNEL
    const int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if ((chosen == UAKD_UOT_KERNEL_BEST || chosen == UAKD_UOT_KERNEL_AVX512) && avx512 && avx2)
        return UAKD_UOT_KERNEL_AVX512;
    if (chosen != UAKD_UOT_KERNEL_REFERENCE && avx2) return UAKD_UOT_KERNEL_AVX2;
#endif
    return UAKD_UOT_KERNEL_REFERENCE;
}

const char *uakd_uot_kernel_name(void) {
    const uakd_uot_kernel k = active();
    return k == UAKD_UOT_KERNEL_AVX512 ? "avx512" : k == UAKD_UOT_KERNEL_AVX2 ? "avx2" : "reference";
}

uakd_lse_rows_fn uakd_uot_lse_kernel(void) {
    switch (active()) {
#ifdef HAVE_AVX2_KERNEL
    case UAKD_UOT_KERNEL_AVX512: return lse_rows_avx512;
    case UAKD_UOT_KERNEL_AVX2: return lse_rows_avx2;
#endif
    default: return uakd_uot_lse_rows_ref;
    }
}

uakd_plan_row_fn uakd_uot_plan_kernel(void) {
#ifdef HAVE_AVX2_KERNEL
    if (active() != UAKD_UOT_KERNEL_REFERENCE) return plan_row_avx2; /* once per solve: AVX2 is enough */
#endif
    return uakd_uot_plan_row_ref;
}
