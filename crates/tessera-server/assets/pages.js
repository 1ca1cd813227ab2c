// tessera's own pages (/login, /signup, /account), built on /tessera.js. No inline script:
// the Content-Security-Policy allows only scripts from this origin.
import { Tessera } from "/tessera.js";

const $ = (id) => document.getElementById(id);
const body = document.body;
// The server says whether it has refresh tokens, so a 401 in session mode is final at once.
const tessera = new Tessera({ refresh: body.dataset.refresh == "true" });
const status = $("status");

/** Shows `text` in `el` (an aria-live region), or hides it when empty. */
function say(el, text) {
  el.textContent = text ?? "";
  el.hidden = !text;
}

/**
 * Where to go after logging in: only a path on this origin. `https://evil.example/`,
 * `//evil.example`, `/\evil.example` and `javascript:` are refused; the server has
 * already dropped them, this is the second check.
 */
export function safeReturnTo(raw) {
  if (!raw || raw[0] != "/" || raw[1] == "/" || /[\\\u0000-\u001f\u007f]/.test(raw)) return null;
  try {
    const url = new URL(raw, location.origin);
    return url.origin == location.origin ? url.href : null;
  } catch {
    return null;
  }
}

const returnTo = safeReturnTo(body.dataset.returnTo);
const goOn = () => location.assign(returnTo ?? "/account");

/** What happened, in words a person understands. */
function explain(e, wrongPassword = "Wrong username or password.") {
  switch (e?.code) {
    case "invalid-credentials":
      return wrongPassword;
    case "throttled": {
      const secs = e.retryAfter ?? 60;
      const at = new Date(Date.now() + secs * 1000).toLocaleTimeString();
      return `Too many failed attempts. Try again in ${wait(secs)} (at ${at}).`;
    }
    case "username-taken":
      return "That username is taken. Please choose another one.";
    case "signup-closed":
      return "This server does not accept new accounts.";
    case "network":
      return "The server cannot be reached. Check your connection and try again.";
    case "unavailable":
      return "The server is temporarily unavailable. Please try again in a moment.";
    case "invalid-request":
      return "Please check what you entered: " + e.message + ".";
    case "csrf":
      return "This page is out of date. Reload it and try again.";
    case "unauthenticated":
      return "Your session has ended. Please log in again.";
    default:
      return "Something went wrong" + (e?.status ? ` (error ${e.status})` : "") + ". Please try again.";
  }
}

function wait(secs) {
  if (secs < 90) return `${secs} second${secs == 1 ? "" : "s"}`;
  const mins = Math.ceil(secs / 60);
  return `${mins} minutes`;
}

/** Runs `work` for a form submit: one at a time, errors shown, passwords cleared on error. */
function onSubmit(form, work, statusEl = status) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    say(statusEl, "");
    try {
      await work();
    } catch (e) {
      for (const input of form.querySelectorAll("input[type=password]")) input.value = "";
      say(status, e instanceof Error && !("code" in e) ? e.message : explain(e, e.wrongPassword));
      (form.querySelector("input[type=password]:not([readonly])") ?? form.querySelector("input"))?.focus();
    } finally {
      button.disabled = false;
    }
  });
}

/** Links between the login and sign-up pages keep the return path. */
function keepReturnTo() {
  if (!body.dataset.returnTo) return;
  for (const a of document.querySelectorAll('a[href="/signup"], a[href="/login"]')) {
    a.href += "?return_to=" + encodeURIComponent(body.dataset.returnTo);
  }
}

async function login() {
  keepReturnTo();
  if (body.dataset.signup != "true") $("signup-link").hidden = true;
  if (await tessera.start().catch(() => null)) return goOn();
  const form = $("login-form");
  onSubmit(form, async () => {
    await tessera.logIn(form.username.value, form.password.value);
    goOn();
  });
  form.username.focus();
}

async function signup() {
  keepReturnTo();
  const form = $("signup-form");
  onSubmit(form, async () => {
    if (form.password.value != form.confirm.value) throw new Error("The two passwords differ. Please type them again.");
    await tessera.signUp(form.username.value, form.password.value);
    await tessera.logIn(form.username.value, form.password.value);
    goOn();
  });
  form.username.focus();
}

