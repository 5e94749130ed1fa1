import { App, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ALLOCATOR_IMAGE_SOURCES, MAX_DEPLOYED_HOLD_SECONDS } from '../../lib/allocator-service';
import { readConfig } from '../../lib/lablink-config';
import { LabLinkStack, LabLinkStackProps, REGIONS_WITHOUT_DATA_API } from '../../lib/lablink-stack';
import { REPO_ROOT } from '../../lib/node-function';
import { SHARDS_PER_WAVE, VMS_PER_SHARD } from '../../lib/client-fleet';
import { fleetInstances, shardTemplates } from '../support/fleet-templates';

// CloudFormation's validator runs on these templates in lablink-stack.test.ts and `npm run validate:templates`; here it would only slow the many synths.
process.env.CDK_VALIDATION = 'false';

type Resources = Record<
  string,
  { Type: string; Properties?: Record<string, unknown>; DependsOn?: string | string[]; CreationPolicy?: unknown }
>;

function stackOf(
  context: Record<string, unknown>,
  props: Partial<LabLinkStackProps> = {},
  app = new App(),
  id = 'LabLinkTest',
): LabLinkStack {
  return new LabLinkStack(app, id, { config: readConfig((key) => context[key]), ...props });
}

function dependsOn(resource: Resources[string]): string[] {
  return resource.DependsOn === undefined ? [] : ([] as string[]).concat(resource.DependsOn);
}

/** Whether CloudFormation creates `to` before `from`: a chain of DependsOn from one to the other. */
function hasDependsOnPath(resources: Resources, from: string, to: string, seen = new Set<string>()): boolean {
  if (seen.has(from)) return false;
  seen.add(from);
  return dependsOn(resources[from]).some((next) => next === to || hasDependsOnPath(resources, next, to, seen));
}

describe('the first cdk deploy', () => {
  const stack = stackOf({ vmCount: '2', holdSeconds: '40' });
  const template = Template.fromStack(stack);
  const resources = template.toJSON().Resources as Resources;

  it('creates every route an API stage’s route settings name before that stage', () => {
    const stages = Object.entries(resources).filter(
      ([, resource]) => resource.Type === 'AWS::ApiGatewayV2::Stage' && resource.Properties?.RouteSettings,
    );
    expect(stages).not.toHaveLength(0);
    for (const [stageId, stage] of stages) {
      for (const routeKey of Object.keys(stage.Properties!.RouteSettings as object)) {
        const route = Object.entries(resources).find(
          ([, resource]) => resource.Type === 'AWS::ApiGatewayV2::Route' && resource.Properties?.RouteKey === routeKey,
        );
        expect(route).toBeDefined();
        expect({ stage: stageId, routeKey, createdFirst: hasDependsOnPath(resources, stageId, route![0]) }).toEqual({
          stage: stageId,
          routeKey,
          createdFirst: true,
        });
      }
    }
  });

  it('names launch templates per stack, so two workshops deploy side by side', () => {
    const app = new App();
    const stacks = ['WorkshopA', 'WorkshopB'].map((id) => stackOf({ vmCount: '2' }, {}, app, id));
    const names = stacks.flatMap((workshop) => {
      const launchTemplates = Template.fromStack(workshop).findResources('AWS::EC2::LaunchTemplate');
      return Object.values(launchTemplates).map((launchTemplate) => launchTemplate.Properties.LaunchTemplateName as string);
    });
    // No name at all: CloudFormation then generates one unique to the stack. Two a stack: the named VMs' and the spares'.
    expect(names).toHaveLength(4);
    expect(names.filter((name) => name !== undefined && names.indexOf(name) !== names.lastIndexOf(name))).toEqual([]);
  });

  it('drains an allocator task, and waits for it to stop, for at least one hold', () => {
    for (const holdSeconds of [40, MAX_DEPLOYED_HOLD_SECONDS]) {
      const held = Template.fromStack(stackOf({ vmCount: '0', holdSeconds: String(holdSeconds) }));
      const targetGroup = Object.values(held.findResources('AWS::ElasticLoadBalancingV2::TargetGroup'))[0];
      const delay = (targetGroup.Properties.TargetGroupAttributes as { Key: string; Value: string }[]).find(
        (attribute) => attribute.Key === 'deregistration_delay.timeout_seconds',
      );
      expect(Number(delay!.Value)).toBeGreaterThanOrEqual(holdSeconds);
      const task = Object.values(held.findResources('AWS::ECS::TaskDefinition'))[0];
      const stopTimeout = (task.Properties.ContainerDefinitions as { StopTimeout: number }[])[0].StopTimeout;
      expect(stopTimeout).toBeGreaterThanOrEqual(holdSeconds);
      expect(stopTimeout).toBeLessThanOrEqual(120);
    }
  });

  it('waits for every VM’s own signal, and its boot script names that VM’s resource in this stack', () => {
    const instances = Object.entries(fleetInstances(stack));
    expect(instances).toHaveLength(2);
    for (const [id, instance] of instances) {
      // CloudFormation counts one signal when Count is left out.
      expect(instance.CreationPolicy).toEqual({ ResourceSignal: { Timeout: 'PT30M' } });
      const userData = JSON.stringify(instance.Properties!.UserData);
      expect(userData).toContain(`SIGNAL_RESOURCE='${id.split('/')[1]}'`);
      // The VM's resource lives in its nested stack: the signal names that stack.
      expect(userData).toContain(`STACK_NAME='",{"Ref":"AWS::StackName"},"'`);
    }
  });
});

