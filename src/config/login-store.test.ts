import assert from "node:assert/strict";
import {
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { isFerryError } from "../observe/index.ts";
import { DOCKER_HUB_CONFIG_KEY } from "../reference/index.ts";
import { defaultCredentialSource, removeCredential, saveCredential } from "./index.ts";
import { installFakeHelper, tempDir, writeJson } from "./test-support.ts";

const basic = (user: string, pass: string) => Buffer.from(`${user}:${pass}`).toString("base64");
const readJson = async (path: string) =>
  JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
const mode = async (path: string) => (await stat(path)).mode & 0o777;

describe("saveCredential into config.json", () => {
  it("keeps every other key, writes mode 0600 atomically and leaves no temp files", async (t) => {
    const dir = await tempDir(t);
    const path = join(dir, "config.json");
    const original = {
      auths: { "other.example": { auth: basic("o", "p"), email: "o@example.com" } },
      psFormat: "table {{.ID}}",
      proxies: { default: { httpProxy: "http://proxy:3128" } },
      plugins: { x: { enabled: "true" } },
      currentContext: "remote",
    };
    await writeFile(path, JSON.stringify(original));
    const env = { DOCKER_CONFIG: dir };
    const saved = await saveCredential(
      "reg.example:5000",
      { username: "me", password: "pw" },
      { env },
    );
    assert.deepEqual(saved, { kind: "file", path });
    const written = await readJson(path);
    assert.deepEqual(written, {
      ...original,
      auths: { ...original.auths, "reg.example:5000": { auth: basic("me", "pw") } },
    });
    assert.equal(await mode(path), 0o600);
    assert.deepEqual((await readdir(dir)).sort(), ["config.json"]);
    assert.deepEqual(await defaultCredentialSource(env).get("reg.example:5000"), {
      username: "me",
      password: "pw",
    });
  });

  it("tightens an existing 0644 file to 0600 and replaces only the secrets of an entry", async (t) => {
    const dir = await tempDir(t);
    const path = join(dir, "config.json");
    await writeFile(
      path,
      JSON.stringify({ auths: { [DOCKER_HUB_CONFIG_KEY]: { auth: basic("a", "b"), email: "e" } } }),
      { mode: 0o644 },
    );
    await saveCredential(
      "docker.io",
      { username: "new", password: "pw" },
      { env: { DOCKER_CONFIG: dir } },
    );
    assert.equal(await mode(path), 0o600);
    assert.deepEqual(await readJson(path), {
      auths: { [DOCKER_HUB_CONFIG_KEY]: { email: "e", auth: basic("new", "pw") } },
    });
  });

  it("creates ~/.docker (0700) when missing, and keys Docker Hub as Docker does", async (t) => {
    const home = await tempDir(t);
    const env = { HOME: home };
    await saveCredential("registry-1.docker.io", { username: "hub", password: "pw" }, { env });
    assert.equal(await mode(join(home, ".docker")), 0o700);
    assert.equal(await mode(join(home, ".docker", "config.json")), 0o600);
    assert.deepEqual(await readJson(join(home, ".docker", "config.json")), {
      auths: { [DOCKER_HUB_CONFIG_KEY]: { auth: basic("hub", "pw") } },
    });
  });

  it("stores an identity token", async (t) => {
    const dir = await tempDir(t);
    const env = { DOCKER_CONFIG: dir };
    await saveCredential("t.example", { identityToken: "refresh", username: "me" }, { env });
    assert.deepEqual(await defaultCredentialSource(env).get("t.example"), {
      identityToken: "refresh",
      username: "me",
    });
  });

  it("writes through a symlinked config.json, keeping the link", async (t) => {
    const dir = await tempDir(t);
    await mkdir(join(dir, "dotfiles"));
    await writeFile(join(dir, "dotfiles", "docker.json"), "{}");
    await mkdir(join(dir, "docker"));
    await symlink(join(dir, "dotfiles", "docker.json"), join(dir, "docker", "config.json"));
    await saveCredential(
      "a.example",
      { username: "u", password: "p" },
      {
        env: { DOCKER_CONFIG: join(dir, "docker") },
      },
    );
    assert.ok((await lstat(join(dir, "docker", "config.json"))).isSymbolicLink());
    assert.equal(
      await readlink(join(dir, "docker", "config.json")),
      join(dir, "dotfiles", "docker.json"),
    );
    assert.deepEqual(await readJson(join(dir, "dotfiles", "docker.json")), {
      auths: { "a.example": { auth: basic("u", "p") } },
    });
  });

  it("serialises concurrent saves with the lock, losing none", async (t) => {
    const dir = await tempDir(t);
    const env = { DOCKER_CONFIG: dir };
    const hosts = Array.from({ length: 8 }, (_, i) => `r${i}.example`);
    await Promise.all(
      hosts.map((host) => saveCredential(host, { username: host, password: "p" }, { env })),
    );
    const auths = (await readJson(join(dir, "config.json"))).auths as Record<string, unknown>;
    assert.deepEqual(Object.keys(auths).sort(), hosts);
    assert.deepEqual((await readdir(dir)).sort(), ["config.json"]);
  });

  it("breaks a lock left by a dead process, and waits out a live one", async (t) => {
    const dir = await tempDir(t);
    const env = { DOCKER_CONFIG: dir };
    const lock = join(dir, "config.json.lock");
    await writeFile(lock, "999999999 deadbeef");
    await saveCredential("a.example", { username: "u", password: "p" }, { env });
    await writeFile(lock, `${process.pid} someone-else`);
    await assert.rejects(
      saveCredential("b.example", { username: "u", password: "p" }, { env, lockTimeoutMs: 100 }),
      (err: unknown) => isFerryError(err, "FERRY_CONFIG_LOCKED"),
    );
  });
});

describe("removeCredential from config.json", () => {
  it("removes every spelling of the host and says whether there was one", async (t) => {
    const dir = await tempDir(t);
    const path = join(dir, "config.json");
    await writeJson(path, {
      auths: {
        [DOCKER_HUB_CONFIG_KEY]: { auth: basic("a", "b") },
        "docker.io": { auth: basic("a", "b") },
        "other.example": { auth: basic("o", "p") },
      },
      psFormat: "x",
    });
    const env = { DOCKER_CONFIG: dir };
    assert.equal(await removeCredential("registry-1.docker.io", { env }), true);
    assert.deepEqual(await readJson(path), {
      auths: { "other.example": { auth: basic("o", "p") } },
      psFormat: "x",
    });
    assert.equal(await removeCredential("docker.io", { env }), false);
  });

  it("is false, and creates nothing, without a config file", async (t) => {
    const home = await tempDir(t);
    assert.equal(await removeCredential("a.example", { env: { HOME: home } }), false);
    assert.deepEqual(await readdir(home), []);
  });
});

describe("saving through a credential helper", () => {
  it("stores and erases with the helper, keeping secrets out of config.json", async (t) => {
    const dir = await tempDir(t);
    const helper = await installFakeHelper(dir, { HOME: dir });
    const path = join(dir, ".docker", "config.json");
    await writeJson(path, {
      credsStore: "ferrytest",
      auths: { "a.example": { auth: basic("stale", "old"), email: "kept" } },
    });
    const saved = await saveCredential(
      "a.example",
      { username: "u", password: "s3cret" },
      { env: helper.env },
    );
    assert.deepEqual(saved, { kind: "helper", helper: "ferrytest" });
    assert.deepEqual(await readJson(path), {
      credsStore: "ferrytest",
      auths: { "a.example": { email: "kept" } },
    });
    assert.doesNotMatch(await readFile(path, "utf8"), /s3cret/);
    assert.deepEqual(await defaultCredentialSource(helper.env).get("a.example"), {
      username: "u",
      password: "s3cret",
    });

    await saveCredential("docker.io", { identityToken: "tok" }, { env: helper.env });
    assert.ok(await helper.holds(DOCKER_HUB_CONFIG_KEY));
    assert.deepEqual(await defaultCredentialSource(helper.env).get("docker.io"), {
      identityToken: "tok",
    });

    assert.equal(await removeCredential("a.example", { env: helper.env }), true);
    assert.equal(await helper.holds("a.example"), false);
    assert.deepEqual(await readJson(path), { credsStore: "ferrytest", auths: {} });
    assert.equal(await removeCredential("a.example", { env: helper.env }), false);
    assert.deepEqual(
      (await helper.calls()).filter((call) => !call.startsWith("get")),
      [`store a.example`, `store ${DOCKER_HUB_CONFIG_KEY}`, "erase a.example", "erase a.example"],
    );
  });

  it("a per-registry credHelper takes the host, credsStore the rest", async (t) => {
    const dir = await tempDir(t);
    const helper = await installFakeHelper(dir, { HOME: dir });
    const path = join(dir, ".docker", "config.json");
    await writeJson(path, { credHelpers: { "a.example": "ferrytest" } });
    await saveCredential("a.example", { username: "u", password: "p" }, { env: helper.env });
    await saveCredential("b.example", { username: "u", password: "p" }, { env: helper.env });
    assert.ok(await helper.holds("a.example"));
    assert.equal(await helper.holds("b.example"), false);
    assert.deepEqual(await readJson(path), {
      credHelpers: { "a.example": "ferrytest" },
      auths: { "b.example": { auth: basic("u", "p") } },
    });
  });

  it("a helper failing to store reports its stderr with the secret cut out", async (t) => {
    const dir = await tempDir(t);
    const helper = await installFakeHelper(dir, { HOME: dir, FERRYTEST_FAIL: "stderr" });
    await writeJson(join(dir, ".docker", "config.json"), { credsStore: "ferrytest" });
    await assert.rejects(
      saveCredential("a.example", { username: "u", password: "VERY-SECRET" }, { env: helper.env }),
      (err: unknown) => {
        assert.ok(isFerryError(err, "FERRY_CREDENTIAL_HELPER"));
        assert.match(
          err.message,
          /docker-credential-ferrytest failed to store credentials for a\.example/,
        );
        assert.match(err.message, /vault sealed/);
        assert.doesNotMatch(`${err.message} ${JSON.stringify(err.fields)}`, /VERY-SECRET/);
        return true;
      },
    );
  });
});
