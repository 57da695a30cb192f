// Shared by ei-sim's native cell kernels (population.cc, network.cc, host.cc): the constants of
// one population's membrane and spike update, its exponential-Euler terms, the per-cell adjoint,
// a parallel loop over XLA's CPU thread pool, and the scan for a population's nonzero spikes
// (also event_matmul.cc). The equations are stated in population.cc.
#ifndef EI_SIM_NATIVE_CELLS_H_
#define EI_SIM_NATIVE_CELLS_H_

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <type_traits>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "xla/ffi/api/ffi.h"

namespace ei_sim_native {

namespace ffi = xla::ffi;


// Constants of one population's update, in the compute type (converted once per call, so
// that the loops hold them in registers; dt/C precomputed: no division per cell).
enum Surrogate : int32_t { kFastSigmoid = 0, kArctan = 1 };

// Flags a recording step keeps per cell (CellRecord): the cell could fire in the step (its
// refractory count before it was <= 1), it fired, its V1 (the relaxed membrane before the
// spike and reset) lay above V_floor.
enum : uint8_t { kOpen = 1, kFired = 2, kAbove = 4 };

// kSpread[m]: byte j is bit j of m (eight lane masks to eight flag bytes in one store).
struct SpreadTable {
  uint64_t word[256];
  constexpr SpreadTable() : word() {
    for (int m = 0; m < 256; ++m) {
      uint64_t w = 0;
      for (int j = 0; j < 8; ++j) w |= static_cast<uint64_t>((m >> j) & 1) << (8 * j);
      word[m] = w;
    }
  }
};
inline constexpr SpreadTable kSpread{};

template <typename T>
struct Cell {
  T g_leak, dt_over_c, e_leak, e_exc, e_inh, v_th, v_reset, v_floor;
  int32_t n_ref;
};

// expm1 in float32 without a library call (so that loops over it vectorise): x = n ln2 + r,
// |r| <= ln2 / 2, expm1(r) by its Taylor series to r^8 / 8! (relative error < 2e-8), then
// expm1(x) = 2^n (expm1(r) + 1) - 1. Exact to a few ulp of expm1 for |x| < 88; NaN passes.
inline float Expm1(float x) {
  // x clamped to [-88, 88] (as min(max(x, -88), 88): one instruction each; a NaN x gives
  // some clamped value and is returned as it is below)
  const float low = x > -88.0f ? x : -88.0f;
  const float clamped = low < 88.0f ? low : 88.0f;
  const float n = __builtin_rintf(clamped * 1.44269504088896341f);
  const float r = (clamped - n * 0.693145751953125f) - n * 1.428606765330187045e-6f;
  constexpr float c2 = 1.0f / 2, c3 = 1.0f / 6, c4 = 1.0f / 24, c5 = 1.0f / 120, c6 = 1.0f / 720,
                  c7 = 1.0f / 5040, c8 = 1.0f / 40320;
  const float p = r + r * r * (c2 + r * (c3 + r * (c4 + r * (c5 + r * (c6 + r * (c7 + r * c8))))));
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  const float scale = __builtin_bit_cast(float, bits);
  const float y = scale * p + (scale - 1.0f);
  return x != x ? x : y;
}

inline double Expm1(double x) { return std::expm1(x); }

// Terms of one exponential-Euler step shared by the forward pass and the adjoint.
template <typename T>
struct Relaxation {
  T g_tot, v_inf, a, v1;
};

template <typename T>
inline Relaxation<T> Relax(const Cell<T> p, T v, T g_exc, T g_inh) {
  const T g_tot = p.g_leak + g_exc + g_inh;
  const T v_inf = (p.g_leak * p.e_leak + g_exc * p.e_exc + g_inh * p.e_inh) / g_tot;
  const T a = -Expm1(-p.dt_over_c * g_tot);
  const T u = v + (v_inf - v) * a;
  const T v1 = u < p.v_floor ? p.v_floor : u;  // NaN stays NaN, as in jnp.maximum
  return {g_tot, v_inf, a, v1};
}

#if defined(__AVX2__) && defined(__FMA__)
#define EI_SIM_NATIVE_AVX2 1

// The forward cell update of 8 float32 cells at once with AVX2 and FMA: bit for bit the scalar
// code above (Relax, then the spike and reset of population.cc) as GCC compiles it for such a
// CPU: the same operations in the same order, fused where GCC fuses them (tests/test_hostrun.py
// checks this on random and extreme inputs, NaN included). One thing differs: when every
// lane's exponent x = -dt g_tot / C lies in |x| < 0.34, so that |x log2(e)| < 1/2, the range
// reduction of Expm1 is the identity (n = 0, r = x, 2^n = 1, y = 1 p + 0 = p) and is skipped;
// so are the clamp and the NaN test, which cannot act there. That is the common case (VA: |x|
// about 0.1-0.3; the classifier: about 0.01-0.1).
struct Cell8 {
  __m256 g_leak, g_leak_e_leak, e_exc, e_inh, neg_dt_over_c, v_th, v_reset, v_floor;
  __m256i n_ref;
  explicit Cell8(const Cell<float>& p)
      : g_leak(_mm256_set1_ps(p.g_leak)),
        g_leak_e_leak(_mm256_set1_ps(p.g_leak * p.e_leak)),
        e_exc(_mm256_set1_ps(p.e_exc)),
        e_inh(_mm256_set1_ps(p.e_inh)),
        neg_dt_over_c(_mm256_set1_ps(-p.dt_over_c)),
        v_th(_mm256_set1_ps(p.v_th)),
        v_reset(_mm256_set1_ps(p.v_reset)),
        v_floor(_mm256_set1_ps(p.v_floor)),
        n_ref(_mm256_set1_epi32(p.n_ref)) {}
};

// expm1(r) for |r| <= ln2/2 as Expm1 evaluates it: r + r^2 (c2 + r (c3 + ... + r c8)).
inline __m256 Expm1Poly8(__m256 r) {
  __m256 q = _mm256_set1_ps(1.0f / 40320);
  q = _mm256_fmadd_ps(r, q, _mm256_set1_ps(1.0f / 5040));
  q = _mm256_fmadd_ps(r, q, _mm256_set1_ps(1.0f / 720));
  q = _mm256_fmadd_ps(r, q, _mm256_set1_ps(1.0f / 120));
  q = _mm256_fmadd_ps(r, q, _mm256_set1_ps(1.0f / 24));
  q = _mm256_fmadd_ps(r, q, _mm256_set1_ps(1.0f / 6));
  q = _mm256_fmadd_ps(r, q, _mm256_set1_ps(1.0f / 2));
  return _mm256_fmadd_ps(_mm256_mul_ps(r, r), q, r);
}

// Expm1 of 8 lanes (the whole computation, for lanes outside the fast range).
inline __m256 Expm1Full8(__m256 x) {
  const __m256 low = _mm256_max_ps(x, _mm256_set1_ps(-88.0f));  // x > -88 ? x : -88
  const __m256 clamped = _mm256_min_ps(low, _mm256_set1_ps(88.0f));  // low < 88 ? low : 88
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(clamped, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_CUR_DIRECTION);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), clamped);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-6f), r);
  const __m256 p = Expm1Poly8(r);
  const __m256i bits = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 scale = _mm256_castsi256_ps(bits);
  const __m256 y = _mm256_fmadd_ps(scale, p, _mm256_add_ps(scale, _mm256_set1_ps(-1.0f)));
  return _mm256_blendv_ps(x, y, _mm256_cmp_ps(x, x, _CMP_EQ_OQ));  // NaN stays NaN
}

