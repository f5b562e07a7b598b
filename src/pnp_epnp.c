/* EPnP (Lepetit, Moreno-Noguer, Fua, IJCV 2009) on undistorted normalised image points.
 *
 * Model points are written X_i = sum_j a_ij C_j over control points C_0 = centroid and
 * C_j = C_0 + s_j e_j along the principal axes (s_j = RMS spread along e_j; 3 control points
 * when the points are planar, 4 otherwise). Each correspondence x_i = (u, v) gives two linear
 * equations in the camera-frame control points c_j: sum_j a_ij (c_jx - u c_jz) = 0 and
 * sum_j a_ij (c_jy - v c_jz) = 0 (rows scaled by sqrt(w_i)). The solution lies in the span of the
 * N eigenvectors v_k of M^T M with the smallest eigenvalues, c = sum_k b_k v_k; the b_k are found
 * from the distances between control points, |c_a - c_b|^2 = |C_a - C_b|^2, first linearised in
 * the products b_k b_l (approximations N = 2, 3 and 4; N = 1 and 2 for planar points), then
 * refined by Gauss-Newton on all betas (4, or the approximation's N for planar points). Each candidate gives
 * camera points p_i = sum_j a_ij c_j (sign chosen for positive depth), and R, t come from the
 * absolute orientation of (X_i, p_i) (Horn's quaternion method). Candidates are
 * ranked by their weighted reprojection error in normalised coordinates. */
#include <lapacke.h>
#include <math.h>
#include <string.h>

#include "uakd/pnp.h"

typedef struct {
    int nc;            /* control points: 3 (planar) or 4 */
    double c0[3];      /* centroid */
    double e[3][3];    /* principal axes (rows), decreasing spread */
    double s[3];       /* RMS spread along each axis */
    double cw[4][3];   /* control points in the model frame */
} frame;

static int point_index(const int *idx, int k) { return idx ? idx[k] : k; }

/* Symmetric eigen-decomposition (ascending) of the n x n matrix A (n <= 12), in place: A's rows
 * become the eigenvectors. Returns 0 on success. */
static int sym_eig(int n, double *A, double *evals) {
    double work[12 * 34];
    /* A symmetric: column-major and row-major agree; LAPACK stores eigenvectors in columns, which
     * read row-major are rows. */
    return LAPACKE_dsyev_work(LAPACK_COL_MAJOR, 'V', 'U', n, A, n, evals, work, (lapack_int)(sizeof work / sizeof work[0]));
}

static uakd_status choose_frame(const double *X, const double *w, const int *idx, int m, frame *f) {
    double c[3] = {0, 0, 0}, cov[9] = {0};
    int used = 0;
    for (int k = 0; k < m; k++) {
        int i = point_index(idx, k);
        if (w && w[i] == 0) continue;
        for (int a = 0; a < 3; a++) c[a] += X[3 * i + a];
        used++;
    }
    if (used < 4) return uakd_fail(UAKD_EDEGENERATE, "EPnP: %d points with non-zero weight (at least 4 needed)", used);
    for (int a = 0; a < 3; a++) c[a] /= used;
    for (int k = 0; k < m; k++) {
        int i = point_index(idx, k);
        if (w && w[i] == 0) continue;
        double d[3] = {X[3 * i] - c[0], X[3 * i + 1] - c[1], X[3 * i + 2] - c[2]};
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) cov[3 * a + b] += d[a] * d[b] / used;
    }
    double ev[3];
    if (sym_eig(3, cov, ev) != 0) return uakd_fail(UAKD_EDEGENERATE, "EPnP: eigen-decomposition failed");
    if (!(ev[2] > 0)) return uakd_fail(UAKD_EDEGENERATE, "EPnP: all model points coincide");
    if (ev[1] < 1e-12 * ev[2])
        return uakd_fail(UAKD_EDEGENERATE, "EPnP: the model points are collinear; the rotation about their line is undetermined");
    f->nc = ev[0] < 1e-10 * ev[2] ? 3 : 4;
    memcpy(f->c0, c, sizeof c);
    for (int j = 0; j < 3; j++) { /* largest spread first */
        f->s[j] = sqrt(fmax(ev[2 - j], 0));
        for (int a = 0; a < 3; a++) f->e[j][a] = cov[3 * (2 - j) + a];
    }
    for (int a = 0; a < 3; a++) f->cw[0][a] = c[a];
    for (int j = 1; j < f->nc; j++)
        for (int a = 0; a < 3; a++) f->cw[j][a] = c[a] + f->s[j - 1] * f->e[j - 1][a];
    return UAKD_OK;
}

