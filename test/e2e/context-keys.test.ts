import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { readConfig } from '../../lib/lablink-config';
import { LabLinkStack } from '../../lib/lablink-stack';
import { REPO_ROOT } from '../../lib/node-function';
import { shardTemplates } from '../support/fleet-templates';

// CloudFormation's validator runs on these templates in lablink-stack.test.ts and `npm run validate:templates`; here it would only slow the many synths.
process.env.CDK_VALIDATION = 'false';

type Resource = { Type: string; Properties: Record<string, unknown> };

function synthWith(key: string, value: string, also: Record<string, string> = {}, stackId = 'LabLinkKeys'): Record<string, Resource> {
  const context: Record<string, string> = { vmCount: '1', ...also, [key]: value };
  const stack = new LabLinkStack(new App(), context.stackName ?? stackId, { config: readConfig((name) => context[name]) });
  // The VMs live in nested stacks: their resources count too.
  return Object.assign({}, ...[Template.fromStack(stack), ...shardTemplates(stack)].map((template) => template.toJSON().Resources));
}

function ofType(resources: Record<string, Resource>, type: string): Resource[] {
  return Object.values(resources).filter((resource) => resource.Type === type);
}

const text = (value: unknown) => JSON.stringify(value);
const sha256Of = (file: string) =>
  createHash('sha256')
    .update(readFileSync(path.join(REPO_ROOT, file)))
    .digest('hex');
/** How many S3 objects the VMs' role may read. */
const s3ReadsOf = (r: Record<string, Resource>) =>
  ofType(r, 'AWS::IAM::Policy')
    .filter((policy) => text(policy.Properties.Roles).includes('FleetRole'))
    .flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: { Action: string }[] }).Statement)
    .filter((statement) => statement.Action === 's3:GetObject').length;

