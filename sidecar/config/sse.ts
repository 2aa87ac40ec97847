/**
 * Incremental text/event-stream parser (the WHATWG rules the contract needs): `event:`, `id:`,
 * `data:` (multi-line joined with \n), comments (`:`) ignored, an empty line dispatches. CR, LF
 * and CRLF line ends; chunks may split lines and even CRLF pairs anywhere.
 */
export interface SseEvent {
  event: string;
  data: string;
  id: string | undefined;
}

export class SseParser {
  private buf = "";
  private event = "";
  private data: string[] = [];
  private id: string | undefined;
  private skipLf = false;
  /** Bytes of one unterminated line we accept before declaring the stream broken. */
  private readonly maxLine: number;

  constructor(maxLine = 8 * 1024 * 1024) {
    this.maxLine = maxLine;
  }

  /** Feed decoded text; returns the events completed by it. Throws on an oversized line. */
  push(chunk: string): SseEvent[] {
    const out: SseEvent[] = [];
    let text = this.buf + chunk;
    if (this.skipLf && text.startsWith("\n")) text = text.slice(1);
    this.skipLf = false;
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(text.slice(start, i), out);
      if (c === 13) {
        if (i + 1 < text.length) {
          if (text.charCodeAt(i + 1) === 10) i++;
        } else this.skipLf = true;
      }
      start = i + 1;
    }
    this.buf = text.slice(start);
    if (this.buf.length > this.maxLine) throw new Error("event stream line too long");
    return out;
  }

  private line(line: string, out: SseEvent[]): void {
    if (line === "") {
      if (this.data.length > 0) {
        out.push({ event: this.event || "message", data: this.data.join("\n"), id: this.id });
      }
      this.event = "";
      this.data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id" && !value.includes("\0")) this.id = value;
  }
}
