import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { FerryError } from "../observe/index.ts";
import { formatReference, parseReference, type Reference } from "./index.ts";

// ---- generators of valid pieces ----

const lowerAlnum = fc.stringMatching(/^[a-z0-9]{1,6}$/);
const separator = fc.constantFrom(".", "_", "__", "-", "--", "---");
const pathComponent = fc
  .tuple(lowerAlnum, fc.array(fc.tuple(separator, lowerAlnum), { maxLength: 3 }))
  .map(([head, rest]) => head + rest.map(([sep, part]) => sep + part).join(""));
const path = fc
  .array(pathComponent, { minLength: 1, maxLength: 4 })
  .map((parts) => parts.join("/"));

const port = fc.integer({ min: 1, max: 65535 }).map((n) => `:${n}`);
const dnsLabel = fc.stringMatching(/^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]{0,8}[a-zA-Z0-9])$/);
const dnsName = fc
  .array(dnsLabel, { minLength: 2, maxLength: 4 })
  .map((labels) => labels.join("."));
const ipv4 = fc.ipV4();
const ipv6 = fc
  .ipV6()
  .filter((address) => /^[a-fA-F0-9:]+$/.test(address))
  .map((a) => `[${a}]`);
const upperHost = fc.stringMatching(/^[A-Z][a-zA-Z0-9]{0,6}$/);
/** Hosts the first element of a reference is recognized as. */
const explicitDomain = fc.oneof(
  fc.constant("localhost"),
  fc.tuple(fc.oneof(fc.constant("localhost"), upperHost), port).map(([h, p]) => h + p),
  fc.tuple(fc.oneof(dnsName, ipv4, ipv6), fc.option(port, { nil: "" })).map(([h, p]) => h + p),
  upperHost,
);
const anyDomainSpelling = fc.oneof(explicitDomain, fc.constantFrom("docker.io", "index.docker.io"));

const tag = fc.stringMatching(/^\w[\w.-]{0,127}$/);
const hex = (length: number) =>
  fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: length, maxLength: length });
const digest = fc.oneof(
  hex(64).map((h) => `sha256:${h}`),
  hex(128).map((h) => `sha512:${h}`),
);

