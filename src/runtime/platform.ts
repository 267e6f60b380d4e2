/** The machine's own `os/arch`, in OCI's words, for runtimes that only pull for themselves. */

const OCI_ARCH: Readonly<Record<string, string>> = {
  x64: "amd64",
  x86_64: "amd64",
  ia32: "386",
  arm64: "arm64",
  aarch64: "arm64",
  ppc64: "ppc64le",
};

export function hostPlatform(): string {
  return `${process.platform}/${OCI_ARCH[process.arch] ?? process.arch}`;
}

/** Whether `platform` ("linux/arm64", "linux/arm64/v8") names the machine's os and arch; variants are not compared. */
export function isHostPlatform(platform: string): boolean {
  const [os, arch] = platform.toLowerCase().split("/");
  return `${os}/${OCI_ARCH[arch ?? ""] ?? arch}` === hostPlatform();
}

/**
 * Whether an image the runtime describes (os, architecture, variant as Docker's inspect says)
 * is for `platform` ("linux/arm64/v8"); a variant is compared only when `platform` names one,
 * and arm64's v8 is its default (oci/'s platformMatches, which runtime/ may not import).
 */
export function heldForPlatform(
  platform: string,
  held: {
    readonly os: string | undefined;
    readonly architecture: string | undefined;
    readonly variant: string | undefined;
  },
): boolean {
  const [os, arch, variant] = platform.toLowerCase().split("/");
  if (held.os === undefined || held.architecture === undefined) return true; // it does not say
  if (os !== held.os.toLowerCase()) return false;
  if ((OCI_ARCH[arch ?? ""] ?? arch) !== (OCI_ARCH[held.architecture] ?? held.architecture))
    return false;
  if (variant === undefined) return true;
  const defaulted = (v: string | undefined) =>
    arch === "arm64" && (v ?? "v8") === "v8" ? "v8" : v;
  return defaulted(variant) === defaulted(held.variant?.toLowerCase() || undefined);
}
