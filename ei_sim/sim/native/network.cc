// The whole network step of the spiking classifier, fused, and its adjoint: the training fast
// path of ei-sim (ei_sim.fused), as XLA FFI custom calls on CPU.
//
// network_forward runs L steps of ei_sim.engine.step for a batch of trials in one call, each
// trial's state kept in cache across the L steps (trials are independent, so they are split
// over XLA's CPU threads). Per step and trial, with s_E, s_I the previous step's spikes and
// this step's input events (sample, channel):
//   g_exc_E <- g_exc_E d_ampa + s_E W_EE + sum_events W_in[channel]
//   g_inh_E <- g_inh_E d_gaba + s_I W_IE,  g_exc_I <- g_exc_I d_ampa + s_E W_EI,
//   g_inh_I <- g_inh_I d_gaba + s_I W_II
//   (V, ref, s) of each population <- the cell update of population.cc
//   u = beta out_v + kappa s_E W_out,  out_v <- u - theta [u >= theta],  out_sum += u,
//   counts += s                                        (kappa = (1 - beta) / dt)
// With record = 1 it also returns, per step, what the adjoint needs: V and ref before the cell
// update, g_exc and g_inh after the conductance update, and the new E spikes.
//
// network_adjoint_step is the adjoint of one such step for the whole batch, from the recorded
// stacks and the cotangents of the state after the step (lambda). With the constant
// cotangents of the trial's outputs c_count_E, c_count_I, c_sum:
//   lambda_u   = lambda_out_v + c_sum,   lambda_out_v(prev) = beta lambda_u
//   lambda_s_E = lambda_s_E(from the next step's products) + c_count_E + kappa lambda_u W_out^T
//                (the last term from two precomputed rows, see the operands below)
// (With a readout reset that passes the surrogate gradient, d out_v / d u = 1 - theta H'(u -
// theta), lambda_u = lambda_out_v (1 - theta H'(u - theta)) + c_sum and the last term is
// formed step by step from the recorded u and W_out^T, operands 28 and 29.)
//   lambda_s_I = lambda_s_I(from the next step's products) + c_count_I
//   the cell adjoint of each population (cells.h) gives lambda_V(prev) and the cell's share
//   of the conductance cotangents; the totals over the step are
//   Lambda_g = cell share + d_x Lambda_g(next step)            (d_x = d_ampa or d_gaba)
// It returns the totals Lambda_g and, from them, the spikes' cotangents of the previous step,
// two dense products (lambda_s_E = Lambda_g_exc_I W_EI^T + Lambda_g_exc_E W_EE^T,
// lambda_s_I = Lambda_g_inh_E W_IE^T + Lambda_g_inh_I W_II^T) with the blocks packed once per
// backward pass by the caller (dense.h).
//
// It also adds the step's terms of the gradients of W_in and W_out, event-driven, in place:
//   dL/dW_in[c]  += Lambda_g_exc_E[b]           for every input event (b, c) of the step
//   dL/dW_out[e] += kappa lambda_u[b]           for every E spike (b, e) of the step
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "xla/ffi/api/ffi.h"
#include "cells.h"
#include "dense.h"
#include "float_types.h"

namespace ffi = xla::ffi;
using namespace ei_sim_native;  // Cell, Relax, CellAdjoint, MakeCell, ParallelFor

