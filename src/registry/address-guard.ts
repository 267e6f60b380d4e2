import type { LookupAddress } from "node:dns";
import { createRequire } from "node:module";
import { type BlockList, isIP, type LookupFunction } from "node:net";
import { FerryError } from "../observe/index.ts";

/** Addresses no registry lives at, by why: a server that connects for others must never reach them. */
const REFUSED_SUBNETS: ReadonlyArray<readonly [string, readonly string[]]> = [
  ["link-local (cloud metadata services live there)", ["169.254.0.0/16", "fe80::/10"]],
  ["unspecified", ["0.0.0.0/8", "::/128"]],
  ["multicast or broadcast", ["224.0.0.0/4", "240.0.0.0/4", "ff00::/8"]],
  // Metadata services outside link-local: AWS's IPv6 endpoint, Alibaba Cloud's.
  ["a cloud metadata service", ["fd00:ec2::254/128", "100.100.100.200/32"]],
];

// Built on first use: a BlockList loads two internal modules, which a pull without a guard
// (every command but the mirror and the peer listener) should not pay for at start-up.
let refusedLists: ReadonlyArray<readonly [string, BlockList]> | undefined;

function subnets(cidrs: readonly string[]): BlockList {
  // Read from node:net here, not imported: the bundle reads imported built-in names at load,
  // and net.BlockList's getter loads internal modules.
  const list = new (requireBuiltin("node:net") as typeof import("node:net")).BlockList();
  for (const cidr of cidrs) {
    const [net, bits] = cidr.split("/") as [string, string];
    list.addSubnet(net, Number(bits), isIP(net) === 6 ? "ipv6" : "ipv4");
  }
  return list;
}

/** Why `address` (an IP; IPv4-mapped IPv6 counts as its IPv4) is refused, or undefined when it is not. */
export function addressRefusal(address: string): string | undefined {
  const family = isIP(address);
  if (family === 0) return undefined;
  const type = family === 6 ? "ipv6" : "ipv4";
  refusedLists ??= REFUSED_SUBNETS.map(([why, cidrs]) => [why, subnets(cidrs)] as const);
  return refusedLists.find(([, list]) => list.check(address, type))?.[0];
}

/** A registry host as image references spell it: DNS labels or an IP, optional port. */
const REGISTRY_HOST =
  /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$/i;

/**
 * Why a client may not name `host` as the registry a server should contact for it, or
 * undefined: it must be a registry host (no user info, path or other URL parts), and not
 * an IP literal `addressRefusal` refuses (names are checked when they are resolved).
 */
export function registryHostRefusal(host: string): string | undefined {
  if (!REGISTRY_HOST.test(host)) return "not a registry host[:port]";
  const bare = host.startsWith("[")
    ? host.slice(1, host.indexOf("]"))
    : host.replace(/:[0-9]+$/, "");
  return addressRefusal(bare);
}

/** Resolves a host name to all its addresses (the system resolver by default). */
export type ResolveHost = (host: string) => Promise<readonly LookupAddress[]>;

const requireBuiltin = createRequire(import.meta.url);

const systemResolve: ResolveHost = (host) =>
  (requireBuiltin("node:dns") as typeof import("node:dns")).promises.lookup(host, { all: true });

/**
 * Where registry connections of one client may go: never to a refused address (see
 * `addressRefusal`). A name is resolved once and the connection made to the very addresses
 * checked, so a name that re-resolves elsewhere between check and connect (DNS rebinding)
 * gains nothing.
 */
export class AddressGuard {
  readonly #resolve: ResolveHost;

  constructor(resolve: ResolveHost = systemResolve) {
    this.#resolve = resolve;
  }

  /** Options for net/tls connect to `host`; throws FERRY_ADDRESS_REFUSED for a refused IP literal. */
  connectOptions(host: string): { lookup?: LookupFunction } {
    const bare = host.replace(/^\[(.*)\]$/, "$1");
    // node:net skips `lookup` for IP literals: they are checked here instead.
    if (isIP(bare) !== 0) {
      const why = addressRefusal(bare);
      if (why !== undefined) throw refused(bare, bare, why);
      return {};
    }
    return { lookup: this.lookup };
  }

  /** A `lookup` for node:net that answers only checked addresses, or fails for the whole name. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    this.#resolve(hostname).then(
      (addresses) => {
        const wanted = addresses.filter((a) => !options.family || a.family === options.family);
        const bad = wanted.find((a) => addressRefusal(a.address) !== undefined);
        const first = wanted[0];
        if (bad !== undefined) {
          callback(refused(hostname, bad.address, addressRefusal(bad.address) as string), "", 0);
        } else if (first === undefined) {
          const err = Object.assign(new Error(`${hostname} has no address`), { code: "ENOTFOUND" });
          callback(err, "", 0);
        } else if (options.all) {
          (callback as (err: null, all: readonly LookupAddress[]) => void)(null, wanted);
        } else {
          callback(null, first.address, first.family);
        }
      },
      (err: NodeJS.ErrnoException) => callback(err, "", 0),
    );
  };
}

function refused(host: string, address: string, why: string): FerryError {
  const named = host === address ? address : `${host} (${address})`;
  return new FerryError(
    "FERRY_ADDRESS_REFUSED",
    `refusing to connect to ${named}: the address is ${why}, where no registry is served`,
    {
      hint: "name a registry by a host that resolves to an ordinary address; ferry never connects to link-local, unspecified, multicast or metadata addresses",
      fields: { host, address },
    },
  );
}
