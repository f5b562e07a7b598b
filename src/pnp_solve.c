/* PnP refinement, the checked solver and RANSAC: Levenberg-Marquardt on the weighted pixel
 * reprojection error, multi-start from the EPnP candidates (and 180-degree turns of the best one
 * for few points), the validation every returned pose passes, and RANSAC over 5-point EPnP
 * samples with MSAC scoring and a refit on the inliers.
 *
 * Cost: sum_i w_i |pi(R X_i + t) - uv_i|^2 with pi the pinhole projection with OpenCV distortion.
 * Parameters: a left rotation increment R <- exp([d]x) R and t <- t + dt. Per point, with
 * P = R X + t = (X', Y', Z), x = X'/Z, y = Y'/Z and D the 2x2 Jacobian of the distortion,
 * d uv / d P = diag(fx, fy) D [[1/Z, 0, -x/Z], [0, 1/Z, -y/Z]], d P / d d = -[R X]x, d P / d dt = I.
 * Steps solve (J^T J + lambda diag(J^T J)) delta = -J^T r (Marquardt), lambda adapted by
 * success. Converged when the scaled gradient max_k |J_k^T r| / (|J_k| |r|) < 1e-10, the relative
 * decrease is below 1e-10, the step is below 1e-13 (relative), or no damping lowers the cost. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/pnp.h"
#include "uakd/rng.h"

void uakd_pnp_default_options(uakd_pnp_options *o) {
    o->max_iterations = 100;
    o->max_rmse_px = 100;
}

static int point_index(const int *idx, int k) { return idx ? idx[k] : k; }

/* Weighted cost (and, when JtJ is not NULL, the normal equations). sse receives the unweighted
 * sum of squared pixel errors, used the number of points. Returns 0 when a point is at or behind
 * the camera or a value is not finite. */
static int accumulate(const uakd_camera *cam, const double *X, const double *uv, const double *w, const int *idx,
                      int m, const uakd_pose *p, double *cost, double *sse, int *used, double JtJ[36], double Jtr[6]) {
    double c = 0, s = 0;
    int u = 0;
    if (JtJ) {
        memset(JtJ, 0, 36 * sizeof *JtJ);
        memset(Jtr, 0, 6 * sizeof *Jtr);
    }
    for (int k = 0; k < m; k++) {
        int i = point_index(idx, k);
        double wi = w ? w[i] : 1;
        if (wi == 0) continue;
        double a[3], P[3];
        uakd_mat3_vec(p->R, X + 3 * i, a);
        for (int j = 0; j < 3; j++) P[j] = a[j] + p->t[j];
        if (!(P[2] > 0)) return 0;
        double x = P[0] / P[2], y = P[1] / P[2], px[2];
        uakd_camera_distort_to_pixel(cam, x, y, px);
        double r[2] = {px[0] - uv[2 * i], px[1] - uv[2 * i + 1]};
        double e2 = r[0] * r[0] + r[1] * r[1];
        c += wi * e2;
        s += e2;
        u++;
        if (!JtJ) continue;
        double D[4], iz = 1 / P[2];
        uakd_camera_distort_jacobian(cam, x, y, D);
        double Jn[2][3] = {{iz, 0, -x * iz}, {0, iz, -y * iz}}, Jp[2][3];
        for (int q = 0; q < 2; q++)
            for (int j = 0; j < 3; j++)
                Jp[q][j] = (q == 0 ? cam->fx : cam->fy) * (D[2 * q] * Jn[0][j] + D[2 * q + 1] * Jn[1][j]);
        double J[2][6];
        for (int q = 0; q < 2; q++) { /* d P / d d = -[a]x: columns (0, a2, -a1), (-a2, 0, a0), (a1, -a0, 0) */
            J[q][0] = Jp[q][1] * -a[2] + Jp[q][2] * a[1];
            J[q][1] = Jp[q][0] * a[2] + Jp[q][2] * -a[0];
            J[q][2] = Jp[q][0] * -a[1] + Jp[q][1] * a[0];
            J[q][3] = Jp[q][0];
            J[q][4] = Jp[q][1];
            J[q][5] = Jp[q][2];
        }
        for (int q = 0; q < 2; q++)
            for (int j = 0; j < 6; j++) {
                Jtr[j] += wi * J[q][j] * r[q];
                for (int l = j; l < 6; l++) JtJ[6 * j + l] += wi * J[q][j] * J[q][l];
            }
    }
    if (JtJ)
        for (int j = 0; j < 6; j++)
            for (int l = 0; l < j; l++) JtJ[6 * j + l] = JtJ[6 * l + j];
    *cost = c;
    if (sse) *sse = s;
    if (used) *used = u;
    return isfinite(c);
}

