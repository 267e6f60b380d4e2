// `ferry agent` as a process next to a real Distribution registry whose notifications.endpoints
// point at the agent with the bearer secret: readiness as images arrive, pushes pulled within
// seconds, refusals, list reloads (pinning and unpinning), kill -9 mid-pull, SIGTERM.
import assert from "node:assert/strict";
import { request } from "node:http";
import { chmod, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { pushImage } from "../fixtures/images.ts";
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts";
import { freePort, type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import {
  describeRun,
  entriesFor,
  type FerryProcess,
  type FerryResult,
  ferry,
  ingestFiles,
  removeDir,
  startFerry,
  tempDir,
  verifiedBlobs,
  until as pollUntil,
} from "./cli.ts";

const SECRET = "agent-test-secret-6f1c";
const PINNED = "dev.ferry.pinned";

interface AgentProcess {
  url: string;
  proc: FerryProcess;
  log(): string;
  stop(): Promise<FerryResult>;
}

interface Answer {
  status: number;
  body: string;
}

function call(url: string, method = "GET", body?: string, headers: Record<string, string> = {}) {
  return new Promise<Answer>((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
      );
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Polls like the shared until(), a probe that throws counting as "not yet". */
const until = <T>(what: string, probe: () => Promise<T | undefined>, ms = 15_000): Promise<T> =>
  pollUntil(what, () => probe().catch(() => undefined), ms);

interface StatusImage {
  image: string;
  source: string;
  targets: { store: { state: string; digest?: string; lastPulled?: string } };
}

/** In the store: pulled, or found present by a later pass (a push of a listed image, a schedule). */
async function held(agent: AgentProcess, image: string): Promise<true | undefined> {
  const state = await storeState(agent, image);
  return state === "pulled" || state === "present" ? true : undefined;
}

async function storeState(agent: AgentProcess, image: string): Promise<string | undefined> {
  const doc = JSON.parse((await call(`${agent.url}/status`)).body) as { images: StatusImage[] };
  return doc.images.find((i) => i.image === image)?.targets.store.state;
}

describe("ferry agent with a Distribution registry's notifications", () => {
  let work: string;
  let registry: RunningRegistry;
  let proxy: RunningProxy;
  let port: number;
  let store: string;
  let list: string;
  let reg: string;
  const agents: AgentProcess[] = [];

  /** The one-line form, or (config: true) the same settings from agent.yaml. */
  async function startAgent(options: { config?: boolean } = {}): Promise<AgentProcess> {
    const settings = options.config
      ? ["-c", join(work, "agent.yaml")]
      : [
          "-f",
          list,
          "--listen",
          `127.0.0.1:${port}`,
          "--webhook-secret-file",
          join(work, "secret"),
          "--allow",
          `${reg}/team/app`,
          "--allow",
          `${proxy.host}/team`,
          "--grace",
          "2s",
        ];
    const proc = startFerry(["agent", ...settings, "--store", store, "-v"]);
    let stderr = "";
    proc.child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString("utf8");
    });
    let stopped: Promise<FerryResult> | undefined;
    const agent: AgentProcess = {
      url: `http://127.0.0.1:${port}`,
      proc,
      log: () => stderr,
      stop: () => {
        if (stopped === undefined) {
          if (proc.child.exitCode === null && proc.child.signalCode === null)
            proc.child.kill("SIGTERM");
          stopped = proc.result;
        }
        return stopped;
      },
    };
    agents.push(agent);
    await until("the agent to listen", async () =>
      stderr.includes('"msg":"agent listening"') ? true : undefined,
    ).catch(async (err) => {
      proc.child.kill("SIGKILL");
      throw new Error(`${(err as Error).message}\n${describeRun(await proc.result)}`);
    });
    return agent;
  }

  const image = (name: string, seed: string, bytes = 2048) => ({
    layers: [[{ path: `${name}/data.bin`, size: bytes, seed }]],
  });

  before(async () => {
    work = await tempDir("agent");
    store = join(work, "store");
    list = join(work, "images.yaml");
    port = await freePort();
    registry = await startRegistry({
      extraConfig: {
        notifications: {
          endpoints: [
            {
              name: "ferry",
              url: `http://127.0.0.1:${port}/webhooks/distribution`,
              headers: { Authorization: [`Bearer ${SECRET}`] },
              timeout: "2s",
              threshold: 3,
              backoff: "1s",
            },
          ],
        },
      },
    });
    reg = registry.host;
    // Big enough that a pull through a 4 MB/s link is caught in the middle.
    proxy = await startProxy({ target: reg, bytesPerSecond: 4_000_000 });
    await writeFile(join(work, "secret"), `${SECRET}\n`);
    await chmod(join(work, "secret"), 0o600);
    await Promise.all([
      pushImage(reg, "team/base", "1", image("base", "b1")),
      pushImage(reg, "team/new", "1", image("new", "n1")),
      pushImage(reg, "team/big", "1", image("big", "g1", 12_000_000)),
    ]);
    await writeFile(list, `images:\n  - ${reg}/team/base:1\n  - ${reg}/team/app:1\n`);
    await writeFile(
      join(work, "agent.yaml"),
      [
        "images: images.yaml",
        `listen: 127.0.0.1:${port}`,
        "webhooks:",
        "  secretFile: secret",
        `  allow: [${reg}/team/app, ${proxy.host}/team]`,
        'schedule: "*/2 * * * * *"',
        "",
      ].join("\n"),
    );
  });

  after(async () => {
    if (process.env.AGENT_TEST_LOG) for (const a of agents) process.stderr.write(a.log());
    for (const a of agents) {
      a.proc.child.kill("SIGKILL");
      await a.proc.result;
    }
    await proxy?.stop();
    await registry?.stop();
    await removeDir(work);
  });

  let agent: AgentProcess;

  test("/readyz is 503 while a listed image is missing, 200 once a push brings it", async () => {
    agent = await startAgent();
    assert.equal((await call(`${agent.url}/healthz`)).status, 200);
    await until("base:1 in the store", () => held(agent, `${reg}/team/base:1`));
    await until("app:1 to fail", async () =>
      (await storeState(agent, `${reg}/team/app:1`)) === "failed" ? true : undefined,
    );
    const missing = await call(`${agent.url}/readyz`);
    assert.equal(missing.status, 503);
    assert.match(missing.body, new RegExp(`${reg}/team/app:1`));
    const pushed = Date.now();
    await pushImage(reg, "team/app", "1", image("app", "a1"));
    await until("/readyz 200", async () =>
      (await call(`${agent.url}/readyz`)).status === 200 ? true : undefined,
    );
    assert.ok(Date.now() - pushed < 10_000);
    const [entry] = await entriesFor(store, `${reg}/team/base:1`);
    assert.equal(entry?.annotations?.[PINNED], "true", "required images are pinned");
  });

  test("a push of a new tag is pulled into the store within seconds; a re-pushed tag moves", async () => {
    const built = await pushImage(reg, "team/app", "2", image("app", "a2"));
    const ref = `${reg}/team/app:2`;
    await until("app:2 pulled", () => held(agent, ref), 10_000);
    const [entry] = await entriesFor(store, ref);
    assert.equal(entry?.digest, built.manifestDigest);
    assert.equal(entry?.annotations?.[PINNED], undefined, "webhook images are not pinned");
    const metrics = (await call(`${agent.url}/metrics`)).body;
    assert.match(metrics, /^ferry_agent_pulled_bytes_total\{target="store"\} [1-9]\d*$/m);
    assert.match(
      metrics,
      /^ferry_agent_webhooks_total\{source="distribution",status="202"\} [1-9]/m,
    );
    assert.match(metrics, /^ferry_agent_store_bytes [1-9]\d*$/m);
    // The same tag pushed again with other content: the agent follows it.
    const moved = await pushImage(reg, "team/app", "2", image("app", "a2-moved"));
    await until("app:2 moved", async () =>
      (await entriesFor(store, ref))[0]?.digest === moved.manifestDigest ? true : undefined,
    );
    assert.match(
      agent.log(),
      /"msg":"webhook","source":"distribution","accepted":\[[^\]]*team\/app:2/,
    );
  });

  test("a bad secret is 401; a repository off the allow-list is 403 and never pulled", async () => {
    const envelope = JSON.stringify({
      events: [
        {
          action: "push",
          target: {
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            repository: "team/app",
            tag: "3",
          },
          request: { host: reg },
        },
      ],
    });
    const bad = await call(`${agent.url}/webhooks/distribution`, "POST", envelope, {
      authorization: "Bearer wrong",
    });
    assert.equal(bad.status, 401);
    const harbor = JSON.stringify({
      type: "PUSH_ARTIFACT",
      occur_at: 1,
      operator: "ci",
      event_data: {
        resources: [{ digest: "", tag: "1", resource_url: `${reg}/team/new:1` }],
        repository: { name: "new", namespace: "team", repo_full_name: "team/new" },
      },
    });
    const refused = await call(`${agent.url}/webhooks/harbor`, "POST", harbor, {
      authorization: `Bearer ${SECRET}`,
    });
    assert.equal(refused.status, 403);
    // Through the registry too: its notification is answered 202 (a 403 would stall its queue),
    // and the refusal logged; the image is not pulled.
    await pushImage(reg, "team/new", "2", image("new", "n2"));
    await until("the refusal in the log", async () =>
      agent.log().includes(`"refused":["${reg}/team/new:2"]`) ? true : undefined,
    );
    assert.deepEqual(await entriesFor(store, `${reg}/team/new:1`), []);
    assert.deepEqual(await entriesFor(store, `${reg}/team/new:2`), []);
    assert.equal(await storeState(agent, `${reg}/team/new:2`), undefined);
  });

  test("an edited list is reloaded: the added image pulled, the removed one unpinned", async () => {
    await writeFile(list, `images:\n  - ${reg}/team/app:1\n  - ${reg}/team/new:1\n`);
    await until("new:1 pulled", () => held(agent, `${reg}/team/new:1`));
    const [removed] = await entriesFor(store, `${reg}/team/base:1`);
    assert.ok(removed, "the image stays in the store");
    assert.equal(removed.annotations?.[PINNED], undefined, "but is no longer pinned");
    const [added] = await entriesFor(store, `${reg}/team/new:1`);
    assert.equal(added?.annotations?.[PINNED], "true");
    assert.equal(await storeState(agent, `${reg}/team/base:1`), undefined);
  });

  test("kill -9 in the middle of a pull; the restarted agent completes it and the store verifies", async () => {
    const big = `${proxy.host}/team/big:1`;
    await writeFile(list, `images:\n  - ${reg}/team/app:1\n  - ${reg}/team/new:1\n  - ${big}\n`);
    // Killed once big:1's layer is part-way in (no other blob here is that large), so the
    // restarted agent has bytes to resume from with a Range request.
    await until("big:1's layer part-way downloaded", async () => {
      for (const name of await ingestFiles(store)) {
        if (!name.endsWith(".partial")) continue;
        if ((await stat(join(store, "ferry", "ingest", name))).size > 100_000) return true;
      }
      return undefined;
    });
    agent.proc.child.kill("SIGKILL");
    const killed = await agent.proc.result;
    assert.equal(killed.signal, "SIGKILL");
    assert.deepEqual(await entriesFor(store, big), [], "killed before the image was recorded");
    agent = await startAgent({ config: true }); // the same settings, from agent.yaml
    await until("big:1 pulled after the restart", () => held(agent, big), 20_000);
    assert.equal((await call(`${agent.url}/readyz`)).status, 200);
    const ranges = proxy.requests.filter((r) => r.range !== undefined);
    assert.ok(ranges.length > 0, "the download resumed with a Range request");
  });

  test("SIGTERM during a pull: exits 0 within the grace period; the store verifies", async () => {
    await pushImage(reg, "team/big", "2", image("big", "g2", 12_000_000));
    const big2 = `${proxy.host}/team/big:2`;
    const listed = `images:\n  - ${reg}/team/app:1\n  - ${reg}/team/new:1\n  - ${proxy.host}/team/big:1\n`;
    await writeFile(list, `${listed}  - ${big2}\n`);
    await until("big:2 being pulled", async () =>
      (await storeState(agent, big2)) === "pulling" ? true : undefined,
    );
    const stopping = Date.now();
    const result = await agent.stop();
    assert.equal(result.code, 0, describeRun(result));
    assert.ok(
      Date.now() - stopping < 10_000,
      "in-flight pulls are given a grace period, not forever",
    );
    assert.match(result.stderr, /"msg":"agent stopped"/);
    const [finished] = await entriesFor(store, big2);
    assert.ok(finished, "the pull in flight finished within the grace period (20 s by default)");
    assert.match(
      result.stderr,
      /"schedule tick skipped|"msg":"warming","image":"[^"]+","reasons":\["schedule"\]/,
    );
    await verifiedBlobs(store);
    const fsck = await ferry(["fsck", "--store", store]);
    assert.equal(fsck.code, 0, describeRun(fsck));
  });
});
