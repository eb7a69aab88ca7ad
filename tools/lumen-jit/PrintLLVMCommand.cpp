//===- PrintLLVMCommand.cpp - lumen-jit --print-llvm -----------------------===//
#include "Commands.h"
#include "Flags.h"
#include "ModelSetup.h"

#include "lumen/Codegen/KernelABI.h"
#include "lumen/Codegen/KernelBuilder.h"
#include "lumen/Codegen/KernelSpec.h"
#include "lumen/Runtime/Jit.h"

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/raw_ostream.h"

#include <thread>

namespace lumen::tool {

int runPrintLLVM(const std::vector<std::string> &Args) {
  if (!Args.empty())
    return fail(absl::StrFormat("--print-llvm takes no positional arguments (got '%s')", Args[0]));
  std::string ShapeText = absl::GetFlag(FLAGS_shape);
  if (ShapeText.empty())
    return fail("--print-llvm needs --shape KxM, e.g. --shape 896x4864");
  int64_t Tokens = 1;
  if (std::string T = absl::GetFlag(FLAGS_tokens); !T.empty() && (!absl::SimpleAtoi(T, &Tokens) || Tokens < 1))
    return fail(absl::StrFormat("--tokens must be a positive integer with --print-llvm (got '%s')", T));
  const std::string TypeName = absl::GetFlag(FLAGS_type);
  std::optional<codegen::WeightType> Type = codegen::weightTypeFromName(TypeName);
  if (!Type)
    return fail(absl::StrFormat("--type must be one of q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, q2_k, q3_k, q4_k, "
                                "q5_k, q6_k, f16, bf16, f32 (got '%s')", TypeName));
  absl::StatusOr<codegen::MatmulShape> Shape = codegen::parseShape(ShapeText, Tokens, *Type);
  if (!Shape.ok())
    return fail(std::string(Shape.status().message()));

  // Any ISA can be printed; only run/eval/bench need the host to have it.
  absl::StatusOr<codegen::CpuFeatures> C = isaFlag();
  if (!C.ok())
    return fail(std::string(C.status().message()));
  const codegen::CpuFeatures Cpu = *C;
  if (!Cpu.supportsKernels())
    return fail(absl::StrFormat("target %s lacks AVX2/FMA/F16C", Cpu.CpuName));

  // The layout the model loader would store this matrix in, unless asked.
  // The tuner's measurements for this host, where it has them (with -t:
  // the thread count the kernel would run with; all cores by default).
  absl::StatusOr<unsigned> Threads = threadCount();
  if (!Threads.ok())
    return fail(std::string(Threads.status().message()));
  const unsigned RunThreads = *Threads ? *Threads : std::max(1u, std::thread::hardware_concurrency());
  const std::shared_ptr<const codegen::Wisdom> Wis = wisdom();
  const std::string Layout = absl::AsciiStrToLower(absl::GetFlag(FLAGS_layout));
  if (Layout == "auto")
    Shape->Layout = codegen::chooseLayout(Shape->M, Shape->K, Shape->Weights, Cpu, Wis.get());
  else if (Layout == "rows")
    Shape->Layout = codegen::WeightLayout::Rows;
  else if (Layout == "interleaved8")
    Shape->Layout = codegen::WeightLayout::Interleaved8;
  else if (Layout == "interleaved16")
    Shape->Layout = codegen::WeightLayout::Interleaved16;
  else
    return fail(absl::StrFormat(
        "--layout must be auto, rows, interleaved8 or interleaved16 (got '%s')", Layout));
  const codegen::WeightType W = Shape->Weights;
  if (Shape->Layout != codegen::WeightLayout::Rows) {
    if (!codegen::interleaves(W))
      return fail(absl::StrFormat("--layout %s stores q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, q4_k, q5_k and q6_k "
                                  "matrices; %s weights are read in rows",
                                  Layout, codegen::weightTypeName(W)));
    if (Shape->Layout == codegen::WeightLayout::Interleaved16 && !Cpu.VNNI)
      return fail(absl::StrFormat("--layout interleaved16 is read by 512-bit vpdpbusd kernels: it needs "
                                  "--isa avx512-vnni (the target is %s)", Cpu.isaName()));
    if (!codegen::layoutSupports(Shape->Layout, W, Shape->M, Shape->K))
      return fail(absl::StrFormat("--layout %s needs M (%d) to be a multiple of %d", Layout, Shape->M,
                                  codegen::layoutRowGroup(Shape->Layout)));
  }

  std::string Why;
  codegen::KernelSpec Spec = codegen::chooseSpec(*Shape, Cpu, &Why, Wis.get(), RunThreads);
  llvm::LLVMContext Ctx;
  absl::StatusOr<std::unique_ptr<llvm::Module>> M = codegen::buildKernel(Ctx, Spec, Cpu);
  if (!M.ok())
    return fail(std::string(M.status().message()));
  bool Opt = absl::GetFlag(FLAGS_opt);
  if (Opt)
    if (absl::Status S = runtime::optimizeModule(**M, Cpu); !S.ok())
      return fail(std::string(S.message()));

  llvm::outs() << absl::StrFormat(
      "; Lumen kernel for shape %s: K=%d in, M=%d out, N=%d token(s), %s weights\n"
      "; target: %s (cpu %s)\n"
      "; spec: %s\n"
      "; why: %s\n"
      "; ABI: void %s(const uint8_t *W, const void *X, float *Y, int64_t RowBegin, int64_t RowEnd)\n"
      ";      (see include/lumen/Codegen/KernelABI.h)%s\n"
      "; IR: %s\n",
      ShapeText, Shape->K, Shape->M, Shape->N, codegen::weightTypeName(Shape->Weights), Cpu.isaName(), Cpu.CpuName, Spec.describe(), Why,
      Spec.functionName(),
      Spec.Activations == codegen::ActivationFormat::Q8
          ? absl::StrFormat("; X comes from %s", codegen::quantizeFunctionName(Shape->K))
          : "",
      Opt ? "after the O3 pipeline" : "as generated (before optimisation; --opt for after O3)");
  (*M)->print(llvm::outs(), nullptr);
  llvm::outs().flush();
  if (llvm::outs().has_error()) {
    std::error_code EC = llvm::outs().error();
    llvm::outs().clear_error(); // Else LLVM reports it again, fatally, at exit.
    return fail("cannot write the output: " + EC.message());
  }
  return 0;
}

} // namespace lumen::tool
