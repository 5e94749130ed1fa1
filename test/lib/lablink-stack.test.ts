import { App, CfnResource } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { UBUNTU_24_04_AMI_PARAMETER, readConfig } from '../../lib/lablink-config';
import { LabLinkStack } from '../../lib/lablink-stack';
import { EC2_USER_DATA_LIMIT_BYTES } from '../../lib/user-data';
import { fleetInstances, shardTemplates } from '../support/fleet-templates';

function synth(context: Record<string, unknown> = {}): { stack: LabLinkStack; template: Template } {
  const app = new App();
  const stack = new LabLinkStack(app, 'LabLinkTest', { config: readConfig((key) => context[key]) });
  return { stack, template: Template.fromStack(stack) };
}

type Statement = { Action: string | string[]; Resource: unknown; Effect: string };

function statementsOf(template: Template, roleLogicalIdPrefix: RegExp): Statement[] {
  const policies = template.findResources('AWS::IAM::Policy');
  return Object.values(policies)
    .filter((policy) => (policy.Properties.Roles as { Ref: string }[]).some((role) => roleLogicalIdPrefix.test(role.Ref)))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement as Statement[]);
}

function actionsOf(statement: Statement): string[] {
  return Array.isArray(statement.Action) ? statement.Action : [statement.Action];
}

/** The secrets a role may read. */
function secretsReadBy(template: Template, roleLogicalIdPrefix: RegExp): unknown[] {
  return statementsOf(template, roleLogicalIdPrefix)
    .filter((statement) => actionsOf(statement).includes('secretsmanager:GetSecretValue'))
    .map((statement) => statement.Resource);
}

