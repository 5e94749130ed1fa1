import { Stack, Validations } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

/** cdk-nag AwsSolutions and CloudFormation validation findings LabLink accepts, each with the reason. */
export function acknowledgeNagFindings(stack: Stack, spares: IConstruct): void {
  const acknowledge = (id: string, reason: string) => Validations.of(stack).acknowledge({ id, reason });

  acknowledge(
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    'The Lambda functions need only to write their own logs; this AWS policy is exactly that.',
  );
  acknowledge(
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
    'Admins reach the VMs through SSM Session Manager instead of open SSH ports; this is the AWS policy for it.',
  );
  acknowledge(
    'AwsSolutions-IAM5[Resource::<DatabaseMigrateFunction3018F74A.Arn>:*]',
    'The CDK custom-resource Provider invokes any version of the one migration function it owns.',
  );
  acknowledge(
    'AwsSolutions-IAM5[Resource::*]',
    'ecr:GetAuthorizationToken (execution role), ec2:DescribeInstances (task role, read-only, to check a VM belongs to the fleet; the expiry function, to find the fleet\'s instances by tag) and autoscaling:DescribeAutoScalingGroups (the expiry function, read-only) have no resource-level permissions; AWS only grants them on "*".',
  );
  acknowledge(
    'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]',
    'Rebooting and protecting (allocator), stopping (expiry schedule and function) and reading and lifting termination protection (expiry function) apply to instances only, further limited by a condition on the tag lablink:fleet=<this stack>, so VMs added later, and spares, are covered too; ModifyInstanceAttribute also by the attribute (ec2:Attribute/DisableApiTermination).',
  );
  acknowledge(
    'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:autoScalingGroup:*:autoScalingGroupName/<FleetSparesASG9B080AB4>]',
    "The allocator's and the expiry function's rights on the spares group name it; the \"*\" stands for the id AWS puts in a group's ARN, which CloudFormation does not return.",
  );
  acknowledge(
    'AwsSolutions-AS3',
    "Only the allocator changes the spares group's capacity, when it replaces a failed VM; it logs each replacement, and the dashboard shows the VM.",
  );
  // Only here: elsewhere a finding of this rule would be a real unencrypted volume.
  Validations.of(spares).acknowledge({
    id: 'AwsSolutions-EC26',
    reason:
      "The spares' launch template encrypts the root volume (a test asserts it); cdk-nag 3 matches the group to the first launch template without a name in the stack, the named VMs' (IMDS settings only).",
  });
  acknowledge('AwsSolutions-L1', "CDK's custom-resource Provider framework picks its own runtime; LabLink's functions use Node.js 24.");
  acknowledge('AwsSolutions-APIG4', 'The participant form is public by design; the optional access code and route throttling guard it.');
  acknowledge(
    'AwsSolutions-ECS2',
    'The environment holds only non-secret settings; the database password and fleet token come from Secrets Manager.',
  );
  acknowledge(
    'AwsSolutions-ELB2',
    "The load balancer is internal and carries only agents' long-polls; the allocator logs every event itself.",
  );
  acknowledge('AwsSolutions-RDS6', 'The allocator and the Data API authenticate with the generated Secrets Manager credentials.');
  acknowledge('AwsSolutions-RDS10', 'A workshop deployment must tear down with cdk destroy; the cluster leaves a final snapshot.');
  acknowledge('AwsSolutions-EC28', "VMs live for a workshop; the agent's own reports, not 1-minute metrics, tell whether a VM works.");
  acknowledge('AwsSolutions-EC29', 'Client VMs are disposable and managed by CloudFormation; vmCount adds and removes them.');
  acknowledge(
    'CloudFormation-Validate::E1152',
    'The VMs\' ImageId is "resolve:ssm:<parameter>", which EC2 resolves at launch (documented by AWS); the validator only knows literal AMI ids.',
  );
  acknowledge(
    'AwsSolutions-SMG4',
    "The secrets live as long as one workshop deployment; rotating the fleet token would cut off running agents, and the database app role's password is set from its secret by the migration custom resource on deploy, not by a rotation Lambda.",
  );
}
