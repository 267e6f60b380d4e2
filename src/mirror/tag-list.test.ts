import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { recordedTags, tagPage } from "./tag-list.ts";

const ALL = { n: undefined, last: undefined, namespace: undefined };

describe("tagPage", () => {
  it("every tag, sorted, once, without a Link", () => {
    assert.deepEqual(tagPage("team/app", ["v2", "v1", "latest", "v1"], ALL), {
      body: { name: "team/app", tags: ["latest", "v1", "v2"] },
      link: undefined,
    });
  });

  it("n tags after last, and a Link to the next page while more follow", () => {
    const tags = ["a", "b", "c", "d", "e"];
    const first = tagPage("app", tags, { n: 2, last: undefined, namespace: undefined });
    assert.deepEqual(first.body.tags, ["a", "b"]);
    assert.equal(first.link, '</v2/app/tags/list?n=2&last=b>; rel="next"');
    const last = tagPage("app", tags, { n: 2, last: "c", namespace: undefined });
    assert.deepEqual(last.body.tags, ["d", "e"]);
    assert.equal(last.link, undefined, "nothing after the last page");
  });

  it("the Link keeps ?ns= so paging stays on the registry asked about", () => {
    const page = tagPage("app", ["a", "b"], { n: 1, last: undefined, namespace: "ghcr.io" });
    assert.equal(page.link, '</v2/app/tags/list?n=1&last=a&ns=ghcr.io>; rel="next"');
  });

  it("n=0 is an empty page without a Link; a last past every tag too", () => {
    assert.deepEqual(tagPage("app", ["a"], { n: 0, last: undefined, namespace: undefined }), {
      body: { name: "app", tags: [] },
      link: undefined,
    });
    assert.deepEqual(
      tagPage("app", ["a"], { n: 5, last: "z", namespace: undefined }).body.tags,
      [],
    );
  });
});

describe("recordedTags", () => {
  it("the tags of one repository among the store's references, not its neighbours'", () => {
    const references = [
      "registry.test:5000/team/app:v1",
      "registry.test:5000/team/app:v2",
      "registry.test:5000/team/app2:v9",
      "registry.test:5000/team/app/sub:v3",
      "other.test/team/app:v4",
    ];
    assert.deepEqual(recordedTags(references, "registry.test:5000", "team/app"), ["v1", "v2"]);
  });
});
