// Dense products with a constant right-hand matrix packed once: the two products per step
// that carry the spikes' cotangents back through the E-I loop in the training's backward
// pass (network.cc),
//
//   C[b, j] (+)= sum_k A[b, k] W[j, k]          (C = A W^T; A (M, K), W (N, K), C (M, N))
//
// W is constant over the 2,000 steps of a trial, so it is packed once per backward pass
// into panels of 16 of its rows, P[p, k, q] = W[16 p + q, k] (rows past N zero): a general
// matrix kernel packs (and here transposes) its operand again on every call, about a tenth of
// its time at these sizes. The kernel keeps a block of 6 x 16 outputs in 12 AVX2 registers
// and runs over K in slices of kKSlice (one panel slice, 16 KB, stays in L1).
//
// Each output is summed in a fixed order (k increasing within a slice, the slices added in
// order): the result does not depend on how the rows are split over threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#if defined(__AVX2__) && defined(__FMA__)
#define EI_SIM_DENSE_AVX2 1
#include <immintrin.h>
#endif

namespace ei_sim_native {

constexpr int64_t kPanel = 16;    // outputs per panel (two AVX2 vectors)
constexpr int64_t kKSlice = 256;  // K per pass over a panel

// a b + c: fused (one rounding, as the AVX2 kernel) where the CPU has FMA; a multiply and an
// add otherwise (std::fma would then be a library call per term; the rounding differs).
template <typename T>
inline T MulAdd(T a, T b, T c) {
#ifdef __FMA__
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

// Outputs [r0, r1) x panel p of C (+)= A W^T over k in [k0, k1), generic (any T, any CPU):
// the same order of summation as the AVX2 kernel (a slice's sum formed from zero, then added).
template <typename T>
void PanelSliceScalar(const T* A, int64_t lda, const T* P, int64_t K, int64_t p, int64_t k0,
                      int64_t k1, T* C, int64_t ldc, int64_t N, int64_t r0, int64_t r1,
                      bool add) {
  const int64_t cols = std::min(kPanel, N - p * kPanel);
  const T* panel = P + p * K * kPanel;
  for (int64_t r = r0; r < r1; ++r) {
    T acc[kPanel] = {};
    const T* a = A + r * lda;
    for (int64_t k = k0; k < k1; ++k) {
      for (int64_t q = 0; q < kPanel; ++q) acc[q] = MulAdd(a[k], panel[k * kPanel + q], acc[q]);
    }
    T* out = C + r * ldc + p * kPanel;
    for (int64_t q = 0; q < cols; ++q) out[q] = add ? out[q] + acc[q] : acc[q];
  }
}

#ifdef EI_SIM_DENSE_AVX2
// MR rows (1..6) x one panel over k in [k0, k1), accumulators in registers.
template <int MR>
inline void PanelSliceAvx2(const float* A, int64_t lda, const float* panel, int64_t k0,
                           int64_t k1, float* out, int64_t ldc, int64_t cols, bool add) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
         c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  const float* a0 = A;
  const float* a1 = A + (MR > 1 ? lda : 0);
  const float* a2 = A + (MR > 2 ? 2 * lda : 0);
  const float* a3 = A + (MR > 3 ? 3 * lda : 0);
  const float* a4 = A + (MR > 4 ? 4 * lda : 0);
  const float* a5 = A + (MR > 5 ? 5 * lda : 0);
  for (int64_t k = k0; k < k1; ++k) {
    const __m256 b0 = _mm256_loadu_ps(panel + k * kPanel);
    const __m256 b1 = _mm256_loadu_ps(panel + k * kPanel + 8);
    __m256 a = _mm256_broadcast_ss(a0 + k);
    c00 = _mm256_fmadd_ps(a, b0, c00);
    c01 = _mm256_fmadd_ps(a, b1, c01);
    if constexpr (MR > 1) {
      a = _mm256_broadcast_ss(a1 + k);
      c10 = _mm256_fmadd_ps(a, b0, c10);
      c11 = _mm256_fmadd_ps(a, b1, c11);
    }
    if constexpr (MR > 2) {
      a = _mm256_broadcast_ss(a2 + k);
      c20 = _mm256_fmadd_ps(a, b0, c20);
      c21 = _mm256_fmadd_ps(a, b1, c21);
    }
    if constexpr (MR > 3) {
      a = _mm256_broadcast_ss(a3 + k);
      c30 = _mm256_fmadd_ps(a, b0, c30);
      c31 = _mm256_fmadd_ps(a, b1, c31);
    }
    if constexpr (MR > 4) {
      a = _mm256_broadcast_ss(a4 + k);
      c40 = _mm256_fmadd_ps(a, b0, c40);
      c41 = _mm256_fmadd_ps(a, b1, c41);
    }
    if constexpr (MR > 5) {
      a = _mm256_broadcast_ss(a5 + k);
      c50 = _mm256_fmadd_ps(a, b0, c50);
      c51 = _mm256_fmadd_ps(a, b1, c51);
    }
  }
  auto put = [&](int64_t r, __m256 x0, __m256 x1) {
    float* o = out + r * ldc;
    if (cols == kPanel) {
      if (add) {
        x0 = _mm256_add_ps(_mm256_loadu_ps(o), x0);
        x1 = _mm256_add_ps(_mm256_loadu_ps(o + 8), x1);
      }
      _mm256_storeu_ps(o, x0);
      _mm256_storeu_ps(o + 8, x1);
    } else {  // the last, partial panel
      alignas(32) float tmp[kPanel];
      _mm256_store_ps(tmp, x0);
      _mm256_store_ps(tmp + 8, x1);
      for (int64_t q = 0; q < cols; ++q) o[q] = add ? o[q] + tmp[q] : tmp[q];
    }
  };
  put(0, c00, c01);
  if constexpr (MR > 1) put(1, c10, c11);
  if constexpr (MR > 2) put(2, c20, c21);
  if constexpr (MR > 3) put(3, c30, c31);
  if constexpr (MR > 4) put(4, c40, c41);
  if constexpr (MR > 5) put(5, c50, c51);
}

// The last 1-5 rows of a panel (the batch need not be a multiple of 6).
inline void RowTail(int64_t rows, const float* A, int64_t lda, const float* panel, int64_t k0,
                    int64_t k1, float* out, int64_t ldc, int64_t cols, bool add) {
  using Kernel = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*, int64_t,
                          int64_t, bool);
  static constexpr Kernel kTail[6] = {nullptr, PanelSliceAvx2<1>, PanelSliceAvx2<2>,
                                      PanelSliceAvx2<3>, PanelSliceAvx2<4>, PanelSliceAvx2<5>};
  if (rows > 0 && rows < 6) kTail[rows](A, lda, panel, k0, k1, out, ldc, cols, add);
}
#endif

