import { FerryError } from "../observe/index.ts";
import type { Descriptor, Platform } from "./manifest.ts";

const NODE_ARCH: Record<string, Platform> = {
  x64: { os: "linux", architecture: "amd64" },
  arm64: { os: "linux", architecture: "arm64", variant: "v8" },
  arm: { os: "linux", architecture: "arm", variant: "v7" },
  ia32: { os: "linux", architecture: "386" },
  ppc64: { os: "linux", architecture: "ppc64le" },
  s390x: { os: "linux", architecture: "s390x" },
  riscv64: { os: "linux", architecture: "riscv64" },
};

/** The platform of this host, in OCI terms (containers are Linux even on other hosts). */
export function hostPlatform(arch: string = process.arch): Platform {
  return NODE_ARCH[arch] ?? { os: "linux", architecture: arch };
}

/** Parses `os/arch[/variant]`, e.g. `linux/arm64/v8`. */
export function parsePlatform(text: string): Platform {
  const parts = text.split("/");
  if (
    parts.length < 2 ||
    parts.length > 3 ||
    parts.some((p) => p === "" || /[^a-z0-9._-]/i.test(p))
  ) {
    throw new FerryError("FERRY_INVALID_ARGUMENT", `invalid platform "${text}"`, {
      hint: "write it as os/arch or os/arch/variant, e.g. linux/amd64 or linux/arm64/v8",
    });
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter((x) => x !== undefined && x !== "").join("/");
}

/** arm64 images usually omit the v8 variant; treat absent and the default as equal. */
function normalizedVariant(p: Platform): string | undefined {
  if (p.architecture === "arm64" && (p.variant === undefined || p.variant === "v8")) return "v8";
  return p.variant;
}

export function platformMatches(want: Platform, have: Platform): boolean {
  if (want.os !== have.os || want.architecture !== have.architecture) return false;
  const w = normalizedVariant(want);
  return w === undefined || w === normalizedVariant(have);
}

/** The platform an image config declares (os, architecture, variant); undefined when it does not say. */
export function configPlatform(config: unknown): Platform | undefined {
  const c =
    typeof config === "object" && config !== null ? (config as Record<string, unknown>) : {};
  const { os, architecture, variant } = c;
  if (typeof os !== "string" || typeof architecture !== "string") return undefined;
  return typeof variant === "string" && variant !== ""
    ? { os, architecture, variant }
    : { os, architecture };
}

/** Picks the manifest for a platform from an index; ignores attestation entries (unknown/unknown). */
export function selectPlatform(manifests: readonly Descriptor[], want: Platform): Descriptor {
  const match = manifests.find(
    (m) => m.platform !== undefined && platformMatches(want, m.platform),
  );
  if (match !== undefined) return match;
  const available = manifests
    .map((m) => m.platform)
    .filter((p): p is Platform => p !== undefined && p.os !== "unknown")
    .map(formatPlatform);
  throw new FerryError(
    "FERRY_NO_MATCHING_PLATFORM",
    `no image for platform ${formatPlatform(want)} in the index (available: ${available.join(", ") || "none"})`,
    { hint: "choose one of the available platforms with --platform", fields: { available } },
  );
}
