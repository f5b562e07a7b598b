/* WDRNet inference (uakd/infer.h): decoded cells give 8 corner predictions each; mapped from crop
 * pixels p' to image pixels p = A^-1 p' (A = crop_from_image), they pair with the model's 3D box
 * corners X_k and RANSAC-EPnP + LM solves min sum |pi(K (R X_k + t)) - p|^2 over the inliers
 * (reprojection error <= 5 px) with the full-image camera. The test crop resamples the image
 * through A^-1 and normalises with the ImageNet mean and standard deviation. */
#include "uakd/infer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/pnp.h"

void uakd_infer_config_default(uakd_infer_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    uakd_wdr_config_default(&cfg->wdr);
    cfg->ransac_px = 5.0;
    cfg->ransac_iterations = 1000;
    cfg->seed = 1;
}

uakd_status uakd_infer_pose_from_cells(const uakd_infer_config *cfg, const uakd_wdr_cell *cells, int count,
                                       const double box3d[24], const double crop_from_image[6],
                                       const uakd_camera *cam, uakd_prediction *out) {
    memset(out, 0, sizeof *out);
    if (count <= 0) return UAKD_OK;
    out->cells = count;
    out->conf = cells[0].conf;
    for (int i = 1; i < count; i++)
        if (cells[i].conf > out->conf) out->conf = cells[i].conf;
    const int n = UAKD_WDR_CORNERS * count;
    double *uv = malloc(sizeof(double) * 2 * (size_t)n), *X = malloc(sizeof(double) * 3 * (size_t)n);
    uakd_status st = uv && X ? UAKD_OK : uakd_fail(UAKD_ENOMEM, "inference: out of memory");
    if (st == UAKD_OK) st = uakd_wdr_correspondences(cells, count, box3d, crop_from_image, uv, X);
    uakd_ransac_options ro;
    uakd_ransac_default_options(&ro);
    ro.threshold_px = cfg->ransac_px;
    ro.max_iterations = cfg->ransac_iterations;
    ro.seed = cfg->seed;
    uakd_pnp_result res;
    if (st == UAKD_OK) {
        st = uakd_pnp_ransac(cam, n, X, uv, NULL, &ro, NULL, &res, NULL);
        if (st == UAKD_EDEGENERATE) { /* not enough consistent points: a missing prediction */
            free(uv), free(X);
            return UAKD_OK;
        }
    }
    if (st == UAKD_OK) {
        out->ok = 1;
        out->pose = res.pose;
        out->inliers = res.num_inliers;
        out->rmse_px = res.rmse_px;
        for (int k = 0; k < UAKD_WDR_CORNERS; k++)
            if (!uakd_camera_project(cam, &res.pose, box3d + 3 * k, out->corners + 2 * k))
                out->corners[2 * k] = out->corners[2 * k + 1] = NAN;
    }
    free(uv), free(X);
    return st;
}

uakd_status uakd_infer_batch(uakd_wdrnet *m, const uakd_infer_config *cfg, int n, const int *cls,
                             const double (*box3d)[24], const uakd_crop_geometry *crops, const uakd_camera *cams,
                             uakd_prediction *out) {
    UAKD_TRY(uakd_wdr_config_check(&cfg->wdr));
    UAKD_TRY(uakd_wdrnet_forward(m, n, 0));
    uakd_wdr_maps maps;
    uakd_wdrnet_maps(m, n, &maps);
    const int cap = uakd_wdr_max_cells(&cfg->wdr);
    uakd_wdr_cell *cells = malloc(sizeof *cells * (size_t)cap);
    if (!cells) return uakd_fail(UAKD_ENOMEM, "inference: out of memory");
    uakd_status st = UAKD_OK;
    for (int i = 0; st == UAKD_OK && i < n; i++) {
        int count = 0;
        st = uakd_wdr_decode(uakd_wdrnet_levels(m), &cfg->wdr, &maps, i, cls[i], cells, cap, &count);
        if (st == UAKD_OK) st = uakd_infer_pose_from_cells(cfg, cells, count, box3d[i], crops[i].A, &cams[i], &out[i]);
    }
    free(cells);
    return st;
}

