/* SPNv2 pose estimation and SPEED+ evaluation (uakd/spn_infer.h): heatmaps -> sub-pixel peaks ->
 * threshold selection -> original pixels (u, v) = Ainv (x, y, 1) -> EPnP + LM with distortion ->
 * depth / field-of-view check -> SPEED+ score; rejected images score t = 0, e_q = pi. */
#include "uakd/spn_infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/loader.h"
#include "uakd/pnp.h"

void uakd_spn_config_for(const uakd_spnnet_config *mc, uakd_spn_config *cfg) {
    uakd_spn_config_default(cfg);
    cfg->keypoints = mc->keypoints;
    cfg->in_w = mc->in_w;
    cfg->in_h = mc->in_h;
}

int uakd_spn_domain_thresholds(const char *domain) {
    return domain && (!strcmp(domain, "lightbox") || !strcmp(domain, "sunlamp"));
}

uakd_status uakd_spn_pose_from_heatmaps(const uakd_spn_config *cfg, const float *hm, const double *kp3d,
                                        const double image_from_input[6], const uakd_camera *cam, int width,
                                        int height, uakd_spn_pose_result *out) {
    memset(out, 0, sizeof *out);
    UAKD_TRY(uakd_spn_config_check(cfg));
    double xy[2 * UAKD_SPN_MAX_KEYPOINTS], uv[2 * UAKD_SPN_MAX_KEYPOINTS], X[3 * UAKD_SPN_MAX_KEYPOINTS];
    uint8_t all[UAKD_SPN_MAX_KEYPOINTS];
    int count = 0, accepted = 0;
    UAKD_TRY(uakd_spn_decode(cfg, hm, xy, out->conf));
    out->keypoints = cfg->keypoints;
    memset(all, 1, sizeof all);
    UAKD_TRY(uakd_spn_correspondences(cfg, xy, all, kp3d, image_from_input, out->uv, X, &count));
    UAKD_TRY(uakd_spn_select(cfg, out->conf, out->selected, &count, &out->thresh, &accepted));
    if (!accepted) {
        out->outcome = UAKD_SPN_REJ_FEW;
        return UAKD_OK;
    }
    UAKD_TRY(uakd_spn_correspondences(cfg, xy, out->selected, kp3d, image_from_input, uv, X, &count));
    out->used = count;
    uakd_pnp_result pr;
    const uakd_status st = uakd_pnp_solve(cam, count, X, uv, NULL, NULL, &pr);
    if (st == UAKD_EDEGENERATE) {
        out->outcome = UAKD_SPN_REJ_PNP;
        return UAKD_OK;
    }
    UAKD_TRY(st);
    out->pose = pr.pose;
    out->rmse_px = pr.rmse_px;
    switch (uakd_spn_pose_check(&pr.pose, cam, width, height, cfg->z_max)) {
    case UAKD_SPN_POSE_OK: out->outcome = UAKD_SPN_OK; break;
    case UAKD_SPN_POSE_DEPTH: out->outcome = UAKD_SPN_REJ_DEPTH; break;
    default: out->outcome = UAKD_SPN_REJ_FOV; break;
    }
    return UAKD_OK;
}

uakd_status uakd_spn_score(const uakd_spn_pose_result *r, const uakd_pose *gt, int apply_thresholds,
                           uakd_speed_score *out) {
    if (r->outcome != UAKD_SPN_OK) {
        const double tn = sqrt(gt->t[0] * gt->t[0] + gt->t[1] * gt->t[1] + gt->t[2] * gt->t[2]);
        if (!(tn > 0) || !isfinite(tn)) return uakd_fail(UAKD_EINVAL, "SPEED+ score: ground-truth |t| is %g", tn);
        out->e_t = tn;
        out->e_t_norm = 1;
        out->e_q = M_PI;
        out->e_pose = 1 + M_PI;
        return UAKD_OK;
    }
    double qg[4], q[4];
    uakd_rot_to_quat(gt->R, qg);
    uakd_rot_to_quat(r->pose.R, q);
    return uakd_speed_score_compute(qg, gt->t, q, r->pose.t, apply_thresholds, out);
}

