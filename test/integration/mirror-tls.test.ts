// `ferry mirror --tls-cert/--tls-key`: the mirror speaks HTTPS, and skopeo pulls through it
// trusting only the mirror's own (self-signed) certificate.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { pushImage } from "../fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { removeDir, startFerry, tempDir } from "./cli.ts";

const run = promisify(execFile);

describe("mirror over TLS", () => {
  let registry: RunningRegistry;
  let dir: string;
  let mirror: ReturnType<typeof startFerry> | undefined;
  let url = "";

  before(async () => {
    dir = await tempDir("ferry-mirror-tls-");
    registry = await startRegistry();
    await pushImage(registry.host, "tls/app", "v1", {
      layers: [[{ path: "a.txt", content: "over tls\n" }]],
    });
    const certs = join(dir, "certs");
    await mkdir(certs);
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-keyout",
      join(certs, "key.pem"),
      "-out",
      join(certs, "cert.pem"),
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
    ]);
    mirror = startFerry([
      "mirror",
      "--listen",
      "127.0.0.1:0",
      "--store",
      join(dir, "store"),
      "--upstream",
      `http://${registry.host}`,
      "--tls-cert",
      join(certs, "cert.pem"),
      "--tls-key",
      join(certs, "key.pem"),
    ]);
    let stderr = "";
    url = await new Promise<string>((resolve, reject) => {
      mirror?.child.stderr?.on("data", (d: Buffer) => {
        stderr += d.toString();
        const m = /"msg":"mirror listening","url":"([^"]+)"/.exec(stderr);
        if (m !== null) resolve(m[1] as string);
      });
      mirror?.child.once("exit", () => reject(new Error(`mirror exited: ${stderr}`)));
    });
  });

  after(async () => {
    mirror?.child.kill("SIGTERM");
    await mirror?.result;
    await registry?.stop();
    await removeDir(dir);
  });

  test("serves https; clients that trust its certificate pull through it", async () => {
    assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const certDir = join(dir, "client-certs");
    await mkdir(certDir);
    await run("cp", [join(dir, "certs", "cert.pem"), join(certDir, "ca.crt")]);
    const host = new URL(url).host;
    const out = join(dir, "out");
    await run("skopeo", [
      "--insecure-policy",
      "copy",
      "--src-cert-dir",
      certDir,
      `docker://${host}/tls/app:v1`,
      `dir:${out}`,
    ]);
    const { stdout } = await run("skopeo", [
      "inspect",
      "--raw",
      "--cert-dir",
      certDir,
      `docker://${host}/tls/app:v1`,
    ]);
    assert.match(stdout, /"schemaVersion":\s*2/);
    // Without trusting the mirror's certificate, the TLS handshake fails.
    await assert.rejects(
      run("skopeo", ["inspect", "--raw", `docker://${host}/tls/app:v1`]),
      /certificate|x509/,
    );
  });
});
