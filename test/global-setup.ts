// Generates the tiny fixture checkpoints once per test run, before any test file starts.

import { tinyCheckpoint } from "./fixtures/checkpoint.js";

export default async function setup(): Promise<void> {
  tinyCheckpoint("F32");
}
