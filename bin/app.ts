import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { DEFAULT_STACK_NAME } from '../lib/cli-context';
import { readConfig } from '../lib/lablink-config';
import { LabLinkStack } from '../lib/lablink-stack';

const app = new App();
const config = readConfig((key) => app.node.tryGetContext(key));
new LabLinkStack(app, app.node.tryGetContext('stackName') ?? DEFAULT_STACK_NAME, {
  config,
  targetRegion: process.env.CDK_DEFAULT_REGION,
  description: 'LabLink: Chrome Remote Desktop VMs for workshop participants',
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
