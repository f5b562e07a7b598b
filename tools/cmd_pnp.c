/* `uakd pnp`: pose from 3D-2D correspondences given as JSON (file or stdin), printed as JSON.
 * Input is validated strictly (unknown keys, shapes, non-numbers are errors). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "uakd/pnp.h"

enum { MAX_INPUT = 64 << 20, MAX_POINTS = 1 << 20 };

static void usage(FILE *f) {
    fprintf(f,
            "usage: uakd pnp [FILE | -]\n\n"
            "Estimates the pose of a rigid object from 3D-2D correspondences. Reads JSON from FILE or\n"
            "stdin ('-' or no argument):\n"
            "  {\"K\": [[fx,0,cx],[0,fy,cy],[0,0,1]],       camera matrix (no skew)\n"
            "   \"dist\": [k1,k2,p1,p2,k3],                 optional, OpenCV distortion (default zeros)\n"
            "   \"points3d\": [[x,y,z],...],                 model points (n >= 4)\n"
            "   \"points2d\": [[u,v],...],                   pixels, same n\n"
            "   \"weights\": [w,...],                        optional, >= 0 (default 1; 0 ignores a point)\n"
            "   \"ransac\": {\"threshold\": px, \"iterations\": n, \"confidence\": c, \"seed\": s}}\n"
            "                                               optional; each field optional (defaults 8, 1000,\n"
            "                                               0.999, 0)\n"
            "Prints {\"R\": [[...],[...],[...]], \"t\": [...], \"inliers\": [indices], \"reprojection_rmse\": px}\n"
            "(x_cam = R X + t; RMSE over the inliers). EPnP + Levenberg-Marquardt, in RANSAC when asked.\n"
            "Exits non-zero with a message when the input is invalid or no trustworthy pose exists\n"
            "(fewer than 4 points, collinear points, points behind the camera, no consensus...).\n");
}

static uakd_status read_all(const char *path, char **out) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return uakd_fail(UAKD_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (len + 1 >= cap) {
            if (cap >= MAX_INPUT) {
                free(buf);
                if (f != stdin) fclose(f);
                return uakd_fail(UAKD_EFORMAT, "%s: input larger than %d MiB", path, MAX_INPUT >> 20);
            }
            char *g = realloc(buf, cap * 2);
            if (!g) break;
            buf = g;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - 1 - len, f);
        len += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    if (f != stdin) fclose(f);
    if (!buf) return uakd_fail(UAKD_ENOMEM, "%s: out of memory", path);
    if (err) {
        free(buf);
        return uakd_fail(UAKD_EIO, "%s: read error", path);
    }
    buf[len] = 0;
    *out = buf;
    return UAKD_OK;
}

/* A JSON array of exactly k finite numbers into out. */
static uakd_status get_numbers(const char *src, const char *field, const cJSON *a, double *out, int k) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != k)
        return uakd_fail(UAKD_EFORMAT, "%s: \"%s\" must be an array of %d numbers", src, field, k);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble))
            return uakd_fail(UAKD_EFORMAT, "%s: \"%s\"[%d] must be a finite number", src, field, i);
        out[i++] = e->valuedouble;
    }
    return UAKD_OK;
}

/* A JSON array of n rows of k numbers; allocates *out (n x k). */
static uakd_status get_rows(const char *src, const char *field, const cJSON *a, int k, double **out, int *n) {
    if (!cJSON_IsArray(a)) return uakd_fail(UAKD_EFORMAT, "%s: \"%s\" must be an array of [%d numbers]", src, field, k);
    int m = cJSON_GetArraySize(a);
    if (m > MAX_POINTS) return uakd_fail(UAKD_EFORMAT, "%s: \"%s\" has %d rows (at most %d)", src, field, m, MAX_POINTS);
    *out = malloc((size_t)(m ? m : 1) * (size_t)k * sizeof **out);
    if (!*out) return uakd_fail(UAKD_ENOMEM, "%s: out of memory for \"%s\"", src, field);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        char name[64];
        snprintf(name, sizeof name, "%s[%d]", field, i);
        UAKD_TRY(get_numbers(src, name, e, *out + (size_t)i * (size_t)k, k));
        i++;
    }
    *n = m;
    return UAKD_OK;
}

