// undici ships no types for its deep paths; this one module is the index's Agent class.
declare module "undici/lib/dispatcher/agent.js" {
  import type { Agent } from "undici";
  const UndiciAgent: typeof Agent;
  export default UndiciAgent;
}
