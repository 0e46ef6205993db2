#include "grammar.h"

#include <algorithm>
#include <cstring>

#include "errors.h"

namespace nesso {

namespace {

constexpr const char* kValidateGrammar = "createTokenMasker";
constexpr const char* kValidateTrie = "createGrammarVocabulary";
constexpr const char* kComputeMask = "TokenMasker.computeMask";

bool byteSetHas(const GrammarTables& grammar, uint32_t set, uint8_t byte) {
  return (grammar.byteSets[size_t(set) * 32 + (byte >> 3)] >> (byte & 7)) & 1;
}

}  // namespace

void validateGrammarTables(const GrammarTables& grammar) {
  const size_t elements = grammar.elementKind.size();
  if (grammar.ruleAltStart.size() < 2) {
    fail(ErrorCode::InvalidArgument, kValidateGrammar, ": ruleAltStart has ", grammar.ruleAltStart.size(),
         " entries but needs at least 2 (one rule plus the end marker)");
  }
  const size_t rules = grammar.ruleAltStart.size() - 1;

  if (elements > kMaxGrammarElements) {
    fail(ErrorCode::InvalidArgument, kValidateGrammar, ": the grammar has ", elements, " elements, above the limit of ",
         kMaxGrammarElements);
  }
  if (grammar.root >= rules) {
    fail(ErrorCode::InvalidArgument, kValidateGrammar, ": root ", grammar.root, " is not a rule index below ", rules);
  }
  if (grammar.ruleAltStart[0] != 0) {
    fail(ErrorCode::InvalidArgument, kValidateGrammar, ": ruleAltStart[0] is ", grammar.ruleAltStart[0], " but must be 0");
  }
  for (size_t r = 0; r < rules; r++) {
    if (grammar.ruleAltStart[r] > grammar.ruleAltStart[r + 1]) {
      fail(ErrorCode::InvalidArgument, kValidateGrammar, ": ruleAltStart decreases at rule ", r);
    }
  }
  if (grammar.ruleAltStart[rules] != grammar.altElementStart.size()) {
    fail(ErrorCode::InvalidArgument, kValidateGrammar, ": ruleAltStart ends at ", grammar.ruleAltStart[rules], " but there are ",
         grammar.altElementStart.size(), " alternatives");
  }
  if (grammar.elementValue.size() != elements || grammar.elementMin.size() != elements ||
      grammar.elementMax.size() != elements) {
    fail(ErrorCode::InvalidArgument, kValidateGrammar, ": elementValue, elementMin and elementMax have ",
         grammar.elementValue.size(), ", ", grammar.elementMin.size(), " and ", grammar.elementMax.size(),
         " entries but elementKind has ", elements);
  }

  if (grammar.byteSets.size() % 32 != 0) {
    fail(ErrorCode::InvalidArgument, kValidateGrammar, ": byteSets length ", grammar.byteSets.size(),
         " is not a multiple of 32");
  }
  const size_t sets = grammar.byteSets.size() / 32;
  for (size_t a = 0; a < grammar.altElementStart.size(); a++) {
    size_t e = grammar.altElementStart[a];
    while (e < elements && grammar.elementKind[e] != uint8_t(GrammarElementKind::End)) e++;
    if (e >= elements) fail(ErrorCode::InvalidArgument, kValidateGrammar, ": alternative ", a, " has no End element");
  }

  for (size_t e = 0; e < elements; e++) {
    const uint8_t kind = grammar.elementKind[e];
    const uint32_t value = grammar.elementValue[e];
    if (kind > uint8_t(GrammarElementKind::Token)) {
      fail(ErrorCode::InvalidArgument, kValidateGrammar, ": element ", e, " has unknown kind ", int(kind), " (expected 0-3)");
    }
    if (kind == uint8_t(GrammarElementKind::Bytes) && value >= sets) {
      fail(ErrorCode::InvalidArgument, kValidateGrammar, ": element ", e, " uses byte set ", value, " but there are ", sets);
    }
    if (kind == uint8_t(GrammarElementKind::Rule)) {
      if (value >= rules) {
        fail(ErrorCode::InvalidArgument, kValidateGrammar, ": element ", e, " refers to rule ", value, " but there are ", rules);
      }
      if (grammar.elementMax[e] > kMaxRepetition) {
        fail(ErrorCode::InvalidArgument, kValidateGrammar, ": element ", e, " repeats up to ", grammar.elementMax[e],
             " times, above the limit of ", kMaxRepetition);
      }
    }
  }
  // Every element is followed by another one (the End of its alternative), so position + 1 after
  // a terminal or a Rule element stays in range.
  if (elements > 0 && grammar.elementKind[elements - 1] != uint8_t(GrammarElementKind::End)) {
    fail(ErrorCode::InvalidArgument, kValidateGrammar, ": the last element must be an End element");
  }
}

void validateTokenTrie(TokenTrie& trie) {
  const size_t nodes = trie.nodeByte.size();
  if (nodes == 0 || nodes > UINT32_MAX / 2) {
    fail(ErrorCode::InvalidArgument, kValidateTrie, ": nodeByte has ", nodes, " nodes; the root node is required");
  }
  if (trie.subtreeEnd.size() != nodes || trie.tokenStart.size() != nodes + 1) {
    fail(ErrorCode::InvalidArgument, kValidateTrie, ": subtreeEnd has ", trie.subtreeEnd.size(), " and tokenStart ",
         trie.tokenStart.size(), " entries for ", nodes, " nodes (expected ", nodes, " and ", nodes + 1, ")");
  }
  if (trie.subtreeEnd[0] != nodes) {
    fail(ErrorCode::InvalidArgument, kValidateTrie, ": subtreeEnd[0] is ", trie.subtreeEnd[0], " but the root spans all ",
         nodes, " nodes");
  }
  // Preorder nesting: each node's subtree lies inside its parent's, and the depth stays within maxTokenBytes.
  std::vector<uint32_t> open{0};
  trie.parent.assign(nodes, 0);
  for (uint32_t node = 1; node < nodes; node++) {
    while (!open.empty() && trie.subtreeEnd[open.back()] <= node) open.pop_back();
    const uint32_t end = trie.subtreeEnd[node];
    if (open.empty() || end <= node || end > trie.subtreeEnd[open.back()]) {
      fail(ErrorCode::InvalidArgument, kValidateTrie, ": subtreeEnd[", node, "] = ", end, " is not nested in its parent's subtree");
    }
    trie.parent[node] = open.back();
    open.push_back(node);
    if (open.size() - 1 > trie.maxTokenBytes) {
      fail(ErrorCode::InvalidArgument, kValidateTrie, ": node ", node, " is at depth ", open.size() - 1,
           ", deeper than maxTokenBytes ", trie.maxTokenBytes);
    }
  }
  if (trie.tokenStart[0] != 0 || trie.tokenStart[nodes] != trie.tokenIds.size()) {
    fail(ErrorCode::InvalidArgument, kValidateTrie, ": tokenStart must run from 0 to the ", trie.tokenIds.size(), " token ids");
  }
  for (size_t node = 0; node < nodes; node++) {
    if (trie.tokenStart[node] > trie.tokenStart[node + 1]) {
      fail(ErrorCode::InvalidArgument, kValidateTrie, ": tokenStart decreases at node ", node);
    }
  }
  for (size_t i = 0; i < trie.tokenIds.size(); i++) {
    if (trie.tokenIds[i] >= trie.vocabularySize) {
      fail(ErrorCode::InvalidArgument, kValidateTrie, ": token id ", trie.tokenIds[i], " is not below the vocabulary size ",
           trie.vocabularySize);
    }
  }
}

GrammarMasker::GrammarMasker(GrammarTables grammar, std::shared_ptr<const TokenTrie> trie, size_t stateLimit)
    : grammar_(std::move(grammar)), trie_(std::move(trie)), stateLimit_(stateLimit) {
  const size_t depth = size_t(trie_->maxTokenBytes) + 2;
  walkEnds_.resize(depth);
  walkNextChild_.resize(depth);
  walkStates_.resize(depth);
  walkTables_.resize(depth);

  // A rule is nullable when one of its alternatives has only Rule elements that can be skipped
  // or are nullable themselves. The loop runs until nothing changes.
  const size_t rules = grammar_.ruleAltStart.size() - 1;
  nullableRule_.assign(rules, 0);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < rules; r++) {
      if (nullableRule_[r]) continue;
      for (uint32_t a = grammar_.ruleAltStart[r]; a < grammar_.ruleAltStart[r + 1] && !nullableRule_[r]; a++) {
        bool nullable = true;
        for (uint32_t e = grammar_.altElementStart[a]; grammar_.elementKind[e] != uint8_t(GrammarElementKind::End); e++) {
          const bool skippable = grammar_.elementKind[e] == uint8_t(GrammarElementKind::Rule) &&
                                 (grammar_.elementMin[e] == 0 || nullableRule_[grammar_.elementValue[e]]);
          if (!skippable) {
            nullable = false;
            break;
          }
        }
        if (nullable) {
          nullableRule_[r] = 1;
          changed = true;
        }
      }
    }
  }
  context_.reset(new GrammarMasker(*this, true));
}

