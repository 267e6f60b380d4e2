import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";
import { isFerryError } from "../observe/index.ts";
import { DOCKER_HUB_CONFIG_KEY } from "../reference/index.ts";
import { type CredentialSource, defaultCredentialSource, dockerConfigPath } from "./index.ts";
import { installFakeHelper, tempDir, writeJson } from "./test-support.ts";

const basic = (user: string, pass: string) => Buffer.from(`${user}:${pass}`).toString("base64");

/** A home directory whose ~/.docker/config.json holds `config`. */
async function dockerHome(t: TestContext, config: unknown) {
  const home = await tempDir(t);
  await writeJson(join(home, ".docker", "config.json"), config);
  return { home, env: { HOME: home } as NodeJS.ProcessEnv };
}

describe("Docker config.json", () => {
  it("is $DOCKER_CONFIG/config.json, else ~/.docker/config.json", () => {
    assert.equal(dockerConfigPath({ DOCKER_CONFIG: "/etc/dc" }), "/etc/dc/config.json");
    assert.equal(dockerConfigPath({ HOME: "/home/u" }), "/home/u/.docker/config.json");
  });

  for (const key of [
    DOCKER_HUB_CONFIG_KEY,
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "https://registry-1.docker.io/v2/",
  ]) {
    it(`Docker Hub key ${key} serves every name of Docker Hub`, async (t) => {
      const { env } = await dockerHome(t, {
        auths: { [key]: { auth: basic("hubuser", "hubpass") } },
      });
      const source = defaultCredentialSource(env);
      for (const host of ["docker.io", "index.docker.io", "registry-1.docker.io", "Docker.IO"]) {
        assert.deepEqual(
          await source.get(host),
          { username: "hubuser", password: "hubpass" },
          host,
        );
      }
      assert.equal(await source.get("ghcr.io"), undefined);
    });
  }

  for (const key of [
    "reg.example:5000",
    "https://reg.example:5000",
    "http://reg.example:5000/v2/",
  ]) {
    it(`key ${key} means reg.example:5000`, async (t) => {
      const { env } = await dockerHome(t, { auths: { [key]: { auth: basic("u", "p") } } });
      const source = defaultCredentialSource(env);
      assert.deepEqual(await source.get("reg.example:5000"), { username: "u", password: "p" });
      assert.equal(await source.get("reg.example"), undefined, "another port is another registry");
    });
  }

  it("decodes base64 auth (a password may hold colons), and reads username/password fields", async (t) => {
    const { env } = await dockerHome(t, {
      auths: {
        "a.example": { auth: basic("alice", "pa:ss:word") },
        "b.example": { username: "bob", password: "hunter2" },
        "c.example": {},
      },
    });
    const source = defaultCredentialSource(env);
    assert.deepEqual(await source.get("a.example"), { username: "alice", password: "pa:ss:word" });
    assert.deepEqual(await source.get("b.example"), { username: "bob", password: "hunter2" });
    assert.equal(await source.get("c.example"), undefined, "an entry without secrets is none");
  });

  it("reads identitytoken, with the username from auth", async (t) => {
    const { env } = await dockerHome(t, {
      auths: {
        "t.example": { auth: basic("carol", ""), identitytoken: "refresh-123" },
        "u.example": { identitytoken: "refresh-456" },
      },
    });
    const source = defaultCredentialSource(env);
    assert.deepEqual(await source.get("t.example"), {
      identityToken: "refresh-123",
      username: "carol",
    });
    assert.deepEqual(await source.get("u.example"), { identityToken: "refresh-456" });
  });

  it("prefers the key Docker itself writes when several spell the same registry", async (t) => {
    const { env } = await dockerHome(t, {
      auths: {
        "docker.io": { auth: basic("old", "old") },
        [DOCKER_HUB_CONFIG_KEY]: { auth: basic("new", "new") },
      },
    });
    assert.deepEqual(await defaultCredentialSource(env).get("docker.io"), {
      username: "new",
      password: "new",
    });
  });

  it("reads the file once per source", async (t) => {
    const { home, env } = await dockerHome(t, {
      auths: { "a.example": { auth: basic("u", "1") } },
    });
    const source = defaultCredentialSource(env);
    assert.deepEqual(await source.get("a.example"), { username: "u", password: "1" });
    await writeJson(join(home, ".docker", "config.json"), { auths: {} });
    assert.deepEqual(await source.get("a.example"), { username: "u", password: "1" });
    assert.equal(await defaultCredentialSource(env).get("a.example"), undefined);
  });

  it("no file means no credentials", async (t) => {
    const home = await tempDir(t);
    assert.equal(await defaultCredentialSource({ HOME: home }).get("docker.io"), undefined);
  });

  it("reports a file that is not JSON without quoting it (it may hold secrets)", async (t) => {
    const home = await tempDir(t);
    await writeJson(join(home, ".docker", "config.json"), {});
    await writeFile(
      join(home, ".docker", "config.json"),
      '{"auths": {"x": {"auth": "c2VjcmV0"}}, oops}',
    );
    await assert.rejects(defaultCredentialSource({ HOME: home }).get("x"), (err: unknown) => {
      assert.ok(isFerryError(err, "FERRY_CONFIG_INVALID"));
      assert.match(err.message, /config\.json is not valid JSON/);
      assert.doesNotMatch(err.message, /c2VjcmV0|auths/);
      assert.equal(err.cause, undefined);
      return true;
    });
  });
});

