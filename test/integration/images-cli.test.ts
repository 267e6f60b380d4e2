// Docker-like everyday commands: images (-q, --format, times, SIZE), inspect, tag, pull -q.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pushImage, pushIndex } from "../fixtures/images.ts";
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import {
  describeRun,
  entriesFor,
  type FerryResult,
  ferry,
  lines,
  removeDir,
  startFerry,
  tempDir,
  until,
} from "./cli.ts";

const hostArch = process.arch === "arm64" ? "arm64" : "amd64";
const otherArch = hostArch === "arm64" ? "amd64" : "arm64";

async function ok(args: string[]): Promise<FerryResult> {
  const r = await ferry(args);
  assert.equal(r.code, 0, describeRun(r));
  return r;
}

describe("images, inspect, tag and pull -q", () => {
  let registry: RunningRegistry;
  let slow: RunningProxy;
  let work: string;
  let store: string;
  const ref = (path: string) => `${registry.host}/${path}`;

  before(async () => {
    registry = await startRegistry();
    work = await tempDir("images-cli");
    store = join(work, "store");
    const small = (seed: string) => [[{ path: `app/${seed}`, size: 20_000, seed }]];
    await Promise.all([
      pushImage(registry.host, "feel/app", "1.0", { layers: small("one") }),
      pushImage(registry.host, "feel/app", "2.0", { layers: small("two") }),
      pushImage(registry.host, "feel/big", "v1", {
        layers: [[{ path: "big", size: 3_000_000, seed: "big" }]],
        level: 0,
      }),
      pushIndex(registry.host, "feel/multi", "v1", [
        { layers: small("m-host"), platform: { os: "linux", architecture: hostArch } },
        { layers: small("m-other"), platform: { os: "linux", architecture: otherArch } },
      ]),
    ]);
    // 3 MB at 1.5 MB/s: the big image finishes well after a small one pulled beside it.
    slow = await startProxy({ target: registry.host, bytesPerSecond: 1_500_000 });
    await ok([
      "pull",
      "-q",
      "--store",
      store,
      ref("feel/app:1.0"),
      ref("feel/app:2.0"),
      ref("feel/multi:v1"),
    ]);
  });

  after(async () => {
    await slow?.stop();
    await registry?.stop();
    await removeDir(work);
  });

  it("images -q prints only the references, one a line", async () => {
    const r = await ok(["images", "-q", "--store", store]);
    assert.deepEqual(lines(r.stdout), [
      ref("feel/app:1.0"),
      ref("feel/app:2.0"),
      ref("feel/multi:v1"),
    ]);
  });

  it("images --format fills a Go-like template, or prints JSON lines", async () => {
    const r = await ok([
      "images",
      "--format",
      "{{.Repository}}:{{.Tag}}\\t{{.ID}}",
      "--store",
      store,
    ]);
    const [first] = await entriesFor(store, ref("feel/app:1.0"));
    const id = first?.annotations?.["dev.ferry.source-digest"]?.slice(7, 19);
    assert.equal(lines(r.stdout)[0], `${ref("feel/app")}:1.0\t${id}`);
    assert.equal(lines(r.stdout).length, 3);

    const json = lines((await ok(["images", "--format", "json", "--store", store])).stdout).map(
      (l) => JSON.parse(l) as Record<string, string>,
    );
    assert.deepEqual(
      json.map((o) => `${o["Repository"]}:${o["Tag"]}`),
      [ref("feel/app:1.0"), ref("feel/app:2.0"), ref("feel/multi:v1")],
    );
    assert.match(json[0]?.["PulledSince"] ?? "", / ago$/);
  });

  it('images --format "table …" adds a header row and aligns the columns, as docker does', async () => {
    const custom = await ok([
      "images",
      "--format",
      "table {{.Repository}}\\t{{.Size}}",
      "--store",
      store,
    ]);
    const rows = lines(custom.stdout).map((l) => l.split(/ {3,}/));
    assert.deepEqual(rows[0], ["REPOSITORY", "SIZE"]);
    assert.deepEqual(
      rows.slice(1).map((r) => r[0]),
      [ref("feel/app"), ref("feel/app"), ref("feel/multi")],
    );
    const sizeColumn = (lines(custom.stdout)[0] ?? "").indexOf("SIZE");
    for (const line of lines(custom.stdout).slice(1))
      assert.match(line.slice(sizeColumn), /^\d+(\.\d+)?[kM]?B$/, "SIZE values line up under it");
    const plain = await ok(["images", "--format", "table", "--store", store]);
    assert.deepEqual(lines(plain.stdout)[0]?.split(/ {3,}/), [
      "REPOSITORY",
      "TAG",
      "IMAGE ID",
      "SIZE",
      "PULLED",
    ]);
  });

  it("images --format with an unknown field is a usage error naming the fields", async () => {
    const r = await ferry(["images", "--format", "{{.Created}}", "--store", store]);
    assert.equal(r.code, 2, describeRun(r));
    assert.match(r.stderr, /unknown placeholder \{\{\.Created\}\}/);
    assert.match(r.stderr, /hint: the fields are \{\{\.Repository\}\}/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  });

  it('the table says when each image was pulled as Docker does ("… ago")', async () => {
    const table = lines((await ok(["images", "--store", store])).stdout).map((l) =>
      l.split(/ {3,}/),
    );
    assert.deepEqual(table[0], ["REPOSITORY", "TAG", "DIGEST", "SIZE", "PULLED"]);
    for (const row of table.slice(1))
      assert.match(
        row[4] ?? "",
        /^(Less than a second|\d+ seconds?|About an? (minute|hour)|\d+ (minutes|hours|days|weeks|months|years)) ago$/,
      );
  });

  it("SIZE is the same in images, inspect and df -v, the index a multi-platform image came from included", async () => {
    const images = JSON.parse((await ok(["images", "--json", "--store", store])).stdout) as Array<{
      reference: string;
      size: number;
    }>;
    const df = JSON.parse((await ok(["df", "--json", "--store", store])).stdout) as {
      images: Array<{ reference: string; bytes: number }>;
    };
    const fromDf = Object.fromEntries(df.images.map((i) => [i.reference, i.bytes]));
    const inspected = JSON.parse(
      (await ok(["inspect", "--store", store, ref("feel/multi:v1")])).stdout,
    ) as { size: number };
    assert.equal(inspected.size, fromDf[ref("feel/multi:v1")], "inspect's size too");
    assert.deepEqual(Object.fromEntries(images.map((i) => [i.reference, i.size])), fromDf);
    const tableSizes = (text: string, column: number) =>
      lines(text)
        .slice(1)
        .map((l) => l.split(/ {3,}/)[column]);
    const dfTable = lines((await ok(["df", "-v", "--store", store])).stdout);
    const dfRows = dfTable.slice(dfTable.findIndex((l) => l.startsWith("REFERENCE"))).join("\n");
    assert.deepEqual(
      tableSizes((await ok(["images", "--store", store])).stdout, 3),
      tableSizes(dfRows, 1),
    );
  });

  it("inspect of a repository without that tag names the tags the store has", async () => {
    const r = await ferry(["inspect", "--store", store, ref("feel/app")]);
    assert.equal(r.code, 3, describeRun(r));
    assert.match(
      r.stderr,
      new RegExp(
        `no image ${ref("feel/app:latest")} in the store; it holds ${ref("feel/app:1.0")}, ${ref("feel/app:2.0")}\\n`,
      ),
    );
    assert.match(r.stderr, new RegExp(`hint: name one of those, e.g. \`${ref("feel/app:1.0")}\``));
  });

  it("tag gives a stored image a new name that push uploads and a pull gets back", async () => {
    const target = ref("feel/renamed:v9");
    assert.equal(
      (await ok(["tag", "--store", store, ref("feel/app:1.0"), target])).stdout,
      `Tagged: ${target}\n`,
    );
    const [source] = await entriesFor(store, ref("feel/app:1.0"));
    const [tagged] = await entriesFor(store, target);
    assert.equal(tagged?.digest, source?.digest);
    await ok(["push", "--store", store, target]);
    const fresh = join(work, "fresh");
    const pulled = await ok(["pull", "--json", "--store", fresh, target]);
    assert.match(
      pulled.stdout,
      new RegExp(`"digest":"${source?.annotations?.["dev.ferry.source-digest"]}"`),
    );
  });

  it("tag refuses a new name with a digest, and an image the store lacks", async () => {
    const digestTarget = await ferry([
      "tag",
      "--store",
      store,
      ref("feel/app:1.0"),
      `${ref("feel/x")}@sha256:${"a".repeat(64)}`,
    ]);
    assert.equal(digestTarget.code, 2, describeRun(digestTarget));
    assert.match(digestTarget.stderr, /has a digest/);
    const missing = await ferry(["tag", "--store", store, ref("feel/none:v1"), ref("feel/y:v1")]);
    assert.equal(missing.code, 3, describeRun(missing));
  });

  it("pull -q prints in the order of its arguments, not of completion", async () => {
    const own = join(work, "ordered");
    const bigName = `${slow.host}/feel/big:v1`;
    const smallName = ref("feel/app:2.0");
    const run = startFerry(["pull", "-q", "--store", own, bigName, smallName]);
    // The small image is stored while the throttled big one is still arriving.
    await until("the small image stored", async () =>
      (await entriesFor(own, smallName).catch(() => [])).length > 0 ? true : undefined,
    );
    assert.deepEqual(await entriesFor(own, bigName), [], "the big image is not stored yet");
    const r = await run.result;
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.stdout, `${bigName}\n${smallName}\n`);
  });
});
