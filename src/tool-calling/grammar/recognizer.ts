// The pushdown recognizer over bytes: the reference implementation of what the native token-mask
// engine computes.
//
// A parse position is a stack of frames. The top frame points at a terminal element (a byte set or
// a special token) that the next input must match. Each lower frame points at a Rule element of
// the alternative that called into the rule, with the number of the iteration in progress. An
// ambiguous grammar keeps several stacks alive at once, so a recognizer state is a set of stacks.
//
// Frames and states are interned: equal stacks are the same object, and equal stack sets are the
// same State. Each State caches its successor for every byte, so the recognizer lazily builds a
// deterministic automaton of the states it has visited. Token masks walk the vocabulary trie over
// that automaton (see token-mask.ts), which makes repeated steps a table lookup.

import { ElementKind, type GrammarIR } from "./ir.js";
import { NessoError } from "../../errors.js";

/** One stack frame; `parent` is the frame below it (null at the bottom). */
export interface Frame {
  readonly id: number;
  /** Element index: a terminal for the top frame, a Rule element for the frames below. */
  readonly position: number;
  /** For a Rule element, the 1-based number of the iteration in progress; 0 for terminals. */
  readonly count: number;
  readonly parent: Frame | null;
  children: Map<number, Frame> | null;
  canonicalKey: string | null;
}

/** A set of stacks, identified by their top frames. */
export interface State {
  readonly id: number;
  /** Top frames sorted by id; each is a Bytes or Token element. */
  readonly tops: readonly Frame[];
  /** True when some stack has finished the root rule. */
  readonly accepting: boolean;
  /** Successor per byte: undefined = not computed yet, null = the byte is rejected. */
  next: Array<State | null | undefined>;
  /** Successor per special token id, computed on demand. */
  tokenNext: Map<number, State | null> | null;
  /** Bytes allowed next, computed on demand. */
  allowed: Uint8Array | null;
  canonicalKey: string | null;
}

/** Depth at which stack expansion gives up; a grammar that passed GrammarBuilder.build never gets close. */
const MAX_EXPANSION_DEPTH = 10_000;

/** Default number of interned states after which the tables are dropped and rebuilt on demand. */
const DEFAULT_STATE_LIMIT = 200_000;

/**
 * The shared, growing part of a recognizer for one grammar: interned frames, interned states and
 * their transition tables. Many recognizers (one per generation) can share one runtime.
 */
export class GrammarRuntime {
  readonly grammar: GrammarIR;
  readonly initial: State;
  private readonly rootFrames = new Map<number, Frame>();
  private states = new Map<string, State>();
  private nextFrameId = 1;
  private nextStateId = 1;
  private readonly stateLimit: number;
  private keyHorizon: number | undefined;

  constructor(grammar: GrammarIR, options: { stateLimit?: number } = {}) {
    this.grammar = grammar;
    this.stateLimit = options.stateLimit ?? DEFAULT_STATE_LIMIT;
    const tops: Frame[] = [];
    let accepting = false;
    for (let a = grammar.ruleAltStart[grammar.root]; a < grammar.ruleAltStart[grammar.root + 1]; a++) {
      accepting = this.expand(grammar.altElementStart[a], null, tops, 0) || accepting;
    }
    this.initial = this.internState(tops, accepting);
  }

  /** Number of states interned so far. */
  get stateCount(): number {
    return this.states.size;
  }

  /** Returns the state after `byte`, or null when no stack accepts it. */
  step(state: State, byte: number): State | null {
    const cached = state.next[byte];
    if (cached !== undefined) return cached;
    const { elementKind, elementValue, byteSets } = this.grammar;
    const tops: Frame[] = [];
    let accepting = false;
    for (const top of state.tops) {
      if (elementKind[top.position] !== ElementKind.Bytes) continue;
      const set = elementValue[top.position];
      if (!((byteSets[set * 32 + (byte >> 3)] >> (byte & 7)) & 1)) continue;
      accepting = this.expand(top.position + 1, top.parent, tops, 0) || accepting;
    }
    const next = tops.length === 0 && !accepting ? null : this.internState(tops, accepting);
    state.next[byte] = next;
    return next;
  }

