import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { simulateOpenPages } from '../../bench/open-pages';
import { apiThrottle } from '../../lib/api-throttle';
import { readConfig } from '../../lib/lablink-config';
import { LabLinkStack } from '../../lib/lablink-stack';

/** The form API's stage as synthesized for this context. */
function stageOf(context: Record<string, string>) {
  const app = new App();
  const stack = new LabLinkStack(app, 'LabLinkThrottle', { config: readConfig((key) => context[key]) });
  const [stage] = Object.values(Template.fromStack(stack).findResources('AWS::ApiGatewayV2::Stage'));
  return { defaults: stage.Properties.DefaultRouteSettings, requestVm: stage.Properties.RouteSettings['POST /api/request_vm'] };
}

describe('the form API’s throttle grows with the fleet (API Gateway stage in the template)', () => {
  it('300 VMs: 300 requests/s with bursts of 900 (everyone submits at once, then loads their page); request_vm 150/s, burst 300', () => {
    expect(stageOf({ vmCount: '300' })).toEqual({
      defaults: { ThrottlingRateLimit: 300, ThrottlingBurstLimit: 900 },
      requestVm: { ThrottlingRateLimit: 150, ThrottlingBurstLimit: 300 },
    });
  });

  it('1,000 VMs: 1,000 requests/s with bursts of 3,000, within AWS’s default account limits; request_vm 500/s, burst 1,000', () => {
    expect(stageOf({ vmCount: '1000' })).toEqual({
      defaults: { ThrottlingRateLimit: 1000, ThrottlingBurstLimit: 3000 },
      requestVm: { ThrottlingRateLimit: 500, ThrottlingBurstLimit: 1000 },
    });
  });

  it('apiRateLimit overrides the sizing, and its bursts follow it', () => {
    expect(stageOf({ vmCount: '300', apiRateLimit: '200' })).toEqual({
      defaults: { ThrottlingRateLimit: 200, ThrottlingBurstLimit: 600 },
      requestVm: { ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 },
    });
  });

  it('a very high apiRateLimit keeps the bursts within AWS’s account limit of 5,000', () => {
    expect(stageOf({ vmCount: '2', apiRateLimit: '8000' })).toEqual({
      defaults: { ThrottlingRateLimit: 8000, ThrottlingBurstLimit: 5000 },
      requestVm: { ThrottlingRateLimit: 4000, ThrottlingBurstLimit: 5000 },
    });
  });
});

describe('a room of open pages through the local limiter with these limits (simulated clock, bench/open-pages.ts)', () => {
  const run = (participants: number, apiRateLimit?: number) =>
    simulateOpenPages({ participants, throttle: apiThrottle(participants, apiRateLimit), seconds: 600, failedShare: 0.1, seed: 7 });

  it.each([300, 1000])(
    '%i participants submitting in one second and keeping their pages open: no request refused',
    async (participants) => {
      const report = await run(participants);
      expect(report.requestsByKind.submit).toBeGreaterThanOrEqual(participants);
      expect(report.refusedByKind).toEqual({ page: 0, poll: 0, submit: 0, admin: 0 });
    },
  );

  it('the same 300 with the former fixed 50 requests/s: submissions among the refused', async () => {
    expect((await run(300, 50)).refusedByKind.submit).toBeGreaterThan(0);
  });
});
