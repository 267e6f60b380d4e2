// The answers containerd tells apart when a snapshot operation is refused: each becomes the
// gRPC status containerd's errdefs maps back to its own error (not found, already exists, ...).
import { FerryError } from "../observe/index.ts";

export type SnapshotRefusal =
  | "not-found"
  | "already-exists"
  | "failed-precondition"
  | "invalid-argument";

export class SnapshotError extends FerryError {
  readonly refusal: SnapshotRefusal;

  constructor(refusal: SnapshotRefusal, message: string) {
    super("FERRY_INVALID_ARGUMENT", message, { fields: { refusal } });
    this.name = "SnapshotError";
    this.refusal = refusal;
  }
}

export function notFound(key: string): SnapshotError {
  return new SnapshotError("not-found", `snapshot ${key} does not exist`);
}

export function alreadyExists(key: string): SnapshotError {
  return new SnapshotError("already-exists", `snapshot ${key} already exists`);
}
