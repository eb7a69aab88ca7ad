//===- KernelBuilderTest.cpp - The IR the generator emits ------------------===//
#include "lumen/Codegen/KernelABI.h"
#include "lumen/Codegen/KernelBuilder.h"

#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/Verifier.h"
#include "llvm/Support/raw_ostream.h"

#include "gtest/gtest.h"

using namespace lumen::codegen;

namespace {

std::string print(const llvm::Module &M) {
  std::string S;
  llvm::raw_string_ostream OS(S);
  M.print(OS, nullptr);
  return OS.str();
}

KernelSpec spec(int64_t M, int64_t K, int64_t N, ActivationFormat A, unsigned Bits, bool Vnni,
                unsigned Acc = 2, unsigned R = 1, unsigned T = 1) {
  KernelSpec S;
  S.Shape = {M, K, N, WeightType::Q8_0};
  S.Activations = A;
  S.VectorBits = Bits;
  S.VNNI = Vnni;
  S.Accumulators = Acc;
  S.TileRows = R;
  S.TileTokens = T;
  return S;
}

TEST(KernelBuilderTest, EveryVariantVerifies) {
  CpuFeatures Cpu = *CpuFeatures::forIsa("avx512-vnni");
  llvm::LLVMContext Ctx;
  int Built = 0;
  for (int64_t K : {32, 64, 96, 896, 4864})
    for (int64_t N : {1, 3, 8})
      for (ActivationFormat A : {ActivationFormat::Q8, ActivationFormat::F32})
        for (unsigned Bits : {256u, 512u})
          for (bool Vnni : {false, true})
            for (unsigned Acc : {1u, 3u})
              for (unsigned R : {1u, 3u}) {
                KernelSpec S = spec(7, K, N, A, Bits, Vnni, Acc, R, N > 1 ? 2 : 1);
                if (!S.validate(Cpu).ok())
                  continue;
                auto M = buildKernel(Ctx, S, Cpu);
                ASSERT_TRUE(M.ok()) << S.functionName() << ": " << M.status();
                EXPECT_FALSE(llvm::verifyModule(**M, &llvm::errs()));
                EXPECT_NE((*M)->getFunction(S.functionName()), nullptr);
                ++Built;
              }
  EXPECT_GT(Built, 100);
}

TEST(KernelBuilderTest, VnniKernelsUseVpdpbusd) {
  CpuFeatures Cpu = *CpuFeatures::forIsa("avx512-vnni");
  llvm::LLVMContext Ctx;
  auto M = buildKernel(Ctx, spec(896, 4864, 1, ActivationFormat::Q8, 512, true), Cpu);
  ASSERT_TRUE(M.ok());
  std::string IR = print(**M);
  EXPECT_NE(IR.find("@llvm.x86.avx512.vpdpbusd.512"), std::string::npos);
  EXPECT_NE(IR.find("\"target-features\"=\""), std::string::npos);
  // 4864 / 32 = 152 blocks: an even count, so no 256-bit tail on 512-bit steps.
  EXPECT_EQ(IR.find("vpdpbusd.256"), std::string::npos);
  auto Odd = buildKernel(Ctx, spec(896, 96, 1, ActivationFormat::Q8, 512, true), Cpu);
  ASSERT_TRUE(Odd.ok());
  EXPECT_NE(print(**Odd).find("vpdpbusd.256"), std::string::npos) << "3 blocks: one tail block";
}

TEST(KernelBuilderTest, Avx2KernelsContainNoAvx512) {
  CpuFeatures Cpu = *CpuFeatures::forIsa("avx2");
  llvm::LLVMContext Ctx;
  for (ActivationFormat A : {ActivationFormat::Q8, ActivationFormat::F32}) {
    auto M = buildKernel(Ctx, spec(896, 896, 4, A, 256, false, 2, 2, 2), Cpu);
    ASSERT_TRUE(M.ok()) << M.status();
    std::string IR = print(**M);
    EXPECT_EQ(IR.find("avx512."), std::string::npos);
    EXPECT_EQ(IR.find("+avx512"), std::string::npos);
    EXPECT_NE(IR.find("-avx512f"), std::string::npos);
    EXPECT_EQ(IR.find("<16 x float>"), std::string::npos);
    EXPECT_EQ(IR.find("<64 x i8>"), std::string::npos);
  }
}

TEST(KernelBuilderTest, EmitsIntoCallersModule) {
  CpuFeatures Cpu = *CpuFeatures::forIsa("avx512-vnni");
  llvm::LLVMContext Ctx;
  llvm::Module M("host", Ctx);
  KernelSpec A = spec(128, 896, 1, ActivationFormat::Q8, 512, true);
  KernelSpec B = spec(896, 896, 1, ActivationFormat::Q8, 512, true);
  ASSERT_TRUE(emitMatmulKernel(M, A, Cpu).ok());
  ASSERT_TRUE(emitMatmulKernel(M, B, Cpu).ok());
  ASSERT_TRUE(emitQuantizeKernel(M, 896, Cpu).ok());
  ASSERT_TRUE(emitQuantizeKernel(M, 896, Cpu, /*Blocks=*/true).ok()); // Its own name beside the row form.
  EXPECT_FALSE(emitQuantizeKernel(M, 896, Cpu, /*Blocks=*/true).ok());
  ASSERT_NE(M.getFunction(quantizeBlocksFunctionName(896)), nullptr);
  EXPECT_EQ(M.getFunction(quantizeBlocksFunctionName(896))->arg_size(), 5u);
  EXPECT_EQ(M.getFunction(quantizeFunctionName(896))->arg_size(), 4u);
  EXPECT_FALSE(llvm::verifyModule(M, &llvm::errs()));
  auto Again = emitMatmulKernel(M, A, Cpu);
  ASSERT_FALSE(Again.ok());
  EXPECT_NE(Again.status().message().find("already defines"), std::string::npos);
  llvm::Function *F = M.getFunction(A.functionName());
  ASSERT_NE(F, nullptr);
  EXPECT_EQ(F->arg_size(), 5u);
  EXPECT_FALSE(F->hasInternalLinkage());
}

TEST(KernelBuilderTest, RejectsInvalidSpecs) {
  CpuFeatures Cpu = *CpuFeatures::forIsa("avx2");
  llvm::LLVMContext Ctx;
  auto M = buildKernel(Ctx, spec(896, 896, 1, ActivationFormat::Q8, 512, true), Cpu);
  ASSERT_FALSE(M.ok());
  EXPECT_NE(M.status().message().find("AVX-512"), std::string::npos);
  auto Q = buildQuantizeKernel(Ctx, 33, Cpu);
  ASSERT_FALSE(Q.ok());
  EXPECT_NE(Q.status().message().find("multiple of 32"), std::string::npos);
}

} // namespace
