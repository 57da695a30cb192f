// Shared by ei-sim's native cell kernels (population.cc, network.cc): the constants of one
// population's membrane and spike update, its exponential-Euler terms, the per-cell adjoint and
// a parallel loop over XLA's CPU thread pool. The equations are stated in population.cc.
#ifndef EI_SIM_NATIVE_CELLS_H_
#define EI_SIM_NATIVE_CELLS_H_

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <thread>

#include "xla/ffi/api/ffi.h"

namespace ei_sim_native {

namespace ffi = xla::ffi;


// Constants of one population's update, in the compute type (converted once per call, so
// that the loops hold them in registers; dt/C precomputed: no division per cell).
template <typename T>
struct Cell {
  T g_leak, dt_over_c, e_leak, e_exc, e_inh, v_th, v_reset, v_floor;
  int32_t n_ref;
};

// expm1 in float32 without a library call (so that loops over it vectorise): x = n ln2 + r,
// |r| <= ln2 / 2, expm1(r) by its Taylor series to r^8 / 8! (relative error < 2e-8), then
// expm1(x) = 2^n (expm1(r) + 1) - 1. Exact to a few ulp of expm1 for |x| < 88; NaN passes.
inline float Expm1(float x) {
  const float clamped = x < -88.0f ? -88.0f : (x > 88.0f ? 88.0f : x);
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

enum Surrogate : int32_t { kFastSigmoid = 0, kArctan = 1 };

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
template <typename T, int32_t kSurrogate>
inline void CellAdjoint(const Cell<T>& p, T slope, T inv_damping, T v, T g_exc, T g_inh,
                        int32_t ref, T ct_v_new, T ct_s, T& ct_v, T& ct_g_exc, T& ct_g_inh) {
  const Relaxation<T> x = Relax<T>(p, v, g_exc, g_inh);
  const T open = ref <= 1 ? T(1) : T(0);
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

template <typename T>
Cell<T> MakeCell(double g_leak, double c, double e_leak, double e_exc, double e_inh, double dt,
                 double v_th, double v_reset, double v_floor, int32_t n_ref) {
  return {T(g_leak), T(dt / c), T(e_leak), T(e_exc), T(e_inh), T(v_th), T(v_reset),
          T(v_floor), n_ref};
}


// Runs fn(begin, end) over [0, n) in chunks of `grain` items shared by the calling thread and
// the helpers it schedules on XLA's CPU thread pool. The caller claims chunks too, so the call finishes even
// when every pool thread is busy (the helpers then find no chunk left and return at once);
// it returns when every claimed chunk is done. fn must capture by value: a late helper
// outlives the call (it touches only the shared counters, never fn's buffers).
template <typename Fn>
void ParallelFor(ffi::ThreadPool& pool, int64_t n, Fn fn, int64_t grain = 16384) {
  const int64_t chunks = (n + grain - 1) / grain;
  if (chunks <= 1) {
    fn(int64_t{0}, n);
    return;
  }
  // Asking the pool its size costs ~25 us per call: ask once (the pool lives as long as the
  // process's CPU client).
  static const int64_t threads = pool.num_threads();
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

}  // namespace ei_sim_native

#endif  // EI_SIM_NATIVE_CELLS_H_
