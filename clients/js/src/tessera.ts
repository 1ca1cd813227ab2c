/**
 * tessera.js — the browser half of tessera: log in and out, sign up, sessions, password
 * change, a `fetch` wrapper for the application's own API, and silent refresh.
 *
 * Why it is shaped like this:
 * - Refresh tokens rotate and a token presented twice ends the session (reuse detection).
 *   Two tabs refreshing at once would log the user out, so every tab of an origin shares
 *   one refresh: a Web Lock elects one tab to refresh ahead of expiry, a second lock
 *   serialises refreshes a 401 triggers, and the tab that refreshed tells the others over
 *   a BroadcastChannel.
 * - A refresh that fails for a transient reason (network, 5xx) is retried a few times with
 *   backoff; then, or at once on a definite answer (401, 404), the client emits one
 *   `signed-out` event and stops. Nothing ever loops.
 * - With the cookie transport the page never sees a credential (HttpOnly cookies); it reads
 *   only the CSRF cookie. With the bearer transport the tokens live in this object's memory
 *   (shared with the origin's other tabs over the channel), never in Web Storage.
 * - Every failure is a rejected promise carrying a {@link TesseraError}, or an event.
 */

export type Transport = "cookie" | "bearer";
export type Mode = "session" | "jwt" | "hybrid";

export interface User {
  id: string;
  username: string;
}

/** One of the caller's sessions (`GET /v1/sessions`). */
export interface Session {
  id: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  idle_expires_at?: string;
  user_agent: string | null;
  ip: string | null;
  /** The session this client is using. */
  current: boolean;
}

/** `GET /v1/me`. */
export interface Me {
  user: User;
  session: Session | null;
  auth: { mode: Mode; transport: Transport; expires_at: string };
}

/** What `POST /v1/login` (and a refresh) answer. Credentials appear only with `bearer`. */
export interface LoginAnswer {
  user: User;
  session: { id: string; expires_at: string; idle_expires_at: string } | null;
  access_token?: string;
  token_type?: string;
  expires_in?: number;
  refresh_token?: string;
  session_token?: string;
  csrf_token?: string;
}

export interface Options {
  /** Where tessera answers; default: this page's origin. */
  baseUrl?: string;
  /** Default `cookie`. */
  transport?: Transport;
  /** Refresh this many ms before the access token expires; default a quarter of its
   *  lifetime, at most 60 s. */
  refreshMargin?: number;
  /** Retries of a refresh after a network error or a 5xx; default 3. */
  retries?: number;
  /** First retry delay in ms, doubled each time (at most 30 s); default 500. */
  backoff?: number;
  /** Names the Web Locks and the BroadcastChannel; default `tessera`. Clients with the
   *  same name on one origin share their sign-in. */
  name?: string;
  /** Origins the `fetch` wrapper sends credentials to, besides this page's and tessera's. */
  apiOrigins?: string[];
  /** `false` when the server has no refresh tokens (session mode, or jwt mode with refresh
   *  off), so a 401 is final at once; by default the client finds out on its first try. */
  refresh?: boolean;
}

/** Stable error codes: the server's problem slugs, plus `network` and `http`. */
export type ErrorCode =
  | "network"
  | "invalid-request"
  | "invalid-credentials"
  | "unauthenticated"
  | "csrf"
  | "throttled"
  | "username-taken"
  | "signup-closed"
  | "not-found"
  | "unavailable"
  | "internal"
  | "http"
  | (string & {});

