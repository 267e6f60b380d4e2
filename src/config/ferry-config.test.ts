import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";
import { isFerryError } from "../observe/index.ts";
import {
  DEFAULT_FERRY_CONFIG,
  ferryConfigPath,
  loadFerryConfig,
  registrySettings,
  registrySettingsResolver,
} from "./index.ts";
import { tempDir } from "./test-support.ts";

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

async function configFile(t: TestContext, text: string): Promise<string> {
  const dir = await tempDir(t);
  const path = join(dir, "config.yaml");
  await writeFile(path, text);
  return path;
}

/** The FerryError thrown by loading `text`. */
async function loadError(t: TestContext, text: string) {
  const path = await configFile(t, text);
  try {
    loadFerryConfig({ path });
  } catch (err) {
    assert.ok(isFerryError(err, "FERRY_CONFIG_INVALID"), String(err));
    return { path, err };
  }
  assert.fail("loading should have failed");
}

describe("ferry config: finding the file", () => {
  it("explicit path, else $FERRY_CONFIG, else XDG, else ~/.config, or /etc as root", () => {
    const env = { HOME: "/home/u", XDG_CONFIG_HOME: "/xdg" };
    assert.deepEqual(ferryConfigPath({ path: "/a.yaml", env }), {
      path: "/a.yaml",
      explicit: true,
    });
    assert.deepEqual(ferryConfigPath({ env: { ...env, FERRY_CONFIG: "/b.yaml" } }), {
      path: "/b.yaml",
      explicit: true,
    });
    assert.deepEqual(ferryConfigPath({ env, system: false }), {
      path: "/xdg/ferry/config.yaml",
      explicit: false,
    });
    assert.deepEqual(ferryConfigPath({ env: { HOME: "/home/u" }, system: false }), {
      path: "/home/u/.config/ferry/config.yaml",
      explicit: false,
    });
    assert.deepEqual(ferryConfigPath({ env, system: true }), {
      path: "/etc/ferry/config.yaml",
      explicit: false,
    });
  });

  it("a missing default file means defaults", async (t) => {
    const home = await tempDir(t);
    const config = loadFerryConfig({ env: { HOME: home }, system: false });
    assert.equal(config, DEFAULT_FERRY_CONFIG);
    assert.deepEqual(registrySettings(config, "ghcr.io"), {
      host: "ghcr.io",
      mirrors: [],
      plainHttp: false,
      skipVerify: false,
    });
    assert.equal(
      registrySettings(config, "127.0.0.1:5000").plainHttp,
      true,
      "loopback may speak http",
    );
  });

  it("a missing explicit file is an error, whether given as a path or in $FERRY_CONFIG", async (t) => {
    const dir = await tempDir(t);
    const missing = join(dir, "nope.yaml");
    for (const options of [{ path: missing }, { env: { FERRY_CONFIG: missing } }]) {
      assert.throws(
        () => loadFerryConfig(options),
        (err: unknown) =>
          isFerryError(err, "FERRY_CONFIG_NOT_FOUND") &&
          err.message === `config file ${missing} does not exist`,
      );
    }
  });
});

