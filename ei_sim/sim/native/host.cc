// The network loop of `ei-sim simulate` for networks without input or readout (the
// Vogels-Abbott benchmark), as plain C functions called through ctypes: no XLA, no JAX.
//
// One call advances a group of trials [b0, b1) of a state held in (B, n) arrays by up to
// n_steps steps of ei_sim.sim.engine.step, in place, and records what the monitors ask for:
// spike events (step, trial, cell) per population and traces of chosen cells. Per step and
// trial, with s_E, s_I the previous step's spikes:
//   1. g_exc <- g_exc d_ampa + s_E W_E->,  g_inh <- g_inh d_gaba + s_I W_I->   (W_E->: the
//      blocks W_EE, W_EI joined column-wise as one compressed-sparse-row matrix, targets
//      [0, n_E) the E cells and [n_E, n_E + n_I) the I cells; W_I-> likewise)
//   2-3. the cell update of population.cc (V, ref, spikes), counts += spikes.
// The arithmetic is that of the engine's step with the native cell kernel, operation for
// operation: the synaptic input of a step is summed over the spiking cells in increasing order
// (as the native event kernel does), the decay and the input are one fused multiply-add (as
// XLA:CPU evaluates g * d + x), the cell update is the same inline code (cells.h). So the
// spikes and states equal the engine's (tested in float32 and float64).
//
// Unlike the engine's scan, nothing goes through memory per step but the state itself: the
// conductance update and the cell update are one pass over the cells, and the
// step's spikes are kept as a list of indices that drives the next step's synaptic input and is
// written out as events.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cells.h"

using namespace ei_sim_native;  // Cell, MakeCell, StepCells, ForEachNonzero

extern "C" {

// A trace: `source` (0 V_E, 1 g_exc_E, 2 g_inh_E, 3 V_I, 4 g_exc_I, 5 g_inh_I) of `n_cells`
// cells, sampled after steps 0, every, 2 every, ... of the chunk into out (samples, B, n_cells).
struct EiSimHostProbe {
  int32_t source;
  int32_t n_cells;
  int64_t every;
  const int32_t* cells;
  void* out;
};

struct EiSimHostRun {
  // constants of the step (double; converted to the state's type)
  double g_leak_e, c_e, g_leak_i, c_i, e_leak, e_exc, e_inh, dt, v_th, v_reset, v_floor;
  double d_ampa, d_gaba;
  int32_t n_ref_e, n_ref_i;
  // sizes: trials in the arrays, the trials this call advances, cells
  int64_t batch, b0, b1, n_e, n_i;
  // joined blocks of each presynaptic population (indptr nullptr: no outgoing block)
  const int32_t* e_indptr;
  const int32_t* e_cols;
  const void* e_data;
  const int32_t* i_indptr;
  const int32_t* i_cols;
  const void* i_data;
  // state (batch, n), advanced in place; spikes and counts in the float type
  void *v_e, *ge_e, *gi_e, *s_e, *count_e;
  int32_t* ref_e;
  void *v_i, *ge_i, *gi_i, *s_i, *count_i;
  int32_t* ref_i;
  // (b1 - b0) * 2 * (n_e + n_i) floats of the state's type, zero, and zero again on return
  void* scratch;
  // (b1 - b0) * (n_e + n_i) int32 of scratch for the spike lists
  int32_t* lists;
  // steps: the first one's index within the chunk (events and traces count from the chunk's
  // start), how many to run
  int64_t t0, n_steps;
  // spike events of each population: room for `capacity`, n_events written (in and out)
  int64_t capacity;
  int32_t *ev_step_e, *ev_trial_e, *ev_index_e;
  int64_t n_events_e;
  int32_t *ev_step_i, *ev_trial_i, *ev_index_i;
  int64_t n_events_i;
  int64_t n_probes;
  const EiSimHostProbe* probes;
};

int64_t ei_sim_host_run_f32(EiSimHostRun* run);
int64_t ei_sim_host_run_f64(EiSimHostRun* run);
int32_t ei_sim_host_abi(void);

}  // extern "C"