describe('refusals at deploy time', () => {
  const errorsOf = (stack: Stack) =>
    Annotations.fromStack(stack)
      .findError('*', Match.anyValue())
      .map((message) => String(message.entry.data));

  it('refuses a past expiresAt as an error annotation, which cdk deploy checks and cdk destroy does not', () => {
    expect(errorsOf(stackOf({ vmCount: '1', expiresAt: '2020-01-01T00:00Z' }))).toEqual([
      expect.stringMatching(/expiresAt must lie in the future to deploy \(got 2020-01-01T00:00Z\); cdk destroy accepts it/),
    ]);
    expect(errorsOf(stackOf({ vmCount: '1', expiresAt: '2099-01-01T00:00Z' }))).toEqual([]);
  });

  it('refuses a region without the RDS Data API for Aurora PostgreSQL, naming it', () => {
    for (const region of REGIONS_WITHOUT_DATA_API) {
      expect(errorsOf(stackOf({ vmCount: '1' }, { targetRegion: region }))).toEqual([
        expect.stringContaining(`Region ${region} has no RDS Data API`),
      ]);
    }
    expect(errorsOf(stackOf({ vmCount: '1' }, { env: { region: 'ap-south-2' } }))).toEqual([expect.stringContaining('Region ap-south-2')]);
    expect(errorsOf(stackOf({ vmCount: '1' }, { targetRegion: 'eu-west-1' }))).toEqual([]);
  });
});

