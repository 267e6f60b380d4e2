import { parseArgs } from "../args.ts";
import {
  canonicalHost,
  type Credential,
  removeCredential,
  saveCredential,
} from "../../config/index.ts";
import { FerryError, isFerryError } from "../../observe/index.ts";
import { DEFAULT_DOMAIN, parseRepository } from "../../reference/index.ts";
import { createRegistryClient } from "../context.ts";
import { ExitCode, type Output, usageError } from "../output.ts";
import { readSecret } from "../prompt.ts";

export const loginUsage = `Usage: ferry login [REGISTRY] [-u USER] [--password-stdin] [--config FILE]

Check credentials against a registry (Docker Hub when REGISTRY is omitted) and save them
where Docker keeps them: the configured credential helper, else ~/.docker/config.json (mode 0600).
`;

export const logoutUsage = `Usage: ferry logout [REGISTRY]

Remove saved credentials for a registry (Docker Hub when REGISTRY is omitted).
`;

/** "https://registry.example:5000/v2/" → "registry.example:5000"; validated like a reference's domain. */
function registryHost(text: string | undefined): string {
  if (text === undefined) return DEFAULT_DOMAIN;
  const bare = text.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
  if (
    bare === "" ||
    !/[.:]|^localhost$/.test(bare) ||
    parseRepository(`${bare}/x`).domain !== bare
  ) {
    throw usageError(
      `"${text}" is not a registry host`,
      "give a host like registry.example.com or localhost:5000",
    );
  }
  return canonicalHost(bare);
}

export async function loginCommand(
  args: string[],
  output: Output,
  signal: AbortSignal,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      username: { type: "string", short: "u" },
      "password-stdin": { type: "boolean" },
      config: { type: "string" },
    },
  });
  if (positionals.length > 1) throw usageError("login takes at most one registry");
  const host = registryHost(positionals[0]);
  let username = values.username;
  let password: string;
  if (values["password-stdin"]) {
    if (username === undefined) throw usageError("--password-stdin needs --username (-u)");
    password = (await readStdin()).replace(/\r?\n$/, "");
  } else if (process.stdin.isTTY) {
    username ??= await readSecret("Username: ", { echo: true });
    password = await readSecret("Password: ", { echo: false });
  } else {
    throw usageError(
      "no terminal to ask for a password",
      'pipe it in: echo "$PASS" | ferry login -u USER --password-stdin HOST',
    );
  }
  if (username === "" || password === "")
    throw usageError("username and password must not be empty");
  const credential: Credential = { username, password };
  const registry = createRegistryClient({
    config: values.config,
    credentials: { get: async () => credential },
  });
  try {
    await registry.verifyLogin(host, signal);
  } catch (err) {
    if (isFerryError(err, "FERRY_AUTH_REJECTED")) {
      throw new FerryError(
        "FERRY_AUTH_REJECTED",
        `login to ${host} failed: the registry rejected the username or password`,
        {
          hint: "check them and try again; nothing was saved",
          fields: { host },
        },
      );
    }
    throw err;
  } finally {
    await registry.close();
  }
  const saved = await saveCredential(host, credential);
  if (saved.kind === "file") {
    output.err(
      `WARNING! Your password will be stored unencrypted in ${saved.path}.\nConfigure a credential helper to remove this warning.\n`,
    );
  }
  output.out("Login Succeeded\n");
  return ExitCode.ok;
}

export async function logoutCommand(args: string[], output: Output): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  if (positionals.length > 1) throw usageError("logout takes at most one registry");
  const host = registryHost(positionals[0]);
  if (await removeCredential(host)) output.out(`Removing login credentials for ${host}\n`);
  else output.out(`Not logged in to ${host}\n`);
  return ExitCode.ok;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