// Rows [r0, r1) of C (+)= A W^T, W packed as P (panels of 16 rows; see above). With add
// false C's rows are overwritten. K == 0 (an empty block) leaves C as it is (or zeroes it).
template <typename T>
void PackedProduct(const T* A, int64_t K, const T* P, int64_t N, T* C, int64_t r0, int64_t r1,
                   bool add) {
  if (K == 0) {
    if (!add) {
      for (int64_t r = r0; r < r1; ++r) std::fill(C + r * N, C + (r + 1) * N, T(0));
    }
    return;
  }
  const int64_t panels = (N + kPanel - 1) / kPanel;
  for (int64_t k0 = 0; k0 < K; k0 += kKSlice) {
    const int64_t k1 = std::min(K, k0 + kKSlice);
    const bool add_slice = add || k0 > 0;
    for (int64_t p = 0; p < panels; ++p) {
#ifdef EI_SIM_DENSE_AVX2
      if constexpr (std::is_same_v<T, float>) {
        const float* panel = P + p * K * kPanel;
        const int64_t cols = std::min(kPanel, N - p * kPanel);
        float* out = C + p * kPanel;
        int64_t r = r0;
        for (; r + 6 <= r1; r += 6) {
          PanelSliceAvx2<6>(A + r * K, K, panel, k0, k1, out + r * N, N, cols, add_slice);
        }
        RowTail(r1 - r, A + r * K, K, panel, k0, k1, out + r * N, N, cols, add_slice);
        continue;
      }
#endif
      PanelSliceScalar<T>(A, K, P, K, p, k0, k1, C, N, N, r0, r1, add_slice);
    }
  }
}

}  // namespace ei_sim_native
