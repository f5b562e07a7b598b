/* Prediction distillation losses over a batch: UAKD (method.md section 5), the ADLP debiased
 * Sinkhorn divergence (section 7), and the masses of section 4.
 *
 * Per image b and keypoint k there is one transport problem between the image's n_b student local
 * predictions x_{b,i,k} (masses a_{b,i}) and its m_b teacher local predictions y_{b,j,k} (masses
 * b_{b,j,k}); coordinates are network-input pixels divided by the input width and height.
 *
 *   UAKD:  L = 1/V sum_b sum_k sum_ij pi_ij |x_i - y_j|^2, the plan pi held constant, so
 *          dL/dx_i = 2/V sum_j pi_ij (x_i - y_j),  dL/da_i = 1/V sum_j pi_ij |x_i - y_j|^2 / a_i.
 *   ADLP:  L = 1/V sum_b sum_k [OT(a,b) - OT(a,a)/2 - OT(b,b)/2], OT the unbalanced dual value at
 *          the solver's potentials; by the envelope theorem
 *          dL/dx_i = 1/V [sum_j pi^ab_ij (x_i - y_j) - sum_l pi^aa_il (x_i - x_l)],
 *          dL/da_i = 1/V [phi(f^ab_i) - eps sum_j b_j (E^ab_ij - 1)
 *                         - phi(f^aa_i) + eps sum_l a_l (E^aa_il - 1)],
 *          E_ij = exp((f_i + g_j - C_ij)/eps), phi(t) = rho (1 - exp(-t/rho)).
 * V = number of images with n_b > 0 and m_b > 0 (others contribute nothing; V = 0 gives L = 0).
 * Student masses a_i = clamp(sigmoid(logit_i), 1e-3, 1 - 1e-3); dL/dlogit_i = dL/da_i a_i (1 - a_i)
 * where the clamp is inactive and 0 where it clamps. Teacher points carry no gradient.
 *
 * Typical training step (WDRNet, K = 8): fill uakd_kd_input from the student's positive cells and
 * the teacher's selected cells of every image, call uakd_kd_uakd (it adds gamma_p times the
 * gradients into the student's output-gradient buffers), then read each image's plans with
 * uakd_kd_plan for PFKD. The context keeps its buffers between calls (no allocation once the
 * largest batch has been seen). */
#ifndef UAKD_KD_LOSS_H
#define UAKD_KD_LOSS_H

#include "uakd/status.h"
#include "uakd/uot.h"

/* Bounds of the student mass clamp. */
#define UAKD_KD_MASS_MIN 1e-3f
#define UAKD_KD_MASS_MAX (1.0f - 1e-3f)

typedef struct uakd_kd_input {
    int images;      /* batch size B */
    int keypoints;   /* K: problems per image (8 corners; 1 for a joint SPNv2 problem) */
    const int *n;    /* [B] student local predictions per image */
    const int *m;    /* [B] teacher local predictions per image */
    const float *x;  /* student points [sum n][K][2], images one after another */
    const float *logit; /* [sum n] student confidence logits; NULL = uniform masses 1, no gradient */
    const float *y;  /* teacher points (ensemble means) [sum m][K][2] */
    const float *tmass; /* teacher masses [sum m][K] (uakd_kd_teacher_mass), >= 0 */
} uakd_kd_input;

typedef struct uakd_kd_options {
    uakd_uot_params uot;     /* solver settings (blur 1e-3, reach 0.5, ...) */
    int detach_student_mass; /* 1: no gradient to the logits (default 0) */
    double weight;           /* gradients are ADDED scaled by this (gamma_p; default 1) */
} uakd_kd_options;

void uakd_kd_options_default(uakd_kd_options *o);

typedef struct uakd_kd_ctx uakd_kd_ctx;

uakd_status uakd_kd_ctx_new(uakd_kd_ctx **out);
void uakd_kd_ctx_free(uakd_kd_ctx *ctx);

/* Solves the plans of every (image, keypoint) of the batch (no loss); PFKD-only training uses it
 * with logit = NULL and teacher masses 1. */
uakd_status uakd_kd_solve(uakd_kd_ctx *ctx, const uakd_kd_options *opt, const uakd_kd_input *in);

/* UAKD: solves, returns L in *loss and adds opt->weight * dL/dx to grad_x ([sum n][K][2], may be
 * NULL) and opt->weight * dL/dlogit to grad_logit ([sum n], may be NULL; untouched when
 * detach_student_mass or logit is NULL). *valid (may be NULL) receives V. */
uakd_status uakd_kd_uakd(uakd_kd_ctx *ctx, const uakd_kd_options *opt, const uakd_kd_input *in,
                         double *loss, int *valid, float *grad_x, float *grad_logit);

/* ADLP debiased divergence with the same conventions (the caller passes teacher masses c_j, i.e.
 * lambda = 0). */
uakd_status uakd_kd_adlp(uakd_kd_ctx *ctx, const uakd_kd_options *opt, const uakd_kd_input *in,
                         double *loss, int *valid, float *grad_x, float *grad_logit);

/* After uakd_kd_solve or uakd_kd_uakd: the n_b x m_b plan (row-major, student rows) of image b and
 * keypoint k, and its potentials; NULL when out of range or when the last call was uakd_kd_adlp.
 * Valid until the next call on ctx. */
const float *uakd_kd_plan(const uakd_kd_ctx *ctx, int image, int keypoint, int *n, int *m);
uakd_status uakd_kd_potentials(const uakd_kd_ctx *ctx, int image, int keypoint, const double **f,
                               const double **g);

/* Student mass clamp(sigmoid(logit), 1e-3, 1 - 1e-3) and its derivative with respect to the
 * logit (0 where clamped). */
float uakd_kd_student_mass(float logit, float *dmass_dlogit);

/* Teacher mass lambda (1 - u) + (1 - lambda) c (lambda = 0.5 by default; lambda = 0 with c = 1
 * gives the uniform masses of PFKD-only training). */
float uakd_kd_teacher_mass(float lambda, float u, float c);

/* sum_ij plan_ij |x_i - y_j|^2 for one problem (points contiguous, 2 floats each); adds
 * scale * 2 sum_j plan_ij (x_i - y_j) to grad_x when it is not NULL. */
double uakd_kd_plan_cost(int n, const float *x, int m, const float *y, const float *plan,
                         double scale, float *grad_x);

#endif