  /** Returns the state after the special token `tokenId`, or null when no stack accepts it. */
  stepToken(state: State, tokenId: number): State | null {
    state.tokenNext ??= new Map();
    const cached = state.tokenNext.get(tokenId);
    if (cached !== undefined) return cached;
    const { elementKind, elementValue } = this.grammar;
    const tops: Frame[] = [];
    let accepting = false;
    for (const top of state.tops) {
      if (elementKind[top.position] !== ElementKind.Token || elementValue[top.position] !== tokenId) continue;
      accepting = this.expand(top.position + 1, top.parent, tops, 0) || accepting;
    }
    const next = tops.length === 0 && !accepting ? null : this.internState(tops, accepting);
    state.tokenNext.set(tokenId, next);
    return next;
  }

  /** Returns a 256-entry array with 1 for each byte that `state` accepts. */
  allowedBytes(state: State): Uint8Array {
    if (state.allowed) return state.allowed;
    const allowed = new Uint8Array(256);
    const { elementKind, elementValue, byteSets } = this.grammar;
    for (const top of state.tops) {
      if (elementKind[top.position] !== ElementKind.Bytes) continue;
      const base = elementValue[top.position] * 32;
      for (let b = 0; b < 256; b++) {
        if ((byteSets[base + (b >> 3)] >> (b & 7)) & 1) allowed[b] = 1;
      }
    }
    state.allowed = allowed;
    return allowed;
  }

  /** Returns the special token ids that `state` accepts, in ascending order. */
  allowedTokens(state: State): number[] {
    const ids = new Set<number>();
    for (const top of state.tops) {
      if (this.grammar.elementKind[top.position] === ElementKind.Token) ids.add(this.grammar.elementValue[top.position]);
    }
    return [...ids].sort((a, b) => a - b);
  }

  /**
   * Returns a key that is equal for two states exactly when no input of at most `horizon` bytes
   * (or one special token) can tell them apart. Repetition counts far from both bounds are
   * clamped, so the many positions inside a long string share one key and one cached token mask.
   */
  canonicalKey(state: State, horizon: number): string {
    if (this.keyHorizon === undefined) this.keyHorizon = horizon;
    if (horizon !== this.keyHorizon) {
      throw new NessoError(
        "INVALID_ARGUMENT",
        `canonical state keys of this grammar runtime use a horizon of ${this.keyHorizon} bytes, not ${horizon}; create one runtime per vocabulary`,
      );
    }
    if (state.canonicalKey !== null) return state.canonicalKey;
    const parts = state.tops.map((top) => this.frameKey(top, horizon + 1));
    const unique = [...new Set(parts)].sort();
    state.canonicalKey = `${state.accepting ? "A" : ""}|${unique.join("|")}`;
    return state.canonicalKey;
  }

  private frameKey(frame: Frame, clamp: number): string {
    if (frame.canonicalKey !== null) return frame.canonicalKey;
    const parentKey = frame.parent === null ? "" : this.frameKey(frame.parent, clamp);
    let own: string;
    if (frame.count === 0) {
      own = String(frame.position);
    } else {
      const min = this.grammar.elementMin[frame.position];
      const max = this.grammar.elementMax[frame.position];
      const needed = Math.min(Math.max(0, min - frame.count), clamp);
      const remaining = Math.min(max - frame.count, clamp);
      own = `${frame.position}:${needed}:${remaining}`;
    }
    frame.canonicalKey = `${parentKey}/${own}`;
    return frame.canonicalKey;
  }

  /**
   * Pushes onto `out` every stack whose top is a terminal and that can be reached from `position`
   * with `parent` below it without consuming input. Returns true when a stack can finish the root.
   */
  private expand(position: number, parent: Frame | null, out: Frame[], depth: number): boolean {
    if (depth > MAX_EXPANSION_DEPTH) {
      throw new NessoError("INTERNAL", `grammar expansion exceeded ${MAX_EXPANSION_DEPTH} nested rules at element ${position}`);
    }
    const kind = this.grammar.elementKind[position];
    if (kind === ElementKind.Bytes || kind === ElementKind.Token) {
      out.push(this.internFrame(position, 0, parent));
      return false;
    }
    if (kind === ElementKind.End) {
      if (parent === null) return true;
      return this.completeIteration(parent.position, parent.count, parent.parent, out, depth + 1);
    }
    return this.completeIteration(position, 0, parent, out, depth + 1);
  }

