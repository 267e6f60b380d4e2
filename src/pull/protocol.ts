import { type ErrorCode, FerryError } from "../observe/index.ts";

/** Messages between the main thread and sink workers. Buffers are transferred, not copied. */
export type SinkRequest =
  | { id: number; op: "open"; path: string; digest: string; size: number; offset: number }
  | { id: number; op: "write"; buffer: ArrayBuffer; length: number }
  | { id: number; op: "finish" }
  | { id: number; op: "abort" };

export type SinkReply =
  | { id: number; op: "opened" }
  | { id: number; op: "ack"; length: number }
  | { id: number; op: "done" }
  | { id: number; op: "error"; error: SerializedError };

export interface SerializedError {
  code: ErrorCode | undefined;
  message: string;
  hint: string | undefined;
  fields: Record<string, unknown>;
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof FerryError) {
    return {
      code: err.code,
      message: err.message,
      hint: err.hint,
      fields: plainFields(err.fields),
    };
  }
  return {
    code: undefined,
    message: err instanceof Error ? err.message : String(err),
    hint: undefined,
    fields: {},
  };
}

export function deserializeError(e: SerializedError): Error {
  if (e.code === undefined) return new FerryError("FERRY_INTERNAL", e.message);
  return new FerryError(e.code, e.message, { hint: e.hint, fields: e.fields });
}

function plainFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v === null || ["string", "number", "boolean", "undefined"].includes(typeof v)) out[k] = v;
  }
  return out;
}
