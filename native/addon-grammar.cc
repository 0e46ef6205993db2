#include "addon-grammar.h"

#include <utility>
#include <vector>

namespace nesso {

namespace {

// Marks GrammarVocabulary objects so that TokenMasker can tell them from other objects.
constexpr napi_type_tag kVocabularyTag = {0x6e6573736f2d6772ull, 0x616d6d61722d766full};

// Default number of interned states before the tables are dropped. A state takes at most about
// 1.1 KB (a 256-entry transition table plus the stack set), so this is about 36 MB.
constexpr int64_t kDefaultStateLimit = 32768;
constexpr int64_t kMaxStateLimit = 1 << 22;

template <typename ArrayType, typename Element>
std::vector<Element> copyArray(const Napi::Object& source, const char* field, napi_typedarray_type type,
                               const char* operation) {
  ArrayType array = requireTypedArray(source.Get(field), type, operation, field).template As<ArrayType>();
  return std::vector<Element>(array.Data(), array.Data() + array.ElementLength());
}

std::vector<uint32_t> copyUint32(const Napi::Object& source, const char* field, const char* operation) {
  return copyArray<Napi::Uint32Array, uint32_t>(source, field, napi_uint32_array, operation);
}

std::vector<uint8_t> copyUint8(const Napi::Object& source, const char* field, const char* operation) {
  return copyArray<Napi::Uint8Array, uint8_t>(source, field, napi_uint8_array, operation);
}

}  // namespace

Napi::Function GrammarVocabularyWrap::define(Napi::Env env) {
  return DefineClass(env, "GrammarVocabulary",
                     {
                         InstanceAccessor("size", &GrammarVocabularyWrap::size, nullptr),
                         InstanceAccessor("nodeCount", &GrammarVocabularyWrap::nodeCount, nullptr),
                     });
}

GrammarVocabularyWrap::GrammarVocabularyWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GrammarVocabularyWrap>(info) {
  translateErrors(info.Env(), [&] {
    constexpr const char* operation = "new GrammarVocabulary";
    Napi::Object source = requireObject(info[0], operation, "trie");
    auto trie = std::make_shared<TokenTrie>();
    trie->vocabularySize = uint32_t(requireInteger(source.Get("size"), operation, "size", 1, INT32_MAX));
    trie->maxTokenBytes = uint32_t(requireInteger(source.Get("maxTokenBytes"), operation, "maxTokenBytes", 0, 65536));
    trie->nodeByte = copyUint8(source, "nodeByte", operation);
    trie->subtreeEnd = copyUint32(source, "subtreeEnd", operation);
    trie->tokenStart = copyUint32(source, "tokenStart", operation);
    trie->tokenIds = copyUint32(source, "tokenIds", operation);
    validateTokenTrie(*trie);
    trie_ = std::move(trie);
    napi_status status = napi_type_tag_object(info.Env(), info.This(), &kVocabularyTag);
    if (status != napi_ok) fail(ErrorCode::Internal, operation, ": napi_type_tag_object failed with status ", int(status));
  });
}

std::shared_ptr<const TokenTrie> GrammarVocabularyWrap::unwrapTrie(const Napi::Value& value, const char* operation) {
  bool tagged = false;
  if (value.IsObject()) {
    napi_status status = napi_check_object_type_tag(value.Env(), value, &kVocabularyTag, &tagged);
    if (status != napi_ok) tagged = false;
  }
  if (!tagged) fail(ErrorCode::InvalidArgument, operation, ": vocabulary must be a GrammarVocabulary but is ", describe(value));
  return Unwrap(value.As<Napi::Object>())->trie_;
}

Napi::Value GrammarVocabularyWrap::size(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), trie_->vocabularySize);
}

Napi::Value GrammarVocabularyWrap::nodeCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(trie_->nodeByte.size()));
}

Napi::Function TokenMaskerWrap::define(Napi::Env env) {
  return DefineClass(env, "TokenMasker",
                     {
                         InstanceMethod("computeMask", &TokenMaskerWrap::guarded<&TokenMaskerWrap::computeMask>),
                         InstanceAccessor("stateCount", &TokenMaskerWrap::guarded<&TokenMaskerWrap::stateCount>, nullptr),
                         InstanceMethod("dispose", &TokenMaskerWrap::guarded<&TokenMaskerWrap::dispose>),
                     });
}

TokenMaskerWrap::TokenMaskerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TokenMaskerWrap>(info) {
  translateErrors(info.Env(), [&] {
    constexpr const char* operation = "new TokenMasker";
    Napi::Object source = requireObject(info[0], operation, "grammar");
    GrammarTables grammar;
    grammar.ruleAltStart = copyUint32(source, "ruleAltStart", operation);
    grammar.altElementStart = copyUint32(source, "altElementStart", operation);
    grammar.elementKind = copyUint8(source, "elementKind", operation);
    grammar.elementValue = copyUint32(source, "elementValue", operation);
    grammar.elementMin = copyUint32(source, "elementMin", operation);
    grammar.elementMax = copyUint32(source, "elementMax", operation);
    grammar.byteSets = copyUint8(source, "byteSets", operation);
    grammar.root = uint32_t(requireInteger(source.Get("root"), operation, "root", 0, UINT32_MAX));
    validateGrammarTables(grammar);
    std::shared_ptr<const TokenTrie> trie = GrammarVocabularyWrap::unwrapTrie(info[1], operation);
    int64_t stateLimit = kDefaultStateLimit;
    if (!isMissing(info[2])) {
      Napi::Object options = requireObject(info[2], operation, "options");
      if (!isMissing(options.Get("stateLimit"))) {
        stateLimit = requireInteger(options.Get("stateLimit"), operation, "options.stateLimit", 1, kMaxStateLimit);
      }
    }
    masker_ = std::make_unique<GrammarMasker>(std::move(grammar), std::move(trie), size_t(stateLimit));
  });
}

Napi::Value TokenMaskerWrap::computeMask(const Napi::CallbackInfo& info) {
  constexpr const char* operation = "TokenMasker.computeMask";
  if (!masker_) fail(ErrorCode::Disposed, "TokenMasker.computeMask()");
  Napi::Uint32Array stacks = requireTypedArray(info[0], napi_uint32_array, operation, "stacks").As<Napi::Uint32Array>();
  bool accepting = requireBoolean(info[1], operation, "accepting");
  Napi::Uint8Array mask = requireTypedArray(info[2], napi_uint8_array, operation, "mask").As<Napi::Uint8Array>();
  masker_->computeMask(stacks.Data(), stacks.ElementLength(), accepting, mask.Data(), mask.ElementLength());
  return info.Env().Undefined();
}

Napi::Value TokenMaskerWrap::stateCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), masker_ ? double(masker_->stateCount()) : 0);
}

Napi::Value TokenMaskerWrap::dispose(const Napi::CallbackInfo& info) {
  masker_.reset();
  return info.Env().Undefined();
}

}  // namespace nesso
