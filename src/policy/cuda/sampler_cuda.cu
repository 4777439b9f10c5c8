// The device twin of sampler_sample (see src/policy/sampler_cuda.h): one block per row. The kept set is described by
// a cut-off value v and a quota q, "p > v, and the first q ids (ascending) with p == v", which is what the CPU's
// sorted prefix is: top-k and top-p find v by a binary search over float values (p is non-negative, so its bits
// order like its values), and the draw walks the set in id order, each thread over one contiguous chunk of ids.
#include "policy/sampler_cuda.h"

#include <cuda_runtime.h>
#include <limits.h>
#include <math.h>

#include "core/cuda/cuda_common.cuh"

// The row's probabilities are recomputed in each pass rather than stored: the same expression everywhere, so a token's
// p is bit-for-bit the same in every comparison (__fmul_rn is never fused into a neighbouring add).
struct RowProbs {
    const float *logits;
    float mx, inv_t, inv;
    __device__ float p(int i) const { return __fmul_rn(expf((logits[i] - mx) * inv_t), inv); }
};

// The set kept so far: "p > v, plus the first q ids (ascending) with p == v". {-1, 0} is every token.
struct Cut {
    float v;
    int q;
    // Whether a token of probability p is kept, walking ids in ascending order; *rank counts the ties at v seen so far.
    __device__ bool keeps(float p, int *rank) const { return p > v || (p == v && (*rank)++ < q); }
};

// The mass (want_mass) or count of the tokens inside the cut with p >= theta; the cut's ties count up to its quota.
__device__ static double mass_at_least(const RowProbs &r, int n, float theta, Cut cut, int want_mass) {
    double acc = 0.0, ties = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float p = r.p(i);
        if (p < theta) continue;
        if (p > cut.v) acc += want_mass ? (double)p : 1.0;
        else if (p == cut.v) ties += 1.0;
    }
    acc = cuda_block_sum(acc);
    ties = cuda_block_sum(ties);
    if (ties > (double)cut.q) ties = (double)cut.q;
    return acc + ties * (want_mass ? (double)cut.v : 1.0);
}

// The largest theta with mass_at_least(theta) >= target (a token's p, since the function only steps there); -1 when
// the whole cut falls short.
__device__ static float search_cut(const RowProbs &r, int n, Cut cut, int want_mass, double target) {
    if (mass_at_least(r, n, 0.0f, cut, want_mass) < target) return -1.0f;
    unsigned lo = 0, hi = 0x40000000u;  // the bits of 0.0f and 2.0f (p <= 1 up to rounding)
    while (hi - lo > 1) {
        unsigned mid = lo + (hi - lo) / 2;
        if (mass_at_least(r, n, __uint_as_float(mid), cut, want_mass) >= target) lo = mid;
        else hi = mid;
    }
    return __uint_as_float(lo);
}

// The mass and count of the tokens with p > theta, and how many have p == theta (theta >= cut.v, so those above are
// all inside the cut; ties at theta == cut.v are the caller's to limit).
__device__ static void split_at(const RowProbs &r, int n, float theta, double *above_mass, int *above, int *ties) {
    double m = 0.0, c = 0.0, e = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float p = r.p(i);
        if (p > theta) {
            m += p;
            c += 1.0;
        } else if (p == theta) {
            e += 1.0;
        }
    }
    *above_mass = cuda_block_sum(m);
    *above = (int)cuda_block_sum(c);
    *ties = (int)cuda_block_sum(e);
}

// Exclusive prefix sums of one value per thread, in thread order (thread 0 alone: a fixed order of additions);
// a[blockDim.x] gets the total.
__device__ static void scan_threads(double *a, double v) {
    a[threadIdx.x] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        double acc = 0.0;
        for (unsigned k = 0; k < blockDim.x; k++) {
            double c = a[k];
            a[k] = acc;
            acc += c;
        }
        a[blockDim.x] = acc;
    }
    __syncthreads();
}

