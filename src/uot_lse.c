/* Row log-sum-exp kernels of the unbalanced Sinkhorn solver:
 *   LSE_j(h_j - ((px - qx_j)^2 + (py - qy_j)^2) * half_inv_eps) = M + log sum_j exp(t_j - M),
 * M = max_j t_j, in float64. The reference is plain C; the kernel choice is made per call. */
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

static int use_reference;

void uakd_uot_use_reference_kernel(int on) { use_reference = on != 0; }

uakd_lse_row_fn uakd_uot_lse_kernel(void) {
    (void)use_reference;
    return uakd_uot_lse_row_ref;
}
