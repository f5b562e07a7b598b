/* OpenMP helpers for the layer kernels: parallel-for and simd pragmas that vanish (without an
 * unknown-pragma warning) when the build has no OpenMP. */
#ifndef UAKD_LAYERS_OMP_H
#define UAKD_LAYERS_OMP_H

#define UAKD_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
/* parallel only when the loop touches at least UAKD_PAR_MIN values in all (small layers run on
 * the calling thread: a parallel region costs more than it saves, most of all on a busy machine) */
#define UAKD_PARALLEL_FOR(total) UAKD_PRAGMA(omp parallel for schedule(static) if ((total) >= UAKD_PAR_MIN))
/* vectorise the next loop (the default -O2 cost model of gcc 12 often does not) */
#define UAKD_SIMD _Pragma("omp simd")
#define UAKD_SIMD_SUM(...) UAKD_PRAGMA(omp simd reduction(+ : __VA_ARGS__))
#else
#define UAKD_PARALLEL_FOR(total)
#define UAKD_SIMD
#define UAKD_SIMD_SUM(...)
#endif

#define UAKD_PAR_MIN 32768

/* Element-wise kernels split their range into blocks of this many elements, one per task. */
#define UAKD_BLOCK 16384

#endif