__global__ static void sample_rows_kernel(int *tok, float *logp, const float *logits, const double *u, int V, int n,
                                          float temperature, int top_k, float top_p, float min_p) {
    __shared__ double tie_scan[CUDA_THREADS + 1], mass_scan[CUDA_THREADS + 1];
    __shared__ int chosen;
    int row = blockIdx.x, t = threadIdx.x;
    const float *l = logits + (size_t)row * V;
    float temp = temperature > 0 ? temperature : 1.0f;
    RowProbs r;
    r.logits = l;
    r.inv_t = 1.0f / temp;
    float m = -INFINITY, mv = -INFINITY;
    for (int i = t; i < V; i += blockDim.x) {
        m = fmaxf(m, l[i]);
        if (i < n) mv = fmaxf(mv, l[i]);
    }
    r.mx = cuda_block_max(m);
    mv = cuda_block_max(mv);
    int first = INT_MAX;  // the first most likely valid token
    double sum = 0.0, pad = 0.0;  // pad: the mass of rows the tokenizer cannot produce
    for (int i = t; i < V; i += blockDim.x) {
        double e = (double)expf((l[i] - r.mx) * r.inv_t);
        if (i < n) sum += e;
        else pad += e;
        if (i < n && l[i] == mv && i < first) first = i;
    }
    int best = cuda_block_reduce(first, CudaMin());
    sum = cuda_block_sum(sum);
    pad = cuda_block_sum(pad);
    double log_full = log(sum + pad);
    r.inv = (float)(1.0 / sum);
    if (temperature <= 0) {
        if (t == 0) {
            tok[row] = best;
            logp[row] = (float)((double)(l[best] - r.mx) / temp - log_full);
        }
        return;
    }
    int plain = top_k <= 0 && top_p >= 1.0f && min_p <= 0;
    Cut cut = {-1.0f, 0};
    double above_mass;
    int above, ties;
    if (top_k > 0 && top_k < n) {
        float v = search_cut(r, n, cut, 0, (double)top_k);
        split_at(r, n, v, &above_mass, &above, &ties);
        cut.v = v;
        cut.q = top_k - above;
    }
    if (top_p < 1.0f) {
        // the nucleus of the whole distribution, or of the renormalised top-k set (as sampler_sample)
        double kept = top_k > 0 ? mass_at_least(r, n, 0.0f, cut, 1) : 1.0, target = (double)top_p * kept;
        float v = search_cut(r, n, cut, 1, target);
        if (v >= 0.0f) {  // else rounding left the whole cut short of the target: keep it, as the CPU does
            split_at(r, n, v, &above_mass, &above, &ties);
            if (v == cut.v && ties > cut.q) ties = cut.q;
            int need = ties;  // ties join in id order until the mass reaches the target
            if (v > 0.0f) {
                double j = ceil((target - above_mass) / (double)v);
                need = j < 1.0 ? 1 : j < (double)ties ? (int)j : ties;
            }
            cut.v = v;
            cut.q = need;
        }
    }
    if (min_p > 0) {
        float floor_p = min_p * r.p(best);
        if (floor_p > cut.v) {
            cut.v = floor_p;
            cut.q = INT_MAX;
        }
    }
    // The draw: each thread takes a contiguous chunk of ids; the chunks' tie counts and masses are scanned in order,
    // then the chunk whose mass interval holds x walks its ids as the CPU walks the whole row.
    int chunk = (n + (int)blockDim.x - 1) / (int)blockDim.x, lo = t * chunk < n ? t * chunk : n;
    int hi = lo + chunk < n ? lo + chunk : n;
    int my_ties = 0;
    for (int i = lo; i < hi; i++)
        if (r.p(i) == cut.v) my_ties++;
    scan_threads(tie_scan, (double)my_ties);
    int rank = (int)tie_scan[t], last = -1;
    double my_mass = 0.0;
    for (int i = lo; i < hi; i++) {
        float p = r.p(i);
        if (cut.keeps(p, &rank)) {
            my_mass += p;
            last = i;
        }
    }
    scan_threads(mass_scan, my_mass);
    int last_kept = cuda_block_reduce(last, CudaMax());
    if (t == 0) chosen = -1;
    __syncthreads();
    double x = plain ? u[row] : u[row] * mass_scan[blockDim.x];
    if (x >= mass_scan[t] && x < mass_scan[t + 1]) {
        double acc = mass_scan[t];
        int pick = last;  // rounding: the walk's own sum fell short of the scanned one
        rank = (int)tie_scan[t];
        for (int i = lo; i < hi; i++) {
            float p = r.p(i);
            if (cut.keeps(p, &rank)) {
                acc += p;
                if (x < acc) {
                    pick = i;
                    break;
                }
            }
        }
        chosen = pick;
    }
    __syncthreads();
    if (t == 0) {
        int k = chosen >= 0 ? chosen : plain ? n - 1 : last_kept;
        tok[row] = k;
        logp[row] = (float)((double)(l[k] - r.mx) / temp - log_full);
    }
}

int cuda_sample_rows(int *d_tok, float *d_logp, const float *d_logits, const double *d_u, int rows, int V, int n_valid,
                     const SamplingParams *sp, Error *err) {
    if (rows <= 0) return 0;
    int n = n_valid > 0 && n_valid < V ? n_valid : V;
    sample_rows_kernel<<<rows, CUDA_THREADS>>>(d_tok, d_logp, d_logits, d_u, V, n, sp->temperature, sp->top_k,
                                                sp->top_p, sp->min_p);
    return cuda_launch_check("sample rows", err);
}