inline __m256 Expm1x8(__m256 x) {
  const __m256 magnitude = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
  const __m256 small = _mm256_cmp_ps(magnitude, _mm256_set1_ps(0.34f), _CMP_LT_OQ);
  if (_mm256_movemask_ps(small) == 0xFF) return Expm1Poly8(x);
  return Expm1Full8(x);
}

// V1 = max(V + (V_inf - V) a, V_floor) of 8 cells (Relax's v1).
inline __m256 Membrane8(const Cell8& p, __m256 v, __m256 g_exc, __m256 g_inh) {
  const __m256 g_tot = _mm256_add_ps(_mm256_add_ps(p.g_leak, g_exc), g_inh);
  const __m256 num = _mm256_fmadd_ps(g_inh, p.e_inh, _mm256_fmadd_ps(g_exc, p.e_exc,
                                                                     p.g_leak_e_leak));
  const __m256 v_inf = _mm256_div_ps(num, g_tot);
  const __m256 y = Expm1x8(_mm256_mul_ps(g_tot, p.neg_dt_over_c));  // y = -a
  const __m256 u = _mm256_fnmadd_ps(_mm256_sub_ps(v_inf, v), y, v);  // v + (v_inf - v) a
  return _mm256_max_ps(p.v_floor, u);  // u < floor ? floor : u (NaN stays)
}

// The spike and reset of 8 cells from V1 and the refractory count: V', ref' and the spike
// (1 or 0), as population.cc's Forward.
struct Step8 {
  __m256 v, spike, fired;  // fired: all bits set where the cell fired
  __m256i ref;
};