const ago = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

function relative(iso) {
  const secs = Math.round((Date.parse(iso) - Date.now()) / 1000);
  for (const [unit, size] of [["day", 86400], ["hour", 3600], ["minute", 60]]) {
    if (Math.abs(secs) >= size) return ago.format(Math.round(secs / size), unit);
  }
  return Math.abs(secs) < 10 ? "just now" : ago.format(secs, "second");
}

/** "Chrome on Linux" from a User-Agent string; the whole string is in the tooltip. */
function device(ua) {
  if (!ua) return "Unknown device";
  const browser = [["Edg/", "Edge"], ["Firefox/", "Firefox"], ["Chrome/", "Chrome"], ["Safari/", "Safari"]].find(([k]) => ua.includes(k));
  const os = [["Android", "Android"], ["iPhone", "iPhone"], ["iPad", "iPad"], ["Windows", "Windows"], ["Mac OS", "macOS"], ["Linux", "Linux"]].find(([k]) => ua.includes(k));
  return browser ? browser[1] + (os ? " on " + os[1] : "") : ua.slice(0, 60);
}

function cell(row, text, title) {
  const td = row.insertCell();
  td.textContent = text;
  if (title) td.title = title;
  return td;
}

async function showSessions() {
  const tbody = $("sessions").tBodies[0];
  const sessions = await tessera.sessions();
  tbody.replaceChildren();
  for (const s of sessions) {
    const row = tbody.insertRow();
    const first = cell(row, device(s.user_agent), s.user_agent ?? "");
    if (s.current) {
      const mark = document.createElement("span");
      mark.className = "current";
      mark.textContent = "this device";
      first.append(mark);
      row.setAttribute("aria-current", "true");
    }
    cell(row, s.ip ?? "unknown");
    cell(row, relative(s.last_seen_at), new Date(s.last_seen_at).toLocaleString());
    cell(row, new Date(s.created_at).toLocaleString());
    const action = row.insertCell();
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.textContent = s.current ? "Log out" : "Revoke";
    button.setAttribute("aria-label", (s.current ? "Log out this device: " : "Revoke session: ") + device(s.user_agent) + ", " + (s.ip ?? "unknown IP"));
    button.addEventListener("click", () => act(async () => {
      await tessera.revokeSession(s.id);
      if (s.current) return;
      await showSessions();
      // The button is gone with its row: keep keyboard focus in the list, not on <body>.
      $("sessions-heading").focus();
    }));
    action.append(button);
  }
}

/** A button's action: errors are shown, not thrown. */
async function act(work) {
  say(status, "");
  try {
    await work();
  } catch (e) {
    say(status, explain(e));
  }
}

async function account() {
  const toLogin = () => location.assign("/login?return_to=" + encodeURIComponent(location.pathname));
  tessera.on("signed-out", toLogin);
  let me;
  try {
    if (!(await tessera.start())) return toLogin();
    me = await tessera.me();
  } catch (e) {
    return say(status, explain(e));
  }
  $("who").textContent = me.user.username;
  $("user-id").textContent = me.user.id;
  $("mode").textContent = me.auth.mode;
  $("password-username").value = me.user.username;
  $("logout").addEventListener("click", () => act(() => tessera.logOut()));
  $("logout-all").addEventListener("click", () => act(() => tessera.logOutAll()));
  const form = $("password-form");
  const done = $("password-status");
  onSubmit(form, async () => {
    if (form.new_password.value != form.confirm.value) throw new Error("The two new passwords differ. Please type them again.");
    try {
      await tessera.changePassword(form.current_password.value, form.new_password.value);
    } catch (e) {
      e.wrongPassword = "The current password is wrong.";
      throw e;
    }
    for (const input of form.querySelectorAll("input[type=password]")) input.value = "";
    say(done, "Password changed. Every other session has been logged out.");
    await showSessions();
  }, done);
  await act(showSessions);
}

const pages = { login, signup, account };
pages[body.dataset.page]?.();