static void finish_stats(uakd_spn_eval_stats *s) {
    uakd_speed_stats_means(&s->speed, &s->E_T, &s->E_R_deg, &s->E_pose);
}

uakd_status uakd_spn_evaluate(uakd_spnnet *m, const uakd_spn_config *cfg, const uakd_dataset *ds, const int *idx,
                              int n, int apply_thresholds, uakd_spn_eval_progress_fn progress, void *user,
                              uakd_spn_eval_stats *stats, uakd_spn_eval_sample *samples) {
    memset(stats, 0, sizeof *stats);
    if (ds->num_objects != 1 || ds->objects[0].num_keypoints != cfg->keypoints)
        return uakd_fail(UAKD_EINVAL, "SPEED+ evaluation: the dataset has %d keypoints, the network %d heatmaps",
                         ds->num_objects ? ds->objects[0].num_keypoints : 0, cfg->keypoints);
    int *all = NULL;
    if (!idx) {
        if (n <= 0 || n > ds->num_instances) n = ds->num_instances;
        all = malloc(sizeof(int) * (size_t)(n ? n : 1));
        if (!all) return uakd_fail(UAKD_ENOMEM, "SPEED+ evaluation: out of memory");
        for (int i = 0; i < n; i++) all[i] = i;
        idx = all;
    }
    if (n <= 0) {
        free(all);
        return UAKD_OK;
    }
    uakd_loader_config lc = {0};
    lc.batch_size = uakd_net_max_batch(m->net);
    lc.single_pass = 1;
    uakd_augment_config_default(&lc.sample, 0);
    lc.sample.mode = UAKD_CROP_FULL;
    lc.sample.out_width = cfg->in_w;
    lc.sample.out_height = cfg->in_h;
    uakd_loader *L = NULL;
    uakd_status st = uakd_loader_new(ds, idx, n, &lc, &L);
    free(all);
    double kp3d[3 * UAKD_SPN_MAX_KEYPOINTS];
    for (int k = 0; k < cfg->keypoints; k++)
        for (int j = 0; j < 3; j++) kp3d[3 * k + j] = ds->objects[0].keypoints[k][j];
    int hw, hh, done = 0;
    uakd_spn_heatmap_size(cfg, &hw, &hh);
    const size_t per = (size_t)cfg->keypoints * hw * hh;
    while (st == UAKD_OK) {
        const uakd_batch *b = NULL;
        st = uakd_loader_next(L, &b);
        if (st != UAKD_OK || !b) break;
        memcpy(uakd_net_out(m->net, m->input), b->images, sizeof(float) * 3 * (size_t)b->n * b->width * b->height);
        st = uakd_spnnet_forward(m, b->n, 0, NULL);
        const float *hm = uakd_net_out(m->net, m->heatmap);
        for (int i = 0; i < b->n && st == UAKD_OK; i++) {
            const uakd_instance *in = &ds->instances[b->targets[i].instance];
            const uakd_camera cam = {in->K[0], in->K[4], in->K[2], in->K[5],
                                     {ds->dist[0], ds->dist[1], ds->dist[2], ds->dist[3], ds->dist[4]}};
            uakd_spn_eval_sample s;
            memset(&s, 0, sizeof s);
            s.instance = b->targets[i].instance;
            st = uakd_spn_pose_from_heatmaps(cfg, hm + (size_t)i * per, kp3d, b->targets[i].crop.Ainv, &cam, ds->width,
                                             ds->height, &s.pose);
            if (st == UAKD_OK) st = uakd_spn_score(&s.pose, &in->pose, apply_thresholds, &s.score);
            if (st != UAKD_OK) break;
            stats->images++;
            stats->outcomes[s.pose.outcome]++;
            uakd_speed_stats_add(&stats->speed, &s.score);
            if (samples) samples[done] = s;
            done++;
        }
        if (st == UAKD_OK && progress && progress(done, n, user)) st = uakd_fail(UAKD_EINTERRUPTED, "SPEED+ evaluation: stopped");
    }
    uakd_loader_free(L);
    finish_stats(stats);
    return st;
}
