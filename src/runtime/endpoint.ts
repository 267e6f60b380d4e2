/**
 * Where a runtime listens, found the way its own CLI finds it: an explicit option, else the
 * environment variable that CLI reads, else the runtime's default socket.
 */
import { FerryError } from "../observe/index.ts";

/** Docker CLI's default (`DOCKER_HOST` unset). */
export const DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock";
/** containerd's default socket, which also serves the CRI; crictl reads `CONTAINER_RUNTIME_ENDPOINT`. */
export const DEFAULT_CRI_ENDPOINT = "unix:///run/containerd/containerd.sock";
/** Docker's plain-HTTP TCP port, when `tcp://host` names none. */
const DOCKER_TCP_PORT = 2375;

export type DockerEndpoint =
  | { readonly kind: "unix"; readonly socketPath: string; readonly text: string }
  | { readonly kind: "tcp"; readonly host: string; readonly port: number; readonly text: string };

export interface CriEndpoint {
  /** As the user wrote it, normalized: "unix:///run/containerd/containerd.sock", "tcp://h:p". */
  readonly text: string;
  /** As @grpc/grpc-js takes it: "unix:///path" or "host:port". */
  readonly grpcTarget: string;
}

type Env = Readonly<Record<string, string | undefined>>;

function chosen(explicit: string | undefined, env: Env, variable: string, fallback: string) {
  if (explicit !== undefined && explicit.trim() !== "")
    return { text: explicit.trim(), source: "option" };
  const fromEnv = env[variable];
  if (fromEnv !== undefined && fromEnv.trim() !== "")
    return { text: fromEnv.trim(), source: variable };
  return { text: fallback, source: "default" };
}

/** `explicit`, else `DOCKER_HOST`, else /var/run/docker.sock; unix:// and tcp:// (plain HTTP) only. */
export function dockerEndpoint(explicit?: string, env: Env = process.env): DockerEndpoint {
  const { text, source } = chosen(explicit, env, "DOCKER_HOST", DEFAULT_DOCKER_HOST);
  const unixPath = socketPathOf(text);
  if (unixPath !== undefined)
    return { kind: "unix", socketPath: unixPath, text: `unix://${unixPath}` };
  const tcp = /^(?:tcp|http):\/\/(\[[0-9a-fA-F:.]+\]|[^:/[\]]+)(?::([0-9]{1,5}))?\/?$/.exec(text);
  if (tcp !== null) {
    if (source === "DOCKER_HOST" && nonEmpty(env["DOCKER_TLS_VERIFY"])) {
      throw invalidEndpoint("docker", text, source, "TLS to the Docker daemon is not supported");
    }
    const host = (tcp[1] ?? "").replace(/^\[(.*)\]$/, "$1");
    const port = tcp[2] === undefined ? DOCKER_TCP_PORT : Number(tcp[2]);
    if (port > 65_535) throw invalidEndpoint("docker", text, source, "port out of range");
    const shown = host.includes(":") ? `[${host}]` : host;
    return { kind: "tcp", host, port, text: `tcp://${shown}:${port}` };
  }
  throw invalidEndpoint(
    "docker",
    text,
    source,
    "expected unix:///path/docker.sock or tcp://host:port",
  );
}

/** `explicit`, else `CONTAINER_RUNTIME_ENDPOINT`, else containerd's socket; unix:// and tcp:// only. */
export function criEndpoint(explicit?: string, env: Env = process.env): CriEndpoint {
  const { text, source } = chosen(
    explicit,
    env,
    "CONTAINER_RUNTIME_ENDPOINT",
    DEFAULT_CRI_ENDPOINT,
  );
  const unixPath = socketPathOf(text);
  if (unixPath !== undefined) {
    return { text: `unix://${unixPath}`, grpcTarget: `unix://${unixPath}` };
  }
  const tcp = /^tcp:\/\/((?:\[[0-9a-fA-F:.]+\]|[^:/[\]]+):[0-9]{1,5})\/?$/.exec(text);
  if (tcp !== null) return { text: `tcp://${tcp[1]}`, grpcTarget: tcp[1] ?? "" };
  throw invalidEndpoint(
    "the CRI",
    text,
    source,
    "expected unix:///path/to.sock or tcp://host:port",
  );
}

/** "unix:///p" or a bare absolute path → "/p"; anything else → undefined. */
function socketPathOf(text: string): string | undefined {
  if (text.startsWith("/")) return text;
  const m = /^unix:\/\/(\/.+)$/.exec(text);
  return m?.[1];
}

function nonEmpty(value: string | undefined): boolean {
  return value !== undefined && value !== "" && value !== "0";
}

function invalidEndpoint(runtime: string, text: string, source: string, problem: string) {
  return new FerryError(
    "FERRY_INVALID_ARGUMENT",
    `${runtime} endpoint "${text}" (from ${source}): ${problem}`,
    {
      hint:
        runtime === "docker"
          ? "set DOCKER_HOST (or the target's host option) to unix:///path/docker.sock or tcp://host:port"
          : "set CONTAINER_RUNTIME_ENDPOINT (or the target's endpoint option) to unix:///path/containerd.sock",
      fields: { endpoint: text, source },
    },
  );
}