static void alphas(const frame *f, const double *Xi, double al[4]) {
    double d[3] = {Xi[0] - f->c0[0], Xi[1] - f->c0[1], Xi[2] - f->c0[2]};
    al[0] = 1;
    for (int j = 1; j < f->nc; j++) {
        al[j] = (f->e[j - 1][0] * d[0] + f->e[j - 1][1] * d[1] + f->e[j - 1][2] * d[2]) / f->s[j - 1];
        al[0] -= al[j];
    }
}

/* Absolute orientation of the camera-frame control points cc against the model ones: since the
 * model points' alphas have mean (1, 0, 0, 0) and sum_i alpha_ij (X_i - C_0) = m s_j e_j, the
 * camera points' centroid is c_0 and their cross-covariance with the model points is
 * proportional to H = sum_{j >= 1} (c_j - c_0)(C_j - C_0)^T, so R needs no pass over the points:
 * Horn's closed form gives it (with S_ab = H[b][a], the quaternion is the eigenvector of the
 * largest eigenvalue of the symmetric 4x4 matrix N below), t = c_0 - R C_0. The sign of cc is
 * chosen for positive mean depth. Returns the weighted squared reprojection error in normalised
 * coordinates, or INFINITY when a point is not in front of the camera. */
static double pose_from_control(const frame *f, const double cc[4][3], const double *X, const double *xy,
                                const double *w, const int *idx, int m, uakd_pose *out) {
    double sign = cc[0][2] < 0 ? -1 : 1, H[9] = {0};
    for (int j = 1; j < f->nc; j++)
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) H[3 * a + b] += sign * (cc[j][a] - cc[0][a]) * (f->cw[j][b] - f->cw[0][b]);
    for (int i = 0; i < 9; i++)
        if (!isfinite(H[i])) return INFINITY;
    double Sxx = H[0], Syx = H[1], Szx = H[2], Sxy = H[3], Syy = H[4], Szy = H[5], Sxz = H[6], Syz = H[7], Szz = H[8];
    double N[16] = {Sxx + Syy + Szz, Syz - Szy,        Szx - Sxz,        Sxy - Syx,
                    Syz - Szy,       Sxx - Syy - Szz,  Sxy + Syx,        Szx + Sxz,
                    Szx - Sxz,       Sxy + Syx,        -Sxx + Syy - Szz, Syz + Szy,
                    Sxy - Syx,       Szx + Sxz,        Syz + Szy,        -Sxx - Syy + Szz};
    double ev[4];
    if (sym_eig(4, N, ev) != 0) return INFINITY;
    uakd_quat_to_rot(N + 12, out->R);
    double rx[3];
    uakd_mat3_vec(out->R, f->cw[0], rx);
    for (int a = 0; a < 3; a++) out->t[a] = sign * cc[0][a] - rx[a];
    double err = 0;
    for (int k = 0; k < m; k++) {
        int i = point_index(idx, k);
        if (w && w[i] == 0) continue;
        double q[3];
        uakd_pose_apply(out, X + 3 * i, q);
        if (!(q[2] > 0)) return INFINITY;
        double du = q[0] / q[2] - xy[2 * i], dv = q[1] / q[2] - xy[2 * i + 1];
        err += (w ? w[i] : 1) * (du * du + dv * dv);
    }
    return isfinite(err) ? err : INFINITY;
}

/* Small dense solve A x = b (n <= 10, A n x n row-major, overwritten) by Gaussian elimination
 * with partial pivoting; least squares callers pass normal equations. Returns 0 when singular. */
static int solve_small(int n, double *A, double *b) {
    for (int c = 0; c < n; c++) {
        int p = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(A[r * n + c]) > fabs(A[p * n + c])) p = r;
        if (!(fabs(A[p * n + c]) > 1e-300)) return 0;
        if (p != c) {
            for (int k = 0; k < n; k++) {
                double t = A[c * n + k];
                A[c * n + k] = A[p * n + k];
                A[p * n + k] = t;
            }
            double t = b[c];
            b[c] = b[p];
            b[p] = t;
        }
        for (int r = c + 1; r < n; r++) {
            double g = A[r * n + c] / A[c * n + c];
            for (int k = c; k < n; k++) A[r * n + k] -= g * A[c * n + k];
            b[r] -= g * b[c];
        }
    }
    for (int c = n - 1; c >= 0; c--) {
        double s = b[c];
        for (int k = c + 1; k < n; k++) s -= A[c * n + k] * b[k];
        b[c] = s / A[c * n + c];
    }
    return 1;
}

