// The demo app: signs in through tessera.js (cookie transport, same origin), then calls its
// own protected API with the client's fetch wrapper, which refreshes silently when needed.
import { Tessera } from "/tessera.js";

const tessera = new Tessera();
const $ = (id) => document.getElementById(id);
const form = $("login");

function show(user) {
  form.hidden = !!user;
  $("app").hidden = !user;
  $("who").textContent = user?.username ?? "";
  if (!user) $("answer").textContent = "";
}

function say(text) {
  $("status").textContent = text;
}

tessera.on("signed-in", show);
tessera.on("signed-out", ({ reason }) => {
  show(null);
  say(reason == "logout" ? "Logged out." : "Your session has ended; please log in again.");
});

async function attempt(work) {
  say("");
  try {
    await work();
  } catch (e) {
    say(e.code == "invalid-credentials" ? "Wrong username or password." : e.message);
    form.password.value = "";
  }
}

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  attempt(() => tessera.logIn(form.username.value, form.password.value));
});
$("signup").addEventListener("click", () =>
  attempt(async () => {
    await tessera.signUp(form.username.value, form.password.value);
    await tessera.logIn(form.username.value, form.password.value);
  }),
);
$("logout").addEventListener("click", () => attempt(() => tessera.logOut()));
$("call").addEventListener("click", () =>
  attempt(async () => {
    const res = await tessera.fetch("/api/hello");
    $("answer").textContent = `${res.status} ${JSON.stringify(await res.json(), null, 2)}`;
  }),
);

show(await tessera.start().catch(() => null));
