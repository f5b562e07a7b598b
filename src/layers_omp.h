/* OpenMP helpers for the layer kernels: a parallel-for pragma that vanishes (without an
 * unknown-pragma warning) when the build has no OpenMP. */
#ifndef UAKD_LAYERS_OMP_H
#define UAKD_LAYERS_OMP_H

#ifdef _OPENMP
#define UAKD_PARALLEL_FOR _Pragma("omp parallel for schedule(static)")
#else
#define UAKD_PARALLEL_FOR
#endif

#endif
