// The checksum a Hub ETag stands for. An LFS file's ETag (`X-Linked-Etag`) is the sha256 of its
// bytes. A file stored in git has the git blob id as its ETag: sha1 of "blob <length>\0" followed by
// the bytes, as `git hash-object` computes it.

import { createHash, type Hash } from "node:crypto";

export type ChecksumAlgorithm = "sha256" | "git-blob-sha1";

export interface ExpectedChecksum {
  algorithm: ChecksumAlgorithm;
  /** Lowercase hex digest. */
  hex: string;
}

/**
 * Returns the checksum an ETag promises, or undefined when the ETag has another form (a mirror
 * may send opaque ETags), in which case only the size can be checked.
 */
export function expectedChecksum(etag: string, lfs: boolean): ExpectedChecksum | undefined {
  const hex = etag.toLowerCase();
  if (/^[0-9a-f]{64}$/.test(hex)) return { algorithm: "sha256", hex };
  if (!lfs && /^[0-9a-f]{40}$/.test(hex)) return { algorithm: "git-blob-sha1", hex };
  return undefined;
}

/** An incremental hash of a file's bytes, fed in order from byte 0. */
export interface BlobHasher {
  update(chunk: Uint8Array): void;
  /** Returns the lowercase hex digest; call once, after the last byte. */
  digest(): string;
}

/** Creates a hasher for the algorithm; `size` is the total byte count the git blob header states. */
export function createBlobHasher(algorithm: ChecksumAlgorithm, size: number): BlobHasher {
  let hash: Hash;
  if (algorithm === "sha256") {
    hash = createHash("sha256");
  } else {
    hash = createHash("sha1");
    hash.update(`blob ${size}\0`);
  }
  return {
    update: (chunk) => void hash.update(chunk),
    digest: () => hash.digest("hex"),
  };
}