namespace {

template <typename T>
struct Net {
  Cell<T> e, i;
  T d_ampa, d_gaba, beta, kappa, theta;
};

template <typename T>
ffi::ErrorOr<Net<T>> MakeNet(const ffi::Dictionary& attrs) {
  double x[16];
  const char* names[] = {"e_g_leak_uS", "e_c_nF", "i_g_leak_uS", "i_c_nF",   "e_leak_mV",
                         "e_exc_mV",    "e_inh_mV", "dt_ms",     "v_th_mV",  "v_reset_mV",
                         "v_floor_mV",  "d_ampa", "d_gaba",      "beta",     "kappa",
                         "out_threshold"};
  for (int k = 0; k < 16; ++k) {
    auto value = attrs.get<double>(names[k]);
    if (!value.has_value()) return ffi::Unexpected(value.error());
    x[k] = *value;
  }
  auto n_ref_e = attrs.get<int32_t>("e_n_ref");
  auto n_ref_i = attrs.get<int32_t>("i_n_ref");
  if (!n_ref_e.has_value()) return ffi::Unexpected(n_ref_e.error());
  if (!n_ref_i.has_value()) return ffi::Unexpected(n_ref_i.error());
  Net<T> net;
  net.e = MakeCell<T>(x[0], x[1], x[4], x[5], x[6], x[7], x[8], x[9], x[10], *n_ref_e);
  net.i = MakeCell<T>(x[2], x[3], x[4], x[5], x[6], x[7], x[8], x[9], x[10], *n_ref_i);
  net.d_ampa = T(x[11]);
  net.d_gaba = T(x[12]);
  net.beta = T(x[13]);
  net.kappa = T(x[14]);
  net.theta = T(x[15]);
  return net;
}

int32_t IntAttr(const ffi::Dictionary& attrs, const char* name, int32_t fallback) {
  auto value = attrs.get<int32_t>(name);
  return value.has_value() ? *value : fallback;
}

// Rows per part when a product's rows are split over the pool: one part per thread (each
// part reads all of the packed block, so fewer parts read it fewer times), a multiple of the
// kernel's row block (dense.h: 12 rows with AVX-512, 6 with AVX2).
int64_t ProductGrain(ffi::ThreadPool& pool, int64_t rows) {
  const int64_t threads = std::max<int64_t>(1, PoolThreads(pool));
  const int64_t per_thread = (rows + threads - 1) / threads;
  return std::max<int64_t>(kProductRows, (per_thread + kProductRows - 1) / kProductRows *
                                             kProductRows);
}

// fn(lo, hi) over the trials [0, B): split over XLA's threads unless the call says
// parallel = 0 (the batch is already split over devices, one thread each).
template <typename Fn>
void OverTrials(const ffi::Dictionary& attrs, ffi::ThreadPool& pool, int64_t B, int64_t grain,
                Fn fn) {
  if (IntAttr(attrs, "parallel", 1) != 0) {
    ParallelFor(pool, B, fn, grain);
  } else {
    fn(int64_t{0}, B);
  }
}

// out[j] += value * row[j] (value is the spike, 1 in the network's forward pass).
template <typename T>
inline void AddRow(T* __restrict__ out, const T* __restrict__ row, T value, int64_t n) {
  if (value == T(1)) {
    for (int64_t j = 0; j < n; ++j) out[j] += row[j];
  } else {
    for (int64_t j = 0; j < n; ++j) out[j] += value * row[j];
  }
}

// Calls fn(i, s[i]) for every nonzero s[i]; runs of 32 silent cells cost one test.
template <typename T, typename Fn>
inline void ForEachSpike(const T* s, int64_t n, Fn fn) {
  constexpr int64_t kRun = 32;
  int64_t i = 0;
  for (; i + kRun <= n; i += kRun) {
    T any = 0;
    for (int64_t j = 0; j < kRun; ++j) any += s[i + j] != T(0) ? T(1) : T(0);
    if (any == T(0)) continue;
    for (int64_t j = i; j < i + kRun; ++j) {
      if (s[j] != T(0)) fn(j, s[j]);
    }
  }
  for (; i < n; ++i) {
    if (s[i] != T(0)) fn(i, s[i]);
  }
}

// Calls fn(k, 1) for every cell k whose recorded flags say it fired; runs of 8 silent cells
// cost one test.
template <typename T, typename Fn>
inline void ForEachFired(const uint8_t* flags, int64_t n, Fn fn) {
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    uint64_t word;
    std::memcpy(&word, flags + k, 8);
    if ((word & 0x0202020202020202ull) == 0) continue;
    for (int64_t j = k; j < k + 8; ++j) {
      if (flags[j] & kFired) fn(j, T(1));
    }
  }
  for (; k < n; ++k) {
    if (flags[k] & kFired) fn(k, T(1));
  }
}

// Lists the nonzero s[k] (k increasing); returns how many.
template <typename T>
int64_t ListSpikes(const T* s, int64_t n, int32_t* list) {
  int64_t count = 0;
  ForEachSpike(s, n, [&](int64_t k, T) { list[count++] = static_cast<int32_t>(k); });
  return count;
}

// A population's state rows for one trial (pointers into (B, n) arrays).
template <typename T>
struct PopRows {
  T *v, *g_exc, *g_inh, *s;
  int32_t* ref;
};