/* Cholesky solve of the 6x6 SPD system A x = b (A overwritten, b becomes x); 0 if not SPD. */
static int cholesky6(double A[36], double b[6]) {
    for (int j = 0; j < 6; j++) {
        double d = A[6 * j + j];
        for (int k = 0; k < j; k++) d -= A[6 * j + k] * A[6 * j + k];
        if (!(d > 0)) return 0;
        d = sqrt(d);
        A[6 * j + j] = d;
        for (int i = j + 1; i < 6; i++) {
            double s = A[6 * i + j];
            for (int k = 0; k < j; k++) s -= A[6 * i + k] * A[6 * j + k];
            A[6 * i + j] = s / d;
        }
    }
    for (int i = 0; i < 6; i++) {
        double s = b[i];
        for (int k = 0; k < i; k++) s -= A[6 * i + k] * b[k];
        b[i] = s / A[6 * i + i];
    }
    for (int i = 5; i >= 0; i--) {
        double s = b[i];
        for (int k = i + 1; k < 6; k++) s -= A[6 * k + i] * b[k];
        b[i] = s / A[6 * i + i];
    }
    return 1;
}

static void apply_step(const uakd_pose *p, const double d[6], uakd_pose *out) {
    double dR[9];
    uakd_rot_from_axis_angle(d, dR);
    uakd_mat3_mul(dR, p->R, out->R);
    for (int j = 0; j < 3; j++) out->t[j] = p->t[j] + d[3 + j];
}

uakd_status uakd_pnp_refine(const uakd_camera *cam, const double *X, const double *uv, const double *w,
                            const int *idx, int m, const uakd_pnp_options *opt, uakd_pose *pose, double *rmse_px,
                            int *iterations) {
    uakd_pnp_options def;
    if (!opt) {
        uakd_pnp_default_options(&def);
        opt = &def;
    }
    double JtJ[36], Jtr[6], cost, sse;
    int used;
    uakd_pose p = *pose;
    if (!accumulate(cam, X, uv, w, idx, m, &p, &cost, &sse, &used, JtJ, Jtr))
        return uakd_fail(UAKD_EDEGENERATE, "PnP refinement: the starting pose puts a point at or behind the camera");
    if (used < 4) return uakd_fail(UAKD_EDEGENERATE, "PnP refinement: %d points with non-zero weight (at least 4 needed)", used);
    double lambda = 1e-3;
    int it = 0, converged = 0;
    while (!converged && it < opt->max_iterations) {
        double g = 0;
        for (int j = 0; j < 6; j++) g = fmax(g, fabs(Jtr[j]) / sqrt(JtJ[6 * j + j] * cost + 1e-300));
        if (cost == 0 || g < 1e-10) {
            converged = 1;
            break;
        }
        it++;
        double A[36], d[6];
        memcpy(A, JtJ, sizeof A);
        for (int j = 0; j < 6; j++) {
            A[6 * j + j] += lambda * fmax(JtJ[6 * j + j], 1e-12);
            d[j] = -Jtr[j];
        }
        uakd_pose q;
        double cq;
        int solved = cholesky6(A, d);
        double tn = sqrt(p.t[0] * p.t[0] + p.t[1] * p.t[1] + p.t[2] * p.t[2]) + 1e-300;
        double step = fmax(sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]), sqrt(d[3] * d[3] + d[4] * d[4] + d[5] * d[5]) / tn);
        double qJtJ[36], qJtr[6], qsse;
        int qused;
        if (solved && (apply_step(&p, d, &q), accumulate(cam, X, uv, w, idx, m, &q, &cq, &qsse, &qused, qJtJ, qJtr)) &&
            cq < cost) {
            double rel = (cost - cq) / cost;
            p = q;
            cost = cq;
            sse = qsse;
            used = qused;
            memcpy(JtJ, qJtJ, sizeof JtJ);
            memcpy(Jtr, qJtr, sizeof Jtr);
            lambda = fmax(lambda / 10, 1e-12);
            if (rel < 1e-10 || step < 1e-13) converged = 1;
        } else {
            lambda *= 10;
            /* no damping lowers the cost, or the step is below round-off: a minimum */
            if (lambda > 1e12 || (solved && step < 1e-13)) converged = 1;
        }
    }
    if (!converged)
        return uakd_fail(UAKD_EDEGENERATE, "PnP refinement did not converge in %d iterations (raise max_iterations?)",
                         opt->max_iterations);
    *pose = p;
    if (rmse_px) *rmse_px = sqrt(sse / used);
    if (iterations) *iterations = it;
    return UAKD_OK;
}

