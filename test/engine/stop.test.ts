import { describe, expect, it } from "vitest";
import { StopStringMatcher } from "../../src/engine/stop.js";

/** Feeds pieces one by one; returns the emitted pieces and whether a stop string was found. */
function feed(matcher: StopStringMatcher, pieces: string[]): { emitted: string[]; stopped: boolean } {
  const emitted: string[] = [];
  for (const piece of pieces) {
    const result = matcher.push(piece);
    emitted.push(result.text);
    if (result.stopped) return { emitted, stopped: true };
  }
  emitted.push(matcher.flush());
  return { emitted, stopped: false };
}

describe("stop strings", () => {
  it("passes text through without stop strings", () => {
    expect(feed(new StopStringMatcher(), ["a", "b"])).toEqual({ emitted: ["a", "b", ""], stopped: false });
  });

  it("cuts the text at a stop string inside one piece", () => {
    expect(feed(new StopStringMatcher(["</risposta>"]), ["ecco</risposta>dopo"])).toEqual({ emitted: ["ecco"], stopped: true });
  });

  it("holds back a partial stop string across pieces", () => {
    const { emitted, stopped } = feed(new StopStringMatcher(["</tool_call>"]), ["città </to", "ol_", "call> resto"]);
    expect(stopped).toBe(true);
    expect(emitted).toEqual(["città ", "", ""]);
  });

  it("releases held text that did not become a stop string", () => {
    const { emitted, stopped } = feed(new StopStringMatcher(["STOP"]), ["perché ST", "ANCO"]);
    expect(stopped).toBe(false);
    expect(emitted).toEqual(["perché ", "STANCO", ""]);
  });

  it("releases held text at the end of generation", () => {
    const { emitted } = feed(new StopStringMatcher(["STOP"]), ["fine ST"]);
    expect(emitted).toEqual(["fine ", "ST"]);
  });

  it("stops at the earliest of several stop strings", () => {
    const { emitted, stopped } = feed(new StopStringMatcher(["BBB", "A"]), ["xBBBA"]);
    expect(stopped).toBe(true);
    expect(emitted).toEqual(["x"]);
  });

  it("handles emoji and accents in stop strings", () => {
    const { emitted, stopped } = feed(new StopStringMatcher(["🙂fine"]), ["è tutto 🙂", "fi", "ne!"]);
    expect(stopped).toBe(true);
    expect(emitted.join("")).toBe("è tutto ");
  });

  it("ignores empty stop strings", () => {
    expect(feed(new StopStringMatcher([""]), ["abc"])).toEqual({ emitted: ["abc", ""], stopped: false });
  });
});
