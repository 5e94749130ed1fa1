import { App } from 'aws-cdk-lib';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readConfig } from '../lib/lablink-config';
import { LabLinkStack } from '../lib/lablink-stack';
import { REPO_ROOT } from '../lib/node-function';

/**
 * Runs AWS's CloudFormation validator (the engine aws-cdk-lib ships and runs at synth) over
 * the templates of a small and a fully configured deployment, and fails on any finding at
 * WARN or above that is not listed here with the reason LabLink accepts it.
 */
export const ACCEPTED_FINDINGS: Record<string, string> = {
  E1152:
    'The VMs’ ImageId is "resolve:ssm:<parameter>", which EC2 resolves at launch (documented by AWS); the validator only knows literal AMI ids.',
  W3005: 'CDK writes DependsOn that a Ref or GetAtt already implies; redundant, harmless, and not ours to edit.',
  W9010:
    'A literal AMI id appears only when the admin sets amiId on purpose (one region, a custom image); the default is looked up through SSM.',
};

const CONFIGURATIONS: Record<string, Record<string, string>> = {
  Small: { vmCount: '1' },
  Full: {
    vmCount: '1000',
    instanceType: 'g4dn.xlarge',
    amiId: 'ami-0123456789abcdef0',
    volumeGb: '100',
    dbMinCapacity: '0',
    dbMaxCapacity: '8',
    holdSeconds: '110',
    allocatorTasks: '3',
    vmNamePrefix: 'course',
    apiRateLimit: '200',
    accessCode: 'open-sesame',
    allowFleetToken: 'true',
    expiresAt: '2099-12-01T18:00Z',
    alarmEmail: 'ops@example.com',
  },
};

interface Finding {
  template: string;
  ruleId: string;
  severity: string;
  message: string;
  where?: string;
}

/** The part of @aws/cloudformation-validate used here (aws-cdk-lib bundles it without exporting its types). */
interface Validator {
  CompositeEngine: new () => {
    validateTemplate(
      template: unknown,
      config: { severityLevel: 'WARN' },
    ): {
      status: string;
      diagnostics: { ruleId: string; severity: string; message: string; entity?: { logicalId: string } }[];
    };
    free(): void;
  };
  TemplateFile: new (path: string) => unknown;
}

function loadValidator(): Validator {
  // The copy aws-cdk-lib bundles: the same rules `cdk synth` runs, with no second version to drift.
  const fromCdk = createRequire(require.resolve('aws-cdk-lib/package.json'));
  return fromCdk('@aws/cloudformation-validate') as Validator;
}

export function validateTemplates(): { findings: Finding[]; accepted: Finding[] } {
  const { CompositeEngine, TemplateFile } = loadValidator();
  const outdir = mkdtempSync(path.join(tmpdir(), 'lablink-cfn-'));
  const engine = new CompositeEngine();
  const findings: Finding[] = [];
  const accepted: Finding[] = [];
  try {
    // The same engine runs once here, on its own, instead of once more inside the synth.
    process.env.CDK_VALIDATION = 'false';
    const app = new App({ outdir });
    for (const [name, context] of Object.entries(CONFIGURATIONS)) {
      new LabLinkStack(app, `LabLink${name}`, { config: readConfig((key) => context[key]) });
    }
    app.synth();
    for (const file of readdirSync(outdir).filter((entry) => entry.endsWith('.template.json'))) {
      const report = engine.validateTemplate(new TemplateFile(path.join(outdir, file)), { severityLevel: 'WARN' });
      for (const diagnostic of report.diagnostics) {
        const finding = {
          template: file,
          ruleId: diagnostic.ruleId,
          severity: diagnostic.severity,
          message: diagnostic.message,
          where: diagnostic.entity?.logicalId,
        };
        (ACCEPTED_FINDINGS[diagnostic.ruleId] ? accepted : findings).push(finding);
      }
      if (report.status !== 'OK')
        findings.push({
          template: file,
          ruleId: report.status,
          severity: 'ERROR',
          message: 'the validator could not finish this template',
        });
    }
  } finally {
    engine.free();
    rmSync(outdir, { recursive: true, force: true });
  }
  return { findings, accepted };
}

if (require.main === module) {
  process.chdir(REPO_ROOT);
  const { findings, accepted } = validateTemplates();
  const counts = new Map<string, number>();
  for (const finding of accepted) counts.set(finding.ruleId, (counts.get(finding.ruleId) ?? 0) + 1);
  for (const [ruleId, count] of counts) console.log(`accepted ${ruleId} (${count}×): ${ACCEPTED_FINDINGS[ruleId]}`);
  for (const finding of findings)
    console.log(`${finding.severity} ${finding.ruleId} ${finding.template} ${finding.where ?? ''}: ${finding.message}`);
  console.log(
    findings.length === 0
      ? 'CloudFormation validation: no findings beyond the accepted ones.'
      : `CloudFormation validation: ${findings.length} finding(s).`,
  );
  process.exit(findings.length === 0 ? 0 : 1);
}
