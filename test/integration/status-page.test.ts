// The status page in a real browser: Debian's headless Chromium driven by playwright-core,
// against `ferry agent` with a real Distribution registry (a slow proxy in front of it for one
// image) and a real containerd. Every request that is not to the agent is blocked.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFile, mkdir, readdir, rename, stat, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { buildWeb } from "../../scripts/build-web.ts";
import { pushImage } from "../fixtures/images.ts";
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts";
import { freePort, type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { type RunningContainerd, startContainerd } from "../fixtures/runtimes.ts";
import {
  describeRun,
  type FerryProcess,
  removeDir,
  startFerry,
  tempDir,
  untilLogged,
} from "./cli.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DIST = join(ROOT, "dist/web");
const APP = join(ROOT, "src/web/app");
const ARTIFACTS = join(ROOT, "test-artifacts");
const SECRET = "status-page-secret-91d2";
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** dist/web is missing or older than a source of the page: build it. */
async function ensureBuilt(): Promise<void> {
  const built = await stat(join(DIST, "index.html")).catch(() => undefined);
  if (built !== undefined) {
    const sources = await readdir(APP);
    const times = await Promise.all(sources.map(async (f) => (await stat(join(APP, f))).mtimeMs));
    if (times.every((t) => t <= built.mtimeMs)) return;
  }
  await buildWeb(DIST, false);
}

/**
 * Runs in the page: every visible element with text of its own whose colour against its
 * effective background is under WCAG AA (4.5:1, or 3:1 for large text). Plain JavaScript in a
 * string, since this file is compiled without the DOM library.
 */
const LOW_CONTRAST = `(() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim() !== "");
    if (!own || el.getClientRects().length === 0) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden") continue;
    const a = lum(rgb(style.color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) low.push(el.tagName + "." + el.className + " '" + el.textContent.trim().slice(0, 30) + "' " + ratio.toFixed(2));
  }
  return low;
})()`;

/** The little of the DOM the page callbacks below touch (this file is compiled without the DOM library). */
interface PageElement {
  readonly id: string;
  readonly tagName: string;
  readonly value?: number;
  readonly dataset: Record<string, string | undefined>;
  getAttribute(name: string): string | null;
  querySelector(selector: string): PageElement | null;
}
interface PageWindow {
  readonly document: {
    readonly activeElement: PageElement | null;
    readonly body: PageElement;
    readonly documentElement: { readonly scrollWidth: number; readonly clientWidth: number };
    querySelector(selector: string): PageElement | null;
    querySelectorAll(selector: string): { readonly length: number };
  };
  getComputedStyle(element: PageElement): { readonly backgroundColor: string };
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve(Buffer.concat(chunks).toString()));
    })
      .on("error", reject)
      .end();
  });
}

