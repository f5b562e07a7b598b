/* Prediction-related feature distillation (method.md section 6) and the ADLP+FKD baseline's
 * attention-masked feature loss (section 7), on plain float arrays.
 *
 * Regions. A keypoint at input pixel (u, v), predicted by a cell of an FPN level of stride s, maps
 * to the feature-grid point (u / s - 0.5, v / s - 0.5): with the WDRNet convention of uakd/wdr.h
 * (cell (col, row) centred at (col s + s/2, row s + s/2)) a cell centre lands exactly on its own
 * feature cell, which is where the engine's sample layer (uakd/layers.h) puts cell (col, row).
 * Its r x r region samples the map bilinearly at (x + a - (r-1)/2, y + b - (r-1)/2),
 * a, b = 0..r-1 (sample t = b r + a, one feature cell apart); samples outside the map read zero.
 * This is torch.nn.functional.grid_sample(align_corners=False, padding_mode='zeros') at
 * g = (2 (u/s + a - (r-1)/2) / W - 1, 2 (v/s + b - (r-1)/2) / H - 1).
 *
 * Region layout: `count` regions of one map are sampled into out[C][count * r * r] (channel-major,
 * the layout of the engine's sample kernel): element (c, t) of region i is out[c * P + i r^2 + t],
 * P = count * r^2 its leading dimension.
 *
 * Gradients reach the feature map only: the sampling positions are held constant (they come from
 * the keypoint predictions, which L_sup and L_pred train; a feature loss that could move them
 * would let the student drift keypoints towards wherever its features happen to match).
 *
 * PFKD loss of one problem (image, keypoint) with plan pi (n x m, held constant):
 *   sum_ij pi_ij MSE(R_T(j), R_S(i)),  MSE = mean over the C r^2 values,
 * and dL/dR_S(i) = 2 / (C r^2) sum_j pi_ij (R_S(i) - R_T(j)). The caller scales by 1/(N M) and
 * the batch normalisation (uakd/distill.h).
 *
 * FKD (ADLP+FKD baseline), one image and level, maps F_T (teacher) and F_S (student, adapted to
 * the teacher's C channels), H x W cells, temperature T (0.5):
 *   spatial attention  A^s(h,w) = H W softmax_hw( mean_c |F(c,h,w)| / T )
 *   channel attention  A^c(c)   = C softmax_c( mean_hw |F(c,h,w)| / T )
 *   mask M(c,h,w) = A^s(h,w) A^c(c) with A^s, A^c the averages of the teacher's and the student's
 *   attentions, detached (no gradient through the mask);
 *   L = 1/(C H W) sum_chw M (F_S - F_T)^2,  dL/dF_S = 2 M (F_S - F_T) / (C H W). */
#ifndef UAKD_PFKD_H
#define UAKD_PFKD_H

#include <stddef.h>

#include "uakd/status.h"

/* The r*r sampling points (feature-grid coordinates, (x, y) pairs) of the region around input
 * pixel (u, v) at stride s, written to pts[2 r^2]. */
void uakd_pfkd_region_points(double u, double v, int stride, int r, float *pts);

/* Samples `count` regions of map feat (C, H, W) around the points xy[2i], xy[2i+1] (input pixels)
 * at stride s into out (layout above). pts receives the sampling points (2 count r^2 floats,
 * uakd_pfkd_region_points of each region). */
uakd_status uakd_pfkd_sample(const float *feat, int c, int h, int w, int stride, int r, int count,
                             const float *xy, float *pts, float *out);
/* Backward of uakd_pfkd_sample for the same points: ASSIGNS dfeat (C, H, W) = the scatter of dout
 * (layout of out). pts as above. */
uakd_status uakd_pfkd_sample_backward(const float *feat, int c, int h, int w, int stride, int r, int count,
                                      const float *xy, const float *dout, float *pts, float *dfeat);
/* The same for a map in (H, W, C) (element (c, y, x) at feat[(y W + x) C + c]) into the
 * sample-major layout: element (c, t) of region i at out[(i r^2 + t) C + c], so one region is
 * C r^2 consecutive floats; the values are those of uakd_pfkd_sample, bit for bit. Each tap
 * reads C consecutive floats (vectorised), instead of C planes. The backward ASSIGNS dfeat
 * (H, W, C). */
uakd_status uakd_pfkd_sample_hwc(const float *feat, int c, int h, int w, int stride, int r, int count, const float *xy,
                                 float *out);
uakd_status uakd_pfkd_sample_hwc_backward(int c, int h, int w, int stride, int r, int count, const float *xy,
                                          const float *dout, float *dfeat);

/* One PFKD problem: student regions i < n of rs (element (c, t) at rs[c * lds + rs_off[i] + t]),
 * teacher regions j < m of rt likewise (ldt, rt_off), c channels, rr = r^2 samples, plan n x m
 * (row-major). Returns scale * sum_ij pi_ij MSE and adds scale * dL/dR_S into grs (same layout
 * as rs; may be NULL). */
double uakd_pfkd_loss(int n, int m, int c, int rr, const float *rs, int lds, const int *rs_off, const float *rt,
                      int ldt, const int *rt_off, const float *plan, double scale, float *grs);

/* FKD for one image and level (formulas above): returns scale * L and ADDS scale * dL/dF_S into
 * gs (may be NULL). work: 2 (H W + C) doubles of scratch. */
uakd_status uakd_fkd_loss(int c, int h, int w, const float *ft, const float *fs, double temp, double scale,
                          float *gs, double *work, double *loss);

#endif
