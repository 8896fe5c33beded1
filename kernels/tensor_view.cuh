// Strided, dtype-tagged views of tensor data, readable from host and device code.
// Ops take their inputs through these, so non-contiguous tensors and mixed
// float32 / float64 / float16 / bfloat16 inputs need no copies and no extra
// template instantiations: each load converts to the accumulation type.
#pragma once

#include <cstdint>
#include <cstring>
#include <math.h>

#if defined(__CUDACC__)
#define GRPO_HD __host__ __device__ __forceinline__
#else
#define GRPO_HD inline
#endif

namespace grpo::kernels {

// Element types a view may hold; the glue maps at::ScalarType onto these.
enum class DType : int32_t { Float32, Float64, Float16, BFloat16, Bool, UInt8, Int32, Int64 };

struct View1D {
  const void* data = nullptr;
  int64_t stride = 0;  // in elements
  DType dtype = DType::Float32;
};

struct View2D {
  const void* data = nullptr;
  int64_t stride0 = 0;  // in elements, between rows
  int64_t stride1 = 0;  // in elements, between columns
  DType dtype = DType::Float32;
};

// Bytes of one element.
GRPO_HD int64_t element_size(DType dtype) {
  switch (dtype) {
    case DType::Float64:
    case DType::Int64: return 8;
    case DType::Float32:
    case DType::Int32: return 4;
    case DType::Float16:
    case DType::BFloat16: return 2;
    case DType::Bool:
    case DType::UInt8: return 1;
  }
  return 1;
}

GRPO_HD float bits_to_float(uint32_t bits) {
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

// IEEE binary16 -> binary32, exact (subnormals, infinities and NaN included).
GRPO_HD float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1fu) return bits_to_float(sign | 0x7f800000u | (mantissa << 13));
  if (exponent == 0) {
    if (mantissa == 0) return bits_to_float(sign);
    // Subnormal: renormalize.
    exponent = 1;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    mantissa &= 0x3ffu;
  }
  return bits_to_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

GRPO_HD float bfloat16_to_float(uint16_t b) { return bits_to_float(static_cast<uint32_t>(b) << 16); }

// The element at flat offset `offset` of a buffer of type `dtype`, as T.
template <typename T>
GRPO_HD T load_as(const void* data, int64_t offset, DType dtype) {
  switch (dtype) {
    case DType::Float32: return static_cast<T>(static_cast<const float*>(data)[offset]);
    case DType::Float64: return static_cast<T>(static_cast<const double*>(data)[offset]);
    case DType::Float16: return static_cast<T>(half_to_float(static_cast<const uint16_t*>(data)[offset]));
    case DType::BFloat16: return static_cast<T>(bfloat16_to_float(static_cast<const uint16_t*>(data)[offset]));
    case DType::Bool:
    case DType::UInt8: return static_cast<T>(static_cast<const uint8_t*>(data)[offset]);
    case DType::Int32: return static_cast<T>(static_cast<const int32_t*>(data)[offset]);
    case DType::Int64: return static_cast<T>(static_cast<const int64_t*>(data)[offset]);
  }
  return T(0);
}

template <typename T>
GRPO_HD T load(const View1D& v, int64_t i) {
  return load_as<T>(v.data, i * v.stride, v.dtype);
}

template <typename T>
GRPO_HD T load(const View2D& v, int64_t i, int64_t j) {
  return load_as<T>(v.data, i * v.stride0 + j * v.stride1, v.dtype);
}

GRPO_HD float int_bits_to_float(int32_t bits) {
#if defined(__CUDA_ARCH__)
  return __int_as_float(bits);
#else
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
#endif
}

// e^x in float32 within about 2 ulp (Cephes' expf polynomial), branch-free so
// that the CPU loop vectorizes; the CUDA kernel uses the same code so the two
// devices compute the same numbers.
GRPO_HD float exp_(float x) {
  // NB: beyond these bounds e^x over- or underflows float32; callers clamp far inside them.
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  // n = round(x / ln 2) by the 1.5·2^23 trick (no floor call, so it vectorizes on SSE2).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;  // x - n·ln 2 in two parts
  float q = 1.9875691500e-4f;
  q = q * r + 1.3981999507e-3f;
  q = q * r + 8.3334519073e-3f;
  q = q * r + 4.1665795894e-2f;
  q = q * r + 1.6666665459e-1f;
  q = q * r + 5.0000001201e-1f;
  const float er = q * r * r + r + 1.0f;
  return er * int_bits_to_float((static_cast<int32_t>(n) + 127) << 23);
}
GRPO_HD double exp_(double x) { return exp(x); }
template <typename T>
GRPO_HD bool is_finite(T x) {
  return x - x == T(0);  // NB: NaN for NaN and ±inf (inf - inf is NaN), 0 otherwise
}

}  // namespace grpo::kernels