describe("ferry config: a valid file", () => {
  it("reads registries, folds Docker Hub's names, resolves files beside the config", async (t) => {
    const path = await configFile(
      t,
      [
        "# ferry",
        "registries:",
        "  index.docker.io:",
        '    mirrors: ["http://127.0.0.1:5001/", "https://mirror.example/hub"]',
        "  registry.internal:8443:",
        "    skipVerify: true",
        "    ca: certs/ca.pem",
        "    clientCert: certs/client.pem",
        "    clientKey: certs/client.key",
        "  plain.example:",
        "    plainHttp: true",
        "    timeoutSeconds: 300",
        "  empty.example:",
        "",
      ].join("\n"),
    );
    const certs = join(path, "..", "certs");
    await mkdir(certs);
    await writeFile(join(certs, "ca.pem"), PEM + PEM);
    await writeFile(join(certs, "client.pem"), PEM);
    await writeFile(
      join(certs, "client.key"),
      "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
    );
    const config = loadFerryConfig({ path });
    assert.equal(config.path, path);
    assert.deepEqual(
      [...config.registries.keys()],
      ["docker.io", "registry.internal:8443", "plain.example", "empty.example"],
    );
    const hub = registrySettings(config, "registry-1.docker.io");
    assert.deepEqual(hub, {
      host: "docker.io",
      mirrors: ["http://127.0.0.1:5001", "https://mirror.example/hub"],
      plainHttp: false,
      skipVerify: false,
    });
    const internal = registrySettings(config, "registry.internal:8443");
    assert.equal(internal.skipVerify, true);
    assert.equal(internal.ca?.toString(), PEM + PEM);
    assert.equal(internal.clientCert?.toString(), PEM);
    assert.match(internal.clientKey?.toString() ?? "", /PRIVATE KEY/);
    assert.equal(registrySettings(config, "plain.example").plainHttp, true);
    assert.equal(registrySettings(config, "plain.example").timeoutMs, 300_000);
    assert.deepEqual(registrySettings(config, "empty.example").mirrors, []);

    const resolve = registrySettingsResolver(config);
    assert.equal(
      resolve("registry.internal:8443"),
      resolve("REGISTRY.internal:8443"),
      "remembered",
    );
    assert.deepEqual(resolve("docker.io"), hub);
  });

  it("an empty file is the defaults", async (t) => {
    const path = await configFile(t, "# nothing yet\n");
    assert.deepEqual(loadFerryConfig({ path }).registries, new Map());
  });

  it("mirror.namespaces: the registries ferry mirror serves besides its upstream", async (t) => {
    const path = await configFile(t, "mirror:\n  namespaces: [ghcr.io, '127.0.0.1:5000']\n");
    assert.deepEqual(loadFerryConfig({ path }).mirror, {
      namespaces: ["ghcr.io", "127.0.0.1:5000"],
    });
    const none = await configFile(t, "registries: {}\n");
    assert.equal(loadFerryConfig({ path: none }).mirror, undefined);
  });
});

