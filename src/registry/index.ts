/** The Distribution API client: transport, auth, retries, deadlines, address guard, push. */
export { anonymous, type Credential, type CredentialSource } from "../config/index.ts";
export {
  AddressGuard,
  addressRefusal,
  type ResolveHost,
  registryHostRefusal,
} from "./address-guard.ts";
export { type Challenge, parseChallenges } from "./challenge.ts";
export {
  type BlobLocation,
  pullScope,
  RegistryClient,
  type RegistryEvent,
  type RegistryClientOptions,
  type Repository,
} from "./client.ts";
export {
  type FetchedManifest,
  type KnownManifest,
  MAX_MANIFEST_BYTES,
} from "./manifest-answer.ts";
export { Deadline } from "./deadline.ts";
export { classify, errorFromResponse, parseErrorBody, type RequestContext } from "./errors.ts";
export {
  DEFAULT_RETRY,
  isTransientError,
  type RetryPolicy,
  sleep,
  withRetry,
  backoffDelay,
} from "./retry.ts";
export {
  Agents,
  createAgents,
  destroyAgents,
  type HttpResponse,
  header,
  networkError,
  readBytes,
  readText,
  redact,
  send,
} from "./transport.ts";
export type { Endpoint, HostSettings, TlsSettings } from "./endpoint.ts";
export { blobPath, manifestPath, tagListPath, uploadPath } from "./paths.ts";
export { RegistrySource } from "./source.ts";
export {
  type BlobReadResult,
  type BlobRequest,
  type BlobResponseHead,
  readBlob,
} from "./blob-reader.ts";
export {
  blobExists,
  CHUNK_SIZE,
  type MountResult,
  mountBlob,
  planChunks,
  pushScope,
  putManifest,
  type ReadRange,
  resolveLocation,
  type UploadOptions,
  uploadBlob,
  withDigestParam,
  type WriteOptions,
} from "./push.ts";
