import { Duration } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, Dashboard, GraphWidget, IAlarmAction, Metric, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { ApplicationTargetGroup } from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

export interface OperationsProps {
  readonly fleetName: string;
  readonly allocatorTargets: ApplicationTargetGroup;
  readonly formFunction: IFunction;
  /** Alarms go to this address too. @default none: the alarms show in CloudWatch only */
  readonly alarmEmail?: string;
}

/** What an admin must know, as alarms and one dashboard: no free VM, stale or failed VMs, allocator down, Lambda errors. */
export class Operations extends Construct {
  public readonly alarms: Alarm[] = [];
  public readonly dashboard: Dashboard;
  public readonly topic?: Topic;

  constructor(scope: Construct, id: string, props: OperationsProps) {
    super(scope, id);
    const fleetMetric = (name: string, statistic: string) =>
      new Metric({
        namespace: 'LabLink',
        metricName: name,
        dimensionsMap: { Fleet: props.fleetName },
        statistic,
        period: Duration.minutes(1),
      });
    const free = fleetMetric('FreeVms', 'Minimum');
    const stale = fleetMetric('StaleVms', 'Maximum');
    const failed = fleetMetric('FailedVms', 'Maximum');
    const healthyAllocators = props.allocatorTargets.metrics.healthyHostCount({ period: Duration.minutes(1), statistic: 'Minimum' });
    const lambdaErrors = props.formFunction.metricErrors({ period: Duration.minutes(5) });

    let action: IAlarmAction | undefined;
    if (props.alarmEmail) {
      this.topic = new Topic(this, 'Alarms', { displayName: 'LabLink alarms', enforceSSL: true });
      this.topic.addSubscription(new EmailSubscription(props.alarmEmail));
      action = new SnsAction(this.topic);
    }
    const alarm = (
      name: string,
      description: string,
      metric: Metric,
      comparison: ComparisonOperator,
      threshold: number,
      evaluationPeriods: number,
      missing: TreatMissingData,
    ) => {
      const created = new Alarm(this, name, {
        alarmDescription: description,
        metric,
        comparisonOperator: comparison,
        threshold,
        evaluationPeriods,
        treatMissingData: missing,
      });
      if (action) created.addAlarmAction(action);
      this.alarms.push(created);
    };
    alarm(
      'NoFreeVm',
      'No VM is free: the next participant gets "no VM free".',
      free,
      ComparisonOperator.LESS_THAN_THRESHOLD,
      1,
      2,
      TreatMissingData.NOT_BREACHING,
    );
    alarm(
      'StaleVms',
      'Some VMs stopped reporting.',
      stale,
      ComparisonOperator.GREATER_THAN_THRESHOLD,
      0,
      3,
      TreatMissingData.NOT_BREACHING,
    );
    alarm(
      'FailedVms',
      'Some VMs failed and left the pool.',
      failed,
      ComparisonOperator.GREATER_THAN_THRESHOLD,
      0,
      1,
      TreatMissingData.NOT_BREACHING,
    );
    alarm(
      'AllocatorDown',
      'No healthy allocator task: VMs cannot receive assignments.',
      healthyAllocators,
      ComparisonOperator.LESS_THAN_THRESHOLD,
      1,
      2,
      TreatMissingData.BREACHING,
    );
    alarm(
      'FormErrors',
      'The form Lambda is failing.',
      lambdaErrors,
      ComparisonOperator.GREATER_THAN_THRESHOLD,
      0,
      1,
      TreatMissingData.NOT_BREACHING,
    );

    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: `${props.fleetName}-lablink`,
      widgets: [
        [
          new GraphWidget({
            title: 'VMs',
            left: [free, fleetMetric('AssignedVms', 'Maximum'), stale, fleetMetric('UnhealthyVms', 'Maximum'), failed],
            width: 12,
          }),
          new GraphWidget({ title: 'Allocator tasks healthy', left: [healthyAllocators], width: 6 }),
          new GraphWidget({ title: 'Form Lambda errors', left: [lambdaErrors], width: 6 }),
        ],
      ],
    });
  }
}
