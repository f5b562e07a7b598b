/* Per-pose metrics: ADD, ADD-S with a k-d tree, 2D projection error, rotation and translation
 * errors, and the SPEED+ score and its per-domain means (formulas in include/uakd/metrics.h).
 *
 * The k-d tree stores the points reordered so every node is a contiguous range [lo, hi): leaves
 * hold at most 8 points; an inner node splits at the median of its widest axis (quickselect).
 * A query descends to the near child first and visits the far child only when the splitting
 * plane is closer than the best distance so far. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/metrics.h"

enum { LEAF = 8 };

typedef struct {
    int lo, hi;   /* point range */
    int axis;     /* -1 for a leaf */
    double split; /* coordinate of the median along axis */
    int left, right;
} kd_node;

struct uakd_nn_index {
    int n, num_nodes;
    double *pts; /* n x 3, reordered */
    int *ids;    /* original index of each reordered point */
    kd_node *nodes;
};

static void swap_points(uakd_nn_index *ix, int a, int b) {
    for (int k = 0; k < 3; k++) {
        double t = ix->pts[3 * a + k];
        ix->pts[3 * a + k] = ix->pts[3 * b + k];
        ix->pts[3 * b + k] = t;
    }
    int t = ix->ids[a];
    ix->ids[a] = ix->ids[b];
    ix->ids[b] = t;
}

/* Quickselect: puts the k-th smallest (along axis) of [lo, hi) at k, smaller ones before it. */
static void select_kth(uakd_nn_index *ix, int lo, int hi, int k, int axis) {
    while (hi - lo > 1) {
        double pivot = ix->pts[3 * (lo + (hi - lo) / 2) + axis];
        int i = lo, j = hi - 1;
        while (i <= j) {
            while (ix->pts[3 * i + axis] < pivot) i++;
            while (ix->pts[3 * j + axis] > pivot) j--;
            if (i <= j) swap_points(ix, i++, j--);
        }
        if (k <= j)
            hi = j + 1;
        else if (k >= i)
            lo = i;
        else
            return;
    }
}

static int build(uakd_nn_index *ix, int lo, int hi) {
    int id = ix->num_nodes++;
    kd_node *nd = &ix->nodes[id];
    nd->lo = lo;
    nd->hi = hi;
    nd->axis = -1;
    if (hi - lo <= LEAF) return id;
    double mn[3], mx[3];
    for (int k = 0; k < 3; k++) mn[k] = mx[k] = ix->pts[3 * lo + k];
    for (int i = lo + 1; i < hi; i++)
        for (int k = 0; k < 3; k++) {
            mn[k] = fmin(mn[k], ix->pts[3 * i + k]);
            mx[k] = fmax(mx[k], ix->pts[3 * i + k]);
        }
    int axis = 0;
    for (int k = 1; k < 3; k++)
        if (mx[k] - mn[k] > mx[axis] - mn[axis]) axis = k;
    int mid = lo + (hi - lo) / 2;
    select_kth(ix, lo, hi, mid, axis);
    double split = ix->pts[3 * mid + axis];
    int left = build(ix, lo, mid), right = build(ix, mid, hi);
    nd = &ix->nodes[id]; /* (the array does not move: sized up front) */
    nd->axis = axis;
    nd->split = split;
    nd->left = left;
    nd->right = right;
    return id;
}

uakd_status uakd_nn_index_new(const float *xyz, int n, uakd_nn_index **out) {
    *out = NULL;
    if (n <= 0) return uakd_fail(UAKD_EINVAL, "nearest-neighbour index: no points");
    for (int i = 0; i < 3 * n; i++)
        if (!isfinite(xyz[i])) return uakd_fail(UAKD_EINVAL, "nearest-neighbour index: point %d is not finite", i / 3);
    uakd_nn_index *ix = calloc(1, sizeof *ix);
    size_t max_nodes = 2 * ((size_t)n / (LEAF / 2) + 1) + 1;
    if (ix) {
        ix->pts = malloc(3 * (size_t)n * sizeof *ix->pts);
        ix->ids = malloc((size_t)n * sizeof *ix->ids);
        ix->nodes = malloc(max_nodes * sizeof *ix->nodes);
    }
    if (!ix || !ix->pts || !ix->ids || !ix->nodes) {
        uakd_nn_index_free(ix);
        return uakd_fail(UAKD_ENOMEM, "nearest-neighbour index: out of memory for %d points", n);
    }
    ix->n = n;
    for (int i = 0; i < n; i++) {
        ix->ids[i] = i;
        for (int k = 0; k < 3; k++) ix->pts[3 * i + k] = xyz[3 * i + k];
    }
    build(ix, 0, n);
    *out = ix;
    return UAKD_OK;
}

void uakd_nn_index_free(uakd_nn_index *ix) {
    if (!ix) return;
    free(ix->pts);
    free(ix->ids);
    free(ix->nodes);
    free(ix);
}