describe("credential helpers", () => {
  it("credHelpers beats auths beats credsStore", async (t) => {
    const dir = await tempDir(t);
    const helper = await installFakeHelper(dir, { HOME: dir });
    await writeJson(join(dir, ".docker", "config.json"), {
      auths: {
        "a.example": { auth: basic("file-a", "pa") },
        "b.example": { auth: basic("file-b", "pb") },
      },
      credHelpers: { "a.example": "ferrytest" },
      credsStore: "ferrytest",
    });
    await helper.put("a.example", "helper-a", "sa");
    await helper.put("b.example", "helper-b", "sb");
    await helper.put("c.example", "helper-c", "sc");
    const source = defaultCredentialSource(helper.env);
    assert.deepEqual(await source.get("a.example"), { username: "helper-a", password: "sa" });
    assert.deepEqual(await source.get("b.example"), { username: "file-b", password: "pb" });
    assert.deepEqual(await source.get("c.example"), { username: "helper-c", password: "sc" });
    assert.equal(await source.get("d.example"), undefined, "helper says credentials not found");
    assert.deepEqual(await helper.calls(), ["get a.example", "get c.example", "get d.example"]);
  });

  it("asks about Docker Hub by Docker's server URL, and reads <token> as an identity token", async (t) => {
    const dir = await tempDir(t);
    const helper = await installFakeHelper(dir, { HOME: dir });
    await writeJson(join(dir, ".docker", "config.json"), {
      credHelpers: { "docker.io": "ferrytest" },
    });
    await helper.put(DOCKER_HUB_CONFIG_KEY, "<token>", "oauth-refresh");
    const source = defaultCredentialSource(helper.env);
    assert.deepEqual(await source.get("registry-1.docker.io"), { identityToken: "oauth-refresh" });
    assert.deepEqual(await source.get("docker.io"), { identityToken: "oauth-refresh" });
    assert.deepEqual(await helper.calls(), [`get ${DOCKER_HUB_CONFIG_KEY}`], "answer cached");
  });

  it("a failing helper's error names it and quotes its stderr", async (t) => {
    const dir = await tempDir(t);
    const helper = await installFakeHelper(dir, { HOME: dir, FERRYTEST_FAIL: "stderr" });
    await writeJson(join(dir, ".docker", "config.json"), { credsStore: "ferrytest" });
    await assert.rejects(defaultCredentialSource(helper.env).get("a.example"), (err: unknown) => {
      assert.ok(isFerryError(err, "FERRY_CREDENTIAL_HELPER"));
      assert.match(
        err.message,
        /docker-credential-ferrytest failed to get credentials for a\.example \(exit status 1\): ferrytest: vault sealed/,
      );
      assert.equal(err.fields.helper, "ferrytest");
      return true;
    });
  });

  it("a helper that fails with a credential on stdout does not leak it", async (t) => {
    const dir = await tempDir(t);
    const helper = await installFakeHelper(dir, { HOME: dir, FERRYTEST_FAIL: "json" });
    await helper.put("a.example", "alice", "TOP-SECRET-42");
    await writeJson(join(dir, ".docker", "config.json"), { credsStore: "ferrytest" });
    await assert.rejects(defaultCredentialSource(helper.env).get("a.example"), (err: unknown) => {
      assert.ok(isFerryError(err, "FERRY_CREDENTIAL_HELPER"));
      assert.doesNotMatch(
        `${err.message} ${err.hint} ${JSON.stringify(err.fields)}`,
        /TOP-SECRET-42/,
      );
      return true;
    });
  });

  it("a helper that is not installed is a clear error", async (t) => {
    const dir = await tempDir(t);
    await writeJson(join(dir, ".docker", "config.json"), { credsStore: "nosuchthing" });
    const env = { HOME: dir, PATH: join(dir, "empty-bin") };
    await assert.rejects(defaultCredentialSource(env).get("a.example"), (err: unknown) => {
      assert.ok(isFerryError(err, "FERRY_CREDENTIAL_HELPER"));
      assert.match(err.message, /docker-credential-nosuchthing is not installed/);
      return true;
    });
  });

  it("a helper that hangs is killed after the timeout", async (t) => {
    const dir = await tempDir(t);
    const helper = await installFakeHelper(dir, { HOME: dir, FERRYTEST_SLEEP: "1" });
    await writeJson(join(dir, ".docker", "config.json"), { credsStore: "ferrytest" });
    const source = defaultCredentialSource(helper.env, { helperTimeoutMs: 300 });
    const started = Date.now();
    await assert.rejects(source.get("a.example"), (err: unknown) => {
      assert.ok(isFerryError(err, "FERRY_CREDENTIAL_HELPER"));
      assert.match(err.message, /did not answer "get" for a\.example within 0\.3 s/);
      return true;
    });
    assert.ok(Date.now() - started < 5_000);
  });

  it("refuses a helper name that is a path", async (t) => {
    const { env } = await dockerHome(t, { credsStore: "../../bin/sh" });
    await assert.rejects(defaultCredentialSource(env).get("a.example"), (err: unknown) =>
      isFerryError(err, "FERRY_CONFIG_INVALID"),
    );
  });
});

