import { Stack } from 'aws-cdk-lib';
import { IRole, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Asset } from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildAgentBundle } from '../agent/bundle';

let bundled: { file: string; sha256: string } | undefined;

/** The minified agent, written once per synth to a file the asset can copy. */
export function agentBundleFile(): { file: string; sha256: string } {
  if (!bundled) {
    const code = buildAgentBundle({ minify: true });
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'lablink-agent-')), 'agent.js');
    writeFileSync(file, code);
    bundled = { file, sha256: createHash('sha256').update(code).digest('hex') };
  }
  return bundled;
}

/**
 * A file as an S3 asset, which each VM downloads at boot with its own role: the user-data
 * (16 KB at most) keeps only its address and checksum. Only `readers` may read it, and only
 * this one object.
 */
export class VmFileAsset extends Construct {
  /** HTTPS address of the object (virtual-hosted style, which SigV4 signs for S3). */
  public readonly url: string;
  public readonly sha256: string;

  constructor(scope: Construct, id: string, props: { file: string; readers: IRole }) {
    super(scope, id);
    const asset = new Asset(this, 'Bundle', { path: props.file });
    const stack = Stack.of(this);
    props.readers.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [`arn:${stack.partition}:s3:::${asset.s3BucketName}/${asset.s3ObjectKey}`],
      }),
    );
    this.url = `https://${asset.s3BucketName}.s3.${stack.region}.${stack.urlSuffix}/${asset.s3ObjectKey}`;
    this.sha256 = createHash('sha256').update(readFileSync(props.file)).digest('hex');
  }
}

/** The agent bundle, as a VM file asset. */
export class AgentAsset extends VmFileAsset {
  constructor(scope: Construct, id: string, props: { readers: IRole }) {
    super(scope, id, { file: agentBundleFile().file, readers: props.readers });
  }
}