/* The checks every returned pose passes: finite, a rotation, every used point in front of the
 * camera, and an RMSE within the sanity bound. */
static uakd_status validate(const uakd_camera *cam, const double *X, const double *uv, const double *w, const int *idx,
                            int m, const uakd_pnp_options *opt, const uakd_pose *p, double *rmse) {
    for (int j = 0; j < 9; j++)
        if (!isfinite(p->R[j])) return uakd_fail(UAKD_EDEGENERATE, "PnP: the pose is not finite");
    for (int j = 0; j < 3; j++)
        if (!isfinite(p->t[j])) return uakd_fail(UAKD_EDEGENERATE, "PnP: the pose is not finite");
    if (fabs(uakd_mat3_det(p->R) - 1) > 1e-6) return uakd_fail(UAKD_EDEGENERATE, "PnP: R is not a rotation");
    double cost, sse;
    int used;
    if (!accumulate(cam, X, uv, w, idx, m, p, &cost, &sse, &used, NULL, NULL))
        return uakd_fail(UAKD_EDEGENERATE, "PnP: the best pose puts a point at or behind the camera; the correspondences "
                                           "are inconsistent (outliers? use RANSAC)");
    *rmse = sqrt(sse / used);
    if (!(*rmse <= opt->max_rmse_px))
        return uakd_fail(UAKD_EDEGENERATE, "PnP: reprojection RMSE %.3g px exceeds the sanity bound %.3g px (outliers? use "
                                           "RANSAC, or raise max_rmse_px)", *rmse, opt->max_rmse_px);
    return UAKD_OK;
}

/* LM from pose p over the listed points, then validation; fills out. */
static uakd_status refine_checked(const uakd_camera *cam, const double *X, const double *uv, const double *w,
                                  const int *idx, int m, const uakd_pnp_options *opt, uakd_pose p, uakd_pnp_result *out) {
    int it = 0;
    double rmse = 0;
    UAKD_TRY(uakd_pnp_refine(cam, X, uv, w, idx, m, opt, &p, NULL, &it));
    UAKD_TRY(validate(cam, X, uv, w, idx, m, opt, &p, &rmse));
    out->pose = p;
    out->rmse_px = rmse;
    out->iterations = it;
    int used = 0;
    for (int k = 0; k < m; k++) used += !w || w[point_index(idx, k)] > 0;
    out->num_inliers = used;
    return UAKD_OK;
}

/* Starts for LM: the EPnP candidates, and, with few points (m <= 50, where noise can put every
 * EPnP candidate in the basin of a pose turned by about 180 degrees), the best candidate turned by
 * 180 degrees about each model axis through the points' centroid. Returns the count. */
