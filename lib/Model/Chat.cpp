//===- Chat.cpp - Qwen instruct chat (ChatML) ------------------------------===//
#include "lumen/Model/Chat.h"

namespace lumen::model {

std::string renderChatML(const std::vector<ChatMessage> &Messages, bool AddGenerationPrompt) {
  std::string Out;
  for (const ChatMessage &M : Messages)
    Out += "<|im_start|>" + M.Role + "\n" + M.Content + "<|im_end|>\n";
  if (AddGenerationPrompt)
    Out += "<|im_start|>assistant\n";
  return Out;
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
