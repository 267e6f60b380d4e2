import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { Liveness } from "./liveness.ts";
import { StaticMembership } from "./membership.ts";

/** Real health endpoints on 127.0.0.1, each counting the probes it answers. */
async function healthy(
  count: number,
): Promise<{ members: string[]; probes: number[]; close(): Promise<void> }> {
  const probes = Array.from({ length: count }, () => 0);
  const servers: Server[] = [];
  const members: string[] = [];
  for (let i = 0; i < count; i++) {
    const server = createServer((req, res) => {
      if (req.url === "/healthz") probes[i] = (probes[i] as number) + 1;
      res.writeHead(200).end("ok\n");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    servers.push(server);
    members.push(`127.0.0.1:${(server.address() as AddressInfo).port}`);
  }
  return {
    members,
    probes,
    close: async () => {
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}

describe("Liveness", () => {
  let fleet: Awaited<ReturnType<typeof healthy>>;
  before(async () => {
    fleet = await healthy(24);
  });
  after(() => fleet.close());

  it("probes a bounded sample of the members each round, not all of them", async () => {
    const liveness = new Liveness({
      membership: new StaticMembership(fleet.members),
      self: fleet.members[0],
      sample: 5,
    });
    fleet.probes.fill(0);
    await liveness.probeRound();
    assert.equal(
      fleet.probes.reduce((s, n) => s + n, 0),
      5,
    );
    assert.equal(fleet.probes[0], 0, "never itself");
    // Over many rounds the samples cover everyone.
    for (let round = 0; round < 60; round++) await liveness.probeRound();
    assert.ok(fleet.probes.slice(1).every((n) => n > 0));
  });

  it("probes members marked down first, and a probe that answers brings one back", async () => {
    const liveness = new Liveness({
      membership: new StaticMembership(fleet.members),
      self: undefined,
      sample: 2,
    });
    const member = fleet.members[7] as string;
    liveness.markDown(member);
    assert.ok(!liveness.live().includes(member));
    await liveness.probeRound();
    assert.ok(liveness.live().includes(member));
  });
});
