import type { HttpRequest, HttpResponse } from "./transport.ts";

/** A way to send one registry request: the transport, or the transport under policies. */
export type Send = (req: HttpRequest) => Promise<HttpResponse>;

/** One concern (retry, auth, …) wrapped around a Send, as undici's interceptors are. */
export type Policy = (next: Send) => Send;

/** `compose(a, b)(send)` is `a(b(send))`: the first policy sees the request first. */
export function compose(...policies: Policy[]): Policy {
  return (send) => policies.reduceRight<Send>((next, policy) => policy(next), send);
}

/** Drops a response nobody will read, so its connection goes back to the pool. */
export function discard(res: Promise<HttpResponse>): void {
  res.then(
    (r) => r.body.resume(),
    () => {},
  );
}
