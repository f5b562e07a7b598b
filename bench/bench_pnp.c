/* PnP benchmark against OpenCV on the same cases: runs bench/pnp_peer.py (which makes the cases
 * and times OpenCV), times uakd on them, prints medians, ratios, failures and silent failures.
 *
 *   build/bench/bench_pnp [cases_per_group] [reps]      (from the repository root)
 *
 * Pairs compared: uakd_pnp_epnp (with undistortion) vs SOLVEPNP_EPNP; uakd_pnp_solve (EPnP + LM)
 * vs SOLVEPNP_ITERATIVE; uakd_pnp_ransac (8 px, confidence 0.99, cap 100) vs solvePnPRansac.
 * Silent failure: success reported with rotation error > 10 deg, translation error > 10%, or a
 * point behind the camera (the same rule as the peer). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "uakd/pnp.h"

static const uakd_camera cam = {572.4114, 573.57043, 325.2611, 242.04899, {0}};
static const char *groups[4] = {"8", "11+out", "80", "200"};
static const char *solvers[3] = {"epnp", "iterative", "ransac"};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int flat(const cJSON *a, double *out, int cap) {
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) if (k < cap) out[k++] = e->valuedouble;
    return k;
}

/* 0 ok, 1 failure reported, 2 silent failure. */
static int judge(uakd_status st, const uakd_pose *p, const uakd_pose *truth, const double *X, int n, double *rot_deg) {
    if (st != UAKD_OK) return 1;
    *rot_deg = uakd_rot_distance(p->R, truth->R) * 180 / M_PI;
    double dt = 0, tn = 0;
    for (int k = 0; k < 3; k++) {
        dt += (p->t[k] - truth->t[k]) * (p->t[k] - truth->t[k]);
        tn += truth->t[k] * truth->t[k];
    }
    int behind = 0;
    for (int i = 0; i < n; i++) {
        double c[3];
        uakd_pose_apply(p, X + 3 * i, c);
        behind |= !(c[2] > 0);
    }
    return *rot_deg > 10 || dt > 0.01 * tn || behind ? 2 : 0;
}

static uakd_status run_solver(int s, int n, const double *X, const double *uv, uakd_pose *p) {
    if (s == 0) {
        double xy[400];
        uakd_pose cand[4];
        int nc;
        UAKD_TRY(uakd_camera_undistort(&cam, n, uv, xy));
        UAKD_TRY(uakd_pnp_epnp(X, xy, NULL, NULL, n, cand, &nc));
        *p = cand[0];
        return UAKD_OK;
    }
    uakd_pnp_result r;
    uakd_status st;
    if (s == 1) {
        st = uakd_pnp_solve(&cam, n, X, uv, NULL, NULL, &r);
    } else {
        uakd_ransac_options ro;
        uakd_ransac_default_options(&ro);
        ro.threshold_px = 8;
        ro.confidence = 0.99;
        ro.max_iterations = 100;
        st = uakd_pnp_ransac(&cam, n, X, uv, NULL, &ro, NULL, &r, NULL);
    }
    if (st == UAKD_OK) *p = r.pose;
    return st;
}

int main(int argc, char **argv) {
    int count = argc > 1 ? atoi(argv[1]) : 100, reps = argc > 2 ? atoi(argv[2]) : 5;
    if (count < 1 || reps < 1) {
        fprintf(stderr, "usage: bench_pnp [cases_per_group >= 1] [reps >= 1]\n");
        return 2;
    }
    char cmd[256];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 bench/pnp_peer.py %d %d", count, reps);
    FILE *p = popen(cmd, "r");
    if (!p) {
        fprintf(stderr, "bench_pnp: cannot run %s\n", cmd);
        return 1;
    }
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + len, 1, cap - 1 - len, p)) > 0;) {
        len += got;
        if (len + 1 == cap) {
            char *g = realloc(buf, cap *= 2);
            if (!g) {
                free(buf);
                buf = NULL;
            }
            buf = g;
        }
    }
    int rc = pclose(p);
    if (!buf || rc != 0) {
        fprintf(stderr, "bench_pnp: the peer (%s) failed\n", cmd);
        free(buf);
        return 1;
    }
    buf[len] = 0;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    const cJSON *cases = cJSON_GetObjectItem(j, "cases"), *cv = cJSON_GetObjectItem(j, "opencv");
    if (!cases || !cv) {
        fprintf(stderr, "bench_pnp: unreadable peer output\n");
        cJSON_Delete(j);
        return 1;
    }
    printf("PnP, LINEMOD camera, 15 cm object at 0.6-1.2 m, 1 px noise; %d cases per group x %d reps; OpenCV %s\n",
           count, reps, cJSON_GetObjectItem(j, "opencv_version")->valuestring);
    printf("| points | solver (uakd vs OpenCV) | uakd median us | OpenCV median us | OpenCV/uakd | uakd fail/silent | "
           "OpenCV fail/silent | uakd rot err deg | OpenCV rot err deg |\n|---|---|---|---|---|---|---|---|---|\n");
    static const char *names[3] = {"epnp vs EPNP", "solve vs ITERATIVE", "ransac vs solvePnPRansac"};
    for (int g = 0; g < 4; g++) {
        for (int s = 0; s < 3; s++) {
            if ((s == 2) != (g == 1)) continue; /* RANSAC for the outlier group only, the others without */
            double *times = malloc((size_t)count * (size_t)reps * sizeof *times), err_sum = 0;
            int nt = 0, fails = 0, silent = 0, ok = 0;
            const cJSON *c;
            cJSON_ArrayForEach(c, cases) {
                if (strcmp(cJSON_GetObjectItem(c, "group")->valuestring, groups[g])) continue;
                double X[600], uv[400];
                uakd_pose truth, pose = {{0}, {0}};
                int n = flat(cJSON_GetObjectItem(c, "points3d"), X, 600) / 3;
                flat(cJSON_GetObjectItem(c, "points2d"), uv, 400);
                flat(cJSON_GetObjectItem(c, "R"), truth.R, 9);
                flat(cJSON_GetObjectItem(c, "t"), truth.t, 3);
                uakd_status st = UAKD_OK;
                for (int r = 0; r < reps && nt < count * reps; r++) {
                    double t0 = now();
                    st = run_solver(s, n, X, uv, &pose);
                    times[nt++] = now() - t0;
                }
                double rot = 0;
                int v = judge(st, &pose, &truth, X, n, &rot);
                fails += v == 1;
                silent += v == 2;
                if (v == 0) {
                    ok++;
                    err_sum += rot;
                }
            }
            qsort(times, (size_t)nt, sizeof *times, cmp_double);
            double ours = nt ? times[nt / 2] * 1e6 : NAN;
            free(times);
            const cJSON *o = cJSON_GetObjectItem(cJSON_GetObjectItem(cv, groups[g]), solvers[s]);
            double theirs = cJSON_GetObjectItem(o, "median_us")->valuedouble;
            const cJSON *oe = cJSON_GetObjectItem(o, "mean_rot_err_deg");
            printf("| %s | %s | %.1f | %.1f | %.2f | %d/%d | %d/%d | %.3f | %.3f |\n", groups[g], names[s], ours, theirs,
                   theirs / ours, fails, silent, cJSON_GetObjectItem(o, "fail")->valueint,
                   cJSON_GetObjectItem(o, "silent")->valueint, ok ? err_sum / ok : NAN,
                   cJSON_IsNumber(oe) ? oe->valuedouble : NAN);
        }
    }
    cJSON_Delete(j);
    return 0;
}
