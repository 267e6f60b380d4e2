/** ferry's config file, per-registry settings, credentials (Docker, helpers, podman, login). */
export { type Credential, type CredentialSource, anonymous, firstOf } from "./credentials.ts";
export { defaultCredentialSource } from "./default-source.ts";
export {
  AuthFileSource,
  type CredentialFileOptions,
  DOCKER_FORMAT,
  dockerConfigPath,
} from "./docker-config.ts";
export { defaultPodmanAuthPaths, explicitPodmanAuthPath, PODMAN_FORMAT } from "./podman-auth.ts";
export {
  helperErase,
  helperGet,
  type HelperOptions,
  helperStore,
} from "./credential-helper.ts";
export {
  type CredentialStoreOptions,
  removeCredential,
  type SavedCredential,
  saveCredential,
} from "./login-store.ts";
export {
  DEFAULT_FERRY_CONFIG,
  type FerryConfig,
  type FerryConfigOptions,
  ferryConfigPath,
  loadFerryConfig,
  parseFerryConfig,
  type RegistryConfig,
} from "./ferry-config.ts";
export {
  type RegistrySettings,
  registrySettings,
  registrySettingsResolver,
} from "./registry-settings.ts";
export { authKeyFor, canonicalHost } from "./registry-host.ts";
