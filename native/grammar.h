// The native token-mask engine for constrained decoding: a pushdown recognizer over bytes and the
// walk of the vocabulary's byte trie that produces the allowed-token mask of a recognizer state.
//
// It computes exactly what GrammarRuntime and TokenMasker.compute compute in
// src/tool-calling/grammar/ (recognizer.ts, token-mask.ts), which stay the reference. The grammar
// is the flat IR of ir.ts. A recognizer state is a set of stacks. The caller passes the stacks of
// the state it wants a mask for (see GrammarMasker::computeMask), so a state the TS side keeps
// stays valid when this engine drops its tables to bound memory.
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
  std::vector<uint32_t> parent;  // filled by validateTokenTrie; the root's parent is 0
};

// Checks that the trie is well nested and its token ids are below vocabularySize, then fills
// `parent`. Throws InvalidArgument.
void validateTokenTrie(TokenTrie& trie);

// Upper bounds that keep memory and work bounded whatever the input.
constexpr uint32_t kMaxGrammarElements = 1u << 24;
constexpr uint32_t kMaxRepetition = 0xffff;
constexpr uint32_t kMaxStackDepth = 10000;
constexpr uint32_t kMaxStateTops = 1u << 16;
constexpr uint64_t kMaxExpansionSteps = 1u << 22;
// Context masks kept per masker, at vocabulary-size bytes each (about 125 KB for Llama 3).
constexpr size_t kContextCacheSize = 16;

class GrammarMasker {
 public:
  // stateLimit: interned states after which the next computeMask drops all tables (see computeMask).
  GrammarMasker(GrammarTables grammar, std::shared_ptr<const TokenTrie> trie, size_t stateLimit);

  // Writes one byte per token id into mask (1 = allowed next) for the state whose stacks are
  // `encoded`: [stack count, then per stack: depth d, then d (position, count) pairs from the top
  // frame down]. Throws InvalidArgument when the encoding does not describe stacks of this
  // grammar. Memory: before interning the state, the tables are dropped once more than stateLimit
  // states exist, so at most stateLimit states plus those one walk creates are alive.
  //
  // When every stack can be cut (see cutLevel), the mask starts from a context mask: the walk of
  // the cut stacks, with repetition counts far from their bounds made equal. It is cached per
  // cut state, so all strings of a grammar share one. Tokens a cut stack accepts without leaving
  // its frames are allowed whatever lies below. Trie nodes where a cut stack ends are walked
  // again with the frames below the cut.
  void computeMask(const uint32_t* encoded, size_t length, bool accepting, uint8_t* mask, size_t maskLength);

  size_t stateCount() const { return states_.size() + (context_ ? context_->states_.size() : 0); }

 private:
  // A context mask: the tokens allowed whatever is below the cut, and the trie nodes (in
  // preorder) where a cut stack ends, to be walked again with the frames below the cut.
  struct ContextMask {
    std::vector<uint8_t> mask;
    std::vector<uint32_t> exits;
    uint64_t lastUse = 0;
  };
  // Creates the context engine of `full`: the same grammar and trie with empty tables. The bool
  // parameter only distinguishes this constructor from a copy constructor.
  GrammarMasker(const GrammarMasker& full, bool);

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

  // Interns the encoded state. With `cut`, each stack keeps only its frames above cutLevel and
  // far repetition counts are made equal (used by the context engine). When `below` is given, it
  // receives per stack the id of the frame at cutLevel, or -1 when the stack cannot be cut.
  uint32_t decodeState(const uint32_t* encoded, size_t length, bool accepting, bool cut,
                       std::vector<int32_t>* below = nullptr);
  // Returns the number of frames a cut keeps of a stack (`frames`: its (position, count) pairs
  // from the top down): the top and the repetitions (max > 1) right below it. Equals depth when
  // no frame is left below, so the stack cannot be cut.
  uint32_t cutLevel(const uint32_t* frames, uint32_t depth) const;
  int32_t resumeBelowCut(int32_t frame);
  uint32_t canonicalCount(uint32_t position, uint32_t count) const;
  const ContextMask& contextMask(uint32_t contextState);
  void walkContext(uint32_t rootState, ContextMask& out);
  void walkExits(uint32_t rootState, const std::vector<uint32_t>& exits, uint8_t* mask);
  void walkExitsFrom(int32_t resumed, const std::vector<uint32_t>& exits, uint8_t* mask);
  int32_t step(uint32_t state, uint8_t byte);
  bool expand(uint32_t position, int32_t parent, std::vector<uint32_t>& out, uint32_t depth);
  bool completeIteration(uint32_t position, uint32_t done, int32_t below, std::vector<uint32_t>& out, uint32_t depth);
  uint32_t internFrame(uint32_t position, uint32_t count, int32_t parent);
  uint32_t internState(std::vector<uint32_t>& tops, bool accepting);
  const int32_t* transitions(uint32_t state);
  void walk(uint32_t rootNode, uint32_t rootState, uint8_t* mask);
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
  std::vector<uint8_t> accepting_;  // per state; in the context engine: a cut stack ended here
  std::vector<uint8_t> nullableRule_;  // per rule: can match the empty input
  std::unique_ptr<GrammarMasker> context_;  // the engine of cut stacks, null inside it
  std::unordered_map<uint32_t, ContextMask> contextMasks_;  // by context state id
  uint64_t contextUses_ = 0;
  std::unordered_map<std::string, uint32_t> stateIndex_;
  uint64_t expansionSteps_ = 0;
  // Walk scratch, one entry per trie depth.
  std::vector<uint32_t> walkEnds_, walkNextChild_, walkStates_;
  std::vector<const int32_t*> walkTables_;
};

}  // namespace nesso
