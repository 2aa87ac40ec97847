/**
 * `--routes FILE`: read at start and whenever it changes. fs.watch on the file's directory
 * catches editors' rename-into-place and ConfigMap symlink swaps; a 1s stat poll backs it up
 * where inotify is unavailable. A malformed file is logged and the last good table kept.
 */
import { readFileSync, unwatchFile, watch, watchFile, type FSWatcher } from "node:fs";
import type { Logger } from "../../shared/log.ts";
import { parseRoutingTableJson } from "../../shared/table.ts";
import type { TableStore } from "./store.ts";

export interface FileSource {
  /** Re-read now (also what the watchers call). */
  reload(): void;
  close(): void;
}

export function watchRoutesFile(file: string, store: TableStore, log: Logger): FileSource {
  let lastText: string | undefined;
  const reload = (): void => {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      log.error("cannot read routes file; keeping the last good table", { file, error });
      return;
    }
    if (text === lastText) return;
    lastText = text;
    const parsed = parseRoutingTableJson(text);
    if (!parsed.ok) {
      log.error("malformed routes file; keeping the last good table", {
        file,
        problem: parsed.error,
      });
      return;
    }
    const result = store.apply(parsed.value, false);
    if (!result.applied) {
      log.error("routes file rejected; keeping the last good table", {
        file,
        reason: result.reason,
      });
      return;
    }
    log.info("routing table loaded", {
      file,
      revision: parsed.value.revision,
      release: parsed.value.release?.version ?? null,
    });
  };
  reload();

  let timer: NodeJS.Timeout | undefined;
  const soon = (): void => {
    // Writers often truncate then write: let the burst settle before reading.
    clearTimeout(timer);
    timer = setTimeout(reload, 50);
  };
  let watcher: FSWatcher | undefined;
  try {
    // node:path would cost RSS for two string slices (docs/routing.md, "Memory").
    const slash = file.lastIndexOf("/");
    const name = file.slice(slash + 1);
    watcher = watch(slash === -1 ? "." : file.slice(0, slash) || "/", (_event, changed) => {
      if (changed === null || changed === name || changed.startsWith("..")) soon();
    });
    watcher.on("error", () => watcher?.close());
  } catch {
    log.warn("fs.watch unavailable; polling the routes file every second", { file });
  }
  watchFile(file, { interval: 1_000 }, soon);
  return {
    reload,
    close() {
      clearTimeout(timer);
      watcher?.close();
      unwatchFile(file);
    },
  };
}
