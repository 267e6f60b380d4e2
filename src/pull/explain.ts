import { FerryError, isFerryError } from "../observe/index.ts";
import { formatReference, isDockerHub, isUnqualified, type Reference } from "../reference/index.ts";
import type { RegistryClient } from "../registry/index.ts";

/** How many existing tags a "tag not found" message lists. */
const TAGS_SHOWN = 5;

/**
 * Turns a registry's terse answer into the user's situation: a missing tag
 * versus a missing repository, a private image named without its registry
 * host, Docker Hub's 401-for-unknown-repositories. Asks the registry for tags
 * when that tells the cases apart; never guesses when it cannot.
 */
export async function explainPullError(
  err: unknown,
  context: { input: string; ref: Reference; registry: RegistryClient; signal?: AbortSignal },
): Promise<unknown> {
  if (!isFerryError(err)) return err;
  const { input, ref, registry } = context;
  const name = formatReference(ref);
  const repo = { domain: ref.domain, path: ref.path };
  const implicitHub = isUnqualified(input);

  if (err.code === "FERRY_MANIFEST_UNKNOWN" && ref.tag !== undefined && ref.digest === undefined) {
    let tags: string[] | undefined;
    try {
      tags = await registry.listTags(repo, { n: 1000, signal: context.signal });
    } catch (listErr) {
      if (isFerryError(listErr, "FERRY_NAME_UNKNOWN"))
        return repositoryUnknown(name, ref, implicitHub, err);
      tags = undefined; // listing not allowed: say what we know
    }
    if (tags !== undefined) {
      const shown = [...tags].sort().reverse().slice(0, TAGS_SHOWN);
      const more = tags.length > shown.length ? ` and ${tags.length - shown.length} more` : "";
      const list = tags.length === 0 ? "it has no tags" : `it has ${shown.join(", ")}${more}`;
      return new FerryError(
        "FERRY_MANIFEST_UNKNOWN",
        `tag "${ref.tag}" not found in ${ref.domain}/${ref.path} (${list})`,
        {
          hint: "check the tag; `ferry pull NAME:TAG` with one of the existing tags",
          fields: { ...err.fields, tags: shown.join(",") },
          cause: err,
        },
      );
    }
    return err;
  }
  if (err.code === "FERRY_NAME_UNKNOWN") return repositoryUnknown(name, ref, implicitHub, err);
  if (
    (err.code === "FERRY_AUTH_REQUIRED" || err.code === "FERRY_DENIED") &&
    isDockerHub(ref.domain)
  ) {
    // Docker Hub answers 401 for repositories that do not exist, so both readings stay open.
    return new FerryError(err.code, `${name}: not found, or you are not authorized to pull it`, {
      hint: implicitHub
        ? `the name was resolved to ${name}; check it for typos, log in with \`ferry login\` if it is a private Docker Hub image, or spell out the registry host if it lives elsewhere`
        : "check the name for typos, or log in with `ferry login` if it is private",
      fields: err.fields,
      cause: err,
    });
  }
  return err;
}

function repositoryUnknown(
  name: string,
  ref: Reference,
  implicitHub: boolean,
  cause: FerryError,
): FerryError {
  if (implicitHub) {
    return new FerryError(
      "FERRY_NAME_UNKNOWN",
      `repository not found: the name was resolved to ${name}`,
      {
        hint: `a name without a registry host means Docker Hub; a private image needs its registry host spelled out, e.g. registry.example.com/${ref.path.replace(/^library\//, "")}`,
        fields: cause.fields,
        cause,
      },
    );
  }
  return new FerryError("FERRY_NAME_UNKNOWN", `repository ${ref.domain}/${ref.path} not found`, {
    hint: "check the repository name (names are case-sensitive and must include every path component)",
    fields: cause.fields,
    cause,
  });
}