GrammarMasker::GrammarMasker(const GrammarMasker& full, bool)
    : grammar_(full.grammar_),
      trie_(full.trie_),
      stateLimit_(full.stateLimit_),
      walkEnds_(full.walkEnds_.size()),
      walkNextChild_(full.walkNextChild_.size()),
      walkStates_(full.walkStates_.size()),
      walkTables_(full.walkTables_.size()) {
  nullableRule_ = full.nullableRule_;
}

void GrammarMasker::clearTables() {
  frames_.clear();
  frameIndex_.clear();
  states_.clear();
  hasTops_.clear();
  accepting_.clear();
  stateIndex_.clear();
}

uint32_t GrammarMasker::internFrame(uint32_t position, uint32_t count, int32_t parent) {
  const FrameKey key{(uint64_t(uint32_t(parent + 1)) << 32) | position, count};
  auto found = frameIndex_.find(key);
  if (found != frameIndex_.end()) return found->second;
  const uint32_t id = uint32_t(frames_.size());
  frames_.push_back({position, count, parent});
  frameIndex_.emplace(key, id);
  return id;
}

uint32_t GrammarMasker::internState(std::vector<uint32_t>& tops, bool accepting) {
  std::sort(tops.begin(), tops.end());
  tops.erase(std::unique(tops.begin(), tops.end()), tops.end());
  std::string key(1, accepting ? 'A' : '-');
  key.append(reinterpret_cast<const char*>(tops.data()), tops.size() * sizeof(uint32_t));
  auto found = stateIndex_.find(key);
  if (found != stateIndex_.end()) return found->second;
  const uint32_t id = uint32_t(states_.size());
  states_.push_back(State{tops, accepting, nullptr});
  hasTops_.push_back(tops.empty() ? 0 : 1);
  accepting_.push_back(accepting ? 1 : 0);
  stateIndex_.emplace(std::move(key), id);
  return id;
}

