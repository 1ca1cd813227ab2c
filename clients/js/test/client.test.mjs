// The client module's API in Chromium, loaded from tessera's /tessera.js: typed errors, the
// fetch wrapper's headers, the bearer transport keeping tokens out of storage and cookies,
// session mode never refreshing, and the committed build matching a fresh one.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, test } from "node:test";
import { PASSWORD, ROOT, cleanup, newContext, openPage, sleep, startProxy, startTessera } from "./harness.mjs";

after(cleanup);

test("the committed dist/ is what the source builds to, under 8 KiB", () => {
  const out = execFileSync(process.execPath, [join(ROOT, "scripts/build.mjs"), "--check"], { encoding: "utf8" });
  assert.match(out, /dist\/ matches a fresh build/);
  console.log(out.trim());
});

/** A page on tessera's origin with `window.T` (the module) loaded; /signup runs no client of
 *  its own that would refresh. */
async function modulePage(ctx, origin) {
  const page = await openPage(ctx);
  await page.goto(origin + "/signup");
  await page.evaluate(async () => {
    window.T = await import("/tessera.js");
  });
  return page;
}

test("failures are TesseraErrors with codes; nothing is left unhandled", async () => {
  const tessera = await startTessera({ TESSERA_AUTH__MODE: "hybrid" });
  const proxy = await startProxy(tessera);
  const ctx = await newContext();
  const page = await modulePage(ctx, proxy.origin);
  const errors = await page.evaluate(async (password) => {
    const t = new T.Tessera({ name: "errors" });
    const caught = async (p) => {
      try {
        await p;
        return "resolved";
      } catch (e) {
        return { typed: e instanceof T.TesseraError, code: e.code, status: e.status };
      }
    };
    await t.signUp("erin", password);
    return {
      taken: await caught(t.signUp("erin", password)),
      short: await caught(t.signUp("erin2", "short")),
      wrong: await caught(t.logIn("erin", "wrong password!")),
      me: await caught(t.me()),
      sessions: await caught(t.sessions()),
    };
  }, PASSWORD);
  proxy.fault = { path: "/v1/login", mode: "drop" };
  errors.network = await page.evaluate(async (password) => {
    try {
      await new T.Tessera({ name: "errors" }).logIn("erin", password);
    } catch (e) {
      return { typed: e instanceof T.TesseraError, code: e.code, status: e.status };
    }
  }, PASSWORD);
  assert.deepEqual(errors, {
    taken: { typed: true, code: "username-taken", status: 409 },
    short: { typed: true, code: "invalid-request", status: 400 },
    wrong: { typed: true, code: "invalid-credentials", status: 401 },
    me: { typed: true, code: "unauthenticated", status: 401 },
    sessions: { typed: true, code: "unauthenticated", status: 401 },
    network: { typed: true, code: "network", status: 0 },
  });
  await sleep(200);
  assert.deepEqual(page.problems.filter((m) => !/Failed to load resource/.test(m)), [], "no unhandled rejection");
  assert.equal(proxy.refused.length, 1);
  await ctx.close();
});

test("cookie transport: the fetch wrapper sends the CSRF token on unsafe methods only", async () => {
  const tessera = await startTessera({ TESSERA_AUTH__MODE: "session" });
  const proxy = await startProxy(tessera);
  const ctx = await newContext();
  const page = await modulePage(ctx, proxy.origin);
  const result = await page.evaluate(async (password) => {
    const t = new T.Tessera({ name: "wrapper" });
    await t.signUp("fred", password);
    const user = await t.logIn("fred", password);
    const get = await t.fetch("/v1/sessions");
    const sessions = (await get.json()).sessions;
    const del = await t.fetch("/v1/sessions/" + sessions[0].id, { method: "DELETE" });
    return { user: user.username, get: get.status, del: del.status, signedIn: !!t.user };
  }, PASSWORD);
  assert.deepEqual(result, { user: "fred", get: 200, del: 204, signedIn: true });
  const get = proxy.count("GET", "/v1/sessions").at(-1);
  const del = proxy.requests.findLast((r) => r.method == "DELETE");
  assert.equal(get.headers["x-csrf-token"], undefined);
  assert.match(del.headers["x-csrf-token"], /^[A-Za-z0-9_-]{20,}$/);
  // Session mode: nothing to refresh, ever.
  assert.equal(proxy.count("POST", "/v1/refresh").length, 0);
  await ctx.close();
});

