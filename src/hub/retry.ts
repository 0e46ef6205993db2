// Retries of Hub requests that failed for a reason a second attempt may not repeat: network
// errors, timeouts, stalls, HTTP 429 and 5xx (HubRequestError.retryable).

import { setTimeout as sleep } from "node:timers/promises";
import { createLogger } from "../logger.js";
import { HubRequestError } from "./http.js";

const log = createLogger("hub");

export interface RetryPolicy {
  /** Extra attempts after the first. */
  retries: number;
  /** Wait before the first retry in ms; it doubles for each further one. */
  retryDelayMs: number;
  signal?: AbortSignal;
}

/**
 * Runs `attempt` until it succeeds, throws an error that is not retryable, or has failed
 * `retries + 1` times. Logs each retry. An abort during the wait throws the signal's reason.
 */
export async function withRetries<T>(policy: RetryPolicy, attempt: () => Promise<T>): Promise<T> {
  for (let failures = 0; ; failures++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof HubRequestError) || !error.retryable || failures >= policy.retries) throw error;
      const delayMs = policy.retryDelayMs * 2 ** failures;
      log.warn(`${error.message}; retrying in ${delayMs} ms (attempt ${failures + 2} of ${policy.retries + 1})`);
      try {
        await sleep(delayMs, undefined, { signal: policy.signal });
      } catch {
        throw policy.signal?.reason ?? error;
      }
    }
  }
}
