/* The teacher pass (uakd/distill.h): every ensemble member runs in inference mode on the same
 * input images; per image, the cells the inference rule selects on the ensemble-mean confidence
 * map are the teacher local predictions (uakd_wdr_teacher_cells), with per corner the ensemble
 * mean mu (the teacher point), the unbiased variance s2 = var_e(x) + var_e(y) in input pixels and
 * u = tanh(s2 / tau^2) (uakd_unc_ensemble, uakd_unc_from_variance). */
#include <stdlib.h>
#include <string.h>

#include "uakd/distill.h"
#include "uakd/uncertainty.h"

struct uakd_teachers {
    int E, feat_member, max_batch;
    uakd_wdrnet *m[UAKD_ENSEMBLE_MAX];
    uakd_wdr_config wdr;
    int cap;            /* cells per image: uakd_wdr_max_cells */
    double *member_pos; /* cap * E * 16 */
    float *pred;        /* [E][cap][8][2] */
};

int uakd_teachers_count(const uakd_teachers *t) { return t->E; }
int uakd_teachers_feat_member(const uakd_teachers *t) { return t->feat_member; }
uakd_wdrnet *uakd_teachers_member(const uakd_teachers *t, int e) { return e >= 0 && e < t->E ? t->m[e] : NULL; }

void uakd_teachers_free(uakd_teachers *t) {
    if (!t) return;
    for (int e = 0; e < t->E; e++) uakd_wdrnet_free(t->m[e]);
    free(t->member_pos), free(t->pred);
    free(t);
}

static int same_levels(const uakd_wdr_levels *a, const uakd_wdr_levels *b) {
    if (a->n != b->n || a->in_w != b->in_w || a->in_h != b->in_h) return 0;
    for (int l = 0; l < a->n; l++)
        if (a->gw[l] != b->gw[l] || a->gh[l] != b->gh[l] || a->stride[l] != b->stride[l]) return 0;
    return 1;
}

static uakd_status open_members(uakd_teachers *t, const char *dir, const uakd_ensemble_info *info) {
    for (int e = 0; e < info->members; e++)
        if (!info->m[e].finished)
            return uakd_fail(UAKD_EINVAL, "ensemble %s: member %d is not finished (no model.safetensors in member_%d); "
                                          "run `uakd ensemble` again to finish it", dir, e, e);
    for (int e = 0; e < info->members; e++) {
        char md[4096];
        UAKD_TRY(uakd_ensemble_member_dir(dir, e, md, sizeof md));
        uakd_model_info mi;
        UAKD_TRY(uakd_model_open(md, t->max_batch, &mi, &t->m[e]));
        t->E = e + 1;
        if (e > 0 && !same_levels(uakd_wdrnet_levels(t->m[0]), uakd_wdrnet_levels(t->m[e])))
            return uakd_fail(UAKD_EINVAL, "ensemble %s: member %d has other FPN levels or input size than member 0 "
                                          "(members must share one architecture)", dir, e);
    }
    return UAKD_OK;
}

uakd_status uakd_teachers_open(const char *dir, int max_batch, int feat_member, uakd_teachers **out) {
    *out = NULL;
    uakd_ensemble_info rec, info;
    UAKD_TRY(uakd_ensemble_read(dir, &rec));
    UAKD_TRY(uakd_ensemble_scan(dir, rec.members, 0, &info));
    if (info.members < 2)
        return uakd_fail(UAKD_EINVAL, "ensemble %s: %d member; the uncertainty needs at least 2", dir, info.members);
    if (feat_member >= info.members)
        return uakd_fail(UAKD_EINVAL, "ensemble %s: feature member %d, but only %d members", dir, feat_member, info.members);
    uakd_teachers *t = calloc(1, sizeof *t);
    if (!t) return uakd_fail(UAKD_ENOMEM, "teachers: out of memory");
    t->max_batch = max_batch;
    t->feat_member = feat_member >= 0 ? feat_member : rec.pfkd_member;
    uakd_wdr_config_default(&t->wdr);
    t->cap = uakd_wdr_max_cells(&t->wdr);
    uakd_status st = open_members(t, dir, &info);
    if (st == UAKD_OK) {
        t->member_pos = malloc(sizeof(double) * (size_t)t->cap * t->E * 16);
        t->pred = malloc(sizeof(float) * (size_t)t->cap * t->E * 16);
        if (!t->member_pos || !t->pred) st = uakd_fail(UAKD_ENOMEM, "teachers: out of memory");
    }
    if (st != UAKD_OK) {
        uakd_teachers_free(t);
        return st;
    }
    *out = t;
    return UAKD_OK;
}