describe("the status page in headless Chromium against ferry agent", () => {
  let work: string;
  let registry: RunningRegistry;
  let proxy: RunningProxy;
  let containerd: RunningContainerd;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let agent: FerryProcess | undefined;
  let agentLog = "";
  let url: string;
  const consoleErrors: string[] = [];
  const blocked: string[] = [];
  const served: string[] = [];
  /** The only origins the browser may reach: ferry's listeners. */
  const allowed: string[] = [];
  let reg: string;
  let images: { absent: string; present: string; big: string; queued: string };
  let bigImageBytes = 0;

  /** Writes the image list the agent watches (by rename, as editors and config tools do). */
  const writeList = async (lines: readonly string[]) => {
    const list = join(work, "images.yaml");
    await writeFile(`${list}.tmp`, ["images:", ...lines.map((l) => `  - ${l}`), ""].join("\n"));
    await rename(`${list}.tmp`, list);
  };
  const cell = (image: string, target: string) =>
    page.locator(`tr[data-image="${image}"] td[data-column="${target}"]`);
  const stateOf = (image: string, target: string) => cell(image, target).getAttribute("data-state");
  /** Waits (in the page, no reload) until the cell shows one of `states`. */
  const waitState = (image: string, target: string, states: readonly string[]) =>
    page.waitForFunction(
      ([i, t, s]) =>
        (s as string[]).includes(
          (globalThis as unknown as PageWindow).document.querySelector(
            `tr[data-image="${i}"] td[data-column="${t}"]`,
          )?.dataset.state ?? "",
        ),
      [image, target, states] as const,
      { timeout: 60_000 },
    );

  before(async () => {
    await ensureBuilt();
    work = await tempDir("status-page");
    [registry, containerd, browser] = await Promise.all([
      startRegistry(),
      startContainerd(),
      chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"], headless: true }),
    ]);
    reg = registry.host;
    // One image big enough that its pull, through a 2 MB/s link, is watched while it runs.
    proxy = await startProxy({ target: reg, bytesPerSecond: 2_000_000 });
    const layer = (name: string, size: number) => ({
      layers: [[{ path: `${name}/data.bin`, size, seed: name }]],
    });
    await Promise.all([
      pushImage(reg, "team/present", "1", layer("present", 4096)),
      pushImage(reg, "team/big", "1", layer("big", 10_000_000)).then((built) => {
        bigImageBytes = built.totalSize + built.manifest.length;
      }),
      pushImage(reg, "team/queued", "1", layer("queued", 4096)),
    ]);
    images = {
      absent: `${reg}/team/absent:1`,
      present: `${reg}/team/present:1`,
      big: `${proxy.host}/team/big:1`,
      queued: `${reg}/team/queued:1`,
    };
    // The agent starts with two images: absent fails, present arrives.
    await writeList([images.absent, images.present]);
    await writeFile(join(work, "secret"), `${SECRET}\n`, { mode: 0o600 });

    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on("console", (m) => {
      if (m.type() === "error") consoleErrors.push(m.text());
    });
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    if (agent !== undefined && agent.child.exitCode === null) agent.child.kill("SIGKILL");
    await agent?.result.catch(() => undefined);
    await proxy?.stop();
    await Promise.all([registry?.stop(), containerd?.stop()]);
    await removeDir(work);
    if (process.env.STATUS_PAGE_TEST_LOG) process.stderr.write(agentLog);
  });

  test("shows present, pulling (live progress), missing and failed; then the end state", async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    // Everything but ferry is blocked: the page must need nothing else.
    allowed.push(`${url}/`);
    await context.route("**/*", (route) => {
      const target = route.request().url();
      if (allowed.some((origin) => target.startsWith(origin))) {
        served.push(target);
        return route.continue();
      }
      blocked.push(target);
      return route.abort();
    });
    agent = startFerry([
      "agent",
      "-f",
      join(work, "images.yaml"),
      "--listen",
      `127.0.0.1:${port}`,
      "--store",
      join(work, "store"),
      "--target",
      "store",
      "--target",
      "containerd",
      "--cri-endpoint",
      `unix://${containerd.socket}`,
      "--concurrency",
      "1",
      "--webhook-secret-file",
      join(work, "secret"),
      "--policy-schedule",
      "0 0 1 1 *",
      "--high",
      "95",
      "--low",
      "90",
      "--grace",
      "2s",
    ]);
    agent.child.stderr?.on("data", (d: Buffer) => {
      agentLog += d.toString("utf8");
    });
    await untilLogged(
      "the agent listening",
      agent,
      () => agentLog,
      /"msg":"agent listening"/,
      15_000,
    );
    await page.goto(`${url}/`);
    await page.waitForSelector("#connection[data-state='live']");
    for (const target of ["store", "containerd"]) {
      await waitState(images.absent, target, ["failed"]);
      await waitState(images.present, target, ["pulled", "present"]);
    }
    assert.equal(await page.locator("#grid tbody tr").count(), 2);

    // With the page open, two more images are listed. One job at a time, in list order: big
    // pulls slowly (through the proxy) while queued waits its turn (missing).
    await writeList([
      images.absent,
      images.present,
      images.big,
      `{image: ${images.queued}, required: false}`,
    ]);

    // While big pulls into the store: its progress bar moves without a reload.
    await page.waitForFunction(
      (image) => {
        const { document } = globalThis as unknown as PageWindow;
        const td = document.querySelector(`tr[data-image="${image}"] td[data-column="store"]`);
        const bar = td?.querySelector("progress");
        return (
          td?.getAttribute("data-state") === "pulling" && bar !== null && (bar?.value ?? 0) > 0
        );
      },
      images.big,
      { timeout: 60_000 },
    );
    const bar = cell(images.big, "store").locator("progress");
    const first = Number(await bar.getAttribute("value"));
    await page.waitForFunction(
      ([image, before]) => {
        const { document } = globalThis as unknown as PageWindow;
        const td = document.querySelector(`tr[data-image="${image}"] td[data-column="store"]`);
        const now = td?.querySelector("progress")?.value ?? 0;
        return td?.getAttribute("data-state") !== "pulling" || now > (before as number);
      },
      [images.big, first] as const,
      { timeout: 30_000 },
    );
    assert.match(await cell(images.big, "store").innerText(), /pulling[\s\S]*MB of 10\.\d MB/);
    // The other states at the same moment.
    assert.equal(await stateOf(images.queued, "store"), "unknown");
    assert.match(
      String(await cell(images.queued, "store").getAttribute("title")),
      /not looked at yet/,
    );
    assert.match(await cell(images.queued, "store").innerText(), /missing/);
    assert.equal(await stateOf(images.absent, "store"), "failed");
    assert.equal(await stateOf(images.absent, "containerd"), "failed");
    for (const target of ["store", "containerd"]) {
      assert.match(String(await stateOf(images.present, target)), /^(pulled|present)$/);
      assert.match(await cell(images.present, target).innerText(), /present/);
    }
    await mkdir(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, "status-page.png");
    await page.screenshot({ path: shot, fullPage: true });
    const docsShot = join(ROOT, "docs/status-page.png");
    if (process.env.UPDATE_DOCS_SCREENSHOT || !(await stat(docsShot).catch(() => undefined)))
      await copyFile(shot, docsShot);

    // Then, still without a reload: big arrives in both targets, queued after it.
    for (const target of ["store", "containerd"]) {
      await waitState(images.big, target, ["pulled", "present"]);
      await waitState(images.queued, target, ["pulled", "present"]);
    }
    assert.match(await page.locator("#ready").innerText(), /Not ready/); // absent is required
    assert.equal(await page.locator("#count-failed").innerText(), "2");
    assert.equal(await page.locator("#count-present").innerText(), "6");
  });

  test("a failed cell tells why (hover and expand); required and pinned are marked", async () => {
    const failed = cell(images.absent, "store");
    const title = String(await failed.getAttribute("title"));
    assert.match(title, /^FERRY_[A-Z_]+: /);
    await failed.locator("summary").click();
    const reason = failed.locator(".reason");
    assert.ok(await reason.isVisible());
    assert.equal(await reason.innerText(), title);

    const header = (image: string) => page.locator(`tr[data-image="${image}"] th`);
    assert.match(await header(images.present).innerText(), /required/);
    assert.doesNotMatch(await header(images.queued).innerText(), /required/);
    assert.match(await header(images.queued).innerText(), /optional/);
    assert.doesNotMatch(await header(images.present).innerText(), /optional/);
    for (const target of ["store", "containerd"]) {
      assert.match(await cell(images.present, target).innerText(), /pinned/);
      assert.doesNotMatch(await cell(images.queued, target).innerText(), /pinned/);
    }
  });

  test("recent activity lists failures first, then pulls with duration, bytes and source", async () => {
    const rows = page.locator("#activity-body tr");
    await page.waitForFunction(
      () =>
        (globalThis as unknown as PageWindow).document.querySelectorAll("#activity-body tr")
          .length >= 8,
    );
    const texts = await rows.allInnerTexts();
    assert.match(texts[0] ?? "", /absent:1[\s\S]*failed FERRY_/);
    assert.match(texts[1] ?? "", /absent:1[\s\S]*failed FERRY_/);
    const bigStore = texts.find((t) => t.includes("team/big:1") && /\bstore\b/.test(t));
    assert.match(
      bigStore ?? "",
      /pulled[\s\S]*\d+(\.\d+)? (s|ms)[\s\S]*10\.\d MB[\s\S]*upstream 127\.0\.0\.1:/,
    );
    assert.match(
      await page.locator("#chart-durations-summary").innerText(),
      /^6 recent pulls; median/,
    );
    assert.match(
      await page.locator("#chart-store-summary").innerText(),
      /pruning starts above 95% and stops at 90%/,
    );
    assert.equal(await page.locator("#chart-store canvas").count(), 1);
    assert.equal(await page.locator("#chart-durations canvas").count(), 1);
    // Away from the cursor the legends show the newest values, never blanks.
    const legend = await page.locator("#chart-store .u-legend").innerText();
    assert.match(
      legend,
      /filesystem used:?\s*\d+%[\s\S]*prune starts:?\s*95%[\s\S]*prune stops:?\s*90%/,
    );
    // The newest sample: what the summary under the chart says the store holds.
    const holds = /Store holds (\S+ \S+);/.exec(
      await page.locator("#chart-store-summary").innerText(),
    )?.[1];
    assert.match(legend, new RegExp(`store size:?\\s*${holds}`));
    assert.doesNotMatch(legend, /--|–/);
  });

  test("the first paint has the data: without JavaScript, and before the event stream delivers", async () => {
    const html = await get(`${url}/`);
    assert.match(
      html,
      new RegExp(`data-image="${images.absent}"[^<]*<th[\\s\\S]*?data-state="failed"`),
    );
    assert.doesNotMatch(html, new RegExp(SECRET));

    const noScript = await browser.newContext({ javaScriptEnabled: false });
    await noScript.route("**/*", (route) =>
      route.request().url().startsWith(`${url}/`) ? route.continue() : route.abort(),
    );
    const plain = await noScript.newPage();
    await plain.goto(`${url}/`);
    const snapshotCell = (image: string, target: string) =>
      plain.locator(`#snapshot tr[data-image="${image}"] td[data-column="${target}"]`);
    assert.equal(await snapshotCell(images.absent, "store").getAttribute("data-state"), "failed");
    assert.match(await snapshotCell(images.absent, "store").innerText(), /failed FERRY_/);
    assert.match(await snapshotCell(images.big, "containerd").innerText(), /present/);
    assert.match(await plain.locator("#snapshot").innerText(), /Recent activity[\s\S]*team\/big:1/);
    assert.match(await plain.locator("#title").innerText(), /^ferry agent$/);
    await noScript.close();

    // With JavaScript but no event stream: the page renders the document it came with.
    const noStream = await browser.newContext();
    await noStream.route("**/*", (route) => {
      const target = route.request().url();
      return target.startsWith(`${url}/`) && !target.endsWith("/events")
        ? route.continue()
        : route.abort();
    });
    const early = await noStream.newPage();
    await early.goto(`${url}/`);
    await early.waitForSelector(`#grid tr[data-image="${images.absent}"]`);
    assert.equal(
      await early
        .locator(`#grid tr[data-image="${images.absent}"] td[data-column="store"]`)
        .getAttribute("data-state"),
      "failed",
    );
    assert.equal(await early.locator("#snapshot").count(), 0);
    assert.notEqual(await early.locator("#connection").getAttribute("data-state"), "live");
    await noStream.close();
  });

  test("the keyboard reaches the filter and the rows; the filter narrows the grid", async () => {
    const focused = () =>
      page.evaluate(() => {
        const el = (globalThis as unknown as PageWindow).document.activeElement;
        return el?.id || el?.dataset.image || el?.getAttribute("href") || el?.tagName || "";
      });
    // From the top: the skip link first, then the filter.
    await page.locator("#title").click();
    await page.keyboard.press("Shift+Tab");
    assert.equal(await focused(), "#filter");
    await page.keyboard.press("Tab");
    assert.equal(await focused(), "filter");
    await page.keyboard.type("absent");
    assert.equal(await page.locator("#grid tbody tr:visible").count(), 1);
    assert.match(await page.locator("#grid-count").innerText(), /1 of 4 images/);
    await page.keyboard.press("Control+A");
    await page.keyboard.press("Backspace");
    assert.equal(await page.locator("#grid tbody tr:visible").count(), 4);
    await page.keyboard.press("Tab");
    assert.equal(await focused(), images.absent);
    await page.keyboard.press("ArrowDown");
    assert.equal(await focused(), images.present);
    await page.keyboard.press("End");
    assert.equal(await focused(), images.queued);
  });

  test("no secret, nothing fetched but from ferry, no console errors; dark and phone layouts", async () => {
    assert.doesNotMatch(await page.content(), new RegExp(SECRET));
    assert.doesNotMatch(await get(`${url}/status`), new RegExp(SECRET));
    assert.deepEqual(blocked, []);
    assert.ok(served.some((u) => u.endsWith("/events")));
    assert.deepEqual(consoleErrors, []);

    const background = () =>
      page.evaluate(() => {
        const w = globalThis as unknown as PageWindow;
        return w.getComputedStyle(w.document.body).backgroundColor;
      });
    assert.equal(await background(), "rgb(255, 255, 255)");
    assert.deepEqual(await page.evaluate<string[]>(LOW_CONTRAST), [], "light scheme");
    await page.emulateMedia({ colorScheme: "dark" });
    assert.equal(await background(), "rgb(13, 17, 23)");
    assert.deepEqual(await page.evaluate<string[]>(LOW_CONTRAST), [], "dark scheme");
    await page.screenshot({ path: join(ARTIFACTS, "status-page-dark.png"), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    // The charts take the new width on their next resize callback; the page must then fit.
    const overflow = () =>
      page.evaluate(() => {
        const { documentElement } = (globalThis as unknown as PageWindow).document;
        return documentElement.scrollWidth - documentElement.clientWidth;
      });
    await page
      .waitForFunction(
        () => {
          const { documentElement } = (globalThis as unknown as PageWindow).document;
          return documentElement.scrollWidth <= documentElement.clientWidth;
        },
        undefined,
        { timeout: 10_000 },
      )
      .catch(() => undefined);
    const wider = await overflow();
    assert.ok(wider <= 0, `the page is ${wider}px wider than a phone`);
    await page.screenshot({ path: join(ARTIFACTS, "status-page-phone.png"), fullPage: true });
    assert.deepEqual(consoleErrors, []);
  });

  test("the connection state shows when the agent goes away", async () => {
    assert.equal(await page.locator("#connection").innerText(), "Live");
    agent?.child.kill("SIGTERM");
    const result = await agent?.result;
    assert.equal(result?.code, 0, result && describeRun(result));
    await page.waitForSelector("#connection[data-state='reconnecting']");
    assert.match(await page.locator("#connection").innerText(), /reconnecting/);
    await page.close();
  });

  test("an agent without a store shows no store chart", async () => {
    const port = await freePort();
    const storeless = startFerry([
      "agent",
      "-f",
      join(work, "images.yaml"),
      "--listen",
      `127.0.0.1:${port}`,
      "--target",
      "containerd",
      "--cri-endpoint",
      `unix://${containerd.socket}`,
    ]);
    let log = "";
    storeless.child.stderr?.on("data", (d: Buffer) => {
      log += d.toString("utf8");
    });
    try {
      await untilLogged(
        "the agent listening",
        storeless,
        () => log,
        /"msg":"agent listening"/,
        15_000,
      );
      const origin = `http://127.0.0.1:${port}`;
      allowed.push(`${origin}/`);
      const p = await context.newPage();
      await p.goto(`${origin}/`);
      await p.waitForSelector("#grid tbody tr");
      assert.equal(await p.locator("#chart-store").isVisible(), false);
      assert.equal(await p.locator("#chart-durations").isVisible(), true);
      assert.doesNotMatch(await p.locator("#charts").innerText(), /no store/);
      await p.close();
    } finally {
      storeless.child.kill("SIGTERM");
      await storeless.result;
    }
  });

  test("an agent pulling through a ferry mirror its config names says 'via mirror'", async () => {
    const mirror = startFerry([
      "mirror",
      "--listen",
      "127.0.0.1:0",
      "--store",
      join(work, "via-mirror-store"),
      "--upstream",
      `http://${reg}`,
    ]);
    let mirrorLog = "";
    mirror.child.stderr?.on("data", (d: Buffer) => {
      mirrorLog += d.toString("utf8");
    });
    const port = await freePort();
    const dir = join(work, "via-mirror");
    await mkdir(dir, { recursive: true });
    let viaAgent: FerryProcess | undefined;
    try {
      const mirrorUrl = await untilLogged(
        "the mirror listening",
        mirror,
        () => mirrorLog,
        /"msg":"mirror listening"[^\n]*"url":"([^"]+)"/,
        15_000,
      );
      await writeFile(
        join(dir, "config.yaml"),
        `registries:\n  "${reg}":\n    mirrors: ["${mirrorUrl}"]\n`,
      );
      await writeFile(join(dir, "images.yaml"), `images:\n  - ${images.present}\n`);
      viaAgent = startFerry([
        "agent",
        "--config",
        join(dir, "config.yaml"),
        "-f",
        join(dir, "images.yaml"),
        "--listen",
        `127.0.0.1:${port}`,
        "--store",
        join(dir, "store"),
        "--target",
        "store",
      ]);
      let log = "";
      viaAgent.child.stderr?.on("data", (d: Buffer) => {
        log += d.toString("utf8");
      });
      await untilLogged(
        "the agent listening",
        viaAgent,
        () => log,
        /"msg":"agent listening"/,
        15_000,
      );
      const origin = `http://127.0.0.1:${port}`;
      allowed.push(`${origin}/`);
      const p = await context.newPage();
      await p.goto(`${origin}/`);
      const row = p.locator("#activity-body tr", { hasText: "team/present:1" });
      await row.filter({ hasText: "pulled" }).waitFor({ timeout: 60_000 });
      assert.match(await row.innerText(), new RegExp(`via mirror ${new URL(mirrorUrl).host}`));
      assert.doesNotMatch(await row.innerText(), /upstream/);
      await p.close();
    } finally {
      if (viaAgent !== undefined) {
        viaAgent.child.kill("SIGTERM");
        await viaAgent.result;
      }
      mirror.child.kill("SIGTERM");
      await mirror.result;
    }
  });

  test("ferry mirror serves the page too: hit ratio, bytes served and fetched upstream", async () => {
    const mirror = startFerry([
      "mirror",
      "--listen",
      "127.0.0.1:0",
      "--store",
      join(work, "mirror-store"),
      "--upstream",
      `http://${reg}`,
    ]);
    let log = "";
    mirror.child.stderr?.on("data", (d: Buffer) => {
      log += d.toString("utf8");
    });
    try {
      const mirrorUrl = await untilLogged(
        "the mirror listening",
        mirror,
        () => log,
        /"msg":"mirror listening"[^\n]*"url":"([^"]+)"/,
        15_000,
      );
      allowed.push(`${mirrorUrl}/`);
      const host = new URL(mirrorUrl).host;
      for (const round of ["cold", "warm"]) {
        await promisify(execFile)("skopeo", [
          "--insecure-policy",
          "copy",
          "--quiet",
          "--src-tls-verify=false",
          `docker://${host}/team/big:1`,
          `oci:${join(work, `through-mirror-${round}`)}:1`,
        ]);
      }
      const status = JSON.parse(await get(`${mirrorUrl}/status`)) as {
        kind: string;
        mirror: { hits: number; misses: number; bytesServed: number; bytesUpstream: number };
      };
      assert.equal(status.kind, "mirror");
      // Each byte came from upstream once and went to skopeo twice.
      assert.equal(status.mirror.bytesUpstream, bigImageBytes);
      assert.ok(status.mirror.bytesServed >= 2 * bigImageBytes - 1024, JSON.stringify(status));
      assert.ok(status.mirror.hits > 0 && status.mirror.misses > 0, JSON.stringify(status));

      const mirrorPage = await context.newPage();
      const errors: string[] = [];
      mirrorPage.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      mirrorPage.on("pageerror", (e) => errors.push(String(e)));
      await mirrorPage.goto(`${mirrorUrl}/`);
      await mirrorPage.waitForSelector("#connection[data-state='live']");
      const summary = mirrorPage.locator("#chart-mirror-summary");
      await summary.waitFor({ state: "visible" });
      assert.match(
        await summary.innerText(),
        /^\d+% of \d+ requests answered from the store; 20\.\d MB served, 10\.\d MB fetched upstream\.$/,
      );
      assert.equal(await mirrorPage.locator("#chart-mirror canvas").count(), 1);
      // The tags it holds, the requests it answered, the upstream's health.
      const cachedRow = mirrorPage.locator("#cached-body tr", { hasText: "team/big:1" });
      await cachedRow.waitFor();
      assert.match(await cachedRow.innerText(), /team\/big:1\s+10\.\d MB\s+\d\d:\d\d:\d\d\s+[1-9]/);
      const requestRows = await mirrorPage.locator("#requests-body tr").allInnerTexts();
      assert.ok(
        requestRows.some((r) => /127\.0\.0\.1\s+team\/big@sha256:\w+\s+miss\s+10\.\d MB/.test(r)),
        requestRows.join("\n"),
      );
      assert.ok(
        requestRows.some((r) => /127\.0\.0\.1\s+team\/big@sha256:\w+\s+hit\s+10\.\d MB/.test(r)),
        requestRows.join("\n"),
      );
      assert.match(await mirrorPage.locator("#upstream").innerText(), /^Upstream answering/);
      // No retention policy: no watermark lines, so no legend entries for them; no blanks.
      const storeLegend = await mirrorPage.locator("#chart-store .u-legend").innerText();
      assert.doesNotMatch(storeLegend, /prune/);
      const mirrorLegend = await mirrorPage.locator("#chart-mirror .u-legend").innerText();
      assert.match(mirrorLegend, /hit ratio:?\s*\d+%[\s\S]*bytes served:?\s*20\.\d MB/);
      assert.doesNotMatch(`${storeLegend}\n${mirrorLegend}`, /--|–/);
      assert.equal(await mirrorPage.locator("#images").isVisible(), false);
      assert.match(await mirrorPage.title(), /^ferry mirror/);
      const mirrorShot = join(ARTIFACTS, "status-page-mirror.png");
      await mirrorPage.screenshot({ path: mirrorShot, fullPage: true });
      const docsMirrorShot = join(ROOT, "docs/status-page-mirror.png");
      if (
        process.env.UPDATE_DOCS_SCREENSHOT ||
        !(await stat(docsMirrorShot).catch(() => undefined))
      )
        await copyFile(mirrorShot, docsMirrorShot);
      await mirrorPage.close();
      assert.deepEqual(blocked, []);
      assert.deepEqual(errors, []);
    } finally {
      mirror.child.kill("SIGTERM");
      const result = await mirror.result;
      assert.equal(result.code, 0, describeRun(result));
    }
  });

  test("a mirror that shares blobs lists its peers, live or down, and its peer traffic", async () => {
    const [portA, portB, portGone] = await Promise.all([freePort(), freePort(), freePort()]);
    const key = join(work, "peer.key");
    await writeFile(key, "a fleet key of thirty-two bytes!\n");
    const members = [portA, portB, portGone].map((p) => `127.0.0.1:${p}`).join(",");
    const start = (name: string, port: number) =>
      startFerry([
        "mirror",
        "--listen",
        "127.0.0.1:0",
        "--store",
        join(work, `peer-mirror-${name}`),
        "--upstream",
        `http://${reg}`,
        "--peers",
        members,
        "--peer-listen",
        `127.0.0.1:${port}`,
        "--peer-key-file",
        key,
      ]);
    const mirrorA = start("a", portA);
    const mirrors = [mirrorA, start("b", portB)];
    let log = "";
    mirrorA.child.stderr?.on("data", (d: Buffer) => {
      log += d.toString("utf8");
    });
    try {
      const mirrorUrl = await untilLogged(
        "the mirror listening",
        mirrorA,
        () => log,
        /"msg":"mirror listening"[^\n]*"url":"([^"]+)"/,
        15_000,
      );
      allowed.push(`${mirrorUrl}/`);
      const p = await context.newPage();
      await p.goto(`${mirrorUrl}/`);
      const peerRow = (port: number) =>
        p.locator("#peers-body tr", { hasText: `127.0.0.1:${port}` });
      // The member nobody listens on is down once a probe has found it so; the other is live.
      await peerRow(portGone).filter({ hasText: "down" }).waitFor({ timeout: 30_000 });
      assert.match(await peerRow(portGone).innerText(), /down/);
      assert.match(await peerRow(portB).innerText(), /live/);
      assert.equal(await peerRow(portA).count(), 0); // itself is not a peer
      assert.match(
        await p.locator("#peer-traffic").innerText(),
        /^This node received \d[\d.]* k?B from peers and \d[\d.]* k?B from upstreams, and sent \d[\d.]* k?B to peers; 0 transfers from peers abandoned\.$/,
      );
      await p.close();
    } finally {
      for (const m of mirrors) {
        m.child.kill("SIGTERM");
        await m.result;
      }
    }
  });
});
