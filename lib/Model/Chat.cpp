//===- Chat.cpp - Chat formats (ChatML, Llama 3) ---------------------------===//
#include "lumen/Model/Chat.h"

#include "absl/strings/ascii.h"

#include <algorithm>

namespace lumen::model {

ChatFormat chatFormatOf(const std::string &ChatTemplate, ChatFormat Fallback) {
  const bool Headers = ChatTemplate.find("<|start_header_id|>") != std::string::npos,
             ChatML = ChatTemplate.find("<|im_start|>") != std::string::npos;
  if (Headers && !ChatML)
    return ChatFormat::Llama3;
  if (ChatML && !Headers)
    return ChatFormat::ChatML;
  return Fallback;
}

bool chatTemplateThinks(const std::string &ChatTemplate) {
  return ChatTemplate.find("enable_thinking") != std::string::npos;
}

std::string renderChat(ChatFormat Format, const std::vector<ChatMessage> &Messages, bool AddGenerationPrompt) {
  std::string Out;
  switch (Format) {
  case ChatFormat::ChatML:
    for (const ChatMessage &M : Messages)
      Out += "<|im_start|>" + M.Role + "\n" + M.Content + "<|im_end|>\n";
    if (AddGenerationPrompt)
      Out += "<|im_start|>assistant\n";
    break;
  case ChatFormat::Llama3:
    // As Llama 3's template: each content trimmed (`| trim`).
    for (const ChatMessage &M : Messages)
      Out += "<|start_header_id|>" + M.Role + "<|end_header_id|>\n\n" +
             std::string(absl::StripAsciiWhitespace(M.Content)) + "<|eot_id|>";
    if (AddGenerationPrompt)
      Out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
    break;
  }
  return Out;
}

std::string renderChat(const std::string &ChatTemplate, const std::vector<ChatMessage> &Messages,
                       bool AddGenerationPrompt, bool Thinking, ChatFormat Fallback) {
  const bool Thinks = chatTemplateThinks(ChatTemplate);
  std::vector<ChatMessage> Shown = Messages;
  // Answers before the last user message without their reasoning: what
  // follows their last </think>, leading newlines dropped.
  size_t LastUser = 0;
  for (size_t I = 0; Thinks && I < Shown.size(); ++I)
    if (Shown[I].Role == "user")
      LastUser = I;
  for (size_t I = 0; I < LastUser; ++I) {
    std::string &Text = Shown[I].Content;
    const size_t End = Text.rfind("</think>");
    if (Shown[I].Role != "assistant" || End == std::string::npos)
      continue;
    Text.erase(0, End + 8);
    Text.erase(0, std::min(Text.size(), Text.find_first_not_of('\n')));
  }
  std::string Out = renderChat(chatFormatOf(ChatTemplate, Fallback), Shown, AddGenerationPrompt);
  if (AddGenerationPrompt && !Thinking && Thinks)
    Out += "<think>\n\n</think>\n\n";
  return Out;
}

std::string chatTurnEnd(ChatFormat Format) {
  return Format == ChatFormat::Llama3 ? "<|eot_id|>" : "<|im_end|>\n";
}

std::string renderChatML(const std::vector<ChatMessage> &Messages, bool AddGenerationPrompt) {
  return renderChat(ChatFormat::ChatML, Messages, AddGenerationPrompt);
}

std::string defaultSystemPrompt(const std::string &ChatTemplate) {
  // Qwen2.5's template: {{- '<|im_start|>system\nYou are Qwen, ... assistant.<|im_end|>\n' }}
  // in the branch taken when messages[0] is not a system message.
  const std::string Marker = "<|im_start|>system\\n";
  for (size_t At = ChatTemplate.find(Marker); At != std::string::npos;
       At = ChatTemplate.find(Marker, At + 1)) {
    size_t Begin = At + Marker.size();
    size_t End = ChatTemplate.find("<|im_end|>", Begin);
    if (End == std::string::npos)
      break;
    std::string Text = ChatTemplate.substr(Begin, End - Begin);
    // Only a literal default, not the branch that prints messages[0].content.
    if (Text.find("{{") == std::string::npos && Text.find('\'') == std::string::npos && !Text.empty())
      return Text;
  }
  return "";
}

} // namespace lumen::model
