import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resolveCacheDir, normalizeEtag } from "../../src/hub/cache.js";
import { createBlobHasher, expectedChecksum } from "../../src/hub/checksum.js";
import { validateRepoId, validateRevision } from "../../src/hub/repo-id.js";
import { offlineModeVariable, resolveEndpoint } from "../../src/hub/settings.js";
import { resolveToken } from "../../src/hub/token.js";
import { temporaryDirectory } from "./fixture-repo.js";

describe("resolveCacheDir", () => {
  const cases: [string, NodeJS.ProcessEnv, string][] = [
    ["HF_HUB_CACHE first", { HF_HUB_CACHE: "/a", HUGGINGFACE_HUB_CACHE: "/b", HF_HOME: "/c" }, "/a"],
    ["HUGGINGFACE_HUB_CACHE second", { HUGGINGFACE_HUB_CACHE: "/b", HF_HOME: "/c" }, "/b"],
    ["HF_HOME/hub third", { HF_HOME: "/c", XDG_CACHE_HOME: "/x" }, "/c/hub"],
    ["XDG_CACHE_HOME fourth", { XDG_CACHE_HOME: "/x" }, "/x/huggingface/hub"],
    ["home cache last", {}, join(homedir(), ".cache", "huggingface", "hub")],
    ["tilde expanded", { HF_HOME: "~/hf" }, join(homedir(), "hf", "hub")],
  ];
  for (const [name, env, expected] of cases) {
    it(name, () => {
      expect(resolveCacheDir(env)).toBe(expected);
    });
  }
});

describe("offlineModeVariable", () => {
  it("accepts the true values huggingface_hub accepts", () => {
    for (const value of ["1", "ON", "yes", "True", " true "]) expect(offlineModeVariable({ HF_HUB_OFFLINE: value }), value).toBe("HF_HUB_OFFLINE");
  });

  it("treats other values as off", () => {
    for (const value of ["0", "false", "", "offline"]) expect(offlineModeVariable({ HF_HUB_OFFLINE: value }), value).toBeUndefined();
  });

  it("falls back to TRANSFORMERS_OFFLINE", () => {
    expect(offlineModeVariable({ TRANSFORMERS_OFFLINE: "1" })).toBe("TRANSFORMERS_OFFLINE");
    expect(offlineModeVariable({ HF_HUB_OFFLINE: "0", TRANSFORMERS_OFFLINE: "1" })).toBeUndefined();
  });
});

describe("resolveEndpoint", () => {
  it("strips trailing slashes", () => {
    expect(resolveEndpoint(undefined, { HF_ENDPOINT: "http://127.0.0.1:9/mirror//" })).toBe("http://127.0.0.1:9/mirror");
  });

  it("prefers the explicit endpoint", () => {
    expect(resolveEndpoint("http://127.0.0.1:8", { HF_ENDPOINT: "http://127.0.0.1:9" })).toBe("http://127.0.0.1:8");
  });

  it("rejects a value that is not an http URL", () => {
    expect(() => resolveEndpoint(undefined, { HF_ENDPOINT: "huggingface.co" })).toThrow(/HF_ENDPOINT: "huggingface.co" is not a URL/);
    expect(() => resolveEndpoint(undefined, { HF_ENDPOINT: "ftp://127.0.0.1" })).toThrow(/only http: and https: are supported/);
  });
});

