import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { until } from "../../test/fixtures/until.ts";
import { formatReference, parseReference, type Reference } from "../reference/index.ts";
import type { ImagePresence, Target } from "../runtime/index.ts";
import { FreshnessGate } from "./freshness.ts";
import { createPushHandler } from "./pushes.ts";
import { PullQueue } from "./queue.ts";
import { AgentState } from "./state.ts";
import type { ImageEntry, WarmFunction, WarmResult } from "./types.ts";

const A = `sha256:${"a".repeat(64)}`;
const B = `sha256:${"b".repeat(64)}`;

function fakeTarget(held: Map<string, string>): Target {
  return {
    kind: "store",
    name: "store (test)",
    ping: async () => {},
    status: async (ref: Reference): Promise<ImagePresence> => {
      const digest = held.get(formatReference(ref));
      return digest === undefined
        ? { present: false }
        : {
            present: true,
            id: "sha256:manifest",
            repoDigests: [`${ref.domain}/${ref.path}@${digest}`],
          };
    },
    pull: async () => ({ present: true }),
    close: async () => {},
  };
}

describe("freshness gate", () => {
  const ref = parseReference("r.example/team/app:latest");
  const held = new Map([[formatReference(ref), A]]);
  const target = fakeTarget(held);

  it("a push of another digest makes a held tag look missing until it is pulled", async () => {
    const gate = new FreshnessGate();
    const wrapped = gate.wrap(target);
    assert.equal((await wrapped.status(ref)).present, true, "no announcement: as the target says");
    gate.announce(ref, B, [target]);
    assert.equal((await wrapped.status(ref)).present, false);
    gate.settle({ image: formatReference(ref), target: "store", required: true, state: "pulled" });
    assert.equal((await wrapped.status(ref)).present, true);
  });

  it("a push of the digest already held changes nothing; one without a digest asks for one re-pull", async () => {
    const gate = new FreshnessGate();
    const wrapped = gate.wrap(target);
    gate.announce(ref, A, [target]);
    assert.equal((await wrapped.status(ref)).present, true);
    gate.announce(ref, undefined, [target]);
    assert.equal((await wrapped.status(ref)).present, false);
    gate.settle({ image: formatReference(ref), target: "store", required: true, state: "present" });
    assert.equal((await wrapped.status(ref)).present, true);
  });

  it("other tags are untouched", async () => {
    const gate = new FreshnessGate();
    const wrapped = gate.wrap(target);
    gate.announce(parseReference("r.example/team/app:2"), B, [target]);
    assert.equal((await wrapped.status(ref)).present, true);
  });
});

describe("push handler", () => {
  const entry = (text: string, extra: Partial<ImageEntry> = {}): ImageEntry => ({
    text,
    ref: parseReference(text),
    platform: undefined,
    required: true,
    ...extra,
  });

  it("retries briefly while the registry has not linked the pushed tag yet", async () => {
    const calls: string[] = [];
    const warm: WarmFunction = async (images) => {
      const image = formatReference(images[0]!.ref);
      calls.push(image);
      const early = calls.length <= 2;
      const r: WarmResult = early
        ? {
            image,
            target: "store",
            required: false,
            state: "failed",
            error: { code: "FERRY_MANIFEST_UNKNOWN", message: "manifest unknown" },
          }
        : { image, target: "store", required: false, state: "pulled" };
      return [r];
    };
    const queue = new PullQueue({ warm });
    const state = new AgentState(["store"]);
    const list = { images: [], targets: undefined, source: "test" };
    const onPush = createPushHandler({
      queue,
      state,
      gate: new FreshnessGate(),
      targets: [],
      list: () => list,
      log: () => {},
      delays: [5, 5, 5],
    });
    onPush([{ ref: parseReference("r.example/team/app:2"), digest: A }], "distribution");
    await until("the third pull", () => calls.length >= 3);
    await queue.close(100);
    assert.deepEqual(
      calls,
      ["r.example/team/app:2", "r.example/team/app:2", "r.example/team/app:2"],
      "no pull after the one that found the tag",
    );
  });

  it("a re-pushed tag whose pull still found the previous digest is pulled again", async () => {
    const pulled: string[] = [];
    const warm: WarmFunction = async (images) => {
      const image = formatReference(images[0]!.ref);
      // The registry links the tag to B only after it announced the push.
      const digest = pulled.length === 0 ? A : B;
      pulled.push(digest);
      return [{ image, target: "store", required: false, state: "pulled", digest }];
    };
    const queue = new PullQueue({ warm });
    const list = { images: [], targets: undefined, source: "test" };
    const onPush = createPushHandler({
      queue,
      state: new AgentState(["store"]),
      gate: new FreshnessGate(),
      targets: [],
      list: () => list,
      log: () => {},
      delays: [5, 5, 5],
    });
    onPush([{ ref: parseReference("r.example/team/app:2"), digest: B }], "distribution");
    await until("the second pull", () => pulled.length >= 2);
    assert.deepEqual(pulled, [A, B]);
    await queue.close(100);
    assert.deepEqual(pulled, [A, B], "no pull after the announced digest arrived");
  });

  it("a listed image keeps the list's settings; a new tag is optional, on the list's platform", async () => {
    const seen: ImageEntry[] = [];
    const warm: WarmFunction = async (images) => {
      seen.push(images[0]!);
      return [];
    };
    const queue = new PullQueue({ warm });
    const state = new AgentState(["store"]);
    const listed = entry("r.example/team/app:1", { platform: "linux/arm64" });
    const list = { images: [listed], targets: undefined, source: "test" };
    state.setList(list.images);
    const onPush = createPushHandler({
      queue,
      state,
      gate: new FreshnessGate(),
      targets: [],
      list: () => list,
      log: () => {},
    });
    onPush(
      [
        { ref: parseReference("r.example/team/app:1"), digest: A },
        { ref: parseReference("r.example/team/app:2"), digest: B },
      ],
      "distribution",
    );
    await until("both pushed tags queued", () => seen.length >= 2);
    assert.deepEqual(
      seen.map((e) => [e.text, e.platform, e.required]),
      [
        ["r.example/team/app:1", "linux/arm64", true],
        ["r.example/team/app:2", "linux/arm64", false],
      ],
    );
    assert.deepEqual(
      state.images().map((i) => `${i.image} ${i.source}`),
      ["r.example/team/app:1 list", "r.example/team/app:2 webhook"],
    );
    await queue.close(100);
  });
});
