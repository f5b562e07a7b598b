/* Internal: the row log-sum-exp kernel of the unbalanced Sinkhorn solver (src/uot*.c).
 *   lse_row(p, q, h) = LSE_j(h_j - |p - q_j|^2 * half_inv_eps),  j < m,
 * computed with the max-shift in float64. Returns -INFINITY when every h_j is -INFINITY.
 * uakd_uot_lse_row_ref is the plain reference; uakd_uot_lse_row_avx2 (x86-64 with AVX2/FMA)
 * gives the same value to about 1e-12 relative (its exp carries 2^-52 relative error). */
#ifndef UAKD_UOT_KERNEL_H
#define UAKD_UOT_KERNEL_H

typedef double (*uakd_lse_row_fn)(double px, double py, int m, const double *qx, const double *qy,
                                  const double *h, double half_inv_eps);

double uakd_uot_lse_row_ref(double px, double py, int m, const double *qx, const double *qy,
                            const double *h, double half_inv_eps);
/* The fastest kernel this CPU runs (the reference when uakd_uot_use_reference_kernel(1)). */
uakd_lse_row_fn uakd_uot_lse_kernel(void);

#endif
