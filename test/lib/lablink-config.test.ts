import path from 'node:path';
import { UBUNTU_24_04_AMI_PARAMETER, readConfig } from '../../lib/lablink-config';

function contextOf(values: Record<string, unknown>) {
  return (key: string) => values[key];
}

describe('readConfig (CDK context)', () => {
  it('gives documented defaults for an empty context', () => {
    expect(readConfig(contextOf({}))).toEqual({
      vmCount: 2,
      instanceType: 't3.large',
      amiId: undefined,
      amiSsmParameter: UBUNTU_24_04_AMI_PARAMETER,
      volumeGb: 40,
      dbMinCapacity: 0.5,
      dbMaxCapacity: 4,
      holdSeconds: 40,
      allocatorTasks: 1,
      vmNamePrefix: 'lablink-vm',
      apiRateLimit: undefined,
      allowFleetToken: false,
      accessCode: undefined,
      vmsPerAddress: 90,
      vmsPerAddressMinutes: 10,
      releaseFailedAfterMinutes: 10,
      releaseUnconnectedAfterMinutes: 20,
      lineTurnMinutes: 5,
      expiresAt: undefined,
      alarmEmail: undefined,
      setupScript: undefined,
      setupCheck: undefined,
      repository: undefined,
      repositoryRef: undefined,
      containerImage: undefined,
    });
  });

  it('takes a workshop setup: the script as an absolute path to an existing file', () => {
    const config = readConfig(
      contextOf({
        setupScript: 'docs/examples/python-tutorial-setup.sh',
        setupCheck: 'python -c "import numpy"',
        repository: 'git@github.com:owner/tutorial.git',
        repositoryRef: 'main',
      }),
    );
    expect(config.setupScript).toBe(path.resolve('docs/examples/python-tutorial-setup.sh'));
    expect(config).toMatchObject({
      setupCheck: 'python -c "import numpy"',
      repository: 'git@github.com:owner/tutorial.git',
      repositoryRef: 'main',
    });
  });

  it('names every bad setup key with what it allows', () => {
    expect(() =>
      readConfig(
        contextOf({
          setupScript: './no-such-setup.sh',
          setupCheck: 'echo one\necho two',
          repository: 'ftp://example.org/x',
          repositoryRef: '--upload-pack=evil',
          containerImage: 'Python 3',
        }),
      ),
    ).toThrow(
      /setupScript must be a readable file of at most 1024 KB, such as .\/setup.sh \(got ".\/no-such-setup.sh"\)[\s\S]*setupCheck must be one line[\s\S]*repository must be a public git URL[\s\S]*repositoryRef must be a branch, tag or commit[\s\S]*containerImage must be an image reference/,
    );
    expect(() => readConfig(contextOf({ repositoryRef: 'main' }))).toThrow(/repositoryRef needs repository/);
    // A token in the URL would reach every participant: refused.
    expect(() => readConfig(contextOf({ repository: 'https://alice:ghp_secret@github.com/owner/tutorial.git' }))).toThrow(
      /repository must be a public git URL without credentials/,
    );
    expect(readConfig(contextOf({ repository: 'https://gitlab.example.org:8443/group/sub/tutorial' })).repository).toBe(
      'https://gitlab.example.org:8443/group/sub/tutorial',
    );
    expect(() => readConfig(contextOf({ vmCount: '10', warmVms: '11' }))).toThrow(/warmVms must not be larger than vmCount \(10\)/);
    expect(readConfig(contextOf({ vmCount: '10', warmVms: '3' })).warmVms).toBe(3);
    expect(readConfig(contextOf({ vmCount: '10' })).warmVms).toBeUndefined();
  });

  it('takes strings from -c flags and numbers from cdk.json alike', () => {
    const config = readConfig(
      contextOf({ vmCount: '10', volumeGb: 100, instanceType: 'g4dn.xlarge', amiId: 'ami-0123456789abcdef0', dbMaxCapacity: '8' }),
    );
    expect(config).toMatchObject({
      vmCount: 10,
      volumeGb: 100,
      instanceType: 'g4dn.xlarge',
      amiId: 'ami-0123456789abcdef0',
      dbMaxCapacity: 8,
    });
    expect(readConfig(contextOf({ hourlyPrice: '0.61' })).hourlyPrice).toBe(0.61);
    expect(() => readConfig(contextOf({ hourlyPrice: 'cheap' }))).toThrow(/hourlyPrice must be a number from 0 to 1000 \(got "cheap"\)/);
  });

  it('names every bad key with what it allows, in one error', () => {
    expect(() =>
      readConfig(
        contextOf({
          vmCount: 'ten',
          instanceType: 'big one',
          amiId: 'ubuntu',
          holdSeconds: '2',
          vmNamePrefix: 'Lab Link',
          allowFleetToken: 'yes',
        }),
      ),
    ).toThrow(
      /vmCount must be a whole number from 0 to 1000 \(got "ten"\)[\s\S]*instanceType must be an EC2 instance type[\s\S]*amiId must be an AMI id[\s\S]*holdSeconds must be a whole number from 5 to 110[\s\S]*vmNamePrefix must be lower-case[\s\S]*allowFleetToken must be true or false/,
    );
  });

  it('refuses an Ubuntu 22.04 AMI parameter (by version or codename), whose curl cannot sign the VMs’ S3 downloads, and takes a 24.04 one', () => {
    for (const parameter of [
      '/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id',
      '/aws/service/canonical/ubuntu/server/jammy/stable/current/amd64/hvm/ebs-gp2/ami-id',
    ]) {
      expect(() => readConfig(contextOf({ amiSsmParameter: parameter }))).toThrow(
        `amiSsmParameter must not name Ubuntu 22.04, whose curl 7.81 cannot sign the VMs' S3 downloads; use Ubuntu 24.04 (got "${parameter}").`,
      );
    }
    const noble = '/aws/service/canonical/ubuntu/server/noble/stable/current/amd64/hvm/ebs-gp3/ami-id';
    expect(readConfig(contextOf({ amiSsmParameter: noble })).amiSsmParameter).toBe(noble);
  });

  it('refuses a teardown time in another form, and reads a past one (the stack refuses it for deploys only)', () => {
    expect(() => readConfig(contextOf({ expiresAt: 'tomorrow' }))).toThrow(/expiresAt must be a UTC time such as 2026-12-01T18:00Z/);
    expect(readConfig(contextOf({ expiresAt: '2020-01-01T00:00Z' })).expiresAt).toBe('2020-01-01T00:00Z');
  });

  it('refuses a database capacity range that is upside down', () => {
    expect(() => readConfig(contextOf({ dbMinCapacity: '8', dbMaxCapacity: '2' }))).toThrow(
      /dbMinCapacity must not be larger than dbMaxCapacity/,
    );
  });
});