inline Step8 SpikeAndReset8(const Cell8& p, __m256 v1, __m256i ref) {
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i left = _mm256_sub_epi32(_mm256_max_epi32(ref, one), one);  // max(ref - 1, 0)
  const __m256i idle = _mm256_cmpeq_epi32(left, _mm256_setzero_si256());
  const __m256 over = _mm256_cmp_ps(_mm256_sub_ps(v1, p.v_th), _mm256_setzero_ps(), _CMP_GE_OQ);
  const __m256 fired = _mm256_and_ps(over, _mm256_castsi256_ps(idle));
  const __m256 hold = _mm256_or_ps(fired, _mm256_castsi256_ps(
      _mm256_cmpgt_epi32(left, _mm256_setzero_si256())));
  Step8 out;
  out.v = _mm256_blendv_ps(v1, p.v_reset, hold);
  out.ref = _mm256_blendv_epi8(left, p.n_ref, _mm256_castps_si256(fired));
  out.spike = _mm256_and_ps(fired, _mm256_set1_ps(1.0f));
  out.fired = fired;
  return out;
}

// The cell adjoint of 8 float32 cells (CellAdjointOpen below, for 8 lanes; equations in
// population.cc). Whether a cell fired and whether its V1 lay above the floor are the forward
// pass's own records (`fired`, `above`: all bits set in the lanes where the flag holds), not
// recomputed, so the masks are exact; the gradient terms differ from the scalar code's by
// float rounding only (one reciprocal of g_tot instead of two divisions, FMA contractions).
struct Adjoint8 {
  __m256 ct_v, ct_g_exc, ct_g_inh;
};

template <int32_t kSurrogate>
inline Adjoint8 CellAdjoint8(const Cell8& p, __m256 dt_over_c, __m256 slope, __m256 inv_damping,
                             __m256 v, __m256 g_exc, __m256 g_inh, __m256 open, __m256 fired,
                             __m256 above, __m256 ct_v_new, __m256 ct_s) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 g_tot = _mm256_add_ps(_mm256_add_ps(p.g_leak, g_exc), g_inh);
  const __m256 inv_g = _mm256_div_ps(one, g_tot);
  const __m256 num = _mm256_fmadd_ps(g_inh, p.e_inh, _mm256_fmadd_ps(g_exc, p.e_exc,
                                                                     p.g_leak_e_leak));
  const __m256 v_inf = _mm256_mul_ps(num, inv_g);
  const __m256 y = Expm1x8(_mm256_mul_ps(g_tot, p.neg_dt_over_c));  // y = -a
  const __m256 v1 = _mm256_max_ps(p.v_floor, _mm256_fnmadd_ps(_mm256_sub_ps(v_inf, v), y, v));
  const __m256 u = _mm256_sub_ps(v1, p.v_th);
  __m256 h;  // the surrogate derivative H'(u)
  if constexpr (kSurrogate == kFastSigmoid) {  // fast sigmoid: slope / (1 + slope |u|)^2
    const __m256 q = _mm256_fmadd_ps(slope, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), u), one);
    h = _mm256_div_ps(slope, _mm256_mul_ps(q, q));
  } else {  // arctan: slope / (1 + (pi/2 slope u)^2)
    const __m256 q = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(static_cast<float>(0.5 * M_PI)),
                                                 slope), u);
    h = _mm256_div_ps(slope, _mm256_fmadd_ps(q, q, one));
  }
  // ct_V1 = ct_V' [open, not fired] + ct_s H'(u) [open], then zero where V1 sat on the floor
  const __m256 through = _mm256_andnot_ps(fired, open);
  const __m256 ct_v1 = _mm256_add_ps(_mm256_and_ps(ct_v_new, through),
                                     _mm256_and_ps(_mm256_mul_ps(ct_s, h), open));
  const __m256 ct_u = _mm256_and_ps(ct_v1, above);
  const __m256 ct_dv = _mm256_mul_ps(ct_u, inv_damping);
  // common = (V_inf - V) dt/C (1 - a) = (V_inf - V) dt/C (1 + y);  a = -y
  const __m256 common = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(v_inf, v), dt_over_c),
                                      _mm256_add_ps(one, y));
  const __m256 a_over_g = _mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), y), inv_g);
  Adjoint8 out;
  out.ct_g_exc = _mm256_mul_ps(ct_dv, _mm256_fmadd_ps(a_over_g, _mm256_sub_ps(p.e_exc, v_inf),
                                                      common));
  out.ct_g_inh = _mm256_mul_ps(ct_dv, _mm256_fmadd_ps(a_over_g, _mm256_sub_ps(p.e_inh, v_inf),
                                                      common));
  out.ct_v = _mm256_fmadd_ps(ct_dv, y, ct_u);  // ct_u - ct_dv a
  return out;
}

// One flag of 8 cells (their flag bytes widened to 32-bit lanes) as a lane mask.
inline __m256 FlagMask8(__m256i wide, uint8_t bit) {
  const __m256i b = _mm256_set1_epi32(bit);
  return _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(wide, b), b));
}
#endif  // __AVX2__ && __FMA__

#if defined(__AVX512F__) && defined(EI_SIM_NATIVE_AVX2)
#define EI_SIM_NATIVE_AVX512 1

