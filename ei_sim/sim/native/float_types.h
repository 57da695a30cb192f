// Shared by ei-sim's native kernels: dispatch on the float type of an XLA FFI buffer.
#ifndef EI_SIM_NATIVE_FLOAT_TYPES_H_
#define EI_SIM_NATIVE_FLOAT_TYPES_H_

#include <string>

#include "xla/ffi/api/ffi.h"

namespace ei_sim_native {

// Calls fn(T{}) with T = float or double for a float32 / float64 buffer type.
template <typename Fn>
xla::ffi::Error WithFloatType(xla::ffi::DataType type, const char* kernel, Fn fn) {
  switch (type) {
    case xla::ffi::DataType::F32:
      return fn(float{});
    case xla::ffi::DataType::F64:
      return fn(double{});
    default:
      return xla::ffi::Error::InvalidArgument(std::string(kernel) +
                                              ": only float32 and float64");
  }
}

}  // namespace ei_sim_native

#endif  // EI_SIM_NATIVE_FLOAT_TYPES_H_