describe('LabLinkStack', () => {
  let stack: LabLinkStack;
  let template: Template;
  beforeAll(() => {
    ({ stack, template } = synth({ vmCount: '3', holdSeconds: '40' }));
  });

  it('runs Aurora PostgreSQL Serverless v2 with the Data API on and TLS forced', () => {
    template.hasResourceProperties('AWS::RDS::DBCluster', {
      Engine: 'aurora-postgresql',
      EnableHttpEndpoint: true,
      StorageEncrypted: true,
      ServerlessV2ScalingConfiguration: { MinCapacity: 0.5, MaxCapacity: 4 },
    });
    template.hasResourceProperties('AWS::RDS::DBClusterParameterGroup', { Parameters: { 'rds.force_ssl': '1' } });
    template.hasResourceProperties('Custom::LabLinkSchema', { migrations: Match.stringLikeRegexp('^[0-9a-f]{64}$') });
  });

  it('starts vmCount VMs with IMDSv2 required, encrypted disks, and the SSM role', () => {
    template.resourceCountIs('AWS::EC2::Instance', 0);
    expect(Object.keys(fleetInstances(stack))).toEqual(
      ['Vms1to80/Vm1', 'Vms1to80/Vm2', 'Vms1to80/Vm3'].map((id) => expect.stringMatching(new RegExp(`^${id}[0-9A-F]{8}$`))),
    );
    template.hasResourceProperties('AWS::EC2::LaunchTemplate', { LaunchTemplateData: { MetadataOptions: { HttpTokens: 'required' } } });
    for (const instance of Object.values(fleetInstances(stack))) {
      expect(instance.Properties.BlockDeviceMappings).toEqual([
        { DeviceName: '/dev/sda1', Ebs: { Encrypted: true, VolumeSize: 40, VolumeType: 'gp3' } },
      ]);
    }
    template.hasResourceProperties('AWS::IAM::Role', {
      ManagedPolicyArns: [{ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::aws:policy/AmazonSSMManagedInstanceCore']] }],
    });
  });

  it('spreads the named VMs round-robin over every public subnet (one per zone), as the spares group is', () => {
    const { stack: four, template: parent } = synth({ vmCount: '4' });
    const publicSubnets = four.network.vpc.publicSubnets.map((subnet) => four.resolve(subnet.subnetId));
    expect(publicSubnets).toHaveLength(2);
    // In a nested stack a subnet is a parameter, which the parent stack sets to its subnet's id.
    const [shard] = Object.values(parent.findResources('AWS::CloudFormation::Stack'));
    const fourVms = Object.values(fleetInstances(four));
    const subnetOf = (instance: (typeof fourVms)[number]) =>
      publicSubnets.findIndex(
        (subnet) => JSON.stringify(shard.Properties.Parameters[instance.Properties.SubnetId.Ref]) === JSON.stringify(subnet),
      );
    expect(fourVms.map(subnetOf)).toEqual([0, 1, 0, 1]);
  });

  it('admits no inbound traffic to the VMs', () => {
    const vmGroupId = stack.resolve(stack.fleet.securityGroup.securityGroupId);
    const groups = template.findResources('AWS::EC2::SecurityGroup');
    const vmGroup = Object.entries(groups).find(([logicalId]) => logicalId === vmGroupId['Fn::GetAtt'][0])![1];
    expect(vmGroup.Properties.SecurityGroupIngress).toBeUndefined();
    const ingressRules = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress'));
    expect(ingressRules.filter((rule) => JSON.stringify(rule.Properties.GroupId) === JSON.stringify(vmGroupId))).toEqual([]);
  });

  it('puts the allocator behind an internal ALB whose idle timeout outlasts the hold', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Scheme: 'internal',
      LoadBalancerAttributes: Match.arrayWith([{ Key: 'idle_timeout.timeout_seconds', Value: '70' }]),
    });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', { HealthCheckPath: '/api/health' });
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({
          Environment: Match.arrayWith([
            { Name: 'LABLINK_HOLD_SECONDS', Value: '40' },
            { Name: 'LABLINK_DATABASE_CA_FILE', Value: '/app/rds-ca.pem' },
          ]),
          Secrets: Match.arrayWith([Match.objectLike({ Name: 'PGPASSWORD' })]),
        }),
      ],
    });
  });

  it('runs the form API on Node.js 24 Lambdas on arm64, throttled, tighter on request_vm', () => {
    const functions = Object.entries(template.findResources('AWS::Lambda::Function')).filter(
      ([, fn]) => fn.Properties.Environment?.Variables?.LABLINK_DB_CLUSTER_ARN,
    );
    expect(functions.map(([logicalId]) => logicalId)).toEqual([
      expect.stringMatching(/^DatabaseMigrateFunction[0-9A-F]{8}$/),
      expect.stringMatching(/^FormApiFormFunction[0-9A-F]{8}$/),
    ]);
    for (const [, fn] of functions) expect(fn.Properties).toMatchObject({ Runtime: 'nodejs24.x', Architectures: ['arm64'] });
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 150 },
      RouteSettings: { 'POST /api/request_vm': { ThrottlingRateLimit: 25, ThrottlingBurstLimit: 50 } },
    });
  });

  it('grants the Lambdas Data API access to this cluster only', () => {
    const clusterArn = stack.resolve(stack.database.cluster.clusterArn);
    const appSecret = stack.resolve(stack.database.appSecret.secretArn);
    const ownerSecret = stack.resolve(stack.database.cluster.secret!.secretArn);
    const adminSecret = stack.resolve(stack.adminSecret.secretArn);
    const resourcesOf = (role: RegExp) =>
      statementsOf(template, role).map((statement) => [
        actionsOf(statement).some((action) => action.startsWith('rds-data:')) ? 'rds-data' : 'secret',
        statement.Resource,
      ]);
    // Every resource named: no wildcard, no other cluster, no secret beyond the ones each function needs.
    expect(resourcesOf(/^FormApiFormFunction/)).toEqual([
      ['rds-data', clusterArn],
      ['secret', appSecret],
      ['secret', adminSecret],
    ]);
    expect(resourcesOf(/^DatabaseMigrateFunction/)).toEqual([
      ['rds-data', clusterArn],
      ['secret', ownerSecret],
      ['secret', appSecret],
    ]);
  });

  it('gives the allocator the app role’s database secret only, and lets it look up instances to check identities', () => {
    expect(secretsReadBy(template, /^AllocatorTaskExecutionRole/)).toEqual([stack.resolve(stack.database.appSecret.secretArn)]);
    expect(statementsOf(template, /^AllocatorTaskTaskRole/).map((statement) => statement.Action)).toEqual([
      'ec2:DescribeInstances',
      ['ec2:RebootInstances', 'ec2:StartInstances', 'ec2:StopInstances'],
      'ec2:ModifyInstanceAttribute',
      ['autoscaling:SetDesiredCapacity', 'autoscaling:TerminateInstanceInAutoScalingGroup'],
      'ec2:CreateTags',
    ]);
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({
          Environment: Match.arrayWith([
            { Name: 'LABLINK_IDENTITY_MODE', Value: 'ec2' },
            { Name: 'LABLINK_FLEET_NAME', Value: 'LabLinkTest' },
          ]),
        }),
      ],
    });
    expect(JSON.stringify(template.toJSON())).not.toContain('LABLINK_FLEET_TOKEN');
  });

  it('signs the allocator and the form Lambda in as the app role; only the migration function may read the owner’s secret', () => {
    const appSecret = stack.resolve(stack.database.appSecret.secretArn);
    const ownerSecret = stack.resolve(stack.database.cluster.secret!.secretArn);
    template.hasResourceProperties('AWS::SecretsManager::Secret', {
      GenerateSecretString: {
        SecretStringTemplate: '{"username":"lablink_app"}',
        GenerateStringKey: 'password',
        PasswordLength: 32,
        ExcludePunctuation: true,
      },
    });

    const [container] = Object.values(template.findResources('AWS::ECS::TaskDefinition'))[0].Properties.ContainerDefinitions;
    const databaseSecrets = (container.Secrets as { Name: string; ValueFrom: unknown }[]).filter((secret) => secret.Name.startsWith('PG'));
    expect(databaseSecrets.map((secret) => secret.Name)).toEqual(['PGUSER', 'PGPASSWORD']);
    for (const secret of databaseSecrets) expect(JSON.stringify(secret.ValueFrom)).toContain(JSON.stringify(appSecret));

    const functions = Object.values(template.findResources('AWS::Lambda::Function')).map(
      (fn) => fn.Properties.Environment?.Variables ?? {},
    );
    const form = functions.find((variables) => variables.LABLINK_ADMIN_SECRET_ARN)!;
    const migration = functions.find((variables) => variables.LABLINK_APP_SECRET_ARN)!;
    expect(form.LABLINK_DB_SECRET_ARN).toEqual(appSecret);
    expect(migration).toMatchObject({ LABLINK_DB_SECRET_ARN: ownerSecret, LABLINK_APP_SECRET_ARN: appSecret });

    const formReads = secretsReadBy(template, /^FormApiFormFunction/);
    expect(formReads).toContainEqual(appSecret);
    expect(formReads).not.toContainEqual(ownerSecret);
    expect(JSON.stringify(statementsOf(template, /^FormApiFormFunction/))).not.toContain(JSON.stringify(ownerSecret));
    expect(secretsReadBy(template, /^DatabaseMigrateFunction/)).toEqual(expect.arrayContaining([ownerSecret, appSecret]));
  });

  it('sets the app role up again when its grants or its secret change, before the form and the allocator use it', () => {
    const schema = Object.entries(template.findResources('Custom::LabLinkSchema'));
    expect(schema).toHaveLength(1);
    const [schemaId, resource] = schema[0];
    expect(resource.Properties).toMatchObject({
      appRole: expect.stringMatching(/^[0-9a-f]{64}$/),
      appSecret: stack.resolve(stack.database.appSecret.secretArn),
    });
    const formFunctionId = stack.resolve((stack.formApi.handler.node.defaultChild as CfnResource).logicalId);
    expect(template.toJSON().Resources[formFunctionId].DependsOn).toContain(schemaId);
  });

  it('hands the allocator a fleet token only when LabLink-compatible clients are allowed', () => {
    const { stack: withToken, template: tokenTemplate } = synth({ vmCount: '1', allowFleetToken: 'true' });
    expect(secretsReadBy(tokenTemplate, /^AllocatorTaskExecutionRole/)).toContainEqual(
      withToken.resolve(withToken.fleetTokenSecret!.secretArn),
    );
    tokenTemplate.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [Match.objectLike({ Secrets: Match.arrayWith([Match.objectLike({ Name: 'LABLINK_FLEET_TOKEN' })]) })],
    });
  });

  it('tags every VM with its fleet and gives it its name, which the allocator checks', () => {
    const instances = Object.values(fleetInstances(stack));
    expect(instances).toHaveLength(3);
    for (const instance of instances) {
      expect(instance.Properties.Tags).toEqual(
        expect.arrayContaining([
          { Key: 'lablink:fleet', Value: 'LabLinkTest' },
          { Key: 'Name', Value: expect.stringMatching(/^lablink-vm-\d$/) },
        ]),
      );
    }
  });

  it('keeps every VM’s user-data under EC2’s 16 KB limit', () => {
    for (const instance of Object.values(fleetInstances(stack))) {
      const parts = instance.Properties.UserData['Fn::Base64']['Fn::Join'][1] as unknown[];
      // Tokens resolve to an ALB DNS name, a secret ARN and a region: 300 bytes covers all three.
      const size = parts.reduce<number>((total, part) => total + (typeof part === 'string' ? Buffer.byteLength(part) : 300), 0);
      expect(size).toBeLessThan(EC2_USER_DATA_LIMIT_BYTES);
    }
  });

  it('outputs what an admin needs', () => {
    for (const name of ['FormUrl', 'AdminUrl', 'AdminSecretName', 'AllocatorUrl', 'ListVmsCommand']) template.hasOutput(name, {});
    template.hasOutput('SparesGroup', { Value: stack.resolve(stack.fleet.spares.autoScalingGroupName) });
  });

  it('passes cdk-nag AwsSolutions checks, with every acknowledged finding carrying a reason', () => {
    const report = new AwsSolutionsChecks().validateScope(stack);
    expect(report.violations.filter((violation) => violation.severity === 'error').map((violation) => violation.ruleName)).toEqual([]);
  });

  it('lets the allocator reboot, protect, stop and start only this fleet’s instances', () => {
    const reboot = statementsOf(template, /^AllocatorTaskTaskRole/).find((statement) =>
      actionsOf(statement).includes('ec2:RebootInstances'),
    ) as Statement & { Condition: unknown };
    expect(reboot.Condition).toEqual({ StringEquals: { 'aws:ResourceTag/lablink:fleet': 'LabLinkTest' } });
    expect(JSON.stringify(reboot.Resource)).toContain(':instance/*');
  });

  it('lets the allocator change termination protection and no other attribute (not a stopped VM’s user-data)', () => {
    const modify = statementsOf(template, /^AllocatorTaskTaskRole/).filter((statement) =>
      actionsOf(statement).includes('ec2:ModifyInstanceAttribute'),
    ) as (Statement & { Condition: unknown })[];
    expect(modify).toHaveLength(1);
    expect(actionsOf(modify[0])).toEqual(['ec2:ModifyInstanceAttribute']);
    expect(modify[0].Condition).toEqual({
      StringEquals: { 'aws:ResourceTag/lablink:fleet': 'LabLinkTest' },
      // A request that sets another attribute has no value for this key, so the condition refuses it.
      StringEqualsIgnoreCase: { 'ec2:Attribute/DisableApiTermination': ['true', 'false'] },
    });
  });

  it('keeps a spares group in the parent stack: none running, up to one spare per VM, its size left to the allocator', () => {
    template.resourceCountIs('AWS::AutoScaling::AutoScalingGroup', 1);
    for (const shard of shardTemplates(stack)) shard.resourceCountIs('AWS::AutoScaling::AutoScalingGroup', 0);
    const [group] = Object.values(template.findResources('AWS::AutoScaling::AutoScalingGroup'));
    expect(group.Properties).toMatchObject({ MinSize: '0', MaxSize: '3', NewInstancesProtectedFromScaleIn: true });
    // A desired capacity in the template would reset the allocator's on every deploy.
    expect(group.Properties.DesiredCapacity).toBeUndefined();
    expect(group.CreationPolicy).toBeUndefined();
    expect(group.Properties.Tags).toEqual([
      { Key: 'lablink:fleet', Value: 'LabLinkTest', PropagateAtLaunch: true },
      { Key: 'lablink:spare', Value: 'true', PropagateAtLaunch: true },
    ]);
    const publicSubnets = stack.network.vpc.publicSubnets.map((subnet) => stack.resolve(subnet.subnetId));
    expect(group.Properties.VPCZoneIdentifier).toEqual(publicSubnets);
  });

  it('launches spares like the named VMs (IMDSv2, type, image, security group, role, encrypted disk) with a boot script that claims its name', () => {
    const [group] = Object.values(template.findResources('AWS::AutoScaling::AutoScalingGroup'));
    const spareTemplate = template.toJSON().Resources[group.Properties.LaunchTemplate.LaunchTemplateId.Ref].Properties.LaunchTemplateData;
    const [named] = Object.values(fleetInstances(stack));
    const [profileId] = Object.keys(template.findResources('AWS::IAM::InstanceProfile'));
    expect(spareTemplate).toMatchObject({
      MetadataOptions: { HttpTokens: 'required' },
      InstanceType: named.Properties.InstanceType,
      ImageId: named.Properties.ImageId,
      BlockDeviceMappings: named.Properties.BlockDeviceMappings,
      SecurityGroupIds: [stack.resolve(stack.fleet.securityGroup.securityGroupId)],
      IamInstanceProfile: { Arn: { 'Fn::GetAtt': [profileId, 'Arn'] } },
    });
    const parts = spareTemplate.UserData['Fn::Base64']['Fn::Join'][1] as unknown[];
    const script = parts.filter((part): part is string => typeof part === 'string').join('');
    expect(script).toContain("VM_NAME=''\n");
    expect(script).toContain("SIGNAL_RESOURCE=''\n");
    expect(script).toContain('\nstep claim-name\n');
    expect(script).not.toContain('step set-hostname');
    const size = parts.reduce<number>((total, part) => total + (typeof part === 'string' ? Buffer.byteLength(part) : 300), 0);
    expect(size).toBeLessThan(EC2_USER_DATA_LIMIT_BYTES);
  });

  it('lets the allocator size and end spares of this group only, and tag this fleet’s instances only with a name or as replaced', () => {
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({
          Environment: Match.arrayWith([
            { Name: 'LABLINK_SPARES_GROUP', Value: stack.resolve(stack.fleet.spares.autoScalingGroupName) },
            { Name: 'LABLINK_VM_NAME_PREFIX', Value: 'lablink-vm' },
            { Name: 'LABLINK_VM_COUNT', Value: String(stack.fleet.instances.length) },
          ]),
        }),
      ],
    });
    const statements = statementsOf(template, /^AllocatorTaskTaskRole/) as (Statement & { Condition?: unknown })[];
    const scaling = statements.find((statement) => actionsOf(statement).includes('autoscaling:SetDesiredCapacity'))!;
    expect(actionsOf(scaling)).toEqual(['autoscaling:SetDesiredCapacity', 'autoscaling:TerminateInstanceInAutoScalingGroup']);
    expect(scaling.Resource).toEqual(stack.resolve(stack.fleet.spares.autoScalingGroupArn));
    // The group by its name; "*" only for the id AWS puts in its ARN.
    expect(JSON.stringify(scaling.Resource)).toContain(
      `:autoScalingGroup:*:autoScalingGroupName/",${JSON.stringify(stack.resolve(stack.fleet.spares.autoScalingGroupName))}]`,
    );
    const tagging = statements.find((statement) => actionsOf(statement).includes('ec2:CreateTags'))!;
    expect(actionsOf(tagging)).toEqual(['ec2:CreateTags']);
    expect(JSON.stringify(tagging.Resource)).toContain(':instance/*');
    expect(tagging.Condition).toEqual({
      StringEquals: { 'aws:ResourceTag/lablink:fleet': 'LabLinkTest' },
      'ForAllValues:StringEquals': { 'aws:TagKeys': ['Name', 'lablink:replaced'] },
    });
    // Nothing else of Auto Scaling or of tagging, anywhere in the allocator's rights.
    const elsewhere = statements.filter((statement) => statement !== scaling && statement !== tagging).flatMap(actionsOf);
    expect(elsewhere.filter((action) => action.startsWith('autoscaling:') || action === 'ec2:CreateTags')).toEqual([]);
  });

  it('raises alarms for no free VM, stale and failed VMs, allocator down and Lambda errors, on one dashboard', () => {
    for (const metricName of ['FreeVms', 'StaleVms', 'FailedVms']) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'LabLink',
        MetricName: metricName,
        Dimensions: [{ Name: 'Fleet', Value: 'LabLinkTest' }],
      });
    }
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'HealthyHostCount',
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      TreatMissingData: 'breaching',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Errors', Namespace: 'AWS/Lambda' });
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    template.resourceCountIs('AWS::SNS::Topic', 0);
    template.resourceCountIs('AWS::Scheduler::Schedule', 0);
  });

  it('with expiresAt, stops the VMs and the allocator at that time, allowed to touch only this fleet', () => {
    const { stack: expiringStack, template: expiring } = synth({
      vmCount: '82',
      expiresAt: '2099-12-01T18:00Z',
      alarmEmail: 'ops@example.com',
    });
    // Each nested stack of VMs stops its own instances: 1,000 ids would not fit one schedule's input.
    const stopped = shardTemplates(expiringStack).map((shard) => {
      const [schedule] = Object.values(shard.findResources('AWS::Scheduler::Schedule'));
      expect(schedule.Properties).toMatchObject({
        ScheduleExpression: 'at(2099-12-01T18:00:00)',
        ScheduleExpressionTimezone: 'UTC',
        Target: { Arn: 'arn:aws:scheduler:::aws-sdk:ec2:stopInstances' },
      });
      return (JSON.stringify(schedule.Properties.Target.Input).match(/"Ref":"Vm\d+/g) ?? []).length;
    });
    expect(stopped).toEqual([80, 2]);
    expiring.hasResourceProperties('AWS::Scheduler::Schedule', {
      Target: Match.objectLike({ Arn: 'arn:aws:scheduler:::aws-sdk:ecs:updateService' }),
    });
    // The spares have no ids in the template: a function stops them, allowed to touch only this group and this fleet.
    // It also lifts the termination protection the allocator kept, which nothing else would once the allocator stops.
    const [endFunction] = Object.entries(expiring.findResources('AWS::Lambda::Function')).filter(([id]) =>
      id.startsWith('ExpiryEndFunction'),
    );
    expect(endFunction[1].Properties.Environment.Variables).toMatchObject({
      LABLINK_SPARES_GROUP: expiringStack.resolve(expiringStack.fleet.spares.autoScalingGroupName),
      LABLINK_FLEET_NAME: 'LabLinkTest',
    });
    expiring.hasResourceProperties('AWS::Scheduler::Schedule', {
      Target: Match.objectLike({ Arn: { 'Fn::GetAtt': [endFunction[0], 'Arn'] } }),
    });
    const endRights = statementsOf(expiring, /^ExpiryEndFunctionServiceRole/) as (Statement & { Condition?: unknown })[];
    const thisFleet = { StringEquals: { 'aws:ResourceTag/lablink:fleet': 'LabLinkTest' } };
    expect(endRights.map((statement) => [actionsOf(statement), statement.Condition ?? statement.Resource])).toEqual([
      [['ec2:StopInstances'], thisFleet],
      [['ec2:DescribeInstances'], '*'],
      [['ec2:DescribeInstanceAttribute'], thisFleet],
      // Termination protection off, and no other attribute.
      [['ec2:ModifyInstanceAttribute'], { ...thisFleet, StringEqualsIgnoreCase: { 'ec2:Attribute/DisableApiTermination': ['false'] } }],
      [['autoscaling:SuspendProcesses'], expiringStack.resolve(expiringStack.fleet.spares.autoScalingGroupArn)],
      [['autoscaling:DescribeAutoScalingGroups'], '*'],
    ]);
    const nag = new AwsSolutionsChecks().validateScope(expiringStack);
    expect(nag.violations.filter((violation) => violation.severity === 'error').map((violation) => violation.ruleName)).toEqual([]);
    // No spare launches after the end; a lower maximum would outlive a deploy that moves expiresAt.
    const [noMoreSpares] = Object.values(expiring.findResources('AWS::AutoScaling::ScheduledAction'));
    expect(noMoreSpares.Properties).toEqual({
      AutoScalingGroupName: expiringStack.resolve(expiringStack.fleet.spares.autoScalingGroupName),
      // AWS's format for StartTime, without milliseconds.
      StartTime: '2099-12-01T18:00:00Z',
      DesiredCapacity: 0,
    });
    const stop = statementsOf(expiring, /^ExpiryRole/).find((statement) => statement.Action === 'ec2:StopInstances') as Statement & {
      Condition: unknown;
    };
    expect(stop.Condition).toEqual({ StringEquals: { 'aws:ResourceTag/lablink:fleet': 'LabLinkTest' } });
    expiring.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    const alarms = Object.values(expiring.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms.every((alarm) => (alarm.Properties.AlarmActions as unknown[]).length === 1)).toBe(true);
    expiring.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ LABLINK_EXPIRES_AT: '2099-12-01T18:00Z' }) },
    });
  });

  it('adds a VM without replacing the others when vmCount grows', () => {
    const before = fleetInstances(stack);
    const after = fleetInstances(synth({ vmCount: '83', holdSeconds: '40' }).stack);
    expect(Object.keys(after)).toHaveLength(83);
    for (const [logicalId, resource] of Object.entries(before)) expect(after[logicalId]).toEqual(resource);
    // The AMI is looked up when an instance launches, so a newer Ubuntu image never replaces running VMs.
    for (const resource of Object.values(after)) expect(resource.Properties.ImageId).toBe(`resolve:ssm:${UBUNTU_24_04_AMI_PARAMETER}`);
  });
});