/** Every failure: `code` says what happened, `retryAfter` (seconds) when to try again. */
export class TesseraError extends Error {
  override name = "TesseraError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** HTTP status; 0 when no answer arrived. */
    readonly status = 0,
    readonly retryAfter?: number,
    /** The problem+json body, when there was one. */
    readonly problem?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** Detail of the `signed-out` event. */
export interface SignedOut {
  /** `logout` (this tab), `elsewhere` (another tab), `expired` (the server said no),
   *  `failed` (the server could not be reached or kept failing). */
  reason: "logout" | "elsewhere" | "expired" | "failed";
  error?: TesseraError;
}

export type EventMap = {
  "signed-in": User;
  "signed-out": SignedOut;
  refreshed: { expiresAt: number };
};

interface Tokens {
  access?: string;
  refresh?: string;
  session?: string;
}

/** What tabs tell each other. Tokens travel only with the bearer transport. */
type Message =
  | { t: "in"; user: User; exp: number; gen: number; tok?: Tokens }
  | { t: "out" }
  | { t: "hello" };

const UNSAFE = /^(POST|PUT|PATCH|DELETE)$/i;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Tessera extends EventTarget {
  readonly transport: Transport;
  /** The signed-in user, or null. */
  user: User | null = null;
  #base: string;
  #o: Options;
  #tok: Tokens = {};
  #csrf?: string;
  /** Local time (ms) the access credential expires; 0 = nothing to refresh. */
  #exp = 0;
  /** Bumped whenever new credentials arrive, here or from another tab. */
  #gen = 0;
  #canRefresh: boolean;
  #timer?: ReturnType<typeof setTimeout>;
  #inflight?: Promise<boolean>;
  #leader = false;
  #resign?: () => void;
  #chan?: BroadcastChannel;

  constructor(options: Options = {}) {
    super();
    this.#o = options;
    this.transport = options.transport ?? "cookie";
    this.#canRefresh = options.refresh ?? true;
    this.#base = (options.baseUrl ?? location.origin).replace(/\/$/, "");
    const name = options.name ?? "tessera";
    if (typeof BroadcastChannel == "function") {
      this.#chan = new BroadcastChannel(name);
      this.#chan.onmessage = (e) => this.#heard(e.data as Message);
    }
    const locks = globalThis.navigator?.locks;
    if (locks) {
      // Only the tab holding this lock refreshes ahead of expiry; when it closes, the lock
      // (and the job) passes to another tab.
      locks
        .request(name + ":leader", () => {
          this.#leader = true;
          this.#schedule();
          return new Promise<void>((r) => (this.#resign = r));
        })
        .catch(() => {});
    } else this.#leader = true;
    document.addEventListener("visibilitychange", this.#wake);
  }

  /** A tab coming back to the foreground checks its timer (background timers are throttled). */
  #wake = () => this.#schedule();

  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof EventMap>(type: K, fn: (detail: EventMap[K]) => void): () => void {
    const h = (e: Event) => fn((e as CustomEvent<EventMap[K]>).detail);
    this.addEventListener(type, h);
    return () => this.removeEventListener(type, h);
  }

  /** Finds out whether this browser is signed in (asking the server, or in bearer mode the
   *  other tabs) and starts silent refresh. Resolves to the user, or null. */
  async start(): Promise<User | null> {
    if (this.transport == "bearer") {
      if (!this.user && this.#chan) {
        this.#post({ t: "hello" });
        await sleep(150);
      }
      return this.user;
    }
    // The CSRF cookie lives as long as the session: without it there is nothing to ask
    // about (and no 401 to log in the console of a signed-out visitor).
    if (new URL(this.#base).origin == location.origin && !this.#csrfToken()) return null;
    try {
      // One attempt: a visitor is not signed in until the server says so, and a page that
      // sends a signed-out user to a login page must not run a second round of retries.
      const res = await this.#send("GET", "/v1/me", undefined, true, 0);
      const me: Me = await res.json();
      this.#fromMe(me, res);
      return this.user ?? me.user;
    } catch (e) {
      if (e instanceof TesseraError && e.status == 401) return null;
      throw e;
    }
  }

  /** `POST /v1/accounts`: creates an account (does not log in). */
  signUp(username: string, password: string): Promise<User> {
    return this.#json("POST", "/v1/accounts", { username, password }, false);
  }

  /** `POST /v1/login`. */
  async logIn(username: string, password: string): Promise<User> {
    const a: LoginAnswer = await this.#json("POST", "/v1/login", { username, password }, false);
    this.#adopt(a, true);
    return a.user;
  }

  /** `POST /v1/logout`: ends this session. Local state is cleared once the server answered
   *  (also with a 401: then there was nothing left to end). */
  logOut(): Promise<void> {
    return this.#end("/v1/logout");
  }

  /** `POST /v1/logout-all`: ends every session of the user. */
  logOutAll(): Promise<void> {
    return this.#end("/v1/logout-all");
  }

  /** `GET /v1/me`. */
  async me(): Promise<Me> {
    const res = await this.#send("GET", "/v1/me");
    const me: Me = await res.json();
    this.#fromMe(me, res);
    return me;
  }

  /** `GET /v1/sessions`. */
  async sessions(): Promise<Session[]> {
    return (await this.#json("GET", "/v1/sessions")).sessions;
  }

  /** `DELETE /v1/sessions/{id}`; revoking the current session signs out. */
  async revokeSession(id: string): Promise<void> {
    const s = await this.sessions().catch(() => []);
    await this.#json("DELETE", "/v1/sessions/" + encodeURIComponent(id));
    if (s.some((x) => x.id == id && x.current)) this.#signOut({ reason: "logout" });
  }

  /** `POST /v1/password`: the server ends every other session and re-issues this one. */
  async changePassword(currentPassword: string, newPassword: string): Promise<void> {
    const body = { current_password: currentPassword, new_password: newPassword };
    const res = await this.#send("POST", "/v1/password", body);
    if (res.status == 200) return this.#adopt(await res.json(), true);
    // Cookie transport: 204 with new cookies (a new CSRF token among them); learn the new
    // expiry and tell the other tabs.
    this.#csrf = undefined;
    this.#gen++;
    await this.me();
    this.#tell();
  }

  /** Rotates the credentials now — once for every tab of the origin. Resolves to whether
   *  this browser is still signed in; a failure is also a `signed-out` event. */
  refresh(): Promise<boolean> {
    return this.#refresh(this.#gen, false);
  }

  /**
   * `fetch` for the application's own API: sends the credential (bearer) or the CSRF token
   * (cookie, unsafe methods) and `Tessera-Transport`, and on a 401 refreshes once and retries
   * once. Credentials go only to this page's origin, tessera's, and `apiOrigins` (which must
   * allow the `Tessera-Transport` and `X-CSRF-Token` or `Authorization` headers in CORS).
   * Rejects with a `network` TesseraError when no answer arrives; otherwise resolves with the
   * Response, as `fetch`.
   * A body that is a stream cannot be sent twice: such requests are not retried.
   */
  async fetch(input: string | URL, init: RequestInit = {}): Promise<Response> {
    const url = new URL(input, location.href);
    const ours = [location.origin, new URL(this.#base).origin, ...(this.#o.apiOrigins ?? [])].includes(url.origin);
    const go = () => this.#raw(url.href, init, ours, false);
    const gen = this.#gen;
    let res = await go();
    if (res.status == 401 && ours && !(init.body instanceof ReadableStream) && (await this.#refresh(gen, true))) {
      res = await go();
    }
    return res;
  }

  /** Stops timers and leaves the tab group (for single-page apps that unmount). */
  stop(): void {
    clearTimeout(this.#timer);
    document.removeEventListener("visibilitychange", this.#wake);
    this.#leader = false;
    this.#resign?.();
    this.#chan?.close();
  }

  // --- requests ---------------------------------------------------------------------

  #csrfToken(): string | undefined {
    const m = document.cookie.match(/(?:^|;\s*)(?:__Host-)?tessera-csrf=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : this.#csrf;
  }

  async #raw(url: string, init: RequestInit, creds: boolean, api: boolean): Promise<Response> {
    const h = new Headers(init.headers);
    // tessera reads only the credential of the transport a request names (else the server's
    // default), so every credentialed request names it — forward auth in front of an app too.
    if (api || creds) h.set("Tessera-Transport", this.transport);
    if (creds && this.transport == "bearer") {
      const t = this.#tok.access ?? this.#tok.session;
      if (t) h.set("Authorization", "Bearer " + t);
    }
    if (creds && this.transport == "cookie" && UNSAFE.test(init.method ?? "GET")) {
      const c = this.#csrfToken();
      if (c) h.set("X-CSRF-Token", c);
    }
    try {
      return await fetch(url, {
        ...init,
        headers: h,
        credentials: init.credentials ?? (this.transport == "cookie" && creds ? "include" : "same-origin"),
      });
    } catch (e) {
      throw new TesseraError("network", "the server could not be reached: " + ((e as Error).message ?? e));
    }
  }

  /** A call to tessera's API; a 401 on an authenticated call refreshes once and retries. */
  async #send(method: string, path: string, body?: unknown, auth = true, retries?: number): Promise<Response> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { "Content-Type": "application/json" };
    }
    const gen = this.#gen;
    const go = () => this.#raw(this.#base + path, init, auth, true);
    let res = await go();
    let err = res.ok ? undefined : await toError(res);
    // A wrong current password (POST /v1/password) is a 401 too, but not about the session.
    if (err?.status == 401 && err.code != "invalid-credentials" && auth && (await this.#refresh(gen, true, retries))) {
      res = await go();
      err = res.ok ? undefined : await toError(res);
    }
    if (err) {
      if (err.status == 401 && err.code != "invalid-credentials" && auth) this.#signOut({ reason: "expired", error: err });
      throw err;
    }
    return res;
  }

  async #json(method: string, path: string, body?: unknown, auth = true): Promise<any> {
    const res = await this.#send(method, path, body, auth);
    return res.status == 204 ? undefined : res.json();
  }

  async #end(path: string): Promise<void> {
    try {
      await this.#send("POST", path, undefined);
    } catch (e) {
      if (!(e instanceof TesseraError && e.status == 401)) throw e;
    }
    this.#signOut({ reason: "logout" });
  }

  // --- state --------------------------------------------------------------------------

  /** Takes a login/refresh answer: credentials, expiry, user. */
  #adopt(a: LoginAnswer, tell: boolean) {
    this.#tok = { access: a.access_token, refresh: a.refresh_token, session: a.session_token };
    this.#csrf = a.csrf_token;
    this.#exp = a.expires_in ? Date.now() + a.expires_in * 1000 : 0;
    // A bearer login without a refresh token (jwt mode, refresh off) simply ends at expiry.
    this.#canRefresh = this.#o.refresh != false && (this.transport == "cookie" || !!a.refresh_token);
    this.#gen++;
    this.#signedIn(a.user);
    if (tell) this.#tell();
  }

  #tell() {
    if (this.user) this.#post({ t: "in", user: this.user, exp: this.#exp, gen: this.#gen, tok: this.#shared() });
  }

  #fromMe(me: Me, res: Response) {
    if (me.auth.mode != "session" && me.auth.expires_at) {
      // The server's clock may differ from ours: measure against its Date header, which is
      // whole seconds (hence the second taken off, to refresh early rather than late).
      const date = Date.parse(res.headers.get("Date") ?? "");
      const left = Date.parse(me.auth.expires_at) - (date || Date.now()) - (date ? 1000 : 0);
      const exp = Date.now() + Math.max(left, 0);
      if (!this.#exp || exp > this.#exp) this.#exp = exp;
    }
    this.#signedIn(me.user);
  }

  #signedIn(user: User) {
    const was = this.user;
    this.user = user;
    this.#schedule();
    if (!was) this.#emit("signed-in", user);
  }

  #signOut(detail: SignedOut) {
    const was = this.user;
    this.user = null;
    this.#tok = {};
    this.#csrf = undefined;
    this.#exp = 0;
    clearTimeout(this.#timer);
    if (!was) return;
    if (detail.reason != "elsewhere") this.#post({ t: "out" });
    this.#emit("signed-out", detail);
  }

  #shared(): Tokens | undefined {
    return this.transport == "bearer" ? this.#tok : undefined;
  }

  #emit<K extends keyof EventMap>(type: K, detail: EventMap[K]) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  // --- tabs ---------------------------------------------------------------------------

  #post(m: Message) {
    try {
      this.#chan?.postMessage(m);
    } catch {
      /* closed */
    }
  }

  #heard(m: Message) {
    if (m.t == "out") this.#signOut({ reason: "elsewhere" });
    else if (m.t == "hello") this.#tell();
    else if (m.t == "in") {
      const was = this.user;
      if (m.tok) this.#tok = m.tok;
      this.#exp = m.exp;
      this.#gen = Math.max(this.#gen, m.gen) + 1;
      this.#canRefresh = this.#o.refresh != false && (this.transport == "cookie" || !!m.tok?.refresh);
      this.#signedIn(m.user);
      if (was) this.#emit("refreshed", { expiresAt: m.exp });
    }
  }

  // --- refresh ------------------------------------------------------------------------

  #schedule() {
    clearTimeout(this.#timer);
    if (!this.#leader || !this.user || !this.#exp) return;
    const left = this.#exp - Date.now();
    if (!this.#canRefresh) {
      // Nothing to refresh with (jwt mode, refresh off): the sign-in simply ends.
      this.#timer = setTimeout(() => this.#signOut({ reason: "expired" }), Math.max(left, 0));
      return;
    }
    const margin = this.#o.refreshMargin ?? Math.min(60_000, Math.max(left, 0) / 4);
    const gen = this.#gen;
    this.#timer = setTimeout(() => void this.#refresh(gen, false), Math.max(left - margin, 0));
  }

  /**
   * One refresh for the origin. `gen` is the generation the caller saw when it decided a
   * refresh was needed; if credentials newer than that arrived meanwhile (another tab
   * refreshed), there is nothing to do. `after401`: a request was refused, so in cookie mode
   * a cheap `GET /v1/me` tells whether another tab's refresh already replaced the cookie
   * (its message may not have arrived yet).
   */
  #refresh(gen: number, after401: boolean, retries = this.#o.retries ?? 3): Promise<boolean> {
    if (!this.#canRefresh || (this.#exp == 0 && this.user)) return Promise.resolve(false);
    return (this.#inflight ??= this.#locked(async () => {
      if (this.#gen != gen) return true;
      if (after401 && this.transport == "cookie" && this.user) {
        const probe = await this.#raw(this.#base + "/v1/me", {}, true, true).catch(() => null);
        if (probe?.ok) {
          this.#fromMe(await probe.json(), probe);
          return true;
        }
      }
      return this.#rotate(retries);
    }).finally(() => (this.#inflight = undefined)));
  }

  #locked(fn: () => Promise<boolean>): Promise<boolean> {
    const locks = globalThis.navigator?.locks;
    const name = (this.#o.name ?? "tessera") + ":refresh";
    return locks ? (locks.request(name, fn) as Promise<boolean>) : fn();
  }

  async #rotate(retries: number): Promise<boolean> {
    let err: TesseraError | undefined;
    for (let i = 0; i <= retries; i++) {
      if (i) await sleep(Math.min(30_000, Math.max((this.#o.backoff ?? 500) * 2 ** (i - 1), (err?.retryAfter ?? 0) * 1000)));
      const init: RequestInit = { method: "POST" };
      if (this.transport == "bearer") {
        if (!this.#tok.refresh) break;
        init.body = JSON.stringify({ refresh_token: this.#tok.refresh });
        init.headers = { "Content-Type": "application/json" };
      }
      let res: Response;
      try {
        res = await this.#raw(this.#base + "/v1/refresh", init, true, true);
      } catch (e) {
        err = e as TesseraError;
        continue;
      }
      if (res.ok) {
        const a: LoginAnswer = await res.json();
        this.#adopt(a, true);
        this.#emit("refreshed", { expiresAt: this.#exp });
        return true;
      }
      err = await toError(res);
      if (res.status == 404) {
        // This server has no refresh tokens: the credential lasts until it expires.
        this.#canRefresh = false;
        this.#schedule();
        return false;
      }
      if (res.status < 500) {
        this.#canRefresh = false;
        this.#signOut({ reason: "expired", error: err });
        return false;
      }
    }
    this.#signOut({ reason: "failed", error: err });
    return false;
  }
}

/** A TesseraError from an error answer (problem+json when the server sent one). */
async function toError(res: Response): Promise<TesseraError> {
  let p: Record<string, any> | undefined;
  try {
    p = await res.json();
  } catch {
    /* not JSON */
  }
  const slug = typeof p?.type == "string" ? p.type.split(":").pop() : undefined;
  const retry = Number(res.headers.get("Retry-After")) || undefined;
  const message = p?.detail ?? p?.title ?? `HTTP ${res.status}`;
  return new TesseraError(slug ?? (res.status == 503 ? "unavailable" : "http"), message, res.status, retry, p);
}