describe('the allocator image', () => {
  it('builds from exactly what its Dockerfile copies', () => {
    const dockerfile = readFileSync(path.join(REPO_ROOT, 'allocator/Dockerfile'), 'utf8');
    const copied = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((match) => match[1].split(/\s+/));
    expect(copied.sort()).toEqual([...ALLOCATOR_IMAGE_SOURCES].sort());
  });

  it('synthesizes into an output folder inside the repository without copying that folder into the image', () => {
    const outdir = mkdtempSync(path.join(REPO_ROOT, 'cdk.out.test-'));
    try {
      const app = new App({ outdir });
      stackOf({ vmCount: '0' }, {}, app);
      app.synth();
      const imageAssets = readdirSync(outdir).filter(
        (entry) => entry.startsWith('asset.') && existsSync(path.join(outdir, entry, 'allocator/Dockerfile')),
      );
      expect(imageAssets).toHaveLength(1);
      expect(
        readdirSync(path.join(outdir, imageAssets[0]))
          .filter((entry) => entry !== '.dockerignore')
          .sort(),
      ).toEqual([...ALLOCATOR_IMAGE_SOURCES].sort());
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });
});

describe('the cdk CLI with a past expiresAt (real CLI, no AWS account: it stops where it would call AWS)', () => {
  const cdk = (command: string) =>
    spawnSync(
      path.join(REPO_ROOT, 'node_modules/.bin/cdk'),
      [command, ...(command === 'destroy' ? ['--force'] : ['--quiet']), '-c', 'expiresAt=2020-01-01T00:00Z'],
      {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        timeout: 120_000,
        // No credentials and no instance metadata look-up: the CLI gets as far as it can offline.
        env: {
          ...process.env,
          CDK_DISABLE_VERSION_CHECK: '1',
          AWS_EC2_METADATA_DISABLED: 'true',
          AWS_PROFILE: '',
          AWS_ACCESS_KEY_ID: '',
          AWS_SECRET_ACCESS_KEY: '',
        },
      },
    );

  it('refuses it for synth (and so deploy), and gets past synth to the teardown for destroy', () => {
    const synth = cdk('synth');
    expect(synth.status).not.toBe(0);
    expect(synth.stdout + synth.stderr).toContain('expiresAt must lie in the future to deploy');
    const destroy = cdk('destroy');
    expect(destroy.stdout + destroy.stderr).not.toContain('expiresAt must lie in the future');
    expect(destroy.stdout + destroy.stderr).toMatch(/LabLink: destroying/);
  });
});

describe('the largest fleet the README allows', () => {
  // CloudFormation's limits per stack: 500 resources, 1 MB of template (from S3), 200 parameters, 200 outputs.
  const stack = stackOf({ vmCount: '1000', allowFleetToken: 'true', expiresAt: '2099-01-01T00:00Z', alarmEmail: 'ops@example.com' });
  const templates = [Template.fromStack(stack), ...shardTemplates(stack)].map((template) => template.toJSON());

  it('1,000 VMs fit in nested stacks of VMS_PER_SHARD, each well within CloudFormation’s limits', () => {
    expect(templates).toHaveLength(1 + Math.ceil(1000 / VMS_PER_SHARD));
    for (const template of templates) {
      expect(Object.keys(template.Resources).length).toBeLessThanOrEqual(250);
      expect(Buffer.byteLength(JSON.stringify(template))).toBeLessThanOrEqual(800_000);
      expect(Object.keys(template.Parameters ?? {}).length).toBeLessThanOrEqual(100);
      expect(Object.keys(template.Outputs ?? {}).length).toBeLessThanOrEqual(100);
    }
  });

  it('creates the VMs in waves of at most 320: each nested stack waits for the one SHARDS_PER_WAVE before it', () => {
    const parent = Template.fromStack(stack).toJSON().Resources as Record<string, { Type: string; DependsOn?: string[] }>;
    const shardIds = stack.fleet.shards.map(
      (shard) => stack.resolve((shard.nestedStackResource as unknown as { logicalId: string }).logicalId) as string,
    );
    const waitsFor = shardIds.map((id) =>
      (parent[id].DependsOn ?? []).filter((other) => shardIds.includes(other)).map((other) => shardIds.indexOf(other)),
    );
    // 13 nested stacks: 1–4 start at once, 5 after 1, 6 after 2, …, 13 after 9.
    expect(waitsFor).toEqual(shardIds.map((_, index) => (index < SHARDS_PER_WAVE ? [] : [index - SHARDS_PER_WAVE])));
    expect(SHARDS_PER_WAVE * VMS_PER_SHARD).toBeLessThanOrEqual(320);
  });

  it('lets the spares group grow to one spare per VM, from the parent stack', () => {
    const groups = Object.values(Template.fromStack(stack).findResources('AWS::AutoScaling::AutoScalingGroup'));
    expect(groups.map((group) => group.Properties.MaxSize)).toEqual(['1000']);
  });

  it('names the VMs <prefix>-1 … <prefix>-1000, each once, with the numbers in order across the nested stacks', () => {
    const names = Object.values(fleetInstances(stack)).map(
      (instance) => (instance.Properties.Tags as { Key: string; Value: string }[]).find((tag) => tag.Key === 'Name')!.Value,
    );
    expect(names).toEqual(Array.from({ length: 1000 }, (_, index) => `lablink-vm-${index + 1}`));
  });
});
