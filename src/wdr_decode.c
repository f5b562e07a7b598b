/* WDRNet inference decoding and the local predictions of distillation (models.md, method.md §2).
 *
 * Inference rule on a confidence map c_l(cell) of one image and class: among the cells with
 * c > threshold, the best one's decoded corners give the size S (max(w, h) + 1 of their box); level l
 * gets the training quota n_l(S) and keeps its n_l most confident cells above the threshold (ties
 * broken by lower level, then row-major order). Decoded corner k of a cell: (c_x + A dx_k, c_y + A dy_k).
 * Teacher side: c is the ensemble mean of the members' sigmoids and S comes from the ensemble-mean
 * corners of the best cell. Student side: the ground-truth positives of the current targets, with
 * positions divided by the input size (normalised coordinates); the backward maps dL/dpos to the
 * offsets through d(u / W)/d(dx) = A / W (and A / H for y). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/wdr.h"

int uakd_wdr_max_cells(const uakd_wdr_config *cfg) { return cfg->quota_total + UAKD_WDR_MAX_LEVELS; }

static double sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }

static size_t cell_index(const uakd_wdr_levels *lv, int l, int col, int row) {
    return (size_t)row * lv->gw[l] + col;
}

/* Reads the 16 offsets of (image, cls) at a cell from an offset map and decodes them. */
static void decode_at(const uakd_wdr_levels *lv, const uakd_wdr_maps *m, int image, int cls, int l, int col, int row,
                      double corners[16]) {
    size_t cells = (size_t)uakd_wdr_level_cells(lv, l);
    const float *o = m->offsets[l] + ((size_t)image * 16 * m->c + 16 * (size_t)cls) * cells + cell_index(lv, l, col, row);
    double off[16];
    for (int k = 0; k < 16; k++) off[k] = o[(size_t)k * cells];
    uakd_wdr_decode_cell(lv, l, col, row, off, corners);
}

typedef struct source {
    const uakd_wdr_levels *lv;
    const uakd_wdr_maps *m; /* E maps */
    int E, image, cls;
} source;

/* The (ensemble-mean) decoded corners of a cell. */
static void source_corners(const source *s, int l, int col, int row, double corners[16]) {
    memset(corners, 0, 16 * sizeof *corners);
    for (int e = 0; e < s->E; e++) {
        double c[16];
        decode_at(s->lv, &s->m[e], s->image, s->cls, l, col, row, c);
        for (int k = 0; k < 16; k++) corners[k] += c[k] / s->E;
    }
}

static uakd_status check_source(const uakd_wdr_levels *lv, const uakd_wdr_config *cfg, const source *s, int cap) {
    UAKD_TRY(uakd_wdr_config_check(cfg));
    if (s->E < 1) return uakd_fail(UAKD_EINVAL, "wdr decode: %d ensemble members", s->E);
    for (int e = 0; e < s->E; e++) {
        const uakd_wdr_maps *m = &s->m[e];
        if (s->image < 0 || s->image >= m->n || s->cls < 0 || s->cls >= m->c)
            return uakd_fail(UAKD_EINVAL, "wdr decode: image %d / class %d outside the maps (%d images, %d classes)",
                             s->image, s->cls, m->n, m->c);
        for (int l = 0; l < lv->n; l++)
            if (!m->logits[l] || !m->offsets[l]) return uakd_fail(UAKD_EINVAL, "wdr decode: map of level %d missing", l);
    }
    if (cap < uakd_wdr_max_cells(cfg))
        return uakd_fail(UAKD_EINVAL, "wdr decode: room for %d cells, need uakd_wdr_max_cells() = %d", cap,
                         uakd_wdr_max_cells(cfg));
    return UAKD_OK;
}