// One trial's row of the cell adjoint, with the spikes' cotangents formed on the way:
//   ct_s = lambda_s(products) + c_count + alpha q_sum + gamma q_final
// (q_*: the readout's share, see AdjointTyped; nullptr for the I population), and the
// conductance totals adding the next step's, decayed. In place: ct_v may be ct_v_new, ct_ge
// ct_ge_next and ct_gi ct_gi_next (the call's results alias its operands, so that XLA keeps
// the backward pass's carry in one set of buffers instead of copying it every step). Each
// cell's inputs are read before its outputs are written and no cell reads another's, so the
// loop carries no dependence (ivdep).
template <typename T, int32_t kSurrogate>
void CellsAdjoint(const Cell<T> p, T slope, T inv_d, T d_exc, T d_inh, const T* __restrict__ v,
                  const T* __restrict__ ge, const T* __restrict__ gi,
                  const uint8_t* __restrict__ flags, const T* ct_v_new,
                  const T* __restrict__ ls, const T* __restrict__ c_count,
                  const T* __restrict__ q_sum, const T* __restrict__ q_final, T alpha, T gamma,
                  const T* ct_ge_next, const T* ct_gi_next, T* ct_v, T* ct_ge, T* ct_gi,
                  int64_t n) {
  int64_t k = 0;
#ifdef EI_SIM_NATIVE_AVX2
  if constexpr (std::is_same_v<T, float>) {
#ifdef EI_SIM_NATIVE_AVX512
    {
      const Cell16 p16(p);
      const __m512 dt_over_c = _mm512_set1_ps(p.dt_over_c), slope16 = _mm512_set1_ps(slope),
                   inv_d16 = _mm512_set1_ps(inv_d), d_e = _mm512_set1_ps(d_exc),
                   d_i = _mm512_set1_ps(d_inh), alpha16 = _mm512_set1_ps(alpha),
                   gamma16 = _mm512_set1_ps(gamma);
      for (; k + 16 <= n; k += 16) {
        __m512 ct_s = _mm512_add_ps(_mm512_loadu_ps(ls + k), _mm512_loadu_ps(c_count + k));
        if (q_sum != nullptr) {
          ct_s = _mm512_fmadd_ps(alpha16, _mm512_loadu_ps(q_sum + k), ct_s);
          ct_s = _mm512_fmadd_ps(gamma16, _mm512_loadu_ps(q_final + k), ct_s);
        }
        const Flags16 f = LoadFlags16(flags + k);
        const Adjoint16 a = CellAdjoint16<kSurrogate>(
            p16, dt_over_c, slope16, inv_d16, _mm512_loadu_ps(v + k), _mm512_loadu_ps(ge + k),
            _mm512_loadu_ps(gi + k), f.open, f.fired, f.above, _mm512_loadu_ps(ct_v_new + k),
            ct_s);
        const __m512 ge_next = _mm512_loadu_ps(ct_ge_next + k);
        const __m512 gi_next = _mm512_loadu_ps(ct_gi_next + k);
        _mm512_storeu_ps(ct_v + k, a.ct_v);
        _mm512_storeu_ps(ct_ge + k, _mm512_fmadd_ps(d_e, ge_next, a.ct_g_exc));
        _mm512_storeu_ps(ct_gi + k, _mm512_fmadd_ps(d_i, gi_next, a.ct_g_inh));
      }
    }
#endif
    const Cell8 p8(p);
    const __m256 dt_over_c = _mm256_set1_ps(p.dt_over_c), slope8 = _mm256_set1_ps(slope),
                 inv_d8 = _mm256_set1_ps(inv_d), d_e = _mm256_set1_ps(d_exc),
                 d_i = _mm256_set1_ps(d_inh), alpha8 = _mm256_set1_ps(alpha),
                 gamma8 = _mm256_set1_ps(gamma);
    for (; k + 8 <= n; k += 8) {
      __m256 ct_s = _mm256_add_ps(_mm256_loadu_ps(ls + k), _mm256_loadu_ps(c_count + k));
      if (q_sum != nullptr) {
        ct_s = _mm256_fmadd_ps(alpha8, _mm256_loadu_ps(q_sum + k), ct_s);
        ct_s = _mm256_fmadd_ps(gamma8, _mm256_loadu_ps(q_final + k), ct_s);
      }
      const __m256i wide =
          _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(flags + k)));
      const Adjoint8 a = CellAdjoint8<kSurrogate>(
          p8, dt_over_c, slope8, inv_d8, _mm256_loadu_ps(v + k), _mm256_loadu_ps(ge + k),
          _mm256_loadu_ps(gi + k), FlagMask8(wide, kOpen), FlagMask8(wide, kFired),
          FlagMask8(wide, kAbove), _mm256_loadu_ps(ct_v_new + k), ct_s);
      const __m256 ge_next = _mm256_loadu_ps(ct_ge_next + k);
      const __m256 gi_next = _mm256_loadu_ps(ct_gi_next + k);
      _mm256_storeu_ps(ct_v + k, a.ct_v);
      _mm256_storeu_ps(ct_ge + k, _mm256_fmadd_ps(d_e, ge_next, a.ct_g_exc));
      _mm256_storeu_ps(ct_gi + k, _mm256_fmadd_ps(d_i, gi_next, a.ct_g_inh));
    }
  }
#endif
#pragma GCC ivdep
  for (; k < n; ++k) {
    T ct_s = ls[k] + c_count[k];
    if (q_sum != nullptr) ct_s = ct_s + alpha * q_sum[k] + gamma * q_final[k];
    T cv, cge, cgi;
    CellAdjointOpen<T, kSurrogate>(p, slope, inv_d, v[k], ge[k], gi[k],
                                   (flags[k] & kOpen) ? T(1) : T(0), ct_v_new[k], ct_s, cv,
                                   cge, cgi);
    const T ge_next = ct_ge_next[k], gi_next = ct_gi_next[k];
    ct_v[k] = cv;
    ct_ge[k] = cge + d_exc * ge_next;
    ct_gi[k] = cgi + d_inh * gi_next;
  }
}

// Input events of a chunk grouped by (step, trial), in their original order.
struct EventIndex {
  std::vector<int64_t> start;    // (L * (B + 1)): events of (t, b) are [start[t(B+1)+b], ..+1)
  std::vector<int32_t> channel;  // channels, grouped
};

EventIndex GroupEvents(const int32_t* sample, const int32_t* channel, int64_t steps, int64_t k,
                       int64_t batch, int64_t n_in) {
  EventIndex index;
  index.start.assign(steps * (batch + 1), 0);
  index.channel.assign(steps * k, 0);
  std::vector<int64_t> fill(batch + 1);
  for (int64_t t = 0; t < steps; ++t) {
    int64_t* start = index.start.data() + t * (batch + 1);
    std::vector<int64_t> count(batch + 1, 0);
    for (int64_t j = 0; j < k; ++j) {
      const int32_t b = sample[t * k + j], c = channel[t * k + j];
      if (b >= 0 && b < batch && c >= 0 && c < n_in) ++count[b];  // others: padding
    }
    int64_t total = t * k;
    for (int64_t b = 0; b <= batch; ++b) {
      start[b] = total;
      fill[b] = total;
      if (b < batch) total += count[b];
    }
    for (int64_t j = 0; j < k; ++j) {
      const int32_t b = sample[t * k + j], c = channel[t * k + j];
      if (b >= 0 && b < batch && c >= 0 && c < n_in) index.channel[fill[b]++] = c;
    }
  }
  return index;
}

