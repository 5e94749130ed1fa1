import { judgeExpiry, judgeVms, reportOf, verdictLine } from '../../core/go-no-go';
import { lastCheck, recordCheck } from '../../store/go-no-go-checks';
import { vmSummary } from '../support/fixtures';
import { SQL_EXECUTORS, useTestDatabase } from '../support/data-api-on-postgres';

const summary = (lines: ReturnType<typeof judgeVms>) => lines.map((line) => `${line.status} ${line.name}: ${line.message}`);

describe('the go / no-go rules for VMs and the expiry', () => {
  it('passes a fleet whose every VM is free and healthy', () => {
    expect(summary(judgeVms([vmSummary('a-1'), vmSummary('a-2')], 2))).toEqual([
      'PASS vms: all 2 VMs registered, healthy, set up and free',
    ]);
  });

  it('counts a VM the warm pool stopped as ready: it starts when the running ones are taken', () => {
    expect(summary(judgeVms([vmSummary('a-1'), vmSummary('a-2', { polling: false, warm_pool: 'stopped' })], 2))).toEqual([
      'PASS vms: all 2 VMs registered, healthy, set up and free (1 stopped by the warm pool until needed)',
    ]);
  });

  it('names each VM that cannot take a participant, with why', () => {
    const lines = judgeVms([
      vmSummary('a-1'),
      vmSummary('a-2', { stale: true }),
      vmSummary('a-3', { unhealthy_since: '2026-12-04T20:05:00.000Z', gpu_status: 'failed', gpu_detail: 'nvidia-smi failed' }),
      vmSummary('a-4', { email: 'ada@example.com', state: 'configured' }),
      vmSummary('a-5', { state: 'resetting', reset_requested_at: '2026-12-04T20:09:00.000Z' }),
      vmSummary('a-6', { polling: false, step: 'install-desktop' }),
      vmSummary('a-7', { failed_at: '2026-12-04T20:08:00.000Z', failure: 'Reset failed: home not removed' }),
    ]);
    expect(summary(lines)).toEqual([
      'FAIL vm a-2: no heartbeat since 2026-12-04T20:10:00.000Z',
      'FAIL vm a-3: unhealthy since 2026-12-04T20:05:00.000Z (GPU: nvidia-smi failed)',
      'WARN vm a-4: has a participant (ada@example.com, configured)',
      'WARN vm a-5: resetting since 2026-12-04T20:09:00.000Z',
      'FAIL vm a-6: not ready: waiting, at step install-desktop, not polling',
      'FAIL vm a-7: Reset failed: home not removed',
      'PASS vms: 1 of 7 VMs ready',
    ]);
    expect(reportOf(lines)).toMatchObject({ go: false, problems: 4 });
  });

  it('fails a fleet with no VM ready even when nothing is broken', () => {
    expect(summary(judgeVms([vmSummary('a-1', { email: 'ada@example.com', state: 'configured' })]))).toEqual([
      'WARN vm a-1: has a participant (ada@example.com, configured)',
      'FAIL vms: no VM is ready for a participant',
    ]);
  });

  it('fails a fleet smaller than the deploy asked for', () => {
    expect(summary(judgeVms([vmSummary('a-1')], 3))).toEqual([
      'FAIL vms: 1 of 3 VMs have registered',
      'PASS vms: all 1 VM registered, healthy, set up and free',
    ]);
  });

  it('passes an expiry well ahead, warns of one within 4 hours, fails one behind, and passes none', () => {
    const now = Date.parse('2026-12-04T20:00:00Z');
    expect(judgeExpiry('2026-12-05T18:30:00Z', now)).toMatchObject({
      status: 'PASS',
      message: 'the fleet stops at 2026-12-05T18:30:00Z (in 22 h 30 min)',
    });
    expect(judgeExpiry('2026-12-04T23:00:00Z', now)).toMatchObject({
      status: 'WARN',
      message: 'the fleet stops at 2026-12-04T23:00:00Z (in 3 h 0 min)',
    });
    expect(judgeExpiry('2026-12-04T19:59:00Z', now)).toMatchObject({ status: 'FAIL' });
    expect(judgeExpiry(null, now)).toMatchObject({ status: 'PASS' });
  });

  it('says GO only without a failure; warnings do not count', () => {
    expect(verdictLine(reportOf([{ status: 'WARN', name: 'quota', message: 'tight' }]))).toBe('GO');
    expect(
      verdictLine(
        reportOf([
          { status: 'FAIL', name: 'a', message: 'x' },
          { status: 'FAIL', name: 'b', message: 'y' },
        ]),
      ),
    ).toBe('NO-GO (2 problems)');
  });
});

describe.each(SQL_EXECUTORS)('the stored go / no-go results through %s', (_executor, executorFor) => {
  const database = useTestDatabase(executorFor);

  it('gives back the last result with its time and lines, and keeps only the last ones', async () => {
    const { sql, db } = database;
    expect(await lastCheck(sql)).toBeUndefined();
    for (let run = 1; run <= 30; run += 1) await recordCheck(sql, reportOf([{ status: 'PASS', name: 'run', message: `run ${run}` }]));
    await recordCheck(sql, reportOf([{ status: 'FAIL', name: 'vms', message: 'no VM has registered', action: 'Deploy.' }]));
    const last = (await lastCheck(sql))!;
    expect(last).toMatchObject({
      go: false,
      problems: 1,
      lines: [{ status: 'FAIL', name: 'vms', message: 'no VM has registered', action: 'Deploy.' }],
    });
    expect(last.checkedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect((await db.pool.query('SELECT count(*)::int AS count FROM go_no_go_checks')).rows[0].count).toBe(21);
  });
});
