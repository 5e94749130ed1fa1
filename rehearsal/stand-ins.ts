import { createReadStream } from 'node:fs';
import { createServer, IncomingMessage, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { verify } from 'node:crypto';
import { posix } from 'node:path';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { TEST_REGION, TEST_ROLE_CREDENTIALS, testSigningKeys } from '../local/fake-ec2-identity';

/** One SignalResource call as CloudFormation would receive it. */
export interface ReceivedSignal {
  stackName: string;
  logicalResourceId: string;
  status: string;
  uniqueId: string;
  /** Whether its CFN_V1 authorization carried the VM's identity document with a valid signature. */
  authenticated: boolean;
}

/** A download; `s3` ones are served only to a request signed (SigV4) with the instance role's credentials. */
export type Artifact = ({ body: string | Buffer } | { file: string }) & { s3?: boolean };

export interface StandInServer {
  url: string;
  signals: ReceivedSignal[];
  /** Why each SignalResource request not shaped like cfn-signal's was refused (400). */
  refusedSignals: string[];
  /** Paths the boot script fetched, in order. */
  fetched: string[];
  /** S3 objects served to a correctly signed request. */
  signedS3Gets: string[];
  close(): Promise<void>;
}

async function bodyOf(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const S3_AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

/** Recomputes the request's SigV4 signature (service s3) with the role's credentials, as S3 would. */
export async function s3SignatureValid(request: IncomingMessage): Promise<boolean> {
  const match = S3_AUTHORIZATION.exec(request.headers.authorization ?? '');
  if (!match || match[1] !== TEST_ROLE_CREDENTIALS.accessKeyId || match[3] !== TEST_REGION) return false;
  const signedHeaders = match[4].split(';');
  const headers: Record<string, string> = {};
  for (const name of signedHeaders) {
    const value = request.headers[name];
    if (typeof value !== 'string') return false;
    headers[name] = value;
  }
  if (headers['x-amz-security-token'] !== TEST_ROLE_CREDENTIALS.sessionToken) return false;
  const when = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(headers['x-amz-date'] ?? '');
  if (!when) return false;
  const url = new URL(request.url ?? '/', `http://${headers.host}`);
  const signer = new SignatureV4({
    service: 's3',
    region: TEST_REGION,
    credentials: TEST_ROLE_CREDENTIALS,
    sha256: Hash.bind(null, 'sha256'),
    uriEscapePath: false,
    applyChecksum: false,
  });
  const signed = await signer.sign(
    {
      method: request.method ?? 'GET',
      protocol: 'http:',
      hostname: url.hostname,
      port: Number(url.port),
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers,
    },
    {
      signingDate: new Date(`${when[1]}-${when[2]}-${when[3]}T${when[4]}:${when[5]}:${when[6]}Z`),
      signableHeaders: new Set(signedHeaders),
    },
  );
  return /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization))?.[1] === match[5];
}

/** The query parameters cfn-signal sends with SignalResource (aws-cfn-bootstrap's CloudFormationClient), no more. */
const SIGNAL_PARAMETERS = ['Action', 'ContentType', 'LogicalResourceId', 'StackName', 'Status', 'UniqueId', 'Version'];

/**
 * What differs from cfn-signal's request, or undefined: a GET with the parameters in the query
 * (Action=SignalResource, ContentType=JSON, Version=2010-05-15), `Accept: application/json`, its
 * User-Agent, no body.
 */
export function signalShapeProblem(request: IncomingMessage, body: string): string | undefined {
  const query = new URL(request.url ?? '/', 'http://stand-in').searchParams;
  const names = [...query.keys()].sort();
  if (request.method !== 'GET') return `method ${request.method}, not GET`;
  if (body !== '') return 'a body; cfn-signal sends none';
  if (JSON.stringify(names) !== JSON.stringify(SIGNAL_PARAMETERS))
    return `query parameters ${names.join(',')}, not ${SIGNAL_PARAMETERS.join(',')}`;
  if (query.get('Action') !== 'SignalResource' || query.get('ContentType') !== 'JSON' || query.get('Version') !== '2010-05-15')
    return `Action/ContentType/Version ${query.get('Action')}/${query.get('ContentType')}/${query.get('Version')}`;
  if (!['SUCCESS', 'FAILURE'].includes(query.get('Status') ?? '')) return `Status ${query.get('Status')}`;
  if (request.headers.accept !== 'application/json') return `Accept: ${request.headers.accept}`;
  if (request.headers['user-agent'] !== 'CloudFormation Tools') return `User-Agent: ${request.headers['user-agent']}`;
  return undefined;
}

/** `CFN_V1 <base64 document>:<base64 signature>`, checked the way CloudFormation checks a credential-less cfn-signal. */
export function cfnV1Authenticates(header: string | undefined, expectedDocument: string): boolean {
  const match = /^CFN_V1 ([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/.exec(header ?? '');
  if (!match) return false;
  const document = Buffer.from(match[1], 'base64');
  if (document.toString('utf8').trim() !== expectedDocument.trim()) return false;
  return verify('sha256', document, testSigningKeys.publicKey, Buffer.from(match[2], 'base64'));
}

/**
 * What a VM's boot reaches outside itself, on 127.0.0.1 in the rehearsal: the downloads
 * (Google's CRD package, the Node.js tarball, an apt repository) and CloudFormation's
 * endpoint, which records each SignalResource call.
 */
export async function startStandInServer(artifacts: Record<string, Artifact>, identityDocument: string): Promise<StandInServer> {
  const signals: ReceivedSignal[] = [];
  const refusedSignals: string[] = [];
  const fetched: string[] = [];
  const signedS3Gets: string[] = [];
  const server: Server = createServer((request, response) => {
    const path = posix.normalize((request.url ?? '/').split('?')[0]);
    if (path === '/cloudformation/') {
      void bodyOf(request).then((body) => {
        const shape = signalShapeProblem(request, body);
        const query = new URL(request.url ?? '/', 'http://stand-in').searchParams;
        const authenticated = cfnV1Authenticates(request.headers.authorization, identityDocument);
        if (!shape) {
          signals.push({
            stackName: query.get('StackName') ?? '',
            logicalResourceId: query.get('LogicalResourceId') ?? '',
            status: query.get('Status') ?? '',
            uniqueId: query.get('UniqueId') ?? '',
            authenticated,
          });
        } else refusedSignals.push(shape);
        response.statusCode = shape ? 400 : authenticated ? 200 : 403;
        response.end();
      });
      return;
    }
    fetched.push(path);
    const artifact = artifacts[path];
    if (!artifact) {
      response.statusCode = 404;
      return response.end();
    }
    void (artifact.s3 ? s3SignatureValid(request) : Promise.resolve(true)).then((allowed) => {
      if (!allowed) {
        response.statusCode = 403;
        return response.end('SignatureDoesNotMatch');
      }
      if (artifact.s3) signedS3Gets.push(path);
      if ('file' in artifact) return void createReadStream(artifact.file).pipe(response);
      response.end(artifact.body);
    });
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    signals,
    refusedSignals,
    fetched,
    signedS3Gets,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