/* conf: all levels' cells concatenated (offset[l] is where level l starts). */
static void select_rule(const source *s, const uakd_wdr_config *cfg, double *conf, const size_t *offset,
                        uakd_wdr_cell *cells, int *count) {
    const uakd_wdr_levels *lv = s->lv;
    int best_l = -1;
    size_t best_i = 0;
    double best = cfg->conf_thresh;
    for (int l = 0; l < lv->n; l++)
        for (size_t i = 0; i < (size_t)uakd_wdr_level_cells(lv, l); i++)
            if (conf[offset[l] + i] > best) {
                best = conf[offset[l] + i];
                best_l = l;
                best_i = i;
            }
    *count = 0;
    if (best_l < 0) return;
    double corners[16];
    source_corners(s, best_l, (int)(best_i % lv->gw[best_l]), (int)(best_i / lv->gw[best_l]), corners);
    int quota[UAKD_WDR_MAX_LEVELS];
    uakd_wdr_quotas(lv, uakd_wdr_box_size(corners), cfg->quota_total, quota);
    for (int l = 0; l < lv->n; l++) {
        double *c = conf + offset[l];
        size_t ncell = (size_t)uakd_wdr_level_cells(lv, l);
        for (int q = 0; q < quota[l]; q++) { /* selection of the q-th best; taken cells are set to -1 */
            size_t arg = 0;
            double top = cfg->conf_thresh;
            int found = 0;
            for (size_t i = 0; i < ncell; i++)
                if (c[i] > top) {
                    top = c[i];
                    arg = i;
                    found = 1;
                }
            if (!found) break;
            c[arg] = -1;
            uakd_wdr_cell *out = &cells[(*count)++];
            out->level = l;
            out->col = (int)(arg % lv->gw[l]);
            out->row = (int)(arg / lv->gw[l]);
            out->conf = top;
            source_corners(s, l, out->col, out->row, out->corners);
        }
    }
}

/* Mean sigmoid over the members for all cells of (image, cls); returns NULL on allocation failure. */
static double *mean_conf(const source *s, size_t offset[UAKD_WDR_MAX_LEVELS]) {
    const uakd_wdr_levels *lv = s->lv;
    size_t total = 0;
    for (int l = 0; l < lv->n; l++) {
        offset[l] = total;
        total += (size_t)uakd_wdr_level_cells(lv, l);
    }
    double *conf = calloc(total, sizeof *conf);
    if (!conf) return NULL;
    for (int l = 0; l < lv->n; l++) {
        size_t ncell = (size_t)uakd_wdr_level_cells(lv, l);
        for (int e = 0; e < s->E; e++) {
            const float *x = s->m[e].logits[l] + ((size_t)s->image * s->m[e].c + s->cls) * ncell;
            for (size_t i = 0; i < ncell; i++) conf[offset[l] + i] += sigmoid(x[i]) / s->E;
        }
    }
    return conf;
}

static uakd_status select_cells(const source *s, const uakd_wdr_config *cfg, uakd_wdr_cell *cells, int cap,
                                int *count) {
    *count = 0;
    UAKD_TRY(check_source(s->lv, cfg, s, cap));
    size_t offset[UAKD_WDR_MAX_LEVELS];
    double *conf = mean_conf(s, offset);
    if (!conf) return uakd_fail(UAKD_ENOMEM, "wdr decode: out of memory");
    select_rule(s, cfg, conf, offset, cells, count);
    free(conf);
    return UAKD_OK;
}

uakd_status uakd_wdr_decode(const uakd_wdr_levels *lv, const uakd_wdr_config *cfg, const uakd_wdr_maps *m, int image,
                            int cls, uakd_wdr_cell *cells, int cap, int *count) {
    source s = {lv, m, 1, image, cls};
    return select_cells(&s, cfg, cells, cap, count);
}

uakd_status uakd_wdr_teacher_cells(const uakd_wdr_levels *lv, const uakd_wdr_config *cfg, int E,
                                   const uakd_wdr_maps *members, int image, int cls, uakd_wdr_cell *cells,
                                   double *member_pos, int cap, int *count) {
    source s = {lv, members, E, image, cls};
    UAKD_TRY(select_cells(&s, cfg, cells, cap, count));
    if (member_pos)
        for (int i = 0; i < *count; i++)
            for (int e = 0; e < E; e++)
                decode_at(lv, &members[e], image, cls, cells[i].level, cells[i].col, cells[i].row,
                          &member_pos[((size_t)i * E + e) * 16]);
    return UAKD_OK;
}

uakd_status uakd_wdr_ensemble_conf(const uakd_wdr_levels *lv, int E, const uakd_wdr_maps *members, int image, int cls,
                                   float *const *conf) {
    uakd_wdr_config cfg;
    uakd_wdr_config_default(&cfg);
    source s = {lv, members, E, image, cls};
    UAKD_TRY(check_source(lv, &cfg, &s, uakd_wdr_max_cells(&cfg)));
    size_t offset[UAKD_WDR_MAX_LEVELS];
    double *c = mean_conf(&s, offset);
    if (!c) return uakd_fail(UAKD_ENOMEM, "wdr ensemble: out of memory");
    for (int l = 0; l < lv->n; l++)
        for (size_t i = 0; i < (size_t)uakd_wdr_level_cells(lv, l); i++) conf[l][i] = (float)c[offset[l] + i];
    free(c);
    return UAKD_OK;
}