const int32_t* GrammarMasker::transitions(uint32_t state) {
  State& data = states_[state];
  if (!data.next) {
    data.next.reset(new int32_t[256]);
    std::fill(data.next.get(), data.next.get() + 256, kUnknown);
  }
  return data.next.get();
}

bool GrammarMasker::expand(uint32_t position, int32_t parent, std::vector<uint32_t>& out, uint32_t depth) {
  if (depth > kMaxStackDepth) {
    fail(ErrorCode::Unsupported, kComputeMask, ": grammar expansion exceeded ", kMaxStackDepth,
         " nested rules at element ", position, "; the grammar is left-recursive or repeats a rule that matches nothing");
  }
  if (++expansionSteps_ > kMaxExpansionSteps) {
    fail(ErrorCode::Unsupported, kComputeMask, ": grammar expansion took more than ", kMaxExpansionSteps,
         " steps at element ", position, "; the grammar is too ambiguous");
  }
  const auto kind = GrammarElementKind(grammar_.elementKind[position]);
  if (kind == GrammarElementKind::Bytes || kind == GrammarElementKind::Token) {
    if (out.size() >= kMaxStateTops) {
      fail(ErrorCode::Unsupported, kComputeMask, ": a grammar state has more than ", kMaxStateTops,
           " stacks; the grammar is too ambiguous");
    }
    out.push_back(internFrame(position, 0, parent));
    return false;
  }
  if (kind == GrammarElementKind::End) {
    if (parent < 0) return true;
    const Frame frame = frames_[size_t(parent)];
    return completeIteration(frame.position, frame.count, frame.parent, out, depth + 1);
  }
  return completeIteration(position, 0, parent, out, depth + 1);
}