test("bearer transport: tokens stay in memory, shared with a second tab, never in storage or cookies", async () => {
  const tessera = await startTessera({ TESSERA_AUTH__MODE: "hybrid", TESSERA_JWT__ACCESS_TTL: "2s", TESSERA_REFRESH__REUSE_GRACE: "1s" });
  const proxy = await startProxy(tessera);
  const ctx = await newContext();
  const first = await modulePage(ctx, proxy.origin);
  await first.evaluate(async (password) => {
    window.t = new T.Tessera({ name: "bearer", transport: "bearer" });
    await t.signUp("gina", password);
    await t.logIn("gina", password);
  }, PASSWORD);
  const second = await modulePage(ctx, proxy.origin);
  const user = await second.evaluate(async () => {
    window.t = new T.Tessera({ name: "bearer", transport: "bearer" });
    return (await t.start())?.username;
  });
  assert.equal(user, "gina", "the second tab got the sign-in from the first");
  await sleep(5_000); // through two expiries
  for (const page of [first, second]) {
    const seen = await page.evaluate(async () => ({
      me: (await t.fetch("/v1/me")).status,
      storage: localStorage.length + sessionStorage.length,
      cookie: document.cookie,
    }));
    assert.deepEqual(seen, { me: 200, storage: 0, cookie: "" });
  }
  assert.deepEqual(await ctx.cookies(), [], "no cookie at all");
  const me = proxy.count("GET", "/v1/me").at(-1);
  assert.match(me.headers.authorization, /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
  const refreshes = proxy.count("POST", "/v1/refresh");
  assert.ok(refreshes.length >= 2 && refreshes.every((r) => r.status == 200), "refreshed: " + refreshes.map((r) => r.status));
  assert.deepEqual(tessera.audit("refresh_reuse_detected"), []);
  await ctx.close();
});

test("jwt mode: with refresh the sign-in lasts; without, it ends at expiry with one signed-out", async () => {
  for (const [refresh, lasts] of [["true", true], ["false", false]]) {
    const tessera = await startTessera({ TESSERA_AUTH__MODE: "jwt", TESSERA_JWT__ACCESS_TTL: "2s", TESSERA_REFRESH__REUSE_GRACE: "1s", TESSERA_REFRESH__ENABLED: refresh });
    const proxy = await startProxy(tessera);
    const ctx = await newContext();
    const page = await modulePage(ctx, proxy.origin);
    await page.evaluate(async (password) => {
      window.events = [];
      window.t = new T.Tessera({ name: "jwt" });
      t.on("signed-out", (d) => events.push(d.reason));
      await t.signUp("hana", password);
      await t.logIn("hana", password);
    }, PASSWORD);
    await sleep(3_500);
    const seen = await page.evaluate(async () => ({ me: (await t.fetch("/v1/me")).status, events, user: t.user?.username ?? null }));
    const refreshes = proxy.count("POST", "/v1/refresh").map((r) => r.status);
    if (lasts) {
      assert.deepEqual(seen, { me: 200, events: [], user: "hana" });
      assert.ok(refreshes.length >= 1 && refreshes.every((s) => s == 200), "refreshed: " + refreshes);
    } else {
      assert.deepEqual(seen, { me: 401, events: ["expired"], user: null });
      assert.ok(refreshes.every((s) => s == 404) && refreshes.length <= 2, "at most a probe or two: " + refreshes);
    }
    await ctx.close();
  }
});
