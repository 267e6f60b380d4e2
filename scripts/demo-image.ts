/** Builds a small two-layer demo image in-process and pushes it to REGISTRY as demo/hello:1.0 and demo/hello-extra:1.0 (sharing the base layer). */
import { pushImage } from "../test/fixtures/images.ts";

const host = process.argv[2];
if (host === undefined) throw new Error("usage: demo-image.ts HOST:PORT");
const base = [
  { path: "etc/os-release", content: 'NAME="ferry demo"\n' },
  { path: "usr/share/demo/data.bin", size: 8_000_000 },
];
await pushImage(host, "demo/hello", "1.0", {
  layers: [base, [{ path: "app/hello.txt", content: "hello from a pre-pulled image\n" }]],
});
await pushImage(host, "demo/hello-extra", "1.0", {
  layers: [base, [{ path: "app/extra.bin", size: 2_000_000 }]],
});
