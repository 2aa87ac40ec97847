/**
 * `kubectl verso dashboard` in a real headless browser (Debian's chromium, driven by
 * playwright-core) against a real API server: the release list and one release update live,
 * the charts draw each version with the gates' thresholds, the buttons ask for confirmation
 * and write as the user, a user without `patch` sees the API server's refusal, and requests
 * without the page's CSRF token or from another Host are refused.
 *
 * Skipped, with the reason, when /usr/bin/chromium is missing (`apt-get install -y chromium`).
 * `VERSO_SCREENSHOTS=1` writes the screenshots to docs/ (the README shows them); otherwise
 * they go to a temp dir.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, statSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../harness/paths.ts";
import { waitFor } from "../harness/ports.ts";
import { CLI, NODE_BIN, SCENE_NS, startScene, type Scene } from "./cliFixtures.ts";
import { statusOf, waitForPhase } from "./controllerFixtures.ts";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
const NS = SCENE_NS;
const SHOTS =
  process.env.VERSO_SCREENSHOTS === "1"
    ? join(REPO_ROOT, "docs", "images")
    : mkdtempSync(join(tmpdir(), "verso-shots-"));

if (!existsSync(CHROMIUM))
  console.warn(`[cli-dashboard.test] skipped: ${CHROMIUM} missing (apt-get install -y chromium)`);

interface Served {
  url: string;
  proc: ChildProcess;
  stop(): Promise<number | null>;
}

/** `kubectl-verso dashboard` as its own process; resolves once it printed its URL. */
function serve(kubeconfig: string): Promise<Served> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      join(NODE_BIN, "node"),
      [CLI, "dashboard", "-n", NS, "--port", "0", "--interval", "1s"],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, KUBECONFIG: kubeconfig, PATH: `${NODE_BIN}:${process.env.PATH}` },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    let err = "";
    proc.stderr!.on("data", (c: Buffer) => (err += c.toString()));
    proc.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /Verso dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m)
        resolve({
          url: m[1]!,
          proc,
          stop: () =>
            new Promise((done) => {
              proc.once("exit", (code) => done(code));
              proc.kill("SIGINT");
            }),
        });
    });
    proc.once("exit", (code) => reject(new Error(`dashboard exited ${code}: ${err}`)));
  });
}

/** A raw request, so Host and Origin can be anything (fetch would not let us set Host). */
function raw(
  url: string,
  method: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: { reason?: string; code?: string; message?: string } }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) }));
    });
    req.once("error", reject);
    req.end();
  });
}

