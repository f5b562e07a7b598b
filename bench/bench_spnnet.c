/* SPNv2 network benchmark against PyTorch (bench/spnnet_peer.py, torch.set_num_threads(2)).
 *
 * The full network of uakd/spnnet.h (EfficientNet-B(phi) + BiFPN + heatmap head, batch norm; the
 * phi 6 run uses batch norm too so both sides compute the same thing) at batch 1:
 * a training step = forward (training BN), loss 0.5 mean(y^2) on the heatmaps, backward, AdamW
 * (lr 1e-3, wd 1e-4); inference = a forward with running statistics. Runs uakd, then the peer,
 * config by config, and prints the median times, their ratio (peer / uakd: > 1 means uakd is
 * faster) and the forward GFLOPs of one image.
 *
 * usage: bench_spnnet [--quick] [--no-peer] [config ...]   configs: train-phi0 train-phi0-half
 *        infer-phi0 infer-phi6 (default: all). Run from the repository root. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "uakd/backend.h"
#include "uakd/optim.h"
#include "uakd/spnnet.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct config {
    const char *name;
    int phi, w, h, steps, train;
} config;

static int run_uakd(const config *c, double *median, double *gflop) {
    uakd_spnnet_config cfg;
    if (uakd_spnnet_config_phi(c->phi, &cfg) != UAKD_OK) return 1;
    cfg.in_w = c->w, cfg.in_h = c->h, cfg.group_norm = 0;
    uakd_spnnet *m = NULL;
    uakd_optim *opt = NULL;
    uakd_optim_config oc = uakd_optim_adamw_default(1e-4);
    oc.exclude_no_decay = 0; /* like the peer's single parameter group */
    uakd_rng rng;
    uakd_rng_seed(&rng, 1);
    if (uakd_spnnet_new(&cfg, 1, c->train, &m) != UAKD_OK || uakd_net_init(m->net, &rng) != UAKD_OK ||
        (c->train && uakd_optim_new(m->net, &oc, &opt) != UAKD_OK)) {
        fprintf(stderr, "bench_spnnet: %s\n", uakd_last_error());
        uakd_spnnet_free(m);
        return 1;
    }
    float *x = uakd_net_out(m->net, m->input);
    for (long i = 0; i < 3L * c->w * c->h; i++) x[i] = (float)uakd_rng_normal(&rng);
    double flops = 0;
    for (int i = 0; i < uakd_net_num_layers(m->net); i++) flops += uakd_net_layer(m->net, i).flops;
    *gflop = flops * 1e-9;
    double *t = malloc(sizeof(double) * (size_t)(c->steps + 1));
    const int64_t ny = uakd_net_shape(m->net, m->heatmap, NULL, NULL, NULL);
    int rc = !t;
    for (int s = 0; s < c->steps + 1 && !rc; s++) { /* one warm-up step */
        const double t0 = now();
        if (c->train) {
            uakd_net_zero_grad(m->net);
            rc |= uakd_net_forward(m->net, 1, 1) != UAKD_OK;
            const float *y = uakd_net_out(m->net, m->heatmap);
            float *g = uakd_net_grad(m->net, m->heatmap);
            for (int64_t i = 0; i < ny; i++) g[i] = y[i] / (float)ny;
            rc |= uakd_net_backward(m->net, 1, &m->heatmap) != UAKD_OK;
            rc |= uakd_optim_step(opt, 1e-3) != UAKD_OK;
        } else {
            rc |= uakd_net_forward(m->net, 1, 0) != UAKD_OK;
        }
        t[s] = now() - t0;
    }
    if (rc) fprintf(stderr, "bench_spnnet: %s\n", uakd_last_error());
    else {
        qsort(t + 1, (size_t)c->steps, sizeof(double), cmp_double);
        *median = 1e3 * t[1 + c->steps / 2];
    }
    free(t);
    uakd_optim_free(opt);
    uakd_spnnet_free(m);
    return rc;
}

static double run_peer(const config *c) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 bench/spnnet_peer.py %d %d %d %d %s 2>/dev/null", c->phi, c->w, c->h,
             c->steps, c->train ? "train" : "infer");
    FILE *p = popen(cmd, "r");
    double ms = -1;
    if (p) {
        char line[256];
        while (fgets(line, sizeof line, p))
            if (sscanf(line, "peer_ms %lf", &ms) == 1) break;
        pclose(p);
    }
    return ms;
}

int main(int argc, char **argv) {
    config all[] = {{"train-phi0", 0, 768, 512, 3, 1},
                    {"train-phi0-half", 0, 384, 256, 5, 1},
                    {"infer-phi0", 0, 768, 512, 5, 0},
                    {"infer-phi6", 6, 256, 256, 3, 0}};
    const int n_all = (int)(sizeof all / sizeof all[0]);
    int quick = 0, peer = 1, chosen = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--no-peer")) peer = 0;
        else chosen = 1;
    }
    uakd_set_backend(UAKD_BACKEND_FAST);
    uakd_set_num_threads(2);
    printf("%-16s %4s %9s %6s %12s %12s %8s %14s\n", "config", "phi", "input", "steps", "uakd ms", "torch ms", "ratio",
           "fwd GFLOP/img");
    for (int k = 0; k < n_all; k++) {
        config c = all[k];
        int want = !chosen;
        for (int i = 1; i < argc; i++) want |= !strcmp(argv[i], c.name);
        if (!want) continue;
        if (quick) c.steps = 1;
        double ms = 0, gflop = 0;
        if (run_uakd(&c, &ms, &gflop)) return 1;
        const double pm = peer ? run_peer(&c) : -1;
        char in[32];
        snprintf(in, sizeof in, "%dx%d", c.w, c.h);
        printf("%-16s %4d %9s %6d %12.1f %12.1f %8.2f %14.2f\n", c.name, c.phi, in, c.steps, ms, pm,
               pm > 0 ? pm / ms : 0.0, gflop);
        fflush(stdout);
    }
    return 0;
}
