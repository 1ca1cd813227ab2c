// A page on another origin tries to end the user's session or change their password with
// the browser's cookies: as a fetch and as a form post, from another site (`localhost`) and
// from the same site on another port. Every attempt is refused and the session survives.

import assert from "node:assert/strict";
import { after, test } from "node:test";
import { PASSWORD, cleanup, logInThroughPage, newContext, openPage, signUpThroughPage, startProxy, startStatic, startTessera } from "./harness.mjs";

after(cleanup);

/** The attacker's page: fires both requests as no-cors fetches and then a form post. */
function attackerPage(target) {
  const body = JSON.stringify({ current_password: PASSWORD, new_password: "owned by the attacker" });
  return `<!doctype html><title>totally harmless</title>
<form id="f" method="post" action="${target}/v1/logout"></form>
<script>
  window.done = (async () => {
    const opts = { method: "POST", credentials: "include", mode: "no-cors" };
    await fetch(${JSON.stringify(target)} + "/v1/logout", opts).catch(() => {});
    await fetch(${JSON.stringify(target)} + "/v1/logout-all", opts).catch(() => {});
    await fetch(${JSON.stringify(target)} + "/v1/password", { ...opts, headers: { "content-type": "text/plain" }, body: ${JSON.stringify(body)} }).catch(() => {});
    return true;
  })();
</script>`;
}

for (const mode of ["session", "hybrid"]) {
  test(`cross-origin POSTs to /v1/logout and /v1/password are refused (${mode})`, async () => {
    const tessera = await startTessera({ TESSERA_AUTH__MODE: mode });
    const proxy = await startProxy(tessera);
    const ctx = await newContext();
    const victim = await openPage(ctx);
    await signUpThroughPage(victim, proxy.origin, "victim");

    const files = { "/": ["text/html", attackerPage(proxy.origin)] };
    // Another site (localhost is not 127.0.0.1), and the same site on another port.
    const crossSite = await startStatic(files, "localhost");
    const sameSite = await startStatic(files, "127.0.0.1");
    for (const origin of [crossSite, sameSite]) {
      const attacker = await openPage(ctx);
      const from = proxy.requests.length;
      await attacker.goto(origin + "/");
      await attacker.evaluate(() => window.done);
      // The form post is a top-level navigation with whatever cookies the browser attaches.
      await Promise.all([attacker.waitForURL(proxy.origin + "/v1/logout"), attacker.evaluate(() => document.getElementById("f").submit())]);
      const attempts = proxy.requests.slice(from).filter((r) => r.method == "POST");
      assert.deepEqual(
        attempts.map((r) => r.path),
        ["/v1/logout", "/v1/logout-all", "/v1/password", "/v1/logout"],
        `every attempt from ${origin} reached the server`,
      );
      // 401: no cookie came along (another site); 403: the CSRF token (or the Origin) is
      // missing. A page cannot send JSON cross-origin without a CORS preflight tessera never
      // grants, so its password attempt is text/plain, which a stricter server may also
      // refuse as such (415): every answer is a refusal.
      for (const r of attempts) {
        const allowed = r.path == "/v1/password" ? [401, 403, 415] : [401, 403];
        assert.ok(allowed.includes(r.status), `${r.path} from ${origin}: ${r.status}`);
      }
      await attacker.close();
    }

    // The session survived, and the password is unchanged.
    await victim.reload();
    await victim.getByText("Signed in as victim").waitFor();
    assert.equal(await victim.evaluate(async () => (await fetch("/v1/me")).status), 200);
    assert.deepEqual(tessera.audit("logout"), []);
    assert.deepEqual(tessera.audit("password_changed"), []);
    const fresh = await newContext();
    const check = await openPage(fresh);
    await logInThroughPage(check, proxy.origin, "victim", PASSWORD);
    await check.waitForURL(proxy.origin + "/account");
    await fresh.close();
    await ctx.close();
  });
}
