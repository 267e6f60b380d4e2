import assert from "node:assert/strict";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { Metrics } from "../observe/index.ts";
import { formatReference, parseReference } from "../reference/index.ts";
import { AgentState } from "./state.ts";
import { AgentMetrics } from "./metrics.ts";
import { createAgentRoutes } from "./status.ts";
import type { ImageEntry } from "./types.ts";
import { AllowList, MAX_WEBHOOK_BODY_BYTES, type PushedImage } from "./webhooks.ts";

const SECRET = "0123456789abcdef";
const entry = (text: string, required = true): ImageEntry => ({
  text,
  ref: parseReference(text),
  platform: undefined,
  required,
});

interface Answer {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

function call(
  base: string,
  method: string,
  path: string,
  body?: Buffer | string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString(),
          headers: res.headers,
        }),
      );
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("agent routes", () => {
  const state = new AgentState(["store", "containerd"]);
  state.setList([entry("r.example/team/web:1"), entry("r.example/team/extra:1", false)]);
  const pushed: PushedImage[] = [];
  const logs: Array<Record<string, unknown>> = [];
  let webhooksOn = true;
  const metrics = new AgentMetrics(new Metrics());
  let server: Server;
  let base: string;

  before(async () => {
    const routes = createAgentRoutes({
      node: "node-7",
      state,
      metrics,
      queueDepth: () => pushed.length,
      webhooks: () =>
        webhooksOn ? { secret: SECRET, allow: new AllowList(["r.example/team"]) } : undefined,
      onPush: (images) => pushed.push(...images),
      details: () => ({
        schedule: { cron: "*/30 * * * *" },
        // what a list, a policy or an error message might carry
        upstream: { url: "https://bob:hunter2@r.example/v2/", token: "tok-abcdef123456" },
        lastError: "registry said 401 to Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.sig",
        webhookSecretSet: true,
      }),
      log: (e) => logs.push(e),
    });
    server = createServer(routes);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it("/healthz answers while the process serves", async () => {
    assert.equal((await call(base, "GET", "/healthz")).status, 200);
  });

  it("/readyz: 503 naming what is missing, 200 once every required image is in every target", async () => {
    const before = await call(base, "GET", "/readyz");
    assert.equal(before.status, 503);
    const missing = JSON.parse(before.body).missing as Array<{ image: string; target: string }>;
    assert.deepEqual(
      missing.map((m) => `${m.image} ${m.target}`),
      ["r.example/team/web:1 store", "r.example/team/web:1 containerd"],
    );
    const image = "r.example/team/web:1";
    state.record({
      image,
      target: "store",
      required: true,
      state: "pulled",
      digest: "sha256:1",
      seconds: 2,
    });
    assert.equal((await call(base, "GET", "/readyz")).status, 503);
    state.record({
      image,
      target: "containerd",
      required: true,
      state: "present",
      digest: "sha256:1",
    });
    assert.equal((await call(base, "GET", "/readyz")).status, 200);
    // A re-pull in flight, or one the registry failed, leaves the copy held: still ready.
    state.record({ image, target: "store", required: true, state: "pulling" });
    assert.equal((await call(base, "GET", "/readyz")).status, 200);
    state.record({
      image,
      target: "store",
      required: true,
      state: "failed",
      error: { code: "FERRY_UNREACHABLE", message: "registry down" },
    });
    assert.equal((await call(base, "GET", "/readyz")).status, 200);
    // A target that cannot answer holds nothing usable.
    state.record({
      image,
      target: "containerd",
      required: true,
      state: "failed",
      error: { code: "FERRY_RUNTIME_UNAVAILABLE", message: "containerd is not answering" },
    });
    const failed = await call(base, "GET", "/readyz");
    assert.equal(failed.status, 503);
    assert.match(failed.body, /containerd is not answering/);
    state.record({
      image,
      target: "containerd",
      required: true,
      state: "present",
      digest: "sha256:1",
    });
    state.record({ image, target: "store", required: true, state: "pulled", digest: "sha256:2" });
  });

  it("/status: node, per image × target state, digest, last pulled and error, and the details", async () => {
    const doc = JSON.parse((await call(base, "GET", "/status")).body);
    assert.equal(doc.node, "node-7");
    const web = doc.images.find((i: { image: string }) => i.image === "r.example/team/web:1");
    assert.equal(web.targets.store.state, "pulled");
    assert.equal(web.targets.store.digest, "sha256:2");
    assert.ok(web.targets.store.lastPulled);
    assert.equal(web.targets.store.lastError.code, "FERRY_UNREACHABLE");
    assert.equal(web.targets.containerd.state, "present");
    const extra = doc.images.find((i: { image: string }) => i.image === "r.example/team/extra:1");
    assert.equal(extra.targets.store.state, "unknown");
    assert.equal(doc.schedule.cron, "*/30 * * * *");
  });

  it("/status redacts secrets as the mirror's does: secret-named fields, URL userinfo, bearer tokens", async () => {
    const answer = await call(base, "GET", "/status");
    assert.equal(answer.status, 200);
    for (const secret of ["hunter2", "tok-abcdef123456", "eyJhbGciOiJIUzI1NiJ9"])
      assert.ok(!answer.body.includes(secret), `${secret} is not served`);
    const doc = JSON.parse(answer.body);
    assert.equal(doc.upstream.url, "https://[redacted]@r.example/v2/");
    assert.equal(doc.upstream.token, "[redacted]");
    assert.match(doc.lastError, /Bearer \[redacted\]/);
    assert.equal(doc.webhookSecretSet, true, "whether a secret is set is not a secret");
    assert.equal(doc.node, "node-7");
  });

  it("/metrics in the Prometheus text format", async () => {
    metrics.pull({ image: "x", target: "store", required: true, state: "pulled", seconds: 1.5 });
    metrics.pull({
      image: "x",
      target: "store",
      required: true,
      state: "failed",
      error: { code: "FERRY_UNREACHABLE", message: "" },
    });
    const answer = await call(base, "GET", "/metrics");
    assert.match(String(answer.headers["content-type"]), /text\/plain; version=0.0.4/);
    assert.match(answer.body, /^ferry_agent_pulls_total\{target="store",result="pulled"\} 1$/m);
    assert.match(
      answer.body,
      /^ferry_agent_pull_failures_total\{target="store",code="FERRY_UNREACHABLE"\} 1$/m,
    );
    assert.match(answer.body, /^ferry_agent_pull_seconds_total\{target="store"\} 1.5$/m);
    assert.match(answer.body, /^ferry_agent_queue_depth \d+$/m);
    assert.match(answer.body, /^ferry_agent_ready 1$/m);
  });

  const envelope = (repository: string) =>
    JSON.stringify({
      events: [
        {
          action: "push",
          target: {
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            repository,
            tag: "2",
            digest: "sha256:9",
          },
          request: { host: "r.example", method: "PUT" },
        },
      ],
    });

  it("POST /webhooks/distribution: 202 at once, the image handed to the queue", async () => {
    const started = performance.now();
    const answer = await call(base, "POST", "/webhooks/distribution", envelope("team/web"), {
      authorization: `Bearer ${SECRET}`,
      "content-type": "application/vnd.docker.distribution.events.v1+json",
    });
    assert.equal(answer.status, 202);
    assert.ok(performance.now() - started < 500);
    assert.deepEqual(JSON.parse(answer.body).accepted, ["r.example/team/web:2"]);
    assert.deepEqual(
      pushed.map((p) => formatReference(p.ref)),
      ["r.example/team/web:2"],
    );
  });

  it("refusals: 401 bad secret, 400 malformed, 403 not allowed, 405 GET, 404 unknown format; each logged", async () => {
    const auth = { authorization: `Bearer ${SECRET}` };
    const count = logs.length;
    const hub = (repo: string) =>
      JSON.stringify({ push_data: { tag: "1" }, repository: { repo_name: repo } });
    assert.equal(
      (await call(base, "POST", "/webhooks/dockerhub?token=wrong", hub("team/web"))).status,
      401,
    );
    assert.equal((await call(base, "POST", "/webhooks/harbor", "{oops", auth)).status, 400);
    assert.equal(
      (await call(base, "POST", `/webhooks/dockerhub?token=${SECRET}`, hub("evil/web"))).status,
      403,
    );
    assert.equal((await call(base, "GET", "/webhooks/github")).status, 405);
    assert.equal((await call(base, "POST", "/webhooks/quay", "{}", auth)).status, 404);
    const refusals = logs.slice(count).filter((l) => l.msg === "webhook refused");
    assert.deepEqual(
      refusals.map((l) => l.status),
      [401, 400, 403, 405, 404],
    );
    assert.equal(pushed.length, 1, "nothing refused reached the queue");
  });

  it("413 for a body over 1 MiB, whether declared or streamed", async () => {
    const big = Buffer.alloc(MAX_WEBHOOK_BODY_BYTES + 1, 0x20);
    const declared = await call(base, "POST", "/webhooks/distribution", big, {
      authorization: `Bearer ${SECRET}`,
    });
    assert.equal(declared.status, 413);
    const streamed = await new Promise<number>((resolve, reject) => {
      const req = request(
        `${base}/webhooks/distribution`,
        { method: "POST", headers: { authorization: `Bearer ${SECRET}` }, agent: false },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      // chunked: no Content-Length to refuse on; the limit is counted as bytes arrive
      for (let i = 0; i < 17; i++) req.write(Buffer.alloc(64 * 1024, 0x20));
      req.end();
    });
    assert.equal(streamed, 413);
  });

  it("webhooks are off (404) when the agent has no secret", async () => {
    webhooksOn = false;
    const answer = await call(base, "POST", "/webhooks/distribution", envelope("team/web"), {
      authorization: `Bearer ${SECRET}`,
    });
    assert.equal(answer.status, 404);
    webhooksOn = true;
  });
});

describe("agent state", () => {
  it("list changes: added, changed, removed, and required images that stopped being required", () => {
    const state = new AgentState(["store"]);
    state.setList([entry("r.example/a:1"), entry("r.example/b:1"), entry("r.example/c:1")]);
    state.addWebhookImage(entry("r.example/a:2", false));
    const change = state.setList([
      entry("r.example/a:1"),
      entry("r.example/b:1", false),
      entry("r.example/d:1"),
    ]);
    assert.deepEqual(
      change.added.map((e) => e.text),
      ["r.example/d:1"],
    );
    assert.deepEqual(
      change.changed.map((e) => e.text),
      ["r.example/b:1"],
    );
    assert.deepEqual(change.removed, ["r.example/c:1"]);
    assert.deepEqual([...change.unrequired].sort(), ["r.example/b:1", "r.example/c:1"]);
    assert.deepEqual(
      state.images().map((i) => `${i.image} ${i.source}`),
      ["r.example/a:1 list", "r.example/b:1 list", "r.example/a:2 webhook", "r.example/d:1 list"],
    );
  });

  it("results for images no longer listed are dropped", () => {
    const state = new AgentState(["store"]);
    state.setList([]);
    state.record({ image: "r.example/gone:1", target: "store", required: true, state: "pulled" });
    assert.deepEqual(state.images(), []);
    assert.equal(state.readiness().ready, true);
  });
});
