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
    auth: {
        mode: Mode;
        transport: Transport;
        expires_at: string;
    };
}
/** What `POST /v1/login` (and a refresh) answer. Credentials appear only with `bearer`. */
export interface LoginAnswer {
    user: User;
    session: {
        id: string;
        expires_at: string;
        idle_expires_at: string;
    } | null;
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
export type ErrorCode = "network" | "invalid-request" | "invalid-credentials" | "unauthenticated" | "csrf" | "throttled" | "username-taken" | "signup-closed" | "not-found" | "unavailable" | "internal" | "http" | (string & {});
/** Every failure: `code` says what happened, `retryAfter` (seconds) when to try again. */
export declare class TesseraError extends Error {
    readonly code: ErrorCode;
    /** HTTP status; 0 when no answer arrived. */
    readonly status: number;
    readonly retryAfter?: number | undefined;
    /** The problem+json body, when there was one. */
    readonly problem?: Record<string, unknown> | undefined;
    name: string;
    constructor(code: ErrorCode, message: string, 
    /** HTTP status; 0 when no answer arrived. */
    status?: number, retryAfter?: number | undefined, 
    /** The problem+json body, when there was one. */
    problem?: Record<string, unknown> | undefined);
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
    refreshed: {
        expiresAt: number;
    };
};
export declare class Tessera extends EventTarget {
    #private;
    readonly transport: Transport;
    /** The signed-in user, or null. */
    user: User | null;
    constructor(options?: Options);
    /** Subscribes to an event; returns the unsubscribe function. */
    on<K extends keyof EventMap>(type: K, fn: (detail: EventMap[K]) => void): () => void;
    /** Finds out whether this browser is signed in (asking the server, or in bearer mode the
     *  other tabs) and starts silent refresh. Resolves to the user, or null. */
    start(): Promise<User | null>;
    /** `POST /v1/accounts`: creates an account (does not log in). */
    signUp(username: string, password: string): Promise<User>;
    /** `POST /v1/login`. */
    logIn(username: string, password: string): Promise<User>;
    /** `POST /v1/logout`: ends this session. Local state is cleared once the server answered
     *  (also with a 401: then there was nothing left to end). */
    logOut(): Promise<void>;
    /** `POST /v1/logout-all`: ends every session of the user. */
    logOutAll(): Promise<void>;
    /** `GET /v1/me`. */
    me(): Promise<Me>;
    /** `GET /v1/sessions`. */
    sessions(): Promise<Session[]>;
    /** `DELETE /v1/sessions/{id}`; revoking the current session signs out. */
    revokeSession(id: string): Promise<void>;
    /** `POST /v1/password`: the server ends every other session and re-issues this one. */
    changePassword(currentPassword: string, newPassword: string): Promise<void>;
    /** Rotates the credentials now — once for every tab of the origin. Resolves to whether
     *  this browser is still signed in; a failure is also a `signed-out` event. */
    refresh(): Promise<boolean>;
    /**
     * `fetch` for the application's own API: sends the credential (bearer) or the CSRF token
     * (cookie, unsafe methods) and `Tessera-Transport`, and on a 401 refreshes once and retries
     * once. Credentials go only to this page's origin, tessera's, and `apiOrigins` (which must
     * allow the `Tessera-Transport` and `X-CSRF-Token` or `Authorization` headers in CORS).
     * Rejects with a `network` TesseraError when no answer arrives; otherwise resolves with the
     * Response, as `fetch`.
     * A body that is a stream cannot be sent twice: such requests are not retried.
     */
    fetch(input: string | URL, init?: RequestInit): Promise<Response>;
    /** Stops timers and leaves the tab group (for single-page apps that unmount). */
    stop(): void;
}