describe("resolveToken", () => {
  let home: { dir: string; remove: () => void };
  beforeEach(() => {
    home = temporaryDirectory("nesso-hub-token-");
  });
  afterEach(() => home.remove());

  it("prefers the explicit token", async () => {
    expect(await resolveToken("hf_explicit", { HF_TOKEN: "hf_env" })).toEqual({ value: "hf_explicit", source: "the token option" });
  });

  it("reads HF_TOKEN before the older name", async () => {
    expect(await resolveToken(undefined, { HF_TOKEN: "hf_new", HUGGING_FACE_HUB_TOKEN: "hf_old" })).toEqual({ value: "hf_new", source: "HF_TOKEN" });
    expect(await resolveToken(undefined, { HF_TOKEN: "  ", HUGGING_FACE_HUB_TOKEN: "hf_old" })).toEqual({ value: "hf_old", source: "HUGGING_FACE_HUB_TOKEN" });
  });

  it("reads the token file in HF_HOME", async () => {
    writeFileSync(join(home.dir, "token"), "hf_file\n");
    expect(await resolveToken(undefined, { HF_HOME: home.dir })).toEqual({ value: "hf_file", source: join(home.dir, "token") });
  });

  it("reads HF_TOKEN_PATH before HF_HOME", async () => {
    writeFileSync(join(home.dir, "token"), "hf_home");
    writeFileSync(join(home.dir, "other"), "hf_path");
    expect(await resolveToken(undefined, { HF_HOME: home.dir, HF_TOKEN_PATH: join(home.dir, "other") })).toEqual({ value: "hf_path", source: join(home.dir, "other") });
  });

  it("returns undefined without any token", async () => {
    expect(await resolveToken(undefined, { HF_HOME: home.dir })).toBeUndefined();
    writeFileSync(join(home.dir, "token"), "\n");
    expect(await resolveToken(undefined, { HF_HOME: home.dir })).toBeUndefined();
  });

  it("reports an unreadable token file", async () => {
    mkdirSync(join(home.dir, "token"));
    await expect(resolveToken(undefined, { HF_HOME: home.dir })).rejects.toThrow(/reading the Hugging Face token file .*token failed/);
  });
});

describe("repo id and revision validation", () => {
  it("accepts Hub repo ids", () => {
    for (const id of ["mlx-community/nesso-0.4B-agentic-mlx", "gpt2", "org_1/name.v2"]) expect(() => validateRepoId(id), id).not.toThrow();
  });

  it("rejects ids that could escape the cache", () => {
    for (const id of ["", "../x", "org/../x", "org/name/extra", "org--x/name", "org/-name", "org/name.", "a b/c", "org/nàme"]) {
      expect(() => validateRepoId(id), id).toThrow(/repo id/);
    }
  });

  it("accepts branch, tag, pr and commit revisions", () => {
    for (const revision of ["main", "v1.0", "refs/pr/1", "a".repeat(40)]) expect(() => validateRevision(revision), revision).not.toThrow();
  });

  it("rejects revisions that could escape refs", () => {
    for (const revision of ["", "..", "../main", "refs//x", "/main", "main\n", "a\\b"]) {
      expect(() => validateRevision(revision), JSON.stringify(revision)).toThrow(/revision/);
    }
  });
});

describe("checksums", () => {
  it("matches git hash-object for git blob ids", () => {
    for (const text of ["", "ciao\n", "perché così è più facile ☕🐣\n", "x".repeat(70_000)]) {
      const content = Buffer.from(text, "utf8");
      const expected = execFileSync("git", ["hash-object", "--stdin"], { input: content }).toString().trim();
      const hasher = createBlobHasher("git-blob-sha1", content.length);
      // Feed the bytes split inside a multi-byte character, as network chunks may arrive.
      hasher.update(content.subarray(0, 7));
      hasher.update(content.subarray(7));
      expect(hasher.digest(), JSON.stringify(text.slice(0, 20))).toBe(expected);
    }
  });

  it("reads the checksum kind from the ETag", () => {
    expect(expectedChecksum("a".repeat(64), true)).toEqual({ algorithm: "sha256", hex: "a".repeat(64) });
    expect(expectedChecksum("B".repeat(40), false)).toEqual({ algorithm: "git-blob-sha1", hex: "b".repeat(40) });
    expect(expectedChecksum("b".repeat(40), true)).toBeUndefined();
    expect(expectedChecksum("opaque-etag-1", false)).toBeUndefined();
  });

  it("normalizes quoted and weak ETags", () => {
    expect(normalizeEtag('"abc"')).toBe("abc");
    expect(normalizeEtag('W/"abc"')).toBe("abc");
    expect(normalizeEtag("abc")).toBe("abc");
  });
});
