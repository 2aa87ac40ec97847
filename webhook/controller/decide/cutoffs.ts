/** Which proxies report a release cut off, from their Prometheus text. Pure. */
import { METRIC } from "../../../shared/metric-names.ts";

const LINE = new RegExp(`^${METRIC.cutoff}\\{([^}]*)\\}\\s+(\\S+)`, "m");

/** True when this scrape says the proxy has cut `version` of `app` off. */
export function reportsCutOff(text: string, app: string, version: string): boolean {
  for (const line of text.split("\n")) {
    if (!line.startsWith(METRIC.cutoff)) continue;
    const m = LINE.exec(line);
    if (!m || Number(m[2]) !== 1) continue;
    const labels = m[1] as string;
    if (labels.includes(`app="${app}"`) && labels.includes(`version="${version}"`)) return true;
  }
  return false;
}