static int lm_starts(const double *X, const double *w, const int *idx, int m, const uakd_pose *cand, int nc,
                     uakd_pose starts[7]) {
    int ns = 0;
    for (int c = 0; c < nc; c++) starts[ns++] = cand[c];
    if (m > 50) return ns;
    double c0[3] = {0, 0, 0}, a[3];
    int used = 0;
    for (int k = 0; k < m; k++) {
        int i = point_index(idx, k);
        if (w && w[i] == 0) continue;
        for (int j = 0; j < 3; j++) c0[j] += X[3 * i + j];
        used++;
    }
    for (int j = 0; j < 3; j++) c0[j] /= used;
    uakd_mat3_vec(cand[0].R, c0, a);
    for (int axis = 0; axis < 3; axis++) { /* R' = R F, t' = t + R c0 - R' c0 keeps the centroid */
        double F[9] = {-1, 0, 0, 0, -1, 0, 0, 0, -1}, b[3];
        F[4 * axis] = 1;
        uakd_pose *s = &starts[ns++];
        uakd_mat3_mul(cand[0].R, F, s->R);
        uakd_mat3_vec(s->R, c0, b);
        for (int j = 0; j < 3; j++) s->t[j] = cand[0].t[j] + a[j] - b[j];
    }
    return ns;
}

/* Within 10 degrees and 10% depth: taken to lie in the same LM basin. */
static int near_pose(const uakd_pose *a, const uakd_pose *b) {
    return uakd_rot_distance(a->R, b->R) < 10 * M_PI / 180 && fabs(a->t[2] - b->t[2]) < 0.1 * fabs(b->t[2]);
}

/* EPnP on xy then LM on uv from each start, over the listed points; the lowest cost wins. A start
 * near an earlier start or an earlier solution is skipped; extra starts get at most 30 LM
 * iterations (one that has not converged by then is dropped). */
static uakd_status fit_checked(const uakd_camera *cam, const double *X, const double *uv, const double *xy,
                               const double *w, const int *idx, int m, const uakd_pnp_options *opt, uakd_pnp_result *out) {
    uakd_pose cand[4], starts[7], seen[14];
    int nc, nseen = 0;
    UAKD_TRY(uakd_pnp_epnp(X, xy, w, idx, m, cand, &nc));
    int ns = lm_starts(X, w, idx, m, cand, nc, starts);
    uakd_status st = UAKD_EDEGENERATE;
    double best = INFINITY;
    uakd_pnp_options extra = *opt;
    extra.max_iterations = opt->max_iterations < 30 ? opt->max_iterations : 30;
    for (int c = 0; c < ns; c++) {
        int skip = 0;
        for (int d = 0; d < nseen && !skip; d++) skip = near_pose(&starts[c], &seen[d]);
        seen[nseen++] = starts[c];
        if (skip) continue;
        uakd_pnp_result r;
        uakd_status s = refine_checked(cam, X, uv, w, idx, m, c ? &extra : opt, starts[c], &r);
        if (s != UAKD_OK) {
            if (st != UAKD_OK && c == 0) st = s; /* keep the best EPnP candidate's message */
            continue;
        }
        seen[nseen++] = r.pose;
        double cost, sse;
        int used;
        accumulate(cam, X, uv, w, idx, m, &r.pose, &cost, &sse, &used, NULL, NULL);
        if (cost < best) {
            best = cost;
            *out = r;
            st = UAKD_OK;
        }
    }
    if (st == UAKD_OK) uakd_clear_error();
    return st;
}

/* Checks the inputs shared by solve and RANSAC. */
static uakd_status check_input(const uakd_camera *cam, int n, const double *X, const double *uv, const double *w) {
    if (!(cam->fx > 0 && cam->fy > 0 && isfinite(cam->fx) && isfinite(cam->fy) && isfinite(cam->cx) && isfinite(cam->cy)))
        return uakd_fail(UAKD_EINVAL, "PnP: camera intrinsics must be finite with fx, fy > 0");
    for (int j = 0; j < 5; j++)
        if (!isfinite(cam->dist[j])) return uakd_fail(UAKD_EINVAL, "PnP: distortion coefficient %d is not finite", j);
    if (n < 4) return uakd_fail(UAKD_EDEGENERATE, "PnP: %d correspondences (at least 4 needed)", n);
    int used = 0;
    for (int i = 0; i < n; i++) {
        if (w && !(w[i] >= 0 && isfinite(w[i])))
            return uakd_fail(UAKD_EINVAL, "PnP: weight %d is %g (weights must be finite and >= 0)", i, w[i]);
        if (!(isfinite(X[3 * i]) && isfinite(X[3 * i + 1]) && isfinite(X[3 * i + 2])))
            return uakd_fail(UAKD_EDEGENERATE, "PnP: 3D point %d is not finite", i);
        if (!(isfinite(uv[2 * i]) && isfinite(uv[2 * i + 1])))
            return uakd_fail(UAKD_EDEGENERATE, "PnP: image point %d is not finite", i);
        used += !w || w[i] > 0;
    }
    if (used < 4) return uakd_fail(UAKD_EDEGENERATE, "PnP: %d points with non-zero weight (at least 4 needed)", used);
    return UAKD_OK;
}

