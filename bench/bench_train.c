/* Training-step benchmark against PyTorch (bench/train_peer.py, torch.set_num_threads(2)).
 *
 * Networks (conv 3x3/1x1 without bias + BatchNorm + LeakyReLU(0.1)):
 *   tiny: DarkNet-Tiny-like student, stages [16] [32] [16,128,16,128] [32,256,32,256]
 *         [64,512,64,512,128], 1x1 on the 1st/3rd/5th unit of multi-unit stages, max-pool 2/2
 *         after stages 1-4 (0.913 M parameters);
 *   d53:  DarkNet-53-like: 3x3 stem 32, five stages of a 3x3/s2 conv and 1,2,8,8,4 residual
 *         units [1x1 c/2, 3x3 c] + skip (40.58 M parameters).
 * A training step is forward (training BN), loss 0.5 mean(y^2) on the last map, backward and
 * AdamW (lr 1e-3, wd 1e-4); inference is a forward with running statistics at batch 1.
 * The peer runs as a child process; uakd and PyTorch steps alternate one by one (so both see the
 * same machine load), and the program prints the median times, their ratio
 * (peer / uakd: > 1 means uakd is faster) and uakd's GFLOP/s (a training step counted as 3x the
 * forward convolution FLOPs) next to the machine's FMA peak (about 180 GFLOP/s on 2 AVX2 cores).
 *
 * OMP_WAIT_POLICY defaults to passive here (set it to override).
 * usage: bench_train [--quick] [--no-peer] [config ...]   configs: tiny128 tiny256 d53 infer-tiny
 *        infer-d53 (default: all). Run from the repository root (the peer is bench/train_peer.py). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "uakd/backend.h"
#include "uakd/net.h"
#include "uakd/optim.h"

static int cbl(uakd_net *net, const char *prefix, int in, int c, int k, int stride) {
    char a[96], b[96];
    snprintf(a, sizeof a, "%s.conv", prefix);
    snprintf(b, sizeof b, "%s.bn", prefix);
    int x = uakd_net_conv(net, a, in, c, k, stride, k / 2, 1, 0);
    return uakd_net_act(net, NULL, uakd_net_batchnorm(net, b, x), UAKD_ACT_LEAKY, 0.1f);
}

static int darknet_tiny(uakd_net *net, int size) {
    static const int widths[5][5] = {{16}, {32}, {16, 128, 16, 128}, {32, 256, 32, 256}, {64, 512, 64, 512, 128}};
    static const int units[5] = {1, 1, 4, 4, 5};
    int x = uakd_net_input(net, "image", 3, size, size, 0);
    char name[96];
    for (int s = 0; s < 5; s++) {
        for (int u = 0; u < units[s]; u++) {
            snprintf(name, sizeof name, "backbone.stage%d.unit%d", s + 1, u + 1);
            x = cbl(net, name, x, widths[s][u], units[s] == 1 || u % 2 ? 3 : 1, 1);
        }
        if (s < 4) x = uakd_net_maxpool(net, NULL, x, 2, 2, 0);
    }
    return x;
}

static int darknet53(uakd_net *net, int size) {
    static const int widths[5] = {64, 128, 256, 512, 1024}, units[5] = {1, 2, 8, 8, 4};
    int x = uakd_net_input(net, "image", 3, size, size, 0);
    x = cbl(net, "backbone.stem", x, 32, 3, 1);
    char name[96];
    for (int s = 0; s < 5; s++) {
        snprintf(name, sizeof name, "backbone.stage%d.down", s + 1);
        x = cbl(net, name, x, widths[s], 3, 2);
        for (int u = 0; u < units[s]; u++) {
            snprintf(name, sizeof name, "backbone.stage%d.unit%d.conv1", s + 1, u + 1);
            int y = cbl(net, name, x, widths[s] / 2, 1, 1);
            snprintf(name, sizeof name, "backbone.stage%d.unit%d.conv2", s + 1, u + 1);
            y = cbl(net, name, y, widths[s], 3, 1);
            x = uakd_net_add(net, NULL, x, y);
        }
    }
    return x;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct config {
    const char *name, *net;
    int size, batch, steps, train;
} config;

/* The PyTorch peer as a child process driven line by line over two pipes. */
typedef struct peer {
    pid_t pid;
    FILE *to, *from;
} peer;

static int peer_start(peer *p, const config *c) {
    int in[2], out[2];
    char size[16], batch[16];
    snprintf(size, sizeof size, "%d", c->size);
    snprintf(batch, sizeof batch, "%d", c->batch);
    if (pipe(in) || pipe(out)) return 1;
    p->pid = fork();
    if (p->pid < 0) return 1;
    if (p->pid == 0) {
        dup2(in[0], 0), dup2(out[1], 1);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        execl("/usr/bin/python3", "python3", "bench/train_peer.py", c->net, size, batch, c->train ? "train" : "infer",
              (char *)NULL);
        _exit(127);
    }
    close(in[0]), close(out[1]);
    p->to = fdopen(in[1], "w"), p->from = fdopen(out[0], "r");
    char line[64];
    return !p->to || !p->from || !fgets(line, sizeof line, p->from) || strncmp(line, "ready", 5);
}

/* One peer step; its milliseconds, or -1 when the peer is gone. */
static double peer_step(peer *p) {
    char line[64];
    double ms;
    if (fputs("step\n", p->to) < 0 || fflush(p->to)) return -1;
    if (!fgets(line, sizeof line, p->from) || sscanf(line, "ms %lf", &ms) != 1) return -1;
    return ms;
}

static void peer_stop(peer *p) {
    if (p->to) fputs("quit\n", p->to), fclose(p->to);
    if (p->from) fclose(p->from);
    if (p->pid > 0) waitpid(p->pid, NULL, 0);
}

