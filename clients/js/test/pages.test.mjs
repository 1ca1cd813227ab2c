// tessera's pages in headless Chromium, in session and hybrid modes with the cookie
// transport: sign up, log in, /account, password change, log out; what the page can read of
// the cookies; the errors a person sees; return_to; labels and console errors on every page.

import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import {
  PASSWORD,
  cleanup,
  logInThroughPage,
  newContext,
  openPage,
  screenshot,
  signUpThroughPage,
  startProxy,
  startTessera,
  unlabelledInputs,
} from "./harness.mjs";

after(cleanup);

const NEW_PASSWORD = "a much longer passphrase now";
/** The console line Chromium writes for any HTTP error answer to a fetch. */
const HTTP_ERROR = /Failed to load resource: the server responded with a status of (401|409|429|503)/;

for (const mode of ["session", "hybrid"]) {
  describe(`pages in ${mode} mode`, () => {
    test("sign up, account, log out, log in, password change, log out everywhere", async () => {
      const tessera = await startTessera({ TESSERA_AUTH__MODE: mode });
      const { origin } = await startProxy(tessera);
      const ctx = await newContext();
      const page = await openPage(ctx);

      // A visitor at / is sent to /login; every input on the public pages is labelled.
      await page.goto(origin + "/");
      assert.equal(page.url(), origin + "/login");
      await page.getByRole("button", { name: "Log in" }).waitFor();
      assert.deepEqual(await unlabelledInputs(page), []);
      if (mode == "session") await screenshot(page, "login");
      await page.goto(origin + "/signup");
      assert.deepEqual(await unlabelledInputs(page), []);
      if (mode == "session") await screenshot(page, "signup");

      await signUpThroughPage(page, origin, "alice");
      assert.deepEqual(await unlabelledInputs(page), []);
      await page.locator("#sessions tbody tr").first().waitFor();
      assert.equal(await page.locator("#mode").textContent(), mode);

      // The page's scripts see the CSRF cookie and nothing else; the credentials are there,
      // HttpOnly.
      const readable = await page.evaluate(() => document.cookie);
      assert.match(readable, /^__Host-tessera-csrf=[^;]+$/, "document.cookie: " + readable);
      const jar = await ctx.cookies();
      const names = jar.map((c) => c.name).sort();
      const credentials = mode == "session" ? ["__Host-tessera-session"] : ["__Host-tessera-access", "__Secure-tessera-refresh", "__Host-tessera-refresh"];
      assert.ok(credentials.some((n) => names.includes(n)), "credential cookies present: " + names);
      for (const c of jar.filter((c) => c.name != "__Host-tessera-csrf")) {
        assert.ok(c.httpOnly, `${c.name} is HttpOnly`);
        assert.ok(!readable.includes(c.name), `${c.name} is not readable`);
      }

      // The current session is marked.
      const rows = page.locator("#sessions tbody tr");
      assert.equal(await rows.count(), 1);
      assert.match(await rows.first().textContent(), /this device/);
      assert.equal(await rows.first().getAttribute("aria-current"), "true");

      // A second device logs in: two sessions; the first revokes the second.
      const other = await newContext();
      const otherPage = await openPage(other);
      await logInThroughPage(otherPage, origin, "alice");
      await otherPage.waitForURL(origin + "/account");
      await page.reload();
      await page.locator("#sessions tbody tr").nth(1).waitFor();
      if (mode == "session") await screenshot(page, "account");
      await page.getByRole("button", { name: /^Revoke session/ }).click();
      await page.waitForFunction(() => document.querySelectorAll("#sessions tbody tr").length == 1);
      await page.waitForFunction(() => document.activeElement.id == "sessions-heading"); // focus stays in the list
      await otherPage.reload();
      await otherPage.waitForURL(/\/login\?return_to=%2Faccount$/);

      // Password change: a wrong current password is explained, the fields are emptied.
      await page.getByLabel("Current password").fill("not my password at all");
      await page.getByLabel("New password", { exact: true }).fill(NEW_PASSWORD);
      await page.getByLabel("Repeat the new password").fill(NEW_PASSWORD);
      await page.getByRole("button", { name: "Change password" }).click();
      await page.getByText("The current password is wrong.").waitFor();
      assert.equal(await page.getByLabel("New password", { exact: true }).inputValue(), "");
      assert.equal(page.url(), origin + "/account", "a wrong password does not sign out");

      await logInThroughPage(otherPage, origin, "alice");
      await otherPage.waitForURL(origin + "/account");
      await page.getByLabel("Current password").fill(PASSWORD);
      await page.getByLabel("New password", { exact: true }).fill(NEW_PASSWORD);
      await page.getByLabel("Repeat the new password").fill(NEW_PASSWORD);
      await page.getByRole("button", { name: "Change password" }).click();
      await page.getByText("Password changed. Every other session has been logged out.").waitFor();
      assert.equal(await page.locator("#sessions tbody tr").count(), 1, "the other session ended");
      await page.reload();
      await page.getByText("Signed in as alice").waitFor();
      await otherPage.reload();
      await otherPage.waitForURL(/\/login/);

      // Log out; / now leads to /login, and so does /account.
      await page.getByRole("button", { name: "Log out", exact: true }).click();
      await page.waitForURL(/\/login/);
      assert.equal(await page.evaluate(() => document.cookie), "");
      await page.goto(origin + "/account");
      await page.waitForURL(origin + "/login?return_to=%2Faccount");
      await page.getByRole("button", { name: "Log in" }).waitFor();

      // The new password works; the page returns to where it was asked to.
      await logInThroughPage(page, origin, "alice", NEW_PASSWORD, "?return_to=%2Faccount%3Ffrom%3Dlogin");
      await page.waitForURL(origin + "/account?from=login");
      await page.getByText("Signed in as alice").waitFor();
      await logInThroughPage(otherPage, origin, "alice", NEW_PASSWORD);
      await otherPage.waitForURL(origin + "/account");

      // Log out everywhere ends both.
      await page.getByRole("button", { name: "Log out everywhere" }).click();
      await page.waitForURL(/\/login/);
      await otherPage.reload();
      await otherPage.waitForURL(/\/login/);

      // Revocations and a 401 to the second device are expected answers; anything else the
      // console said is a defect.
      for (const p of [page, otherPage]) {
        const unexpected = p.problems.filter((m) => !HTTP_ERROR.test(m));
        assert.deepEqual(unexpected, [], "console problems");
      }
      assert.deepEqual(page.problems.filter((m) => !/status of 401/.test(m)), []);
      await ctx.close();
      await other.close();
    });
  });
}

