//===- TokenizeCommand.cpp - lumen-jit tokenize ----------------------------===//
#include "Commands.h"
#include "Flags.h"
#include "ModelSetup.h"

#include "lumen/GGUF/GGUFFile.h"
#include "lumen/Model/Tokenizer.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"

#include <cstdio>

namespace lumen::tool {

int runTokenize(const std::vector<std::string> &Args) {
  if (!Args.empty())
    return fail(absl::StrFormat("tokenize takes no positional arguments (got '%s')", Args[0]));
  absl::StatusOr<std::string> Text = promptText();
  if (!Text.ok())
    return fail(std::string(Text.status().message()));
  if (Text->empty())
    return fail("tokenize needs the text: -p TEXT or -f FILE");
  // Only the tokenizer is needed: read the file, not the weights.
  absl::StatusOr<std::string> Path = modelPath();
  if (!Path.ok())
    return fail(std::string(Path.status().message()));
  absl::StatusOr<std::unique_ptr<gguf::GGUFFile>> F = gguf::GGUFFile::open(*Path);
  if (!F.ok())
    return fail(std::string(F.status().message()));
  absl::StatusOr<std::unique_ptr<model::Tokenizer>> Tok = model::Tokenizer::fromGGUF(**F);
  if (!Tok.ok())
    return fail(std::string(Tok.status().message()));
  std::vector<int32_t> Ids = (*Tok)->encode(*Text, !absl::GetFlag(FLAGS_no_special));
  for (size_t I = 0; I < Ids.size(); ++I)
    std::printf(I ? " %d" : "%d", Ids[I]);
  std::printf("\n");
  return 0;
}

} // namespace lumen::tool