typedef struct {
    uakd_camera cam;
    int n, use_ransac;
    double *X, *uv, *w;
    uakd_ransac_options ro;
} pnp_input;

static uakd_status parse_ransac(const char *src, const cJSON *r, uakd_ransac_options *ro) {
    if (!cJSON_IsObject(r)) return uakd_fail(UAKD_EFORMAT, "%s: \"ransac\" must be an object", src);
    const cJSON *e;
    cJSON_ArrayForEach(e, r) {
        double v = e->valuedouble;
        if (!cJSON_IsNumber(e) || !isfinite(v))
            return uakd_fail(UAKD_EFORMAT, "%s: \"ransac.%s\" must be a number", src, e->string);
        if (!strcmp(e->string, "threshold")) {
            if (!(v > 0)) return uakd_fail(UAKD_EFORMAT, "%s: \"ransac.threshold\" must be > 0 pixels", src);
            ro->threshold_px = v;
        } else if (!strcmp(e->string, "iterations")) {
            if (v != floor(v) || v < 1 || v > 1e7)
                return uakd_fail(UAKD_EFORMAT, "%s: \"ransac.iterations\" must be an integer in [1, 1e7]", src);
            ro->max_iterations = (int)v;
        } else if (!strcmp(e->string, "confidence")) {
            if (!(v > 0 && v < 1)) return uakd_fail(UAKD_EFORMAT, "%s: \"ransac.confidence\" must be in (0, 1)", src);
            ro->confidence = v;
        } else if (!strcmp(e->string, "seed")) {
            if (v != floor(v) || v < 0 || v > 9007199254740992.0)
                return uakd_fail(UAKD_EFORMAT, "%s: \"ransac.seed\" must be an integer in [0, 2^53]", src);
            ro->seed = (uint64_t)v;
        } else {
            return uakd_fail(UAKD_EFORMAT, "%s: unknown key \"ransac.%s\" (known: threshold, iterations, confidence, seed)",
                             src, e->string);
        }
    }
    return UAKD_OK;
}

static uakd_status parse_input(const char *src, const cJSON *j, pnp_input *in) {
    if (!cJSON_IsObject(j)) return uakd_fail(UAKD_EFORMAT, "%s: the input must be a JSON object", src);
    const cJSON *e, *K = NULL, *P3 = NULL, *P2 = NULL, *W = NULL, *D = NULL, *R = NULL;
    cJSON_ArrayForEach(e, j) {
        const char *k = e->string;
        const cJSON **slot = !strcmp(k, "K")          ? &K
                             : !strcmp(k, "points3d") ? &P3
                             : !strcmp(k, "points2d") ? &P2
                             : !strcmp(k, "weights")  ? &W
                             : !strcmp(k, "dist")     ? &D
                             : !strcmp(k, "ransac")   ? &R
                                                      : NULL;
        if (!slot)
            return uakd_fail(UAKD_EFORMAT, "%s: unknown key \"%s\" (known: K, dist, points3d, points2d, weights, ransac)",
                             src, k);
        if (*slot) return uakd_fail(UAKD_EFORMAT, "%s: key \"%s\" given twice", src, k);
        *slot = e;
    }
    if (!K || !P3 || !P2) return uakd_fail(UAKD_EFORMAT, "%s: \"K\", \"points3d\" and \"points2d\" are required", src);
    double *k9 = NULL;
    int rows = 0;
    uakd_status st = get_rows(src, "K", K, 3, &k9, &rows);
    if (st == UAKD_OK && rows != 3) st = uakd_fail(UAKD_EFORMAT, "%s: \"K\" must be 3x3", src);
    if (st == UAKD_OK && (k9[1] != 0 || k9[3] != 0 || k9[6] != 0 || k9[7] != 0 || k9[8] != 1))
        st = uakd_fail(UAKD_EFORMAT, "%s: \"K\" must be [[fx,0,cx],[0,fy,cy],[0,0,1]] (no skew)", src);
    if (st == UAKD_OK && !(k9[0] > 0 && k9[4] > 0))
        st = uakd_fail(UAKD_EFORMAT, "%s: \"K\": fx and fy must be positive", src);
    if (st == UAKD_OK) in->cam = (uakd_camera){k9[0], k9[4], k9[2], k9[5], {0}};
    free(k9);
    UAKD_TRY(st);
    if (D) UAKD_TRY(get_numbers(src, "dist", D, in->cam.dist, 5));
    int n2 = 0;
    UAKD_TRY(get_rows(src, "points3d", P3, 3, &in->X, &in->n));
    UAKD_TRY(get_rows(src, "points2d", P2, 2, &in->uv, &n2));
    if (n2 != in->n)
        return uakd_fail(UAKD_EFORMAT, "%s: %d points3d but %d points2d (they must pair up)", src, in->n, n2);
    if (W) {
        in->w = malloc((size_t)(in->n ? in->n : 1) * sizeof *in->w);
        if (!in->w) return uakd_fail(UAKD_ENOMEM, "%s: out of memory", src);
        UAKD_TRY(get_numbers(src, "weights", W, in->w, in->n));
        for (int i = 0; i < in->n; i++)
            if (in->w[i] < 0) return uakd_fail(UAKD_EFORMAT, "%s: \"weights\"[%d] must be >= 0", src, i);
    }
    uakd_ransac_default_options(&in->ro);
    if (R) {
        in->use_ransac = 1;
        UAKD_TRY(parse_ransac(src, R, &in->ro));
    }
    return UAKD_OK;
}

