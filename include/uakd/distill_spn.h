/* Uncertainty-aware distillation of an SPNv2 heatmap student from an ensemble of SPNv2 teachers
 * (method.md §2, §5, §6 for the heatmap family): the hook for uakd_spn_train_run.
 *
 * Ensemble directory: member_0/ .. member_{E-1}/, each a finished `uakd train --family spnv2`
 * output (uakd_ensemble_member_dir), all with the student's input size and keypoints.
 *
 * Per step and image b (K = 11 keypoints):
 *   teachers: every member in inference mode on the student's (augmented) input; member peaks
 *     (uakd_spn_member_peaks) -> mean mu_k and unbiased variance s2_k (uakd_unc_ensemble),
 *     u_k = tanh(s2_k / tau2); c_k = the members' mean peak value clamped to [0, 1];
 *     teacher point y_k = mu_k / (in_w, in_h), mass b_k per method (uakd/distill.h's table:
 *     uakd lambda (1 - u) + (1 - lambda) c, adlp c, pfkd 1).
 *   student: soft-argmax peaks x_k / (in_w, in_h) and peak values p_k (uakd_spn_student_local);
 *     mass a_k = clamp(p_k, 1e-3, 1 - 1e-3) (passed to uakd/kd_loss.h as logit(a_k), so that its
 *     sigmoid is a_k; dL/dp_k = dL/dlogit / (a_k (1 - a_k)), 0 where clamped).
 *   transport: joint (default) = ONE problem per image between the 11 student and the 11 teacher
 *     points (N = M = 11, all keypoints in one cost matrix); per_keypoint = 11 problems of 1 x 1
 *     (keypoint k only with itself). Both normalised per image: L = 1/V sum_b sum_problems.
 *   kd_pred = gamma_p L (UAKD, plan held constant; ADLP debiased divergence for adlp*).
 *   kd_feat (pfkd, uakd+pfkd) = gamma_f / V sum_b 1/(N M) sum_ij pi_ij MSE(R_T(j), A(R_S(i))) with
 *     r x r regions (r = cfg->region) on P2 (stride 4) centred on the student's / teacher's
 *     keypoints (input x maps to the P2 grid point (x + 0.5) / 4 - 0.5, the heatmap convention of
 *     uakd/spn.h), the teacher's from member feat_member (0 when < 0); A the 1x1 bias-free adapter
 *     (student BiFPN width -> teacher width: 64 -> 384 for phi 0 -> phi 6), trained as the loop's
 *     extra net; identity when the widths agree.
 *   kd_feat (adlp+fkd) = gamma_f / B sum_b FKD(F_T, A(F_S)) on P2.
 * Gradients: heatmaps through uakd_spn_student_local_backward (positions and peak values), P2
 * through the adapter (seeded into the loop). */
#ifndef UAKD_DISTILL_SPN_H
#define UAKD_DISTILL_SPN_H

#include "uakd/distill.h"
#include "uakd/spn_train.h"

typedef struct uakd_spn_distill uakd_spn_distill;

/* cfg: uakd_distill_config (method, gamma_p, gamma_f, lambda, tau2, uot, region, fkd_temp,
 * feat_member, adapter_seed); per_keypoint: 0 joint, 1 per keypoint. method must not be
 * UAKD_DISTILL_STUDENT (train without a hook). */
uakd_status uakd_spn_distill_new(const uakd_distill_config *cfg, int per_keypoint, const char *ensemble_dir,
                                 const uakd_spnnet_config *student, int max_batch, uakd_spn_distill **out);
void uakd_spn_distill_free(uakd_spn_distill *d);
const uakd_spn_hook *uakd_spn_distill_hook(uakd_spn_distill *d);
uakd_net *uakd_spn_distill_adapter(const uakd_spn_distill *d); /* NULL: identity */
/* Teacher mean uncertainty over the hook's steps so far (for logs and tests). */
double uakd_spn_distill_mean_u(const uakd_spn_distill *d);

#endif
