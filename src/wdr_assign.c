/* Depth-range-aware target assignment of WDRNet (models.md). For each image with an object of
 * class c and 2D size S (box of the projected corners, max(w, h) + 1): level l gets the quota
 * n_l = floor(10 g_l / sum g + 0.5), g_l = exp(-(log2(S / A_l))^2); the candidates of level l are the
 * cells whose centre pixel (floor(c_x), floor(c_y)) is visible in the mask; n_l of them are drawn
 * uniformly without replacement (partial Fisher-Yates with the caller's RNG, anew on every call)
 * and become positives (label 1, offset targets dx = (u - c_x)/A, dy = (v - c_y)/A); the other
 * candidates are ignored (-1) by the classification loss; every other cell and class is
 * background (0). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/mesh.h"
#include "uakd/wdr.h"

uakd_status uakd_wdr_targets_new(const uakd_wdr_levels *lv, int n, int c, uakd_wdr_targets **out) {
    *out = NULL;
    if (lv->n < 1 || lv->n > UAKD_WDR_MAX_LEVELS)
        return uakd_fail(UAKD_EINVAL, "wdr targets: %d levels (initialise them with uakd_wdr_levels_init)", lv->n);
    if (n < 1 || c < 1 || n > (1 << 16) || c > 1024)
        return uakd_fail(UAKD_EINVAL, "wdr targets: batch %d and classes %d outside 1..65536 and 1..1024", n, c);
    for (int l = 0; l < lv->n; l++)
        if ((double)n * c * lv->gw[l] * lv->gh[l] > (double)(1u << 31))
            return uakd_fail(UAKD_ENOMEM, "wdr targets: label map of level %d too large (%d images x %d classes x %dx%d)",
                             l, n, c, lv->gw[l], lv->gh[l]);
    uakd_wdr_targets *t = calloc(1, sizeof *t);
    if (!t) return uakd_fail(UAKD_ENOMEM, "wdr targets: out of memory");
    t->lv = *lv;
    t->n = n;
    t->c = c;
    t->cap = 16 * n;
    t->pos = malloc((size_t)t->cap * sizeof *t->pos);
    t->obj = calloc((size_t)n, sizeof *t->obj);
    int ok = t->pos && t->obj;
    for (int l = 0; l < lv->n && ok; l++) {
        size_t cells = (size_t)lv->gw[l] * (size_t)lv->gh[l];
        t->label[l] = calloc((size_t)n * (size_t)c * cells, 1);
        ok = t->label[l] != NULL;
    }
    if (!ok) {
        uakd_wdr_targets_free(t);
        return uakd_fail(UAKD_ENOMEM, "wdr targets: out of memory for batch %d, %d classes", n, c);
    }
    *out = t;
    return UAKD_OK;
}

void uakd_wdr_targets_free(uakd_wdr_targets *t) {
    if (!t) return;
    for (int l = 0; l < UAKD_WDR_MAX_LEVELS; l++) free(t->label[l]);
    free(t->pos);
    free(t->obj);
    free(t);
}

static int all_finite(const double *x, int n) {
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

uakd_status uakd_wdr_targets_reset(uakd_wdr_targets *t, const uakd_wdr_object *objs) {
    for (int i = 0; i < t->n; i++) {
        const uakd_wdr_object *o = &objs[i];
        if (o->cls >= t->c)
            return uakd_fail(UAKD_EINVAL, "wdr targets: image %d has class %d but the head has %d classes", i, o->cls,
                             t->c);
        if (o->cls < 0) continue;
        if (!(o->diameter > 0 && isfinite(o->diameter)))
            return uakd_fail(UAKD_EINVAL, "wdr targets: image %d: object diameter %g must be positive", i, o->diameter);
        if (!all_finite(o->corners2d, 16) || !all_finite(o->corners_cam, 24) || !all_finite(o->K, 9))
            return uakd_fail(UAKD_EINVAL, "wdr targets: image %d: corners or K not finite", i);
    }
    for (int l = 0; l < t->lv.n; l++)
        memset(t->label[l], 0, (size_t)t->n * (size_t)t->c * (size_t)uakd_wdr_level_cells(&t->lv, l));
    for (int i = 0; i < t->n; i++) {
        t->obj[i] = objs[i];
        t->obj[i].mask = NULL;
    }
    t->npos = 0;
    return UAKD_OK;
}

uakd_status uakd_wdr_targets_mark(uakd_wdr_targets *t, int image, int level, int col, int row, int label) {
    if (image < 0 || image >= t->n || level < 0 || level >= t->lv.n || col < 0 || col >= t->lv.gw[level] || row < 0 ||
        row >= t->lv.gh[level])
        return uakd_fail(UAKD_EINVAL, "wdr targets: cell (image %d, level %d, col %d, row %d) outside the grid", image,
                         level, col, row);
    if (label != 1 && label != -1)
        return uakd_fail(UAKD_EINVAL, "wdr targets: label %d (use 1 positive or -1 ignore)", label);
    int cls = t->obj[image].cls;
    if (cls < 0) return uakd_fail(UAKD_EINVAL, "wdr targets: image %d has no object to mark cells for", image);
    int cells = uakd_wdr_level_cells(&t->lv, level);
    int8_t *lab = &t->label[level][((size_t)image * t->c + cls) * cells + (size_t)row * t->lv.gw[level] + col];
    if (*lab != 0)
        return uakd_fail(UAKD_EINVAL, "wdr targets: cell (image %d, level %d, col %d, row %d) marked twice", image,
                         level, col, row);
    if (label == 1) {
        if (t->npos == t->cap) {
            if (t->cap > (1 << 24)) return uakd_fail(UAKD_ENOMEM, "wdr targets: too many positives");
            uakd_wdr_pos *p = realloc(t->pos, 2 * (size_t)t->cap * sizeof *p);
            if (!p) return uakd_fail(UAKD_ENOMEM, "wdr targets: out of memory for positives");
            t->pos = p;
            t->cap *= 2;
        }
        uakd_wdr_pos *p = &t->pos[t->npos++];
        double off[16];
        uakd_wdr_encode(&t->lv, level, col, row, t->obj[image].corners2d, off);
        p->image = image;
        p->level = level;
        p->col = col;
        p->row = row;
        p->cls = cls;
        for (int k = 0; k < 16; k++) p->offset[k] = (float)off[k];
    }
    *lab = (int8_t)label;
    return UAKD_OK;
}

/* Candidate cells of one level: centre pixel inside the image and visible. */
static int candidates(const uakd_wdr_levels *lv, int l, const uint8_t *mask, int *cand) {
    int n = 0;
    for (int row = 0; row < lv->gh[l]; row++)
        for (int col = 0; col < lv->gw[l]; col++) {
            double c[2];
            uakd_wdr_cell_centre(lv, l, col, row, c);
            int x = (int)floor(c[0]), y = (int)floor(c[1]);
            if (x < lv->in_w && y < lv->in_h && mask[(size_t)y * lv->in_w + x]) cand[n++] = row * lv->gw[l] + col;
        }
    return n;
}

