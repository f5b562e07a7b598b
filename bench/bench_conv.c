/* Per-layer convolution benchmark: forward, backward-data and backward-weights of uakd's fast
 * backend against PyTorch on the same shapes (layers of a DarkNet-Tiny student at 128x128 and
 * 256x256, of DarkNet-53 at 256x256, depthwise layers of the EfficientNet/BiFPN kind; batch 8).
 * Reports the median of R timed runs after warm-up, GFLOP/s (2 * multiply-adds / time) for both,
 * the ratio torch_time / our_time (> 1: we are faster), and the machine's measured FMA peak.
 *
 * The PyTorch peer (bench/conv_peer.py, run with /usr/bin/python3, torch.set_num_threads(2)) is
 * started once as a co-process; for each layer we send it the shape on a pipe, it times the layer
 * and answers one JSON line, then we time ours: the two alternate layer by layer. The peer uses
 * the same thread count (--threads, default 2) and the same clock.
 *
 *   build/bench/bench_conv [--reps R] [--threads T] [--cpu-time] [--no-peer] [--filter SUBSTRING]
 * --cpu-time measures process CPU time instead of wall time on both sides: on a machine shared
 * with other jobs, use it with --threads 1 to get numbers that preemption does not distort.
 * Run from the repository root (it looks for bench/conv_peer.py there). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#ifdef __x86_64__
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "uakd/backend.h"
#include "uakd/conv.h"

typedef struct layer {
    const char *name;
    uakd_conv2d_desc d;
} layer;

/* {n, c_in, h, w, c_out, kh, kw, sh, sw, ph, pw, groups} */
#define C3(n, ci, hw, co) {n, ci, hw, hw, co, 3, 3, 1, 1, 1, 1, 1}
#define C3S2(n, ci, hw, co) {n, ci, hw, hw, co, 3, 3, 2, 2, 1, 1, 1}
#define C1(n, ci, hw, co) {n, ci, hw, hw, co, 1, 1, 1, 1, 0, 0, 1}
#define DW(n, c, hw, k, s) {n, c, hw, hw, c, k, k, s, s, k / 2, k / 2, c}

static const layer layers[] = {
    /* DarkNet-Tiny student, 128x128 input: backbone, then the FPN/head convs at stride 8 (16x16) */
    {"tiny128 stem 3x3 3->16 @128", C3(8, 3, 128, 16)},
    {"tiny128 3x3 16->32 @64", C3(8, 16, 64, 32)},
    {"tiny128 1x1 32->16 @32", C1(8, 32, 32, 16)},
    {"tiny128 3x3 16->128 @32", C3(8, 16, 32, 128)},
    {"tiny128 1x1 128->16 @32", C1(8, 128, 32, 16)},
    {"tiny128 1x1 128->32 @16", C1(8, 128, 16, 32)},
    {"tiny128 3x3 32->256 @16", C3(8, 32, 16, 256)},
    {"tiny128 3x3 64->512 @8", C3(8, 64, 8, 512)},
    {"tiny128 1x1 512->64 @8", C1(8, 512, 8, 64)},
    {"tiny128 head 3x3 256->256 @16", C3(8, 256, 16, 256)},
    {"tiny128 head 3x3 256->256 @8", C3(8, 256, 8, 256)},
    /* the same student at 256x256 */
    {"tiny256 stem 3x3 3->16 @256", C3(8, 3, 256, 16)},
    {"tiny256 3x3 16->32 @128", C3(8, 16, 128, 32)},
    {"tiny256 1x1 32->16 @64", C1(8, 32, 64, 16)},
    {"tiny256 3x3 16->128 @64", C3(8, 16, 64, 128)},
    {"tiny256 3x3 32->256 @32", C3(8, 32, 32, 256)},
    {"tiny256 3x3 64->512 @16", C3(8, 64, 16, 512)},
    {"tiny256 head 3x3 256->256 @32", C3(8, 256, 32, 256)},
    /* DarkNet-53 at 256x256 */
    {"dn53 stem 3x3 3->32 @256", C3(8, 3, 256, 32)},
    {"dn53 3x3/s2 32->64 @256", C3S2(8, 32, 256, 64)},
    {"dn53 1x1 64->32 @128", C1(8, 64, 128, 32)},
    {"dn53 3x3 32->64 @128", C3(8, 32, 128, 64)},
    {"dn53 3x3 64->128 @64", C3(8, 64, 64, 128)},
    {"dn53 3x3 128->256 @32", C3(8, 128, 32, 256)},
    {"dn53 1x1 256->128 @32", C1(8, 256, 32, 128)},
    {"dn53 3x3/s2 256->512 @32", C3S2(8, 256, 32, 512)},
    {"dn53 3x3 512->1024 @8", C3(8, 512, 8, 1024)},
    {"dn53 1x1 1024->512 @8", C1(8, 1024, 8, 512)},
    /* the style note's reference point */
    {"ref 3x3 64->64 @64", C3(8, 64, 64, 64)},
    /* depthwise (EfficientNet-B0 / BiFPN kind) */
    {"dw 3x3 64 @64", DW(8, 64, 64, 3, 1)},
    {"dw 3x3/s2 96 @64", DW(8, 96, 64, 3, 2)},
    {"dw 5x5 144 @32", DW(8, 144, 32, 5, 1)},
};

