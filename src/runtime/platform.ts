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
