/* Ensemble uncertainty of local predictions (method.md section 3).
 *
 * For E members predicting the same P local predictions of K keypoints (2D, pixels of the
 * network input): mean mu = (mean_e x_e, mean_e y_e), unbiased variance
 * s2 = var_e(x) + var_e(y) (divided by E - 1), uncertainty u = tanh(s2 / tau^2) with tau = 1 px by
 * default or tau^2 = median of s2 over the training set (`auto`). A cell's confidence is the
 * ensemble mean of the members' sigmoid scores. */
#ifndef UAKD_UNCERTAINTY_H
#define UAKD_UNCERTAINTY_H

#include "uakd/status.h"

/* pred: [E][P][K][2] (member-major); mean: [P][K][2] out; s2: [P][K] out (either may be NULL).
 * Needs E >= 2 and finite predictions. */
uakd_status uakd_unc_ensemble(int members, int preds, int keypoints, const float *pred,
                              float *mean, float *s2);

/* u_i = tanh(s2_i / tau2) for count values; tau2 > 0 (1 for the default tau = 1 px). */
uakd_status uakd_unc_from_variance(int count, const float *s2, double tau2, float *u);

/* The `auto` scale: tau2 = median of s2 (mean of the two middle values for an even count).
 * Reorders values in place. Fails when count = 0 or the median is 0 (members agree exactly,
 * u would be undefined: use a fixed tau instead). */
uakd_status uakd_unc_auto_tau2(int count, float *values, double *tau2);

/* c_p = 1/E sum_e sigmoid(logit[e][p]) for P cells; logits: [E][P]. */
uakd_status uakd_unc_confidence(int members, int preds, const float *logits, float *conf);

/* Adds the values u (in [0, 1]) to bins equal-width bins over [0, 1] (u = 1 goes to the last
 * bin, values outside [0, 1] are clamped into the end bins). */
void uakd_unc_histogram(int count, const float *u, int bins, long *counts);

#endif
