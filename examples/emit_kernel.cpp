//===- emit_kernel.cpp - A Lumen kernel in someone else's JIT --------------===//
//
// The LLVM-tool use of Lumen: emit a matmul kernel and the activation
// quantizer into our own llvm::Module, run our own O2 pipeline, compile with
// our own ORC LLJIT, and check the result against a scalar loop.
//
//===----------------------------------------------------------------------===//
#include "lumen/Codegen/KernelABI.h"
#include "lumen/Codegen/KernelBuilder.h"
#include "lumen/GGUF/Quantize.h"

#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/IR/Module.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Target/TargetMachine.h"

#include <cmath>
#include <cstdio>
#include <random>

using namespace llvm;
using namespace lumen;

int main() {
  InitializeNativeTarget();
  InitializeNativeTargetAsmPrinter();
  const int64_t M = 200, K = 896;
  codegen::CpuFeatures Cpu = codegen::CpuFeatures::host();
  codegen::KernelSpec Spec = codegen::chooseSpec({M, K, 1, codegen::WeightType::Q8_0}, Cpu);
  std::printf("kernel: %s\n", Spec.describe().c_str());

  auto Ctx = std::make_unique<LLVMContext>();
  auto Mod = std::make_unique<Module>("consumer", *Ctx);
  auto Matmul = codegen::emitMatmulKernel(*Mod, Spec, Cpu);
  auto Quantize = codegen::emitQuantizeKernel(*Mod, K, Cpu);
  if (!Matmul.ok() || !Quantize.ok()) {
    std::fprintf(stderr, "emit failed\n");
    return 1;
  }

  // Our own pipeline: O2 for our own TargetMachine.
  auto JTMB = orc::JITTargetMachineBuilder::detectHost();
  auto TM = cantFail(JTMB->createTargetMachine());
  Mod->setDataLayout(TM->createDataLayout());
  LoopAnalysisManager LAM;
  FunctionAnalysisManager FAM;
  CGSCCAnalysisManager CGAM;
  ModuleAnalysisManager MAM;
  PassBuilder PB(TM.get());
  PB.registerModuleAnalyses(MAM);
  PB.registerCGSCCAnalyses(CGAM);
  PB.registerFunctionAnalyses(FAM);
  PB.registerLoopAnalyses(LAM);
  PB.crossRegisterProxies(LAM, FAM, CGAM, MAM);
  PB.buildPerModuleDefaultPipeline(OptimizationLevel::O2).run(*Mod, MAM);

  // Our own JIT.
  auto J = cantFail(orc::LLJITBuilder().create());
  cantFail(J->addIRModule(orc::ThreadSafeModule(std::move(Mod), std::move(Ctx))));
  auto MatmulFn = cantFail(J->lookup(Spec.functionName())).toPtr<codegen::MatmulFn>();
  auto QuantizeFn = cantFail(J->lookup(codegen::quantizeFunctionName(K))).toPtr<codegen::QuantizeFn>();

  std::mt19937 Rng(1);
  std::normal_distribution<float> N(0, 1);
  std::vector<float> W(M * K), X(K);
  for (float &V : W) V = 0.05f * N(Rng);
  for (float &V : X) V = N(Rng);
  std::vector<uint8_t> Wq(M * codegen::weightRowBytes(codegen::WeightType::Q8_0, K));
  for (int64_t R = 0; R < M; ++R)
    gguf::quantizeRowQ8_0(&W[R * K], reinterpret_cast<gguf::BlockQ8_0 *>(&Wq[R * K / 32 * 34]), K);
  std::vector<uint8_t> Xq(codegen::q8RowBytes(K));
  QuantizeFn(X.data(), Xq.data(), 0, 1);
  std::vector<float> Y(M);
  MatmulFn(Wq.data(), Xq.data(), Y.data(), 0, M);

  // A scalar loop over the dequantized weights.
  double Worst = 0;
  std::vector<float> Row(K);
  for (int64_t R = 0; R < M; ++R) {
    gguf::dequantizeRow(gguf::TensorType::Q8_0, &Wq[R * K / 32 * 34], Row.data(), K);
    double Sum = 0, Mag = 0;
    for (int64_t I = 0; I < K; ++I) {
      Sum += double(Row[I]) * X[I];
      Mag += std::fabs(double(Row[I]) * X[I]);
    }
    Worst = std::max(Worst, std::fabs(Y[R] - Sum) / Mag);
  }
  std::printf("worst relative error %.2e over %lld rows\n", Worst, static_cast<long long>(M));
  if (Worst > 2e-2) {
    std::printf("FAILED\n");
    return 1;
  }
  std::printf("ok\n");
  return 0;
}
