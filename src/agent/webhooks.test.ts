import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, it } from "node:test";
import { isFerryError } from "../observe/index.ts";
import { formatReference, parseReference } from "../reference/index.ts";
import {
  AllowList,
  authorize,
  decideWebhook,
  normalizePrefix,
  parsePush,
  WEBHOOK_KINDS,
  type WebhookKind,
  type WebhookRequest,
} from "./webhooks.ts";

const SECRET = "s3cret-token-0123";
const DIGEST_A = `sha256:${"a".repeat(64)}`;
const DIGEST_B = `sha256:${"b".repeat(64)}`;

// ---- payloads written from each sender's documented format ----

/** Distribution 2.8: one envelope may hold blob pushes, manifest pushes and pulls. */
function distributionEnvelope(repository: string, tag: string, host = "registry.internal:5000") {
  const request = {
    id: "f1b2",
    addr: "10.0.0.7:51234",
    host,
    method: "PUT",
    useragent: "skopeo/1.9.3",
  };
  const source = { addr: "registry-0:5000", instanceID: "0d1e" };
  return {
    events: [
      {
        id: "e1",
        timestamp: "2026-11-23T10:00:00.000Z",
        action: "push",
        target: {
          mediaType: "application/octet-stream",
          size: 2811,
          digest: DIGEST_B,
          length: 2811,
          repository,
          url: `http://${host}/v2/${repository}/blobs/${DIGEST_B}`,
        },
        request,
        actor: {},
        source,
      },
      {
        id: "e2",
        timestamp: "2026-11-23T10:00:00.100Z",
        action: "push",
        target: {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          size: 529,
          digest: DIGEST_A,
          length: 529,
          repository,
          url: `http://${host}/v2/${repository}/manifests/${DIGEST_A}`,
          tag,
        },
        request,
        actor: { name: "ci" },
        source,
      },
      {
        id: "e3",
        timestamp: "2026-11-23T10:00:01.000Z",
        action: "pull",
        target: {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: DIGEST_A,
          repository,
          tag,
        },
        request: { ...request, method: "GET" },
        actor: {},
        source,
      },
    ],
  };
}

const DOCKER_HUB = {
  callback_url:
    "https://registry.hub.docker.com/u/acme/web/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/",
  push_data: { pushed_at: 1763892000, pusher: "acmebot", tag: "1.4.2" },
  repository: {
    comment_count: 0,
    date_created: 1700000000,
    description: "",
    is_official: false,
    is_private: true,
    is_trusted: false,
    name: "web",
    namespace: "acme",
    owner: "acme",
    repo_name: "acme/web",
    repo_url: "https://hub.docker.com/r/acme/web",
    star_count: 0,
    status: "Active",
  },
};

const GITHUB = {
  action: "published",
  registry_package: {
    id: 551,
    name: "Api-Server",
    namespace: "Acme-Corp",
    description: "",
    ecosystem: "CONTAINER",
    package_type: "CONTAINER",
    html_url: "https://github.com/orgs/Acme-Corp/packages/container/package/Api-Server",
    created_at: "2026-11-01T00:00:00Z",
    updated_at: "2026-11-23T10:00:00Z",
    owner: { login: "Acme-Corp", id: 9, type: "Organization" },
    package_version: {
      id: 9001,
      version: DIGEST_A,
      name: DIGEST_A,
      description: "",
      summary: "",
      manifest: "",
      html_url: "https://github.com/orgs/Acme-Corp/packages/container/Api-Server/9001",
      target_commitish: "main",
      target_oid: "deadbeef",
      created_at: "2026-11-23T10:00:00Z",
      updated_at: "2026-11-23T10:00:00Z",
      metadata: [],
      container_metadata: {
        tag: { name: "v2.1.0", digest: DIGEST_A },
        labels: { description: "", source: "", revision: "deadbeef", image_url: "", licenses: "" },
        manifest: {},
      },
      package_files: [],
      installation_command: "docker pull ghcr.io/acme-corp/api-server:v2.1.0",
      package_url: "ghcr.io/acme-corp/api-server:v2.1.0",
    },
    registry: {
      about_url:
        "https://docs.github.com/packages/learn-github-packages/introduction-to-github-packages",
      name: "GitHub CONTAINER registry",
      type: "CONTAINER",
      url: "https://ghcr.io/acme-corp",
      vendor: "GitHub Inc",
    },
  },
  organization: { login: "Acme-Corp", id: 9 },
  sender: { login: "octocat", id: 1 },
};

