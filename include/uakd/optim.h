/* Optimisers over a network's parameter table, gradient-norm clipping and learning-rate
 * schedules, with PyTorch semantics.
 *
 * AdamW (torch.optim.AdamW): per step t (from 1), for each trainable value p with gradient g:
 *   p -= lr wd p   (decoupled weight decay; wd = 0 for UAKD_PARAM_NO_DECAY tensors when
 *                   exclude_no_decay is set)
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * SGD (torch.optim.SGD, dampening 0): g += wd p (coupled L2); buf = mu buf + g (buf = g at t = 1);
 *   g = nesterov ? g + mu buf : buf;  p -= lr g.
 * Buffers (BN running statistics) are never touched.
 * The state (m, v or the momentum buffer) is one allocation laid out like the parameters, so a
 * checkpoint writes uakd_optim_state() and the step count in one go. */
#ifndef UAKD_OPTIM_H
#define UAKD_OPTIM_H

#include <stdint.h>

#include "uakd/net.h"
#include "uakd/status.h"

typedef enum uakd_optim_kind {
    UAKD_OPTIM_ADAMW = 0,
    UAKD_OPTIM_SGD = 1,
} uakd_optim_kind;

typedef struct uakd_optim_config {
    uakd_optim_kind kind;
    double weight_decay;  /* AdamW: decoupled; SGD: L2 added to the gradient */
    int exclude_no_decay; /* 1: no decay for norm/bias/scale parameters (UAKD_PARAM_NO_DECAY) */
    double beta1, beta2, eps; /* AdamW (PyTorch defaults 0.9, 0.999, 1e-8) */
    double momentum;          /* SGD */
    int nesterov;             /* SGD */
} uakd_optim_config;

/* AdamW with PyTorch's defaults and the given weight decay (norm/bias excluded). */
uakd_optim_config uakd_optim_adamw_default(double weight_decay);

typedef struct uakd_optim uakd_optim;

/* The optimizer keeps a pointer to net, which must outlive it. */
uakd_status uakd_optim_new(uakd_net *net, const uakd_optim_config *cfg, uakd_optim **out);
void uakd_optim_free(uakd_optim *opt);
/* One update with learning rate lr using the gradients now in the network. */
uakd_status uakd_optim_step(uakd_optim *opt, double lr);
/* The state allocation (count floats) and the number of steps taken; set_step restores it. */
float *uakd_optim_state(const uakd_optim *opt, int64_t *count);
int64_t uakd_optim_steps(const uakd_optim *opt);
void uakd_optim_set_steps(uakd_optim *opt, int64_t steps);

/* torch.nn.utils.clip_grad_norm_: total = L2 norm of all trainable gradients; if total >
 * max_norm, every gradient is scaled by max_norm / (total + 1e-6). Returns total (before). */
double uakd_clip_grad_norm(uakd_net *net, double max_norm);

/* One-cycle: linear warm-up to lr_max over the first W = warmup_frac * total_steps steps
 * (step s < W gets lr_max (s + 1) / W), then linear decay reaching 0 at total_steps:
 * lr_max (total - s) / (total - W). step counts from 0; 0 at or after total_steps. */
double uakd_lr_onecycle(int64_t step, int64_t total_steps, double warmup_frac, double lr_max);
/* Step schedule: lr0 * gamma^(number of milestones <= step). */
double uakd_lr_step(int64_t step, double lr0, double gamma, int n_milestones, const int64_t *milestones);

#endif
