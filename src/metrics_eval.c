/* Pose-evaluation accumulators: per-object counts of ADD(-S) successes at 0.05 / 0.1 / 0.2 of the
 * diameter, 2D projection below 5 px and 5 cm 5 deg, sums of errors, and a Markdown table of
 * the rates. ADD-S is used for models flagged symmetric, ADD otherwise; a target without a
 * prediction counts as a failure in every rate and is left out of the mean errors. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/metrics.h"

uakd_status uakd_eval_model_init(uakd_eval_model *m, int obj_id, const uakd_mesh *mesh, double diameter, int symmetric) {
    memset(m, 0, sizeof *m);
    if (obj_id < 0 || obj_id >= UAKD_EVAL_MAX_OBJECTS)
        return uakd_fail(UAKD_EINVAL, "evaluation model: object id %d outside [0, %d)", obj_id, UAKD_EVAL_MAX_OBJECTS);
    if (!(diameter > 0 && isfinite(diameter)))
        return uakd_fail(UAKD_EINVAL, "evaluation model %d: diameter %g must be positive", obj_id, diameter);
    if (!mesh || mesh->num_vertices <= 0)
        return uakd_fail(UAKD_EINVAL, "evaluation model %d: the mesh has no vertices", obj_id);
    m->xyz = malloc(3 * (size_t)mesh->num_vertices * sizeof *m->xyz);
    if (!m->xyz) return uakd_fail(UAKD_ENOMEM, "evaluation model %d: out of memory", obj_id);
    memcpy(m->xyz, mesh->xyz, 3 * (size_t)mesh->num_vertices * sizeof *m->xyz);
    m->obj_id = obj_id;
    m->n = mesh->num_vertices;
    m->diameter = diameter;
    m->symmetric = symmetric != 0;
    if (m->symmetric) {
        uakd_status st = uakd_nn_index_new(m->xyz, m->n, &m->index);
        if (st != UAKD_OK) {
            uakd_eval_model_free(m);
            return st;
        }
    }
    return UAKD_OK;
}

void uakd_eval_model_free(uakd_eval_model *m) {
    if (!m) return;
    free(m->xyz);
    uakd_nn_index_free(m->index);
    memset(m, 0, sizeof *m);
}

void uakd_eval_init(uakd_eval *e, double units_per_cm) {
    memset(e, 0, sizeof *e);
    e->units_per_cm = units_per_cm;
}

uakd_status uakd_eval_add(uakd_eval *e, const uakd_eval_model *m, const uakd_camera *cam, const uakd_pose *gt,
                          const uakd_pose *est) {
    if (m->obj_id < 0 || m->obj_id >= UAKD_EVAL_MAX_OBJECTS || !m->xyz)
        return uakd_fail(UAKD_EINVAL, "evaluation: model not initialised");
    uakd_eval_stats *s = &e->obj[m->obj_id];
    s->targets++;
    if (!est) {
        s->missing++;
        return UAKD_OK;
    }
    double add = m->symmetric ? uakd_metric_adds(m->index, m->xyz, m->n, gt, est) : uakd_metric_add(m->xyz, m->n, gt, est);
    double rot = uakd_metric_rot_deg(gt, est), tr = uakd_metric_trans(gt, est);
    double proj = uakd_metric_proj2d(cam, m->xyz, m->n, gt, est);
    if (!isfinite(add) || !isfinite(rot) || !isfinite(tr))
        return uakd_fail(UAKD_EINVAL, "evaluation of object %d: the pose is not finite", m->obj_id);
    static const double frac[3] = {0.05, 0.1, 0.2};
    for (int k = 0; k < 3; k++) s->add_pass[k] += add < frac[k] * m->diameter;
    s->proj_pass += proj < 5;
    s->cm5deg5_pass += rot < 5 && tr < 5 * e->units_per_cm;
    s->sum_add += add;
    s->sum_rot_deg += rot;
    s->sum_trans += tr;
    return UAKD_OK;
}

static void add_stats(uakd_eval_stats *a, const uakd_eval_stats *b) {
    a->targets += b->targets;
    a->missing += b->missing;
    for (int k = 0; k < 3; k++) a->add_pass[k] += b->add_pass[k];
    a->proj_pass += b->proj_pass;
    a->cm5deg5_pass += b->cm5deg5_pass;
    a->sum_add += b->sum_add;
    a->sum_rot_deg += b->sum_rot_deg;
    a->sum_trans += b->sum_trans;
}

void uakd_eval_overall(const uakd_eval *e, uakd_eval_stats *out) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < UAKD_EVAL_MAX_OBJECTS; i++) add_stats(out, &e->obj[i]);
}

typedef struct {
    char *buf;
    size_t cap, len;
} sink;

static void put(sink *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = s->len < s->cap ? s->cap - s->len : 0;
    int k = vsnprintf(room ? s->buf + s->len : NULL, room, fmt, ap);
    va_end(ap);
    if (k > 0) s->len += (size_t)k;
}

static void row(sink *s, const char *name, const uakd_eval_stats *st, double units_per_cm) {
    double n = st->targets, p = st->targets - st->missing;
    put(s, "| %s | %d | %d | %.1f | %.1f | %.1f | %.1f | %.1f | ", name, st->targets, st->missing,
        100 * st->add_pass[0] / n, 100 * st->add_pass[1] / n, 100 * st->add_pass[2] / n, 100 * st->proj_pass / n,
        100 * st->cm5deg5_pass / n);
    if (p > 0)
        put(s, "%.2f | %.2f |\n", st->sum_rot_deg / p, st->sum_trans / p / units_per_cm);
    else
        put(s, "- | - |\n");
}

size_t uakd_eval_format_markdown(const uakd_eval *e, char *buf, size_t cap) {
    sink s = {buf, cap, 0};
    if (cap) buf[0] = 0;
    put(&s, "| object | targets | missing | ADD(-S) 0.05d %% | 0.1d %% | 0.2d %% | 2D proj 5px %% | 5cm5deg %% | "
            "rot err deg | trans err cm |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < UAKD_EVAL_MAX_OBJECTS; i++) {
        if (!e->obj[i].targets) continue;
        char name[16];
        snprintf(name, sizeof name, "%d", i);
        row(&s, name, &e->obj[i], e->units_per_cm);
    }
    uakd_eval_stats all;
    uakd_eval_overall(e, &all);
    if (all.targets) row(&s, "all", &all, e->units_per_cm);
    return s.len;
}