// The same updates for 16 cells at once with AVX-512: each lane computes exactly what a lane of
// the 8-lane code above computes (the same operations in the same order; lane masks in mask
// registers instead of vectors, a lane cleared by a zeroing move where the 8-lane code ands it
// with a mask), so the results are the same bits. Loops run 16 cells at a time, then 8, then
// one: a population whose size is not a multiple of 16 is computed as before.
struct Cell16 {
  __m512 g_leak, g_leak_e_leak, e_exc, e_inh, neg_dt_over_c, v_th, v_reset, v_floor;
  __m512i n_ref;
  explicit Cell16(const Cell<float>& p)
      : g_leak(_mm512_set1_ps(p.g_leak)),
        g_leak_e_leak(_mm512_set1_ps(p.g_leak * p.e_leak)),
        e_exc(_mm512_set1_ps(p.e_exc)),
        e_inh(_mm512_set1_ps(p.e_inh)),
        neg_dt_over_c(_mm512_set1_ps(-p.dt_over_c)),
        v_th(_mm512_set1_ps(p.v_th)),
        v_reset(_mm512_set1_ps(p.v_reset)),
        v_floor(_mm512_set1_ps(p.v_floor)),
        n_ref(_mm512_set1_epi32(p.n_ref)) {}
};

inline __m512 Expm1Poly16(__m512 r) {
  __m512 q = _mm512_set1_ps(1.0f / 40320);
  q = _mm512_fmadd_ps(r, q, _mm512_set1_ps(1.0f / 5040));
  q = _mm512_fmadd_ps(r, q, _mm512_set1_ps(1.0f / 720));
  q = _mm512_fmadd_ps(r, q, _mm512_set1_ps(1.0f / 120));
  q = _mm512_fmadd_ps(r, q, _mm512_set1_ps(1.0f / 24));
  q = _mm512_fmadd_ps(r, q, _mm512_set1_ps(1.0f / 6));
  q = _mm512_fmadd_ps(r, q, _mm512_set1_ps(1.0f / 2));
  return _mm512_fmadd_ps(_mm512_mul_ps(r, r), q, r);
}

inline __m512 Expm1Full16(__m512 x) {
  const __m512 low = _mm512_max_ps(x, _mm512_set1_ps(-88.0f));
  const __m512 clamped = _mm512_min_ps(low, _mm512_set1_ps(88.0f));
  const __m512 n = _mm512_roundscale_ps(
      _mm512_mul_ps(clamped, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_CUR_DIRECTION);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), clamped);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-6f), r);
  const __m512 p = Expm1Poly16(r);
  const __m512i bits = _mm512_slli_epi32(
      _mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127)), 23);
  const __m512 scale = _mm512_castsi512_ps(bits);
  const __m512 y = _mm512_fmadd_ps(scale, p, _mm512_add_ps(scale, _mm512_set1_ps(-1.0f)));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_EQ_OQ), x, y);  // NaN stays NaN
}

inline __m512 Expm1x16(__m512 x) {
  const __mmask16 small = _mm512_cmp_ps_mask(_mm512_abs_ps(x), _mm512_set1_ps(0.34f),
                                             _CMP_LT_OQ);
  if (small == 0xFFFF) return Expm1Poly16(x);
  return Expm1Full16(x);
}

inline __m512 Membrane16(const Cell16& p, __m512 v, __m512 g_exc, __m512 g_inh) {
  const __m512 g_tot = _mm512_add_ps(_mm512_add_ps(p.g_leak, g_exc), g_inh);
  const __m512 num = _mm512_fmadd_ps(g_inh, p.e_inh, _mm512_fmadd_ps(g_exc, p.e_exc,
                                                                     p.g_leak_e_leak));
  const __m512 v_inf = _mm512_div_ps(num, g_tot);
  const __m512 y = Expm1x16(_mm512_mul_ps(g_tot, p.neg_dt_over_c));
  const __m512 u = _mm512_fnmadd_ps(_mm512_sub_ps(v_inf, v), y, v);
  return _mm512_max_ps(p.v_floor, u);
}

struct Step16 {
  __m512 v, spike;
  __mmask16 fired;
  __m512i ref;
};

inline Step16 SpikeAndReset16(const Cell16& p, __m512 v1, __m512i ref) {
  const __m512i one = _mm512_set1_epi32(1), zero = _mm512_setzero_si512();
  const __m512i left = _mm512_sub_epi32(_mm512_max_epi32(ref, one), one);
  const __mmask16 idle = _mm512_cmpeq_epi32_mask(left, zero);
  const __mmask16 over = _mm512_cmp_ps_mask(_mm512_sub_ps(v1, p.v_th), _mm512_setzero_ps(),
                                            _CMP_GE_OQ);
  const __mmask16 fired = over & idle;
  const __mmask16 hold = fired | _mm512_cmpgt_epi32_mask(left, zero);
  Step16 out;
  out.v = _mm512_mask_blend_ps(hold, v1, p.v_reset);
  out.ref = _mm512_mask_blend_epi32(fired, left, p.n_ref);
  out.spike = _mm512_maskz_mov_ps(fired, _mm512_set1_ps(1.0f));
  out.fired = fired;
  return out;
}