const HARBOR = {
  type: "PUSH_ARTIFACT",
  occur_at: 1763892000,
  operator: "robot$ci",
  event_data: {
    resources: [
      { digest: DIGEST_A, tag: "2026.11", resource_url: "harbor.example.com/platform/api:2026.11" },
      { digest: DIGEST_B, tag: "", resource_url: `harbor.example.com/platform/api@${DIGEST_B}` },
    ],
    repository: {
      date_created: 1700000000,
      name: "api",
      namespace: "platform",
      repo_full_name: "platform/api",
      repo_type: "private",
    },
  },
};

function request(
  kind: WebhookKind,
  payload: unknown,
  extra: { headers?: Record<string, string>; query?: string } = {},
): WebhookRequest {
  return {
    kind,
    headers: extra.headers ?? { authorization: `Bearer ${SECRET}` },
    query: new URLSearchParams(extra.query ?? ""),
    body: Buffer.from(typeof payload === "string" ? payload : JSON.stringify(payload)),
  };
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const names = (kind: WebhookKind, payload: unknown, headers = {}) =>
  parsePush(kind, json(payload), { headers }).images.map((i) => formatReference(i.ref));

describe("webhook formats", () => {
  it("each format has its own reader: an empty object is refused in each format's own words", () => {
    const refusals = WEBHOOK_KINDS.map((kind) => {
      try {
        parsePush(kind, json({}));
      } catch (err) {
        assert.ok(isFerryError(err) && err.code === "FERRY_INVALID_ARGUMENT", String(err));
        return err.message;
      }
      return assert.fail(`${kind} took an empty object`);
    });
    assert.equal(new Set(refusals).size, WEBHOOK_KINDS.length, refusals.join("\n"));
  });

  it("Distribution: only the tagged manifest push names an image; blob pushes and pulls are ignored", () => {
    const parsed = parsePush("distribution", json(distributionEnvelope("team/web", "1.2")));
    assert.deepEqual(
      parsed.images.map((i) => [formatReference(i.ref), i.digest]),
      [["registry.internal:5000/team/web:1.2", DIGEST_A]],
    );
    assert.equal(parsed.ignored, 2);
  });

  it("Distribution: a configured registry host replaces the Host the registry saw", () => {
    const parsed = parsePush(
      "distribution",
      json(distributionEnvelope("team/web", "1.2", "10.1.2.3:5000")),
      {
        registryHost: "registry.example.com",
      },
    );
    assert.equal(formatReference(parsed.images[0]!.ref), "registry.example.com/team/web:1.2");
  });

  it("Distribution: a manifest pushed by digest only (no tag) names no image", () => {
    const envelope = distributionEnvelope("team/web", "x");
    delete (envelope.events[1]!.target as { tag?: string }).tag;
    assert.deepEqual(names("distribution", envelope), []);
  });

  it("Docker Hub: repo_name and push_data.tag, always on Docker Hub", () => {
    assert.deepEqual(names("dockerhub", DOCKER_HUB), ["docker.io/acme/web:1.4.2"]);
    const official = {
      ...DOCKER_HUB,
      repository: { ...DOCKER_HUB.repository, repo_name: "nginx" },
    };
    assert.deepEqual(names("dockerhub", official), ["docker.io/library/nginx:1.4.2"]);
  });

  it("GitHub registry_package published: ghcr.io, lower-cased owner and name, the container tag", () => {
    const parsed = parsePush("github", json(GITHUB), {
      headers: { "x-github-event": "registry_package" },
    });
    assert.deepEqual(
      parsed.images.map((i) => [formatReference(i.ref), i.digest]),
      [["ghcr.io/acme-corp/api-server:v2.1.0", DIGEST_A]],
    );
  });

  it("GitHub: pings, other actions, untagged versions and non-container packages name nothing", () => {
    assert.deepEqual(
      names("github", { zen: "Keep it simple.", hook_id: 1 }, { "x-github-event": "ping" }),
      [],
    );
    assert.deepEqual(names("github", { ...GITHUB, action: "updated" }), []);
    const pkg = GITHUB.registry_package;
    const untagged = {
      ...GITHUB,
      registry_package: {
        ...pkg,
        package_version: {
          ...pkg.package_version,
          container_metadata: { tag: { name: "", digest: DIGEST_A } },
        },
      },
    };
    assert.deepEqual(names("github", untagged), []);
    const npm = {
      ...GITHUB,
      registry_package: {
        ...pkg,
        ecosystem: "npm",
        package_type: "npm",
        package_version: { version: "1.0.0" },
      },
    };
    assert.deepEqual(names("github", npm), []);
  });

  it("Harbor PUSH_ARTIFACT: each tagged resource_url; untagged resources and other events are ignored", () => {
    const parsed = parsePush("harbor", json(HARBOR));
    assert.deepEqual(
      parsed.images.map((i) => [formatReference(i.ref), i.digest]),
      [["harbor.example.com/platform/api:2026.11", DIGEST_A]],
    );
    assert.equal(parsed.ignored, 1);
    assert.deepEqual(names("harbor", { ...HARBOR, type: "PULL_ARTIFACT" }), []);
    const cloudEvent = {
      specversion: "1.0",
      type: "harbor.artifact.pushed",
      data: HARBOR.event_data,
    };
    assert.deepEqual(names("harbor", cloudEvent), ["harbor.example.com/platform/api:2026.11"]);
  });

  it("a body that is not JSON, or not the format, is malformed (FERRY_INVALID_ARGUMENT)", () => {
    for (const [kind, body] of [
      ["distribution", "{not json"],
      ["distribution", "[]"],
      ["distribution", '{"events": "push"}'],
      ["dockerhub", '{"push_data": {"tag": "1"}}'],
      ["github", '{"action": "published"}'],
      ["harbor", '{"type": "PUSH_ARTIFACT"}'],
    ] as const) {
      assert.throws(
        () => parsePush(kind, Buffer.from(body)),
        { code: "FERRY_INVALID_ARGUMENT" },
        `${kind}: ${body}`,
      );
    }
  });
});

describe("webhook authorization", () => {
  const body = JSON.stringify(GITHUB);
  const sign = (key: string) => `sha256=${createHmac("sha256", key).update(body).digest("hex")}`;

  it("Authorization: Bearer SECRET", () => {
    assert.deepEqual(authorize(request("distribution", {}), SECRET), {
      ok: true,
      method: "bearer",
    });
    const wrong = request("distribution", {}, { headers: { authorization: `Bearer ${SECRET}x` } });
    assert.equal(authorize(wrong, SECRET).ok, false);
    const basic = request("distribution", {}, { headers: { authorization: `Basic ${SECRET}` } });
    assert.equal(authorize(basic, SECRET).ok, false);
  });

  it("?token=SECRET (Docker Hub can set nothing else)", () => {
    const good = request("dockerhub", DOCKER_HUB, { headers: {}, query: `token=${SECRET}` });
    assert.deepEqual(authorize(good, SECRET), { ok: true, method: "token" });
    const bad = request("dockerhub", DOCKER_HUB, { headers: {}, query: "token=guess" });
    assert.deepEqual(authorize(bad, SECRET), { ok: false, reason: "wrong secret (?token)" });
  });

  it("GitHub X-Hub-Signature-256: HMAC-SHA256 of the raw body", () => {
    const good = request("github", body, { headers: { "x-hub-signature-256": sign(SECRET) } });
    assert.deepEqual(authorize(good, SECRET), { ok: true, method: "signature" });
    const otherKey = request("github", body, { headers: { "x-hub-signature-256": sign("other") } });
    assert.equal(authorize(otherKey, SECRET).ok, false);
    const tampered = { ...good, body: Buffer.from(body.replace("v2.1.0", "v2.1.1")) };
    assert.equal(authorize(tampered, SECRET).ok, false);
    // A signature is only GitHub's way; elsewhere it proves nothing.
    const elsewhere = { ...good, kind: "harbor" as const };
    assert.equal(authorize(elsewhere, SECRET).ok, false);
  });

  it("no credentials at all is refused, naming what is expected", () => {
    const none = authorize(request("harbor", HARBOR, { headers: {} }), SECRET);
    assert.equal(none.ok, false);
    assert.match((none as { reason: string }).reason, /no credentials/);
  });
});

describe("allow-list", () => {
  const ref = (text: string) => parseReference(text);

  it("matches whole path segments", () => {
    const allow = new AllowList(["registry.example.com/team", "ghcr.io/acme-corp/"]);
    assert.ok(allow.allows(ref("registry.example.com/team/web:1")));
    assert.ok(allow.allows(ref("registry.example.com/team/sub/web:1")));
    assert.ok(!allow.allows(ref("registry.example.com/team-b/web:1")));
    assert.ok(!allow.allows(ref("registry.example.com/other/web:1")));
    assert.ok(allow.allows(ref("ghcr.io/acme-corp/api-server:v2")));
  });

  it("names without a registry host are Docker Hub namespaces; * allows anything", () => {
    assert.equal(normalizePrefix("acme"), "docker.io/acme");
    assert.equal(normalizePrefix("library/nginx"), "docker.io/library/nginx");
    assert.equal(normalizePrefix("index.docker.io/acme/"), "docker.io/acme");
    assert.equal(normalizePrefix("127.0.0.1:5000"), "127.0.0.1:5000");
    assert.ok(new AllowList(["acme"]).allows(ref("acme/web")));
    assert.ok(!new AllowList(["acme"]).allows(ref("nginx")));
    assert.ok(new AllowList(["*"]).allows(ref("anything.example/x/y:z")));
  });

  it("refuses prefixes that are not repository names", () => {
    for (const bad of ["", "Team/Web", "registry.example.com/team@sha256", "a b"]) {
      assert.throws(() => normalizePrefix(bad), { code: "FERRY_INVALID_ARGUMENT" }, bad);
    }
  });

  it("listed images are allowed whatever the prefixes", () => {
    const allow = new AllowList(
      ["ghcr.io/acme-corp"],
      [ref("registry.internal:5000/team/web:1.0")],
    );
    assert.ok(allow.allows(ref("registry.internal:5000/team/web:1.0")));
    assert.ok(!allow.allows(ref("registry.internal:5000/team/web:1.1")));
  });

  it("by default allows the repositories of the listed images", () => {
    const allow = AllowList.ofRepositories([ref("registry.internal:5000/team/web:1.0")]);
    assert.ok(allow.allows(ref("registry.internal:5000/team/web:1.1")));
    assert.ok(!allow.allows(ref("registry.internal:5000/team/api:1.1")));
  });
});

describe("webhook decisions", () => {
  const policy = { secret: SECRET, allow: new AllowList(["registry.internal:5000/team"]) };

  it("202 with the allowed images", () => {
    const d = decideWebhook(request("distribution", distributionEnvelope("team/web", "2")), policy);
    assert.equal(d.status, 202);
    assert.deepEqual(d.status === 202 ? d.accepted.map((i) => formatReference(i.ref)) : [], [
      "registry.internal:5000/team/web:2",
    ]);
  });

  it("401 on a bad secret, before the body is even parsed", () => {
    const d = decideWebhook(
      request("distribution", "{not json", { headers: { authorization: "Bearer nope" } }),
      policy,
    );
    assert.equal(d.status, 401);
  });

  it("400 on malformed JSON from an authorized sender", () => {
    assert.equal(decideWebhook(request("harbor", "{not json"), policy).status, 400);
  });

  it("403 when nothing named is allowed", () => {
    const d = decideWebhook(request("harbor", HARBOR), policy);
    assert.equal(d.status, 403);
    assert.deepEqual(d.status === 403 ? d.refused : [], [
      "harbor.example.com/platform/api:2026.11",
    ]);
  });

  it("Distribution gets 202 for a refused repository (it would retry a 403 forever), with the refusal listed", () => {
    const d = decideWebhook(
      request("distribution", distributionEnvelope("other/web", "2")),
      policy,
    );
    assert.equal(d.status, 202);
    assert.deepEqual(d.status === 202 ? [d.accepted.length, d.refused] : [], [
      0,
      ["registry.internal:5000/other/web:2"],
    ]);
  });

  it("202 with nothing to pull for notifications that name no image (blob pushes, pings)", () => {
    const blobOnly = distributionEnvelope("team/web", "2");
    blobOnly.events.splice(1, 1);
    const d = decideWebhook(request("distribution", blobOnly), policy);
    assert.deepEqual(d.status === 202 ? [d.accepted.length, d.ignored] : [], [0, 2]);
  });
});