static clockid_t bench_clock = CLOCK_MONOTONIC;

static double now_ms(void) {
    struct timespec t;
    clock_gettime(bench_clock, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* FMA peak: 10 independent chains of fused multiply-adds per thread (named registers; an array
 * would live in memory at -O2). */
#define FMA10(f, a, b) \
    r0 = f(r0, a, b), r1 = f(r1, a, b), r2 = f(r2, a, b), r3 = f(r3, a, b), r4 = f(r4, a, b), \
    r5 = f(r5, a, b), r6 = f(r6, a, b), r7 = f(r7, a, b), r8 = f(r8, a, b), r9 = f(r9, a, b)
#ifdef __x86_64__
__attribute__((target("avx512f"))) static float fma_loop512(long iters) {
    __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-3f);
    __m512 r0 = a, r1 = b, r2 = a, r3 = b, r4 = a, r5 = b, r6 = a, r7 = b, r8 = a, r9 = b;
    for (long it = 0; it < iters; it++) FMA10(_mm512_fmadd_ps, a, b);
    r0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(r0, r1), _mm512_add_ps(r2, r3)),
                       _mm512_add_ps(_mm512_add_ps(r4, r5), _mm512_add_ps(_mm512_add_ps(r6, r7), _mm512_add_ps(r8, r9))));
    return _mm512_reduce_add_ps(r0);
}
__attribute__((target("avx2,fma"))) static float fma_loop256(long iters) {
    __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-3f);
    __m256 r0 = a, r1 = b, r2 = a, r3 = b, r4 = a, r5 = b, r6 = a, r7 = b, r8 = a, r9 = b;
    for (long it = 0; it < iters; it++) FMA10(_mm256_fmadd_ps, a, b);
    r0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(r0, r1), _mm256_add_ps(r2, r3)),
                       _mm256_add_ps(_mm256_add_ps(r4, r5), _mm256_add_ps(_mm256_add_ps(r6, r7), _mm256_add_ps(r8, r9))));
    float v[8], s = 0;
    _mm256_storeu_ps(v, r0);
    for (int k = 0; k < 8; k++) s += v[k];
    return s;
}
#endif

static int fma_sink;