struct Adjoint16 {
  __m512 ct_v, ct_g_exc, ct_g_inh;
};

template <int32_t kSurrogate>
inline Adjoint16 CellAdjoint16(const Cell16& p, __m512 dt_over_c, __m512 slope,
                               __m512 inv_damping, __m512 v, __m512 g_exc, __m512 g_inh,
                               __mmask16 open, __mmask16 fired, __mmask16 above,
                               __m512 ct_v_new, __m512 ct_s) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 g_tot = _mm512_add_ps(_mm512_add_ps(p.g_leak, g_exc), g_inh);
  const __m512 inv_g = _mm512_div_ps(one, g_tot);
  const __m512 num = _mm512_fmadd_ps(g_inh, p.e_inh, _mm512_fmadd_ps(g_exc, p.e_exc,
                                                                     p.g_leak_e_leak));
  const __m512 v_inf = _mm512_mul_ps(num, inv_g);
  const __m512 y = Expm1x16(_mm512_mul_ps(g_tot, p.neg_dt_over_c));
  const __m512 v1 = _mm512_max_ps(p.v_floor, _mm512_fnmadd_ps(_mm512_sub_ps(v_inf, v), y, v));
  const __m512 u = _mm512_sub_ps(v1, p.v_th);
  __m512 h;
  if constexpr (kSurrogate == kFastSigmoid) {
    const __m512 q = _mm512_fmadd_ps(slope, _mm512_abs_ps(u), one);
    h = _mm512_div_ps(slope, _mm512_mul_ps(q, q));
  } else {
    const __m512 q = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(static_cast<float>(0.5 * M_PI)),
                                                 slope), u);
    h = _mm512_div_ps(slope, _mm512_fmadd_ps(q, q, one));
  }
  const __mmask16 through = open & static_cast<__mmask16>(~fired);
  const __m512 ct_v1 = _mm512_add_ps(_mm512_maskz_mov_ps(through, ct_v_new),
                                     _mm512_maskz_mov_ps(open, _mm512_mul_ps(ct_s, h)));
  const __m512 ct_u = _mm512_maskz_mov_ps(above, ct_v1);
  const __m512 ct_dv = _mm512_mul_ps(ct_u, inv_damping);
  const __m512 common = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(v_inf, v), dt_over_c),
                                      _mm512_add_ps(one, y));
  const __m512 a_over_g = _mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), y), inv_g);
  Adjoint16 out;
  out.ct_g_exc = _mm512_mul_ps(ct_dv, _mm512_fmadd_ps(a_over_g, _mm512_sub_ps(p.e_exc, v_inf),
                                                      common));
  out.ct_g_inh = _mm512_mul_ps(ct_dv, _mm512_fmadd_ps(a_over_g, _mm512_sub_ps(p.e_inh, v_inf),
                                                      common));
  out.ct_v = _mm512_fmadd_ps(ct_dv, y, ct_u);
  return out;
}

// The three flags of 16 cells from their flag bytes, as lane masks.
struct Flags16 {
  __mmask16 open, fired, above;
};

inline Flags16 LoadFlags16(const uint8_t* flags) {
  const __m512i wide =
      _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(flags)));
  return {_mm512_test_epi32_mask(wide, _mm512_set1_epi32(kOpen)),
          _mm512_test_epi32_mask(wide, _mm512_set1_epi32(kFired)),
          _mm512_test_epi32_mask(wide, _mm512_set1_epi32(kAbove))};
}

// The flag bytes of 16 cells from their lane masks (as kSpread for 8).
inline void StoreFlags16(uint8_t* flags, unsigned open, unsigned fired, unsigned above) {
  for (int half = 0; half < 2; ++half) {
    const int shift = 8 * half;
    const uint64_t word = kSpread.word[(open >> shift) & 0xFF] |
                          (kSpread.word[(fired >> shift) & 0xFF] << 1) |
                          (kSpread.word[(above >> shift) & 0xFF] << 2);
    std::memcpy(flags + shift, &word, sizeof(word));
  }
}
#endif  // __AVX512F__

// The surrogate derivative H'(u) at u = V1 - V_th: fast sigmoid slope / (1 + slope |u|)^2,
// arctan slope / (1 + (pi/2 slope u)^2).
template <typename T, int32_t kSurrogate>
inline T SurrogateDerivative(T u, T slope) {
  if constexpr (kSurrogate == kFastSigmoid) {
    const T q = T(1) + slope * (u < T(0) ? -u : u);
    return slope / (q * q);
  } else {
    const T q = T(0.5 * M_PI) * slope * u;
    return slope / (T(1) + q * q);
  }
}