describe.skipIf(!existsSync(CHROMIUM))("kubectl verso dashboard in a headless browser", () => {
  let scene: Scene;
  let admin: Served;
  let viewer: Served;
  let browser: Browser;
  let page: Page;
  const client = () => scene.cluster.cp.client;

  beforeAll(async () => {
    scene = await startScene();
    admin = await serve(scene.cluster.cp.kubeconfig);
    viewer = await serve(scene.viewer);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  });

  afterAll(async () => {
    await browser?.close();
    const codes = await Promise.all([admin?.stop(), viewer?.stop()]);
    await scene?.stop();
    // Ctrl-C ends the dashboard cleanly.
    expect(codes).toEqual([0, 0]);
  });

  it("lists every release, live", async () => {
    await page.goto(admin.url);
    const shop = page.locator('tr[data-app="shop"]');
    await shop.waitFor();
    await expect.poll(() => shop.textContent()).toMatch(/canary\s*Progressing\s*1\/3/);
    expect(await page.locator('tr[data-app="cart"]').textContent()).toContain("10%");
    expect(await page.locator('tr[data-app="plain"]').count()).toBe(0);
    // The actual weight needs two refreshes: it arrives by itself, the page is live.
    if (scene.range)
      await expect
        .poll(() => shop.locator('[data-testid="weights"]').textContent(), { timeout: 15_000 })
        .toMatch(/^20% \/ [\d.]+%$/);
    expect(await page.locator("#live").textContent()).toBe("live");
    await page.screenshot({
      path: join(SHOTS, "dashboard-releases.png"),
      clip: { x: 0, y: 0, width: 1280, height: 280 },
    });
  });

  it("one release: charts per version with gate thresholds, weights, versions, gates, timeline", async () => {
    await page.locator('tr[data-app="shop"]').click();
    await page.waitForURL(/#\/ns\/cli\/app\/shop$/);
    await expect.poll(() => page.locator('[data-testid="title"]').textContent()).toMatch(/shop/);
    // A few refreshes, so every chart has a history to draw.
    if (scene.range)
      await expect
        .poll(() => page.locator('svg[aria-label="rate"] polyline.series').count(), {
          timeout: 20_000,
        })
        .toBe(2);
    await page.waitForTimeout(6_000);
    expect(await page.locator('svg[aria-label="error rate"] line.threshold').count()).toBe(1);
    expect(await page.locator('svg[aria-label="p99"] line.threshold').count()).toBe(1);
    expect(await page.locator('svg[aria-label="weight"] polyline.series').count()).toBe(
      scene.range ? 2 : 1,
    );
    const versions = await page.locator('[data-testid="versions"] tbody').textContent();
    expect(versions).toMatch(/v1\s*stable\s*shop-v1\s*1\/1/);
    expect(versions).toMatch(/v2\s*release\s*shop-v2\s*1\/1/);
    const gates = await page.locator('[data-testid="gates"] tbody').textContent();
    expect(gates).toMatch(/error rate[\s\S]*≤ 5%/);
    expect(gates).toMatch(/p99[\s\S]*≤ 500ms/);
    expect(await page.locator('[data-testid="timeline"]').textContent()).toContain("Started");
    if (scene.range)
      expect(await page.locator('[data-testid="actual"]').textContent()).toMatch(/[\d.]+%/);
    await page.screenshot({ path: join(SHOTS, "dashboard-release.png"), fullPage: true });
    expect(statSync(join(SHOTS, "dashboard-release.png")).size).toBeGreaterThan(10_000);
  });

  it("buttons ask first, then write as the user: pause, resume, promote one step", async () => {
    await page.locator('button[data-action="pause"]').click();
    await expect
      .poll(() => page.locator("#modal-title").textContent())
      .toBe("Pause: shop (shop-v2)?");
    await page.locator("#modal-cancel").click();
    expect(await page.locator("#modal").isHidden()).toBe(true);
    expect((await statusOf(client(), NS, "shop-v2"))?.phase).toBe("Progressing");

    await page.locator('button[data-action="pause"]').click();
    await page.locator("#modal-confirm").click();
    await expect.poll(() => page.locator("#toast").textContent()).toContain("paused at step 1");
    await waitForPhase(client(), NS, "shop-v2", "Paused", 30_000);
    // The page follows by itself and offers Resume.
    const resume = page.locator('button[data-action="resume"]');
    await resume.waitFor({ timeout: 15_000 });
    await resume.click();
    await page.locator("#modal-confirm").click();
    await waitForPhase(client(), NS, "shop-v2", "Progressing", 30_000);

    await page.locator('button[data-action="promote"]').click();
    await page.locator("#modal-confirm").click();
    await expect
      .poll(() => page.locator("#toast").textContent(), { timeout: 15_000 })
      .toContain("step 2 of 3, 50% of traffic to v2");
    await waitFor(
      "shop-v2 at step 2",
      async () => ((await statusOf(client(), NS, "shop-v2"))?.step === 2 ? true : undefined),
      15_000,
      250,
    );
  });

  it("a user without patch gets the API server's refusal on the page", async () => {
    const p = await browser.newPage();
    await p.goto(`${viewer.url}#/ns/${NS}/app/shop`);
    await p.locator('button[data-action="abort"]').click();
    await p.locator("#modal-confirm").click();
    const toast = p.locator("#toast.bad");
    await toast.waitFor();
    const text = await toast.textContent();
    expect(text).toContain('forbidden: you may not patch deployments.apps "shop-v2"');
    expect(text).toContain('User "viewer" cannot patch resource "deployments"');
    expect((await statusOf(client(), NS, "shop-v2"))?.phase).not.toBe("Failed");
    await p.close();
  });

  it("refuses writes without the CSRF token, from another origin, or under another Host", async () => {
    const base = `${admin.url}api/releases/${NS}/shop/abort`;
    const host = new URL(admin.url).host;
    const noToken = await raw(base, "POST", { host });
    expect(noToken).toMatchObject({ status: 403, body: { reason: "CsrfToken" } });
    const token = await page.locator('meta[name="verso-csrf"]').getAttribute("content");
    const foreign = await raw(base, "POST", {
      host,
      origin: "http://evil.example",
      "x-verso-csrf": token!,
    });
    expect(foreign).toMatchObject({ status: 403, body: { reason: "CrossOrigin" } });
    const rebound = await raw(admin.url, "GET", {
      host: `evil.example:${new URL(admin.url).port}`,
    });
    expect(rebound).toMatchObject({ status: 421, body: { reason: "WrongHost" } });
    expect((await statusOf(client(), NS, "shop-v2"))?.phase).not.toBe("Failed");
  });
});