uakd_status uakd_pnp_solve(const uakd_camera *cam, int n, const double *X, const double *uv, const double *w,
                           const uakd_pnp_options *opt, uakd_pnp_result *out) {
    uakd_pnp_options def;
    if (!opt) {
        uakd_pnp_default_options(&def);
        opt = &def;
    }
    UAKD_TRY(check_input(cam, n, X, uv, w));
    double stack[2 * 256], *xy = n <= 256 ? stack : malloc(2 * (size_t)n * sizeof *xy);
    if (!xy) return uakd_fail(UAKD_ENOMEM, "PnP: out of memory for %d points", n);
    uakd_status st = uakd_camera_undistort(cam, n, uv, xy);
    if (st == UAKD_OK) st = fit_checked(cam, X, uv, xy, w, NULL, n, opt, out);
    if (st == UAKD_OK) out->samples = 0;
    if (xy != stack) free(xy);
    return st;
}

void uakd_ransac_default_options(uakd_ransac_options *o) {
    o->threshold_px = 8;
    o->max_iterations = 1000;
    o->confidence = 0.999;
    o->seed = 0;
}


/* Inliers of pose p among the pool (error <= threshold, in front of the camera); returns their
 * count and writes their indices to in; *msac receives sum_i min(e_i^2, th^2). */
static int find_inliers(const uakd_camera *cam, const double *X, const double *uv, const int *pool, int np, double th,
                        const uakd_pose *p, int *in, double *msac) {
    int k = 0;
    double th2 = th * th, s = 0;
    for (int j = 0; j < np; j++) {
        int i = pool[j];
        double uvp[2], e2 = th2;
        if (uakd_camera_project(cam, p, X + 3 * i, uvp)) {
            double du = uvp[0] - uv[2 * i], dv = uvp[1] - uv[2 * i + 1];
            e2 = fmin(du * du + dv * dv, th2);
            if (du * du + dv * dv <= th2) in[k++] = i;
        }
        s += e2;
    }
    if (msac) *msac = s;
    return k;
}

static int same_set(const int *a, int na, const int *b, int nb) {
    return na == nb && !memcmp(a, b, (size_t)na * sizeof *a);
}