namespace {

// Writes the indices (plus `first`) of the nonzero s[k] to list; returns how many.
template <typename T>
int64_t Nonzero(const T* s, int64_t n, int32_t* list, int32_t first = 0) {
  int64_t count = 0;
  ForEachNonzero(s, n, [&](int64_t k, T) { list[count++] = first + static_cast<int32_t>(k); });
  return count;
}

// in[cols[k]] += s[pre] data[k] for the listed presynaptic cells, in list order.
template <typename T>
inline void Propagate(const int32_t* list, int64_t n_listed, const T* s, const int32_t* indptr,
                      const int32_t* cols, const T* data, T* __restrict__ in) {
  for (int64_t j = 0; j < n_listed; ++j) {
    const int32_t pre = list[j];
    const T value = s[pre];
    for (int32_t k = indptr[pre]; k < indptr[pre + 1]; ++k) in[cols[k]] += value * data[k];
  }
}

template <typename T>
int64_t Run(EiSimHostRun* a) {
  const Cell<T> cell_e = MakeCell<T>(a->g_leak_e, a->c_e, a->e_leak, a->e_exc, a->e_inh, a->dt,
                                     a->v_th, a->v_reset, a->v_floor, a->n_ref_e);
  const Cell<T> cell_i = MakeCell<T>(a->g_leak_i, a->c_i, a->e_leak, a->e_exc, a->e_inh, a->dt,
                                     a->v_th, a->v_reset, a->v_floor, a->n_ref_i);
  const T d_ampa = T(a->d_ampa), d_gaba = T(a->d_gaba);
  const int64_t NE = a->n_e, NI = a->n_i, N = NE + NI, b0 = a->b0, b1 = a->b1;
  const int64_t group = b1 - b0;
  T* v_e = static_cast<T*>(a->v_e);
  T* ge_e = static_cast<T*>(a->ge_e);
  T* gi_e = static_cast<T*>(a->gi_e);
  T* s_e = static_cast<T*>(a->s_e);
  T* count_e = static_cast<T*>(a->count_e);
  T* v_i = static_cast<T*>(a->v_i);
  T* ge_i = static_cast<T*>(a->ge_i);
  T* gi_i = static_cast<T*>(a->gi_i);
  T* s_i = static_cast<T*>(a->s_i);
  T* count_i = static_cast<T*>(a->count_i);
  const T* e_data = static_cast<const T*>(a->e_data);
  const T* i_data = static_cast<const T*>(a->i_data);
  T* scratch = static_cast<T*>(a->scratch);
  // The spike lists of each trial of the group: E cells at [0, n_E), I cells at [n_E, N).
  int32_t* lists = a->lists;
  int64_t* listed = new int64_t[2 * group];
  for (int64_t g = 0; g < group; ++g) {
    const int64_t b = b0 + g;
    listed[2 * g] = Nonzero<T>(s_e + b * NE, NE, lists + g * N);
    listed[2 * g + 1] = Nonzero<T>(s_i + b * NI, NI, lists + g * N + NE);
  }
  T* const sources[6] = {v_e, ge_e, gi_e, v_i, ge_i, gi_i};
  int64_t t = 0;
  for (; t < a->n_steps; ++t) {
    if (a->n_events_e + group * NE > a->capacity || a->n_events_i + group * NI > a->capacity) {
      break;  // the caller empties the event buffers and calls again
    }
    const int32_t step = static_cast<int32_t>(a->t0 + t);
    for (int64_t g = 0; g < group; ++g) {
      const int64_t b = b0 + g;
      T* in_exc = scratch + g * 2 * N;  // this step's input to g_exc of E, then I cells
      T* in_inh = in_exc + N;
      int32_t* list_e = lists + g * N;
      int32_t* list_i = list_e + NE;
      // 1. the previous step's spikes
      if (a->e_indptr != nullptr) {
        Propagate<T>(list_e, listed[2 * g], s_e + b * NE, a->e_indptr, a->e_cols, e_data,
                     in_exc);
      }
      if (a->i_indptr != nullptr) {
        Propagate<T>(list_i, listed[2 * g + 1], s_i + b * NI, a->i_indptr, a->i_cols, i_data,
                     in_inh);
      }
      // 2-3. conductances and cells; the step's spikes (the next step's input and events)
      const int64_t n_e_spikes =
          StepCells<T>(cell_e, d_ampa, d_gaba, v_e + b * NE, ge_e + b * NE, gi_e + b * NE,
                       a->ref_e + b * NE, s_e + b * NE, in_exc, in_inh, nullptr, {}, list_e, NE);
      const int64_t n_i_spikes =
          StepCells<T>(cell_i, d_ampa, d_gaba, v_i + b * NI, ge_i + b * NI, gi_i + b * NI,
                       a->ref_i + b * NI, s_i + b * NI, in_exc + NE, in_inh + NE, nullptr, {},
                       list_i, NI);
      listed[2 * g] = n_e_spikes;
      listed[2 * g + 1] = n_i_spikes;
      for (int64_t j = 0; j < n_e_spikes; ++j) {
        count_e[b * NE + list_e[j]] += T(1);
        const int64_t e = a->n_events_e++;
        a->ev_step_e[e] = step;
        a->ev_trial_e[e] = static_cast<int32_t>(b);
        a->ev_index_e[e] = list_e[j];
      }
      for (int64_t j = 0; j < n_i_spikes; ++j) {
        count_i[b * NI + list_i[j]] += T(1);
        const int64_t e = a->n_events_i++;
        a->ev_step_i[e] = step;
        a->ev_trial_i[e] = static_cast<int32_t>(b);
        a->ev_index_i[e] = list_i[j];
      }
      // traces
      for (int64_t p = 0; p < a->n_probes; ++p) {
        const EiSimHostProbe& probe = a->probes[p];
        if (step % probe.every != 0) continue;
        const int64_t n = probe.source < 3 ? NE : NI;
        const T* src = sources[probe.source] + b * n;
        T* out = static_cast<T*>(probe.out) + ((step / probe.every) * a->batch + b) * probe.n_cells;
        for (int32_t c = 0; c < probe.n_cells; ++c) out[c] = src[probe.cells[c]];
      }
    }
  }
  delete[] listed;
  return t;
}

}  // namespace

int64_t ei_sim_host_run_f32(EiSimHostRun* run) { return Run<float>(run); }
int64_t ei_sim_host_run_f64(EiSimHostRun* run) { return Run<double>(run); }
// The layout version of EiSimHostRun (the Python side checks it).
int32_t ei_sim_host_abi(void) { return 1; }