uakd_status uakd_infer_crop_image(const uakd_image *im, const uakd_camera *cam, const double box[4], int size,
                                  float *chw, uakd_crop_geometry *geo) {
    if (im->channels != 3) return uakd_fail(UAKD_EINVAL, "inference crop: the image has %d channels, expected 3", im->channels);
    uakd_augment_config ac;
    uakd_augment_config_default(&ac, 0);
    ac.out_width = ac.out_height = size;
    UAKD_TRY(uakd_augment_config_check(&ac));
    uakd_crop_params p;
    UAKD_TRY(uakd_crop_params_draw(&ac, box, im->width, im->height, NULL, &p));
    const double K[9] = {cam->fx, 0, cam->cx, 0, cam->fy, cam->cy, 0, 0, 1};
    UAKD_TRY(uakd_crop_geometry_make(K, cam->dist, &p, size, size, geo));
    uakd_image crop = {0};
    UAKD_TRY(uakd_image_alloc(&crop, size, size, 3));
    uakd_status st = uakd_image_warp_affine(im, geo->Ainv, 0, 0, &crop);
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
    const size_t npix = (size_t)size * size;
    for (int c = 0; st == UAKD_OK && c < 3; c++)
        for (size_t i = 0; i < npix; i++) chw[c * npix + i] = (crop.data[3 * i + c] / 255.0f - mean[c]) / stdv[c];
    uakd_image_free(&crop);
    return st;
}

/* ---- evaluation ---- */

uakd_status uakd_eval_models_load(const char *root, const uakd_dataset *ds, uakd_eval_model **models) {
    *models = calloc((size_t)(ds->num_objects > 0 ? ds->num_objects : 1), sizeof **models);
    if (!*models) return uakd_fail(UAKD_ENOMEM, "evaluation models: out of memory");
    uakd_status st = UAKD_OK;
    for (int i = 0; st == UAKD_OK && i < ds->num_objects; i++) {
        const uakd_object_info *o = &ds->objects[i];
        char path[4096];
        snprintf(path, sizeof path, "%s/models_eval/obj_%06d.ply", root, o->obj_id);
        FILE *f = fopen(path, "rb");
        if (f) fclose(f);
        else snprintf(path, sizeof path, "%s/models/obj_%06d.ply", root, o->obj_id);
        uakd_mesh mesh = {0};
        st = uakd_mesh_read_ply(path, &mesh);
        if (st == UAKD_OK) {
            const int sym = o->num_sym_discrete + o->num_sym_continuous > 0;
            st = uakd_eval_model_init(&(*models)[i], o->obj_id, &mesh, o->diameter, sym);
        }
        if (st != UAKD_OK) uakd_fail_context(st, "%s: ", path);
        uakd_mesh_free(&mesh);
    }
    if (st != UAKD_OK) {
        uakd_eval_models_free(*models, ds->num_objects);
        *models = NULL;
    }
    return st;
}

void uakd_eval_models_free(uakd_eval_model *models, int n) {
    if (!models) return;
    for (int i = 0; i < n; i++) uakd_eval_model_free(&models[i]);
    free(models);
}

void uakd_eval_result_free(uakd_eval_result *r) {
    if (!r) return;
    free(r->samples);
    memset(r, 0, sizeof *r);
}

static int class_of(const uakd_eval_input *in, int obj_id) {
    for (int c = 0; c < in->num_classes; c++)
        if (in->obj_ids[c] == obj_id) return c;
    return -1;
}

/* Scores the predictions of one batch. */
static uakd_status score(const uakd_eval_input *in, const int *idx, int n, const uakd_prediction *pred,
                         uakd_eval_result *out) {
    for (int i = 0; i < n; i++) {
        const uakd_instance *inst = &in->ds->instances[idx[i]];
        const uakd_eval_model *em = &in->models[inst->object];
        uakd_camera cam = {inst->K[0], inst->K[4], inst->K[2], inst->K[5], {0}};
        memcpy(cam.dist, in->ds->dist, sizeof cam.dist);
        const uakd_pose *est = pred[i].ok ? &pred[i].pose : NULL;
        UAKD_TRY(uakd_eval_add(&out->stats, em, &cam, &inst->pose, est));
        uakd_eval_sample *s = &out->samples[out->n++];
        s->instance = idx[i];
        s->obj_id = inst->obj_id;
        s->pred = pred[i];
        s->err_d = s->proj_px = INFINITY;
        if (est) {
            const double e = em->symmetric ? uakd_metric_adds(em->index, em->xyz, em->n, &inst->pose, est)
                                           : uakd_metric_add(em->xyz, em->n, &inst->pose, est);
            s->err_d = e / em->diameter;
            s->proj_px = uakd_metric_proj2d(&cam, em->xyz, em->n, &inst->pose, est);
        }
    }
    return UAKD_OK;
}

