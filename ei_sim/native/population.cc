// Membrane and spike update of one population and its adjoint, for ei-sim, as XLA FFI custom
// calls on CPU. One fused pass over the cells replaces a dozen elementwise XLA operations per
// step (and as many intermediate arrays); the loops are written so that the compiler
// vectorises them (the exponential is a polynomial, no library call).
//
// Forward (ei_sim.engine.population_update; SPEC section 1, steps 2 and 3), per cell:
//   g_tot = g_L + g_exc + g_inh,   V_inf = (g_L E_L + g_exc E_exc + g_inh E_inh) / g_tot
//   a     = 1 - exp(-dt g_tot / C)
//   V1    = max(V + (V_inf - V) a, V_floor)
//   r     = max(ref - 1, 0);  s = [V1 - V_th >= 0] [r == 0]
//   V'    = V_reset if s or r > 0, else V1;   ref' = n_ref if s, else r
//
// Adjoint (cotangents of V' and s in; of V, g_exc, g_inh out), with open = [r == 0],
// H' the surrogate derivative at V1 - V_th and d the gradient damping:
//   dL/dV1  = open ((1 - s) dL/dV' + H' dL/ds),   dL/du = dL/dV1 [V1 > V_floor]
//   dL/dV   = dL/du (1 - a/d)
//   dL/dg_x = dL/du / d (a (E_x - V_inf) / g_tot + (V_inf - V) (dt/C) (1 - a))
//
// All arrays of one call have one shape (vmap broadcasts them, "broadcast_all").
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <thread>

#include "xla/ffi/api/ffi.h"
#include "float_types.h"

namespace ffi = xla::ffi;
using ei_sim_native::WithFloatType;