// The first n operands, and the data of the first m results, of a call.
ffi::Error Operands(const ffi::RemainingArgs& args, size_t n, std::vector<ffi::AnyBuffer>& in) {
  for (size_t a = 0; a < n; ++a) {
    auto buffer = args.get<ffi::AnyBuffer>(a);
    if (!buffer.has_value()) return buffer.error();
    in.push_back(*buffer);
  }
  return ffi::Error::Success();
}

ffi::Error Results(const ffi::RemainingRets& rets, size_t m, std::vector<void*>& out) {
  for (size_t r = 0; r < m; ++r) {
    auto buffer = rets.get<ffi::AnyBuffer>(r);
    if (!buffer.has_value()) return buffer.error();
    out.push_back((*buffer)->untyped_data());
  }
  return ffi::Error::Success();
}

template <typename T>
struct Layout {
  int64_t batch, n_e, n_i, n_in, n_out, steps, k;
  bool has_ee, has_ei, has_ie, has_ii, record;
};

// Arguments (and results 0..13, the state after the chunk) of network_forward:
//   0 v_E  1 g_exc_E  2 g_inh_E  3 ref_E  4 s_E  5 v_I  6 g_exc_I  7 g_inh_I  8 ref_I  9 s_I
//   10 out_v  11 count_E  12 count_I  13 out_sum  14 W_in  15 W_EE  16 W_EI  17 W_IE  18 W_II
//   19 W_out  20 sample (L, K)  21 channel (L, K)      (an absent W block has no elements)
// Results 14..21 (recorded per step when record = 1, else with no elements):
//   14 V_E  15 g_exc_E  16 g_inh_E  17 flags_E (uint8)  18 V_I  19 g_exc_I  20 g_inh_I
//   21 flags_I (uint8)      (V before the cell update, the conductances entering it, and
//   the flags of cells.h's CellRecord: kOpen, kFired, kAbove)
// Results 22, 23 (per step when rates = 1, else with no elements): rate_E, rate_I (L, B), the
//   fraction of each population's cells that fired in the step (the engine's "rate_e",
//   "rate_i" records: the mean of the spike vector).
// Result 24 (per step when record = 1, else with no elements): u (L, B, n_out), the readout
//   before its reset (the adjoint of a reset that passes the surrogate gradient needs it).
template <typename T>
ffi::Error ForwardTyped(ffi::RemainingArgs args, ffi::RemainingRets rets,
                        const ffi::Dictionary& attrs, ffi::ThreadPool& pool) {
  auto made = MakeNet<T>(attrs);
  if (!made.has_value()) return made.error();
  const Net<T> net = *made;
  std::vector<ffi::AnyBuffer> in;
  std::vector<void*> out;
  if (ffi::Error err = Operands(args, 22, in); err.failure()) return err;
  if (ffi::Error err = Results(rets, 25, out); err.failure()) return err;
  auto vd = in[0].dimensions();
  auto id = in[5].dimensions();
  auto win = in[14].dimensions();
  auto wout = in[19].dimensions();
  auto ev = in[20].dimensions();
  if (vd.size() != 2 || id.size() != 2 || win.size() != 2 || wout.size() != 2 || ev.size() != 2) {
    return ffi::Error::InvalidArgument("network_forward: state (B, n), weights 2-d, events (L, K)");
  }
  Layout<T> d{vd[0], vd[1], id[1], win[0], wout[1], ev[0], ev[1],
              in[15].element_count() > 0, in[16].element_count() > 0,
              in[17].element_count() > 0, in[18].element_count() > 0,
              IntAttr(attrs, "record", 0) != 0};
  const int64_t B = d.batch, NE = d.n_e, NI = d.n_i, NO = d.n_out;
  // The state after the chunk is computed in place in the results.
  const int64_t sizes[14] = {NE, NE, NE, NE, NE, NI, NI, NI, NI, NI, NO, NE, NI, NO};
  for (int a = 0; a < 14; ++a) {
    const size_t bytes = (a == 3 || a == 8 ? sizeof(int32_t) : sizeof(T)) * B * sizes[a];
    if (out[a] != in[a].untyped_data()) std::memcpy(out[a], in[a].untyped_data(), bytes);
  }
  auto ptr = [&](int a) { return static_cast<const T*>(in[a].untyped_data()); };
  const T *w_in = ptr(14), *w_ee = ptr(15), *w_ei = ptr(16), *w_ie = ptr(17), *w_ii = ptr(18),
          *w_out = ptr(19);
  const EventIndex events =
      GroupEvents(static_cast<const int32_t*>(in[20].untyped_data()),
                  static_cast<const int32_t*>(in[21].untyped_data()), d.steps, d.k, B, d.n_in);
  const EventIndex* ev_index = &events;
  T* o[25];
  for (int r = 0; r < 25; ++r) o[r] = static_cast<T*>(out[r]);
  const bool rates = IntAttr(attrs, "rates", 0) != 0;
  int32_t* ref_e = static_cast<int32_t*>(out[3]);
  int32_t* ref_i = static_cast<int32_t*>(out[8]);
  uint8_t* rec_flags_e = static_cast<uint8_t*>(out[17]);
  uint8_t* rec_flags_i = static_cast<uint8_t*>(out[21]);
  const Net<T>* n = &net;

  auto trials = [=](int64_t lo, int64_t hi) {
    // the step's inputs, zero between steps (the cell pass reads and clears them)
    std::vector<T> scratch(3 * NE + 2 * NI + NO, T(0));
    T* in_exc_e = scratch.data();  // from E spikes (W_EE)
    T* in_inh_e = in_exc_e + NE;   // from I spikes (W_IE)
    T* drive_in = in_inh_e + NE;   // input events (W_in)
    T* in_exc_i = drive_in + NE;   // W_EI
    T* in_inh_i = in_exc_i + NI;   // W_II
    T* drive_out = in_inh_i + NI;
    std::vector<int32_t> lists(NE + NI);
    int32_t* list_e = lists.data();
    int32_t* list_i = list_e + NE;
    for (int64_t b = lo; b < hi; ++b) {
      PopRows<T> e{o[0] + b * NE, o[1] + b * NE, o[2] + b * NE, o[4] + b * NE, ref_e + b * NE};
      PopRows<T> i{o[5] + b * NI, o[6] + b * NI, o[7] + b * NI, o[9] + b * NI, ref_i + b * NI};
      T* out_v = o[10] + b * NO;
      T* count_e = o[11] + b * NE;
      T* count_i = o[12] + b * NI;
      T* out_sum = o[13] + b * NO;
      int64_t n_e = ListSpikes(e.s, NE, list_e), n_i = ListSpikes(i.s, NI, list_i);
      for (int64_t t = 0; t < d.steps; ++t) {
        // 1. the previous step's spikes (in increasing order, weighted by their value) and
        // this step's input events
        for (int64_t j = 0; j < n_e; ++j) {
          const int64_t pre = list_e[j];
          if (d.has_ee) AddRow(in_exc_e, w_ee + pre * NE, e.s[pre], NE);
          if (d.has_ei) AddRow(in_exc_i, w_ei + pre * NI, e.s[pre], NI);
        }
        for (int64_t j = 0; j < n_i; ++j) {
          const int64_t pre = list_i[j];
          if (d.has_ie) AddRow(in_inh_e, w_ie + pre * NE, i.s[pre], NE);
          if (d.has_ii) AddRow(in_inh_i, w_ii + pre * NI, i.s[pre], NI);
        }
        const int64_t* start = ev_index->start.data() + t * (B + 1);
        const bool driven = start[b + 1] > start[b];
        for (int64_t j = start[b]; j < start[b + 1]; ++j) {
          AddRow(drive_in, w_in + int64_t(ev_index->channel[j]) * NE, T(1), NE);
        }
        // 2-3. conductances and cells, recording what the adjoint needs
        CellRecord<T> rec_e, rec_i;
        if (d.record) {
          const int64_t re = (t * B + b) * NE, ri = (t * B + b) * NI;
          rec_e = {o[14] + re, o[15] + re, o[16] + re, rec_flags_e + re};
          rec_i = {o[18] + ri, o[19] + ri, o[20] + ri, rec_flags_i + ri};
        }
        n_e = StepCells<T>(n->e, n->d_ampa, n->d_gaba, e.v, e.g_exc, e.g_inh, e.ref, e.s,
                           in_exc_e, in_inh_e, driven ? drive_in : nullptr, rec_e, list_e, NE);
        n_i = StepCells<T>(n->i, n->d_ampa, n->d_gaba, i.v, i.g_exc, i.g_inh, i.ref, i.s,
                           in_exc_i, in_inh_i, nullptr, rec_i, list_i, NI);
        for (int64_t j = 0; j < n_e; ++j) count_e[list_e[j]] += T(1);
        for (int64_t j = 0; j < n_i; ++j) count_i[list_i[j]] += T(1);
        if (rates) {
          o[22][t * B + b] = T(n_e) / T(NE);
          o[23][t * B + b] = T(n_i) / T(NI);
        }
        // 4. readout
        for (int64_t j = 0; j < n_e; ++j) {
          AddRow(drive_out, w_out + int64_t(list_e[j]) * NO, T(1), NO);
        }
        T* rec_u = d.record ? o[24] + (t * B + b) * NO : nullptr;
        for (int64_t c = 0; c < NO; ++c) {
          const T u = n->beta * out_v[c] + n->kappa * drive_out[c];
          if (rec_u != nullptr) rec_u[c] = u;
          const T fired = u >= n->theta ? T(1) : T(0);
          out_sum[c] = out_sum[c] + u;
          out_v[c] = u - fired * n->theta;
          drive_out[c] = T(0);
        }
      }
    }
  };
  OverTrials(attrs, pool, B, /*grain=*/4, trials);
  return ffi::Error::Success();
}

