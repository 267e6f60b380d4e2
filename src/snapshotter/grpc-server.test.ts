import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import * as loader from "@grpc/proto-loader";
import { type SnapshotServer, SNAPSHOTS_PROTO, serveSnapshots } from "./grpc-server.ts";
import { Snapshotter } from "./snapshotter.ts";

type Unary = (
  request: object,
  callback: (err: grpc.ServiceError | null, value?: unknown) => void,
) => void;
interface SnapshotsClient extends grpc.Client {
  Prepare: Unary;
  Stat: Unary;
  Commit: Unary;
  List(request: object): grpc.ClientReadableStream<{ info: Array<{ name: string; kind: string }> }>;
}

describe("the snapshots gRPC service on a unix socket", () => {
  let dir: string;
  let server: SnapshotServer;
  let client: SnapshotsClient;
  const call = (method: Unary, request: object) =>
    new Promise<unknown>((resolve, reject) =>
      method.call(client, request, (err, value) => (err ? reject(err) : resolve(value))),
    );

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-snapshots-grpc-"));
    const snapshotter = await Snapshotter.open({ root: join(dir, "root") });
    server = await serveSnapshots(snapshotter, join(dir, "ferry.sock"), () => undefined);
    const definition = await loader.load(SNAPSHOTS_PROTO, {
      keepCase: true,
      enums: String,
      longs: String,
      defaults: true,
    });
    const Service = (
      grpc.loadPackageDefinition(definition) as unknown as {
        containerd: {
          services: {
            snapshots: {
              v1: {
                Snapshots: new (target: string, creds: grpc.ChannelCredentials) => SnapshotsClient;
              };
            };
          };
        };
      }
    ).containerd.services.snapshots.v1.Snapshots;
    client = new Service(`unix://${join(dir, "ferry.sock")}`, grpc.credentials.createInsecure());
  });

  after(async () => {
    client?.close();
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers refusals with the status codes containerd maps back (NOT_FOUND, ALREADY_EXISTS)", async () => {
    await assert.rejects(call(client.Stat, { key: "missing" }), { code: grpc.status.NOT_FOUND });
    await call(client.Prepare, { key: "a", parent: "", labels: { l: "1" } });
    await assert.rejects(call(client.Prepare, { key: "a", parent: "" }), {
      code: grpc.status.ALREADY_EXISTS,
    });
    await call(client.Commit, { name: "a-committed", key: "a", labels: { l: "2" } });
    const stat = (await call(client.Stat, { key: "a-committed" })) as {
      info: { kind: string; labels: object };
    };
    assert.equal(stat.info.kind, "COMMITTED");
    assert.deepEqual(stat.info.labels, { l: "2" });
  });

  it("lists every snapshot, in messages of at most 200", async () => {
    for (let i = 0; i < 450; i++)
      await call(client.Prepare, { key: `k${i}`, parent: "a-committed" });
    const messages: number[] = [];
    const names = new Set<string>();
    for await (const message of client.List({})) {
      messages.push(message.info.length);
      for (const info of message.info) names.add(info.name);
    }
    assert.equal(names.size, 451);
    assert.ok(
      messages.every((n) => n <= 200),
      `message sizes ${messages}`,
    );
  });
});
