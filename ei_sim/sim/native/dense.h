// Dense products with a constant right-hand matrix packed once: the two products per step
// that carry the spikes' cotangents back through the E-I loop in the training's backward
// pass (network.cc),
//
//   C[b, j] (+)= sum_k A[b, k] W[j, k]          (C = A W^T; A (M, K), W (N, K), C (M, N))
//
// W is constant over the 2,000 steps of a trial, so it is packed once per backward pass
// into panels of 16 of its rows, P[p, k, q] = W[16 p + q, k] (rows past N zero): a general
// matrix kernel packs (and here transposes) its operand again on every call, about a tenth of
// its time at these sizes. The kernel keeps a block of outputs in registers and runs over K in
// slices of kKSlice (a panel's slice, 16 KB, stays in L1): with AVX-512, 12 rows x 2 panels
// in 24 of its 32 registers; with AVX2, 6 rows x 1 panel in 12 of its 16.
//
// Each output is summed in a fixed order, the same in every kernel: per K slice, a sum from
// zero of one fused multiply-add per k (k increasing), then the slices added in order. The
// result therefore depends neither on how the rows are split over threads nor on which
// kernel runs (AVX-512, AVX2 or the scalar code with FMA give the same bits).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#if defined(__AVX2__) && defined(__FMA__)
#define EI_SIM_DENSE_AVX2 1
#include <immintrin.h>
#endif
#if defined(__AVX512F__) && defined(EI_SIM_DENSE_AVX2)
#define EI_SIM_DENSE_AVX512 1
#endif

namespace ei_sim_native {

constexpr int64_t kPanel = 16;    // outputs per panel (two AVX2 vectors)
constexpr int64_t kKSlice = 256;  // K per pass over a panel
#ifdef EI_SIM_DENSE_AVX512
constexpr int64_t kProductRows = 12;  // rows per block of the kernel in use
#else
constexpr int64_t kProductRows = 6;
#endif

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

#ifdef EI_SIM_DENSE_AVX512
constexpr int kRows512 = 12;  // rows per block of the AVX-512 kernel

// MR rows (1..12) x NP panels (1, 2) over k in [k0, k1): MR x NP accumulators of 16 lanes,
// one per (row, panel); per k, NP panel rows loaded and MR values of A broadcast. cols0,
// cols1: the outputs of each panel that exist (16 but for the last, partial panel).
template <int MR, int NP>
inline void PanelSlice512(const float* A, int64_t lda, const float* panel0, const float* panel1,
                          int64_t k0, int64_t k1, float* out, int64_t ldc, int64_t cols0,
                          int64_t cols1, bool add) {
  __m512 c[MR][NP];
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 2
    for (int j = 0; j < NP; ++j) c[r][j] = _mm512_setzero_ps();
  }
  for (int64_t k = k0; k < k1; ++k) {
    __m512 b[NP];
    b[0] = _mm512_loadu_ps(panel0 + k * kPanel);
    if constexpr (NP > 1) b[1] = _mm512_loadu_ps(panel1 + k * kPanel);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512 a = _mm512_set1_ps(A[r * lda + k]);
#pragma GCC unroll 2
      for (int j = 0; j < NP; ++j) c[r][j] = _mm512_fmadd_ps(a, b[j], c[r][j]);
    }
  }
  const int64_t cols[2] = {cols0, cols1};
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 2
    for (int j = 0; j < NP; ++j) {
      float* o = out + r * ldc + j * kPanel;
      const __mmask16 m = cols[j] >= kPanel ? __mmask16(0xFFFF)
                                            : __mmask16((1u << cols[j]) - 1u);
      __m512 x = c[r][j];
      if (add) x = _mm512_add_ps(_mm512_maskz_loadu_ps(m, o), x);
      _mm512_mask_storeu_ps(o, m, x);
    }
  }
}

// Rows [r0, r1) of NP panels from panel p on, in blocks of 12 rows, the rest (1-11) by the
// kernel of that many rows.
template <int NP>
inline void PanelRows512(const float* A, int64_t K, const float* P, int64_t N, float* C,
                         int64_t p, int64_t r0, int64_t r1, int64_t k0, int64_t k1, bool add) {
  using Kernel = void (*)(const float*, int64_t, const float*, const float*, int64_t, int64_t,
                          float*, int64_t, int64_t, int64_t, bool);
  static constexpr Kernel kBy[kRows512 + 1] = {
      nullptr,               PanelSlice512<1, NP>,  PanelSlice512<2, NP>,  PanelSlice512<3, NP>,
      PanelSlice512<4, NP>,  PanelSlice512<5, NP>,  PanelSlice512<6, NP>,  PanelSlice512<7, NP>,
      PanelSlice512<8, NP>,  PanelSlice512<9, NP>,  PanelSlice512<10, NP>, PanelSlice512<11, NP>,
      PanelSlice512<12, NP>};
  const float* panel0 = P + p * K * kPanel;
  const float* panel1 = NP > 1 ? panel0 + K * kPanel : panel0;
  const int64_t cols0 = std::min(kPanel, N - p * kPanel);
  const int64_t cols1 = NP > 1 ? std::min(kPanel, N - (p + 1) * kPanel) : 0;
  float* out = C + p * kPanel;
  for (int64_t r = r0; r < r1; r += kRows512) {
    const int64_t rows = std::min<int64_t>(kRows512, r1 - r);
    kBy[rows](A + r * K, K, panel0, panel1, k0, k1, out + r * N, N, cols0, cols1, add);
  }
}
#endif

// Rows [r0, r1) of C (+)= A W^T, W packed as P (panels of 16 rows; see above). With add
// false C's rows are overwritten. K == 0 (an empty block) leaves C as it is (or zeroes it).
// scalar: the generic code even where a vector kernel exists (tests: the same bits).
template <typename T>
void PackedProduct(const T* A, int64_t K, const T* P, int64_t N, T* C, int64_t r0, int64_t r1,
                   bool add, bool scalar = false) {
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
#ifdef EI_SIM_DENSE_AVX512
    if constexpr (std::is_same_v<T, float>) {
      if (!scalar) {
        int64_t p = 0;
        for (; p + 2 <= panels; p += 2) PanelRows512<2>(A, K, P, N, C, p, r0, r1, k0, k1, add_slice);
        if (p < panels) PanelRows512<1>(A, K, P, N, C, p, r0, r1, k0, k1, add_slice);
        continue;
      }
    }
#endif
    for (int64_t p = 0; p < panels; ++p) {
#ifdef EI_SIM_DENSE_AVX2
      if constexpr (std::is_same_v<T, float>) {
        if (!scalar) {
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
      }
#endif
      PanelSliceScalar<T>(A, K, P, K, p, k0, k1, C, N, N, r0, r1, add_slice);
    }
  }
}

}  // namespace ei_sim_native
