// examples/spa-demo in Chromium: the app logs in through tessera.js behind one origin, calls
// its protected API with the fetch wrapper across access-token expiries, and loses access
// when it logs out.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, test } from "node:test";
import { PASSWORD, ROOT, cleanup, newContext, openPage, screenshot, sleep, startTessera, unlabelledInputs } from "./harness.mjs";

after(cleanup);

/** Starts the demo's server in front of `tessera`; resolves to its origin. */
async function startDemo(tessera) {
  const child = spawn(process.execPath, [join(ROOT, "../../examples/spa-demo/server.mjs")], {
    env: { PATH: process.env.PATH, TESSERA_URL: `http://127.0.0.1:${tessera.port}`, PORT: "0" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  after(() => child.kill());
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding("utf8").on("data", (d) => {
      const m = d.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) resolve(m[1]);
    });
    child.on("exit", (code) => reject(new Error("spa-demo exited with " + code)));
  });
}

test("the SPA demo logs in, calls its API through expiries, and logs out", async () => {
  const tessera = await startTessera({ TESSERA_AUTH__MODE: "hybrid", TESSERA_JWT__ACCESS_TTL: "2s", TESSERA_REFRESH__REUSE_GRACE: "1s" });
  const origin = await startDemo(tessera);
  const ctx = await newContext();
  const page = await openPage(ctx);
  const api = [];
  page.on("response", (r) => r.url().endsWith("/api/hello") && api.push(r.status()));
  const refreshes = [];
  page.on("request", (r) => r.url().endsWith("/v1/refresh") && refreshes.push(r.method()));

  await page.goto(origin + "/");
  await page.getByLabel("Username").fill("demo");
  await page.getByLabel("Password").fill(PASSWORD);
  assert.deepEqual(await unlabelledInputs(page), []);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByText("Signed in as demo").waitFor();

  const call = async () => {
    await page.evaluate(() => (document.getElementById("answer").textContent = ""));
    await page.getByRole("button", { name: "Call the protected API" }).click();
    await page.getByText('"message": "Hello, demo!"').waitFor();
  };
  await call();
  await screenshot(page, "spa-demo");
  await sleep(4_500); // past two access-token lifetimes
  await call();
  assert.deepEqual(api, [200, 200], "both calls succeeded");
  assert.ok(refreshes.length >= 2, "the client refreshed silently: " + refreshes.length);

  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByText("Logged out.").waitFor();
  assert.equal(await page.evaluate(async () => (await fetch("/api/hello")).status), 401, "the API refuses once logged out");
  assert.deepEqual(page.problems.filter((m) => !/status of 401/.test(m)), []);
  assert.deepEqual(tessera.audit("refresh_reuse_detected"), []);
  await ctx.close();
});
