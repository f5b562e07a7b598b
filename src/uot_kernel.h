/* Internal: the row log-sum-exp kernel of the unbalanced Sinkhorn solver (src/uot*.c).
 *   lse_row(p, side) = LSE_j(h_j - |p - q_j|^2 k),  j < m,  k = 1 / (2 eps),
 * max-shifted. The side also carries the expanded form w_j = h_j - k |q_j|^2, s_j = 2 k q_j, so
 * that h_j - k |p - q_j|^2 = w_j + p . s_j - k |p|^2 (two FMAs per term; in float64 the
 * cancellation of terms of size k |q|^2 costs about 1e-16 k |q|^2 absolute, 1e-10 at eps = 1e-6).
 * uakd_uot_lse_row_ref is the plain reference (direct form, libm exp); the AVX2 and AVX-512 kernels agree with
 * it to about 1e-7 relative in the sum (see src/uot_lse.c). Returns -INFINITY when all h_j are. */
#ifndef UAKD_UOT_KERNEL_H
#define UAKD_UOT_KERNEL_H

typedef struct uakd_lse_side {
    int m;
    const double *qx, *qy, *h; /* direct form */
    double k;                  /* 1 / (2 eps) */
    const double *w, *sx, *sy; /* expanded form */
} uakd_lse_side;

double uakd_uot_lse_row_ref(double px, double py, const uakd_lse_side *s);

/* out_i = scale * lse_row(p_i, side) for rows i < n. */
typedef void (*uakd_lse_rows_fn)(int n, const double *px, const double *py, const uakd_lse_side *s,
                                 double scale, double *out);
void uakd_uot_lse_rows_ref(int n, const double *px, const double *py, const uakd_lse_side *s,
                           double scale, double *out);
/* plan_j = exp(c + w_j + px sx_j + py sy_j) for j < s->m, 0 where the exponent is below -87
 * (float32 range); the reference uses libm exp. */
typedef void (*uakd_plan_row_fn)(double c, double px, double py, const uakd_lse_side *s, float *plan);
void uakd_uot_plan_row_ref(double c, double px, double py, const uakd_lse_side *s, float *plan);
uakd_plan_row_fn uakd_uot_plan_kernel(void);

/* The kernel uakd_uot_select_kernel chose (the fastest this CPU runs by default). */
uakd_lse_rows_fn uakd_uot_lse_kernel(void);

#endif
