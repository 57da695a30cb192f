// Event-driven synaptic propagation for ei-sim, an XLA FFI custom call on CPU.
//
//   out[g, b, :] = sum_{i : spikes[g, b, i] != 0} spikes[g, b, i] * w[g', i, :]
//
// spikes: (..., B, n_pre), w: (..., n_pre, n_post), out: (..., B, n_post). The leading
// ("group") dimensions come from vmap with vmap_method="expand_dims": both operands have the
// same number of them and each is either the output's size or 1 (broadcast). Work is
// proportional to the number of spikes times n_post, not to B * n_pre * n_post.
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "xla/ffi/api/ffi.h"
#include "cells.h"  // ForEachNonzero
#include "float_types.h"

namespace ffi = xla::ffi;
using ei_sim_native::ForEachNonzero;
using ei_sim_native::WithFloatType;

namespace {

// Calls body(g, a_group, b_group) for every index g of the broadcast of two leading shapes
// a[0:lead] and b[0:lead] (row-major), with the matching flat group index into each operand
// (0 along a broadcast dimension of size 1). False if the shapes do not broadcast.
template <typename Dims, typename Body>
bool ForEachGroup(const Dims& a, const Dims& b, int64_t lead, Body body) {
  std::vector<int64_t> shape(lead), a_stride(lead), b_stride(lead), index(lead, 0);
  int64_t groups = 1, a_step = 1, b_step = 1;
  for (int64_t d = lead - 1; d >= 0; --d) {
    if (a[d] != b[d] && a[d] != 1 && b[d] != 1) return false;
    shape[d] = a[d] > b[d] ? a[d] : b[d];
    a_stride[d] = a[d] == 1 ? 0 : a_step;
    b_stride[d] = b[d] == 1 ? 0 : b_step;
    a_step *= a[d];
    b_step *= b[d];
    groups *= shape[d];
  }
  for (int64_t g = 0; g < groups; ++g) {
    int64_t a_group = 0, b_group = 0;
    for (int64_t d = 0; d < lead; ++d) {
      a_group += index[d] * a_stride[d];
      b_group += index[d] * b_stride[d];
    }
    body(g, a_group, b_group);
    for (int64_t d = lead - 1; d >= 0; --d) {  // next multi-index
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return true;
}

template <typename T>
void AccumulateRows(const T* spikes, const T* w, T* out, int64_t batch, int64_t n_pre,
                    int64_t n_post) {
  std::memset(out, 0, sizeof(T) * batch * n_post);
  for (int64_t b = 0; b < batch; ++b) {
    T* o = out + b * n_post;
    ForEachNonzero(spikes + b * n_pre, n_pre, [&](int64_t i, T value) {
      const T* row = w + i * n_post;
      if (value == T(1)) {
        for (int64_t j = 0; j < n_post; ++j) o[j] += row[j];
      } else {
        for (int64_t j = 0; j < n_post; ++j) o[j] += value * row[j];
      }
    });
  }
}

template <typename T>
ffi::Error Run(ffi::AnyBuffer spikes, ffi::AnyBuffer w, ffi::AnyBuffer* out) {
  auto sd = spikes.dimensions();
  auto wd = w.dimensions();
  const int64_t rank = static_cast<int64_t>(sd.size());
  if (rank < 2 || static_cast<int64_t>(wd.size()) != rank) {
    return ffi::Error::InvalidArgument("event_matmul: spikes and w need equal rank >= 2");
  }
  const int64_t lead = rank - 2;
  const int64_t batch = sd[rank - 2], n_pre = sd[rank - 1];
  const int64_t n_post = wd[rank - 1];
  if (wd[rank - 2] != n_pre) {
    return ffi::Error::InvalidArgument("event_matmul: spikes and w disagree on n_pre");
  }
  const T* s_data = static_cast<const T*>(spikes.untyped_data());
  const T* w_data = static_cast<const T*>(w.untyped_data());
  T* o_data = static_cast<T*>(out->untyped_data());
  const bool ok = ForEachGroup(sd, wd, lead, [&](int64_t g, int64_t s_group, int64_t w_group) {
    AccumulateRows<T>(s_data + s_group * batch * n_pre, w_data + w_group * n_pre * n_post,
                      o_data + g * batch * n_post, batch, n_pre, n_post);
  });
  if (!ok) return ffi::Error::InvalidArgument("event_matmul: leading dimensions do not broadcast");
  return ffi::Error::Success();
}

ffi::Error EventMatmulImpl(ffi::AnyBuffer spikes, ffi::AnyBuffer w,
                           ffi::Result<ffi::AnyBuffer> out) {
  if (spikes.element_type() != w.element_type() || out->element_type() != w.element_type()) {
    return ffi::Error::InvalidArgument("event_matmul: spikes, w and out need one dtype");
  }
  return WithFloatType(w.element_type(), "event_matmul", [&](auto zero) {
    return Run<decltype(zero)>(spikes, w, &(*out));
  });
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(EiSimEventMatmul, EventMatmulImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>());

// The gradient of the event product with respect to W, event-driven as well:
//
//   out[g, i, :] = sum_b spikes[g, b, i] * ct[g', b, :]      (spikes^T @ ct)
//
// spikes: (..., B, n_pre), ct: (..., B, n_post), out: (..., n_pre, n_post); leading
// dimensions broadcast as in event_matmul. Work is proportional to the number of spikes times
// n_post instead of B * n_pre * n_post.
namespace {

template <typename T>
void AccumulateOuter(const T* spikes, const T* ct, T* out, int64_t batch, int64_t n_pre,
                     int64_t n_post) {
  std::memset(out, 0, sizeof(T) * n_pre * n_post);
  for (int64_t b = 0; b < batch; ++b) {
    const T* c = ct + b * n_post;
    ForEachNonzero(spikes + b * n_pre, n_pre, [&](int64_t i, T value) {
      T* o = out + i * n_post;
      if (value == T(1)) {
        for (int64_t j = 0; j < n_post; ++j) o[j] += c[j];
      } else {
        for (int64_t j = 0; j < n_post; ++j) o[j] += value * c[j];
      }
    });
  }
}

template <typename T>
ffi::Error RunOuter(ffi::AnyBuffer spikes, ffi::AnyBuffer ct, ffi::AnyBuffer* out) {
  auto sd = spikes.dimensions();
  auto cd = ct.dimensions();
  const int64_t rank = static_cast<int64_t>(sd.size());
  if (rank < 2 || static_cast<int64_t>(cd.size()) != rank) {
    return ffi::Error::InvalidArgument("event_outer: spikes and ct need equal rank >= 2");
  }
  const int64_t lead = rank - 2;
  const int64_t batch = sd[rank - 2], n_pre = sd[rank - 1], n_post = cd[rank - 1];
  if (cd[rank - 2] != batch) {
    return ffi::Error::InvalidArgument("event_outer: spikes and ct disagree on the batch size");
  }
  const T* s_data = static_cast<const T*>(spikes.untyped_data());
  const T* c_data = static_cast<const T*>(ct.untyped_data());
  T* o_data = static_cast<T*>(out->untyped_data());
  const bool ok = ForEachGroup(sd, cd, lead, [&](int64_t g, int64_t s_group, int64_t c_group) {
    AccumulateOuter<T>(s_data + s_group * batch * n_pre, c_data + c_group * batch * n_post,
                       o_data + g * n_pre * n_post, batch, n_pre, n_post);
  });
  if (!ok) return ffi::Error::InvalidArgument("event_outer: leading dimensions do not broadcast");
  return ffi::Error::Success();
}

ffi::Error EventOuterImpl(ffi::AnyBuffer spikes, ffi::AnyBuffer ct,
                          ffi::Result<ffi::AnyBuffer> out) {
  if (spikes.element_type() != ct.element_type() || out->element_type() != ct.element_type()) {
    return ffi::Error::InvalidArgument("event_outer: spikes, ct and out need one dtype");
  }
  return WithFloatType(ct.element_type(), "event_outer", [&](auto zero) {
    return RunOuter<decltype(zero)>(spikes, ct, &(*out));
  });
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(EiSimEventOuter, EventOuterImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>());

// Sparse blocks (compressed sparse rows): row i of W holds data[k] at column cols[k] for
// k in [indptr[i], indptr[i + 1]).
//
//   out[g, b, cols[k]] += spikes[g, b, i] * data[g', k]   for every spike (b, i), k in row i
//
// spikes: (..., B, n_pre); indptr (n_pre + 1,), cols (nnz,): int32, unbatched;
// data: (..., nnz); out: (..., B, n_post). Leading dimensions broadcast as above.
namespace {

template <typename T>
void AccumulateSparse(const T* spikes, const int32_t* indptr, const int32_t* cols,
                      const T* data, T* out, int64_t batch, int64_t n_pre, int64_t n_post) {
  std::memset(out, 0, sizeof(T) * batch * n_post);
  for (int64_t b = 0; b < batch; ++b) {
    T* o = out + b * n_post;
    ForEachNonzero(spikes + b * n_pre, n_pre, [&](int64_t i, T value) {
      for (int32_t k = indptr[i]; k < indptr[i + 1]; ++k) o[cols[k]] += value * data[k];
    });
  }
}

template <typename T>
ffi::Error RunSparse(ffi::AnyBuffer spikes, ffi::AnyBuffer indptr, ffi::AnyBuffer cols,
                     ffi::AnyBuffer data, ffi::AnyBuffer* out) {
  auto sd = spikes.dimensions();
  auto dd = data.dimensions();
  auto od = out->dimensions();
  const int64_t rank = static_cast<int64_t>(sd.size());
  const int64_t lead = rank - 2;
  if (rank < 2 || static_cast<int64_t>(dd.size()) != lead + 1) {
    return ffi::Error::InvalidArgument("sparse_event_matmul: data needs rank(spikes) - 1");
  }
  const int64_t batch = sd[rank - 2], n_pre = sd[rank - 1], n_post = od[rank - 1];
  const int64_t nnz = dd[lead];
  // The pattern is shared: under vmap it only gains leading dimensions of size 1.
  if (static_cast<int64_t>(indptr.element_count()) != n_pre + 1 ||
      static_cast<int64_t>(cols.element_count()) != nnz) {
    return ffi::Error::InvalidArgument(
        "sparse_event_matmul: pattern (indptr, cols) does not match spikes and data, or is "
        "batched (one sparsity pattern per call)");
  }
  const T* s_data = static_cast<const T*>(spikes.untyped_data());
  const T* w_data = static_cast<const T*>(data.untyped_data());
  const int32_t* ptr = static_cast<const int32_t*>(indptr.untyped_data());
  const int32_t* col = static_cast<const int32_t*>(cols.untyped_data());
  T* o_data = static_cast<T*>(out->untyped_data());
  const bool ok = ForEachGroup(sd, dd, lead, [&](int64_t g, int64_t s_group, int64_t d_group) {
    AccumulateSparse<T>(s_data + s_group * batch * n_pre, ptr, col, w_data + d_group * nnz,
                        o_data + g * batch * n_post, batch, n_pre, n_post);
  });
  if (!ok) {
    return ffi::Error::InvalidArgument("sparse_event_matmul: leading dimensions do not broadcast");
  }
  return ffi::Error::Success();
}

ffi::Error SparseEventMatmulImpl(ffi::AnyBuffer spikes, ffi::AnyBuffer indptr,
                                 ffi::AnyBuffer cols, ffi::AnyBuffer data,
                                 ffi::Result<ffi::AnyBuffer> out) {
  if (indptr.element_type() != ffi::DataType::S32 || cols.element_type() != ffi::DataType::S32) {
    return ffi::Error::InvalidArgument("sparse_event_matmul: indptr and cols must be int32");
  }
  if (spikes.element_type() != data.element_type() ||
      out->element_type() != data.element_type()) {
    return ffi::Error::InvalidArgument("sparse_event_matmul: spikes, data and out need one dtype");
  }
  return WithFloatType(data.element_type(), "sparse_event_matmul", [&](auto zero) {
    return RunSparse<decltype(zero)>(spikes, indptr, cols, data, &(*out));
  });
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(EiSimSparseEventMatmul, SparseEventMatmulImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>());
