/** One JSON POST with a deadline: what gate calls and notifications have in common. */
import { request } from "undici";

export type PostOutcome =
  | { ok: true; code: number }
  /** `code` absent: no answer at all (refused, unreachable, timed out). */
  | { ok: false; code?: number; message: string };

export async function postJson(
  url: string,
  body: unknown,
  timeoutMs: number,
): Promise<PostOutcome> {
  try {
    const res = await request(url, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": "verso-controller" },
      body: JSON.stringify(body),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = (await res.body.text()).slice(0, 200);
    if (res.statusCode >= 200 && res.statusCode < 300) return { ok: true, code: res.statusCode };
    return { ok: false, code: res.statusCode, message: `HTTP ${res.statusCode} ${text}`.trim() };
  } catch (error) {
    const e = error as { code?: string; name?: string; message?: string };
    const why =
      e.name === "TimeoutError" || e.code === "UND_ERR_HEADERS_TIMEOUT"
        ? `no answer within ${timeoutMs}ms`
        : `unreachable: ${e.code ?? e.message ?? String(error)}`;
    return { ok: false, message: why };
  }
}