static void search(const uakd_nn_index *ix, int node, const double q[3], double *best, int *which) {
    const kd_node *nd = &ix->nodes[node];
    if (nd->axis < 0) {
        for (int i = nd->lo; i < nd->hi; i++) {
            const double *p = ix->pts + 3 * i;
            double dx = p[0] - q[0], dy = p[1] - q[1], dz = p[2] - q[2], d = dx * dx + dy * dy + dz * dz;
            if (d < *best) {
                *best = d;
                *which = i;
            }
        }
        return;
    }
    double diff = q[nd->axis] - nd->split;
    int near = diff < 0 ? nd->left : nd->right, far = diff < 0 ? nd->right : nd->left;
    search(ix, near, q, best, which);
    if (diff * diff < *best) search(ix, far, q, best, which);
}

double uakd_nn_index_nearest(const uakd_nn_index *ix, const double q[3], int *which) {
    double best = INFINITY;
    int w = 0;
    search(ix, 0, q, &best, &w);
    if (which) *which = ix->ids[w];
    return best;
}

double uakd_metric_add(const float *xyz, int n, const uakd_pose *gt, const uakd_pose *est) {
    double s = 0;
    for (int i = 0; i < n; i++) {
        double X[3] = {xyz[3 * i], xyz[3 * i + 1], xyz[3 * i + 2]}, a[3], b[3];
        uakd_pose_apply(gt, X, a);
        uakd_pose_apply(est, X, b);
        s += sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]));
    }
    return n > 0 ? s / n : 0;
}

double uakd_metric_adds(const uakd_nn_index *ix, const float *xyz, int n, const uakd_pose *gt, const uakd_pose *est) {
    double Rt[9], s = 0;
    uakd_mat3_transpose(est->R, Rt);
    for (int i = 0; i < n; i++) {
        double X[3] = {xyz[3 * i], xyz[3 * i + 1], xyz[3 * i + 2]}, a[3], q[3];
        uakd_pose_apply(gt, X, a);
        for (int k = 0; k < 3; k++) a[k] -= est->t[k];
        uakd_mat3_vec(Rt, a, q);
        s += sqrt(uakd_nn_index_nearest(ix, q, NULL));
    }
    return n > 0 ? s / n : 0;
}

double uakd_metric_proj2d(const uakd_camera *cam, const float *xyz, int n, const uakd_pose *gt, const uakd_pose *est) {
    double s = 0;
    for (int i = 0; i < n; i++) {
        double X[3] = {xyz[3 * i], xyz[3 * i + 1], xyz[3 * i + 2]}, a[2], b[2];
        if (!uakd_camera_project(cam, gt, X, a) || !uakd_camera_project(cam, est, X, b)) return INFINITY;
        s += hypot(a[0] - b[0], a[1] - b[1]);
    }
    return n > 0 ? s / n : 0;
}

double uakd_metric_rot_deg(const uakd_pose *gt, const uakd_pose *est) {
    return uakd_rot_distance(gt->R, est->R) * 180 / M_PI;
}

double uakd_metric_trans(const uakd_pose *gt, const uakd_pose *est) {
    double d[3] = {est->t[0] - gt->t[0], est->t[1] - gt->t[1], est->t[2] - gt->t[2]};
    return sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
}

uakd_status uakd_speed_score_compute(const double q_gt[4], const double t_gt[3], const double q[4], const double t[3],
                                     int apply_thresholds, uakd_speed_score *out) {
    double ng = 0, ne = 0, dot = 0, tg = 0, et = 0;
    for (int k = 0; k < 4; k++) {
        ng += q_gt[k] * q_gt[k];
        ne += q[k] * q[k];
        dot += q_gt[k] * q[k];
    }
    for (int k = 0; k < 3; k++) {
        tg += t_gt[k] * t_gt[k];
        et += (t_gt[k] - t[k]) * (t_gt[k] - t[k]);
    }
    if (!(isfinite(ng) && isfinite(ne) && isfinite(dot) && isfinite(tg) && isfinite(et)) || ng == 0 || ne == 0)
        return uakd_fail(UAKD_EINVAL, "SPEED+ score: quaternions must be finite and non-zero, translations finite");
    if (tg == 0) return uakd_fail(UAKD_EINVAL, "SPEED+ score: |t_gt| = 0, the normalised translation error is undefined");
    out->e_t = sqrt(et);
    out->e_t_norm = out->e_t / sqrt(tg);
    out->e_q = 2 * acos(fmin(1, fabs(dot) / sqrt(ng * ne)));
    double st = out->e_t_norm, sq = out->e_q;
    if (apply_thresholds) {
        if (sq < 0.169 * M_PI / 180) sq = 0;
        if (st < 2.173e-3) st = 0;
    }
    out->e_pose = st + sq;
    return UAKD_OK;
}

void uakd_speed_stats_add(uakd_speed_stats *s, const uakd_speed_score *score) {
    s->images++;
    s->sum_e_t += score->e_t;
    s->sum_e_q += score->e_q;
    s->sum_e_pose += score->e_pose;
}

void uakd_speed_stats_means(const uakd_speed_stats *s, double *E_T, double *E_R_deg, double *E_pose) {
    double n = s->images > 0 ? s->images : 1;
    *E_T = s->sum_e_t / n;
    *E_R_deg = s->sum_e_q / n * 180 / M_PI;
    *E_pose = s->sum_e_pose / n;
}
