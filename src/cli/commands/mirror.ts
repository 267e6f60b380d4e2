import { readFile } from "node:fs/promises";
import { parseArgs } from "../args.ts";
import { anonymous, defaultCredentialSource } from "../../config/index.ts";
import {
  loadAccessPolicy,
  Mirror,
  parseServedList,
  ServedRegistries,
  startMirrorServer,
} from "../../mirror/index.ts";
import { Metrics } from "../../observe/index.ts";
import { PEER_FLAGS_USAGE, PeerNode, peerSettings, withConfigDefaults } from "../../peer/index.ts";
import { Puller } from "../../pull/index.ts";
import { DEFAULT_DOMAIN } from "../../reference/index.ts";
import {
  AddressGuard,
  type HostSettings,
  RegistryClient,
  registryHostRefusal,
} from "../../registry/index.ts";
import { parseDuration } from "../../store/index.ts";
import { hostSettings, loadConfig, openStore } from "../context.ts";
import { ExitCode, type Output, usageError } from "../output.ts";
import { peerMembership } from "../peers.ts";

export const mirrorUsage = `Usage: ferry mirror [options]

Serve the store as a read-only registry mirror (OCI distribution API), pulling through
from upstream registries on a miss. Docker (registry-mirrors), containerd (hosts.toml,
?ns=REGISTRY) and podman (registries.conf) pull from it unchanged.

Options:
  --listen HOST:PORT   address to serve on (default 127.0.0.1:5000)
  --upstream URL       where requests without ?ns= go (default: Docker Hub); such
                       requests are recorded under that registry's name
  --allow-ns HOST[:PORT],...
                       registries a client may name with ?ns= besides the upstream
                       (default: none; * for any, as containerd's own mirrors do);
                       others get 403 DENIED. Config: mirror.namespaces
  --tag-ttl DURATION   how long a tag is answered from the store before the upstream is
                       asked again (default 5m); on upstream failure the last digest is served
  --tls-cert FILE      serve HTTPS with this certificate (and --tls-key FILE)
  --tls-key FILE
  --auth-file FILE     client auth (YAML: users with passwordSha256 and repository
                       prefixes, anonymous prefixes); the mirror then fetches upstream
                       with its own credentials. Without it the mirror fetches anonymously
                       and serves only repositories proven public upstream
  --concurrency N      upstream blob downloads at once (default 16)
  --upstream-requests N
                       other upstream requests at once: manifests, blob checks, tag
                       lists (default 32)
  --max-connections N  client connections at once; more are closed on arrival (default 1024)
  --idle-timeout DURATION
                       close a client connection idle this long, or still sending its
                       request head after it (default 30s)
  --store DIR          store directory
  --config FILE        ferry config file (with --auth-file, upstream credentials come
                       from Docker's config); its peers: (members, keyFile, listen) stand in
                       for --peers, --peer-key-file and --peer-listen when those are not given

Node-to-node sharing (docs/peers.md):
${PEER_FLAGS_USAGE}`;

