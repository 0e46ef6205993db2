// The native token-mask engine for constrained decoding: a pushdown recognizer over bytes and the
// walk of the vocabulary's byte trie that produces the allowed-token mask of a recognizer state.
//
// It computes exactly what GrammarRuntime and TokenMasker.compute compute in
// src/tool-calling/grammar/ (recognizer.ts, token-mask.ts), which stay the reference. The grammar
// is the flat IR of ir.ts. A recognizer state is a set of stacks; the caller passes the stacks of
// the state it wants a mask for (see GrammarMasker::computeMask), so a state the TS side holds
// never dangles when this engine drops its tables to bound memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace nesso {

// Element kinds of the grammar IR (ElementKind in ir.ts).
enum class GrammarElementKind : uint8_t { End = 0, Bytes = 1, Rule = 2, Token = 3 };

// The grammar IR as flat arrays; the fields mirror GrammarIR in ir.ts.
struct GrammarTables {
  std::vector<uint32_t> ruleAltStart;     // rules + 1 entries
  std::vector<uint32_t> altElementStart;  // one per alternative
  std::vector<uint8_t> elementKind;
  std::vector<uint32_t> elementValue;
  std::vector<uint32_t> elementMin;
  std::vector<uint32_t> elementMax;
  std::vector<uint8_t> byteSets;  // 32 bytes per set
  uint32_t root = 0;
};

// Checks every index and bound of the IR; throws InvalidArgument naming the field and value.
void validateGrammarTables(const GrammarTables& grammar);

// The vocabulary byte trie in depth-first preorder (VocabularyTrie in vocabulary.ts).
struct TokenTrie {
  uint32_t vocabularySize = 0;  // mask length
  uint32_t maxTokenBytes = 0;   // deepest node
  std::vector<uint8_t> nodeByte;
  std::vector<uint32_t> subtreeEnd;
  std::vector<uint32_t> tokenStart;  // nodes + 1 entries
  std::vector<uint32_t> tokenIds;
};

// Checks that the trie is well nested and its token ids are below vocabularySize; throws InvalidArgument.
void validateTokenTrie(const TokenTrie& trie);

// Upper bounds that keep memory and work bounded whatever the input.
constexpr uint32_t kMaxGrammarElements = 1u << 24;
constexpr uint32_t kMaxRepetition = 0xffff;
constexpr uint32_t kMaxStackDepth = 10000;
constexpr uint32_t kMaxStateTops = 1u << 16;
constexpr uint64_t kMaxExpansionSteps = 1u << 22;

class GrammarMasker {
 public:
  // stateLimit: interned states after which the next computeMask drops all tables (see computeMask).
  GrammarMasker(GrammarTables grammar, std::shared_ptr<const TokenTrie> trie, size_t stateLimit);

  // Writes one byte per token id into mask (1 = allowed next) for the state whose stacks are
  // `encoded`: [stack count, then per stack: depth d, then d (position, count) pairs from the top
  // frame down]. Throws InvalidArgument when the encoding does not describe stacks of this
  // grammar. Memory: before interning the state, the tables are dropped once more than stateLimit
  // states exist, so at most stateLimit states plus those one walk creates are alive.
  void computeMask(const uint32_t* encoded, size_t length, bool accepting, uint8_t* mask, size_t maskLength);

  size_t stateCount() const { return states_.size(); }
  const TokenTrie& trie() const { return *trie_; }

 private:
  struct Frame {
    uint32_t position;
    uint32_t count;
    int32_t parent;  // -1 at the bottom
  };
  struct State {
    std::vector<uint32_t> tops;  // frame ids, sorted and unique
    bool accepting;
    std::unique_ptr<int32_t[]> next;  // 256 successors: kUnknown, kRejected or a state id
  };
  static constexpr int32_t kUnknown = -2;
  static constexpr int32_t kRejected = -1;

  uint32_t decodeState(const uint32_t* encoded, size_t length, bool accepting);
  int32_t step(uint32_t state, uint8_t byte);
  bool expand(uint32_t position, int32_t parent, std::vector<uint32_t>& out, uint32_t depth);
  bool completeIteration(uint32_t position, uint32_t done, int32_t below, std::vector<uint32_t>& out, uint32_t depth);
  uint32_t internFrame(uint32_t position, uint32_t count, int32_t parent);
  uint32_t internState(std::vector<uint32_t>& tops, bool accepting);
  const int32_t* transitions(uint32_t state);
  void walk(uint32_t rootState, uint8_t* mask);
  void clearTables();

  GrammarTables grammar_;
  std::shared_ptr<const TokenTrie> trie_;
  size_t stateLimit_;
  std::vector<Frame> frames_;
  struct FrameKey {
    uint64_t parentAndPosition;  // (parent + 1) << 32 | position
    uint32_t count;
    bool operator==(const FrameKey& other) const {
      return parentAndPosition == other.parentAndPosition && count == other.count;
    }
  };
  struct FrameKeyHash {
    size_t operator()(const FrameKey& key) const {
      return std::hash<uint64_t>()(key.parentAndPosition * 0x9e3779b97f4a7c15ull ^ key.count);
    }
  };
  std::unordered_map<FrameKey, uint32_t, FrameKeyHash> frameIndex_;
  std::deque<State> states_;
  std::vector<uint8_t> hasTops_;  // per state
  std::unordered_map<std::string, uint32_t> stateIndex_;
  uint64_t expansionSteps_ = 0;
  // Walk scratch, one entry per trie depth.
  std::vector<uint32_t> walkEnds_, walkNextChild_, walkStates_;
  std::vector<const int32_t*> walkTables_;
};

}  // namespace nesso