/** For every key in the deploy guide's context table: a value other than its default, and where it must show in the template. */
const KEYS: Record<string, { value: string; also?: Record<string, string>; reaches: (resources: Record<string, Resource>) => unknown[] }> =
  {
    vmCount: { value: '3', reaches: (r) => [ofType(r, 'AWS::EC2::Instance').length, 3] },
    instanceType: { value: 'g4dn.xlarge', reaches: (r) => [ofType(r, 'AWS::EC2::Instance')[0]?.Properties.InstanceType, 'g4dn.xlarge'] },
    amiId: {
      value: 'ami-0123456789abcdef0',
      reaches: (r) => [ofType(r, 'AWS::EC2::Instance')[0]?.Properties.ImageId, 'ami-0123456789abcdef0'],
    },
    amiSsmParameter: { value: '/my/ami', reaches: (r) => [ofType(r, 'AWS::EC2::Instance')[0]?.Properties.ImageId, 'resolve:ssm:/my/ami'] },
    volumeGb: {
      value: '123',
      reaches: (r) => [text(ofType(r, 'AWS::EC2::Instance')[0]?.Properties.BlockDeviceMappings).includes('"VolumeSize":123'), true],
    },
    dbMinCapacity: {
      value: '1.5',
      reaches: (r) => [
        text(ofType(r, 'AWS::RDS::DBCluster')[0]?.Properties.ServerlessV2ScalingConfiguration).includes('"MinCapacity":1.5'),
        true,
      ],
    },
    dbMaxCapacity: {
      value: '9',
      reaches: (r) => [
        text(ofType(r, 'AWS::RDS::DBCluster')[0]?.Properties.ServerlessV2ScalingConfiguration).includes('"MaxCapacity":9'),
        true,
      ],
    },
    holdSeconds: {
      value: '77',
      reaches: (r) => [
        text(ofType(r, 'AWS::ECS::TaskDefinition')[0]?.Properties.ContainerDefinitions).includes(
          '{"Name":"LABLINK_HOLD_SECONDS","Value":"77"}',
        ),
        true,
      ],
    },
    warmVms: {
      value: '2',
      also: { vmCount: '3' },
      reaches: (r) => [
        text(ofType(r, 'AWS::ECS::TaskDefinition')[0]?.Properties.ContainerDefinitions).includes('{"Name":"LABLINK_WARM_VMS","Value":"2"}'),
        true,
      ],
    },
    allocatorTasks: { value: '3', reaches: (r) => [ofType(r, 'AWS::ECS::Service')[0]?.Properties.DesiredCount, 3] },
    vmNamePrefix: {
      value: 'course',
      reaches: (r) => [text(ofType(r, 'AWS::EC2::Instance')[0]?.Properties.Tags).includes('{"Key":"Name","Value":"course-1"}'), true],
    },
    apiRateLimit: {
      value: '7',
      reaches: (r) => [
        text(ofType(r, 'AWS::ApiGatewayV2::Stage')[0]?.Properties.DefaultRouteSettings),
        '{"ThrottlingBurstLimit":21,"ThrottlingRateLimit":7}',
      ],
    },
    accessCode: {
      value: 'open-sesame',
      reaches: (r) => [text(ofType(r, 'AWS::Lambda::Function')).includes('"LABLINK_ACCESS_CODE":"open-sesame"'), true],
    },
    hourlyPrice: {
      value: '0.61',
      reaches: (r) => [text(ofType(r, 'AWS::Lambda::Function')).includes('"LABLINK_HOURLY_PRICE":"0.61"'), true],
    },
    vmsPerAddress: {
      value: '25',
      reaches: (r) => [text(ofType(r, 'AWS::Lambda::Function')).includes('"LABLINK_VMS_PER_ADDRESS":"25"'), true],
    },
    vmsPerAddressMinutes: {
      value: '3',
      reaches: (r) => [text(ofType(r, 'AWS::Lambda::Function')).includes('"LABLINK_VMS_PER_ADDRESS_WINDOW_SECONDS":"180"'), true],
    },
    releaseFailedAfterMinutes: {
      value: '0',
      reaches: (r) => [
        [
          text(ofType(r, 'AWS::ECS::TaskDefinition')[0]?.Properties.ContainerDefinitions).includes(
            '{"Name":"LABLINK_RELEASE_FAILED_AFTER_MINUTES","Value":"0"}',
          ),
          text(ofType(r, 'AWS::Lambda::Function')).includes('"LABLINK_RELEASE_FAILED_AFTER_MINUTES":"0"'),
        ],
        [true, true],
      ],
    },
    releaseUnconnectedAfterMinutes: {
      value: '45',
      reaches: (r) => [
        [
          text(ofType(r, 'AWS::ECS::TaskDefinition')[0]?.Properties.ContainerDefinitions).includes(
            '{"Name":"LABLINK_RELEASE_UNCONNECTED_AFTER_MINUTES","Value":"45"}',
          ),
          text(ofType(r, 'AWS::Lambda::Function')).includes('"LABLINK_RELEASE_UNCONNECTED_AFTER_MINUTES":"45"'),
        ],
        [true, true],
      ],
    },
    lineTurnMinutes: {
      value: '8',
      reaches: (r) => [text(ofType(r, 'AWS::Lambda::Function')).includes('"LABLINK_LINE_TURN_SECONDS":"480"'), true],
    },
    allowFleetToken: {
      value: 'true',
      reaches: (r) => [
        text(ofType(r, 'AWS::ECS::TaskDefinition')[0]?.Properties.ContainerDefinitions).includes('"Name":"LABLINK_FLEET_TOKEN"'),
        true,
      ],
    },
    expiresAt: {
      value: '2099-06-01T17:30Z',
      reaches: (r) => [ofType(r, 'AWS::Scheduler::Schedule')[0]?.Properties.ScheduleExpression, 'at(2099-06-01T17:30:00)'],
    },
    alarmEmail: {
      value: 'ops@example.com',
      reaches: (r) => [ofType(r, 'AWS::SNS::Subscription')[0]?.Properties.Endpoint, 'ops@example.com'],
    },
    setupScript: {
      value: 'docs/examples/python-tutorial-setup.sh',
      // Its checksum in the boot script, and the VMs' role may read one more object (the script's).
      reaches: (r) => [
        [
          text(ofType(r, 'AWS::EC2::Instance')[0]?.Properties.UserData).includes(
            `'${sha256Of('docs/examples/python-tutorial-setup.sh')}  /opt/lablink/setup.sh'`,
          ),
          s3ReadsOf(r),
        ],
        [true, 2],
      ],
    },
    setupCheck: {
      value: 'python -c "import sleap"',
      reaches: (r) => [
        text(ofType(r, 'AWS::EC2::Instance')[0]?.Properties.UserData).includes(text('"check":"python -c \\"import sleap\\""').slice(1, -1)),
        true,
      ],
    },
    repository: {
      value: 'https://github.com/owner/tutorial.git',
      reaches: (r) => [
        text(ofType(r, 'AWS::EC2::Instance')[0]?.Properties.UserData).includes('"repository\\":\\"https://github.com/owner/tutorial.git'),
        true,
      ],
    },
    repositoryRef: {
      value: 'v1.2',
      also: { repository: 'https://github.com/owner/tutorial.git' },
      reaches: (r) => [text(ofType(r, 'AWS::EC2::Instance')[0]?.Properties.UserData).includes('"repositoryRef\\":\\"v1.2'), true],
    },
    containerImage: {
      value: 'docker.io/library/python:3.12',
      reaches: (r) => [
        text(ofType(r, 'AWS::EC2::Instance')[0]?.Properties.UserData).includes('"containerImage\\":\\"docker.io/library/python:3.12'),
        true,
      ],
    },
    stackName: {
      value: 'Morning',
      reaches: (r) => [
        text(ofType(r, 'AWS::EC2::Instance')[0]?.Properties.Tags).includes('{"Key":"lablink:fleet","Value":"Morning"}'),
        true,
      ],
    },
  };

function readmeContextKeys(): string[] {
  const readme = readFileSync(path.join(REPO_ROOT, 'docs', 'deploy.md'), 'utf8');
  const table = readme.slice(readme.indexOf('| context key |'));
  return [...table.slice(0, table.indexOf('\n\n')).matchAll(/^\| `(\w+)` \|/gm)].map((match) => match[1]);
}

describe('every context key in the deploy guide reaches the template', () => {
  it('has a check here for each key the deploy guide lists, and no other', () => {
    expect(readmeContextKeys().sort()).toEqual(Object.keys(KEYS).sort());
  });

  let defaults: Record<string, Resource>;
  beforeAll(() => {
    defaults = synthWith('vmCount', '1');
  });

  it.each(Object.entries(KEYS))('%s', (key, { value, also, reaches }) => {
    const [actual, expected] = reaches(synthWith(key, value, also));
    expect(actual).toEqual(expected);
    // Without the key the template differs there, so the check sees the key's own effect.
    expect(reaches(defaults)[0]).not.toEqual(expected);
  });
});