/* Measured FMA peak in GFLOP/s over all threads (0 when unknown); *isa names the vector width. */
static double fma_peak(const char **isa) {
#ifdef __x86_64__
    int w512 = __builtin_cpu_supports("avx512f"), w256 = __builtin_cpu_supports("fma");
    if (!w512 && !w256) return *isa = "none", 0;
    *isa = w512 ? "AVX-512" : "AVX2";
    const long iters = 20000000;
    double total = 0; /* each thread times itself in its own CPU time, so preemption by other jobs
                       * on a shared machine does not lower the figure; rates add up over threads */
#ifdef _OPENMP
#pragma omp parallel reduction(+ : total)
#endif
    {
        struct timespec t0, t1;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
        float sink = w512 ? fma_loop512(iters) : fma_loop256(iters);
        __atomic_store_n(&fma_sink, (int)sink, __ATOMIC_SEQ_CST); /* keeps the loop before the clock */
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
        double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
        total += (double)iters * 10 * (w512 ? 16 : 8) * 2 / (s * 1e9);
    }
    return total;
#else
    *isa = "unknown";
    return 0;
#endif
}

typedef struct peer {
    FILE *to, *from;
    pid_t pid;
} peer;

static int peer_start(peer *p, int threads) {
    int in[2], out[2];
    char nt[16];
    snprintf(nt, sizeof nt, "%d", threads);
    setenv("UAKD_PEER_THREADS", nt, 1);
    setenv("UAKD_PEER_CLOCK", bench_clock == CLOCK_MONOTONIC ? "wall" : "cpu", 1);
    if (access("bench/conv_peer.py", R_OK) != 0 || pipe(in) || pipe(out)) return -1;
    p->pid = fork();
    if (p->pid < 0) return -1;
    if (p->pid == 0) {
        dup2(in[0], 0), dup2(out[1], 1);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        execl("/usr/bin/python3", "python3", "bench/conv_peer.py", (char *)NULL);
        _exit(127);
    }
    close(in[0]), close(out[1]);
    p->to = fdopen(in[1], "w");
    p->from = fdopen(out[0], "r");
    return p->to && p->from ? 0 : -1;
}

static void peer_stop(peer *p) {
    if (p->to) fclose(p->to);
    if (p->from) fclose(p->from);
    if (p->pid > 0) waitpid(p->pid, NULL, 0);
}

static double json_num(const char *line, const char *key) {
    const char *k = strstr(line, key);
    return k ? atof(k + strlen(key) + 2) : NAN;
}

/* PyTorch's medians for one shape: t[0..2] = fwd, bwd-data, bwd-weights ms; NAN on failure. */
static void peer_time(peer *p, const uakd_conv2d_desc *d, int reps, double t[3]) {
    char line[512];
    t[0] = t[1] = t[2] = NAN;
    if (!p->to) return;
    fprintf(p->to, "%d %d %d %d %d %d %d %d %d %d %d %d %d %d\n", d->n, d->c_in, d->h_in, d->w_in, d->c_out, d->kh,
            d->kw, d->stride_h, d->stride_w, d->pad_h, d->pad_w, d->groups, 2, reps);
    fflush(p->to);
    if (!fgets(line, sizeof line, p->from)) return;
    t[0] = json_num(line, "\"fwd_ms\""), t[1] = json_num(line, "\"bwd_data_ms\""), t[2] = json_num(line, "\"bwd_weights_ms\"");
}

static float *randn(size_t n, unsigned *seed) {
    float *p = malloc(sizeof(float) * n);
    for (size_t i = 0; p && i < n; i++) p[i] = (float)rand_r(seed) / (float)RAND_MAX - 0.5f;
    return p;
}

