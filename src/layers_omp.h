/* OpenMP helpers for the layer kernels: parallel-for and simd pragmas that vanish (without an
 * unknown-pragma warning) when the build has no OpenMP. */
#ifndef UAKD_LAYERS_OMP_H
#define UAKD_LAYERS_OMP_H

#define UAKD_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
#define UAKD_PARALLEL_FOR _Pragma("omp parallel for schedule(static)")
/* vectorise the next loop (the default -O2 cost model of gcc 12 often does not) */
#define UAKD_SIMD _Pragma("omp simd")
#define UAKD_SIMD_SUM(...) UAKD_PRAGMA(omp simd reduction(+ : __VA_ARGS__))
#else
#define UAKD_PARALLEL_FOR
#define UAKD_SIMD
#define UAKD_SIMD_SUM(...)
#endif

/* Element-wise kernels split their range into blocks of this many elements, one per task. */
#define UAKD_BLOCK 16384

#endif
