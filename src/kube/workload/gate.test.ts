import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  decideGate,
  GATE_ANNOTATION,
  type GateInput,
  GateReason,
  HELD_FOR_ANNOTATION,
  HELD_SINCE_ANNOTATION,
} from "./gate.ts";

const NOW = Date.parse("2026-11-23T12:00:00Z");
const gated = { [GATE_ANNOTATION]: "gate" };
const held = (rollout: string, since = "2026-11-23T11:59:00Z") => ({
  ...gated,
  [HELD_FOR_ANNOTATION]: rollout,
  [HELD_SINCE_ANNOTATION]: since,
});

function input(extra: Partial<GateInput>): GateInput {
  return {
    annotations: gated,
    paused: false,
    rollout: undefined,
    now: NOW,
    timeoutMs: 600_000,
    ...extra,
  };
}

const pending = { name: "r1", complete: false, record: undefined };

describe("rollout gate", () => {
  it("holds a gated Deployment whose images changed", () => {
    assert.deepEqual(decideGate(input({ rollout: pending })), { action: "hold", rollout: "r1" });
  });

  it("never touches a Deployment that did not opt in", () => {
    const choices: Record<string, string>[] = [{}, { [GATE_ANNOTATION]: "off" }];
    for (const annotations of choices) {
      assert.deepEqual(decideGate(input({ annotations, rollout: pending })), { action: "none" });
    }
  });

  it("does nothing without a rollout, or once the gate decided, or when already complete", () => {
    assert.deepEqual(decideGate(input({})), { action: "none" });
    for (const record of ["released", "timeout", "skipped", "held"] as const) {
      assert.deepEqual(decideGate(input({ rollout: { ...pending, record } })), { action: "none" });
    }
    assert.deepEqual(decideGate(input({ rollout: { ...pending, complete: true } })), {
      action: "none",
    });
  });

  it("leaves a Deployment the user paused alone", () => {
    assert.deepEqual(decideGate(input({ paused: true, rollout: pending })), {
      action: "skip",
      rollout: "r1",
    });
  });

  it("keeps holding until the images are present, then releases", () => {
    assert.deepEqual(
      decideGate(input({ annotations: held("r1"), paused: true, rollout: pending })),
      {
        action: "none",
      },
    );
    const d = decideGate(
      input({ annotations: held("r1"), paused: true, rollout: { ...pending, complete: true } }),
    );
    assert.equal(d.action === "release" && d.reason, GateReason.Release);
  });

  it("releases on timeout", () => {
    const d = decideGate(
      input({ annotations: held("r1", "2026-11-23T11:49:00Z"), paused: true, rollout: pending }),
    );
    assert.equal(d.action === "release" && d.reason, GateReason.Timeout);
    const bad = decideGate(
      input({ annotations: held("r1", "yesterday"), paused: true, rollout: pending }),
    );
    assert.equal(bad.action === "release" && bad.reason, GateReason.Timeout);
  });

  it("follows a newer rollout while holding", () => {
    const d = decideGate(
      input({ annotations: held("r1"), paused: true, rollout: { ...pending, name: "r2" } }),
    );
    assert.deepEqual(d, { action: "retarget", rollout: "r2" });
  });

  it("releases what it paused when the opt-in is removed", () => {
    const annotations = {
      [HELD_FOR_ANNOTATION]: "r1",
      [HELD_SINCE_ANNOTATION]: "2026-11-23T11:59:00Z",
    };
    const d = decideGate(input({ annotations, paused: true, rollout: pending }));
    assert.equal(d.action === "release" && d.reason, GateReason.Release);
  });
});
