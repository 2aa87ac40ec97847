import { describe, expect, it } from "vitest";
import type { Container } from "./pod.ts";
import {
  grpcAppPorts,
  isGrpcPortName,
  parseProtocolList,
  portNames,
  portProtocol,
  type PortProtocol,
  unknownProtocolPorts,
} from "./protocols.ts";

const annotated = (entries: [number, PortProtocol][]): Map<number, PortProtocol> =>
  new Map(entries);

// Mirrors the truth table above portProtocol() in protocols.ts, row by row.
describe("portProtocol (mirrors its truth table)", () => {
  const table: {
    row: string;
    listed: PortProtocol | undefined;
    names: string[];
    expected: PortProtocol;
  }[] = [
    { row: "listed grpc, any name", listed: "grpc", names: ["http"], expected: "grpc" },
    { row: "listed grpc (from h2c), no name", listed: "grpc", names: [], expected: "grpc" },
    { row: "listed http beats a grpc name", listed: "http", names: ["grpc-web"], expected: "http" },
    { row: "listed http, no name", listed: "http", names: [], expected: "http" },
    { row: "not listed, named grpc", listed: undefined, names: ["grpc"], expected: "grpc" },
    { row: "not listed, named grpc-*", listed: undefined, names: ["grpc-api"], expected: "grpc" },
    { row: "not listed, named h2c", listed: undefined, names: ["h2c"], expected: "grpc" },
    { row: "not listed, named h2c-*", listed: undefined, names: ["h2c-int"], expected: "grpc" },
    { row: "not listed, named http2", listed: undefined, names: ["http2"], expected: "grpc" },
    { row: "not listed, named http2-*", listed: undefined, names: ["http2-x"], expected: "grpc" },
    { row: "not listed, named http", listed: undefined, names: ["http"], expected: "http" },
    { row: "not listed, unnamed", listed: undefined, names: [], expected: "http" },
  ];
  it.each(table)("$row -> $expected", ({ listed, names, expected }) => {
    const a = annotated(listed === undefined ? [] : [[9090, listed]]);
    expect(portProtocol(9090, a, names)).toBe(expected);
  });
});

describe("isGrpcPortName", () => {
  it.each([
    ["grpc", true],
    ["grpc-", true],
    ["grpc-web", true],
    ["h2c", true],
    ["h2c-internal", true],
    ["http2", true],
    ["http2-api", true],
    ["http", false],
    ["https", false],
    ["grpcx", false],
    ["my-grpc", false],
    ["h2", false],
    ["http20", false],
    ["", false],
  ])("%j -> %j", (name, expected) => {
    expect(isGrpcPortName(name)).toBe(expected);
  });
});

describe("parseProtocolList", () => {
  it.each([
    [
      "9090=grpc,8080=http",
      [
        [9090, "grpc"],
        [8080, "http"],
      ],
    ],
    [
      " 9090 = GRPC , 7070=h2c ,",
      [
        [9090, "grpc"],
        [7070, "grpc"],
      ],
    ],
    ["9090=grpc,9090=h2c", [[9090, "grpc"]]],
    ["", []],
  ] as [string, [number, PortProtocol][]][])("%j", (text, expected) => {
    const r = parseProtocolList(text);
    expect(r.ok && [...r.value]).toEqual(expected);
  });

  it.each([
    ["9090=websocket", /unknown protocol "websocket"/],
    ["9090=constructor", /unknown protocol/],
    ["9090", /is not <port>=<protocol>/],
    ["grpc=9090", /is not <port>=<protocol>/],
    ["0=grpc", /is not <port>=<protocol>/],
    ["70000=grpc", /is not <port>=<protocol>/],
    ["9090=grpc=h2c", /is not <port>=<protocol>/],
    ["9090=grpc,9090=http", /listed with two protocols/],
  ])("%j is rejected", (text, message) => {
    const r = parseProtocolList(text);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(message);
  });
});

describe("ports and names", () => {
  const containers: Container[] = [
    {
      name: "a",
      ports: [
        { containerPort: 8080, name: "http" },
        { containerPort: 9090, name: "grpc" },
        { containerPort: 9091, name: "grpc-dns", protocol: "UDP" },
      ],
    },
    { name: "b", ports: [{ containerPort: 7070, name: "h2c" }, { containerPort: 6060 }] },
  ];

  it("portNames reads TCP declarations only", () => {
    expect(portNames(containers, 9090)).toEqual(["grpc"]);
    expect(portNames(containers, 9091)).toEqual([]);
    expect(portNames(containers, 6060)).toEqual([]);
    expect(portNames(containers, 1234)).toEqual([]);
  });

  it("grpcAppPorts keeps app-port order; the annotation overrides names", () => {
    expect(grpcAppPorts([7070, 8080, 9090, 6060], containers, new Map())).toEqual([7070, 9090]);
    expect(
      grpcAppPorts(
        [7070, 8080, 9090, 6060],
        containers,
        annotated([
          [9090, "http"],
          [6060, "grpc"],
        ]),
      ),
    ).toEqual([7070, 6060]);
  });

  it("unknownProtocolPorts names annotated ports that are not app ports", () => {
    const a = annotated([
      [9090, "grpc"],
      [7777, "http"],
    ]);
    expect(unknownProtocolPorts(a, [8080, 9090])).toEqual([7777]);
    expect(unknownProtocolPorts(a, [7777, 9090])).toEqual([]);
  });
});
