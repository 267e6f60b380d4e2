/** `ferry agent`'s retry flags over agent.yaml's `retry:`: the waits before a failed image is tried again. */
import {
  type BackoffPolicy,
  backoffPolicy,
  OPTIONAL_IMAGE_BACKOFF,
  REQUIRED_IMAGE_BACKOFF,
  type RetrySettings,
} from "../../agent/index.ts";
import { parseDuration } from "../../store/index.ts";
import { usageError } from "../output.ts";

export interface RetryFlags {
  readonly "retry-required"?: string | undefined;
  readonly "retry-optional"?: string | undefined;
  readonly "retry-webhook-attempts"?: string | undefined;
}

export function retryFrom(values: RetryFlags, file: RetrySettings | undefined): RetrySettings {
  const attempts = values["retry-webhook-attempts"];
  return {
    required:
      policyFlag("--retry-required", values["retry-required"], REQUIRED_IMAGE_BACKOFF) ??
      file?.required,
    optional:
      policyFlag("--retry-optional", values["retry-optional"], OPTIONAL_IMAGE_BACKOFF) ??
      file?.optional,
    webhookAttempts: attempts === undefined ? file?.webhookAttempts : attemptsFlag(attempts),
  };
}

/** "INITIAL,MAX" (e.g. 5s,5m); "INITIAL" alone keeps the default cap. */
function policyFlag(
  option: string,
  text: string | undefined,
  defaults: BackoffPolicy,
): BackoffPolicy | undefined {
  if (text === undefined) return undefined;
  const [initial, max, extra] = text.split(",");
  if (initial === undefined || initial.trim() === "" || extra !== undefined) {
    throw usageError(
      `${option} takes INITIAL,MAX (e.g. 5s,5m), got "${text}"`,
      "the first wait and the cap, as durations",
    );
  }
  return backoffPolicy(
    option,
    defaults,
    parseDuration(initial, option),
    max === undefined ? undefined : parseDuration(max, option),
  );
}

function attemptsFlag(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 1000) {
    throw usageError(
      `--retry-webhook-attempts must be a whole number from 1 to 1000, got "${text}"`,
    );
  }
  return n;
}