describe("ferry config: errors say file:line:column and the key", () => {
  it("an unknown key", async (t) => {
    const { path, err } = await loadError(
      t,
      ["registries:", "  ghcr.io:", "    mirrors: []", "    mirorrs: []", ""].join("\n"),
    );
    assert.equal(err.message, `config ${path}:4:5: registries.ghcr.io.mirorrs: unknown key`);
    assert.match(err.hint ?? "", /known keys here: mirrors, plainHttp/);
    assert.deepEqual({ line: err.fields.line, column: err.fields.column }, { line: 4, column: 5 });
  });

  it("an unknown top-level key", async (t) => {
    const { path, err } = await loadError(t, "registries: {}\nmirrors: []\n");
    assert.equal(err.message, `config ${path}:2:1: mirrors: unknown key`);
  });

  it("an unknown key under mirror:, and namespaces that are not a list", async (t) => {
    const { path, err } = await loadError(t, "mirror:\n  namespace: [ghcr.io]\n");
    assert.equal(err.message, `config ${path}:2:3: mirror.namespace: unknown key`);
    assert.match(err.hint ?? "", /known keys here: namespaces/);
    const list = await loadError(t, "mirror:\n  namespaces: ghcr.io\n");
    assert.match(list.err.message, /mirror\.namespaces: expected a list of registries/);
  });

  it("a mirror that is not a URL", async (t) => {
    const { path, err } = await loadError(
      t,
      ["registries:", "  docker.io:", "    mirrors:", "      - mirror.example", ""].join("\n"),
    );
    assert.equal(err.message, `config ${path}:4:9: registries.docker.io.mirrors[0]: not a URL`);
    assert.match(err.hint ?? "", /http:\/\/ or https:\/\//);
  });

  it("a mirror with credentials or another scheme", async (t) => {
    const { path, err } = await loadError(
      t,
      'registries:\n  ghcr.io:\n    mirrors: ["ftp://m.example", "https://u:p@m.example"]\n',
    );
    assert.equal(
      err.message,
      `config ${path}:3:15: registries.ghcr.io.mirrors[0]: not an http:// or https:// URL (and 1 more)`,
    );
    assert.match(
      String(err.fields.more),
      /3:34: registries\.ghcr\.io\.mirrors\[1\]: must not hold credentials/,
    );
  });

  it("a registry key that is a URL", async (t) => {
    const { path, err } = await loadError(
      t,
      "registries:\n  https://ghcr.io:\n    skipVerify: true\n",
    );
    assert.equal(
      err.message,
      `config ${path}:2:3: registries.https://ghcr.io: not a registry host[:port]`,
    );
  });

  it("two spellings of Docker Hub", async (t) => {
    const { path, err } = await loadError(
      t,
      "registries:\n  docker.io: {}\n  index.docker.io: {}\n",
    );
    assert.equal(
      err.message,
      `config ${path}:3:3: registries.index.docker.io: names the same registry as docker.io`,
    );
  });

  it("a value of the wrong type", async (t) => {
    const { path, err } = await loadError(t, "registries:\n  ghcr.io:\n    plainHttp: yes\n");
    assert.equal(
      err.message,
      `config ${path}:3:16: registries.ghcr.io.plainHttp: expected true or false`,
    );
  });

  it("a timeout that is not a whole number of seconds, at least 1", async (t) => {
    for (const [value, reason] of [
      ["0", "must be at least 1"],
      ["1.5", "expected a whole number of seconds"],
      ["60s", "expected a whole number of seconds"],
    ]) {
      const { path, err } = await loadError(
        t,
        `registries:\n  ghcr.io:\n    timeoutSeconds: ${value}\n`,
      );
      assert.equal(
        err.message,
        `config ${path}:3:21: registries.ghcr.io.timeoutSeconds: ${reason}`,
      );
      assert.match(err.hint ?? "", /whole number of seconds/);
    }
  });

  it("a client certificate without its key", async (t) => {
    const { path, err } = await loadError(t, "registries:\n  ghcr.io:\n    clientCert: c.pem\n");
    assert.equal(
      err.message,
      `config ${path}:3:17: registries.ghcr.io.clientCert: clientCert without clientKey: mTLS needs both`,
    );
  });

  it("YAML that does not parse", async (t) => {
    const { path, err } = await loadError(t, "registries:\n  ghcr.io: {\n    mirrors: [\n");
    assert.match(err.message, new RegExp(`^config ${path}:\\d+:\\d+: not valid YAML: `));
  });

  it("a CA file that is missing names the file", async (t) => {
    const path = await configFile(t, "registries:\n  ghcr.io:\n    ca: /nonexistent/ca.pem\n");
    const config = loadFerryConfig({ path });
    assert.throws(
      () => registrySettings(config, "ghcr.io"),
      (err: unknown) =>
        isFerryError(err, "FERRY_CONFIG_INVALID") &&
        err.message ===
          `config ${path}: registries.ghcr.io.ca: cannot read /nonexistent/ca.pem (ENOENT)`,
    );
    assert.deepEqual(
      registrySettings(config, "quay.io").mirrors,
      [],
      "other registries still work",
    );
  });

  it("a CA file that is not PEM", async (t) => {
    const path = await configFile(t, "registries:\n  ghcr.io:\n    ca: ca.der\n");
    await writeFile(join(path, "..", "ca.der"), Buffer.from([0x30, 0x82, 0x01]));
    assert.throws(
      () => registrySettings(loadFerryConfig({ path }), "ghcr.io"),
      (err: unknown) =>
        isFerryError(err, "FERRY_CONFIG_INVALID") && /ca\.der is not a PEM file/.test(err.message),
    );
  });
});
