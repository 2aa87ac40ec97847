/**
 * Certificates for the local control plane and the webhook: one CA per run, leaf
 * certificates for 127.0.0.1 (IP SAN) signed by it, and the service-account signing key.
 */
import { generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { generate } from "selfsigned";

export interface Pem {
  cert: string;
  key: string;
}

export interface PemFiles {
  certFile: string;
  keyFile: string;
}

const DAY = 24 * 60 * 60 * 1000;

export async function makeCa(commonName: string): Promise<Pem> {
  const result = await generate([{ name: "commonName", value: commonName }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notAfterDate: new Date(Date.now() + 30 * DAY),
    extensions: [
      { name: "basicConstraints", cA: true, critical: true },
      {
        name: "keyUsage",
        keyCertSign: true,
        cRLSign: true,
        digitalSignature: true,
        critical: true,
      },
    ],
  });
  return { cert: result.cert, key: result.private };
}

export interface LeafOptions {
  commonName: string;
  dnsNames?: string[];
  ips?: string[];
  server?: boolean;
  client?: boolean;
  /** Organization (x509 O), e.g. `system:masters` for an admin client cert. */
  organization?: string;
}

export async function makeLeaf(ca: Pem, options: LeafOptions): Promise<Pem> {
  const attrs = [{ name: "commonName", value: options.commonName }];
  if (options.organization) attrs.push({ name: "organizationName", value: options.organization });
  const altNames = [
    ...(options.dnsNames ?? []).map((value) => ({ type: 2 as const, value })),
    ...(options.ips ?? []).map((ip) => ({ type: 7 as const, ip })),
  ];
  const result = await generate(attrs, {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notAfterDate: new Date(Date.now() + 30 * DAY),
    ca,
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
      {
        name: "extKeyUsage",
        serverAuth: options.server ?? false,
        clientAuth: options.client ?? false,
      },
      ...(altNames.length > 0 ? [{ name: "subjectAltName" as const, altNames }] : []),
    ],
  });
  return { cert: result.cert, key: result.private };
}

export function writePem(dir: string, name: string, pem: Pem): PemFiles {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  writeFileSync(certFile, pem.cert);
  writeFileSync(keyFile, pem.key, { mode: 0o600 });
  return { certFile, keyFile };
}

/** RSA key pair the apiserver signs service-account tokens with (PKCS#8 / SPKI PEM). */
export function makeServiceAccountKey(): Pem & { publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  return { key: privateKey, cert: "", publicKey };
}