// Cotangents of one cell's update inputs (V, g_exc, g_inh) from those of V' and s (equations
// in population.cc). Masks are factors (branch-free, so that loops over cells vectorise).
// `open`: 1 if the cell could fire in the step (its refractory count before it was <= 1), else 0.
template <typename T, int32_t kSurrogate>
inline void CellAdjointOpen(const Cell<T>& p, T slope, T inv_damping, T v, T g_exc, T g_inh,
                            T open, T ct_v_new, T ct_s, T& ct_v, T& ct_g_exc, T& ct_g_inh) {
  const Relaxation<T> x = Relax<T>(p, v, g_exc, g_inh);
  const T u = x.v1 - p.v_th;
  const T fired = u >= T(0) ? open : T(0);
  const T h = SurrogateDerivative<T, kSurrogate>(u, slope);
  const T ct_v1 = ct_v_new * open * (T(1) - fired) + ct_s * open * h;
  const T ct_u = ct_v1 * (x.v1 > p.v_floor ? T(1) : T(0));
  const T ct_dv = ct_u * inv_damping;
  const T common = (x.v_inf - v) * p.dt_over_c * (T(1) - x.a);
  const T inv_g = T(1) / x.g_tot;
  ct_g_exc = ct_dv * (x.a * (p.e_exc - x.v_inf) * inv_g + common);
  ct_g_inh = ct_dv * (x.a * (p.e_inh - x.v_inf) * inv_g + common);
  ct_v = ct_u - ct_dv * x.a;
}

template <typename T, int32_t kSurrogate>
inline void CellAdjoint(const Cell<T>& p, T slope, T inv_damping, T v, T g_exc, T g_inh,
                        int32_t ref, T ct_v_new, T ct_s, T& ct_v, T& ct_g_exc, T& ct_g_inh) {
  CellAdjointOpen<T, kSurrogate>(p, slope, inv_damping, v, g_exc, g_inh, ref <= 1 ? T(1) : T(0),
                                 ct_v_new, ct_s, ct_v, ct_g_exc, ct_g_inh);
}

template <typename T>
Cell<T> MakeCell(double g_leak, double c, double e_leak, double e_exc, double e_inh, double dt,
                 double v_th, double v_reset, double v_floor, int32_t n_ref) {
  return {T(g_leak), T(dt / c), T(e_leak), T(e_exc), T(e_inh), T(v_th), T(v_reset),
          T(v_floor), n_ref};
}


// What a recording step keeps of each cell for the adjoint (nullptr: not recording): V and the
// conductances entering the cell update, and flags (kOpen, kFired, kAbove).
template <typename T>
struct CellRecord {
  T* v = nullptr;
  T* g_exc = nullptr;
  T* g_inh = nullptr;
  uint8_t* flags = nullptr;
};