uakd_status uakd_infer_evaluate(uakd_wdrnet *m, const uakd_infer_config *cfg, const uakd_eval_input *in,
                                uakd_eval_result *out) {
    memset(out, 0, sizeof *out);
    uakd_eval_init(&out->stats, 10.0); /* BOP: millimetres */
    out->gt_box = in->boxes == NULL;
    const uakd_dataset *ds = in->ds;
    const int B = uakd_net_max_batch(uakd_wdrnet_net(m)), S = uakd_wdrnet_config_of(m)->input_size;
    uakd_augment_config ac;
    uakd_augment_config_default(&ac, 0);
    ac.out_width = ac.out_height = S;
    out->samples = calloc((size_t)(in->n > 0 ? in->n : 1), sizeof *out->samples);
    int *cls = malloc(sizeof(int) * (size_t)B), *idx = malloc(sizeof(int) * (size_t)B);
    double(*box3d)[24] = malloc(sizeof *box3d * (size_t)B);
    uakd_crop_geometry *crops = malloc(sizeof *crops * (size_t)B);
    uakd_camera *cams = malloc(sizeof *cams * (size_t)B);
    uakd_prediction *pred = malloc(sizeof *pred * (size_t)B);
    uakd_sample_scratch scratch = {0};
    uakd_status st = out->samples && cls && idx && box3d && crops && cams && pred
                         ? UAKD_OK
                         : uakd_fail(UAKD_ENOMEM, "evaluation: out of memory");
    float *input = uakd_net_out(uakd_wdrnet_net(m), uakd_wdrnet_input(m));
    const size_t per = (size_t)3 * S * S;
    for (int done = 0; st == UAKD_OK && done < in->n;) {
        const int nb = in->n - done < B ? in->n - done : B;
        for (int i = 0; st == UAKD_OK && i < nb; i++) {
            const int k = in->indices[done + i];
            if (k < 0 || k >= ds->num_instances) {
                st = uakd_fail(UAKD_EINVAL, "evaluation: instance index %d outside [0, %d)", k, ds->num_instances);
                break;
            }
            const uakd_instance *inst = &ds->instances[k];
            idx[i] = k;
            cls[i] = class_of(in, inst->obj_id);
            if (cls[i] < 0) {
                st = uakd_fail(UAKD_EINVAL, "evaluation: object %d of %s is not one of the model's classes (pass --obj)",
                               inst->obj_id, inst->image_path);
                break;
            }
            const uakd_object_info *o = &ds->objects[inst->object];
            const double bmax[3] = {o->min[0] + o->size[0], o->min[1] + o->size[1], o->min[2] + o->size[2]};
            uakd_bbox_corners(o->min, bmax, box3d[i]);
            uakd_target t;
            st = uakd_sample_prepare(ds, k, &ac, in->boxes ? in->boxes[done + i] : NULL, NULL, &scratch,
                                     input + (size_t)i * per, NULL, &t);
            crops[i] = t.crop;
            cams[i] = (uakd_camera){inst->K[0], inst->K[4], inst->K[2], inst->K[5], {0}};
            memcpy(cams[i].dist, ds->dist, sizeof cams[i].dist);
        }
        if (st == UAKD_OK) st = uakd_infer_batch(m, cfg, nb, cls, (const double(*)[24])box3d, crops, cams, pred);
        if (st == UAKD_OK) st = score(in, idx, nb, pred, out);
        done += nb;
        if (st == UAKD_OK && in->progress && in->progress(done, in->n, in->user))
            st = uakd_fail(UAKD_EINTERRUPTED, "evaluation: stopped after %d of %d instances", done, in->n);
    }
    uakd_sample_scratch_free(&scratch);
    free(cls), free(idx), free(box3d), free(crops), free(cams), free(pred);
    if (st != UAKD_OK) uakd_eval_result_free(out);
    return st;
}
