//===- lumen/Model/Chat.h - Qwen instruct chat (ChatML) ----------*- C++ -*-===//
#ifndef LUMEN_MODEL_CHAT_H
#define LUMEN_MODEL_CHAT_H

#include "lumen/Export.h"

#include <string>
#include <vector>

namespace lumen::model {

struct LUMEN_API ChatMessage {
  std::string Role; // "system", "user" or "assistant".
  std::string Content;
};

/// Renders messages as Qwen's template does: "<|im_start|>role\ncontent<|im_end|>\n"
/// each, then "<|im_start|>assistant\n" when AddGenerationPrompt.
LUMEN_API std::string renderChatML(const std::vector<ChatMessage> &Messages, bool AddGenerationPrompt);

/// The system prompt Qwen's template inserts when the conversation has none,
/// taken from the model's chat template ("" if it has no such default).
LUMEN_API std::string defaultSystemPrompt(const std::string &ChatTemplate);

} // namespace lumen::model

#endif
