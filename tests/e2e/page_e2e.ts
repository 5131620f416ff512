/**
 * The page in a real browser: starts the server (main.ts, synthetic model, loopback), drives
 * Debian's Chromium with playwright-core, and saves screenshots under tests/.out/screenshots/.
 *
 * Run with `deno task test:e2e`. Needs Chromium at /usr/bin/chromium (`apt-get install -y
 * chromium`) or at $CHROMIUM. Not part of `deno task test` (the file name does not end in _test).
 */
import { freePort } from "../_process.ts";
import assert from "node:assert/strict";
import { type BrowserContext, chromium, type Page } from "playwright-core";

const ROOT = new URL("../../", import.meta.url);
const SCREENSHOTS = new URL("../.out/screenshots/", import.meta.url);
const CHROMIUM = Deno.env.get("CHROMIUM") ?? "/usr/bin/chromium";
const FIXTURE = new URL("../fixtures/chelsea.jpg", import.meta.url).pathname;
/** The page's own HTML + JS + CSS, onnxruntime-web and the model not counted. */
const PAGE_BUDGET = 100 * 1024;

/** The real server, as `deno task start` runs it, on the synthetic model. */
async function startServer() {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-sys",
      "main.ts",
    ],
    cwd: ROOT.pathname,
    env: {
      PORT: String(port),
      HOST: "127.0.0.1",
      MODEL: "synthetic",
      MODEL_OFFLINE: "1",
      LOG_LEVEL: "warn",
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let log = "";
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      log = (log + chunk).slice(-20_000);
    }
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const url = `http://127.0.0.1:${port}/`;
  const deadline = Date.now() + 240_000;
  for (;;) {
    if (exited) throw new Error(`Cannot start the server: it exited.\n${log}`);
    try {
      const res = await fetch(`${url}readyz`);
      await res.body?.cancel();
      if (res.ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      throw new Error(`Cannot start the server: not ready in 240 s.\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url,
    log: () => log,
    async close() {
      if (!exited) child.kill("SIGTERM");
      await status;
      await drained;
    },
  };
}

async function launch(): Promise<BrowserContext> {
  const userDataDir = await Deno.makeTempDir({ prefix: "alexnet-edge-chromium-" });
  // playwright-core adds --headless (headless: true) and --user-data-dir (userDataDir).
  return await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

const count = (page: Page, selector: string) => page.locator(selector).count();

/** In the page: whether <img id> is shown and loaded at that size (no DOM lib here, so typed by hand). */
function imageLoaded({ id, width, height }: { id: string; width: number; height: number }) {
  type Img = { hidden: boolean; complete: boolean; naturalWidth: number; naturalHeight: number };
  const doc = (globalThis as unknown as { document: { getElementById(id: string): Img | null } })
    .document;
  const img = doc.getElementById(id);
  return !!img && !img.hidden && img.complete && img.naturalWidth === width &&
    img.naturalHeight === height;
}

Deno.test({
  name: "the page classifies an upload, explores the layers and runs the model in the browser",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await Deno.stat(CHROMIUM).catch(() => {
      throw new Error(`Cannot find Chromium at ${CHROMIUM}: apt-get install -y chromium`);
    });
    await Deno.mkdir(SCREENSHOTS, { recursive: true });
    const server = await startServer();
    const context = await launch();
    const errors: string[] = [];
    try {
      const page = context.pages()[0] ?? await context.newPage();
      page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(`console: ${m.text()}`);
      });
      await page.goto(server.url);
      await page.locator("#model-status[data-state=ready]").waitFor({ timeout: 60_000 });

      await t.step("the synthetic-weights banner and the model facts show", async () => {
        await page.locator("#weights-banner").waitFor({ state: "visible" });
        assert.match(await page.locator("#weights-notice").innerText(), /Synthetic weights/);
        assert.match(await page.locator("#model-params").innerText(), /60,965,224/);
      });

      await t.step("the drop zone opens the file picker from the keyboard", async () => {
        // Count clicks on the hidden file input, and keep the native dialog closed.
        await page.evaluate(`(() => {
          globalThis.pickerOpened = 0;
          document.getElementById("file-input").addEventListener("click", (e) => {
            globalThis.pickerOpened++;
            e.preventDefault();
          });
        })()`);
        await page.locator("#dropzone").focus();
        await page.keyboard.press("Enter");
        await page.keyboard.press(" ");
        assert.equal(await page.evaluate<number>("globalThis.pickerOpened"), 2);
      });

      await t.step("an upload shows five bars, the timings and the model's-eye view", async () => {
        await page.setInputFiles("#file-input", FIXTURE);
        await page.locator("#predictions .prediction").nth(4).waitFor({ timeout: 60_000 });
        assert.equal(await count(page, "#predictions .prediction"), 5);
        assert.equal(await count(page, "#predictions [role=meter]"), 5);
        const labels = await page.locator("#predictions .pred-label").allInnerTexts();
        assert.ok(labels.every((l) => l.length > 0));
        assert.equal(await count(page, "#timings div"), 4);
        for (const text of await page.locator("#timings dd").allInnerTexts()) {
          assert.match(text, /^[\d,.]+ ms$/);
        }
        await page.locator("#eye").waitFor({ state: "visible" });
        assert.match(await page.locator("#eye-caption").innerText(), /448×288 resized to 398×256/);
        assert.equal(await count(page, "#cmp-server li"), 5);
        assert.equal(await page.locator("#error").innerText(), "");
      });

      await t.step(
        "the explorer shows the layers, the conv1 filters and feature maps",
        async () => {
          await page.locator("#explorer summary").click();
          await page.locator("#layers tbody tr").nth(13).waitFor({ timeout: 60_000 });
          assert.equal(await count(page, "#layers tbody tr"), 14);
          const first = await page.locator("#layers tbody tr").first().innerText();
          assert.match(first, /conv1/);
          assert.match(first, /96×54×54/);
          assert.match(await page.locator("#layers tfoot").innerText(), /60,965,224/);
          await page.waitForFunction(imageLoaded, { id: "filters", width: 554, height: 370 }, {
            timeout: 60_000,
          });
          await page.waitForFunction(imageLoaded, { id: "fm", width: 450, height: 450 }, {
            timeout: 60_000,
          });
          assert.match(await page.locator("#fm-caption").innerText(), /^conv1: the first 64 of 96/);
          await page.selectOption("#fm-layer", "pool2");
          await page.locator("#fm-caption", { hasText: /^pool2: the first 64 of 256/ }).waitFor({
            timeout: 60_000,
          });
          await page.selectOption("#fm-layer", "conv1");
          await page.locator("#fm-caption", { hasText: /^conv1:/ }).waitFor({ timeout: 60_000 });
          assert.equal(await page.locator("#explorer-error").innerText(), "");
        },
      );

      await t.step("the same model runs in the browser, beside the server's answer", async () => {
        // WebAssembly under a Content-Security-Policy needs script-src 'wasm-unsafe-eval'.
        const page0 = await fetch(server.url);
        await page0.body?.cancel();
        const csp = page0.headers.get("content-security-policy");
        assert.ok(
          !csp || !/script-src/.test(csp) || /script-src[^;]*'wasm-unsafe-eval'/.test(csp),
          `The page's Content-Security-Policy blocks onnxruntime-web's WebAssembly: ${csp}`,
        );
        await page.locator("#local-run").click();
        await page.locator("#cmp-local li").nth(4).waitFor({ timeout: 240_000 });
        assert.equal(await count(page, "#cmp-local li"), 5);
        assert.match(await page.locator("#cmp-local-backend").innerText(), /WebGPU|WebAssembly/);
        assert.match(await page.locator("#cmp-local-time").innerText(), /inference [\d,.]+ ms/);
        assert.equal(await page.locator("#local-error").innerText(), "");
      });

      await t.step("a large JPEG is scaled in the browser before upload", async () => {
        const large = new URL("../fixtures/jpeg_large_420.jpg", import.meta.url).pathname;
        const answer = page.waitForResponse((r) => new URL(r.url()).pathname.endsWith("/predict"), {
          timeout: 60_000,
        });
        await page.setInputFiles("#file-input", large);
        await page.locator("#preview-caption", { hasText: /scaled from 1600×1067 to \d+×1024/ })
          .waitFor({ timeout: 60_000 });
        assert.equal((await answer).status(), 200);
        assert.equal(await page.locator("#error").innerText(), "");
      });

      await t.step("the page's own HTML, JS and CSS weigh at most 100 KB", async () => {
        const bytes = await page.evaluate<number>(`(() => {
          const own = (name) => {
            const { pathname } = new URL(name);
            return !pathname.startsWith("/vendor/") && !pathname.startsWith("/v1/") &&
              /(\\.(html|js|css)|\\/)$/.test(pathname);
          };
          const entries = [
            ...performance.getEntriesByType("navigation"),
            ...performance.getEntriesByType("resource"),
          ];
          return entries.filter((e) => own(e.name)).reduce((a, e) => a + e.decodedBodySize, 0);
        })()`);
        assert.ok(bytes > 20_000, `${bytes} bytes: the page's files were not all seen`);
        assert.ok(bytes <= PAGE_BUDGET, `the page weighs ${bytes} bytes, over ${PAGE_BUDGET}`);
      });

      await t.step("screenshots at desktop and phone width", async () => {
        await page.evaluate("scrollTo(0, 0)");
        await page.screenshot({
          path: new URL("desktop.png", SCREENSHOTS).pathname,
          fullPage: true,
        });
        await page.setViewportSize({ width: 390, height: 844 });
        await page.evaluate("scrollTo(0, 0)");
        const overflow = await page.evaluate<number>("document.documentElement.scrollWidth");
        assert.ok(overflow <= 390, `the page is ${overflow} px wide at phone width`);
        await page.screenshot({ path: new URL("phone.png", SCREENSHOTS).pathname, fullPage: true });
        await page.screenshot({ path: new URL("phone-top.png", SCREENSHOTS).pathname });
      });

      assert.deepEqual(errors, []);
    } catch (e) {
      console.error(`Server log:\n${server.log()}`);
      throw e;
    } finally {
      await context.close();
      await server.close();
    }
  },
});
