// Membrane and spike update of one population and its adjoint, for ei-sim, as XLA FFI custom
// calls on CPU. One fused pass over the cells replaces a dozen elementwise XLA operations per
// step (and as many intermediate arrays); the loops are written so that the compiler
// vectorises them (the exponential is a polynomial, no library call).
//
// Forward (ei_sim.engine.population_update: steps 2 and 3 of ei_sim.engine.step), per cell:
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
#include <cstdint>

#include "xla/ffi/api/ffi.h"
#include "cells.h"
#include "float_types.h"

namespace ffi = xla::ffi;
using namespace ei_sim_native;  // Cell, Relax, CellAdjoint, MakeCell, ParallelFor

namespace {

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

template <typename T, int32_t kSurrogate>
void Adjoint(const Cell<T> p, T slope, T damping, const T* __restrict__ v,
             const T* __restrict__ g_exc, const T* __restrict__ g_inh,
             const int32_t* __restrict__ ref, const T* __restrict__ ct_v_new,
             const T* __restrict__ ct_s, T* __restrict__ ct_v, T* __restrict__ ct_g_exc,
             T* __restrict__ ct_g_inh, int64_t n) {
  const T inv_d = T(1) / damping;
  for (int64_t k = 0; k < n; ++k) {
    CellAdjoint<T, kSurrogate>(p, slope, inv_d, v[k], g_exc[k], g_inh[k], ref[k], ct_v_new[k],
                               ct_s[k], ct_v[k], ct_g_exc[k], ct_g_inh[k]);
  }
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
