import { describe, expect, it } from "vitest";
import { createProgressReporter, formatBytes, formatDuration, type PullProgressEvent } from "../../src/hub/progress.js";

const commit = "abcdef1234567890abcdef1234567890abcdef12";
const megabyte = 1_000_000;

/** Returns a writable stand-in that records what is written, and a settable clock. */
function captureOutput(isTTY: boolean, columns = 100) {
  const chunks: string[] = [];
  const stream = {
    isTTY,
    columns,
    write(chunk: string) {
      chunks.push(chunk);
      return true;
    },
  } as unknown as NodeJS.WritableStream & { isTTY: boolean; columns: number };
  const clock = { time: 0 };
  return { stream, chunks, clock, text: () => chunks.join("") };
}

const plan: PullProgressEvent = {
  kind: "plan",
  repo: "mii-llm/nesso-test-mlx",
  commit,
  files: [
    { name: "config.json", bytes: 700, cached: true },
    { name: "model.safetensors", bytes: 100 * megabyte, cached: false },
  ],
  bytesToDownload: 100 * megabyte,
};

/** Emits a 100 MB download at 5 MB/s: one progress event per second for 20 seconds. */
function emitDownload(onProgress: (event: PullProgressEvent) => void, clock: { time: number }): void {
  onProgress(plan);
  onProgress({ kind: "file-start", file: "model.safetensors", bytes: 100 * megabyte, resumedFrom: 0 });
  for (let second = 1; second <= 20; second++) {
    clock.time = second * 1000;
    onProgress({ kind: "file-progress", file: "model.safetensors", bytes: 100 * megabyte, bytesOnDisk: second * 5 * megabyte });
  }
  onProgress({ kind: "file-done", file: "model.safetensors", bytes: 100 * megabyte, bytesTransferred: 100 * megabyte });
  onProgress({ kind: "done", snapshotDir: "/cache/snapshots/abc", files: 2, bytesTransferred: 100 * megabyte });
}