uakd_status uakd_wdr_correspondences(const uakd_wdr_cell *cells, int count, const double box3d[24],
                                     const double crop_from_image[6], double *pts2d, double *pts3d) {
    if (count < 0) return uakd_fail(UAKD_EINVAL, "wdr correspondences: negative cell count %d", count);
    for (int i = 0; i < count; i++)
        for (int k = 0; k < 8; k++) {
            pts2d[2 * (8 * i + k)] = cells[i].corners[2 * k];
            pts2d[2 * (8 * i + k) + 1] = cells[i].corners[2 * k + 1];
            memcpy(&pts3d[3 * (8 * i + k)], &box3d[3 * k], 3 * sizeof *box3d);
        }
    if (crop_from_image) UAKD_TRY(uakd_wdr_crop_to_image(crop_from_image, pts2d, 8 * count));
    return UAKD_OK;
}

static uakd_status check_student(const uakd_wdr_targets *t, int image) {
    if (image < 0 || image >= t->n)
        return uakd_fail(UAKD_EINVAL, "wdr student: image %d outside the batch of %d", image, t->n);
    return UAKD_OK;
}

uakd_status uakd_wdr_student_local(const uakd_wdr_targets *t, const uakd_wdr_maps *m, int image, float *pos,
                                   float *logit, int *idx, int cap, int *count) {
    *count = 0;
    UAKD_TRY(check_student(t, image));
    if (m->n != t->n || m->c != t->c)
        return uakd_fail(UAKD_EINVAL, "wdr student: maps hold %d images x %d classes, targets %d x %d", m->n, m->c,
                         t->n, t->c);
    const uakd_wdr_levels *lv = &t->lv;
    for (int j = 0; j < t->npos; j++) {
        const uakd_wdr_pos *p = &t->pos[j];
        if (p->image != image) continue;
        if (*count == cap)
            return uakd_fail(UAKD_EINVAL, "wdr student: image %d has more than cap = %d positive cells", image, cap);
        if (!m->logits[p->level] || !m->offsets[p->level])
            return uakd_fail(UAKD_EINVAL, "wdr student: map of level %d missing", p->level);
        double c[16];
        decode_at(lv, m, image, p->cls, p->level, p->col, p->row, c);
        float *out = &pos[16 * (size_t)*count];
        for (int k = 0; k < 8; k++) {
            out[2 * k] = (float)(c[2 * k] / lv->in_w);
            out[2 * k + 1] = (float)(c[2 * k + 1] / lv->in_h);
        }
        size_t ncell = (size_t)uakd_wdr_level_cells(lv, p->level);
        logit[*count] = m->logits[p->level][((size_t)image * m->c + p->cls) * ncell + cell_index(lv, p->level, p->col, p->row)];
        if (idx) idx[*count] = j;
        (*count)++;
    }
    return UAKD_OK;
}

uakd_status uakd_wdr_student_local_backward(const uakd_wdr_targets *t, int image, const float *dpos,
                                            const float *dlogit, int count, const uakd_wdr_grads *g) {
    UAKD_TRY(check_student(t, image));
    int have = 0;
    for (int i = 0; i < t->npos; i++) have += t->pos[i].image == image;
    if (have != count)
        return uakd_fail(UAKD_EINVAL, "wdr student backward: %d gradients given but image %d has %d positive cells",
                         count, image, have);
    const uakd_wdr_levels *lv = &t->lv;
    int j = 0;
    for (int i = 0; i < t->npos; i++) {
        const uakd_wdr_pos *p = &t->pos[i];
        if (p->image != image) continue;
        size_t ncell = (size_t)uakd_wdr_level_cells(lv, p->level), at = cell_index(lv, p->level, p->col, p->row);
        double A = lv->anchor[p->level];
        if (g->offsets[p->level]) {
            float *d = g->offsets[p->level] + ((size_t)image * 16 * t->c + 16 * (size_t)p->cls) * ncell + at;
            for (int k = 0; k < 8; k++) {
                d[(size_t)k * ncell] += (float)(A / lv->in_w * dpos[16 * j + 2 * k]);
                d[(size_t)(8 + k) * ncell] += (float)(A / lv->in_h * dpos[16 * j + 2 * k + 1]);
            }
        }
        if (dlogit && g->logits[p->level]) g->logits[p->level][((size_t)image * t->c + p->cls) * ncell + at] += dlogit[j];
        j++;
    }
    return UAKD_OK;
}