describe("podman auth.json", () => {
  const expectUser = async (
    source: CredentialSource,
    host: string,
    username: string | undefined,
  ) => {
    const credential = await source.get(host);
    assert.equal(credential === undefined ? undefined : credential.username, username, host);
  };

  it("$REGISTRY_AUTH_FILE comes first, then Docker's config, then podman's own files", async (t) => {
    const dir = await tempDir(t);
    const explicit = join(dir, "explicit-auth.json");
    await writeJson(explicit, { auths: { "a.example": { auth: basic("explicit", "x") } } });
    await writeJson(join(dir, ".docker", "config.json"), {
      auths: {
        "a.example": { auth: basic("docker", "x") },
        "b.example": { auth: basic("docker", "x") },
      },
    });
    await writeJson(join(dir, "run", "containers", "auth.json"), {
      auths: {
        "b.example": { auth: basic("podman-run", "x") },
        "c.example": { auth: basic("podman-run", "x") },
        "quay.example/team": { auth: basic("namespaced", "x") },
      },
    });
    await writeJson(join(dir, ".config", "containers", "auth.json"), {
      auths: {
        "c.example": { auth: basic("podman-home", "x") },
        "docker.io": { auth: basic("podman-hub", "x") },
      },
    });
    const env = { HOME: dir, XDG_RUNTIME_DIR: join(dir, "run") };
    const withExplicit = defaultCredentialSource({ ...env, REGISTRY_AUTH_FILE: explicit });
    await expectUser(withExplicit, "a.example", "explicit");
    await expectUser(withExplicit, "b.example", "docker");
    await expectUser(withExplicit, "c.example", "podman-run");
    await expectUser(withExplicit, "registry-1.docker.io", "podman-hub");
    await expectUser(withExplicit, "quay.example", undefined);
    await expectUser(defaultCredentialSource(env), "a.example", "docker");
  });
});
