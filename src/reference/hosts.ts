/** Facts about registry hosts: Docker Hub's several names, and loopback. */
import {
  DEFAULT_DOMAIN,
  DOCKER_HUB_API_HOST,
  DOCKER_HUB_CONFIG_KEY,
  LEGACY_DEFAULT_DOMAIN,
} from "./constants.ts";

const DOCKER_HUB_HOSTS: ReadonlySet<string> = new Set([
  DEFAULT_DOMAIN,
  LEGACY_DEFAULT_DOMAIN,
  DOCKER_HUB_API_HOST,
]);

/** The host that serves the Distribution API for a reference's domain. */
export function apiHost(domain: string): string {
  return domain === DEFAULT_DOMAIN || domain === LEGACY_DEFAULT_DOMAIN
    ? DOCKER_HUB_API_HOST
    : domain;
}

/**
 * Whether a domain, or a credential key as Docker's config.json spells it
 * ("https://index.docker.io/v1/"), means Docker Hub.
 */
export function isDockerHub(domain: string): boolean {
  const lower = domain.toLowerCase();
  if (lower === DOCKER_HUB_CONFIG_KEY) return true;
  const host = lower.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
  return DOCKER_HUB_HOSTS.has(host);
}

/** localhost, 127.0.0.0/8 and ::1, with or without a port; IPv6 may be bracketed. */
export function isLoopbackHost(hostWithOptionalPort: string): boolean {
  const host = stripPort(hostWithOptionalPort.toLowerCase());
  if (host === undefined) return false;
  if (host === "localhost") return true;
  const v4 = ipv4Octets(host);
  if (v4 !== undefined) return v4[0] === 127;
  const v6 = ipv6Groups(host);
  if (v6 === undefined) return false;
  const zeros = v6.slice(0, 5).every((group) => group === 0);
  if (zeros && v6[5] === 0 && v6[6] === 0 && v6[7] === 1) return true;
  // IPv4-mapped ::ffff:127.x.y.z
  return zeros && v6[5] === 0xffff && (v6[6] ?? 0) >> 8 === 127;
}

function stripPort(text: string): string | undefined {
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) return undefined;
    const rest = text.slice(close + 1);
    if (rest !== "" && !/^:[0-9]+$/.test(rest)) return undefined;
    return text.slice(1, close);
  }
  const first = text.indexOf(":");
  if (first < 0 || text.indexOf(":", first + 1) >= 0) return text; // no port, or bare IPv6
  return /^[0-9]+$/.test(text.slice(first + 1)) ? text.slice(0, first) : undefined;
}

function ipv4Octets(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const octets: number[] = [];
  for (const part of parts) {
    if (!/^[0-9]{1,3}$/.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    octets.push(value);
  }
  return octets;
}

/** Eight 16-bit groups, expanding "::" and a trailing dotted IPv4 part. */
function ipv6Groups(text: string): number[] | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parse = (half: string): number[] | undefined => {
    if (half === "") return [];
    const groups: number[] = [];
    const pieces = half.split(":");
    for (const [index, piece] of pieces.entries()) {
      if (index === pieces.length - 1 && piece.includes(".")) {
        const v4 = ipv4Octets(piece);
        if (v4 === undefined) return undefined;
        groups.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
      } else if (/^[0-9a-f]{1,4}$/.test(piece)) {
        groups.push(Number.parseInt(piece, 16));
      } else {
        return undefined;
      }
    }
    return groups;
  };
  const head = parse(halves[0] ?? "");
  const tail = halves.length === 2 ? parse(halves[1] ?? "") : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}
