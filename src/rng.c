/* xoshiro256** generator (Blackman & Vigna) seeded through splitmix64, with uniform, bounded
 * integer (Lemire's rejection) and normal (Box-Muller) draws. */
#include "uakd/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void uakd_rng_seed(uakd_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

uint64_t uakd_rng_u64(uakd_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double uakd_rng_uniform(uakd_rng *r) { return (double)(uakd_rng_u64(r) >> 11) * 0x1.0p-53; }

double uakd_rng_range(uakd_rng *r, double lo, double hi) { return lo + (hi - lo) * uakd_rng_uniform(r); }

uint64_t uakd_rng_below(uakd_rng *r, uint64_t n) {
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t x = uakd_rng_u64(r);
        if (x >= threshold) return x % n;
    }
}

double uakd_rng_normal(uakd_rng *r) {
    double u1 = 1.0 - uakd_rng_uniform(r); /* (0, 1] so log is finite */
    double u2 = uakd_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void uakd_rng_split(const uakd_rng *r, uint64_t label, uakd_rng *out) {
    uint64_t x = r->s[0] ^ rotl(r->s[1], 13) ^ rotl(r->s[2], 29) ^ rotl(r->s[3], 47);
    x ^= splitmix64(&label);
    uakd_rng_seed(out, x);
}
