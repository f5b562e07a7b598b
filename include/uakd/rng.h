/* Deterministic pseudo-random numbers (xoshiro256** seeded by splitmix64).
 *
 * The state is a plain struct so checkpoints can store it and resume bit-exactly. Every
 * randomised component (initialisation, data order, augmentation, RANSAC, rendering) takes a
 * uakd_rng so that a run is reproducible from its seed. */
#ifndef UAKD_RNG_H
#define UAKD_RNG_H

#include <stdint.h>

typedef struct uakd_rng {
    uint64_t s[4];
} uakd_rng;

void uakd_rng_seed(uakd_rng *r, uint64_t seed);
uint64_t uakd_rng_u64(uakd_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double uakd_rng_uniform(uakd_rng *r);
/* Uniform in [lo, hi). */
double uakd_rng_range(uakd_rng *r, double lo, double hi);
/* Uniform integer in [0, n) without modulo bias; n > 0. */
uint64_t uakd_rng_below(uakd_rng *r, uint64_t n);
/* Standard normal (Box-Muller, no cached second value so the state alone defines the stream). */
double uakd_rng_normal(uakd_rng *r);
/* An independent stream derived from r and a label (e.g. worker index, ensemble member). */
void uakd_rng_split(const uakd_rng *r, uint64_t label, uakd_rng *out);

#endif