// One step of one population of one trial, fused into one pass over its cells:
//   g_exc <- fma(g_exc, d_exc, in_exc) (+ drive), g_inh <- fma(g_inh, d_inh, in_inh)
// (in_exc, in_inh, drive: the step's synaptic and input drive, reset to zero for the next
// step; drive may be nullptr), then V, ref and the spike as population.cc's Forward. The
// arithmetic is that of the engine's step (XLA:CPU fuses g d + x into one multiply-add; the
// drive is a second addition), so the states equal the engine's with the native cell kernel.
// Returns the number of cells that fired and lists them, increasing, in `list`. The caller
// adds them to the spike counts.
template <typename T, bool kDrive, bool kRecord>
int64_t StepCellsImpl(const Cell<T>& p, T d_exc, T d_inh, T* __restrict__ v, T* __restrict__ ge,
                      T* __restrict__ gi, int32_t* __restrict__ ref, T* __restrict__ s,
                      T* __restrict__ in_exc, T* __restrict__ in_inh, T* __restrict__ drive,
                      CellRecord<T> rec, int32_t* __restrict__ list, int64_t n) {
  int64_t k = 0, listed = 0;
#ifdef EI_SIM_NATIVE_AVX2
  if constexpr (std::is_same_v<T, float>) {
#ifdef EI_SIM_NATIVE_AVX512
    {
      const Cell16 p16(p);
      const __m512 d_e = _mm512_set1_ps(d_exc), d_i = _mm512_set1_ps(d_inh);
      const __m512 zero = _mm512_setzero_ps();
      const __m512i two = _mm512_set1_epi32(2);
      for (; k + 16 <= n; k += 16) {
        __m512 g_exc = _mm512_fmadd_ps(_mm512_loadu_ps(ge + k), d_e, _mm512_loadu_ps(in_exc + k));
        if constexpr (kDrive) {
          g_exc = _mm512_add_ps(g_exc, _mm512_loadu_ps(drive + k));
          _mm512_storeu_ps(drive + k, zero);
        }
        const __m512 g_inh = _mm512_fmadd_ps(_mm512_loadu_ps(gi + k), d_i,
                                             _mm512_loadu_ps(in_inh + k));
        _mm512_storeu_ps(in_exc + k, zero);
        _mm512_storeu_ps(in_inh + k, zero);
        _mm512_storeu_ps(ge + k, g_exc);
        _mm512_storeu_ps(gi + k, g_inh);
        const __m512 v0 = _mm512_loadu_ps(v + k);
        const __m512i r0 = _mm512_loadu_si512(ref + k);
        const __m512 v1 = Membrane16(p16, v0, g_exc, g_inh);
        const Step16 out = SpikeAndReset16(p16, v1, r0);
        _mm512_storeu_ps(v + k, out.v);
        _mm512_storeu_si512(ref + k, out.ref);
        _mm512_storeu_ps(s + k, out.spike);
        const unsigned fired = out.fired;
        if constexpr (kRecord) {
          _mm512_storeu_ps(rec.v + k, v0);
          _mm512_storeu_ps(rec.g_exc + k, g_exc);
          _mm512_storeu_ps(rec.g_inh + k, g_inh);
          const unsigned open = _mm512_cmplt_epi32_mask(r0, two);  // ref <= 1
          const unsigned above = _mm512_cmp_ps_mask(v1, p16.v_floor, _CMP_GT_OQ);
          StoreFlags16(rec.flags + k, open, fired, above);
        }
        for (unsigned mask = fired; mask != 0; mask &= mask - 1) {
          list[listed++] = static_cast<int32_t>(k + __builtin_ctz(mask));
        }
      }
    }
#endif
    const Cell8 p8(p);
    const __m256 d_e = _mm256_set1_ps(d_exc), d_i = _mm256_set1_ps(d_inh);
    const __m256 zero = _mm256_setzero_ps();
    const __m256i one = _mm256_set1_epi32(1);
    for (; k + 8 <= n; k += 8) {
      __m256 g_exc = _mm256_fmadd_ps(_mm256_loadu_ps(ge + k), d_e, _mm256_loadu_ps(in_exc + k));
      if constexpr (kDrive) {
        g_exc = _mm256_add_ps(g_exc, _mm256_loadu_ps(drive + k));
        _mm256_storeu_ps(drive + k, zero);
      }
      const __m256 g_inh = _mm256_fmadd_ps(_mm256_loadu_ps(gi + k), d_i,
                                           _mm256_loadu_ps(in_inh + k));
      _mm256_storeu_ps(in_exc + k, zero);
      _mm256_storeu_ps(in_inh + k, zero);
      _mm256_storeu_ps(ge + k, g_exc);
      _mm256_storeu_ps(gi + k, g_inh);
      const __m256 v0 = _mm256_loadu_ps(v + k);
      const __m256i r0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ref + k));
      const __m256 v1 = Membrane8(p8, v0, g_exc, g_inh);
      const Step8 out = SpikeAndReset8(p8, v1, r0);
      _mm256_storeu_ps(v + k, out.v);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(ref + k), out.ref);
      _mm256_storeu_ps(s + k, out.spike);
      const int fired = _mm256_movemask_ps(out.fired);
      if constexpr (kRecord) {
        _mm256_storeu_ps(rec.v + k, v0);
        _mm256_storeu_ps(rec.g_exc + k, g_exc);
        _mm256_storeu_ps(rec.g_inh + k, g_inh);
        const int open = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(
            _mm256_add_epi32(one, one), r0)));  // ref <= 1
        const int above = _mm256_movemask_ps(_mm256_cmp_ps(v1, p8.v_floor, _CMP_GT_OQ));
        const uint64_t word = kSpread.word[open] | (kSpread.word[fired] << 1) |
                              (kSpread.word[above] << 2);
        std::memcpy(rec.flags + k, &word, sizeof(word));
      }
      for (int mask = fired; mask != 0; mask &= mask - 1) {
        list[listed++] = static_cast<int32_t>(k + __builtin_ctz(mask));
      }
    }
  }
