import { FerryError } from "../observe/index.ts";

/**
 * Where the list of peers comes from. Structural on purpose: a Kubernetes binding
 * (EndpointSlices of a headless Service) implements it without importing this module.
 */
export interface MembershipSource {
  /** Current members as `host:port` of their peer listeners (this node may be among them). */
  members(): string[];
  /** Calls `listener` whenever `members()` changes; returns a function that unsubscribes. */
  onChange(listener: () => void): () => void;
}

const ADDRESS = /^(\[[0-9a-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/i;

/** Checks one `host:port` (IPv6 in brackets) and returns it unchanged, or throws a usage-level error. */
export function parsePeerAddress(text: string, what = "peer address"): string {
  const m = ADDRESS.exec(text.trim());
  const port = Number(m?.[2]);
  if (m === null || !(port > 0 && port < 65536)) {
    throw new FerryError("FERRY_INVALID_ARGUMENT", `${what} must be HOST:PORT, got "${text}"`, {
      hint: "e.g. --peers 10.0.0.2:5001,10.0.0.3:5001",
    });
  }
  const host = (m[1] as string).toLowerCase();
  if (host === "0.0.0.0" || host === "[::]") {
    throw new FerryError(
      "FERRY_INVALID_ARGUMENT",
      `${what} ${text} is not an address other nodes can reach`,
      { hint: "give the node's own address on the network its peers share" },
    );
  }
  return `${host}:${port}`;
}

/** `a:1,b:2` → checked, de-duplicated addresses. */
export function parsePeerList(text: string): string[] {
  const items = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (items.length === 0)
    throw new FerryError("FERRY_INVALID_ARGUMENT", "--peers lists no peer", {
      hint: "e.g. --peers 10.0.0.2:5001,10.0.0.3:5001",
    });
  return [...new Set(items.map((s) => parsePeerAddress(s)))];
}

/** A fixed list (`--peers`). */
export class StaticMembership implements MembershipSource {
  readonly #members: readonly string[];

  constructor(members: readonly string[]) {
    this.#members = [...members];
  }

  members(): string[] {
    return [...this.#members];
  }

  onChange(): () => void {
    return () => {};
  }
}
