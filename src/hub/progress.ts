// Pull progress for people: on a terminal a bar redrawn in place with bytes, rate and time left;
// elsewhere (a log file, CI) plain lines. Output goes to the stream given, normally stderr, because
// stdout carries the MCP stdio wire when `nesso-mcp serve` runs.

/** Events a pull emits, in this order: plan, then per downloaded file start/progress/done, then done. */
export type PullProgressEvent =
  | {
      kind: "plan";
      repo: string;
      commit: string;
      files: { name: string; bytes: number; cached: boolean }[];
      /** Sum of the sizes of the files still to download. */
      bytesToDownload: number;
    }
  | { kind: "file-start"; file: string; bytes: number; resumedFrom: number }
  | { kind: "file-progress"; file: string; bytes: number; bytesOnDisk: number }
  | { kind: "file-done"; file: string; bytes: number; bytesTransferred: number }
  | { kind: "done"; snapshotDir: string; files: number; bytesTransferred: number };

export interface ProgressReporterOptions {
  /** Draw a bar redrawn in place (default: whether the stream is a TTY). */
  interactive?: boolean;
  /** Line width of the bar (default: the terminal's columns, else 80). */
  columns?: number;
  /** Clock in ms (default `performance.now`). */
  now?: () => number;
}

export interface ProgressReporter {
  /** Receives pull events; pass it as `pullModel({ onProgress })`. */
  onProgress: (event: PullProgressEvent) => void;
  /** Ends a bar line left open by a failed or aborted pull. Safe to call twice. */
  close: () => void;
}

/** Minimum time between two redraws of the bar. */
const redrawIntervalMs = 100;
/** The rate is measured over this much recent time, so time left follows changes in speed. */
const rateWindowMs = 5000;
/** Without a terminal, a progress line is written per 10% step, at most one per this interval. */
const plainLineIntervalMs = 5000;

interface FileState {
  name: string;
  bytes: number;
  index: number;
  startedAt: number;
  resumedFrom: number;
  bytesOnDisk: number;
  /** Recent (time, bytes on disk) samples for the rate. */
  samples: { time: number; bytes: number }[];
  lastDrawAt: number;
  lastPlainStep: number;
  lastPlainAt: number;
}

/** Creates a reporter that writes pull progress to `stream`. */
export function createProgressReporter(
  stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
  options: ProgressReporterOptions = {},
): ProgressReporter {
  const interactive = options.interactive ?? stream.isTTY === true;
  const now = options.now ?? (() => performance.now());
  let filesToDownload = 0;
  let fileIndex = 0;
  let current: FileState | undefined;
  let lineOpen = false;

  const writeLine = (text: string) => {
    if (lineOpen) stream.write("\n");
    lineOpen = false;
    stream.write(`${text}\n`);
  };
  const drawBar = (state: FileState) => {
    const columns = options.columns ?? stream.columns ?? 80;
    stream.write(`\r${formatBarLine(state, filesToDownload, columns, rate(state))}\x1b[K`);
    lineOpen = true;
    state.lastDrawAt = now();
  };

  const onProgress = (event: PullProgressEvent) => {
    switch (event.kind) {
      case "plan": {
        filesToDownload = event.files.filter((file) => !file.cached).length;
        writeLine(formatPlan(event, filesToDownload));
        break;
      }
      case "file-start": {
        const time = now();
        fileIndex++;
        current = {
          name: event.file,
          bytes: event.bytes,
          index: fileIndex,
          startedAt: time,
          resumedFrom: event.resumedFrom,
          bytesOnDisk: event.resumedFrom,
          samples: [{ time, bytes: event.resumedFrom }],
          lastDrawAt: -Infinity,
          lastPlainStep: Math.floor((event.resumedFrom / Math.max(event.bytes, 1)) * 10),
          lastPlainAt: time,
        };
        if (interactive) drawBar(current);
        else writeLine(formatFileStart(current, filesToDownload));
        break;
      }
      case "file-progress": {
        if (current === undefined || current.name !== event.file) break;
        const time = now();
        current.bytesOnDisk = event.bytesOnDisk;
        current.samples.push({ time, bytes: event.bytesOnDisk });
        while (current.samples.length > 2 && time - current.samples[1].time >= rateWindowMs) current.samples.shift();

        if (interactive) {
          if (time - current.lastDrawAt >= redrawIntervalMs || event.bytesOnDisk === event.bytes) drawBar(current);
          break;
        }
        const step = Math.floor((event.bytesOnDisk / Math.max(event.bytes, 1)) * 10);
        if (step > current.lastPlainStep && step < 10 && time - current.lastPlainAt >= plainLineIntervalMs) {
          current.lastPlainStep = step;
          current.lastPlainAt = time;
          writeLine(`  ${current.name}: ${formatProgressFigures(current, rate(current))}`);
        }
        break;
      }
      case "file-done": {
        if (current === undefined || current.name !== event.file) break;
        current.bytesOnDisk = event.bytes;
        if (interactive) drawBar(current);
        const seconds = Math.max((now() - current.startedAt) / 1000, 0.001);
        writeLine(`  ${current.name}: done, ${formatBytes(event.bytesTransferred)} in ${formatDuration(seconds)} (${formatBytes(event.bytesTransferred / seconds)}/s)`);
        current = undefined;
        break;
      }
      case "done": {
        const transferred = event.bytesTransferred > 0 ? `, ${formatBytes(event.bytesTransferred)} downloaded` : "";
        writeLine(`model ready in ${event.snapshotDir} (${event.files} files${transferred})`);
        break;
      }
    }
  };

  const rate = (state: FileState): number | undefined => {
    const first = state.samples[0];
    const last = state.samples[state.samples.length - 1];
    const seconds = (last.time - first.time) / 1000;
    return seconds >= 0.5 ? (last.bytes - first.bytes) / seconds : undefined;
  };

  const close = () => {
    if (lineOpen) stream.write("\n");
    lineOpen = false;
    current = undefined;
  };

  return { onProgress, close };
}

