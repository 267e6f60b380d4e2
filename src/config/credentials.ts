/** A stored login: username/password, or an identity (refresh) token from an OAuth2 login. */
export type Credential =
  | { readonly username: string; readonly password: string }
  | { readonly identityToken: string; readonly username?: string };

/** Where credentials come from (Docker config, helpers, podman, flags). Keyed by registry host as the user spells it. */
export interface CredentialSource {
  get(registryHost: string): Promise<Credential | undefined>;
}

export const anonymous: CredentialSource = { get: async () => undefined };

/** Asks each source in turn; the first credential wins. */
export function firstOf(sources: readonly CredentialSource[]): CredentialSource {
  return {
    async get(registryHost) {
      for (const source of sources) {
        const credential = await source.get(registryHost);
        if (credential !== undefined) return credential;
      }
      return undefined;
    },
  };
}
