/* The machine's single-precision arithmetic ceiling: every thread runs independent AVX-512 FMA
 * chains (12 accumulators hide the FMA latency) and nothing else, so no kernel, convolution or
 * framework can do more multiply-adds per second than this. Issue 10 compares each goal (1.25x
 * PyTorch's rate) against it. Built and run by scripts/fma-peak.sh; not part of CI. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    const long iters = 25000000L;
    double best = 0.0;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = now();
        float sink = 0.0f;
        int threads = 1;
#pragma omp parallel reduction(+ : sink)
        {
#pragma omp single
            threads = omp_get_num_threads();
            __m512 acc[12];
            const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
            for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps((float)i);
            for (long k = 0; k < iters; k++) {
#pragma GCC unroll 12
                for (int i = 0; i < 12; i++) acc[i] = _mm512_fmadd_ps(acc[i], b, c);
            }
            __m512 s = acc[0];
            for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, acc[i]);
            sink += _mm512_reduce_add_ps(s); /* keeps the chains alive */
        }
        double gflops = (double)iters * 12 * 16 * 2 * threads / (now() - t0) / 1e9;
        if (gflops > best) best = gflops;
        fprintf(stderr, "run %d: %d threads, %.1f GFLOP/s (%g)\n", rep + 1, threads, gflops, sink);
    }
    printf("%.1f\n", best);
    return 0;
}
