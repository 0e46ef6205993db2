// The JS classes GrammarVocabulary and TokenMasker of the native token-mask engine (grammar.h).
#pragma once

#include <napi.h>

#include <memory>

#include "grammar.h"
#include "js-values.h"

namespace nesso {

// new GrammarVocabulary(trie): copies the vocabulary byte trie once, for any number of maskers.
class GrammarVocabularyWrap : public Napi::ObjectWrap<GrammarVocabularyWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit GrammarVocabularyWrap(const Napi::CallbackInfo& info);

  // The wrapped trie when `value` is a GrammarVocabulary, else throws InvalidArgument.
  static std::shared_ptr<const TokenTrie> unwrapTrie(const Napi::Value& value, const char* operation);

 private:
  Napi::Value size(const Napi::CallbackInfo& info);
  Napi::Value nodeCount(const Napi::CallbackInfo& info);

  std::shared_ptr<const TokenTrie> trie_;
};

// new TokenMasker(grammar, vocabulary, options?): the recognizer tables of one grammar and the mask walk.
class TokenMaskerWrap : public Napi::ObjectWrap<TokenMaskerWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit TokenMaskerWrap(const Napi::CallbackInfo& info);

 private:
  template <Napi::Value (TokenMaskerWrap::*Method)(const Napi::CallbackInfo&)>
  Napi::Value guarded(const Napi::CallbackInfo& info) {
    return translateErrors(info.Env(), [&] { return (this->*Method)(info); });
  }

  Napi::Value computeMask(const Napi::CallbackInfo& info);
  Napi::Value stateCount(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::unique_ptr<GrammarMasker> masker_;  // null after dispose()
};

}  // namespace nesso
