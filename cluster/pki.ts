/**
 * The cluster's PKI, generated with openssl into PKI_DIR, and kubeconfigs with embedded
 * credentials. Layout and names follow kubeadm's (https://kubernetes.io/docs/setup/best-practices/certificates/).
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type https from 'node:https';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify as toYaml } from 'yaml';
import { CONTEXT_NAME, FIRST_SERVICE_IP, LOOPBACK, NODE_NAME, PKI_DIR } from './paths.js';

const execFileAsync = promisify(execFile);

/** Absolute path of a file in {@link PKI_DIR}. */
export const pki = (name: string): string => path.join(PKI_DIR, name);

async function openssl(args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args, { cwd: PKI_DIR });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

/** openssl arguments for a new ECDSA P-256 key (much faster to generate than RSA; Go and Node accept it). */
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];

/** X.509 extensions of a serving certificate with the given subjectAltName value. */
export const serverExt = (sans: string): string[] => [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature',
  'extendedKeyUsage=serverAuth',
  `subjectAltName=${sans}`,
];
/** X.509 extensions of a client certificate. */
export const clientExt = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature',
  'extendedKeyUsage=clientAuth',
];

/**
 * Issues `<name>.key`/`<name>.crt` in {@link PKI_DIR}, signed by CA `<ca>.{crt,key}`, with the
 * given subject (`/O=group/CN=user`) and extensions.
 * @throws Error quoting openssl's stderr when it fails.
 */
export async function issueCert(name: string, subject: string, extensions: string[], ca = 'ca'): Promise<void> {
  fs.writeFileSync(path.join(PKI_DIR, `${name}.ext`), extensions.join('\n') + '\n');
  await openssl([
    'req',
    '-new',
    '-nodes',
    ...EC_KEY,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    subject,
  ]);
  await openssl([
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-set_serial',
    `0x${randomBytes(16).toString('hex')}`,
    '-days',
    '3650',
    '-sha256',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.crt`,
  ]);
}

/**
 * Generates with openssl, in {@link PKI_DIR}:
 * - `ca.{key,crt}`: the cluster CA (client CA, signs everything below);
 * - `apiserver.*`: serving cert, SANs 127.0.0.1, localhost, {@link FIRST_SERVICE_IP}, kubernetes.default...;
 * - `loopback-serving.*`: serving cert for 127.0.0.1/localhost (controller-manager, scheduler, kwok);
 * - `admin.*` (CN kubernetes-admin, O system:masters), `controller-manager.*`
 *   (CN system:kube-controller-manager), `scheduler.*` (CN system:kube-scheduler),
 *   `apiserver-kubelet-client.*` (O system:masters): client certs;
 * - `front-proxy-ca.*` and `front-proxy-client.*` (signed by it): the request-header (aggregation)
 *   client CA and the apiserver's proxy client cert;
 * - `sa.key`/`sa.pub`: service-account token signing key pair (ES256).
 * All keys are ECDSA P-256.
 * @param apiserverIps more IP SANs of the apiserver's serving cert (the real node reaches it at
 *   its veth host address)
 * @throws Error quoting openssl's stderr when a step fails.
 */
export async function generatePki(apiserverIps: string[] = []): Promise<void> {
  fs.mkdirSync(PKI_DIR, { recursive: true, mode: 0o700 });
  const newCa = (name: string, cn: string): Promise<void> =>
    openssl([
      'req',
      '-x509',
      '-new',
      '-nodes',
      ...EC_KEY,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-days',
      '3650',
      '-sha256',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    ]);
  await Promise.all([newCa('ca', 'kubemcp-local-ca'), newCa('front-proxy-ca', 'kubemcp-local-front-proxy-ca')]);
  await Promise.all([
    issueCert(
      'apiserver',
      '/CN=kube-apiserver',
      serverExt(
        `IP:${LOOPBACK},DNS:localhost,IP:${FIRST_SERVICE_IP},${apiserverIps.map((ip) => `IP:${ip},`).join('')}DNS:kubernetes,DNS:kubernetes.default,` +
          'DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local',
      ),
    ),
    issueCert('loopback-serving', '/CN=localhost', serverExt(`IP:${LOOPBACK},DNS:localhost,DNS:${NODE_NAME}`)),
    issueCert('admin', '/O=system:masters/CN=kubernetes-admin', clientExt),
    issueCert('controller-manager', '/CN=system:kube-controller-manager', clientExt),
    issueCert('scheduler', '/CN=system:kube-scheduler', clientExt),
    issueCert('apiserver-kubelet-client', '/O=system:masters/CN=kube-apiserver-kubelet-client', clientExt),
    issueCert('front-proxy-client', '/CN=front-proxy-client', clientExt, 'front-proxy-ca'),
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'sa.key']).then(() =>
      openssl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']),
    ),
  ]);
}

/** Writes a kubeconfig with embedded CA and client cert `<certName>.{crt,key}` from {@link PKI_DIR}. */
export function writeKubeconfig(file: string, server: string, certName: string, user: string): void {
  const b64 = (name: string): string => fs.readFileSync(path.join(PKI_DIR, name)).toString('base64');
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: CONTEXT_NAME, cluster: { server, 'certificate-authority-data': b64('ca.crt') } }],
    users: [
      {
        name: user,
        user: { 'client-certificate-data': b64(`${certName}.crt`), 'client-key-data': b64(`${certName}.key`) },
      },
    ],
    contexts: [{ name: CONTEXT_NAME, context: { cluster: CONTEXT_NAME, user } }],
    'current-context': CONTEXT_NAME,
    preferences: {},
  };
  fs.writeFileSync(file, toYaml(config), { mode: 0o600 });
}

/** TLS options that trust our CA and present the admin client certificate. */
export function adminTls(): https.RequestOptions {
  return {
    ca: fs.readFileSync(pki('ca.crt')),
    cert: fs.readFileSync(pki('admin.crt')),
    key: fs.readFileSync(pki('admin.key')),
  };
}