ffi::Error NetworkForwardImpl(ffi::RemainingArgs args, ffi::RemainingRets rets,
                              ffi::Dictionary attrs, ffi::ThreadPool pool) {
  if (args.size() != 22 || rets.size() != 25) {
    return ffi::Error::InvalidArgument("network_forward: 22 operands and 25 results expected");
  }
  auto first = args.get<ffi::AnyBuffer>(0);
  if (!first.has_value()) return first.error();
  return WithFloatType(first->element_type(), "network_forward", [&](auto zero) {
    return ForwardTyped<decltype(zero)>(args, rets, attrs, pool);
  });
}

// Arguments of network_adjoint_step (stacks (L, B, n) as recorded by network_forward):
//   0 t (int32 scalar: the step within the chunk)
//   1 V_E  2 g_exc_E  3 g_inh_E  4 flags_E  5 V_I  6 g_exc_I  7 g_inh_I  8 flags_I  (stacks)
//   9 lambda_V_E  10 Lambda_g_exc_E(next)  11 Lambda_g_inh_E(next)  12 lambda_s_E(products)
//   13 lambda_V_I 14 Lambda_g_exc_I(next)  15 Lambda_g_inh_I(next)  16 lambda_s_I(products)
//   17 lambda_out_v  18 c_count_E  19 c_count_I  20 c_sum
//   21 q_sum = kappa c_sum W_out^T  22 q_final = kappa lambda_out_v(end) W_out^T  (B, n_E)
//   23 (alpha, gamma) (2,): this step's lambda_u = alpha c_sum + gamma lambda_out_v(end)
//   24 dL/dW_in so far  25 dL/dW_out so far  26 sample (L, K)  27 channel
//   28 u (L, B, n_out), the readout before its reset, and 29 W_out^T (n_out, n_E): given (not
//   empty) for a readout reset that passes the surrogate gradient, d out_v / d u = 1 - theta
//   H'(u - theta): then lambda_u = lambda_out_v (1 - theta H'(u - theta)) + c_sum, its share
//   of lambda_s_E is kappa lambda_u W_out^T formed here, and q_sum, q_final are not read
//   30 W_EI  31 W_EE  32 W_IE  33 W_II, each packed (dense.h: (ceil(n_from / 16), n_to, 16));
//   an absent block empty
// The readout is linear and its reset carries no gradient, so lambda_u of the step n steps
// before the end is alpha_n c_sum + gamma_n lambda_out_v(end), alpha_n = 1 + beta + ... +
// beta^n, gamma_n = beta^n: its share of lambda_s_E, kappa lambda_u W_out^T, is alpha q_sum +
// gamma q_final (two multiply-adds per cell instead of n_out).
// Results: 0 lambda_V_E(prev)  1 Lambda_g_exc_E  2 Lambda_g_inh_E  3 lambda_V_I(prev)
//   4 Lambda_g_exc_I  5 Lambda_g_inh_I  6 lambda_out_v(prev)  7 lambda_u (B, n_out)
//   8 dL/dW_in  9 dL/dW_out (with this step's terms)  10 lambda_s_E(prev)  11 lambda_s_I(prev)
//   (the products, written in place of operands 12 and 16 where XLA aliases them)
template <typename T, int32_t kSurrogate>
ffi::Error AdjointTyped(ffi::RemainingArgs args, ffi::RemainingRets rets,
                        const ffi::Dictionary& attrs, ffi::ThreadPool& pool) {
  auto made = MakeNet<T>(attrs);
  if (!made.has_value()) return made.error();
  const Net<T> net = *made;
  auto slope_attr = attrs.get<double>("slope_per_mV");
  auto damping_attr = attrs.get<double>("damping");
  if (!slope_attr.has_value()) return slope_attr.error();
  if (!damping_attr.has_value()) return damping_attr.error();
  const T slope = T(*slope_attr), inv_d = T(1) / T(*damping_attr);
  std::vector<ffi::AnyBuffer> in;
  std::vector<void*> data;
  if (ffi::Error err = Operands(args, 34, in); err.failure()) return err;
  if (ffi::Error err = Results(rets, 12, data); err.failure()) return err;
  std::vector<T*> o;
  for (void* d : data) o.push_back(static_cast<T*>(d));
  auto sd = in[1].dimensions();
  auto si = in[5].dimensions();
  auto cs = in[20].dimensions();
  if (sd.size() != 3 || si.size() != 3 || cs.size() != 2 || in[21].element_count() != sd[1] * sd[2] ||
      in[22].element_count() != sd[1] * sd[2]) {
    return ffi::Error::InvalidArgument(
        "network_adjoint_step: stacks (L, B, n), c_sum (B, n_out), q_sum and q_final (B, n_E)");
  }
  const int64_t L = sd[0], B = sd[1], NE = sd[2], NI = si[2], NO = cs[1];
  const int64_t t = *static_cast<const int32_t*>(in[0].untyped_data());
  if (t < 0 || t >= L) return ffi::Error::InvalidArgument("network_adjoint_step: t out of range");
  auto ptr = [&](int a) { return static_cast<const T*>(in[a].untyped_data()); };
  auto iptr = [&](int a) { return static_cast<const int32_t*>(in[a].untyped_data()); };
  const T *v_e = ptr(1) + t * B * NE, *ge_e = ptr(2) + t * B * NE, *gi_e = ptr(3) + t * B * NE;
  auto fptr = [&](int a) { return static_cast<const uint8_t*>(in[a].untyped_data()); };
  const uint8_t* flags_e = fptr(4) + t * B * NE;
  const T *v_i = ptr(5) + t * B * NI, *ge_i = ptr(6) + t * B * NI, *gi_i = ptr(7) + t * B * NI;
  const uint8_t* flags_i = fptr(8) + t * B * NI;
  const T *lv_e = ptr(9), *lge_e = ptr(10), *lgi_e = ptr(11), *ls_e = ptr(12);
  const T *lv_i = ptr(13), *lge_i = ptr(14), *lgi_i = ptr(15), *ls_i = ptr(16);
  const T *lout = ptr(17), *c_count_e = ptr(18), *c_count_i = ptr(19), *c_sum = ptr(20);
  const T *q_sum = ptr(21), *q_final = ptr(22);
  if (in[23].element_count() != 2) {
    return ffi::Error::InvalidArgument("network_adjoint_step: (alpha, gamma) expected");
  }
  const T alpha = ptr(23)[0], gamma = ptr(23)[1];
  const bool surrogate_reset = in[28].element_count() > 0;
  if (surrogate_reset && (in[28].element_count() != L * B * NO ||
                          in[29].element_count() != NO * NE)) {
    return ffi::Error::InvalidArgument(
        "network_adjoint_step: u (L, B, n_out) and W_out^T (n_out, n_E) expected");
  }
  // Every operand checked before any result is written (some results alias operands).
  auto gi = in[24].dimensions();
  auto ev = in[26].dimensions();
  if (gi.size() != 2 || ev.size() != 2 || ev[0] != L) {
    return ffi::Error::InvalidArgument("network_adjoint_step: W_in gradient 2-d, events (L, K)");
  }
  const int64_t NIN = gi[0], K = ev[1];
  int64_t k_of[4];  // the packed blocks' n_to (0: absent)
  const int64_t n_of[4] = {NE, NE, NI, NI}, k_want[4] = {NI, NE, NE, NI};
  for (int a = 0; a < 4; ++a) {
    auto dims = in[30 + a].dimensions();
    k_of[a] = 0;
    if (in[30 + a].element_count() == 0) continue;
    if (dims.size() != 3 || in[30 + a].element_type() != in[1].element_type() ||
        dims[2] != kPanel || dims[1] != k_want[a] ||
        dims[0] != (n_of[a] + kPanel - 1) / kPanel) {
      return ffi::Error::InvalidArgument(
          "network_adjoint_step: packed blocks (ceil(n_from / 16), n_to, 16) of the stacks' "
          "type expected");
    }
    k_of[a] = dims[1];
  }
  const T* u_t = surrogate_reset ? ptr(28) + t * B * NO : nullptr;
  const T* w_out_t = surrogate_reset ? ptr(29) : nullptr;
  const Net<T>* n = &net;
  const std::vector<T*> r(o);

  auto trials = [=](int64_t lo, int64_t hi) {
    std::vector<T> kappa_lu(NO), row(surrogate_reset ? NE : 0);
    for (int64_t b = lo; b < hi; ++b) {
      const int64_t be = b * NE, bi = b * NI, bo = b * NO;
      T* lu = r[7] + bo;
      for (int64_t c = 0; c < NO; ++c) {
        T carried = lout[bo + c];
        if (surrogate_reset) {
          const T h = SurrogateDerivative<T, kSurrogate>(u_t[bo + c] - n->theta, slope);
          carried = carried * (T(1) - n->theta * h);
        }
        lu[c] = carried + c_sum[bo + c];
        r[6][bo + c] = n->beta * lu[c];
        kappa_lu[c] = n->kappa * lu[c];
      }
      const T *q_a = q_sum + be, *q_b = q_final + be;
      T a = alpha, g = gamma;
      if (surrogate_reset) {  // this step's row kappa lambda_u W_out^T, one class at a time
        T* __restrict__ out = row.data();
        std::fill(out, out + NE, T(0));
        for (int64_t c = 0; c < NO; ++c) {
          const T scale = kappa_lu[c];
          const T* __restrict__ w = w_out_t + c * NE;
          for (int64_t k = 0; k < NE; ++k) out[k] += scale * w[k];
        }
        q_a = q_b = out;
        a = T(1);
        g = T(0);
      }
      CellsAdjoint<T, kSurrogate>(n->e, slope, inv_d, n->d_ampa, n->d_gaba, v_e + be, ge_e + be,
                                  gi_e + be, flags_e + be, lv_e + be, ls_e + be, c_count_e + be,
                                  q_a, q_b, a, g, lge_e + be, lgi_e + be, r[0] + be, r[1] + be,
                                  r[2] + be, NE);
      CellsAdjoint<T, kSurrogate>(n->i, slope, inv_d, n->d_ampa, n->d_gaba, v_i + bi, ge_i + bi,
                                  gi_i + bi, flags_i + bi, lv_i + bi, ls_i + bi, c_count_i + bi,
                                  nullptr, nullptr, T(0), T(0), lge_i + bi, lgi_i + bi,
                                  r[3] + bi, r[4] + bi, r[5] + bi, NI);
    }
  };
  OverTrials(attrs, pool, B, /*grain=*/16, trials);
  // The weight gradients of the step, accumulated in place (results 8, 9 alias operands 24,
  // 25 when XLA can; otherwise they start as copies):
  //   dL/dW_in[c] += Lambda_g_exc_E[b] per input event (b, c);  dL/dW_out[e] += kappa
  //   lambda_u[b] per E spike (b, e) of the step.
  T* gw_in = o[8];
  T* gw_out = o[9];
  if (gw_in != ptr(24)) std::memcpy(gw_in, ptr(24), sizeof(T) * NIN * NE);
  if (gw_out != ptr(25)) std::memcpy(gw_out, ptr(25), sizeof(T) * NE * NO);
  const int32_t* sample = iptr(26) + t * K;
  const int32_t* channel = iptr(27) + t * K;
  for (int64_t j = 0; j < K; ++j) {
    const int32_t b = sample[j], c = channel[j];
    if (b < 0 || b >= B || c < 0 || c >= NIN) continue;  // padding
    AddRow(gw_in + int64_t(c) * NE, o[1] + b * NE, T(1), NE);
  }
  for (int64_t b = 0; b < B; ++b) {
    const T* lu = o[7] + b * NO;
    const uint8_t* fired = flags_e + b * NE;
    ForEachFired<T>(fired, NE, [&](int64_t e, T value) {
      AddRow(gw_out + e * NO, lu, net.kappa * value, NO);
    });
  }
  // The spikes' cotangents of the previous step, from this step's conductance totals
  // (results 10, 11, in place of operands 12, 16, which the cell adjoint above has read):
  //   lambda_s_E = Lambda_g_exc_I W_EI^T + Lambda_g_exc_E W_EE^T
  //   lambda_s_I = Lambda_g_inh_E W_IE^T + Lambda_g_inh_I W_II^T
  // each block packed once per backward pass (operands 30-33, dense.h; empty when absent).
  const T *p_ei = ptr(30), *p_ee = ptr(31), *p_ie = ptr(32), *p_ii = ptr(33);
  const int64_t k_ei = k_of[0], k_ee = k_of[1], k_ie = k_of[2], k_ii = k_of[3];
  auto products = [=](int64_t lo, int64_t hi) {
    PackedProduct<T>(r[4], k_ei, p_ei, NE, r[10], lo, hi, false);
    PackedProduct<T>(r[1], k_ee, p_ee, NE, r[10], lo, hi, k_ei != 0);
    PackedProduct<T>(r[2], k_ie, p_ie, NI, r[11], lo, hi, false);
    PackedProduct<T>(r[5], k_ii, p_ii, NI, r[11], lo, hi, k_ie != 0);
  };
  OverTrials(attrs, pool, B, ProductGrain(pool, B), products);
  return ffi::Error::Success();
}