/* Least squares over the listed columns of L (rows x 10): min |L[:, cols] x - rho|. */
static int lsq_columns(int rows, const double L[6][10], const double *rho, const int *cols, int nc, double *x) {
    double A[100] = {0}, b[10] = {0};
    for (int r = 0; r < rows; r++)
        for (int a = 0; a < nc; a++) {
            b[a] += L[r][cols[a]] * rho[r];
            for (int c = 0; c < nc; c++) A[a * nc + c] += L[r][cols[a]] * L[r][cols[c]];
        }
    return solve_small(nc, A, b) && (memcpy(x, b, (size_t)nc * sizeof *x), 1);
}

/* Column of the product b_k b_l (k <= l) in L: the order b00 b01 b11 b02 b12 b22 b03 b13 b23 b33. */
static int combo(int k, int l) { return l * (l + 1) / 2 + k; }

/* Gauss-Newton on the N betas: residual_r = sum_{k<=l} L[r][combo] b_k b_l - rho_r. */
static void refine_betas(int rows, int N, const double L[6][10], const double *rho, double *beta) {
    for (int it = 0; it < 10; it++) {
        double JtJ[16] = {0}, Jtr[4] = {0};
        for (int r = 0; r < rows; r++) {
            double res = -rho[r], J[4] = {0};
            for (int l = 0; l < N; l++)
                for (int k = 0; k <= l; k++) {
                    double c = L[r][combo(k, l)];
                    res += c * beta[k] * beta[l];
                    J[k] += c * beta[l];
                    J[l] += c * beta[k];
                }
            for (int a = 0; a < N; a++) {
                Jtr[a] += J[a] * res;
                for (int b = 0; b < N; b++) JtJ[a * N + b] += J[a] * J[b];
            }
        }
        if (!solve_small(N, JtJ, Jtr)) return;
        double step = 0, size = 0;
        for (int a = 0; a < N; a++) {
            beta[a] -= Jtr[a];
            step += Jtr[a] * Jtr[a];
            size += beta[a] * beta[a];
        }
        if (step <= 1e-24 * size) return;
    }
}

