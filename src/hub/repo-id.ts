// Validation of Hub repo ids and revisions before they become URL parts and cache paths.

import { NessoError } from "../errors.js";

/** `name` or `org/name`; each part is ASCII letters, digits, `_`, `-` and `.` (the Hub's own rule). */
const repoIdPattern = /^(?:[A-Za-z0-9_.-]+\/)?[A-Za-z0-9_.-]+$/;

/** The Hub's maximum repo id length. */
const maxRepoIdLength = 96;

/** Returns whether the text has the shape of a Hub repo id (`org/name`), without throwing. */
export function looksLikeRepoId(text: string): boolean {
  return text.length <= maxRepoIdLength && repoIdPattern.test(text) && !text.includes("--") && !text.includes("..");
}

/**
 * Throws INVALID_ARGUMENT unless `repo` is a valid Hub model repo id. The rules are those of
 * huggingface_hub's `validate_repo_id`: `--` is reserved for cache folder names (`models--org--name`),
 * and `..` or a leading or trailing `-`/`.` is rejected by the Hub.
 */
export function validateRepoId(repo: string): void {
  const fix = `use the form org/name, e.g. mlx-community/nesso-0.4B-agentic-mlx`;
  if (repo.length === 0 || repo.length > maxRepoIdLength) {
    throw new NessoError("INVALID_ARGUMENT", `repo id "${repo}" has ${repo.length} characters but must have 1 to ${maxRepoIdLength}; ${fix}`);
  }
  if (!repoIdPattern.test(repo)) {
    throw new NessoError("INVALID_ARGUMENT", `repo id "${repo}" is invalid: only letters, digits, "_", "-", "." and one "/" are allowed; ${fix}`);
  }
  if (repo.includes("--") || repo.includes("..")) {
    throw new NessoError("INVALID_ARGUMENT", `repo id "${repo}" is invalid: it must not contain "--" or ".."; ${fix}`);
  }
  for (const part of repo.split("/")) {
    if (/^[-.]|[-.]$/.test(part)) {
      throw new NessoError("INVALID_ARGUMENT", `repo id "${repo}" is invalid: "${part}" starts or ends with "-" or "."; ${fix}`);
    }
  }
}

/**
 * Throws INVALID_ARGUMENT unless `revision` can name a branch, tag or commit. A revision becomes
 * the path `refs/<revision>` in the cache, so empty segments, `.`/`..` and control characters
 * are rejected. Slashes are allowed, because Hub refs such as `refs/pr/1` contain them.
 */
export function validateRevision(revision: string): void {
  const segments = revision.split("/");
  const invalidSegment = segments.find((segment) => segment === "" || segment === "." || segment === "..");
  if (revision.length === 0 || invalidSegment !== undefined || /[\u0000-\u001f\u007f\\]/.test(revision)) {
    throw new NessoError(
      "INVALID_ARGUMENT",
      `revision "${revision}" is invalid: it must be a branch, tag or 40-hex commit with no empty, "." or ".." path segments, backslashes or control characters`,
    );
  }
}

/** Returns whether the revision is a full commit hash rather than a branch or tag. */
export function isCommitHash(revision: string): boolean {
  return /^[0-9a-f]{40}$/.test(revision);
}