  /** Continues after `done` iterations of the Rule element at `position`: another one, or what follows. */
  private completeIteration(position: number, done: number, below: Frame | null, out: Frame[], depth: number): boolean {
    const { ruleAltStart, altElementStart, elementValue, elementMin, elementMax } = this.grammar;
    let accepting = false;
    if (done < elementMax[position]) {
      const frame = this.internFrame(position, done + 1, below);
      const rule = elementValue[position];
      for (let a = ruleAltStart[rule]; a < ruleAltStart[rule + 1]; a++) {
        accepting = this.expand(altElementStart[a], frame, out, depth) || accepting;
      }
    }
    if (done >= elementMin[position]) {
      accepting = this.expand(position + 1, below, out, depth) || accepting;
    }
    return accepting;
  }

  private internFrame(position: number, count: number, parent: Frame | null): Frame {
    const key = position * 0x10000 + count;
    let table: Map<number, Frame>;
    if (parent === null) {
      table = this.rootFrames;
    } else {
      parent.children ??= new Map();
      table = parent.children;
    }
    let frame = table.get(key);
    if (frame === undefined) {
      frame = { id: this.nextFrameId++, position, count, parent, children: null, canonicalKey: null };
      table.set(key, frame);
    }
    return frame;
  }

  private internState(tops: Frame[], accepting: boolean): State {
    tops.sort((a, b) => a.id - b.id);
    const unique: Frame[] = [];
    for (const frame of tops) {
      if (unique.length === 0 || unique[unique.length - 1] !== frame) unique.push(frame);
    }
    const key = stateKey(unique, accepting);
    let state = this.states.get(key);
    if (state === undefined) {
      if (this.states.size >= this.stateLimit) this.dropTables();
      state = {
        id: this.nextStateId++,
        tops: unique,
        accepting,
        next: new Array(256),
        tokenNext: null,
        allowed: null,
        canonicalKey: null,
      };
      this.states.set(key, state);
    }
    return state;
  }

  /**
   * Forgets the interned states and their transitions so memory stays bounded. States that
   * recognizers still hold keep working; their successors are computed again when needed.
   */
  private dropTables(): void {
    for (const state of this.states.values()) {
      if (state === this.initial) continue;
      state.next = new Array(256);
      state.tokenNext = null;
    }
    this.initial.next = new Array(256);
    this.initial.tokenNext = null;
    this.rootFrames.clear();
    this.states = new Map([[stateKey(this.initial.tops, this.initial.accepting), this.initial]]);
  }
}

function stateKey(tops: readonly Frame[], accepting: boolean): string {
  let key = accepting ? "A" : "";
  for (const frame of tops) key += `,${frame.id}`;
  return key;
}

/**
 * A position in the input of one grammar. Cloning is O(1) because states are immutable and shared
 * through the runtime.
 */
export class ByteRecognizer {
  readonly runtime: GrammarRuntime;
  private current: State;

  constructor(runtime: GrammarRuntime | GrammarIR, state?: State) {
    this.runtime = runtime instanceof GrammarRuntime ? runtime : new GrammarRuntime(runtime);
    this.current = state ?? this.runtime.initial;
  }

  get state(): State {
    return this.current;
  }

  /** Consumes one byte. Returns false and leaves the position unchanged when the grammar rejects it. */
  accept(byte: number): boolean {
    const next = this.runtime.step(this.current, byte);
    if (next === null) return false;
    this.current = next;
    return true;
  }

  /** Consumes all bytes, or none of them when one is rejected. */
  acceptBytes(input: Uint8Array | string): boolean {
    const data = typeof input === "string" ? new TextEncoder().encode(input) : input;
    let state: State | null = this.current;
    for (let i = 0; i < data.length && state !== null; i++) state = this.runtime.step(state, data[i]);
    if (state === null) return false;
    this.current = state;
    return true;
  }

  /** Consumes one special token. Returns false and leaves the position unchanged when it is rejected. */
  acceptToken(tokenId: number): boolean {
    const next = this.runtime.stepToken(this.current, tokenId);
    if (next === null) return false;
    this.current = next;
    return true;
  }

  /** True when the input so far is a complete match of the root rule. */
  isAccepting(): boolean {
    return this.current.accepting;
  }

  /** True when nothing can follow: the input is complete and no byte or token may be added. */
  isFinished(): boolean {
    return this.current.accepting && this.current.tops.length === 0;
  }

  /** Returns a 256-entry array with 1 for each byte that may come next. Do not modify it. */
  allowedBytes(): Uint8Array {
    return this.runtime.allowedBytes(this.current);
  }

  allowedTokens(): number[] {
    return this.runtime.allowedTokens(this.current);
  }

  clone(): ByteRecognizer {
    return new ByteRecognizer(this.runtime, this.current);
  }
}
