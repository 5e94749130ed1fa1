import { Pricing, pricingEnv } from '../core/cost';
import { Duration } from 'aws-cdk-lib';
import { CfnStage, HttpApi, HttpMethod, HttpStage, LogGroupLogDestination } from 'aws-cdk-lib/aws-apigatewayv2';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { AddressLimit } from '../store/client-limits';
import { ApiThrottle } from './api-throttle';
import { Database } from './database';
import { LabLinkFunction } from './node-function';

export interface FormApiProps {
  /** Reached through the Data API, as its app role. */
  readonly database: Database;
  /** The admin dashboard's password (user "admin"). */
  readonly adminSecret: ISecret;
  /** Participants must enter this code to get a VM. @default none: no code asked */
  readonly accessCode?: string;
  /** Shown on the dashboard: when the fleet stops. @default none */
  readonly expiresAt?: string;
  /** New VMs per client address and window, counted in the database by every Lambda container. */
  readonly addressLimit: AddressLimit;
  /** LABLINK_RELEASE_*_MINUTES: the VM page and the dashboard count down with the allocator. */
  readonly idleReleaseEnv: Record<string, string>;
  /** The waiting line's turn: how long the first in line has to paste a fresh command. */
  readonly lineTurnSeconds: number;
  /** What the after-workshop report prices VM-hours with. */
  readonly pricing: Pricing;
  /** API Gateway's limits: see `apiThrottle` for how they are sized from the fleet. */
  readonly throttle: ApiThrottle;
}

/** The form and the admin dashboard: an HTTP API in front of one Lambda running the web app over the Data API. */
export class FormApi extends Construct {
  public readonly api: HttpApi;
  public readonly handler: LabLinkFunction;
  public readonly url: string;

  constructor(scope: Construct, id: string, props: FormApiProps) {
    super(scope, id);
    this.handler = new LabLinkFunction(this, 'FormFunction', {
      entry: 'web/form-handler.ts',
      // API Gateway waits 30 s at most; this leaves room for a resuming database.
      timeout: Duration.seconds(28),
      environment: {
        ...props.database.appDataApiEnvironment(),
        LABLINK_ADMIN_SECRET_ARN: props.adminSecret.secretArn,
        ...(props.accessCode ? { LABLINK_ACCESS_CODE: props.accessCode } : {}),
        ...(props.expiresAt ? { LABLINK_EXPIRES_AT: props.expiresAt } : {}),
        LABLINK_VMS_PER_ADDRESS: String(props.addressLimit.vms),
        LABLINK_VMS_PER_ADDRESS_WINDOW_SECONDS: String(props.addressLimit.windowSeconds),
        ...props.idleReleaseEnv,
        LABLINK_LINE_TURN_SECONDS: String(props.lineTurnSeconds),
        ...pricingEnv(props.pricing),
      },
    });
    props.database.grantAppDataApiAccess(this.handler);
    props.adminSecret.grantRead(this.handler);

    this.api = new HttpApi(this, 'Api', { description: 'LabLink participant form', createDefaultStage: false });
    const stage = new HttpStage(this, 'Stage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: props.throttle.stage.rate, burstLimit: props.throttle.stage.burst },
      accessLogSettings: {
        destination: new LogGroupLogDestination(new LogGroup(this, 'AccessLogs', { retention: RetentionDays.ONE_MONTH })),
      },
    });
    // Requests for a VM are the scarce path: a tighter limit keeps a flood from reaching the database.
    (stage.node.defaultChild as CfnStage).routeSettings = {
      'POST /api/request_vm': { ThrottlingRateLimit: props.throttle.requestVm.rate, ThrottlingBurstLimit: props.throttle.requestVm.burst },
    };
    const integration = new HttpLambdaIntegration('FormIntegration', this.handler);
    this.api.addRoutes({ path: '/', methods: [HttpMethod.GET], integration });
    // Its own route so the tighter throttle above applies to it alone. API Gateway refuses a
    // stage whose route settings name a route that does not exist yet, so the stage waits for it.
    const requestVmRoutes = this.api.addRoutes({ path: '/api/request_vm', methods: [HttpMethod.POST], integration });
    stage.node.addDependency(...requestVmRoutes);
    this.api.addRoutes({ path: '/{proxy+}', methods: [HttpMethod.ANY], integration });
    this.url = stage.url;
  }
}