bool GrammarMasker::completeIteration(uint32_t position, uint32_t done, int32_t below, std::vector<uint32_t>& out,
                                      uint32_t depth) {
  bool accepting = false;
  if (done < grammar_.elementMax[position]) {
    const int32_t frame = int32_t(internFrame(position, done + 1, below));
    const uint32_t rule = grammar_.elementValue[position];
    for (uint32_t a = grammar_.ruleAltStart[rule]; a < grammar_.ruleAltStart[rule + 1]; a++) {
      accepting = expand(grammar_.altElementStart[a], frame, out, depth) || accepting;
    }
  }
  if (done >= grammar_.elementMin[position]) {
    accepting = expand(position + 1, below, out, depth) || accepting;
  }
  return accepting;
}

int32_t GrammarMasker::step(uint32_t state, uint8_t byte) {
  const int32_t cached = transitions(state)[byte];
  if (cached != kUnknown) return cached;
  // Copied because interning may add states and frames while the loop runs.
  const std::vector<uint32_t> currentTops = states_[state].tops;
  std::vector<uint32_t> tops;
  bool accepting = false;
  expansionSteps_ = 0;
  for (uint32_t top : currentTops) {
    const Frame frame = frames_[top];
    if (grammar_.elementKind[frame.position] != uint8_t(GrammarElementKind::Bytes)) continue;
    if (!byteSetHas(grammar_, grammar_.elementValue[frame.position], byte)) continue;
    accepting = expand(frame.position + 1, frame.parent, tops, 0) || accepting;
  }
  const int32_t next = tops.empty() && !accepting ? kRejected : int32_t(internState(tops, accepting));
  states_[state].next[byte] = next;
  return next;
}

uint32_t GrammarMasker::canonicalCount(uint32_t position, uint32_t count) const {
  // A walk consumes at most maxTokenBytes bytes, and each iteration of a rule that cannot match
  // the empty input consumes at least one, so only counts within that horizon of a bound matter.
  if (nullableRule_[grammar_.elementValue[position]]) return count;
  const uint32_t horizon = trie_->maxTokenBytes + 1;
  const uint32_t min = grammar_.elementMin[position];
  const uint32_t max = grammar_.elementMax[position];
  if (max - count <= horizon) return count;
  if (count >= min) return std::max<uint32_t>(min, 1);
  if (min - count > horizon) return 1;
  return count;
}

uint32_t GrammarMasker::cutLevel(const uint32_t* frames, uint32_t depth) const {
  uint32_t keptFrames = 1;
  while (keptFrames < depth && grammar_.elementMax[frames[size_t(keptFrames) * 2]] > 1) keptFrames++;
  return keptFrames;
}