namespace {

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

template <typename T>
void Forward(const Cell<T> p, const T* __restrict__ v, const T* __restrict__ g_exc,
             const T* __restrict__ g_inh, const int32_t* __restrict__ ref, T* __restrict__ v_out,
             int32_t* __restrict__ ref_out, T* __restrict__ s_out, int64_t n) {
  const T v_th = p.v_th, v_reset = p.v_reset;
  for (int64_t k = 0; k < n; ++k) {
    const Relaxation<T> x = Relax<T>(p, v[k], g_exc[k], g_inh[k]);
    const int32_t r = ref[k] > 1 ? ref[k] - 1 : 0;
    const bool fired = (x.v1 - v_th >= T(0)) & (r == 0);
    v_out[k] = (fired | (r > 0)) ? v_reset : x.v1;
    ref_out[k] = fired ? p.n_ref : r;
    s_out[k] = fired ? T(1) : T(0);
  }
}

enum Surrogate : int32_t { kFastSigmoid = 0, kArctan = 1 };

template <typename T, int32_t kSurrogate>
void Adjoint(const Cell<T> p, T slope, T damping, const T* __restrict__ v,
             const T* __restrict__ g_exc, const T* __restrict__ g_inh,
             const int32_t* __restrict__ ref, const T* __restrict__ ct_v_new,
             const T* __restrict__ ct_s, T* __restrict__ ct_v, T* __restrict__ ct_g_exc,
             T* __restrict__ ct_g_inh, int64_t n) {
  const T v_th = p.v_th, v_floor = p.v_floor, inv_d = T(1) / damping;
  const T dt_over_c = p.dt_over_c, e_exc = p.e_exc, e_inh = p.e_inh;
  const T arctan_k = T(0.5 * M_PI) * slope;
  for (int64_t k = 0; k < n; ++k) {
    const Relaxation<T> x = Relax<T>(p, v[k], g_exc[k], g_inh[k]);
    const T open = ref[k] <= 1 ? T(1) : T(0);
    const T u = x.v1 - v_th;
    const T fired = u >= T(0) ? open : T(0);
    T h;
    if constexpr (kSurrogate == kFastSigmoid) {
      const T q = T(1) + slope * (u < T(0) ? -u : u);
      h = slope / (q * q);
    } else {
      const T q = arctan_k * u;
      h = slope / (T(1) + q * q);
    }
    // masks as factors (as in the XLA adjoint; branch-free, so the loop vectorises)
    const T ct_v1 = ct_v_new[k] * open * (T(1) - fired) + ct_s[k] * open * h;
    const T ct_u = ct_v1 * (x.v1 > v_floor ? T(1) : T(0));
    const T ct_dv = ct_u * inv_d;
    const T common = (x.v_inf - v[k]) * dt_over_c * (T(1) - x.a);
    const T inv_g = T(1) / x.g_tot;
    ct_g_exc[k] = ct_dv * (x.a * (e_exc - x.v_inf) * inv_g + common);
    ct_g_inh[k] = ct_dv * (x.a * (e_inh - x.v_inf) * inv_g + common);
    ct_v[k] = ct_u - ct_dv * x.a;
  }
}

template <typename T>
Cell<T> MakeCell(double g_leak, double c, double e_leak, double e_exc, double e_inh, double dt,
                 double v_th, double v_reset, double v_floor, int32_t n_ref) {
  return {T(g_leak), T(dt / c), T(e_leak), T(e_exc), T(e_inh), T(v_th), T(v_reset),
          T(v_floor), n_ref};
}

// Runs fn(begin, end) over [0, n) in chunks shared by the calling thread and the helpers it
// schedules on XLA's CPU thread pool. The caller claims chunks too, so the call finishes even
// when every pool thread is busy (the helpers then find no chunk left and return at once);
// it returns when every claimed chunk is done. fn must capture by value: a late helper
// outlives the call (it touches only the shared counters, never fn's buffers).
template <typename Fn>
void ParallelFor(ffi::ThreadPool& pool, int64_t n, Fn fn) {
  constexpr int64_t kChunk = 16384;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
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
  auto work = [shared, fn, n, chunks]() {
    for (int64_t c; (c = shared->next.fetch_add(1)) < chunks;) {
      fn(c * kChunk, std::min(n, (c + 1) * kChunk));
      shared->done.fetch_add(1, std::memory_order_release);
    }
  };
  for (int64_t h = 0; h < helpers; ++h) pool.Schedule([work] { work(); });
  work();
  while (shared->done.load(std::memory_order_acquire) < chunks) std::this_thread::yield();
}

ffi::Error PopulationForwardImpl(ffi::AnyBuffer v, ffi::AnyBuffer g_exc, ffi::AnyBuffer g_inh,
                                 ffi::Buffer<ffi::S32> ref, ffi::Result<ffi::AnyBuffer> v_out,
                                 ffi::Result<ffi::Buffer<ffi::S32>> ref_out,
                                 ffi::Result<ffi::AnyBuffer> s_out, double g_leak, double c,
                                 double e_leak, double e_exc, double e_inh, double dt,
                                 double v_th, double v_reset, double v_floor, int32_t n_ref,
                                 ffi::ThreadPool pool) {
  const char* name = "population_forward";
  const ffi::DataType type = v.element_type();
  if (g_exc.element_type() != type || g_inh.element_type() != type ||
      v_out->element_type() != type || s_out->element_type() != type) {
    return ffi::Error::InvalidArgument("population_forward: v, g_exc, g_inh need one dtype");
  }
  const int64_t n = static_cast<int64_t>(v.element_count());
  if (static_cast<int64_t>(g_exc.element_count()) != n ||
      static_cast<int64_t>(g_inh.element_count()) != n ||
      static_cast<int64_t>(ref.element_count()) != n) {
    return ffi::Error::InvalidArgument("population_forward: operands differ in size");
  }
  return WithFloatType(type, name, [&](auto zero) {
    using T = decltype(zero);
    const Cell<T> p =
        MakeCell<T>(g_leak, c, e_leak, e_exc, e_inh, dt, v_th, v_reset, v_floor, n_ref);
    const T* v_in = static_cast<const T*>(v.untyped_data());
    const T* ge = static_cast<const T*>(g_exc.untyped_data());
    const T* gi = static_cast<const T*>(g_inh.untyped_data());
    const int32_t* r = ref.typed_data();
    T* vo = static_cast<T*>(v_out->untyped_data());
    int32_t* ro = ref_out->typed_data();
    T* so = static_cast<T*>(s_out->untyped_data());
    ParallelFor(pool, n, [=](int64_t lo, int64_t hi) {
      Forward<T>(p, v_in + lo, ge + lo, gi + lo, r + lo, vo + lo, ro + lo, so + lo, hi - lo);
    });
    return ffi::Error::Success();
  });
}

ffi::Error PopulationAdjointImpl(ffi::AnyBuffer v, ffi::AnyBuffer g_exc, ffi::AnyBuffer g_inh,
                                 ffi::Buffer<ffi::S32> ref, ffi::AnyBuffer ct_v_new,
                                 ffi::AnyBuffer ct_s, ffi::Result<ffi::AnyBuffer> ct_v,
                                 ffi::Result<ffi::AnyBuffer> ct_g_exc,
                                 ffi::Result<ffi::AnyBuffer> ct_g_inh, double g_leak, double c,
                                 double e_leak, double e_exc, double e_inh, double dt,
                                 double v_th, double v_reset, double v_floor, int32_t n_ref,
                                 int32_t surrogate, double slope, double damping,
                                 ffi::ThreadPool pool) {
  const char* name = "population_adjoint";
  const ffi::DataType type = v.element_type();
  for (ffi::DataType t : {g_exc.element_type(), g_inh.element_type(), ct_v_new.element_type(),
                          ct_s.element_type(), ct_v->element_type(), ct_g_exc->element_type(),
                          ct_g_inh->element_type()}) {
    if (t != type) return ffi::Error::InvalidArgument("population_adjoint: operands need one dtype");
  }
  const int64_t n = static_cast<int64_t>(v.element_count());
  for (size_t m : {g_exc.element_count(), g_inh.element_count(), ref.element_count(),
                   ct_v_new.element_count(), ct_s.element_count()}) {
    if (static_cast<int64_t>(m) != n) {
      return ffi::Error::InvalidArgument("population_adjoint: operands differ in size");
    }
  }
  if (surrogate != kFastSigmoid && surrogate != kArctan) {
    return ffi::Error::InvalidArgument("population_adjoint: unknown surrogate");
  }
  return WithFloatType(type, name, [&](auto zero) {
    using T = decltype(zero);
    const Cell<T> p =
        MakeCell<T>(g_leak, c, e_leak, e_exc, e_inh, dt, v_th, v_reset, v_floor, n_ref);
    auto run = surrogate == kFastSigmoid ? Adjoint<T, kFastSigmoid> : Adjoint<T, kArctan>;
    const T k = T(slope), d = T(damping);
    const T* v_in = static_cast<const T*>(v.untyped_data());
    const T* ge = static_cast<const T*>(g_exc.untyped_data());
    const T* gi = static_cast<const T*>(g_inh.untyped_data());
    const int32_t* r = ref.typed_data();
    const T* cvn = static_cast<const T*>(ct_v_new.untyped_data());
    const T* cs = static_cast<const T*>(ct_s.untyped_data());
    T* cv = static_cast<T*>(ct_v->untyped_data());
    T* cge = static_cast<T*>(ct_g_exc->untyped_data());
    T* cgi = static_cast<T*>(ct_g_inh->untyped_data());
    ParallelFor(pool, n, [=](int64_t lo, int64_t hi) {
      run(p, k, d, v_in + lo, ge + lo, gi + lo, r + lo, cvn + lo, cs + lo, cv + lo, cge + lo,
          cgi + lo, hi - lo);
    });
    return ffi::Error::Success();
  });
}

}  // namespace

#define EI_SIM_CELL_ATTRS                                                                   \
  .Attr<double>("g_leak_uS")                                                                \
      .Attr<double>("c_nF")                                                                 \
      .Attr<double>("e_leak_mV")                                                            \
      .Attr<double>("e_exc_mV")                                                             \
      .Attr<double>("e_inh_mV")                                                             \
      .Attr<double>("dt_ms")                                                                \
      .Attr<double>("v_th_mV")                                                              \
      .Attr<double>("v_reset_mV")                                                           \
      .Attr<double>("v_floor_mV")                                                           \
      .Attr<int32_t>("n_ref")

XLA_FFI_DEFINE_HANDLER_SYMBOL(EiSimPopulationForward, PopulationForwardImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::AnyBuffer>() EI_SIM_CELL_ATTRS
                                  .Ctx<ffi::ThreadPool>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(EiSimPopulationAdjoint, PopulationAdjointImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>() EI_SIM_CELL_ATTRS
                                  .Attr<int32_t>("surrogate")
                                  .Attr<double>("slope_per_mV")
                                  .Attr<double>("damping")
                                  .Ctx<ffi::ThreadPool>());