describe("createProgressReporter", () => {
  it("writes plain lines without a terminal", () => {
    const output = captureOutput(false);
    const reporter = createProgressReporter(output.stream, { now: () => output.clock.time });

    emitDownload(reporter.onProgress, output.clock);

    expect(output.text()).not.toContain("\r");
    expect(output.text().split("\n")).toEqual([
      "mii-llm/nesso-test-mlx at abcdef1: 1 file to download (100.0 MB), 1 already in the cache",
      "[1/1] downloading model.safetensors (100.0 MB)",
      "  model.safetensors: 25% 25.0 MB/100.0 MB, 5.0 MB/s, 15s left",
      "  model.safetensors: 50% 50.0 MB/100.0 MB, 5.0 MB/s, 10s left",
      "  model.safetensors: 75% 75.0 MB/100.0 MB, 5.0 MB/s, 5s left",
      "  model.safetensors: done, 100.0 MB in 20s (5.0 MB/s)",
      "model ready in /cache/snapshots/abc (2 files, 100.0 MB downloaded)",
      "",
    ]);
  });

  it("mentions a resumed download", () => {
    const output = captureOutput(false);
    const reporter = createProgressReporter(output.stream, { now: () => output.clock.time });

    reporter.onProgress(plan);
    reporter.onProgress({ kind: "file-start", file: "model.safetensors", bytes: 100 * megabyte, resumedFrom: 40 * megabyte });

    expect(output.text()).toContain("[1/1] downloading model.safetensors (100.0 MB, resuming at 40.0 MB)\n");
  });

  it("reports a cache hit in one line", () => {
    const output = captureOutput(false);
    const reporter = createProgressReporter(output.stream);

    reporter.onProgress({ ...plan, files: plan.files.map((file) => ({ ...file, cached: true })), bytesToDownload: 0 } as PullProgressEvent);
    reporter.onProgress({ kind: "done", snapshotDir: "/s", files: 2, bytesTransferred: 0 });

    expect(output.text()).toBe("mii-llm/nesso-test-mlx at abcdef1: all 2 files are already in the cache\nmodel ready in /s (2 files)\n");
  });

  it("redraws one bar line on a terminal", () => {
    const output = captureOutput(true, 90);
    const reporter = createProgressReporter(output.stream, { now: () => output.clock.time });

    emitDownload(reporter.onProgress, output.clock);

    const redraws = output.text().split("\r").slice(1).map((part) => part.slice(0, part.indexOf("\x1b[K")));
    // One draw at the start, one per second of progress, one at the end.
    expect(redraws).toHaveLength(22);
    for (const line of redraws) expect([...line].length, line).toBeLessThan(90);
    expect(redraws[10]).toMatch(/^\[1\/1\] model\.safetensors █+░+ 50% 50\.0 MB\/100\.0 MB, 5\.0 MB\/s, 10s left$/);
    expect(redraws[21]).toContain("100% 100.0 MB/100.0 MB");
    expect(output.text()).toContain("\x1b[K\n  model.safetensors: done, 100.0 MB in 20s (5.0 MB/s)\n");
  });

  it("throttles redraws to ten per second", () => {
    const output = captureOutput(true);
    const reporter = createProgressReporter(output.stream, { now: () => output.clock.time });
    reporter.onProgress(plan);
    reporter.onProgress({ kind: "file-start", file: "model.safetensors", bytes: 100 * megabyte, resumedFrom: 0 });

    for (let step = 1; step <= 1000; step++) {
      output.clock.time = step;
      reporter.onProgress({ kind: "file-progress", file: "model.safetensors", bytes: 100 * megabyte, bytesOnDisk: step * 1000 });
    }

    // 1,000 events over one second of clock time: the first draw plus one per 100 ms.
    expect(output.text().split("\r")).toHaveLength(1 + 1 + 10);
  });

  it("shortens a long file name to fit the terminal", () => {
    const output = captureOutput(true, 60);
    const reporter = createProgressReporter(output.stream, { now: () => output.clock.time });
    const name = "model-00001-of-00002-con-un-nome-molto-più-lungo-del-solito.safetensors";

    reporter.onProgress({ ...plan, files: [{ name, bytes: 10, cached: false }], bytesToDownload: 10 } as PullProgressEvent);
    reporter.onProgress({ kind: "file-start", file: name, bytes: 10, resumedFrom: 0 });

    const line = output.text().split("\r")[1].split("\x1b[K")[0];
    expect(line).toContain("…");
    expect([...line].length).toBeLessThan(60);
  });

  it("ends an open bar line on close", () => {
    const output = captureOutput(true);
    const reporter = createProgressReporter(output.stream);
    reporter.onProgress(plan);
    reporter.onProgress({ kind: "file-start", file: "model.safetensors", bytes: 100 * megabyte, resumedFrom: 0 });

    reporter.close();
    reporter.close();

    expect(output.text().endsWith("\x1b[K\n")).toBe(true);
    expect(output.text().match(/\n/g)).toHaveLength(2);
  });
});

describe("formatBytes", () => {
  const cases: [number, string][] = [
    [0, "0 B"],
    [999, "999 B"],
    [1000, "1.0 kB"],
    [862_000_000, "862.0 MB"],
    [2.5e9, "2.5 GB"],
  ];
  for (const [bytes, text] of cases) {
    it(`formats ${bytes}`, () => {
      expect(formatBytes(bytes)).toBe(text);
    });
  }
});

describe("formatDuration", () => {
  const cases: [number, string][] = [
    [0.4, "0s"],
    [45, "45s"],
    [185, "3m05s"],
    [3720, "1h02m"],
  ];
  for (const [seconds, text] of cases) {
    it(`formats ${seconds}s`, () => {
      expect(formatDuration(seconds)).toBe(text);
    });
  }
});
