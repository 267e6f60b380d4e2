/** One parsed WWW-Authenticate challenge: `Bearer realm="…",service="…"`. */
export interface Challenge {
  readonly scheme: string; // lower-cased: "bearer", "basic"
  readonly params: Readonly<Record<string, string>>; // keys lower-cased
}

/**
 * Parses a WWW-Authenticate header value, which may hold several challenges
 * (`Basic realm="x", Bearer realm="y",scope="a,b"`) with quoted values containing commas.
 */
export function parseChallenges(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let i = 0;
  const n = header.length;
  let current: { scheme: string; params: Record<string, string> } | undefined;
  const skipSpace = () => {
    while (i < n && (header[i] === " " || header[i] === "\t")) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && !' \t,="'.includes(header[i] as string)) i++;
    return header.slice(start, i);
  };
  while (i < n) {
    skipSpace();
    if (header[i] === ",") {
      i++;
      continue;
    }
    const token = readToken();
    if (token === "") {
      i++;
      continue;
    }
    skipSpace();
    if (header[i] === "=") {
      // A parameter (or token68 padding) of the current challenge.
      i++;
      skipSpace();
      let value: string;
      if (header[i] === '"') {
        i++;
        let out = "";
        while (i < n && header[i] !== '"') {
          if (header[i] === "\\" && i + 1 < n) i++;
          out += header[i];
          i++;
        }
        i++; // closing quote
        value = out;
      } else {
        value = readToken();
      }
      if (current !== undefined) current.params[token.toLowerCase()] = value;
    } else {
      current = { scheme: token.toLowerCase(), params: {} };
      challenges.push(current);
    }
  }
  return challenges;
}

/** The challenge ferry answers among those a 401 offers: Bearer, else Basic, else the first. */
export function pickChallenge(value: string | undefined): Challenge | undefined {
  if (value === undefined) return undefined;
  const all = parseChallenges(value);
  return all.find((c) => c.scheme === "bearer") ?? all.find((c) => c.scheme === "basic") ?? all[0];
}
