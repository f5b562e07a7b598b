/* SPNv2 heatmap networks (models.md, SPNv2): EfficientNet-B(phi) backbone, BiFPN over P2..P7,
 * heatmap head on P2, built on the graph engine (uakd/net.h).
 *
 * Backbone: torchvision's EfficientNet (features[:-1]: stem + 7 MBConv stages, no 1x1 head conv):
 * B0 stages (expand, k, stride, c_out, repeats) (1,3,1,16,1) (6,3,2,24,2) (6,5,2,40,2)
 * (6,3,2,80,3) (6,5,1,112,3) (6,5,2,192,4) (6,3,1,320,1), stem 3x3/s2 32; channels
 * make_divisible(c * width, 8) (round to the nearest multiple of 8, at least 8, and up by 8 when
 * rounding lost more than 10%), repeats ceil(r * depth). Padding k/2 on every side for every conv
 * (torchvision's convention, which SPNv2 uses; on even sizes stride 2 gives the same output size as
 * TF "same" padding, whose windows sit one pixel lower/right because TF pads bottom/right only). MBConv: [1x1 expand + norm + SiLU] (expand != 1), depthwise k x k (stride) + norm + SiLU,
 * SE (GAP -> 1x1 conv to max(1, c_in/4) + SiLU -> 1x1 conv + sigmoid -> channel multiply),
 * 1x1 project + norm, residual add when stride 1 and c_in == c_out. Taps after stages 2, 3, 5, 7
 * give P2 (stride 4) .. P5 (stride 32).
 *
 * Drop-connect (stochastic depth, EfficientNet/EfficientDet): in training builds with
 * drop_connect = r > 0, block i of the B blocks (counted over all stages from 0) has the rate
 * r_i = r i / B; a block with its residual add and r_i > 0 multiplies its branch per image by a
 * mask m (an input layer "PREFIX.drop_connect" of shape (c_out, 1, 1), through the channel
 * multiply): y = x + m branch, m = 1 / p with probability p = 1 - r_i, else 0, drawn by
 * uakd_spnnet_forward for training forwards; m = 1 otherwise (inference: identity). Inference
 * builds have no masks.
 *
 * BiFPN (EfficientDet, extended to P2 as SPNv2 does): the first layer maps P2..P5 to `width`
 * channels by 1x1 conv (bias) + norm and makes P6 = maxpool3/2(conv1x1+norm(P5)), P7 =
 * maxpool3/2(P6) (plus second 1x1 projections of P3..P5 for the bottom-up skips). Each layer:
 * top-down P6' .. P2' then bottom-up P3'' .. P7'', each node = sepconv(SiLU(fuse(inputs)))
 * with fast normalised fusion (uakd_net_fuse) and sepconv = depthwise 3x3 (no bias) +
 * pointwise 1x1 (bias) + norm; resampling by nearest x2 upsample and 3x3/s2/p1 max-pool.
 * Outputs P2 = the top-down P2', P3..P6 = the bottom-up nodes, P7.
 *
 * Head: depth x [depthwise 3x3 + pointwise 1x1 (no biases) -> norm -> SiLU] at min(2 width, 256)
 * channels, then depthwise 3x3 + pointwise 1x1 (bias) to K raw heatmaps (no sigmoid) at stride 4.
 *
 * Norms (SPNv2's settings): batch norm in the backbone eps 1e-5, momentum 0.1 (torchvision B0-B4;
 * eps 1e-3, momentum 0.01 for B5+), BiFPN eps 1e-4, momentum 0.01, head eps 1e-4, momentum 0.003.
 * With group_norm: backbone groups of 16 channels for phi 0 and 8 otherwise (eps 1e-5), BiFPN
 * and head groups of 16 channels (eps 1e-4).
 *
 * Parameter names follow the SPNv2/torchvision state_dict layout, e.g.
 * "efficientnet.2.1.block.3.1.running_var", "bifpn.0.p5_to_p6.0.conv.conv.weight",
 * "bifpn.1.conv3_down.conv.conv_pw.bias", "bifpn.1.p3_w2", "heatmap.convs.0.conv_dw.weight". */
#ifndef UAKD_SPNNET_H
#define UAKD_SPNNET_H

#include "uakd/net.h"
#include "uakd/status.h"