uint32_t GrammarMasker::decodeState(const uint32_t* encoded, size_t length, bool accepting, bool cut,
                                    std::vector<int32_t>* below) {
  if (length == 0) fail(ErrorCode::InvalidArgument, kComputeMask, ": the state encoding is empty (expected the stack count first)");
  const uint32_t stacks = encoded[0];
  if (stacks > kMaxStateTops) {
    fail(ErrorCode::InvalidArgument, kComputeMask, ": the state has ", stacks, " stacks, above the limit of ", kMaxStateTops);
  }
  const size_t elements = grammar_.elementKind.size();
  std::vector<uint32_t> tops;
  size_t at = 1;
  for (uint32_t s = 0; s < stacks; s++) {
    if (at >= length) fail(ErrorCode::InvalidArgument, kComputeMask, ": the state encoding ends before stack ", s);
    const uint32_t depth = encoded[at++];
    if (depth == 0 || depth > kMaxStackDepth || size_t(depth) * 2 > length - at) {
      fail(ErrorCode::InvalidArgument, kComputeMask, ": stack ", s, " has depth ", depth,
           ", which is 0, above the limit of ", kMaxStackDepth, " or longer than the encoding");
    }
    // Positions are checked below before cutLevel reads elementMax, so validate them first.
    for (uint32_t level = 0; level < depth; level++) {
      const uint32_t position = encoded[at + size_t(level) * 2];
      if (position >= elements) {
        fail(ErrorCode::InvalidArgument, kComputeMask, ": stack ", s, " frame ", level, " has position ", position,
             " but the grammar has ", elements, " elements");
      }
    }
    const uint32_t cutAt = cutLevel(encoded + at, depth);
    int32_t parent = -1;
    const uint32_t keptFrames = cut ? cutAt : depth;
    for (uint32_t level = keptFrames; level-- > 0;) {
      const uint32_t position = encoded[at + size_t(level) * 2];
      uint32_t count = encoded[at + size_t(level) * 2 + 1];
      const auto kind = GrammarElementKind(grammar_.elementKind[position]);
      if (level == 0) {
        if ((kind != GrammarElementKind::Bytes && kind != GrammarElementKind::Token) || count != 0) {
          fail(ErrorCode::InvalidArgument, kComputeMask, ": stack ", s, " has top element ", position, " (kind ", int(kind),
               ", count ", count, ") but a top frame must be a Bytes or Token element with count 0");
        }
      } else if (kind != GrammarElementKind::Rule || count == 0 || count > grammar_.elementMax[position]) {
        fail(ErrorCode::InvalidArgument, kComputeMask, ": stack ", s, " frame ", level, " is element ", position,
             " with count ", count, " but frames below the top must be Rule elements with a count in [1, max]");
      }
      if (cut && level > 0) count = canonicalCount(position, count);
      parent = int32_t(internFrame(position, count, parent));
      if (below != nullptr && level == cutAt) below->push_back(parent);
    }
    if (below != nullptr && cutAt == depth) below->push_back(-1);
    tops.push_back(uint32_t(parent));
    at += size_t(depth) * 2;
  }
  if (at != length) {
    fail(ErrorCode::InvalidArgument, kComputeMask, ": the state encoding has ", length - at, " values after the last stack");
  }
  return internState(tops, accepting);
}

void GrammarMasker::computeMask(const uint32_t* encoded, size_t length, bool accepting, uint8_t* mask, size_t maskLength) {
  const TokenTrie& trie = *trie_;
  if (maskLength != trie.vocabularySize) {
    fail(ErrorCode::InvalidArgument, kComputeMask, ": the mask has ", maskLength, " entries but the vocabulary has ",
         trie.vocabularySize, " token ids");
  }
  if (states_.size() > stateLimit_) clearTables();
  if (context_->states_.size() > stateLimit_) {
    context_->clearTables();
    contextMasks_.clear();
  }
  std::vector<int32_t> below;
  const uint32_t state = decodeState(encoded, length, accepting, false, &below);
  bool canCut = !below.empty();
  for (int32_t frame : below) canCut = canCut && frame >= 0;

  if (hasTops_[state] && canCut) {
    const uint32_t contextState = context_->decodeState(encoded, length, false, true);
    const ContextMask& context = contextMask(contextState);
    std::memcpy(mask, context.mask.data(), maskLength);
    // With one chain of frames below the cut (the usual, unambiguous case) every cut stack that
    // ends continues the same way, so each exit is walked from that one continuation.
    bool oneChain = true;
    for (int32_t frame : below) oneChain = oneChain && frame == below[0];
    if (oneChain) {
      walkExitsFrom(resumeBelowCut(below[0]), context.exits, mask);
    } else {
      walkExits(state, context.exits, mask);
    }
  } else {
    std::memset(mask, 0, maskLength);
    if (hasTops_[state]) walk(0, state, mask);
  }

  for (uint32_t top : states_[state].tops) {
    const uint32_t position = frames_[top].position;
    if (grammar_.elementKind[position] != uint8_t(GrammarElementKind::Token)) continue;
    const uint32_t id = grammar_.elementValue[position];
    if (id < maskLength) mask[id] = 1;
  }
}