#endif
  const T v_th = p.v_th, v_reset = p.v_reset;
  const int32_t n_ref = p.n_ref;
  for (; k < n; ++k) {
    T g_exc = std::fma(ge[k], d_exc, in_exc[k]);
    if constexpr (kDrive) {
      g_exc = g_exc + drive[k];
      drive[k] = T(0);
    }
    const T g_inh = std::fma(gi[k], d_inh, in_inh[k]);
    in_exc[k] = T(0);
    in_inh[k] = T(0);
    ge[k] = g_exc;
    gi[k] = g_inh;
    const T v0 = v[k];
    const int32_t r0 = ref[k];
    const Relaxation<T> r = Relax<T>(p, v0, g_exc, g_inh);
    const int32_t left = r0 > 1 ? r0 - 1 : 0;
    const bool fired = (r.v1 - v_th >= T(0)) & (left == 0);
    v[k] = (fired | (left > 0)) ? v_reset : r.v1;
    ref[k] = fired ? n_ref : left;
    s[k] = fired ? T(1) : T(0);
    if constexpr (kRecord) {
      rec.v[k] = v0;
      rec.g_exc[k] = g_exc;
      rec.g_inh[k] = g_inh;
      rec.flags[k] = static_cast<uint8_t>((r0 <= 1 ? kOpen : 0) | (fired ? kFired : 0) |
                                          (r.v1 > p.v_floor ? kAbove : 0));
    }
    if (fired) list[listed++] = static_cast<int32_t>(k);
  }
  return listed;
}

template <typename T>
int64_t StepCells(const Cell<T>& p, T d_exc, T d_inh, T* v, T* ge, T* gi, int32_t* ref, T* s,
                  T* in_exc, T* in_inh, T* drive, CellRecord<T> rec, int32_t* list, int64_t n) {
  if (drive != nullptr) {
    return rec.v != nullptr
               ? StepCellsImpl<T, true, true>(p, d_exc, d_inh, v, ge, gi, ref, s, in_exc, in_inh,
                                              drive, rec, list, n)
               : StepCellsImpl<T, true, false>(p, d_exc, d_inh, v, ge, gi, ref, s, in_exc,
                                               in_inh, drive, rec, list, n);
  }
  return rec.v != nullptr
             ? StepCellsImpl<T, false, true>(p, d_exc, d_inh, v, ge, gi, ref, s, in_exc, in_inh,
                                             drive, rec, list, n)
             : StepCellsImpl<T, false, false>(p, d_exc, d_inh, v, ge, gi, ref, s, in_exc, in_inh,
                                              drive, rec, list, n);
}

// The number of threads of XLA's CPU pool. Asking the pool costs ~25 us per call: asked once
// (the pool lives as long as the process's CPU client).
inline int64_t PoolThreads(ffi::ThreadPool& pool) {
  static const int64_t threads = pool.num_threads();
  return threads;
}

// Runs fn(begin, end) over [0, n) in chunks of `grain` items shared by the calling thread and
// the helpers it schedules on XLA's CPU thread pool. The caller claims chunks too, so the call
// finishes even when every pool thread is busy (the helpers then find no chunk left and return at once);
// it returns when every claimed chunk is done. fn must capture by value: a late helper
// outlives the call (it touches only the shared counters, never fn's buffers).
template <typename Fn>
void ParallelFor(ffi::ThreadPool& pool, int64_t n, Fn fn, int64_t grain = 16384) {
  const int64_t chunks = (n + grain - 1) / grain;
  if (chunks <= 1) {
    fn(int64_t{0}, n);
    return;
  }
  const int64_t threads = PoolThreads(pool);
  const int64_t helpers = std::min<int64_t>(threads, chunks) - 1;
  if (helpers <= 0) {
    fn(int64_t{0}, n);
    return;
  }
  struct Shared {
    std::atomic<int64_t> next{0}, done{0};
  };
  auto shared = std::make_shared<Shared>();
  auto work = [shared, fn, n, chunks, grain]() {
    for (int64_t c; (c = shared->next.fetch_add(1)) < chunks;) {
      fn(c * grain, std::min(n, (c + 1) * grain));
      shared->done.fetch_add(1, std::memory_order_release);
    }
  };
  for (int64_t h = 0; h < helpers; ++h) pool.Schedule([work] { work(); });
  work();
  while (shared->done.load(std::memory_order_acquire) < chunks) std::this_thread::yield();
}

// Calls fn(i, s[i]) for every nonzero s[i], i < n. Runs of 32 silent cells are skipped with
// one branch: their bit patterns (sign dropped, so -0 counts as 0) are OR-ed, which the compiler
// vectorises; spikes are sparse, so in the event products this scan, not the row additions, is
// most of the work.
template <typename T, typename Fn>
inline void ForEachNonzero(const T* s, int64_t n, Fn fn) {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  constexpr int64_t kRun = 32;
  int64_t i = 0;
  for (; i + kRun <= n; i += kRun) {
    Bits any = 0;
    for (int64_t j = 0; j < kRun; ++j) {
      Bits bits;
      std::memcpy(&bits, s + i + j, sizeof(Bits));
      any |= bits << 1;
    }
    if (any == 0) continue;
    for (int64_t j = i; j < i + kRun; ++j) {
      if (s[j] != T(0)) fn(j, s[j]);
    }
  }
  for (; i < n; ++i) {
    if (s[i] != T(0)) fn(i, s[i]);
  }
}

}  // namespace ei_sim_native

#endif  // EI_SIM_NATIVE_CELLS_H_
