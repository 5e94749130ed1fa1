import { createReadStream } from 'node:fs';
import { createServer, IncomingMessage, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { verify } from 'node:crypto';
import { posix } from 'node:path';
import { testSigningKeys } from '../test/support/ec2-identity';

/** One SignalResource call as CloudFormation would receive it. */
export interface ReceivedSignal {
  stackName: string;
  logicalResourceId: string;
  status: string;
  uniqueId: string;
  /** Whether its CFN_V1 authorization carried the VM's identity document with a valid signature. */
  authenticated: boolean;
}

export type Artifact = { body: string | Buffer } | { file: string };

export interface StandInServer {
  url: string;
  signals: ReceivedSignal[];
  /** Paths the boot script fetched, in order. */
  fetched: string[];
  close(): Promise<void>;
}

async function bodyOf(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
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
  const fetched: string[] = [];
  const server: Server = createServer((request, response) => {
    const path = posix.normalize((request.url ?? '/').split('?')[0]);
    if (request.method === 'POST' && path === '/cloudformation/') {
      void bodyOf(request).then((body) => {
        const form = new URLSearchParams(body);
        const authenticated = cfnV1Authenticates(request.headers.authorization, identityDocument);
        if (form.get('Action') === 'SignalResource') {
          signals.push({
            stackName: form.get('StackName') ?? '',
            logicalResourceId: form.get('LogicalResourceId') ?? '',
            status: form.get('Status') ?? '',
            uniqueId: form.get('UniqueId') ?? '',
            authenticated,
          });
        }
        response.statusCode = authenticated ? 200 : 403;
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
    if ('file' in artifact) return void createReadStream(artifact.file).pipe(response);
    response.end(artifact.body);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    signals,
    fetched,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