describe("what a person is told", () => {
  test("wrong password, throttling, taken username, server down: explained, username kept", async () => {
    const tessera = await startTessera({ TESSERA_AUTH__MODE: "session" });
    const proxy = await startProxy(tessera);
    const { origin } = proxy;
    const ctx = await newContext();
    const page = await openPage(ctx);
    await signUpThroughPage(page, origin, "bob");
    await page.getByRole("button", { name: "Log out", exact: true }).click();
    await page.waitForURL(/\/login/);
    assert.deepEqual(page.problems, [], "a normal sign-up and log-out say nothing in the console");

    const status = page.locator("#status");
    const attempt = async (password, shot) => {
      await page.getByLabel("Username").fill("bob");
      await page.getByLabel("Password").fill(password);
      await page.getByRole("button", { name: "Log in" }).click();
      await status.waitFor();
      const text = await status.textContent();
      assert.equal(await page.getByLabel("Username").inputValue(), "bob", "the username is kept");
      assert.equal(await page.getByLabel("Password").inputValue(), "", "the password is not");
      if (shot) await screenshot(page, shot);
      await page.evaluate(() => (document.getElementById("status").hidden = true));
      return text;
    };
    assert.equal(await attempt("wrong password 1", "login-error"), "Wrong username or password.");
    // Five failures are free, then the account is throttled with a growing delay.
    let said = "";
    for (let i = 2; i <= 8 && !said.startsWith("Too many"); i++) said = await attempt("wrong password " + i, "login-throttled");
    assert.match(said, /^Too many failed attempts\. Try again in \d+ seconds? \(at .+\)\.$/);

    // The server cannot be reached, then answers 503.
    proxy.fault = { path: "/v1/login", mode: "drop" };
    assert.equal(await attempt(PASSWORD), "The server cannot be reached. Check your connection and try again.");
    proxy.fault = { path: "/v1/login", mode: 503 };
    assert.equal(await attempt(PASSWORD), "The server is temporarily unavailable. Please try again in a moment.");
    proxy.fault = null;

    // A taken username on sign-up.
    await page.goto(origin + "/signup");
    await page.getByLabel("Username").fill("bob");
    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByLabel("Repeat the password").fill(PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await status.waitFor();
    assert.equal(await status.textContent(), "That username is taken. Please choose another one.");
    assert.equal(await page.getByLabel("Username").inputValue(), "bob");
    assert.equal(await page.getByLabel("Password", { exact: true }).inputValue(), "");

    // Mismatched passwords never reach the server.
    await page.getByLabel("Username").fill("carol");
    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByLabel("Repeat the password").fill(PASSWORD + "!");
    const before = proxy.count("POST", "/v1/accounts").length;
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByText("The two passwords differ. Please type them again.").waitFor();
    assert.equal(proxy.count("POST", "/v1/accounts").length, before);

    const unexpected = page.problems.filter((m) => !HTTP_ERROR.test(m) && !/ERR_EMPTY_RESPONSE|ERR_CONNECTION/.test(m));
    assert.deepEqual(unexpected, []);
    await ctx.close();
  });

  test("return_to is followed for paths on this origin only", async () => {
    const tessera = await startTessera({ TESSERA_AUTH__MODE: "hybrid" });
    const { origin } = await startProxy(tessera);
    const ctx = await newContext();
    const page = await openPage(ctx);
    await signUpThroughPage(page, origin, "dave");
    await page.getByRole("button", { name: "Log out", exact: true }).click();
    await page.waitForURL(/\/login/);
    for (const evil of ["https://evil.example/", "//evil.example", "/\\evil.example", "javascript:alert(1)", "/..//evil.example"]) {
      await logInThroughPage(page, origin, "dave", PASSWORD, "?return_to=" + encodeURIComponent(evil));
      await page.waitForURL(origin + "/account");
      await page.getByText("Signed in as dave").waitFor();
      await page.getByRole("button", { name: "Log out", exact: true }).click();
      await page.waitForURL(/\/login/);
    }
    // Keyboard only: the page focuses the username; Tab to the password, Enter submits.
    await page.goto(origin + "/login");
    await page.keyboard.type("dave");
    await page.keyboard.press("Tab");
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press("Enter");
    await page.waitForURL(origin + "/account");
    // On /account: Tab goes from the header link to the buttons, in reading order.
    await page.getByText("Signed in as dave").waitFor();
    const order = [];
    for (let i = 0; i < 3; i++) {
      await page.keyboard.press("Tab");
      order.push(await page.evaluate(() => document.activeElement.textContent));
    }
    assert.deepEqual(order, ["tessera", "Log out", "Log out everywhere"]);
    // Already signed in: /login goes straight on, to a same-origin return_to.
    await page.goto(origin + "/login?return_to=%2Fsignup%3Fnext");
    await page.waitForURL(origin + "/signup?next");
    assert.deepEqual(page.problems, []);
    await ctx.close();
  });
});
