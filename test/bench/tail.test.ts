import { explainTail } from '../../bench/tail';

// Two submissions on one clock (ms): the second is slow because its assignment waited, and a
// GC pause of the VMs' process fell into it.
const samples = [
  { sentMs: 100, formAnsweredMs: 103, vmAnsweredMs: 104 },
  { sentMs: 200, formAnsweredMs: 215, vmAnsweredMs: 221 },
];
const server = {
  gcPauses: [],
  // The second form's 303 is written after its VM's 200: the notification overtook it.
  formPosts: [
    { fromMs: 100.5, toMs: 102.5 },
    { fromMs: 201, toMs: 214.5 },
  ],
  vmAnswersMs: [103.5, 212],
  queries: [
    { statement: 'WITH existing AS', fromMs: 101, toMs: 102 },
    { statement: 'SELECT deliveries', fromMs: 102.6, toMs: 103.2 },
    { statement: 'WITH existing AS', fromMs: 201.5, toMs: 211 },
    { statement: 'SELECT deliveries', fromMs: 211.2, toMs: 211.8 },
  ],
};

describe("the end-to-end benchmark's tail explained (bench/tail.ts)", () => {
  const tail = explainTail(samples, server, { vms: [{ fromMs: 214, toMs: 220 }], measuring: [] }, 1);

  it('cuts each sample into stages that add up to it, the form answered after the VM counted beside them', () => {
    const [slowest] = tail.beyondP99;
    expect(slowest).toMatchObject({ sample: 2, totalMs: 21, toServer: 1, inServer: 11, toVm: 9, formInServer: 13.5 });
    expect(slowest.toServer + slowest.inServer + slowest.toVm).toBe(slowest.totalMs);
    expect(tail.unmatchedSamples).toBe(0);
  });

  it('names the statements the server ran for the slow sample and the GC time inside it, per process', () => {
    expect(tail.beyondP99[0].queries).toEqual(['9.5 ms WITH existing AS', '0.6 ms SELECT deliveries']);
    expect(tail.beyondP99[0].gcMs).toEqual({ vms: 6, measuring: 0 });
    expect(tail.gcPauses.vms).toMatchObject({ pauses: 1, samplesPaused: 1, beyondP99Paused: 1 });
    expect(tail.statementsMs['WITH existing AS']).toMatchObject({ count: 2, max: 9.5 });
  });

  it('counts a sample the trace has no form post for as unmatched, and leaves it out of the stages', () => {
    const partial = explainTail(samples, { ...server, formPosts: server.formPosts.slice(1) }, {}, 1);
    expect(partial.unmatchedSamples).toBe(1);
    expect(partial.stagesMs.toServer.count).toBe(1);
  });
});
