import { describe, expect, it } from "vitest";
import { deriveIdentity, imageVersion, type Identity } from "./identity.ts";
import type { Pod } from "./pod.ts";

const pod = (
  labels: Record<string, string>,
  annotations: Record<string, string>,
  image = "shop:1.2.3",
): Pod => ({
  metadata: { labels, annotations },
  spec: {
    containers: [
      { name: "c", image },
      { name: "d", image: "other:9" },
    ],
  },
});

// Mirrors the precedence table in identity.ts.
const table: { name: string; pod: Pod; expected: Identity }[] = [
  {
    name: "annotation wins over both labels",
    pod: pod(
      { "app.kubernetes.io/name": "k8s-name", app: "plain" },
      { "verso.dev/app": "ann", "verso.dev/version": "v9" },
    ),
    expected: { app: "ann", version: "v9", color: undefined },
  },
  {
    name: "app.kubernetes.io/name over app",
    pod: pod({ "app.kubernetes.io/name": "k8s-name", app: "plain" }, {}),
    expected: { app: "k8s-name", version: "1.2.3", color: undefined },
  },
  {
    name: "app label last",
    pod: pod({ app: "plain", version: "v2" }, {}),
    expected: { app: "plain", version: "v2", color: undefined },
  },
  {
    name: "app.kubernetes.io/version over version",
    pod: pod({ app: "a", "app.kubernetes.io/version": "2.0", version: "v2" }, {}),
    expected: { app: "a", version: "2.0", color: undefined },
  },
  {
    name: "version from the first container's image tag",
    pod: pod({ app: "a" }, {}, "ghcr.io/acme/shop:2024-06-01"),
    expected: { app: "a", version: "2024-06-01", color: undefined },
  },
  {
    name: "an empty annotation falls through",
    pod: pod({ app: "a" }, { "verso.dev/app": "", "verso.dev/version": "!!" }),
    expected: { app: "a", version: "1.2.3", color: undefined },
  },
  {
    name: "color from the annotation, sanitised",
    pod: pod({ app: "a" }, { "verso.dev/color": " Blue " }),
    expected: { app: "a", version: "1.2.3", color: "Blue" },
  },
  {
    name: "values longer than 63 characters are cut",
    pod: pod({ app: "x".repeat(80) }, {}),
    expected: { app: "x".repeat(63), version: "1.2.3", color: undefined },
  },
  {
    name: "no app anywhere",
    pod: pod({ team: "t" }, {}),
    expected: { app: undefined, version: "1.2.3", color: undefined },
  },
];

describe("deriveIdentity", () => {
  it.each(table)("$name", ({ pod: p, expected }) => {
    expect(deriveIdentity(p)).toEqual(expected);
  });
});

describe("imageVersion", () => {
  it.each([
    ["shop:v1", "v1"],
    ["shop", "latest"],
    [undefined, "latest"],
    ["registry:5000/team/shop", "latest"],
    ["registry:5000/team/shop:1.0", "1.0"],
    ["shop:1.0@sha256:abcdef0123456789", "1.0"],
    ["shop@sha256:abcdef0123456789ffff", "abcdef012345"],
  ])("%s -> %s", (image, version) => {
    expect(imageVersion(image)).toBe(version);
  });
});