uakd_status uakd_pnp_epnp(const double *X, const double *xy, const double *w, const int *idx, int m, uakd_pose cand[4],
                          int *ncand) {
    for (int k = 0; k < m; k++) {
        int i = point_index(idx, k);
        if (w && !(w[i] >= 0 && isfinite(w[i])))
            return uakd_fail(UAKD_EINVAL, "EPnP: weight %d is %g (weights must be finite and >= 0)", i, w[i]);
        if (w && w[i] == 0) continue;
        if (!(isfinite(X[3 * i]) && isfinite(X[3 * i + 1]) && isfinite(X[3 * i + 2]) && isfinite(xy[2 * i]) &&
              isfinite(xy[2 * i + 1])))
            return uakd_fail(UAKD_EDEGENERATE, "EPnP: point %d is not finite", i);
    }
    frame f = {0};
    UAKD_TRY(choose_frame(X, w, idx, m, &f));
    int dim = 3 * f.nc;
    /* M^T M has 3x3 blocks (j, k) = sum_i w_i a_ij a_ik [[1, 0, -u], [0, 1, -v], [-u, -v, u^2 + v^2]]:
     * accumulate the four weighted sums of a_ij a_ik, then expand. */
    double S[4][4][4] = {{{0}}}; /* [j][k][1, u, v, u^2 + v^2] */
    for (int k = 0; k < m; k++) {
        int i = point_index(idx, k);
        double wi = w ? w[i] : 1;
        if (wi == 0) continue;
        double al[4], u = xy[2 * i], v = xy[2 * i + 1], g[4] = {wi, wi * u, wi * v, wi * (u * u + v * v)};
        alphas(&f, X + 3 * i, al);
        for (int a = 0; a < f.nc; a++)
            for (int b = a; b < f.nc; b++) {
                double p = al[a] * al[b];
                for (int c = 0; c < 4; c++) S[a][b][c] += p * g[c];
            }
    }
    double MtM[144] = {0};
    for (int a = 0; a < f.nc; a++)
        for (int b = 0; b < f.nc; b++) {
            const double *t = a <= b ? S[a][b] : S[b][a];
            double blk[9] = {t[0], 0, -t[1], 0, t[0], -t[2], -t[1], -t[2], t[3]};
            for (int r = 0; r < 3; r++)
                for (int c = 0; c < 3; c++) MtM[(3 * a + r) * dim + 3 * b + c] = blk[3 * r + c];
        }
    double ev[12];
    if (sym_eig(dim, MtM, ev) != 0) return uakd_fail(UAKD_EDEGENERATE, "EPnP: eigen-decomposition failed");
    const double *v[4] = {MtM, MtM + dim, MtM + 2 * dim, MtM + 3 * dim}; /* smallest eigenvalues first */

    /* distance constraints between control point pairs */
    int rows = 0;
    double L[6][10] = {{0}}, rho[6];
    for (int a = 0; a < f.nc; a++)
        for (int b = a + 1; b < f.nc; b++, rows++) {
            double dv[4][3];
            for (int k = 0; k < 4; k++)
                for (int c = 0; c < 3; c++) dv[k][c] = v[k][3 * a + c] - v[k][3 * b + c];
            for (int l = 0; l < 4; l++)
                for (int k = 0; k <= l; k++)
                    L[rows][combo(k, l)] = (k == l ? 1 : 2) * (dv[k][0] * dv[l][0] + dv[k][1] * dv[l][1] + dv[k][2] * dv[l][2]);
            double d[3] = {f.cw[a][0] - f.cw[b][0], f.cw[a][1] - f.cw[b][1], f.cw[a][2] - f.cw[b][2]};
            rho[rows] = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
        }

    double errs[4];
    int nc = 0;
    for (int approx = 0; approx < 4; approx++) {
        double beta[4] = {0, 0, 0, 0}, x[5];
        int N;
        if (approx == 0 && f.nc == 4) continue; /* N = 1 only for planar points: the others cover it */
        if (approx == 0) { /* N = 1: b00 only */
            static const int cols[1] = {0};
            N = 1;
            if (!lsq_columns(rows, L, rho, cols, 1, x)) continue;
            beta[0] = sqrt(fabs(x[0]));
        } else if (approx == 1) { /* N = 2: b00 b01 b11 */
            static const int cols[3] = {0, 1, 2};
            N = 2;
            if (!lsq_columns(rows, L, rho, cols, 3, x)) continue;
            double s = x[0] < 0 ? -1 : 1;
            beta[0] = sqrt(fabs(x[0]));
            beta[1] = s * x[2] > 0 ? sqrt(s * x[2]) : 0;
            if (s * x[1] < 0) beta[1] = -beta[1];
        } else if (f.nc == 4 && approx == 2) { /* N = 3: b00 b01 b11 b02 b12 */
            static const int cols[5] = {0, 1, 2, 3, 4};
            N = 3;
            if (!lsq_columns(rows, L, rho, cols, 5, x)) continue;
            double s = x[0] < 0 ? -1 : 1;
            beta[0] = sqrt(fabs(x[0]));
            beta[1] = s * x[2] > 0 ? sqrt(s * x[2]) : 0;
            if (s * x[1] < 0) beta[1] = -beta[1];
            beta[2] = beta[0] > 0 ? s * x[3] / beta[0] : 0;
        } else if (f.nc == 4 && approx == 3) { /* N = 4 linearised on b00 b01 b02 b03 */
            static const int cols[4] = {0, 1, 3, 6};
            N = 4;
            if (!lsq_columns(rows, L, rho, cols, 4, x)) continue;
            double s = x[0] < 0 ? -1 : 1;
            beta[0] = sqrt(fabs(x[0]));
            for (int k = 1; k < 4; k++) beta[k] = beta[0] > 0 ? s * x[k] / beta[0] : 0;
        } else {
            continue;
        }
        if (f.nc == 4) N = 4; /* Gauss-Newton on all four betas, as in the original EPnP */
        refine_betas(rows, N, L, rho, beta);
        double cc[4][3] = {{0}};
        for (int j = 0; j < f.nc; j++)
            for (int c = 0; c < 3; c++)
                for (int k = 0; k < N; k++) cc[j][c] += beta[k] * v[k][3 * j + c];
        uakd_pose p;
        double err = pose_from_control(&f, cc, X, xy, w, idx, m, &p);
        if (!isfinite(err)) continue;
        int k = nc++; /* insertion by error, best first */
        for (; k > 0 && errs[k - 1] > err; k--) {
            errs[k] = errs[k - 1];
            cand[k] = cand[k - 1];
        }
        errs[k] = err;
        cand[k] = p;
    }
    *ncand = nc;
    if (nc == 0)
        return uakd_fail(UAKD_EDEGENERATE, "EPnP: no solution puts the points in front of the camera");
    return UAKD_OK;
}