const GrammarMasker::ContextMask& GrammarMasker::contextMask(uint32_t contextState) {
  auto found = contextMasks_.find(contextState);
  if (found != contextMasks_.end()) {
    found->second.lastUse = ++contextUses_;
    return found->second;
  }
  if (contextMasks_.size() >= kContextCacheSize) {
    auto oldest = contextMasks_.begin();
    for (auto it = contextMasks_.begin(); it != contextMasks_.end(); ++it) {
      if (it->second.lastUse < oldest->second.lastUse) oldest = it;
    }
    contextMasks_.erase(oldest);
  }
  ContextMask& entry = contextMasks_[contextState];
  try {
    entry.mask.assign(trie_->vocabularySize, 0);
    context_->walkContext(contextState, entry);
  } catch (...) {
    contextMasks_.erase(contextState);
    throw;
  }
  entry.lastUse = ++contextUses_;
  return entry;
}

// The walk of the context engine: marks the tokens a cut stack accepts without leaving its frames
// and records the nodes where a cut stack ends.
void GrammarMasker::walkContext(uint32_t rootState, ContextMask& out) {
  const TokenTrie& trie = *trie_;
  const uint8_t* nodeByte = trie.nodeByte.data();
  const uint32_t* subtreeEnd = trie.subtreeEnd.data();
  const uint32_t* tokenStart = trie.tokenStart.data();
  const uint32_t* tokenIds = trie.tokenIds.data();
  uint8_t* mask = out.mask.data();
  uint32_t* ends = walkEnds_.data();
  uint32_t* nextChild = walkNextChild_.data();
  uint32_t* states = walkStates_.data();
  const int32_t** tables = walkTables_.data();

  size_t top = 0;
  ends[0] = subtreeEnd[0];
  nextChild[0] = 1;
  states[0] = rootState;
  tables[0] = transitions(rootState);
  for (;;) {
    const uint32_t child = nextChild[top];
    if (child >= ends[top]) {
      if (top == 0) break;
      top--;
      continue;
    }
    const uint32_t childEnd = subtreeEnd[child];
    nextChild[top] = childEnd;
    const uint8_t byte = nodeByte[child];
    int32_t next = tables[top][byte];
    if (next == kUnknown) next = step(states[top], byte);
    if (next == kRejected) continue;

    if (accepting_[size_t(next)]) out.exits.push_back(child);
    if (!hasTops_[size_t(next)]) continue;
    for (uint32_t t = tokenStart[child]; t < tokenStart[child + 1]; t++) mask[tokenIds[t]] = 1;
    if (childEnd > child + 1) {
      top++;
      ends[top] = childEnd;
      nextChild[top] = child + 1;
      states[top] = uint32_t(next);
      tables[top] = transitions(uint32_t(next));
    }
  }
}

// Returns the state after the alternative that contains `frame`'s element was completed, or
// kRejected when nothing can follow.
int32_t GrammarMasker::resumeBelowCut(int32_t frame) {
  const Frame below = frames_[size_t(frame)];
  std::vector<uint32_t> tops;
  expansionSteps_ = 0;
  const bool accepting = completeIteration(below.position, below.count, below.parent, tops, 0);
  return tops.empty() && !accepting ? kRejected : int32_t(internState(tops, accepting));
}

// Marks the tokens that end at or below each exit after a cut stack ended there and the walk
// went on from `resumed`.
void GrammarMasker::walkExitsFrom(int32_t resumed, const std::vector<uint32_t>& exits, uint8_t* mask) {
  if (resumed < 0) return;
  const TokenTrie& trie = *trie_;
  const bool descend = hasTops_[size_t(resumed)] != 0;
  for (uint32_t exit : exits) {
    for (uint32_t t = trie.tokenStart[exit]; t < trie.tokenStart[exit + 1]; t++) mask[trie.tokenIds[t]] = 1;
    if (descend && trie.subtreeEnd[exit] > exit + 1) walk(exit, uint32_t(resumed), mask);
  }
}

