//===- Wide16.h - 16-float vectors, native or as two halves -----*- C++ -*-===//
//
// The operations the 512-bit loops of VectorOps use, twice: Native16 on
// AVX-512 (zmm registers; call only where the CPU has AVX-512 F/BW/VL/DQ)
// and Emulated16 as two 256-bit halves on AVX2/FMA/F16C, lane for lane the
// same operations. VectorOps16.inc is compiled against both, so the 512-bit
// loops' lane layout, masks and summation order are tested on every host
// (as the matmul kernels' VNNI is emulated on hosts without it).
// Included by VectorOps.cpp only (compiled for AVX2).
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_LIB_MODEL_WIDE16_H
#define LUMEN_LIB_MODEL_WIDE16_H

#include <cstdint>
#include <immintrin.h>

#define LUMEN_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))

namespace lumen::model::vec {

struct Native16 {
  using V = __m512;
  using Mask = __mmask16;
  LUMEN_AVX512 static V zero() { return _mm512_setzero_ps(); }
  LUMEN_AVX512 static V set1(float F) { return _mm512_set1_ps(F); }
  LUMEN_AVX512 static V load(const float *P) { return _mm512_loadu_ps(P); }
  LUMEN_AVX512 static void store(float *P, V A) { _mm512_storeu_ps(P, A); }
  LUMEN_AVX512 static V add(V A, V B) { return _mm512_add_ps(A, B); }
  LUMEN_AVX512 static V sub(V A, V B) { return _mm512_sub_ps(A, B); }
  LUMEN_AVX512 static V mul(V A, V B) { return _mm512_mul_ps(A, B); }
  LUMEN_AVX512 static V div(V A, V B) { return _mm512_div_ps(A, B); }
  LUMEN_AVX512 static V min(V A, V B) { return _mm512_min_ps(A, B); }
  LUMEN_AVX512 static V max(V A, V B) { return _mm512_max_ps(A, B); }
  LUMEN_AVX512 static V fmadd(V A, V B, V C) { return _mm512_fmadd_ps(A, B, C); }
  LUMEN_AVX512 static V fnmadd(V A, V B, V C) { return _mm512_fnmadd_ps(A, B, C); }
  LUMEN_AVX512 static V roundNearest(V A) {
    return _mm512_roundscale_ps(A, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  /// P * 2^N for integral N in the exponent's range.
  LUMEN_AVX512 static V times2ToThe(V P, V N) {
    __m512i E = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(N), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(P, _mm512_castsi512_ps(E));
  }
  /// 16 fp16 values as floats. (The masked form with every lane on is the
  /// same instruction; GCC 12 warns about the unmasked one's undefined source.)
  LUMEN_AVX512 static V loadHalves(const uint16_t *P) {
    return _mm512_maskz_cvtph_ps(Mask(0xFFFF), _mm256_loadu_si256(reinterpret_cast<const __m256i *>(P)));
  }
  /// A rounded to fp16 precision (nearest even), as floats.
  LUMEN_AVX512 static V roundToHalf(V A) { return _mm512_cvtph_ps(_mm512_cvtps_ph(A, _MM_FROUND_TO_NEAREST_INT)); }
  /// The first Count (0..16) lanes.
  LUMEN_AVX512 static Mask firstLanes(int64_t Count) { return Mask((1u << Count) - 1); }
  /// max(A, B) in the lanes of M, A elsewhere.
  LUMEN_AVX512 static V maskMax(V A, Mask M, V B) { return _mm512_mask_max_ps(A, M, A, B); }
  LUMEN_AVX512 static float reduceMax(V A) { return _mm512_reduce_max_ps(A); }
  LUMEN_AVX512 static __m256 low(V A) { return _mm512_castps512_ps256(A); }
  LUMEN_AVX512 static __m256 high(V A) { return _mm512_extractf32x8_ps(A, 1); }
};

struct Emulated16 {
  struct V {
    __m256 Lo, Hi;
  };
  struct Mask {
    __m256 Lo, Hi; // All-ones lanes where set.
  };
  static V zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  static V set1(float F) { return {_mm256_set1_ps(F), _mm256_set1_ps(F)}; }
  static V load(const float *P) { return {_mm256_loadu_ps(P), _mm256_loadu_ps(P + 8)}; }
  static void store(float *P, V A) {
    _mm256_storeu_ps(P, A.Lo);
    _mm256_storeu_ps(P + 8, A.Hi);
  }
  static V add(V A, V B) { return {_mm256_add_ps(A.Lo, B.Lo), _mm256_add_ps(A.Hi, B.Hi)}; }
  static V sub(V A, V B) { return {_mm256_sub_ps(A.Lo, B.Lo), _mm256_sub_ps(A.Hi, B.Hi)}; }
  static V mul(V A, V B) { return {_mm256_mul_ps(A.Lo, B.Lo), _mm256_mul_ps(A.Hi, B.Hi)}; }
  static V div(V A, V B) { return {_mm256_div_ps(A.Lo, B.Lo), _mm256_div_ps(A.Hi, B.Hi)}; }
  static V min(V A, V B) { return {_mm256_min_ps(A.Lo, B.Lo), _mm256_min_ps(A.Hi, B.Hi)}; }
  static V max(V A, V B) { return {_mm256_max_ps(A.Lo, B.Lo), _mm256_max_ps(A.Hi, B.Hi)}; }
  static V fmadd(V A, V B, V C) { return {_mm256_fmadd_ps(A.Lo, B.Lo, C.Lo), _mm256_fmadd_ps(A.Hi, B.Hi, C.Hi)}; }
  static V fnmadd(V A, V B, V C) { return {_mm256_fnmadd_ps(A.Lo, B.Lo, C.Lo), _mm256_fnmadd_ps(A.Hi, B.Hi, C.Hi)}; }
  static V roundNearest(V A) {
    constexpr int Mode = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    return {_mm256_round_ps(A.Lo, Mode), _mm256_round_ps(A.Hi, Mode)};
  }
  static __m256 times2ToThe(__m256 P, __m256 N) {
    __m256i E = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(N), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(P, _mm256_castsi256_ps(E));
  }
  static V times2ToThe(V P, V N) { return {times2ToThe(P.Lo, N.Lo), times2ToThe(P.Hi, N.Hi)}; }
  static V loadHalves(const uint16_t *P) {
    return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(P))),
            _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(P + 8)))};
  }
  static __m256 roundToHalf(__m256 A) { return _mm256_cvtph_ps(_mm256_cvtps_ph(A, _MM_FROUND_TO_NEAREST_INT)); }
  static V roundToHalf(V A) { return {roundToHalf(A.Lo), roundToHalf(A.Hi)}; }
  static Mask firstLanes(int64_t Count) {
    alignas(32) int32_t Bits[16];
    for (int I = 0; I < 16; ++I)
      Bits[I] = I < Count ? -1 : 0;
    return {_mm256_castsi256_ps(_mm256_load_si256(reinterpret_cast<const __m256i *>(Bits))),
            _mm256_castsi256_ps(_mm256_load_si256(reinterpret_cast<const __m256i *>(Bits + 8)))};
  }
  static V maskMax(V A, Mask M, V B) {
    return {_mm256_blendv_ps(A.Lo, _mm256_max_ps(A.Lo, B.Lo), M.Lo),
            _mm256_blendv_ps(A.Hi, _mm256_max_ps(A.Hi, B.Hi), M.Hi)};
  }
  static float reduceMax(V A) {
    alignas(32) float Lanes[16];
    _mm256_store_ps(Lanes, A.Lo);
    _mm256_store_ps(Lanes + 8, A.Hi);
    float M = Lanes[0];
    for (int I = 1; I < 16; ++I)
      M = M > Lanes[I] ? M : Lanes[I];
    return M;
  }
  static __m256 low(V A) { return A.Lo; }
  static __m256 high(V A) { return A.Hi; }
};

} // namespace lumen::model::vec

#endif
