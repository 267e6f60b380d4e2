/** The status page: the bundled front end (`app/`) and the route serving it with live status. */
export { createStatusPage, type StatusPage, type StatusPageOptions } from "./page.ts";
export { redactSecrets } from "./redact.ts";
export { RingBuffer, type Sample, Sampler, type SamplerOptions } from "./ring.ts";
