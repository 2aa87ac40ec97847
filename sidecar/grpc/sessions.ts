/**
 * One h2c session per upstream origin (the local app, each peer), shared by every call to it:
 * HTTP/2 multiplexes, so a pool of one per origin is what gRPC clients do too. A session that
 * received GOAWAY, failed or closed is dropped at once; the next call opens a fresh one, while
 * calls already on the old one finish there (GOAWAY lets in-flight streams complete).
 */
import http2 from "node:http2";

export class SessionPool {
  private readonly sessions = new Map<string, http2.ClientHttp2Session>();

  /** The live session to `origin` (`http://host:port`), opened on first use. */
  get(origin: string): http2.ClientHttp2Session {
    const open = this.sessions.get(origin);
    if (open && !open.closed && !open.destroyed) return open;
    const session = http2.connect(origin);
    const drop = (): void => {
      if (this.sessions.get(origin) === session) this.sessions.delete(origin);
    };
    // Errors surface on the calls' streams; the session itself only needs to leave the pool.
    session.on("error", drop);
    session.on("goaway", drop);
    session.on("close", drop);
    this.sessions.set(origin, session);
    return session;
  }

  /** Forget sessions to origins no table lists any more (bounded across endpoint churn). */
  retain(origins: ReadonlySet<string>): void {
    for (const [origin, session] of this.sessions) {
      if (origins.has(origin)) continue;
      this.sessions.delete(origin);
      session.close();
    }
  }

  closeAll(): void {
    for (const session of this.sessions.values()) session.close();
    this.sessions.clear();
  }
}
