/* WDRNet keypoint networks (models.md): a DarkNet backbone built from its description, an FPN
 * neck and a two-tower head shared by every level, assembled as one engine network (uakd/net.h).
 *
 *   backbone  cfg/<variant>.cfg; its [output] taps (finest first) feed the neck
 *   neck      lateral 1x1 conv (bias) of every tap to F channels; top-down: inner_last = lat_last,
 *             inner_i = lat_i + up2(inner_{i+1}); output 3x3 conv (bias) of each inner map;
 *             extra levels: E0 = 3x3/s2 conv of the backbone's last map, E1 = 3x3/s2 conv of
 *             ReLU(E0). Levels: the tap outputs then the extras (DarkNet-53: 3 + 2 = 5 levels,
 *             strides 8..128; Tiny / Tiny-H: 2 + 2 = 4 levels, strides 8..64)
 *   head      per level, with ONE parameter set for all levels (uakd_net_shared):
 *             classification and pose towers of T x [3x3 conv (bias) + GroupNorm(min(32, F)) +
 *             ReLU]; logits = 3x3 conv to C (bias -ln 99); offsets = s_l * (3x3 conv to 16 C),
 *             s_l a learnable scalar per level (init 1); head convs N(0, 0.01), zero bias.
 *
 * State_dict names: backbone.<layer prefix>.{conv,bn}.*, neck.lateral.<i>.{weight,bias},
 * neck.output.<i>.*, neck.extra.<j>.*, head.cls_tower.<3k>.* (conv), head.cls_tower.<3k+1>.*
 * (GroupNorm), head.pose_tower.* likewise, head.cls_logits.*, head.pose_pred.*,
 * head.scales.<l>.scale (an nn.Sequential / ModuleList layout, so the PyTorch twin loads it).
 *
 * Map layouts are those of uakd/wdr.h: logits (N, C, gh, gw), offsets (N, 16 C, gh, gw) with the
 * level scale applied. */
#ifndef UAKD_WDRNET_H
#define UAKD_WDRNET_H

#include <stddef.h>

#include "uakd/checkpoint.h"
#include "uakd/net.h"
#include "uakd/optim.h"
#include "uakd/netdesc.h"
#include "uakd/rng.h"
#include "uakd/safetensors.h"
#include "uakd/status.h"
#include "uakd/wdr.h"

typedef struct uakd_wdrnet_config {
    const char *variant;  /* "darknet53", "darknet-tiny" or "darknet-tiny-h"; NULL with cfg_path */
    const char *cfg_path; /* a backbone description instead of the variant's (NULL: the variant's) */
    const char *cfg_dir;  /* where the variants' cfgs live (NULL: $UAKD_CFG_DIR, else "cfg") */
    int classes;          /* C >= 1 */
    int width;            /* F; 0: the variant's (256; Tiny-H 128) */
    int tower_convs;      /* T; 0: 4 */
    int input_size;       /* square input side; must be a multiple of the backbone's coarsest stride */
    int max_batch;
    int training;         /* 1: build for training (gradients, backward) */
} uakd_wdrnet_config;

/* Defaults: classes 1, width and tower from the variant, input 256, max_batch 1, inference. */
void uakd_wdrnet_config_default(uakd_wdrnet_config *cfg, const char *variant);

typedef struct uakd_wdrnet uakd_wdrnet;

/* Builds the network (parameters zero until uakd_wdrnet_init or a load). */
uakd_status uakd_wdrnet_new(const uakd_wdrnet_config *cfg, uakd_wdrnet **out);
void uakd_wdrnet_free(uakd_wdrnet *m);

/* Initialises every parameter from rng (engine defaults for backbone and neck, the head's
 * N(0, 0.01) / -ln 99 rule). */
uakd_status uakd_wdrnet_init(uakd_wdrnet *m, uakd_rng *rng);

uakd_net *uakd_wdrnet_net(const uakd_wdrnet *m);
const uakd_netdesc *uakd_wdrnet_backbone(const uakd_wdrnet *m);
const uakd_wdrnet_config *uakd_wdrnet_config_of(const uakd_wdrnet *m); /* resolved settings */
/* The input layer (write N x 3 x S x S normalised images into uakd_net_out(net, id)). */
int uakd_wdrnet_input(const uakd_wdrnet *m);
/* Levels with the grids the network produces. */
const uakd_wdr_levels *uakd_wdrnet_levels(const uakd_wdrnet *m);
/* Per-level layer ids: logits, offsets (scaled) and the FPN feature map (F channels). */
int uakd_wdrnet_logits_id(const uakd_wdrnet *m, int level);
int uakd_wdrnet_offsets_id(const uakd_wdrnet *m, int level);
int uakd_wdrnet_feature_id(const uakd_wdrnet *m, int level);

/* Runs the forward pass on n images already written to the input layer. */
uakd_status uakd_wdrnet_forward(uakd_wdrnet *m, int n, int training);
/* The head outputs of the last forward (n images) and, for training builds, their gradient
 * buffers (write dLoss/dmap there, e.g. with uakd_wdr_loss_eval, then uakd_wdrnet_backward). */
void uakd_wdrnet_maps(const uakd_wdrnet *m, int n, uakd_wdr_maps *maps);
void uakd_wdrnet_grads(const uakd_wdrnet *m, uakd_wdr_grads *g);
/* Back-propagates the gradients in the head outputs' buffers (all levels, logits and offsets). */
uakd_status uakd_wdrnet_backward(uakd_wdrnet *m);

/* Records the architecture in a file being written: the backbone's keys (uakd_netdesc_put_metadata)
 * plus "model" = "wdrnet", "wdrnet_classes", "wdrnet_width", "wdrnet_tower_convs", "wdrnet_levels". */
uakd_status uakd_wdrnet_put_metadata(const uakd_wdrnet *m, uakd_safetensors_writer *w);
/* Checks a file's architecture keys against this model (backbone hash, classes, width, ...). */
uakd_status uakd_wdrnet_check_metadata(const uakd_wdrnet *m, const uakd_safetensors *st);

/* Weights files (uakd/weights.h) with the metadata above; loading is strict (flags as for
 * uakd_weights_load_from) and checks the architecture keys. */
uakd_status uakd_wdrnet_save(const uakd_wdrnet *m, const char *path);
uakd_status uakd_wdrnet_load(uakd_wdrnet *m, const char *path, unsigned flags);
/* ImageNet-pretrained backbone from a darknet .weights file (prefixes such as darknet53.conv.74
 * allowed); *n_covered (may be NULL) gets the conv layers read. */
uakd_status uakd_wdrnet_import_darknet(uakd_wdrnet *m, const char *path, size_t *n_covered);
/* Checkpoints (uakd/checkpoint.h) carrying this model's architecture keys. */
uakd_status uakd_wdrnet_checkpoint_save(const uakd_wdrnet *m, const uakd_optim *opt, const uakd_train_state *s,
                                        const char *path);
uakd_status uakd_wdrnet_checkpoint_load(uakd_wdrnet *m, uakd_optim *opt, uakd_train_state *s, const char *path);

#endif