export async function mirrorCommand(
  args: string[],
  output: Output,
  signal: AbortSignal,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      listen: { type: "string", default: "127.0.0.1:5000" },
      upstream: { type: "string" },
      "tag-ttl": { type: "string", default: "5m" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      concurrency: { type: "string", default: "16" },
      "allow-ns": { type: "string" },
      "upstream-requests": { type: "string", default: "32" },
      "max-connections": { type: "string", default: "1024" },
      "idle-timeout": { type: "string", default: "30s" },
      "auth-file": { type: "string" },
      store: { type: "string" },
      config: { type: "string" },
      peers: { type: "string" },
      "peer-listen": { type: "string" },
      "peer-key-file": { type: "string" },
      "peer-upload-limit": { type: "string" },
      "peer-max-connections": { type: "string" },
      "peer-fanout": { type: "string" },
      kubeconfig: { type: "string" },
    },
  });
  if (positionals.length > 0) throw usageError(`unexpected argument "${positionals[0]}"`);
  const listen = /^(\[[0-9a-f:.]+\]|[^:]+):(\d{1,5})$/i.exec(values.listen);
  if (listen === null) throw usageError(`--listen must be HOST:PORT, got "${values.listen}"`);
  const concurrency = positive(values.concurrency, "--concurrency");
  const upstreamRequests = positive(values["upstream-requests"], "--upstream-requests");
  const maxConnections = positive(values["max-connections"], "--max-connections");
  const idleTimeoutMs = parseDuration(values["idle-timeout"], "--idle-timeout");
  if (idleTimeoutMs <= 0) throw usageError("--idle-timeout must be longer than zero");
  if ((values["tls-cert"] === undefined) !== (values["tls-key"] === undefined)) {
    throw usageError("--tls-cert and --tls-key go together");
  }
  const tagTtlMs = parseDuration(values["tag-ttl"]);
  const config = loadConfig(values);
  // The config file's peers: (members, keyFile, listen) fill in flags not given.
  const peering = await peerSettings(withConfigDefaults(values, config.peers));
  let defaultNamespace = DEFAULT_DOMAIN;
  let override: { host: string; endpoint: string } | undefined;
  if (values.upstream !== undefined) {
    let u: URL;
    try {
      u = new URL(values.upstream);
    } catch {
      throw usageError(
        `--upstream must be a URL like https://registry.example.com, got "${values.upstream}"`,
      );
    }
    const refusal = registryHostRefusal(u.host);
    if (refusal !== undefined)
      throw usageError(`--upstream ${values.upstream}: the host is ${refusal}`);
    defaultNamespace = u.host;
    override = { host: u.host, endpoint: `${u.protocol}//${u.host}` };
  }
  const served = new ServedRegistries(
    defaultNamespace,
    values["allow-ns"] === undefined
      ? parseServedList(config.mirror?.namespaces ?? [], `mirror.namespaces in ${config.path}`)
      : parseServedList(values["allow-ns"].split(","), "--allow-ns"),
  );
  const fromConfig = hostSettings(config);
  const settings = (host: string): HostSettings => {
    const s = fromConfig(host);
    return override !== undefined && host === override.host
      ? { ...s, endpoint: override.endpoint, mirrors: [] }
      : s;
  };
  const store = await openStore(values);
  const log = (entry: Record<string, unknown>) =>
    output.err(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
  const access =
    values["auth-file"] === undefined ? undefined : await loadAccessPolicy(values["auth-file"]);
  const onEvent = (e: Record<string, unknown>) =>
    log({ level: "warn", msg: "mirror fallback", ...e });
  // Anonymous mode fetches without credentials, so nothing private reaches the store through
  // the mirror; with --auth-file the mirror uses its own credentials and its clients log in.
  // Whatever the configuration, no upstream connection goes to link-local or metadata addresses.
  const guard = new AddressGuard();
  const anonymousRegistry = new RegistryClient({
    credentials: anonymous,
    settings,
    onEvent,
    guard,
  });
  const registry =
    access === undefined
      ? anonymousRegistry
      : new RegistryClient({ credentials: defaultCredentialSource(), settings, onEvent, guard });
  const metrics = new Metrics();
  const members =
    peering === undefined
      ? undefined
      : await peerMembership(peering.members, values.kubeconfig, log);
  const peerNode =
    peering === undefined || members === undefined
      ? undefined
      : new PeerNode({
          self: peering.listen?.self,
          membership: members.source,
          key: peering.key,
          metrics,
          log,
          fanOut: peering.fanOut,
        });
  const puller = new Puller({
    registry,
    store,
    concurrency,
    ...(peerNode === undefined ? {} : { blobLocator: peerNode.source }),
  });
  const mirror = new Mirror({
    store,
    puller,
    registry,
    defaultNamespace,
    served,
    tagTtlMs,
    metrics,
    log,
    anonymousRegistry,
    upstreamRequests,
    ...(access === undefined ? {} : { access }),
  });
  const tls =
    values["tls-cert"] !== undefined && values["tls-key"] !== undefined
      ? { cert: await readFile(values["tls-cert"]), key: await readFile(values["tls-key"]) }
      : undefined;
  const server = await startMirrorServer({
    host: (listen[1] as string).replace(/^\[|\]$/g, ""),
    port: Number(listen[2]),
    ...(tls ? { tls } : {}),
    mirror,
    log,
    maxConnections,
    idleTimeoutMs,
    ...(peerNode === undefined ? {} : { peers: { node: peerNode, metrics } }),
  });
  if (peerNode !== undefined && peering?.listen !== undefined && members !== undefined) {
    const self = peering.listen.self;
    const peerServer = await peerNode.listen({
      host: peering.listen.host,
      port: peering.listen.port,
      store,
      fetcher: puller,
      registry,
      servesPublicly: (repository, digest) => mirror.servesPublicly(repository, digest),
      uploadBytesPerSecond: peering.uploadBytesPerSecond,
      maxConnections: peering.maxConnections,
    });
    log({
      level: "info",
      msg: "peer listener up",
      address: peerServer.address,
      membership: members.from,
      peers: members.source.members().filter((p) => p !== self),
    });
    members.source.onChange(() =>
      log({
        level: "info",
        msg: "peer members changed",
        peers: members.source.members().filter((p) => p !== self),
      }),
    );
  }
  log({
    level: "info",
    msg: "mirror listening",
    url: server.url,
    store: store.root,
    defaultNamespace,
    clientAuth: access === undefined ? "anonymous" : "basic",
  });
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
  log({ level: "info", msg: "shutting down: finishing in-flight responses" });
  await server.close();
  await peerNode?.close();
  members?.stop();
  await puller.close();
  await registry.close();
  if (registry !== anonymousRegistry) await anonymousRegistry.close();
  return ExitCode.ok;
}

function positive(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw usageError(`${flag} must be a positive whole number`);
  return n;
}