void uakd_teacher_preds_free(uakd_teacher_preds *p) {
    free(p->m), free(p->cells), free(p->y), free(p->s2), free(p->u);
    memset(p, 0, sizeof *p);
}

/* Makes room for n images of up to cap cells each. */
static uakd_status preds_reserve(uakd_teacher_preds *p, int n, int cap) {
    const size_t cells = (size_t)n * cap;
    free(p->m), free(p->cells), free(p->y), free(p->s2), free(p->u);
    p->m = malloc(sizeof(int) * (size_t)n);
    p->cells = malloc(sizeof(uakd_wdr_cell) * cells);
    p->y = malloc(sizeof(float) * cells * 16);
    p->s2 = malloc(sizeof(float) * cells * 8);
    p->u = malloc(sizeof(float) * cells * 8);
    if (!p->m || !p->cells || !p->y || !p->s2 || !p->u) return uakd_fail(UAKD_ENOMEM, "teachers: out of memory");
    return UAKD_OK;
}

/* Mean, variance and u of the count cells of one image (starting at cell index j0). */
static uakd_status cell_stats(uakd_teachers *t, const uakd_wdr_levels *lv, int count, int j0, double tau2,
                              uakd_teacher_preds *p) {
    const int E = t->E;
    for (int e = 0; e < E; e++)
        for (int i = 0; i < count; i++)
            for (int q = 0; q < 16; q++)
                t->pred[((size_t)e * count + i) * 16 + q] = (float)t->member_pos[((size_t)i * E + e) * 16 + q];
    float *y = p->y + (size_t)j0 * 16, *s2 = p->s2 + (size_t)j0 * 8;
    UAKD_TRY(uakd_unc_ensemble(E, count, 8, t->pred, y, s2));
    UAKD_TRY(uakd_unc_from_variance(count * 8, s2, tau2, p->u + (size_t)j0 * 8));
    for (int q = 0; q < count * 16; q += 2) y[q] /= (float)lv->in_w, y[q + 1] /= (float)lv->in_h;
    return UAKD_OK;
}

uakd_status uakd_teachers_predict(uakd_teachers *t, const float *images, int n, const int *cls, double tau2,
                                  uakd_teacher_preds *p) {
    if (n < 1 || n > t->max_batch) return uakd_fail(UAKD_EINVAL, "teachers: batch of %d (1..%d)", n, t->max_batch);
    if (!(tau2 > 0)) return uakd_fail(UAKD_EINVAL, "teachers: tau^2 = %g must be > 0", tau2);
    const uakd_wdr_levels *lv = uakd_wdrnet_levels(t->m[0]);
    const size_t in = (size_t)n * 3 * lv->in_w * lv->in_h;
    uakd_wdr_maps maps[UAKD_ENSEMBLE_MAX];
    for (int e = 0; e < t->E; e++) {
        memcpy(uakd_net_out(uakd_wdrnet_net(t->m[e]), uakd_wdrnet_input(t->m[e])), images, sizeof(float) * in);
        UAKD_TRY(uakd_wdrnet_forward(t->m[e], n, 0));
        uakd_wdrnet_maps(t->m[e], n, &maps[e]);
    }
    if (p->images < n || !p->m) UAKD_TRY(preds_reserve(p, n, t->cap));
    p->images = n;
    p->total = 0;
    for (int b = 0; b < n; b++) {
        int count = 0;
        if (cls[b] >= 0)
            UAKD_TRY(uakd_wdr_teacher_cells(lv, &t->wdr, t->E, maps, b, cls[b], p->cells + p->total, t->member_pos,
                                            t->cap, &count));
        if (count > 0) UAKD_TRY(cell_stats(t, lv, count, p->total, tau2, p));
        p->m[b] = count;
        p->total += count;
    }
    return UAKD_OK;
}
