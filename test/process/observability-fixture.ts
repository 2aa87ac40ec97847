/**
 * The shipped scrape config on a real Prometheus moved to test/harness/prometheusShipped.ts,
 * where the real node's tests use it too; the process tier's imports stay as they were.
 */
export * from "../harness/prometheusShipped.ts";
