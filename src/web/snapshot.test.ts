import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { dataBlock, renderSnapshot } from "./snapshot.ts";

const INDEX =
  '<h1 id="title">ferry<!--ferry:kind--></h1><span id="node"><!--ferry:node--></span><main><!--ferry:snapshot--></main>';

describe("the server-rendered snapshot", () => {
  it("renders the images grid, required and optional marked, a failure's reason, and the activity", () => {
    const html = renderSnapshot(INDEX, {
      kind: "agent",
      node: "n1",
      time: "2026-12-08T01:00:00.000Z",
      ready: false,
      targets: ["store", "containerd"],
      images: [
        {
          image: "r.test/app:1",
          required: true,
          targets: {
            store: { state: "present" },
            containerd: { state: "failed", lastError: { code: "FERRY_X", message: "gone" } },
          },
        },
        { image: "r.test/extra:1", required: false, targets: { store: { state: "unknown" } } },
      ],
      activity: [
        {
          image: "r.test/app:1",
          target: "store",
          result: "pulled",
          at: "2026-12-08T00:59:00Z",
          bytes: 2_500_000,
        },
      ],
    });
    assert.match(html, /<h1 id="title">ferry agent<\/h1><span id="node">n1<\/span>/);
    assert.match(html, /Not ready/);
    assert.match(
      html,
      /data-image="r.test\/app:1"[\s\S]*badge required[\s\S]*data-state="present"[\s\S]*present[\s\S]*data-state="failed"[\s\S]*FERRY_X: gone/,
    );
    assert.match(html, /data-image="r.test\/extra:1"[\s\S]*badge optional/);
    assert.match(html, /<caption>Recent activity<\/caption>[\s\S]*r\.test\/app:1[\s\S]*2\.50 MB/);
  });

  it("escapes what the document says, in the HTML and in the embedded data", () => {
    const evil = '</script><script>alert(1)</script>&"';
    const html = renderSnapshot(INDEX, { kind: "agent", node: evil, images: [] });
    assert.doesNotMatch(html, /<script>alert/);
    assert.match(html, /&lt;\/script&gt;&lt;script&gt;alert\(1\)&lt;\/script&gt;&amp;&quot;/);
    const block = dataBlock({ node: evil });
    assert.equal(block.match(/<\/script>/g)?.length, 1, block);
    const json = /<script type="application\/json" id="initial-status">(.*)<\/script>$/.exec(
      block,
    )?.[1];
    assert.deepEqual(JSON.parse(json ?? ""), { node: evil });
  });

  it("takes a `$&` in the document as text", () => {
    const html = renderSnapshot(INDEX, { kind: "agent", node: "n$&$'", images: [] });
    assert.match(html, /<span id="node">n\$&amp;\$&#39;<\/span>/);
  });

  it("renders the mirror's totals", () => {
    const html = renderSnapshot(INDEX, {
      kind: "mirror",
      mirror: { hits: 3, misses: 1, bytesServed: 20_000_000, bytesUpstream: 10_000_000 },
    });
    assert.match(html, /ferry mirror/);
    assert.match(html, /3 hits, 1 misses; 20\.0 MB served, 10\.0 MB fetched upstream/);
  });
});