ffi::Error NetworkAdjointStepImpl(ffi::RemainingArgs args, ffi::RemainingRets rets,
                                  ffi::Dictionary attrs, ffi::ThreadPool pool) {
  if (args.size() != 34 || rets.size() != 12) {
    return ffi::Error::InvalidArgument("network_adjoint_step: 34 operands and 12 results expected");
  }
  auto probe = args.get<ffi::AnyBuffer>(1);
  if (!probe.has_value()) return probe.error();
  const int32_t surrogate = IntAttr(attrs, "surrogate", -1);
  if (surrogate != kFastSigmoid && surrogate != kArctan) {
    return ffi::Error::InvalidArgument("network_adjoint_step: unknown surrogate");
  }
  return WithFloatType(probe->element_type(), "network_adjoint_step", [&](auto zero) {
    using T = decltype(zero);
    return surrogate == kFastSigmoid ? AdjointTyped<T, kFastSigmoid>(args, rets, attrs, pool)
                                     : AdjointTyped<T, kArctan>(args, rets, attrs, pool);
  });
}

// packed_product: C = A W^T alone, with W packed as network_adjoint_step takes it (dense.h);
// operands A (M, K) and P (ceil(N / 16), K, 16), attribute n = N; result C (M, N). The rows
// are split over the thread pool (attribute parallel) as in the adjoint; attribute scalar = 1
// runs the generic code instead of the vector kernel (tests: the same bits). For tests and the
// training benchmark (the products' share of a step, against the numpy floor).
ffi::Error PackedProductImpl(ffi::RemainingArgs args, ffi::RemainingRets rets,
                             ffi::Dictionary attrs, ffi::ThreadPool pool) {
  std::vector<ffi::AnyBuffer> in;
  std::vector<void*> data;
  if (args.size() != 2 || rets.size() != 1) {
    return ffi::Error::InvalidArgument("packed_product: 2 operands and 1 result expected");
  }
  if (ffi::Error err = Operands(args, 2, in); err.failure()) return err;
  if (ffi::Error err = Results(rets, 1, data); err.failure()) return err;
  auto a = in[0].dimensions();
  auto p = in[1].dimensions();
  const int64_t N = IntAttr(attrs, "n", -1);
  if (a.size() != 2 || p.size() != 3 || p[2] != kPanel || p[1] != a[1] || N < 0 ||
      p[0] != (N + kPanel - 1) / kPanel || in[0].element_type() != in[1].element_type()) {
    return ffi::Error::InvalidArgument(
        "packed_product: A (M, K) and packed W (ceil(n / 16), K, 16) of one type expected");
  }
  const int64_t M = a[0], K = a[1];
  return WithFloatType(in[0].element_type(), "packed_product", [&](auto zero) {
    using T = decltype(zero);
    const T* A = static_cast<const T*>(in[0].untyped_data());
    const T* P = static_cast<const T*>(in[1].untyped_data());
    T* C = static_cast<T*>(data[0]);
    const bool scalar = IntAttr(attrs, "scalar", 0) != 0;
    OverTrials(attrs, pool, M, ProductGrain(pool, M), [=](int64_t lo, int64_t hi) {
      PackedProduct<T>(A, K, P, N, C, lo, hi, false, scalar);
    });
    return ffi::Error::Success();
  });
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(EiSimPackedProduct, PackedProductImpl,
                              ffi::Ffi::Bind()
                                  .RemainingArgs()
                                  .RemainingRets()
                                  .Attrs<ffi::Dictionary>()
                                  .Ctx<ffi::ThreadPool>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(EiSimNetworkForward, NetworkForwardImpl,
                              ffi::Ffi::Bind()
                                  .RemainingArgs()
                                  .RemainingRets()
                                  .Attrs<ffi::Dictionary>()
                                  .Ctx<ffi::ThreadPool>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(EiSimNetworkAdjointStep, NetworkAdjointStepImpl,
                              ffi::Ffi::Bind()
                                  .RemainingArgs()
                                  .RemainingRets()
                                  .Attrs<ffi::Dictionary>()
                                  .Ctx<ffi::ThreadPool>());