typedef struct uakd_spnnet_config {
    double width_mult, depth_mult; /* EfficientNet compound scaling (B0: 1, 1) */
    int bifpn_width, bifpn_layers; /* phi 0: 64 x 3, phi 3: 160 x 6, phi 6: 384 x 8 */
    int head_depth;                /* phi 0: 3, phi 3: 4, phi 6: 5 */
    int keypoints;                 /* heatmaps, 11 */
    int in_w, in_h;                /* input size, multiples of 128 (P7 has stride 128); 768 x 512 */
    int group_norm;                /* 0: batch norm, 1: group norm (phi 6) */
    int large_backbone;            /* B5+ settings: BN eps 1e-3 momentum 0.01, GN groups of 8 */
    double drop_connect;           /* training builds: drop-connect rate [0, 1) (EfficientDet: 0.2; 0: off) */
} uakd_spnnet_config;

/* A norm: group_size 0 = batch norm, else group norm with C / group_size groups. */
typedef struct uakd_spnnet_norm {
    int group_size;
    float eps, momentum;
} uakd_spnnet_norm;

typedef struct uakd_spnnet {
    uakd_net *net;
    uakd_spnnet_config cfg;
    int input;       /* (3, in_h, in_w) */
    int taps[4];     /* backbone P2..P5 */
    int features[6]; /* BiFPN outputs P2..P7 (bifpn_width channels) */
    int p2;          /* features[0]: the P2 feature (stride 4) PFKD uses; 64 ch for phi 0, 384 for phi 6 */
    int heatmap;     /* (keypoints, in_h / 4, in_w / 4) raw heatmaps */
    uakd_spnnet_norm norm[3]; /* the norms of the backbone, BiFPN and head (layers efficientnet.*, bifpn.*, heatmap.*) */
    int n_drop;      /* blocks with a drop-connect mask (training builds with drop_connect > 0) */
    int *drop_mask;  /* n_drop mask input ids */
    double *drop_rate; /* their rates r_i */
} uakd_spnnet;

/* The paper's configurations phi = 0, 3 or 6 at 768 x 512 with 11 keypoints, drop-connect 0.2. */
uakd_status uakd_spnnet_config_phi(int phi, uakd_spnnet_config *cfg);

/* Builds (uakd_net_build) the network for max_batch images; training = 0 builds inference-only
 * (p2 and heatmap stay readable). Parameters are zero: call uakd_net_init(m->net, rng) or load. */
uakd_status uakd_spnnet_new(const uakd_spnnet_config *cfg, int max_batch, int training, uakd_spnnet **out);
void uakd_spnnet_free(uakd_spnnet *m);

/* uakd_net_forward of n images that sets the drop-connect masks first: a training forward draws
 * them from rng (per block, then per image: keep when uniform < 1 - r_i), every other forward
 * sets them to 1. Without masks it is uakd_net_forward. rng may be NULL only when not training or
 * without masks. */
uakd_status uakd_spnnet_forward(uakd_spnnet *m, int n, int training, uakd_rng *rng);

/* make_divisible(v, 8) of the EfficientNet scaling (see above). */
int uakd_spnnet_round_channels(double v);

/* ---- pieces, also used by the PyTorch parity test (errors are sticky, see uakd/net.h) ---- */
/* One MBConv block named prefix (torchvision names prefix.block.J.*). drop_connect != 0: when the
 * block has its residual add, the branch goes through the mask input "prefix.drop_connect" (see
 * above; the caller fills it). Returns the output id. */
int uakd_spnnet_mbconv(uakd_net *net, const char *prefix, int in, int expand, int k, int stride, int c_out,
                       const uakd_spnnet_norm *norm, int drop_connect);
/* One BiFPN layer named prefix. first != 0: ins = backbone P2..P5 (4 ids), else ins = P2..P7
 * (6 ids). Writes the 6 output ids P2..P7 into outs; returns outs[0] or -1. */
int uakd_spnnet_bifpn_layer(uakd_net *net, const char *prefix, int first, const int *ins, int width,
                            const uakd_spnnet_norm *norm, int *outs);
/* The heatmap head named prefix on feature in (width channels). Returns the heatmap id. */
int uakd_spnnet_head(uakd_net *net, const char *prefix, int in, int depth, int keypoints,
                     const uakd_spnnet_norm *norm);

#endif