/** Reference text as a user might type it, possibly familiar (no host). */
const referenceText = fc
  .record({
    domain: fc.option(anyDomainSpelling, { nil: undefined }),
    path,
    tag: fc.option(tag, { nil: undefined }),
    digest: fc.option(digest, { nil: undefined }),
  })
  // Without a host, a first element containing "." would be read as a host.
  .filter(({ domain, path }) => domain !== undefined || !/^[^/]*\.[^/]*\//.test(path))
  .map(
    ({ domain, path, tag, digest }) =>
      (domain === undefined ? "" : `${domain}/`) +
      path +
      (tag === undefined ? "" : `:${tag}`) +
      (digest === undefined ? "" : `@${digest}`),
  )
  .filter((text) => !/^[a-f0-9]{64}$/.test(text));

/** Normalized reference values, built from parts. */
const normalizedReference = fc
  .record({
    domain: fc.oneof(explicitDomain, fc.constant("docker.io")),
    path,
    tag: fc.option(tag, { nil: undefined }),
    digest: fc.option(digest, { nil: undefined }),
  })
  .map(
    ({ domain, path, tag, digest }): Reference => ({
      domain,
      path: domain === "docker.io" && !path.includes("/") ? `library/${path}` : path,
      tag: tag === undefined && digest === undefined ? "latest" : tag,
      digest,
    }),
  )
  .filter((ref) => ref.domain.length + 1 + ref.path.length <= 255);

/** Strings built from the grammar's own pieces, so many are nearly valid. */
const nearlyReference = fc
  .array(
    fc.constantFrom(
      "a",
      "z",
      "0",
      "A",
      ".",
      "..",
      "_",
      "__",
      "-",
      "--",
      "/",
      ":",
      "@",
      "[",
      "]",
      "::1",
      "5000",
      "localhost",
      "docker.io",
      "index.docker.io",
      "library/",
      "sha256:",
      "sha512:",
      "md5:",
      "0123456789abcdef".repeat(4),
      "0123456789abcdef".repeat(8),
      "latest",
      " ",
      "é",
      "\u0000",
    ),
    { maxLength: 14 },
  )
  .map((pieces) => pieces.join(""));

/** Valid text with one splice: a few characters replaced by a grammar piece. */
const mutatedReference = fc
  .tuple(referenceText, fc.nat(), fc.nat({ max: 3 }), nearlyReference)
  .map(([text, at, remove, insert]) => {
    const cut = at % (text.length + 1);
    return text.slice(0, cut) + insert + text.slice(cut + remove);
  });

const anyString = fc.oneof(
  nearlyReference,
  mutatedReference,
  fc.string({ maxLength: 300 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  referenceText,
);

// ---- an independent oracle: distribution/reference's regular expressions ----

const alphanumeric = "[a-z0-9]+";
const separatorRe = "(?:[._]|__|[-]+)";
const pathComponentRe = `${alphanumeric}(?:${separatorRe}${alphanumeric})*`;
const domainComponent = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const domainName = `${domainComponent}(?:\\.${domainComponent})*`;
const host = `(?:${domainName}|\\[(?:[a-fA-F0-9:]+)\\])`;
const domainAndPort = `${host}(?::[0-9]+)?`;
const remoteName = `${pathComponentRe}(?:/${pathComponentRe})*`;
const tagRe = "[\\w][\\w.-]{0,127}";
const digestRe = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}";
const DOCKER_REFERENCE = new RegExp(
  `^(?:(${domainAndPort})/)?(${remoteName})(?::(${tagRe}))?(?:@(${digestRe}))?$`,
);

/** Docker's ParseNormalizedNamed + TagNameOnly, with ferry's digest policy. */
function dockerParse(s: string): Reference | undefined {
  if (s === "" || /^[a-f0-9]{64}$/.test(s)) return undefined;
  const slash = s.indexOf("/");
  let domain = "docker.io";
  let remainder = s;
  if (slash >= 0) {
    const first = s.slice(0, slash);
    if (first === "localhost" || /[.:]/.test(first) || first.toLowerCase() !== first) {
      domain = first === "index.docker.io" ? "docker.io" : first;
      remainder = s.slice(slash + 1);
    }
  }
  if (domain === "docker.io" && !remainder.includes("/")) remainder = `library/${remainder}`;
  const colon = remainder.indexOf(":");
  const remote = colon < 0 ? remainder : remainder.slice(0, colon);
  if (remote.toLowerCase() !== remote) return undefined;
  const match = DOCKER_REFERENCE.exec(`${domain}/${remainder}`);
  if (match === null) return undefined;
  const [, matchedDomain = "", matchedPath = "", matchedTag, matchedDigest] = match;
  // Docker's regexp may fall back to an empty domain when the host is invalid
  // but is also a valid path component ("a_b.c/x"); such a name has no registry.
  if (matchedDomain === "") return undefined;
  if (matchedDomain.length + 1 + matchedPath.length > 255) return undefined;
  if (matchedDigest !== undefined) {
    const ok =
      /^sha256:[a-f0-9]{64}$/.test(matchedDigest) || /^sha512:[a-f0-9]{128}$/.test(matchedDigest);
    if (!ok) return undefined;
  }
  return {
    domain: matchedDomain,
    path: matchedPath,
    tag: matchedTag === undefined && matchedDigest === undefined ? "latest" : matchedTag,
    digest: matchedDigest,
  };
}

function tryParse(s: string): Reference | FerryError {
  try {
    return parseReference(s);
  } catch (err) {
    if (err instanceof FerryError) return err;
    throw err;
  }
}

const RUNS = { numRuns: 2000 };

describe("reference properties", () => {
  it("normalization is idempotent: parse(format(parse(x))) equals parse(x)", () => {
    let parsedCount = 0;
    fc.assert(
      fc.property(referenceText, (text) => {
        const parsed = tryParse(text);
        if (parsed instanceof FerryError) {
          // Only length may reject text built from valid pieces.
          assert.match(parsed.message, /name is longer than 255 characters/);
          return;
        }
        parsedCount++;
        const again = parseReference(formatReference(parsed));
        assert.deepEqual(again, parsed);
        assert.equal(formatReference(again), formatReference(parsed));
      }),
      RUNS,
    );
    assert.ok(parsedCount > RUNS.numRuns * 0.9, `only ${parsedCount} generated texts parsed`);
  });

  it("valid parts round-trip: parse(format(ref)) equals ref", () => {
    fc.assert(
      fc.property(normalizedReference, (ref) => {
        assert.deepEqual({ ...parseReference(formatReference(ref)) }, ref);
      }),
      RUNS,
    );
  });

  it("any string either parses or throws FerryError FERRY_INVALID_REFERENCE, nothing else", () => {
    let parsedCount = 0;
    let rejectedCount = 0;
    fc.assert(
      fc.property(anyString, (text) => {
        try {
          const ref = parseReference(text);
          parsedCount++;
          assert.equal(typeof ref.domain, "string");
        } catch (err) {
          assert.ok(
            err instanceof FerryError,
            `non-FerryError for ${JSON.stringify(text)}: ${err}`,
          );
          assert.equal(err.code, "FERRY_INVALID_REFERENCE");
          assert.ok(err.message.startsWith("invalid reference "));
          rejectedCount++;
        }
      }),
      { numRuns: 5000 },
    );
    assert.ok(parsedCount > 0 && rejectedCount > 0, "the generator reaches both outcomes");
  });

  it("accepts exactly what Docker's grammar accepts, normalized the same way", () => {
    let acceptedCount = 0;
    fc.assert(
      fc.property(anyString, (text) => {
        const ours = tryParse(text);
        const docker = dockerParse(text);
        if (docker === undefined) {
          assert.ok(ours instanceof FerryError, `ferry accepted ${JSON.stringify(text)}`);
        } else {
          acceptedCount++;
          assert.ok(
            !(ours instanceof FerryError),
            `ferry rejected ${JSON.stringify(text)}: ${ours}`,
          );
          assert.deepEqual({ ...ours }, docker);
        }
      }),
      { numRuns: 20000 },
    );
    assert.ok(acceptedCount > 500, `only ${acceptedCount} generated strings were valid`);
  });
});
