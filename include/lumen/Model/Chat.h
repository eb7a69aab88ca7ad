//===- lumen/Model/Chat.h - Chat formats (ChatML, Llama 3) -------*- C++ -*-===//
//
// Messages rendered as the model's chat template lays them out. The formats
// are recognised from the template text the GGUF carries
// (tokenizer.chat_template), not run as Jinja: ChatML (Qwen2, Qwen2.5,
// Qwen3) and Llama 3's header format.
//
//===----------------------------------------------------------------------===//
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

enum class ChatFormat {
  /// "<|im_start|>role\ncontent<|im_end|>\n" each, then
  /// "<|im_start|>assistant\n" (Qwen; also what a file without a template
  /// or with one Lumen does not recognise gets, as llama.cpp does).
  ChatML,
  /// "<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>" each,
  /// content trimmed, then the assistant's header (Llama 3.x; the
  /// tokenizer adds <|begin_of_text|>).
  Llama3,
};

/// The format of a chat template; Fallback (the architecture's,
/// Architecture::Chat) when there is none or Lumen does not recognise it.
LUMEN_API ChatFormat chatFormatOf(const std::string &ChatTemplate, ChatFormat Fallback = ChatFormat::ChatML);
/// Whether the template lets the model think first (Qwen3's
/// `enable_thinking`: a <think>...</think> block opens the reply).
LUMEN_API bool chatTemplateThinks(const std::string &ChatTemplate);

/// Renders Messages in Format, then the assistant's turn opened when
/// AddGenerationPrompt.
LUMEN_API std::string renderChat(ChatFormat Format, const std::vector<ChatMessage> &Messages,
                                 bool AddGenerationPrompt);
/// The same for the format of ChatTemplate (Fallback as for chatFormatOf).
/// A template that thinks (Qwen3's) drops the think blocks of assistant
/// turns before the last user message, as Qwen3's template does; with
/// Thinking off it opens the reply with an empty think block, as Qwen3's
/// does for enable_thinking=false, so the model answers at once.
LUMEN_API std::string renderChat(const std::string &ChatTemplate, const std::vector<ChatMessage> &Messages,
                                 bool AddGenerationPrompt, bool Thinking = true,
                                 ChatFormat Fallback = ChatFormat::ChatML);
/// What closes the assistant's turn after its reply (whose own end token the
/// generation stops at and does not feed): "<|im_end|>\n" or "<|eot_id|>".
LUMEN_API std::string chatTurnEnd(ChatFormat Format);
/// ChatML (kept for callers that name it).
LUMEN_API std::string renderChatML(const std::vector<ChatMessage> &Messages, bool AddGenerationPrompt);

/// The system prompt Qwen's template inserts when the conversation has none,
/// taken from the model's chat template ("" if it has no such default).
LUMEN_API std::string defaultSystemPrompt(const std::string &ChatTemplate);

} // namespace lumen::model

#endif
