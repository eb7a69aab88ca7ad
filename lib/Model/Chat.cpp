//===- Chat.cpp - Chat formats (ChatML, Llama 3) ---------------------------===//
#include "lumen/Model/Chat.h"

#include "absl/strings/ascii.h"

namespace lumen::model {

ChatFormat chatFormatOf(const std::string &ChatTemplate) {
  if (ChatTemplate.find("<|start_header_id|>") != std::string::npos &&
      ChatTemplate.find("<|im_start|>") == std::string::npos)
    return ChatFormat::Llama3;
  return ChatFormat::ChatML;
}

bool chatTemplateThinks(const std::string &ChatTemplate) {
  return ChatTemplate.find("enable_thinking") != std::string::npos;
}

const char *chatFormatName(ChatFormat F) { return F == ChatFormat::Llama3 ? "llama3" : "chatml"; }

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
                       bool AddGenerationPrompt, bool Thinking) {
  std::string Out = renderChat(chatFormatOf(ChatTemplate), Messages, AddGenerationPrompt);
  if (AddGenerationPrompt && !Thinking && chatTemplateThinks(ChatTemplate))
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