// Walks the subtrees of `exits` from the full state: steps along each exit's trie path (sharing
// the common prefix with the previous exit), then marks the exit's tokens and walks below it.
void GrammarMasker::walkExits(uint32_t rootState, const std::vector<uint32_t>& exits, uint8_t* mask) {
  const TokenTrie& trie = *trie_;
  const size_t depth = size_t(trie.maxTokenBytes) + 2;
  std::vector<uint32_t> pathNodes(depth);
  std::vector<int32_t> pathStates(depth);
  std::vector<uint32_t> chain;
  size_t pathLength = 1;
  pathNodes[0] = 0;
  pathStates[0] = int32_t(rootState);

  for (uint32_t exit : exits) {
    chain.clear();
    for (uint32_t node = exit; node != 0; node = trie.parent[node]) chain.push_back(node);
    std::reverse(chain.begin(), chain.end());
    // pathNodes[d] is the node at depth d, chain[d - 1] too when they share the prefix.
    size_t shared = 1;
    while (shared < pathLength && pathNodes[shared] == chain[shared - 1]) shared++;
    pathLength = shared;
    int32_t state = pathStates[shared - 1];
    for (size_t d = shared; d <= chain.size() && state >= 0; d++) {
      const uint32_t node = chain[d - 1];
      const uint8_t byte = trie.nodeByte[node];
      int32_t next = transitions(uint32_t(state))[byte];
      if (next == kUnknown) next = step(uint32_t(state), byte);
      state = next;
      pathNodes[pathLength] = node;
      pathStates[pathLength] = state;
      pathLength++;
    }
    if (state < 0 || pathNodes[pathLength - 1] != exit) continue;

    for (uint32_t t = trie.tokenStart[exit]; t < trie.tokenStart[exit + 1]; t++) mask[trie.tokenIds[t]] = 1;
    if (trie.subtreeEnd[exit] > exit + 1 && hasTops_[size_t(state)]) walk(exit, uint32_t(state), mask);
  }
}

// Walks the trie depth-first with an explicit stack (one level per trie depth), marking allowed
// tokens; the same walk as TokenMasker.walk in token-mask.ts.
void GrammarMasker::walk(uint32_t rootNode, uint32_t rootState, uint8_t* mask) {
  const TokenTrie& trie = *trie_;
  const uint8_t* nodeByte = trie.nodeByte.data();
  const uint32_t* subtreeEnd = trie.subtreeEnd.data();
  const uint32_t* tokenStart = trie.tokenStart.data();
  const uint32_t* tokenIds = trie.tokenIds.data();
  uint32_t* ends = walkEnds_.data();
  uint32_t* nextChild = walkNextChild_.data();
  uint32_t* states = walkStates_.data();
  const int32_t** tables = walkTables_.data();

  size_t top = 0;
  ends[0] = subtreeEnd[rootNode];
  nextChild[0] = rootNode + 1;
  states[0] = rootState;
  tables[0] = transitions(rootState);
  for (;;) {
    const uint32_t child = nextChild[top];
    if (child >= ends[top]) {
      if (top == 0) break;
      top--;
      continue;
    }
    const uint32_t childEnd = subtreeEnd[child];
    nextChild[top] = childEnd;
    const uint8_t byte = nodeByte[child];
    int32_t next = tables[top][byte];
    if (next == kUnknown) next = step(states[top], byte);
    if (next == kRejected) continue;

    for (uint32_t t = tokenStart[child]; t < tokenStart[child + 1]; t++) mask[tokenIds[t]] = 1;
    if (childEnd > child + 1 && hasTops_[size_t(next)]) {
      top++;
      ends[top] = childEnd;
      nextChild[top] = child + 1;
      states[top] = uint32_t(next);
      tables[top] = transitions(uint32_t(next));
    }
  }
}

}  // namespace nesso