uakd_status uakd_wdr_assign(uakd_wdr_targets *t, const uakd_wdr_config *cfg, const uakd_wdr_object *objs,
                            uakd_rng *rng) {
    UAKD_TRY(uakd_wdr_config_check(cfg));
    UAKD_TRY(uakd_wdr_targets_reset(t, objs));
    int maxcells = 0;
    for (int l = 0; l < t->lv.n; l++)
        if (uakd_wdr_level_cells(&t->lv, l) > maxcells) maxcells = uakd_wdr_level_cells(&t->lv, l);
    int *cand = malloc((size_t)maxcells * sizeof *cand);
    if (!cand) return uakd_fail(UAKD_ENOMEM, "wdr assign: out of memory");
    uakd_status st = UAKD_OK;
    for (int i = 0; i < t->n && st == UAKD_OK; i++) {
        if (objs[i].cls < 0 || !objs[i].mask) continue;
        int quota[UAKD_WDR_MAX_LEVELS];
        uakd_wdr_quotas(&t->lv, uakd_wdr_box_size(objs[i].corners2d), cfg->quota_total, quota);
        for (int l = 0; l < t->lv.n && st == UAKD_OK; l++) {
            int nc = candidates(&t->lv, l, objs[i].mask, cand);
            int take = quota[l] < nc ? quota[l] : nc;
            for (int j = 0; j < take; j++) { /* partial Fisher-Yates: cand[0..take) is the draw */
                int r = j + (int)uakd_rng_below(rng, (uint64_t)(nc - j));
                int tmp = cand[j];
                cand[j] = cand[r];
                cand[r] = tmp;
            }
            for (int j = 0; j < nc && st == UAKD_OK; j++)
                st = uakd_wdr_targets_mark(t, i, l, cand[j] % t->lv.gw[l], cand[j] / t->lv.gw[l], j < take ? 1 : -1);
        }
    }
    free(cand);
    return st;
}

uakd_status uakd_wdr_object_set_box(uakd_wdr_object *obj, const double bmin[3], const double bmax[3],
                                    const double R[9], const double t[3], const double K[9]) {
    double X[24];
    uakd_bbox_corners(bmin, bmax, X);
    for (int k = 0; k < 8; k++) {
        double *c = &obj->corners_cam[3 * k];
        for (int i = 0; i < 3; i++) c[i] = R[3 * i] * X[3 * k] + R[3 * i + 1] * X[3 * k + 1] + R[3 * i + 2] * X[3 * k + 2] + t[i];
        if (!(c[2] > 0))
            return uakd_fail(UAKD_EINVAL, "wdr object: box corner %d is not in front of the camera (z = %g); check the pose",
                             k, c[2]);
        double p[3];
        for (int i = 0; i < 3; i++) p[i] = K[3 * i] * c[0] + K[3 * i + 1] * c[1] + K[3 * i + 2] * c[2];
        obj->corners2d[2 * k] = p[0] / p[2];
        obj->corners2d[2 * k + 1] = p[1] / p[2];
    }
    memcpy(obj->K, K, sizeof obj->K);
    return UAKD_OK;
}