uakd_status uakd_pnp_ransac(const uakd_camera *cam, int n, const double *X, const double *uv, const double *w,
                            const uakd_ransac_options *ro, const uakd_pnp_options *opt, uakd_pnp_result *out,
                            unsigned char *inliers) {
    uakd_pnp_options def;
    if (!opt) {
        uakd_pnp_default_options(&def);
        opt = &def;
    }
    if (!(ro->threshold_px > 0 && isfinite(ro->threshold_px)))
        return uakd_fail(UAKD_EINVAL, "PnP RANSAC: threshold %g px must be positive and finite", ro->threshold_px);
    if (ro->max_iterations < 1) return uakd_fail(UAKD_EINVAL, "PnP RANSAC: iterations %d must be >= 1", ro->max_iterations);
    if (!(ro->confidence > 0 && ro->confidence < 1))
        return uakd_fail(UAKD_EINVAL, "PnP RANSAC: confidence %g must be in (0, 1)", ro->confidence);
    UAKD_TRY(check_input(cam, n, X, uv, w));
    double *xy = malloc((size_t)n * (2 * sizeof(double) + 3 * sizeof(int)));
    if (!xy) return uakd_fail(UAKD_ENOMEM, "PnP RANSAC: out of memory for %d points", n);
    int *pool = (int *)(xy + 2 * n), *in = pool + n, *best_in = in + n, np = 0;
    for (int i = 0; i < n; i++) /* usable: non-zero weight and inside the invertible distortion region */
        if ((!w || w[i] > 0) && uakd_camera_undistort(cam, 1, uv + 2 * i, xy + 2 * i) == UAKD_OK) pool[np++] = i;
    uakd_clear_error();
    uakd_status st = UAKD_OK;
    uakd_rng rng;
    uakd_rng_seed(&rng, ro->seed);
    double best_score = INFINITY;
    int nbest = 0, samples = 0;
    uakd_pose best;
    long long kmax = ro->max_iterations;
    const int ss = np >= 5 ? 5 : 4; /* sample size: 5 like OpenCV, 4 when only 4 points are usable */
    if (np < 4) {
        st = uakd_fail(UAKD_EDEGENERATE, "PnP RANSAC: %d usable points (at least 4 needed)", np);
        goto done;
    }
    while (samples < kmax) {
        samples++;
        int s[5];
        for (int a = 0; a < ss; a++) { /* distinct indices into the pool */
            int dup;
            do {
                s[a] = pool[uakd_rng_below(&rng, (uint64_t)np)];
                dup = 0;
                for (int b = 0; b < a; b++) dup |= s[b] == s[a];
            } while (dup);
        }
        uakd_pose cand[4];
        int nc;
        if (uakd_pnp_epnp(X, xy, w, s, ss, cand, &nc) != UAKD_OK) continue;
        uakd_pose p = cand[0];
        double score;
        int k = find_inliers(cam, X, uv, pool, np, ro->threshold_px, &p, in, &score);
        if (score < best_score && k >= ss) {
            best_score = score;
            best = p;
            nbest = k;
            double frac = (double)k / np, miss = 1 - pow(frac, ss);
            double need = miss <= 0 ? 1 : ceil(log(1 - ro->confidence) / log(miss));
            if (need < (double)kmax) kmax = (long long)fmax(need, 1);
        }
    }
    uakd_clear_error();
    if (nbest < ss) {
        st = uakd_fail(UAKD_EDEGENERATE, "PnP RANSAC: no sample of %d found %d inliers at %g px in %d samples", np,
                       ss, ro->threshold_px, samples);
        goto done;
    }
    nbest = find_inliers(cam, X, uv, pool, np, ro->threshold_px, &best, best_in, NULL);
    for (int round = 0; round < 5; round++) { /* refit on the inliers until the set is stable */
        /* LM from the current pose, and in the first round also EPnP + multi-start LM on the inliers */
        uakd_pnp_result r, r2;
        uakd_status s1 = refine_checked(cam, X, uv, w, best_in, nbest, opt, best, &r);
        uakd_status s2 = round ? UAKD_EDEGENERATE : fit_checked(cam, X, uv, xy, w, best_in, nbest, opt, &r2);
        if (s1 != UAKD_OK && s2 != UAKD_OK) {
            st = s1;
            goto done;
        }
        double c1 = INFINITY, c2 = INFINITY, sse;
        int used;
        if (s1 == UAKD_OK) accumulate(cam, X, uv, w, best_in, nbest, &r.pose, &c1, &sse, &used, NULL, NULL);
        if (s2 == UAKD_OK) accumulate(cam, X, uv, w, best_in, nbest, &r2.pose, &c2, &sse, &used, NULL, NULL);
        if (c2 < c1) r = r2;
        st = UAKD_OK;
        uakd_clear_error();
        *out = r;
        best = r.pose;
        int k = find_inliers(cam, X, uv, pool, np, ro->threshold_px, &best, in, NULL);
        if (same_set(in, k, best_in, nbest) || k < ss) break;
        memcpy(best_in, in, (size_t)k * sizeof *in);
        nbest = k;
    }
    out->samples = samples;
    if (inliers) {
        memset(inliers, 0, (size_t)n);
        for (int k = 0; k < nbest; k++) inliers[best_in[k]] = 1;
    }
done:
    free(xy);
    return st;
}