/* Median milliseconds of `steps` steps after warm-up, each followed by one peer step when pp is
 * not NULL (*peer_ms: the peer's median, -1 without); *gflop = FLOPs of one step. */
static int run_uakd(const config *c, peer *pp, double *median, double *peer_ms, double *gflop, long long *params) {
    uakd_net *net = NULL;
    if (uakd_net_new(c->batch, &net) != UAKD_OK) return 1;
    const int out = strcmp(c->net, "tiny") ? darknet53(net, c->size) : darknet_tiny(net, c->size);
    uakd_optim *opt = NULL;
    uakd_optim_config cfg = uakd_optim_adamw_default(1e-4);
    cfg.exclude_no_decay = 0; /* like the peer's single parameter group */
    uakd_rng rng;
    uakd_rng_seed(&rng, 1);
    if (uakd_net_build(net, c->train) != UAKD_OK || uakd_net_init(net, &rng) != UAKD_OK ||
        (c->train && uakd_optim_new(net, &cfg, &opt) != UAKD_OK)) {
        fprintf(stderr, "bench_train: %s\n", uakd_last_error());
        uakd_net_free(net);
        return 1;
    }
    float *x = uakd_net_out(net, 0);
    for (long i = 0; i < (long)c->batch * 3 * c->size * c->size; i++) x[i] = (float)uakd_rng_normal(&rng);
    double flops = 0;
    for (int i = 0; i < uakd_net_num_layers(net); i++) {
        uakd_layer_info f = uakd_net_layer(net, i);
        if (f.kind == UAKD_LAYER_CONV) flops += f.flops;
    }
    *gflop = flops * c->batch * (c->train ? 3 : 1) * 1e-9;
    *params = (long long)uakd_net_trainable_count(net);
    const int warm = strcmp(c->net, "tiny") ? 1 : 2;
    double *t = malloc(sizeof(double) * (c->steps + warm)), *pt = malloc(sizeof(double) * (c->steps + warm));
    const size_t ny = (size_t)c->batch * uakd_net_shape(net, out, NULL, NULL, NULL);
    int rc = 0;
    for (int s = 0; s < c->steps + warm && !rc; s++) {
        const double t0 = now();
        if (c->train) {
            uakd_net_zero_grad(net);
            rc |= uakd_net_forward(net, c->batch, 1) != UAKD_OK;
            const float *y = uakd_net_out(net, out);
            float *g = uakd_net_grad(net, out);
            for (size_t i = 0; i < ny; i++) g[i] = y[i] / (float)ny;
            rc |= uakd_net_backward(net, 1, &out) != UAKD_OK;
            rc |= uakd_optim_step(opt, 1e-3) != UAKD_OK;
        } else {
            rc |= uakd_net_forward(net, c->batch, 0) != UAKD_OK;
        }
        t[s] = now() - t0;
        pt[s] = pp ? peer_step(pp) : -1;
    }
    if (rc) fprintf(stderr, "bench_train: %s\n", uakd_last_error());
    qsort(t + warm, (size_t)c->steps, sizeof(double), cmp_double);
    *median = 1e3 * t[warm + c->steps / 2];
    qsort(pt + warm, (size_t)c->steps, sizeof(double), cmp_double);
    *peer_ms = pt[warm] < 0 ? -1 : pt[warm + c->steps / 2];
    free(t), free(pt);
    uakd_optim_free(opt);
    uakd_net_free(net);
    return rc;
}

int main(int argc, char **argv) {
    /* Both processes sleep while the other one runs: idle OpenMP threads must not spin (libgomp
     * reads the policy when it loads, hence the re-exec). */
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
    }
    config all[] = {{"tiny128", "tiny", 128, 8, 10, 1},   {"tiny256", "tiny", 256, 8, 10, 1},
                    {"d53", "d53", 256, 8, 3, 1},         {"infer-tiny", "tiny", 256, 1, 20, 0},
                    {"infer-d53", "d53", 256, 1, 5, 0}};
    const int n_all = (int)(sizeof all / sizeof all[0]);
    int quick = 0, use_peer = 1, chosen = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--no-peer")) use_peer = 0;
        else chosen = 1;
    }
    uakd_set_backend(UAKD_BACKEND_FAST);
    uakd_set_num_threads(2);
    printf("%-11s %-6s %6s %5s %6s %12s %12s %8s %9s  %s\n", "config", "net", "size", "batch", "steps", "uakd ms",
           "torch ms", "ratio", "GFLOP/s", "(peak ~180 GFLOP/s on 2 cores; ratio = torch/uakd)");
    for (int k = 0; k < n_all; k++) {
        config c = all[k];
        int want = !chosen;
        for (int i = 1; i < argc; i++) want |= !strcmp(argv[i], c.name);
        if (!want) continue;
        if (quick) c.steps = c.steps > 3 ? 3 : c.steps;
        double ms, pm, gflop;
        long long params;
        peer p = {0, NULL, NULL};
        if (use_peer && peer_start(&p, &c)) {
            fprintf(stderr, "bench_train: cannot start /usr/bin/python3 bench/train_peer.py (run from the repository root)\n");
            peer_stop(&p);
            return 1;
        }
        const int rc = run_uakd(&c, use_peer ? &p : NULL, &ms, &pm, &gflop, &params);
        peer_stop(&p);
        if (rc) return 1;
        printf("%-11s %-6s %6d %5d %6d %12.1f %12.1f %8.2f %9.1f  (%.2f M params, %.1f GFLOP/step)\n", c.name, c.net,
               c.size, c.batch, c.steps, ms, pm, pm > 0 ? pm / ms : 0.0, gflop / (ms * 1e-3), params * 1e-6, gflop);
        fflush(stdout);
    }
    return 0;
}