static void print_result(const pnp_input *in, const uakd_pnp_result *r, const unsigned char *inl) {
    const double *R = r->pose.R, *t = r->pose.t;
    printf("{\"R\": [[%.17g, %.17g, %.17g], [%.17g, %.17g, %.17g], [%.17g, %.17g, %.17g]], ", R[0], R[1], R[2], R[3],
           R[4], R[5], R[6], R[7], R[8]);
    printf("\"t\": [%.17g, %.17g, %.17g], \"inliers\": [", t[0], t[1], t[2]);
    int first = 1;
    for (int i = 0; i < in->n; i++)
        if (inl[i]) {
            printf(first ? "%d" : ", %d", i);
            first = 0;
        }
    printf("], \"reprojection_rmse\": %.17g}\n", r->rmse_px);
}

int uakd_cmd_pnp(int argc, char **argv) {
    if (uakd_cli_wants_help(argc, argv)) {
        usage(stdout);
        return UAKD_EXIT_OK;
    }
    if (argc > 2 || (argc == 2 && argv[1][0] == '-' && argv[1][1])) {
        fprintf(stderr, "uakd pnp: unexpected argument '%s'\n", argv[argc - 1]);
        usage(stderr);
        return UAKD_EXIT_USAGE;
    }
    const char *src = argc == 2 ? argv[1] : "-";
    char *text = NULL;
    uakd_status st = read_all(src, &text);
    if (st != UAKD_OK) return uakd_cli_report("pnp", st);
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) {
        cJSON_Delete(j);
        return uakd_cli_report("pnp", uakd_fail(UAKD_EFORMAT, "%s: not valid JSON", src));
    }
    pnp_input in = {0};
    unsigned char *inl = NULL;
    uakd_pnp_result r;
    st = parse_input(src, j, &in);
    cJSON_Delete(j);
    if (st == UAKD_OK) {
        inl = malloc((size_t)(in.n ? in.n : 1));
        if (!inl) st = uakd_fail(UAKD_ENOMEM, "out of memory");
    }
    if (st == UAKD_OK && in.use_ransac) {
        st = uakd_pnp_ransac(&in.cam, in.n, in.X, in.uv, in.w, &in.ro, NULL, &r, inl);
    } else if (st == UAKD_OK) {
        st = uakd_pnp_solve(&in.cam, in.n, in.X, in.uv, in.w, NULL, &r);
        for (int i = 0; i < in.n; i++) inl[i] = !in.w || in.w[i] > 0;
    }
    if (st == UAKD_OK) print_result(&in, &r, inl);
    free(inl);
    free(in.X);
    free(in.uv);
    free(in.w);
    return uakd_cli_report("pnp", st);
}
