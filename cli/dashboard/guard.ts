/**
 * Who may talk to the dashboard. It listens on 127.0.0.1 only, and acts with the kubeconfig
 * of the person who started it, so a web page elsewhere must not be able to drive it:
 *
 * | check                                                     | refused with          |
 * |-----------------------------------------------------------|-----------------------|
 * | Host is not 127.0.0.1:PORT or localhost:PORT (DNS rebinding) | 421 WrongHost      |
 * | a write (POST) without the page's CSRF token header       | 403 CsrfToken         |
 * | a write whose Origin is another site                      | 403 CrossOrigin       |
 *
 * Pure; the token is random per dashboard process and only ever sent inside the page.
 */
export const CSRF_HEADER = "x-verso-csrf";

export interface RequestFacts {
  method: string;
  host: string | undefined;
  origin: string | undefined;
  token: string | undefined;
}

export type Verdict = { ok: true } | { ok: false; status: number; reason: string; message: string };

export function guard(req: RequestFacts, port: number, csrfToken: string): Verdict {
  const hosts = [`127.0.0.1:${port}`, `localhost:${port}`];
  if (!req.host || !hosts.includes(req.host.toLowerCase()))
    return {
      ok: false,
      status: 421,
      reason: "WrongHost",
      message: `this dashboard answers only as http://127.0.0.1:${port}/`,
    };
  if (req.method === "GET" || req.method === "HEAD") return { ok: true };
  if (req.origin !== undefined && !hosts.map((h) => `http://${h}`).includes(req.origin))
    return {
      ok: false,
      status: 403,
      reason: "CrossOrigin",
      message: `writes from ${req.origin} are refused`,
    };
  if (!req.token || !timingSafeEqualText(req.token, csrfToken))
    return {
      ok: false,
      status: 403,
      reason: "CsrfToken",
      message: "missing or wrong CSRF token: reload the page",
    };
  return { ok: true };
}

function timingSafeEqualText(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