function formatPlan(event: PullProgressEvent & { kind: "plan" }, filesToDownload: number): string {
  const head = `${event.repo} at ${event.commit.slice(0, 7)}`;
  const cached = event.files.length - filesToDownload;
  if (filesToDownload === 0) return `${head}: all ${event.files.length} files are already in the cache`;
  const cachedNote = cached > 0 ? `, ${cached} already in the cache` : "";
  return `${head}: ${filesToDownload} ${filesToDownload === 1 ? "file" : "files"} to download (${formatBytes(event.bytesToDownload)})${cachedNote}`;
}

function formatFileStart(state: FileState, fileCount: number): string {
  const resumed = state.resumedFrom > 0 ? `, resuming at ${formatBytes(state.resumedFrom)}` : "";
  return `[${state.index}/${fileCount}] downloading ${state.name} (${formatBytes(state.bytes)}${resumed})`;
}

/** Returns e.g. "48% 1.4 MB/3.0 MB, 12.3 MB/s, 2s left". */
function formatProgressFigures(state: FileState, bytesPerSecond: number | undefined): string {
  const percent = Math.floor((state.bytesOnDisk / Math.max(state.bytes, 1)) * 100);
  const speed = bytesPerSecond === undefined ? "-- B/s" : `${formatBytes(bytesPerSecond)}/s`;
  const remaining = state.bytes - state.bytesOnDisk;
  let left = "-- left";
  if (remaining === 0) left = "0s left";
  else if (bytesPerSecond !== undefined && bytesPerSecond > 0) left = `${formatDuration(remaining / bytesPerSecond)} left`;
  return `${percent}% ${formatBytes(state.bytesOnDisk)}/${formatBytes(state.bytes)}, ${speed}, ${left}`;
}

/** Returns the bar line, shortening the file name and the bar so the line fits in `columns`. */
function formatBarLine(state: FileState, fileCount: number, columns: number, bytesPerSecond: number | undefined): string {
  const figures = formatProgressFigures(state, bytesPerSecond);
  const prefix = `[${state.index}/${fileCount}] `;
  const fraction = Math.min(state.bytesOnDisk / Math.max(state.bytes, 1), 1);
  // The name gets the space first, keeping at least 10 columns for the bar; the bar takes the rest, up to 30.
  const room = Math.max(columns - 1 - prefix.length - figures.length - 2, 15);
  const name = shorten(state.name, Math.max(room - 10, 5));
  const barWidth = Math.min(Math.max(room - [...name].length, 5), 30);
  const filled = Math.round(fraction * barWidth);
  return `${prefix}${name} ${"█".repeat(filled)}${"░".repeat(barWidth - filled)} ${figures}`;
}

/** Shortens text to `width` code points, marking the cut with "…". */
function shorten(text: string, width: number): string {
  const characters = [...text];
  return characters.length <= width ? text : `${characters.slice(0, width - 1).join("")}…`;
}

/** Returns a byte count with a decimal unit, e.g. "862.0 MB". */
export function formatBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Returns a duration such as "45s", "3m05s" or "1h02m". */
export function formatDuration(seconds: number): string {
  const total = Math.max(Math.round(seconds), 0);
  if (total < 60) return `${total}s`;
  const minutes = Math.floor(total / 60);
  if (minutes < 60) return `${minutes}m${String(total % 60).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}