/* Our medians for one shape, as peer_time. */
static int our_time(const uakd_conv2d_desc *d, int reps, double t[3]) {
    unsigned seed = 1;
    size_t nx = (size_t)d->n * d->c_in * d->h_in * d->w_in;
    size_t nw = (size_t)d->c_out * (d->c_in / d->groups) * d->kh * d->kw;
    size_t ny = (size_t)d->n * d->c_out * uakd_conv2d_out_h(d) * uakd_conv2d_out_w(d);
    float *x = randn(nx, &seed), *w = randn(nw, &seed), *b = randn(d->c_out, &seed), *dy = randn(ny, &seed);
    float *y = malloc(sizeof(float) * ny), *dx = malloc(sizeof(float) * nx);
    float *dw = calloc(nw, sizeof(float)), *db = calloc(d->c_out, sizeof(float));
    double *ms = malloc(sizeof(double) * reps);
    int ok = x && w && b && dy && y && dx && dw && db && ms;
    for (int dir = 0; ok && dir < 3; dir++) {
        for (int r = -2; r < reps && ok; r++) {
            double t0 = now_ms();
            uakd_status st = dir == 0   ? uakd_conv2d_forward(d, x, w, b, y)
                             : dir == 1 ? uakd_conv2d_backward_data(d, dy, w, dx)
                                        : uakd_conv2d_backward_weights(d, x, dy, dw, db);
            if (st != UAKD_OK) {
                fprintf(stderr, "bench_conv: %s\n", uakd_last_error());
                ok = 0;
            }
            if (r >= 0) ms[r] = now_ms() - t0;
        }
        if (ok) {
            qsort(ms, reps, sizeof *ms, cmp_double);
            t[dir] = ms[reps / 2];
        }
    }
    free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db), free(ms);
    return ok ? 0 : -1;
}

int main(int argc, char **argv) {
    int reps = 10, threads = 2, use_peer = 1;
    const char *filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-peer")) use_peer = 0;
        else if (!strcmp(argv[i], "--cpu-time")) bench_clock = CLOCK_PROCESS_CPUTIME_ID;
        else if (!strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--reps R (>= 1, default 10)] [--threads T (default 2)] [--cpu-time] "
                            "[--no-peer] [--filter SUBSTRING]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    uakd_set_num_threads(threads);
    uakd_set_backend(UAKD_BACKEND_FAST);
    const char *isa;
    const clockid_t chosen = bench_clock;
    bench_clock = CLOCK_MONOTONIC;
    double peak = fma_peak(&isa);
    bench_clock = chosen;
    printf("conv benchmark: batch 8, median of %d after 2 warm-up runs, %d threads, %s time; FMA peak measured %.0f "
           "GFLOP/s (%s, %d threads)\n", reps, uakd_get_num_threads(), chosen == CLOCK_MONOTONIC ? "wall" : "CPU",
           peak, isa, uakd_get_num_threads());
    peer p = {0};
    if (use_peer && peer_start(&p, threads) != 0) {
        fprintf(stderr, "bench_conv: could not start /usr/bin/python3 bench/conv_peer.py; timing uakd only\n");
        peer_stop(&p);
        memset(&p, 0, sizeof p);
    }
    printf("%-32s %7s | %22s | %22s | %22s\n", "", "GFLOP", "forward", "backward-data", "backward-weights");
    printf("%-32s %7s |", "layer", "");
    for (int k = 0; k < 3; k++) printf(" %6s %6s %7s |", "uakd", "torch", "ratio");
    printf("   (GFLOP/s; ratio = torch ms / uakd ms)\n");
    double sum_ours[3] = {0}, sum_peer[3] = {0};
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        const layer *l = &layers[i];
        if (filter && !strstr(l->name, filter)) continue;
        double gflop = 2 * uakd_conv2d_macs(&l->d) * 1e-9, ours[3], theirs[3];
        peer_time(&p, &l->d, reps, theirs);
        if (our_time(&l->d, reps, ours) != 0) return 1;
        printf("%-32s %7.3f |", l->name, gflop);
        for (int k = 0; k < 3; k++) {
            printf(" %6.1f %6.1f %6.2fx |", gflop / ours[k] * 1e3, gflop / theirs[k] * 1e3, theirs[k] / ours[k]);
            sum_ours[k] += ours[k], sum_peer[k] += theirs[k];
        }
        printf("\n");
    }
    printf("%-32s %7s |", "total time (ms)", "");
    for (int k = 0; k < 3; k++) printf(" %6.0f %6.0f %6.2fx |", sum_ours[k], sum_peer[k], sum_peer[k] / sum_ours[k]);
    printf("\n");
    peer_stop(&p);
    uakd_backend_release();
    return 0;
}
